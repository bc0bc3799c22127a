"""The KPI pages managers read: the dashboard (from snapshots), a KPI's page and the drill-down."""

import re
from decimal import Decimal

import pytest
from django.urls import resolve, reverse
from django.utils import timezone, translation

from kpis import periods
from kpis.models import Frequency, Kpi, KpiSnapshot
from kpis.templatetags.kpis import chart, kpi_value, sparkline
from pipeline.models import Deal

DASHBOARD = "/kpis/"
# session, user, notifications badge, the KPI, the viewer's teams, the counts (total and visible, in a
# savepoint: 3), one page of rows
DRILLDOWN_QUERIES = 9


def make_kpi(slug="test-win-rate", **fields) -> Kpi:
    fields.setdefault("name", slug.replace("-", " ").title())
    fields.setdefault("formula", "count(deals)")
    fields.setdefault("unit", Kpi.Unit.NUMBER)
    fields.setdefault("frequency", Frequency.WEEKLY)
    fields.setdefault("dimensions", ["team", "owner", "pipeline", "source"])
    fields.setdefault("order", 0)
    return Kpi.objects.create(slug=slug, **fields)


def snap(kpi: Kpi, period: periods.Period, value, *, kind: str = "", member_id: int = 0, label: str = ""):
    return KpiSnapshot.objects.create(
        kpi=kpi, frequency=kpi.frequency, period_start=period.start, period_end=period.end, dimension_kind=kind,
        dimension_id=member_id, dimension_label=label, value=value, formula_version=kpi.formula_version,
        is_final=period.has_ended(),
    )


def card(response, slug: str) -> str:
    """The HTML of one KPI's card on the dashboard."""
    html = response.content.decode()
    pattern = rf'<article class="kpi-card[^"]*" data-testid="kpi-card" data-kpi="{re.escape(slug)}">(.*?)</article>'
    match = re.search(pattern, html, re.S)
    assert match, f"no card for {slug}"
    return match.group(1)


