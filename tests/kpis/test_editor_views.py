"""The KPI editor pages: admins create, preview, edit and delete KPIs; everyone else is refused; a bad formula
is refused with its message, position and a caret; bad input never answers 500; the language help page is
generated from the registry."""

import re
from decimal import Decimal

import pytest
from django.urls import reverse

from contacts.models import LifecycleChange
from kpis.forms import FormulaProblem, KpiForm, kpi_slugify
from kpis.formula import compile_formula, registry
from kpis.language_help import examples
from kpis.models import Frequency, Kpi, KpiSnapshot
from tests.factories import ContactFactory

MQL_RATE = "count(lifecycle_changes where to_stage = 'mql') * 100 / count(contacts)"

pytestmark = pytest.mark.django_db


def form_data(**overrides) -> dict:
    data = {
        "name": "MQL rate", "slug": "", "description": "Contacts that became MQLs per 100 new contacts.",
        "formula": MQL_RATE, "unit": "percent", "decimals": "1", "frequency": "monthly", "direction": "higher",
        "benchmark_low": "10", "benchmark_high": "30", "benchmark_text": "", "is_active": "on",
    }
    data.update(overrides)
    return {key: value for key, value in data.items() if value is not None}


@pytest.fixture
def custom_kpi(sam):
    from kpis import services

    return services.kpi_create(actor=sam, name="Deals made", slug="deals-made", formula="count(deals)",
                               unit="number", decimals=0, frequency="weekly", direction="higher")


@pytest.fixture
def mql_world(alice):
    """Four contacts created now; one became an MQL now (and one changed to SQL, which does not count)."""
    contacts = [ContactFactory(owner=alice) for _ in range(4)]
    LifecycleChange.objects.create(contact=contacts[0], from_stage="lead", to_stage="mql")
    LifecycleChange.objects.create(contact=contacts[1], from_stage="lead", to_stage="sql")
    return contacts


# --- who may -------------------------------------------------------------------------------------


def test_anonymous_is_sent_to_sign_in(client, custom_kpi):
    for url in (reverse("kpi-create"), reverse("kpi-edit", args=[custom_kpi.slug]),
                reverse("kpi-delete", args=[custom_kpi.slug]), reverse("kpi-language-help")):
        response = client.get(url)
        assert response.status_code == 302 and response.url.startswith(reverse("login")), url
    response = client.post(reverse("kpi-preview"), {"formula": "count(deals)"})
    assert response.status_code == 302 and response.url.startswith(reverse("login"))


@pytest.mark.parametrize("persona", ["alice", "mona", "integ"])
def test_only_admins_write_kpis(request, client_for, custom_kpi, persona):
    client = client_for(request.getfixturevalue(persona))
    edit, delete = reverse("kpi-edit", args=[custom_kpi.slug]), reverse("kpi-delete", args=[custom_kpi.slug])
    assert client.get(reverse("kpi-create")).status_code == 403
    assert client.post(reverse("kpi-create"), form_data()).status_code == 403
    assert client.get(edit).status_code == 403
    assert client.post(edit, form_data(name="Hacked", formula="count(contacts)")).status_code == 403
    assert client.get(delete).status_code == 403
    assert client.post(delete).status_code == 403
    assert client.post(reverse("kpi-preview"), {"formula": "count(deals)"}).status_code == 403
    # Nothing changed.
    custom_kpi.refresh_from_db()
    assert (custom_kpi.name, custom_kpi.formula, custom_kpi.formula_version) == ("Deals made", "count(deals)", 1)
    assert not Kpi.objects.filter(slug="mql-rate").exists()


def test_everyone_signed_in_reads_the_language_help(client_for, alice):
    assert client_for(alice).get(reverse("kpi-language-help")).status_code == 200


# --- create --------------------------------------------------------------------------------------


