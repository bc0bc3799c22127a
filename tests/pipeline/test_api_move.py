"""Moving deals through the API: the exit-criteria rule as 400 field errors, lost reasons, stage history."""

from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine

from contacts.models import CustomFieldDefinition
from crm_okr.models import Event, FieldChange
from pipeline import services
from pipeline.models import Deal, LostReason, Pipeline, StageChange
from tests.factories import ContactFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/deals/"
BIG = "x" * 100_000


def move_url(deal):
    return f"{URL}{deal.pk}/move-stage/"


def history_url(deal):
    return f"{URL}{deal.pk}/stage-history/"


def state(deal):
    """What a refused move must leave as it was."""
    deal.refresh_from_db()
    return (deal.stage_id, deal.status, deal.amount, deal.expected_close_date, deal.name, deal.closed_at,
            deal.lost_reason_id, deal.stage_entered_at, deal.custom_fields,
            deal.stage_changes.count(), FieldChange.objects.count(), Event.objects.count())


# --- the "done when": an integration gets the same rule as a 400 ----------------------------------


def test_integration_moves_a_deal_is_stopped_by_the_exit_criteria_then_fills_the_field_and_moves(
        api_for, integ, pipe, stages):
    api = api_for(integ)
    created = api.post(URL, {"name": "Entegrasyon fırsatı", "stage": stages["Qualified"].pk}, format="json")
    assert created.status_code == 201
    deal = Deal.objects.get(pk=created.json()["id"])
    before = state(deal)

    refused = api.post(move_url(deal), {"stage": stages["Proposal"].pk}, format="json")

    assert refused.status_code == 400
    assert refused.json() == {"errors": {
        "stage": ["Fill in Amount before moving this deal on."],
        "amount": ["Required before a deal leaves “Qualified”."],
    }}
    assert state(deal) == before

    moved = api.post(move_url(deal), {"stage": stages["Proposal"].pk, "changes": {"amount": "48000.00"}},
                     format="json")

    assert moved.status_code == 200, moved.json()
    body = moved.json()
    assert (body["stage"], body["status"], body["amount"], body["weighted_amount"]) == (
        stages["Proposal"].pk, "open", "48000.00", "28800.00")
    deal.refresh_from_db()
    assert (deal.stage, deal.amount) == (stages["Proposal"], Decimal("48000.00"))
    change = deal.stage_changes.order_by("-changed_at", "-id").first()
    assert (change.from_stage, change.to_stage, change.direction, change.actor) == (
        stages["Qualified"], stages["Proposal"], "forward", integ)
    assert list(Event.objects.filter(subject_id=deal.pk).order_by("id").values_list("name", flat=True)) == [
        "deal.created", "deal.updated", "deal.stage_changed"]


def test_skipping_stages_needs_the_criteria_of_every_stage_left_behind(api_for, alice, make_deal, stages):
    deal = make_deal(alice, stage=stages["Lead"])
    before = state(deal)

    response = api_for(alice).post(move_url(deal), {"stage": stages["Negotiation"].pk}, format="json")

    assert response.status_code == 400
    assert response.json()["errors"] == {
        "stage": ["Fill in Amount, Expected close date before moving this deal on."],
        "amount": ["Required before a deal leaves “Qualified”."],
        "expected_close_date": ["Required before a deal leaves “Proposal”."],
    }
    assert state(deal) == before


def test_a_stage_that_forbids_skipping_names_the_next_stage(api_for, alice, make_deal, stages):
    deal = make_deal(alice, stage=stages["Lead"], amount=Decimal("10"))
    services.deal_move(actor=alice, deal=deal, stage=stages["Proposal"], changes={"expected_close_date": "2027-01-01"})

    response = api_for(alice).post(move_url(deal), {"stage": stages["Won"].pk}, format="json")

    assert response.status_code == 400
    assert response.json()["errors"] == {"stage": ["Deals in “Proposal” go to the next stage, “Negotiation”, first."]}
    deal.refresh_from_db()
    assert deal.status == "open"


def test_a_custom_field_criterion_is_named_by_its_key_and_filled_in_changes(api_for, alice, sam, make_deal, stages):
    CustomFieldDefinition.objects.create(entity="deal", key="decision_maker", label="Karar verici",
                                         field_type="text")
    services.stage_update(actor=sam, stage=stages["Lead"], data={"exit_criteria": ["custom_fields.decision_maker"]})
    deal = make_deal(alice, stage=stages["Lead"])
    api = api_for(alice)

    refused = api.post(move_url(deal), {"stage": stages["Qualified"].pk}, format="json")
    moved = api.post(move_url(deal), {"stage": stages["Qualified"].pk,
                                      "changes": {"custom_fields": {"decision_maker": "Ayşe Öztürk"}}}, format="json")

    assert refused.json()["errors"] == {
        "stage": ["Fill in Karar verici before moving this deal on."],
        "custom_fields.decision_maker": ["Required before a deal leaves “Lead”."],
    }
    assert moved.status_code == 200
    assert moved.json()["custom_fields"] == {"decision_maker": "Ayşe Öztürk"}


