"""Every write of the data the KPIs need that people or integrations supply: survey responses, external
metrics and their values, exchange rates.

Rules (the browser pages, the API and the admin all call these):

- Survey responses: anyone who sees the contact may add one (admins and integrations may also add one without
  a contact). An integration's ``external_id`` makes pushing the same answer twice an update, not a second row.
- External metrics: admins create and change them. A metric is company-wide or kept per dimension kind.
- Metric values: admins and integrations write them, one per metric, period start and dimension value (pushing
  again replaces the value). Periods of one metric and dimension value may not overlap: a KPI counts a value in
  the period that contains its start, so overlapping values would be counted twice.
- Exchange rates: admins and integrations write them, one per currency and day.

Errors are ``django.core.exceptions.ValidationError`` with field names (``PermissionDenied`` for roles).
"""

import datetime as dt
import re
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import User
from contacts.models import Contact
from contacts.selectors import contacts_visible_to

from . import periods
from .models import DimensionKind, ExchangeRate, ExternalMetric, Frequency, Kpi, MetricValue, SurveyResponse

SURVEY_FIELDS = {"kind", "score", "contact", "responded_at", "channel", "comment", "external_id"}
METRIC_FIELDS = {"key", "name", "description", "unit", "dimension_kind", "applies_to_breakdowns"}
METRIC_VALUE_FIELDS = {"period", "period_start", "period_end", "dimension", "value"}
EXCHANGE_RATE_FIELDS = {"currency", "rate", "valid_from"}

SCORE_RANGES = {SurveyResponse.Kind.NPS: (0, 10), SurveyResponse.Kind.CSAT: (1, 5)}
MAX_COMMENT = 5000
MAX_EXTERNAL_ID = 100
# An answer may be dated a little ahead of the server clock (the integration's clock may run fast).
FUTURE_SKEW = dt.timedelta(minutes=10)
FIRST_YEAR, LAST_YEAR = 2000, 2100
# A value may cover at most this many days (a year and a bit: "customer lifetime" is kept per year).
MAX_PERIOD_DAYS = 366
# |value| of a metric value: the column holds 16 digits before the point.
MAX_METRIC_VALUE = Decimal("1e15")
MAX_RATE = Decimal("1e9")
# How many metric values one request may write.
MAX_BULK = 500

KEY_RE = re.compile(r"^[a-z][a-z0-9_]{0,59}$")
CURRENCY_RE = re.compile(r"^[A-Za-z]{3}$")
PERIOD_PATTERNS = [
    (re.compile(r"^\d{4}-\d{2}-\d{2}$"), Frequency.DAILY),
    (re.compile(r"^\d{4}-W\d{2}$", re.IGNORECASE), Frequency.WEEKLY),
    (re.compile(r"^\d{4}-\d{2}$"), Frequency.MONTHLY),
    (re.compile(r"^\d{4}-Q\d$", re.IGNORECASE), Frequency.QUARTERLY),
]


# --- permissions -----------------------------------------------------------------------------------


def can_manage_metrics(user) -> bool:
    return bool(user and user.is_authenticated and user.is_admin)


def can_push_values(user) -> bool:
    """Admins and integrations write metric values and exchange rates."""
    return bool(user and user.is_authenticated and (user.is_admin or user.role == User.Role.INTEGRATION))


def _require_admin(actor: User) -> None:
    if not can_manage_metrics(actor):
        raise PermissionDenied(_("Only admins create and change external metrics."))


def _require_pusher(actor: User, what: str) -> None:
    if not can_push_values(actor):
        raise PermissionDenied(what)


def _unknown(data: dict, allowed) -> None:
    unknown = sorted(str(name) for name in set(data) - set(allowed))
    if unknown:
        raise ValidationError({name[:60]: _("Unknown field.") for name in unknown[:20]})


