"""The KPI API: everyone reads KPIs and evaluates them for any period and dimension; admins create, change and
delete custom KPIs through kpis.services; formulas are checked with the position of the problem."""

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from rest_framework.test import APIClient

from kpis.models import Kpi, KpiSnapshot
from pipeline.models import Deal
from tests.factories import ContactFactory, DealFactory, LeadSourceFactory

pytestmark = pytest.mark.django_db

KPIS = "/api/v1/kpis/"
VALIDATE = "/api/v1/kpis/validate/"
IST = ZoneInfo("Europe/Istanbul")
EVERYONE = ["alice", "bob", "charlie", "mona", "sam", "integ"]
NOT_ADMINS = ["alice", "bob", "charlie", "mona", "integ"]


def persona(request, name):
    return request.getfixturevalue(name)


def at(*args):
    return dt.datetime(*args, tzinfo=IST)


@pytest.fixture
def deal_count(db):
    return Kpi.objects.create(slug="deal-count", name="Deal count", formula="count(deals)", decimals=0,
                              frequency="monthly", dimensions=["team", "owner", "pipeline", "source"], order=1)


@pytest.fixture
def won_share(db):
    return Kpi.objects.create(
        slug="won-share", name="Won share", unit=Kpi.Unit.PERCENT, frequency="monthly", order=2,
        formula="count(deals where status = 'won') * 100 / count(deals)",
        dimensions=["team", "owner", "pipeline", "source"])


@pytest.fixture
def october(stages, alice, bob, charlie):
    """Deals created in October 2026 (Istanbul time) and one just outside it:

    - alice: 2 deals (one won) from source Web; bob: 1 open deal from source Fuar; charlie (South): 1 won deal, Web
    - a deal of alice created 2026-11-01 00:00 (November, not counted in October)
    """
    web, fair = LeadSourceFactory(name="Web"), LeadSourceFactory(name="Fuar")
    made = [
        DealFactory(stage=stages["Won"], owner=alice, lead_source=web, created_at=at(2026, 10, 1, 0, 0)),
        DealFactory(stage=stages["Lead"], owner=alice, lead_source=web, created_at=at(2026, 10, 15, 12, 0)),
        DealFactory(stage=stages["Lead"], owner=bob, lead_source=fair, created_at=at(2026, 10, 31, 23, 59)),
        DealFactory(stage=stages["Won"], owner=charlie, lead_source=web, created_at=at(2026, 10, 20, 9, 0)),
        DealFactory(stage=stages["Lead"], owner=alice, lead_source=web, created_at=at(2026, 11, 1, 0, 0)),
    ]
    return {"web": web, "fair": fair, "deals": made}


# --- reading ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", EVERYONE)
def test_everyone_reads_the_kpis(request, api_for, deal_count, name):
    api = api_for(persona(request, name))

    listed = api.get(KPIS, {"page_size": 200})
    one = api.get(f"{KPIS}deal-count/")

    assert listed.status_code == 200
    slugs = [row["slug"] for row in listed.json()["results"]]
    # The built-ins (installed by the data migration) and the custom KPI, in dashboard order.
    assert slugs[0] == "deal-count" and "win-rate" in slugs and len(slugs) == Kpi.objects.count()
    assert one.status_code == 200
    assert one.json() == {
        "id": deal_count.pk, "slug": "deal-count", "name": "Deal count", "description": "", "formula": "count(deals)",
        "formula_version": 1, "unit": "number", "decimals": 0, "frequency": "monthly", "direction": "higher",
        "benchmark_low": None, "benchmark_high": None, "benchmark_text": "",
        "dimensions": ["team", "owner", "pipeline", "source"], "snapshot_at_start": False, "is_builtin": False,
        "is_active": True, "order": 1, "created_by": None, "created_at": one.json()["created_at"],
        "updated_at": one.json()["updated_at"],
    }


def test_a_kpi_is_found_by_key_or_id(api_for, alice, deal_count):
    api = api_for(alice)

    assert api.get(f"{KPIS}{deal_count.pk}/").json()["slug"] == "deal-count"
    assert api.get(f"{KPIS}win-rate/").json()["is_builtin"] is True
    missing = api.get(f"{KPIS}win-rat/")
    assert missing.status_code == 404
    assert missing.json() == {"errors": {"detail": ["There is no KPI with the key “win-rat”."]}}
    assert api.get(f"{KPIS}kazanç-oranı/").status_code == 404
    assert api.get(f"{KPIS}{'9' * 40}/").status_code == 404


