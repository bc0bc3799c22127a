"""Browser forms for contacts, companies, activities and consent.

The forms only collect and type-check values; the rules live in ``contacts.services``. A
ValidationError raised by a service is put back next to the field it names
(``custom_fields.<key>`` becomes the ``cf_<key>`` input).
"""

from django import forms
from django.core.exceptions import ValidationError
from django.db.models import Q
from django.utils.choices import BaseChoiceIterator
from django.utils.translation import gettext_lazy as _

from accounts.models import User
from accounts.selectors import assignable_owners, teams_visible_to, users_visible_to
from crm_okr.text import collapse_spaces

from .models import (
    Activity,
    Channel,
    Company,
    Consent,
    Contact,
    CustomFieldDefinition,
    LeadSource,
    LifecycleStage,
    Tag,
)
from .rules import EntityRules, format_phone
from .selectors import companies_visible_to

# How many companies the company drop-down lists before the user searches (fast at a million rows).
COMPANY_OPTIONS = 200
TAG_OPTIONS = 200
MAX_TAGS = 20
DATE_INPUT = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
DATETIME_FORMATS = ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S"]


def datetime_input():
    return forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")


class LimitedChoices(BaseChoiceIterator):
    """The first ``limit`` rows of a queryset as choices, evaluated when the select is drawn.

    The field still validates against its whole queryset, so a value found with the htmx search
    (or typed by an API-minded user) is accepted if the user may see it.
    """

    def __init__(self, queryset, *, limit: int, blank: str = "—", extra=None):
        self.queryset = queryset
        self.limit = limit
        self.blank = blank
        self.extra = extra

    def __iter__(self):
        yield "", self.blank
        rows = list(self.queryset[: self.limit])
        # ``extra`` is asked only for a chosen row that is not already listed (no query otherwise).
        extra = self.extra({row.pk for row in rows}) if callable(self.extra) else self.extra
        if extra is not None and extra.pk not in {row.pk for row in rows}:
            yield extra.pk, str(extra)
        for row in rows:
            yield row.pk, str(row)


class OwnerChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj):
        return f"{obj} · {obj.team}" if obj.team_id else str(obj)


def split_tags(value: str) -> list[str]:
    names = []
    for part in (value or "").split(","):
        name = collapse_spaces(part)
        if name and name.lower() not in {n.lower() for n in names}:
            names.append(name)
    return names


def service_error_fields(exc: ValidationError) -> list[tuple[str | None, str]]:
    """(form field, message) pairs for a service's ValidationError."""
    if not hasattr(exc, "error_dict"):
        return [(None, message) for message in exc.messages]
    pairs = []
    for key, messages in exc.message_dict.items():
        field = f"cf_{key.split('.', 1)[1]}" if key.startswith("custom_fields.") else key
        for message in messages:
            pairs.append((None if field == "__all__" else field, message))
    return pairs


class ServiceErrorsMixin:
    def add_service_errors(self, exc: ValidationError) -> None:
        for field, message in service_error_fields(exc):
            if field is not None and field not in self.fields:
                field = None
            if field is None and "contact_email_unique" in message and "email" in self.fields:
                field, message = "email", _("Another contact already has this e-mail address.")
            self.add_error(field, message)


