"""The Kanban board in the browser: columns and their totals, filters, paging, moves and their refusals.

The fixture below is worked by hand (amounts in TRY unless said):

    Lead (10 %)        A1 1,000.00 · A2 2,500.50 · A3 no amount · E1 9,999.00 EUR (counted, not summed)
                       count 4, total 3,500.50, weighted 3,500.50 × 10 % = 350.05
    Qualified (30 %)   Q1 12,345.67 (bob's)   count 1, total 12,345.67, weighted 3,703.701 → 3,703.70
    Proposal (60 %)    P1 8,000.00 · P2 333.33 count 2, total 8,333.33, weighted 4,800 + 199.998 = 4,999.998 → 5,000.00
    Negotiation (80 %) N1 50,000.00, 40 days in a stage whose limit is 30 → stale; weighted 40,000.00
    Won                W1 700.00 closed today (counted this month); W0 closed 70 days ago (not counted)
    charlie's deal in Lead is hidden from alice and in no figure she sees.
"""

import json
import re
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from contacts.models import CustomFieldDefinition, Entity
from crm_okr.models import Event
from pipeline.models import Deal, Pipeline, StageChange
from tests.factories import CompanyFactory, ContactFactory, DealFactory, UserFactory

pytestmark = pytest.mark.django_db
JSON = {"HTTP_ACCEPT": "application/json"}


def text(response) -> str:
    return response.content.decode()


def head(html: str, stage) -> dict:
    """The figures a column header carries: count, total and weighted, as rendered."""
    match = re.search(
        rf'<header class="column-head" id="column-head-{stage.pk}" data-count="(\d+)" data-total="([^"]*)" '
        rf'data-weighted="([^"]*)">', html)
    assert match, f"no header for {stage}"
    return {"count": int(match.group(1)), "total": Decimal(match.group(2)), "weighted": Decimal(match.group(3))}


def zone(html: str, stage) -> int:
    match = re.search(rf'id="zone-head-{stage.pk}" data-count="(\d+)"', html)
    assert match, f"no drop target for {stage}"
    return int(match.group(1))


def cards(html: str) -> list[str]:
    return re.findall(r'<a class="deal-name" href="[^"]+">([^<]+)</a>', html)


def column_html(html: str, stage) -> str:
    start = html.index(f'id="column-{stage.pk}"')
    end = html.find('<section class="board-column"', start + 1)
    return html[start:end if end != -1 else len(html)]


def board_url(pipe) -> str:
    return reverse("board-pipeline", args=[pipe.pk])


def move_url(deal) -> str:
    return reverse("board-move", args=[deal.pk])


@pytest.fixture
def fixture(alice, bob, charlie, stages):
    now = timezone.now()
    deals = {
        "A1": DealFactory(name="A1", stage=stages["Lead"], owner=alice, amount=Decimal("1000.00"),
                          created_at=now - timedelta(days=5)),
        "A2": DealFactory(name="A2", stage=stages["Lead"], owner=alice, amount=Decimal("2500.50"),
                          created_at=now - timedelta(days=4)),
        "A3": DealFactory(name="A3", stage=stages["Lead"], owner=alice, amount=None,
                          created_at=now - timedelta(days=3)),
        "E1": DealFactory(name="E1", stage=stages["Lead"], owner=alice, amount=Decimal("9999.00"), currency="EUR",
                          created_at=now - timedelta(days=2)),
        "Q1": DealFactory(name="Q1", stage=stages["Qualified"], owner=bob, amount=Decimal("12345.67")),
        "P1": DealFactory(name="P1", stage=stages["Proposal"], owner=alice, amount=Decimal("8000.00"),
                          expected_close_date=date(2031, 3, 15)),
        "P2": DealFactory(name="P2", stage=stages["Proposal"], owner=alice, amount=Decimal("333.33")),
        "N1": DealFactory(name="N1", stage=stages["Negotiation"], owner=alice, amount=Decimal("50000.00"),
                          created_at=now - timedelta(days=40)),
        "W1": DealFactory(name="W1", stage=stages["Won"], owner=alice, amount=Decimal("700.00")),
        "W0": DealFactory(name="W0", stage=stages["Won"], owner=alice, amount=Decimal("900.00"),
                          created_at=now - timedelta(days=70)),
        "hidden": DealFactory(name="Hidden", stage=stages["Lead"], owner=charlie, amount=Decimal("5.00")),
    }
    return deals


