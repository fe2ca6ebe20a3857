"""CSV import and export of contacts, and the product CSV import.

Imports are all or nothing: every row is checked first, and one bad row (reported with its
line number, the header being line 1) means nothing is written.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import transaction
from django.utils.translation import gettext as _

from crm import services
from crm.models import Contact, ContactAttributeDefinition, Product
from morvo.models import Tenant
from morvo.text import to_ascii_digits

CONTACT_COLUMNS = ["name", "email", "phone", "language", "lifecycle_stage", "blocked", "labels"]
ATTRIBUTE_PREFIX = "attribute:"
PRODUCT_COLUMNS = [
    "sku",
    "name_ar",
    "name_en",
    "description",
    "category",
    "price",
    "currency",
    "stock_quantity",
    "status",
]
MAX_ROWS = 50_000


class CsvImportError(ValueError):
    """The file was refused; ``errors`` lists ``{"line": n, "message": …}`` (line 1 is the header)."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__(errors[0]["message"] if errors else "invalid CSV")
        self.errors = errors


@dataclass
class ImportResult:
    created: int = 0
    updated: int = 0
    ids: list[int] = field(default_factory=list)


def _decode(content: bytes | str) -> str:
    if isinstance(content, str):
        return content
    try:
        return content.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise CsvImportError([{"line": 0, "message": _("The file is not UTF-8 text.")}]) from error


def _rows(content: bytes | str, required: Iterable[str]) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    text = _decode(content)
    reader = csv.DictReader(io.StringIO(text))
    try:
        header = [name.strip() for name in (reader.fieldnames or [])]
        reader.fieldnames = header
        rows = []
        for row in reader:
            if None in row:
                raise CsvImportError(
                    [{"line": reader.line_num, "message": _("This row has more cells than the header.")}]
                )
            if not any((value or "").strip() for value in row.values()):
                continue
            rows.append((reader.line_num, {key: (value or "").strip() for key, value in row.items()}))
            if len(rows) > MAX_ROWS:
                raise CsvImportError([{"line": reader.line_num, "message": _("Too many rows.")}])
    except csv.Error as error:
        raise CsvImportError(
            [{"line": reader.line_num, "message": _("Unreadable CSV: %(error)s") % {"error": error}}]
        ) from error
    missing = [name for name in required if name not in header]
    if not header or missing:
        raise CsvImportError(
            [
                {
                    "line": 1,
                    "message": _("Missing columns: %(columns)s") % {"columns": ", ".join(missing or list(required))},
                }
            ]
        )
    return header, rows


def _boolean(value: str) -> bool | None:
    lowered = value.strip().lower()
    if lowered in ("", "false", "no", "0"):
        return False if lowered else None
    if lowered in ("true", "yes", "1"):
        return True
    raise services.CrmError(_("blocked is true or false."), "invalid_blocked")


