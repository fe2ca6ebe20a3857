"""Writes of the store data and the CRM. Tenant first; writes in transactions; side effects
(task enqueues, outbound messages, e-mails) after commit."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

import phonenumbers
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from crm.models import (
    Appointment,
    Contact,
    ContactAttributeDefinition,
    ContactIdentity,
    FollowUp,
    Label,
    LeadQualification,
    Note,
    Product,
    Segment,
    StockAlert,
)
from morvo import tenancy
from morvo.models import Tenant
from morvo.text import to_ascii_digits

if TYPE_CHECKING:
    from conversations.models import Conversation

logger = logging.getLogger(__name__)

LANGUAGES = ("ar", "en")
# Channels a customer writes from (conversations.models.Inbox.ChannelType, without the companion).
CUSTOMER_CHANNELS = ("web", "whatsapp", "telegram", "instagram", "email", "sms", "chatwoot", "api")


class CrmError(ValueError):
    """Refused input. The message is safe to show to the person (or the customer) who asked;
    ``code`` is stable for programs."""

    def __init__(self, message: str, code: str = "invalid") -> None:
        super().__init__(message)
        self.code = code


def _setting(name: str, default: Any) -> Any:
    return getattr(settings, name, default)


# --- Store ------------------------------------------------------------------------------------


@transaction.atomic
def product_update(tenant: Tenant, product_id: int, **fields: Any) -> Product:
    """Change a product's stock, price or status. The row is locked so two concurrent stock
    updates cannot interleave. Stock coming back notifies the product's pending stock alerts
    (after commit)."""
    product = Product.objects.for_tenant(tenant).select_for_update().get(pk=product_id)
    was_available = product.in_stock and product.status == Product.Status.ACTIVE
    for name, value in fields.items():
        setattr(product, name, value)
    with tenancy.tenant_context(tenant):  # the uniqueness checks query the tenant's products
        product.full_clean()
    product.save(update_fields=[*fields, "updated_at"])
    if not was_available:
        stock_alerts_schedule_if_restocked(tenant, product)
    return product


def stock_alerts_schedule_if_restocked(tenant: Tenant, product: Product) -> bool:
    """When ``product`` is available (active and in stock) and has pending alerts, notify them
    in the worker after commit. Safe to call on every stock change: notifying claims each
    alert once. A product with many customers waiting gets several notify jobs (at most
    ``CRM_STOCK_ALERT_PARALLEL_JOBS``), which share its alerts batch by batch."""
    if not (product.in_stock and product.status == Product.Status.ACTIVE):
        return False
    pending = StockAlert.objects.for_tenant(tenant).filter(product=product, status=StockAlert.Status.PENDING).count()
    if not pending:
        return False
    batch = _setting("CRM_STOCK_ALERT_BATCH_SIZE", 200)
    jobs = max(1, min(_setting("CRM_STOCK_ALERT_PARALLEL_JOBS", 4), -(-pending // batch)))
    tenant_id, product_id = tenant.pk, product.pk

    def enqueue() -> None:
        from crm.tasks import stock_alert_notify_task

        for _job in range(jobs):
            stock_alert_notify_task.apply_async((tenant_id, product_id), expires=3600)

    transaction.on_commit(enqueue)
    return True


# --- Contacts -------------------------------------------------------------------------------


def phone_normalize(phone: str, region: str | None = None) -> str:
    """``phone`` in E.164 (``+966501234567``); national numbers are read in ``region``
    (``CRM_DEFAULT_PHONE_REGION``, Saudi Arabia by default). Empty stays empty."""
    phone = to_ascii_digits(phone or "").strip()
    if not phone:
        return ""
    if phone.startswith("00"):
        phone = "+" + phone[2:]
    try:
        parsed = phonenumbers.parse(phone, region or _setting("CRM_DEFAULT_PHONE_REGION", "SA"))
    except phonenumbers.NumberParseException as error:
        raise CrmError(_("%(phone)s is not a phone number.") % {"phone": phone}, "invalid_phone") from error
    if not phonenumbers.is_valid_number(parsed):
        raise CrmError(_("%(phone)s is not a valid phone number.") % {"phone": phone}, "invalid_phone")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def label_names_clean(labels: Any) -> list[str]:
    """Label names as stored everywhere (contacts and conversations): trimmed, lower-case, at
    most 50 characters, without duplicates, in the given order."""
    if not isinstance(labels, list | tuple) or not all(isinstance(label, str) for label in labels):
        raise CrmError(_("Labels are a list of words."), "invalid_labels")
    return list(dict.fromkeys(label.strip().lower()[:50] for label in labels if label.strip()))


def attributes_clean(tenant: Tenant, attributes: Any) -> dict[str, Any]:
    """Custom attributes checked against the tenant's typed definitions: an unknown key or a
    value of the wrong type is refused. ``None`` removes an attribute."""
    if not isinstance(attributes, dict):
        raise CrmError(_("Custom attributes are an object of key and value."), "invalid_attributes")
    definitions = {
        definition.key: definition
        for definition in ContactAttributeDefinition.objects.for_tenant(tenant).filter(key__in=list(attributes))
    }
    cleaned: dict[str, Any] = {}
    for key, value in attributes.items():
        definition = definitions.get(key)
        if definition is None:
            raise CrmError(_("Unknown custom attribute: %(key)s.") % {"key": key}, "unknown_attribute")
        cleaned[key] = None if value is None else _attribute_value(definition, value)
    return cleaned


def _attribute_value(definition: ContactAttributeDefinition, value: Any) -> Any:
    kind = definition.type
    wrong = CrmError(
        _("%(key)s must be a %(type)s.") % {"key": definition.key, "type": definition.get_type_display()},
        "invalid_attribute",
    )
    if kind == ContactAttributeDefinition.Type.TEXT:
        if not isinstance(value, str) or len(value) > 500:
            raise wrong
        return value.strip()
    if kind == ContactAttributeDefinition.Type.NUMBER:
        if isinstance(value, bool):
            raise wrong
        try:
            number = Decimal(to_ascii_digits(str(value)).strip())
        except InvalidOperation as error:
            raise wrong from error
        if not number.is_finite():
            raise wrong
        return int(number) if number == number.to_integral_value() else float(number)
    if kind == ContactAttributeDefinition.Type.BOOLEAN:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false", "yes", "no", "1", "0"):
            return value.strip().lower() in ("true", "yes", "1")
        raise wrong
    if kind == ContactAttributeDefinition.Type.DATE:
        try:
            return date.fromisoformat(to_ascii_digits(str(value)).strip()).isoformat()
        except ValueError as error:
            raise wrong from error
    if kind == ContactAttributeDefinition.Type.CHOICE:
        if value not in definition.choices:
            raise CrmError(
                _("%(key)s must be one of: %(choices)s.")
                % {"key": definition.key, "choices": ", ".join(definition.choices)},
                "invalid_attribute",
            )
        return value
    raise wrong  # pragma: no cover - every type is handled above


def _language_clean(language: str) -> str:
    language = (language or "").strip().lower()[:2]
    return language if language in LANGUAGES else ""


CONTACT_FIELDS = ("name", "email", "phone", "language", "attributes", "labels", "lifecycle_stage", "blocked")


def _contact_fields_clean(tenant: Tenant, fields: dict[str, Any], contact: Contact | None = None) -> dict[str, Any]:
    unknown = set(fields) - set(CONTACT_FIELDS)
    if unknown:
        raise CrmError(_("Cannot change: %(fields)s") % {"fields": ", ".join(sorted(unknown))}, "invalid_field")
    cleaned = dict(fields)
    if "name" in cleaned:
        cleaned["name"] = str(cleaned["name"] or "").strip()[:200]
    if "email" in cleaned:
        cleaned["email"] = str(cleaned["email"] or "").strip().lower()
    if "phone" in cleaned:
        cleaned["phone"] = phone_normalize(str(cleaned["phone"] or ""))
    if "language" in cleaned:
        language = _language_clean(str(cleaned["language"] or ""))
        if not language:
            raise CrmError(_("The language must be ar or en."), "invalid_language")
        cleaned["language"] = language
    if "labels" in cleaned:
        cleaned["labels"] = label_names_clean(cleaned["labels"])
    if "attributes" in cleaned:
        merged = dict(contact.attributes) if contact is not None else {}
        for key, value in attributes_clean(tenant, cleaned["attributes"]).items():
            if value is None:
                merged.pop(key, None)
            else:
                merged[key] = value
        cleaned["attributes"] = merged
    if "lifecycle_stage" in cleaned and cleaned["lifecycle_stage"] not in Contact.LifecycleStage.values:
        raise CrmError(_("Unknown lifecycle stage."), "invalid_lifecycle_stage")
    if "blocked" in cleaned and not isinstance(cleaned["blocked"], bool):
        raise CrmError(_("blocked is true or false."), "invalid_blocked")
    return cleaned


def _validate(instance: Any, exclude: Iterable[str] = ()) -> None:
    try:
        instance.full_clean(exclude=[*exclude, "tenant"], validate_unique=False, validate_constraints=False)
    except ValidationError as error:
        field, messages = next(iter(error.message_dict.items()))
        raise CrmError(f"{field}: {' '.join(messages)}", f"invalid_{field}") from error


@transaction.atomic
def contact_create(tenant: Tenant, **fields: Any) -> Contact:
    cleaned = _contact_fields_clean(tenant, fields)
    if cleaned.get("labels"):
        _labels_ensure(tenant, cleaned["labels"])
    contact = Contact(tenant=tenant, **cleaned)
    _validate(contact)
    contact.save()
    return contact


@transaction.atomic
def contact_update(tenant: Tenant, contact_id: int, **fields: Any) -> Contact:
    contact = Contact.objects.for_tenant(tenant).select_for_update().get(pk=contact_id)
    cleaned = _contact_fields_clean(tenant, fields, contact)
    if cleaned.get("labels"):
        _labels_ensure(tenant, cleaned["labels"])
    for name, value in cleaned.items():
        setattr(contact, name, value)
    _validate(contact)
    contact.save(update_fields=[*cleaned, "updated_at"])
    return contact


@transaction.atomic
def contact_upsert(tenant: Tenant, *, name: str = "", email: str = "") -> Contact:
    """The tenant's contact with this e-mail (case-insensitive), created when there is none;
    a given name replaces the stored one. Without an e-mail a new contact is created.

    Precondition: ``name`` and ``email`` are already validated (a form did it).
    """
    name, email = name.strip()[:200], email.strip()
    contact = None
    if email:
        contact = (
            Contact.objects.for_tenant(tenant).select_for_update().filter(email__iexact=email).order_by("id").first()
        )
    if contact is None:
        return Contact.objects.for_tenant(tenant).create(tenant=tenant, name=name, email=email)
    if name and contact.name != name:
        contact.name = name
        contact.save(update_fields=["name"])
    return contact


def contact_resolve(
    tenant: Tenant,
    *,
    channel_type: str,
    external_id: str,
    name: str = "",
    phone: str = "",
    email: str = "",
    language: str = "",
) -> Contact:
    """The contact behind a sender on a channel: found through its identity, else linked to
    the contact with the same phone number (or e-mail) and given the identity, else created
    with it. Blank fields of a found contact are filled in from what the channel tells.

    Race-safe: two webhooks of the same new sender at once make one contact (the identity is
    unique per tenant, the loser reads the winner's). A phone that cannot be parsed is not
    stored (the message still arrives).
    """
    channel_type, external_id = (channel_type or "").strip()[:12], (external_id or "").strip()[:200]
    if not channel_type or not external_id:
        raise CrmError(_("A channel and an external id are needed."), "invalid_identity")
    try:
        phone = phone_normalize(phone)
    except CrmError:
        logger.info("contact_resolve: tenant %s: unparseable phone from %s dropped", tenant.pk, channel_type)
        phone = ""
    email = (email or "").strip().lower()[:254]
    if email and "@" not in email:
        email = ""
    known = {"name": (name or "").strip()[:200], "phone": phone, "email": email, "language": _language_clean(language)}

    identity = _identity_find(tenant, channel_type, external_id)
    if identity is not None:
        _contact_touch(tenant, identity.contact)
        return _contact_fill_blanks(tenant, identity.contact, known)
    try:
        with transaction.atomic():
            contact = _contact_matching(tenant, phone=phone, email=email)
            if contact is None:
                contact = Contact.objects.for_tenant(tenant).create(
                    tenant=tenant,
                    name=known["name"],
                    phone=phone,
                    email=email,
                    language=known["language"] or tenant.default_language,
                    lifecycle_stage=Contact.LifecycleStage.LEAD,
                    last_activity_at=timezone.now(),
                )
            ContactIdentity.objects.for_tenant(tenant).create(
                tenant=tenant, contact=contact, channel_type=channel_type, external_id=external_id
            )
    except IntegrityError:
        identity = _identity_find(tenant, channel_type, external_id)
        if identity is None:
            raise
        return identity.contact
    return _contact_fill_blanks(tenant, contact, known)


def _contact_touch(tenant: Tenant, contact: Contact) -> None:
    """Record activity (segments filter on it), at most once a minute per contact."""
    now = timezone.now()
    if contact.last_activity_at is None or now - contact.last_activity_at > timedelta(minutes=1):
        Contact.objects.for_tenant(tenant).filter(pk=contact.pk).update(last_activity_at=now)
        contact.last_activity_at = now


def _identity_find(tenant: Tenant, channel_type: str, external_id: str) -> ContactIdentity | None:
    return (
        ContactIdentity.objects.for_tenant(tenant)
        .select_related("contact")
        .filter(channel_type=channel_type, external_id=external_id)
        .first()
    )


def _contact_matching(tenant: Tenant, *, phone: str, email: str) -> Contact | None:
    contacts = Contact.objects.for_tenant(tenant).order_by("id")
    if phone:
        found = contacts.filter(phone=phone).first()
        if found is not None:
            return found
    if email:
        return contacts.filter(email__iexact=email).first()
    return None


def _contact_fill_blanks(tenant: Tenant, contact: Contact, known: dict[str, str]) -> Contact:
    changes = {field: value for field, value in known.items() if value and not getattr(contact, field)}
    if changes:
        # Conditional on the field still being blank: a concurrent edit by staff wins.
        for field, value in changes.items():
            Contact.objects.for_tenant(tenant).filter(pk=contact.pk, **{field: ""}).update(**{field: value})
        contact.refresh_from_db()
    return contact


def contact_identity_add(tenant: Tenant, contact: Contact, *, channel_type: str, external_id: str) -> ContactIdentity:
    """Link one more channel identity to ``contact``; an identity another contact already has
    is refused (merge the contacts instead)."""
    if contact.tenant_id != tenant.pk:
        raise Contact.DoesNotExist
    channel_type, external_id = (channel_type or "").strip()[:12], (external_id or "").strip()[:200]
    if not channel_type or not external_id:
        raise CrmError(_("A channel and an external id are needed."), "invalid_identity")
    existing = _identity_find(tenant, channel_type, external_id)
    if existing is not None:
        if existing.contact_id == contact.pk:
            return existing
        raise CrmError(_("This identity belongs to another contact."), "identity_taken")
    try:
        with transaction.atomic():
            return ContactIdentity.objects.for_tenant(tenant).create(
                tenant=tenant, contact=contact, channel_type=channel_type, external_id=external_id
            )
    except IntegrityError as error:
        raise CrmError(_("This identity belongs to another contact."), "identity_taken") from error


def contact_for_conversation(tenant: Tenant, conversation: Conversation) -> Contact | None:
    """The conversation's contact. A customer conversation without one (a web visitor who
    left no details, a conversation an integrator opened) gets one, linked to it; a companion
    conversation (staff talking to Morvo) has no customer: None."""
    from conversations.models import Conversation as ConversationModel

    if conversation.tenant_id != tenant.pk:
        raise ConversationModel.DoesNotExist
    if conversation.kind == ConversationModel.Kind.COMPANION:
        return None
    if conversation.contact_id is not None:
        return Contact.objects.for_tenant(tenant).get(pk=conversation.contact_id)
    if conversation.visitor_id:
        channel_type, external_id = "web", conversation.visitor_id
    else:
        channel_type, external_id = conversation.inbox.channel_type, f"conversation:{conversation.pk}"
    contact = contact_resolve(
        tenant, channel_type=channel_type, external_id=external_id, language=conversation.language
    )
    linked = (
        ConversationModel.objects.for_tenant(tenant)
        .filter(pk=conversation.pk, contact__isnull=True)
        .update(contact=contact)
    )
    if not linked:  # linked meanwhile by someone else: theirs wins
        conversation.refresh_from_db(fields=["contact"])
        return Contact.objects.for_tenant(tenant).get(pk=conversation.contact_id)
    conversation.contact = contact
    return contact


def _labels_ensure(tenant: Tenant, names: list[str]) -> list[Label]:
    Label.objects.bulk_create(
        [Label(tenant=tenant, name=name) for name in names], ignore_conflicts=True, unique_fields=["tenant", "name"]
    )
    by_name = {label.name: label for label in Label.objects.for_tenant(tenant).filter(name__in=names)}
    return [by_name[name] for name in names]


def contact_tag(tenant: Tenant, contact: Contact, labels: list[str]) -> list[Label]:
    """Add labels to a contact (creating the tenant's Label rows as needed); returns the
    labels given, as rows. Tagging twice changes nothing."""
    if contact.tenant_id != tenant.pk:
        raise Contact.DoesNotExist
    names = label_names_clean(labels)
    if not names:
        return []
    with transaction.atomic():
        rows = _labels_ensure(tenant, names)
        locked = Contact.objects.for_tenant(tenant).select_for_update().get(pk=contact.pk)
        merged = list(dict.fromkeys([*locked.labels, *names]))
        if merged != locked.labels:
            Contact.objects.for_tenant(tenant).filter(pk=contact.pk).update(labels=merged, updated_at=timezone.now())
        contact.labels = merged
    return rows


def contact_untag(tenant: Tenant, contact: Contact, labels: list[str]) -> list[str]:
    if contact.tenant_id != tenant.pk:
        raise Contact.DoesNotExist
    names = set(label_names_clean(labels))
    with transaction.atomic():
        locked = Contact.objects.for_tenant(tenant).select_for_update().get(pk=contact.pk)
        kept = [label for label in locked.labels if label not in names]
        Contact.objects.for_tenant(tenant).filter(pk=contact.pk).update(labels=kept, updated_at=timezone.now())
    contact.labels = kept
    return kept


def note_add(tenant: Tenant, contact: Contact, *, content: str, author: Any = None) -> Note:
    if contact.tenant_id != tenant.pk:
        raise Contact.DoesNotExist
    content = (content or "").strip() if isinstance(content, str) else ""
    if not content:
        raise CrmError(_("The note is empty."), "empty_content")
    if len(content) > 10_000:
        raise CrmError(_("The note is too long."), "content_too_long")
    return Note.objects.for_tenant(tenant).create(tenant=tenant, contact=contact, content=content, author=author)


def _score_overall(scores: dict[str, int]) -> int:
    if "overall" in scores:
        return scores["overall"]
    return round(sum(scores.values()) / len(scores))


def lead_qualification_record(
    tenant: Tenant,
    contact: Contact,
    *,
    scores: dict[str, int],
    fields: dict[str, Any],
    labels: list[str],
    source: str = "extraction",
    skip_unchanged: bool = False,
) -> LeadQualification:
    """Record one qualification (a new row: earlier ones stay as the history). Scores are
    integers 0-100; the contact's ``lead_score`` becomes ``scores["overall"]`` or their mean.
    The labels are added to the contact. A contact with a score of 60 or more that is still a
    lead becomes a qualified lead. With ``skip_unchanged``, a reading the same as the contact's
    latest one (same source, scores, labels and values of these fields) is not recorded again:
    the latest is returned, so the history keeps changes, not repeats."""
    if contact.tenant_id != tenant.pk:
        raise Contact.DoesNotExist
    if not isinstance(scores, dict) or not scores:
        raise CrmError(_("Scores are needed."), "invalid_scores")
    for key, value in scores.items():
        if not isinstance(key, str) or isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 100:
            raise CrmError(_("Each score is a whole number from 0 to 100."), "invalid_scores")
    if not isinstance(fields, dict):
        raise CrmError(_("Fields are an object."), "invalid_fields")
    names = label_names_clean(labels)
    source = (source or "extraction")[:30]
    overall = _score_overall(scores)
    with transaction.atomic():
        if skip_unchanged:
            latest = (
                LeadQualification.objects.for_tenant(tenant)
                .filter(contact=contact)
                .order_by("-created_at", "-id")
                .first()
            )
            if latest is not None and _same_reading(latest, scores, fields, names, source):
                return latest
        qualification = LeadQualification.objects.for_tenant(tenant).create(
            tenant=tenant,
            contact=contact,
            scores=scores,
            score=overall,
            fields=fields,
            labels=names,
            source=source,
        )
        changes: dict[str, Any] = {"lead_score": overall, "updated_at": timezone.now()}
        if overall >= 60 and contact.lifecycle_stage in (Contact.LifecycleStage.VISITOR, Contact.LifecycleStage.LEAD):
            changes["lifecycle_stage"] = Contact.LifecycleStage.QUALIFIED
        Contact.objects.for_tenant(tenant).filter(pk=contact.pk).update(**changes)
        for name, value in changes.items():
            setattr(contact, name, value)
        if names:
            contact_tag(tenant, contact, names)
    return qualification


def _same_reading(
    latest: LeadQualification, scores: dict[str, int], fields: dict[str, Any], labels: list[str], source: str
) -> bool:
    stored_fields = {name: latest.fields.get(name) for name in fields}
    # Stored JSON turns tuples into lists and Decimals into strings: compare as JSON.
    return (
        latest.source == source
        and latest.scores == scores
        and json.dumps(stored_fields, sort_keys=True, default=str) == json.dumps(fields, sort_keys=True, default=str)
        and list(latest.labels) == labels
    )


# --- Segments -------------------------------------------------------------------------------

SEGMENT_LIST_KEYS = ("labels_all", "labels_any", "labels_none", "lifecycle_stages", "languages", "channel_types")
SEGMENT_INT_KEYS = ("min_score", "max_score", "active_within_days", "inactive_for_days")


def segment_definition_clean(tenant: Tenant, definition: Any) -> dict[str, Any]:
    if not isinstance(definition, dict):
        raise CrmError(_("A segment definition is an object."), "invalid_definition")
    unknown = set(definition) - {*SEGMENT_LIST_KEYS, *SEGMENT_INT_KEYS, "attributes", "blocked"}
    if unknown:
        raise CrmError(
            _("Unknown segment conditions: %(keys)s") % {"keys": ", ".join(sorted(unknown))}, "invalid_definition"
        )
    cleaned: dict[str, Any] = {}
    for key in SEGMENT_LIST_KEYS:
        if key in definition:
            values = definition[key]
            if not isinstance(values, list) or not all(isinstance(value, str) for value in values):
                raise CrmError(_("%(key)s is a list of words.") % {"key": key}, "invalid_definition")
            cleaned[key] = label_names_clean(values) if key.startswith("labels") else values
    if "lifecycle_stages" in cleaned and set(cleaned["lifecycle_stages"]) - set(Contact.LifecycleStage.values):
        raise CrmError(_("Unknown lifecycle stage."), "invalid_definition")
    for key in SEGMENT_INT_KEYS:
        if key in definition:
            value = definition[key]
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise CrmError(_("%(key)s is a whole number of 0 or more.") % {"key": key}, "invalid_definition")
            cleaned[key] = value
    if "attributes" in definition:
        cleaned["attributes"] = attributes_clean(tenant, definition["attributes"])
    if "blocked" in definition:
        if not isinstance(definition["blocked"], bool):
            raise CrmError(_("blocked is true or false."), "invalid_definition")
        cleaned["blocked"] = definition["blocked"]
    return cleaned


def segment_save(
    tenant: Tenant, *, name: str, definition: Any, description: str = "", segment_id: int | None = None
) -> Segment:
    name = (name or "").strip()[:120]
    if not name:
        raise CrmError(_("A segment needs a name."), "invalid_name")
    cleaned = segment_definition_clean(tenant, definition)
    with transaction.atomic():
        clash = Segment.objects.for_tenant(tenant).filter(name=name)
        if segment_id is not None:
            clash = clash.exclude(pk=segment_id)
        if clash.exists():
            raise CrmError(_("A segment with this name exists."), "duplicate_name")
        if segment_id is None:
            return Segment.objects.for_tenant(tenant).create(
                tenant=tenant, name=name, description=description[:300], definition=cleaned
            )
        segment = Segment.objects.for_tenant(tenant).select_for_update().get(pk=segment_id)
        segment.name, segment.description, segment.definition = name, description[:300], cleaned
        segment.save(update_fields=["name", "description", "definition"])
        return segment


# --- Follow-ups -----------------------------------------------------------------------------


def follow_up_schedule(
    tenant: Tenant,
    *,
    contact: Contact,
    due_at: datetime,
    reason: str,
    conversation: Conversation | None = None,
    assignee: Any = None,
) -> FollowUp:
    """A follow-up for staff; beat reminds the assignee (or the tenant's managers) when due."""
    if contact.tenant_id != tenant.pk or (conversation is not None and conversation.tenant_id != tenant.pk):
        raise Contact.DoesNotExist
    if timezone.is_naive(due_at):
        raise CrmError(_("The due time needs a time zone."), "invalid_due_at")
    reason = (reason or "").strip()[:300]
    if not reason:
        raise CrmError(_("A follow-up needs a reason."), "invalid_reason")
    if assignee is not None:
        from morvo.models import Membership

        if not Membership.objects.filter(tenant=tenant, user=assignee).exists():
            raise CrmError(_("The assignee is not a member of this business."), "invalid_assignee")
    return FollowUp.objects.for_tenant(tenant).create(
        tenant=tenant, contact=contact, conversation=conversation, due_at=due_at, reason=reason, assignee=assignee
    )


def follow_up_set_status(tenant: Tenant, follow_up_id: int, status: str) -> FollowUp:
    if status not in FollowUp.Status.values:
        raise CrmError(_("Unknown status."), "invalid_status")
    with transaction.atomic():
        follow_up = FollowUp.objects.for_tenant(tenant).select_for_update().get(pk=follow_up_id)
        follow_up.status = status
        follow_up.completed_at = timezone.now() if status == FollowUp.Status.DONE else None
        follow_up.save(update_fields=["status", "completed_at"])
    return follow_up


def follow_up_reminders_send(tenant: Tenant, *, now: datetime | None = None, limit: int = 500) -> int:
    """E-mail staff about follow-ups that are due: the assignee, or the tenant's owners and
    admins. Each follow-up is reminded once (claimed by a conditional update)."""
    from morvo.models import Membership

    now = now or timezone.now()
    due = list(
        FollowUp.objects.for_tenant(tenant)
        .filter(status=FollowUp.Status.PENDING, reminded_at__isnull=True, due_at__lte=now)
        .select_related("contact", "assignee")
        .order_by("due_at", "id")[:limit]
    )
    managers: list[str] | None = None
    sent = 0
    for follow_up in due:
        with transaction.atomic():
            claimed = (
                FollowUp.objects.for_tenant(tenant)
                .filter(pk=follow_up.pk, reminded_at__isnull=True, status=FollowUp.Status.PENDING)
                .update(reminded_at=now)
            )
            if not claimed:
                continue
            if follow_up.assignee is not None and follow_up.assignee.email:
                recipients = [follow_up.assignee.email]
            else:
                if managers is None:
                    managers = list(
                        Membership.objects.filter(tenant=tenant, role__in=Membership.MANAGING_ROLES)
                        .exclude(user__email="")
                        .values_list("user__email", flat=True)
                    )
                recipients = managers
            if not recipients:
                continue
            with translation.override(tenant.default_language):
                subject = _("Follow-up due: %(contact)s") % {"contact": follow_up.contact}
                body = _("Follow up with %(contact)s: %(reason)s (due %(due)s).") % {
                    "contact": follow_up.contact,
                    "reason": follow_up.reason,
                    "due": timezone.localtime(follow_up.due_at, _tenant_zone(tenant)).strftime("%Y-%m-%d %H:%M"),
                }
            transaction.on_commit(_mail_sender(subject, body, list(recipients)))
            sent += 1
    return sent


def _mail_sender(subject: str, body: str, recipients: list[str]) -> Any:
    def send() -> None:
        from django.core.mail import send_mail

        send_mail(subject, body, None, recipients, fail_silently=True)

    return send


def _tenant_zone(tenant: Tenant) -> Any:
    import zoneinfo

    return zoneinfo.ZoneInfo(tenant.timezone or "Asia/Riyadh")


# --- Appointments ---------------------------------------------------------------------------


def appointment_book(
    tenant: Tenant,
    *,
    service: str,
    start: datetime,
    contact: Contact | None = None,
    conversation: Conversation | None = None,
    duration_minutes: int = 60,
    notes: str = "",
) -> Appointment:
    """Book an appointment. Refused (:class:`CrmError`, a message the customer may read) for a
    start in the past, outside business hours, or overlapping another active appointment of
    the tenant (one calendar per tenant). Two bookings of the same slot at once: one wins."""
    from crm.selectors import business_hours_for

    service = (service or "").strip()[:120]
    if not service:
        raise CrmError(_("Which service would you like to book?"), "invalid_service")
    if timezone.is_naive(start):
        raise CrmError(_("The appointment time needs a time zone."), "invalid_start")
    if not isinstance(duration_minutes, int) or not 5 <= duration_minutes <= 8 * 60:
        raise CrmError(_("The duration must be between 5 minutes and 8 hours."), "invalid_duration")
    if start <= timezone.now():
        raise CrmError(_("That time has already passed. Please choose a time in the future."), "past_start")
    for related in (contact, conversation):
        if related is not None and related.tenant_id != tenant.pk:
            raise CrmError(_("Unknown contact or conversation."), "not_found")
    end = start + timedelta(minutes=duration_minutes)
    local_start, local_end = (
        timezone.localtime(start, _tenant_zone(tenant)),
        timezone.localtime(end, _tenant_zone(tenant)),
    )
    hours = business_hours_for(tenant, local_start.date())
    if (
        hours is None
        or local_end.date() != local_start.date()
        or not (hours[0] <= local_start.time() and local_end.time() <= hours[1])
    ):
        raise CrmError(_("We are closed at that time. Please choose a time within our opening hours."), "closed")
    with transaction.atomic():
        # One calendar per tenant: bookings of a tenant are serialised by an advisory lock,
        # so two customers taking the same slot at once cannot both get it.
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [7301, tenant.pk])
        clash = Appointment.objects.for_tenant(tenant).filter(
            status__in=Appointment.ACTIVE_STATUSES, start__lt=end, end__gt=start
        )
        if clash.exists():
            raise CrmError(_("That time is already taken. Please choose another time."), "slot_taken")
        return Appointment.objects.for_tenant(tenant).create(
            tenant=tenant,
            service=service,
            start=start,
            end=end,
            contact=contact,
            conversation=conversation,
            notes=(notes or "")[:2000],
        )


def appointment_slots_free(tenant: Tenant, day: date, service: str = "") -> list[datetime]:
    """Free start times on ``day`` (see crm.selectors.appointment_slots_free)."""
    from crm.selectors import appointment_slots_free as slots

    return slots(tenant, day, service)


def appointment_set_status(tenant: Tenant, appointment_id: int, status: str) -> Appointment:
    if status not in Appointment.Status.values:
        raise CrmError(_("Unknown status."), "invalid_status")
    with transaction.atomic():
        appointment = Appointment.objects.for_tenant(tenant).select_for_update().get(pk=appointment_id)
        appointment.status = status
        appointment.save(update_fields=["status"])
    return appointment


APPOINTMENT_REMINDERS = {"24h": timedelta(hours=24), "1h": timedelta(hours=1)}


def appointment_reminders_send(tenant: Tenant, *, now: datetime | None = None, limit: int = 500) -> dict[str, int]:
    """Remind contacts of their appointments 24 hours and 1 hour before, on their channel,
    exactly once each (claimed by a conditional update in the same transaction as the
    message). A reminder is skipped when the appointment was booked after its time came
    (booked 3 hours ahead: no 24-hour reminder), and the 24-hour one once the 1-hour one is due."""
    now = now or timezone.now()
    counts = {"24h": 0, "1h": 0, "skipped": 0}
    for kind, before in APPOINTMENT_REMINDERS.items():
        field = f"reminded_{kind}_at"
        window_end = now + before
        candidates = Appointment.objects.for_tenant(tenant).filter(
            status__in=Appointment.ACTIVE_STATUSES, start__gt=now, start__lte=window_end, **{f"{field}__isnull": True}
        )
        if kind == "24h":
            candidates = candidates.filter(start__gt=now + APPOINTMENT_REMINDERS["1h"])
        for appointment in candidates.select_related("contact", "conversation").order_by("start", "id")[:limit]:
            if appointment.created_at > appointment.start - before:
                Appointment.objects.for_tenant(tenant).filter(pk=appointment.pk).update(**{field: now})
                counts["skipped"] += 1
                continue
            with transaction.atomic():
                claimed = (
                    Appointment.objects.for_tenant(tenant)
                    .filter(pk=appointment.pk, **{f"{field}__isnull": True})
                    .update(**{field: now})
                )
                if not claimed:
                    continue
                if _appointment_remind(tenant, appointment, kind):
                    counts[kind] += 1
                else:
                    counts["skipped"] += 1
    return counts


def _appointment_remind(tenant: Tenant, appointment: Appointment, kind: str) -> bool:
    contact = appointment.contact
    conversation = appointment.conversation
    if contact is not None and contact.blocked:
        return False
    if conversation is None and contact is not None:
        conversation = _conversation_for_contact(tenant, contact, channel_type="")
    if conversation is None:
        logger.info("appointment %s of tenant %s: no conversation to remind on", appointment.pk, tenant.pk)
        return False
    language = _contact_language(tenant, contact, conversation)
    local = timezone.localtime(appointment.start, _tenant_zone(tenant))
    with translation.override(language):
        values = {"service": appointment.service, "time": local.strftime("%H:%M"), "date": local.strftime("%Y-%m-%d")}
        if kind == "24h":
            content = _("Reminder: your %(service)s appointment is on %(date)s at %(time)s.") % values
        else:
            content = _("Reminder: your %(service)s appointment starts in an hour, at %(time)s.") % values
    _send_outbound(
        tenant,
        conversation,
        content,
        metadata={"kind": "appointment_reminder", "appointment_id": appointment.pk, "reminder": kind},
        idempotency_key=f"appointment:{appointment.pk}:{kind}",
    )
    return True


# --- Stock alerts ---------------------------------------------------------------------------


def stock_alert_create(
    tenant: Tenant,
    *,
    contact: Contact,
    product: Product,
    conversation: Conversation | None = None,
    channel_type: str = "web",
    message_text: str = "",
    context: dict[str, Any] | None = None,
) -> tuple[StockAlert, bool]:
    """A pending alert for ``contact`` on ``product``: (alert, created). The contact's pending
    alert for the product, when there is one, is returned instead (one per contact and
    product, race-safe). Expires after ``CRM_STOCK_ALERT_EXPIRY_DAYS`` days."""
    for related in (contact, product, conversation):
        if related is not None and related.tenant_id != tenant.pk:
            raise CrmError(_("Unknown contact, product or conversation."), "not_found")
    if context is not None and not isinstance(context, dict):
        raise CrmError(_("The context is an object."), "invalid_context")
    if conversation is not None:
        channel_type = conversation.inbox.channel_type  # the original channel is the conversation's
    if channel_type not in CUSTOMER_CHANNELS:
        raise CrmError(_("Unknown channel: %(channel)s.") % {"channel": channel_type}, "invalid_channel")
    pending = StockAlert.objects.for_tenant(tenant).filter(
        contact=contact, product=product, status=StockAlert.Status.PENDING
    )
    existing = pending.first()
    if existing is not None:
        return existing, False
    now = timezone.now()
    try:
        with transaction.atomic():
            alert = StockAlert.objects.for_tenant(tenant).create(
                tenant=tenant,
                contact=contact,
                product=product,
                conversation=conversation,
                channel_type=channel_type,
                message_text=(message_text or "")[:4000],
                context=context or {},
                created_at=now,
                expires_at=now + timedelta(days=_setting("CRM_STOCK_ALERT_EXPIRY_DAYS", 30)),
            )
    except IntegrityError:
        existing = pending.first()
        if existing is None:
            raise
        return existing, False
    return alert, True


def stock_alert_cancel(tenant: Tenant, alert_id: int) -> StockAlert:
    with transaction.atomic():
        alert = StockAlert.objects.for_tenant(tenant).select_for_update().get(pk=alert_id)
        if alert.status != StockAlert.Status.PENDING:
            raise CrmError(_("Only a pending alert can be cancelled."), "not_pending")
        alert.status = StockAlert.Status.CANCELLED
        alert.status_reason = "cancelled"
        alert.save(update_fields=["status", "status_reason"])
    return alert


def _stock_alert_message(tenant: Tenant, alert: StockAlert, product: Product, language: str) -> str:
    first_name = (alert.contact.name or "").split(" ")[0]
    with translation.override(language):
        product_name = product.name_ar if language == "ar" or not product.name_en else product.name_en
        values = {
            "name": first_name,
            "product": product_name,
            "price": f"{product.price:,.2f}",
            "currency": product.currency,
        }
        if first_name:
            return (
                _("Good news, %(name)s! %(product)s is back in stock (%(price)s %(currency)s). Reply here to order it.")
                % values
            )
        return _("Good news! %(product)s is back in stock (%(price)s %(currency)s). Reply here to order it.") % values


def _contact_language(tenant: Tenant, contact: Contact | None, conversation: Conversation | None) -> str:
    for language in (
        getattr(contact, "language", ""),
        getattr(conversation, "language", ""),
        tenant.default_language,
    ):
        if language in LANGUAGES:
            return language
    return "ar"


def _conversation_for_contact(tenant: Tenant, contact: Contact, channel_type: str) -> Conversation | None:
    """The contact's latest customer conversation (on ``channel_type`` when given). When it
    has none on a messaging channel where the business has an active inbox and the contact an
    identity, a conversation is started there; otherwise None (a web visitor who is gone
    cannot be reached: the web chat has no address to write to)."""
    from conversations.models import Conversation as ConversationModel
    from conversations.models import Inbox

    conversations = ConversationModel.objects.for_tenant(tenant).filter(
        contact=contact, kind=ConversationModel.Kind.CUSTOMER
    )
    if channel_type:
        conversations = conversations.filter(inbox__channel_type=channel_type)
    found = conversations.select_related("inbox").order_by("-last_activity_at", "-id").first()
    if found is not None or not channel_type or channel_type in ("web", "companion", "api"):
        return found
    if not ContactIdentity.objects.for_tenant(tenant).filter(contact=contact, channel_type=channel_type).exists():
        return None
    inbox = Inbox.objects.for_tenant(tenant).filter(channel_type=channel_type, is_active=True).order_by("id").first()
    if inbox is None:
        return None
    from conversations.services import conversation_start_customer

    return conversation_start_customer(tenant, inbox, contact=contact, language=contact.language)


def _send_outbound(
    tenant: Tenant, conversation: Conversation, content: str, *, metadata: dict[str, Any], idempotency_key: str
) -> Any:
    """Send ``content`` to the customer on the conversation's channel (the channels' outbound
    service, imported lazily). Its delivery (socket push, provider outbox) happens after
    commit, so a rolled-back claim sends nothing; the key makes a repeat a no-op."""
    from conversations.services import message_send_outbound

    return message_send_outbound(tenant, conversation, content, metadata=metadata, idempotency_key=idempotency_key)


def stock_alerts_notify(tenant: Tenant, product_id: int, *, batch_size: int | None = None) -> dict[str, int]:
    """Notify every pending alert of the product, if it is available (active, in stock), each
    exactly once: alerts are claimed in batches with ``SELECT … FOR UPDATE SKIP LOCKED`` and
    each alert's message is written in the same transaction that marks it notified, so two
    workers (or two triggers) racing over the product share the work and never both notify
    one alert; the message's idempotency key (``stock-alert:<id>``) is a second guard.

    An alert without a conversation goes to the contact's latest conversation on its channel,
    or a new one on a messaging channel (see :func:`_conversation_for_contact`); when there is
    none it becomes *undeliverable* with the reason. Expired alerts become *expired*, alerts
    of blocked contacts *cancelled*. A failing send leaves the alert pending for the next
    check. Returns counts."""
    batch_size = batch_size or _setting("CRM_STOCK_ALERT_BATCH_SIZE", 200)
    counts = {"notified": 0, "expired": 0, "undeliverable": 0, "cancelled": 0, "failed": 0}
    product = Product.objects.for_tenant(tenant).filter(pk=product_id).first()
    if product is None or not (product.in_stock and product.status == Product.Status.ACTIVE):
        return counts
    failed_ids: list[int] = []
    while True:
        with transaction.atomic():
            alerts = list(
                StockAlert.objects.for_tenant(tenant)
                .filter(product_id=product_id, status=StockAlert.Status.PENDING)
                .exclude(pk__in=failed_ids)
                .select_related("contact", "conversation", "conversation__inbox")
                .defer("conversation__inbox__config")  # its secrets are not needed: not decrypted
                .select_for_update(skip_locked=True, of=("self",))
                .order_by("id")[:batch_size]
            )
            if not alerts:
                break
            now = timezone.now()
            for alert, outcome in _stock_alerts_deliver(tenant, alerts, product, now):
                counts[outcome] += 1
                if outcome == "failed":
                    failed_ids.append(alert.pk)
            _stock_alerts_save_outcomes(
                tenant, [alert for alert in alerts if alert.status != StockAlert.Status.PENDING]
            )
    if any(counts.values()):
        logger.info("stock alerts of product %s (tenant %s): %s", product_id, tenant.pk, counts)
    return counts


def _stock_alerts_save_outcomes(tenant: Tenant, alerts: list[StockAlert]) -> None:
    """Write the batch's outcomes in one UPDATE … FROM (VALUES …) (a bulk_update's CASE per
    column costs far more on a batch of hundreds)."""
    if not alerts:
        return
    rows = []
    params: list[Any] = []
    for alert in alerts:
        rows.append("(%s, %s, %s::timestamptz, %s::bigint, %s, %s::bigint)")
        params += [alert.pk, alert.status, alert.notified_at, alert.notification_message_id, alert.status_reason[:200]]
        params.append(alert.conversation_id)
    table = StockAlert._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} AS alert SET status = v.status, notified_at = v.notified_at, "  # noqa: S608
            "notification_message_id = v.message_id, status_reason = v.reason, "
            "conversation_id = COALESCE(v.conversation_id, alert.conversation_id) "
            f"FROM (VALUES {', '.join(rows)}) AS v(id, status, notified_at, message_id, reason, conversation_id) "
            "WHERE alert.id = v.id AND alert.tenant_id = %s",
            [*params, tenant.pk],
        )