def test_admin_creates_the_mql_rate(client_for, sam):
    client = client_for(sam)
    page = client.get(reverse("kpi-create"))
    assert page.status_code == 200
    assert b'hx-post="%s"' % reverse("kpi-preview").encode() in page.content

    response = client.post(reverse("kpi-create"), form_data())

    kpi = Kpi.objects.get(slug="mql-rate")
    assert response.status_code == 302 and response.url == reverse("kpi-detail", args=["mql-rate"])
    assert (kpi.name, kpi.formula, kpi.unit, kpi.decimals, kpi.frequency) == (
        "MQL rate", MQL_RATE, "percent", 1, "monthly")
    assert (kpi.benchmark_low, kpi.benchmark_high) == (Decimal("10"), Decimal("30"))
    assert kpi.formula_version == 1 and kpi.created_by == sam and not kpi.is_builtin and kpi.is_active
    # lifecycle_changes and contacts both reach team, owner and source through the contact.
    assert sorted(kpi.dimensions) == ["owner", "source", "team"]


def test_a_typo_in_a_choice_is_refused_with_a_caret_and_nothing_is_saved(client_for, sam):
    formula = "count(lifecycle_changes where to_stage = 'mqll') * 100 / count(contacts)"
    response = client_for(sam).post(reverse("kpi-create"), form_data(formula=formula))

    assert response.status_code == 422
    problem = response.context["form"].formula_problem
    assert problem.position == formula.index("'mqll'")
    assert "“mqll” is not one of" in problem.message and "mql" in problem.message
    html = response.content.decode()
    column = formula.index("'mqll'") + 1
    assert f"Line 1, column {column}" in html
    # The caret sits under the quoted value in the excerpt.
    assert problem.caret.index("^") == problem.excerpt.index("'mqll'")
    assert f'data-error-position="{problem.position}"' in html
    assert not Kpi.objects.filter(name="MQL rate").exists()


def test_a_misspelt_field_suggests_the_right_one(client_for, sam):
    formula = "count(deals where stauts = 'won')"
    response = client_for(sam).post(reverse("kpi-create"), form_data(formula=formula))

    assert response.status_code == 422
    problem = response.context["form"].formula_problem
    assert "“stauts”" in problem.message and "did you mean “status”" in problem.message
    assert problem.position == formula.index("stauts") and problem.column == formula.index("stauts") + 1
    assert f"(position {problem.position})" in response.content.decode()
    assert Kpi.objects.count() == Kpi.objects.filter(is_builtin=True).count()


def test_a_multi_line_formula_points_at_the_right_line(client_for, sam):
    # Browsers post CRLF line ends; the positions are those of the text box (LF).
    formula = "# MQLs\r\ncount(contacts) /\r\n  sum(deals.name)"
    response = client_for(sam).post(reverse("kpi-create"), form_data(formula=formula))

    assert response.status_code == 422
    problem = response.context["form"].formula_problem
    typed = formula.replace("\r\n", "\n")
    assert problem.line == 3 and problem.excerpt == "  sum(deals.name)"
    assert problem.position is not None and typed[problem.position:].startswith(("name", "deals", "sum"))


def test_a_key_is_made_from_a_turkish_name():
    assert kpi_slugify("Işık oranı — Şubat İstanbul") == "isik-orani-subat-istanbul"
    assert kpi_slugify("Çağrı / görüşme") == "cagri-gorusme"
    assert kpi_slugify("📈 %%%") == ""


def test_a_key_made_from_the_name_avoids_a_taken_one(client_for, sam, custom_kpi):
    client_for(sam).post(reverse("kpi-create"), form_data(name="Deals made", formula="count(deals) * 2"))
    assert Kpi.objects.filter(slug="deals-made-2", name="Deals made").exists()


@pytest.mark.parametrize("slug, message", [
    ("win-rate", "Another KPI already has the key “win-rate”."),
    ("language", "is a word the KPI pages use"),
    ("MQL Rate!", "Use lower-case letters"),
    ("ışık", "Use lower-case letters"),
])
def test_a_bad_key_is_refused(client_for, sam, slug, message):
    before = Kpi.objects.count()
    response = client_for(sam).post(reverse("kpi-create"), form_data(slug=slug))
    assert response.status_code == 422
    assert any(message in error for error in response.context["form"].errors["slug"])
    assert Kpi.objects.count() == before


