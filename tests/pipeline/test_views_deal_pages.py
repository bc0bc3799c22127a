"""The deal page (stage bar, move with fields filled in place, histories, timeline), the create/edit form,
who may open and change what, and the Deals sections of the contact and company pages."""

import re
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from contacts import services as contact_services
from contacts.models import Activity, CustomFieldDefinition, Entity, FieldSetting
from crm_okr.models import FieldChange
from pipeline import services
from pipeline.models import Deal, StageChange
from tests.factories import ContactFactory, DealFactory, LeadSourceFactory

pytestmark = pytest.mark.django_db


def text(response) -> str:
    return response.content.decode()


def field_error(response, name: str) -> str:
    """The error text rendered right under the input ``name`` (empty when there is none)."""
    match = re.search(rf'<ul class="errorlist" id="id_{name}_error">(.*?)</ul>', text(response), re.S)
    return re.sub(r"<[^>]+>", "", match.group(1)).strip() if match else ""


def refusal(response) -> str:
    match = re.search(r'data-testid="move-refused">(.*?)</div>\s*</div>|data-testid="move-refused">(.*?)</div>',
                      text(response), re.S)
    return " ".join(re.sub(r"<[^>]+>", " ", match.group(0)).split()) if match else ""


def fill_inputs(response) -> list[str]:
    """The names of the inputs the refused move asks to fill in place."""
    match = re.search(r'<fieldset class="fill-in-place".*?</fieldset>', text(response), re.S)
    if not match:
        return []
    return [n for n in re.findall(r'<(?:input|select|textarea)[^>]* name="([^"]+)"', match.group(0))
            if not n.endswith("_q")]


def snapshot(deal: Deal) -> tuple:
    deal.refresh_from_db()
    return (deal.stage_id, deal.status, deal.amount, deal.expected_close_date, deal.contact_id, deal.updated_at,
            StageChange.objects.filter(deal=deal).count(), FieldChange.objects.count())


def deal_post(**overrides) -> dict:
    data = {"name": "Filo kiralama", "amount": "", "currency": "TRY", "expected_close_date": "", "contact": "",
            "company": "", "lead_source": ""}
    data.update(overrides)
    return data


@pytest.fixture
def ayse(alice):
    company = contact_services.company_create(actor=alice, data={"name": "Acme Makina"})
    return contact_services.contact_create(actor=alice, data={
        "first_name": "Ayşe", "last_name": "Yılmaz", "company": company, "lead_source": LeadSourceFactory(name="Fuar"),
    })


@pytest.fixture
def deal(alice, make_deal, stages, ayse):
    """Alice's deal in Lead, with no amount or close date yet."""
    return make_deal(alice, name="Filo kiralama", stage=stages["Lead"], contact=ayse)


# --- the deal page -------------------------------------------------------------------------------


def test_deal_page_shows_details_stage_bar_and_when_it_entered_the_stage(client_for, alice, deal, stages, ayse):
    response = client_for(alice).get(f"/deals/{deal.pk}/")
    html = text(response)
    bar = re.search(r'<ol class="stagebar".*?</ol>', html, re.S).group(0)

    assert response.status_code == 200
    assert "<h1>Filo kiralama</h1>" in html
    assert "Ayşe Yılmaz" in html and "Acme Makina" in html and "Fuar" in html
    assert [n.strip() for n in re.findall(r'<span class="stagebar-name">([^<]+)</span>', bar)] == [
        "Lead", "Qualified", "Proposal", "Negotiation", "Won", "Lost"]
    assert re.search(r'is-current kind-open" aria-current="step">\s*<span class="stagebar-name">Lead<', bar)
    assert "In this stage since" in html and "(0 days)" in html
    assert f'action="/deals/{deal.pk}/stage/"' in html
    # The move form offers the next stage first, and never the current one.
    move_select = re.search(r'<select name="stage".*?</select>', html, re.S).group(0)
    assert f'<option value="{stages["Qualified"].pk}" selected data-kind="open">Qualified (30%)</option>' in move_select
    assert f'value="{stages["Lead"].pk}"' not in move_select
    assert f'href="/deals/{deal.pk}/edit/"' in html


