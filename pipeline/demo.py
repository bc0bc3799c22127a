"""Demo deals for ``manage.py seed_demo``: two pipelines and deals with a believable history.

A second pipeline, "Renewals", is created beside the default "New business". Deals are named after
their company (or contact) and what is being sold, in Turkish or English like the contact; amounts are
in the company currency with a few in EUR/USD; the owner is the contact's rep; the lead source comes
from the contact. Each deal has a history planned up front: created some time in the last months,
moved forward through the stages (now and then back a step), and then won, lost with a reason, still
open, or stuck in a stage past its rotting limit (stale). Open deals expect to close over the coming
months, so the board, the forecast, the weekly review and the win/loss pages all have numbers.

Two ways to write the same plans:

- small sizes go through ``pipeline.services`` (``deal_create`` and ``deal_move``: every rule, stage
  change and event is the real thing), all in one transaction, and then the timestamps are moved back
  to the planned times, consistently: the deal's created/updated/stage-entered/rots/closed times, each
  ``StageChange.changed_at`` and ``seconds_in_from_stage``, and the events' times;
- big sizes (``bulk``) write the deals and their stage changes with ``COPY`` in one transaction, with
  the two tables' secondary indexes and foreign keys set aside and rebuilt at the end (as the contacts
  bulk mode does). No events: nothing *happened* to that data.

Either way a deal's history ends in its current stage, every change starts where the previous one
ended, and the times agree.
"""

import bisect
import random
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import F, Max
from django.db.models.functions import Greatest
from django.utils import timezone

from accounts.models import User
from contacts.demo import (
    NULL,
    SUBJECTS,
    _Copier,
    _copy,
    _id,
    _reserve_ids,
    _set_aside,
    _text,
    _ts,
    _weighted,
)
from contacts.models import Activity, Company, Contact
from crm_okr.models import Event
from crm_okr.text import fold

from . import services
from .models import Deal, LostReason, Pipeline, Stage, StageChange

# --- shape of the data ---------------------------------------------------------------------------

# How far back deals start: half a year for the demo; two years (as far back as the contacts go) for
# the scale data, so a big load is spread like a real history rather than piled into six months.
HISTORY_DAYS = 182
BULK_HISTORY_DAYS = 730
# From this many deals on, the COPY path is the default.
BULK_THRESHOLD = 20_000
# A sales team works a few thousand deals at a time; the rest of a big load is history (won or lost).
OPEN_SHARE = 0.45
DEFAULT_OPEN_CAP = 5_000
STALE_SHARE = 0.2  # of the open deals
WON_SHARE = 0.52  # of the closed deals
RENEWALS_SHARE = 0.2  # of every kind of outcome
BACKWARD_RATE = 0.08
DAY = 86_400

RENEWALS = "Renewals"
RENEWAL_STAGES = [
    {"name": "Up for renewal", "probability": 40, "rotting_days": 45},
    {"name": "In talks", "probability": 60, "rotting_days": 30},
    {"name": "Quote sent", "probability": 80, "rotting_days": 21, "exit_criteria": ["amount", "expected_close_date"]},
    {"name": "Renewed", "probability": 100, "kind": Stage.Kind.WON},
    {"name": "Not renewed", "probability": 0, "kind": Stage.Kind.LOST},
]
# Rotting limits for the default pipeline's stages, set once when they still have the 90-day default.
NEW_BUSINESS_ROTTING = {"Qualified": 30, "Contact made": 21, "Meeting / demo": 30, "Proposal sent": 21,
                        "Negotiation": 30}
LOST_REASON_WEIGHTS = {"Price": 30, "Chose a competitor": 25, "No budget": 15, "No decision / timing": 15,
                       "Product did not fit": 8, "No response": 7}