def test_changes_are_not_saved_when_the_move_is_refused(api_for, alice, make_deal, stages):
    deal = make_deal(alice, stage=stages["Lead"])
    before = state(deal)

    # Amount is given, but skipping to Negotiation also needs Proposal's close date.
    response = api_for(alice).post(move_url(deal), {
        "stage": stages["Negotiation"].pk, "changes": {"amount": "100", "name": "Değişmemeli"}}, format="json")

    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["stage", "expected_close_date"]
    assert state(deal) == before


def test_moving_backward_is_always_allowed(api_for, alice, make_deal, stages):
    deal = make_deal(alice, stage=stages["Negotiation"])

    response = api_for(alice).post(move_url(deal), {"stage": stages["Lead"].pk}, format="json")

    assert response.status_code == 200
    assert response.json()["stage"] == stages["Lead"].pk
    assert deal.stage_changes.order_by("-id").first().direction == "backward"


def test_moving_to_the_current_stage_only_applies_the_changes(api_for, alice, make_deal, stages):
    deal = make_deal(alice, stage=stages["Lead"])

    response = api_for(alice).post(move_url(deal), {"stage": stages["Lead"].pk, "changes": {"amount": "7"}},
                                   format="json")

    assert response.status_code == 200
    assert (response.json()["stage"], response.json()["amount"]) == (stages["Lead"].pk, "7.00")
    assert deal.stage_changes.count() == 1


# --- won and lost --------------------------------------------------------------------------------------


def test_lost_needs_a_reason(api_for, alice, make_deal, stages):
    deal = make_deal(alice, stage=stages["Proposal"])
    before = state(deal)

    response = api_for(alice).post(move_url(deal), {"stage": stages["Lost"].pk, "lost_note": "Bütçe yok"},
                                   format="json")

    assert response.status_code == 400
    assert response.json() == {"errors": {"lost_reason": ["Choose why the deal was lost."]}}
    assert state(deal) == before


def test_lost_with_a_reason_closes_the_deal(api_for, alice, make_deal, stages, price):
    deal = make_deal(alice, stage=stages["Proposal"])

    response = api_for(alice).post(move_url(deal), {
        "stage": stages["Lost"].pk, "lost_reason": price.pk, "lost_note": "  Rakip %20 daha ucuz  "}, format="json")

    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["status"], body["lost_reason"], body["lost_note"]) == ("lost", price.pk, "Rakip %20 daha ucuz")
    assert body["closed_at"] is not None and body["rots_at"] is None and body["is_stale"] is False
    assert Event.objects.filter(name="deal.lost", subject_id=deal.pk).count() == 1


def test_an_inactive_reason_is_refused(api_for, alice, make_deal, stages):
    retired = LostReason.objects.create(name="Eski neden", is_active=False)
    deal = make_deal(alice, stage=stages["Lead"])

    response = api_for(alice).post(move_url(deal), {"stage": stages["Lost"].pk, "lost_reason": retired.pk},
                                   format="json")

    assert response.status_code == 400
    assert response.json()["errors"] == {"lost_reason": ["“Eski neden” is no longer in use; choose another reason."]}


@pytest.mark.parametrize("target", ["Won", "Negotiation"])
def test_a_lost_reason_is_only_for_a_lost_stage(api_for, alice, make_deal, stages, price, target):
    deal = make_deal(alice, stage=stages["Negotiation"])

    response = api_for(alice).post(move_url(deal), {"stage": stages[target].pk, "lost_reason": price.pk,
                                                    "lost_note": "x"}, format="json")

    assert response.status_code == 400
    assert sorted(response.json()["errors"]) == ["lost_note", "lost_reason"]