@pytest.mark.parametrize("params, expected", [
    ({"is_builtin": "false"}, ["deal-count"]),
    ({"is_builtin": "false", "dimension_kind": "pipeline"}, ["deal-count"]),
    ({"unit": "days"}, ["sales-cycle-length"]),
    # Quarterly: LTV (deals, company-wide metrics: every kind) and NPS (survey answers: no pipeline).
    ({"dimension_kind": "pipeline", "frequency": "quarterly"}, ["ltv"]),
])
def test_kpi_filters(api_for, alice, deal_count, params, expected):
    response = api_for(alice).get(KPIS, {**params, "page_size": 200})

    assert response.status_code == 200, response.json()
    assert [row["slug"] for row in response.json()["results"]] == expected


def test_inactive_filter(api_for, alice, deal_count):
    Kpi.objects.filter(slug="nps").update(is_active=False)

    inactive = api_for(alice).get(KPIS, {"is_active": "false"}).json()["results"]

    assert [row["slug"] for row in inactive] == ["nps"]


@pytest.mark.parametrize("params, field", [
    ({"frequency": "yıllık"}, "frequency"),
    ({"unit": "x" * 5000}, "unit"),
    ({"is_active": "evet"}, "is_active"),
    ({"dimension_kind": "region"}, "dimension_kind"),
    ({"slug": "win-rate"}, "slug"),
    ({"ordering": "formula"}, "ordering"),
])
def test_bad_kpi_filters_are_a_400(api_for, alice, params, field):
    response = api_for(alice).get(KPIS, params)

    assert response.status_code == 400
    assert list(response.json()["errors"]) == [field]


@pytest.mark.parametrize("extra", [0, 20])
def test_kpi_list_uses_a_fixed_number_of_queries(api_for, django_assert_num_queries, alice, extra):
    for i in range(extra):
        Kpi.objects.create(slug=f"custom-{i}", name=f"Custom {i}", formula="count(deals)")
    api = api_for(alice)
    api.get(KPIS)

    with django_assert_num_queries(2):  # token, KPIs
        response = api.get(KPIS, {"page_size": 200})

    assert len(response.json()["results"]) == Kpi.objects.count()


def test_keyset_pages_of_kpis(api_for, alice, deal_count):
    api = api_for(alice)
    seen, url, params = [], KPIS, {"page_size": 5, "ordering": "slug"}
    while url:
        body = api.get(url, params).json()
        seen += [row["slug"] for row in body["results"]]
        url, params = body["next"], None

    assert seen == sorted(Kpi.objects.values_list("slug", flat=True))


def test_signed_out_callers_get_401(deal_count):
    assert APIClient().get(KPIS).status_code == 401
    assert APIClient().get(f"{KPIS}deal-count/evaluate/").status_code == 401
    assert APIClient().post(VALIDATE, {"formula": "count(deals)"}, format="json").status_code == 401


# --- writing ---------------------------------------------------------------------------------------------------

NEW_KPI = {
    "slug": "mql-rate", "name": "MQL oranı", "description": "Share of new contacts that are MQLs.",
    "formula": "count(contacts where lifecycle_stage = 'mql') * 100 / count(contacts)", "unit": "percent",
    "frequency": "weekly", "benchmark_low": "10", "benchmark_high": "20",
}


def test_admin_creates_a_custom_kpi(api_for, sam):
    response = api_for(sam).post(KPIS, NEW_KPI, format="json")

    assert response.status_code == 201, response.json()
    body = response.json()
    kpi = Kpi.objects.get(slug="mql-rate")
    assert (body["id"], body["name"], body["unit"], body["frequency"]) == (kpi.pk, "MQL oranı", "percent", "weekly")
    assert (body["benchmark_low"], body["benchmark_high"], body["is_builtin"]) == ("10.0000", "20.0000", False)
    # Contacts have no pipeline: the KPI can be broken down by team, owner and source only.
    assert body["dimensions"] == ["team", "owner", "source"] == kpi.dimensions
    assert (kpi.created_by, kpi.formula_version) == (sam, 1)


