"""seed_demo's deals (pipeline/demo.py): the services path for the demo, the COPY path for big loads."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.utils import timezone

from accounts.models import User
from contacts.models import Activity, Contact
from contacts.selectors import contacts_visible_to
from crm_okr.models import Event
from crm_okr.text import fold
from pipeline import selectors
from pipeline.demo import HISTORY_DAYS, NEW_BUSINESS_ROTTING, RENEWALS
from pipeline.models import Deal, Pipeline, Stage, StageChange
from pipeline.services import stages_left_behind

pytestmark = pytest.mark.django_db


def seed(**options) -> str:
    out = StringIO()
    call_command("seed_demo", stdout=out, **{"contacts": 150, "deals": 60, "password": "pw", "seed": 5, **options})
    return out.getvalue()


def expected_direction(source, target) -> str:
    if source is None:
        return StageChange.Direction.CREATED
    if target.kind == Stage.Kind.WON:
        return StageChange.Direction.WON
    if target.kind == Stage.Kind.LOST:
        return StageChange.Direction.LOST
    if source.kind != Stage.Kind.OPEN:
        return StageChange.Direction.REOPENED
    forward = (target.order, target.pk) > (source.order, source.pk)
    return StageChange.Direction.FORWARD if forward else StageChange.Direction.BACKWARD


def check_history_and_times(deals, *, history_days: int) -> None:
    """Every deal's stage history ends in its stage, and every stored time agrees with it."""
    now = timezone.now()
    stages = {s.pk: s for s in Stage.objects.all()}
    changes = {}
    for change in StageChange.objects.order_by("changed_at", "id"):
        changes.setdefault(change.deal_id, []).append(change)
    for deal in deals:
        rows = changes[deal.pk]
        first = rows[0]
        assert (first.direction, first.from_stage_id, first.from_stage_name, first.seconds_in_from_stage) == (
            StageChange.Direction.CREATED, None, "", None), deal
        assert first.changed_at == deal.created_at
        assert now - timedelta(days=history_days + 1) < deal.created_at < now
        assert deal.created_at >= deal.contact.created_at
        for before, after in zip(rows, rows[1:], strict=False):
            assert after.changed_at > before.changed_at
            assert (after.from_stage_id, after.from_stage_name) == (before.to_stage_id, before.to_stage_name)
            assert after.seconds_in_from_stage == int((after.changed_at - before.changed_at).total_seconds())
            assert after.direction == expected_direction(stages[after.from_stage_id], stages[after.to_stage_id])
            # The exit criteria of the stages left behind (and jumped over) were met.
            source, target = stages[after.from_stage_id], stages[after.to_stage_id]
            open_stages = [s for s in stages.values() if s.pipeline_id == deal.pipeline_id and s.is_open]
            for stage in stages_left_behind(source, target, open_stages):
                for key in stage.exit_criteria:
                    assert getattr(deal, key) is not None, (deal, stage, key)
        last = rows[-1]
        assert last.changed_at <= now
        assert (last.to_stage_id, last.to_stage_name) == (deal.stage_id, deal.stage.name)
        assert deal.stage_entered_at == last.changed_at == deal.updated_at
        assert deal.status == deal.stage.kind
        assert all(row.actor_id == deal.owner_id for row in rows)
        if deal.is_open:
            assert deal.rots_at == deal.stage_entered_at + timedelta(days=deal.stage.rotting_days)
            assert (deal.closed_at, deal.lost_reason_id) == (None, None)
        else:
            assert (deal.rots_at, deal.closed_at) == (None, deal.stage_entered_at)
            assert (deal.lost_reason_id is not None) == (deal.status == Deal.Status.LOST)


def check_people_and_money(deals) -> None:
    for deal in deals:
        assert deal.owner.role in (User.Role.REP, User.Role.MANAGER)
        assert deal.team_id == deal.owner.team_id
        # The owner can see the contact (the services checked it), and the deal took the contact's links.
        assert contacts_visible_to(deal.owner).filter(pk=deal.contact_id).exists()
        assert (deal.company_id, deal.lead_source_id) == (deal.contact.company_id, deal.contact.lead_source_id)
        assert deal.created_by_id == deal.owner_id
        assert deal.search_text == fold(deal.name)
        assert " – " in deal.name
    currencies = [d.currency for d in deals]
    assert currencies.count("TRY") > len(deals) * 0.8
    assert all(d.amount is None or d.amount > 0 for d in deals)
    assert any(d.amount is None for d in deals if d.is_open)


def check_mix(deals, *, history_days: int) -> None:
    statuses = {d.status for d in deals}
    assert statuses == {"open", "won", "lost"}
    assert any(d.is_stale for d in deals)
    assert any(d.is_open and not d.is_stale for d in deals)
    assert {d.pipeline.name for d in deals} == {"New business", RENEWALS}
    today = timezone.localdate()
    open_dates = [d.expected_close_date for d in deals if d.is_open and d.expected_close_date]
    assert max(open_dates) > today + timedelta(days=30)
    assert len({(d.year, d.month) for d in open_dates if d >= today}) >= 3
    assert {d.lost_reason.name for d in deals if d.lost_reason} >= {"Price"}
    # Deals closed all along the history (about evenly), not piled up just before now.
    closed = [d.closed_at for d in deals if d.closed_at]
    last_month = sum(c > timezone.now() - timedelta(days=30) for c in closed)
    assert last_month <= len(closed) * (2 * 30 / history_days + 0.1)
    assert min(closed) < timezone.now() - timedelta(days=history_days * 0.6)


