"""The pipelines, stages and lost-reasons API: everyone reads, admins change them through the services."""

import io
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command

from contacts.models import CustomFieldDefinition
from pipeline import services
from pipeline.models import Deal, LostReason, Pipeline, Stage, StageChange
from tests.factories import DealFactory

pytestmark = pytest.mark.django_db

PIPELINES = "/api/v1/pipelines/"
STAGES = "/api/v1/stages/"
REASONS = "/api/v1/lost-reasons/"
BIG = "x" * 100_000
EVERYONE = ["alice", "bob", "charlie", "mona", "sam", "integ"]
NOT_ADMINS = ["alice", "bob", "charlie", "mona", "integ"]


def persona(request, name):
    return request.getfixturevalue(name)


def ids(response):
    assert response.status_code == 200, response.json()
    return [row["id"] for row in response.json()["results"]]


def stage_names(pipeline):
    return list(pipeline.stages.order_by("order", "id").values_list("name", flat=True))


# --- pipelines --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", EVERYONE)
def test_everyone_reads_the_pipelines_with_their_stages(request, api_for, pipe, stages, name):
    api = api_for(persona(request, name))

    listed = api.get(PIPELINES).json()["results"]
    one = api.get(f"{PIPELINES}{pipe.pk}/").json()

    assert [p["name"] for p in listed] == ["New business", "Sales"]
    assert [s["name"] for s in one["stages"]] == ["Lead", "Qualified", "Proposal", "Negotiation", "Won", "Lost"]
    assert one["stages"][2] == {
        "id": stages["Proposal"].pk, "pipeline": pipe.pk, "name": "Proposal", "order": 3, "kind": "open",
        "probability": 60, "rotting_days": 90, "exit_criteria": ["amount", "expected_close_date"],
        "allow_skip": False}
    assert (one["name"], one["is_default"], one["order"]) == ("Sales", False, 2)


@pytest.mark.parametrize("name", NOT_ADMINS)
def test_only_admins_change_pipelines(request, api_for, pipe, stages, name):
    api = api_for(persona(request, name))
    detail = f"{PIPELINES}{pipe.pk}/"
    order = [stages[n].pk for n in ("Qualified", "Lead", "Proposal", "Negotiation", "Won", "Lost")]

    responses = [
        api.post(PIPELINES, {"name": "Yenileme"}, format="json"),
        api.patch(detail, {"name": "Satış"}, format="json"),
        api.put(detail, {"name": "Satış"}, format="json"),
        api.delete(detail),
        api.post(f"{detail}reorder-stages/", {"stages": order}, format="json"),
    ]

    assert [r.status_code for r in responses] == [403] * 5
    assert responses[0].json() == {"errors": {"detail": ["Only admins can change this list."]}}
    assert list(Pipeline.objects.values_list("name", flat=True)) == ["New business", "Sales"]
    assert stage_names(pipe) == ["Lead", "Qualified", "Proposal", "Negotiation", "Won", "Lost"]


def test_admin_creates_a_pipeline_with_the_default_stages(api_for, sam):
    response = api_for(sam).post(PIPELINES, {"name": "  Yenilemeler  "}, format="json")

    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["name"], body["is_default"]) == ("Yenilemeler", False)
    assert [(s["name"], s["kind"], s["order"]) for s in body["stages"]] == [
        ("Qualified", "open", 1), ("Contact made", "open", 2), ("Meeting / demo", "open", 3),
        ("Proposal sent", "open", 4), ("Negotiation", "open", 5), ("Won", "won", 6), ("Lost", "lost", 7)]


def test_a_new_default_pipeline_unmarks_the_old_one(api_for, sam, pipe):
    response = api_for(sam).post(PIPELINES, {"name": "Kurumsal", "is_default": True, "order": 1}, format="json")

    assert response.status_code == 201
    assert list(Pipeline.objects.filter(is_default=True).values_list("name", flat=True)) == ["Kurumsal"]
    assert response.json()["order"] == 1


def test_admin_renames_reorders_and_makes_a_pipeline_the_default(api_for, sam, pipe):
    response = api_for(sam).patch(f"{PIPELINES}{pipe.pk}/", {"name": "Satış", "order": 0, "is_default": True},
                                  format="json")

    assert response.status_code == 200, response.json()
    assert (response.json()["name"], response.json()["order"], response.json()["is_default"]) == ("Satış", 0, True)
    assert ids(api_for(sam).get(PIPELINES))[0] == pipe.pk