def _stock_alerts_deliver(
    tenant: Tenant, alerts: list[StockAlert], product: Product, now: datetime
) -> list[tuple[StockAlert, str]]:
    """Each alert's outcome (``notified``, ``expired``, ``cancelled``, ``undeliverable`` or
    ``failed``), with the notifications of the batch sent together (see
    ``conversations.services.messages_send_outbound``). When that refuses the batch, each is
    sent on its own, so one bad message fails only its alert."""
    from conversations.services import Outbound, messages_send_outbound

    outcomes: list[tuple[StockAlert, str]] = []
    sends: list[tuple[StockAlert, Outbound]] = []
    for alert in alerts:
        prepared = _stock_alert_prepare(tenant, alert, product, now)
        if isinstance(prepared, str):
            outcomes.append((alert, prepared))
        else:
            sends.append((alert, prepared))
    try:
        messages = messages_send_outbound(tenant, [item for _, item in sends])
    except Exception:
        logger.warning("stock alerts of product %s (tenant %s): sent one by one", product.pk, tenant.pk, exc_info=True)
        for alert, item in sends:
            outcomes.append((alert, _stock_alert_send(tenant, alert, item, now)))
        return outcomes
    for (alert, _item), message in zip(sends, messages, strict=True):
        _stock_alert_notified(alert, message, now)
        outcomes.append((alert, "notified"))
    return outcomes