def test_stale_deal_page_says_since_when(client_for, alice, stages):
    entered = timezone.now() - timedelta(days=45)
    stale = DealFactory(name="Stuck", stage=stages["Negotiation"], owner=alice, created_at=entered)

    html = text(client_for(alice).get(f"/deals/{stale.pk}/"))

    assert ">Stale<" in html
    # Negotiation rots after 30 days: stale since 15 days ago.
    assert f"stale since {(entered + timedelta(days=30)).astimezone(timezone.get_current_timezone()):%-d %b %Y}" in html
    assert "(45 days)" in html


def test_exit_criteria_of_the_current_stage_are_listed_filled_or_missing(client_for, alice, make_deal, stages):
    proposal = make_deal(alice, name="P", stage=stages["Qualified"], amount=Decimal("100"))
    services.deal_move(actor=alice, deal=proposal, stage=stages["Proposal"])

    html = text(client_for(alice).get(f"/deals/{proposal.pk}/"))

    assert "To move on from “Proposal”:" in html
    assert re.search(r'need is-filled">✓ Amount<', html)
    assert re.search(r'need is-missing">✗ Expected close date<', html)


def test_stage_history_lists_from_to_when_who_and_time_in_stage(client_for, alice, bob, mona, make_deal, stages):
    moved = make_deal(alice, name="Moved", stage=stages["Lead"], amount=Decimal("10"))
    services.deal_move(actor=mona, deal=moved, stage=stages["Qualified"])
    StageChange.objects.filter(deal=moved, direction="created").update(changed_at=timezone.now() - timedelta(days=3))
    StageChange.objects.filter(deal=moved, direction="forward").update(changed_at=timezone.now() - timedelta(hours=5))

    html = text(client_for(alice).get(f"/deals/{moved.pk}/"))
    table = re.search(r'<table class="table table-compact stage-history">.*?</table>', html, re.S).group(0)
    rows = [" ".join(re.sub(r"<[^>]+>", " ", r).split()) for r in re.findall(r"<tr.*?</tr>", table, re.S)[1:]]

    assert rows[0].startswith("— Lead Created") and str(alice) in rows[0] and rows[0].endswith("2 days, 19 hours")
    assert rows[1].startswith("Lead Qualified Forward") and str(mona) in rows[1]
    assert rows[1].endswith("5 hours (so far)")


def test_field_history_shows_what_changed(client_for, alice, deal):
    services.deal_update(actor=alice, deal=deal, data={"amount": Decimal("2500.00")})

    html = text(client_for(alice).get(f"/deals/{deal.pk}/"))

    assert '<span class="history-field">amount</span> <del>—</del> → <ins>2500.00</ins>' in html


def test_timeline_lists_the_deals_activities_and_tasks(client_for, alice, deal):
    contact_services.activity_log(actor=alice, kind="call", subject="Fiyat konuşuldu", deal=deal)
    contact_services.activity_log(actor=alice, kind="task", subject="Teklif gönder", deal=deal,
                                  due_at=timezone.now() + timedelta(days=1))

    html = text(client_for(alice).get(f"/deals/{deal.pk}/"))

    assert "Fiyat konuşuldu" in html and "Teklif gönder" in html
    assert f'action="/deals/{deal.pk}/activities/"' in html


def test_a_task_on_a_deal_without_contact_or_company_renders_and_can_be_ticked(client_for, alice, make_deal):
    bare = make_deal(alice, name="Bare")
    task = contact_services.activity_log(actor=alice, kind="task", subject="Ara", deal=bare,
                                         due_at=timezone.now() + timedelta(days=1))
    client = client_for(alice)

    page = client.get(f"/deals/{bare.pk}/")
    toggled = client.post(f"/tasks/{task.pk}/toggle/", {"done": "1"}, HTTP_HX_REQUEST="true")

    assert page.status_code == 200
    assert f'name="next" value="/deals/{bare.pk}/"' in text(page)
    assert toggled.status_code == 200
    task.refresh_from_db()
    assert task.done_at is not None


# query count: session, user, deal (joined), notifications, rules (field settings, custom fields), stages,
# stage history, field history, timeline, lost reasons, activity form's assignees.
DEAL_PAGE_QUERIES = 12


