"""Tenancy that fails closed.

Every tenant-scoped model uses :class:`TenantScopedManager` as its default manager:

- ``Model.objects.for_tenant(tenant)`` is the explicit, always-correct way to read;
- inside :func:`tenant_context` (set once by each entry point: the HTTP middleware, the
  API base view, the Channels middleware, the Celery base task) ``Model.objects.filter(…)``
  is scoped to that tenant;
- anywhere else an unscoped query raises :class:`TenantScopeError` when it runs, instead
  of quietly reading every tenant's rows;
- ``Model.objects.all_tenants()`` is the one deliberate way to read across tenants, for
  superuser screens and maintenance commands. It is easy to grep for.

Related managers (``order.items.all()``) are already narrowed by an object that was
itself loaded through a scoped query, so they are allowed.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from django.db import models

if TYPE_CHECKING:
    from morvo.models import Tenant

_current_tenant: contextvars.ContextVar[Tenant | None] = contextvars.ContextVar("morvo_tenant", default=None)


class TenantScopeError(RuntimeError):
    """A tenant-scoped model was queried with no tenant."""


def current_tenant() -> Tenant | None:
    return _current_tenant.get()


def require_tenant() -> Tenant:
    tenant = _current_tenant.get()
    if tenant is None:
        raise TenantScopeError("No tenant is active here.")
    return tenant


@contextlib.contextmanager
def tenant_context(tenant: Tenant | None) -> Iterator[Tenant | None]:
    """Run a block with ``tenant`` active (``None`` makes scoped queries refuse again)."""
    token = _current_tenant.set(tenant)
    try:
        yield tenant
    finally:
        _current_tenant.reset(token)


def activate(tenant: Tenant | None) -> contextvars.Token[Tenant | None]:
    return _current_tenant.set(tenant)


def deactivate(token: contextvars.Token[Tenant | None]) -> None:
    _current_tenant.reset(token)


ModelT = TypeVar("ModelT", bound=models.Model)


class TenantScopedQuerySet(models.QuerySet[ModelT], Generic[ModelT]):
    """A queryset made with no tenant active may be built and inspected, but running it
    raises :class:`TenantScopeError` (third-party code inspects ``.query`` at import time)."""

    _refused_reason: str | None = None

    def _clone(self) -> TenantScopedQuerySet[ModelT]:
        clone = super()._clone()  # type: ignore[misc]
        clone._refused_reason = self._refused_reason
        return clone  # type: ignore[no-any-return]

    def _refuse_if_unscoped(self) -> None:
        if self._refused_reason is not None:
            raise TenantScopeError(self._refused_reason)

    def for_tenant(self, tenant: Tenant) -> TenantScopedQuerySet[ModelT]:
        if tenant is None:
            raise TenantScopeError("for_tenant() needs a tenant")
        clone = self.filter(tenant=tenant)
        clone._refused_reason = None
        return clone

    def all_tenants(self) -> TenantScopedQuerySet[ModelT]:
        clone = self._chain()  # type: ignore[attr-defined]
        clone._refused_reason = None
        return clone  # type: ignore[no-any-return]

    # A query combined from several keeps the refusal of any part: otherwise
    # ``for_tenant(a) | Product.objects.filter(…)`` (made with no tenant) reads every tenant.
    def _keep_refusal(self, combined: Any, *parts: Any) -> Any:
        reasons = [getattr(part, "_refused_reason", None) for part in (self, *parts)]
        reason = next((reason for reason in reasons if reason is not None), None)
        if reason is None or any(combined is part for part in (self, *parts)):
            return combined
        if not isinstance(combined, TenantScopedQuerySet):
            # Django rebuilt it on the base manager (a sliced side): it could not refuse later.
            raise TenantScopeError(reason)
        combined._refused_reason = reason
        return combined

    def __and__(self, other: Any) -> Any:
        return self._keep_refusal(super().__and__(other), other)

    def __or__(self, other: Any) -> Any:
        return self._keep_refusal(super().__or__(other), other)

    def __xor__(self, other: Any) -> Any:
        return self._keep_refusal(super().__xor__(other), other)

    def _combinator_query(self, combinator: str, *other_qs: Any, all: bool = False) -> Any:
        combined = super()._combinator_query(combinator, *other_qs, all=all)  # type: ignore[misc]
        return self._keep_refusal(combined, *other_qs)

    # Every way a queryset reaches the database goes through one of these.
    def _fetch_all(self) -> None:
        self._refuse_if_unscoped()
        super()._fetch_all()  # type: ignore[misc]

    def iterator(self, *args: Any, **kwargs: Any) -> Any:
        self._refuse_if_unscoped()
        return super().iterator(*args, **kwargs)

    def count(self) -> int:
        self._refuse_if_unscoped()
        return super().count()

    def exists(self) -> bool:
        self._refuse_if_unscoped()
        return super().exists()

    def contains(self, obj: Any) -> bool:
        self._refuse_if_unscoped()
        return super().contains(obj)

    def aggregate(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        self._refuse_if_unscoped()
        return super().aggregate(*args, **kwargs)

    def update(self, **kwargs: Any) -> int:
        self._refuse_if_unscoped()
        return super().update(**kwargs)

    def delete(self) -> tuple[int, dict[str, int]]:
        self._refuse_if_unscoped()
        return super().delete()

    def explain(self, *args: Any, **kwargs: Any) -> str:
        self._refuse_if_unscoped()
        return super().explain(*args, **kwargs)


class TenantScopedManager(models.Manager[ModelT], Generic[ModelT]):
    """Default manager of tenant-scoped models (see the module docstring)."""

    def _unscoped(self) -> TenantScopedQuerySet[ModelT]:
        return TenantScopedQuerySet(self.model, using=self._db, hints=self._hints)  # type: ignore[attr-defined]

    def get_queryset(self) -> TenantScopedQuerySet[ModelT]:
        queryset = self._unscoped()
        # A related manager (``order.items``) carries the instance it hangs off.
        if getattr(self, "instance", None) is not None:
            return queryset
        tenant = _current_tenant.get()
        if tenant is None:
            name = self.model.__name__
            queryset._refused_reason = (
                f"{name} is tenant-scoped and no tenant is active: use {name}.objects.for_tenant(tenant), "
                "run inside tenant_context(tenant), or say all_tenants() on purpose."
            )
            return queryset
        return queryset.filter(tenant=tenant)

    def for_tenant(self, tenant: Tenant) -> TenantScopedQuerySet[ModelT]:
        return self._unscoped().for_tenant(tenant)

    def all_tenants(self) -> TenantScopedQuerySet[ModelT]:
        """Every tenant's rows. Only for superuser screens and maintenance."""
        return self._unscoped()


class TenantScopedModel(models.Model):
    """Base of every model that belongs to one tenant."""

    tenant = models.ForeignKey("morvo.Tenant", on_delete=models.CASCADE, related_name="+", db_index=True)

    objects: Any = TenantScopedManager()

    # Django's internals (deletion, forward relations, refresh) use the base manager,
    # which stays a plain Manager; only the default manager refuses unscoped reads.
    class Meta:
        abstract = True
