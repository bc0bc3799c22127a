"""Serializers of the contacts API: types and shape only; the rules live in contacts.services."""

import re

from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from rest_framework import serializers
from rest_framework.fields import SkipField, _UnvalidatedField
from rest_framework.relations import PKOnlyObject

from accounts.api import StrictCharField, StrictModelSerializer, StrictSerializer, request_user
from accounts.models import User
from accounts.selectors import users_visible_to
from crm_okr.models import FieldChange

from ..filters import entity_rules
from ..models import (
    Activity,
    Company,
    Consent,
    ConsentLog,
    Contact,
    CustomFieldDefinition,
    Entity,
    LeadSource,
    LifecycleChange,
    Tag,
)
from ..selectors import companies_visible_to, contacts_visible_to

KEY_RE = re.compile(r"^[a-z][a-z0-9_]*$")


class TagNamesField(serializers.ListField):
    """Tags as a list of names; names that do not exist yet become new tags (contacts.services)."""

    child = StrictCharField(max_length=50, allow_blank=False)

    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", 100)
        kwargs.setdefault("help_text", _("Tag names; unknown names become new tags. Sending a list replaces them."))
        super().__init__(**kwargs)

    def to_representation(self, value):
        # value is the related manager; .all() is answered by the list's prefetch.
        return [tag.name for tag in value.all()]


# Field classes whose output is str(value) (choice keys are strings), None staying None.
_TEXT_FIELDS = (serializers.CharField, serializers.EmailField, serializers.ChoiceField, StrictCharField)


def _reader(field):
    """A function that gives the field's output for an instance, as DRF's Serializer.to_representation does."""
    source = field.source_attrs[0] if len(field.source_attrs) == 1 else None
    if source is not None and type(field) in _TEXT_FIELDS:
        def read(instance):
            value = getattr(instance, source)
            return None if value is None else str(value)
        return read
    if source is not None and isinstance(field, serializers.PrimaryKeyRelatedField) and field.pk_field is None:
        attname = f"{source}_id"
        return lambda instance: getattr(instance, attname)

    def generic(instance):
        attribute = field.get_attribute(instance)
        check = attribute.pk if isinstance(attribute, PKOnlyObject) else attribute
        return None if check is None else field.to_representation(attribute)

    return generic


# --- list rows -------------------------------------------------------------------------------------
#
# The list endpoints read plain rows (``values_list``), not model instances, and write them with a plan
# built once per process from the serializer's own fields: the same output as the serializer's, byte for
# byte (tests/contacts/test_api_list_rows.py compares them), without building 50 model instances, their
# tag managers and a serializer per request.


def _row_reader(field, model):
    """A function (row, state) -> the field's output for a row of ``model``'s concrete columns.

    ``state`` is a :class:`_RowState`: what one request shares between its rows (time zone, tags, rules).
    """
    name = field.field_name
    source = field.source_attrs[0] if len(field.source_attrs) == 1 else None
    if isinstance(field, TagNamesField):
        return lambda row, state: list(state.tags.get(row.pk, ()))
    if isinstance(field, serializers.SerializerMethodField) and name == "completeness":
        return lambda row, state: state.rules.completeness(row)
    if source is None:
        raise TypeError(f"No list-row reader for {name!r}")
    prop = getattr(model, source, None)
    if isinstance(prop, property):
        # A model property (full_name): its function reads the row's columns by the same names.
        getter = prop.fget
    else:
        model_field = model._meta.get_field(source)
        getter = _attrgetter(model_field.attname)
    if type(field) in _TEXT_FIELDS:
        def read_text(row, state):
            value = getter(row)
            return None if value is None else str(value)
        return read_text
    if isinstance(field, serializers.PrimaryKeyRelatedField) and field.pk_field is None:
        return lambda row, state: getter(row)
    if type(field) is serializers.IntegerField:
        def read_int(row, state):
            value = getter(row)
            return None if value is None else int(value)
        return read_int
    if type(field) is serializers.DateTimeField and not hasattr(field, "format") and not hasattr(field, "timezone"):
        def read_datetime(row, state):
            # DateTimeField.to_representation with the request's time zone looked up once, not per value.
            value = getter(row)
            if not value:
                return None
            if state.tz is None or value.tzinfo is None or value.utcoffset() is None:
                return field.to_representation(value)
            try:
                text = value.astimezone(state.tz).isoformat()
            except OverflowError:
                return field.to_representation(value)
            return text[:-6] + "Z" if text.endswith("+00:00") else text
        return read_datetime
    if type(field) is serializers.DictField and type(field.child) is _UnvalidatedField:
        def read_dict(row, state):
            value = getter(row)
            return None if value is None else {str(key): item for key, item in value.items()}
        return read_dict

    def read_other(row, state):
        value = getter(row)
        return None if value is None else field.to_representation(value)

    return read_other