@pytest.mark.parametrize("body, fields", [
    ({}, ["name"]),
    ({"name": ""}, ["name"]),
    ({"name": None}, ["name"]),
    ({"name": 5}, ["name"]),
    ({"name": BIG}, ["name"]),
    ({"name": "Sales"}, ["name"]),
    ({"name": " SALES "}, ["name"]),
    ({"name": "X", "is_default": "belki"}, ["is_default"]),
    ({"name": "X", "order": -1}, ["order"]),
    ({"name": "X", "order": "ilk"}, ["order"]),
    ({"name": "X", "aşamalar": []}, ["aşamalar"]),
])
def test_bad_pipeline_input_is_refused(api_for, sam, pipe, body, fields):
    response = api_for(sam).post(PIPELINES, body, format="json")

    assert response.status_code == 400
    assert sorted(response.json()["errors"]) == fields
    assert Pipeline.objects.count() == 2


def test_a_taken_pipeline_name_is_named_whatever_its_case(api_for, sam, pipe):
    response = api_for(sam).patch(f"{PIPELINES}{pipe.pk}/", {"name": "new BUSINESS"}, format="json")

    assert response.status_code == 400
    assert response.json()["errors"] == {"name": ["There is already a pipeline called “new BUSINESS”."]}


def test_the_default_pipeline_is_not_unmarked_directly(api_for, sam):
    default = Pipeline.objects.get(is_default=True)

    response = api_for(sam).patch(f"{PIPELINES}{default.pk}/", {"is_default": False}, format="json")

    assert response.status_code == 400
    assert response.json()["errors"] == {"is_default": ["Make another pipeline the default instead."]}


def test_a_pipeline_holding_deals_is_not_deleted(api_for, sam, alice, make_deal, pipe):
    make_deal(alice)

    response = api_for(sam).delete(f"{PIPELINES}{pipe.pk}/")

    assert response.status_code == 400
    assert response.json()["errors"] == {"pipeline": ["“Sales” still holds 1 deal; it cannot be deleted."]}
    assert Pipeline.objects.filter(pk=pipe.pk).exists()


def test_an_empty_pipeline_is_deleted_with_its_stages(api_for, sam, pipe):
    assert api_for(sam).delete(f"{PIPELINES}{pipe.pk}/").status_code == 204

    assert not Pipeline.objects.filter(pk=pipe.pk).exists()
    assert not Stage.objects.filter(pipeline_id=pipe.pk).exists()


def test_the_default_pipeline_is_kept_while_others_exist(api_for, sam, pipe):
    default = Pipeline.objects.get(is_default=True)

    response = api_for(sam).delete(f"{PIPELINES}{default.pk}/")

    assert response.status_code == 400
    assert response.json()["errors"] == {"pipeline": ["Make another pipeline the default before deleting this one."]}


def test_unknown_pipeline_is_a_404(api_for, sam, alice):
    assert api_for(alice).get(f"{PIPELINES}999999/").status_code == 404
    assert api_for(sam).patch(f"{PIPELINES}999999/", {"name": "X"}, format="json").status_code == 404
    assert api_for(sam).post(f"{PIPELINES}999999/reorder-stages/", {"stages": []}, format="json").status_code == 404


# --- reordering stages -----------------------------------------------------------------------------------


def test_admin_reorders_the_stages(api_for, sam, pipe, stages):
    order = [stages[n].pk for n in ("Lead", "Proposal", "Qualified", "Negotiation", "Lost", "Won")]

    response = api_for(sam).post(f"{PIPELINES}{pipe.pk}/reorder-stages/", {"stages": order}, format="json")

    assert response.status_code == 200, response.json()
    assert [s["id"] for s in response.json()["stages"]] == order
    assert [s["order"] for s in response.json()["stages"]] == [1, 2, 3, 4, 5, 6]
    assert stage_names(pipe) == ["Lead", "Proposal", "Qualified", "Negotiation", "Lost", "Won"]