PRODUCTS = {
    "tr": ["CRM lisansı ({n} kullanıcı)", "Yıllık bakım ve destek", "Saha satış modülü", "E-fatura entegrasyonu",
           "Depo yönetim sistemi", "Danışmanlık paketi ({d} gün)", "Eğitim programı", "Bulut sunucu taşıma",
           "Çağrı merkezi kurulumu", "B2B sipariş portalı", "Raporlama paneli", "Donanım yenileme ({n} cihaz)",
           "Mobil uygulama geliştirme", "Siber güvenlik denetimi"],
    "en": ["CRM licences ({n} seats)", "Annual support plan", "Field sales module", "Warehouse system rollout",
           "Consulting package ({d} days)", "Training programme", "Cloud migration", "Contact centre setup",
           "B2B ordering portal", "Reporting dashboard", "Hardware refresh ({n} devices)", "Security audit"],
}
RENEWAL_NAMES = {
    "tr": ["{y} lisans yenilemesi", "Bakım sözleşmesi yenileme {y}", "{y} destek paketi uzatma"],
    "en": ["{y} licence renewal", "Support contract renewal {y}", "{y} subscription extension"],
}
LOST_NOTES = {
    "tr": ["Rakip %15 daha ucuz teklif verdi.", "Bütçe gelecek yıla kaldı.", "Karar verici değişti.",
           "Mevcut tedarikçiyle devam ediyorlar.", "Dönüş alınamadı."],
    "en": ["A competitor came in 15 % cheaper.", "Budget moved to next year.", "The decision maker left.",
           "Staying with their current supplier.", "No reply after three follow-ups."],
}
DEAL_ACTIVITY_KINDS = [Activity.Kind.CALL, Activity.Kind.EMAIL, Activity.Kind.MEETING, Activity.Kind.NOTE]
FOREIGN = ["EUR", "USD"]

DEAL_COLUMNS = (
    "id", "name", "pipeline_id", "stage_id", "status", "amount", "currency", "expected_close_date", "owner_id",
    "team_id", "contact_id", "company_id", "lead_source_id", "lost_reason_id", "lost_note", "custom_fields",
    "search_text", "stage_entered_at", "rots_at", "created_by_id", "created_at", "updated_at", "closed_at",
)
CHANGE_COLUMNS = (
    "deal_id", "from_stage_id", "from_stage_name", "to_stage_id", "to_stage_name", "direction", "changed_at",
    "actor_id", "seconds_in_from_stage",
)
BULK_MODELS = [Deal, StageChange]


# --- plans ---------------------------------------------------------------------------------------


@dataclass
class DealSummary:
    """What one run added, for the command's final message."""

    deals: int = 0
    by_status: dict = field(default_factory=dict)
    stale: int = 0
    stage_changes: int = 0
    activities: int = 0
    pipelines: list = field(default_factory=list)
    bulk: bool = False
    skipped_existing: int = 0
    seconds: float = 0.0


@dataclass(slots=True)
class _Contact:
    id: int
    owner: int
    team: int | None
    company: int | None
    lead_source: int | None
    lang: str
    created: float
    name: str


@dataclass(slots=True)
class _Plan:
    name: str
    pipeline: Pipeline
    contact: _Contact
    owner: int
    team: int | None
    amount: Decimal | None
    currency: str
    close_date: date | None
    steps: list  # [(Stage, epoch seconds)]: the first is the creation
    lost_reason: LostReason | None = None
    lost_note: str = ""

    @property
    def stage(self) -> Stage:
        return self.steps[-1][0]

    @property
    def entered(self) -> float:
        return self.steps[-1][1]


def _direction(source: Stage | None, target: Stage) -> str:
    if source is None:
        return StageChange.Direction.CREATED
    return services._direction(source, target)


