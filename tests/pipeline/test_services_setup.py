"""The pipeline and stage admin services: creating, renaming, switching the default, deleting; adding,
re-tuning, reordering and deleting stages (moving their deals); and that only admins may do any of it."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core.exceptions import PermissionDenied, ValidationError

from contacts.models import CustomFieldDefinition, Entity
from pipeline import services
from pipeline.models import Deal, Pipeline, Stage, StageChange

pytestmark = pytest.mark.django_db

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)


def names(pipeline: Pipeline) -> list[str]:
    return list(pipeline.stages.order_by("order").values_list("name", flat=True))


def orders(pipeline: Pipeline) -> list[tuple[str, int]]:
    return list(pipeline.stages.order_by("order").values_list("name", "order"))


def snapshot(pipeline: Pipeline) -> list[tuple]:
    """Everything about a pipeline's stages, to assert that a refused change changed nothing."""
    return list(pipeline.stages.order_by("pk").values_list(
        "pk", "name", "order", "kind", "probability", "rotting_days", "exit_criteria", "allow_skip"))


def closed_stages(**extra) -> list[dict]:
    return [{"name": "Won", "kind": "won", "probability": 100, **extra}, {"name": "Lost", "kind": "lost",
                                                                          "probability": 0}]


@pytest.fixture
def new_business(db):
    return Pipeline.objects.get(name="New business")


# --- pipelines -----------------------------------------------------------------------------------


def test_create_starts_with_the_default_stages_after_the_existing_pipelines(sam, new_business):
    renewals = services.pipeline_create(actor=sam, name="  Yenileme   satışları ")
    assert renewals.name == "Yenileme satışları"
    assert renewals.order == new_business.order + 1
    assert not renewals.is_default
    assert orders(renewals) == [("Qualified", 1), ("Contact made", 2), ("Meeting / demo", 3), ("Proposal sent", 4),
                                ("Negotiation", 5), ("Won", 6), ("Lost", 7)]
    stages = {s.name: s for s in renewals.stages.all()}
    assert stages["Proposal sent"].exit_criteria == ["amount", "expected_close_date"]
    assert [stages[n].probability for n in ("Qualified", "Negotiation", "Won", "Lost")] == [10, 80, 100, 0]
    assert (stages["Won"].kind, stages["Lost"].kind, stages["Qualified"].kind) == ("won", "lost", "open")
    assert all(s.rotting_days == 90 for s in stages.values())


def test_create_with_given_stages_puts_the_open_ones_first(sam):
    pipeline = services.pipeline_create(actor=sam, name="Partners", stages=[
        {"name": "Signed", "kind": "won", "probability": 100},
        {"name": " Intro  call ", "probability": 15, "rotting_days": 14, "exit_criteria": ["contact", "contact"]},
        {"name": "Dropped", "kind": "lost", "probability": 0},
        {"name": "Pilot", "probability": 50, "allow_skip": False},
    ])
    assert orders(pipeline) == [("Intro call", 1), ("Pilot", 2), ("Signed", 3), ("Dropped", 4)]
    intro = pipeline.stages.get(name="Intro call")
    assert (intro.rotting_days, intro.exit_criteria, intro.allow_skip) == (14, ["contact"], True)
    assert pipeline.stages.get(name="Pilot").allow_skip is False


@pytest.mark.parametrize("stages, missing", [
    ([{"name": "Only open"}], "Won, Lost"),
    ([{"name": "Open"}, {"name": "Won", "kind": "won"}], "Lost"),
    (closed_stages(), "Open"),
    ([], "Open, Won, Lost"),
])
def test_a_pipeline_needs_an_open_a_won_and_a_lost_stage(sam, stages, missing):
    before = Pipeline.objects.count()
    with pytest.raises(ValidationError) as exc:
        services.pipeline_create(actor=sam, name="Broken", stages=stages)
    assert exc.value.message_dict == {"stages": [
        f"A pipeline needs at least one stage of each kind; missing: {missing}."]}
    assert Pipeline.objects.count() == before
    assert not Stage.objects.filter(pipeline__name="Broken").exists()