@pytest.mark.parametrize("body, field", [
    ({"stages": "@some"}, "stages"),
    ({"stages": "@with_foreign"}, "stages"),
    ({"stages": "@twice"}, "stages"),
    ({"stages": "1,2,3"}, "stages"),
    ({"stages": ["bir", "iki"]}, "stages"),
    ({"stages": [0]}, "stages"),
    ({}, "stages"),
    ({"stages": "@all", "sıra": 1}, "sıra"),
])
def test_bad_reorder_is_refused_and_changes_nothing(api_for, sam, pipe, stages, body, field):
    all_ids = [s.pk for s in stages.values()]
    foreign = Pipeline.objects.get(name="New business").stages.first().pk
    refs = {"@some": all_ids[:3], "@with_foreign": [*all_ids[:-1], foreign], "@twice": [*all_ids, all_ids[0]],
            "@all": all_ids[::-1]}
    body = {key: refs.get(value, value) if isinstance(value, str) else value for key, value in body.items()}

    response = api_for(sam).post(f"{PIPELINES}{pipe.pk}/reorder-stages/", body, format="json")

    assert response.status_code == 400
    assert list(response.json()["errors"]) == [field]
    assert stage_names(pipe) == ["Lead", "Qualified", "Proposal", "Negotiation", "Won", "Lost"]


def test_won_and_lost_stay_after_the_open_stages(api_for, sam, pipe, stages):
    order = [stages[n].pk for n in ("Won", "Lead", "Qualified", "Proposal", "Negotiation", "Lost")]

    response = api_for(sam).post(f"{PIPELINES}{pipe.pk}/reorder-stages/", {"stages": order}, format="json")

    assert response.status_code == 400
    assert response.json()["errors"] == {"stages": ["Won and lost stages come after the open stages."]}


def test_reorder_error_names_the_pipeline(api_for, sam, pipe, stages):
    response = api_for(sam).post(f"{PIPELINES}{pipe.pk}/reorder-stages/", {"stages": [stages["Lead"].pk]},
                                 format="json")

    assert response.json()["errors"] == {"stages": ["List every stage of “Sales” exactly once."]}


# --- stages ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", EVERYONE)
def test_everyone_reads_the_stages(request, api_for, pipe, stages, name):
    api = api_for(persona(request, name))

    assert ids(api.get(STAGES, {"pipeline": pipe.pk})) == [s.pk for s in stages.values()]
    assert ids(api.get(STAGES, {"pipeline": pipe.pk, "kind": "won"})) == [stages["Won"].pk]
    assert api.get(f"{STAGES}{stages['Lead'].pk}/").json()["name"] == "Lead"


def test_stage_list_filters_and_sorts(api_for, alice, pipe, stages):
    default = Pipeline.objects.get(name="New business")
    api = api_for(alice)

    assert len(ids(api.get(STAGES))) == 13
    assert len(ids(api.get(STAGES, {"kind": "open"}))) == 9
    assert ids(api.get(STAGES, {"pipeline": default.pk, "kind": "lost"})) == [default.stages.get(kind="lost").pk]
    assert ids(api.get(STAGES, {"ordering": "id", "page_size": 2})) == sorted(
        Stage.objects.values_list("pk", flat=True))[:2]
    for params, field in (({"pipeline": "Satış"}, "pipeline"), ({"kind": "belki"}, "kind"), ({"tür": "x"}, "tür")):
        response = api.get(STAGES, params)
        assert response.status_code == 400 and list(response.json()["errors"]) == [field]


@pytest.mark.parametrize("name", NOT_ADMINS)
def test_only_admins_change_stages(request, api_for, alice, make_deal, pipe, stages, name):
    api = api_for(persona(request, name))
    lead = f"{STAGES}{stages['Lead'].pk}/"

    responses = [
        api.post(STAGES, {"pipeline": pipe.pk, "name": "Demo"}, format="json"),
        api.patch(lead, {"probability": 50}, format="json"),
        api.put(lead, {"pipeline": pipe.pk, "name": "Lead", "probability": 50}, format="json"),
        api.delete(lead),
        api.delete(lead, {"move_to": stages["Qualified"].pk}, format="json"),
    ]

    assert [r.status_code for r in responses] == [403] * 5
    assert stage_names(pipe) == ["Lead", "Qualified", "Proposal", "Negotiation", "Won", "Lost"]
    assert Stage.objects.get(pk=stages["Lead"].pk).probability == 10


