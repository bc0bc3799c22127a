"""Check-in reminders: the owners of key results kept by hand get a nudge when nobody checked in for a week.

Who and what (``due_key_results``):
- key results without a linked KPI (KPI-measured ones check in from their snapshots), of live objectives in
  active cycles; a milestone already done needs no update;
- with no check-in measured in the last 7 days (counted from now; a key result, cycle activation or cycle
  start less than 7 days old does not count as "a week without" either);
- not reminded in the last 7 calendar days (company time): reminded on a Monday, again the next Monday at the
  earliest, whatever the exact hour the daily run starts;
- whose owner is an active user.

Each owner gets one reminder listing their key results: an e-mail (HTML and text, in their language, with links
built from ``settings.SITE_URL``; none without an e-mail address) and an in-app notice. Each key result gets a
``KeyResultReminder`` row in the same transaction, so a second run (or a concurrent one) sends nothing again.
Run daily at 09:00 company time by Celery beat (``okrs.tasks.send_check_in_reminders``, queue ``batch``).
"""

import datetime as dt
import logging
from collections import defaultdict

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.db import transaction
from django.db.models import OuterRef, Q, Subquery
from django.template.loader import render_to_string
from django.urls import NoReverseMatch, reverse
from django.utils import timezone, translation
from django.utils.translation import gettext_noop, ngettext

from accounts.models import Notification, User
from kpis.periods import company_tz

from .models import CheckIn, Cycle, KeyResult, KeyResultReminder

logger = logging.getLogger(__name__)

QUIET_DAYS = 7

ONE_MESSAGE = gettext_noop("No check-in for a week on your key result “%(titles)s”: time for an update.")
MANY_MESSAGE = gettext_noop("%(count)s of your key results have had no check-in for a week: %(titles)s")


def _midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tzinfo=company_tz())


def _again_from(now: dt.datetime) -> dt.datetime:
    """Reminders sent before this moment no longer hold a key result back: the start of the day 6 days before
    today (company time), i.e. a reminder of day D allows the next one on day D + 7."""
    today = now.astimezone(company_tz()).date()
    return _midnight(today - dt.timedelta(days=QUIET_DAYS - 1))


def due_key_results(now: dt.datetime | None = None) -> list[KeyResult]:
    """The key results whose owners are reminded now, with owner, objective and cycle (one query)."""
    now = now or timezone.now()
    week_ago = now - dt.timedelta(days=QUIET_DAYS)
    last_check_in = CheckIn.objects.filter(key_result=OuterRef("pk")).order_by("-measured_at", "-id").values(
        "measured_at")[:1]
    last_reminder = KeyResultReminder.objects.filter(key_result=OuterRef("pk")).order_by("-sent_at").values(
        "sent_at")[:1]
    started_by = (week_ago.astimezone(company_tz())).date()
    return list(
        KeyResult.objects.filter(
            kpi__isnull=True, objective__cycle__status=Cycle.Status.ACTIVE, objective__archived_at__isnull=True,
            owner__is_active=True, created_at__lte=week_ago, objective__cycle__start_date__lte=started_by,
        )
        .filter(Q(objective__cycle__activated_at__isnull=True) | Q(objective__cycle__activated_at__lte=week_ago))
        .exclude(kind=KeyResult.Kind.MILESTONE, milestone_done=True)
        .annotate(last_check_in=Subquery(last_check_in), last_reminder=Subquery(last_reminder))
        .filter(Q(last_check_in__isnull=True) | Q(last_check_in__lt=week_ago))
        .filter(Q(last_reminder__isnull=True) | Q(last_reminder__lt=_again_from(now)))
        .select_related("owner", "objective__cycle")
        .order_by("owner_id", "objective__cycle__start_date", "objective__order", "objective_id", "order", "id")
    )


def _path(name: str, args: list, fallback: str) -> str:
    try:
        return reverse(name, args=args)
    except NoReverseMatch:  # pragma: no cover - the pages' URL names exist once every OKR module is in
        return fallback


def _absolute(path: str) -> str:
    return settings.SITE_URL.rstrip("/") + path


