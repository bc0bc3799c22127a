"""The OKR pages that change OKRs: cycles (new, edit, activate, close with score overrides), objectives (with
gentle warnings), key results (with the reason kept in the history), check-ins (with a safe ``next``), notes on
automatic check-ins, initiatives and loading a template — permissions, bad input and pinned query counts."""

import datetime as dt
from decimal import Decimal as D

import pytest
from django.urls import reverse

from okrs import services
from okrs.models import CheckIn, Cycle, Initiative, KeyResult, KeyResultChange, Objective
from okrs.views_forms import format_value

from .conftest import Q1_END, snapshot

pytestmark = pytest.mark.django_db

TURKISH = "Müşteri memnuniyetini artırmak — İĞÜŞÖÇ ığüşöç"
HUGE = "x" * 100_000


@pytest.fixture
def kr(active, north_objective, mona, alice, make_kr):
    """A manual key result of North's objective owned by alice: 22 → 30."""
    return make_kr(mona, north_objective, title="Win rate by hand", owner=alice)


# --- cycles --------------------------------------------------------------------------------------


def test_anonymous_is_sent_to_login(client, cycle):
    for url in (reverse("okr-cycles"), reverse("okr-cycle-new"), reverse("okr-template-load")):
        response = client.get(url)
        assert response.status_code == 302 and reverse("login") in response.url


def test_cycle_list_for_everyone_with_pinned_queries(client_for, alice, sam, cycle, django_assert_num_queries):
    Cycle.objects.create(name="Q2 2026", start_date=dt.date(2026, 4, 1), end_date=dt.date(2026, 6, 30))
    client = client_for(alice)
    # session, user, the cycles with their counts, the unread notices of the top bar — whatever the number
    with django_assert_num_queries(4):
        response = client.get(reverse("okr-cycles"))
    assert response.status_code == 200
    body = response.content.decode()
    assert "Q1 2026" in body and "Q2 2026" in body
    assert reverse("okr-cycle-new") not in body  # reps do not manage cycles


def test_only_admins_create_cycles(client_for, alice, sam):
    assert client_for(alice).get(reverse("okr-cycle-new")).status_code == 403
    assert client_for(alice).post(reverse("okr-cycle-new"), {"name": "X"}).status_code == 403
    client = client_for(sam)
    response = client.post(reverse("okr-cycle-new"), {
        "name": "", "start_date": "2026-04-01", "end_date": "", "on_track_threshold": "0,95",
        "at_risk_threshold": "0.75", "grace_days": "7"})
    assert response.status_code == 302
    cycle = Cycle.objects.get()
    # a whole quarter without a name is named after it
    assert (cycle.name, cycle.start_date, cycle.end_date, cycle.on_track_threshold) == (
        "Q2 2026", dt.date(2026, 4, 1), dt.date(2026, 6, 30), D("0.95"))


def test_cycle_bad_input_is_a_form_error(client_for, sam):
    client = client_for(sam)
    response = client.post(reverse("okr-cycle-new"), {
        "name": HUGE, "start_date": "2026-13-45", "end_date": "yesterday", "on_track_threshold": "lots",
        "at_risk_threshold": "1e400", "grace_days": "-3"})
    assert response.status_code == 422
    form = response.context["form"]
    assert set(form.errors) == {"name", "start_date", "end_date", "on_track_threshold", "at_risk_threshold",
                                "grace_days"}
    response = client.post(reverse("okr-cycle-new"), {
        "name": TURKISH[:100], "start_date": "2026-04-01", "end_date": "2026-03-01", "on_track_threshold": "0.5",
        "at_risk_threshold": "0.9", "grace_days": "7"})
    assert response.status_code == 422
    assert "end_date" in response.context["form"].errors
    assert not Cycle.objects.exists()