def test_won_closes_and_reopening_clears_the_close(api_for, alice, make_deal, stages, price):
    deal = make_deal(alice, stage=stages["Negotiation"], amount=Decimal("5000"))
    api = api_for(alice)

    won = api.post(move_url(deal), {"stage": stages["Won"].pk}, format="json").json()
    to_lost = api.post(move_url(deal), {"stage": stages["Lost"].pk, "lost_reason": price.pk}, format="json")
    reopened = api.post(move_url(deal), {"stage": stages["Negotiation"].pk}, format="json").json()

    assert (won["status"], won["weighted_amount"]) == ("won", "5000.00") and won["closed_at"] is not None
    assert to_lost.status_code == 400
    assert to_lost.json()["errors"] == {"stage": ["This deal is already won; move it back to an open stage first."]}
    assert (reopened["status"], reopened["closed_at"]) == ("open", None)
    assert [c.direction for c in deal.stage_changes.order_by("changed_at", "id")] == ["created", "won", "reopened"]


def test_a_stage_of_another_pipeline_is_refused(api_for, alice, make_deal, stages):
    deal = make_deal(alice, stage=stages["Lead"])
    other = Pipeline.objects.get(name="New business").stages.order_by("order").first()

    response = api_for(alice).post(move_url(deal), {"stage": other.pk}, format="json")

    assert response.status_code == 400
    assert response.json()["errors"] == {"stage": [f"“{other.name}” is not a stage of “Sales”."]}


# --- bad move bodies: 400 naming the fields, nothing changed -----------------------------------------------


@pytest.mark.parametrize("body, fields", [
    ({}, ["stage"]),
    ({"stage": None}, ["stage"]),
    ({"stage": "Teklif"}, ["stage"]),
    ({"stage": 999999}, ["stage"]),
    ({"stage": 2**70}, ["stage"]),
    ({"stage": True}, ["stage"]),
    ({"stage": "@Negotiation", "hedef": "x"}, ["hedef"]),
    ({"stage": "yok", "hedef": "x"}, ["hedef", "stage"]),
    ({"stage": "@Lost", "lost_reason": 999999}, ["lost_reason"]),
    ({"stage": "@Lost", "lost_reason": "fiyat"}, ["lost_reason"]),
    ({"stage": "@Lost", "lost_reason": "@price", "lost_note": BIG}, ["lost_note"]),
    ({"stage": "@Lost", "lost_reason": "@price", "lost_note": 5}, ["lost_note"]),
    ({"stage": "@Proposal", "changes": ["amount", 5]}, ["changes"]),
    ({"stage": "@Proposal", "changes": "amount=5"}, ["changes"]),
    ({"stage": "@Proposal", "changes": {"amount": "çok"}}, ["amount"]),
    ({"stage": "@Proposal", "changes": {"amount": "-1", "expected_close_date": "dün"}},
     ["amount", "expected_close_date"]),
    ({"stage": "@Proposal", "changes": {"stage": 1}}, ["changes"]),
    ({"stage": "@Proposal", "changes": {"renk": "mavi", "amount": "x"}}, ["amount", "changes"]),
    ({"stage": "@Proposal", "changes": {"name": BIG}}, ["name"]),
    ({"stage": "@Proposal", "changes": {"contact": 999999}}, ["contact"]),
    ({"stage": "@Proposal", "changes": {"custom_fields": {"yok": 1}}}, ["custom_fields.yok"]),
    ({"stage": "@Proposal", "changes": {"currency": "ÇĞŞ"}}, ["currency"]),
])
def test_bad_move_is_refused_naming_the_fields(api_for, alice, make_deal, stages, price, body, fields):
    deal = make_deal(alice, stage=stages["Qualified"])
    before = state(deal)
    refs = {f"@{name}": stage.pk for name, stage in stages.items()} | {"@price": price.pk}
    body = {key: refs.get(value, value) if isinstance(value, str) else value for key, value in body.items()}

    response = api_for(alice).post(move_url(deal), body, format="json")

    assert response.status_code == 400
    assert sorted(response.json()["errors"]) == fields
    assert state(deal) == before


def test_unknown_keys_in_changes_are_named(api_for, alice, make_deal, stages):
    deal = make_deal(alice, stage=stages["Qualified"])

    response = api_for(alice).post(move_url(deal), {"stage": stages["Proposal"].pk, "changes": {"stage": 1}},
                                   format="json")

    message = response.json()["errors"]["changes"][0]
    assert message.startswith("“stage”: Unknown field. Known fields: name, amount, currency, expected_close_date,")


def test_a_hidden_contact_in_changes_is_an_unknown_id(api_for, alice, charlie, make_deal, stages):
    deal = make_deal(alice, stage=stages["Qualified"])
    hidden = ContactFactory(owner=charlie)

    response = api_for(alice).post(move_url(deal), {"stage": stages["Proposal"].pk,
                                                    "changes": {"amount": "1", "contact": hidden.pk}}, format="json")

    assert response.status_code == 400
    assert response.json()["errors"] == {"contact": [f'Invalid pk "{hidden.pk}" - object does not exist.']}
    deal.refresh_from_db()
    assert (deal.contact, deal.amount, deal.stage) == (None, None, stages["Qualified"])


