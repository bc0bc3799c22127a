"""The Pipeline issue's "Done when" for a rep, on the Kanban board in a real browser.

The rep drags a deal from Qualified to Proposal, is stopped because the amount is missing, reads the
message that names it, fills it in the panel that opens on the card, and the card lands in Proposal
with both columns' totals updated. Each step is checked in the page and in the database.

With ``E2E_SCREENSHOTS=1`` the test also saves ``docs/screenshot-board.png`` (the board with the
panel open), so the committed picture can be refreshed without writing into the repository on every run.
"""

import os
import re
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.models import User
from contacts import services as contact_services
from pipeline import services
from pipeline.models import Deal, Stage, StageChange
from tests.e2e.conftest import CHROMIUM
from tests.factories import TeamFactory, UserFactory

pytestmark = [
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"end-to-end tests need Debian's Chromium at {CHROMIUM}"),
    pytest.mark.django_db(transaction=True),
]
playwright_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
expect = playwright_api.expect

PASSWORD = "e2e-Secret-42"
SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "screenshot-board.png"


@pytest.fixture
def world():
    """A Sales pipeline (the default) with a realistic handful of deals of a rep and a teammate."""
    north = TeamFactory(name="North")
    admin = UserFactory(username="admin", role=User.Role.ADMIN, is_staff=True)
    rep = UserFactory(username="rep", first_name="Deniz", last_name="Kaya", team=north, role=User.Role.REP,
                      language="en")
    rep.set_password(PASSWORD)
    rep.save(update_fields=["password"])
    teammate = UserFactory(username="teammate", first_name="Elif", last_name="Demir", team=north,
                           role=User.Role.REP)
    pipeline = services.pipeline_create(actor=admin, name="Sales", is_default=True, stages=[
        {"name": "Lead", "probability": 10},
        {"name": "Qualified", "probability": 30, "exit_criteria": ["amount"]},
        {"name": "Proposal", "probability": 60, "exit_criteria": ["amount", "expected_close_date"]},
        {"name": "Negotiation", "probability": 80, "rotting_days": 30},
        {"name": "Won", "probability": 100, "kind": Stage.Kind.WON},
        {"name": "Lost", "probability": 0, "kind": Stage.Kind.LOST},
    ])
    stages = {s.name: s for s in pipeline.stages.all()}

    def contact(first, last, company):
        firm = contact_services.company_create(actor=rep, data={"name": company})
        return contact_services.contact_create(actor=rep, data={"first_name": first, "last_name": last,
                                                                "company": firm})

    def deal(name, stage, owner=rep, days_ago=0, **data):
        made = services.deal_create(actor=owner, data={"name": name, "pipeline": pipeline, **data})
        for step in list(stages.values())[1:list(stages).index(stage) + 1]:
            made = services.deal_move(actor=owner, deal=made, stage=step)
        if days_ago:
            entered = timezone.now() - timedelta(days=days_ago)
            Deal.objects.filter(pk=made.pk).update(
                stage_entered_at=entered, rots_at=entered + timedelta(days=stages[stage].rotting_days))
        return made

    ayse = contact("Ayşe", "Şahin", "Şahin Tekstil A.Ş.")
    kemal = contact("Kemal", "Işık", "Işık Lojistik")
    selin = contact("Selin", "Aydın", "Aydın Gıda")
    deal("Web sitesi yenileme", "Lead", contact=selin, days_ago=3)
    deal("Yıllık destek paketi", "Lead", owner=teammate, amount=Decimal("18000"), days_ago=1)
    target = deal("Filo takip sistemi", "Qualified", contact=kemal, days_ago=6)
    deal("CRM lisansı 25 kullanıcı", "Qualified", contact=ayse, amount=Decimal("62500"), days_ago=12)
    deal("Depo otomasyonu", "Proposal", contact=kemal, amount=Decimal("240000"),
         expected_close_date=date.today() + timedelta(days=30), days_ago=9)
    deal("E-ticaret entegrasyonu", "Proposal", owner=teammate, amount=Decimal("12000"), currency="EUR",
         expected_close_date=date.today() + timedelta(days=45), days_ago=4)
    deal("Kurumsal eğitim", "Negotiation", contact=ayse, amount=Decimal("95000"),
         expected_close_date=date.today() + timedelta(days=10), days_ago=41)  # stale: limit 30 days
    return {"rep": rep, "pipeline": pipeline, "stages": stages, "target": target}


def column(page, stage):
    return page.locator(f"#column-{stage.pk}")


def drag(page, card, target):
    """Drag with the mouse in small steps (the board's SortableJS runs in its pointer-events mode)."""
    start = card.bounding_box()
    end = target.bounding_box()
    page.mouse.move(start["x"] + start["width"] / 2, start["y"] + 12)
    page.mouse.down()
    page.mouse.move(start["x"] + start["width"] / 2 + 10, start["y"] + 20, steps=4)
    page.mouse.move(end["x"] + end["width"] / 2, end["y"] + min(end["height"] / 2, 120), steps=20)
    page.mouse.up()