def test_cycle_edit_activate_and_close_with_an_override(client_for, sam, cycle, north_objective, mona, make_kr):
    client = client_for(sam)
    response = client.post(reverse("okr-cycle-edit", args=[cycle.pk]), {
        "name": "Q1 2026 — İlk çeyrek", "start_date": "2026-01-01", "end_date": "2026-03-31",
        "on_track_threshold": "0.9", "at_risk_threshold": "0.7", "grace_days": "5"})
    assert response.status_code == 302
    cycle.refresh_from_db()
    assert (cycle.name, cycle.on_track_threshold, cycle.grace_days) == ("Q1 2026 — İlk çeyrek", D("0.9"), 5)
    assert client.get(reverse("okr-cycle-activate", args=[cycle.pk])).status_code == 405
    assert client.post(reverse("okr-cycle-activate", args=[cycle.pk])).status_code == 302
    cycle.refresh_from_db()
    assert cycle.status == "active"
    kr1 = make_kr(mona, north_objective, title="A")
    kr2 = make_kr(mona, north_objective, title="B")
    services.check_in(actor=mona, key_result=kr1, value="25")  # (25 − 22) ÷ 8 = 0.375 → score 0.4
    page = client.get(reverse("okr-cycle-close", args=[cycle.pk]))
    assert page.status_code == 200
    proposed = {s.key_result.pk: s.score for s in page.context["form"].states}
    assert proposed == {kr1.pk: D("0.4"), kr2.pk: D("0.0")}
    # an override without a comment is refused next to the key result; nothing closes
    data = {f"score_{kr1.pk}": "0.4", f"comment_{kr1.pk}": "", f"score_{kr2.pk}": "0,5", f"comment_{kr2.pk}": ""}
    response = client.post(reverse("okr-cycle-close", args=[cycle.pk]), data)
    assert response.status_code == 422
    assert list(response.context["form"].errors) == [f"comment_{kr2.pk}"]
    cycle.refresh_from_db()
    assert cycle.status == "active"
    response = client.post(reverse("okr-cycle-close", args=[cycle.pk]), data | {
        f"score_{kr1.pk}": "1.7", f"comment_{kr2.pk}": "Signed after the deadline"})
    assert response.status_code == 422 and f"score_{kr1.pk}" in response.context["form"].errors
    response = client.post(reverse("okr-cycle-close", args=[cycle.pk]), data | {
        f"comment_{kr2.pk}": "Signed after the deadline"})
    assert response.status_code == 302
    cycle.refresh_from_db()
    kr1.refresh_from_db()
    kr2.refresh_from_db()
    assert cycle.status == "closed"
    assert (kr1.score, kr1.score_comment, kr2.score, kr2.score_comment) == (
        D("0.4"), "", D("0.5"), "Signed after the deadline")
    # check-ins are locked after close
    response = client_for(mona).post(reverse("okr-check-in", args=[kr1.pk]), {"value": "28"})
    assert response.status_code == 422
    assert "closed" in str(response.context["check_in_form"].non_field_errors())
    assert CheckIn.objects.filter(key_result=kr1).count() == 1


def test_non_admins_cannot_activate_or_close(client_for, mona, cycle):
    client = client_for(mona)
    assert client.post(reverse("okr-cycle-activate", args=[cycle.pk])).status_code == 403
    assert client.get(reverse("okr-cycle-close", args=[cycle.pk])).status_code == 403
    assert client.get(reverse("okr-cycle-edit", args=[999999])).status_code == 404


# --- objectives ----------------------------------------------------------------------------------


def test_new_objective_warns_gently_after_saving(client_for, mona, north, active):
    client = client_for(mona)
    page = client.get(reverse("okr-objective-new") + f"?cycle={active.pk}&team={north.pk}")
    assert page.status_code == 200
    assert page.context["form"].initial["level"] == "team"
    response = client.post(reverse("okr-objective-new") + f"?cycle={active.pk}", {
        "title": "Grow revenue 20 %", "level": "team", "team": north.pk, "owner": mona.pk}, follow=True)
    objective = Objective.objects.get()
    assert response.redirect_chain[-1][0] == reverse("okr-objective", args=[objective.pk])
    texts = [str(m) for m in response.context["messages"]]
    assert any("Numbers belong in key results" in t for t in texts)
    assert any("2 to 4 key results" in t for t in texts)
    assert (objective.level, objective.team, objective.owner, objective.cycle) == ("team", north, mona, active)


