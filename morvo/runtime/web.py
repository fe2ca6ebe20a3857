"""The web process: daphne, with the secret in a channel webhook's URL masked in its access
log (``/webhooks/whatsapp/<token>/`` is logged as ``/webhooks/whatsapp/••••/``). The token
is the inbox's credential for providers that sign nothing, so it must not land in logs.

``python -m morvo.runtime.web`` takes daphne's command-line options.
"""

from __future__ import annotations

import re
from typing import Any

from daphne import cli
from daphne.access import AccessLogGenerator

_WEBHOOK_TOKEN = re.compile(r"^(/webhooks/[^/]+/)[^/?#]+")


def mask_path(path: str) -> str:
    return _WEBHOOK_TOKEN.sub(r"\1••••", path)


class MaskedAccessLog(AccessLogGenerator):  # type: ignore[misc]
    def write_entry(self, host: Any, date: Any, request: str, *args: Any, **kwargs: Any) -> None:
        method, space, path = request.partition(" ")
        super().write_entry(host, date, f"{method}{space}{mask_path(path)}", *args, **kwargs)


def main() -> None:
    cli.AccessLogGenerator = MaskedAccessLog  # what daphne's command line builds its log with
    cli.CommandLineInterface.entrypoint()


if __name__ == "__main__":
    main()