def _text(value, field: str, max_length: int, errors: dict, *, required: bool = False) -> str:
    if value is None:
        value = ""
    if not isinstance(value, str):
        errors[field] = _("Expected text.")
        return ""
    value = value.strip()
    if required and not value:
        errors[field] = _("This field is required.")
    elif len(value) > max_length:
        errors[field] = _("At most %(n)d characters (this has %(got)d).") % {"n": max_length, "got": len(value)}
    elif "\x00" in value:
        errors[field] = _("Text may not contain NUL characters.")
    return value


def _decimal(value, field: str, errors: dict, *, places: int, limit: Decimal) -> Decimal | None:
    """A finite decimal with at most ``places`` decimals and |value| < limit; errors[field] otherwise."""
    if isinstance(value, bool) or value is None or value == "":
        errors[field] = _("Enter a number.")
        return None
    try:
        number = Decimal(value.strip() if isinstance(value, str) else str(value))
    except (InvalidOperation, ValueError, TypeError):
        errors[field] = _("Enter a number, e.g. 12500.50.")
        return None
    if not number.is_finite():
        errors[field] = _("Enter a number, e.g. 12500.50.")
        return None
    if abs(number) >= limit:
        errors[field] = _("The number is too large (at most %(limit)s).") % {"limit": f"{limit:,.0f}"}
        return None
    if number != number.quantize(Decimal(1).scaleb(-places), rounding="ROUND_HALF_EVEN"):
        errors[field] = _("At most %(n)d decimal places.") % {"n": places}
        return None
    return number.quantize(Decimal(1).scaleb(-places))


