"""Browser forms for deals: the list filters, create/edit, and the stage move with fields filled in place.

The forms only collect and type-check values; the rules (exit criteria, who may own what, required
fields) live in ``pipeline.services``. A ValidationError raised by a service is put back next to the
field it names (``custom_fields.<key>`` becomes the ``cf_<key>`` input).
"""

import re
from decimal import Decimal

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db.models import Q
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from accounts.models import User
from accounts.selectors import assignable_owners, teams_visible_to, users_visible_to
from contacts.forms import DATE_INPUT, LimitedChoices, OwnerChoiceField, RecordForm, ServiceErrorsMixin
from contacts.models import Company, Contact, LeadSource
from contacts.rules import EntityRules
from contacts.selectors import companies_visible_to, contacts_visible_to
from contacts.templatetags.crm import format_percent

from .models import Deal, LostReason, Pipeline, Stage
from .selectors import month_bounds

# How many contacts / companies a picker lists before the user searches (fast at a million rows).
PICKER_OPTIONS = 200
# The fields a refused move may ask for, filled in place (the exit-criteria keys that are deal fields).
FILLABLE = ["amount", "expected_close_date", "contact", "company", "lead_source", "owner"]
CURRENCIES = ["TRY", "EUR", "USD", "GBP"]
# The same words as the service, whether the code is too short, too long or not letters.
CURRENCY_MESSAGE = _("Use a three-letter ISO currency code such as TRY, EUR or USD.")
_MONTH = re.compile(r"\d{4}-\d{2}")


class AmountField(forms.DecimalField):
    """A money amount typed as ``12500.50``, ``12500,50`` or ``12.500,50`` (the last separator is the decimal one)."""

    def to_python(self, value):
        if isinstance(value, str):
            value = value.strip().replace(" ", "").replace("\u00a0", "")
            if "," in value and "." in value:
                decimal_mark = "," if value.rfind(",") > value.rfind(".") else "."
                thousands = "." if decimal_mark == "," else ","
                value = value.replace(thousands, "").replace(decimal_mark, ".")
            elif value.count(",") == 1:
                value = value.replace(",", ".")
        return super().to_python(value)


class StageSelect(forms.Select):
    """A stage drop-down whose options carry the stage kind, so the lost-reason inputs show for a lost stage."""

    def create_option(self, name, value, label, selected, index, subindex=None, attrs=None):
        option = super().create_option(name, value, label, selected, index, subindex, attrs)
        stage = getattr(value, "instance", None)
        if stage is not None:
            option["attrs"]["data-kind"] = stage.kind
        return option


class StageChoiceField(forms.ModelChoiceField):
    widget = StageSelect

    def label_from_instance(self, obj):
        if obj.kind == Stage.Kind.OPEN:
            return f"{obj.name} ({format_percent(obj.probability)})"
        kind = str(obj.get_kind_display())
        return obj.name if obj.name.casefold() == kind.casefold() else f"{obj.name} · {kind}"


def _selected(form, name: str, queryset, listed: set[int]):
    """The chosen row of a picker, listed even when it is not among the first options (one query at most)."""
    value = form.data.get(name) if form.is_bound else form.initial.get(name)
    if value in (None, "") and not form.is_bound and form.instance is not None:
        value = getattr(form.instance, f"{name}_id")
    if value is not None and str(value).isdigit() and int(value) not in listed:
        return queryset.filter(pk=int(value)).first()
    return None


# --- the list filters ----------------------------------------------------------------------------


