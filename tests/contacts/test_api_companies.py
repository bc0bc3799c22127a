"""Companies through the API: visibility, create/update through the services, archive, filters."""

import pytest

from contacts import services
from contacts.models import Company

pytestmark = pytest.mark.django_db

URL = "/api/v1/companies/"


@pytest.fixture
def company(alice):
    return services.company_create(actor=alice, data={"name": "Işık Tekstil", "phone": "0212 555 12 12",
                                                       "tags": ["textile"]})


@pytest.mark.parametrize("name, read, write", [
    ("alice", 200, 200), ("bob", 200, 403), ("charlie", 404, 404), ("mona", 200, 200), ("sam", 200, 200),
    ("integ", 200, 200),
])
def test_company_visibility_and_edit_rights(request, api_for, company, name, read, write):
    api = api_for(request.getfixturevalue(name))

    assert api.get(f"{URL}{company.pk}/").status_code == read
    assert api.patch(f"{URL}{company.pk}/", {"industry": "Textile"}, format="json").status_code == write
    company.refresh_from_db()
    assert company.industry == ("Textile" if write == 200 else "")


def test_create_company_normalises_and_answers_every_field(api_for, alice, north):
    response = api_for(alice).post(URL, {"name": "  Koç   Holding ", "phone": "0212 555 12 12",
                                         "website": "https://koc.com.tr", "annual_revenue": "1250000.50",
                                         "size": "1000+", "tags": ["holding"]}, format="json")

    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["name"], body["phone"], body["annual_revenue"], body["team"]) == (
        "Koç Holding", "+902125551212", "1250000.50", north.pk)
    assert body["tags"] == ["holding"]
    assert 0 <= body["completeness"] <= 100


@pytest.mark.parametrize("body, fields", [
    ({}, ["name"]),
    ({"name": "x" * 100_000}, ["name"]),
    ({"name": "A", "website": "not a url"}, ["website"]),
    ({"name": "A", "annual_revenue": "lots"}, ["annual_revenue"]),
    ({"name": "A", "annual_revenue": "NaN"}, ["annual_revenue"]),
    ({"name": "A", "size": "huge"}, ["size"]),
    ({"name": "A", "phone": "123"}, ["phone"]),
    ({"name": "A", "lead_source": 999999}, ["lead_source"]),
    ({"name": "A", "employees": 5}, ["employees"]),
])
def test_bad_company_input_is_refused(api_for, alice, body, fields):
    response = api_for(alice).post(URL, body, format="json")

    assert response.status_code == 400
    assert sorted(response.json()["errors"]) == fields
    assert not Company.objects.exists()


def test_delete_archives_the_company(api_for, alice, bob, company):
    assert api_for(bob).delete(f"{URL}{company.pk}/").status_code == 403

    response = api_for(alice).delete(f"{URL}{company.pk}/")

    assert response.status_code == 204
    company.refresh_from_db()
    assert company.archived_at is not None
    assert api_for(alice).get(URL).json()["results"] == []


def test_company_search_and_tag_filter(api_for, alice, company):
    other = services.company_create(actor=alice, data={"name": "Şahin Gıda"})
    api = api_for(alice)

    assert [r["id"] for r in api.get(URL, {"search": "isik"}).json()["results"]] == [company.pk]
    assert [r["id"] for r in api.get(URL, {"search": "sahin gida"}).json()["results"]] == [other.pk]
    assert [r["id"] for r in api.get(URL, {"tag": "TEXTILE"}).json()["results"]] == [company.pk]
    assert [r["id"] for r in api.get(URL, {"ordering": "-name"}).json()["results"]] == [other.pk, company.pk]