@pytest.mark.parametrize("extra", [1, 15])
def test_deal_page_query_count_does_not_grow_with_history_or_timeline(
    client_for, alice, make_deal, stages, extra, django_assert_num_queries
):
    busy = make_deal(alice, name="Busy", stage=stages["Lead"], amount=Decimal("1"))
    for n in range(extra):
        services.deal_update(actor=alice, deal=busy, data={"amount": Decimal(n + 2)})
        contact_services.activity_log(actor=alice, kind="note", subject=f"Note {n}", deal=busy)
        contact_services.activity_log(actor=alice, kind="task", subject=f"Task {n}", deal=busy,
                                      due_at=timezone.now() + timedelta(days=1))
        services.deal_move(actor=alice, deal=busy, stage=stages["Qualified" if n % 2 == 0 else "Lead"])
    client = client_for(alice)

    with django_assert_num_queries(DEAL_PAGE_QUERIES):
        response = client.get(f"/deals/{busy.pk}/")

    assert response.status_code == 200


# --- who may open and change what ----------------------------------------------------------------


def deal_urls(deal, stages) -> dict:
    pk = deal.pk
    return {
        "detail": ("get", f"/deals/{pk}/", {}),
        "edit": ("get", f"/deals/{pk}/edit/", {}),
        "edit-post": ("post", f"/deals/{pk}/edit/", deal_post(name="Hacked", owner=deal.owner_id)),
        "move": ("post", f"/deals/{pk}/stage/", {"stage": stages["Lost"].pk, "lost_reason": 1}),
        "log": ("post", f"/deals/{pk}/activities/", {"kind": "note", "subject": "hi"}),
    }


EXPECTED = {
    "alice": {"detail": 200, "edit": 200, "edit-post": 302, "move": 302, "log": 302},
    "bob": {"detail": 200, "edit": 403, "edit-post": 403, "move": 403, "log": 302},
    "charlie": {"detail": 404, "edit": 404, "edit-post": 404, "move": 404, "log": 404},
    "mona": {"detail": 200, "edit": 200, "edit-post": 302, "move": 302, "log": 302},
    "sam": {"detail": 200, "edit": 200, "edit-post": 302, "move": 302, "log": 302},
}


@pytest.mark.parametrize("persona", list(EXPECTED))
@pytest.mark.parametrize("action", ["detail", "edit", "edit-post", "move", "log"])
def test_who_may_open_and_change_a_deal(request, client_for, deal, stages, persona, action):
    user = request.getfixturevalue(persona)
    method, url, data = deal_urls(deal, stages)[action]

    response = getattr(client_for(user), method)(url, data)

    assert response.status_code == EXPECTED[persona][action]


def test_refused_writes_change_nothing(client_for, bob, charlie, deal, stages):
    before = snapshot(deal)
    for user in (bob, charlie):
        client = client_for(user)
        client.post(f"/deals/{deal.pk}/edit/", deal_post(name="Hacked", amount="1"))
        client.post(f"/deals/{deal.pk}/stage/", {"stage": stages["Qualified"].pk})

    assert snapshot(deal) == before
    assert deal.name == "Filo kiralama"
    assert not Activity.objects.filter(deal=deal).exists()


def test_teammate_sees_the_page_without_edit_or_move_controls_but_may_log(client_for, bob, deal):
    html = text(client_for(bob).get(f"/deals/{deal.pk}/"))

    assert "Filo kiralama" in html
    assert f"/deals/{deal.pk}/edit/" not in html
    assert f"/deals/{deal.pk}/stage/" not in html and 'class="move-form"' not in html
    assert f'action="/deals/{deal.pk}/activities/"' in html


def test_unknown_or_huge_deal_ids_are_404(client_for, alice):
    client = client_for(alice)
    for url in ["/deals/999999/", "/deals/99999999999999999999/", "/deals/999999/edit/"]:
        assert client.get(url).status_code == 404
    assert client.post("/deals/99999999999999999999/stage/", {"stage": "1"}).status_code == 404


# --- moving --------------------------------------------------------------------------------------


def test_a_move_that_meets_the_criteria_moves_and_says_so(client_for, alice, deal, stages):
    response = client_for(alice).post(f"/deals/{deal.pk}/stage/", {"stage": stages["Qualified"].pk}, follow=True)

    deal.refresh_from_db()
    assert deal.stage == stages["Qualified"]
    assert "“Filo kiralama” moved to “Qualified”." in text(response)


