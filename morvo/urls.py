from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import SimpleRouter

from agents_app.api import views as agents_views
from crm.api import views as crm_views
from morvo import health, metrics, views
from morvo.api import endpoints


class OptionalSlashRouter(SimpleRouter):
    """``/api/v1/products`` and ``/api/v1/products/`` both work."""

    def __init__(self) -> None:
        super().__init__()
        self.trailing_slash = "/?"


router = OptionalSlashRouter()
router.register("products", crm_views.ProductViewSet, basename="product")
router.register("orders", crm_views.OrderViewSet, basename="order")
router.register("agents/runs", agents_views.AgentRunViewSet, basename="agent-run")
router.register("product-stats", crm_views.ProductDailyStatViewSet, basename="product-stat")
router.register("sentiment-mentions", crm_views.SentimentMentionViewSet, basename="sentiment-mention")

api_v1 = [
    re_path(r"^me/?$", endpoints.MeView.as_view(), name="me"),
    re_path(r"^tenant/?$", endpoints.TenantView.as_view(), name="tenant"),
    re_path(r"^agents/analyze/?$", agents_views.AnalyzeView.as_view(), name="agents-analyze"),
    path("", include("crm.api.urls")),  # first: its products/import precedes products/{id}
    *router.urls,
    path("", include("conversations.api.urls")),
    path("", include("knowledge.api.urls")),
    path("", include("campaigns.api.urls")),
]

urlpatterns = [
    path("", views.home, name="home"),
    path("app/", views.app_home, name="app-home"),
    path("app/tenant/switch/", views.tenant_switch, name="tenant-switch"),
    path("", include("conversations.urls")),
    path("accounts/", include("allauth.urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", admin.site.urls),
    path("api/v1/", include((api_v1, "api"), namespace="api")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", metrics.metrics_view, name="metrics"),
]
