"""Browser forms of the KPI editor: they collect and type-check what an admin types; the rules (a formula
that compiles, no reference cycles, the version bump) live in ``kpis.services`` and come back next to the
field they name. A formula error keeps its position, so the page can put a caret under the mistake."""

import re
from dataclasses import dataclass

from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import ProhibitNullCharactersValidator
from django.utils.text import slugify
from django.utils.translation import gettext_lazy as _

from contacts.forms import ServiceErrorsMixin
from crm_okr.text import fold

from .models import Frequency, Kpi
from .services import RESERVED_SLUGS  # keys that would clash with the KPI pages' URLs

SLUG_MAX = Kpi._meta.get_field("slug").max_length
# What ``kpi('…')`` can name: lower-case ASCII words joined by hyphens or underscores.
SLUG_PATTERN = re.compile(r"^[a-z0-9]+(?:[-_][a-z0-9]+)*$")
# Words the KPI pages use right under /kpis/, so no KPI may take them as its key.
_POSITION_IN_TEXT = re.compile(r"\(position (\d+)\)|at position (\d+)")
# The longest line shown around a caret; longer lines are cut around the error.
_CARET_WINDOW = 80


def kpi_slugify(text: str) -> str:
    """A slug from a KPI's name that keeps Turkish words readable ("Işık oranı" → "isik-orani")."""
    return slugify(fold(str(text or "")))[:SLUG_MAX].strip("-_")


