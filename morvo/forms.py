from __future__ import annotations

from django import forms
from django.contrib.auth.models import User
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from morvo import services
from morvo.middleware import SESSION_TENANT_KEY
from morvo.models import Tenant


class TenantSignupForm(forms.Form):
    """Extra fields on allauth's signup form: signing up creates a business and its owner."""

    business_name = forms.CharField(label=_("Business name"), max_length=200)
    business_type = forms.ChoiceField(
        label=_("Business type"), choices=Tenant.BusinessType.choices, initial=Tenant.BusinessType.RETAIL
    )
    default_language = forms.ChoiceField(
        label=_("Language of your customers"), choices=Tenant.Language.choices, initial=Tenant.Language.ARABIC
    )

    field_order = ["business_name", "business_type", "default_language", "email", "password1", "password2"]

    def signup(self, request: HttpRequest, user: User) -> None:
        tenant = services.tenant_create(
            name=self.cleaned_data["business_name"],
            owner=user,
            business_type=self.cleaned_data["business_type"],
            default_language=self.cleaned_data["default_language"],
        )
        request.session[SESSION_TENANT_KEY] = tenant.pk
