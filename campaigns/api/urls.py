"""REST API of campaigns, mounted under /api/v1/ (paths work with and without a trailing slash)."""

from __future__ import annotations

from django.urls import re_path
from rest_framework.routers import SimpleRouter

from campaigns.api import views


class OptionalSlashRouter(SimpleRouter):
    def __init__(self) -> None:
        super().__init__()
        self.trailing_slash = "/?"


router = OptionalSlashRouter()
router.register("campaigns", views.CampaignViewSet, basename="campaign")

# The calculator comes first: ``campaigns/evaluate`` is not a campaign id.
urlpatterns = [
    re_path(r"^campaigns/evaluate/?$", views.EvaluateView.as_view(), name="campaign-evaluate"),
    *router.urls,
]
