"""The deal services: creation defaults, the stage-move rule, history, events and permissions."""

from datetime import date, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from contacts.models import Activity, CustomFieldDefinition, Entity
from contacts.services import activity_log
from crm_okr.models import Event, FieldChange
from pipeline import services
from pipeline.models import Deal, Pipeline, StageChange
from pipeline.selectors import deals_visible_to, stage_history
from tests.factories import CompanyFactory, ContactFactory, LeadSourceFactory

pytestmark = pytest.mark.django_db


def test_a_fresh_install_has_a_default_pipeline_and_lost_reasons():
    default = Pipeline.objects.get(is_default=True)
    assert default.name == "New business"
    assert [s.kind for s in default.stages.all()][-2:] == ["won", "lost"]
    assert services.default_pipeline() == default


def test_create_defaults_first_open_stage_owner_company_and_lead_source(alice, pipe, stages):
    source = LeadSourceFactory(name="Web form")
    company = CompanyFactory(name="Işık A.Ş.", owner=alice)
    contact = ContactFactory(owner=alice, company=company, lead_source=source)
    deal = services.deal_create(actor=alice, data={"name": "  Yıllık   lisans ", "pipeline": pipe, "contact": contact})
    assert deal.name == "Yıllık lisans"
    assert deal.stage == stages["Lead"] and deal.status == Deal.Status.OPEN
    assert deal.owner == alice and deal.team == alice.team
    assert deal.company == company and deal.lead_source == source
    assert deal.currency == "TRY"
    assert deal.rots_at == deal.stage_entered_at + timedelta(days=90)
    change = deal.stage_changes.get()
    assert (change.from_stage, change.to_stage, change.direction) == (None, stages["Lead"], "created")
    assert Event.objects.filter(name="deal.created", subject_id=deal.pk).count() == 1


def test_create_refuses_closed_stage_and_stage_of_another_pipeline(alice, pipe, stages):
    other = Pipeline.objects.get(name="New business")
    with pytest.raises(ValidationError) as exc:
        services.deal_create(actor=alice, data={"name": "X", "pipeline": other, "stage": stages["Lead"]})
    assert "stage" in exc.value.message_dict
    with pytest.raises(ValidationError) as exc:
        services.deal_create(actor=alice, data={"name": "X", "stage": stages["Won"]})
    assert exc.value.message_dict["stage"] == ["A new deal starts in an open stage."]
    assert not Deal.objects.exists()


def test_create_refuses_a_hidden_contact_and_a_foreign_owner(alice, charlie, bob, pipe):
    hidden = ContactFactory(owner=charlie)
    with pytest.raises(ValidationError) as exc:
        services.deal_create(actor=alice, data={"name": "X", "contact": hidden, "owner": bob})
    assert set(exc.value.message_dict) == {"contact", "owner"}


def test_create_names_bad_fields(alice, pipe):
    with pytest.raises(ValidationError) as exc:
        services.deal_create(actor=alice, data={"name": "", "amount": Decimal("-5"), "currency": "lira", "colour": 1})
    assert set(exc.value.message_dict) == {"colour"}
    with pytest.raises(ValidationError) as exc:
        services.deal_create(actor=alice, data={"name": "", "amount": Decimal("-5"), "currency": "lira"})
    assert {"name", "amount", "currency"} <= set(exc.value.message_dict)


def test_forward_move_needs_the_exit_criteria_and_changes_nothing_when_refused(alice, make_deal, stages):
    deal = make_deal(alice, stage=stages["Qualified"])
    with pytest.raises(ValidationError) as exc:
        services.deal_move(actor=alice, deal=deal, stage=stages["Proposal"])
    errors = exc.value.message_dict
    assert errors["amount"] == ["Required before a deal leaves “Qualified”."]
    assert errors["stage"] == ["Fill in Amount before moving this deal on."]
    deal.refresh_from_db()
    assert deal.stage == stages["Qualified"]
    assert StageChange.objects.filter(deal=deal).count() == 1
    assert not Event.objects.filter(name="deal.stage_changed").exists()


def test_filling_the_missing_field_in_the_same_step_moves_the_deal(alice, make_deal, stages):
    deal = make_deal(alice, stage=stages["Qualified"])
    moved = services.deal_move(actor=alice, deal=deal, stage=stages["Proposal"],
                               changes={"amount": Decimal("12500.50")})
    assert moved.stage == stages["Proposal"] and moved.amount == Decimal("12500.50")
    assert FieldChange.objects.filter(record_id=deal.pk, record_type="pipeline.deal").count() == 1
    change = deal.stage_changes.order_by("-id").first()
    assert (change.from_stage_name, change.to_stage_name, change.direction) == ("Qualified", "Proposal", "forward")


