"""Celery's broker in the embedded profile: kombu's SQL transport on the same PostgreSQL.

Kombu hands every transport option to SQLAlchemy's ``create_engine`` (which rejects
``polling_interval``), so the polling interval is set on a transport subclass instead,
registered as the ``morvosql`` URL scheme. The interval bounds how long an idle worker
takes to see a new task; ``bench/platform.py`` measures the round trip it gives.
"""

from __future__ import annotations

import os
from typing import Any

from kombu.transport import TRANSPORT_ALIASES
from kombu.transport.sqlalchemy import Transport as SQLAlchemyTransport

SCHEME = "morvosql"


class PostgresPollingTransport(SQLAlchemyTransport):  # type: ignore[misc]
    polling_interval = float(os.environ.get("CELERY_POLLING_INTERVAL", "0.05"))

    def drain_events(self, connection: Any, timeout: float | None = None, **kwargs: Any) -> Any:
        # Celery's worker loop waits here up to 2 s between looks at its shutdown flag; on a
        # polling transport that made Ctrl-C wait too. Returning sooner costs nothing.
        if timeout is not None:
            timeout = min(timeout, 0.25)
        return super().drain_events(connection, timeout=timeout, **kwargs)


TRANSPORT_ALIASES[SCHEME] = "morvo.broker:PostgresPollingTransport"