def test_create_names_bad_stage_data_and_creates_nothing(sam):
    cases = [
        ([{"name": "Open", "colour": "red"}, *closed_stages()], "colour"),
        ([{"name": "Open", "probability": 101}, *closed_stages()], "probability"),
        ([{"name": "Open", "rotting_days": 0}, *closed_stages()], "rotting_days"),
        ([{"name": "Open", "kind": "maybe"}, *closed_stages()], "kind"),
        ([{"name": "Open", "exit_criteria": ["shoe_size"]}, *closed_stages()], "exit_criteria"),
        ([{"name": "Open"}, {"name": "OPEN"}, *closed_stages()], "name"),
        ([{"name": "   "}, *closed_stages()], "name"),
        ([{"name": "x" * 101}, *closed_stages()], "name"),
    ]
    for stages, field in cases:
        with pytest.raises(ValidationError) as exc:
            services.pipeline_create(actor=sam, name="Partners", stages=stages)
        assert field in exc.value.message_dict, stages
    with pytest.raises(ValidationError) as exc:
        services.pipeline_create(actor=sam, name="Partners", stages="Lead, Won, Lost")
    assert exc.value.message_dict == {"stages": ["Expected a list of stages."]}
    assert not Pipeline.objects.filter(name="Partners").exists()


def test_pipeline_names_are_required_short_and_unique_ignoring_case_and_accents(sam, new_business):
    istanbul = services.pipeline_create(actor=sam, name="İstanbul satış")
    renewals = services.pipeline_create(actor=sam, name="Renewals")
    for name, message in [
        ("", "This field cannot be blank."),
        ("   ", "This field cannot be blank."),
        ("x" * 101, "Ensure this value has at most 100 characters (it has 101)."),
        ("new BUSINESS", "There is already a pipeline called “new BUSINESS”."),
        ("istanbul SATIŞ", "There is already a pipeline called “istanbul SATIŞ”."),
        ("ISTANBUL SATIS", "There is already a pipeline called “ISTANBUL SATIS”."),
    ]:
        with pytest.raises(ValidationError) as exc:
            services.pipeline_create(actor=sam, name=name)
        assert exc.value.message_dict == {"name": [message]}
        with pytest.raises(ValidationError) as exc:
            services.pipeline_update(actor=sam, pipeline=renewals, name=name)
        assert exc.value.message_dict == {"name": [message]}
    assert sorted(Pipeline.objects.values_list("name", flat=True)) == ["New business", "Renewals", "İstanbul satış"]
    # Renaming a pipeline to its own name in other letters is fine.
    assert services.pipeline_update(actor=sam, pipeline=istanbul, name="İSTANBUL SATIŞ").name == "İSTANBUL SATIŞ"


def test_rename_keeps_the_stages_and_the_default(sam, new_business):
    renamed = services.pipeline_update(actor=sam, pipeline=new_business, name="  Yeni   iş ")
    new_business.refresh_from_db()
    assert (renamed.name, new_business.name, new_business.is_default) == ("Yeni iş", "Yeni iş", True)
    assert len(names(new_business)) == 7


def test_exactly_one_pipeline_is_the_default(sam, new_business):
    renewals = services.pipeline_create(actor=sam, name="Renewals")
    services.pipeline_update(actor=sam, pipeline=renewals, is_default=True)
    assert list(Pipeline.objects.filter(is_default=True)) == [renewals]
    assert services.default_pipeline() == renewals
    partners = services.pipeline_create(actor=sam, name="Partners", is_default=True)
    assert list(Pipeline.objects.filter(is_default=True)) == [partners]
    with pytest.raises(ValidationError) as exc:
        services.pipeline_update(actor=sam, pipeline=partners, is_default=False)
    assert exc.value.message_dict == {"is_default": ["Make another pipeline the default instead."]}
    assert list(Pipeline.objects.filter(is_default=True)) == [partners]


