"""Who may change what, enforced by the services themselves (every door inherits it)."""

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from contacts import services
from contacts.models import Company, Contact
from crm_okr.models import Event, FieldChange

pytestmark = pytest.mark.django_db


def _state():
    return (
        list(Contact.objects.order_by("id").values()),
        list(Company.objects.order_by("id").values()),
        Event.objects.count(),
        FieldChange.objects.count(),
    )


@pytest.fixture
def alices_contact(alice):
    return services.contact_create(actor=alice, data={"first_name": "Ayşe", "city": "Ankara"})


def test_rep_edits_own_contact(alice, alices_contact):
    services.contact_update(contact=alices_contact, actor=alice, data={"city": "Bursa"})
    assert Contact.objects.get().city == "Bursa"


def test_rep_cannot_edit_teammates_contact(bob, alices_contact):
    before = _state()
    with pytest.raises(PermissionDenied):
        services.contact_update(contact=alices_contact, actor=bob, data={"city": "Bursa"})
    with pytest.raises(PermissionDenied):
        services.contact_archive(contact=alices_contact, actor=bob)
    assert _state() == before


def test_outsider_cannot_edit_contact(charlie, alices_contact):
    before = _state()
    with pytest.raises(PermissionDenied):
        services.contact_update(contact=alices_contact, actor=charlie, data={"city": "Bursa"})
    assert _state() == before


def test_manager_edits_and_reassigns_the_teams_contact(alice, bob, mona, alices_contact):
    services.contact_update(contact=alices_contact, actor=mona, data={"city": "Bursa", "owner": bob})
    contact = Contact.objects.get()
    assert (contact.city, contact.owner, contact.team) == ("Bursa", bob, bob.team)


def test_manager_cannot_edit_another_teams_contact(charlie, mona):
    contact = services.contact_create(actor=charlie, data={"first_name": "Can"})
    before = _state()
    with pytest.raises(PermissionDenied):
        services.contact_update(contact=contact, actor=mona, data={"city": "Bursa"})
    assert _state() == before


def test_manager_cannot_give_a_contact_to_another_teams_user(mona, charlie, alices_contact):
    before = _state()
    with pytest.raises(ValidationError) as exc:
        services.contact_update(contact=alices_contact, actor=mona, data={"owner": charlie})
    assert exc.value.message_dict == {"owner": [f"You cannot give records to {charlie}."]}
    assert _state() == before


def test_admin_and_integration_edit_everything(sam, integ, alices_contact, charlie):
    services.contact_update(contact=alices_contact, actor=sam, data={"city": "Bursa"})
    services.contact_update(contact=alices_contact, actor=integ, data={"owner": charlie})
    contact = Contact.objects.get()
    assert (contact.city, contact.owner, contact.team) == ("Bursa", charlie, charlie.team)


def test_rep_cannot_give_a_contact_to_another_teams_user(alice, charlie, alices_contact):
    before = _state()
    with pytest.raises(ValidationError) as exc:
        services.contact_update(contact=alices_contact, actor=alice, data={"owner": charlie})
    assert exc.value.message_dict == {"owner": [f"You cannot give records to {charlie}."]}
    with pytest.raises(ValidationError):
        services.contact_create(actor=alice, data={"first_name": "Can", "owner": charlie})
    assert _state() == before


def test_rep_assigns_only_to_themselves_not_even_to_a_teammate(alice, bob, alices_contact):
    # accounts.selectors.assignable_owners: reps only themselves; managers hand records out.
    before = _state()
    with pytest.raises(ValidationError) as exc:
        services.contact_update(contact=alices_contact, actor=alice, data={"owner": bob})
    assert list(exc.value.message_dict) == ["owner"]
    assert _state() == before


def test_keeping_the_current_owner_is_always_allowed(alice, mona):
    contact = services.contact_create(actor=mona, data={"first_name": "Ayşe", "owner": alice})
    services.contact_update(contact=contact, actor=alice, data={"owner": alice, "city": "Bursa"})
    assert Contact.objects.get().city == "Bursa"


def test_rep_cannot_edit_teammates_company(alice, bob):
    company = services.company_create(actor=alice, data={"name": "Acme"})
    before = _state()
    with pytest.raises(PermissionDenied):
        services.company_update(company=company, actor=bob, data={"name": "Acme 2"})
    assert _state() == before
