"""The pipeline settings pages: admins create, rename, make default and delete pipelines, and add, edit,
reorder and delete stages in the browser; everyone else gets 403; bad input is a 422 with the error next
to the field and nothing changed; the pages keep a fixed number of queries."""

import re
from datetime import timedelta

import pytest
from django.urls import reverse

from contacts.models import CustomFieldDefinition, Entity
from pipeline import services
from pipeline.models import Deal, Pipeline, Stage

pytestmark = pytest.mark.django_db


def text(response) -> str:
    return response.content.decode()


def field_error(response, field_id: str) -> str:
    """The error text rendered right under the input with id ``id_<field_id>`` (empty when there is none)."""
    match = re.search(rf'<ul class="errorlist" id="id_{re.escape(field_id)}_error">(.*?)</ul>', text(response), re.S)
    return re.sub(r"<[^>]+>", "", match.group(1)).strip() if match else ""


def flash_error(response) -> str:
    match = re.search(r'<div class="flash flash-error" role="alert"[^>]*>(.*?)</div>', text(response), re.S)
    return re.sub(r"<[^>]+>", "", match.group(1)).strip() if match else ""


def stage_rows(response) -> list[str]:
    """The stage names of the settings table, in page order."""
    return re.findall(r'<a class="stage-name" href="[^"]+">([^<]+)</a>', text(response))


def order(pipeline: Pipeline) -> list[str]:
    return list(pipeline.stages.order_by("order").values_list("name", flat=True))


def snapshot(pipeline: Pipeline) -> list[tuple]:
    return list(pipeline.stages.order_by("pk").values_list(
        "pk", "name", "order", "kind", "probability", "rotting_days", "exit_criteria", "allow_skip"))


def stage_post(**overrides) -> dict:
    data = {"name": "Demo", "kind": "open", "probability": "50", "rotting_days": "14", "allow_skip": "on"}
    data.update(overrides)
    return data


def url(name: str, *args) -> str:
    return reverse(name, args=args)


@pytest.fixture
def new_business(db):
    return Pipeline.objects.get(name="New business")


# --- who may -------------------------------------------------------------------------------------


@pytest.mark.parametrize("persona", ["alice", "mona", "integ"])
def test_only_admins_reach_the_settings_pages(request, client_for, persona, pipe, stages, make_deal, alice):
    make_deal(alice, stage=stages["Proposal"])
    client = client_for(request.getfixturevalue(persona))
    before = (list(Pipeline.objects.values_list("pk", "name", "is_default")), snapshot(pipe))
    lead, proposal = stages["Lead"].pk, stages["Proposal"].pk
    gets = [url("pipeline-settings"), url("pipeline-settings-detail", pipe.pk),
            url("pipeline-settings-stage-edit", pipe.pk, lead), url("pipeline-settings-stage-delete", pipe.pk, lead)]
    posts = [
        (url("pipeline-settings"), {"name": "Mine"}),
        (url("pipeline-settings-rename", pipe.pk), {f"rename-{pipe.pk}-name": "Mine"}),
        (url("pipeline-settings-default", pipe.pk), {}),
        (url("pipeline-settings-delete", pipe.pk), {}),
        (url("pipeline-settings-stage-create", pipe.pk), stage_post()),
        (url("pipeline-settings-stage-edit", pipe.pk, lead), stage_post(name="Mine")),
        (url("pipeline-settings-stage-move", pipe.pk, proposal), {"direction": "up"}),
        (url("pipeline-settings-stage-reorder", pipe.pk), {"stage": [s.pk for s in reversed(stages.values())]}),
        (url("pipeline-settings-stage-delete", pipe.pk, proposal), {"move_to": stages["Lead"].pk}),
    ]
    for address in gets:
        assert client.get(address).status_code == 403, address
    for address, data in posts:
        assert client.post(address, data).status_code == 403, address
    assert (list(Pipeline.objects.values_list("pk", "name", "is_default")), snapshot(pipe)) == before