def test_objective_errors_and_permissions(client_for, alice, bob, mona, charlie, north, south, active, make_objective):
    client = client_for(alice)
    url = reverse("okr-objective-new") + f"?cycle={active.pk}"
    # a rep cannot set a team objective or give it to someone else; huge / empty titles are form errors
    response = client.post(url, {"title": HUGE, "level": "team", "team": north.pk, "owner": bob.pk})
    assert response.status_code == 422
    assert {"title", "owner"} <= set(response.context["form"].errors)
    response = client.post(url, {"title": "Sell", "level": "company", "owner": alice.pk})
    assert response.status_code == 422 and "level" in response.context["form"].errors
    response = client.post(url, {"title": "Sell", "level": "team", "team": north.pk, "owner": alice.pk})
    assert response.status_code == 422 and "level" in response.context["form"].errors
    assert not Objective.objects.exists()
    # the parent picker lists only visible objectives of the same cycle
    mine = make_objective(alice, active, title="Mine", level="individual")
    hidden = make_objective(charlie, active, title="Charlie's own", level="individual")
    other_cycle = services.cycle_create(actor=_admin(), data={"start_date": dt.date(2026, 4, 1)})
    elsewhere = make_objective(alice, other_cycle, title="Next quarter", level="individual")
    form = client.get(url).context["form"]
    parents = set(form.fields["parent"].queryset)
    assert mine in parents and hidden not in parents and elsewhere not in parents
    response = client.post(url, {"title": "Sell", "level": "individual", "owner": alice.pk, "parent": hidden.pk})
    assert response.status_code == 422 and "parent" in response.context["form"].errors
    # hidden objective → 404; visible but not editable → 403
    assert client.get(reverse("okr-objective", args=[hidden.pk])).status_code == 404
    assert client.get(reverse("okr-objective-edit", args=[hidden.pk])).status_code == 404
    team_objective = make_objective(mona, active, title="Team", level="team", team=north)
    assert client.get(reverse("okr-objective", args=[team_objective.pk])).status_code == 200
    assert client.get(reverse("okr-objective-edit", args=[team_objective.pk])).status_code == 403
    assert client.post(reverse("okr-objective-archive", args=[team_objective.pk])).status_code == 403


def test_objective_form_offers_only_the_levels_the_user_may_set(client_for, alice, mona, sam, north, south,
                                                                active, make_objective):
    """Company: admins; team: the team's manager and admins; individual: everyone — what the save accepts."""
    url = reverse("okr-objective-new") + f"?cycle={active.pk}&team={north.pk}"

    def levels(form):
        return [value for value, _label in form.fields["level"].choices]

    # a rep coming from their team's dashboard: an individual objective, no team to pick
    page = client_for(alice).get(url)
    form = page.context["form"]
    assert levels(form) == ["individual"] and "team" not in form.fields
    assert form.initial["level"] == "individual" and 'name="team"' not in page.content.decode()
    # a manager: team (of the teams they manage) and individual
    form = client_for(mona).get(url).context["form"]
    assert levels(form) == ["team", "individual"] and list(form.fields["team"].queryset) == [north]
    # an admin: every level, every team
    form = client_for(sam).get(url).context["form"]
    assert levels(form) == ["company", "team", "individual"] and set(form.fields["team"].queryset) == {north, south}
    # a rep who owns a team objective keeps its level when editing it (the service accepts an unchanged level)
    owned = make_objective(mona, active, title="Team", level="team", team=north, owner=alice)
    form = client_for(alice).get(reverse("okr-objective-edit", args=[owned.pk])).context["form"]
    assert levels(form) == ["team", "individual"] and list(form.fields["team"].queryset) == [north]
    response = client_for(alice).post(reverse("okr-objective-edit", args=[owned.pk]), {
        "title": "Team, renamed", "level": "team", "team": north.pk, "owner": alice.pk})
    assert response.status_code == 302
    owned.refresh_from_db()
    assert (owned.title, owned.level, owned.team) == ("Team, renamed", "team", north)
    # every level a rep is offered saves
    response = client_for(alice).post(reverse("okr-objective-new") + f"?cycle={active.pk}", {
        "title": "Know the product", "level": "individual", "owner": alice.pk})
    assert response.status_code == 302


