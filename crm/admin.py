from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ActionForm
from django.db.models import Count, Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, StreamingHttpResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from crm import csv_io, selectors, services
from crm.models import (
    Appointment,
    BusinessHours,
    Contact,
    ContactAttributeDefinition,
    ContactIdentity,
    FollowUp,
    Label,
    LeadQualification,
    Note,
    Order,
    OrderItem,
    Product,
    ProductDailyStat,
    Segment,
    SentimentMention,
    StockAlert,
    StockAlertQueue,
    StoreConnection,
)
from morvo import tenancy
from morvo.admin_mixins import TenantScopedInline, TenantScopedModelAdmin, TenantScopedModelForm, can_manage


@admin.register(Product)
class ProductAdmin(TenantScopedModelAdmin):
    list_display = ["sku", "name_ar", "name_en", "category", "price", "currency", "stock_quantity", "status"]
    list_filter = ["status", "category"]
    list_editable = ["stock_quantity"]
    search_fields = ["sku", "name_ar", "name_en", "category"]
    ordering = ["name_en"]

    def save_model(self, request: HttpRequest, obj: Product, form: Any, change: bool) -> None:
        """An admin edit that brings stock back notifies the product's stock alerts."""
        super().save_model(request, obj, form, change)
        if change and {"stock_quantity", "status"} & set(form.changed_data):
            services.stock_alerts_schedule_if_restocked(obj.tenant, obj)


class OrderItemInline(TenantScopedInline):
    model = OrderItem
    fields = ["product", "quantity", "unit_price"]


@admin.register(Order)
class OrderAdmin(TenantScopedModelAdmin):
    list_display = ["number", "customer_name", "total", "currency", "status", "payment_method", "created_at"]
    list_filter = ["status", "payment_method", ("created_at", admin.DateFieldListFilter)]
    search_fields = ["number", "customer_name"]
    date_hierarchy = "created_at"
    inlines = [OrderItemInline]
    ordering = ["-created_at"]


@admin.register(ProductDailyStat)
class ProductDailyStatAdmin(TenantScopedModelAdmin):
    list_display = ["date", "product", "views", "units_sold", "revenue"]
    list_filter = [("date", admin.DateFieldListFilter)]
    search_fields = ["product__sku", "product__name_ar", "product__name_en"]
    date_hierarchy = "date"
    list_select_related = ["product"]
    ordering = ["-date"]


@admin.register(SentimentMention)
class SentimentMentionAdmin(TenantScopedModelAdmin):
    list_display = ["platform", "source", "short_text", "score", "label", "created_at"]
    list_filter = ["label", "platform"]
    search_fields = ["text", "source"]
    ordering = ["-created_at"]

    @admin.display(description=_("text"))
    def short_text(self, obj: SentimentMention) -> str:
        return obj.text if len(obj.text) <= 80 else obj.text[:79] + "…"


# --- Contacts ---------------------------------------------------------------------------------


class ContactAdminForm(TenantScopedModelForm):
    """The same checks as the API: phone to E.164, labels cleaned, attributes typed."""

    class Meta:
        model = Contact
        fields = ["name", "email", "phone", "language", "lifecycle_stage", "blocked", "labels", "attributes"]

    def clean_phone(self) -> str:
        try:
            return services.phone_normalize(self.cleaned_data.get("phone", ""))
        except services.CrmError as error:
            raise forms.ValidationError(str(error)) from error

    def clean_labels(self) -> list[str]:
        try:
            return services.label_names_clean(self.cleaned_data.get("labels") or [])
        except services.CrmError as error:
            raise forms.ValidationError(str(error)) from error

    def clean_language(self) -> str:
        language = self.cleaned_data.get("language", "")
        if language not in services.LANGUAGES:
            raise forms.ValidationError(gettext("The language must be ar or en."))
        return language

    def clean_attributes(self) -> dict[str, Any]:
        attributes = self.cleaned_data.get("attributes") or {}
        tenant = self.instance.tenant if self.instance.tenant_id else tenancy.current_tenant()
        if tenant is None:
            return attributes  # type: ignore[no-any-return]
        try:
            cleaned = services.attributes_clean(tenant, attributes)
        except services.CrmError as error:
            raise forms.ValidationError(str(error)) from error
        return {key: value for key, value in cleaned.items() if value is not None}


