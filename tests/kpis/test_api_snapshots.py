"""The KPI snapshots API: read-only history of KPI values, for everyone signed in, with strict filters and keyset
pages."""

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from rest_framework.test import APIClient

from kpis.models import Frequency, Kpi, KpiSnapshot

pytestmark = pytest.mark.django_db

SNAPSHOTS = "/api/v1/kpi-snapshots/"
IST = ZoneInfo("Europe/Istanbul")
EVERYONE = ["alice", "bob", "charlie", "mona", "sam", "integ"]


def persona(request, name):
    return request.getfixturevalue(name)


def month(year, number):
    start = dt.datetime(year, number, 1, tzinfo=IST)
    end = dt.datetime(year + number // 12, number % 12 + 1, 1, tzinfo=IST)
    return start, end


def snap(kpi, year, number, value, *, kind="", dimension_id=0, label="", **fields):
    start, end = month(year, number)
    return KpiSnapshot.objects.create(
        kpi=kpi, frequency=kpi.frequency, period_start=start, period_end=end, dimension_kind=kind,
        dimension_id=dimension_id, dimension_label=label, value=value, formula_version=kpi.formula_version,
        **fields)


@pytest.fixture
def kpis(db):
    rate = Kpi.objects.create(slug="win-share", name="Win share", formula="count(deals) * 100 / count(deals)",
                              unit=Kpi.Unit.PERCENT, frequency=Frequency.MONTHLY, dimensions=["team"])
    count = Kpi.objects.create(slug="deal-count", name="Deal count", formula="count(deals)", decimals=0,
                               frequency=Frequency.MONTHLY, dimensions=["team"])
    return rate, count


@pytest.fixture
def history(kpis, north, south):
    rate, count = kpis
    computed = dt.datetime(2026, 11, 1, 3, 0, tzinfo=dt.UTC)
    return {
        "rate-09": snap(rate, 2026, 9, Decimal("12.5"), is_final=True, computed_at=computed, duration_ms=12),
        "rate-10": snap(rate, 2026, 10, None, is_final=True, computed_at=computed, error="Division by zero."),
        "rate-11": snap(rate, 2026, 11, Decimal("1234.5678"), computed_at=computed + dt.timedelta(days=20)),
        "rate-11-north": snap(rate, 2026, 11, Decimal("40"), kind="team", dimension_id=north.pk, label="North",
                              computed_at=computed),
        "rate-11-south": snap(rate, 2026, 11, Decimal("0"), kind="team", dimension_id=south.pk, label="South",
                              computed_at=computed),
        "count-11": snap(count, 2026, 11, Decimal("7"), computed_at=computed),
    }


def ids(response):
    assert response.status_code == 200, response.json()
    return [row["id"] for row in response.json()["results"]]


@pytest.mark.parametrize("name", EVERYONE)
def test_everyone_reads_the_snapshots(request, api_for, history, name):
    api = api_for(persona(request, name))

    response = api.get(SNAPSHOTS, {"kpi": "win-share", "dimension_kind": "company"})

    assert ids(response) == [history[k].pk for k in ("rate-11", "rate-10", "rate-09")]
    rows = response.json()["results"]
    assert rows[2] == {
        "id": history["rate-09"].pk, "kpi": "win-share", "frequency": "monthly", "period": "2026-09",
        "period_start": "2026-09-01T00:00:00+03:00", "period_end": "2026-10-01T00:00:00+03:00",
        "dimension": "company", "dimension_kind": "", "dimension_id": 0, "dimension_label": "",
        "value": "12.5", "formatted": "12.5%", "formula_version": 1, "computed_at": "2026-11-01T06:00:00+03:00",
        "duration_ms": 12, "is_final": True, "error": "",
    }
    # No value: null and "n/a"; the failed run says why. A big value keeps its decimals as a string.
    assert (rows[1]["value"], rows[1]["formatted"], rows[1]["error"]) == (None, "n/a", "Division by zero.")
    assert (rows[0]["value"], rows[0]["formatted"]) == ("1234.5678", "1,234.6%")


def test_values_are_formatted_in_the_users_language(api_for, history, alice):
    alice.language = "tr"
    alice.save(update_fields=["language"])

    rows = api_for(alice).get(SNAPSHOTS, {"kpi": "win-share", "dimension_kind": "company"}).json()["results"]

    assert (rows[0]["formatted"], rows[2]["formatted"]) == ("%1.234,6", "%12,5")


def test_signed_out_callers_get_401(history):
    response = APIClient().get(SNAPSHOTS)

    assert response.status_code == 401
    assert list(response.json()["errors"]) == ["detail"]


@pytest.mark.parametrize("params, expected", [
    ({}, ["count-11", "rate-11-south", "rate-11-north", "rate-11", "rate-10", "rate-09"]),
    ({"kpi": "deal-count"}, ["count-11"]),
    ({"frequency": "monthly", "period_from": "2026-10-01"},
     ["count-11", "rate-11-south", "rate-11-north", "rate-11", "rate-10"]),
    ({"frequency": "weekly"}, []),
    ({"period_to": "2026-10-01"}, ["rate-10", "rate-09"]),
    ({"period_from": "2026-09-02", "period_to": "2026-10-31"}, ["rate-10"]),
    ({"dimension_kind": "team"}, ["rate-11-south", "rate-11-north"]),
    ({"dimension_kind": "company", "kpi": "win-share"}, ["rate-11", "rate-10", "rate-09"]),
    ({"dimension_kind": "source"}, []),
    ({"is_final": "true"}, ["rate-10", "rate-09"]),
    ({"computed_since": "2026-11-15T00:00:00Z"}, ["rate-11"]),
    ({"ordering": "period", "kpi": "win-share", "dimension_kind": "company"}, ["rate-09", "rate-10", "rate-11"]),
    ({"ordering": "-computed", "kpi": "win-share", "dimension_kind": "company"}, ["rate-11", "rate-10", "rate-09"]),
])
def test_snapshot_filters(api_for, history, alice, params, expected):
    response = api_for(alice).get(SNAPSHOTS, params)

    # The default order: newest period first, then the newest row (highest id) first within a period.
    assert ids(response) == [history[k].pk for k in expected]


def test_filter_by_dimension_id(api_for, history, alice, north):
    response = api_for(alice).get(SNAPSHOTS, {"dimension_kind": "team", "dimension_id": str(north.pk)})

    assert ids(response) == [history["rate-11-north"].pk]
    assert response.json()["results"][0]["dimension"] == f"team:{north.pk}"
    assert response.json()["results"][0]["formatted"] == "40.0%"


@pytest.mark.parametrize("params, field, message", [
    ({"kpi": "win-rat"}, "kpi", "There is no KPI with the key “win-rat”."),
    ({"kpi": "kazanç-oranı"}, "kpi", "There is no KPI with the key “kazanç-oranı”."),
    ({"kpi": "x" * 5000}, "kpi", None),
    ({"frequency": "yearly"}, "frequency", None),
    ({"frequency": "aylık"}, "frequency", None),
    ({"period_from": "2026-13-01"}, "period_from", "Enter a valid date."),
    ({"period_to": "yarın"}, "period_to", "Enter a valid date."),
    ({"period_from": "1900-01-01"}, "period_from", "Expected a date from 2000 to 2100 (YYYY-MM-DD)."),
    ({"dimension_kind": "region"}, "dimension_kind", None),
    ({"dimension_id": "abc"}, "dimension_id", "Enter a whole number."),
    ({"dimension_id": "0"}, "dimension_id", None),
    ({"dimension_id": "9" * 40}, "dimension_id", None),
    ({"is_final": "evet"}, "is_final", None),
    ({"computed_since": "dün"}, "computed_since", None),
    ({"ordering": "value"}, "ordering", "“value” is not one of: -period, period, -computed, computed."),
    ({"page_size": "500"}, "page_size", "Expected a whole number from 1 to 200."),
    ({"cursor": "bozuk"}, "cursor", "Invalid cursor: use the next/previous links as given."),
    ({"kpi_slug": "win-share"}, "kpi_slug", None),
])
def test_bad_filters_are_a_400_naming_the_parameter(api_for, history, alice, params, field, message):
    response = api_for(alice).get(SNAPSHOTS, params)

    assert response.status_code == 400, response.json()
    errors = response.json()["errors"]
    assert list(errors) == [field]
    if message:
        assert errors[field] == [message]


def test_unknown_parameter_names_the_known_ones(api_for, history, alice):
    response = api_for(alice).get(SNAPSHOTS, {"kpi_slug": "win-share"})

    assert response.json()["errors"]["kpi_slug"][0].startswith(
        "Unknown query parameter. Known parameters: kpi, frequency, period_from, period_to, dimension_kind, "
        "dimension_id, is_final, computed_since")


def test_keyset_pages_walk_every_row_once(api_for, history, alice):
    api = api_for(alice)
    seen, url, params = [], SNAPSHOTS, {"page_size": 2}
    for _page in range(10):
        body = api.get(url, params).json()
        seen += [row["id"] for row in body["results"]]
        if not body["next"]:
            break
        url, params = body["next"], None
    everything = ids(api.get(SNAPSHOTS, {"page_size": 200}))

    assert seen == everything and len(seen) == 6
    assert sorted(seen) == sorted(s.pk for s in history.values())


def test_previous_link_goes_back(api_for, history, alice):
    api = api_for(alice)
    first = api.get(SNAPSHOTS, {"page_size": 2}).json()
    second = api.get(first["next"]).json()

    back = api.get(second["previous"]).json()

    assert [r["id"] for r in back["results"]] == [r["id"] for r in first["results"]]


@pytest.mark.parametrize("extra", [0, 30])
def test_snapshot_list_uses_a_fixed_number_of_queries(api_for, django_assert_num_queries, kpis, alice, north,
                                                      extra):
    rate, count = kpis
    for i in range(extra):
        snap(rate if i % 2 else count, 2020 + i // 12, i % 12 + 1, Decimal(i), kind="team", dimension_id=north.pk)
    snap(rate, 2026, 11, Decimal("1"))
    api = api_for(alice)
    api.get(SNAPSHOTS)

    with django_assert_num_queries(2):  # token, snapshots joined with their KPI
        response = api.get(SNAPSHOTS, {"page_size": 200})
    with django_assert_num_queries(3):  # token, the KPI's key, snapshots
        filtered = api.get(SNAPSHOTS, {"kpi": "win-share", "page_size": 200})

    assert len(response.json()["results"]) == extra + 1
    assert len(filtered.json()["results"]) == extra // 2 + 1


def test_read_one_snapshot(api_for, history, integ):
    api = api_for(integ)

    one = api.get(f"{SNAPSHOTS}{history['count-11'].pk}/")

    assert one.status_code == 200
    assert (one.json()["kpi"], one.json()["value"], one.json()["formatted"]) == ("deal-count", "7", "7")
    assert api.get(f"{SNAPSHOTS}999999/").status_code == 404
    assert api.get(f"{SNAPSHOTS}abc/").status_code == 404
    assert api.get(f"{SNAPSHOTS}{'9' * 40}/").status_code == 404


@pytest.mark.parametrize("name", ["sam", "integ", "alice"])
def test_snapshots_are_read_only(request, api_for, history, name):
    api = api_for(persona(request, name))
    one = f"{SNAPSHOTS}{history['count-11'].pk}/"

    responses = [api.post(SNAPSHOTS, {"value": "1"}, format="json"), api.patch(one, {"value": "1"}, format="json"),
                 api.put(one, {"value": "1"}, format="json"), api.delete(one)]

    assert [r.status_code for r in responses] == [405] * 4
    assert KpiSnapshot.objects.get(pk=history["count-11"].pk).value == Decimal("7")