def test_admin_adds_an_open_stage_after_the_last_open_one(api_for, sam, pipe):
    response = api_for(sam).post(STAGES, {
        "pipeline": pipe.pk, "name": " Sözleşme  imzası ", "probability": 90, "rotting_days": 14,
        "exit_criteria": ["contact", "amount", "contact"], "allow_skip": False}, format="json")

    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["name"], body["order"], body["kind"], body["probability"], body["rotting_days"]) == (
        "Sözleşme imzası", 5, "open", 90, 14)
    assert (body["exit_criteria"], body["allow_skip"]) == (["contact", "amount"], False)
    assert stage_names(pipe) == ["Lead", "Qualified", "Proposal", "Negotiation", "Sözleşme imzası", "Won", "Lost"]


def test_admin_adds_a_stage_at_a_given_place_with_a_custom_field_criterion(api_for, sam, pipe):
    CustomFieldDefinition.objects.create(entity="deal", key="budget_ok", label="Bütçe onayı", field_type="boolean")

    response = api_for(sam).post(STAGES, {"pipeline": pipe.pk, "name": "Keşif", "order": 1,
                                          "exit_criteria": ["custom_fields.budget_ok"]}, format="json")

    assert response.status_code == 201, response.json()
    assert (response.json()["order"], response.json()["exit_criteria"]) == (1, ["custom_fields.budget_ok"])
    assert stage_names(pipe)[:2] == ["Keşif", "Lead"]


@pytest.mark.parametrize("body, fields", [
    ({"name": "X"}, ["pipeline"]),
    ({"pipeline": "@pipe"}, ["name"]),
    ({"pipeline": 999999, "name": "X"}, ["pipeline"]),
    ({"pipeline": "@pipe", "name": "Lead"}, ["name"]),
    ({"pipeline": "@pipe", "name": "  Lead "}, ["name"]),
    ({"pipeline": "@pipe", "name": "LEAD"}, ["name"]),
    ({"pipeline": "@pipe", "name": BIG}, ["name"]),
    ({"pipeline": "@pipe", "name": 7}, ["name"]),
    ({"pipeline": "@pipe", "name": "X", "kind": "belki"}, ["kind"]),
    ({"pipeline": "@pipe", "name": "X", "probability": 101}, ["probability"]),
    ({"pipeline": "@pipe", "name": "X", "probability": -1}, ["probability"]),
    ({"pipeline": "@pipe", "name": "X", "probability": "yüksek"}, ["probability"]),
    ({"pipeline": "@pipe", "name": "X", "rotting_days": 0}, ["rotting_days"]),
    ({"pipeline": "@pipe", "name": "X", "rotting_days": 3651}, ["rotting_days"]),
    ({"pipeline": "@pipe", "name": "X", "exit_criteria": ["renk"]}, ["exit_criteria"]),
    ({"pipeline": "@pipe", "name": "X", "exit_criteria": ["custom_fields.yok"]}, ["exit_criteria"]),
    ({"pipeline": "@pipe", "name": "X", "exit_criteria": "amount"}, ["exit_criteria"]),
    ({"pipeline": "@pipe", "name": "X", "exit_criteria": [1]}, ["exit_criteria"]),
    ({"pipeline": "@pipe", "name": "X", "exit_criteria": [BIG]}, ["exit_criteria"]),
    ({"pipeline": "@pipe", "name": "X", "exit_criteria": ["amount"] * 51}, ["exit_criteria"]),
    ({"pipeline": "@pipe", "name": "X", "allow_skip": "bazen"}, ["allow_skip"]),
    ({"pipeline": "@pipe", "name": "X", "order": "son"}, ["order"]),
    ({"pipeline": "@pipe", "name": "X", "renk": "mavi"}, ["renk"]),
])
def test_bad_stage_input_is_refused(api_for, sam, pipe, body, fields):
    body = {key: pipe.pk if value == "@pipe" else value for key, value in body.items()}

    response = api_for(sam).post(STAGES, body, format="json")

    assert response.status_code == 400
    assert sorted(response.json()["errors"]) == fields
    assert pipe.stages.count() == 6


def test_unknown_criterion_error_lists_the_choices(api_for, sam, pipe):
    response = api_for(sam).post(STAGES, {"pipeline": pipe.pk, "name": "X", "exit_criteria": ["bütçe"]},
                                 format="json")

    assert response.json()["errors"] == {"exit_criteria": [
        "Unknown field “bütçe”. Choose from: amount, expected_close_date, contact, company, lead_source, owner."]}