def test_a_refused_move_also_undoes_the_fields_filled_with_it(alice, make_deal, stages):
    deal = make_deal(alice, stage=stages["Proposal"], amount=Decimal(10))
    with pytest.raises(ValidationError) as exc:
        services.deal_move(actor=alice, deal=deal, stage=stages["Negotiation"], changes={"amount": Decimal(99)})
    assert set(exc.value.message_dict) == {"stage", "expected_close_date"}
    deal.refresh_from_db()
    assert deal.amount == Decimal(10)
    assert not FieldChange.objects.filter(record_id=deal.pk).exists()


def test_skipping_checks_every_stage_left_behind(alice, make_deal, stages):
    deal = make_deal(alice, stage=stages["Lead"])
    with pytest.raises(ValidationError) as exc:
        services.deal_move(actor=alice, deal=deal, stage=stages["Negotiation"])
    # Lead has no criteria, but Qualified and Proposal are skipped over.
    assert set(exc.value.message_dict) == {"stage", "amount", "expected_close_date"}
    moved = services.deal_move(actor=alice, deal=deal, stage=stages["Negotiation"],
                               changes={"amount": 5, "expected_close_date": date(2026, 12, 31)})
    assert moved.stage == stages["Negotiation"]


def test_a_stage_may_forbid_skipping(alice, make_deal, stages):
    deal = make_deal(alice, stage=stages["Proposal"], amount=1, expected_close_date=date(2026, 12, 1))
    with pytest.raises(ValidationError) as exc:
        services.deal_move(actor=alice, deal=deal, stage=stages["Won"])
    assert exc.value.message_dict == {"stage": ["Deals in “Proposal” go to the next stage, “Negotiation”, first."]}
    services.deal_move(actor=alice, deal=deal, stage=stages["Negotiation"])
    won = services.deal_move(actor=alice, deal=deal, stage=stages["Won"])
    assert won.status == Deal.Status.WON and won.closed_at is not None and won.rots_at is None
    assert Event.objects.filter(name="deal.won", subject_id=deal.pk).count() == 1


def test_backward_is_always_allowed(alice, make_deal, stages):
    deal = make_deal(alice, stage=stages["Proposal"])  # created there without amount: criteria apply to leaving
    moved = services.deal_move(actor=alice, deal=deal, stage=stages["Lead"])
    assert moved.stage == stages["Lead"]
    assert deal.stage_changes.order_by("-id").first().direction == "backward"


def test_lost_needs_a_reason_and_sets_close_time(alice, make_deal, stages, price):
    deal = make_deal(alice, stage=stages["Qualified"])
    with pytest.raises(ValidationError) as exc:
        services.deal_move(actor=alice, deal=deal, stage=stages["Lost"])
    assert exc.value.message_dict == {"lost_reason": ["Choose why the deal was lost."]}
    lost = services.deal_move(actor=alice, deal=deal, stage=stages["Lost"], lost_reason=price, lost_note=" pahalı ")
    assert lost.status == "lost" and lost.lost_reason == price and lost.lost_note == "pahalı"
    assert lost.closed_at is not None
    assert Event.objects.filter(name="deal.lost", subject_id=deal.pk).get().payload["lost_reason_id"] == price.pk


def test_an_inactive_reason_is_refused(alice, make_deal, stages, price):
    price.is_active = False
    price.save()
    deal = make_deal(alice)
    with pytest.raises(ValidationError) as exc:
        services.deal_move(actor=alice, deal=deal, stage=stages["Lost"], lost_reason=price)
    assert "lost_reason" in exc.value.message_dict


def test_reopening_clears_the_close_and_closed_to_closed_is_refused(alice, make_deal, stages, price):
    deal = make_deal(alice)
    services.deal_move(actor=alice, deal=deal, stage=stages["Lost"], lost_reason=price)
    with pytest.raises(ValidationError) as exc:
        services.deal_move(actor=alice, deal=deal, stage=stages["Won"])
    assert exc.value.message_dict == {"stage": ["This deal is already lost; move it back to an open stage first."]}
    reopened = services.deal_move(actor=alice, deal=deal, stage=stages["Negotiation"])
    assert reopened.status == "open" and reopened.closed_at is None and reopened.lost_reason is None
    assert deal.stage_changes.order_by("-id").first().direction == "reopened"


def test_moving_to_a_stage_of_another_pipeline_is_refused(alice, make_deal):
    deal = make_deal(alice)
    other = Pipeline.objects.get(name="New business").stages.first()
    with pytest.raises(ValidationError) as exc:
        services.deal_move(actor=alice, deal=deal, stage=other)
    assert "stage" in exc.value.message_dict


def test_only_editors_move_a_deal(alice, bob, mona, make_deal, stages):
    deal = make_deal(alice)
    with pytest.raises(PermissionDenied):
        services.deal_move(actor=bob, deal=deal, stage=stages["Qualified"])
    assert services.deal_move(actor=mona, deal=deal, stage=stages["Qualified"]).stage == stages["Qualified"]


