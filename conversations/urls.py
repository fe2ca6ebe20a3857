"""Pages of the chat (companion and public customer chat) and the channels' webhooks."""

from django.urls import path

from conversations import views, webhooks

urlpatterns = [
    path("app/chat/", views.companion_list, name="companion-list"),
    path("app/chat/new/", views.companion_new, name="companion-new"),
    path("app/chat/<int:conversation_id>/", views.companion_detail, name="companion-detail"),
    path("c/<slug:slug>/", views.visitor_chat, name="visitor-chat"),
    path("c/<slug:slug>/profile/", views.visitor_profile, name="visitor-profile"),
    path("webhooks/<slug:channel>/<str:token>/", webhooks.channel_webhook, name="channel-webhook"),
]