def test_the_first_pipeline_becomes_the_default(sam, new_business):
    services.pipeline_delete(actor=sam, pipeline=new_business)
    assert not Pipeline.objects.exists() and not Stage.objects.exists()
    first = services.pipeline_create(actor=sam, name="Sales")
    assert first.is_default


def test_delete_is_refused_while_the_pipeline_holds_deals(sam, alice, pipe, make_deal, stages):
    make_deal(alice)
    make_deal(alice, stage=stages["Negotiation"])
    with pytest.raises(ValidationError) as exc:
        services.pipeline_delete(actor=sam, pipeline=pipe)
    assert exc.value.message_dict == {"pipeline": ["“Sales” still holds 2 deals; it cannot be deleted."]}
    assert Pipeline.objects.filter(pk=pipe.pk).exists() and pipe.stages.count() == 6


def test_delete_is_refused_for_the_default_while_others_exist(sam, new_business):
    renewals = services.pipeline_create(actor=sam, name="Renewals")
    with pytest.raises(ValidationError) as exc:
        services.pipeline_delete(actor=sam, pipeline=new_business)
    assert exc.value.message_dict == {"pipeline": ["Make another pipeline the default before deleting this one."]}
    services.pipeline_delete(actor=sam, pipeline=renewals)
    assert list(Pipeline.objects.all()) == [new_business]
    assert not Stage.objects.filter(pipeline_id=renewals.pk).exists()


# --- stages --------------------------------------------------------------------------------------


def test_a_new_open_stage_goes_after_the_last_open_stage(sam, pipe):
    demo = services.stage_create(actor=sam, pipeline=pipe, data={"name": " Demo ", "probability": 85})
    assert (demo.name, demo.order, demo.kind, demo.rotting_days, demo.exit_criteria) == ("Demo", 5, "open", 90, [])
    assert orders(pipe) == [("Lead", 1), ("Qualified", 2), ("Proposal", 3), ("Negotiation", 4), ("Demo", 5),
                            ("Won", 6), ("Lost", 7)]


def test_a_new_won_or_lost_stage_goes_at_the_end(sam, pipe):
    services.stage_create(actor=sam, pipeline=pipe, data={"name": "Won (partner)", "kind": "won", "probability": 100})
    assert names(pipe)[-3:] == ["Won", "Lost", "Won (partner)"]


def test_a_given_position_is_kept_within_the_open_stages(sam, pipe):
    services.stage_create(actor=sam, pipeline=pipe, data={"name": "Discovery", "order": 2})
    assert names(pipe) == ["Lead", "Discovery", "Qualified", "Proposal", "Negotiation", "Won", "Lost"]
    services.stage_create(actor=sam, pipeline=pipe, data={"name": "Late", "order": 99})
    services.stage_create(actor=sam, pipeline=pipe, data={"name": "Early loss", "kind": "lost", "order": 1})
    assert names(pipe) == ["Lead", "Discovery", "Qualified", "Proposal", "Negotiation", "Late", "Early loss", "Won",
                           "Lost"]
    assert [o for _n, o in orders(pipe)] == list(range(1, 10))


def test_stage_create_names_bad_data_and_changes_nothing(sam, pipe):
    before = snapshot(pipe)
    for data, field in [
        ({"name": "QUALIFIED"}, "name"),
        ({"name": ""}, "name"),
        ({"name": "y" * 500}, "name"),
        ({"name": "Demo", "probability": -1}, "probability"),
        ({"name": "Demo", "probability": "lots"}, "probability"),
        ({"name": "Demo", "rotting_days": 3651}, "rotting_days"),
        ({"name": "Demo", "exit_criteria": ["amount", "custom_fields.nope"]}, "exit_criteria"),
        ({"name": "Demo", "exit_criteria": "amount"}, "exit_criteria"),
        ({"name": "Demo", "order": "second"}, "order"),
        ({"name": "Demo", "pipeline": 3}, "pipeline"),
    ]:
        with pytest.raises(ValidationError) as exc:
            services.stage_create(actor=sam, pipeline=pipe, data=data)
        assert field in exc.value.message_dict, data
    assert snapshot(pipe) == before