# --- the board ------------------------------------------------------------------------------------


def test_board_columns_show_hand_counted_totals_and_weighted_amounts(client_for, alice, pipe, stages, fixture):
    response = client_for(alice).get(board_url(pipe))
    assert response.status_code == 200
    html = text(response)

    assert head(html, stages["Lead"]) == {"count": 4, "total": Decimal("3500.50"), "weighted": Decimal("350.05")}
    assert head(html, stages["Qualified"]) == {
        "count": 1, "total": Decimal("12345.67"), "weighted": Decimal("3703.70")}
    assert head(html, stages["Proposal"]) == {"count": 2, "total": Decimal("8333.33"), "weighted": Decimal("5000.00")}
    assert head(html, stages["Negotiation"]) == {
        "count": 1, "total": Decimal("50000.00"), "weighted": Decimal("40000.00")}
    # The figures as people read them.
    lead = column_html(html, stages["Lead"])
    assert "3,500.50 TRY" in lead and "weighted 350.05 · 10%" in lead
    # Won and Lost are drop targets with this month's counts, not columns of cards.
    assert 'id="column-{}"'.format(stages["Won"].pk) not in html
    assert zone(html, stages["Won"]) == 1 and zone(html, stages["Lost"]) == 0
    assert "W1" not in cards(html)


def test_a_deal_in_another_currency_is_counted_left_out_of_sums_with_a_note(client_for, alice, pipe, stages,
                                                                            fixture):
    html = text(client_for(alice).get(board_url(pipe)))
    assert "1 deal in another currency is counted but not included in the TRY totals." in html
    lead = column_html(html, stages["Lead"])
    assert "+1 in another currency, not in the total" in lead
    assert re.search(r'9,999.00 EUR <span class="badge tone-amber other-currency"[^>]*>not in totals</span>', lead)


def test_cards_show_amount_people_dates_days_in_stage_and_the_stale_mark(client_for, alice, pipe, stages, fixture):
    contact = ContactFactory(first_name="Ayşe", last_name="Yılmaz", owner=alice)
    company = CompanyFactory(name="Işık A.Ş.", owner=alice)
    Deal.objects.filter(pk=fixture["P1"].pk).update(contact=contact, company=company)
    html = text(client_for(alice).get(board_url(pipe)))

    proposal = column_html(html, stages["Proposal"])
    assert cards(proposal) == ["P1", "P2"]
    assert f'href="/deals/{fixture["P1"].pk}/"' in proposal
    assert "Ayşe Yılmaz · <span class=\"muted\">Işık A.Ş.</span>" in proposal
    assert '<time datetime="2031-03-15">15 Mar 2031</time>' in proposal
    alice_initials = (alice.first_name[0] + alice.last_name[0]).upper()
    assert f'title="Owner: {alice}">{alice_initials}</span>' in proposal

    negotiation = column_html(html, stages["Negotiation"])
    assert 'class="deal-card is-stale can-move"' in negotiation
    assert ">Stale</span>" in negotiation and "40 days" in negotiation
    assert html.count(">Stale</span>") == 1
    # The longest in the stage come first.
    assert cards(column_html(html, stages["Lead"])) == ["A1", "A2", "A3", "E1"]


def zone_total(html: str, stage) -> Decimal:
    match = re.search(rf'id="zone-head-{stage.pk}" data-count="\d+" data-total="([^"]*)"', html)
    assert match, f"no drop target for {stage}"
    return Decimal(match.group(1))


