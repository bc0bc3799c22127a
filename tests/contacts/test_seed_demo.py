"""seed_demo: the demo/scale data command (contacts/demo.py)."""

from io import StringIO

import phonenumbers
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.db.models import Count, Max, Q
from django.test import override_settings

from accounts.models import Team, User
from contacts.demo import ascii_name
from contacts.models import (
    Activity,
    Company,
    Consent,
    ConsentLog,
    Contact,
    CustomFieldDefinition,
    LeadSource,
    Tag,
)
from contacts.selectors import contacts_visible_to, open_tasks, search_filter
from contacts.services import company_search_fields, contact_search_fields
from crm_okr.text import fold

pytestmark = pytest.mark.django_db

TABLES = ["contacts_company", "contacts_company_tags", "contacts_contact", "contacts_contact_tags",
          "contacts_lifecyclechange", "contacts_consent", "contacts_consentlog", "contacts_activity"]


def seed(**options) -> str:
    out = StringIO()
    call_command("seed_demo", stdout=out, **{"contacts": 200, "password": "pw-demo", "seed": 7, "deals": 0, **options})
    return out.getvalue()


@pytest.fixture
def seeded():
    return seed()


def test_demo_users_have_their_roles_teams_and_the_password(seeded):
    admin, manager, rep, rep2 = (User.objects.select_related("team").get(username=name)
                                 for name in ["admin", "manager", "rep", "rep2"])
    first, second = Team.objects.get(name="İstanbul Satış"), Team.objects.get(name="Ankara Satış")
    assert (admin.role, admin.is_superuser, admin.is_staff) == (User.Role.ADMIN, True, True)
    assert (manager.role, manager.team, first.manager) == (User.Role.MANAGER, first, manager)
    assert (rep.role, rep.team) == (User.Role.REP, first)
    assert (rep2.role, rep2.team) == (User.Role.REP, second)
    assert User.objects.filter(role=User.Role.REP).count() == 6
    assert all(u.check_password("pw-demo") for u in (admin, manager, rep, rep2))
    for name in ["admin", "manager", "rep", "rep2"]:
        assert f"  {name} " in seeded
    assert "password: pw-demo" in seeded


def test_it_adds_the_requested_contacts_with_companies_lists_and_history(seeded):
    assert Contact.objects.count() == 200
    assert Company.objects.count() == 20
    assert set(LeadSource.objects.values_list("name", flat=True)) >= {"Web form", "Referral", "Event", "Ads",
                                                                       "Social", "Import", "API"}
    assert Tag.objects.count() == 10
    assert set(CustomFieldDefinition.objects.values_list("key", "field_type")) == {
        ("sector", "choice"), ("vip", "boolean"), ("erp_code", "text")}
    assert Activity.objects.count() > 200
    assert set(Activity.objects.values_list("kind", flat=True)) == {"call", "email", "meeting", "note", "task"}
    assert Consent.objects.exists() and ConsentLog.objects.count() >= Consent.objects.count()
    assert "200 contacts" in seeded


def test_every_contact_has_a_lifecycle_history_that_ends_in_its_stage(seeded):
    for contact in Contact.objects.prefetch_related("lifecycle_changes"):
        changes = sorted(contact.lifecycle_changes.all(), key=lambda c: (c.changed_at, c.id))
        assert changes[0].from_stage == ""
        assert changes[-1].to_stage == contact.lifecycle_stage
        assert changes[-1].changed_at == contact.lifecycle_changed_at
        assert all(a.to_stage == b.from_stage for a, b in zip(changes, changes[1:], strict=False))


def test_phones_are_valid_e164(seeded):
    numbers = [p for row in Contact.objects.values_list("phone", "mobile") for p in row if p]
    numbers += [p for p in Company.objects.values_list("phone", flat=True) if p]
    assert len(numbers) > 200
    for number in numbers:
        parsed = phonenumbers.parse(number, None)
        assert phonenumbers.is_valid_number(parsed), number
        assert phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164) == number
    countries = {phonenumbers.region_code_for_number(phonenumbers.parse(n, None)) for n in numbers}
    assert countries == {"TR", "GB"}


def test_emails_are_lower_case_and_unique(seeded):
    emails = [e for e in Contact.objects.values_list("email", flat=True) if e]
    assert len(emails) > 150
    assert all(e == e.lower() and "@" in e for e in emails)
    assert len(set(emails)) == len(emails)


