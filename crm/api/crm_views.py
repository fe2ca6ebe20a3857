"""The CRM REST API: contacts (with identities, labels, notes, CSV import and export), labels,
custom attribute definitions, segments, follow-ups, appointments and stock alerts; and the
product CSV import.

Views parse, call ``crm.services`` / ``crm.selectors`` and serialize. Lookups go through
``get_queryset`` (the token's tenant), so another tenant's row is the same 404 as a missing
one, and the lookup comes before any validation.
"""

from __future__ import annotations

from typing import Any

import django_filters
from django.conf import settings
from django.db.models import QuerySet
from django.http import StreamingHttpResponse
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, mixins, parsers, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from crm import csv_io, selectors, services
from crm.api.serializers import (
    AppointmentSerializer,
    ContactAttributeDefinitionSerializer,
    ContactIdentityCreateSerializer,
    ContactIdentitySerializer,
    ContactSerializer,
    FollowUpSerializer,
    ImportResultSerializer,
    LabelSerializer,
    LeadQualificationSerializer,
    NoteSerializer,
    SegmentSerializer,
    SlotsSerializer,
    StockAlertNotifySerializer,
    StockAlertQueueSerializer,
    StockAlertSerializer,
    TagSerializer,
)
from crm.models import (
    Appointment,
    Contact,
    ContactAttributeDefinition,
    FollowUp,
    Label,
    LeadQualification,
    Note,
    Product,
    Segment,
    StockAlert,
)
from morvo.api.views import TenantAPIView, TenantModelViewSet
from morvo.models import Membership

# Agents work with customers (contacts, notes, follow-ups, bookings, alerts) like owners and admins.
CRM_WRITE_ROLES = frozenset({Membership.Role.OWNER, Membership.Role.ADMIN, Membership.Role.AGENT})
INVALID = OpenApiResponse(description="Invalid input, in the API's error format.")
NOT_FOUND = OpenApiResponse(description="Not found (or another tenant's).")

# Which request field a refused change is about, by CrmError code.
ERROR_FIELDS = {
    "invalid_phone": "phone",
    "invalid_language": "language",
    "invalid_labels": "labels",
    "invalid_attributes": "attributes",
    "unknown_attribute": "attributes",
    "invalid_attribute": "attributes",
    "invalid_lifecycle_stage": "lifecycle_stage",
    "invalid_email": "email",
    "invalid_definition": "definition",
    "invalid_name": "name",
    "duplicate_name": "name",
    "invalid_reason": "reason",
    "invalid_assignee": "assignee",
    "invalid_due_at": "due_at",
    "invalid_service": "service",
    "invalid_start": "start",
    "past_start": "start",
    "closed": "start",
    "slot_taken": "start",
    "invalid_duration": "duration_minutes",
    "empty_content": "content",
    "content_too_long": "content",
    "invalid_identity": "external_id",
    "identity_taken": "external_id",
    "invalid_context": "context",
    "invalid_channel": "channel_type",
    "not_pending": "status",
    "invalid_status": "status",
}


def crm_error(error: services.CrmError) -> exceptions.ValidationError:
    field = ERROR_FIELDS.get(error.code)
    if field is None:
        return exceptions.ValidationError(str(error), code=error.code)
    return exceptions.ValidationError({field: [str(error)]}, code=error.code)


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The file is too large."
    default_code = "payload_too_large"


class CsvParser(parsers.BaseParser):
    media_type = "text/csv"

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        return stream.read()


def csv_upload(request: Request) -> bytes:
    """The CSV of an import: a ``text/csv`` body or the ``file`` of a multipart form."""
    limit = settings.CRM_CSV_MAX_BYTES
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > limit:
        raise PayloadTooLarge
    data = request.data
    if isinstance(data, bytes):
        content = data
    else:
        upload = request.FILES.get("file") if hasattr(request, "FILES") else None
        if upload is None:
            raise exceptions.ValidationError({"file": [_("Send the CSV as text/csv or as the file of a form.")]})
        if upload.size > limit:
            raise PayloadTooLarge
        content = upload.read()
    if len(content) > limit:
        raise PayloadTooLarge
    if not content.strip():
        raise exceptions.ValidationError({"file": [_("The file is empty.")]})
    return content