def test_signed_out_people_are_sent_to_sign_in(client, pipe):
    response = client.get(url("pipeline-settings-detail", pipe.pk))
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_unknown_pipelines_and_stages_of_another_pipeline_are_404(client_for, sam, pipe, stages, new_business):
    client = client_for(sam)
    assert client.get(url("pipeline-settings-detail", 999999)).status_code == 404
    foreign = new_business.stages.first().pk
    assert client.get(url("pipeline-settings-stage-edit", pipe.pk, foreign)).status_code == 404
    assert client.post(url("pipeline-settings-stage-delete", pipe.pk, foreign)).status_code == 404
    assert client.post(url("pipeline-settings-stage-move", pipe.pk, foreign), {"direction": "up"}).status_code == 422
    assert client.get(url("pipeline-settings-stage-edit", pipe.pk, stages["Lead"].pk)).status_code == 200


def test_pages_only_answer_the_methods_they_serve(client_for, sam, pipe, stages):
    client = client_for(sam)
    for name, args in [("pipeline-settings-rename", [pipe.pk]), ("pipeline-settings-default", [pipe.pk]),
                       ("pipeline-settings-delete", [pipe.pk]), ("pipeline-settings-stage-create", [pipe.pk]),
                       ("pipeline-settings-stage-reorder", [pipe.pk]),
                       ("pipeline-settings-stage-move", [pipe.pk, stages["Lead"].pk])]:
        assert client.get(url(name, *args)).status_code == 405, name
    assert Pipeline.objects.filter(pk=pipe.pk).exists()


# --- the pipelines page --------------------------------------------------------------------------


def test_the_pipelines_page_lists_them_with_the_default_marked_and_counts(client_for, sam, alice, pipe, stages,
                                                                          make_deal, new_business):
    make_deal(alice, stage=stages["Lead"])
    make_deal(alice, stage=stages["Proposal"])
    response = client_for(sam).get(url("pipeline-settings"))
    assert response.status_code == 200
    html = text(response)
    rows = re.findall(r'<tr id="pipeline-(\d+)">(.*?)</tr>', html, re.S)
    assert [int(pk) for pk, _row in rows] == [new_business.pk, pipe.pk]
    cells = {int(pk): re.findall(r'<td class="cell-num">(\d+)</td>', row) for pk, row in rows}
    assert cells == {new_business.pk: ["7", "0"], pipe.pk: ["6", "2"]}
    assert 'data-testid="default-badge"' in dict(rows)[str(new_business.pk)]
    assert 'data-testid="default-badge"' not in dict(rows)[str(pipe.pk)]
    assert reverse("admin:pipeline_lostreason_changelist") in html


def test_the_pipelines_page_keeps_its_query_count(client_for, sam, alice, pipe, stages, make_deal,
                                                   django_assert_num_queries):
    client = client_for(sam)
    client.get(url("pipeline-settings"))
    # session, user, unread notifications, pipelines with their stage and deal counts
    with django_assert_num_queries(4):
        client.get(url("pipeline-settings"))
    for n in range(3):
        services.pipeline_create(actor=sam, name=f"Extra {n}")
        make_deal(alice, stage=stages["Lead"])
    with django_assert_num_queries(4):
        assert client.get(url("pipeline-settings")).status_code == 200


def test_creating_a_pipeline_gives_it_the_default_stages(client_for, sam):
    response = client_for(sam).post(url("pipeline-settings"), {"name": "  Yenileme   satışları "})
    pipeline = Pipeline.objects.get(name="Yenileme satışları")
    assert response.status_code == 302
    assert response["Location"] == url("pipeline-settings-detail", pipeline.pk)
    assert order(pipeline) == ["Qualified", "Contact made", "Meeting / demo", "Proposal sent", "Negotiation", "Won",
                               "Lost"]
    assert not pipeline.is_default
    page = client_for(sam).get(response["Location"])
    assert "Created “Yenileme satışları” with the default stages" in text(page)
    assert stage_rows(page) == order(pipeline)


