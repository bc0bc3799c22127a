"""The KPI issue's "Done when" for an admin, in a real browser: an admin writes a new KPI ("MQL rate"), sees
it refuse a typo with a helpful message that points at the mistake, previews it and saves it.

Each step is checked in the page and in the database.
"""

import os
import re

import pytest
from django.urls import reverse

from accounts.models import User
from contacts.models import LifecycleChange
from kpis.models import Kpi
from tests.e2e.conftest import CHROMIUM
from tests.factories import ContactFactory, UserFactory

pytestmark = [
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"end-to-end tests need Debian's Chromium at {CHROMIUM}"),
    pytest.mark.django_db(transaction=True),
]
playwright_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
expect = playwright_api.expect

PASSWORD = "e2e-Secret-42"
TYPO = "count(lifecycle_changes where to_stage = 'mqll') * 100 / count(contacts)"
MQL_RATE = "count(lifecycle_changes where to_stage = 'mql') * 100 / count(contacts)"


@pytest.fixture
def world():
    """An admin who can sign in; four contacts created now, one of which became an MQL now."""
    admin = UserFactory(username="admin", first_name="Sema", last_name="Yılmaz", role=User.Role.ADMIN,
                        language="en")
    admin.set_password(PASSWORD)
    admin.save(update_fields=["password"])
    contacts = [ContactFactory(owner=admin) for _ in range(4)]
    LifecycleChange.objects.create(contact=contacts[0], from_stage="lead", to_stage="mql")
    return {"admin": admin}


def selection(page) -> str:
    return page.evaluate(
        "() => { const t = document.querySelector('#id_formula');"
        " return t.value.slice(t.selectionStart, t.selectionEnd); }")


def test_admin_writes_the_mql_rate_is_refused_a_typo_previews_and_saves(live_server, browser_page, world):
    page = browser_page
    url = live_server.url

    page.goto(url + reverse("login"))
    page.get_by_label("Username").fill("admin")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.goto(url + reverse("kpi-create"))
    expect(page.get_by_role("heading", name="New KPI", level=1)).to_be_visible()

    page.get_by_label("Name").fill("MQL rate")
    page.get_by_label("Unit").select_option(label="Percent")
    page.get_by_label("Frequency").select_option(label="Monthly")
    formula = page.locator("#id_formula")
    preview = page.locator("#kpi-preview")

    # A typo: the preview (debounced while typing) says what is wrong and where, with a caret under it.
    formula.fill(TYPO)
    error = preview.get_by_role("alert")
    expect(error).to_contain_text("“mqll” is not one of")
    expect(error).to_contain_text("mql")
    column = TYPO.index("'mqll'") + 1
    expect(error).to_contain_text(f"Line 1, column {column}")
    expect(error.locator(".caret")).to_have_text(re.compile(rf"^ {{{column - 1}}}\^~+$"))
    # "Show in the formula" selects the mistake in the text box.
    error.get_by_role("button", name="Show in the formula").click()
    expect(formula).to_be_focused()
    assert selection(page) == "'mqll'"

    # Saving it anyway is refused: the page comes back with the message and the cursor on the mistake.
    page.get_by_role("button", name="Create KPI").click()
    expect(page.locator("#formula-error")).to_contain_text(f"(position {column - 1})")
    expect(page.locator("#formula-error .caret")).to_have_text(re.compile(rf"^ {{{column - 1}}}\^"))
    expect(page.locator("#id_formula")).to_be_focused()
    assert selection(page) == "'mqll'"
    assert not Kpi.objects.filter(name="MQL rate").exists()

    # Fixed: the preview shows this month's value. 1 contact became an MQL × 100 / 4 new contacts = 25.0 %.
    formula = page.locator("#id_formula")
    formula.fill(MQL_RATE)
    expect(preview.get_by_test_id("preview-value")).to_have_text("25.0%")
    expect(preview).to_contain_text("Can be broken down by: Team, Owner, Lead source")

    # Saved: the KPI's page opens, and the KPI is there with its first formula version.
    page.get_by_role("button", name="Create KPI").click()
    expect(page).to_have_url(re.compile(re.escape(reverse("kpi-detail", args=["mql-rate"])) + "$"))
    kpi = Kpi.objects.get(slug="mql-rate")
    assert (kpi.name, kpi.formula, kpi.unit, kpi.frequency, kpi.formula_version) == (
        "MQL rate", MQL_RATE, "percent", "monthly", 1)
    assert kpi.created_by == world["admin"] and sorted(kpi.dimensions) == ["owner", "source", "team"]

    # Its edit page shows the formula version.
    page.goto(url + reverse("kpi-edit", args=["mql-rate"]))
    expect(page.locator("#formula-version")).to_have_text("Formula version 1")