class RecordForm(ServiceErrorsMixin, forms.Form):
    """What the contact and company forms share: owner, tags, custom fields, required-field marks."""

    entity: str = ""
    model = None
    char_fields: list[str] = []

    owner = OwnerChoiceField(label=_("Owner"), queryset=User.objects.none())
    tags = forms.CharField(
        label=_("Tags"), required=False, max_length=1000,
        help_text=_("Separate tags with commas, e.g. vip, istanbul, newsletter"),
    )

    def __init__(self, *args, user: User, rules: EntityRules, instance=None, **kwargs):
        self.user = user
        self.rules = rules
        self.instance = instance
        if instance is not None and "initial" not in kwargs:
            kwargs["initial"] = self.initial_from(instance)
        super().__init__(*args, **kwargs)
        current_owner = instance.owner_id if instance is not None else None
        self.fields["owner"].queryset = User.objects.filter(
            Q(pk__in=assignable_owners(user).values("pk")) | Q(pk=current_owner)
        ).select_related("team").order_by("first_name", "last_name", "username")
        if instance is None:
            self.fields["owner"].initial = user.pk
        current_source = instance.lead_source_id if instance is not None else None
        self.fields["lead_source"].queryset = LeadSource.objects.filter(Q(is_active=True) | Q(pk=current_source))
        self.custom_definitions = list(rules.custom_fields)
        for definition in self.custom_definitions:
            self.fields[f"cf_{definition.key}"] = self.custom_field(definition)
        for name in rules.required:
            if name in self.fields:
                self.fields[name].required = True

    # --- building ----------------------------------------------------------------------------

    @staticmethod
    def custom_field(definition: CustomFieldDefinition) -> forms.Field:
        kind = CustomFieldDefinition.FieldType
        common = {"label": definition.label, "required": definition.is_required}
        if definition.field_type == kind.NUMBER:
            return forms.CharField(max_length=40, widget=forms.NumberInput(attrs={"step": "any"}), **common)
        if definition.field_type == kind.DATE:
            return forms.DateField(widget=DATE_INPUT, **common)
        if definition.field_type == kind.CHOICE:
            options = [(str(o), str(o)) for o in definition.choices or []]
            return forms.ChoiceField(choices=[("", "—"), *options], **common)
        if definition.field_type == kind.BOOLEAN:
            return forms.ChoiceField(choices=[("", "—"), ("true", _("Yes")), ("false", _("No"))], **common)
        return forms.CharField(max_length=1000, **common)

    def initial_from(self, instance) -> dict:
        initial = {}
        for name in self.data_fields():
            value = getattr(instance, f"{name}_id" if name in {"company", "lead_source", "owner"} else name)
            if name in {"phone", "mobile"}:
                value = format_phone(value)
            initial[name] = value
        initial["tags"] = ", ".join(t.name for t in instance.tags.all())
        for key, value in (instance.custom_fields or {}).items():
            initial[f"cf_{key}"] = ("true" if value else "false") if isinstance(value, bool) else value
        return initial

    def data_fields(self) -> list[str]:
        raise NotImplementedError

    # --- cleaning ----------------------------------------------------------------------------

    def clean_tags(self):
        names = split_tags(self.cleaned_data.get("tags", ""))
        if len(names) > MAX_TAGS:
            raise ValidationError(_("At most %(max)d tags (got %(n)d).") % {"max": MAX_TAGS, "n": len(names)})
        too_long = [n for n in names if len(n) > 50]
        if too_long:
            raise ValidationError(_("A tag has at most 50 characters (“%(tag)s…” is longer).")
                                  % {"tag": too_long[0][:20]})
        return names

    def to_data(self) -> dict:
        """The values for the service: every built-in field, the tags, and every custom field."""
        data = {}
        for name in self.data_fields():
            value = self.cleaned_data.get(name)
            data[name] = "" if value is None and name in self.char_fields else value
        data["tags"] = self.cleaned_data.get("tags", [])
        data["custom_fields"] = {
            d.key: (self.cleaned_data.get(f"cf_{d.key}") or None) for d in self.custom_definitions
        }
        if self.instance is not None and self.cleaned_data.get("owner") is None:
            data.pop("owner")
        return data

    # --- showing -----------------------------------------------------------------------------

    def custom_bound_fields(self):
        return [self[f"cf_{d.key}"] for d in self.custom_definitions]


