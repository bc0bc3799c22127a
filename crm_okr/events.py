"""The transactional outbox: record domain events with the change, dispatch them after commit.

``record()`` must be called inside the transaction that makes the change. After commit, a task
dispatches the event to every subscribed handler. Each handler runs at most once per event
(``EventDelivery`` has a unique constraint, and the handler's writes commit in the same
transaction as its delivery row), so a re-sent event never does the same work twice.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from .models import Event, EventDelivery

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Handler:
    key: str
    events: frozenset[str]
    func: Callable[[Event], None]


_handlers: dict[str, Handler] = {}


def subscribe(key: str, *event_names: str):
    """Register ``func(event)`` under a stable key for the named events (``"*"`` for all)."""

    def decorator(func):
        _handlers[key] = Handler(key=key, events=frozenset(event_names), func=func)
        return func

    return decorator


def handlers_for(name: str) -> list[Handler]:
    return [h for h in _handlers.values() if name in h.events or "*" in h.events]


def subject_type_of(obj) -> str:
    return obj._meta.label_lower


def record(name: str, subject, *, actor=None, data: dict | None = None) -> Event:
    """Write an event row in the current transaction and send it to the workers after commit."""
    event = Event.objects.create(
        name=name,
        subject_type=subject_type_of(subject),
        subject_id=subject.pk,
        actor=actor if actor is not None and actor.is_authenticated else None,
        payload=data or {},
    )
    transaction.on_commit(lambda: send(event.pk))
    return event


def send(event_id: int) -> bool:
    """Queue the dispatch task; if the broker is down the event simply waits for the sweeper."""
    from .tasks import dispatch_event

    try:
        dispatch_event.apply_async(args=[event_id], retry=False)
    except Exception:  # the broker's errors vary by transport; the outbox row is the safety net
        logger.warning("Could not queue event %s; the sweeper will send it.", event_id, exc_info=True)
        return False
    return True


def dispatch(event_id: int) -> bool:
    """Run every handler that has not yet handled the event, then mark it dispatched.

    Returns False if the event is gone, already dispatched or being dispatched by another worker.
    Safe to call any number of times, from any number of workers.
    """
    with transaction.atomic():
        event = (
            Event.objects.select_for_update(skip_locked=True)
            .filter(pk=event_id, dispatched_at__isnull=True)
            .first()
        )
        if event is None:
            return False
        Event.objects.filter(pk=event.pk).update(attempts=event.attempts + 1)
        done = set(EventDelivery.objects.filter(event=event).values_list("handler", flat=True))
        for handler in handlers_for(event.name):
            if handler.key in done:
                continue
            try:
                with transaction.atomic():
                    handler.func(event)
                    EventDelivery.objects.create(event=event, handler=handler.key)
            except IntegrityError:
                # Another dispatch got there first: the handler's work is already committed.
                continue
            except Exception as exc:
                logger.exception("Handler %s failed on event %s", handler.key, event.pk)
                Event.objects.filter(pk=event.pk).update(last_error=f"{handler.key}: {exc}"[:2000])
                # Leave the event pending: the sweeper retries the handlers that did not finish.
                return False
        Event.objects.filter(pk=event.pk).update(dispatched_at=timezone.now(), last_error="")
    return True


def pending(older_than: timedelta | None = None):
    if older_than is None:
        older_than = timedelta(seconds=settings.OUTBOX_SWEEP_AFTER_SECONDS)
    return Event.objects.filter(dispatched_at__isnull=True, created_at__lte=timezone.now() - older_than)


def sweep(*, older_than: timedelta | None = None, limit: int = 1000) -> int:
    """Re-send events that were never dispatched; returns how many were queued.

    Stops at the first event the broker refuses: it is down, and trying the rest would only wait on it
    once per event. The next sweep tries again.
    """
    sent = 0
    for event_id in pending(older_than).order_by("created_at").values_list("id", flat=True)[:limit]:
        if not send(event_id):
            break
        sent += 1
    return sent
