from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from morvo import services
from morvo.admin_mixins import MissingObjectIs404Mixin, can_manage, can_view
from morvo.models import ApiToken, Heartbeat, Membership, Tenant


def _member_tenant_ids(request: Any) -> list[int]:
    return list(Membership.objects.filter(user=request.user).values_list("tenant_id", flat=True))


class MembershipInline(admin.TabularInline):  # type: ignore[type-arg]
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Tenant)
class TenantAdmin(MissingObjectIs404Mixin, admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ["name", "slug", "business_type", "default_language", "currency", "is_active", "created_at"]
    list_filter = ["business_type", "default_language", "is_active"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [MembershipInline]

    def get_queryset(self, request: HttpRequest) -> Any:
        queryset = super().get_queryset(request)
        return queryset if request.user.is_superuser else queryset.filter(pk__in=_member_tenant_ids(request))

    def has_module_permission(self, request: HttpRequest) -> bool:
        return can_view(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return can_view(request)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is not None and not request.user.is_superuser:
            managing = Membership.objects.filter(tenant=obj, role__in=Membership.MANAGING_ROLES)
            return managing.filter(user_id=request.user.pk or 0).exists()
        return can_manage(request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.is_superuser)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return bool(request.user.is_superuser)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return [] if request.user.is_superuser else ["slug", "is_active"]

    def get_inlines(self, request: HttpRequest, obj: Any) -> Any:
        return self.inlines if request.user.is_superuser else []


@admin.register(ApiToken)
class ApiTokenAdmin(MissingObjectIs404Mixin, admin.ModelAdmin):  # type: ignore[type-arg]
    """Tokens are visible (never their keys) and revocable. New ones are issued here or with
    ``manage.py issue_api_token``; the key is shown once."""

    list_display = ["key_prefix", "name", "user", "tenant", "created_at", "last_used_at", "revoked_at"]
    list_filter = ["revoked_at"]
    search_fields = ["key_prefix", "name", "user__email", "tenant__slug"]
    readonly_fields = ["key_prefix", "created_at", "last_used_at", "revoked_at"]
    actions = ["revoke"]

    def get_queryset(self, request: HttpRequest) -> Any:
        queryset = super().get_queryset(request).select_related("user", "tenant")
        if request.user.is_superuser:
            return queryset
        tenant = getattr(request, "tenant", None)
        return queryset.filter(tenant=tenant) if tenant is not None else queryset.none()

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return ["name", "user"] if not request.user.is_superuser else ["name", "user", "tenant"]
        return ["name", "user", "tenant", *self.readonly_fields]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return [*self.readonly_fields, "user", "tenant"] if obj is not None else []

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        tenant = getattr(request, "tenant", None)
        if db_field.name == "user" and not request.user.is_superuser:
            from django.contrib.auth import get_user_model

            kwargs["queryset"] = get_user_model().objects.filter(memberships__tenant=tenant)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def has_module_permission(self, request: HttpRequest) -> bool:
        return can_manage(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return can_manage(request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return can_manage(request) and (request.user.is_superuser or getattr(request, "tenant", None) is not None)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return can_manage(request)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: ApiToken, form: Any, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        tenant = obj.tenant if request.user.is_superuser and obj.tenant_id else request.tenant  # type: ignore[attr-defined]
        try:
            token, raw_key = services.api_token_issue(user=obj.user, tenant=tenant, name=obj.name)
        except services.ServiceError as error:
            self.message_user(request, str(error), messages.ERROR)
            return
        obj.pk = token.pk
        obj.__dict__.update(token.__dict__)
        self.message_user(
            request,
            _("New token for %(user)s in %(tenant)s — copy it now, it will not be shown again: %(key)s")
            % {"user": token.user, "tenant": token.tenant.slug, "key": raw_key},
            messages.WARNING,
        )

    @admin.action(description=_("Revoke the selected tokens"))
    def revoke(self, request: HttpRequest, queryset: Any) -> None:
        count = 0
        for token in queryset:
            if token.revoked_at is None:
                services.api_token_revoke(token)
                count += 1
        self.message_user(request, _("%(count)d token(s) revoked.") % {"count": count}, messages.SUCCESS)


@admin.register(Heartbeat)
class HeartbeatAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ["name", "beat_at", "worker"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