def test_won_and_lost_strip_counts_this_month_under_the_boards_filters(client_for, alice, bob, charlie, mona, pipe,
                                                                      stages, fixture):
    """The strip comes from the same query as the columns' totals: same visibility, same filters.

    Won this month, as alice sees it: W1 700.00 (alice) + W2 250.00 (bob) = 2 deals, 950.00; W0 closed 70
    days ago and charlie's W3 (South, hidden from alice) are left out. Filtered to bob: 1 deal, 250.00.
    Lost: L1 (bob, 40.00) = 1 deal, 40.00; to alice's deals only: none.
    """
    DealFactory(name="W2", stage=stages["Won"], owner=bob, amount=Decimal("250.00"))
    DealFactory(name="W3", stage=stages["Won"], owner=charlie, amount=Decimal("99.00"))
    DealFactory(name="L1", stage=stages["Lost"], owner=bob, amount=Decimal("40.00"))
    client = client_for(alice)
    html = text(client.get(board_url(pipe)))
    assert (zone(html, stages["Won"]), zone_total(html, stages["Won"])) == (2, Decimal("950.00"))
    assert (zone(html, stages["Lost"]), zone_total(html, stages["Lost"])) == (1, Decimal("40.00"))
    assert '<span class="zone-total">950.00 TRY</span>' in html and "2 this month" in html
    # The open columns are unchanged by the closed deals read in the same query.
    assert head(html, stages["Lead"])["count"] == 4

    html = text(client_for(mona).get(board_url(pipe), {"owner": bob.pk}))
    assert (zone(html, stages["Won"]), zone_total(html, stages["Won"])) == (1, Decimal("250.00"))
    assert (zone(html, stages["Lost"]), zone_total(html, stages["Lost"])) == (1, Decimal("40.00"))
    html = text(client_for(mona).get(board_url(pipe), {"owner": alice.pk}))
    assert (zone(html, stages["Won"]), zone_total(html, stages["Won"])) == (1, Decimal("700.00"))
    assert (zone(html, stages["Lost"]), zone_total(html, stages["Lost"])) == (0, Decimal("0"))


def test_card_texts_are_escaped(client_for, alice, pipe, stages):
    contact = ContactFactory(first_name="<i>Ayşe</i>", last_name="O'Brien", owner=alice)
    company = CompanyFactory(name="R&D <Ltd>", owner=alice)
    deal = DealFactory(name='<script>alert("x")</script> & co', stage=stages["Lead"], owner=alice,
                       contact=contact, company=company, amount=Decimal("1.00"))
    html = text(client_for(alice).get(board_url(pipe)))
    card = html[html.index(f'id="deal-{deal.pk}"'):]
    card = card[:card.index("</article>")]
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; co</a>" in card
    assert "&lt;i&gt;Ayşe&lt;/i&gt; O&#x27;Brien · <span class=\"muted\">R&amp;D &lt;Ltd&gt;</span>" in card
    assert "<script>" not in card and "<i>" not in card


def test_the_pipeline_switcher_lists_every_pipeline_and_board_opens_the_default(client_for, alice, pipe):
    client = client_for(alice)
    html = text(client.get(reverse("board")))
    assert "<h1>New business</h1>" in html
    assert f'href="{board_url(pipe)}">Sales</a>' in html
    html = text(client.get(board_url(pipe)))
    assert f'href="{board_url(pipe)}" aria-current="page">Sales</a>' in html


def test_an_unknown_pipeline_is_a_404(client_for, alice, pipe):
    assert client_for(alice).get(reverse("board-pipeline", args=[999999])).status_code == 404


def test_filter_by_owner_and_team(client_for, alice, bob, mona, pipe, stages, fixture, south):
    client = client_for(mona)
    html = text(client.get(board_url(pipe), {"owner": bob.pk}))
    assert cards(html) == ["Q1"]
    assert head(html, stages["Lead"])["count"] == 0
    assert head(html, stages["Qualified"]) == {
        "count": 1, "total": Decimal("12345.67"), "weighted": Decimal("3703.70")}

    html = text(client.get(board_url(pipe), {"team": alice.team_id}))
    assert head(html, stages["Lead"])["count"] == 4  # charlie's deal is in South
    # The filters go along on the move URLs, so the totals a move returns are the filtered ones.
    assert f'data-move-url="{move_url(fixture["A1"])}?team={alice.team_id}"' in html


def test_unknown_or_hidden_filter_ids_give_a_clear_message_not_a_500(client_for, alice, charlie, pipe, stages,
                                                                     fixture, south):
    client = client_for(alice)
    for params, message in [
        ({"owner": "abc"}, "Unknown owner: choose one from the list."),
        ({"owner": 999999}, "Unknown owner: choose one from the list."),
        ({"owner": charlie.pk}, "Unknown owner: choose one from the list."),  # another team's rep
        ({"team": south.pk}, "Unknown team: choose one from the list."),
    ]:
        response = client.get(board_url(pipe), params)
        assert response.status_code == 200
        assert f"<li>{message} The filter was left out.</li>" in text(response)
        # The board is shown without that filter.
        assert head(text(response), stages["Lead"])["count"] == 4


