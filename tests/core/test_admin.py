"""The Django admin: every model registered and rendering, tokens issued and revoked, records read-only."""

import re

import pytest
from django.contrib import admin
from django.urls import reverse
from django.utils import timezone

from accounts.models import ApiToken, Notification
from contacts import services
from contacts.models import (
    Activity,
    Company,
    Contact,
    CustomFieldDefinition,
    FieldSetting,
    LeadSource,
)
from crm_okr import events
from crm_okr.models import Event, FieldChange
from tests.factories import ContactFactory

pytestmark = pytest.mark.django_db

EXPECTED_MODELS = {
    "accounts.team", "accounts.user", "accounts.apitoken", "accounts.notification",
    "contacts.leadsource", "contacts.tag", "contacts.customfielddefinition", "contacts.fieldsetting",
    "contacts.contact", "contacts.company", "contacts.activity", "contacts.consentlog",
    "crm_okr.event", "crm_okr.fieldchange",
}


def _url(model, view, *args):
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


@pytest.fixture
def root(sam):
    sam.is_superuser = True
    sam.save(update_fields=["is_superuser"])
    return sam


@pytest.fixture
def admin_client_for(client, root):
    client.force_login(root)
    return client


@pytest.fixture
def data(alice, bob, mona, root):
    """At least one row of every registered model."""
    company = services.company_create(actor=alice, data={"name": "Işık Yapı", "tags": ["VIP"]})
    contact = services.contact_create(actor=mona, data={
        "first_name": "İpek", "last_name": "IŞIK", "company": company, "owner": bob, "phone": "0532 123 45 67"})
    services.contact_update(contact=contact, actor=mona, data={"lifecycle_stage": "customer"})
    services.activity_log(actor=bob, kind="call", subject="Intro", contact=contact)
    services.consent_set(contact=contact, actor=bob, channel="email", status="granted", source="Web form")
    for event in Event.objects.all()[:1]:
        events.dispatch(event.pk)
    ApiToken.issue(user=root, name="ERP")
    LeadSource.objects.create(name="Fair")
    CustomFieldDefinition.objects.create(entity="contact", key="budget", label="Budget", field_type="number")
    FieldSetting.objects.create(entity="contact", field_name="phone", is_required=True)
    Notification.objects.create(user=bob, message="Hello")
    return contact


def test_every_model_is_registered():
    assert {model._meta.label_lower for model in admin.site._registry} >= EXPECTED_MODELS


@pytest.mark.parametrize("label", sorted(EXPECTED_MODELS))
def test_changelist_and_object_page_render_for_an_admin(admin_client_for, data, label):
    model = next(m for m in admin.site._registry if m._meta.label_lower == label)
    response = admin_client_for.get(_url(model, "changelist"))
    assert response.status_code == 200
    obj = model._default_manager.order_by("pk").first()
    assert obj is not None, f"no {label} row in the fixture"
    assert admin_client_for.get(_url(model, "change", obj.pk)).status_code == 200
    if admin.site._registry[model].has_add_permission(response.wsgi_request):
        assert admin_client_for.get(_url(model, "add")).status_code == 200


def test_admin_needs_staff(client, alice):
    client.force_login(alice)
    response = client.get(_url(Contact, "changelist"))
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


# --- records are read-only: edits go through the services ----------------------------------------


@pytest.mark.parametrize("model", [Contact, Company, Activity, Event, FieldChange])
def test_records_cannot_be_added_changed_or_deleted_in_admin(admin_client_for, data, model):
    obj = model.objects.order_by("pk").first()
    before = list(model.objects.order_by("pk").values())
    page = admin_client_for.get(_url(model, "change", obj.pk))
    assert page.status_code == 200
    assert b'name="_save"' not in page.content
    assert admin_client_for.post(_url(model, "change", obj.pk), {"first_name": "Hacked"}).status_code == 403
    assert admin_client_for.get(_url(model, "add")).status_code == 403
    assert admin_client_for.post(_url(model, "delete", obj.pk), {"post": "yes"}).status_code == 403
    assert list(model.objects.order_by("pk").values()) == before


def test_contact_search_is_turkish_aware_and_skips_the_full_count(admin_client_for, data):
    ContactFactory(first_name="Zeynep", last_name="Kaya")
    response = admin_client_for.get(_url(Contact, "changelist"), {"q": "isik"})
    assert response.status_code == 200
    assert list(response.context["cl"].result_list) == [data]
    assert response.context["cl"].show_full_result_count is False
    phone = admin_client_for.get(_url(Contact, "changelist"), {"q": "0532 123"})
    assert list(phone.context["cl"].result_list) == [data]