@pytest.mark.parametrize("name, message", [
    ("", "This field is required."),
    ("   ", "This field is required."),
    ("ş" * 101, "Ensure this value has at most 100 characters (it has 101)."),
    ("x" * 100_000, "Ensure this value has at most 100 characters (it has 100000)."),
    ("NEW BUSİNESS", "There is already a pipeline called “NEW BUSİNESS”."),
    ("nul\x00byte", "Null characters are not allowed."),
])
def test_a_bad_pipeline_name_is_a_422_with_the_error_next_to_the_field(client_for, sam, name, message):
    before = list(Pipeline.objects.values_list("pk", "name"))
    response = client_for(sam).post(url("pipeline-settings"), {"name": name})
    assert response.status_code == 422
    assert field_error(response, "name") == message
    assert list(Pipeline.objects.values_list("pk", "name")) == before


def test_renaming_a_pipeline(client_for, sam, pipe):
    client = client_for(sam)
    response = client.post(url("pipeline-settings-rename", pipe.pk), {f"rename-{pipe.pk}-name": " İş  geliştirme "})
    assert response.status_code == 302 and response["Location"] == url("pipeline-settings")
    pipe.refresh_from_db()
    assert pipe.name == "İş geliştirme"
    assert "Renamed to “İş geliştirme”." in text(client.get(response["Location"]))


def test_a_bad_rename_reopens_that_row_with_the_error(client_for, sam, pipe):
    response = client_for(sam).post(url("pipeline-settings-rename", pipe.pk), {f"rename-{pipe.pk}-name": "new business"})
    assert response.status_code == 422
    assert field_error(response, f"rename-{pipe.pk}-name") == "There is already a pipeline called “new business”."
    assert re.search(rf'<tr id="pipeline-{pipe.pk}">.*?<details class="rename" open>', text(response), re.S)
    pipe.refresh_from_db()
    assert pipe.name == "Sales"
    response = client_for(sam).post(url("pipeline-settings-rename", pipe.pk), {})
    assert response.status_code == 422
    assert field_error(response, f"rename-{pipe.pk}-name") == "This field is required."


def test_making_a_pipeline_the_default(client_for, sam, pipe, new_business):
    response = client_for(sam).post(url("pipeline-settings-default", pipe.pk))
    assert response.status_code == 302
    assert list(Pipeline.objects.filter(is_default=True)) == [pipe]
    # Again: nothing changes.
    client_for(sam).post(url("pipeline-settings-default", pipe.pk))
    assert list(Pipeline.objects.filter(is_default=True)) == [pipe]


def test_deleting_a_pipeline_and_the_refusals(client_for, sam, alice, pipe, stages, make_deal, new_business):
    client = client_for(sam)
    make_deal(alice, stage=stages["Lead"])
    response = client.post(url("pipeline-settings-delete", pipe.pk))
    assert response.status_code == 422
    assert flash_error(response) == "“Sales” still holds 1 deal; it cannot be deleted."
    response = client.post(url("pipeline-settings-delete", new_business.pk))
    assert response.status_code == 422
    assert flash_error(response) == "Make another pipeline the default before deleting this one."
    assert Pipeline.objects.count() == 2
    empty = services.pipeline_create(actor=sam, name="Empty")
    response = client.post(url("pipeline-settings-delete", empty.pk))
    assert response.status_code == 302
    assert not Pipeline.objects.filter(pk=empty.pk).exists()
    assert "Deleted “Empty”." in text(client.get(response["Location"]))


# --- a pipeline's stages -------------------------------------------------------------------------