def _admin():
    from accounts.models import User

    return User.objects.get(username="sam") if User.objects.filter(username="sam").exists() else \
        User.objects.create(username="sam2", role=User.Role.ADMIN)


def test_objective_edit_archive_and_page(client_for, mona, alice, active, north_objective, kr, make_objective,
                                         django_assert_num_queries):
    client = client_for(mona)
    child = make_objective(alice, active, title="Alice helps", level="individual", parent=north_objective)
    Initiative.objects.create(key_result=kr, title="Call lapsed customers", owner=alice)
    with django_assert_num_queries(15):
        page = client.get(reverse("okr-objective", args=[north_objective.pk]))
    assert page.status_code == 200
    body = page.content.decode()
    assert "Win rate by hand" in body and "Alice helps" in body and "Call lapsed customers" in body
    assert "2 to 4 key results" in body  # one key result: the gentle note stays on the page
    child_page = client.get(reverse("okr-objective", args=[child.pk])).content.decode()
    assert reverse("okr-objective", args=[north_objective.pk]) in child_page  # parent link
    response = client.post(reverse("okr-objective-edit", args=[north_objective.pk]), {
        "title": TURKISH, "description": "", "level": "team", "team": north_objective.team_id, "owner": mona.pk})
    assert response.status_code == 302
    north_objective.refresh_from_db()
    assert north_objective.title == TURKISH
    assert client.post(reverse("okr-objective-archive", args=[north_objective.pk])).status_code == 302
    north_objective.refresh_from_db()
    assert north_objective.archived_at is not None
    client.post(reverse("okr-objective-archive", args=[north_objective.pk]), {"archived": "0"})
    north_objective.refresh_from_db()
    assert north_objective.archived_at is None


# --- key results ---------------------------------------------------------------------------------


def test_new_key_result_defaults_and_kpi_breakdown(client_for, mona, north, active, north_objective, win_rate):
    client = client_for(mona)
    page = client.get(reverse("okr-kr-new", args=[north_objective.pk]))
    assert page.status_code == 200
    form = page.context["form"]
    assert form.initial["due_date"] == Q1_END
    assert (f"team:{north.pk}", "North") in dict(form.fields["dimension"].choices)["Team"]
    response = client.post(reverse("okr-kr-new", args=[north_objective.pk]), {
        "title": "Win rate of North", "kind": "increase", "start_value": "22", "target_value": "30,5",
        "unit": "percent", "due_date": "", "weight": "2", "owner": mona.pk, "kpi": win_rate.pk,
        "dimension": f"team:{north.pk}"}, follow=True)
    kr = KeyResult.objects.get()
    assert response.redirect_chain[-1][0] == reverse("okr-kr", args=[kr.pk])
    assert (kr.target_value, kr.due_date, kr.weight, kr.kpi, kr.dimension_kind, kr.dimension_id) == (
        D("30.5"), Q1_END, D("2"), win_rate, "team", north.pk)
    assert any("2 to 4 key results" in str(m) for m in response.context["messages"])


def test_a_key_result_measured_by_a_kpi_takes_its_unit_whatever_the_picker_says(client_for, mona, active,
                                                                                  north_objective, win_rate):
    """The unit picker sends its first choice (Number) unless changed; with a KPI chosen the KPI's unit wins."""
    client = client_for(mona)
    form = client.get(reverse("okr-kr-new", args=[north_objective.pk])).context["form"]
    default_unit = form.fields["unit"].choices[0][0]
    assert default_unit == "number"
    response = client.post(reverse("okr-kr-new", args=[north_objective.pk]), {
        "title": "Win rate up", "kind": "increase", "start_value": "22", "target_value": "30", "unit": default_unit,
        "due_date": "", "weight": "1", "owner": mona.pk, "kpi": win_rate.pk, "dimension": ""})
    assert response.status_code == 302
    kr = KeyResult.objects.get()
    assert (kr.kpi, kr.unit) == (win_rate, "percent")
    # editing it with another unit picked keeps the KPI's unit
    data = {"title": kr.title, "kind": "increase", "start_value": "22", "target_value": "30", "unit": "currency",
            "due_date": "2026-03-31", "weight": "1", "owner": mona.pk, "kpi": win_rate.pk, "dimension": "",
            "reason": ""}
    assert client.post(reverse("okr-kr-edit", args=[kr.pk]), data).status_code == 302
    kr.refresh_from_db()
    assert kr.unit == "percent"