class ContactIdentityInline(TenantScopedInline):
    model = ContactIdentity
    fields = ["channel_type", "external_id", "created_at"]
    readonly_fields = ["created_at"]


class NoteInline(TenantScopedInline):
    model = Note
    fields = ["content", "author", "created_at"]
    readonly_fields = ["author", "created_at"]


class ContactImportForm(forms.Form):
    file = forms.FileField(label=_("CSV file"))


@admin.register(Contact)
class ContactAdmin(TenantScopedModelAdmin):
    form = ContactAdminForm
    list_display = ["name", "email", "phone", "language", "lifecycle_stage", "lead_score", "blocked", "created_at"]
    list_filter = ["lifecycle_stage", "language", "blocked"]
    search_fields = ["name", "email", "phone"]
    ordering = ["-created_at"]
    inlines = [ContactIdentityInline, NoteInline]
    actions = ["export_csv"]
    change_list_template = "admin/crm/contact/change_list.html"

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        for inline_form in formset.forms:
            if isinstance(inline_form.instance, Note) and not inline_form.instance.author_id:
                inline_form.instance.author = request.user  # type: ignore[assignment]
        super().save_formset(request, form, formset, change)

    def save_model(self, request: HttpRequest, obj: Contact, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        if obj.labels:
            services._labels_ensure(obj.tenant, obj.labels)

    @admin.action(description=_("Export selected contacts as CSV"))
    def export_csv(self, request: HttpRequest, queryset: QuerySet[Contact]) -> StreamingHttpResponse:
        tenant = getattr(request, "tenant", None)
        if tenant is None:
            raise Http404
        contacts = queryset.filter(tenant=tenant).order_by("id")
        response = StreamingHttpResponse(
            csv_io.contacts_export(tenant, contacts), content_type="text/csv; charset=utf-8"
        )
        response["Content-Disposition"] = 'attachment; filename="contacts.csv"'
        return response

    def get_urls(self) -> list[Any]:
        return [
            path("import/", self.admin_site.admin_view(self.import_view), name="crm_contact_import"),
            *super().get_urls(),
        ]

    def import_view(self, request: HttpRequest) -> HttpResponse:
        """Upload a contacts CSV for the selected tenant: all rows or none."""
        tenant = getattr(request, "tenant", None)
        if tenant is None or not can_manage(request):
            raise Http404
        errors: list[str] = []
        form = ContactImportForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            upload = form.cleaned_data["file"]
            if upload.size > services._setting("CRM_CSV_MAX_BYTES", 5 * 1024 * 1024):
                errors = [gettext("The file is too large.")]
            else:
                try:
                    with tenancy.tenant_context(tenant):
                        result = csv_io.contacts_import(tenant, upload.read())
                except csv_io.CsvImportError as error:
                    errors = [
                        gettext("Line %(line)s: %(message)s") % {"line": row["line"], "message": row["message"]}
                        for row in error.errors
                    ]
                else:
                    self.message_user(
                        request,
                        gettext("Imported: %(created)s new, %(updated)s updated.")
                        % {"created": result.created, "updated": result.updated},
                        messages.SUCCESS,
                    )
                    return HttpResponseRedirect(reverse("admin:crm_contact_changelist"))
        context = {
            **self.admin_site.each_context(request),
            "title": gettext("Import contacts"),
            "opts": self.model._meta,
            "form": form,
            "errors": errors,
        }
        return TemplateResponse(request, "admin/crm/contact/import.html", context)


@admin.register(Label)
class LabelAdmin(TenantScopedModelAdmin):
    list_display = ["name", "color", "description", "created_at"]
    search_fields = ["name"]
    ordering = ["name"]

    def save_model(self, request: HttpRequest, obj: Label, form: Any, change: bool) -> None:
        obj.name = (services.label_names_clean([obj.name]) or [obj.name])[0]
        super().save_model(request, obj, form, change)


@admin.register(ContactAttributeDefinition)
class ContactAttributeDefinitionAdmin(TenantScopedModelAdmin):
    list_display = ["key", "label", "type", "created_at"]
    list_filter = ["type"]
    ordering = ["key"]


@admin.register(LeadQualification)
class LeadQualificationAdmin(TenantScopedModelAdmin):
    list_display = ["contact", "score", "source", "created_at"]
    list_filter = ["source"]
    list_select_related = ["contact"]
    search_fields = ["contact__name", "contact__email"]
    ordering = ["-created_at"]
    readonly_fields = ["contact", "scores", "score", "fields", "labels", "source", "created_at"]

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return False  # written by the extraction agent (a history: never edited)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class SegmentAdminForm(TenantScopedModelForm):
    class Meta:
        model = Segment
        fields = ["name", "description", "definition"]

    def clean_definition(self) -> dict[str, Any]:
        tenant = self.instance.tenant if self.instance.tenant_id else tenancy.current_tenant()
        if tenant is None:
            return self.cleaned_data.get("definition") or {}  # type: ignore[no-any-return]
        try:
            return services.segment_definition_clean(tenant, self.cleaned_data.get("definition") or {})
        except services.CrmError as error:
            raise forms.ValidationError(str(error)) from error


@admin.register(Segment)
class SegmentAdmin(TenantScopedModelAdmin):
    form = SegmentAdminForm
    list_display = ["name", "description", "contact_count", "created_at"]
    search_fields = ["name"]
    ordering = ["name"]

    @admin.display(description=_("contacts"))
    def contact_count(self, obj: Segment) -> int:
        return selectors.segment_contacts(obj.tenant, obj).count()


@admin.register(FollowUp)
class FollowUpAdmin(TenantScopedModelAdmin):
    list_display = ["reason", "contact", "assignee", "due_at", "status", "reminded_at"]
    list_filter = ["status", ("due_at", admin.DateFieldListFilter)]
    list_select_related = ["contact", "assignee"]
    search_fields = ["reason", "contact__name"]
    readonly_fields = ["reminded_at", "completed_at"]
    ordering = ["due_at"]
    actions = ["mark_done"]

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "assignee":
            from django.contrib.auth import get_user_model

            tenant = tenancy.current_tenant()
            kwargs["queryset"] = (
                get_user_model().objects.filter(memberships__tenant=tenant)
                if tenant
                else get_user_model().objects.none()
            )
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    @admin.action(description=_("Mark as done"), permissions=["change"])
    def mark_done(self, request: HttpRequest, queryset: QuerySet[FollowUp]) -> None:
        for follow_up in queryset.select_related("tenant"):
            services.follow_up_set_status(follow_up.tenant, follow_up.pk, FollowUp.Status.DONE)


@admin.register(BusinessHours)
class BusinessHoursAdmin(TenantScopedModelAdmin):
    list_display = ["weekday", "opens", "closes"]
    ordering = ["weekday"]


@admin.register(Appointment)
class AppointmentAdmin(TenantScopedModelAdmin):
    list_display = ["service", "contact", "start", "end", "status"]
    list_filter = ["status", ("start", admin.DateFieldListFilter)]
    list_select_related = ["contact"]
    search_fields = ["service", "contact__name"]
    date_hierarchy = "start"
    ordering = ["start"]
    exclude = ["conversation"]


# --- Stock alerts -----------------------------------------------------------------------------


@admin.register(StockAlert)
class StockAlertAdmin(TenantScopedModelAdmin):
    list_display = ["contact", "product", "channel_type", "status", "created_at", "expires_at", "notified_at"]
    list_filter = ["status", "channel_type"]
    list_select_related = ["contact", "product"]
    search_fields = ["contact__name", "contact__email", "product__sku", "product__name_ar", "product__name_en"]
    readonly_fields = ["status", "status_reason", "created_at", "expires_at", "notified_at", "conversation"]
    ordering = ["-created_at"]
    actions = ["cancel"]

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return False  # made by customers' requests (the conversation agent) or the API

    @admin.action(description=_("Cancel selected pending alerts"), permissions=["change"])
    def cancel(self, request: HttpRequest, queryset: QuerySet[StockAlert]) -> None:
        cancelled = 0
        for alert in queryset.filter(status=StockAlert.Status.PENDING).select_related("tenant"):
            services.stock_alert_cancel(alert.tenant, alert.pk)
            cancelled += 1
        self.message_user(request, gettext("%(count)s alerts cancelled.") % {"count": cancelled}, messages.SUCCESS)


class RestockActionForm(ActionForm):
    quantity = forms.IntegerField(label=_("New stock"), min_value=1, max_value=10_000_000, required=False)


@admin.register(StockAlertQueue)
class StockAlertQueueAdmin(TenantScopedModelAdmin):
    """Products with customers waiting, the most awaited first. "Mark in stock and notify all"
    sets the stock (the quantity next to the action) and notifies every pending alert."""

    list_display = ["sku", "name_ar", "name_en", "stock_quantity", "status", "pending_alerts"]
    search_fields = ["sku", "name_ar", "name_en"]
    action_form = RestockActionForm
    actions = ["mark_in_stock_and_notify"]
    ordering = ["id"]

    def get_queryset(self, request: HttpRequest) -> Any:
        pending = Count("stock_alerts", filter=Q(stock_alerts__status=StockAlert.Status.PENDING))
        return super().get_queryset(request).annotate(pending_alerts=pending).filter(pending_alerts__gt=0)

    def get_ordering(self, request: HttpRequest) -> Any:
        return []  # the annotation does not exist yet when the base orders; ordered below

    def get_changelist_instance(self, request: HttpRequest) -> Any:
        changelist = super().get_changelist_instance(request)
        changelist.queryset = changelist.queryset.order_by("-pending_alerts", "id")
        return changelist

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return obj is None and can_manage(request)  # the list and its action; products change elsewhere

    @admin.display(description=_("waiting customers"), ordering="pending_alerts")
    def pending_alerts(self, obj: Any) -> int:
        return int(obj.pending_alerts)

    @admin.action(description=_("Mark in stock and notify all"), permissions=["change"])
    def mark_in_stock_and_notify(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        raw = request.POST.get("quantity") or ""
        try:
            quantity = int(raw) if raw else 0
        except ValueError:
            quantity = 0
        products = list(queryset.select_related("tenant"))
        if any(product.stock_quantity < 1 for product in products) and quantity < 1:
            self.message_user(request, gettext("Enter the new stock (1 or more) next to the action."), messages.ERROR)
            return
        notified = 0
        for product in products:
            target = quantity or product.stock_quantity
            try:
                services.product_mark_in_stock_and_notify(product.tenant, product.pk, target)
            except services.CrmError as error:
                self.message_user(request, str(error), messages.ERROR)
                return
            notified += product.pending_alerts
        self.message_user(
            request,
            gettext("%(products)s products in stock; %(alerts)s waiting customers are being notified.")
            % {"products": len(products), "alerts": notified},
            messages.SUCCESS,
        )


class StoreConnectionForm(TenantScopedModelForm):
    """The secret is never sent back to the browser: left empty on a change, the stored one
    is kept."""

    consumer_secret = forms.CharField(
        label=_("consumer secret"), widget=forms.PasswordInput(render_value=False), max_length=200, required=False
    )

    class Meta:
        model = StoreConnection
        fields = ["name", "kind", "base_url", "consumer_key", "consumer_secret", "is_active"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["consumer_secret"].help_text = _(
                "Stored. Leave empty to keep it; type a new one to replace it."
            )

    def clean_consumer_secret(self) -> str:
        secret = str(self.cleaned_data.get("consumer_secret") or "")
        if secret:
            return secret
        if self.instance.pk:
            return str(self.instance.consumer_secret)
        raise forms.ValidationError(_("This field is required."))


@admin.register(StoreConnection)
class StoreConnectionAdmin(TenantScopedModelAdmin):
    """The tenant's online store (WooCommerce): products, stock and orders are synced every
    15 minutes, or now with the action."""

    form = StoreConnectionForm
    list_display = ["name", "kind", "base_url", "is_active", "last_synced_at", "last_error"]
    readonly_fields = ["last_synced_at", "last_error"]
    ordering = ["name"]
    actions = ["sync_now"]

    @admin.action(description=_("Sync now"), permissions=["change"])
    def sync_now(self, request: HttpRequest, queryset: QuerySet[StoreConnection]) -> None:
        from crm.tasks import store_sync_task

        connections = list(queryset.filter(is_active=True).values_list("tenant_id", "pk"))
        for tenant_id, connection_id in connections:
            store_sync_task.apply_async((tenant_id, connection_id), expires=900)
        self.message_user(
            request, gettext("%(count)s store syncs queued.") % {"count": len(connections)}, messages.SUCCESS
        )
