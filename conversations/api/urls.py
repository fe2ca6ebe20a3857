"""REST API of conversations, mounted under /api/v1/ (paths work with and without a trailing slash)."""

from __future__ import annotations

from rest_framework.routers import SimpleRouter

from conversations.api import views


class OptionalSlashRouter(SimpleRouter):
    """``/api/v1/conversations`` and ``/api/v1/conversations/`` both work (as in morvo.urls,
    whose router cannot be imported here: that module includes this one)."""

    def __init__(self) -> None:
        super().__init__()
        self.trailing_slash = "/?"


router = OptionalSlashRouter()
router.register("conversations", views.ConversationViewSet, basename="conversation")
router.register("inboxes", views.InboxViewSet, basename="inbox")
router.register(r"conversations/(?P<id>[^/.]+)/messages", views.MessageViewSet, basename="conversation-message")

urlpatterns = router.urls