def contacts_import(tenant: Tenant, content: bytes | str) -> ImportResult:
    """Create or update contacts from CSV. Columns: ``name``, ``email``, ``phone``,
    ``language``, ``lifecycle_stage``, ``blocked``, ``labels`` (separated by ``;``) and
    ``attribute:<key>`` for custom attributes; at least ``name``, ``email`` or ``phone``. A row
    whose e-mail or phone matches a contact updates it (empty cells change nothing)."""
    header, rows = _rows(content, [])
    unknown = [name for name in header if name not in CONTACT_COLUMNS and not name.startswith(ATTRIBUTE_PREFIX)]
    if unknown or not {"name", "email", "phone"} & set(header):
        message = (
            _("Unknown columns: %(columns)s") % {"columns": ", ".join(unknown)}
            if unknown
            else _("Missing columns: %(columns)s") % {"columns": "name, email, phone"}
        )
        raise CsvImportError([{"line": 1, "message": message}])
    attribute_keys = [name[len(ATTRIBUTE_PREFIX) :] for name in header if name.startswith(ATTRIBUTE_PREFIX)]
    defined = set(
        ContactAttributeDefinition.objects.for_tenant(tenant)
        .filter(key__in=attribute_keys)
        .values_list("key", flat=True)
    )
    undefined = [key for key in attribute_keys if key not in defined]
    if undefined:
        raise CsvImportError(
            [{"line": 1, "message": _("Unknown custom attribute: %(key)s.") % {"key": ", ".join(undefined)}}]
        )

    errors: list[dict[str, Any]] = []
    cleaned_rows: list[tuple[int, dict[str, Any]]] = []
    seen: dict[str, int] = {}
    for line, row in rows:
        try:
            fields: dict[str, Any] = {}
            for column in CONTACT_COLUMNS:
                value = row.get(column, "")
                if not value:
                    continue
                if column == "labels":
                    fields["labels"] = [label for label in value.split(";") if label.strip()]
                elif column == "blocked":
                    fields["blocked"] = _boolean(value)
                else:
                    fields[column] = value
            attributes = {key: row[ATTRIBUTE_PREFIX + key] for key in attribute_keys if row.get(ATTRIBUTE_PREFIX + key)}
            if attributes:
                fields["attributes"] = attributes
            cleaned = services._contact_fields_clean(tenant, fields)
            if not (cleaned.get("name") or cleaned.get("email") or cleaned.get("phone")):
                raise services.CrmError(_("A contact needs a name, an e-mail or a phone."), "empty_contact")
            if cleaned.get("email"):
                _email_check(cleaned["email"])
            for key in ("email", "phone"):
                if cleaned.get(key):
                    if cleaned[key] in seen:
                        raise services.CrmError(
                            _("Same %(field)s as line %(line)s.") % {"field": key, "line": seen[cleaned[key]]},
                            "duplicate",
                        )
                    seen[cleaned[key]] = line
            cleaned_rows.append((line, cleaned))
        except services.CrmError as error:
            errors.append({"line": line, "message": str(error)})
    if errors:
        raise CsvImportError(errors)

    result = ImportResult()
    with transaction.atomic():
        for _line, cleaned in cleaned_rows:
            existing = services._contact_matching(
                tenant, phone=cleaned.get("phone", ""), email=cleaned.get("email", "")
            )
            if existing is None:
                contact = services.contact_create(tenant, **cleaned)
                result.created += 1
            else:
                if "attributes" in cleaned:
                    cleaned["attributes"] = {**existing.attributes, **cleaned["attributes"]}
                if "labels" in cleaned:
                    cleaned["labels"] = list(dict.fromkeys([*existing.labels, *cleaned["labels"]]))
                for name, value in cleaned.items():
                    setattr(existing, name, value)
                if cleaned.get("labels"):
                    services._labels_ensure(tenant, cleaned["labels"])
                existing.save(update_fields=[*cleaned, "updated_at"])
                contact = existing
                result.updated += 1
            result.ids.append(contact.pk)
    return result


def _email_check(email: str) -> None:
    from django.core.exceptions import ValidationError
    from django.core.validators import validate_email

    try:
        validate_email(email)
    except ValidationError as error:
        raise services.CrmError(_("%(email)s is not an e-mail address.") % {"email": email}, "invalid_email") from error