def test_teammate_sees_the_cards_but_cannot_drag_what_they_may_not_edit(client_for, bob, pipe, stages, fixture):
    html = text(client_for(bob).get(board_url(pipe)))
    a1 = re.search(rf'<article class="deal-card is-locked" id="deal-{fixture["A1"].pk}"[^>]*>', html)
    assert a1 and "data-move-url" not in a1.group(0)
    assert f'id="deal-{fixture["Q1"].pk}" data-deal="{fixture["Q1"].pk}"' in html
    assert re.search(rf'class="deal-card can-move" id="deal-{fixture["Q1"].pk}"', html)
    q1 = html[html.index(f'id="deal-{fixture["Q1"].pk}"'):]
    assert "Move to…" in q1[:q1.index("</article>")]


def test_move_to_form_is_rendered_once_and_each_card_links_to_the_deal_page(client_for, alice, bob, pipe, stages,
                                                                           fixture):
    html = text(client_for(alice).get(board_url(pipe)))
    # One form for the whole board, with every stage of the pipeline; board.js copies it into a card.
    assert html.count('class="move-form"') == 1
    template = html[html.index('<template id="move-template">'):html.index("</template>")]
    assert re.findall(r'<option value="(\d+)">', template) == [str(s.pk) for s in pipe.stages.order_by("order", "id")]
    assert 'data-label="Move “{name}” to"' in template and 'name="csrfmiddlewaretoken"' in template
    # Without script, "Move to…" leads to the deal page's move form; only movable cards have it.
    a1 = html[html.index(f'id="deal-{fixture["A1"].pk}"'):]
    a1 = a1[:a1.index("</article>")]
    assert f'<a class="move-link" href="/deals/{fixture["A1"].pk}/#move-form"' in a1 and "<select" not in a1
    bobs = text(client_for(bob).get(board_url(pipe)))
    a1 = bobs[bobs.index(f'id="deal-{fixture["A1"].pk}"'):]
    assert "Move to…" not in a1[:a1.index("</article>")]


# --- paging a column ------------------------------------------------------------------------------


def test_a_column_shows_15_cards_and_loads_the_rest_25_at_a_time(client_for, alice, bob, pipe, stages):
    now = timezone.now()
    for n in range(45):
        DealFactory(name=f"L{n:02d}", stage=stages["Lead"], owner=alice, amount=Decimal(n),
                    created_at=now - timedelta(hours=100 - n))
    DealFactory(name="Bob's", stage=stages["Lead"], owner=bob, created_at=now - timedelta(hours=50))
    client = client_for(alice)
    html = text(client.get(board_url(pipe), {"owner": alice.pk}))
    lead = column_html(html, stages["Lead"])
    assert cards(lead) == [f"L{n:02d}" for n in range(15)]
    assert head(html, stages["Lead"])["count"] == 45
    more = re.search(r'hx-get="([^"]+)"[^>]*>Load more</button>', lead).group(1).replace("&amp;", "&")
    assert more.startswith(reverse("board-column", args=[pipe.pk, stages["Lead"].pk]) + f"?owner={alice.pk}&cursor=")

    page = client.get(more)
    assert page.status_code == 200
    assert cards(text(page)) == [f"L{n:02d}" for n in range(15, 40)]
    more = re.search(r'hx-get="([^"]+)"[^>]*>Load more</button>', text(page)).group(1).replace("&amp;", "&")
    page = client.get(more)
    assert cards(text(page)) == [f"L{n:02d}" for n in range(40, 45)]
    assert "Load more" not in text(page)


def test_column_page_refuses_bad_cursors_filters_and_stages_clearly(client_for, alice, pipe, stages, south):
    client = client_for(alice)
    url = reverse("board-column", args=[pipe.pk, stages["Lead"].pk])
    response = client.get(url, {"cursor": "not-a-cursor"})
    assert response.status_code == 400 and "no longer valid" in text(response)
    response = client.get(url, {"team": south.pk})
    assert response.status_code == 400 and "Unknown team" in text(response)
    assert client.get(reverse("board-column", args=[pipe.pk, stages["Won"].pk])).status_code == 404
    other = reverse("board-column", args=[pipe.pk + 1000, stages["Lead"].pk])
    assert client.get(other).status_code == 404


