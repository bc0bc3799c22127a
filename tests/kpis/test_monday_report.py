"""The Monday report: managers get their team's KPIs, admins the company's, in their language, by e-mail."""

import datetime as dt
from decimal import Decimal

import pytest

from accounts.models import User
from kpis import report
from kpis.models import Frequency, Kpi, KpiSnapshot
from kpis.periods import Period
from kpis.tasks import send_monday_report
from tests.factories import TeamFactory, UserFactory

# Monday 30 November 2026, 08:00 in Istanbul: the report is about week 48 (Mon 23 – Sun 29 November).
MONDAY = dt.datetime(2026, 11, 30, 5, 0, tzinfo=dt.UTC)
W48 = Period(Frequency.WEEKLY, dt.date(2026, 11, 23))
SUNDAY = Period(Frequency.DAILY, dt.date(2026, 11, 29))
NOVEMBER = Period(Frequency.MONTHLY, dt.date(2026, 11, 1))


def snap(kpi, period, value, team=None):
    KpiSnapshot.objects.create(
        kpi=kpi, frequency=period.frequency, period_start=period.start, period_end=period.end,
        dimension_kind="team" if team else "", dimension_id=team.pk if team else 0, value=value, formula_version=1,
    )


@pytest.fixture
def kpis(north):
    Kpi.objects.filter(is_builtin=True).update(is_active=False)  # only the KPIs below
    win = Kpi.objects.create(slug="win-x", name="Win rate X", formula="count(deals)", unit=Kpi.Unit.PERCENT,
                             frequency=Frequency.WEEKLY, benchmark_low=20, benchmark_high=30,
                             dimensions=["team", "owner"], order=1)
    pipe = Kpi.objects.create(slug="pipe-x", name="Pipeline X", formula="count(deals)", unit=Kpi.Unit.CURRENCY,
                              decimals=0, frequency=Frequency.DAILY, benchmark_text="3-5x target",
                              dimensions=["team"], order=2)
    cycle = Kpi.objects.create(slug="cycle-x", name="Cycle X", formula="count(deals)", unit=Kpi.Unit.DAYS,
                               frequency=Frequency.MONTHLY, benchmark_low=30, benchmark_high=90,
                               direction=Kpi.Direction.LOWER, dimensions=["team"], order=3)
    roi = Kpi.objects.create(slug="roi-x", name="ROI X", formula="count(deals)", unit=Kpi.Unit.PERCENT,
                             frequency=Frequency.MONTHLY, benchmark_low=200, dimensions=["source"], order=4)
    Kpi.objects.create(slug="off-x", name="Switched off", formula="count(deals)", is_active=False,
                       dimensions=["team"])
    # Company.
    snap(win, W48, Decimal("35"))
    snap(win, W48.previous(), Decimal("25"))
    snap(pipe, SUNDAY, Decimal("1000"))
    snap(pipe, SUNDAY.shift(-7), Decimal("800"))
    snap(cycle, NOVEMBER, Decimal("45"))
    snap(cycle, NOVEMBER.previous(), Decimal("50"))
    snap(roi, NOVEMBER, Decimal("150"))
    # North.
    snap(win, W48, Decimal("18"), north)
    snap(win, W48.previous(), Decimal("22"), north)
    snap(pipe, SUNDAY, Decimal("500"), north)
    snap(cycle, NOVEMBER, Decimal("95"), north)
    snap(cycle, NOVEMBER.previous(), Decimal("60"), north)
    return {"win": win, "pipe": pipe, "cycle": cycle, "roi": roi}


@pytest.fixture
def site(settings):
    settings.SITE_URL = "https://crm.example.com"
    settings.CRM_CURRENCY = "TRY"


def by_recipient(mailoutbox):
    return {message.to[0]: message for message in mailoutbox}