def test_a_name_without_latin_letters_needs_a_key(client_for, sam):
    response = client_for(sam).post(reverse("kpi-create"), form_data(name="📈📈"))
    assert response.status_code == 422 and "slug" in response.context["form"].errors


def test_a_benchmark_that_ends_below_its_start_is_refused(client_for, sam):
    response = client_for(sam).post(reverse("kpi-create"), form_data(benchmark_low="50", benchmark_high="10"))
    assert response.status_code == 422 and "benchmark_high" in response.context["form"].errors
    assert not Kpi.objects.filter(slug="mql-rate").exists()


# --- edit ----------------------------------------------------------------------------------------


def test_changing_the_formula_bumps_its_version(client_for, sam, custom_kpi):
    client = client_for(sam)
    url = reverse("kpi-edit", args=[custom_kpi.slug])
    page = client.get(url)
    assert page.status_code == 200 and "Formula version 1" in page.content.decode()

    data = form_data(name="Deals made", formula="count(deals where status = 'won')", unit="number",
                     decimals="0", frequency="weekly", slug="renamed")
    response = client.post(url, data)

    custom_kpi.refresh_from_db()
    assert response.status_code == 302 and response.url == reverse("kpi-detail", args=["deals-made"])
    assert custom_kpi.formula == "count(deals where status = 'won')" and custom_kpi.formula_version == 2
    assert custom_kpi.slug == "deals-made"  # the key never changes (other formulas use it)
    assert "Formula version 2" in client.get(url).content.decode()

    # Changing only the name keeps the version.
    client.post(url, {**data, "name": "Deals won"})
    custom_kpi.refresh_from_db()
    assert (custom_kpi.name, custom_kpi.formula_version) == ("Deals won", 2)


def test_a_refused_edit_changes_nothing(client_for, sam, custom_kpi):
    response = client_for(sam).post(reverse("kpi-edit", args=[custom_kpi.slug]),
                                    form_data(name="Other", formula="count(deals where status = 'wonn')"))
    assert response.status_code == 422
    assert "“wonn” is not one of: open, won, lost." in response.context["form"].formula_problem.message
    custom_kpi.refresh_from_db()
    assert (custom_kpi.name, custom_kpi.formula, custom_kpi.formula_version) == ("Deals made", "count(deals)", 1)


def test_a_kpi_cannot_use_itself(client_for, sam, custom_kpi):
    response = client_for(sam).post(reverse("kpi-edit", args=[custom_kpi.slug]),
                                    form_data(name="Deals made", formula="kpi('deals-made') + 1"))
    assert response.status_code == 422
    assert "cycle" in response.context["form"].formula_problem.message
    custom_kpi.refresh_from_db()
    assert custom_kpi.formula == "count(deals)"


def test_a_builtin_kpi_can_be_deactivated_but_not_deleted(client_for, sam):
    client = client_for(sam)
    builtin = Kpi.objects.get(slug="win-rate")
    page = client.get(reverse("kpi-edit", args=["win-rate"]))
    assert reverse("kpi-delete", args=["win-rate"]) not in page.content.decode()

    data = {name: "" if value is None else value for name, value in KpiForm(instance=builtin).initial.items()}
    data.pop("is_active")
    data.pop("snapshot_at_start")
    response = client.post(reverse("kpi-edit", args=["win-rate"]), data)
    builtin.refresh_from_db()
    assert response.status_code == 302 and not builtin.is_active and builtin.formula_version == 1

    response = client.post(reverse("kpi-delete", args=["win-rate"]))
    assert response.status_code == 422 and "Built-in KPIs cannot be deleted" in response.content.decode()
    assert Kpi.objects.filter(slug="win-rate").exists()


def test_an_unknown_kpi_is_404(client_for, sam):
    client = client_for(sam)
    assert client.get(reverse("kpi-edit", args=["no-such-kpi"])).status_code == 404
    assert client.post(reverse("kpi-delete", args=["no-such-kpi"])).status_code == 404


# --- delete --------------------------------------------------------------------------------------