# --- moving ---------------------------------------------------------------------------------------


def snapshot(deal) -> tuple:
    deal = Deal.objects.get(pk=deal.pk)
    return (deal.stage_id, deal.status, deal.amount, deal.expected_close_date, deal.lost_reason_id,
            deal.stage_entered_at, StageChange.objects.filter(deal=deal).count(), Event.objects.count())


def test_move_lands_and_returns_the_card_and_both_columns_fresh_totals(client_for, alice, pipe, stages, fixture):
    a2 = fixture["A2"]
    response = client_for(alice).post(move_url(a2), {"stage": stages["Qualified"].pk}, **JSON)
    assert response.status_code == 200
    data = response.json()
    assert data["ok"] is True and data["stage"] == stages["Qualified"].pk and data["closed"] is False
    assert data["message"] == "Moved “A2” to “Qualified”."
    # Lead: 3 left, 3,500.50 − 2,500.50 = 1,000.00, weighted 100.00.
    lead = data["columns"][str(stages["Lead"].pk)]
    assert (lead["count"], lead["total"], lead["weighted"]) == (3, "1000.00", "100.00")
    # Qualified: 12,345.67 + 2,500.50 = 14,846.17, weighted × 30 % = 4,453.851 → 4,453.85.
    qualified = data["columns"][str(stages["Qualified"].pk)]
    assert (qualified["count"], qualified["total"], qualified["weighted"]) == (2, "14846.17", "4453.85")
    assert 'data-count="2" data-total="14846.17" data-weighted="4453.85"' in qualified["html"]
    assert f'id="deal-{a2.pk}" data-deal="{a2.pk}" data-stage="{stages["Qualified"].pk}"' in data["card"]
    assert "0 days" in data["card"]
    a2.refresh_from_db()
    assert a2.stage == stages["Qualified"]


def test_a_stale_deal_moved_on_loses_its_stale_mark(client_for, alice, pipe, stages, fixture):
    response = client_for(alice).post(move_url(fixture["N1"]), {"stage": stages["Proposal"].pk}, **JSON)
    assert response.status_code == 200
    assert "Stale" not in response.json()["card"] and "is-stale" not in response.json()["card"]


def test_refused_move_names_the_missing_fields_and_changes_nothing(client_for, alice, pipe, stages):
    deal = DealFactory(name="No amount", stage=stages["Qualified"], owner=alice)
    before = snapshot(deal)
    response = client_for(alice).post(move_url(deal), {"stage": stages["Proposal"].pk}, **JSON)
    assert response.status_code == 422
    data = response.json()
    assert data["ok"] is False
    assert data["message"] == "Fill in Amount before moving this deal on."
    assert data["errors"]["amount"] == ["Required before a deal leaves “Qualified”."]
    panel = data["panel"]
    assert "Move to “Proposal”" in panel
    assert f'<input type="hidden" name="stage" value="{stages["Proposal"].pk}">' in panel
    assert re.search(r'<input type="number" name="amount"[^>]*id="panel-\d+-amount"', panel)
    assert "Required before a deal leaves “Qualified”." in panel
    assert 'name="expected_close_date"' not in panel  # only what is missing
    assert snapshot(deal) == before


def test_skipping_over_several_stages_lists_every_missing_field(client_for, alice, pipe, stages):
    deal = DealFactory(name="Jump", stage=stages["Lead"], owner=alice)
    response = client_for(alice).post(move_url(deal), {"stage": stages["Negotiation"].pk}, **JSON)
    assert response.status_code == 422
    # Proposal forbids skipping, but Lead does not: Lead → Negotiation leaves Qualified and Proposal behind.
    assert response.json()["message"] == "Fill in Amount, Expected close date before moving this deal on."
    assert 'name="amount"' in response.json()["panel"] and 'name="expected_close_date"' in response.json()["panel"]