def _whole_number(value) -> int | None:
    """An int from an int or a string of digits (with an optional minus); None for anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"-?\d{1,18}", value.strip()):
        return int(value.strip())
    return None


def _date(value, field: str, errors: dict) -> dt.date | None:
    if isinstance(value, dt.datetime):
        value = timezone.localtime(value).date() if timezone.is_aware(value) else value.date()
    if isinstance(value, dt.date):
        day = value
    elif isinstance(value, str):
        try:
            day = dt.date.fromisoformat(value.strip())
        except ValueError:
            errors[field] = _("Enter a date as YYYY-MM-DD.")
            return None
        if len(value.strip()) != 10:
            errors[field] = _("Enter a date as YYYY-MM-DD.")
            return None
    else:
        errors[field] = _("Enter a date as YYYY-MM-DD.")
        return None
    if not FIRST_YEAR <= day.year <= LAST_YEAR:
        errors[field] = _("Enter a date between %(first)d and %(last)d.") % {"first": FIRST_YEAR, "last": LAST_YEAR}
        return None
    return day


# --- survey responses ------------------------------------------------------------------------------


def _clean_survey(actor: User, data: dict, existing: SurveyResponse | None) -> dict:
    errors: dict = {}
    clean: dict = {}
    kind = data.get("kind", existing.kind if existing else SurveyResponse.Kind.NPS)
    if kind not in SurveyResponse.Kind.values:
        errors["kind"] = _("“%(value)s” is not one of: %(options)s.") % {
            "value": str(kind)[:40], "options": ", ".join(SurveyResponse.Kind.values)}
    else:
        clean["kind"] = kind
    score = data.get("score", existing.score if existing else None)
    if score is None or score == "":
        errors["score"] = _("This field is required.")
    else:
        number = _whole_number(score)
        if number is None:
            errors["score"] = _("Enter a whole number.")
        elif "kind" in clean:
            low, high = SCORE_RANGES[clean["kind"]]
            if not low <= number <= high:
                errors["score"] = _("A %(kind)s score is a whole number from %(low)d to %(high)d.") % {
                    "kind": clean["kind"].upper(), "low": low, "high": high}
            else:
                clean["score"] = number

    contact = data.get("contact", existing.contact if existing else None)
    if contact not in (None, ""):
        pk = contact.pk if isinstance(contact, Contact) else _whole_number(contact)
        found = contacts_visible_to(actor).filter(pk=pk).first() if pk is not None and 0 < pk < 2**63 else None
        if found is None:
            errors["contact"] = _("Unknown contact.")
        else:
            clean["contact"] = found
    elif not actor.sees_everything:
        errors["contact"] = _("Choose the contact who answered.")
    else:
        clean["contact"] = None

    responded_at = data.get("responded_at", existing.responded_at if existing else None) or timezone.now()
    if isinstance(responded_at, str):
        from django.utils.dateparse import parse_datetime

        try:
            parsed = parse_datetime(responded_at.strip())
        except ValueError:
            parsed = None
        responded_at = parsed
    if not isinstance(responded_at, dt.datetime):
        errors["responded_at"] = _("Enter a date and time, e.g. 2026-11-23T14:30:00+03:00.")
    else:
        if timezone.is_naive(responded_at):
            responded_at = timezone.make_aware(responded_at, periods.company_tz())
        if responded_at > timezone.now() + FUTURE_SKEW:
            errors["responded_at"] = _("The answer cannot be dated in the future.")
        elif responded_at.year < FIRST_YEAR:
            errors["responded_at"] = _("Enter a date after %(year)d.") % {"year": FIRST_YEAR}
        else:
            clean["responded_at"] = responded_at

    channel = data.get("channel", existing.channel if existing else "")
    channel = "" if channel is None else channel
    if channel not in ["", *SurveyResponse.Channel.values]:
        errors["channel"] = _("“%(value)s” is not one of: %(options)s.") % {
            "value": str(channel)[:40], "options": ", ".join(SurveyResponse.Channel.values)}
    else:
        clean["channel"] = channel
    clean["comment"] = _text(data.get("comment", existing.comment if existing else ""), "comment", MAX_COMMENT,
                             errors)
    if errors:
        raise ValidationError(errors)
    return clean


@transaction.atomic
def survey_response_create(*, actor: User, data: dict) -> tuple[SurveyResponse, bool]:
    """Record an answer; with an ``external_id`` already known, update that answer instead.

    Returns ``(response, created)``. The contact must be one the actor sees (reps and managers must give one).
    """
    _unknown(data, SURVEY_FIELDS)
    errors: dict = {}
    external_id = _text(data.get("external_id"), "external_id", MAX_EXTERNAL_ID, errors)
    if errors:
        raise ValidationError(errors)
    existing = None
    if external_id:
        existing = (SurveyResponse.objects.select_for_update(of=("self",)).select_related("contact")
                    .filter(external_id=external_id).first())
        if existing is not None and not actor.sees_everything and (
            existing.contact_id is None or not contacts_visible_to(actor).filter(pk=existing.contact_id).exists()
        ):
            raise ValidationError({"external_id": _("This external id is already used by another answer.")})
    clean = _clean_survey(actor, data, existing)
    if existing is not None:
        for name, value in clean.items():
            setattr(existing, name, value)
        existing.save(update_fields=list(clean))
        return existing, False
    response = SurveyResponse(**clean, external_id=external_id, created_by=actor)
    try:
        with transaction.atomic():
            response.save()
    except IntegrityError:
        # Another request pushed the same external id a moment ago: update that one.
        if not external_id:
            raise
        return survey_response_create(actor=actor, data=data)
    return response, True


def survey_response_delete(*, actor: User, response: SurveyResponse) -> None:
    if not actor.is_admin:
        raise PermissionDenied(_("Only admins delete survey responses."))
    response.delete()


# --- external metrics ------------------------------------------------------------------------------


def _clean_metric(data: dict, metric: ExternalMetric | None) -> dict:
    errors: dict = {}
    clean: dict = {}
    if "key" in data or metric is None:
        key = data.get("key")
        if not isinstance(key, str) or not key.strip():
            errors["key"] = _("This field is required.") if not key else _("Expected text.")
        else:
            key = key.strip()
            if not KEY_RE.match(key):
                errors["key"] = _("Use lower-case letters, digits and underscores, starting with a letter "
                                  "(at most 60), e.g. marketing_spend.")
            elif metric is not None and key != metric.key:
                errors["key"] = _("The key cannot change: formulas refer to it. Create a new metric instead.")
            elif metric is None and ExternalMetric.objects.filter(key=key).exists():
                errors["key"] = _("There is already a metric with the key “%(key)s”.") % {"key": key}
            else:
                clean["key"] = key
    if "name" in data or metric is None:
        clean["name"] = _text(data.get("name"), "name", 200, errors, required=True)
    if "description" in data:
        clean["description"] = _text(data.get("description"), "description", 5000, errors)
    if "unit" in data or metric is None:
        unit = data.get("unit", Kpi.Unit.CURRENCY) if metric is None else data.get("unit")
        if unit not in Kpi.Unit.values:
            errors["unit"] = _("“%(value)s” is not one of: %(options)s.") % {
                "value": str(unit)[:40], "options": ", ".join(Kpi.Unit.values)}
        else:
            clean["unit"] = unit
    if "dimension_kind" in data:
        kind = data.get("dimension_kind") or ""
        if kind not in ["", *DimensionKind.values]:
            errors["dimension_kind"] = _("“%(value)s” is not one of: %(options)s (empty: company-wide).") % {
                "value": str(kind)[:40], "options": ", ".join(DimensionKind.values)}
        elif metric is not None and kind != metric.dimension_kind and metric.values.exists():
            errors["dimension_kind"] = _("The metric has values; delete them before changing what it is kept per.")
        else:
            clean["dimension_kind"] = kind
    if "applies_to_breakdowns" in data:
        applies = data.get("applies_to_breakdowns")
        if not isinstance(applies, bool):
            errors["applies_to_breakdowns"] = _("Expected true or false.")
        else:
            clean["applies_to_breakdowns"] = applies
    kind = clean.get("dimension_kind", metric.dimension_kind if metric is not None else "")
    applies = clean.get("applies_to_breakdowns", metric.applies_to_breakdowns if metric is not None else False)
    if kind and applies and "dimension_kind" not in errors:
        errors["applies_to_breakdowns"] = _("Only a company-wide metric can apply to every breakdown; a metric "
                                            "kept per %(kind)s counts for its own %(kind)s.") % {
                                                "kind": DimensionKind(kind).label.lower()}
    if errors:
        raise ValidationError(errors)
    return clean


@transaction.atomic
def metric_create(*, actor: User, data: dict) -> ExternalMetric:
    _require_admin(actor)
    _unknown(data, METRIC_FIELDS)
    metric = ExternalMetric(**_clean_metric(data, None))
    try:
        with transaction.atomic():
            metric.save()
    except IntegrityError:
        raise ValidationError({"key": _("There is already a metric with the key “%(key)s”.") % {
            "key": metric.key}}) from None
    return metric


@transaction.atomic
def metric_update(metric: ExternalMetric, *, actor: User, data: dict) -> ExternalMetric:
    """Change the name, description, unit or (while it has no values) what the metric is kept per."""
    _require_admin(actor)
    _unknown(data, METRIC_FIELDS)
    metric = ExternalMetric.objects.select_for_update().get(pk=metric.pk)
    clean = _clean_metric(data, metric)
    clean.pop("key", None)
    for name, value in clean.items():
        setattr(metric, name, value)
    if clean:
        metric.save(update_fields=list(clean))
    return metric


# --- metric values ---------------------------------------------------------------------------------


def parse_period_key(text) -> periods.Period:
    """"2026-11-23", "2026-W48", "2026-11" or "2026-Q4" → the period; ValueError with a message otherwise."""
    text = text.strip() if isinstance(text, str) else ""
    for pattern, frequency in PERIOD_PATTERNS:
        if pattern.match(text):
            return periods.parse(frequency, text.upper())
    raise ValueError(_("“%(value)s” is not a period; expected a day (2026-11-23), a week (2026-W48), a month "
                       "(2026-11) or a quarter (2026-Q4).") % {"value": str(text)[:40]})


def _dimension_model(kind: str):
    from accounts.models import Team
    from contacts.models import LeadSource
    from pipeline.models import Pipeline

    return {DimensionKind.TEAM: Team, DimensionKind.OWNER: User, DimensionKind.PIPELINE: Pipeline,
            DimensionKind.SOURCE: LeadSource}[kind]


def _clean_value_item(metric: ExternalMetric, data) -> tuple[dict, dict]:
    """Type-check one value: (clean fields, errors). The dimension's existence is checked by the caller."""
    errors: dict = {}
    if not isinstance(data, dict):
        return {}, {"non_field_errors": _("Expected an object with period (or period_start and period_end), "
                                          "dimension and value.")}
    unknown = sorted(str(name) for name in set(data) - METRIC_VALUE_FIELDS)
    for name in unknown[:20]:
        errors[name[:60]] = _("Unknown field. Known fields: %(fields)s.") % {
            "fields": ", ".join(sorted(METRIC_VALUE_FIELDS))}
    clean: dict = {}
    period = data.get("period")
    has_dates = data.get("period_start") not in (None, "") or data.get("period_end") not in (None, "")
    if period not in (None, ""):
        if has_dates:
            errors["period"] = _("Give either period or period_start and period_end, not both.")
        else:
            try:
                parsed = parse_period_key(period)
            except ValueError as exc:
                errors["period"] = str(exc)
            else:
                clean["period_start"], clean["period_end"] = parsed.first_day, parsed.last_day
    else:
        start = data.get("period_start")
        end = data.get("period_end")
        if start in (None, ""):
            errors["period_start"] = _("Required (or give period, e.g. 2026-11).")
        else:
            start = _date(start, "period_start", errors)
        if end in (None, ""):
            errors["period_end"] = _("Required: the last day the value covers (or give period, e.g. 2026-11).")
        else:
            end = _date(end, "period_end", errors)
        if isinstance(start, dt.date) and isinstance(end, dt.date) and not errors:
            if end < start:
                errors["period_end"] = _("The period ends before it starts.")
            elif (end - start).days + 1 > MAX_PERIOD_DAYS:
                errors["period_end"] = _("A value covers at most %(n)d days.") % {"n": MAX_PERIOD_DAYS}
            else:
                clean["period_start"], clean["period_end"] = start, end

    dimension = data.get("dimension")
    if metric.dimension_kind:
        label = DimensionKind(metric.dimension_kind).label.lower()
        if dimension in (None, "", 0):
            errors["dimension"] = _("“%(metric)s” is kept per %(kind)s: give the %(kind)s id.") % {
                "metric": metric.key, "kind": label}
        elif (number := _whole_number(dimension)) is None or not 0 < number < 2**63:
            errors["dimension"] = _("Enter the %(kind)s id (a whole number).") % {"kind": label}
        else:
            clean["dimension_id"] = number
    else:
        if dimension not in (None, "", 0):
            errors["dimension"] = _("“%(metric)s” is company-wide: leave dimension empty.") % {"metric": metric.key}
        clean["dimension_id"] = 0

    if "value" not in data:
        errors["value"] = _("This field is required.")
    else:
        value = _decimal(data["value"], "value", errors, places=4, limit=MAX_METRIC_VALUE)
        if value is not None:
            clean["value"] = value
    return clean, errors