def test_stage_names_are_unique_in_a_pipeline_not_across_pipelines(sam, pipe, stages):
    with pytest.raises(ValidationError) as exc:
        services.stage_update(actor=sam, stage=stages["Lead"], data={"name": "proposal"})
    assert exc.value.message_dict == {"name": ["“Sales” already has a stage called “proposal”."]}
    other = Pipeline.objects.get(name="New business")
    assert services.stage_create(actor=sam, pipeline=other, data={"name": "Lead"}).name == "Lead"
    # Renaming a stage to itself in other letters is fine.
    assert services.stage_update(actor=sam, stage=stages["Lead"], data={"name": "LEAD"}).name == "LEAD"


def test_exit_criteria_accept_builtin_and_active_deal_custom_fields_only(sam, stages):
    CustomFieldDefinition.objects.create(entity=Entity.DEAL, key="po_number", label="PO number",
                                         field_type=CustomFieldDefinition.FieldType.TEXT)
    CustomFieldDefinition.objects.create(entity=Entity.DEAL, key="retired", label="Retired", is_active=False,
                                         field_type=CustomFieldDefinition.FieldType.TEXT)
    CustomFieldDefinition.objects.create(entity=Entity.CONTACT, key="shoe_size", label="Shoe size",
                                         field_type=CustomFieldDefinition.FieldType.NUMBER)
    lead = services.stage_update(actor=sam, stage=stages["Lead"], data={
        "exit_criteria": ["contact", "custom_fields.po_number", "contact"]})
    assert lead.exit_criteria == ["contact", "custom_fields.po_number"]
    for key in ["custom_fields.retired", "custom_fields.shoe_size", "shoe_size", "name"]:
        with pytest.raises(ValidationError) as exc:
            services.stage_update(actor=sam, stage=stages["Lead"], data={"exit_criteria": [key]})
        assert exc.value.message_dict["exit_criteria"][0].startswith(f"Unknown field “{key}”. Choose from: amount, ")
    with pytest.raises(ValidationError) as exc:
        services.stage_update(actor=sam, stage=stages["Lead"], data={"exit_criteria": [1, 2]})
    assert exc.value.message_dict == {"exit_criteria": ["Expected a list of field keys."]}
    stages["Lead"].refresh_from_db()
    assert stages["Lead"].exit_criteria == ["contact", "custom_fields.po_number"]


def test_stage_update_re_tunes_a_stage(sam, stages):
    stage = services.stage_update(actor=sam, stage=stages["Proposal"], data={
        "name": "Teklif", "probability": 0, "allow_skip": True, "exit_criteria": []})
    stage.refresh_from_db()
    assert (stage.name, stage.probability, stage.allow_skip, stage.exit_criteria, stage.order) == (
        "Teklif", 0, True, [], 3)
    with pytest.raises(ValidationError) as exc:
        services.stage_update(actor=sam, stage=stage, data={"probability": 101, "rotting_days": 0, "order": 1})
    assert set(exc.value.message_dict) == {"order"}
    with pytest.raises(ValidationError) as exc:
        services.stage_update(actor=sam, stage=stage, data={"probability": 101, "rotting_days": 0})
    assert set(exc.value.message_dict) == {"probability", "rotting_days"}