def test_managers_get_their_team_and_admins_the_company(kpis, site, mona, sam, alice, charlie, mailoutbox,
                                                        time_machine, django_assert_num_queries):
    time_machine.move_to(MONDAY, tick=False)
    # recipients, their teams, the KPIs, the currencies without a rate (a money KPI is listed), and per section
    # (North, the company): the snapshots, last week's report, storing this one
    with django_assert_num_queries(10):
        assert report.send_monday_report() == 2
    mails = by_recipient(mailoutbox)
    assert sorted(mails) == ["mona@example.com", "sam@example.com"]  # reps get nothing

    north = mails["mona@example.com"]
    assert north.subject == "KPI report: Week 48, 2026"
    text = north.body
    assert "== North ==" in text and "Company" not in text
    # Win rate for North: 18 this week, 22 the week before: 18 − 22 = −4 points; −4 ÷ 22 = −18.2 %; below 20–30.
    assert "- Win rate X (Week 48, 2026): 18.0%\n    vs Week 47, 2026: 22.0%; change −4.0 pts (−18.2%)" in text
    assert "Benchmark: 20% – 30% — below" in text
    # Pipeline is daily: Sunday 29 Nov against Sunday 22 Nov (no row for North then).
    assert "- Pipeline X (29 Nov 2026): 500 TRY\n    vs 22 Nov 2026: n/a\n    Benchmark: 3-5x target\n" in text
    # Cycle is monthly: November so far; no report of last week to compare with (the first Monday), so against
    # October, said so; 95 days is above 30–90 (and longer is worse).
    assert "- Cycle X (Nov 2026 so far): 95.0 days\n    vs Oct 2026: 60.0 days; change +35.0 days (+58.3%)" in text
    # ROI is kept per lead source only: not in a team's report. Inactive KPIs never.
    assert "ROI X" not in text and "Switched off" not in text
    outside = text.split("Outside the benchmark:\n")[1].split("\n\n")[0]
    assert outside == "  ! Win rate X: 18.0% (below 20% – 30%)\n  ! Cycle X: 95.0 days (above 30 days – 90 days)"
    assert f"Open the dashboard: https://crm.example.com/kpis/?dimension=team:{mona.team_id}" in text

    html, mimetype = north.alternatives[0]
    assert mimetype == "text/html"
    assert '<li data-outside="win-x">' in html and '<li data-outside="cycle-x">' in html
    assert 'data-outside="pipe-x"' not in html
    assert f'href="https://crm.example.com/kpis/?dimension=team:{mona.team_id}"' in html
    assert "color:#c53030;\">−4.0 pts" in html  # worse: red

    company = mails["sam@example.com"].body
    assert "== Company ==" in company and "North" not in company
    # 35 − 25 = +10 points (+40 %), above the band; ROI 150 % is below ≥ 200 %; the cycle (45 days) is inside.
    assert "- Win rate X (Week 48, 2026): 35.0%\n    vs Week 47, 2026: 25.0%; change +10.0 pts (+40.0%)" in company
    assert "- ROI X (Nov 2026 so far): 150.0%\n    vs Oct 2026: n/a\n    Benchmark: ≥ 200% — below" in company
    outside = company.split("Outside the benchmark:\n")[1].split("\n\n")[0]
    assert outside == "  ! Win rate X: 35.0% (above 20% – 30%)\n  ! ROI X: 150.0% (below ≥ 200%)"
    assert "https://crm.example.com/kpis/\n" in company


def test_the_report_is_in_the_recipient_language(kpis, site, sam, mailoutbox, time_machine):
    time_machine.move_to(MONDAY, tick=False)
    sam.language = "tr"
    sam.save(update_fields=["language"])
    report.send_monday_report()
    body = mailoutbox[0].body
    # Turkish writes the percent sign first and a decimal comma.
    assert "%35,0" in body and "%25,0" in body
    assert "+10,0" in body and "(+%40,0)" in body  # 35 − 25 = 10 points = +40 % of 25
    assert "1.000 TRY" in body


def test_who_gets_nothing(kpis, site, north, mailoutbox, time_machine):
    time_machine.move_to(MONDAY, tick=False)
    UserFactory(username="gone", role=User.Role.MANAGER, is_active=False, team=north)
    UserFactory(username="noteam", role=User.Role.MANAGER)  # manages no team
    silent = UserFactory(username="silent", role=User.Role.ADMIN)
    silent.email = ""
    silent.save(update_fields=["email"])
    UserFactory(username="robot", role=User.Role.INTEGRATION)
    assert report.send_monday_report() == 0
    assert mailoutbox == []


def test_a_manager_of_two_teams_gets_a_section_for_each(kpis, site, mona, mailoutbox, time_machine):
    time_machine.move_to(MONDAY, tick=False)
    east = TeamFactory(name="East")
    east.manager = mona
    east.save(update_fields=["manager"])
    report.send_monday_report()
    body = mailoutbox[0].body
    assert body.index("== East ==") < body.index("== North ==")
    # East has no snapshots: every value is n/a and nothing is outside the benchmark.
    east_part = body.split("== East ==")[1].split("== North ==")[0]
    assert "- Win rate X (Week 48, 2026): n/a\n    vs Week 47, 2026: n/a\n" in east_part
    assert "Every KPI with a benchmark band is inside it." in east_part