def _overlapping(metric: ExternalMetric, clean: dict):
    return (MetricValue.objects.filter(metric=metric, dimension_id=clean["dimension_id"],
                                       period_start__lte=clean["period_end"], period_end__gte=clean["period_start"])
            .exclude(period_start=clean["period_start"]).order_by("period_start").first())


def _overlap_error(other: MetricValue) -> str:
    return _("Overlaps the value for %(start)s – %(end)s; a KPI would count both. Use the same period start to "
             "replace it, or delete it first.") % {"start": other.period_start.isoformat(),
                                                   "end": other.period_end.isoformat()}


def _write_value(actor: User, metric: ExternalMetric, clean: dict) -> tuple[MetricValue, bool]:
    row, created = MetricValue.objects.update_or_create(
        metric=metric, period_start=clean["period_start"], dimension_id=clean["dimension_id"],
        defaults={"period_end": clean["period_end"], "value": clean["value"], "updated_by": actor,
                  "updated_at": timezone.now()},
    )
    return row, created


def _missing_dimensions(kind: str, ids: set[int]) -> set[int]:
    if not kind or not ids:
        return set()
    return ids - set(_dimension_model(kind).objects.filter(pk__in=ids).values_list("pk", flat=True))


def _lock(metric: ExternalMetric) -> ExternalMetric:
    """Writes of one metric's values wait for each other, so two pushes cannot create overlapping periods."""
    return ExternalMetric.objects.select_for_update().get(pk=metric.pk)


