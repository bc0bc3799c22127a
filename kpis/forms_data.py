"""Browser forms of the KPI data pages (survey responses, external metrics and their values, exchange rates).

They collect and type-check values; the rules live in ``kpis.services_data`` and come back next to the field
they name (``ServiceErrorsMixin``).
"""

from django import forms
from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from contacts.forms import DATE_INPUT, DATETIME_FORMATS, LimitedChoices, ServiceErrorsMixin, datetime_input
from contacts.models import Contact
from contacts.selectors import contacts_visible_to

from . import dimensions
from .models import DimensionKind, ExternalMetric, Kpi, SurveyResponse
from .services_data import MAX_COMMENT

# How many contacts the contact drop-down lists before the user searches (fast at a million rows).
CONTACT_OPTIONS = 50
DIMENSION_OPTIONS = 500


def _blank(label):
    return [("", label)]


class SurveyFilterForm(forms.Form):
    """The filters of the survey response list; a bad value is reported and not applied."""

    kind = forms.ChoiceField(label=_("Survey"), required=False,
                             choices=_blank(_("All surveys")) + list(SurveyResponse.Kind.choices))
    channel = forms.ChoiceField(label=_("Channel"), required=False,
                                choices=_blank(_("All channels")) + list(SurveyResponse.Channel.choices))
    # A context of their own: "From"/"To" of a stage change are other words in Turkish.
    date_from = forms.DateField(label=pgettext_lazy("date range", "From"), required=False, widget=DATE_INPUT)
    date_to = forms.DateField(label=pgettext_lazy("date range", "To"), required=False, widget=DATE_INPUT)

    def clean(self):
        data = super().clean()
        start, end = data.get("date_from"), data.get("date_to")
        if start and end and end < start:
            self.add_error("date_to", _("The end date is before the start date."))
        return data

    def value(self, name):
        """The cleaned value of a filter, or None when it is empty or invalid."""
        if not self.is_bound or name in self.errors:
            return None
        self.is_valid()
        return self.cleaned_data.get(name) or None

    @property
    def active_count(self) -> int:
        return sum(1 for name in self.fields if self.value(name))


class SurveyResponseForm(ServiceErrorsMixin, forms.Form):
    kind = forms.ChoiceField(label=_("Survey"), choices=SurveyResponse.Kind.choices, initial=SurveyResponse.Kind.NPS)
    score = forms.IntegerField(label=_("Score"), min_value=0, max_value=10,
                               help_text=_("NPS: 0–10 (9–10 promoters, 0–6 detractors). CSAT: 1–5."))
    contact = forms.ModelChoiceField(label=_("Contact"), queryset=Contact.objects.none(),
                                     error_messages={"invalid_choice": _("Unknown contact."),
                                                     "required": _("Choose the contact who answered.")})
    responded_at = forms.DateTimeField(label=_("Answered at"), input_formats=DATETIME_FORMATS,
                                       widget=datetime_input())
    channel = forms.ChoiceField(label=_("Channel"), required=False,
                                choices=_blank("—") + list(SurveyResponse.Channel.choices))
    comment = forms.CharField(label=_("Comment"), required=False, max_length=MAX_COMMENT,
                              widget=forms.Textarea(attrs={"rows": 3}))

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        visible = contacts_visible_to(user)
        field = self.fields["contact"]
        field.queryset = visible
        field.widget.choices = LimitedChoices(
            visible.filter(archived_at__isnull=True).order_by("sort_name", "id").only("id", "first_name",
                                                                                       "last_name"),
            limit=CONTACT_OPTIONS,
            extra=lambda listed: self._selected_contact(visible, listed),
        )
        if not self.is_bound:
            self.fields["responded_at"].initial = timezone.localtime().replace(second=0, microsecond=0)

    def _selected_contact(self, visible, listed):
        value = self.data.get("contact") if self.is_bound else self.initial.get("contact")
        value = getattr(value, "pk", value)
        if value in (None, "") or not str(value).isdigit() or len(str(value)) > 18 or int(value) in listed:
            return None
        return visible.only("id", "first_name", "last_name").filter(pk=int(value)).first()

    def to_data(self) -> dict:
        return dict(self.cleaned_data)