def test_one_failing_recipient_does_not_stop_the_others(kpis, site, mona, sam, mailoutbox, time_machine,
                                                        monkeypatch):
    time_machine.move_to(MONDAY, tick=False)
    real = report.build_message

    def broken_for_mona(user, sections, week, **options):
        if user == mona:
            raise RuntimeError("template exploded")
        return real(user, sections, week, **options)

    monkeypatch.setattr(report, "build_message", broken_for_mona)
    assert report.send_monday_report() == 1
    assert [message.to for message in mailoutbox] == [["sam@example.com"]]


def test_the_celery_task_sends_the_report(kpis, site, mona, mailoutbox, time_machine):
    time_machine.move_to(MONDAY, tick=False)
    assert send_monday_report.delay().get() == 1  # eager in tests
    assert mailoutbox[0].to == ["mona@example.com"]



def test_monthly_kpis_compare_with_what_last_weeks_report_said(kpis, site, sam, mailoutbox, time_machine):
    from kpis.models import ReportedValue

    cycle = kpis["cycle"]
    # Monday 23 November (the report of week 47): November so far was 40 days; no earlier report → vs October.
    KpiSnapshot.objects.filter(kpi=cycle, period_start=NOVEMBER.start, dimension_kind="").update(value=40)
    time_machine.move_to(MONDAY - dt.timedelta(days=7), tick=False)
    report.send_monday_report()
    assert "- Cycle X (Nov 2026 so far): 40.0 days\n    vs Oct 2026: 50.0 days; change −10.0 days" in (
        mailoutbox[0].body)
    stored = ReportedValue.objects.get(kpi=cycle, dimension_kind="", reported_on=dt.date(2026, 11, 23))
    assert (stored.period_start, stored.value) == (NOVEMBER.start, Decimal("40"))

    # Monday 30 November: 45 days now; last week's report said 40 for November → +5 since last week.
    KpiSnapshot.objects.filter(kpi=cycle, period_start=NOVEMBER.start, dimension_kind="").update(value=45)
    time_machine.move_to(MONDAY, tick=False)
    report.send_monday_report()
    body = mailoutbox[1].body
    # 45 − 40 = +5 days; 5 ÷ 40 = +12.5 %
    assert "- Cycle X (Nov 2026 so far): 45.0 days\n    vs last week's report: 40.0 days; change +5.0 days (+12.5%)" in (
        body)
    # Weekly and daily KPIs compare as before: the week before, the same day a week earlier.
    assert "vs Week 47, 2026: 25.0%" in body and "vs 22 Nov 2026: 800 TRY" in body
    # Sent again the same Monday: the stored values are replaced, not doubled.
    report.send_monday_report()
    assert ReportedValue.objects.filter(kpi=cycle, dimension_kind="", reported_on=dt.date(2026, 11, 30)).count() == 1

    # Monday 7 December: a new month began → no report of December yet: against November, said so.
    december = NOVEMBER.next()
    snap(cycle, december, Decimal("30"))
    snap(kpis["win"], W48.next(), Decimal("30"))
    time_machine.move_to(MONDAY + dt.timedelta(days=7), tick=False)
    report.send_monday_report()
    assert "- Cycle X (Dec 2026 so far): 30.0 days\n    vs Nov 2026: 45.0 days; change −15.0 days" in (
        mailoutbox[-1].body)


def test_the_change_is_computed_from_the_values_as_shown(kpis, site, sam, mailoutbox, time_machine):
    pipe = kpis["pipe"]  # money, no decimals
    KpiSnapshot.objects.filter(kpi=pipe, period_start=SUNDAY.start, dimension_kind="").update(value=Decimal("19.6"))
    KpiSnapshot.objects.filter(kpi=pipe, period_start=SUNDAY.shift(-7).start, dimension_kind="").update(
        value=Decimal("12.4"))
    time_machine.move_to(MONDAY, tick=False)
    report.send_monday_report()
    # Shown 20 and 12 (half up): the change reads +8 (not the +7 that 19.6 − 12.4 = 7.2 would round to);
    # 8 ÷ 12 = +66.7 %.
    assert "- Pipeline X (29 Nov 2026): 20 TRY\n    vs 22 Nov 2026: 12 TRY; change +8 TRY (+66.7%)" in (
        mailoutbox[0].body)


def test_the_report_names_the_currencies_left_out(kpis, site, sam, mailoutbox, time_machine, stages, alice):
    from tests.factories import DealFactory

    time_machine.move_to(MONDAY, tick=False)
    report.send_monday_report()
    assert "no exchange rate" not in mailoutbox[0].body
    DealFactory(stage=stages["Lead"], owner=alice, amount=Decimal(100), currency="GBP")
    report.send_monday_report()
    text, html = mailoutbox[1].body, mailoutbox[1].alternatives[0][0]
    line = "Deals in GBP have no exchange rate, so their amounts are left out of the money KPIs."
    assert text.count(line) == 1 and html.count(line) == 1
