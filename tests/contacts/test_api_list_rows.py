"""The list endpoints write plain rows (values_list + one tag query) instead of serializing model instances.

Their answer must be the very bytes DRF's generic list gives (model instances, prefetched tags, the
serializer), for every field type: text with Turkish letters, ids, dates, times in and out of UTC, a
decimal, tags, custom fields of every type, completeness with admin rules, and the next/previous links.
"""

import json
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from django.db.models import Q
from django.utils import timezone, translation
from rest_framework import mixins
from rest_framework.test import APIRequestFactory, force_authenticate

from contacts import services
from contacts.api.views import CompanyViewSet, ContactViewSet
from contacts.filters import ContactFilter
from contacts.models import Company, Contact, CustomFieldDefinition, FieldSetting, LeadSource


class GenericContactViewSet(ContactViewSet):
    """The list as DRF writes it: model instances through ContactSerializer(many=True)."""

    def list(self, request, *args, **kwargs):
        return mixins.ListModelMixin.list(self, request, *args, **kwargs)


class GenericCompanyViewSet(CompanyViewSet):
    def list(self, request, *args, **kwargs):
        return mixins.ListModelMixin.list(self, request, *args, **kwargs)


def _content(viewset, path, params, user):
    request = APIRequestFactory().get(path, params)
    force_authenticate(request, user=user)
    response = viewset.as_view({"get": "list"})(request)
    assert response.status_code == 200, response.data
    response.render()
    return response.content


def _assert_same(path, params, user, fast, generic):
    new = _content(fast, path, params, user)
    old = _content(generic, path, params, user)
    assert new == old
    return new


@pytest.fixture
def records(alice, bob):
    for key, field_type, extra in [
        ("sector", "text", {}), ("seats", "number", {"is_important": True}), ("renewal", "date", {}),
        ("tier", "choice", {"choices": ["Altın", "Gümüş"]}), ("vip", "boolean", {"is_important": True}),
    ]:
        for entity in ("contact", "company"):
            CustomFieldDefinition.objects.create(entity=entity, key=key, label=key.title(), field_type=field_type,
                                                 **extra)
    FieldSetting.objects.create(entity="contact", field_name="mobile", is_important=True)
    FieldSetting.objects.create(entity="contact", field_name="city", is_important=False)
    FieldSetting.objects.create(entity="company", field_name="annual_revenue", is_important=True)
    source = LeadSource.objects.create(name="Fuar — İstanbul")
    custom = {"sector": "Perakende “ölçek”", "seats": 12.5, "renewal": "2027-02-28", "tier": "Altın", "vip": True}
    company = services.company_create(actor=alice, data={
        "name": "Işık Tekstil A.Ş.", "legal_name": "IŞIK TEKSTİL SANAYİ", "tax_number": "1234567890",
        "website": "https://isik.example.com", "email": "info@isik.example.com", "phone": "0212 555 44 33",
        "industry": "Tekstil", "size": "10-49", "annual_revenue": Decimal("1250000.50"),
        "address": "Çırağan Cad. No: 5\nBeşiktaş", "city": "İstanbul", "country": "tr", "lead_source": source,
        "tags": ["Öncelikli", "vip"], "custom_fields": custom,
    })
    services.company_create(actor=bob, data={"name": "Boş Şirket"})
    full = services.contact_create(actor=bob, data={
        "first_name": "Ayşe Gül", "last_name": "Şahin-Öztürk", "email": "AYSE@example.com", "phone": "0532 123 45 67",
        "mobile": "+44 20 7946 0958", "job_title": "Satın Alma Müdürü", "company": company, "lead_source": source,
        "lifecycle_stage": "customer", "preferred_channel": "email", "language": "tr",
        "birth_date": date(1990, 5, 17), "gender": "female", "city": "İzmir", "country": "tr",
        "notes": 'Çok "önemli" müşteri\n\ttab, emoji 🚀, ters \\ eğik',
        "tags": ["Çağrı", "renewal", "VIP-2", "ışık"], "custom_fields": custom,
    })
    Contact.objects.filter(pk=full.pk).update(
        last_activity_at=datetime(2026, 3, 28, 21, 30, 15, 123456, tzinfo=UTC))
    partial = services.contact_create(actor=alice, data={
        "first_name": "İsmail", "custom_fields": {"seats": 3, "vip": False}, "tags": ["ışık"]})
    services.contact_create(actor=alice, data={"first_name": "Kemal"})
    archived = services.contact_create(actor=alice, data={"first_name": "Zeynep", "last_name": "Çelik",
                                                          "email": "z@example.com"})
    services.contact_archive(contact=archived, actor=alice)
    return {"full": full, "partial": partial, "archived": archived, "company": company}


@pytest.mark.parametrize("zone", ["Europe/Istanbul", "UTC", "America/New_York"])
@pytest.mark.parametrize("language", ["en", "tr"])
def test_contact_list_rows_equal_the_serializer_byte_for_byte(records, alice, zone, language):
    path = "/api/v1/contacts/"
    with timezone.override(zone), translation.override(language):
        first = _assert_same(path, {}, alice, ContactViewSet, GenericContactViewSet)
        assert "Şahin-Öztürk".encode() in first and b'"seats":12.5' in first
        for params in [
            {"page_size": 1}, {"page_size": 2, "ordering": "-created"}, {"archived": "true"},
            {"archived": "false", "ordering": "-updated"},
            {"search": "sahin"}, {"lifecycle_stage": "customer"}, {"tag": "IŞIK"}, {"cf_vip": "true"},
            {"cf_tier": "Altın"}, {"owner": records["full"].owner_id}, {"page_size": 200, "ordering": "-name"},
        ]:
            _assert_same(path, params, alice, ContactViewSet, GenericContactViewSet)


def test_contact_list_rows_follow_next_and_previous_links_like_the_serializer(records, alice):
    path, params, pages = "/api/v1/contacts/", {"page_size": 1}, 0
    while True:
        body = json.loads(_assert_same(path, params, alice, ContactViewSet, GenericContactViewSet))
        pages += 1
        if body["previous"]:
            _assert_same(path, {"page_size": 1, "cursor": body["previous"].split("cursor=")[1].split("&")[0]},
                         alice, ContactViewSet, GenericContactViewSet)
        if not body["next"]:
            break
        params = {"page_size": 1, "cursor": body["next"].split("cursor=")[1].split("&")[0]}
    assert pages == 3  # the three contacts that are not archived


def test_company_list_rows_equal_the_serializer_byte_for_byte(records, alice):
    with timezone.override("UTC"):
        body = _assert_same("/api/v1/companies/", {}, alice, CompanyViewSet, GenericCompanyViewSet)
    assert b'"annual_revenue":"1250000.50"' in body
    _assert_same("/api/v1/companies/", {"page_size": 1, "ordering": "-created"}, alice, CompanyViewSet,
                 GenericCompanyViewSet)
    assert Company.objects.count() == 2


def test_an_empty_list_is_the_same(alice):
    body = _assert_same("/api/v1/contacts/", {}, alice, ContactViewSet, GenericContactViewSet)
    assert body == b'{"next":null,"previous":null,"results":[]}'


def test_a_list_without_filter_parameters_has_the_sql_of_the_empty_filter_form(records, alice, rf):
    queryset = Contact.objects.filter(Q(team_id=alice.team_id))
    request = rf.get("/api/v1/contacts/")
    request.user = alice
    through_form = ContactFilter(data={}, queryset=queryset, request=request).qs
    assert str(ContactFilter.unfiltered(queryset).query) == str(through_form.query)
