"""Demo OKRs, run at the end of ``manage.py seed_demo`` (after the KPIs' demo data).

The current quarter as an active cycle: a company objective, the seed's sales OKR set loaded for the demo
manager's team (its win-rate and sales-cycle key results are measured by the KPIs, so the KPI snapshots that
``backfill_kpis`` and Celery beat take fill them), a rep's own objective, and a few weeks of hand check-ins
(only on days already past). Nothing is added when the database already has a cycle.
"""

import datetime as dt
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.utils import timezone

from kpis.periods import company_tz, containing

from . import services
from .models import Cycle, KeyResult

# Days after the cycle start, the share of the way to the target, the owner's confidence.
TRAJECTORY = [(8, Decimal("0.10"), 8), (22, Decimal("0.25"), 7), (36, Decimal("0.38"), 6), (50, Decimal("0.45"), 6),
              (64, Decimal("0.55"), 6), (78, Decimal("0.70"), 7)]


def seed_demo_okrs(now: dt.datetime | None = None) -> str:
    """Create the demo cycle and return a line saying what was added."""
    if Cycle.objects.exists():
        return "OKRs: a cycle exists already, no demo OKRs added."
    user = get_user_model()
    admin = user.objects.filter(username="admin").first()
    manager = user.objects.filter(username="manager").first()
    rep = user.objects.filter(username="rep").first()
    team = manager.managed_teams.order_by("id").first() if manager else None
    if not (admin and manager and rep and team):
        return "OKRs: the demo users are missing, no demo OKRs added."

    now = now or timezone.now()
    quarter = containing("quarterly", now)
    started = dt.datetime.combine(quarter.first_day, dt.time(9), tzinfo=company_tz())
    cycle = services.cycle_create(actor=admin, data={"start_date": quarter.first_day, "end_date": quarter.last_day})
    services.cycle_activate(actor=admin, cycle=cycle, now=min(started, now))
    company, _warnings = services.objective_create(actor=admin, cycle=cycle, data={
        "title": "Become the CRM partner our customers recommend", "level": "company", "owner": admin})
    sales, _notes = services.load_template(cycle=cycle, team=team, template_key="sales", actor=manager,
                                           parent=company)
    mine, _warnings = services.objective_create(actor=rep, cycle=cycle, data={
        "title": "Master the discovery call", "level": "individual", "parent": sales, "owner": rep})
    calls, _warnings = services.key_result_create(actor=rep, objective=mine, data={
        "title": "Discovery calls booked", "kind": "increase", "start_value": Decimal("0"),
        "target_value": Decimal("40"), "unit": "number"})
    services.key_result_create(actor=rep, objective=mine, data={
        "title": "Complete the product certification", "kind": "milestone"})

    check_ins = 0
    manual = list(KeyResult.objects.filter(objective=sales, kpi__isnull=True, start_value__isnull=False,
                                           target_value__isnull=False)) + [calls]
    for key_result in manual:
        author = rep if key_result.pk == calls.pk else manager
        span = key_result.target_value - key_result.start_value
        for days, share, confidence in TRAJECTORY:
            when = started + dt.timedelta(days=days)
            if when >= now:
                break
            services.check_in(actor=author, key_result=key_result, value=key_result.start_value + span * share,
                              confidence=confidence, note="Weekly review" if days == 50 else "", now=when)
            check_ins += 1
    return (f"OKRs: cycle “{cycle.name}” with {cycle.objectives.count()} objectives, "
            f"{KeyResult.objects.filter(objective__cycle=cycle).count()} key results and {check_ins} check-ins.")