def test_changing_the_rotting_limit_re_dates_the_open_deals(sam, alice, make_deal, stages, price):
    with time_machine.travel(T0, tick=False):
        open_deal = make_deal(alice, stage=stages["Negotiation"])
        lost_deal = make_deal(alice, stage=stages["Negotiation"])
        services.deal_move(actor=alice, deal=lost_deal, stage=stages["Lost"], lost_reason=price)
        other = make_deal(alice, stage=stages["Lead"])
    assert Deal.objects.get(pk=open_deal.pk).rots_at == T0 + timedelta(days=30)
    with time_machine.travel(T0 + timedelta(days=20), tick=False):
        services.stage_update(actor=sam, stage=stages["Negotiation"], data={"rotting_days": 7})
    open_deal.refresh_from_db()
    # Entered on T0, limit now 7 days: stale since T0 + 7 days, i.e. already stale on day 20.
    assert open_deal.rots_at == T0 + timedelta(days=7)
    assert open_deal.is_stale
    assert Deal.objects.get(pk=lost_deal.pk).rots_at is None
    assert Deal.objects.get(pk=other.pk).rots_at == T0 + timedelta(days=90)


def test_the_kind_of_a_stage_with_deals_cannot_change(sam, alice, make_deal, stages, pipe):
    make_deal(alice, stage=stages["Negotiation"])
    before = snapshot(pipe)
    with pytest.raises(ValidationError) as exc:
        services.stage_update(actor=sam, stage=stages["Negotiation"], data={"kind": "won", "name": "Signed"})
    assert exc.value.message_dict == {"kind": ["The stage holds deals; move them before changing its kind."]}
    assert snapshot(pipe) == before


def test_an_empty_stage_changed_to_won_moves_after_the_open_stages(sam, stages, pipe):
    services.stage_update(actor=sam, stage=stages["Qualified"], data={"kind": "won"})
    assert names(pipe) == ["Lead", "Proposal", "Negotiation", "Qualified", "Won", "Lost"]
    assert [o for _n, o in orders(pipe)] == [1, 2, 3, 4, 5, 6]


def test_the_last_won_lost_or_open_stage_keeps_its_kind(sam, stages, pipe):
    before = snapshot(pipe)
    for name, kind, missing in [("Won", "open", "Won"), ("Lost", "won", "Lost")]:
        with pytest.raises(ValidationError) as exc:
            services.stage_update(actor=sam, stage=stages[name], data={"kind": kind})
        assert exc.value.message_dict == {"stages": [
            f"A pipeline needs at least one stage of each kind; missing: {missing}."]}
    for name in ["Lead", "Qualified", "Proposal"]:
        services.stage_update(actor=sam, stage=stages[name], data={"kind": "lost"})
    with pytest.raises(ValidationError) as exc:
        services.stage_update(actor=sam, stage=stages["Negotiation"], data={"kind": "won"})
    assert exc.value.message_dict == {"stages": ["A pipeline needs at least one stage of each kind; missing: Open."]}
    assert pipe.stages.get(name="Negotiation").kind == "open"
    assert before != snapshot(pipe)


# --- reordering ----------------------------------------------------------------------------------


def test_reorder_puts_the_stages_in_the_given_order(sam, pipe, stages):
    ids = [stages[n].pk for n in ["Negotiation", "Lead", "Proposal", "Qualified", "Lost", "Won"]]
    ordered = services.stages_reorder(actor=sam, pipeline=pipe, stage_ids=ids)
    assert [s.name for s in ordered] == ["Negotiation", "Lead", "Proposal", "Qualified", "Lost", "Won"]
    assert orders(pipe) == [("Negotiation", 1), ("Lead", 2), ("Proposal", 3), ("Qualified", 4), ("Lost", 5),
                            ("Won", 6)]
    # Ids as strings, as a browser form sends them.
    services.stages_reorder(actor=sam, pipeline=pipe, stage_ids=[str(stages[n].pk) for n in stages])
    assert names(pipe) == ["Lead", "Qualified", "Proposal", "Negotiation", "Won", "Lost"]