@pytest.mark.parametrize("name", NOT_ADMINS)
def test_only_admins_write_kpis(request, api_for, deal_count, name):
    api = api_for(persona(request, name))
    detail = f"{KPIS}deal-count/"

    responses = [api.post(KPIS, NEW_KPI, format="json"), api.patch(detail, {"name": "X"}, format="json"),
                 api.put(detail, {**NEW_KPI, "slug": "deal-count"}, format="json"), api.delete(detail)]

    assert [r.status_code for r in responses] == [403] * 4
    assert responses[0].json() == {"errors": {"detail": ["Only admins can change KPIs."]}}
    assert not Kpi.objects.filter(slug="mql-rate").exists()
    assert Kpi.objects.get(slug="deal-count").name == "Deal count"


def test_a_formula_typo_is_a_400_with_the_position(api_for, sam):
    formula = "count(deals where stauts = 'won')"

    response = api_for(sam).post(KPIS, {**NEW_KPI, "formula": formula}, format="json")

    assert response.status_code == 400
    body = response.json()
    position = formula.index("stauts")  # 18
    assert (body["position"], body["end"]) == (position, position + len("stauts"))
    [message] = body["errors"]["formula"]
    assert "“stauts”" in message and "“status”" in message and message.endswith(f"(position {position})")
    assert not Kpi.objects.filter(slug="mql-rate").exists()


def test_formula_and_other_field_errors_come_together(api_for, sam):
    response = api_for(sam).post(KPIS, {**NEW_KPI, "formula": "sum(deals.name)", "unit": "yüzde"}, format="json")

    body = response.json()
    assert response.status_code == 400
    assert set(body["errors"]) == {"formula", "unit"}
    assert body["errors"]["formula"] == ["“sum” needs a number field; “name” is text. (position 10)"]
    assert (body["position"], body["end"]) == (10, 14)  # "name"


@pytest.mark.parametrize("changes, field, message", [
    ({"slug": "kazanç-oranı"}, "slug", None),
    ({"slug": "deal-count"}, "slug", "A KPI with this key already exists."),
    ({"slug": "DEAL-COUNT"}, "slug", "A KPI with this key already exists."),
    ({"slug": "validate"}, "slug", "“validate” is reserved; choose another key."),
    ({"slug": "x" * 61}, "slug", None),
    ({"formula": 123}, "formula", "Expected a string."),
    ({"formula": ["count(deals)"]}, "formula", "Expected a string."),
    ({"formula": "   "}, "formula", "Write a formula, e.g. count(deals)."),
    ({"formula": "x" * 100_000}, "formula", "Ensure this field has no more than 2000 characters."),
    ({"name": "y" * 100_000}, "name", None),
    ({"description": "d" * 5001}, "description", "Ensure this field has no more than 5000 characters."),
    ({"name": None}, "name", None),
    ({"frequency": "yearly"}, "frequency", None),
    ({"decimals": 7}, "decimals", None),
    ({"decimals": "iki"}, "decimals", None),
    ({"benchmark_low": "1e40"}, "benchmark_low", None),
    ({"benchmark_low": "yüksek"}, "benchmark_low", None),
    ({"is_builtin": True, "colour": "red"}, "colour", None),
])
def test_bad_input_is_a_400_naming_the_field(api_for, sam, deal_count, changes, field, message):
    response = api_for(sam).post(KPIS, {**NEW_KPI, **changes}, format="json")

    assert response.status_code == 400, response.json()
    errors = response.json()["errors"]
    assert field in errors
    if message:
        assert errors[field] == [message]
    assert Kpi.objects.filter(is_builtin=False).count() == 1


def test_a_turkish_formula_is_refused_clearly(api_for, sam):
    response = api_for(sam).post(KPIS, {**NEW_KPI, "formula": "kazanılan fırsatlar / tüm fırsatlar"},
                                 format="json")

    assert response.status_code == 400
    assert isinstance(response.json()["position"], int)
    assert response.json()["errors"]["formula"][0]


def test_a_non_object_body_is_a_400(api_for, sam):
    response = api_for(sam).post(KPIS, ["count(deals)"], format="json")

    assert response.status_code == 400
    assert "errors" in response.json()


def test_admin_changes_a_custom_kpis_formula(api_for, sam, deal_count):
    response = api_for(sam).patch(f"{KPIS}deal-count/", {"formula": "count(contacts)", "name": "Kişiler"},
                                  format="json")

    assert response.status_code == 200, response.json()
    deal_count.refresh_from_db()
    assert (deal_count.formula, deal_count.name, deal_count.formula_version) == ("count(contacts)", "Kişiler", 2)
    assert response.json()["dimensions"] == ["team", "owner", "source"]