def csv_refused(error: csv_io.CsvImportError) -> exceptions.ValidationError:
    lines = [_("Line %(line)s: %(message)s") % {"line": row["line"], "message": row["message"]} for row in error.errors]
    return exceptions.ValidationError({"file": lines}, code="invalid_csv")


CSV_BODY = {
    "text/csv": {"type": "string"},
    "multipart/form-data": {"type": "object", "properties": {"file": {"type": "string", "format": "binary"}}},
}


def _status_of(request: Request) -> str:
    """The ``status`` of a PATCH that may change nothing else (any other field is a 400)."""
    data = request.data
    unknown = sorted(set(data) - {"status"})
    if unknown:
        raise exceptions.ValidationError({name: ["This field cannot be written."] for name in unknown})
    return str(data.get("status", "")) if isinstance(data, dict) else ""


class CrmViewSet(TenantModelViewSet):
    write_roles = CRM_WRITE_ROLES


class ContactFilter(django_filters.FilterSet):
    label = django_filters.CharFilter(method="filter_label")
    blocked = django_filters.TypedChoiceFilter(
        choices=[("true", "true"), ("false", "false")], coerce=lambda value: value == "true"
    )
    min_score = django_filters.NumberFilter(field_name="lead_score", lookup_expr="gte")
    channel_type = django_filters.CharFilter(field_name="identities__channel_type", distinct=True)

    class Meta:
        model = Contact
        fields = ["lifecycle_stage", "language", "email", "phone", "blocked"]

    def filter_label(self, queryset: QuerySet[Contact], name: str, value: str) -> QuerySet[Contact]:
        return queryset.filter(labels__contains=[value.strip().lower()])


class ContactViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, mixins.UpdateModelMixin, CrmViewSet
):
    """The tenant's contacts. ``PATCH`` changes any of the writable fields (attributes merge;
    ``null`` removes one). Sub-resources: identities, tags, notes, qualifications, CSV."""

    model = Contact
    serializer_class = ContactSerializer
    filterset_class = ContactFilter
    search_fields = ["name", "email", "phone"]
    ordering_fields = ["created_at", "name", "lead_score", "last_activity_at"]
    http_method_names = ["get", "post", "patch", "head", "options"]

    def get_queryset(self) -> Any:
        queryset = super().get_queryset()
        if getattr(self, "swagger_fake_view", False):
            return queryset
        return queryset.prefetch_related("identities")

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = ContactSerializer(data=request.data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        try:
            contact = services.contact_create(self.tenant, **serializer.validated_data)
        except services.CrmError as error:
            raise crm_error(error) from error
        return Response(ContactSerializer(self.get_queryset().get(pk=contact.pk)).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        contact = self.get_object()
        serializer = ContactSerializer(contact, data=request.data, partial=True, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        try:
            services.contact_update(self.tenant, contact.pk, **serializer.validated_data)
        except services.CrmError as error:
            raise crm_error(error) from error
        return Response(ContactSerializer(self.get_queryset().get(pk=contact.pk)).data)

    @extend_schema(
        summary="Link a channel identity",
        request=ContactIdentityCreateSerializer,
        responses={201: ContactIdentitySerializer, 400: INVALID, 404: NOT_FOUND},
    )
    @action(detail=True, methods=["post"], filter_backends=[], pagination_class=None)
    def identities(self, request: Request, pk: str | None = None) -> Response:
        contact = self.get_object()
        serializer = ContactIdentityCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            identity = services.contact_identity_add(self.tenant, contact, **serializer.validated_data)
        except services.CrmError as error:
            raise crm_error(error) from error
        return Response(ContactIdentitySerializer(identity).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Add labels", request=TagSerializer, responses={200: ContactSerializer, 400: INVALID, 404: NOT_FOUND}
    )
    @action(detail=True, methods=["post"], filter_backends=[], pagination_class=None)
    def tag(self, request: Request, pk: str | None = None) -> Response:
        contact = self.get_object()
        serializer = TagSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            services.contact_tag(self.tenant, contact, serializer.validated_data["labels"])
        except services.CrmError as error:
            raise crm_error(error) from error
        return Response(ContactSerializer(self.get_queryset().get(pk=contact.pk)).data)

    @extend_schema(
        summary="Remove labels", request=TagSerializer, responses={200: ContactSerializer, 400: INVALID, 404: NOT_FOUND}
    )
    @action(detail=True, methods=["post"], filter_backends=[], pagination_class=None)
    def untag(self, request: Request, pk: str | None = None) -> Response:
        contact = self.get_object()
        serializer = TagSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        services.contact_untag(self.tenant, contact, serializer.validated_data["labels"])
        return Response(ContactSerializer(self.get_queryset().get(pk=contact.pk)).data)

    @extend_schema(methods=["get"], summary="The contact's notes", responses={200: NoteSerializer(many=True)})
    @extend_schema(
        methods=["post"],
        summary="Add a note",
        request=NoteSerializer,
        responses={201: NoteSerializer, 400: INVALID, 404: NOT_FOUND},
    )
    @action(detail=True, methods=["get", "post"], filter_backends=[])
    def notes(self, request: Request, pk: str | None = None) -> Response:
        contact = self.get_object()
        if request.method == "GET":
            notes = Note.objects.for_tenant(self.tenant).filter(contact=contact).select_related("author")
            page = self.paginate_queryset(notes)
            return self.get_paginated_response(NoteSerializer(page, many=True).data)
        serializer = NoteSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            note = services.note_add(
                self.tenant, contact, content=serializer.validated_data["content"], author=request.user
            )
        except services.CrmError as error:
            raise crm_error(error) from error
        return Response(NoteSerializer(note).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="The contact's lead qualifications, newest first",
        responses={200: LeadQualificationSerializer(many=True)},
    )
    @action(detail=True, methods=["get"], filter_backends=[])
    def qualifications(self, request: Request, pk: str | None = None) -> Response:
        contact = self.get_object()
        rows = LeadQualification.objects.for_tenant(self.tenant).filter(contact=contact)
        page = self.paginate_queryset(rows)
        return self.get_paginated_response(LeadQualificationSerializer(page, many=True).data)

    @extend_schema(
        summary="Import contacts from CSV (all or nothing)",
        description="Columns: name, email, phone, language, lifecycle_stage, blocked, labels (separated by ;), "
        "attribute:<key>. A row whose e-mail or phone matches a contact updates it. One bad row (reported "
        "with its line number) and nothing is imported.",
        request=CSV_BODY,
        responses={200: ImportResultSerializer, 400: INVALID, 413: OpenApiResponse(description="Too large.")},
    )
    @action(
        detail=False,
        methods=["post"],
        url_path="import",
        parser_classes=[CsvParser, parsers.MultiPartParser],
        filter_backends=[],
        pagination_class=None,
    )
    def import_csv(self, request: Request) -> Response:
        membership = getattr(request._request, "membership", None)
        if membership is None or membership.role not in Membership.MANAGING_ROLES:
            raise exceptions.PermissionDenied("Your role in this tenant cannot change this.")
        try:
            result = csv_io.contacts_import(self.tenant, csv_upload(request))
        except csv_io.CsvImportError as error:
            raise csv_refused(error) from error
        return Response({"created": result.created, "updated": result.updated})

    @extend_schema(
        summary="Export contacts as CSV (the import's format; the list's filters apply)",
        responses={(200, "text/csv"): OpenApiTypes.STR},
    )
    @action(detail=False, methods=["get"], url_path="export", pagination_class=None)
    def export_csv(self, request: Request) -> StreamingHttpResponse:
        contacts = self.filter_queryset(self.get_queryset()).order_by("id")
        response = StreamingHttpResponse(
            csv_io.contacts_export(self.tenant, contacts.iterator(2000)), content_type="text/csv; charset=utf-8"
        )
        response["Content-Disposition"] = 'attachment; filename="contacts.csv"'
        return response


class LabelViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    TenantModelViewSet,
):
    """Labels shared by contacts and conversations (keyed by name)."""

    model = Label
    serializer_class = LabelSerializer
    search_fields = ["name"]
    ordering_fields = ["name", "created_at"]
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def perform_create(self, serializer: Any) -> None:
        names = services.label_names_clean([serializer.validated_data.get("name", "")])
        if not names:
            raise exceptions.ValidationError({"name": [_("A label needs a name.")]})
        if Label.objects.for_tenant(self.tenant).filter(name=names[0]).exists():
            raise exceptions.ValidationError({"name": [_("This label exists.")]})
        serializer.save(tenant=self.tenant, name=names[0])

    def perform_update(self, serializer: Any) -> None:
        if "name" in serializer.validated_data:
            raise exceptions.ValidationError({"name": [_("A label is renamed by making a new one.")]})
        serializer.save()


class ContactAttributeDefinitionViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.DestroyModelMixin,
    TenantModelViewSet,
):
    """The tenant's typed custom attributes of contacts."""

    model = ContactAttributeDefinition
    serializer_class = ContactAttributeDefinitionSerializer
    http_method_names = ["get", "post", "delete", "head", "options"]

    def perform_create(self, serializer: Any) -> None:
        data = serializer.validated_data
        if ContactAttributeDefinition.objects.for_tenant(self.tenant).filter(key=data["key"]).exists():
            raise exceptions.ValidationError({"key": [_("This attribute exists.")]})
        if data.get("type") == ContactAttributeDefinition.Type.CHOICE and not data.get("choices"):
            raise exceptions.ValidationError({"choices": [_("A choice attribute needs choices.")]})
        serializer.save(tenant=self.tenant)


class SegmentViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    TenantModelViewSet,
):
    """Saved filters over contacts, evaluated in SQL."""

    model = Segment
    serializer_class = SegmentSerializer
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        segment = self.get_object()
        data = SegmentSerializer(segment).data
        data["contact_count"] = selectors.segment_contacts(self.tenant, segment).count()
        return Response(data)

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = SegmentSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        try:
            segment = services.segment_save(
                self.tenant,
                name=data.get("name", ""),
                description=data.get("description", ""),
                definition=data.get("definition", {}),
            )
        except services.CrmError as error:
            raise crm_error(error) from error
        return Response(SegmentSerializer(segment).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        segment = self.get_object()
        serializer = SegmentSerializer(segment, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        try:
            segment = services.segment_save(
                self.tenant,
                segment_id=segment.pk,
                name=data.get("name", segment.name),
                description=data.get("description", segment.description),
                definition=data.get("definition", segment.definition),
            )
        except services.CrmError as error:
            raise crm_error(error) from error
        return Response(SegmentSerializer(segment).data)

    @extend_schema(summary="The segment's contacts", responses={200: ContactSerializer(many=True)})
    @action(detail=True, methods=["get"], filter_backends=[])
    def contacts(self, request: Request, pk: str | None = None) -> Response:
        segment = self.get_object()
        contacts = selectors.segment_contacts(self.tenant, segment).prefetch_related("identities").order_by("id")
        page = self.paginate_queryset(contacts)
        return self.get_paginated_response(ContactSerializer(page, many=True).data)


class FollowUpFilter(django_filters.FilterSet):
    contact = django_filters.NumberFilter(field_name="contact_id")
    assignee = django_filters.NumberFilter(field_name="assignee_id")
    due_before = django_filters.IsoDateTimeFilter(field_name="due_at", lookup_expr="lt")

    class Meta:
        model = FollowUp
        fields = ["status"]


class FollowUpViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, mixins.UpdateModelMixin, CrmViewSet
):
    """Follow-ups for staff; beat reminds the assignee (or the managers) when one is due.
    ``PATCH`` changes the status (done, cancelled)."""

    model = FollowUp
    serializer_class = FollowUpSerializer
    filterset_class = FollowUpFilter
    ordering_fields = ["due_at", "created_at"]
    http_method_names = ["get", "post", "patch", "head", "options"]

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = FollowUpSerializer(data=request.data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        try:
            follow_up = services.follow_up_schedule(
                self.tenant,
                contact=data["contact"],
                due_at=data["due_at"],
                reason=data["reason"],
                conversation=data.get("conversation"),
                assignee=data.get("assignee"),
            )
        except services.CrmError as error:
            raise crm_error(error) from error
        return Response(FollowUpSerializer(follow_up).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=FollowUpSerializer, responses={200: FollowUpSerializer, 400: INVALID, 404: NOT_FOUND})
    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        follow_up = self.get_object()
        try:
            follow_up = services.follow_up_set_status(self.tenant, follow_up.pk, _status_of(request))
        except services.CrmError as error:
            raise crm_error(error) from error
        return Response(FollowUpSerializer(follow_up).data)


class AppointmentFilter(django_filters.FilterSet):
    start_after = django_filters.IsoDateTimeFilter(field_name="start", lookup_expr="gte")
    start_before = django_filters.IsoDateTimeFilter(field_name="start", lookup_expr="lt")
    contact = django_filters.NumberFilter(field_name="contact_id")

    class Meta:
        model = Appointment
        fields = ["status", "service"]


class AppointmentViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, mixins.UpdateModelMixin, CrmViewSet
):
    """Bookings. ``POST`` books (refused for a past time, outside opening hours, or a taken
    slot); ``PATCH`` changes the status; ``GET slots?date=`` lists free start times."""

    model = Appointment
    serializer_class = AppointmentSerializer
    filterset_class = AppointmentFilter
    ordering_fields = ["start", "created_at"]
    http_method_names = ["get", "post", "patch", "head", "options"]

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = AppointmentSerializer(data=request.data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        try:
            appointment = services.appointment_book(
                self.tenant,
                service=data["service"],
                start=data["start"],
                contact=data.get("contact"),
                conversation=data.get("conversation"),
                duration_minutes=data.get("duration_minutes", 60),
                notes=data.get("notes", ""),
            )
        except services.CrmError as error:
            raise crm_error(error) from error
        return Response(AppointmentSerializer(appointment).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=AppointmentSerializer, responses={200: AppointmentSerializer, 400: INVALID, 404: NOT_FOUND})
    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        appointment = self.get_object()
        try:
            appointment = services.appointment_set_status(self.tenant, appointment.pk, _status_of(request))
        except services.CrmError as error:
            raise crm_error(error) from error
        return Response(AppointmentSerializer(appointment).data)

    @extend_schema(
        summary="Free start times on a day",
        parameters=[
            OpenApiParameter("date", OpenApiTypes.DATE, required=True),
            OpenApiParameter("duration_minutes", int),
        ],
        responses={200: SlotsSerializer, 400: INVALID},
    )
    @action(detail=False, methods=["get"], filter_backends=[], pagination_class=None)
    def slots(self, request: Request) -> Response:
        from rest_framework import serializers as drf_serializers

        class Query(drf_serializers.Serializer[Any]):
            date = drf_serializers.DateField()
            duration_minutes = drf_serializers.IntegerField(min_value=5, max_value=480, default=60)

        query = Query(data=request.query_params)
        query.is_valid(raise_exception=True)
        day = query.validated_data["date"]
        slots = selectors.appointment_slots_free(
            self.tenant, day, duration_minutes=query.validated_data["duration_minutes"]
        )
        return Response(SlotsSerializer({"date": day, "slots": slots}).data)


# Foreign keys are filtered by id (a choice filter's queryset would be built with no tenant).
class StockAlertFilter(django_filters.FilterSet):
    product = django_filters.NumberFilter(field_name="product_id")
    contact = django_filters.NumberFilter(field_name="contact_id")

    class Meta:
        model = StockAlert
        fields = ["status", "channel_type"]


class StockAlertViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, CrmViewSet):
    """ "Tell me when it's back" alerts. ``POST`` creates one (or returns the contact's pending
    alert for the product, 200); ``cancel`` cancels a pending one; ``queue`` counts pending
    alerts per product; ``notify`` notifies a product's alerts now (it must be in stock)."""

    model = StockAlert
    serializer_class = StockAlertSerializer
    filterset_class = StockAlertFilter
    ordering_fields = ["created_at", "notified_at", "expires_at"]
    http_method_names = ["get", "post", "head", "options"]

    def get_queryset(self) -> Any:
        queryset = super().get_queryset()
        if getattr(self, "swagger_fake_view", False):
            return queryset
        return queryset.select_related("contact", "product")

    @extend_schema(responses={201: StockAlertSerializer, 200: StockAlertSerializer, 400: INVALID})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = StockAlertSerializer(data=request.data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        try:
            alert, created = services.stock_alert_create(
                self.tenant,
                contact=data["contact"],
                product=data["product"],
                conversation=data.get("conversation"),
                channel_type=data.get("channel_type", "web"),
                message_text=data.get("message_text", ""),
                context=data.get("context"),
            )
        except services.CrmError as error:
            raise crm_error(error) from error
        return Response(
            StockAlertSerializer(self.get_queryset().get(pk=alert.pk)).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )

    @extend_schema(
        summary="Cancel a pending alert",
        request=None,
        responses={200: StockAlertSerializer, 400: INVALID, 404: NOT_FOUND},
    )
    @action(detail=True, methods=["post"], filter_backends=[], pagination_class=None)
    def cancel(self, request: Request, pk: str | None = None) -> Response:
        alert = self.get_object()
        try:
            services.stock_alert_cancel(self.tenant, alert.pk)
        except services.CrmError as error:
            raise crm_error(error) from error
        return Response(StockAlertSerializer(self.get_queryset().get(pk=alert.pk)).data)

    @extend_schema(
        summary="Pending alerts per product, the most awaited first",
        responses={200: StockAlertQueueSerializer(many=True)},
    )
    @action(detail=False, methods=["get"], filter_backends=[], pagination_class=None)
    def queue(self, request: Request) -> Response:
        return Response(StockAlertQueueSerializer(selectors.stock_alert_queue(self.tenant), many=True).data)

    @extend_schema(
        summary="Notify a product's pending alerts now (in the worker)",
        request=StockAlertNotifySerializer,
        responses={202: OpenApiResponse(description="Queued."), 400: INVALID},
    )
    @action(detail=False, methods=["post"], filter_backends=[], pagination_class=None)
    def notify(self, request: Request) -> Response:
        serializer = StockAlertNotifySerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        product = Product.objects.for_tenant(self.tenant).filter(pk=serializer.validated_data["product"]).first()
        if product is None:
            raise exceptions.ValidationError({"product": [_("Unknown product.")]})
        if not (product.in_stock and product.status == Product.Status.ACTIVE):
            raise exceptions.ValidationError({"product": [_("The product is not in stock.")]})
        services.stock_alerts_schedule_if_restocked(self.tenant, product)
        return Response({"queued": True}, status=status.HTTP_202_ACCEPTED)


class ProductImportView(TenantAPIView):
    """Create or update products by SKU from CSV (all or nothing); stock that comes back
    notifies the products' stock alerts."""

    parser_classes = [CsvParser, parsers.MultiPartParser]
    serializer_class = ImportResultSerializer

    @extend_schema(
        summary="Import products from CSV (all or nothing)",
        description="Columns: sku (needed), name_ar, name_en, description, category, price, currency, "
        "stock_quantity, status. New products need name_ar and price.",
        request=CSV_BODY,
        responses={200: ImportResultSerializer, 400: INVALID, 413: OpenApiResponse(description="Too large.")},
    )
    def post(self, request: Request) -> Response:
        try:
            result = csv_io.products_import(self.tenant, csv_upload(request))
        except csv_io.CsvImportError as error:
            raise csv_refused(error) from error
        return Response({"created": result.created, "updated": result.updated})
