from django.apps import AppConfig
from django.db.models.signals import post_delete, post_save


class ConversationsConfig(AppConfig):
    name = "conversations"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from conversations.webhooks import inbox_cache_clear

        # A changed inbox or tenant (deactivated, a new token) is not served from the cache.
        for model in ("conversations.Inbox", "morvo.Tenant"):
            post_save.connect(inbox_cache_clear, sender=model, dispatch_uid=f"webhook-inbox-cache-{model}-save")
            post_delete.connect(inbox_cache_clear, sender=model, dispatch_uid=f"webhook-inbox-cache-{model}-delete")