def test_admin_deletes_a_custom_kpi_with_its_snapshots(client_for, sam, custom_kpi):
    from django.utils import timezone

    now = timezone.now()
    KpiSnapshot.objects.create(kpi=custom_kpi, frequency="weekly", period_start=now, period_end=now, value=3,
                               formula_version=1)
    client = client_for(sam)
    page = client.get(reverse("kpi-delete", args=[custom_kpi.slug]))
    assert page.status_code == 200 and "its 1 snapshot will be deleted" in page.content.decode()

    response = client.post(reverse("kpi-delete", args=[custom_kpi.slug]))

    assert response.status_code == 302 and response.url == reverse("kpi-dashboard")
    assert not Kpi.objects.filter(pk=custom_kpi.pk).exists()
    assert not KpiSnapshot.objects.filter(kpi_id=custom_kpi.pk).exists()


def test_a_kpi_other_formulas_use_is_not_deleted(client_for, sam, custom_kpi):
    from kpis import services

    services.kpi_create(actor=sam, name="Twice", slug="twice", formula="kpi('deals-made') * 2")
    response = client_for(sam).post(reverse("kpi-delete", args=[custom_kpi.slug]))
    assert response.status_code == 422 and "Other KPIs use this one: “Twice”" in response.content.decode()
    assert Kpi.objects.filter(pk=custom_kpi.pk).exists()


# --- preview -------------------------------------------------------------------------------------


def preview(client, **data):
    defaults = {"frequency": "monthly", "unit": "percent", "decimals": "1"}
    return client.post(reverse("kpi-preview"), {**defaults, **data}, HTTP_HX_REQUEST="true")


def test_preview_shows_the_value_for_the_current_period(client_for, sam, mql_world):
    response = preview(client_for(sam), formula=MQL_RATE)

    assert response.status_code == 200
    assert response.templates[0].name == "kpis/_preview.html"
    # 1 change to 'mql' this month × 100 / 4 contacts created this month = 25 → "25.0%"
    assert response.context["preview"]["value"] == Decimal("25")
    html = response.content.decode()
    assert re.search(r'data-testid="preview-value">25\.0%<', html)
    assert "Can be broken down by: " in html


def test_preview_formats_by_unit(client_for, sam, mql_world):
    client = client_for(sam)
    # 4 contacts created this week.
    assert "4 days" in preview(client, formula="count(contacts)", unit="days", decimals="0").content.decode()
    assert "4.00 TRY" in preview(client, formula="count(contacts)", unit="currency", decimals="2").content.decode()


def test_preview_of_a_division_by_zero_is_no_value(client_for, sam):
    response = preview(client_for(sam), formula="count(deals) / count(contacts)")
    assert response.status_code == 200 and response.context["preview"]["value"] is None
    assert ">n/a<" in response.content.decode()


def test_preview_shows_the_error_with_its_position(client_for, sam):
    formula = "count(deals where stauts = 'won')"
    response = preview(client_for(sam), formula=formula)

    assert response.status_code == 422
    problem = response.context["preview"]["problem"]
    assert isinstance(problem, FormulaProblem) and problem.position == formula.index("stauts")
    html = response.content.decode()
    assert "did you mean “status”" in html
    assert f'data-error-position="{problem.position}"' in html
    assert "<span class=\"caret\">" + " " * formula.index("stauts") + "^" in html


def test_preview_refuses_a_cycle_through_the_edited_kpi(client_for, sam, custom_kpi):
    response = preview(client_for(sam), formula="kpi('deals-made')", slug="deals-made")
    assert response.status_code == 422 and "cycle" in response.context["preview"]["problem"].message


