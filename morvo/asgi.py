import gc
import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "morvo.settings")

from django.core.asgi import get_asgi_application

django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from conversations.webhook_asgi import WebhookApplication  # noqa: E402
from morvo.channels_auth import websocket_stack  # noqa: E402
from morvo.routing import websocket_urlpatterns  # noqa: E402

# Everything loaded so far lives as long as the process: move it out of the garbage
# collector's view so full collections stay short under many sockets.
gc.collect()
gc.freeze()

application = ProtocolTypeRouter(
    {
        # Channel webhooks are answered ahead of Django's middleware (see the module).
        "http": WebhookApplication(django_asgi_app),
        "websocket": websocket_stack(URLRouter(websocket_urlpatterns)),
    }
)