def test_custom_field_criterion(alice, make_deal, stages, sam):
    CustomFieldDefinition.objects.create(entity=Entity.DEAL, key="budget_ok", label="Budget approved",
                                         field_type=CustomFieldDefinition.FieldType.BOOLEAN)
    services.stage_update(actor=sam, stage=stages["Lead"], data={"exit_criteria": ["custom_fields.budget_ok"]})
    deal = make_deal(alice)
    stages["Lead"].refresh_from_db()
    with pytest.raises(ValidationError) as exc:
        services.deal_move(actor=alice, deal=deal, stage=stages["Qualified"])
    assert exc.value.message_dict["stage"] == ["Fill in Budget approved before moving this deal on."]
    assert "custom_fields.budget_ok" in exc.value.message_dict
    moved = services.deal_move(actor=alice, deal=deal, stage=stages["Qualified"],
                               changes={"custom_fields": {"budget_ok": "evet"}})
    assert moved.custom_fields == {"budget_ok": True}


def test_update_writes_history_and_event_and_refuses_unknown(alice, make_deal):
    deal = make_deal(alice)
    services.deal_update(actor=alice, deal=deal, data={"amount": Decimal("100.00"), "name": "Renamed"})
    change = FieldChange.objects.get(record_type="pipeline.deal", record_id=deal.pk)
    assert set(change.changes) == {"amount", "name"}
    assert Event.objects.filter(name="deal.updated", subject_id=deal.pk).count() == 1
    with pytest.raises(ValidationError) as exc:
        services.deal_update(actor=alice, deal=deal, data={"status": "won"})
    assert "status" in exc.value.message_dict


def test_stage_history_gives_time_in_each_stage(alice, make_deal, stages):
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        deal = make_deal(alice, amount=5)
    with time_machine.travel(start + timedelta(days=3), tick=False):
        services.deal_move(actor=alice, deal=deal, stage=stages["Qualified"])
    with time_machine.travel(start + timedelta(days=10), tick=False):
        services.deal_move(actor=alice, deal=deal, stage=stages["Lead"])
        rows = stage_history(Deal.objects.get(pk=deal.pk))
    assert [r["change"].to_stage_name for r in rows] == ["Lead", "Qualified", "Lead"]
    assert [r["duration"] for r in rows] == [timedelta(days=3), timedelta(days=7), timedelta(0)]
    assert deal.stage_changes.get(direction="backward").seconds_in_from_stage == 7 * 86400


def test_stale_follows_the_rotting_limit_and_its_changes(alice, make_deal, stages, sam):
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        deal = make_deal(alice)
    with time_machine.travel(start + timedelta(days=91), tick=False):
        assert Deal.objects.get(pk=deal.pk).is_stale
        services.stage_update(actor=sam, stage=stages["Lead"], data={"rotting_days": 100})
        assert not Deal.objects.get(pk=deal.pk).is_stale


def test_visibility_follows_the_contact_rules(alice, bob, charlie, mona, sam, integ, make_deal):
    deal = make_deal(alice)
    for user, sees in [(alice, True), (bob, True), (mona, True), (sam, True), (integ, True), (charlie, False)]:
        assert deals_visible_to(user).filter(pk=deal.pk).exists() is sees, user


def test_activities_logged_on_a_deal_show_on_its_contact(alice, make_deal):
    contact = ContactFactory(owner=alice)
    deal = make_deal(alice, contact=contact)
    activity = activity_log(actor=alice, kind="call", subject="Fiyat görüşmesi", deal=deal)
    assert (activity.deal, activity.contact, activity.team) == (deal, contact, alice.team)
    assert Activity.objects.filter(contact=contact).count() == 1


def test_the_owner_hears_of_deals_given_or_closed_by_someone_else(
    alice, mona, make_deal, stages, price, django_capture_on_commit_callbacks,
):
    from accounts.models import Notification

    with django_capture_on_commit_callbacks(execute=True):
        make_deal(alice, name="Kendi fırsatım")  # her own: no notice
        deal = make_deal(mona, name="Büyük fırsat", owner=alice)
        services.deal_move(actor=mona, deal=deal, stage=stages["Lost"], lost_reason=price)
    assert [n.text for n in Notification.objects.filter(user=alice).order_by("id")] == [
        "A deal was assigned to you: Büyük fırsat", "Your deal was marked lost: Büyük fırsat"]
    assert Notification.objects.filter(user=alice).first().link == f"/deals/{deal.pk}/"


def test_reps_and_managers_cannot_leave_a_deal_without_owner(alice, mona, sam, make_deal):
    deal = make_deal(alice)
    for user in (alice, mona):
        with pytest.raises(ValidationError) as exc:
            services.deal_update(actor=user, deal=deal, data={"owner": None})
        assert exc.value.message_dict == {"owner": ["A deal needs an owner."]}
    assert services.deal_update(actor=sam, deal=deal, data={"owner": None}).team is None


def test_currency_is_three_latin_letters(alice, make_deal):
    with pytest.raises(ValidationError) as exc:
        make_deal(alice, currency="ÇĞŞ")
    assert "currency" in exc.value.message_dict
    assert make_deal(alice, currency=" eur ").currency == "EUR"