def text(fragment: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", fragment)).strip()


def find_testid(fragment: str, name: str, tag: str = "span|dd|p|strong") -> str:
    """The text of the element marked ``data-testid=name`` (up to the first closing ``tag``)."""
    match = re.search(rf'data-testid="{name}"[^>]*>(.*?)</(?:{tag})>', fragment, re.S)
    assert match, f"no {name}"
    return text(match.group(1))


# --- access ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("url", ["/kpis/", "/kpis/test-win-rate/", "/kpis/test-win-rate/records/?leaf=0"])
def test_anonymous_visitors_are_sent_to_sign_in(client, db, url):
    make_kpi()
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_integration_accounts_cannot_use_the_pages(client_for, integ):
    assert client_for(integ).get(DASHBOARD).status_code == 403


def test_every_signed_in_person_sees_the_dashboard_and_the_nav_link(client_for, alice):
    response = client_for(alice).get(DASHBOARD)
    assert response.status_code == 200
    html = response.content.decode()
    assert f'<a href="{DASHBOARD}" aria-current="page">KPIs</a>' in html


def test_reserved_words_under_kpis_are_not_taken_for_slugs():
    assert resolve("/kpis/new/").url_name == "kpi-create"
    assert resolve("/kpis/preview/").url_name == "kpi-preview"
    assert resolve("/kpis/win-rate/").url_name == "kpi-detail"
    assert resolve("/kpis/win-rate/records/").url_name == "kpi-drilldown"


# --- the dashboard -----------------------------------------------------------------------------------------

def test_card_shows_this_and_last_period_the_change_and_the_benchmark(client_for, mona):
    kpi = make_kpi(unit=Kpi.Unit.PERCENT, benchmark_low=Decimal(20), benchmark_high=Decimal(30),
                   benchmark_text="20–30%")
    now = periods.containing(kpi.frequency)
    snap(kpi, now, Decimal("25.5"))
    snap(kpi, now.previous(), Decimal("20"))
    snap(kpi, now.shift(-2), Decimal("18.25"))

    html = card(client_for(mona).get(DASHBOARD), kpi.slug)

    assert find_testid(html, "current") == "25.5%"
    assert find_testid(html, "previous").startswith("20.0%")
    # 25.5 − 20 = 5.5 percentage points; up is good for a higher-is-better KPI
    assert "+5.5 pts" in find_testid(html, "change", "dd")
    assert 'kpi-change tone-good' in html
    assert find_testid(html, "benchmark-status") == "inside"
    assert "20–30%" in html
    assert 'class="spark-line"' in html and 'class="spark-band"' in html


def test_a_lower_is_better_kpi_going_down_is_good_and_above_its_band_is_bad(client_for, mona):
    kpi = make_kpi("test-cycle", unit=Kpi.Unit.DAYS, frequency=Frequency.MONTHLY, decimals=0,
                   direction=Kpi.Direction.LOWER, benchmark_low=Decimal(30), benchmark_high=Decimal(90))
    now = periods.containing(kpi.frequency)
    snap(kpi, now, Decimal("95.4"))
    snap(kpi, now.previous(), Decimal("120"))

    html = card(client_for(mona).get(DASHBOARD), kpi.slug)

    assert find_testid(html, "current") == "95 days"
    # 95.4 − 120 = −24.6 → “−25 days”, and −24.6 ÷ 120 = −20.5 % → “−21%” (rounded)
    assert "−25 days" in find_testid(html, "change", "dd") and "−21%" in find_testid(html, "change", "dd")
    assert "kpi-change tone-good" in html
    assert find_testid(html, "benchmark-status") == "above"
    assert "bench-bad" in html


def test_no_snapshot_for_the_current_period_says_so_instead_of_computing(client_for, mona):
    kpi = make_kpi("test-empty", formula="this does not even parse")
    snap(kpi, periods.containing(kpi.frequency).previous(), Decimal("7"))

    html = card(client_for(mona).get(DASHBOARD), kpi.slug)

    assert find_testid(html, "current") == "no snapshot yet"
    assert find_testid(html, "previous").startswith("7.0")
    assert find_testid(html, "change", "dd") == "—"


def test_a_snapshot_without_value_reads_na(client_for, mona):
    kpi = make_kpi("test-na")
    snap(kpi, periods.containing(kpi.frequency), None)

    assert find_testid(card(client_for(mona).get(DASHBOARD), kpi.slug), "current") == "n/a"


def test_inactive_kpis_are_not_on_the_dashboard(client_for, mona):
    make_kpi("test-off", is_active=False)
    assert 'data-kpi="test-off"' not in client_for(mona).get(DASHBOARD).content.decode()


def test_breakdown_shows_the_teams_values_and_marks_kpis_without_that_dimension(client_for, mona, north, south):
    per_team = make_kpi("test-team", unit=Kpi.Unit.CURRENCY, decimals=2)
    company_only = make_kpi("test-company", dimensions=[])
    source_only = make_kpi("test-source", dimensions=["source"])
    now = periods.containing(per_team.frequency)
    snap(per_team, now, Decimal("1000"))
    snap(per_team, now, Decimal("1234.5"), kind="team", member_id=north.pk, label="North")
    snap(per_team, now, Decimal("99"), kind="team", member_id=south.pk, label="South")

    response = client_for(mona).get(DASHBOARD, {"dimension": f"team:{north.pk}"})

    assert response.status_code == 200
    assert find_testid(card(response, per_team.slug), "current") == "1,234.50 TRY"
    for slug in (company_only.slug, source_only.slug):
        assert find_testid(card(response, slug), "not-available") == "Not available for this breakdown."
    assert f'<option value="team:{north.pk}" selected>North</option>' in response.content.decode()


@pytest.mark.parametrize("value, message", [
    ("team", "is not a dimension"),
    ("galaxy:1", "is not a dimension"),
    ("team:999999", "There is no team with id 999999."),
])
def test_a_bad_dimension_is_a_clear_400(client_for, mona, value, message):
    response = client_for(mona).get(DASHBOARD, {"dimension": value})
    assert response.status_code == 400
    assert message in response.content.decode()


def test_dashboard_queries_do_not_grow_with_kpis_or_snapshots(client_for, mona, north, django_assert_num_queries):
    client = client_for(mona)

    def add(count: int, start: int):
        for i in range(start, start + count):
            kpi = make_kpi(f"test-q{i}", frequency=[Frequency.WEEKLY, Frequency.MONTHLY][i % 2])
            now = periods.containing(kpi.frequency)
            for back in range(12):
                snap(kpi, now.shift(-back), Decimal(back))
                snap(kpi, now.shift(-back), Decimal(back), kind="team", member_id=north.pk)

    add(2, 0)
    # session, user, notifications badge, the dimension check, teams, owners, pipelines, lead sources,
    # the KPIs, latest values, trend lines, the currencies without a rate (built-in money KPIs are shown)
    with django_assert_num_queries(12):
        assert client.get(DASHBOARD, {"dimension": f"team:{north.pk}"}).status_code == 200
    add(6, 2)
    with django_assert_num_queries(12):
        response = client.get(DASHBOARD, {"dimension": f"team:{north.pk}"})
    assert response.content.decode().count('data-testid="kpi-card"') == Kpi.objects.filter(is_active=True).count()


# --- a KPI's page ------------------------------------------------------------------------------------------

def test_unknown_kpi_is_404(client_for, mona):
    assert client_for(mona).get("/kpis/no-such-kpi/").status_code == 404
    assert client_for(mona).get("/kpis/no-such-kpi/records/?leaf=0").status_code == 404


@pytest.mark.parametrize("params, message", [
    ({"period": "2026-13"}, "is not a weekly period; expected e.g. 2026-W48."),
    ({"period": "<script>"}, "is not a weekly period"),
    ({"dimension": "owner:abc"}, "is not a dimension"),
    ({"by": "planet"}, "is not a breakdown of this KPI"),
])
def test_bad_parameters_on_the_kpi_page_are_a_clear_400(client_for, mona, params, message):
    make_kpi()
    response = client_for(mona).get("/kpis/test-win-rate/", params)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert "<script>" not in response.content.decode().split("<body", 1)[1].split("</main>")[0].replace(
        "<script src", "")


def test_a_dimension_the_kpi_does_not_support_is_refused(client_for, mona, north):
    make_kpi(dimensions=["source"])
    response = client_for(mona).get("/kpis/test-win-rate/", {"dimension": f"team:{north.pk}"})
    assert response.status_code == 400
    assert "is not available for this breakdown (team)" in response.content.decode()


# --- template helpers --------------------------------------------------------------------------------------

@pytest.mark.parametrize("unit, decimals, value, english, turkish", [
    (Kpi.Unit.PERCENT, 1, Decimal("23.08"), "23.1%", "%23,1"),
    (Kpi.Unit.CURRENCY, 2, Decimal("1234567.891"), "1,234,567.89 TRY", "1.234.567,89 TRY"),
    (Kpi.Unit.DAYS, 0, Decimal("12.4"), "12 days", None),  # the Turkish words come with the translations
    (Kpi.Unit.NUMBER, 1, Decimal("-3.24"), "−3.2", "−3,2"),  # the minus sign of the changes
    (Kpi.Unit.PERCENT, 1, Decimal("-50"), "−50.0%", "−%50,0"),
    (Kpi.Unit.CURRENCY, 0, Decimal("-1234.4"), "−1,234 TRY", "−1.234 TRY"),
    (Kpi.Unit.NUMBER, 1, Decimal("-0.04"), "0.0", "0,0"),  # rounds to zero: no sign
    (Kpi.Unit.CURRENCY_PER_DAY, 0, Decimal("1250.4"), "1,250 TRY/day", None),
    (Kpi.Unit.NUMBER, 1, None, "n/a", None),
])
def test_values_are_formatted_by_unit(unit, decimals, value, english, turkish):
    kpi = Kpi(unit=unit, decimals=decimals)
    with translation.override("en"):
        assert kpi_value(value, kpi) == english
    if turkish is not None:
        with translation.override("tr"):
            assert kpi_value(value, kpi) == turkish


def test_sparkline_breaks_at_missing_values_and_scales_to_the_box():
    line = sparkline([Decimal(0), Decimal(10), None, Decimal(5)], width=100, height=20)
    # step = (100 − 2·3) ÷ 3 = 31.33; y = 3 + (10 − v) ÷ 10 · 14
    assert line["path"] == "M3.0 17.0 L34.3 3.0 M97.0 10.0"
    assert line["last"] == {"x": "97.0", "y": "10.0"}
    assert sparkline([None, None])["path"] == ""


def test_chart_shades_the_benchmark_band():
    kpi = Kpi(unit=Kpi.Unit.PERCENT, decimals=1, benchmark_low=Decimal(20), benchmark_high=Decimal(30))
    week = periods.containing(Frequency.WEEKLY, timezone.now())
    drawn = chart([(week.previous(), Decimal(10)), (week, Decimal(40))], kpi)
    # values and band span 10..40 → step 10, axis 0..40 (zero kept); plot 240 − 12 − 28 = 200 px high
    assert [t["value"] for t in drawn["ticks"]] == [0, 10, 20, 30, 40]
    # band 20..30 → y from 12 + 200·(40 − 30)/40 = 62 to 12 + 200·(40 − 20)/40 = 112
    assert drawn["band"]["y"] == "62.0" and drawn["band"]["height"] == "50.0"
    assert len(drawn["dots"]) == 2



# --- live values and the drill-down (through the formula compiler) -----------------------------------------

@pytest.fixture
def three_deals(make_deal, alice, bob, charlie):
    """This week: alice's and bob's deals in North, charlie's in South."""
    return {name: make_deal(user, name=name) for name, user in (("A1", alice), ("B1", bob), ("C1", charlie))}


def test_kpi_page_shows_definition_history_breakdown_and_the_live_value(client_for, mona, north, south,
                                                                        three_deals):
    kpi = make_kpi("test-deals", decimals=0, description="Deals created in the period.",
                   benchmark_low=Decimal(1), benchmark_high=Decimal(5))
    now = periods.containing(kpi.frequency)
    snap(kpi, now, Decimal(3))
    snap(kpi, now.previous(), Decimal(1))
    snap(kpi, now, Decimal(2), kind="team", member_id=north.pk, label="North")
    snap(kpi, now.previous(), Decimal(1), kind="team", member_id=north.pk, label="North")
    client = client_for(mona)

    response = client.get("/kpis/test-deals/", {"by": "team"})

    assert response.status_code == 200
    html = response.content.decode()
    assert "Deals created in the period." in html
    assert find_testid(html, "formula", "pre") == "count(deals)"
    # A1 + B1 + C1 = 3 deals created this week, inside the band 1–5
    assert find_testid(html, "live-value") == "3"
    assert find_testid(find_testid_block(html, "live"), "benchmark-status") == "inside"
    assert html.count('class="chart-dot"') == 2
    rows = breakdown(html)
    # North: 2 now, 1 before → +1 (+100%); South has no snapshot yet
    assert rows["North"][:3] == ["2", "1", "▲ +1 (+100%)"]
    assert rows["South"][:2] == ["no snapshot yet", "—"]
    assert f"?leaf=0&amp;period={now.key}" in html

    north_only = client.get("/kpis/test-deals/", {"dimension": f"team:{north.pk}", "period": now.key})
    # A1 + B1 = 2 deals of North
    assert find_testid(north_only.content.decode(), "live-value") == "2"
    last_week = client.get("/kpis/test-deals/", {"period": now.previous().key})
    assert find_testid(last_week.content.decode(), "live-value") == "0"


def find_testid_block(html: str, name: str) -> str:
    match = re.search(rf'data-testid="{name}">(.*?)</section>', html, re.S)
    assert match, f"no {name}"
    return match.group(1)


def breakdown(html: str) -> dict[str, list[str]]:
    table = re.search(r'data-testid="breakdown">(.*?)</table>', html, re.S).group(1)
    rows = {}
    for row in re.findall(r"<tr>(.*?)</tr>", table.split("<tbody>")[1], re.S):
        cells = [text(cell) for cell in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, re.S)]
        rows[cells[0]] = cells[1:]
    return rows