def _stock_alert_prepare(tenant: Tenant, alert: StockAlert, product: Product, now: datetime) -> Any:
    """The alert's notification to send, or its outcome when there is none to send."""
    from conversations.services import Outbound

    if alert.expires_at <= now:
        alert.status, alert.status_reason = StockAlert.Status.EXPIRED, "expired"
        return "expired"
    contact = alert.contact
    if contact.blocked:
        alert.status, alert.status_reason = StockAlert.Status.CANCELLED, "contact blocked"
        return "cancelled"
    conversation = alert.conversation or _conversation_for_contact(tenant, contact, alert.channel_type)
    if conversation is None:
        alert.status = StockAlert.Status.UNDELIVERABLE
        alert.status_reason = f"no conversation on {alert.channel_type} to write to"
        logger.info("stock alert %s of tenant %s: %s", alert.pk, tenant.pk, alert.status_reason)
        return "undeliverable"
    alert.conversation = conversation
    language = _contact_language(tenant, contact, conversation)
    return Outbound(
        conversation=conversation,
        content=_stock_alert_message(tenant, alert, product, language),
        idempotency_key=f"stock-alert:{alert.pk}",
        metadata={"kind": "stock_alert", "stock_alert_id": alert.pk, "product_id": product.pk, "language": language},
    )