def test_the_stages_page_shows_each_stage_in_order_with_its_settings(client_for, sam, alice, pipe, stages,
                                                                     make_deal, price):
    CustomFieldDefinition.objects.create(entity=Entity.DEAL, key="po_number", label="PO numarası",
                                         field_type=CustomFieldDefinition.FieldType.TEXT)
    services.stage_update(actor=sam, stage=stages["Negotiation"], data={
        "exit_criteria": ["contact", "custom_fields.po_number"]})
    for _ in range(12):
        make_deal(alice, stage=stages["Proposal"])
    lost = make_deal(alice, stage=stages["Lead"])
    services.deal_move(actor=alice, deal=lost, stage=stages["Lost"], lost_reason=price)
    response = client_for(sam).get(url("pipeline-settings-detail", pipe.pk))
    assert response.status_code == 200
    html = text(response)
    assert stage_rows(response) == ["Lead", "Qualified", "Proposal", "Negotiation", "Won", "Lost"]
    rows = dict(re.findall(r'<tr id="stage-(\d+)">(.*?)</tr>', html, re.S))

    def cells(name):
        row = rows[str(stages[name].pk)]
        return [re.sub(r"<[^>]+>", " ", c).split() for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]

    # drag handle, name, kind, probability, rotting limit, exit criteria, skipping, deals, actions
    assert cells("Proposal")[1:8] == [["Proposal"], ["Open"], ["60%"], ["90", "days"],
                                      ["Amount", "Expected", "close", "date"], ["Next", "stage", "only"], ["12"]]
    assert cells("Negotiation")[1:8] == [["Negotiation"], ["Open"], ["80%"], ["30", "days"],
                                         ["Contact", "PO", "numarası"], ["Allowed"], ["0"]]
    assert cells("Lost")[1:8] == [["Lost"], ["Lost"], ["0%"], ["90", "days"], ["—"], ["Allowed"], ["1"]]
    assert reverse("admin:pipeline_lostreason_changelist") in html
    # The add-stage form offers every criterion, the deal custom field included.
    assert re.findall(r'name="exit_criteria" value="([^"]+)"', html) == [
        "amount", "expected_close_date", "contact", "company", "lead_source", "owner", "custom_fields.po_number"]


def test_the_stages_page_keeps_its_query_count(client_for, sam, alice, pipe, stages, make_deal,
                                               django_assert_num_queries):
    client = client_for(sam)
    address = url("pipeline-settings-detail", pipe.pk)
    client.get(address)
    # session, user, pipeline, stages with deal counts, deal custom fields (criteria), unread notifications
    with django_assert_num_queries(6):
        client.get(address)
    for n in range(3):
        services.stage_create(actor=sam, pipeline=pipe, data={"name": f"Extra {n}"})
        make_deal(alice, stage=stages["Negotiation"])
    with django_assert_num_queries(6):
        assert client.get(address).status_code == 200


def test_adding_a_stage(client_for, sam, pipe):
    CustomFieldDefinition.objects.create(entity=Entity.DEAL, key="po_number", label="PO number",
                                         field_type=CustomFieldDefinition.FieldType.TEXT)
    response = client_for(sam).post(url("pipeline-settings-stage-create", pipe.pk), stage_post(
        name="  Sözleşme  imza ", exit_criteria=["contact", "custom_fields.po_number"]))
    stage = pipe.stages.get(name="Sözleşme imza")
    assert response.status_code == 302
    assert response["Location"] == url("pipeline-settings-detail", pipe.pk) + f"#stage-{stage.pk}"
    assert (stage.kind, stage.probability, stage.rotting_days, stage.allow_skip, stage.exit_criteria) == (
        "open", 50, 14, True, ["contact", "custom_fields.po_number"])
    assert order(pipe) == ["Lead", "Qualified", "Proposal", "Negotiation", "Sözleşme imza", "Won", "Lost"]
    # An unticked box means skipping is off.
    client_for(sam).post(url("pipeline-settings-stage-create", pipe.pk), stage_post(name="Strict", allow_skip=""))
    assert pipe.stages.get(name="Strict").allow_skip is False