def test_refused_move_names_the_missing_field_asks_for_it_in_place_and_changes_nothing(
    client_for, alice, deal, stages
):
    before = snapshot(deal)

    # Lead → Proposal skips Qualified, which needs an amount.
    response = client_for(alice).post(f"/deals/{deal.pk}/stage/", {"stage": stages["Proposal"].pk})

    assert response.status_code == 422
    assert "Fill in Amount before moving this deal on." in refusal(response)
    assert fill_inputs(response) == ["amount"]
    assert field_error(response, "amount") == "Required before a deal leaves “Qualified”."
    assert snapshot(deal) == before


def test_filling_the_missing_field_in_place_moves_and_saves_it_in_one_step(client_for, alice, deal, stages):
    client = client_for(alice)
    client.post(f"/deals/{deal.pk}/stage/", {"stage": stages["Proposal"].pk})

    response = client.post(f"/deals/{deal.pk}/stage/", {"stage": stages["Proposal"].pk, "amount": "12.500,75"})

    assert response.status_code == 302
    deal.refresh_from_db()
    assert (deal.stage, deal.amount) == (stages["Proposal"], Decimal("12500.75"))
    assert list(StageChange.objects.filter(deal=deal).values_list("direction", flat=True)) == ["forward", "created"]
    assert FieldChange.objects.filter(record_id=deal.pk, record_type="pipeline.deal").count() == 1


def test_partly_filled_move_asks_again_for_what_is_still_missing_and_keeps_what_was_typed(
    client_for, alice, stages
):
    at_proposal = DealFactory(name="At proposal", stage=stages["Proposal"], owner=alice)
    before = snapshot(at_proposal)
    client = client_for(alice)

    first = client.post(f"/deals/{at_proposal.pk}/stage/", {"stage": stages["Negotiation"].pk})
    second = client.post(f"/deals/{at_proposal.pk}/stage/", {"stage": stages["Negotiation"].pk, "amount": "900"})
    after_refusals = snapshot(at_proposal)
    third = client.post(f"/deals/{at_proposal.pk}/stage/", {
        "stage": stages["Negotiation"].pk, "amount": "900", "expected_close_date": "2026-12-15"})

    assert "Fill in Amount, Expected close date before moving this deal on." in refusal(first)
    assert fill_inputs(first) == ["amount", "expected_close_date"]
    assert "Fill in Expected close date before moving this deal on." in refusal(second)
    assert fill_inputs(second) == ["amount", "expected_close_date"]
    assert 'name="amount" value="900"' in text(second)
    assert field_error(second, "expected_close_date") == "Required before a deal leaves “Proposal”."
    assert after_refusals == before
    assert third.status_code == 302
    at_proposal.refresh_from_db()
    assert (at_proposal.stage, at_proposal.amount, at_proposal.expected_close_date) == (
        stages["Negotiation"], Decimal("900"), date(2026, 12, 15))


def test_missing_contact_and_custom_field_are_asked_for_with_a_picker_and_their_label(
    client_for, alice, sam, make_deal, stages, pipe
):
    CustomFieldDefinition.objects.create(entity=Entity.DEAL, key="budget_owner", label="Budget owner",
                                         field_type="text")
    services.stage_update(actor=sam, stage=stages["Lead"], data={
        "exit_criteria": ["contact", "custom_fields.budget_owner"]})
    bare = make_deal(alice, name="Bare", stage=stages["Lead"])
    other = ContactFactory(owner=alice, first_name="Mert", last_name="Kaya")
    client = client_for(alice)

    refused = client.post(f"/deals/{bare.pk}/stage/", {"stage": stages["Qualified"].pk})
    moved = client.post(f"/deals/{bare.pk}/stage/", {"stage": stages["Qualified"].pk, "contact": other.pk,
                                                     "cf_budget_owner": "Finans"})

    assert "Fill in Contact, Budget owner before moving this deal on." in refusal(refused)
    assert fill_inputs(refused) == ["cf_budget_owner", "contact"]
    assert 'hx-get="/deals/contact-options/"' in text(refused)
    assert field_error(refused, "cf_budget_owner") == "Required before a deal leaves “Lead”."
    assert moved.status_code == 302
    bare.refresh_from_db()
    assert (bare.stage, bare.contact, bare.custom_fields) == (stages["Qualified"], other, {"budget_owner": "Finans"})