def test_a_kpi_sent_back_unchanged_is_no_change(api_for, sam, deal_count):
    api = api_for(sam)
    record = api.get(f"{KPIS}deal-count/").json()

    response = api.put(f"{KPIS}deal-count/", record, format="json")

    assert response.status_code == 200, response.json()
    deal_count.refresh_from_db()
    assert deal_count.formula_version == 1


def test_the_key_cannot_change(api_for, sam, deal_count):
    response = api_for(sam).patch(f"{KPIS}deal-count/", {"slug": "deals"}, format="json")

    assert response.status_code == 400
    assert response.json()["errors"] == {"slug": ["The key cannot change: formulas and integrations refer to it."]}


def test_a_cycle_is_refused(api_for, sam, deal_count):
    Kpi.objects.create(slug="double", name="Double", formula="kpi('deal-count') * 2")

    response = api_for(sam).patch(f"{KPIS}deal-count/", {"formula": "kpi('double') + 1"}, format="json")

    assert response.status_code == 400
    assert "cycle" in response.json()["errors"]["formula"][0]
    assert Kpi.objects.get(slug="deal-count").formula == "count(deals)"


def test_a_builtins_benchmark_name_and_activity_can_change(api_for, sam):
    response = api_for(sam).patch(f"{KPIS}win-rate/", {
        "name": "Kazanma oranı", "benchmark_low": "25", "benchmark_high": "35", "is_active": False,
        "description": "Bizim tanımımız."}, format="json")

    assert response.status_code == 200, response.json()
    kpi = Kpi.objects.get(slug="win-rate")
    assert (kpi.name, kpi.benchmark_low, kpi.benchmark_high, kpi.is_active) == (
        "Kazanma oranı", Decimal("25"), Decimal("35"), False)


def test_a_builtins_formula_unit_and_frequency_cannot_change(api_for, sam):
    before = Kpi.objects.get(slug="win-rate")

    response = api_for(sam).patch(f"{KPIS}win-rate/", {
        "formula": "count(deals)", "unit": "number", "frequency": "daily", "name": "X"}, format="json")

    assert response.status_code == 400
    errors = response.json()["errors"]
    assert set(errors) == {"formula", "unit", "frequency"}
    assert errors["unit"] == ["A built-in KPI keeps its unit; only name, description, benchmark and is_active can "
                              "change."]
    after = Kpi.objects.get(slug="win-rate")
    assert (after.formula, after.unit, after.name) == (before.formula, before.unit, before.name)


def test_a_builtin_sent_back_unchanged_is_accepted(api_for, sam):
    api = api_for(sam)
    record = api.get(f"{KPIS}win-rate/").json()

    response = api.put(f"{KPIS}win-rate/", {**record, "benchmark_text": "Sektöre göre"}, format="json")

    assert response.status_code == 200, response.json()
    assert Kpi.objects.get(slug="win-rate").benchmark_text == "Sektöre göre"


def test_benchmark_ends_must_be_in_order(api_for, sam, deal_count):
    Kpi.objects.filter(pk=deal_count.pk).update(benchmark_low=10)

    response = api_for(sam).patch(f"{KPIS}deal-count/", {"benchmark_high": "5"}, format="json")

    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["benchmark_high"]


def test_admin_deletes_a_custom_kpi_with_its_snapshots(api_for, sam, deal_count):
    KpiSnapshot.objects.create(kpi=deal_count, frequency="monthly", period_start=at(2026, 10, 1),
                               period_end=at(2026, 11, 1), value=1, formula_version=1)

    response = api_for(sam).delete(f"{KPIS}deal-count/")

    assert response.status_code == 204
    assert not Kpi.objects.filter(slug="deal-count").exists() and not KpiSnapshot.objects.exists()


def test_a_builtin_cannot_be_deleted(api_for, sam):
    response = api_for(sam).delete(f"{KPIS}win-rate/")

    assert response.status_code == 400
    assert response.json() == {"errors": {"is_builtin": [
        "A built-in KPI cannot be deleted; switch it off with is_active=false instead."]}}
    assert Kpi.objects.filter(slug="win-rate").exists()