@dataclass(frozen=True)
class FormulaProblem:
    """A formula error ready to show: the message, and where it is (line, column, the line and a caret)."""

    message: str
    position: int | None = None
    end: int | None = None
    line: int | None = None
    column: int | None = None
    excerpt: str = ""
    caret: str = ""

    @classmethod
    def build(cls, text: str, message: str, position: int | None, end: int | None = None) -> "FormulaProblem":
        text = text or ""
        if position is None or not 0 <= position <= len(text):
            return cls(message=message)
        end = end if end is not None and position < end <= len(text) else position + 1
        line_start = text.rfind("\n", 0, position) + 1
        line_end = text.find("\n", position)
        line_end = len(text) if line_end == -1 else line_end
        line_text = text[line_start:line_end]
        column = position - line_start
        width = max(1, min(end, line_end) - position)
        # Cut very long lines around the error so the caret stays on screen.
        cut = max(0, column - _CARET_WINDOW // 2) if len(line_text) > _CARET_WINDOW else 0
        shown = line_text[cut:cut + _CARET_WINDOW] if cut or len(line_text) > _CARET_WINDOW else line_text
        prefix = "…" if cut else ""
        suffix = "…" if cut + _CARET_WINDOW < len(line_text) else ""
        offset = column - cut + len(prefix)
        caret_width = max(1, min(width, len(shown) + len(prefix) - offset))
        # Tabs keep their width in the caret line, so the caret lines up in a <pre>.
        lead = "".join("\t" if ch == "\t" else " " for ch in (prefix + shown)[:offset])
        return cls(
            message=message, position=position, end=end, line=text.count("\n", 0, position) + 1,
            column=column + 1, excerpt=prefix + shown + suffix, caret=lead + "^" + "~" * (caret_width - 1),
        )


def formula_problem(text: str, exc: Exception) -> FormulaProblem:
    """The problem a ``FormulaError`` or a service's ``ValidationError`` (on ``formula``) describes."""
    original = getattr(exc, "formula_error", None)  # kpis.services keeps the FormulaError on its ValidationError
    if original is not None:
        exc = original
    if isinstance(exc, ValidationError):
        errors = exc.error_dict.get("formula", []) if hasattr(exc, "error_dict") else exc.error_list
        first = errors[0] if errors else None
        params = (getattr(first, "params", None) or {}) if first is not None else {}
        position, end = params.get("position"), params.get("end")
        message = next(iter(first.messages), "") if first is not None else "; ".join(exc.messages)
    else:
        position, end = getattr(exc, "position", None), getattr(exc, "end", None)
        with_position = getattr(exc, "with_position", None)
        message = with_position() if callable(with_position) else str(exc)
    message = str(message)
    if position is None:
        match = _POSITION_IN_TEXT.search(message)
        if match:
            position = int(match.group(1) or match.group(2))
    try:
        position = int(position) if position is not None else None
        end = int(end) if end is not None else None
    except (TypeError, ValueError):
        position = end = None
    return FormulaProblem.build(text, message, position, end)


def normalize_formula(text: str) -> str:
    """The formula as the text box shows it: browsers post CRLF line ends but count positions with LF."""
    return (text or "").replace("\r\n", "\n").replace("\r", "\n").rstrip()


def _model_field(name: str, **overrides) -> forms.Field:
    field = Kpi._meta.get_field(name).formfield(**overrides)
    return field


class FormulaField(forms.CharField):
    """The formula text, kept as typed (only line ends normalised), so error positions match the text box."""

    def __init__(self, **kwargs):
        kwargs.setdefault("strip", False)
        kwargs.setdefault("widget", forms.Textarea(attrs={
            "rows": 6, "spellcheck": "false", "autocomplete": "off", "autocapitalize": "off",
            "class": "formula-input", "data-formula-input": "",
        }))
        super().__init__(**kwargs)
        # The formula checker reports a NUL character with its position; Django's own check would not.
        self.validators = [v for v in self.validators if not isinstance(v, ProhibitNullCharactersValidator)]

    def to_python(self, value):
        return normalize_formula(super().to_python(value))


class KpiForm(ServiceErrorsMixin, forms.Form):
    """A KPI's definition. Creating: the slug comes from the name when left empty. Editing: the slug stays
    (other formulas use it in ``kpi('…')``), so it is shown but not posted."""

    name = _model_field("name")
    slug = forms.CharField(
        label=_("Key"), max_length=SLUG_MAX, required=False,
        help_text=_("Used in formulas as kpi('key'); leave empty to make one from the name."),
    )
    description = _model_field("description", widget=forms.Textarea(attrs={"rows": 3}),
                               help_text=_("What the number means, in one or two sentences."))
    formula = FormulaField(label=_("Formula"), help_text=_("In the KPI formula language; see the language help."))
    unit = _model_field("unit")
    decimals = _model_field("decimals", max_value=6, min_value=0)
    frequency = _model_field("frequency")
    direction = _model_field("direction")
    benchmark_low = _model_field("benchmark_low")
    benchmark_high = _model_field("benchmark_high")
    benchmark_text = _model_field("benchmark_text", help_text=_("How the benchmark is stated, e.g. “3-5x target”."))
    snapshot_at_start = _model_field(
        "snapshot_at_start",
        help_text=_("Take the value once when the period starts and keep it (e.g. a forecast for the month)."),
    )
    is_active = _model_field("is_active", help_text=_("Inactive KPIs are not snapshotted or shown on the dashboard."))

    EDITABLE = ("name", "description", "formula", "unit", "decimals", "frequency", "direction", "benchmark_low",
                "benchmark_high", "benchmark_text", "snapshot_at_start", "is_active")

    def __init__(self, *args, instance: Kpi | None = None, **kwargs):
        if instance is not None and "initial" not in kwargs:
            kwargs["initial"] = {name: getattr(instance, name) for name in ("slug", *self.EDITABLE)}
        super().__init__(*args, **kwargs)
        self.instance = instance
        self.formula_problem: FormulaProblem | None = None
        if instance is not None:
            self.fields["slug"].disabled = True
            self.fields["slug"].help_text = _("Used in formulas as kpi('%(slug)s'); it cannot change.") % {
                "slug": instance.slug}

    @property
    def kpi_slug(self) -> str | None:
        """The slug the formula is checked under (for reference cycles)."""
        if self.instance is not None:
            return self.instance.slug
        return (getattr(self, "cleaned_data", {}) or {}).get("slug") or None

    def clean_slug(self):
        if self.instance is not None:
            return self.instance.slug
        slug = (self.cleaned_data.get("slug") or "").strip().lower()
        if not slug:
            slug = self._unused_slug(kpi_slugify(self.data.get(self.add_prefix("name"), "")))
            if not slug:
                raise ValidationError(_("Type a key of Latin letters and digits; the name gives none."))
            return slug
        if not SLUG_PATTERN.match(slug):
            raise ValidationError(_("Use lower-case letters a–z, digits and single hyphens, e.g. “mql-rate”."))
        if slug in RESERVED_SLUGS:
            raise ValidationError(_("“%(slug)s” is a word the KPI pages use; choose another key.") % {"slug": slug})
        if Kpi.objects.filter(slug=slug).exists():
            raise ValidationError(_("Another KPI already has the key “%(slug)s”.") % {"slug": slug})
        return slug

    @staticmethod
    def _unused_slug(base: str) -> str:
        """``base``, or ``base-2``, ``base-3``… when a KPI already has it (only for keys made from the name)."""
        if not base:
            return ""
        taken = set(Kpi.objects.filter(slug__startswith=base).values_list("slug", flat=True)) | RESERVED_SLUGS
        slug, n = base, 1
        while slug in taken:
            n += 1
            suffix = f"-{n}"
            slug = base[:SLUG_MAX - len(suffix)].rstrip("-_") + suffix
        return slug

    def clean_formula(self):
        formula = self.cleaned_data.get("formula", "")
        if not formula.strip():
            raise ValidationError(_("Write a formula, e.g. count(deals)."))
        return formula

    def clean(self):
        cleaned = super().clean()
        low, high = cleaned.get("benchmark_low"), cleaned.get("benchmark_high")
        if low is not None and high is not None and low > high:
            self.add_error("benchmark_high", _("The benchmark must end at or above where it starts."))
        if "formula" in cleaned:
            self.check_formula(cleaned["formula"], cleaned.get("slug") or self.kpi_slug)
        return cleaned

    def check_formula(self, text: str, slug: str | None) -> None:
        from . import services

        try:
            services.kpi_validate(text, slug=slug)
        except Exception as exc:  # FormulaError or ValidationError; anything else is a bug to see
            if not _is_formula_error(exc):
                raise
            self.set_formula_problem(text, exc)

    def set_formula_problem(self, text: str, exc: Exception) -> None:
        self.formula_problem = formula_problem(text, exc)
        if "formula" in self.errors:
            del self.errors["formula"]
        self.add_error("formula", self.formula_problem.message)

    def add_service_errors(self, exc: ValidationError) -> None:
        """A service's refusal: a formula error keeps its caret; the rest go next to their fields."""
        if hasattr(exc, "error_dict") and "formula" in exc.error_dict:
            problem = getattr(exc, "formula_error", None) or ValidationError({"formula": exc.error_dict["formula"]})
            self.set_formula_problem(self.cleaned_data.get("formula", ""), problem)
            exc = ValidationError({k: v for k, v in exc.error_dict.items() if k != "formula"}) \
                if len(exc.error_dict) > 1 else None
        if exc is not None:
            super().add_service_errors(exc)

    def to_data(self) -> dict:
        """The fields the services take (the slug only when creating)."""
        data = {name: self.cleaned_data[name] for name in self.EDITABLE}
        if self.instance is None:
            data["slug"] = self.cleaned_data["slug"]
        return data


def _is_formula_error(exc: Exception) -> bool:
    from .formula import FormulaError

    return isinstance(exc, FormulaError | ValidationError)


class PreviewForm(forms.Form):
    """What the live preview needs from the editor: the formula, its frequency and how to show the value."""

    formula = FormulaField(required=False)
    frequency = forms.ChoiceField(choices=Frequency.choices, required=False)
    unit = forms.ChoiceField(choices=Kpi.Unit.choices, required=False)
    decimals = forms.IntegerField(min_value=0, max_value=6, required=False)
    slug = forms.CharField(max_length=SLUG_MAX, required=False)

    def values(self) -> dict:
        """The posted values, with defaults in place of anything missing or malformed (a preview never fails)."""
        data = self.cleaned_data if self.is_valid() else {
            name: value for name, value in getattr(self, "cleaned_data", {}).items() if name not in self.errors}
        return {
            "formula": data.get("formula") or "",
            "frequency": data.get("frequency") or Frequency.MONTHLY,
            "unit": data.get("unit") or Kpi.Unit.NUMBER,
            "decimals": data.get("decimals") if data.get("decimals") is not None else 1,
            "slug": data.get("slug") or None,
        }