def test_search_fields_are_computed_like_the_services(seeded):
    for c in Contact.objects.all():
        assert (c.sort_name, c.search_text) == contact_search_fields(
            first_name=c.first_name, last_name=c.last_name, email=c.email, phone=c.phone, mobile=c.mobile)
    for c in Company.objects.all():
        assert (c.sort_name, c.search_text) == company_search_fields(
            name=c.name, legal_name=c.legal_name, email=c.email, phone=c.phone, website=c.website)


def test_turkish_names_are_there_and_found_when_typed_without_accents(seeded):
    turkish = Contact.objects.filter(Q(last_name__regex="[İıŞşĞğÇçÖöÜü]")).first()
    assert turkish is not None
    admin = User.objects.get(username="admin")
    typed = ascii_name(f"{turkish.first_name} {turkish.last_name}").lower()
    found = contacts_visible_to(admin).filter(search_filter(typed))
    assert turkish in found


def test_near_duplicates_are_there_on_purpose(seeded):
    # The same person twice: same folded name and the same mobile (typed in another format, parsed to one E.164).
    by_phone = (Contact.objects.exclude(phone="").values("phone").annotate(n=Count("id")).filter(n__gt=1)
                .values_list("phone", flat=True))
    pairs = []
    for phone in by_phone:
        rows = list(Contact.objects.filter(phone=phone).order_by("id"))
        original, twin = rows[0], rows[1]
        if fold(original.full_name) == fold(twin.full_name):
            pairs.append((original, twin))
    assert len(pairs) >= 2
    assert any(a.full_name != b.full_name for a, b in pairs)  # "Şahin" and "Sahin", or "AYŞE"/"Ayşe"
    assert all(a.email != b.email for a, b in pairs)
    assert "near-duplicates" in seeded


def test_last_activity_is_consistent_with_the_activities(seeded):
    done_or_happened = Q(kind__in=["call", "email", "meeting", "note"]) | Q(kind="task", done_at__isnull=False)
    for contact in Contact.objects.all():
        activities = Activity.objects.filter(done_or_happened, contact=contact)
        expected = max([a.done_at or a.occurred_at for a in activities], default=None)
        assert contact.last_activity_at == expected, contact.pk
    for company in Company.objects.annotate(n=Count("activities")).filter(n__gt=0):
        expected = Activity.objects.filter(done_or_happened, company=company).aggregate(
            last=Max("occurred_at"), done=Max("done_at"))
        assert company.last_activity_at == max(v for v in expected.values() if v is not None)


def test_rep_has_open_and_overdue_tasks_for_the_home_page(seeded):
    from django.utils import timezone

    rep = User.objects.get(username="rep")
    tasks = list(open_tasks(user=rep))
    assert len([t for t in tasks if t.due_at < timezone.now()]) >= 4
    assert len([t for t in tasks if t.due_at > timezone.now()]) >= 4
    assert Activity.objects.filter(owner=rep).exclude(kind="task").exists()


def test_it_refuses_to_run_in_production():
    with override_settings(ENVIRONMENT="production"), pytest.raises(CommandError, match="ENVIRONMENT=production"):
        seed()
    assert User.objects.count() == 0
    assert Contact.objects.count() == 0
    assert Team.objects.count() == 0


def test_running_again_adds_nothing_unless_asked_to_append(seeded):
    again = seed(password="other")
    assert "already has 200 contacts" in again
    assert Contact.objects.count() == 200
    assert User.objects.filter(username__in=["admin", "manager", "rep", "rep2"]).count() == 4
    assert User.objects.get(username="rep").check_password("other")

    seed(append=True, seed=8, contacts=100)
    assert Contact.objects.count() == 300
    emails = [e for e in Contact.objects.values_list("email", flat=True) if e]
    assert len(set(emails)) == len(emails)
    assert Team.objects.count() == 3
    assert LeadSource.objects.count() == 10


def _schema():
    with connection.cursor() as cursor:
        cursor.execute("SELECT tablename, indexname, indexdef FROM pg_indexes WHERE tablename = ANY(%s)", [TABLES])
        indexes = set(cursor.fetchall())
        cursor.execute(
            "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid::regclass::text = ANY(%s)", [TABLES])
        constraints = set(cursor.fetchall())
    return indexes, constraints


def test_bulk_mode_puts_back_every_index_and_foreign_key():
    before = _schema()
    out = seed(bulk=True, contacts=150)
    assert "set aside" in out
    assert _schema() == before
    assert Contact.objects.count() == 150
