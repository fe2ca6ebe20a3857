from django.urls import path

from conversations.consumers import ChatConsumer
from morvo.consumers import PingConsumer

websocket_urlpatterns = [
    path("ws/ping/", PingConsumer.as_asgi()),
    path("ws/chat/<str:conversation_id>/", ChatConsumer.as_asgi()),
]