def test_rep_drags_a_deal_is_stopped_by_the_amount_fills_it_and_moves_on(live_server, browser_page, world):
    page = browser_page
    url = live_server.url
    stages, target = world["stages"], world["target"]

    # Sign in; the board opens on the default pipeline.
    page.goto(url + reverse("login"))
    page.get_by_label("Username").fill("rep")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.goto(url + reverse("board"))
    expect(page.get_by_role("heading", name="Sales", level=1)).to_be_visible()

    qualified, proposal = column(page, stages["Qualified"]), column(page, stages["Proposal"])
    card = page.locator(f"#deal-{target.pk}")
    expect(qualified.locator(".deal-card .deal-name")).to_have_text(["CRM lisansı 25 kullanıcı", "Filo takip sistemi"])
    expect(proposal.locator(".column-count")).to_have_text("2")
    # The EUR deal is counted but left out of the TRY totals.
    expect(proposal.locator(".column-total")).to_have_text("240,000.00 TRY")
    expect(proposal.locator(".column-note")).to_contain_text("+1 in another currency")
    expect(page.locator(".deal-card.is-stale .deal-name")).to_have_text(["Kurumsal eğitim"])

    # Drag "Filo takip sistemi" from Qualified to Proposal: refused, the amount is missing.
    drag(page, card.locator(".deal-amount"), proposal.locator(".column-cards"))
    panel = card.locator(".board-panel")
    expect(panel).to_be_visible()
    expect(panel.get_by_role("alert")).to_have_text("Fill in Amount before moving this deal on.")
    expect(qualified.locator(f"#deal-{target.pk}")).to_have_count(1)  # the card went back
    expect(proposal.locator(".column-count")).to_have_text("2")
    target.refresh_from_db()
    assert target.stage == stages["Qualified"] and target.amount is None
    assert StageChange.objects.filter(deal=target, to_stage=stages["Proposal"]).count() == 0

    amount = panel.get_by_label("Amount")
    expect(amount).to_be_focused()
    amount.fill("45000")
    if os.environ.get("E2E_SCREENSHOTS"):
        page.set_viewport_size({"width": 1440, "height": 1000})
        page.mouse.move(2, 300)  # no hover highlight in the picture
        page.screenshot(path=str(SCREENSHOT), full_page=False)

    # Fill it in the panel: the card lands in Proposal and both columns' totals follow.
    panel.get_by_role("button", name="Save and move").click()
    expect(proposal.locator(f"#deal-{target.pk}")).to_have_count(1)
    expect(qualified.locator(f"#deal-{target.pk}")).to_have_count(0)
    expect(page.locator("#board-status")).to_have_text("Moved “Filo takip sistemi” to “Proposal”.")
    expect(proposal.locator(".column-count")).to_have_text("3")
    expect(proposal.locator(".column-total")).to_have_text("285,000.00 TRY")  # 240,000 + 45,000
    expect(proposal.locator(".column-weighted")).to_contain_text("171,000.00")  # × 60 %
    expect(qualified.locator(".column-count")).to_have_text("1")
    expect(qualified.locator(".column-total")).to_have_text("62,500.00 TRY")
    expect(proposal.locator(f"#deal-{target.pk} .deal-amount")).to_contain_text("45,000.00 TRY")

    target.refresh_from_db()
    assert target.stage == stages["Proposal"] and target.amount == Decimal("45000.00")
    change = StageChange.objects.filter(deal=target).order_by("-changed_at", "-id").first()
    assert (change.from_stage, change.to_stage, change.actor) == (stages["Qualified"], stages["Proposal"],
                                                                   world["rep"])

    # Reloading shows the same board: the move was saved at once.
    page.reload()
    expect(column(page, stages["Proposal"]).locator(f"#deal-{target.pk}")).to_have_count(1)
    expect(column(page, stages["Proposal"]).locator(".column-count")).to_have_text("3")
    assert re.search(r"/board/$", page.url)

    # Keyboard or no drag: "Move to…" on a card does the same move.
    lead, qualified, proposal = (column(page, stages[name]) for name in ("Lead", "Qualified", "Proposal"))
    licence = page.locator(".deal-card", has_text="CRM lisansı 25 kullanıcı")
    licence.get_by_text("Move to…").click()
    licence.get_by_label("Move “CRM lisansı 25 kullanıcı” to").select_option(label="Proposal")
    licence.get_by_role("button", name="Move", exact=True).click()
    expect(proposal.locator(".deal-card", has_text="CRM lisansı 25 kullanıcı")).to_have_count(1)
    expect(proposal.locator(".column-count")).to_have_text("4")
    expect(qualified.locator(".column-count")).to_have_text("0")

    # Dropping on Lost asks why; the card leaves the board and Lost counts it.
    website = page.locator(".deal-card", has_text="Web sitesi yenileme")
    drag(page, website.locator(".deal-amount"), page.locator(".zone-lost"))
    panel = website.locator(".board-panel")
    expect(panel.get_by_role("alert")).to_have_text("Choose why the deal was lost.")
    expect(lead.locator(".deal-card", has_text="Web sitesi yenileme")).to_have_count(1)
    panel.get_by_label("Lost reason").select_option(label="Price")
    panel.get_by_role("button", name="Save and move").click()
    expect(page.locator(".deal-card", has_text="Web sitesi yenileme")).to_have_count(0)
    expect(page.locator(".zone-lost .zone-count")).to_have_text("1 this month")
    expect(lead.locator(".column-count")).to_have_text("1")
    lost = Deal.objects.get(name="Web sitesi yenileme")
    assert lost.status == Deal.Status.LOST and lost.lost_reason.name == "Price"
