"""The demo OKRs that seed_demo adds: this quarter's cycle with the sales template and past check-ins only."""

import datetime as dt

import pytest
from django.utils import timezone

from accounts.models import User
from okrs.demo import seed_demo_okrs
from okrs.models import CheckIn, Cycle, KeyResult
from tests.factories import TeamFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def demo_users():
    team = TeamFactory(name="İstanbul Satış")
    manager = UserFactory(username="manager", team=team, role=User.Role.MANAGER)
    team.manager = manager
    team.save(update_fields=["manager"])
    UserFactory(username="admin", role=User.Role.ADMIN, is_staff=True)
    UserFactory(username="rep", team=team, role=User.Role.REP)
    return team


def test_the_demo_cycle_is_this_quarter_with_the_sales_template(demo_users):
    now = dt.datetime(2026, 11, 23, 12, tzinfo=timezone.get_current_timezone())
    line = seed_demo_okrs(now=now)

    cycle = Cycle.objects.get()
    assert (cycle.start_date, cycle.end_date, cycle.status) == (dt.date(2026, 10, 1), dt.date(2026, 12, 31), "active")
    assert cycle.objectives.count() == 3  # company, the team's sales objective, the rep's own
    assert KeyResult.objects.filter(objective__cycle=cycle, kpi__slug="win-rate").exists()
    # 1 Oct 09:00 + 8, 22, 36, 50 days are past on 23 Nov; + 64 days (4 Dec) is not
    assert set(CheckIn.objects.values_list("created_at__date", flat=True)) <= {
        dt.date(2026, 10, 9), dt.date(2026, 10, 23), dt.date(2026, 11, 6), dt.date(2026, 11, 20)}
    assert CheckIn.objects.filter(key_result__title="Discovery calls booked").count() == 4
    assert "Q4 2026" in line


def test_a_second_run_adds_nothing(demo_users):
    seed_demo_okrs()
    objectives = Cycle.objects.get().objectives.count()
    assert "exists already" in seed_demo_okrs()
    assert Cycle.objects.count() == 1 and Cycle.objects.get().objectives.count() == objectives