def test_a_kpi_others_refer_to_cannot_be_deleted(api_for, sam, deal_count):
    Kpi.objects.create(slug="double", name="Double", formula="kpi('deal-count') * 2")
    # Mentions the key only in a comment: not a reference.
    Kpi.objects.create(slug="note", name="Note", formula="count(deals)  # not deal-count")

    response = api_for(sam).delete(f"{KPIS}deal-count/")

    assert response.status_code == 409
    assert response.json() == {"errors": {"detail": [
        "Other KPIs refer to this one: double. Change their formulas first."]}}


# --- validate --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", EVERYONE)
def test_everyone_may_check_a_formula(request, api_for, deal_count, name):
    response = api_for(persona(request, name)).post(VALIDATE, {"formula": "kpi('deal-count') / count(users)"},
                                                    format="json")

    assert response.status_code == 200, response.json()
    # deals: team, owner, pipeline, source; users: team, owner → team, owner.
    assert response.json() == {"valid": True, "dimensions": ["team", "owner"], "references": ["deal-count"]}


def test_a_bad_formula_check_gives_the_position(api_for, alice):
    formula = "count(deals where status = 'wonn')"

    response = api_for(alice).post(VALIDATE, {"formula": formula}, format="json")

    assert response.status_code == 400
    body = response.json()
    assert body["position"] == formula.index("'wonn'")
    assert body["errors"]["formula"][0].endswith(f"(position {body['position']})")
    assert "wonn" in body["errors"]["formula"][0] and "open, won, lost" in body["errors"]["formula"][0]


def test_a_formula_check_with_the_slug_refuses_a_cycle(api_for, sam, deal_count):
    Kpi.objects.create(slug="double", name="Double", formula="kpi('deal-count') * 2")

    response = api_for(sam).post(VALIDATE, {"formula": "kpi('double')", "slug": "deal-count"}, format="json")

    assert response.status_code == 400
    assert "cycle" in response.json()["errors"]["formula"][0]


@pytest.mark.parametrize("body, field", [
    ({}, "formula"),
    ({"formula": 42}, "formula"),
    ({"formula": None}, "formula"),
    ({"formula": "x" * 100_000}, "formula"),
    ({"formula": "count(deals)", "extra": 1}, "extra"),
    ({"formula": "count(deals)", "slug": "kazanç"}, "slug"),
])
def test_bad_formula_checks_are_a_400(api_for, alice, body, field):
    response = api_for(alice).post(VALIDATE, body, format="json")

    assert response.status_code == 400
    assert field in response.json()["errors"]


@pytest.mark.parametrize("formula", [
    "", "(((((", "count(", "')", "1 / 0 / 0", "count(deals where name = '" + "ç" * 300 + "')",
    "kpi('kpi')", "snapshot('yok')", "\x00", "count(deals) " * 200, "çğıöşü", "1e999999",
])
def test_hostile_formulas_never_crash(api_for, alice, formula):
    response = api_for(alice).post(VALIDATE, {"formula": formula}, format="json")

    assert response.status_code in (200, 400)


# --- evaluate --------------------------------------------------------------------------------------------------


def test_evaluate_a_kpi_for_a_period(api_for, integ, deal_count, october):
    response = api_for(integ).get(f"{KPIS}deal-count/evaluate/", {"period": "2026-10", "format": "json"})

    assert response.status_code == 200, response.json()
    # Four deals created in [2026-10-01 00:00, 2026-11-01 00:00) Istanbul time; the fifth is in November.
    assert response.json() == {
        "kpi": "deal-count", "period": "2026-10", "period_label": "Oct 2026",
        "period_start": "2026-10-01T00:00:00+03:00", "period_end": "2026-11-01T00:00:00+03:00",
        "unit": "number", "dimension": "company", "dimension_label": "Company", "value": "4", "formatted": "4",
        "snapshotted_at_start": False, "unconverted_currencies": [],
    }


def test_evaluate_a_percentage_for_a_team(api_for, alice, won_share, october, north):
    response = api_for(alice).get(f"{KPIS}won-share/evaluate/", {"period": "2026-10", "dimension": f"team:{north.pk}"})

    body = response.json()
    assert response.status_code == 200, body
    # North: alice's 2 deals (1 won) + bob's 1 → 1 × 100 / 3 = 33.333333… → "33.333333", shown with 1 decimal.
    assert (body["dimension"], body["dimension_label"]) == (f"team:{north.pk}", "North")
    assert (body["value"], body["formatted"]) == ("33.333333", "33.3%")