@pytest.mark.parametrize("overrides, field, message", [
    ({"name": ""}, "name", "This field is required."),
    ({"name": "ğ" * 5000}, "name", "Ensure this value has at most 100 characters (it has 5000)."),
    ({"name": "PROPOSAL"}, "name", "“Sales” already has a stage called “PROPOSAL”."),
    ({"kind": "maybe"}, "kind", "Select a valid choice. maybe is not one of the available choices."),
    ({"probability": "101"}, "probability", "Ensure this value is less than or equal to 100."),
    ({"probability": "-1"}, "probability", "Ensure this value is greater than or equal to 0."),
    ({"probability": "9" * 5000}, "probability", "Enter a whole number."),
    ({"probability": "half"}, "probability", "Enter a whole number."),
    ({"rotting_days": "0"}, "rotting_days", "Ensure this value is greater than or equal to 1."),
    ({"rotting_days": "99999999999999999999"}, "rotting_days", "Ensure this value is less than or equal to 3650."),
    ({"exit_criteria": ["shoe_size"]}, "exit_criteria",
     "Select a valid choice. shoe_size is not one of the available choices."),
])
def test_a_bad_new_stage_is_a_422_with_the_error_next_to_the_field(client_for, sam, pipe, overrides, field, message):
    before = snapshot(pipe)
    response = client_for(sam).post(url("pipeline-settings-stage-create", pipe.pk), stage_post(**overrides))
    assert response.status_code == 422
    assert field_error(response, field) == message
    assert "Please correct the fields marked below; nothing was saved." in text(response)
    assert snapshot(pipe) == before


def test_editing_a_stage_shows_its_values_and_saves_them(client_for, sam, alice, pipe, stages, make_deal):
    client = client_for(sam)
    address = url("pipeline-settings-stage-edit", pipe.pk, stages["Proposal"].pk)
    page = text(client.get(address))
    assert 'name="name" value="Proposal"' in page
    assert re.search(r'value="amount"[^>]*checked', page) and re.search(r'value="expected_close_date"[^>]*checked', page)
    assert not re.search(r'value="contact"[^>]*checked', page)
    assert not re.search(r'name="allow_skip"[^>]*checked', page)
    deal = make_deal(alice, stage=stages["Proposal"])
    response = client.post(address, stage_post(name="Teklif", probability="65", rotting_days="10",
                                               exit_criteria=["amount"], allow_skip="on"))
    assert response.status_code == 302
    stage = Stage.objects.get(pk=stages["Proposal"].pk)
    assert (stage.name, stage.probability, stage.rotting_days, stage.exit_criteria, stage.allow_skip, stage.order) == (
        "Teklif", 65, 10, ["amount"], True, 3)
    deal.refresh_from_db()
    assert deal.rots_at == deal.stage_entered_at + timedelta(days=10)


def test_changing_the_kind_of_a_stage_with_deals_shows_the_service_message(client_for, sam, alice, pipe, stages,
                                                                          make_deal):
    make_deal(alice, stage=stages["Negotiation"])
    before = snapshot(pipe)
    response = client_for(sam).post(url("pipeline-settings-stage-edit", pipe.pk, stages["Negotiation"].pk),
                                    stage_post(name="Negotiation", kind="won"))
    assert response.status_code == 422
    assert field_error(response, "kind") == "The stage holds deals; move them before changing its kind."
    assert "This stage holds 1 deal: its kind cannot change until it is moved." in text(response)
    assert snapshot(pipe) == before


def test_the_last_won_stage_keeps_its_kind(client_for, sam, pipe, stages):
    before = snapshot(pipe)
    response = client_for(sam).post(url("pipeline-settings-stage-edit", pipe.pk, stages["Won"].pk),
                                    stage_post(name="Won", kind="open"))
    assert response.status_code == 422
    assert flash_error(response) == "A pipeline needs at least one stage of each kind; missing: Won."
    assert snapshot(pipe) == before


# --- reordering ----------------------------------------------------------------------------------