def test_fill_in_place_refuses_a_contact_the_user_cannot_see(client_for, alice, charlie, make_deal, stages, sam):
    services.stage_update(actor=sam, stage=stages["Lead"], data={"exit_criteria": ["contact"]})
    bare = make_deal(alice, name="Bare", stage=stages["Lead"])
    hidden = ContactFactory(owner=charlie)
    before = snapshot(bare)

    response = client_for(alice).post(f"/deals/{bare.pk}/stage/", {"stage": stages["Qualified"].pk,
                                                                     "contact": hidden.pk})

    assert response.status_code == 422
    assert field_error(response, "contact") == "Unknown contact."
    assert snapshot(bare) == before


def test_moving_to_lost_needs_a_reason_then_records_it(client_for, alice, deal, stages, price):
    client = client_for(alice)

    refused = client.post(f"/deals/{deal.pk}/stage/", {"stage": stages["Lost"].pk})
    lost = client.post(f"/deals/{deal.pk}/stage/", {"stage": stages["Lost"].pk, "lost_reason": price.pk,
                                                    "lost_note": "Rakip %10 ucuz"})

    assert refused.status_code == 422
    assert field_error(refused, "lost_reason") == "Choose why the deal was lost."
    assert lost.status_code == 302
    deal.refresh_from_db()
    assert (deal.status, deal.lost_reason, deal.lost_note) == ("lost", price, "Rakip %10 ucuz")
    assert deal.closed_at is not None


def test_the_lost_reason_select_only_shows_for_a_lost_stage(client_for, alice, deal, stages):
    html = text(client_for(alice).get(f"/deals/{deal.pk}/"))

    assert f'<option value="{stages["Lost"].pk}" data-kind="lost">Lost</option>' in html
    assert 'class="field lost-only"' in html


def test_skipping_a_stage_that_forbids_it_is_refused_with_the_reason(client_for, alice, stages):
    at_proposal = DealFactory(name="P", stage=stages["Proposal"], owner=alice, amount=Decimal("5"),
                              expected_close_date=date(2026, 12, 1))

    response = client_for(alice).post(f"/deals/{at_proposal.pk}/stage/", {"stage": stages["Won"].pk})

    assert response.status_code == 422
    assert "Deals in “Proposal” go to the next stage, “Negotiation”, first." in refusal(response)
    assert fill_inputs(response) == []


@pytest.mark.parametrize("data", [
    {},
    {"stage": "abc"},
    {"stage": "999999"},
    {"stage": "99999999999999999999999"},
    {"stage": "STAGE_OF_OTHER_PIPELINE"},
    {"stage": "CURRENT"},
    {"stage": "QUALIFIED", "amount": "çok"},
    {"stage": "QUALIFIED", "amount": "-5"},
    {"stage": "QUALIFIED", "amount": "1" * 40},
    {"stage": "QUALIFIED", "expected_close_date": "31.31.2026"},
    {"stage": "QUALIFIED", "owner": "999999"},
    {"stage": "LOST", "lost_reason": "999999"},
    {"stage": "LOST", "lost_reason": "1", "lost_note": "x" * 5000},
])
def test_bad_move_input_gets_a_clear_error_and_changes_nothing(client_for, alice, deal, stages, sam, data):
    other = services.pipeline_create(actor=sam, name="Other", stages=[
        {"name": "Open", "probability": 10}, {"name": "W", "kind": "won"}, {"name": "L", "kind": "lost"}])
    names = {"STAGE_OF_OTHER_PIPELINE": other.stages.first().pk, "CURRENT": deal.stage_id,
             "QUALIFIED": stages["Qualified"].pk, "LOST": stages["Lost"].pk}
    data = {k: names.get(v, v) for k, v in data.items()}
    before = snapshot(deal)

    response = client_for(alice).post(f"/deals/{deal.pk}/stage/", data)

    assert response.status_code == 422
    assert 'class="errorlist' in text(response) or 'role="alert"' in text(response)
    assert snapshot(deal) == before


# --- logging activities --------------------------------------------------------------------------


