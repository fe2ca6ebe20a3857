"""Hand accepted webhook events to Celery without making the provider wait for it.

Publishing a task through the embedded SQL broker costs a transaction of its own (tens of
milliseconds on a busy database), as much again as storing the event. A webhook is
acknowledged as soon as its event is committed; the publishing happens on a background
thread of the web process, which gathers the events of the last few milliseconds and
publishes one task per tenant for them. Under a burst it publishes at most
``1 / MIN_PUBLISH_INTERVAL`` times a second unless a publication is full (``BATCH_LIMIT``
events, when the next goes at once), so one broker transaction carries many events instead of
a few: the publishing thread shares the interpreter with the requests, and fewer,
larger publications leave them more of it. After a quiet spell the first event is published
at once. The event row is the durable record: if the process dies before
publishing, the beat job (``channels_flush_task``) finds the event still pending and
processes it.
"""

from __future__ import annotations

import logging
import queue
import threading
import time

logger = logging.getLogger(__name__)

_queue: queue.SimpleQueue[tuple[int, int]] = queue.SimpleQueue()
_lock = threading.Lock()
_thread: threading.Thread | None = None


# How long the publisher waits for more events before publishing, the least time between two
# publications, and the most events per task.
GATHER_SECONDS = 0.02
MIN_PUBLISH_INTERVAL = 0.2
BATCH_LIMIT = 100


def _publish(tenant_id: int, event_id: int) -> None:
    from conversations.tasks import webhook_event_process_task

    webhook_event_process_task.delay(tenant_id, event_id)


def _publish_batch(tenant_id: int, event_ids: list[int]) -> None:
    from conversations.tasks import webhook_event_process_task, webhook_events_process_task

    if len(event_ids) == 1:
        webhook_event_process_task.delay(tenant_id, event_ids[0])
    else:
        webhook_events_process_task.delay(tenant_id, event_ids)


def _gather(last_published: float, events: queue.SimpleQueue[tuple[int, int]] = _queue) -> dict[int, list[int]]:
    """The next events, grouped by tenant: one blocking wait, then whatever else arrives within
    ``GATHER_SECONDS`` (or until ``MIN_PUBLISH_INTERVAL`` after ``last_published``, whichever
    is later), up to ``BATCH_LIMIT``."""
    tenant_id, event_id = events.get()
    batches: dict[int, list[int]] = {tenant_id: [event_id]}
    now = time.monotonic()
    deadline = max(now + GATHER_SECONDS, last_published + MIN_PUBLISH_INTERVAL)
    count = 1
    while count < BATCH_LIMIT:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        try:
            tenant_id, event_id = events.get(timeout=remaining)
        except queue.Empty:
            break
        batches.setdefault(tenant_id, []).append(event_id)
        count += 1
    return batches


def _run() -> None:
    last_published = 0.0
    while True:
        batches = _gather(last_published)
        # A full batch means more are waiting: the next one goes at once, not after the pause.
        full = sum(len(event_ids) for event_ids in batches.values()) >= BATCH_LIMIT
        last_published = 0.0 if full else time.monotonic()
        for tenant_id, event_ids in batches.items():
            try:
                _publish_batch(tenant_id, event_ids)
            except Exception:
                # The beat job will find the events pending and process them.
                logger.exception("could not queue webhook events %s of tenant %s", event_ids, tenant_id)


def _eager() -> bool:
    from morvo.celery import app

    return bool(app.conf.task_always_eager)


def webhook_events_dispatch(tenant_id: int, event_ids: list[int]) -> None:
    """Queue the processing of committed events (inline when Celery runs tasks eagerly, as
    the tests do, so they stay deterministic)."""
    global _thread
    if _eager():
        for event_id in event_ids:
            _publish(tenant_id, event_id)
        return
    with _lock:
        if _thread is None or not _thread.is_alive():
            _thread = threading.Thread(target=_run, name="morvo-webhook-dispatch", daemon=True)
            _thread.start()
    for event_id in event_ids:
        _queue.put((tenant_id, event_id))