class DealFilterForm(forms.Form):
    """Search, filters and sort of the deals list and its CSV export; every drop-down lists only what the
    user may see, and an unknown or invalid value is reported, not obeyed."""

    STALE_CHOICES = [("", _("Stale or not")), ("yes", _("Stale only")), ("no", _("Not stale"))]

    q = forms.CharField(label=_("Search"), max_length=200, required=False)
    pipeline = forms.ModelChoiceField(
        label=_("Pipeline"), queryset=Pipeline.objects.order_by("order", "id"), required=False,
        empty_label=_("All pipelines"), error_messages={"invalid_choice": _("Unknown pipeline.")},
        # Another pipeline's stages are not this one's: forget the chosen stage.
        widget=forms.Select(attrs={"onchange": "this.form.elements.stage.value = ''"}),
    )
    stage = forms.ModelChoiceField(
        label=_("Stage"), queryset=Stage.objects.none(), required=False, empty_label=_("Any stage"),
        error_messages={"invalid_choice": _("Unknown stage.")},
    )
    owner = OwnerChoiceField(
        label=_("Owner"), queryset=User.objects.none(), required=False, empty_label=_("Any owner"),
        error_messages={"invalid_choice": _("Unknown owner, or one whose deals you cannot see.")},
    )
    team = forms.ModelChoiceField(
        label=_("Team"), queryset=None, required=False, empty_label=_("Any team"),
        error_messages={"invalid_choice": _("Unknown team, or one whose deals you cannot see.")},
    )
    status = forms.ChoiceField(label=_("Status"), required=False, choices=[("", _("Any status")), *Deal.Status.choices])
    stale = forms.ChoiceField(label=_("Stale"), required=False, choices=STALE_CHOICES)
    close_month = forms.CharField(
        label=_("Close month"), max_length=7, required=False,
        widget=forms.TextInput(attrs={"type": "month", "placeholder": "YYYY-MM", "pattern": r"\d{4}-\d{2}"}),
    )
    contact = forms.ModelChoiceField(queryset=Contact.objects.none(), required=False, widget=forms.HiddenInput,
                                     label=_("Contact"), error_messages={"invalid_choice": _("Unknown contact.")})
    company = forms.ModelChoiceField(queryset=Company.objects.none(), required=False, widget=forms.HiddenInput,
                                     label=_("Company"), error_messages={"invalid_choice": _("Unknown company.")})
    sort = forms.ChoiceField(label=_("Sort"), required=False)

    def __init__(self, *args, user: User, sort_options, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        self.fields["owner"].queryset = (
            users_visible_to(user).filter(is_active=True).exclude(role=User.Role.INTEGRATION)
            .order_by("first_name", "last_name", "username")
        )
        self.fields["team"].queryset = teams_visible_to(user)
        self.fields["contact"].queryset = contacts_visible_to(user)
        self.fields["company"].queryset = companies_visible_to(user)
        self.fields["sort"].choices = [(o.key, o.label) for o in sort_options]
        # The stage drop-down lists the chosen pipeline's stages; with no pipeline chosen, every stage
        # (labelled with its pipeline). A stage of another pipeline is refused in clean().
        stages = Stage.objects.select_related("pipeline").order_by("pipeline__order", "pipeline_id", "order", "id")
        self.fields["stage"].queryset = stages
        chosen = str(self.data.get("pipeline") or "") if self.is_bound else ""
        field = self.fields["stage"]
        if chosen.isdigit() and len(chosen) < 10:
            field.widget.choices = LimitedChoices(stages.filter(pipeline_id=int(chosen)), limit=500,
                                                  blank=_("Any stage"))
        else:
            field.label_from_instance = lambda s: f"{s.pipeline.name} · {s.name}"

    def clean_close_month(self):
        value = (self.cleaned_data.get("close_month") or "").strip()
        if value and (not _MONTH.fullmatch(value) or month_bounds(value) is None):
            raise ValidationError(_("Enter a month as YYYY-MM, e.g. 2026-11 (got “%(value)s”).") % {"value": value})
        return value

    def clean(self):
        cleaned = super().clean()
        pipeline, stage = cleaned.get("pipeline"), cleaned.get("stage")
        if pipeline is not None and stage is not None and stage.pipeline_id != pipeline.pk:
            self.add_error("stage", _("“%(stage)s” is not a stage of “%(pipeline)s”.") % {
                "stage": stage.name, "pipeline": pipeline.name})
        return cleaned

    def value(self, name):
        """A cleaned filter value, or its empty value when the input was invalid (the error is shown)."""
        if not self.is_bound:
            return None
        return self.cleaned_data.get(name) if self.errors is not None else None

    def stale_value(self) -> bool | None:
        return {"yes": True, "no": False}.get(self.value("stale") or "")

    def selector_kwargs(self) -> dict:
        """The keyword arguments of ``selectors.deal_list`` for the valid filters."""
        return {
            "search": self.value("q") or "", "pipeline": self.value("pipeline"), "stage": self.value("stage"),
            "owner": self.value("owner"), "team": self.value("team"), "status": self.value("status") or "",
            "stale": self.stale_value(), "close_month": self.value("close_month") or "",
            "contact": self.value("contact"), "company": self.value("company"),
        }

    @property
    def active_count(self) -> int:
        names = ("pipeline", "stage", "owner", "team", "status", "stale", "close_month", "contact", "company")
        return sum(1 for name in names if self.value(name))


# --- create and edit -----------------------------------------------------------------------------


class DealForm(ServiceErrorsMixin, forms.Form):
    """Create or edit a deal (values go to deal_create / deal_update).

    Creating, the pipeline and the starting (open) stage are chosen; editing, the stage is changed on
    the deal page's stage bar (``deal_move``), never here. ``only`` keeps just some fields: the deal
    page uses that for the fields a refused move asks for, all optional (the move rule says what is missing).
    """

    name = forms.CharField(label=_("Name"), max_length=200)
    pipeline = forms.ModelChoiceField(label=_("Pipeline"), queryset=Pipeline.objects.order_by("order", "id"),
                                      empty_label=None, error_messages={"invalid_choice": _("Unknown pipeline.")})
    stage = StageChoiceField(label=_("Stage"), queryset=Stage.objects.none(), required=False,
                             empty_label=_("First stage"),
                             error_messages={"invalid_choice": _("Choose an open stage of the chosen pipeline.")})
    amount = AmountField(label=_("Amount"), max_digits=16, decimal_places=2, min_value=Decimal(0), required=False,
                         widget=forms.TextInput(attrs={"inputmode": "decimal", "placeholder": "12500.00"}))
    currency = forms.CharField(label=_("Currency"), max_length=3, min_length=3, initial=settings.CRM_CURRENCY,
                               error_messages={"min_length": CURRENCY_MESSAGE, "max_length": CURRENCY_MESSAGE},
                               widget=forms.TextInput(attrs={"list": "currencies", "size": 4,
                                                             "autocapitalize": "characters"}))
    expected_close_date = forms.DateField(label=_("Expected close date"), required=False, widget=DATE_INPUT)
    owner = OwnerChoiceField(label=_("Owner"), queryset=User.objects.none(), empty_label="—",
                             error_messages={"invalid_choice": _("Unknown user, or one you cannot give deals to.")})
    contact = forms.ModelChoiceField(label=_("Contact"), queryset=Contact.objects.none(), required=False,
                                     error_messages={"invalid_choice": _("Unknown contact.")})
    company = forms.ModelChoiceField(label=_("Company"), queryset=Company.objects.none(), required=False,
                                     error_messages={"invalid_choice": _("Unknown company.")})
    lead_source = forms.ModelChoiceField(label=_("Lead source"), queryset=LeadSource.objects.none(), required=False,
                                         empty_label="—", error_messages={"invalid_choice": _("Unknown lead source.")})

    def __init__(self, *args, user: User, rules: EntityRules, instance: Deal | None = None, only=None, **kwargs):
        self.user = user
        self.rules = rules
        self.instance = instance
        if instance is not None and "initial" not in kwargs:
            kwargs["initial"] = self.initial_from(instance)
        super().__init__(*args, **kwargs)
        self.custom_definitions = list(rules.custom_fields)
        for definition in self.custom_definitions:
            self.fields[f"cf_{definition.key}"] = RecordForm.custom_field(definition)
        if instance is not None:
            del self.fields["pipeline"], self.fields["stage"]
        if only is not None:
            for name in list(self.fields):
                if name not in only:
                    del self.fields[name]
            self.custom_definitions = [d for d in self.custom_definitions if f"cf_{d.key}" in self.fields]
            for field in self.fields.values():
                field.required = False
        else:
            for name in rules.required:
                if name in self.fields:
                    self.fields[name].required = True
        self._set_choices()

    def _set_choices(self) -> None:
        fields = self.fields
        if "pipeline" in fields:
            # Choosing another pipeline reloads the stage drop-down with that pipeline's open stages.
            fields["pipeline"].widget.attrs.update({
                "hx-get": reverse("deal-create"), "hx-target": "#stage-field", "hx-select": "#stage-field",
                "hx-swap": "outerHTML",
            })
        if "stage" in fields:
            pipeline = self.data.get("pipeline") if self.is_bound else self.initial.get("pipeline")
            pipeline = getattr(pipeline, "pk", pipeline)
            open_stages = Stage.objects.filter(kind=Stage.Kind.OPEN).order_by("order", "id")
            if pipeline is not None and str(pipeline).isdigit() and len(str(pipeline)) < 10:
                open_stages = open_stages.filter(pipeline_id=int(pipeline))
            else:
                open_stages = open_stages.none()
            fields["stage"].queryset = open_stages
        if "owner" in fields:
            current = self.instance.owner_id if self.instance is not None else None
            fields["owner"].queryset = User.objects.filter(
                Q(pk__in=assignable_owners(self.user).values("pk")) | Q(pk=current)
            ).select_related("team").order_by("first_name", "last_name", "username")
            if self.instance is None:
                fields["owner"].initial = self.user.pk
        if "lead_source" in fields:
            current = self.instance.lead_source_id if self.instance is not None else None
            fields["lead_source"].queryset = LeadSource.objects.filter(Q(is_active=True) | Q(pk=current))
        if "contact" in fields:
            visible = contacts_visible_to(self.user)
            fields["contact"].queryset = visible
            fields["contact"].widget.choices = LimitedChoices(
                visible.filter(archived_at__isnull=True).order_by("sort_name", "id").only("id", "first_name",
                                                                                           "last_name"),
                limit=PICKER_OPTIONS,
                extra=lambda listed, visible=visible: _selected(
                    self, "contact", visible.only("id", "first_name", "last_name"), listed),
            )
        if "company" in fields:
            visible = companies_visible_to(self.user)
            fields["company"].queryset = visible
            fields["company"].widget.choices = LimitedChoices(
                visible.filter(archived_at__isnull=True).order_by("sort_name", "id").only("id", "name"),
                limit=PICKER_OPTIONS,
                extra=lambda listed, visible=visible: _selected(self, "company", visible.only("id", "name"), listed),
            )

    @staticmethod
    def initial_from(deal: Deal) -> dict:
        initial = {
            "name": deal.name, "amount": deal.amount, "currency": deal.currency,
            "expected_close_date": deal.expected_close_date, "owner": deal.owner_id, "contact": deal.contact_id,
            "company": deal.company_id, "lead_source": deal.lead_source_id,
        }
        for key, value in (deal.custom_fields or {}).items():
            initial[f"cf_{key}"] = ("true" if value else "false") if isinstance(value, bool) else value
        return initial

    def clean_currency(self):
        return (self.cleaned_data.get("currency") or "").strip().upper()

    def to_data(self) -> dict:
        """The values for the service: every field of the form and every custom field."""
        data = {}
        for name in ["name", "amount", "currency", "expected_close_date", "owner", "contact", "company",
                     "lead_source"]:
            if name in self.fields:
                data[name] = self.cleaned_data.get(name)
        if self.instance is None:
            data["pipeline"] = self.cleaned_data.get("pipeline")
            if self.cleaned_data.get("stage") is not None:
                data["stage"] = self.cleaned_data["stage"]
        data["custom_fields"] = {
            d.key: (self.cleaned_data.get(f"cf_{d.key}") or None) for d in self.custom_definitions
        }
        return data

    def changes(self) -> dict:
        """Only the fields given a value (for a move's fill-in-place: an empty input changes nothing)."""
        data = {}
        for name in FILLABLE:
            if name in self.fields and self.cleaned_data.get(name) not in (None, ""):
                data[name] = self.cleaned_data[name]
        custom = {d.key: self.cleaned_data[f"cf_{d.key}"] for d in self.custom_definitions
                  if self.cleaned_data.get(f"cf_{d.key}") not in (None, "")}
        if custom:
            data["custom_fields"] = custom
        return data

    def custom_bound_fields(self):
        return [self[f"cf_{d.key}"] for d in self.custom_definitions]


def fill_names(rules: EntityRules) -> list[str]:
    """Every input a refused move may ask for: the fillable built-in fields and the deal custom fields."""
    return FILLABLE + [f"cf_{d.key}" for d in rules.custom_fields]


def fill_name(key: str) -> str:
    """The input of an exit-criterion key (``custom_fields.budget`` is the ``cf_budget`` input)."""
    return f"cf_{key.split('.', 1)[1]}" if key.startswith("custom_fields.") else key


# --- the stage move ------------------------------------------------------------------------------


def next_stage(deal: Deal, stages: list[Stage]) -> int | None:
    """The stage the move form offers first: the open stage after the current one, if any."""
    current = next((s for s in stages if s.pk == deal.stage_id), None)
    if current is None or current.kind != Stage.Kind.OPEN:
        return None
    later = [s for s in stages if s.kind == Stage.Kind.OPEN and (s.order, s.pk) > (current.order, current.pk)]
    return later[0].pk if later else None


class DealMoveForm(ServiceErrorsMixin, forms.Form):
    """Move a deal to another stage of its pipeline; a lost stage needs a reason (values go to deal_move)."""

    stage = StageChoiceField(label=_("Move to"), queryset=Stage.objects.none(), empty_label=None,
                             error_messages={"invalid_choice": _("Choose another stage of this deal's pipeline.")})
    lost_reason = forms.ModelChoiceField(label=_("Lost reason"), queryset=LostReason.objects.none(),
                                         required=False, empty_label="—",
                                         error_messages={"invalid_choice": _("Unknown lost reason.")})
    lost_note = forms.CharField(label=_("Note"), max_length=2000, required=False,
                                widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(self, *args, deal: Deal, stages: list[Stage] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.deal = deal
        self.fields["stage"].queryset = (
            Stage.objects.filter(pipeline_id=deal.pipeline_id).exclude(pk=deal.stage_id).order_by("order", "id")
        )
        if stages is not None:
            self.fields["stage"].initial = next_stage(deal, stages)
            # The page already has the pipeline's stages: list them without another query.
            field = self.fields["stage"]
            field.widget.choices = [
                (forms.models.ModelChoiceIteratorValue(s.pk, s), field.label_from_instance(s))
                for s in stages if s.pk != deal.stage_id
            ]
        self.fields["lost_reason"].queryset = LostReason.objects.filter(
            Q(is_active=True) | Q(pk=deal.lost_reason_id)
        )