def test_logging_a_call_on_the_deal_puts_it_on_the_deal_and_its_contact(client_for, bob, deal, ayse):
    response = client_for(bob).post(f"/deals/{deal.pk}/activities/", {"kind": "call", "subject": "Aradım"})

    assert response.status_code == 302 and response["Location"] == f"/deals/{deal.pk}/#timeline"
    call = Activity.objects.get(deal=deal)
    assert (call.subject, call.contact, call.company_id, call.owner) == ("Aradım", ayse, ayse.company_id, bob)


def test_htmx_log_answers_with_the_panel_and_invalid_input_with_422(client_for, alice, deal):
    client = client_for(alice)

    ok = client.post(f"/deals/{deal.pk}/activities/", {"kind": "note", "subject": "Not"}, HTTP_HX_REQUEST="true")
    bad = client.post(f"/deals/{deal.pk}/activities/", {"kind": "task", "subject": "x" * 500},
                      HTTP_HX_REQUEST="true")
    plain_bad = client.post(f"/deals/{deal.pk}/activities/", {"kind": "bogus", "subject": ""})

    assert ok.status_code == 200 and '<div id="activity-panel">' in text(ok) and "Saved to the timeline." in text(ok)
    assert bad.status_code == 422
    assert "at most 200 characters" in field_error(bad, "subject")
    assert field_error(bad, "due_at") == "A task needs a due time."
    assert plain_bad.status_code == 422 and "<h1>Filo kiralama</h1>" in text(plain_bad)
    assert Activity.objects.filter(deal=deal).count() == 1


# --- create and edit -----------------------------------------------------------------------------


def test_new_deal_form_starts_in_the_default_pipelines_first_stage_with_the_user_as_owner(client_for, alice):
    html = text(client_for(alice).get("/deals/new/"))

    pipeline_select = re.search(r'<select name="pipeline".*?</select>', html, re.S).group(0)
    stage_select = re.search(r'<select name="stage".*?</select>', html, re.S).group(0)
    owner_select = re.search(r'<select name="owner".*?</select>', html, re.S).group(0)
    assert re.search(r'<option value="\d+" selected>New business</option>', pipeline_select)
    assert re.search(r'selected data-kind="open">Qualified \(10%\)</option>', stage_select)
    assert "Won" not in stage_select and "Lost" not in stage_select
    assert re.search(rf'<option value="{alice.pk}" selected>', owner_select)


def test_new_deal_form_prefills_the_contact_its_company_and_lead_source(client_for, alice, ayse):
    html = text(client_for(alice).get("/deals/new/", {"contact": ayse.pk}))

    contact_select = re.search(r'<select name="contact".*?</select>', html, re.S).group(0)
    company_select = re.search(r'<select name="company".*?</select>', html, re.S).group(0)
    assert f'<option value="{ayse.pk}" selected>Ayşe Yılmaz</option>' in contact_select
    assert f'<option value="{ayse.company_id}" selected>Acme Makina</option>' in company_select
    assert "Fuar</option>" in re.search(r'<select name="lead_source".*?</select>', html, re.S).group(0)


def test_new_deal_form_prefills_a_company(client_for, alice, ayse):
    html = text(client_for(alice).get("/deals/new/", {"company": ayse.company_id}))

    assert f'<option value="{ayse.company_id}" selected>Acme Makina</option>' in html


@pytest.mark.parametrize("param", [{"contact": "999999"}, {"contact": "abc"}, {"company": "9" * 30}])
def test_new_deal_form_with_an_unknown_prefill_says_so(client_for, alice, param):
    response = client_for(alice).get("/deals/new/", param)

    assert response.status_code == 200
    assert "was not found; choose one below." in text(response)


def test_new_deal_form_does_not_prefill_a_hidden_contact(client_for, alice, charlie):
    hidden = ContactFactory(owner=charlie, first_name="Gizli")

    response = client_for(alice).get("/deals/new/", {"contact": hidden.pk})

    assert "Gizli" not in text(response)
    assert "The contact to start from was not found" in text(response)


def test_choosing_another_pipeline_reloads_its_open_stages(client_for, alice, pipe):
    html = text(client_for(alice).get("/deals/new/", {"pipeline": pipe.pk}))
    stage_select = re.search(r'<div id="stage-field">.*?</select>', html, re.S).group(0)

    assert "Lead (10%)" in stage_select and "Negotiation (80%)" in stage_select and "Won" not in stage_select
    assert 'hx-get="/deals/new/"' in html