def records(html: str) -> list[str]:
    table = re.search(r'data-testid="records">(.*?)</table>', html, re.S).group(1)
    return [text(name) for name in re.findall(r'<tr><td><a href="/deals/\d+/">(.*?)</a>', table)]


@pytest.mark.parametrize("persona, listed, hidden", [
    ("charlie", ["C1"], 2),
    ("mona", ["B1", "A1"], 1),
    ("sam", ["C1", "B1", "A1"], 0),
])
def test_drilldown_lists_only_the_deals_the_viewer_may_see_and_counts_the_rest(
        request, client_for, three_deals, persona, listed, hidden):
    make_kpi("test-deals")
    period = periods.containing(Frequency.WEEKLY)

    response = client_for(request.getfixturevalue(persona)).get(
        "/kpis/test-deals/records/", {"leaf": 0, "period": period.key})

    assert response.status_code == 200
    html = response.content.decode()
    assert records(html) == listed
    assert find_testid(html, "record-count") == "3 records (deals)"
    if hidden:
        assert find_testid(html, "hidden-count", "p").startswith(f"{hidden} record")
    else:
        assert 'data-testid="hidden-count"' not in html


def test_drilldown_of_the_win_rate_lists_the_won_deals(client_for, bob, stages, three_deals):
    won, lost = three_deals["A1"], three_deals["B1"]
    now = timezone.now()
    Deal.objects.filter(pk=won.pk).update(status=Deal.Status.WON, stage=stages["Won"], closed_at=now)
    Deal.objects.filter(pk=lost.pk).update(status=Deal.Status.LOST, stage=stages["Lost"], closed_at=now)
    make_kpi("test-win", unit=Kpi.Unit.PERCENT, formula=(
        "count(deals where status = 'won' by closed_at) * 100 "
        "/ count(deals where status in ('won', 'lost') by closed_at)"))
    week = periods.containing(Frequency.WEEKLY).key
    client = client_for(bob)

    assert records(client.get("/kpis/test-win/records/", {"leaf": 0, "period": week}).content.decode()) == ["A1"]
    assert records(client.get("/kpis/test-win/records/", {"leaf": 1, "period": week}).content.decode()) == [
        "B1", "A1"]
    # 1 won ÷ 2 closed × 100 = 50%
    assert find_testid(client.get("/kpis/test-win/").content.decode(), "live-value") == "50.0%"