def test_filling_the_fields_in_place_moves_the_deal_in_one_step(client_for, alice, pipe, stages):
    deal = DealFactory(name="Fill me", stage=stages["Proposal"], owner=alice)
    before = snapshot(deal)
    client = client_for(alice)
    response = client.post(move_url(deal), {"stage": stages["Negotiation"].pk, "amount": "1500",
                                            "expected_close_date": ""}, **JSON)
    assert response.status_code == 422
    assert response.json()["errors"] == {
        "stage": ["Fill in Expected close date before moving this deal on."],
        "expected_close_date": ["Required before a deal leaves “Proposal”."],
    }
    # The amount just typed stays in the panel, and nothing was saved.
    assert re.search(r'name="amount" value="1500"', response.json()["panel"])
    assert snapshot(deal) == before

    response = client.post(move_url(deal), {"stage": stages["Negotiation"].pk, "amount": "1500.50",
                                            "expected_close_date": "2031-06-30"}, **JSON)
    assert response.status_code == 200
    deal.refresh_from_db()
    assert deal.stage == stages["Negotiation"]
    assert deal.amount == Decimal("1500.50") and deal.expected_close_date == date(2031, 6, 30)
    negotiation = response.json()["columns"][str(stages["Negotiation"].pk)]
    # 1,500.50 × 80 % = 1,200.40
    assert (negotiation["count"], negotiation["total"], negotiation["weighted"]) == (1, "1500.50", "1200.40")


def test_invalid_values_in_the_panel_are_refused_next_to_the_field(client_for, alice, pipe, stages):
    deal = DealFactory(name="Typo", stage=stages["Qualified"], owner=alice)
    before = snapshot(deal)
    response = client_for(alice).post(move_url(deal), {"stage": stages["Proposal"].pk, "amount": "-5"}, **JSON)
    assert response.status_code == 422
    assert response.json()["errors"] == {"amount": ["Ensure this value is greater than or equal to 0."]}
    assert response.json()["message"] == "Check the highlighted fields."
    assert snapshot(deal) == before


def test_custom_field_criteria_are_filled_in_place(client_for, alice, pipe, stages, sam):
    CustomFieldDefinition.objects.create(entity=Entity.DEAL, key="po_number", label="PO number",
                                         field_type=CustomFieldDefinition.FieldType.TEXT)
    stages["Lead"].exit_criteria = ["custom_fields.po_number"]
    stages["Lead"].save()
    deal = DealFactory(name="PO", stage=stages["Lead"], owner=alice)
    client = client_for(alice)
    response = client.post(move_url(deal), {"stage": stages["Qualified"].pk}, **JSON)
    assert response.status_code == 422
    assert response.json()["message"] == "Fill in PO number before moving this deal on."
    assert 'name="custom_fields.po_number"' in response.json()["panel"]
    response = client.post(move_url(deal), {"stage": stages["Qualified"].pk, "custom_fields.po_number": "PO-7"},
                           **JSON)
    assert response.status_code == 200
    deal.refresh_from_db()
    assert deal.stage == stages["Qualified"] and deal.custom_fields == {"po_number": "PO-7"}


def test_dropping_on_lost_asks_for_a_reason_then_closes_the_deal(client_for, alice, pipe, stages, fixture, price):
    a1 = fixture["A1"]
    before = snapshot(a1)
    client = client_for(alice)
    response = client.post(move_url(a1), {"stage": stages["Lost"].pk}, **JSON)
    assert response.status_code == 422
    data = response.json()
    assert data["message"] == "Choose why the deal was lost."
    assert re.search(r'<select name="lost_reason"[^>]*>', data["panel"])
    assert f'<option value="{price.pk}">Price</option>' in data["panel"]
    assert '<textarea name="lost_note"' in data["panel"]
    assert snapshot(a1) == before

    response = client.post(move_url(a1), {"stage": stages["Lost"].pk, "lost_reason": price.pk,
                                          "lost_note": "Went with a cheaper offer"}, **JSON)
    assert response.status_code == 200
    data = response.json()
    assert data["closed"] is True and data["card"] == ""
    assert data["columns"][str(stages["Lost"].pk)]["count"] == 1
    lead = data["columns"][str(stages["Lead"].pk)]
    assert (lead["count"], lead["total"], lead["weighted"]) == (3, "2500.50", "250.05")
    assert 'data-count="1"' in data["columns"][str(stages["Lost"].pk)]["html"]
    a1.refresh_from_db()
    assert a1.status == Deal.Status.LOST and a1.lost_reason == price and a1.lost_note == "Went with a cheaper offer"