class MetricForm(ServiceErrorsMixin, forms.Form):
    key = forms.CharField(label=_("Key"), max_length=60, help_text=_(
        "Lower-case letters, digits and underscores, e.g. marketing_spend. Formulas use it: "
        "sum(metrics.value where metric = 'marketing_spend'). It cannot change later."))
    name = forms.CharField(label=_("Name"), max_length=200)
    description = forms.CharField(label=_("Description"), required=False, max_length=5000,
                                  widget=forms.Textarea(attrs={"rows": 2}))
    unit = forms.ChoiceField(label=_("Unit"), choices=Kpi.Unit.choices, initial=Kpi.Unit.CURRENCY)
    dimension_kind = forms.ChoiceField(
        label=_("Kept per"), required=False, choices=_blank(_("Company-wide (one value per period)"))
        + list(DimensionKind.choices),
        help_text=_("E.g. marketing spend is kept per lead source."))
    applies_to_breakdowns = forms.BooleanField(
        label=_("Applies to breakdowns"), required=False,
        help_text=ExternalMetric._meta.get_field("applies_to_breakdowns").help_text)

    def __init__(self, *args, instance: ExternalMetric | None = None, **kwargs):
        if instance is not None and "initial" not in kwargs:
            kwargs["initial"] = {"key": instance.key, "name": instance.name, "description": instance.description,
                                 "unit": instance.unit, "dimension_kind": instance.dimension_kind,
                                 "applies_to_breakdowns": instance.applies_to_breakdowns}
        super().__init__(*args, **kwargs)
        self.instance = instance
        if instance is not None:
            # The key is what formulas refer to: shown, never changed.
            del self.fields["key"]
            if instance.values.exists():
                del self.fields["dimension_kind"]


class MetricValueForm(ServiceErrorsMixin, forms.Form):
    """A value of one metric: the period as a key (2026-11) or as first and last day, the dimension, the value."""

    period = forms.CharField(label=_("Period"), required=False, max_length=20, help_text=_(
        "A month (2026-11), quarter (2026-Q4), week (2026-W48) or day (2026-11-23); or give the first and last "
        "day instead."), widget=forms.TextInput(attrs={"placeholder": "2026-11"}))
    period_start = forms.DateField(label=_("First day"), required=False, widget=DATE_INPUT)
    period_end = forms.DateField(label=_("Last day"), required=False, widget=DATE_INPUT)
    dimension = forms.TypedChoiceField(label=_("For"), coerce=int, empty_value=None)
    value = forms.DecimalField(label=_("Value"), max_digits=20, decimal_places=4,
                               widget=forms.TextInput(attrs={"inputmode": "decimal", "placeholder": "12500.00"}))

    def __init__(self, *args, metric: ExternalMetric, **kwargs):
        super().__init__(*args, **kwargs)
        self.metric = metric
        if metric.dimension_kind:
            field = self.fields["dimension"]
            field.label = DimensionKind(metric.dimension_kind).label
            field.choices = _blank("—") + [
                (row.pk, dimensions.label(metric.dimension_kind, row))
                for row in dimension_rows(metric.dimension_kind)[:DIMENSION_OPTIONS]]
        else:
            del self.fields["dimension"]
        if metric.unit == Kpi.Unit.CURRENCY:
            self.fields["value"].help_text = _("In %(currency)s.") % {"currency": settings.CRM_CURRENCY}

    def to_data(self) -> dict:
        data = {name: value for name, value in self.cleaned_data.items() if value not in (None, "")}
        return data


def dimension_rows(kind: str):
    """Every team, user, pipeline or lead source a value may be given for (inactive ones too: past spend)."""
    from accounts.models import Team, User
    from contacts.models import LeadSource
    from pipeline.models import Pipeline

    if kind == DimensionKind.TEAM:
        return Team.objects.order_by("name", "id")
    if kind == DimensionKind.OWNER:
        return User.objects.exclude(role=User.Role.INTEGRATION).order_by("first_name", "last_name", "username", "id")
    if kind == DimensionKind.PIPELINE:
        return Pipeline.objects.order_by("order", "id")
    return LeadSource.objects.order_by("order", "name", "id")


class ExchangeRateForm(ServiceErrorsMixin, forms.Form):
    currency = forms.CharField(label=_("Currency"), min_length=3, max_length=3, help_text=_(
        "ISO code, e.g. EUR or USD."), widget=forms.TextInput(attrs={"size": 4, "autocapitalize": "characters"}))
    rate = forms.DecimalField(label=_("Rate"), max_digits=18, decimal_places=8, widget=forms.TextInput(
        attrs={"inputmode": "decimal", "placeholder": "36.25"}))
    valid_from = forms.DateField(label=_("Valid from"), widget=DATE_INPUT)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["rate"].help_text = _("%(company)s per one unit of the currency.") % {
            "company": settings.CRM_CURRENCY}
        if not self.is_bound:
            self.fields["valid_from"].initial = timezone.localdate()
