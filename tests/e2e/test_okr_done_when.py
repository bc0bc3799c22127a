"""The OKR issue's "Done when", in a real browser: a manager loads the sales template into the current cycle for
their team, the win-rate key result fills itself from the next KPI snapshot, the manager gives the manual
revenue key result to a rep, and the rep checks in on it with a confidence and a note from the key result page,
which then shows the value.

Each step is checked in the page and in the database.
"""

import datetime as dt
import os
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.models import User
from kpis import periods
from kpis.models import Kpi
from okrs import services as okr_services
from okrs.models import CheckIn, KeyResult, Objective
from pipeline import services as pipeline_services
from pipeline.models import LostReason
from tests.e2e.conftest import CHROMIUM
from tests.factories import TeamFactory, UserFactory

pytestmark = [
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"end-to-end tests need Debian's Chromium at {CHROMIUM}"),
    pytest.mark.django_db(transaction=True),
]
playwright_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
expect = playwright_api.expect

PASSWORD = "e2e-Secret-42"


@pytest.fixture
def world():
    """Team North with its manager and a rep (both can sign in); an admin; a cycle around today, active."""
    north = TeamFactory(name="North")
    manager = UserFactory(username="mona", first_name="Mona", last_name="Demir", team=north,
                          role=User.Role.MANAGER, language="en")
    north.manager = manager
    north.save(update_fields=["manager"])
    rep = UserFactory(username="alice", first_name="Alice", last_name="Kaya", team=north, role=User.Role.REP,
                      language="en")
    for user in (manager, rep):
        user.set_password(PASSWORD)
        user.save(update_fields=["password"])
    admin = UserFactory(username="sam", role=User.Role.ADMIN)
    today = timezone.localdate()
    cycle = okr_services.cycle_create(actor=admin, data={
        "name": "Now", "start_date": today - dt.timedelta(days=30), "end_date": today + dt.timedelta(days=60)})
    okr_services.cycle_activate(actor=admin, cycle=cycle)
    return {"north": north, "manager": manager, "rep": rep, "cycle": cycle}


def sign_in(page, url, username):
    page.context.clear_cookies()
    page.goto(url + reverse("login"))
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name="Sign in")).to_have_count(0)


def close_deals(rep, manager, outcomes):
    pipeline = pipeline_services.default_pipeline()
    stages = {s.name: s for s in pipeline.stages.all()}
    price = LostReason.objects.get(name="Price")
    for n, won in enumerate(outcomes):
        deal = pipeline_services.deal_create(actor=rep, data={
            "name": f"Deal {n}", "pipeline": pipeline, "amount": 1000,
            "expected_close_date": timezone.localdate() + dt.timedelta(days=10)})
        if won:
            pipeline_services.deal_move(actor=manager, deal=deal, stage=stages["Won"])
        else:
            pipeline_services.deal_move(actor=manager, deal=deal, stage=stages["Lost"], lost_reason=price)


def test_manager_loads_the_sales_template_kpi_fills_it_and_a_rep_checks_in(live_server, browser_page, world):
    page, url = browser_page, live_server.url
    north, cycle, rep, manager = world["north"], world["cycle"], world["rep"], world["manager"]

    # 1. The manager loads the sales template: the current cycle and their only team are chosen already.
    sign_in(page, url, "mona")
    page.goto(url + reverse("okr-template-load"))
    expect(page.get_by_role("heading", name="Load an OKR template", level=1)).to_be_visible()
    expect(page.locator("#id_cycle")).to_have_value(str(cycle.pk))
    expect(page.locator("#id_team")).to_have_value(str(north.pk))
    page.get_by_text("Sales team", exact=True).click()
    page.get_by_role("button", name="Load the template").click()

    objective = Objective.objects.get()
    expect(page.get_by_role("heading", name=objective.title, level=1)).to_be_visible()
    assert (objective.cycle, objective.team, objective.level) == (cycle, north, "team")
    win_rate = Kpi.objects.get(slug="win-rate")
    win = KeyResult.objects.get(objective=objective, kpi=win_rate)
    manual = KeyResult.objects.get(objective=objective, kpi__isnull=True, title__startswith="Grow monthly")
    assert (win.dimension_kind, win.dimension_id, win.current_value) == ("team", north.pk, None)
    messages = page.get_by_role("status")
    expect(messages).to_contain_text(f"“{win.title}” is measured by the KPI “Win rate”.")
    expect(messages).to_contain_text(f"“{manual.title}” is checked in by hand.")

    # 2. Deals close (3 won, 1 lost) and the next snapshot of the win rate runs: the key result fills itself.
    close_deals(rep, manager, [True, True, True, False])
    from kpis.snapshots import snapshot_kpi

    snapshot_kpi(win_rate, periods.containing(win_rate.frequency))
    win.refresh_from_db()
    assert win.current_value == Decimal("75")  # 3 won ÷ 4 closed × 100
    automatic = CheckIn.objects.get(key_result=win)
    assert automatic.is_automatic and automatic.author is None
    page.goto(url + reverse("okr-kr", args=[win.pk]))
    expect(page.get_by_test_id("current-value")).to_have_text("75%")
    expect(page.get_by_test_id("check-ins")).to_contain_text("automatic")
    # progress (75 − 22) ÷ (30 − 22) = 6.625: 100 % shown, the over-achievement still visible
    expect(page.get_by_test_id("progress")).to_contain_text("100%")
    expect(page.get_by_test_id("progress")).to_contain_text("662.5% reached")

    # 3. The manager gives the manual revenue key result to the rep (an owner change needs no reason).
    page.goto(url + reverse("okr-kr-edit", args=[manual.pk]))
    page.locator("#id_owner").select_option(value=str(rep.pk))
    page.get_by_role("button", name="Save changes").click()
    expect(page.get_by_role("heading", name=manual.title, level=1)).to_be_visible()
    manual.refresh_from_db()
    assert manual.owner == rep

    # 4. The rep checks in on it from the key result page with a value, a confidence and a note.
    sign_in(page, url, "alice")
    page.goto(url + reverse("okr-kr", args=[manual.pk]))
    form = page.get_by_test_id("check-in-form")
    form.get_by_label("Current value").fill("4,5")
    form.get_by_label("Confidence (0–10)").fill("7")
    form.get_by_label("Note").fill("İki büyük teklif bu ay kapanıyor")
    form.get_by_role("button", name="Check in").click()

    expect(page.get_by_role("status")).to_contain_text(f"Checked in on “{manual.title}”.")
    row = CheckIn.objects.get(key_result=manual)
    assert (row.value, row.confidence, row.note, row.author, row.is_automatic) == (
        Decimal("4.5"), 7, "İki büyük teklif bu ay kapanıyor", rep, False)
    # 5. The key result page shows the value: 4.5 % of 0 → 15 % is 30 % progress.
    expect(page.get_by_test_id("current-value")).to_have_text("4.5%")
    expect(page.get_by_test_id("confidence")).to_have_text("7")
    expect(page.get_by_test_id("progress")).to_contain_text("30%")
    expect(page.get_by_test_id("check-ins")).to_contain_text("İki büyük teklif bu ay kapanıyor")
    expect(page.get_by_test_id(f"chart-{manual.pk}").locator("circle.okr-dot")).to_have_count(1)