def test_key_result_bad_input(client_for, mona, active, north_objective, win_rate):
    client = client_for(mona)
    url = reverse("okr-kr-new", args=[north_objective.pk])
    base = {"title": "X", "kind": "increase", "start_value": "22", "target_value": "30", "unit": "number",
            "weight": "1", "owner": mona.pk}
    cases = [
        ({"target_value": "22"}, "target_value"),  # start equal to target
        ({"target_value": "10"}, "kind"),  # increase to a lower target
        ({"target_value": ""}, "target_value"),
        ({"start_value": "çok"}, "start_value"),
        ({"target_value": "9" * 40}, "target_value"),
        ({"due_date": "2027-01-01"}, "due_date"),  # outside the cycle
        ({"weight": "0"}, "weight"),
        ({"kind": "sideways"}, "kind"),
        ({"title": HUGE}, "title"),
        ({"kpi": "999999"}, "kpi"),
        ({"dimension": "team:1"}, "dimension"),  # a breakdown without a KPI
        ({"kpi": win_rate.pk, "dimension": "nonsense"}, "dimension"),
    ]
    for change, field in cases:
        response = client.post(url, base | change)
        assert response.status_code == 422, change
        assert field in response.context["form"].errors, (change, response.context["form"].errors)
    assert not KeyResult.objects.exists()


def test_editing_the_target_in_an_active_cycle_needs_a_reason(client_for, mona, alice, kr):
    client = client_for(mona)
    data = {"title": kr.title, "kind": "increase", "start_value": "22", "target_value": "32", "unit": "number",
            "due_date": "2026-03-31", "weight": "1", "owner": alice.pk, "kpi": "", "dimension": "", "reason": ""}
    response = client.post(reverse("okr-kr-edit", args=[kr.pk]), data)
    assert response.status_code == 422 and "reason" in response.context["form"].errors
    assert client.post(reverse("okr-kr-edit", args=[kr.pk]), data | {"reason": "Büyük müşteri geldi"}).status_code \
        == 302
    change = KeyResultChange.objects.get()
    assert (change.field, change.old_value, change.new_value, change.changed_by, change.reason) == (
        "target_value", "30", "32", mona, "Büyük müşteri geldi")
    page = client.get(reverse("okr-kr", args=[kr.pk])).content.decode()
    assert "Büyük müşteri geldi" in page and "Target value" in page


def test_key_result_permissions(client_for, bob, charlie, kr, make_objective, make_kr, active):
    # bob (same team, not the owner) sees but cannot change; charlie (South) sees team OKRs too
    assert client_for(bob).get(reverse("okr-kr", args=[kr.pk])).status_code == 200
    assert client_for(bob).get(reverse("okr-kr-edit", args=[kr.pk])).status_code == 403
    assert client_for(bob).post(reverse("okr-check-in", args=[kr.pk]), {"value": "25"}).status_code == 403
    assert client_for(bob).get(reverse("okr-kr-new", args=[kr.objective_id])).status_code == 403
    private = make_objective(charlie, active, title="Charlie's own", level="individual")
    hidden_kr = make_kr(charlie, private)
    assert client_for(bob).get(reverse("okr-kr", args=[hidden_kr.pk])).status_code == 404
    assert client_for(bob).post(reverse("okr-check-in", args=[hidden_kr.pk]), {"value": "1"}).status_code == 404
    assert client_for(bob).get(reverse("okr-initiative-new", args=[hidden_kr.pk])).status_code == 404
    assert not CheckIn.objects.exists()


# --- check-ins -----------------------------------------------------------------------------------


