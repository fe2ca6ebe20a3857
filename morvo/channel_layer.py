"""The channel layer of the embedded profile: PostgreSQL LISTEN/NOTIFY (channels-postgres).

Two things differ from the stock layer:
- the connection comes from Django's default database at the moment the layer is built,
  so the test suite (which renames the database) and the embedded server's socket are
  followed without repeating them in settings;
- the psycopg pool is kept per event loop. The stock layer keeps one pool per process,
  bound to the loop that opened it; a Celery task or a management command that sends
  with ``async_to_sync`` runs each call on a fresh loop, and a pool from a dead loop
  hangs. Pools of loops that have closed are released on the next call;
- leaving a group goes through that pool too (the stock layer expects a Django database
  alias named ``channels_postgres``).
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import typing

import psycopg
import psycopg_pool
from channels_postgres import core as postgres_core
from channels_postgres.db import GROUP_CHANNEL_TABLE, MESSAGE_TABLE, DatabaseLayer
from psycopg import sql

_GROUP_SEND = sql.SQL(
    "INSERT INTO {messages} (channel, message, expire) "
    "SELECT DISTINCT channel, %s, %s FROM {groups} WHERE group_key = %s"
).format(messages=sql.Identifier(MESSAGE_TABLE), groups=sql.Identifier(GROUP_CHANNEL_TABLE))

# The listener's connection, as pg_stat_activity shows it.
LISTENER_NAME = "morvo-channel-listener"


def _configure(connection: psycopg.AsyncConnection) -> typing.Awaitable[None]:
    async def configure() -> None:
        await connection.set_autocommit(True)
        connection.prepare_threshold = 0
        connection.prepared_max = None

    return configure()


class LoopScopedDatabaseLayer(DatabaseLayer):
    def __init__(self, *args: typing.Any, **kwargs: typing.Any) -> None:
        super().__init__(*args, **kwargs)
        self._pools: dict[asyncio.AbstractEventLoop, psycopg_pool.AsyncConnectionPool] = {}
        self._creating: dict[asyncio.AbstractEventLoop, asyncio.Lock] = {}

    def _release_dead_pools(self) -> None:
        for loop in [loop for loop in self._creating if loop.is_closed()]:
            self._creating.pop(loop, None)
        for loop in [loop for loop in self._pools if loop.is_closed()]:
            pool = self._pools.pop(loop)
            # The loop that ran this pool is gone, so it cannot be closed the async way;
            # finish the sockets directly so the server does not keep the sessions.
            for connection in list(getattr(pool, "_pool", [])):
                connection.pgconn.finish()

    async def get_db_pool(self, db_params: dict[str, typing.Any]) -> psycopg_pool.AsyncConnectionPool:
        loop = asyncio.get_running_loop()
        pool = self._pools.get(loop)
        if pool is not None:
            return pool
        # Many sockets open at once on a fresh server: without the lock each of them would
        # open a pool of its own, and together more connections than the server allows.
        async with self._creating.setdefault(loop, asyncio.Lock()):
            pool = self._pools.get(loop)
            if pool is not None:
                return pool
            self._release_dead_pools()
            pool = psycopg_pool.AsyncConnectionPool(
                conninfo=psycopg.conninfo.make_conninfo(conninfo="", **db_params),
                open=False,
                configure=_configure,
                **{"min_size": 1, "max_size": 8, **self.psycopg_options},
            )
            await pool.open(wait=True)
            self._pools[loop] = pool
            return pool

    async def delete_channel_group(self, group_key: str, channel: str) -> None:
        # The stock layer does this one query through the Django ORM on a database alias
        # named "channels_postgres"; the layer's own pool needs no such alias.
        pool = await self.get_db_pool(db_params=self.db_params)
        statement = sql.SQL("DELETE FROM {table} WHERE group_key = %s AND channel = %s").format(
            table=sql.Identifier(GROUP_CHANNEL_TABLE)
        )
        async with pool.connection() as conn:
            await conn.execute(statement, (group_key, channel))


class EmbeddedPostgresChannelLayer(postgres_core.PostgresChannelLayer):
    """See the module docstring. Also fixes these faults of the stock layer (and the backlog
    race described in :meth:`listen_to_all_channels`):

    - every ``receive()`` that came before the LISTEN connection was up started another
      listener with a connection of its own: 200 sockets opening at once held ~100
      connections for good. Here there is one listener per event loop, restarted if it dies;
    - it took a session advisory lock for each per-socket channel (``specific.<client>!<id>``)
      on a pooled connection and never released it, until the lock table of the whole
      server ran out;
    - it kept each socket's queue forever.
    """

    def __init__(self, **config: typing.Any) -> None:
        from django.db import connections

        database = dict(connections["default"].settings_dict)
        database["OPTIONS"] = {}  # Django's pool options are not psycopg connection options
        psycopg_options = config.pop("PSYCOPG_OPTIONS", {})
        super().__init__(**config, **database)
        self.django_db = LoopScopedDatabaseLayer(psycopg_options, self.db_params, logger=postgres_core.logger)

    def _get_or_create_listener_task(self) -> tuple[asyncio.Event, bool]:
        loop = asyncio.get_running_loop()
        listeners: dict[asyncio.AbstractEventLoop, asyncio.Event] = self.__dict__.setdefault("_listeners", {})
        ready = listeners.get(loop)
        if ready is not None:
            return ready, False
        ready = listeners[loop] = asyncio.Event()
        # The stock receive() awaits this event, and the stock listener sets it.
        self.listener_task_is_running = ready
        self.event_loop = loop
        return ready, True

    async def listen_to_all_channels(self) -> None:
        """The stock listener read the backlog of queued messages *before* LISTEN, so a
        message sent in between was never delivered, and read it with a DELETE over every
        channel, taking messages meant for other processes. Here: LISTEN first, then SELECT
        the backlog of the channels this process waits on, skipping what arrives twice."""
        loop = asyncio.get_running_loop()
        ready = self.__dict__["_listeners"][loop]
        try:
            conninfo = psycopg.conninfo.make_conninfo(conninfo="", application_name=LISTENER_NAME, **self.db_params)
            async with await psycopg.AsyncConnection.connect(conninfo=conninfo, autocommit=True) as connection:
                await connection.execute("LISTEN channels_postgres_messages")
                from_backlog: set[str] = set()
                waiting = list(postgres_core.ASYNCIO_EVENT_CHANNEL_MAPPING)
                backlog = await connection.execute(
                    sql.SQL(
                        "SELECT id::text, channel, message, extract(epoch from expire)::text FROM {table} "
                        "WHERE expire > now() AND channel = ANY(%s) ORDER BY id"
                    ).format(table=sql.Identifier(MESSAGE_TABLE)),
                    (waiting,),
                )
                for message_id, channel, message, expires in await backlog.fetchall():
                    encoded = base64.b64encode(message).decode()
                    self._get_or_create_queue(channel).put_nowait(f"{message_id}:{channel}:{encoded}:{expires}")
                    from_backlog.add(message_id)
                ready.set()
                async for event in connection.notifies():
                    if event.payload == "1:shutdown":
                        break
                    message_id, channel = event.payload.split(":", 2)[:2]
                    if message_id in from_backlog:
                        from_backlog.discard(message_id)
                        continue
                    if self._channel_advisory_locks.get(channel, False):
                        self._get_or_create_queue(channel).put_nowait(event.payload)
        finally:
            # Gone (connection lost, shutdown): the next receive() starts a new one.
            self.__dict__.get("_listeners", {}).pop(loop, None)

    async def _get_or_create_channel_advisory_lock(self, channel: str) -> bool:
        # A process-local channel ("!") can only be received by this process: the lock that
        # elects one receiver among processes is pointless there, and it would leak.
        if "!" in channel:
            self._channel_advisory_locks[channel] = True
            return True
        return bool(await super()._get_or_create_channel_advisory_lock(channel))

    async def group_send(self, group: str, message: dict[str, typing.Any]) -> None:
        """One statement: a copy of the message for every channel of the group (the insert
        trigger notifies the listeners). The stock layer made three round trips, one of them
        looking the group up under the wrong key, and logged a warning for empty groups,
        which are ordinary here (nobody has the operators' queue open)."""
        pool = await self.django_db.get_db_pool(db_params=self.db_params)
        async with pool.connection() as conn:
            await conn.execute(_GROUP_SEND, self._group_send_params(group, message))

    def group_send_sync(self, group: str, message: dict[str, typing.Any]) -> None:
        """The same, from synchronous code (a Celery task, a web thread's on-commit push),
        on Django's pooled connection: ``async_to_sync`` there would spin up an event loop,
        and with it a connection pool, for every send."""
        self.group_send_many_sync([(group, message)])

    def group_send_many_sync(self, sends: list[tuple[str, dict[str, typing.Any]]]) -> None:
        """Several group sends in one statement (a restock pushing hundreds of messages)."""
        from django.db import connection

        if not sends:
            return
        params: list[typing.Any] = []
        for group, message in sends:
            body, expires, group_key = self._group_send_params(group, message)
            params += [group_key, body, expires]
        values = sql.SQL(", ").join([sql.SQL("(%s, %s::bytea, %s::timestamptz)")] * len(sends))
        statement = sql.SQL(
            "INSERT INTO {messages} (channel, message, expire) "
            "SELECT DISTINCT g.channel, v.message, v.expire FROM (VALUES {values}) AS v(group_key, message, expire) "
            "JOIN {groups} AS g ON g.group_key = v.group_key"
        ).format(messages=sql.Identifier(MESSAGE_TABLE), groups=sql.Identifier(GROUP_CHANNEL_TABLE), values=values)
        with connection.cursor() as cursor:
            cursor.execute(statement.as_string(), params)

    def _group_send_params(self, group: str, message: dict[str, typing.Any]) -> tuple[typing.Any, ...]:
        assert self.require_valid_group_name(group), "Group name not valid"
        expires = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=self.expiry)
        return (self.serialize(message), expires, self._group_key(group))

    def forget_channel(self, channel: str) -> None:
        """The consumer behind ``channel`` has gone: drop what the layer keeps for it."""
        self._channel_advisory_locks.pop(channel, None)
        postgres_core.ASYNCIO_EVENT_CHANNEL_MAPPING.pop(channel, None)