def all_deals():
    return list(Deal.objects.select_related("stage", "pipeline", "owner", "contact", "lost_reason"))


def test_demo_deals_go_through_the_services_with_a_consistent_back_dated_history():
    out = seed()
    deals = all_deals()
    assert len(deals) == 60
    assert "60 deals in “New business” and “Renewals”" in out
    assert "stopped" not in out and "refused" not in out  # every planned move passed the services' rules
    renewals = Pipeline.objects.get(name=RENEWALS)
    assert [s.name for s in renewals.stages.order_by("order")] == [
        "Up for renewal", "In talks", "Quote sent", "Renewed", "Not renewed"]
    default = Pipeline.objects.get(is_default=True)
    assert {s.name: s.rotting_days for s in default.stages.filter(kind="open")} == NEW_BUSINESS_ROTTING
    check_history_and_times(deals, history_days=HISTORY_DAYS)
    check_people_and_money(deals)
    check_mix(deals, history_days=HISTORY_DAYS)
    # The services' events are there, moved back with the steps they describe.
    created = Event.objects.filter(name="deal.created")
    assert created.count() == 60
    for event in created:
        assert event.created_at == Deal.objects.get(pk=event.subject_id).created_at
    won = Event.objects.filter(name="deal.won")
    assert won.count() == Deal.objects.filter(status="won").count()
    for event in won:
        assert event.created_at == Deal.objects.get(pk=event.subject_id).closed_at
    # Calls, e-mails and meetings on the deals, inside their lifetime.
    activities = Activity.objects.filter(deal__isnull=False).select_related("deal")
    assert activities.count() > 30
    for activity in activities:
        assert activity.deal.created_at <= activity.occurred_at <= timezone.now()
        assert activity.contact_id == activity.deal.contact_id


def test_the_pages_have_something_to_show():
    out = seed(deals=120)
    assert "stopped" not in out and "refused" not in out
    rep = User.objects.get(username="rep")
    default = Pipeline.objects.get(is_default=True)
    columns = selectors.board(user=rep, pipeline=default)
    open_columns = [c for c in columns if c.stage.kind == "open"]
    assert sum(c.count for c in open_columns) >= 10
    assert sum(1 for c in open_columns if c.count) >= 3
    assert any(c.weighted > 0 for c in open_columns)
    # Something happened last week (the weekly review), and deals closed in the last month (forecast, win/loss).
    week_ago = timezone.now() - timedelta(days=7)
    assert StageChange.objects.filter(changed_at__gte=week_ago).exclude(direction="created").exists()
    assert Deal.objects.filter(status="won", closed_at__gte=timezone.now() - timedelta(days=31)).exists()
    assert StageChange.objects.filter(direction="backward").exists()


def test_bulk_path_writes_the_same_kind_of_history_and_puts_back_every_index():
    def indexes():
        with connection.cursor() as cursor:
            cursor.execute("SELECT indexname FROM pg_indexes WHERE tablename IN ('pipeline_deal', "
                           "'pipeline_stagechange') ORDER BY 1")
            names = [row[0] for row in cursor.fetchall()]
            cursor.execute("SELECT conname FROM pg_constraint WHERE conrelid IN ('pipeline_deal'::regclass, "
                           "'pipeline_stagechange'::regclass) ORDER BY 1")
            return names, [row[0] for row in cursor.fetchall()]

    before = indexes()
    out = seed(bulk=True, deals=90, open_deals=40)
    assert indexes() == before
    deals = all_deals()
    assert len(deals) == 90
    assert "90 deals" in out
    # Exactly as many open as asked, a fifth of them stale; a fifth of every kind in Renewals.
    assert sum(d.is_open for d in deals) == 40
    assert sum(d.is_stale for d in deals) == 8
    assert sum(d.is_open and d.pipeline.name == RENEWALS for d in deals) == 8
    check_history_and_times(deals, history_days=730)
    check_people_and_money(deals)
    check_mix(deals, history_days=730)
    assert not Event.objects.filter(name__startswith="deal.").exists()  # nothing happened to bulk data
    # Rows lie in the order a real database would have them: deals by creation, stage changes by time.
    created = list(Deal.objects.order_by("id").values_list("created_at", flat=True))
    assert created == sorted(created)
    moved = list(StageChange.objects.order_by("id").values_list("changed_at", flat=True))
    assert moved == sorted(moved)
    # Same stored values as a deal made through the service.
    from pipeline import services

    sample = deals[0]
    twin = services.deal_create(actor=sample.owner, data={"name": sample.name, "contact": sample.contact})
    assert twin.search_text == sample.search_text


def test_deals_are_added_once_then_only_with_append_and_to_existing_contacts():
    seed(deals=20)
    assert Deal.objects.count() == 20
    out = seed(deals=20)
    assert Deal.objects.count() == 20
    assert "already has 20 deals" in out
    seed(deals=10, contacts=0, append=True)
    assert Deal.objects.count() == 30
    assert Contact.objects.count() == 150
    assert Pipeline.objects.filter(name=RENEWALS).count() == 1


def test_default_is_a_fifth_of_the_contacts_and_bad_numbers_are_refused():
    seed(contacts=100, deals=None)
    assert Deal.objects.count() == 20
    with pytest.raises(CommandError, match="--deals"):
        seed(deals=-1)
    with pytest.raises(CommandError, match="--open-deals"):
        seed(open_deals=-5)
