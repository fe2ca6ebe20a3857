"""REST API of the CRM, mounted under /api/v1/ (paths work with and without a trailing slash)."""

from __future__ import annotations

from django.urls import re_path
from rest_framework.routers import SimpleRouter

from crm.api import crm_views


class OptionalSlashRouter(SimpleRouter):
    def __init__(self) -> None:
        super().__init__()
        self.trailing_slash = "/?"


router = OptionalSlashRouter()
router.register("contacts", crm_views.ContactViewSet, basename="contact")
router.register("labels", crm_views.LabelViewSet, basename="label")
router.register("contact-attributes", crm_views.ContactAttributeDefinitionViewSet, basename="contact-attribute")
router.register("segments", crm_views.SegmentViewSet, basename="segment")
router.register("follow-ups", crm_views.FollowUpViewSet, basename="follow-up")
router.register("appointments", crm_views.AppointmentViewSet, basename="appointment")
router.register("stock-alerts", crm_views.StockAlertViewSet, basename="stock-alert")

urlpatterns = [
    # Before the products router, whose detail route would take "import" for an id.
    re_path(r"^products/import/?$", crm_views.ProductImportView.as_view(), name="product-import"),
    *router.urls,
]