def _attrgetter(name):
    return lambda row: getattr(row, name)


class _RowState:
    __slots__ = ("tz", "tags", "rules")

    def __init__(self, *, tz, tags, rules):
        self.tz, self.tags, self.rules = tz, tags, rules


_ROW_PLANS: dict[type, list] = {}


def _set_queryset(fields, name, queryset):
    if name in fields and not fields[name].read_only:
        fields[name].queryset = queryset


def _reads_input(serializer) -> bool:
    """Whether the serializer validates a body (only then are the related ids looked up, in the visible
    rows: building those querysets costs a query for managers, which a list must not pay)."""
    return hasattr(serializer.root, "initial_data")


class RecordSerializer(StrictModelSerializer):
    """What contacts and companies share: ids of owner/team/lead source, tags, custom fields, completeness."""

    entity = ""

    tags = TagNamesField(required=False)
    custom_fields = serializers.DictField(required=False, help_text=_(
        "Values of the custom fields defined for this record kind (GET /api/v1/custom-fields/), by key. "
        "Sent values are merged into the stored ones; null or \"\" clears one."))
    completeness = serializers.SerializerMethodField(help_text=_(
        "Share (0–100) of the important fields, built-in and custom, that are filled."))

    def get_fields(self):
        fields = super().get_fields()
        if not _reads_input(self):
            return fields
        user = request_user(self)
        _set_queryset(fields, "owner", users_visible_to(user) if user else User.objects.none())
        _set_queryset(fields, "lead_source", LeadSource.objects.all())
        return fields

    def to_representation(self, instance):
        """DRF's field-by-field output, with plain attributes read directly.

        This is the hot path of the list endpoints (28 fields × 50 rows): the result is the same as
        ``ModelSerializer.to_representation`` (a test compares them), at about half the cost.
        """
        plan = getattr(self, "_read_plan", None)
        if plan is None:
            plan = self._read_plan = [(field.field_name, _reader(field)) for field in self._readable_fields]
        result = {}
        for name, read in plan:
            try:
                result[name] = read(instance)
            except SkipField:
                continue
        return result

    def get_completeness(self, record) -> int:
        # The rules are loaded once per request (or per serializer outside one), never per row.
        return entity_rules(self.context.get("request") or self.context, self.entity).completeness(record)

    @classmethod
    def list_row_columns(cls) -> list[str]:
        """The columns a list row needs: every concrete column (completeness may look at any of them)."""
        return [field.attname for field in cls.Meta.model._meta.concrete_fields]

    @classmethod
    def represent_rows(cls, rows, *, tags: dict, request) -> list[dict]:
        """The output of ``cls(rows, many=True, context={"request": request}).data`` for rows from
        ``values_list(*list_row_columns(), named=True)`` (plus ``pk``), with ``tags`` the tag names by row id
        in name order."""
        plan = _ROW_PLANS.get(cls)
        if plan is None:
            model = cls.Meta.model
            plan = _ROW_PLANS[cls] = [(field.field_name, _row_reader(field, model))
                                      for field in cls()._readable_fields]
        state = _RowState(tz=timezone.get_current_timezone() if settings.USE_TZ else None, tags=tags,
                          rules=entity_rules(request, cls.entity))
        return [{name: read(row, state) for name, read in plan} for row in rows]


TEXT_HELP = _("Any common format; stored in E.164, e.g. +905321234567 (numbers without a country code are read "
              "in the default region, TR unless configured).")