@pytest.mark.parametrize("params, message", [
    ({}, "is not an aggregate of this formula; choose a number from 0 to 0."),
    ({"leaf": "1"}, "is not an aggregate of this formula"),
    ({"leaf": "-1"}, "is not an aggregate of this formula"),
    ({"leaf": "0", "period": "2026-W99"}, "is not a weekly period"),
    ({"leaf": "0", "dimension": "team:0"}, "There is no team with id 0."),
    ({"leaf": "0", "cursor": "garbage"}, "Invalid cursor"),
])
def test_bad_drilldown_parameters_are_a_clear_400(client_for, mona, params, message):
    make_kpi("test-deals")
    response = client_for(mona).get("/kpis/test-deals/records/", params)
    assert response.status_code == 400
    assert message in response.content.decode()


def test_drilldown_queries_do_not_grow_with_the_records(client_for, mona, make_deal, alice,
                                                       django_assert_num_queries):
    make_kpi("test-deals")
    client = client_for(mona)
    url = "/kpis/test-deals/records/?leaf=0"
    make_deal(alice, name="first")
    client.get(url)  # warm caches (content types, the default pipeline) that are not per-request work
    with django_assert_num_queries(DRILLDOWN_QUERIES):
        assert client.get(url).status_code == 200
    for i in range(5):
        make_deal(alice, name=f"more {i}")
    with django_assert_num_queries(DRILLDOWN_QUERIES):
        assert len(records(client.get(url).content.decode())) == 6