def test_the_arrows_move_a_stage_within_its_group(client_for, sam, pipe, stages):
    client = client_for(sam)
    move = url("pipeline-settings-stage-move", pipe.pk, stages["Proposal"].pk)
    response = client.post(move, {"direction": "up"})
    assert response.status_code == 302
    assert response["Location"] == url("pipeline-settings-detail", pipe.pk) + f"#stage-{stages['Proposal'].pk}"
    assert order(pipe) == ["Lead", "Proposal", "Qualified", "Negotiation", "Won", "Lost"]
    client.post(url("pipeline-settings-stage-move", pipe.pk, stages["Won"].pk), {"direction": "down"})
    assert order(pipe) == ["Lead", "Proposal", "Qualified", "Negotiation", "Lost", "Won"]
    # The first stage cannot go further up.
    client.post(url("pipeline-settings-stage-move", pipe.pk, stages["Lead"].pk), {"direction": "up"})
    assert order(pipe) == ["Lead", "Proposal", "Qualified", "Negotiation", "Lost", "Won"]
    page = text(client.get(url("pipeline-settings-detail", pipe.pk)))
    disabled = r'stages/{pk}/move/" name="direction" value="{direction}"\s+title="[^"]*" disabled>'
    assert re.search(disabled.format(pk=stages["Lead"].pk, direction="up"), page)
    assert re.search(disabled.format(pk=stages["Negotiation"].pk, direction="down"), page)
    assert not re.search(disabled.format(pk=stages["Lead"].pk, direction="down"), page)


def test_an_open_stage_cannot_go_below_the_won_and_lost_stages(client_for, sam, pipe, stages):
    before = snapshot(pipe)
    response = client_for(sam).post(url("pipeline-settings-stage-move", pipe.pk, stages["Negotiation"].pk),
                                    {"direction": "down"})
    assert response.status_code == 422
    assert flash_error(response) == "Won and lost stages come after the open stages."
    response = client_for(sam).post(url("pipeline-settings-stage-move", pipe.pk, stages["Lead"].pk),
                                    {"direction": "sideways"})
    assert response.status_code == 422
    assert snapshot(pipe) == before