def _stock_alert_send(tenant: Tenant, alert: StockAlert, item: Any, now: datetime) -> str:
    # No savepoint of its own (two round trips per alert): message_send_outbound writes in
    # its own atomic block, so a send that fails leaves the batch's transaction usable.
    try:
        message = _send_outbound(
            tenant, item.conversation, item.content, metadata=item.metadata, idempotency_key=item.idempotency_key
        )
    except Exception:
        logger.exception("stock alert %s of tenant %s: sending failed; it stays pending", alert.pk, tenant.pk)
        return "failed"
    _stock_alert_notified(alert, message, now)
    return "notified"


def _stock_alert_notified(alert: StockAlert, message: Any, now: datetime) -> None:
    alert.status, alert.notified_at, alert.status_reason = StockAlert.Status.NOTIFIED, now, ""
    alert.notification_message_id = getattr(message, "pk", None)


def stock_alerts_expire(tenant: Tenant, *, now: datetime | None = None) -> int:
    now = now or timezone.now()
    return int(
        StockAlert.objects.for_tenant(tenant)
        .filter(status=StockAlert.Status.PENDING, expires_at__lte=now)
        .update(status=StockAlert.Status.EXPIRED, status_reason="expired")
    )


def product_mark_in_stock_and_notify(tenant: Tenant, product_id: int, quantity: int) -> Product:
    """The admin's "mark in stock and notify all": set the stock (at least 1) and make the
    product active; its pending alerts are notified after commit."""
    if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 1:
        raise CrmError(_("The stock must be at least 1."), "invalid_quantity")
    with transaction.atomic():
        before = Product.objects.for_tenant(tenant).get(pk=product_id)
        product = product_update(tenant, product_id, stock_quantity=quantity, status=Product.Status.ACTIVE)
        if before.in_stock and before.status == Product.Status.ACTIVE:  # else product_update scheduled it
            stock_alerts_schedule_if_restocked(tenant, product)
    return product