def test_dropping_on_won_closes_the_deal_and_counts_it_this_month(client_for, alice, pipe, stages, fixture):
    response = client_for(alice).post(move_url(fixture["N1"]), {"stage": stages["Won"].pk}, **JSON)
    assert response.status_code == 200
    won = response.json()["columns"][str(stages["Won"].pk)]
    # W1 and N1 closed this month: 700.00 + 50,000.00
    assert (won["count"], won["total"]) == (2, "50700.00")


def test_unknown_stage_or_another_pipelines_stage_is_refused_clearly(client_for, alice, pipe, stages, fixture):
    foreign = Pipeline.objects.get(name="New business").stages.first()  # from the data migration
    client = client_for(alice)
    for value in ["", "abc", "999999", str(foreign.pk)]:
        response = client.post(move_url(fixture["A1"]), {"stage": value}, **JSON)
        assert response.status_code == 422, value
        assert response.json()["message"] in {"This field is required.",
                                               "Unknown stage: choose a stage of this pipeline."}
    assert snapshot(fixture["A1"])[0] == stages["Lead"].pk


def test_teammate_gets_403_and_outsider_404(client_for, bob, charlie, pipe, stages, fixture):
    a1 = fixture["A1"]
    before = snapshot(a1)
    response = client_for(bob).post(move_url(a1), {"stage": stages["Qualified"].pk}, **JSON)
    assert response.status_code == 403
    assert response.json()["message"] == "You can see this deal but not move it; ask its owner or your manager."
    assert client_for(bob).post(move_url(a1), {"stage": stages["Qualified"].pk}).status_code == 403
    assert client_for(charlie).post(move_url(a1), {"stage": stages["Qualified"].pk}, **JSON).status_code == 404
    assert snapshot(a1) == before


def test_manager_moves_a_team_deal(client_for, mona, pipe, stages, fixture):
    response = client_for(mona).post(move_url(fixture["A1"]), {"stage": stages["Qualified"].pk}, **JSON)
    assert response.status_code == 200


def test_move_needs_post_and_a_signed_in_browser_user(client, client_for, alice, integ, pipe, stages, fixture):
    url = move_url(fixture["A1"])
    assert client_for(alice).get(url).status_code == 405
    client.logout()
    assert client.post(url, {"stage": stages["Qualified"].pk}).status_code == 302
    assert client_for(integ).post(url, {"stage": stages["Qualified"].pk}).status_code == 403


def test_move_enforces_csrf(alice, pipe, stages, fixture):
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    response = client.post(move_url(fixture["A1"]), {"stage": stages["Qualified"].pk}, **JSON)
    assert response.status_code == 403
    token = re.search(r'"X-CSRFToken": "([^"]+)"', text(client.get(board_url(pipe)))).group(1)
    response = client.post(move_url(fixture["A1"]), {"stage": stages["Qualified"].pk}, HTTP_X_CSRFTOKEN=token,
                           **JSON)
    assert response.status_code == 200


# --- without JavaScript ---------------------------------------------------------------------------


def test_move_to_form_without_javascript_redirects_back_to_the_filtered_board(client_for, alice, pipe, stages,
                                                                              fixture):
    client = client_for(alice)
    url = move_url(fixture["A2"]) + f"?owner={alice.pk}"
    response = client.post(url, {"stage": stages["Qualified"].pk})
    assert response.status_code == 302
    assert response.url == board_url(pipe) + f"?owner={alice.pk}"
    html = text(client.get(response.url))
    assert "Moved “A2” to “Qualified”." in html
    assert "A2" in cards(column_html(html, stages["Qualified"]))


def test_refused_move_without_javascript_shows_a_page_with_the_missing_fields(client_for, alice, pipe, stages):
    deal = DealFactory(name="Plain", stage=stages["Qualified"], owner=alice)
    client = client_for(alice)
    response = client.post(move_url(deal), {"stage": stages["Proposal"].pk})
    assert response.status_code == 422
    html = text(response)
    assert "Move “Plain” from “Qualified”" in html
    assert "Fill in Amount before moving this deal on." in html
    assert 'name="amount"' in html
    response = client.post(move_url(deal), {"stage": stages["Proposal"].pk, "amount": "10"})
    assert response.status_code == 302
    deal.refresh_from_db()
    assert deal.stage == stages["Proposal"]