def test_dragging_saves_the_whole_order_and_returns_the_table(client_for, sam, pipe, stages):
    client = client_for(sam)
    ids = [stages[n].pk for n in ["Negotiation", "Lead", "Qualified", "Proposal", "Lost", "Won"]]
    response = client.post(url("pipeline-settings-stage-reorder", pipe.pk), {"stage": ids}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert text(response).startswith('<form id="stage-order"')
    assert stage_rows(response) == ["Negotiation", "Lead", "Qualified", "Proposal", "Lost", "Won"]
    assert order(pipe) == ["Negotiation", "Lead", "Qualified", "Proposal", "Lost", "Won"]
    # Without htmx (a plain form post) the page is reloaded.
    response = client.post(url("pipeline-settings-stage-reorder", pipe.pk), {"stage": list(reversed(ids[:4])) + ids[4:]})
    assert response.status_code == 302
    assert order(pipe) == ["Proposal", "Qualified", "Lead", "Negotiation", "Lost", "Won"]


def test_a_refused_order_returns_the_saved_table_with_the_message(client_for, sam, pipe, stages, new_business):
    client = client_for(sam)
    ids = [s.pk for s in stages.values()]
    foreign = new_business.stages.first().pk
    before = snapshot(pipe)
    for stage_ids, message in [
        (ids[:-1], "List every stage of “Sales” exactly once."),
        (ids + [foreign], "List every stage of “Sales” exactly once."),
        (ids[:-1] + [foreign], "List every stage of “Sales” exactly once."),
        (ids[:-1] + ["<script>"], "List every stage of “Sales” exactly once."),
        ([], "List every stage of “Sales” exactly once."),
        ([ids[4], *ids[:4], ids[5]], "Won and lost stages come after the open stages."),
    ]:
        response = client.post(url("pipeline-settings-stage-reorder", pipe.pk), {"stage": stage_ids},
                               HTTP_HX_REQUEST="true")
        assert response.status_code == 422
        assert flash_error(response) == message
        assert stage_rows(response) == ["Lead", "Qualified", "Proposal", "Negotiation", "Won", "Lost"]
        response = client.post(url("pipeline-settings-stage-reorder", pipe.pk), {"stage": stage_ids})
        assert response.status_code == 422 and flash_error(response) == message
    assert snapshot(pipe) == before


# --- deleting stages -----------------------------------------------------------------------------


def test_deleting_an_empty_stage(client_for, sam, pipe, stages):
    client = client_for(sam)
    address = url("pipeline-settings-stage-delete", pipe.pk, stages["Qualified"].pk)
    page = client.get(address)
    assert "“Qualified” holds no deals. Delete it?" in text(page)
    assert 'name="move_to"' not in text(page)
    response = client.post(address)
    assert response.status_code == 302
    assert order(pipe) == ["Lead", "Proposal", "Negotiation", "Won", "Lost"]
    assert "Deleted “Qualified”." in text(client.get(response["Location"]))


def test_a_stage_with_deals_asks_where_they_go_among_stages_of_its_kind(client_for, sam, alice, pipe, stages,
                                                                         make_deal):
    for _ in range(12):
        make_deal(alice, stage=stages["Proposal"])
    client = client_for(sam)
    address = url("pipeline-settings-stage-delete", pipe.pk, stages["Proposal"].pk)
    page = client.get(address)
    assert page.status_code == 200
    assert "“Proposal” still holds 12 deals." in text(page)
    options = re.findall(r'<option value="(\d*)"[^>]*>([^<]+)</option>', text(page))
    assert options == [("", "Choose a stage"), (str(stages["Lead"].pk), "Lead"),
                       (str(stages["Qualified"].pk), "Qualified"), (str(stages["Negotiation"].pk), "Negotiation")]
    before = snapshot(pipe)
    response = client.post(address, {"move_to": ""})
    assert response.status_code == 422
    assert field_error(response, "move_to") == "Choose where its deals go."
    for forged in [stages["Won"].pk, stages["Proposal"].pk, 999999, "x"]:
        response = client.post(address, {"move_to": forged})
        assert response.status_code == 422
        assert field_error(response, "move_to") == (
            "Select a valid choice. That choice is not one of the available choices.")
    assert snapshot(pipe) == before
    response = client.post(address, {"move_to": stages["Negotiation"].pk})
    assert response.status_code == 302
    assert Deal.objects.filter(stage=stages["Negotiation"]).count() == 12
    assert not Stage.objects.filter(pk=stages["Proposal"].pk).exists()
    assert "Deleted “Proposal”; its deals are now in “Negotiation”." in text(client.get(response["Location"]))
    deal = Deal.objects.filter(stage=stages["Negotiation"]).first()
    change = deal.stage_changes.order_by("-changed_at", "-id").first()
    assert (change.from_stage_name, change.to_stage_name, change.actor) == ("Proposal", "Negotiation", sam)


def test_a_stage_whose_deals_have_nowhere_to_go_says_so(client_for, sam, alice, pipe, stages, make_deal):
    deal = make_deal(alice, stage=stages["Negotiation"], amount=100)
    services.deal_move(actor=alice, deal=deal, stage=stages["Won"])
    client = client_for(sam)
    address = url("pipeline-settings-stage-delete", pipe.pk, stages["Won"].pk)
    page = text(client.get(address))
    assert "“Won” still holds 1 deal." in page
    assert "“Sales” has no other won stage to move them to. Add one first, or move the deals yourself." in page
    assert 'name="move_to"' not in page
    response = client.post(address, {"move_to": ""})
    assert response.status_code == 422
    assert Stage.objects.filter(pk=stages["Won"].pk).exists()


def test_the_last_lost_stage_cannot_be_deleted(client_for, sam, pipe, stages):
    before = snapshot(pipe)
    response = client_for(sam).post(url("pipeline-settings-stage-delete", pipe.pk, stages["Lost"].pk))
    assert response.status_code == 422
    assert flash_error(response) == "A pipeline needs at least one stage of each kind; missing: Lost."
    assert snapshot(pipe) == before