def test_a_stage_name_may_repeat_in_another_pipeline(api_for, sam, pipe):
    default = Pipeline.objects.get(name="New business")

    response = api_for(sam).post(STAGES, {"pipeline": default.pk, "name": "Lead"}, format="json")

    assert response.status_code == 201


def test_admin_changes_a_stage_and_its_rotting_limit_redates_the_deals(api_for, sam, alice, make_deal, stages):
    deal = make_deal(alice, stage=stages["Negotiation"])

    response = api_for(sam).patch(f"{STAGES}{stages['Negotiation'].pk}/", {
        "name": "Pazarlık", "rotting_days": 7, "exit_criteria": ["expected_close_date"]}, format="json")

    assert response.status_code == 200, response.json()
    assert (response.json()["name"], response.json()["rotting_days"]) == ("Pazarlık", 7)
    deal.refresh_from_db()
    assert deal.rots_at == deal.stage_entered_at + timedelta(days=7)


def test_a_stage_read_from_the_api_can_be_sent_back(api_for, sam, stages):
    api = api_for(sam)
    url = f"{STAGES}{stages['Lead'].pk}/"
    body = api.get(url).json()

    response = api.put(url, dict(body, probability=15), format="json")

    assert response.status_code == 200, response.json()
    assert response.json()["probability"] == 15


@pytest.mark.parametrize("body, errors", [
    ({"order": 3}, {"order": ["Change the order with POST /api/v1/pipelines/{id}/reorder-stages/."]}),
    ({"pipeline": "@other"}, {"pipeline": ["A stage stays in its pipeline."]}),
    ({"name": "QUALIFIED"}, {"name": ["“Sales” already has a stage called “QUALIFIED”."]}),
    ({"kind": "won"}, {"kind": ["The stage holds deals; move them before changing its kind."]}),
])
def test_bad_stage_update_is_refused(api_for, sam, alice, make_deal, stages, body, errors):
    make_deal(alice, stage=stages["Lead"])
    other = Pipeline.objects.get(name="New business")
    body = {key: other.pk if value == "@other" else value for key, value in body.items()}

    response = api_for(sam).patch(f"{STAGES}{stages['Lead'].pk}/", body, format="json")

    assert response.status_code == 400
    assert response.json()["errors"] == errors
    lead = Stage.objects.get(pk=stages["Lead"].pk)
    assert (lead.name, lead.order, lead.kind, lead.pipeline_id) == ("Lead", 1, "open", stages["Lead"].pipeline_id)


def test_the_last_won_stage_is_kept(api_for, sam, stages):
    response = api_for(sam).delete(f"{STAGES}{stages['Won'].pk}/")

    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["stages"]
    assert Stage.objects.filter(pk=stages["Won"].pk).exists()


# --- deleting stages: move_to ---------------------------------------------------------------------------------


def test_a_stage_holding_deals_needs_move_to(api_for, sam, alice, make_deal, stages):
    make_deal(alice, stage=stages["Lead"])
    make_deal(alice, stage=stages["Lead"])

    response = api_for(sam).delete(f"{STAGES}{stages['Lead'].pk}/")

    assert response.status_code == 400
    assert response.json()["errors"] == {"move_to": [
        "“Lead” still holds 2 deals. Choose a stage to move them to before deleting it."]}
    assert Stage.objects.filter(pk=stages["Lead"].pk).exists()


@pytest.mark.parametrize("where", ["body", "query"])
def test_move_to_in_the_body_or_the_query_moves_the_deals_and_deletes_the_stage(
        api_for, sam, alice, make_deal, pipe, stages, where):
    deal = make_deal(alice, stage=stages["Lead"])
    url = f"{STAGES}{stages['Lead'].pk}/"
    target = stages["Negotiation"].pk
    api = api_for(sam)

    if where == "body":
        response = api.delete(url, {"move_to": target}, format="json")
    else:
        response = api.delete(f"{url}?move_to={target}")

    assert response.status_code == 204
    deal.refresh_from_db()
    assert deal.stage_id == target
    change = StageChange.objects.filter(deal=deal).order_by("-id").first()
    assert (change.from_stage_name, change.to_stage_name, change.actor) == ("Lead", "Negotiation", sam)
    assert stage_names(pipe) == ["Qualified", "Proposal", "Negotiation", "Won", "Lost"]


