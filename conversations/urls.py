"""Pages of the chat (companion and public customer chat)."""

from django.urls import path  # noqa: F401

urlpatterns: list = []