def test_rep_checks_in_with_confidence_and_note(client_for, alice, kr, django_assert_num_queries):
    client = client_for(alice)
    response = client.post(reverse("okr-check-in", args=[kr.pk]), {
        "value": "26,5", "confidence": "7", "note": "İki teklif bekliyor", "blockers": ""})
    assert response.status_code == 302 and response.url == reverse("okr-kr", args=[kr.pk])
    row = CheckIn.objects.get()
    assert (row.value, row.confidence, row.note, row.author, row.is_automatic) == (
        D("26.5"), 7, "İki teklif bekliyor", alice, False)
    kr.refresh_from_db()
    assert kr.current_value == D("26.5")
    services.check_in(actor=alice, key_result=kr, value="27")
    services.check_in(actor=alice, key_result=kr, value="26.5", confidence=7, note="İki teklif bekliyor")
    # session, user, the cycle, the last check-in, the series, the check-ins, history, initiatives, the
    # visible key result (with its objective and cycle), notices — whatever the number of check-ins
    with django_assert_num_queries(10):
        page = client.get(reverse("okr-kr", args=[kr.pk]))
    body = page.content.decode()
    assert "İki teklif bekliyor" in body
    # (26.5 − 22) ÷ (30 − 22) = 4.5 ÷ 8 = 0.5625 → 56.25 % → 56.3% (one decimal, as the tree shows it)
    assert page.context["state"].progress.value == D("0.5625")
    assert page.context["state"].progress_text == "56.3%"
    assert page.context["state"].current_text == "26.5"


def test_check_in_bad_input_changes_nothing(client_for, alice, kr):
    client = client_for(alice)
    for data, field in [({"value": ""}, "value"), ({"value": "abc"}, "value"), ({"value": "1e400"}, "value"),
                        ({"value": "5", "confidence": "11"}, "confidence"),
                        ({"value": "5", "confidence": "çok"}, "confidence"),
                        ({"value": "5", "note": HUGE}, "note")]:
        response = client.post(reverse("okr-check-in", args=[kr.pk]), data)
        assert response.status_code == 422, data
        assert field in response.context["check_in_form"].errors, data
    assert not CheckIn.objects.exists()


def test_check_in_next_is_followed_only_on_this_site(client_for, alice, kr):
    client = client_for(alice)
    response = client.post(reverse("okr-check-in", args=[kr.pk]), {"value": "24", "next": "/okrs/mine/"})
    assert response.url == "/okrs/mine/"
    response = client.post(reverse("okr-check-in", args=[kr.pk]), {"value": "25", "next": "https://evil.example/"})
    assert response.url == reverse("okr-kr", args=[kr.pk])
    response = client.post(reverse("okr-check-in", args=[kr.pk]), {"value": "25", "next": "//evil.example/x"})
    assert response.url == reverse("okr-kr", args=[kr.pk])
    # an invalid quick check-in goes back with the error as a message
    response = client.post(reverse("okr-check-in", args=[kr.pk]), {"value": "x", "next": "/okrs/mine/"})
    assert response.status_code == 302 and response.url == "/okrs/mine/"
    assert CheckIn.objects.count() == 3


def test_milestone_check_in(client_for, mona, active, north_objective, make_kr):
    milestone = make_kr(mona, north_objective, title="Launch the portal", kind="milestone")
    client = client_for(mona)
    response = client.post(reverse("okr-check-in", args=[milestone.pk]), {"done": ""})
    assert response.status_code == 422 and "done" in response.context["check_in_form"].errors
    assert client.post(reverse("okr-check-in", args=[milestone.pk]), {"done": "yes"}).status_code == 302
    milestone.refresh_from_db()
    assert milestone.milestone_done is True
    # the quick form of "my key results" posts value 0 / 1
    response = client.post(reverse("okr-check-in", args=[milestone.pk]), {"value": "0", "next": "/okrs/mine/"})
    assert response.url == "/okrs/mine/"
    milestone.refresh_from_db()
    assert milestone.milestone_done is False
    response = client.post(reverse("okr-check-in", args=[milestone.pk]), {"value": "7"})
    assert response.status_code == 422 and "value" in response.context["check_in_form"].errors


