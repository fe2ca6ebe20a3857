"""Tenant-aware admin: the base of every admin class for a tenant-scoped model."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.db import models
from django.http import Http404, HttpRequest, HttpResponse

from morvo import tenancy
from morvo.tenancy import TenantScopedModel


def _membership(request: HttpRequest) -> Any:
    return getattr(request, "membership", None)


def can_view(request: HttpRequest) -> bool:
    return bool(request.user.is_superuser or _membership(request) is not None)


def can_manage(request: HttpRequest) -> bool:
    membership = _membership(request)
    return bool(request.user.is_superuser or (membership is not None and membership.can_manage))


class MissingObjectIs404Mixin:
    """Django's admin redirects to the index with a message for a missing object. Morvo
    answers another tenant's object exactly like a missing one, everywhere: 404."""

    def _get_obj_does_not_exist_redirect(self, request: HttpRequest, opts: Any, object_id: str) -> HttpResponse:
        raise Http404


class TenantScopedAdminMixin(MissingObjectIs404Mixin):
    """Members see and change their selected tenant's rows (by role); superusers see all.

    Forms run inside the edited object's tenant, so foreign-key choices and uniqueness
    checks only ever see that tenant's rows.
    """

    model: type[models.Model]

    def get_queryset(self, request: HttpRequest) -> Any:
        queryset = self.model.objects.all_tenants()  # type: ignore[attr-defined]
        ordering = self.get_ordering(request)  # type: ignore[attr-defined]
        if ordering:
            queryset = queryset.order_by(*ordering)
        if request.user.is_superuser:
            return queryset
        tenant = getattr(request, "tenant", None)
        return queryset.filter(tenant=tenant) if tenant is not None else queryset.none()

    def has_module_permission(self, request: HttpRequest) -> bool:
        return can_view(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return can_view(request)

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return can_manage(request) and getattr(request, "tenant", None) is not None

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return can_manage(request)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return can_manage(request)

    def get_exclude(self, request: HttpRequest, obj: Any = None) -> Any:
        return [*(super().get_exclude(request, obj) or []), "tenant"]  # type: ignore[misc]

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        related = db_field.related_model
        if isinstance(related, type) and issubclass(related, TenantScopedModel):
            tenant = tenancy.current_tenant()
            kwargs["queryset"] = related.objects.for_tenant(tenant) if tenant else related.objects.all_tenants().none()
        return super().formfield_for_foreignkey(db_field, request, **kwargs)  # type: ignore[misc]


class TenantScopedModelForm(forms.ModelForm):  # type: ignore[type-arg]
    """Binds a new row to the active tenant before validation, and validates the
    constraints that involve ``tenant`` (unique SKU per tenant…) although the field is not
    on the form: otherwise a duplicate would reach the database as a 500."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not self.instance.tenant_id:
            tenant = tenancy.current_tenant()
            if tenant is not None:
                self.instance.tenant = tenant

    def _get_validation_exclusions(self) -> Any:
        exclusions = super()._get_validation_exclusions()  # type: ignore[misc]
        exclusions.discard("tenant")
        return exclusions


class TenantScopedModelAdmin(TenantScopedAdminMixin, admin.ModelAdmin):  # type: ignore[type-arg]
    form = TenantScopedModelForm

    def get_list_display(self, request: HttpRequest) -> Any:
        columns = list(super().get_list_display(request))
        return [*columns, "tenant"] if request.user.is_superuser else columns

    def get_list_filter(self, request: HttpRequest) -> Any:
        filters = list(super().get_list_filter(request))
        return [*filters, "tenant__slug"] if request.user.is_superuser else filters

    def changeform_view(
        self, request: HttpRequest, object_id: str | None = None, form_url: str = "", extra_context: Any = None
    ) -> HttpResponse:
        tenant = getattr(request, "tenant", None)
        if object_id is not None:
            obj = self.get_queryset(request).filter(pk=unquote(object_id)).select_related("tenant").first()
            if obj is not None:
                tenant = obj.tenant
        with tenancy.tenant_context(tenant):
            return super().changeform_view(request, object_id, form_url, extra_context)

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        if not change:
            obj.tenant = tenancy.current_tenant() or request.tenant  # type: ignore[attr-defined]
        super().save_model(request, obj, form, change)

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        for inline_form in formset.forms:
            instance = inline_form.instance
            if isinstance(instance, TenantScopedModel) and not instance.tenant_id:
                instance.tenant = form.instance.tenant
        super().save_formset(request, form, formset, change)


class TenantScopedInline(TenantScopedAdminMixin, admin.TabularInline):  # type: ignore[type-arg]
    extra = 0

    def get_queryset(self, request: HttpRequest) -> Any:
        # Inlines hang off an object already loaded through the scoped admin queryset.
        return self.model.objects.all_tenants()  # type: ignore[attr-defined]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return can_manage(request)