def test_drilldown_of_stage_changes_links_only_the_deals_the_viewer_may_see(client_for, charlie, three_deals):
    make_kpi("test-moves", formula="count(stage_changes)")
    week = periods.containing(Frequency.WEEKLY).key

    response = client_for(charlie).get("/kpis/test-moves/records/", {"leaf": 0, "period": week})

    assert response.status_code == 200
    html = response.content.decode()
    # each deal was created into its first stage: one stage change per deal; only the move of charlie's own
    # deal is listed, the other two are counted as not listed
    assert find_testid(html, "record-count") == "3 records (stage changes)"
    assert records(html) == ["C1"]
    assert find_testid(html, "hidden-count", "p").startswith("2 records are not listed")
    assert "(hidden deal)" not in html and "A1" not in html and "B1" not in html


def test_a_kpi_whose_formula_no_longer_compiles_still_shows_its_page(client_for, mona):
    make_kpi("test-broken", formula="count(dealz)")
    response = client_for(mona).get("/kpis/test-broken/")
    assert response.status_code == 200
    assert "dealz" in find_testid(response.content.decode(), "formula-error", "p")
    drill = client_for(mona).get("/kpis/test-broken/records/", {"leaf": 0})
    assert drill.status_code == 400
    assert "dealz" in drill.content.decode()