def test_automatic_check_in_gets_a_note(client_for, mona, north, active, north_objective, win_rate):
    kr, _w = services.key_result_create(actor=mona, objective=north_objective, data={
        "title": "Win rate", "start_value": 22, "target_value": 30, "kpi": win_rate, "dimension_kind": "team",
        "dimension_id": north.pk})
    snap = snapshot(win_rate, dt.date(2026, 2, 9), 7, D("26"), kind="team", member=north.pk)
    services.checkins_from_snapshots([snap])
    row = CheckIn.objects.get()
    client = client_for(mona)
    page = client.get(reverse("okr-kr", args=[kr.pk]))
    body = page.content.decode()
    assert "automatic" in body and reverse("okr-check-in-annotate", args=[row.pk]) in body
    # the breakdown is named by its member, not by its id (“Team: North”, not “Team #3”)
    assert '<span data-testid="dimension">Team: North</span>' in body and f"#{north.pk}" not in body
    # a value by hand on a KPI key result has no field; confidence and a note only
    assert "value" not in page.context["check_in_form"].fields
    response = client.post(reverse("okr-check-in-annotate", args=[row.pk]), {f"a{row.pk}-confidence": "12"})
    assert response.status_code == 422
    response = client.post(reverse("okr-check-in-annotate", args=[row.pk]), {
        f"a{row.pk}-confidence": "6", f"a{row.pk}-note": "Two renewals slipped", f"a{row.pk}-blockers": ""})
    assert response.status_code == 302
    row.refresh_from_db()
    assert (row.confidence, row.note, row.author, row.value) == (6, "Two renewals slipped", mona, D("26"))


# --- initiatives ---------------------------------------------------------------------------------


def test_initiatives_new_edit_delete(client_for, alice, bob, kr):
    client = client_for(alice)
    assert client.post(reverse("okr-initiative-new", args=[kr.pk]), {
        "title": "", "owner": alice.pk, "status": "not_started"}).status_code == 422
    response = client.post(reverse("okr-initiative-new", args=[kr.pk]), {
        "title": "Demo günleri", "owner": alice.pk, "status": "in_progress", "due_date": "2026-02-20"})
    assert response.status_code == 302
    item = Initiative.objects.get()
    assert (item.title, item.status, item.due_date) == ("Demo günleri", "in_progress", dt.date(2026, 2, 20))
    assert client_for(bob).get(reverse("okr-initiative-edit", args=[item.pk])).status_code == 403
    client = client_for(alice)
    response = client.post(reverse("okr-initiative-edit", args=[item.pk]), {
        "title": "Demo günleri", "owner": alice.pk, "status": "done", "due_date": "31/02/2026"})
    assert response.status_code == 422 and "due_date" in response.context["form"].errors
    client.post(reverse("okr-initiative-edit", args=[item.pk]), {
        "title": "Demo günleri", "owner": alice.pk, "status": "done", "due_date": ""})
    item.refresh_from_db()
    assert (item.status, item.due_date) == ("done", None)
    assert client.post(reverse("okr-initiative-delete", args=[item.pk])).status_code == 302
    assert not Initiative.objects.exists()


# --- templates -----------------------------------------------------------------------------------


def test_manager_loads_the_sales_template(client_for, mona, north, south, active, win_rate):
    client = client_for(mona)
    page = client.get(reverse("okr-template-load"))
    assert page.status_code == 200
    form = page.context["form"]
    assert list(form.fields["team"].queryset) == [north]
    assert form.initial["cycle"] == active.pk and form.initial["team"] == north.pk
    response = client.post(reverse("okr-template-load"), {"template": "sales", "cycle": active.pk,
                                                           "team": south.pk})
    assert response.status_code == 422 and "team" in response.context["form"].errors
    response = client.post(reverse("okr-template-load"), {"template": "nope", "cycle": active.pk, "team": north.pk})
    assert response.status_code == 422 and "template" in response.context["form"].errors
    response = client.post(reverse("okr-template-load"), {"template": "sales", "cycle": active.pk,
                                                           "team": north.pk}, follow=True)
    objective = Objective.objects.get()
    assert response.redirect_chain[-1][0] == reverse("okr-objective", args=[objective.pk])
    texts = [str(m) for m in response.context["messages"]]
    assert any("measured by the KPI “Win rate”" in t for t in texts)
    assert any("checked in by hand" in t for t in texts)
    win = objective.key_results.get(kpi=win_rate)
    assert (win.dimension_kind, win.dimension_id) == ("team", north.pk)