def test_reorder_refuses_missing_extra_foreign_or_closed_first_lists(sam, pipe, stages):
    before = snapshot(pipe)
    ids = [s.pk for s in stages.values()]
    foreign = Pipeline.objects.get(name="New business").stages.first().pk
    for stage_ids in [ids[:-1], ids + [ids[0]], ids[:-1] + [foreign], ids + [foreign], [], "1,2,3",
                      ids[:-1] + ["x"], None]:
        with pytest.raises(ValidationError) as exc:
            services.stages_reorder(actor=sam, pipeline=pipe, stage_ids=stage_ids)
        assert exc.value.message_dict == {"stages": ["List every stage of “Sales” exactly once."]}, stage_ids
    with pytest.raises(ValidationError) as exc:
        services.stages_reorder(actor=sam, pipeline=pipe, stage_ids=[ids[4], *ids[:4], ids[5]])
    assert exc.value.message_dict == {"stages": ["Won and lost stages come after the open stages."]}
    assert snapshot(pipe) == before


# --- deleting stages -----------------------------------------------------------------------------


def test_an_empty_stage_is_deleted_and_the_rest_renumbered(sam, pipe, stages):
    assert services.stage_delete(actor=sam, stage=stages["Qualified"]) == 0
    assert orders(pipe) == [("Lead", 1), ("Proposal", 2), ("Negotiation", 3), ("Won", 4), ("Lost", 5)]


def test_a_stage_with_deals_is_not_deleted_without_a_stage_to_move_them_to(sam, alice, pipe, stages, make_deal):
    make_deal(alice, stage=stages["Proposal"])
    before = snapshot(pipe)
    with pytest.raises(ValidationError) as exc:
        services.stage_delete(actor=sam, stage=stages["Proposal"])
    assert exc.value.message_dict == {"move_to": [
        "“Proposal” still holds 1 deal. Choose a stage to move it to before deleting it."]}
    make_deal(alice, stage=stages["Proposal"])
    with pytest.raises(ValidationError) as exc:
        services.stage_delete(actor=sam, stage=stages["Proposal"])
    assert exc.value.message_dict == {"move_to": [
        "“Proposal” still holds 2 deals. Choose a stage to move them to before deleting it."]}
    assert snapshot(pipe) == before
    assert Deal.objects.filter(stage=stages["Proposal"]).count() == 2


def test_deals_go_only_to_another_stage_of_the_same_kind_and_pipeline(sam, alice, pipe, stages, make_deal):
    deal = make_deal(alice, stage=stages["Proposal"])
    other = Pipeline.objects.get(name="New business").stages.get(name="Negotiation")
    before = snapshot(pipe)
    for move_to, message in [
        (stages["Won"], "Deals can only be moved to a stage of the same kind (Open)."),
        (stages["Proposal"], "Choose another stage of the same pipeline."),
        (other, "Choose another stage of the same pipeline."),
    ]:
        with pytest.raises(ValidationError) as exc:
            services.stage_delete(actor=sam, stage=stages["Proposal"], move_to=move_to)
        assert exc.value.message_dict == {"move_to": [message]}
    assert snapshot(pipe) == before
    deal.refresh_from_db()
    assert deal.stage == stages["Proposal"] and deal.stage_changes.count() == 1


def test_deleting_a_stage_moves_its_deals_with_history_and_a_new_rotting_date(sam, alice, pipe, stages, make_deal):
    with time_machine.travel(T0, tick=False):
        first = make_deal(alice, stage=stages["Proposal"])
    with time_machine.travel(T0 + timedelta(days=1), tick=False):
        second = make_deal(alice, stage=stages["Proposal"])
        stay = make_deal(alice, stage=stages["Lead"])
    with time_machine.travel(T0 + timedelta(days=5), tick=False):
        moved = services.stage_delete(actor=sam, stage=stages["Proposal"], move_to=stages["Negotiation"])
    assert moved == 2
    assert not Stage.objects.filter(pk=stages["Proposal"].pk).exists()
    for deal, days_in_proposal in [(first, 5), (second, 4)]:
        deal.refresh_from_db()
        assert deal.stage == stages["Negotiation"] and deal.status == "open"
        assert deal.stage_entered_at == T0 + timedelta(days=5)
        # Negotiation's rotting limit is 30 days.
        assert deal.rots_at == T0 + timedelta(days=35)
        change = deal.stage_changes.order_by("-changed_at", "-id").first()
        assert (change.from_stage_id, change.from_stage_name, change.to_stage, change.to_stage_name) == (
            None, "Proposal", stages["Negotiation"], "Negotiation")
        assert (change.direction, change.actor, change.changed_at) == ("moved", sam, T0 + timedelta(days=5))
        assert change.seconds_in_from_stage == days_in_proposal * 86400
    stay.refresh_from_db()
    assert stay.stage == stages["Lead"] and stay.stage_changes.count() == 1
    assert StageChange.objects.count() == 3 + 2
    assert orders(pipe) == [("Lead", 1), ("Qualified", 2), ("Negotiation", 3), ("Won", 4), ("Lost", 5)]


