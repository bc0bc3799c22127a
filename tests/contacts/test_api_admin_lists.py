"""Tags, lead sources and custom-field definitions: everyone reads, only admins write."""

import pytest

from contacts import services
from contacts.models import CustomFieldDefinition, LeadSource, Tag
from tests.factories import LeadSourceFactory, TagFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("path", ["tags", "lead-sources", "custom-fields"])
@pytest.mark.parametrize("name", ["alice", "charlie", "mona", "integ"])
def test_non_admins_read_but_cannot_write(request, api_for, path, name):
    api = api_for(request.getfixturevalue(name))
    body = {"tags": {"name": "new"}, "lead-sources": {"name": "new"},
            "custom-fields": {"entity": "contact", "key": "new", "label": "New", "field_type": "text"}}[path]

    assert api.get(f"/api/v1/{path}/").status_code == 200
    response = api.post(f"/api/v1/{path}/", body, format="json")

    assert response.status_code == 403
    assert response.json() == {"errors": {"detail": ["Only admins can change this list."]}}
    assert not (Tag.objects.exists() or LeadSource.objects.exists() or CustomFieldDefinition.objects.exists())


def test_admin_creates_renames_and_deletes_a_tag(api_for, sam, alice):
    api = api_for(sam)

    created = api.post("/api/v1/tags/", {"name": "VIP"}, format="json")
    tag_id = created.json()["id"]
    contact = services.contact_create(actor=alice, data={"first_name": "A", "tags": ["vip"]})
    renamed = api.patch(f"/api/v1/tags/{tag_id}/", {"name": "Key account"}, format="json")
    deleted = api.delete(f"/api/v1/tags/{tag_id}/")

    assert (created.status_code, renamed.status_code, deleted.status_code) == (201, 200, 204)
    assert renamed.json() == {"id": tag_id, "name": "Key account"}
    assert list(contact.tags.all()) == []


@pytest.mark.parametrize("body, field", [
    ({"name": "vip"}, "name"),
    ({"name": ""}, "name"),
    ({"name": "x" * 51}, "name"),
    ({"name": 5}, "name"),
    ({"name": "ok", "colour": "red"}, "colour"),
])
def test_bad_tag_is_refused(api_for, sam, body, field):
    TagFactory(name="VIP")

    response = api_for(sam).post("/api/v1/tags/", body, format="json")

    assert response.status_code == 400
    assert list(response.json()["errors"]) == [field]
    assert list(Tag.objects.values_list("name", flat=True)) == ["VIP"]


def test_lead_source_in_use_is_not_deleted(api_for, sam, alice):
    used = LeadSourceFactory(name="Fuar")
    unused = LeadSourceFactory(name="Radio")
    services.contact_create(actor=alice, data={"first_name": "A", "lead_source": used})
    api = api_for(sam)

    refused = api.delete(f"/api/v1/lead-sources/{used.pk}/")
    deleted = api.delete(f"/api/v1/lead-sources/{unused.pk}/")
    deactivated = api.patch(f"/api/v1/lead-sources/{used.pk}/", {"is_active": False}, format="json")

    assert refused.status_code == 409
    assert list(refused.json()["errors"]) == ["detail"]
    assert deleted.status_code == 204
    assert deactivated.json() == {"id": used.pk, "name": "Fuar", "is_active": False, "order": 0}


def test_duplicate_lead_source_name_is_refused(api_for, sam):
    LeadSourceFactory(name="Web form")

    response = api_for(sam).post("/api/v1/lead-sources/", {"name": "Web form"}, format="json")

    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["name"]


def test_lead_sources_are_listed_in_their_order(api_for, alice):
    b = LeadSource.objects.create(name="B", order=2)
    a = LeadSource.objects.create(name="A", order=1)

    results = api_for(alice).get("/api/v1/lead-sources/").json()["results"]

    assert [r["id"] for r in results] == [a.pk, b.pk]


def test_admin_defines_a_choice_field_that_contacts_then_use(api_for, sam, alice):
    response = api_for(sam).post("/api/v1/custom-fields/", {
        "entity": "contact", "key": "sector", "label": "Sector", "field_type": "choice",
        "choices": [" Retail ", "Energy", "Retail"], "is_important": True}, format="json")
    contact = api_for(alice).post("/api/v1/contacts/", {"first_name": "A", "custom_fields": {"sector": "Energy"}},
                                  format="json")

    assert response.status_code == 201, response.json()
    assert response.json()["choices"] == ["Retail", "Energy"]
    assert contact.status_code == 201
    assert contact.json()["custom_fields"] == {"sector": "Energy"}


@pytest.mark.parametrize("body, field", [
    ({"entity": "contact", "key": "Sector-1", "label": "S", "field_type": "text"}, "key"),
    ({"entity": "contact", "key": "taken", "label": "S", "field_type": "text"}, "key"),
    ({"entity": "ticket", "key": "s", "label": "S", "field_type": "text"}, "entity"),
    ({"entity": "contact", "key": "s", "label": "S", "field_type": "colour"}, "field_type"),
    ({"entity": "contact", "key": "s", "label": "S", "field_type": "choice"}, "choices"),
    ({"entity": "contact", "key": "s", "label": "S", "field_type": "choice", "choices": "a,b"}, "choices"),
    ({"entity": "contact", "key": "s", "field_type": "text"}, "label"),
])
def test_bad_custom_field_definition_is_refused(api_for, sam, body, field):
    CustomFieldDefinition.objects.create(entity="contact", key="taken", label="Taken", field_type="text")

    response = api_for(sam).post("/api/v1/custom-fields/", body, format="json")

    assert response.status_code == 400
    assert list(response.json()["errors"]) == [field]
    assert CustomFieldDefinition.objects.count() == 1


def test_custom_field_key_and_type_cannot_change(api_for, sam):
    definition = CustomFieldDefinition.objects.create(entity="contact", key="budget", label="Budget",
                                                      field_type="number")
    api = api_for(sam)

    refused = api.patch(f"/api/v1/custom-fields/{definition.pk}/", {"key": "money", "field_type": "text"},
                        format="json")
    relabelled = api.patch(f"/api/v1/custom-fields/{definition.pk}/", {"label": "Yearly budget"}, format="json")

    assert refused.status_code == 400
    assert sorted(refused.json()["errors"]) == ["field_type", "key"]
    assert relabelled.json()["label"] == "Yearly budget"
    definition.refresh_from_db()
    assert (definition.key, definition.field_type) == ("budget", "number")
    assert api.delete(f"/api/v1/custom-fields/{definition.pk}/").status_code == 405


def test_custom_fields_filter_by_entity(api_for, alice):
    contact_field = CustomFieldDefinition.objects.create(entity="contact", key="a", label="A", field_type="text")
    CustomFieldDefinition.objects.create(entity="company", key="b", label="B", field_type="text")

    results = api_for(alice).get("/api/v1/custom-fields/", {"entity": "contact"}).json()["results"]

    assert [r["id"] for r in results] == [contact_field.pk]
