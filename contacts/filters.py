"""Filters of the contact, company and activity lists in the API (django-filter).

Every parameter is validated: a bad value, an unknown parameter or an unknown custom field is a
400 naming it. Custom fields are filtered with ``?cf_<key>=<value>``: the value is checked against
the field's definition and matched with a JSON containment lookup, which the GIN index on
``custom_fields`` answers.
"""

from django import forms
from django.core.exceptions import ValidationError
from django.db.models import Exists, OuterRef, Q
from django.db.models.functions import Lower
from django.utils.translation import gettext_lazy as _
from django_filters import rest_framework as filters

from accounts.api import BoolFilter, IdFilter, StrictFilterSet
from crm_okr.text import collapse_spaces

from .models import Activity, Company, Contact, CustomFieldDefinition, Entity, LifecycleStage
from .rules import EntityRules, coerce_custom_value
from .selectors import search_filter

CUSTOM_FIELD_PREFIX = "cf_"


def entity_rules(keeper, entity: str) -> EntityRules:
    """The admin's rules for a record kind, loaded once per request and shared by filters and serializers.

    ``keeper`` is what the rules are kept on: the request, or a serializer's context dict outside one.
    """
    store = keeper if isinstance(keeper, dict) else vars(keeper)
    cache = store.setdefault("_entity_rules", {})
    if entity not in cache:
        cache[entity] = EntityRules.load(entity)
    return cache[entity]


class _CustomFieldValue(forms.CharField):
    """A custom-field value from the query string, checked and converted by the field's type."""

    def __init__(self, *, definition, **kwargs):
        kwargs.setdefault("max_length", 1000)
        super().__init__(**kwargs)
        self.definition = definition

    def clean(self, value):
        value = super().clean(value)
        if value in ("", None):
            return None
        try:
            return coerce_custom_value(self.definition, value)
        except ValidationError as exc:
            raise forms.ValidationError(exc.messages) from None


class CustomFieldFilter(filters.Filter):
    field_class = _CustomFieldValue

    def __init__(self, *, key: str, definition, **kwargs):
        super().__init__(field_name="custom_fields", definition=definition, **kwargs)
        self.key = key

    def filter(self, qs, value):
        if value is None:
            return qs
        return qs.filter(custom_fields__contains={self.key: value})


class RecordFilter(StrictFilterSet):
    """What the contact and company lists share: owner, team, source, tag, dates, search, custom fields."""

    entity: str = ""

    owner = IdFilter(field_name="owner_id", help_text=_("Owner's user id."))
    team = IdFilter(field_name="team_id", help_text=_("Team id."))
    lead_source = IdFilter(field_name="lead_source_id", help_text=_("Lead source id."))
    tag = filters.CharFilter(method="filter_tag", max_length=50, help_text=_("Tag name (any case)."))
    created_after = filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte",
                                              help_text=_("Created at or after this time (ISO 8601)."))
    created_before = filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt",
                                               help_text=_("Created before this time (ISO 8601)."))
    updated_since = filters.IsoDateTimeFilter(field_name="updated_at", lookup_expr="gte",
                                              help_text=_("Changed at or after this time (ISO 8601): for syncing."))
    has_email = BoolFilter(method="filter_has_email", help_text=_("Only records with (true) or without (false) "
                                                                   "an e-mail address."))
    archived = BoolFilter(method="filter_archived", help_text=_("true: only archived records; false (the default): "
                                                                 "only records that are not archived."))
    search = filters.CharFilter(method="filter_search", max_length=200, help_text=_(
        "Words to find in the name, e-mail, phone or company; Turkish-aware and accent-insensitive "
        "(“sahin” finds “Şahin”, “ışık” finds “IŞIK”)."))

    def __init__(self, data=None, *args, **kwargs):
        super().__init__(data, *args, **kwargs)
        custom = [name for name in (data or {}) if name.startswith(CUSTOM_FIELD_PREFIX)]
        if custom:
            definitions = {d.key: d for d in entity_rules(self.request, self.entity).custom_fields}
            for name in custom:
                key = name[len(CUSTOM_FIELD_PREFIX):]
                if key in definitions:
                    self.filters[name] = CustomFieldFilter(key=key, definition=definitions[key])
                else:
                    self.refuse(name, _("Unknown custom field “%(key)s”. Known fields: %(known)s.") % {
                        "key": key[:50], "known": ", ".join(sorted(definitions)) or "—"})

    def accepts(self, name):
        return name.startswith(CUSTOM_FIELD_PREFIX)

    def filter_queryset(self, queryset):
        if self.form.cleaned_data.get("archived") is None:
            queryset = queryset.filter(archived_at__isnull=True)
        return super().filter_queryset(queryset)

    @classmethod
    def unfiltered(cls, queryset):
        """What :meth:`filter_queryset` gives when no filter parameter is sent (only paging ones): the records
        that are not archived. Lets a list skip building and validating the filter form (a test compares the
        SQL of both)."""
        return queryset.filter(archived_at__isnull=True)

    def filter_tag(self, queryset, name, value):
        value = collapse_spaces(value)
        if not value:
            return queryset
        through = queryset.model.tags.through
        owner_column = f"{queryset.model._meta.model_name}_id"
        tagged = through.objects.annotate(tag_name=Lower("tag__name")).filter(
            **{owner_column: OuterRef("pk"), "tag_name": value.lower()})
        return queryset.filter(Exists(tagged))

    def filter_has_email(self, queryset, name, value: bool):
        return queryset.exclude(email="") if value else queryset.filter(email="")

    def filter_archived(self, queryset, name, value: bool):
        return queryset.filter(archived_at__isnull=not value)

    def filter_search(self, queryset, name, value):
        if not value.strip():
            return queryset
        return queryset.filter(search_filter(value, model=queryset.model))