def test_creating_a_deal_takes_the_contacts_company_and_source_and_redirects(client_for, alice, ayse, stages, pipe):
    response = client_for(alice).post("/deals/new/", deal_post(
        name="  Filo   kiralama ", pipeline=pipe.pk, stage=stages["Qualified"].pk, amount="250000",
        currency="eur", expected_close_date="2026-11-30", owner=alice.pk, contact=ayse.pk))

    created = Deal.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/deals/{created.pk}/"
    assert (created.name, created.stage, created.amount, created.currency, created.expected_close_date) == (
        "Filo kiralama", stages["Qualified"], Decimal("250000"), "EUR", date(2026, 11, 30))
    assert (created.owner, created.company_id, created.lead_source) == (alice, ayse.company_id, ayse.lead_source)


def test_creating_without_a_stage_starts_in_the_first_open_stage(client_for, alice, pipe, stages):
    client_for(alice).post("/deals/new/", deal_post(pipeline=pipe.pk, owner=alice.pk))

    assert Deal.objects.get().stage == stages["Lead"]


@pytest.mark.parametrize(("overrides", "field", "message"), [
    ({"name": ""}, "name", "This field is required."),
    ({"name": "x" * 201}, "name", "Ensure this value has at most 200 characters (it has 201)."),
    ({"name": "x" * 100_000}, "name", "Ensure this value has at most 200 characters (it has 100000)."),
    ({"amount": "on bin"}, "amount", "Enter a number."),
    ({"amount": "-1"}, "amount", "Ensure this value is greater than or equal to 0."),
    ({"amount": "1" * 20}, "amount", "Ensure that there are no more than 16 digits in total."),
    ({"currency": "TL"}, "currency", "Use a three-letter ISO currency code such as TRY, EUR or USD."),
    ({"currency": "xx"}, "currency", "Use a three-letter ISO currency code such as TRY, EUR or USD."),
    ({"currency": "EURO"}, "currency", "Use a three-letter ISO currency code such as TRY, EUR or USD."),
    ({"currency": "T1X"}, "currency", "Use a three-letter ISO currency code such as TRY, EUR or USD."),
    ({"expected_close_date": "2026-02-30"}, "expected_close_date", "Enter a valid date."),
    ({"owner": "CHARLIE"}, "owner", "Unknown user, or one you cannot give deals to."),
    ({"owner": "BOB"}, "owner", "Unknown user, or one you cannot give deals to."),
    ({"contact": "999999"}, "contact", "Unknown contact."),
    ({"contact": "HIDDEN_CONTACT"}, "contact", "Unknown contact."),
    ({"company": "abc"}, "company", "Unknown company."),
    ({"lead_source": "999999"}, "lead_source", "Unknown lead source."),
    ({"pipeline": "999999"}, "pipeline", "Unknown pipeline."),
    ({"stage": "WON"}, "stage", "Choose an open stage of the chosen pipeline."),
    ({"stage": "OTHER_PIPELINE_STAGE"}, "stage", "Choose an open stage of the chosen pipeline."),
])
def test_bad_create_input_is_shown_next_to_the_field_and_creates_nothing(
    client_for, alice, bob, charlie, pipe, stages, overrides, field, message
):
    hidden = ContactFactory(owner=charlie)
    names = {"CHARLIE": charlie.pk, "BOB": bob.pk, "HIDDEN_CONTACT": hidden.pk, "WON": stages["Won"].pk,
             "OTHER_PIPELINE_STAGE": services.default_pipeline().stages.first().pk}
    data = deal_post(pipeline=pipe.pk, owner=alice.pk)
    data.update({k: names.get(v, v) for k, v in overrides.items()})

    response = client_for(alice).post("/deals/new/", data)

    assert response.status_code == 422
    assert field_error(response, field) == message
    assert not Deal.objects.exists()