@pytest.mark.parametrize("formula", [
    "count(deals) + " * 20_000,  # 300,000 characters
    "(" * 5000 + "1" + ")" * 5000,
    "count(kişiler where şehir = 'İstanbul')",
    "count(deals where name = 'Şahin Işık Ğ ü')",
    "__import__('os').system('touch /tmp/pwned')",
    "'; DROP TABLE kpis_kpi; --",
    "count(deals where name = '\\'); DROP TABLE kpis_kpi; --')",
    "<script>alert(1)</script>",
    "{{ 7*7 }}{% debug %}",
    "count(deals where amount > 99999999999999999999999999)",
    "sum(deals.amount) * 1000000000000 * 1000000000000 * 1000000000000 * 1000000000000",
    "count(contacts during last 99999999999 days)",
    "📈 + 💥",
    "kpi('" + "a" * 300 + "')",
    "\x00count(deals)",
    "count(deals)\u202e",
])
def test_hostile_or_huge_input_never_fails(client_for, sam, formula):
    client = client_for(sam)
    response = preview(client, formula=formula)
    assert response.status_code in (200, 422)
    assert b"<script>alert(1)</script>" not in response.content
    response = client.post(reverse("kpi-create"), form_data(formula=formula))
    assert response.status_code in (302, 422)
    assert b"<script>alert(1)</script>" not in response.content
    assert Kpi.objects.filter(is_builtin=False).count() <= 1
    assert Kpi.objects.filter(slug="win-rate").exists()


def test_preview_with_malformed_settings_falls_back(client_for, sam):
    response = preview(client_for(sam), formula="count(deals)", frequency="hourly", unit="furlongs", decimals="x")
    assert response.status_code == 200
    assert response.context["preview"]["value"] == Decimal("0")


def test_preview_with_an_empty_formula_asks_for_one(client_for, sam):
    response = preview(client_for(sam), formula="   ")
    assert response.status_code == 200 and "Write a formula" in response.content.decode()


def test_the_preview_button_works_without_javascript(client_for, sam, mql_world):
    response = client_for(sam).post(reverse("kpi-create"), {**form_data(), "action": "preview"})
    assert response.status_code == 200
    assert response.context["preview"]["value"] == Decimal("25")
    assert not Kpi.objects.filter(slug="mql-rate").exists()


# --- language help -------------------------------------------------------------------------------


def test_the_language_help_lists_every_source_field_and_choice_from_the_registry(client_for, sam):
    html = client_for(sam).get(reverse("kpi-language-help")).content.decode()
    for name in registry.public_sources():
        source = registry.get(name)
        assert f'id="source-{name}"' in html
        for field_name, field in source.fields.items():
            assert f"<code>{name}.{field_name}</code>" in html, (name, field_name)
            for choice in field.choices:
                assert f"<code>'{choice}'</code>" in html, (name, field_name, choice)
        for relation in source.relations:
            assert f"<code>has {relation}</code>" in html
    assert "MQL rate" in html and "count(lifecycle_changes where to_stage = &#x27;mql&#x27;)" in html
    for window in ("during previous period", "during last N days", "at period start", "at period end"):
        assert window in html


@pytest.mark.parametrize("example", examples(), ids=lambda e: e.title)
def test_every_example_in_the_help_compiles(example):
    # The built-in KPIs the "other KPIs" example uses exist (data migration).
    compile_formula(example.formula)


def test_the_edit_form_keeps_frequency_choices():
    assert dict(KpiForm().fields["frequency"].choices)[Frequency.WEEKLY] == "Weekly"


@pytest.mark.parametrize("text, position, end, excerpt, caret, line, column", [
    # The end of the formula (a missing ")"): the caret just past the last character.
    ("count(deals", 11, 12, "count(deals", " " * 11 + "^", 1, 12),
    # A tab keeps its width so the caret lines up.
    ("a\tb + x", 4, 5, "a\tb + x", " \t  ^", 1, 5),
    # The second line of a formula with a comment.
    ("# c\n  sum(deals.name)", 12, 16, "  sum(deals.name)", " " * 8 + "^~~~", 2, 9),
])
def test_the_caret_sits_under_the_error(text, position, end, excerpt, caret, line, column):
    problem = FormulaProblem.build(text, "message", position, end)
    assert (problem.excerpt, problem.caret, problem.line, problem.column) == (excerpt, caret, line, column)


