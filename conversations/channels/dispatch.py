"""Hand accepted webhook events to Celery without making the provider wait for it.

Publishing a task through the embedded SQL broker costs a transaction of its own (tens of
milliseconds on a busy database), as much again as storing the event. A webhook is
acknowledged as soon as its event is committed; the publishing happens on a background
thread of the web process. The event row is the durable record: if the process dies before
publishing, the beat job (``channels_flush_task``) finds the event still pending and
processes it.
"""

from __future__ import annotations

import logging
import queue
import threading

logger = logging.getLogger(__name__)

_queue: queue.SimpleQueue[tuple[int, int]] = queue.SimpleQueue()
_lock = threading.Lock()
_thread: threading.Thread | None = None


def _publish(tenant_id: int, event_id: int) -> None:
    from conversations.tasks import webhook_event_process_task

    webhook_event_process_task.delay(tenant_id, event_id)


def _run() -> None:
    while True:
        tenant_id, event_id = _queue.get()
        try:
            _publish(tenant_id, event_id)
        except Exception:
            # The beat job will find the event pending and process it.
            logger.exception("could not queue webhook event %s of tenant %s", event_id, tenant_id)


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