def test_evaluate_every_lead_source_in_one_call(api_for, integ, won_share, october):
    response = api_for(integ).get(f"{KPIS}won-share/evaluate/", {"period": "2026-10", "dimension_kind": "source"})

    body = response.json()
    assert response.status_code == 200, body
    assert body["dimension_kind"] == "source"
    by_source = {row["dimension_label"]: (row["value"], row["formatted"]) for row in body["results"]}
    # Web: alice's won + open and charlie's won → 2 × 100 / 3 = 66.67; Fuar: bob's open → 0 × 100 / 1 = 0.
    assert by_source["Web"] == ("66.666667", "66.7%")
    assert by_source["Fuar"] == ("0", "0.0%")
    row = next(r for r in body["results"] if r["dimension_label"] == "Web")
    assert (row["dimension"], row["dimension_id"]) == (f"source:{october['web'].pk}", october["web"].pk)


def test_no_value_is_null_and_na(api_for, alice, won_share, october):
    response = api_for(alice).get(f"{KPIS}won-share/evaluate/", {"period": "2026-08"})

    # No deals in August: 0 × 100 / 0 → no value.
    assert (response.json()["value"], response.json()["formatted"]) == (None, "n/a")


def test_evaluate_defaults_to_the_current_period(api_for, alice, deal_count, stages):
    DealFactory(stage=stages["Lead"], owner=alice)

    body = api_for(alice).get(f"{KPIS}deal-count/evaluate/").json()

    from kpis import periods
    assert (body["period"], body["value"]) == (periods.containing("monthly").key, "1")


def test_evaluate_a_weekly_kpi_by_week_key(api_for, alice, stages):
    Kpi.objects.create(slug="weekly-deals", name="Weekly deals", formula="count(deals)", frequency="weekly")
    DealFactory(stage=stages["Lead"], owner=alice, created_at=at(2026, 11, 16, 0, 0))  # Monday of week 47
    DealFactory(stage=stages["Lead"], owner=alice, created_at=at(2026, 11, 15, 23, 59))  # Sunday of week 46

    body = api_for(alice).get(f"{KPIS}weekly-deals/evaluate/", {"period": "2026-W47"}).json()

    assert (body["period_start"], body["value"]) == ("2026-11-16T00:00:00+03:00", "1")


@pytest.mark.parametrize("params, field, message", [
    ({"period": "2026-13"}, "period", "“2026-13” is not a monthly period; expected e.g. 2026-11."),
    ({"period": "2026-W48"}, "period", "“2026-W48” is not a monthly period; expected e.g. 2026-11."),
    ({"period": "geçen ay"}, "period", "“geçen ay” is not a monthly period; expected e.g. 2026-11."),
    ({"period": "x" * 5000}, "period", None),
    ({"period": "1999-12"}, "period", None),
    ({"dimension": "region:1"}, "dimension", None),
    ({"dimension": "team:abc"}, "dimension", None),
    ({"dimension": "team:999999"}, "dimension", "There is no team with id 999999."),
    ({"dimension": "team:" + "9" * 30}, "dimension", None),
    ({"dimension_kind": "region"}, "dimension_kind", None),
    ({"dimension": "company", "dimension_kind": "team"}, "dimension_kind", None),
    ({"periods": "2026-10"}, "periods", None),
])
def test_bad_evaluate_parameters_are_a_400(api_for, alice, deal_count, params, field, message):
    response = api_for(alice).get(f"{KPIS}deal-count/evaluate/", params)

    assert response.status_code == 400, response.json()
    errors = response.json()["errors"]
    assert field in errors
    if message:
        assert errors[field] == [message]


def test_a_dimension_the_kpi_does_not_have_is_a_400(api_for, alice, stages, pipe):
    Kpi.objects.create(slug="contacts", name="New contacts", formula="count(contacts)", dimensions=[
        "team", "owner", "source"])

    one = api_for(alice).get(f"{KPIS}contacts/evaluate/", {"dimension": f"pipeline:{pipe.pk}"})
    every = api_for(alice).get(f"{KPIS}contacts/evaluate/", {"dimension_kind": "pipeline"})

    assert one.status_code == every.status_code == 400
    assert one.json()["errors"] == {"dimension": [
        "“New contacts” cannot be broken down by pipeline; it can by: team, owner, source."]}
    assert list(every.json()["errors"]) == ["dimension_kind"]


def test_evaluate_an_unknown_kpi_is_a_404(api_for, alice):
    assert api_for(alice).get(f"{KPIS}yok/evaluate/").status_code == 404