def test_a_long_line_is_cut_around_the_error():
    text = "x" * 200 + " bad " + "y" * 200
    problem = FormulaProblem.build(text, "message", 201, 204)
    assert problem.excerpt.startswith("…") and problem.excerpt.endswith("…") and len(problem.excerpt) == 82
    assert problem.excerpt[problem.caret.index("^"):][:3] == "bad" and problem.caret.endswith("^~~")


def test_a_problem_without_a_position_has_no_caret():
    problem = FormulaProblem.build("count(deals)", "The formula is too long.", None)
    assert (problem.caret, problem.line) == ("", None)
    assert FormulaProblem.build("abc", "m", 99).caret == ""  # a position outside the text is ignored


# --- a new or changed formula is snapshotted right after the save --------------------------------------


def company_rows(kpi) -> dict[str, object]:
    from kpis import periods

    rows = KpiSnapshot.objects.filter(kpi=kpi, dimension_kind="")
    return {periods.containing(kpi.frequency, row.period_start).key: row.value for row in rows}


def test_a_new_kpi_is_snapshotted_after_the_save_not_at_the_next_hourly_run(
        client_for, sam, mql_world, django_capture_on_commit_callbacks):
    from kpis import periods

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        client_for(sam).post(reverse("kpi-create"), form_data())
    assert len(callbacks) == 1
    kpi = Kpi.objects.get(slug="mql-rate")
    current = periods.containing("monthly")
    # This month: 1 MQL per 4 new contacts = 25%; last month: no contacts → no value (but a row).
    assert company_rows(kpi) == {current.key: Decimal("25"), current.previous().key: None}


def test_a_changed_formula_is_snapshotted_again_and_other_edits_are_not(
        client_for, sam, custom_kpi, make_deal, alice, django_capture_on_commit_callbacks):
    from kpis import periods, snapshots

    week = periods.containing("weekly")
    make_deal(alice, name="Open one")
    snapshots.snapshot_kpi(custom_kpi, week.previous())  # final row of last week, old formula
    snapshots.snapshot_kpi(custom_kpi, week)
    assert company_rows(custom_kpi)[week.key] == Decimal("1")
    client = client_for(sam)
    url = reverse("kpi-edit", args=[custom_kpi.slug])
    data = form_data(name="Deals made", formula="count(deals where status = 'won')", unit="number",
                     decimals="0", frequency="weekly")

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        client.post(url, data)
    assert len(callbacks) == 1
    # No deal is won: both periods recomputed with version 2 (last week's final row too).
    assert company_rows(custom_kpi) == {week.key: Decimal("0"), week.previous().key: Decimal("0")}
    assert set(KpiSnapshot.objects.filter(kpi=custom_kpi).values_list("formula_version", flat=True)) == {2}

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        client.post(url, {**data, "name": "Deals won"})
    assert callbacks == []


def test_a_broker_that_is_down_does_not_fail_the_save(client_for, sam, monkeypatch, caplog,
                                                      django_capture_on_commit_callbacks):
    from kpis import tasks

    def refuse(*args, **kwargs):
        raise ConnectionError("Redis is down")

    monkeypatch.setattr(tasks.snapshot_kpi_now, "delay", refuse)
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(sam).post(reverse("kpi-create"), form_data())
    assert response.status_code == 302 and Kpi.objects.filter(slug="mql-rate").exists()
    assert not KpiSnapshot.objects.filter(kpi__slug="mql-rate").exists()
    assert "could not queue its snapshot" in caplog.text


def test_a_start_of_period_kpi_gets_only_its_current_period_and_keeps_it(sam, mql_world):
    from kpis import periods, services
    from kpis.tasks import snapshot_kpi_now

    kpi = services.kpi_create(actor=sam, name="Forecast", slug="forecast-y", formula="count(contacts)",
                              frequency="monthly", snapshot_at_start=True)
    current = periods.containing("monthly")
    assert snapshot_kpi_now(kpi.pk) == {"computed": 1}
    assert company_rows(kpi) == {current.key: Decimal("4")}  # last month would get today's value: left alone
    ContactFactory()
    assert snapshot_kpi_now(kpi.pk) == {"kept": 1}
    assert snapshot_kpi_now(0) == {}  # a KPI deleted before the task ran