# --- query counts ---------------------------------------------------------------------------------


def _spread(count: int, owner, stages) -> None:
    """``count`` open deals spread over the four open stages."""
    names = ["Lead", "Qualified", "Proposal", "Negotiation"]
    now = timezone.now()
    for n in range(count):
        DealFactory(stage=stages[names[n % 4]], owner=owner, amount=Decimal(100 + n),
                    created_at=now - timedelta(hours=n))


# session, user, pipelines, stages, totals (the open columns and the Won/Lost strip in one query), the first
# page of every column (one query for all of them), the owner and team drop-downs, the unread notifications in
# the top bar.
BOARD_QUERIES = 9


@pytest.mark.parametrize("deals", [4, 60])
def test_board_query_count_does_not_grow_with_deals(client_for, alice, pipe, stages, deals,
                                                    django_assert_num_queries):
    _spread(deals, alice, stages)
    client = client_for(alice)
    with django_assert_num_queries(BOARD_QUERIES):
        response = client.get(board_url(pipe))
    assert len(cards(text(response))) == min(deals, 4 * 15)


@pytest.mark.parametrize("deals", [4, 60])
def test_filtered_board_query_count_is_fixed_too(client_for, alice, pipe, stages, deals,
                                                 django_assert_num_queries):
    _spread(deals, alice, stages)
    client = client_for(alice)
    # Two more: the chosen owner and team are looked up among those the user may see.
    with django_assert_num_queries(BOARD_QUERIES + 2):
        client.get(board_url(pipe), {"owner": alice.pk, "team": alice.team_id})


def test_manager_board_query_count_is_fixed(client_for, mona, alice, pipe, stages):
    _spread(4, alice, stages)
    client = client_for(mona)
    with CaptureQueriesContext(connection) as small:
        client.get(board_url(pipe))
    _spread(60, UserFactory(team=alice.team), stages)
    with CaptureQueriesContext(connection) as big:
        client.get(board_url(pipe))
    assert len(big.captured_queries) == len(small.captured_queries)


# session, user, pipeline, stage, one page of cards.
COLUMN_QUERIES = 5


@pytest.mark.parametrize("deals", [30, 80])
def test_column_page_query_count_is_fixed(client_for, alice, pipe, stages, deals, django_assert_num_queries):
    now = timezone.now()
    for n in range(deals):
        DealFactory(stage=stages["Lead"], owner=alice, created_at=now - timedelta(hours=n))
    client = client_for(alice)
    html = text(client.get(board_url(pipe)))
    more = re.search(r'hx-get="([^"]+)"[^>]*>Load more</button>', html).group(1).replace("&amp;", "&")
    with django_assert_num_queries(COLUMN_QUERIES):  # the "Move to…" form is the board's, not the page's
        response = client.get(more)
    assert len(cards(text(response))) == min(deals - 15, 25)


def test_move_query_count_does_not_grow_with_the_deals_on_the_board(client_for, alice, pipe, stages):
    _spread(4, alice, stages)
    first = DealFactory(stage=stages["Lead"], owner=alice, amount=Decimal(1))
    client = client_for(alice)
    with CaptureQueriesContext(connection) as small:
        assert client.post(move_url(first), {"stage": stages["Qualified"].pk}, **JSON).status_code == 200
    _spread(60, alice, stages)
    second = DealFactory(stage=stages["Lead"], owner=alice, amount=Decimal(1))
    with CaptureQueriesContext(connection) as big:
        assert client.post(move_url(second), {"stage": stages["Qualified"].pk}, **JSON).status_code == 200
    assert len(big.captured_queries) == len(small.captured_queries)


def test_board_json_is_not_needed_for_htmx_partials(client_for, alice, pipe, stages, fixture):
    """The column endpoint answers HTML for htmx (no JSON), with the move URL on each card."""
    response = client_for(alice).get(reverse("board-column", args=[pipe.pk, stages["Lead"].pk]))
    assert response["Content-Type"].startswith("text/html")
    assert f'data-move-url="{move_url(fixture["A1"])}"' in text(response)
    with pytest.raises(json.JSONDecodeError):
        json.loads(text(response))