@transaction.atomic
def metric_value_upsert(*, actor: User, metric: ExternalMetric, data: dict) -> tuple[MetricValue, bool]:
    """Set the value of a metric for a period (and dimension value): created, or replaced when the metric,
    period start and dimension value already have one. Returns ``(value, created)``."""
    _require_pusher(actor, _("Only admins and integrations write metric values."))
    clean, errors = _clean_value_item(metric, data)
    if not errors and _missing_dimensions(metric.dimension_kind, {clean["dimension_id"]}):
        errors["dimension"] = _("There is no %(kind)s with id %(id)s.") % {
            "kind": DimensionKind(metric.dimension_kind).label.lower(), "id": clean["dimension_id"]}
    if errors:
        raise ValidationError(errors)
    metric = _lock(metric)
    other = _overlapping(metric, clean)
    if other is not None:
        raise ValidationError({"period_start": _overlap_error(other)})
    return _write_value(actor, metric, clean)


def metric_values_bulk_upsert(*, actor: User, items: list, positions: list[int] | None = None
                              ) -> list[tuple[MetricValue, bool]]:
    """Upsert many values (of one or more metrics) in one transaction: all of them, or none.

    Each item is a dict with ``metric`` (an ExternalMetric, or its key) besides the value fields. Errors name
    the item by its position: ``{"3.value": [...], "7.dimension": [...]}`` (``positions`` gives each item's
    position in the caller's list when some items were left out before).
    """
    _require_pusher(actor, _("Only admins and integrations write metric values."))
    if not isinstance(items, list | tuple) or not items:
        raise ValidationError({"non_field_errors": _("Send one value (an object) or a list of 1 to %(n)d values.")
                               % {"n": MAX_BULK}})
    if len(items) > MAX_BULK:
        raise ValidationError({"non_field_errors": _("At most %(n)d values in one request (this has %(got)d).")
                               % {"n": MAX_BULK, "got": len(items)}})
    keys = {item.get("metric") for item in items if isinstance(item, dict) and isinstance(item.get("metric"), str)}
    metrics = {m.key: m for m in ExternalMetric.objects.filter(key__in=[k[:60] for k in keys])}
    errors: dict = {}
    cleaned: list[tuple[int, ExternalMetric, dict]] = []
    for index, item in zip(positions or range(len(items)), items, strict=True):
        metric = item.get("metric") if isinstance(item, dict) else None
        if not isinstance(metric, ExternalMetric):
            if isinstance(item, dict) and metric is None:
                errors[f"{index}.metric"] = [_("This field is required.")]
                continue
            if not isinstance(metric, str) or metric not in metrics:
                if isinstance(item, dict):
                    errors[f"{index}.metric"] = [_("Unknown metric “%(key)s”.") % {"key": str(metric)[:60]}]
                else:
                    errors[f"{index}.non_field_errors"] = [_("Expected an object.")]
                continue
            metric = metrics[metric]
        clean, item_errors = _clean_value_item(metric, {k: v for k, v in item.items() if k != "metric"})
        for name, message in item_errors.items():
            errors[f"{index}.{name}"] = [message]
        if not item_errors:
            cleaned.append((index, metric, clean))
    # Every dimension id once per kind.
    wanted: dict[str, set[int]] = {}
    for _index, metric, clean in cleaned:
        if metric.dimension_kind:
            wanted.setdefault(metric.dimension_kind, set()).add(clean["dimension_id"])
    missing = {kind: _missing_dimensions(kind, ids) for kind, ids in wanted.items()}
    seen: dict[tuple, int] = {}
    # Values of one metric and dimension value in this list may not overlap each other either.
    by_series: dict[tuple, list] = {}
    for index, metric, clean in cleaned:
        by_series.setdefault((metric.pk, clean["dimension_id"]), []).append((clean["period_start"], index, clean))
    for series in by_series.values():
        series.sort(key=lambda entry: (entry[0], entry[1]))
        for (start, index, clean), (next_start, next_index, _next) in zip(series, series[1:], strict=False):
            if next_start != start and next_start <= clean["period_end"]:
                errors[f"{next_index}.period_start"] = [_(
                    "Overlaps item %(other)d (%(start)s – %(end)s); a KPI would count both.") % {
                    "other": index, "start": start.isoformat(), "end": clean["period_end"].isoformat()}]
    for index, metric, clean in cleaned:
        if clean["dimension_id"] in missing.get(metric.dimension_kind, ()):
            errors[f"{index}.dimension"] = [_("There is no %(kind)s with id %(id)s.") % {
                "kind": DimensionKind(metric.dimension_kind).label.lower(), "id": clean["dimension_id"]}]
        key = (metric.pk, clean["period_start"], clean["dimension_id"])
        if key in seen:
            errors[f"{index}.period_start"] = [_("Item %(other)d has the same metric, period and dimension.") % {
                "other": seen[key]}]
        seen.setdefault(key, index)
    if errors:
        raise ValidationError(errors)
    results = []
    with transaction.atomic():
        locked = {}
        for pk in sorted({metric.pk for _index, metric, _clean in cleaned}):
            locked[pk] = ExternalMetric.objects.select_for_update().get(pk=pk)
        for index, metric, clean in cleaned:
            other = _overlapping(locked[metric.pk], clean)
            if other is not None:
                errors[f"{index}.period_start"] = [_overlap_error(other)]
                continue
            if not errors:
                results.append(_write_value(actor, locked[metric.pk], clean))
        if errors:
            # Nothing is kept: leaving the block with the error rolls back the rows written before it.
            raise ValidationError(errors)
    return results