def test_contact_changelist_queries_do_not_grow_with_rows(admin_client_for, data, django_assert_num_queries):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as few:
        admin_client_for.get(_url(Contact, "changelist"))
    for n in range(10):
        services.contact_create(actor=data.owner, data={"first_name": f"Extra {n}", "company": data.company,
                                                         "phone": f"0532 123 45 {10 + n}"})
    with CaptureQueriesContext(connection) as many:
        response = admin_client_for.get(_url(Contact, "changelist"))
    assert len(response.context["cl"].result_list) == 11
    assert len(many) == len(few)


# --- API tokens ----------------------------------------------------------------------------------


def test_adding_a_token_issues_it_and_shows_the_raw_key_once(admin_client_for, bob):
    response = admin_client_for.post(_url(ApiToken, "add"), {"user": bob.pk, "name": "ERP sync"}, follow=True)
    assert response.redirect_chain[0][1] == 302
    token = ApiToken.objects.get(user=bob)
    shown = [str(m) for m in response.context["messages"]]
    raws = [match for text in shown for match in re.findall(r"is (\S+) — copy it now", text)]
    assert len(raws) == 1
    raw = raws[0]
    assert raw.encode() in response.content
    assert raw.startswith(token.prefix)
    assert (token.name, token.key_hash, token.revoked_at) == ("ERP sync", ApiToken.hash(raw), None)
    # The key works for the API, and is stored nowhere in clear.
    assert not ApiToken.objects.filter(key_hash=raw).exists()
    api = admin_client_for.__class__()
    assert api.get("/api/v1/contacts/", HTTP_AUTHORIZATION=f"Token {raw}").status_code == 200
    # Shown once: no later page shows the key again.
    for url in (_url(ApiToken, "changelist"), _url(ApiToken, "change", token.pk)):
        assert raw.encode() not in admin_client_for.get(url).content


def test_a_token_is_not_issued_to_an_inactive_user(admin_client_for, bob):
    bob.is_active = False
    bob.save(update_fields=["is_active"])
    response = admin_client_for.post(_url(ApiToken, "add"), {"user": bob.pk, "name": "ERP"})
    assert response.status_code == 200
    assert response.context["adminform"].form.errors == {
        "user": ["This user is inactive; activate the account before issuing a token."]}
    assert ApiToken.objects.count() == 0


def test_revoke_action_revokes_only_active_tokens(admin_client_for, bob):
    active, _raw = ApiToken.issue(user=bob, name="a")
    old, _raw = ApiToken.issue(user=bob, name="b")
    revoked_at = timezone.now() - timezone.timedelta(days=3)
    ApiToken.objects.filter(pk=old.pk).update(revoked_at=revoked_at)
    response = admin_client_for.post(_url(ApiToken, "changelist"), {
        "action": "revoke", "_selected_action": [active.pk, old.pk]}, follow=True)
    assert response.status_code == 200
    assert "1 token was revoked." in [str(m) for m in response.context["messages"]]
    active.refresh_from_db()
    old.refresh_from_db()
    assert active.revoked_at is not None
    assert old.revoked_at == revoked_at
    assert ApiToken.objects.active().count() == 0


def test_token_list_shows_prefix_user_and_times_but_no_hash(admin_client_for, bob):
    token, _raw = ApiToken.issue(user=bob, name="ERP")
    content = admin_client_for.get(_url(ApiToken, "changelist")).content.decode()
    assert f"{token.prefix}…" in content
    assert str(bob) in content
    assert "ERP" in content
    assert token.key_hash not in content


# --- the lists admins edit -----------------------------------------------------------------------