def mine_path() -> str:
    return _path("okr-mine", [], "/okrs/mine/")


def key_result_path(key_result: KeyResult) -> str:
    return _path("okr-kr", [key_result.pk], f"/okrs/key-results/{key_result.pk}/")


def build_message(user: User, key_results: list[KeyResult]) -> EmailMultiAlternatives:
    """The e-mail for ``user`` in their language (the site default when they chose none)."""
    with translation.override(user.language or settings.LANGUAGE_CODE):
        count = len(key_results)
        rows = [{
            "title": kr.title,
            "objective": kr.objective.title,
            "cycle": kr.objective.cycle.name,
            "last_check_in": kr.last_check_in,
            "url": _absolute(key_result_path(kr)),
        } for kr in key_results]
        context = {"user": user, "rows": rows, "count": count, "mine_url": _absolute(mine_path()),
                   "days": QUIET_DAYS, "site_url": settings.SITE_URL}
        subject = ngettext("A key result is waiting for your check-in",
                           "%(count)d key results are waiting for your check-in", count) % {"count": count}
        text = render_to_string("okrs/email/reminder.txt", context)
        html = render_to_string("okrs/email/reminder.html", context)
    message = EmailMultiAlternatives(subject=subject, body=text, to=[user.email])
    message.attach_alternative(html, "text/html")
    return message


def _notify(user: User, key_results: list[KeyResult], now: dt.datetime) -> Notification:
    titles = ", ".join(kr.title for kr in key_results)
    return Notification.objects.create(
        user=user, message=ONE_MESSAGE if len(key_results) == 1 else MANY_MESSAGE,
        params={"count": len(key_results), "titles": titles[:1000]}, link=mine_path(), created_at=now,
    )


def _remind(owner: User, key_results: list[KeyResult], now: dt.datetime, connection) -> int:
    """Remind one owner in one transaction; returns how many key results were in the reminder (0: none left)."""
    with transaction.atomic():
        # Lock the rows: a concurrent run skips them, and reads the reminders below only after this commits.
        locked = set(
            KeyResult.objects.select_for_update(skip_locked=True).filter(pk__in=[kr.pk for kr in key_results])
            .values_list("pk", flat=True)
        )
        reminded = set(KeyResultReminder.objects.filter(key_result_id__in=locked, sent_at__gte=_again_from(now))
                       .values_list("key_result_id", flat=True))
        key_results = [kr for kr in key_results if kr.pk in locked and kr.pk not in reminded]
        if not key_results:
            return 0
        KeyResultReminder.objects.bulk_create(
            [KeyResultReminder(key_result=kr, user=owner, sent_at=now) for kr in key_results])
        _notify(owner, key_results, now)
        if owner.email:
            message = build_message(owner, key_results)
            message.connection = connection
            message.send()
    return len(key_results)


def send_reminders(now: dt.datetime | None = None) -> dict:
    """Remind every owner with key results due (see the module docstring). An owner whose reminder fails (a bad
    address, a template error) is logged and skipped without a trace, so the next run tries again; the others
    still get theirs. Returns ``{"owners": …, "key_results": …}`` reminded."""
    now = now or timezone.now()
    by_owner: dict[int, list[KeyResult]] = defaultdict(list)
    owners: dict[int, User] = {}
    for kr in due_key_results(now):
        by_owner[kr.owner_id].append(kr)
        owners[kr.owner_id] = kr.owner
    connection = get_connection()
    reminded_owners = reminded_key_results = 0
    for owner_id, key_results in by_owner.items():
        try:
            count = _remind(owners[owner_id], key_results, now, connection)
        except Exception:  # noqa: BLE001 — one bad address or template must not stop everyone's reminder
            logger.exception("OKR reminders: could not remind %s", owners[owner_id].username)
            continue
        if count:
            reminded_owners += 1
            reminded_key_results += count
    logger.info("OKR reminders: %s key results of %s owners", reminded_key_results, reminded_owners)
    return {"owners": reminded_owners, "key_results": reminded_key_results}