# --- stage history ----------------------------------------------------------------------------------------

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=ZoneInfo("Europe/Istanbul"))


def test_stage_history_shows_each_stage_with_its_time(api_for, alice, bob, sam, stages, price):
    api = api_for(alice)
    with time_machine.travel(T0, tick=False):
        deal_id = api.post(URL, {"name": "Zaman", "stage": stages["Qualified"].pk, "amount": "10"},
                           format="json").json()["id"]
    with time_machine.travel(T0 + timedelta(hours=1), tick=False):
        api.post(f"{URL}{deal_id}/move-stage/", {"stage": stages["Proposal"].pk}, format="json")
    with time_machine.travel(T0 + timedelta(hours=3), tick=False):
        api.post(f"{URL}{deal_id}/move-stage/", {"stage": stages["Qualified"].pk}, format="json")
    with time_machine.travel(T0 + timedelta(hours=3, minutes=30), tick=False):
        api.post(f"{URL}{deal_id}/move-stage/", {"stage": stages["Lost"].pk, "lost_reason": price.pk}, format="json")
    services.stage_update(actor=sam, stage=stages["Qualified"], data={"name": "Nitelikli"})

    with time_machine.travel(T0 + timedelta(days=2), tick=False):
        rows = api_for(bob).get(f"{URL}{deal_id}/stage-history/").json()

    assert [(r["from_stage_name"], r["to_stage_name"], r["direction"], r["seconds_in_stage"],
             r["seconds_in_from_stage"], r["current"]) for r in rows] == [
        ("", "Qualified", "created", 3600, None, False),
        ("Qualified", "Proposal", "forward", 7200, 3600, False),
        ("Proposal", "Qualified", "backward", 1800, 7200, False),
        ("Qualified", "Lost", "lost", 0, 1800, True),
    ]
    assert [(r["from_stage"], r["to_stage"]) for r in rows] == [
        (None, stages["Qualified"].pk), (stages["Qualified"].pk, stages["Proposal"].pk),
        (stages["Proposal"].pk, stages["Qualified"].pk), (stages["Qualified"].pk, stages["Lost"].pk)]
    assert {(r["actor"], r["actor_name"]) for r in rows} == {(alice.pk, alice.get_full_name())}
    assert rows[1]["changed_at"] == "2026-03-02T10:00:00+03:00"
    assert rows[1]["left_at"] == "2026-03-02T12:00:00+03:00"
    assert rows[3]["left_at"] is None
    assert list(rows[0]) == ["id", "from_stage", "from_stage_name", "to_stage", "to_stage_name", "direction",
                             "changed_at", "actor", "actor_name", "left_at", "seconds_in_stage",
                             "seconds_in_from_stage", "current"]


def test_an_open_deals_current_stage_time_runs_until_now(api_for, alice, stages):
    api = api_for(alice)
    with time_machine.travel(T0, tick=False):
        deal_id = api.post(URL, {"name": "Açık", "stage": stages["Lead"].pk}, format="json").json()["id"]

    with time_machine.travel(T0 + timedelta(days=1, seconds=5), tick=False):
        rows = api.get(f"{URL}{deal_id}/stage-history/").json()

    assert [(r["to_stage_name"], r["seconds_in_stage"], r["current"]) for r in rows] == [("Lead", 86405, True)]


def test_stage_history_and_history_use_a_fixed_number_of_queries(api_for, django_assert_num_queries, alice,
                                                                 make_deal, stages, price):
    deal = make_deal(alice, stage=stages["Lead"], amount=Decimal("1"), expected_close_date="2027-01-01")
    for stage in ("Qualified", "Proposal", "Negotiation", "Lead", "Qualified", "Lost"):
        services.deal_move(actor=alice, deal=deal, stage=stages[stage], lost_reason=price)
        services.deal_update(actor=alice, deal=deal, data={"name": f"Ad {stage}"})
    api = api_for(alice)
    api.get(f"{URL}{deal.pk}/")

    # token, the deal (with its stage), the stage changes with their actors
    with django_assert_num_queries(3):
        assert len(api.get(history_url(deal)).json()) == 7
    # token, the deal, the field changes with their actors
    with django_assert_num_queries(3):
        assert len(api.get(f"{URL}{deal.pk}/history/").json()["field_changes"]) == 6
    assert StageChange.objects.filter(deal=deal).count() == 7
