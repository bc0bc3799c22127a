"""The API's fast row output must equal DRF's generic ModelSerializer output, field for field."""

from datetime import date
from decimal import Decimal

import pytest
from django.test import RequestFactory
from rest_framework import serializers

from contacts import services
from contacts.api.serializers import CompanySerializer, ContactSerializer
from contacts.models import CustomFieldDefinition, LeadSource


def _context(user):
    request = RequestFactory().get("/api/v1/contacts/")
    request.user = user
    return {"request": request}


@pytest.mark.django_db
def test_fast_contact_output_equals_drf_generic_output(alice):
    CustomFieldDefinition.objects.create(entity="contact", key="vip", label="VIP", field_type="boolean",
                                         is_important=True)
    source = LeadSource.objects.create(name="Web form")
    company = services.company_create(actor=alice, data={
        "name": "Işık Tekstil", "website": "https://isik.example.com", "annual_revenue": Decimal("1250000.50"),
        "size": "10-49", "tags": ["vip"],
    })
    full = services.contact_create(actor=alice, data={
        "first_name": "Ayşe", "last_name": "Şahin", "email": "ayse@example.com", "phone": "0532 123 45 67",
        "company": company, "lead_source": source, "lifecycle_stage": "customer", "birth_date": date(1990, 5, 17),
        "gender": "female", "preferred_channel": "email", "city": "İstanbul", "country": "tr",
        "tags": ["VIP", "renewal"], "custom_fields": {"vip": True},
    })
    empty = services.contact_create(actor=alice, data={"first_name": "Kemal"})

    for record, serializer_class in ((full, ContactSerializer), (empty, ContactSerializer),
                                     (company, CompanySerializer)):
        serializer = serializer_class(context=_context(alice))
        fast = serializer.to_representation(record)
        generic = serializers.ModelSerializer.to_representation(serializer, record)
        assert fast == generic
        assert list(fast) == list(generic)