def test_deleting_a_won_stage_moves_its_deals_to_another_won_stage(sam, alice, pipe, stages, make_deal):
    deal = make_deal(alice, stage=stages["Negotiation"], amount=10)
    services.deal_move(actor=alice, deal=deal, stage=stages["Won"])
    deal.refresh_from_db()
    closed_at = deal.closed_at
    signed = services.stage_create(actor=sam, pipeline=pipe, data={"name": "Signed", "kind": "won"})
    assert services.stage_delete(actor=sam, stage=stages["Won"], move_to=signed) == 1
    deal.refresh_from_db()
    assert (deal.stage, deal.status, deal.closed_at, deal.rots_at) == (signed, "won", closed_at, None)
    assert names(pipe) == ["Lead", "Qualified", "Proposal", "Negotiation", "Lost", "Signed"]


def test_the_last_won_lost_or_open_stage_cannot_be_deleted(sam, pipe, stages):
    before = snapshot(pipe)
    for name, missing in [("Won", "Won"), ("Lost", "Lost")]:
        with pytest.raises(ValidationError) as exc:
            services.stage_delete(actor=sam, stage=stages[name])
        assert exc.value.message_dict == {"stages": [
            f"A pipeline needs at least one stage of each kind; missing: {missing}."]}
    for name in ["Lead", "Qualified", "Proposal"]:
        services.stage_delete(actor=sam, stage=stages[name])
    with pytest.raises(ValidationError) as exc:
        services.stage_delete(actor=sam, stage=stages["Negotiation"])
    assert exc.value.message_dict == {"stages": ["A pipeline needs at least one stage of each kind; missing: Open."]}
    assert names(pipe) == ["Negotiation", "Won", "Lost"]
    assert before != snapshot(pipe)


# --- permissions ---------------------------------------------------------------------------------


@pytest.mark.parametrize("persona", ["alice", "mona", "integ"])
def test_only_admins_change_pipelines_and_stages(request, persona, sam, pipe, stages):
    user = request.getfixturevalue(persona)
    before = (list(Pipeline.objects.values_list("pk", "name", "is_default", "order")), snapshot(pipe))
    calls = [
        lambda: services.pipeline_create(actor=user, name="Mine"),
        lambda: services.pipeline_update(actor=user, pipeline=pipe, name="Mine"),
        lambda: services.pipeline_update(actor=user, pipeline=pipe, is_default=True),
        lambda: services.pipeline_delete(actor=user, pipeline=pipe),
        lambda: services.stage_create(actor=user, pipeline=pipe, data={"name": "Mine"}),
        lambda: services.stage_update(actor=user, stage=stages["Lead"], data={"name": "Mine"}),
        lambda: services.stages_reorder(actor=user, pipeline=pipe, stage_ids=[s.pk for s in stages.values()]),
        lambda: services.stage_delete(actor=user, stage=stages["Lead"]),
    ]
    for call in calls:
        with pytest.raises(PermissionDenied):
            call()
    assert (list(Pipeline.objects.values_list("pk", "name", "is_default", "order")), snapshot(pipe)) == before
