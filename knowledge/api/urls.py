"""REST API of the knowledge base, mounted under /api/v1/ (with or without a trailing slash)."""

from __future__ import annotations

from django.urls import re_path
from rest_framework.routers import SimpleRouter

from knowledge.api import views


class OptionalSlashRouter(SimpleRouter):
    """As in morvo.urls, whose router cannot be imported here (that module includes this one)."""

    def __init__(self) -> None:
        super().__init__()
        self.trailing_slash = "/?"


router = OptionalSlashRouter()
router.register("knowledge/documents", views.DocumentViewSet, basename="knowledge-document")

urlpatterns = [
    re_path(r"^knowledge/search/?$", views.KnowledgeSearchView.as_view(), name="knowledge-search"),
    *router.urls,
]
