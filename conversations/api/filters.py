from __future__ import annotations

from typing import Any

import django_filters
from django.contrib.auth import get_user_model
from django.db.models import QuerySet
from rest_framework.request import Request

from conversations.models import Conversation, Inbox, Message


# Choice filters on a foreign key need the request's tenant: a queryset built with the
# FilterSet class (at import, no tenant active) would refuse to run (see crm.api.views).
def _request_tenant_inboxes(request: Request) -> QuerySet[Inbox]:
    return Inbox.objects.for_tenant(request.tenant)  # type: ignore[attr-defined]


def _request_tenant_members(request: Request) -> QuerySet[Any]:
    return get_user_model().objects.filter(memberships__tenant=request.tenant)  # type: ignore[attr-defined]


class ConversationFilter(django_filters.FilterSet):
    inbox = django_filters.ModelChoiceFilter(queryset=_request_tenant_inboxes)
    assignee = django_filters.ModelChoiceFilter(queryset=_request_tenant_members)
    label = django_filters.CharFilter(method="filter_label", label="Conversations carrying this label")

    class Meta:
        model = Conversation
        fields = ["status", "priority", "kind", "inbox", "handled_by", "assignee"]

    def filter_label(self, queryset: QuerySet[Conversation], name: str, value: str) -> QuerySet[Conversation]:
        # Labels are stored trimmed and lower-cased (services.conversation_update).
        return queryset.filter(labels__contains=[value.strip().lower()])


class MessageFilter(django_filters.FilterSet):
    after = django_filters.NumberFilter(
        field_name="id", lookup_expr="gt", label="Only messages after this message id (to catch up)"
    )

    class Meta:
        model = Message
        fields = ["after"]
