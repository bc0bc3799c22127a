"""Factories for tests: build real rows through the ORM (services are called by the tests themselves)."""

import factory
from django.utils import timezone

from accounts.models import Team, User
from contacts.models import Activity, Company, Contact, LeadSource, Tag
from crm_okr.text import fold, sort_key


class TeamFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Team

    name = factory.Sequence(lambda n: f"Team {n}")


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    role = User.Role.REP
    password = factory.PostGenerationMethodCall("set_password", "pw")

    @factory.post_generation
    def _save(obj, create, extracted, **kwargs):
        if create:
            obj.save()


class LeadSourceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = LeadSource
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"Source {n}")


class TagFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Tag

    name = factory.Sequence(lambda n: f"tag{n}")


class CompanyFactory(factory.django.DjangoModelFactory):
    """A company row written directly (for fixtures); use contacts.services in tests of behaviour."""

    class Meta:
        model = Company

    name = factory.Sequence(lambda n: f"Company {n}")
    owner = None
    team = factory.LazyAttribute(lambda c: c.owner.team if c.owner else None)
    sort_name = factory.LazyAttribute(lambda c: sort_key(c.name))
    search_text = factory.LazyAttribute(lambda c: fold(c.name))


class ContactFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Contact

    first_name = factory.Sequence(lambda n: f"First{n}")
    last_name = "Person"
    email = factory.Sequence(lambda n: f"person{n}@example.com")
    owner = None
    team = factory.LazyAttribute(lambda c: c.owner.team if c.owner else None)
    sort_name = factory.LazyAttribute(lambda c: sort_key(f"{c.first_name} {c.last_name}"))
    search_text = factory.LazyAttribute(lambda c: fold(f"{c.first_name} {c.last_name} {c.email}"))


class ActivityFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Activity

    kind = Activity.Kind.CALL
    subject = factory.Sequence(lambda n: f"Call {n}")
    contact = factory.SubFactory(ContactFactory)
    owner = factory.LazyAttribute(lambda a: a.contact.owner if a.contact else None)
    team = factory.LazyAttribute(lambda a: a.contact.team if a.contact else None)
    occurred_at = factory.LazyFunction(timezone.now)


class DealFactory(factory.django.DjangoModelFactory):
    """A deal row written directly, with any timestamps (for report fixtures); use pipeline.services for behaviour.

    Pass ``stage``; the pipeline, status and close time follow it unless given.
    """

    class Meta:
        model = "pipeline.Deal"

    name = factory.Sequence(lambda n: f"Deal {n}")
    pipeline = factory.LazyAttribute(lambda d: d.stage.pipeline)
    status = factory.LazyAttribute(lambda d: d.stage.kind)
    owner = None
    team = factory.LazyAttribute(lambda d: d.owner.team if d.owner else None)
    search_text = factory.LazyAttribute(lambda d: fold(d.name))
    created_at = factory.LazyFunction(timezone.now)
    stage_entered_at = factory.LazyAttribute(lambda d: d.created_at)
    closed_at = factory.LazyAttribute(lambda d: None if d.status == "open" else d.stage_entered_at)
    rots_at = factory.LazyAttribute(
        lambda d: d.stage_entered_at + timezone.timedelta(days=d.stage.rotting_days) if d.status == "open" else None
    )