def test_evaluate_a_kpi_whose_formula_broke_is_a_409(api_for, alice):
    Kpi.objects.create(slug="orphan", name="Orphan", formula="kpi('gone') + 1")

    response = api_for(alice).get(f"{KPIS}orphan/evaluate/")

    assert response.status_code == 409
    assert response.json()["errors"]["detail"][0].startswith("This KPI's formula no longer works:")


def test_evaluate_per_owner_counts_contacts(api_for, mona, alice, bob):
    Kpi.objects.create(slug="contacts", name="New contacts", formula="count(contacts)", dimensions=[
        "team", "owner", "source"])
    ContactFactory(owner=alice)
    ContactFactory(owner=alice)
    ContactFactory(owner=bob)

    body = api_for(mona).get(f"{KPIS}contacts/evaluate/", {"dimension_kind": "owner"}).json()

    values = {row["dimension_id"]: row["value"] for row in body["results"]}
    assert (values[alice.pk], values[bob.pk]) == ("2", "1")
    assert Deal.objects.count() == 0


def test_an_integration_pushes_spend_and_reads_cac_per_source(api_for, integ, alice):
    """The issue's "done when": marketing spend pushed per lead source, CAC read per source in one call."""
    from contacts.models import LifecycleChange

    web, fair = LeadSourceFactory(name="Web"), LeadSourceFactory(name="Fuar")
    for source, when in [(web, at(2026, 10, 3, 10, 0)), (web, at(2026, 10, 30, 18, 0)), (fair, at(2026, 10, 9, 9, 0)),
                         (fair, at(2026, 11, 2, 9, 0))]:  # the last one became a customer in November
        contact = ContactFactory(owner=alice, lead_source=source)
        LifecycleChange.objects.create(contact=contact, from_stage="opportunity", to_stage="customer",
                                       changed_at=when)
    api = api_for(integ)
    pushed = api.post("/api/v1/metric-values/", [
        {"metric": "marketing_spend", "period": "2026-10", "dimension": web.pk, "value": "3000"},
        {"metric": "marketing_spend", "period": "2026-10", "dimension": fair.pk, "value": "1000"},
        {"metric": "sales_spend", "period": "2026-10", "value": "600"},
    ], format="json")
    assert pushed.status_code in (200, 201), pushed.json()

    company = api.get(f"{KPIS}cac/evaluate/", {"period": "2026-10"}).json()
    per_source = api.get(f"{KPIS}cac/evaluate/", {"period": "2026-10", "dimension_kind": "source"}).json()

    # Company: (3000 + 1000 + 600) / 3 customers = 1533.333333…
    assert company["value"] == "1533.333333"
    # Per source, only that source's marketing spend (the company's sales spend is not each source's):
    # Web 3000 / 2 = 1500; Fuar 1000 / 1 = 1000.
    values = {row["dimension_label"]: row["value"] for row in per_source["results"]}
    assert (values["Web"], values["Fuar"]) == ("1500", "1000")
    assert per_source["unit"] == "currency"


@pytest.mark.parametrize("params, queries", [
    ({"period": "2026-10"}, 3),  # token, the KPI, the value (one statement)
    ({"period": "2026-10", "dimension_kind": "owner"}, 4),  # token, the KPI, every owner's value, their names
])
def test_evaluate_uses_a_fixed_number_of_queries(api_for, django_assert_num_queries, won_share, october, alice,
                                                 params, queries):
    api = api_for(alice)
    api.get(f"{KPIS}won-share/evaluate/", params)

    with django_assert_num_queries(queries):
        response = api.get(f"{KPIS}won-share/evaluate/", params)

    assert response.status_code == 200


def test_a_kpi_that_takes_too_long_is_a_503(api_for, alice, deal_count, monkeypatch, settings):
    """A real statement timeout (1 ms over a slow statement): a clear 503, never a 500."""
    settings.KPI_STATEMENT_TIMEOUT_MS = 1
    Kpi.objects.filter(pk=deal_count.pk).update(formula="count(deals) + 0")
    from kpis.formula import compiler

    real = compiler.scalar

    def slow_scalar(expression):
        from django.db.models.expressions import RawSQL

        return real(expression + RawSQL("(SELECT 0 FROM pg_sleep(0.05))", []))

    monkeypatch.setattr(compiler, "scalar", slow_scalar)

    response = api_for(alice).get(f"{KPIS}deal-count/evaluate/", {"period": "2026-10"})

    assert response.status_code == 503
    assert response.json()["errors"]["detail"][0].startswith("The KPI took too long to compute")