def test_reps_cannot_load_templates(client_for, alice):
    assert client_for(alice).get(reverse("okr-template-load")).status_code == 403


def test_integration_users_get_403(client_for, integ, kr):
    assert client_for(integ).get(reverse("okr-kr", args=[kr.pk])).status_code == 403


# --- the chart -----------------------------------------------------------------------------------


def test_key_result_page_draws_the_value_chart(client_for, alice, kr):
    """The PAGES helper's chart (okrs.templatetags.okrs.kr_chart, tested there): one dot per check-in with a
    value, the target line and the expected-pace line of an increase."""
    services.check_in(actor=alice, key_result=kr, value="24")
    services.check_in(actor=alice, key_result=kr, value="25", confidence=6)
    body = client_for(alice).get(reverse("okr-kr", args=[kr.pk])).content.decode()
    start = body.index(f'data-testid="chart-{kr.pk}"')
    chart = body[start:body.index("</svg>", start)]
    assert chart.count('class="okr-dot') == 2
    assert 'data-testid="target-line"' in chart and 'data-testid="pace-line"' in chart


def test_format_value(db):
    """One formatting helper for every OKR page: no trailing zeros, two decimals at most, the unit."""
    from django.utils import translation

    def kr(unit, kind="increase"):
        return KeyResult(unit=unit, kind=kind)

    assert format_value(D("12.5000"), kr("percent")) == "12.5%"
    assert format_value(D("81.666"), kr("percent")) == "81.67%"
    assert format_value(D("12.000"), kr("number")) == "12"
    assert format_value(D("15.20"), kr("number")) == "15.2"
    assert format_value(D("0.125"), kr("number")) == "0.13"  # half up
    assert format_value(D("1250"), kr("currency")) == "1,250 TRY"
    assert format_value(D("1250.5"), kr("currency")) == "1,250.5 TRY"
    assert format_value(None, kr("number")) == "—"
    assert format_value(D("1"), kr("number", "milestone")) == "Done"
    assert format_value(D("0"), kr("number", "milestone")) == "Not done"
    with translation.override("tr"):
        assert format_value(D("1250.5"), kr("number")) == "1.250,5"
        assert format_value(D("12.5"), kr("percent")) == "%12,5"


def test_history_is_written_like_the_rest_of_the_page(client_for, mona, alice, kr):
    """Start and target in the key result's unit, the due date as a date (not 2026-03-31), the weight plain."""
    services.key_result_update(actor=mona, key_result=kr, reason="Bigger market", data={
        "target_value": D("32.50"), "due_date": dt.date(2026, 3, 15), "weight": D("1.50")})
    page = client_for(mona).get(reverse("okr-kr", args=[kr.pk]))
    history = page.content.decode().split('data-testid="history"')[1].split("</ul>")[0]
    assert "30 → 32.5" in history and "31 Mar 2026 → 15 Mar 2026" in history and "1 → 1.5" in history
    assert "2026-03" not in history and "32.50" not in history
    # the weight in the header too: 1.5, not 1.50
    assert "Weight 1.5" in page.content.decode()


@pytest.fixture
def english_afterwards():
    """A request of a Turkish user leaves Turkish active in the thread: back to English for the next tests."""
    yield
    from django.utils import translation

    translation.activate("en")


def test_kpi_picker_is_in_the_readers_language_and_order(client_for, mona, north_objective, english_afterwards):
    from django.utils import translation

    mona.language = "tr"
    mona.save(update_fields=["language"])
    form = client_for(mona).get(reverse("okr-kr-new", args=[north_objective.pk])).context["form"]
    with translation.override("tr"):
        labels = [label for value, label in form.fields["kpi"].choices if value != ""]
    assert "Satış Döngüsü Süresi" in labels and "Sales cycle length" not in labels
    assert labels == sorted(labels, key=str.casefold)