def contacts_export(tenant: Tenant, contacts: Iterable[Contact] | None = None) -> Iterator[str]:
    """CSV lines (header first) of the tenant's contacts, in the import's format."""
    keys = list(ContactAttributeDefinition.objects.for_tenant(tenant).order_by("key").values_list("key", flat=True))
    buffer = io.StringIO()
    writer = csv.writer(buffer)

    def line(values: list[Any]) -> str:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow(values)
        return buffer.getvalue()

    yield line([*CONTACT_COLUMNS, *(ATTRIBUTE_PREFIX + key for key in keys)])
    rows = contacts if contacts is not None else Contact.objects.for_tenant(tenant).order_by("id").iterator(2000)
    for contact in rows:
        yield line(
            [
                contact.name,
                contact.email,
                contact.phone,
                contact.language,
                contact.lifecycle_stage,
                "true" if contact.blocked else "false",
                ";".join(contact.labels),
                *(_cell(contact.attributes.get(key)) for key in keys),
            ]
        )


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def products_import(tenant: Tenant, content: bytes | str) -> ImportResult:
    """Create or update products by SKU from CSV (columns ``sku``, ``name_ar``, ``price`` are
    needed for new products; ``stock_quantity`` alone updates stock). Products whose stock
    comes back notify their stock alerts after commit."""
    header, rows = _rows(content, ["sku"])
    unknown = [name for name in header if name not in PRODUCT_COLUMNS]
    if unknown:
        raise CsvImportError(
            [{"line": 1, "message": _("Unknown columns: %(columns)s") % {"columns": ", ".join(unknown)}}]
        )
    existing = {
        product.sku: product
        for product in Product.objects.for_tenant(tenant).filter(sku__in=[r["sku"] for _, r in rows])
    }
    errors: list[dict[str, Any]] = []
    plans: list[tuple[Product | None, dict[str, Any]]] = []
    seen: dict[str, int] = {}
    for line, row in rows:
        try:
            sku = row.get("sku", "")
            if not sku or len(sku) > 64:
                raise services.CrmError(_("Each product needs a SKU of at most 64 characters."), "invalid_sku")
            if sku in seen:
                raise services.CrmError(
                    _("Same %(field)s as line %(line)s.") % {"field": "sku", "line": seen[sku]}, "duplicate"
                )
            seen[sku] = line
            fields = _product_fields(row)
            product = existing.get(sku)
            if product is None:
                missing = [name for name in ("name_ar", "price") if name not in fields]
                if missing:
                    raise services.CrmError(
                        _("A new product needs: %(columns)s") % {"columns": ", ".join(missing)}, "missing_fields"
                    )
                candidate = Product(tenant=tenant, sku=sku, **fields)
            else:
                candidate = Product(**{f.attname: getattr(product, f.attname) for f in Product._meta.concrete_fields})
                for name, value in fields.items():
                    setattr(candidate, name, value)
            services._validate(candidate, exclude=["sku"])
            plans.append((product, {"sku": sku, **fields}))
        except services.CrmError as error:
            errors.append({"line": line, "message": str(error)})
    if errors:
        raise CsvImportError(errors)

    result = ImportResult()
    with transaction.atomic():
        for product, fields in plans:
            if product is None:
                created = Product.objects.for_tenant(tenant).create(tenant=tenant, **fields)
                result.created += 1
                result.ids.append(created.pk)
                continue
            changes = {name: value for name, value in fields.items() if name != "sku"}
            if changes:
                services.product_update(tenant, product.pk, **changes)
            result.updated += 1
            result.ids.append(product.pk)
    return result


def _product_fields(row: dict[str, str]) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for name in ("name_ar", "name_en", "description", "category", "currency", "status"):
        if row.get(name):
            fields[name] = row[name]
    if "currency" in fields:
        fields["currency"] = fields["currency"].upper()
    if "status" in fields and fields["status"] not in Product.Status.values:
        raise services.CrmError(_("Unknown status."), "invalid_status")
    if row.get("price"):
        try:
            price = Decimal(to_ascii_digits(row["price"]).replace(",", ""))
        except InvalidOperation as error:
            raise services.CrmError(_("The price must be a number."), "invalid_price") from error
        if not price.is_finite() or price < 0:
            raise services.CrmError(_("The price must be a number."), "invalid_price")
        fields["price"] = price.quantize(Decimal("0.01"))
    if row.get("stock_quantity"):
        try:
            stock = int(to_ascii_digits(row["stock_quantity"]))
        except ValueError as error:
            raise services.CrmError(_("The stock must be a whole number of 0 or more."), "invalid_stock") from error
        if stock < 0:
            raise services.CrmError(_("The stock must be a whole number of 0 or more."), "invalid_stock")
        fields["stock_quantity"] = stock
    return fields