class DealSeeder:
    """Adds ``deals`` demo deals (``run()`` returns a :class:`DealSummary`).

    Deals are added when the database has none yet (or with ``append``), and only on contacts that
    have an owner. ``open_deals`` is how many stay open (default: 45 % of them, at most 5,000); a
    fifth of those are stale. ``bulk`` (default: from :data:`BULK_THRESHOLD` deals on) writes with COPY.
    """

    def __init__(self, *, deals: int, seed: int = 42, open_deals: int | None = None, bulk: bool | None = None,
                 append: bool = False, batch_size: int = 20_000, progress: Callable[[str], None] = print):
        self.total = max(0, deals)
        self.rng = random.Random(seed * 7919 + 3)
        self.open_deals = open_deals
        self.bulk = self.total >= BULK_THRESHOLD if bulk is None else bulk
        self.append = append
        self.batch_size = max(1, batch_size)
        self.progress = progress
        self.now = float(int(timezone.now().timestamp()))
        self.started = time.monotonic()
        self.summary = DealSummary(bulk=self.bulk)

    def _elapsed(self) -> str:
        return f"{time.monotonic() - self.started:.0f} s"

    # -- orchestration --

    def run(self) -> DealSummary:
        if not self.append and Deal.objects.exists():
            self.summary.skipped_existing = Deal.objects.count()
            return self._done()
        with transaction.atomic():
            self._reference_data()
        if not self.total:
            return self._done()
        pool = self._contact_pool()
        if not pool:
            self.progress("no contacts with an owner: no demo deals added")
            return self._done()
        plans = self._plans(pool)
        if self.bulk:
            self._write_bulk(plans)
        else:
            self._write_through_services(plans)
        self._analyze()
        return self._done()

    def _done(self) -> DealSummary:
        self.summary.seconds = time.monotonic() - self.started
        return self.summary

    # -- pipelines, stages, reasons, people --

    def _reference_data(self) -> None:
        admin = User.objects.filter(role=User.Role.ADMIN, is_active=True).order_by("id").first()
        default = services.default_pipeline()
        if default is None:
            default = services.pipeline_create(actor=admin, name="New business", is_default=True)
        renewals = Pipeline.objects.filter(name=RENEWALS).first()
        if renewals is None:
            renewals = services.pipeline_create(actor=admin, name=RENEWALS, stages=RENEWAL_STAGES)
        if not Deal.objects.filter(pipeline=default).exists():
            stages = list(default.stages.filter(kind=Stage.Kind.OPEN))
            if all(s.rotting_days == 90 for s in stages):
                for stage in stages:
                    if stage.name in NEW_BUSINESS_ROTTING:
                        services.stage_update(actor=admin, stage=stage,
                                              data={"rotting_days": NEW_BUSINESS_ROTTING[stage.name]})
        self.pipelines = [default, renewals]
        self.summary.pipelines = self.pipelines
        self.stages = {}
        for pipeline in self.pipelines:
            stages = list(pipeline.stages.order_by("order", "id"))
            self.stages[pipeline.pk] = {
                "open": [s for s in stages if s.kind == Stage.Kind.OPEN],
                "won": next(s for s in stages if s.kind == Stage.Kind.WON),
                "lost": next(s for s in stages if s.kind == Stage.Kind.LOST),
            }
        reasons = list(LostReason.objects.filter(is_active=True).order_by("order", "name"))
        self.reasons = _weighted(reasons, [LOST_REASON_WEIGHTS.get(r.name, 10) for r in reasons]) if reasons else []
        # In id order: the seeded random choices must not depend on the order rows come back in.
        self.users = {u.pk: u for u in User.objects.filter(
            is_active=True, role__in=[User.Role.REP, User.Role.MANAGER]).order_by("id")}
        self.team_reps = defaultdict(list)
        for user in self.users.values():
            if user.role == User.Role.REP and user.team_id:
                self.team_reps[user.team_id].append(user.pk)

    def _contact_pool(self) -> list[_Contact]:
        """Contacts with an owner to hang deals on: all of them for the demo, a random sample for big loads."""
        owners = list(self.users)
        if not owners:
            return []
        qs = Contact.objects.filter(archived_at__isnull=True, owner_id__in=owners)
        size = qs.count()
        limit = min(size, max(self.total + self.total // 5, 1))
        # Up to this size the sample is drawn in Python from rows in id order, so a seed always picks the same
        # contacts; PostgreSQL's random() follows the physical row order, which differs between databases.
        sample_in_python = limit < size <= 200_000
        with connection.cursor() as cursor:
            order = "id" if limit >= size or sample_in_python else "random()"
            if order == "random()":
                cursor.execute("SELECT setseed(%s)", [self.rng.random() * 2 - 1])
            cursor.execute(
                f"""
                SELECT c.id, c.owner_id, c.team_id, c.company_id, c.lead_source_id, c.language,
                       extract(epoch FROM c.created_at), c.first_name || ' ' || c.last_name, co.name
                FROM {Contact._meta.db_table} c LEFT JOIN {Company._meta.db_table} co ON co.id = c.company_id
                WHERE c.archived_at IS NULL AND c.owner_id = ANY(%s)
                ORDER BY {order} LIMIT %s
                """,
                [owners, size if sample_in_python else limit],
            )
            rows = cursor.fetchall()
        if sample_in_python:
            rows = sorted(self.rng.sample(rows, limit))
        return [
            _Contact(id=row[0], owner=row[1], team=row[2], company=row[3], lead_source=row[4],
                     lang="en" if row[5] == "en" else "tr", created=float(row[6]), name=row[8] or row[7])
            for row in rows
        ]

    # -- planning --

    def _outcomes(self) -> list[tuple[str, int]]:
        """Exactly how many deals end in each way, and in which pipeline, shuffled."""
        n = self.total
        opened = min(n, round(n * OPEN_SHARE) if self.open_deals is None else max(0, self.open_deals))
        if self.open_deals is None:
            opened = min(opened, DEFAULT_OPEN_CAP)
        stale = round(opened * STALE_SHARE)
        closed = n - opened
        won = round(closed * WON_SHARE) if self.reasons else closed  # no reasons to lose deals with
        counts = {"open": opened - stale, "stale": stale, "won": won, "lost": closed - won}
        outcomes = []
        for kind, count in counts.items():
            renewals = round(count * RENEWALS_SHARE)
            outcomes += [(kind, 1)] * renewals + [(kind, 0)] * (count - renewals)
        self.rng.shuffle(outcomes)
        return outcomes

    def _plans(self, pool: list[_Contact]):
        """Yield one plan per deal.

        The times come first, evenly over the history; then a contact who already existed when the deal
        started (so recent contacts, which are many, do not pile the deals up just before now).
        """
        rng = self.rng
        earliest = self.now - (BULK_HISTORY_DAYS if self.bulk else HISTORY_DAYS) * DAY
        outcomes = self._outcomes()
        self.progress(f"planning {len(outcomes):,} deals on {len(pool):,} contacts ({self._elapsed()})")
        pool = sorted(pool, key=lambda c: c.created)
        created = [c.created for c in pool]
        for kind, pipeline_index in outcomes:
            pipeline = self.pipelines[pipeline_index]
            for _attempt in range(50):
                steps = self._timeline(kind, pipeline, earliest)
                older = bisect.bisect_left(created, steps[0][1] - 60) if steps else 0
                if older:
                    yield self._plan(kind, pipeline, pool[rng.randrange(older)], steps)
                    break

    def _timeline(self, kind: str, pipeline: Pipeline, earliest: float) -> list | None:
        """The stages the deal goes through and when: [(stage, epoch seconds)], the creation first."""
        r = self.rng.random
        now = self.now
        stages = self.stages[pipeline.pk]
        open_stages = stages["open"]
        start = 1 if len(open_stages) > 1 and r() < 0.2 else 0
        if kind == "won":
            last = len(open_stages) - 1
        else:
            # Early stages hold more deals than late ones.
            last = start + int((len(open_stages) - start) * r() ** 1.4)
        path = [open_stages[start]]
        for index in range(start + 1, last + 1):
            # Sometimes a stage is jumped over, where the stage being left allows it.
            if index < last and path[-1].allow_skip and r() < 0.15:
                continue
            path.append(open_stages[index])
        if len(path) >= 3 and r() < BACKWARD_RATE:
            # One step back (the proposal is reworked, say) and forward again.
            path += [path[-2], path[-1]]
        final = path[-1]
        # Room for every step at least a minute apart, from the first to the last.
        room = 120.0 * (len(path) + 1)

        if kind in ("won", "lost"):
            closing = stages["won" if kind == "won" else "lost"]
            # Closed at any time of the history (evenly), after a few days to a few months in the pipeline.
            t_end = earliest + room + (now - 3600 - earliest - room) * r()
            t0 = max(earliest, min(t_end - DAY * (5 + 95 * r() ** 1.3), t_end - room))
            return list(zip([*path, closing], self._spread(t0, t_end, len(path) + 1), strict=True))
        rot = final.rotting_days * DAY
        if kind == "open":  # in its stage for less than 90 % of the rotting limit
            t_last = now - 60 - min(rot * 0.9, now - earliest) * r() ** 1.5
            before = DAY * 40 * r()
        else:  # stale: in its stage past the rotting limit
            t_last = now - rot - DAY * (1 + 50 * r())
            before = DAY * 30 * r()
        if t_last - room < earliest:
            return None
        t0 = max(earliest, min(t_last - before, t_last - room)) if len(path) > 1 else t_last
        return list(zip(path, self._spread(t0, t_last, len(path)), strict=True))

    def _plan(self, kind: str, pipeline: Pipeline, contact: _Contact, steps: list) -> _Plan:
        rng = self.rng
        r = rng.random
        owner = self._owner(contact)
        amount, currency = self._money(contact, pipeline is self.pipelines[1])
        close_date = self._close_date(kind, steps[-1][1])
        criteria_left = self._criteria_passed(pipeline, steps)
        if amount is not None and "amount" not in criteria_left and kind in ("open", "stale") and r() < 0.2:
            amount = None  # early deals are often not priced yet
        if close_date is not None and "expected_close_date" not in criteria_left and kind != "won" and r() < 0.15:
            close_date = None
        plan = _Plan(
            name=self._name(contact, pipeline is self.pipelines[1], close_date or date.today()),
            pipeline=pipeline, contact=contact, owner=owner, team=self.users[owner].team_id, amount=amount,
            currency=currency, close_date=close_date, steps=steps,
        )
        if kind == "lost":
            plan.lost_reason = self.reasons[int(r() * len(self.reasons))]
            if r() < 0.4:
                plan.lost_note = rng.choice(LOST_NOTES[contact.lang])
        return plan

    def _criteria_passed(self, pipeline, steps) -> set[str]:
        """The exit-criteria keys of every stage the deal leaves forward or jumps over (as ``deal_move``
        checks them): its amount and expected close date must be set for these."""
        open_stages = self.stages[pipeline.pk]["open"]
        keys: set[str] = set()
        for (source, _t), (target, _u) in zip(steps, steps[1:], strict=False):
            for stage in services.stages_left_behind(source, target, open_stages):
                keys.update(stage.exit_criteria)
        return keys

    def _spread(self, start: float, end: float, count: int) -> list[float]:
        """``count`` whole-second times from ``start`` to ``end``, in order, at least a minute apart.

        The caller leaves room: ``end - start >= 60 * (count - 1)``.
        """
        start, end = float(int(start)), float(int(end))
        if count == 1:
            return [end]
        gaps = [self.rng.expovariate(1) + 0.05 for _ in range(count - 1)]
        spare, total = end - start - 60 * (count - 1), sum(gaps)
        times, share = [start], 0.0
        for position, gap in enumerate(gaps, start=1):
            share += gap
            times.append(start + 60 * position + float(int(spare * share / total)))
        times[-1] = end
        return times

    def _owner(self, contact: _Contact) -> int:
        owner = self.users.get(contact.owner)
        if owner is not None and owner.role == User.Role.MANAGER and self.rng.random() < 0.6:
            reps = self.team_reps.get(contact.team) or []
            if reps:
                return self.rng.choice(reps)
        return contact.owner

    def _money(self, contact: _Contact, renewal: bool) -> tuple[Decimal | None, str]:
        r = self.rng.random
        base = settings.CRM_CURRENCY
        currency = base
        if r() < (0.2 if contact.lang == "en" else 0.025):
            currency = self.rng.choice([c for c in FOREIGN if c != base])
        if currency == "TRY":
            amount = 10 ** (4.4 + 2.0 * r())  # 25,000 – 2,500,000
            step = 1000 if amount >= 100_000 else 500
        else:
            amount = 10 ** (3.3 + 1.7 * r())  # 2,000 – 100,000
            step = 100
        if renewal:
            amount *= 0.4
        return Decimal(max(step, int(amount / step) * step)), currency

    def _close_date(self, kind: str, last: float) -> date:
        r = self.rng.random
        today = date.fromtimestamp(self.now)
        if kind == "won":
            return (datetime.fromtimestamp(last, tz=UTC) + timedelta(days=int(-10 + 25 * r()))).date()
        if kind == "lost":
            return (datetime.fromtimestamp(last, tz=UTC) + timedelta(days=int(45 * r()))).date()
        if (kind == "stale" and r() < 0.5) or r() < 0.1:
            return today - timedelta(days=1 + int(40 * r()))  # overdue: should have closed by now
        return today + timedelta(days=2 + int(180 * r() ** 1.6))

    def _name(self, contact: _Contact, renewal: bool, close: date) -> str:
        rng = self.rng
        if renewal:
            what = rng.choice(RENEWAL_NAMES[contact.lang]).format(y=close.year)
        else:
            what = rng.choice(PRODUCTS[contact.lang]).format(n=rng.choice([5, 10, 15, 25, 50, 100, 250]),
                                                            d=rng.choice([5, 10, 20, 30]))
        return f"{contact.name} – {what}"

    # -- small: through the services, then back-dated --

    def _write_through_services(self, plans) -> None:
        plans = list(plans)
        contacts = Contact.objects.in_bulk([p.contact.id for p in plans])
        done: list[tuple[Deal, _Plan]] = []
        with transaction.atomic():
            first_event = (Event.objects.aggregate(m=Max("id"))["m"] or 0) + 1
            for position, plan in enumerate(plans, start=1):
                deal = self._through_services(plan, contacts[plan.contact.id])
                if deal is not None:
                    done.append((deal, plan))
                    self._tally(plan)
                if position % 100 == 0 or position == len(plans):
                    self.progress(f"deals {position:,}/{len(plans):,} ({self._elapsed()})")
            self._backdate(done, first_event)
            self._deal_activities(done)

    def _through_services(self, plan: _Plan, contact: Contact) -> Deal | None:
        actor = self.users[plan.owner]
        first = plan.steps[0][0]
        data = {"name": plan.name, "pipeline": plan.pipeline, "stage": first, "contact": contact,
                "amount": plan.amount, "currency": plan.currency, "expected_close_date": plan.close_date}
        try:
            deal = services.deal_create(actor=actor, data=data)
        except ValidationError as exc:
            self.progress(f"skipped a demo deal the services refused: {exc.message_dict}")
            return None
        for index, (stage, _when) in enumerate(plan.steps[1:], start=1):
            try:
                deal = services.deal_move(actor=actor, deal=deal, stage=stage, lost_reason=plan.lost_reason,
                                          lost_note=plan.lost_note)
            except ValidationError as exc:
                # The pipeline's rules were changed by an admin: the deal stays where it got to.
                self.progress(f"a demo deal stopped in “{plan.steps[index - 1][0].name}”: {exc.message_dict}")
                del plan.steps[index:]
                break
        return deal

    def _backdate(self, done: list[tuple[Deal, _Plan]], first_event: int) -> None:
        """Move every timestamp the services wrote to the planned time of its step."""
        by_deal = defaultdict(list)
        for change in StageChange.objects.filter(deal__in=[d for d, _ in done]).order_by("deal_id", "id"):
            by_deal[change.deal_id].append(change)
        events = defaultdict(list)
        for event in Event.objects.filter(id__gte=first_event, subject_type=Deal._meta.label_lower).order_by("id"):
            events[event.subject_id].append(event)
        deals, changes, touched_events = [], [], []
        for deal, plan in done:
            times = [_at(t) for _stage, t in plan.steps]
            rows = by_deal[deal.pk]
            if len(rows) != len(times):
                raise RuntimeError(f"deal {deal.pk}: {len(rows)} stage changes for {len(times)} planned steps")
            for position, (change, when) in enumerate(zip(rows, times, strict=True)):
                change.changed_at = when
                change.seconds_in_from_stage = int((when - times[position - 1]).total_seconds()) if position else None
                changes.append(change)
            stage, entered = plan.stage, times[-1]
            deal.created_at, deal.updated_at, deal.stage_entered_at = times[0], entered, entered
            deal.rots_at = entered + timedelta(days=stage.rotting_days) if stage.is_open else None
            deal.closed_at = None if stage.is_open else entered
            deals.append(deal)
            step = 0
            for event in events.get(deal.pk, []):
                # One step per service call: created, then each stage change (won/lost ride along with it).
                if event.name == "deal.stage_changed":
                    step += 1
                event.created_at = times[min(step, len(times) - 1)]
                touched_events.append(event)
        _update(Deal, {"created_at": "timestamptz", "updated_at": "timestamptz", "stage_entered_at": "timestamptz",
                       "rots_at": "timestamptz", "closed_at": "timestamptz"}, deals)
        _update(StageChange, {"changed_at": "timestamptz", "seconds_in_from_stage": "bigint"}, changes)
        _update(Event, {"created_at": "timestamptz"}, touched_events)
        self.summary.stage_changes += len(changes)

    def _deal_activities(self, done: list[tuple[Deal, _Plan]]) -> None:
        """A few calls, e-mails, meetings and notes on each deal, between its creation and now (or its close)."""
        r = self.rng.random
        rows = []
        for deal, plan in done:
            start, end = plan.steps[0][1], plan.entered if not plan.stage.is_open else self.now - 600
            subjects = SUBJECTS[plan.contact.lang]
            for _ in range(int(r() * 4)):
                kind = self.rng.choice(DEAL_ACTIVITY_KINDS)
                when = _at(start + (end - start) * r())
                rows.append(Activity(
                    kind=kind, subject=self.rng.choice(subjects[kind]), contact_id=deal.contact_id,
                    company_id=deal.company_id, deal=deal, owner_id=deal.owner_id, team_id=deal.team_id,
                    occurred_at=when, created_at=when,
                ))
        Activity.objects.bulk_create(rows, batch_size=1000)
        last = {}
        for activity in rows:
            for model, pk in ((Contact, activity.contact_id), (Company, activity.company_id)):
                if pk and (last.get((model, pk)) is None or activity.occurred_at > last[(model, pk)]):
                    last[(model, pk)] = activity.occurred_at
        for (model, pk), when in last.items():
            model.objects.filter(pk=pk).update(last_activity_at=Greatest(F("last_activity_at"), when))
        self.summary.activities += len(rows)

    # -- big: COPY --

    def _write_bulk(self, plans) -> None:
        """COPY the deals in the order they were created and their stage changes in the order they happened,
        as a real database fills its tables (so time ranges are as clustered on disk as in real life)."""
        plans = sorted(plans, key=lambda plan: plan.steps[0][1])
        self.progress(f"{len(plans):,} deals planned ({self._elapsed()})")
        with transaction.atomic(), _set_aside(BULK_MODELS, self.progress, self._elapsed):
            ids = _reserve_ids(Deal, len(plans))
            copier = _Copier()
            try:
                changes: list[tuple[float, str]] = []
                for start in range(0, len(plans), self.batch_size):
                    deals = []
                    for deal_id, plan in zip(ids[start:start + self.batch_size], plans[start:start + self.batch_size],
                                             strict=True):
                        deals.append(self._deal_line(deal_id, plan))
                        self._change_lines(deal_id, plan, changes)
                        self._tally(plan)
                    copier.submit([_copy(Deal, DEAL_COLUMNS, deals)])
                    self.progress(f"deals {self.summary.deals:,}/{len(plans):,} ({self._elapsed()})")
                changes.sort(key=lambda change: change[0])
                for start in range(0, len(changes), self.batch_size * 4):
                    batch = [line for _when, line in changes[start:start + self.batch_size * 4]]
                    copier.submit([_copy(StageChange, CHANGE_COLUMNS, batch)])
                    self.summary.stage_changes += len(batch)
                self.progress(f"stage changes {self.summary.stage_changes:,} ({self._elapsed()})")
            finally:
                copier.close()
            self.progress(f"{self.summary.deals:,} deals written; rebuilding their indexes ({self._elapsed()})")

    def _deal_line(self, deal_id: int, plan: _Plan) -> str:
        stage, entered = plan.stage, plan.entered
        is_open = stage.kind == Stage.Kind.OPEN
        contact = plan.contact
        return "\t".join((
            str(deal_id), _text(plan.name), str(plan.pipeline.pk), str(stage.pk), stage.kind,
            NULL if plan.amount is None else str(plan.amount), plan.currency,
            NULL if plan.close_date is None else plan.close_date.isoformat(), str(plan.owner), _id(plan.team),
            str(contact.id), _id(contact.company), _id(contact.lead_source),
            _id(plan.lost_reason.pk if plan.lost_reason else None), _text(plan.lost_note), "{}",
            _text(fold(plan.name)), _ts(entered), _ts(entered + stage.rotting_days * DAY) if is_open else NULL,
            str(plan.owner), _ts(plan.steps[0][1]), _ts(entered), NULL if is_open else _ts(entered),
        ))

    def _change_lines(self, deal_id: int, plan: _Plan, out: list[tuple[float, str]]) -> None:
        deal, actor = str(deal_id), str(plan.owner)
        previous, previous_at = None, None
        for stage, when in plan.steps:
            seconds = NULL if previous is None else str(int(when - previous_at))
            out.append((when, "\t".join((
                deal, NULL if previous is None else str(previous.pk), "" if previous is None else _text(previous.name),
                str(stage.pk), _text(stage.name), _direction(previous, stage), _ts(when), actor, seconds,
            ))))
            previous, previous_at = stage, when

    # -- the end --

    def _tally(self, plan: _Plan) -> None:
        kind = plan.stage.kind
        self.summary.by_status[kind] = self.summary.by_status.get(kind, 0) + 1
        if plan.stage.is_open and self.now - plan.entered > plan.stage.rotting_days * DAY:
            self.summary.stale += 1
        self.summary.deals += 1

    def _analyze(self) -> None:
        vacuum = self.bulk and not connection.in_atomic_block
        with connection.cursor() as cursor:
            for model in BULK_MODELS:
                table = model._meta.db_table
                cursor.execute(f"{'VACUUM ANALYZE' if vacuum else 'ANALYZE'} {table}")


def _update(model, columns: dict[str, str], objects: list) -> None:
    """Write these columns of these rows in a few statements (``bulk_update``'s CASE is slow for this)."""
    from psycopg2.extras import execute_values

    if not objects:
        return
    quote = connection.ops.quote_name
    names = ", ".join(quote(c) for c in columns)
    assignments = ", ".join(f"{quote(c)} = v.{quote(c)}::{kind}" for c, kind in columns.items())
    table = quote(model._meta.db_table)
    rows = [(obj.pk, *(getattr(obj, c) for c in columns)) for obj in objects]
    with connection.cursor() as cursor:
        execute_values(cursor.cursor, f"UPDATE {table} t SET {assignments} FROM (VALUES %s) AS v(id, {names}) "
                       "WHERE t.id = v.id", rows, page_size=1000)


def _at(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, tz=UTC)


def describe(summary: DealSummary) -> str:
    """One line for the command's output."""
    if summary.skipped_existing:
        return (f"The database already has {summary.skipped_existing:,} deals: no demo deals added "
                "(pass --append to add more).")
    statuses = ", ".join(f"{summary.by_status.get(s, 0):,} {s}" for s in ("open", "won", "lost"))
    pipelines = " and ".join(f"“{p}”" for p in summary.pipelines)
    return (f"{summary.deals:,} deals in {pipelines} ({statuses}; {summary.stale:,} of the open ones stale), "
            f"{summary.stage_changes:,} stage changes, {summary.activities:,} activities on deals, in "
            f"{summary.seconds:.0f} s.")