def test_field_rule_offers_the_configurable_fields_and_checks_the_record_kind(admin_client_for):
    page = admin_client_for.get(_url(FieldSetting, "add")).content.decode()
    assert '<option value="birth_date">birth date</option>' in page
    assert '<option value="tax_number">tax number</option>' in page
    refused = admin_client_for.post(_url(FieldSetting, "add"), {
        "entity": "company", "field_name": "birth_date", "is_required": "on"})
    assert refused.status_code == 200
    assert refused.context["adminform"].form.errors == {
        "field_name": ["Company records have no field “birth_date” that can be configured."]}
    unknown = admin_client_for.post(_url(FieldSetting, "add"), {"entity": "contact", "field_name": "first_name"})
    assert list(unknown.context["adminform"].form.errors) == ["field_name"]
    assert FieldSetting.objects.count() == 0
    created = admin_client_for.post(_url(FieldSetting, "add"), {
        "entity": "company", "field_name": "tax_number", "is_required": "on", "is_important": "on"})
    assert created.status_code == 302
    assert list(FieldSetting.objects.values_list("entity", "field_name", "is_required")) == [
        ("company", "tax_number", True)]


def test_custom_field_form_checks_key_and_choices(admin_client_for):
    base = {"entity": "contact", "label": "Tier", "field_type": "choice", "order": 0, "is_active": "on"}
    bad = admin_client_for.post(_url(CustomFieldDefinition, "add"), {**base, "key": "Tier-1", "choices": "[]"})
    assert bad.context["adminform"].form.errors == {
        "key": ["Use lower-case letters, digits and underscores, starting with a letter (e.g. budget_2025)."],
        "choices": ['List the options as a JSON list of texts, e.g. ["bronze", "silver"].'],
    }
    good = admin_client_for.post(_url(CustomFieldDefinition, "add"), {
        **base, "key": "tier", "choices": '["bronze", "silver"]'})
    assert good.status_code == 302
    assert CustomFieldDefinition.objects.get().choices == ["bronze", "silver"]


def test_lead_sources_and_tags_are_edited_in_admin(admin_client_for):
    response = admin_client_for.post(_url(LeadSource, "add"), {"name": "Trade fair", "is_active": "on", "order": 3})
    assert response.status_code == 302
    assert list(LeadSource.objects.values_list("name", "is_active", "order")) == [("Trade fair", True, 3)]
    from contacts.models import Tag

    admin_client_for.post(_url(Tag, "add"), {"name": "VIP"})
    duplicate = admin_client_for.post(_url(Tag, "add"), {"name": "vip"})
    assert duplicate.status_code == 200
    assert Tag.objects.count() == 1


def test_event_list_filters_pending(admin_client_for, data):
    pending = admin_client_for.get(_url(Event, "changelist"), {"status": "pending"})
    rows = list(pending.context["cl"].result_list)
    assert rows and all(event.dispatched_at is None for event in rows)
    assert set(rows) == set(Event.objects.filter(dispatched_at__isnull=True))
    done = admin_client_for.get(_url(Event, "changelist"), {"status": "dispatched"})
    assert list(done.context["cl"].result_list) == list(Event.objects.filter(dispatched_at__isnull=False)
                                                        .order_by("-id"))


def test_send_again_action_dispatches_pending_events(admin_client_for, data):
    pending = list(Event.objects.filter(dispatched_at__isnull=True).values_list("pk", flat=True))
    response = admin_client_for.post(_url(Event, "changelist"), {
        "action": "send_again", "_selected_action": pending}, follow=True)
    assert f"{len(pending)} events were sent." in [str(m) for m in response.context["messages"]]
    # Eager in tests: dispatched in-process.
    assert Event.objects.filter(dispatched_at__isnull=True).count() == 0


def test_user_admin_sets_role_and_team(admin_client_for, north):
    response = admin_client_for.post(reverse("admin:accounts_user_add"), {
        "username": "newrep", "usable_password": "true", "password1": "a-Long-passw0rd!",
        "password2": "a-Long-passw0rd!", "role": "rep", "team": north.pk, "language": "tr"})
    assert response.status_code == 302
    from accounts.models import User

    user = User.objects.get(username="newrep")
    assert (user.role, user.team, user.language) == ("rep", north, "tr")
    assert user.check_password("a-Long-passw0rd!")


def test_admin_lists_count_at_most_the_cap(admin_client_for, monkeypatch):
    from crm_okr.admin import CappedCountPaginator

    monkeypatch.setattr(CappedCountPaginator, "CAP", 3)
    ContactFactory.create_batch(5)
    paginator = CappedCountPaginator(Contact.objects.all(), 2)
    # Five rows, but the count stops at the cap: pages 1–2 are reachable, a search narrows further.
    assert (paginator.count, paginator.num_pages) == (3, 2)
    response = admin_client_for.get("/admin/contacts/contact/")
    assert response.status_code == 200