def test_a_start_of_period_kpi_answers_the_snapshot_taken_when_the_period_started(api_for, alice, stages, north,
                                                                                 south):
    from kpis import periods

    forecast = Kpi.objects.create(slug="forecast-x", name="Forecast", formula="count(deals)", frequency="monthly",
                                  dimensions=["team", "owner", "pipeline", "source"], snapshot_at_start=True)
    DealFactory(stage=stages["Lead"], owner=alice)  # today's data: the formula would give 1 now
    current = periods.containing("monthly")
    common = {"kpi": forecast, "frequency": "monthly", "period_start": current.start, "period_end": current.end,
              "formula_version": 1}
    KpiSnapshot.objects.create(**common, value=Decimal("7"))
    KpiSnapshot.objects.create(**common, dimension_kind="team", dimension_id=north.pk, value=Decimal("5"))

    body = api_for(alice).get(f"{KPIS}forecast-x/evaluate/").json()
    assert (body["value"], body["snapshotted_at_start"]) == ("7", True)
    body = api_for(alice).get(f"{KPIS}forecast-x/evaluate/", {"dimension": f"team:{north.pk}"}).json()
    assert (body["value"], body["snapshotted_at_start"]) == ("5", True)
    body = api_for(alice).get(f"{KPIS}forecast-x/evaluate/", {"dimension_kind": "team"}).json()
    assert {row["dimension_label"]: row["value"] for row in body["results"]} == {"North": "5", "South": None}
    assert body["snapshotted_at_start"] is True
    # Last month: no snapshot was taken then → no value (not today's forecast).
    body = api_for(alice).get(f"{KPIS}forecast-x/evaluate/", {"period": current.previous().key}).json()
    assert (body["value"], body["formatted"], body["snapshotted_at_start"]) == (None, "n/a", True)
    # Next month has not started: computed now.
    body = api_for(alice).get(f"{KPIS}forecast-x/evaluate/", {"period": current.next().key}).json()
    assert (body["value"], body["snapshotted_at_start"]) == ("0", False)


def test_a_created_or_reformulated_kpi_is_snapshotted_after_the_commit(api_for, sam, deal_count, alice,
                                                                      django_capture_on_commit_callbacks):
    from kpis import periods

    ContactFactory(owner=alice)
    current = periods.containing("monthly")
    api = api_for(sam)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        assert api.patch(f"{KPIS}deal-count/", {"formula": "count(contacts)"}, format="json").status_code == 200
    assert len(callbacks) == 1
    row = KpiSnapshot.objects.get(kpi=deal_count, period_start=current.start, dimension_kind="")
    assert (row.value, row.formula_version) == (Decimal("1"), 2)
    assert KpiSnapshot.objects.filter(kpi=deal_count, period_start=current.previous().start).exists()

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        assert api.patch(f"{KPIS}deal-count/", {"name": "People"}, format="json").status_code == 200
    assert callbacks == []  # no new formula: nothing to recompute
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        assert api.post(KPIS, NEW_KPI, format="json").status_code == 201
    assert len(callbacks) == 1 and KpiSnapshot.objects.filter(kpi__slug="mql-rate", dimension_kind="").count() == 2


def test_evaluate_names_the_currencies_left_out_of_a_money_kpi(api_for, alice, stages, deal_count):
    import datetime as dt

    from kpis.models import ExchangeRate

    Kpi.objects.create(slug="amount-x", name="Amounts", formula="sum(deals.amount)", unit="currency",
                       frequency="monthly")
    DealFactory(stage=stages["Lead"], owner=alice, amount=Decimal(100), currency="GBP")
    DealFactory(stage=stages["Lead"], owner=alice, amount=Decimal(100), currency="USD")
    ExchangeRate.objects.create(currency="USD", rate=Decimal("40"), valid_from=dt.date(2020, 1, 1))
    api = api_for(alice)

    assert api.get(f"{KPIS}amount-x/evaluate/").json()["unconverted_currencies"] == ["GBP"]
    assert api.get(f"{KPIS}amount-x/evaluate/", {"dimension_kind": "team"}).json()["unconverted_currencies"] == [
        "GBP"]
    assert api.get(f"{KPIS}deal-count/evaluate/").json()["unconverted_currencies"] == []  # not about money