class ContactSerializer(RecordSerializer):
    entity = Entity.CONTACT

    full_name = serializers.CharField(read_only=True)
    email = StrictCharField(max_length=254, allow_blank=True, required=False,
                            help_text=_("Stored lower-case; one contact per e-mail address."))
    phone = StrictCharField(max_length=40, allow_blank=True, required=False, help_text=TEXT_HELP)
    mobile = StrictCharField(max_length=40, allow_blank=True, required=False, help_text=TEXT_HELP)
    notes = StrictCharField(max_length=10000, allow_blank=True, required=False)

    class Meta:
        model = Contact
        fields = [
            "id", "first_name", "last_name", "full_name", "email", "phone", "mobile", "job_title", "company",
            "lifecycle_stage", "lifecycle_changed_at", "lead_source", "preferred_channel", "language", "birth_date",
            "gender", "city", "country", "notes", "owner", "team", "tags", "custom_fields", "completeness",
            "last_activity_at", "created_at", "updated_at", "archived_at",
        ]
        read_only_fields = ["team"]
        extra_kwargs = {
            "owner": {"help_text": _("User id; defaults to you (integrations: no owner).")},
            "team": {"help_text": _("The owner's team; follows the owner.")},
        }

    def get_fields(self):
        fields = super().get_fields()
        if not _reads_input(self):
            return fields
        user = request_user(self)
        _set_queryset(fields, "company", companies_visible_to(user) if user else Company.objects.none())
        return fields


class ContactUpsertSerializer(ContactSerializer):
    """A contact matched by e-mail: the e-mail is required, the rest as for a create or a partial update."""

    email = StrictCharField(max_length=254, help_text=_("The key of the upsert; matched ignoring case."))

    class Meta(ContactSerializer.Meta):
        extra_kwargs = {**ContactSerializer.Meta.extra_kwargs, "first_name": {"required": False}}


class CompanySerializer(RecordSerializer):
    entity = Entity.COMPANY

    email = StrictCharField(max_length=254, allow_blank=True, required=False)
    phone = StrictCharField(max_length=40, allow_blank=True, required=False, help_text=TEXT_HELP)

    class Meta:
        model = Company
        fields = [
            "id", "name", "legal_name", "tax_number", "website", "email", "phone", "industry", "size",
            "annual_revenue", "address", "city", "country", "lead_source", "owner", "team", "tags", "custom_fields",
            "completeness", "last_activity_at", "created_at", "updated_at", "archived_at",
        ]
        read_only_fields = ["team"]
        extra_kwargs = {
            "owner": {"help_text": _("User id; defaults to you (integrations: no owner).")},
            "team": {"help_text": _("The owner's team; follows the owner.")},
        }


class ActivitySerializer(StrictModelSerializer):
    body = StrictCharField(max_length=50000, allow_blank=True, required=False)
    is_overdue = serializers.BooleanField(read_only=True)

    class Meta:
        model = Activity
        fields = [
            "id", "kind", "subject", "body", "contact", "company", "owner", "team", "occurred_at", "assignee",
            "due_at", "done_at", "is_overdue", "created_at",
        ]
        read_only_fields = ["owner", "team", "done_at"]
        extra_kwargs = {
            "contact": {"help_text": _("Contact id (a contact or a company is required).")},
            "company": {"help_text": _("Company id; defaults to the contact's company.")},
            "occurred_at": {"help_text": _("When it happened; defaults to now.")},
            "assignee": {"help_text": _("Tasks: user id of who must do it; defaults to you.")},
            "due_at": {"help_text": _("Tasks: when it is due (required for tasks).")},
        }

    def get_fields(self):
        fields = super().get_fields()
        if not _reads_input(self):
            return fields
        user = request_user(self)
        _set_queryset(fields, "contact", contacts_visible_to(user) if user else Contact.objects.none())
        _set_queryset(fields, "company", companies_visible_to(user) if user else Company.objects.none())
        _set_queryset(fields, "assignee", users_visible_to(user) if user else User.objects.none())
        return fields


# --- consent and history -------------------------------------------------------------------------


class ConsentSerializer(serializers.ModelSerializer):
    class Meta:
        model = Consent
        fields = ["channel", "status", "source", "changed_at"]
        read_only_fields = fields