def test_an_empty_stage_is_deleted_without_move_to(api_for, sam, pipe, stages):
    assert api_for(sam).delete(f"{STAGES}{stages['Qualified'].pk}/").status_code == 204
    assert stage_names(pipe) == ["Lead", "Proposal", "Negotiation", "Won", "Lost"]


@pytest.mark.parametrize("move_to, message", [
    ("@Won", "Deals can only be moved to a stage of the same kind (Open)."),
    ("@Lead", "Choose another stage of the same pipeline."),
    ("@other", "Choose another stage of the same pipeline."),
    (999999, 'Invalid pk "999999" - object does not exist.'),
    ("Teklif", "Incorrect type. Expected pk value, received str."),
])
def test_a_bad_move_to_is_refused(api_for, sam, alice, make_deal, stages, move_to, message):
    deal = make_deal(alice, stage=stages["Lead"])
    other = Pipeline.objects.get(name="New business").stages.order_by("order").first()
    refs = {"@Won": stages["Won"].pk, "@Lead": stages["Lead"].pk, "@other": other.pk}

    response = api_for(sam).delete(f"{STAGES}{stages['Lead'].pk}/", {"move_to": refs.get(move_to, move_to)},
                                   format="json")

    assert response.status_code == 400
    assert response.json()["errors"] == {"move_to": [message]}
    deal.refresh_from_db()
    assert deal.stage == stages["Lead"]


def test_move_to_given_twice_differently_is_refused(api_for, sam, alice, make_deal, stages):
    make_deal(alice, stage=stages["Lead"])
    url = f"{STAGES}{stages['Lead'].pk}/?move_to={stages['Qualified'].pk}"

    response = api_for(sam).delete(url, {"move_to": stages["Proposal"].pk}, format="json")

    assert response.status_code == 400
    assert response.json()["errors"] == {"move_to": ["Give move_to once: in the body or the query."]}


def test_unknown_keys_in_a_delete_body_are_refused(api_for, sam, stages):
    response = api_for(sam).delete(f"{STAGES}{stages['Qualified'].pk}/", {"hedef": 1}, format="json")

    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["hedef"]
    assert Stage.objects.filter(pk=stages["Qualified"].pk).exists()


# --- lost reasons ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", EVERYONE)
def test_everyone_reads_the_lost_reasons(request, api_for, price, name):
    rows = api_for(persona(request, name)).get(REASONS).json()["results"]

    assert "Price" in [row["name"] for row in rows]


@pytest.mark.parametrize("name", NOT_ADMINS)
def test_only_admins_change_lost_reasons(request, api_for, price, name):
    api = api_for(persona(request, name))

    responses = [
        api.post(REASONS, {"name": "Zamanlama"}, format="json"),
        api.patch(f"{REASONS}{price.pk}/", {"name": "Fiyat"}, format="json"),
        api.delete(f"{REASONS}{price.pk}/"),
    ]

    assert [r.status_code for r in responses] == [403] * 3
    price.refresh_from_db()
    assert price.name == "Price"
    assert not LostReason.objects.filter(name="Zamanlama").exists()


def test_admin_adds_renames_and_retires_a_lost_reason(api_for, sam, price):
    api = api_for(sam)

    created = api.post(REASONS, {"name": "  Bütçe   dondu ", "order": 9}, format="json")
    renamed = api.patch(f"{REASONS}{price.pk}/", {"name": "Fiyat", "is_active": False}, format="json")

    assert created.status_code == 201, created.json()
    assert (created.json()["name"], created.json()["is_active"], created.json()["order"]) == ("Bütçe dondu", True, 9)
    assert (renamed.json()["name"], renamed.json()["is_active"]) == ("Fiyat", False)
    assert "Fiyat" not in [r["name"] for r in api.get(REASONS, {"is_active": "true"}).json()["results"]]
    assert [r["name"] for r in api.get(REASONS, {"is_active": "false"}).json()["results"]] == ["Fiyat"]