def test_required_fields_and_custom_fields_set_by_the_admin_are_enforced(client_for, alice, pipe):
    FieldSetting.objects.create(entity=Entity.DEAL, field_name="expected_close_date", is_required=True)
    CustomFieldDefinition.objects.create(entity=Entity.DEAL, key="tender_no", label="Tender number",
                                         field_type="number", is_required=True)
    client = client_for(alice)

    form = text(client.get("/deals/new/"))
    refused = client.post("/deals/new/", deal_post(pipeline=pipe.pk, owner=alice.pk, cf_tender_no="12"))
    wrong_type = client.post("/deals/new/", deal_post(pipeline=pipe.pk, owner=alice.pk, cf_tender_no="on iki",
                                                      expected_close_date="2026-10-01"))
    created = client.post("/deals/new/", deal_post(pipeline=pipe.pk, owner=alice.pk, cf_tender_no="12",
                                                   expected_close_date="2026-10-01"))

    assert "Tender number" in form
    assert field_error(refused, "expected_close_date") == "This field is required."
    assert field_error(wrong_type, "cf_tender_no") == "Expected a number (got “on iki”)."
    assert created.status_code == 302
    assert Deal.objects.get().custom_fields == {"tender_no": 12}


def test_editing_a_deal_saves_and_records_the_change(client_for, alice, deal, ayse):
    response = client_for(alice).post(f"/deals/{deal.pk}/edit/", deal_post(
        name="Filo kiralama 2027", amount="75000.50", currency="TRY", owner=alice.pk, contact=ayse.pk,
        company=ayse.company_id, lead_source=ayse.lead_source_id))

    assert response.status_code == 302
    deal.refresh_from_db()
    assert (deal.name, deal.amount) == ("Filo kiralama 2027", Decimal("75000.50"))
    change = FieldChange.objects.get(record_type="pipeline.deal", record_id=deal.pk)
    assert set(change.changes) == {"name", "amount"}


def test_edit_form_has_no_pipeline_or_stage_and_shows_current_values(client_for, alice, deal, ayse):
    html = text(client_for(alice).get(f"/deals/{deal.pk}/edit/"))

    assert 'name="pipeline"' not in html and '<select name="stage"' not in html
    assert 'value="Filo kiralama"' in html
    assert f'<option value="{ayse.pk}" selected>Ayşe Yılmaz</option>' in html


def test_bad_edit_input_changes_nothing(client_for, alice, deal):
    before = snapshot(deal)

    response = client_for(alice).post(f"/deals/{deal.pk}/edit/", deal_post(amount="1e999", owner=alice.pk))

    assert response.status_code == 422
    assert field_error(response, "amount")
    assert snapshot(deal) == before


def test_contact_picker_search_is_turkish_aware_and_scoped(client_for, alice, charlie, ayse):
    ContactFactory(owner=charlie, first_name="Ayşe", last_name="Gizli", search_text="ayse gizli")

    response = client_for(alice).get("/deals/contact-options/", {"contact_q": "ayse"})

    assert response.status_code == 200
    assert "Ayşe Yılmaz" in text(response) and "Gizli" not in text(response)
    assert "No contact matches" in text(client_for(alice).get("/deals/contact-options/", {"contact_q": "zzz"}))


# --- the contact and company pages ---------------------------------------------------------------


def test_contact_and_company_pages_list_their_deals_with_a_new_deal_link(client_for, alice, ayse, stages, make_deal):
    won = make_deal(alice, name="Kazanılan", stage=stages["Lead"], contact=ayse, amount=Decimal("1000"))
    services.deal_move(actor=alice, deal=won, stage=stages["Qualified"])
    DealFactory(name="Bekleyen", stage=stages["Negotiation"], owner=alice, contact=ayse, company=ayse.company,
                created_at=timezone.now() - timedelta(days=60))
    client = client_for(alice)

    contact_page = text(client.get(f"/contacts/{ayse.pk}/"))
    company_page = text(client.get(f"/companies/{ayse.company_id}/"))

    for html, param, pk in ((contact_page, "contact", ayse.pk), (company_page, "company", ayse.company_id)):
        section = re.search(r'<section class="card card-flush record-deals".*?</section>', html, re.S).group(0)
        assert "Kazanılan" in section and "Qualified" in section and "1,000.00" in section
        assert "Bekleyen" in section and ">Stale<" in section and ">Open<" in section
        assert f'href="/deals/new/?{param}={pk}"' in section


def test_contact_page_never_lists_deals_the_user_may_not_see(client_for, alice, charlie, ayse, stages):
    DealFactory(name="Gizli anlaşma", stage=stages["Lead"], owner=charlie, contact=ayse)

    html = text(client_for(alice).get(f"/contacts/{ayse.pk}/"))

    assert "Gizli anlaşma" not in html and "No deals yet." in html