class ContactForm(RecordForm):
    """Create or edit a contact (values go to contact_create / contact_update)."""

    first_name = forms.CharField(label=_("First name"), max_length=100)
    last_name = forms.CharField(label=_("Last name"), max_length=100, required=False)
    email = forms.CharField(label=_("E-mail"), max_length=254, required=False, widget=forms.EmailInput)
    phone = forms.CharField(label=_("Phone"), max_length=40, required=False,
                            widget=forms.TextInput(attrs={"type": "tel", "placeholder": "0532 123 45 67"}))
    mobile = forms.CharField(label=_("Mobile"), max_length=40, required=False,
                             widget=forms.TextInput(attrs={"type": "tel"}))
    job_title = forms.CharField(label=_("Job title"), max_length=150, required=False)
    company = forms.ModelChoiceField(label=_("Company"), queryset=Company.objects.none(), required=False)
    lifecycle_stage = forms.ChoiceField(label=_("Lifecycle stage"), choices=LifecycleStage.choices,
                                        initial=LifecycleStage.LEAD)
    lead_source = forms.ModelChoiceField(label=_("Lead source"), queryset=LeadSource.objects.none(), required=False)
    preferred_channel = forms.ChoiceField(label=_("Preferred channel"), choices=[("", "—"), *Channel.choices],
                                          required=False)
    language = forms.ChoiceField(label=_("Language"), required=False,
                                 choices=[("", "—"), ("tr", _("Turkish")), ("en", _("English"))])
    birth_date = forms.DateField(label=_("Birth date"), required=False, widget=DATE_INPUT)
    gender = forms.ChoiceField(label=_("Gender"), choices=[("", "—"), *Contact.Gender.choices], required=False)
    city = forms.CharField(label=_("City"), max_length=100, required=False)
    country = forms.CharField(label=_("Country"), max_length=2, required=False,
                              widget=forms.TextInput(attrs={"placeholder": "TR", "size": 2}))
    notes = forms.CharField(label=_("Notes"), max_length=20000, required=False,
                            widget=forms.Textarea(attrs={"rows": 4}))

    entity = "contact"
    char_fields = ["last_name", "email", "phone", "mobile", "job_title", "preferred_channel", "language", "gender",
                   "city", "country", "notes"]
    field_order = ["first_name", "last_name", "email", "phone", "mobile", "job_title", "company", "lifecycle_stage",
                   "lead_source", "owner", "preferred_channel", "language", "birth_date", "gender", "city",
                   "country", "tags", "notes"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        visible = companies_visible_to(self.user)
        field = self.fields["company"]
        field.queryset = visible
        field.widget.choices = LimitedChoices(
            visible.filter(archived_at__isnull=True).order_by("sort_name", "id").only("id", "name"),
            limit=COMPANY_OPTIONS, extra=self._selected_company,
        )
        field.widget.attrs["id"] = "id_company"

    def _selected_company(self, listed: set[int]):
        """The chosen company, listed even when it is not among the first options."""
        value = self.data.get("company") if self.is_bound else None
        if value is None and self.instance is not None:
            return self.instance.company if self.instance.company_id not in listed else None
        if value and str(value).isdigit() and int(value) not in listed:
            return companies_visible_to(self.user).filter(pk=int(value)).only("id", "name").first()
        return None

    def data_fields(self) -> list[str]:
        return ["first_name", "last_name", "email", "phone", "mobile", "job_title", "company", "lifecycle_stage",
                "lead_source", "preferred_channel", "language", "birth_date", "gender", "city", "country", "notes",
                "owner"]


class CompanyForm(RecordForm):
    """Create or edit a company (values go to company_create / company_update)."""

    name = forms.CharField(label=_("Name"), max_length=200)
    legal_name = forms.CharField(label=_("Legal name"), max_length=300, required=False)
    tax_number = forms.CharField(label=_("Tax number"), max_length=30, required=False)
    website = forms.URLField(label=_("Website"), max_length=300, required=False, assume_scheme="https",
                             widget=forms.URLInput(attrs={"placeholder": "https://"}))
    email = forms.CharField(label=_("E-mail"), max_length=254, required=False, widget=forms.EmailInput)
    phone = forms.CharField(label=_("Phone"), max_length=40, required=False,
                            widget=forms.TextInput(attrs={"type": "tel", "placeholder": "0212 123 45 67"}))
    industry = forms.CharField(label=_("Industry"), max_length=100, required=False)
    size = forms.ChoiceField(label=_("Size"), choices=[("", "—"), *Company.Size.choices], required=False)
    annual_revenue = forms.DecimalField(label=_("Annual revenue"), max_digits=16, decimal_places=2, required=False,
                                        min_value=0)
    address = forms.CharField(label=_("Address"), max_length=300, required=False)
    city = forms.CharField(label=_("City"), max_length=100, required=False)
    country = forms.CharField(label=_("Country"), max_length=2, required=False,
                              widget=forms.TextInput(attrs={"placeholder": "TR", "size": 2}))
    lead_source = forms.ModelChoiceField(label=_("Lead source"), queryset=LeadSource.objects.none(), required=False)

    entity = "company"
    char_fields = ["legal_name", "tax_number", "website", "email", "phone", "industry", "size", "address", "city",
                   "country"]
    field_order = ["name", "legal_name", "industry", "size", "website", "email", "phone", "tax_number",
                   "annual_revenue", "address", "city", "country", "lead_source", "owner", "tags"]

    def data_fields(self) -> list[str]:
        return ["name", "legal_name", "tax_number", "website", "email", "phone", "industry", "size", "annual_revenue",
                "address", "city", "country", "lead_source", "owner"]


class ActivityForm(ServiceErrorsMixin, forms.Form):
    """The quick form on a record page: log a call, e-mail, meeting or note, or add a task."""

    kind = forms.ChoiceField(label=_("Type"), choices=Activity.Kind.choices, initial=Activity.Kind.CALL,
                             widget=forms.RadioSelect)
    subject = forms.CharField(label=_("Subject"), max_length=200,
                              widget=forms.TextInput(attrs={"placeholder": _("What happened, or what is to do?")}))
    body = forms.CharField(label=_("Details"), max_length=10000, required=False,
                           widget=forms.Textarea(attrs={"rows": 2, "placeholder": _("Notes (optional)")}))
    occurred_at = forms.DateTimeField(label=_("When"), required=False, input_formats=DATETIME_FORMATS,
                                      widget=datetime_input(), help_text=_("Empty means now."))
    assignee = OwnerChoiceField(label=_("Assignee"), queryset=User.objects.none(), required=False)
    due_at = forms.DateTimeField(label=_("Due"), required=False, input_formats=DATETIME_FORMATS,
                                 widget=datetime_input())

    def __init__(self, *args, user: User, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["assignee"].queryset = (
            users_visible_to(user).filter(is_active=True).exclude(role=User.Role.INTEGRATION)
            .order_by("first_name", "last_name", "username")
        )
        self.fields["assignee"].empty_label = _("Me")

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("kind") == Activity.Kind.TASK and not cleaned.get("due_at") and "due_at" not in self.errors:
            self.add_error("due_at", _("A task needs a due time."))
        return cleaned


class ConsentForm(ServiceErrorsMixin, forms.Form):
    """Record that a contact granted or withdrew consent for one channel (values go to consent_set)."""

    channel = forms.ChoiceField(label=_("Channel"), choices=Consent.ConsentChannel.choices)
    status = forms.ChoiceField(label=_("Consent"), choices=Consent.Status.choices, initial=Consent.Status.GRANTED)
    source = forms.CharField(label=_("Source"), max_length=200,
                             widget=forms.TextInput(attrs={"placeholder": _("web form, phone call, İYS, …")}))
    note = forms.CharField(label=_("Note"), max_length=500, required=False)


# --- list filters --------------------------------------------------------------------------------


class ListFilterForm(forms.Form):
    """Search, filters and sort of a list page; every drop-down lists only what the user may see."""

    q = forms.CharField(label=_("Search"), max_length=200, required=False)
    owner = OwnerChoiceField(label=_("Owner"), queryset=User.objects.none(), required=False,
                             empty_label=_("Any owner"))
    team = forms.ModelChoiceField(label=_("Team"), queryset=None, required=False, empty_label=_("Any team"))
    source = forms.ModelChoiceField(label=_("Lead source"), queryset=LeadSource.objects.all(), required=False,
                                    empty_label=_("Any source"))
    tag = forms.ModelChoiceField(label=_("Tag"), queryset=Tag.objects.all(), required=False)
    sort = forms.ChoiceField(label=_("Sort"), required=False)

    def __init__(self, *args, user: User, sort_options, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        self.fields["owner"].queryset = (
            users_visible_to(user).filter(is_active=True).exclude(role=User.Role.INTEGRATION)
            .order_by("first_name", "last_name", "username")
        )
        self.fields["team"].queryset = teams_visible_to(user)
        self.fields["tag"].widget.choices = LimitedChoices(
            Tag.objects.order_by("name"), limit=TAG_OPTIONS, blank=_("Any tag"), extra=self._selected_tag
        )
        self.fields["sort"].choices = [(o.key, o.label) for o in sort_options]

    def _selected_tag(self, listed: set[int]):
        value = self.data.get("tag")
        if value and str(value).isdigit() and int(value) not in listed:
            return Tag.objects.filter(pk=int(value)).first()
        return None

    def value(self, name):
        """A cleaned filter value, or its empty value when the input was invalid (the error is shown)."""
        if not self.is_bound:
            return None
        return self.cleaned_data.get(name) if self.errors is not None else None

    @property
    def active_count(self) -> int:
        return sum(1 for name in ("owner", "team", "stage", "source", "tag", "company") if self.value(name))


class ContactFilterForm(ListFilterForm):
    stage = forms.ChoiceField(label=_("Lifecycle stage"), required=False,
                              choices=[("", _("Any stage")), *LifecycleStage.choices])
    company = forms.ModelChoiceField(queryset=Company.objects.none(), required=False, widget=forms.HiddenInput)

    field_order = ["q", "owner", "team", "stage", "source", "tag", "company", "sort"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["company"].queryset = companies_visible_to(self.user)


class CompanyFilterForm(ListFilterForm):
    pass