def test_turkish_pages_keep_svg_coordinates_readable(client_for, mona):
    kpi = make_kpi("test-tr", unit=Kpi.Unit.PERCENT, benchmark_low=Decimal("20.5"), benchmark_high=Decimal(30))
    now = periods.containing(kpi.frequency)
    snap(kpi, now, Decimal("25.25"))
    snap(kpi, now.previous(), Decimal("12.5"))
    client = client_for(mona)
    client.cookies["django_language"] = "tr"

    html = card(client.get(DASHBOARD, HTTP_ACCEPT_LANGUAGE="tr"), kpi.slug)

    assert find_testid(html, "current") == "%25,3"  # 25.25 rounded half up; Turkish: sign first, decimal comma
    path = re.search(r'class="spark-line" d="([^"]*)"', html).group(1)
    assert re.fullmatch(r"[ML0-9. ]+", path)
    detail = client.get("/kpis/test-tr/", HTTP_ACCEPT_LANGUAGE="tr").content.decode()
    assert re.search(r'<rect class="chart-band" x="\d+" y="[0-9.]+" width="[0-9.]+" height="[0-9.]+">', detail)


def test_kpi_page_names_the_currencies_left_out_for_want_of_a_rate(client_for, mona, make_deal, alice):
    import datetime as dt

    from kpis.models import ExchangeRate

    make_kpi("test-pipeline", formula="sum(deals.amount where status = 'open' at period end)",
               unit=Kpi.Unit.CURRENCY)
    make_deal(alice, name="Euro deal", amount=Decimal(100), currency="EUR")
    make_deal(alice, name="Dollar deal", amount=Decimal(100), currency="USD")
    ExchangeRate.objects.create(currency="USD", rate=Decimal("40"), valid_from=dt.date(2020, 1, 1))

    html = client_for(mona).get("/kpis/test-pipeline/").content.decode()

    # USD has a rate (100 × 40 = 4,000 counted); EUR has none and is named as left out
    assert "Deals in EUR have no exchange rate for this period" in html
    assert "USD have no" not in html