class ConsentLogSerializer(serializers.ModelSerializer):
    class Meta:
        model = ConsentLog
        fields = ["id", "channel", "status", "source", "note", "actor", "recorded_at"]
        read_only_fields = fields


class ConsentsSerializer(serializers.Serializer):
    consents = ConsentSerializer(many=True, help_text=_("The current consent per channel."))
    log = ConsentLogSerializer(many=True, help_text=_("Every consent given or withdrawn, newest first (at most 200)."))

    class Meta:
        ref_name = "ContactConsents"


class ConsentInputSerializer(StrictSerializer):
    channel = serializers.ChoiceField(choices=Consent.ConsentChannel.choices)
    status = serializers.ChoiceField(choices=Consent.Status.choices)
    source = StrictCharField(max_length=200, help_text=_("Where it was given or withdrawn: web form, call, İYS, …"))
    note = StrictCharField(max_length=500, allow_blank=True, required=False)

    class Meta:
        ref_name = "ConsentInput"


class FieldChangeSerializer(serializers.ModelSerializer):
    changes = serializers.DictField(
        child=serializers.DictField(child=serializers.CharField()),
        help_text=_('By field: {"label": …, "old": …, "new": …}, values as people read them.'))

    class Meta:
        model = FieldChange
        fields = ["id", "changed_at", "actor", "changes"]
        read_only_fields = fields


class LifecycleChangeSerializer(serializers.ModelSerializer):
    class Meta:
        model = LifecycleChange
        fields = ["id", "from_stage", "to_stage", "changed_at", "actor"]
        read_only_fields = fields


class ContactHistorySerializer(serializers.Serializer):
    field_changes = FieldChangeSerializer(many=True, help_text=_("Who changed which fields, newest first "
                                                                "(at most 200)."))
    lifecycle_changes = LifecycleChangeSerializer(many=True, help_text=_("Lifecycle stage changes, newest first "
                                                                        "(at most 200)."))

    class Meta:
        ref_name = "ContactHistory"


# --- lists that admins edit ----------------------------------------------------------------------


class TagSerializer(StrictModelSerializer):
    class Meta:
        model = Tag
        fields = ["id", "name"]


class LeadSourceSerializer(StrictModelSerializer):
    class Meta:
        model = LeadSource
        fields = ["id", "name", "is_active", "order"]


class CustomFieldDefinitionSerializer(StrictModelSerializer):
    choices = serializers.ListField(
        child=StrictCharField(max_length=100), required=False, max_length=200,
        help_text=_("For choice fields: the options."))

    class Meta:
        model = CustomFieldDefinition
        fields = ["id", "entity", "key", "label", "field_type", "choices", "is_required", "is_important", "order",
                  "is_active"]
        # A key that is taken is reported on "key" by the view (the database constraint is the rule).
        validators = []
        extra_kwargs = {
            "key": {"help_text": _("Lower-case letters, digits and underscores; used in the API "
                                   "(custom_fields.<key>, ?cf_<key>=). Cannot be changed later.")},
            "entity": {"help_text": _("Cannot be changed later.")},
            "field_type": {"help_text": _("Cannot be changed later (stored values would no longer fit).")},
        }

    def validate_key(self, value):
        if not KEY_RE.match(value):
            raise serializers.ValidationError(
                _("Use lower-case letters, digits and underscores, starting with a letter."))
        return value

    def validate(self, attrs):
        errors = {}
        if self.instance is not None:
            for name in ("entity", "key", "field_type"):
                if name in attrs and attrs[name] != getattr(self.instance, name):
                    errors[name] = [_("Cannot be changed once the field exists.")]
        field_type = attrs.get("field_type", getattr(self.instance, "field_type", None))
        choices = attrs.get("choices", getattr(self.instance, "choices", None)) or []
        if field_type == CustomFieldDefinition.FieldType.CHOICE and not [c for c in choices if c.strip()]:
            errors["choices"] = [_("A choice field needs at least one option.")]
        if errors:
            raise serializers.ValidationError(errors)
        if "choices" in attrs:
            attrs["choices"] = list(dict.fromkeys(c.strip() for c in attrs["choices"] if c.strip()))
        return attrs