@pytest.mark.parametrize("body, fields", [
    ({}, ["name"]),
    ({"name": "Price"}, ["name"]),
    ({"name": " Price  "}, ["name"]),
    ({"name": BIG}, ["name"]),
    ({"name": 3}, ["name"]),
    ({"name": "X", "is_active": "hayır!"}, ["is_active"]),
    ({"name": "X", "neden": "y"}, ["neden"]),
])
def test_bad_lost_reason_input_is_refused(api_for, sam, price, body, fields):
    count = LostReason.objects.count()

    response = api_for(sam).post(REASONS, body, format="json")

    assert response.status_code == 400
    assert sorted(response.json()["errors"]) == fields
    assert LostReason.objects.count() == count


def test_a_lost_reason_in_use_is_not_deleted(api_for, sam, alice, make_deal, stages, price):
    deal = make_deal(alice, stage=stages["Lead"])
    services.deal_move(actor=alice, deal=deal, stage=stages["Lost"], lost_reason=price)
    unused = LostReason.objects.create(name="Hiç kullanılmadı")
    api = api_for(sam)

    in_use = api.delete(f"{REASONS}{price.pk}/")
    deleted = api.delete(f"{REASONS}{unused.pk}/")

    assert in_use.status_code == 409
    assert in_use.json() == {"errors": {"detail": [
        "Deals were lost for this reason; deactivate it (is_active=false) instead."]}}
    assert deleted.status_code == 204
    assert LostReason.objects.filter(pk=price.pk).exists()


# --- query counts -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("extra", [1, 8])
@pytest.mark.parametrize("path, queries", [
    ("pipelines", 3),  # token, pipelines, their stages
    ("stages", 2),  # token, stages
    ("lost-reasons", 2),  # token, reasons
])
def test_pipeline_lists_use_a_fixed_number_of_queries(api_for, django_assert_num_queries, sam, alice, extra, path,
                                                      queries):
    for i in range(extra):
        services.pipeline_create(actor=sam, name=f"Hat {i}")
        LostReason.objects.create(name=f"Neden {i}")
    api = api_for(alice)
    api.get(f"/api/v1/{path}/")

    with django_assert_num_queries(queries):
        response = api.get(f"/api/v1/{path}/", {"page_size": 200})

    assert response.status_code == 200 and response.json()["results"]


def test_a_won_deals_weighted_amount_follows_its_stage(api_for, alice, stages):
    deal = DealFactory(stage=stages["Won"], owner=alice, amount=Decimal("80.00"))

    assert api_for(alice).get(f"/api/v1/deals/{deal.pk}/").json()["weighted_amount"] == "80.00"
    assert Deal.objects.count() == 1


# --- the OpenAPI schema --------------------------------------------------------------------------------------


def test_schema_documents_the_pipeline_api_and_is_warning_free(api_for, alice):
    call_command("spectacular", "--validate", "--fail-on-warn", stdout=io.StringIO())
    schema = api_for(alice).get("/api/schema/", {"format": "json"}).json()

    assert {"/api/v1/pipelines/", "/api/v1/pipelines/{id}/", "/api/v1/pipelines/{id}/reorder-stages/",
            "/api/v1/stages/", "/api/v1/stages/{id}/", "/api/v1/lost-reasons/", "/api/v1/lost-reasons/{id}/",
            "/api/v1/deals/", "/api/v1/deals/{id}/", "/api/v1/deals/{id}/move-stage/",
            "/api/v1/deals/{id}/stage-history/", "/api/v1/deals/{id}/history/"} <= set(schema["paths"])
    move = schema["paths"]["/api/v1/deals/{id}/move-stage/"]["post"]
    assert set(move["responses"]) >= {"200", "400", "401", "403", "404"}
    example = move["responses"]["400"]["content"]["application/json"]["examples"]["ExitCriteriaNotMet"]["value"]
    assert example == {"errors": {"stage": ["Fill in Amount before moving this deal on."],
                                  "amount": ["Required before a deal leaves “Qualified”."]}}
    params = {p["name"] for p in schema["paths"]["/api/v1/deals/"]["get"]["parameters"]}
    assert {"pipeline", "stage", "owner", "team", "status", "stale", "close_from", "close_to", "amount_min",
            "amount_max", "contact", "company", "search", "updated_since", "cursor", "ordering"} <= params
    delete = schema["paths"]["/api/v1/stages/{id}/"]["delete"]
    assert "move_to" in {p["name"] for p in delete["parameters"]}