def test_a_start_of_period_kpi_page_shows_the_value_snapshotted_when_the_period_started(client_for, mona,
                                                                                      three_deals):
    kpi = make_kpi("test-forecast", decimals=0, frequency=Frequency.MONTHLY, snapshot_at_start=True)
    now = periods.containing(kpi.frequency)
    snap(kpi, now, Decimal(7))  # taken as the month began; the formula would give 3 today
    client = client_for(mona)

    html = client.get("/kpis/test-forecast/").content.decode()
    assert find_testid(html, "live-value") == "7"
    assert find_testid(html, "live-source") == "as snapshotted when the period started"
    last_month = client.get("/kpis/test-forecast/", {"period": now.previous().key}).content.decode()
    assert find_testid(last_month, "live-value") == "n/a"  # none was taken then; today's value would be wrong
    make_kpi("test-deals", decimals=0)
    assert find_testid(client.get("/kpis/test-deals/").content.decode(), "live-source") == "computed now"


def record_rows(html: str) -> list[list[str]]:
    table = re.search(r'data-testid="records">(.*?)</table>', html, re.S).group(1)
    return [[text(cell) for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
            for row in re.findall(r"<tr>(.*?)</tr>", table.split("<tbody>")[1], re.S)]


def test_survey_responses_of_contacts_the_viewer_cannot_see_are_not_listed(client_for, alice, charlie, north):
    import datetime as dt

    from kpis.models import SurveyResponse
    from tests.factories import ContactFactory

    mine, theirs = ContactFactory(owner=charlie, first_name="Cem"), ContactFactory(owner=alice, first_name="Ayla")
    start = timezone.now() - dt.timedelta(hours=5)
    SurveyResponse.objects.create(contact=theirs, score=10, responded_at=start)
    SurveyResponse.objects.create(contact=mine, score=9, responded_at=start + dt.timedelta(hours=3))
    SurveyResponse.objects.create(contact=mine, score=3, responded_at=start + dt.timedelta(hours=1))
    SurveyResponse.objects.create(contact=None, score=7, responded_at=start + dt.timedelta(hours=2))
    make_kpi("test-nps", frequency=Frequency.QUARTERLY, formula=(
        "(count(survey_responses where kind = 'nps' and score >= 9) "
        "- count(survey_responses where kind = 'nps' and score <= 6)) * 100 / count(survey_responses where kind = 'nps')"))
    client = client_for(charlie)

    html = client.get("/kpis/test-nps/records/", {"leaf": 2}).content.decode()

    assert find_testid(html, "record-count") == "4 records (survey responses)"
    assert find_testid(html, "hidden-count", "p").startswith("1 record is not listed")
    # newest first: Cem's 9 (3 h after the start), the anonymous 7 (2 h), Cem's 3 (1 h); Ayla's 10 is hidden
    assert [(row[0], row[2]) for row in record_rows(html)] == [("Cem Person", "9"), ("—", "7"), ("Cem Person", "3")]
    assert "(hidden contact)" not in html and "Ayla" not in html
    # Alice (North) sees her contact's answer and the anonymous one, not Cem's.
    html = client_for(alice).get("/kpis/test-nps/records/", {"leaf": 2}).content.decode()
    assert [row[2] for row in record_rows(html)] == ["7", "10"]
    assert find_testid(html, "hidden-count", "p").startswith("2 records are not listed")


def test_lifecycle_changes_of_hidden_contacts_are_not_listed_and_the_header_names_the_team(
        client_for, alice, charlie, south):
    from contacts.models import LifecycleChange
    from tests.factories import ContactFactory

    for owner in (alice, charlie):
        LifecycleChange.objects.create(contact=ContactFactory(owner=owner), from_stage="opportunity",
                                       to_stage="customer")
    make_kpi("test-customers", frequency=Frequency.MONTHLY,
             formula="count_distinct(lifecycle_changes.contact where to_stage = 'customer')")

    html = client_for(charlie).get("/kpis/test-customers/records/", {"leaf": 0}).content.decode()
    assert find_testid(html, "record-count") == "2 records (lifecycle changes)"
    assert len(record_rows(html)) == 1 and "(hidden contact)" not in html
    assert find_testid(html, "hidden-count", "p").startswith("1 record is not listed")

    south_only = client_for(charlie).get("/kpis/test-customers/records/", {"leaf": 0, "dimension": f"team:{south.pk}"})
    assert find_testid(south_only.content.decode(), "drilldown-scope", "p").endswith("· Team: South")
    assert f"team:{south.pk}" not in find_testid(south_only.content.decode(), "drilldown-scope", "p")


def test_dashboard_names_the_currencies_left_out_once_above_the_cards(client_for, mona, make_deal, alice,
                                                                      django_assert_num_queries):
    import datetime as dt

    from kpis.models import ExchangeRate

    Kpi.objects.filter(is_builtin=True).update(is_active=False)
    make_kpi("test-count")  # no money: no note, no query
    client = client_for(mona)
    make_deal(alice, name="Pound deal", amount=Decimal(100), currency="GBP")
    make_deal(alice, name="Euro deal", amount=Decimal(100), currency="EUR")
    make_deal(alice, name="Dollar deal", amount=Decimal(100), currency="USD")
    make_deal(alice, name="No amount", currency="CHF")
    ExchangeRate.objects.create(currency="USD", rate=Decimal("40"), valid_from=dt.date(2020, 1, 1))
    # A rate from next year does not cover this period.
    ExchangeRate.objects.create(currency="EUR", rate=Decimal("45"), valid_from=timezone.localdate().replace(
        year=timezone.localdate().year + 1))
    html = client.get(DASHBOARD).content.decode()
    assert 'data-testid="unconverted"' not in html

    for i in range(2):
        make_kpi(f"test-money-{i}", formula="sum(deals.amount)", unit=Kpi.Unit.CURRENCY)
    with django_assert_num_queries(11):  # the dashboard (10 without a dimension) + the currencies
        html = client.get(DASHBOARD).content.decode()
    assert html.count('data-testid="unconverted"') == 1
    assert html.index('data-testid="unconverted"') < html.index('data-testid="kpi-grid"')
    assert "Deals in EUR, GBP have no exchange rate for the periods shown" in html


def test_a_change_of_money_per_day_and_of_a_negative_value_read_with_their_unit(db):
    from kpis import selectors

    velocity = Kpi(unit=Kpi.Unit.CURRENCY_PER_DAY, decimals=0)
    with translation.override("en"):
        # 1,000 → 1,250 per day: +250 TRY/day; 1,250 → 1,000: −250 TRY/day
        assert selectors.format_change(velocity, selectors.change(Decimal(1250), Decimal(1000))) == "+250 TRY/day"
        assert selectors.format_change(velocity, selectors.change(Decimal(1000), Decimal(1250))) == "−250 TRY/day"
    assert Kpi.objects.get(slug="pipeline-velocity").unit == Kpi.Unit.CURRENCY_PER_DAY


def test_the_history_header_describes_the_chosen_period(client_for, mona):
    kpi = make_kpi("test-past", decimals=0)
    now = periods.containing(kpi.frequency)
    for back, value in enumerate([9, 7, 4, 1]):  # this week 9, then 7, 4, 1
        snap(kpi, now.shift(-back), Decimal(value))
    client = client_for(mona)

    html = client.get("/kpis/test-past/").content.decode()
    assert find_testid(html, "summary-period", "span").startswith(f"Current period ({now.label}): 9")
    assert find_testid(html, "summary-previous", "span") == f"Previous ({now.previous().label}): 7"

    two_back = now.shift(-2)
    html = client.get("/kpis/test-past/", {"period": two_back.key}).content.decode()
    assert find_testid(html, "summary-period", "span").startswith(f"{two_back.label}: 4")
    assert find_testid(html, "summary-previous", "span") == f"Previous ({two_back.previous().label}): 1"
