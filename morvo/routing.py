from django.urls import path

from conversations.consumers import ChatConsumer
from conversations.operator_consumers import InboxConsumer
from morvo.consumers import PingConsumer

websocket_urlpatterns = [
    path("ws/ping/", PingConsumer.as_asgi()),
    path("ws/chat/<str:conversation_id>/", ChatConsumer.as_asgi()),
    path("ws/inbox/", InboxConsumer.as_asgi()),
]