def metric_value_delete(*, actor: User, value: MetricValue) -> None:
    _require_pusher(actor, _("Only admins and integrations delete metric values."))
    value.delete()


# --- exchange rates --------------------------------------------------------------------------------


@transaction.atomic
def exchange_rate_upsert(*, actor: User, data: dict) -> tuple[ExchangeRate, bool]:
    """Set how much one unit of a currency is worth in the company currency from a day on (replacing the rate
    of that currency and day). Returns ``(rate, created)``."""
    _require_pusher(actor, _("Only admins and integrations change exchange rates."))
    _unknown(data, EXCHANGE_RATE_FIELDS)
    errors: dict = {}
    currency = data.get("currency")
    if not isinstance(currency, str) or not CURRENCY_RE.match(currency.strip()):
        errors["currency"] = _("Use a three-letter ISO currency code such as EUR or USD.")
    else:
        currency = currency.strip().upper()
        if currency == settings.CRM_CURRENCY:
            errors["currency"] = _("%(currency)s is the company currency; it needs no rate.") % {
                "currency": currency}
    rate = _decimal(data.get("rate"), "rate", errors, places=8, limit=MAX_RATE)
    if rate is not None and rate <= 0:
        errors["rate"] = _("The rate must be more than 0.")
    valid_from = data.get("valid_from")
    if valid_from in (None, ""):
        errors["valid_from"] = _("This field is required.")
    else:
        valid_from = _date(valid_from, "valid_from", errors)
    if errors:
        raise ValidationError(errors)
    defaults = {"rate": rate, "updated_by": actor, "updated_at": timezone.now()}
    try:
        with transaction.atomic():
            return ExchangeRate.objects.update_or_create(currency=currency, valid_from=valid_from, defaults=defaults)
    except IntegrityError:
        # The same currency and day pushed at the same moment by someone else: replace theirs.
        return ExchangeRate.objects.update_or_create(currency=currency, valid_from=valid_from, defaults=defaults)


def exchange_rate_delete(*, actor: User, rate: ExchangeRate) -> None:
    _require_pusher(actor, _("Only admins and integrations change exchange rates."))
    rate.delete()