class ContactFilter(RecordFilter):
    entity = Entity.CONTACT

    # distinct=False: one value per row, so no SELECT DISTINCT over a million contacts.
    lifecycle_stage = filters.MultipleChoiceFilter(
        distinct=False,
        choices=LifecycleStage.choices, help_text=_("One or more stages: ?lifecycle_stage=lead&lifecycle_stage=mql."))
    company = IdFilter(field_name="company_id", help_text=_("Company id."))

    class Meta:
        model = Contact
        fields = []


class CompanyFilter(RecordFilter):
    entity = Entity.COMPANY

    class Meta:
        model = Company
        fields = []


class ActivityFilter(StrictFilterSet):
    contact = IdFilter(field_name="contact_id", help_text=_("Contact id."))
    company = IdFilter(method="filter_company", help_text=_(
        "Company id: the company's activities and those of its contacts."))
    kind = filters.MultipleChoiceFilter(distinct=False, choices=Activity.Kind.choices, help_text=_("One or more kinds."))
    owner = IdFilter(field_name="owner_id", help_text=_("Id of the user who logged it."))
    assignee = IdFilter(field_name="assignee_id", help_text=_("Id of the user a task is assigned to."))
    done = BoolFilter(method="filter_done", help_text=_("Tasks only: false for open tasks, true for done ones."))
    due_before = filters.IsoDateTimeFilter(field_name="due_at", lookup_expr="lt",
                                           help_text=_("Tasks due before this time (ISO 8601)."))
    occurred_after = filters.IsoDateTimeFilter(field_name="occurred_at", lookup_expr="gte",
                                               help_text=_("Happened at or after this time (ISO 8601)."))
    occurred_before = filters.IsoDateTimeFilter(field_name="occurred_at", lookup_expr="lt",
                                                help_text=_("Happened before this time (ISO 8601)."))

    class Meta:
        model = Activity
        fields = []

    def filter_company(self, queryset, name, value: int):
        return queryset.filter(Q(company_id=value) | Q(contact__company_id=value))

    def filter_done(self, queryset, name, value: bool):
        return queryset.filter(kind=Activity.Kind.TASK, done_at__isnull=not value)


class CustomFieldDefinitionFilter(StrictFilterSet):
    entity = filters.ChoiceFilter(choices=Entity.choices, help_text=_("Record kind."))
    is_active = BoolFilter(field_name="is_active")

    class Meta:
        model = CustomFieldDefinition
        fields = []
