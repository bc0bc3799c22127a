"""Serializers of the OKR API: types and shape only; the rules live in okrs.services.

Related ids are looked up among the rows the caller may see (objectives, key results, users), so a hidden id
reads exactly like an unknown one: a 400 on that field, never a leak.

Computed numbers (progress, expected progress, pace) are fractions as decimal strings with four places
(``"0.5000"`` = 50 %), computed by ``okrs.progress`` exactly as on the pages. The view puts each row's computed
state on it as ``api_state`` (see ``okrs.selectors_api``) before serializing.
"""

from django.utils.translation import gettext_lazy as _
from drf_spectacular.drainage import set_override
from rest_framework import serializers

from accounts.api import StrictCharField, StrictModelSerializer, StrictSerializer, request_user
from accounts.models import Team, User
from accounts.selectors import users_visible_to
from kpis.models import Kpi

from .. import progress as P
from ..models import CheckIn, Cycle, Initiative, KeyResult, KeyResultChange, Objective
from ..selectors import key_results_visible_to, objectives_visible_to
from ..services import objective_warnings

STATUS_CHOICES = [(P.ON_TRACK, _("On track")), (P.AT_RISK, _("At risk")), (P.OFF_TRACK, _("Off track"))]
FRACTION = {"max_digits": 12, "decimal_places": 4, "read_only": True}
STATUS_HELP = _("on_track, at_risk or off_track by pace (progress ÷ expected) against the cycle's thresholds; "
                "null in planning, in the cycle's first days (grace_days) or while nothing is expected yet.")


# Choice sets named once in the schema: "kind", "unit" and "status" are also fields of contacts, deals and KPIs
# with other choices, and an unnamed set used by several components would get a hashed name.
ENUM_NAMES = {
    "okr_cycle_status": "OkrCycleStatusEnum",
    "okr_kind": "OkrKeyResultKindEnum",
    "okr_unit": "OkrKeyResultUnitEnum",
    "okr_status": "OkrStatusEnum",
    "okr_initiative_status": "OkrInitiativeStatusEnum",
}


def named_enum(field, key: str):
    """Document a choice field as the named enum component ``ENUM_NAMES[key]``."""
    set_override(field, "field", {"type": "string", "enum": [str(value) for value in field.choices]})
    set_override(field, "field_component_name", ENUM_NAMES[key])
    return field


class NamedEnumsMixin:
    """Give the serializer's choice fields their enum names (``enum_fields = {"kind": "okr_kind"}``)."""

    enum_fields: dict[str, str] = {}

    def get_fields(self):
        fields = super().get_fields()
        for name, key in self.enum_fields.items():
            if name in fields:
                named_enum(fields[name], key)
        return fields


def _reads_input(serializer) -> bool:
    """Whether the serializer validates a body: only then are related ids looked up in the visible rows
    (building those querysets costs queries, which a list must not pay)."""
    return hasattr(serializer.root, "initial_data")


def _set_queryset(fields, name, queryset):
    if name in fields and not fields[name].read_only:
        fields[name].queryset = queryset


def _unchanged(attrs: dict, instance, names, message) -> dict:
    """Refuse a change of fields that are fixed after creation; the same value sent back is no change."""
    errors = {}
    for name in names:
        if name in attrs:
            value = attrs.pop(name)
            if getattr(value, "pk", value) != getattr(instance, f"{name}_id", getattr(instance, name, None)):
                errors[name] = [message]
    if errors:
        raise serializers.ValidationError(errors)
    return attrs


# --- cycles -----------------------------------------------------------------------------------------------


class CycleSerializer(NamedEnumsMixin, StrictModelSerializer):
    """A period OKRs are set for (a quarter by default): planning, then active, then closed and scored."""

    enum_fields = {"status": "okr_cycle_status"}

    class Meta:
        model = Cycle
        fields = ["id", "name", "start_date", "end_date", "status", "on_track_threshold", "at_risk_threshold",
                  "grace_days", "created_by", "created_at", "activated_at", "closed_at", "closed_by"]
        read_only_fields = ["status", "created_by", "created_at", "activated_at", "closed_at", "closed_by"]
        extra_kwargs = {
            "name": {"required": False, "allow_blank": True, "help_text": _(
                "Defaults to the quarter's name (“Q1 2026”) when the dates are a calendar quarter.")},
            "start_date": {"required": False, "help_text": _(
                "First day (YYYY-MM-DD); without it, the current quarter.")},
            "end_date": {"required": False, "help_text": _(
                "Last day; defaults to the end of the quarter that starts on start_date.")},
            "status": {"help_text": _("planning → active (POST …/activate/) → closed (POST …/close/).")},
            "on_track_threshold": {"help_text": _("On track when pace ≥ this (default 0.95).")},
            "at_risk_threshold": {"help_text": _("At risk when pace ≥ this, off track below (default 0.75).")},
        }


class ScoreOverrideSerializer(StrictSerializer):
    key_result = serializers.IntegerField(min_value=1, max_value=2**63 - 1, help_text=_(
        "Id of a key result of the cycle."))
    score = serializers.DecimalField(max_digits=2, decimal_places=1, min_value=0, max_value=1, help_text=_(
        "0.0 – 1.0 with one decimal."))
    comment = StrictCharField(required=False, allow_blank=True, max_length=5000, help_text=_(
        "Why the score differs from the computed one (required when it does)."))

    class Meta:
        ref_name = "OkrScoreOverride"


class CycleCloseSerializer(StrictSerializer):
    overrides = ScoreOverrideSerializer(many=True, required=False, help_text=_(
        "Scores that replace the computed ones (progress rounded to one decimal); each needs a comment."))

    class Meta:
        ref_name = "OkrCycleClose"

    def validate_overrides(self, value):
        seen = set()
        for row in value:
            if row["key_result"] in seen:
                raise serializers.ValidationError(_("Key result %(id)s is given twice.") % {"id": row["key_result"]})
            seen.add(row["key_result"])
        return value


# --- objectives -------------------------------------------------------------------------------------------


class ObjectiveSerializer(NamedEnumsMixin, StrictModelSerializer):
    """An objective with its computed progress and status. Numbers belong in its key results."""

    enum_fields = {"status": "okr_status"}

    progress = serializers.DecimalField(source="api_state.progress", allow_null=True, **FRACTION, help_text=_(
        "Weighted mean of the key results' progress (0–1); null without key results."))
    status = serializers.ChoiceField(source="api_state.status", choices=STATUS_CHOICES, allow_null=True,
                                     read_only=True, help_text=_("The worst status of its key results."))
    expected = serializers.DecimalField(source="api_state.expected", **FRACTION, help_text=_(
        "Weighted mean of the key results' expected progress (0–1; 1 all along for keep above/below); the share "
        "of the cycle elapsed without key results."))
    key_results = serializers.SerializerMethodField(help_text=_("Ids of its key results, in order."))
    warnings = serializers.SerializerMethodField(help_text=_(
        "The seed's guidance (not errors): a number in the title, fewer than 2 or more than 4 key results."))

    class Meta:
        model = Objective
        fields = ["id", "cycle", "title", "description", "level", "team", "owner", "parent", "order", "progress",
                  "status", "expected", "key_results", "warnings", "created_by", "created_at", "updated_at",
                  "archived_at"]
        read_only_fields = ["created_by", "created_at", "updated_at", "archived_at"]
        extra_kwargs = {
            "cycle": {"help_text": _("Cycle id; cannot change later.")},
            "level": {"required": False, "help_text": _(
                "company (admins), team (the team's manager, admins) or individual; default: team when a team is "
                "given, else individual.")},
            "team": {"help_text": _("Team id of a team objective; an individual objective takes its owner's team.")},
            "owner": {"required": False, "help_text": _("User id; defaults to you.")},
            "parent": {"help_text": _("Id of the objective of the same cycle this one is aligned to.")},
            "order": {"required": False},
            "archived_at": {"help_text": _("Set by POST …/archive/; archived objectives leave trees and scoring.")},
        }

    def get_fields(self):
        fields = super().get_fields()
        if not _reads_input(self):
            return fields
        user = request_user(self)
        _set_queryset(fields, "owner", users_visible_to(user) if user else User.objects.none())
        _set_queryset(fields, "parent", objectives_visible_to(user) if user else Objective.objects.none())
        _set_queryset(fields, "team", Team.objects.all())
        _set_queryset(fields, "cycle", Cycle.objects.all())
        return fields

    def get_key_results(self, objective) -> list[int]:
        return [s.key_result.pk for s in objective.api_state.key_results]

    def get_warnings(self, objective) -> list[str]:
        given = self.context.get("warnings")
        if given is not None:
            return [str(w) for w in given]
        return [str(w) for w in objective_warnings(objective, len(objective.api_state.key_results))]

    def validate(self, attrs):
        if self.instance is not None:
            attrs = _unchanged(attrs, self.instance, ["cycle"], _("An objective stays in its cycle."))
        return attrs


class ArchiveSerializer(StrictSerializer):
    archived = serializers.BooleanField(default=True, help_text=_("false brings an archived objective back."))

    class Meta:
        ref_name = "OkrObjectiveArchive"


# --- key results ------------------------------------------------------------------------------------------


class KeyResultSerializer(NamedEnumsMixin, StrictModelSerializer):
    """A key result with its computed progress, pace and status, and its owner's last confidence."""

    enum_fields = {"status": "okr_status", "kind": "okr_kind", "unit": "okr_unit"}

    progress = serializers.DecimalField(source="api_state.progress.value", **FRACTION, help_text=_(
        "(current − start) ÷ (target − start) clamped to 0–1 (keep above/below: share of the cycle's check-ins "
        "that met the threshold; milestone: 0 or 1)."))
    progress_raw = serializers.DecimalField(source="api_state.progress.raw", allow_null=True, **FRACTION, help_text=_(
        "The same before clamping: above 1 when over-achieved, below 0 when going backwards; null without a "
        "reading."))
    over_achieved = serializers.BooleanField(source="api_state.progress.over_achieved", read_only=True)
    expected = serializers.DecimalField(source="api_state.expected", **FRACTION, help_text=_(
        "Share of the time from the cycle's start to the due date elapsed (0–1)."))
    pace = serializers.DecimalField(source="api_state.pace", allow_null=True, **FRACTION, help_text=_(
        "progress ÷ expected; null while nothing is expected yet."))
    status = serializers.ChoiceField(source="api_state.status", choices=STATUS_CHOICES, allow_null=True,
                                     read_only=True, help_text=STATUS_HELP)
    confidence = serializers.IntegerField(source="api_state.confidence", allow_null=True, read_only=True,
                                          help_text=_("The owner's confidence (0–10) from the last check-in."))
    last_check_in_at = serializers.DateTimeField(source="api_state.last_check_in.measured_at", allow_null=True,
                                                 read_only=True)
    reason = StrictCharField(write_only=True, required=False, allow_blank=True, max_length=5000, help_text=_(
        "Why start, target, weight or due date changed (required once the cycle is active; kept in the "
        "history)."))
    warnings = serializers.SerializerMethodField(help_text=_(
        "In answers to a create: the objective's guidance (2 to 4 key results, no number in its title); "
        "empty otherwise."))

    class Meta:
        model = KeyResult
        fields = ["id", "objective", "title", "kind", "start_value", "target_value", "unit", "due_date", "weight",
                  "owner", "kpi", "dimension_kind", "dimension_id", "order", "current_value", "milestone_done",
                  "progress", "progress_raw", "over_achieved", "expected", "pace", "status", "confidence",
                  "last_check_in_at", "score", "score_comment", "created_at", "updated_at", "reason", "warnings"]
        read_only_fields = ["current_value", "milestone_done", "score", "score_comment", "created_at", "updated_at"]
        extra_kwargs = {
            "objective": {"help_text": _("Objective id (one you may edit); cannot change later.")},
            "kind": {"help_text": _("increase / decrease to target, keep_above / keep_below the target, or "
                                    "milestone (done or not: no start or target).")},
            "start_value": {"help_text": _("Required for increase and decrease; must differ from the target.")},
            "target_value": {"help_text": _("Required except for milestones (the threshold for keep above/below).")},
            "due_date": {"required": False, "help_text": _("Within the cycle; defaults to its last day.")},
            "owner": {"required": False, "help_text": _("User id; defaults to the objective's owner.")},
            "kpi": {"help_text": _("Id of the KPI that measures it (its snapshots check in automatically); null: "
                                   "kept by hand.")},
            "dimension_kind": {"help_text": _("With a KPI: team, owner, pipeline or source; empty: company-wide.")},
            "dimension_id": {"help_text": _("The team, user, pipeline or lead source id of the dimension.")},
            "order": {"required": False},
            "current_value": {"help_text": _("The latest check-in's value.")},
            "score": {"help_text": _("Given when the cycle closes (0.0–1.0).")},
        }

    def get_fields(self):
        fields = super().get_fields()
        if not _reads_input(self):
            return fields
        user = request_user(self)
        _set_queryset(fields, "owner", users_visible_to(user) if user else User.objects.none())
        _set_queryset(fields, "objective", objectives_visible_to(user) if user else Objective.objects.none())
        _set_queryset(fields, "kpi", Kpi.objects.all())
        return fields

    def get_warnings(self, key_result) -> list[str]:
        return [str(w) for w in self.context.get("warnings") or []]

    def validate(self, attrs):
        if self.instance is not None:
            attrs = _unchanged(attrs, self.instance, ["objective"], _("A key result stays with its objective."))
        return attrs


class KeyResultScoreSerializer(StrictSerializer):
    score = serializers.DecimalField(max_digits=2, decimal_places=1, min_value=0, max_value=1)
    comment = StrictCharField(required=False, allow_blank=True, max_length=5000, help_text=_(
        "Required when the score differs from the computed one."))

    class Meta:
        ref_name = "OkrKeyResultScore"


class KeyResultChangeSerializer(serializers.ModelSerializer):
    """A change of start, target, weight or due date: who, when and why."""

    changed_by_name = serializers.SerializerMethodField()

    class Meta:
        model = KeyResultChange
        fields = ["id", "field", "old_value", "new_value", "changed_by", "changed_by_name", "changed_at", "reason"]
        read_only_fields = fields

    def get_changed_by_name(self, change) -> str:
        user = change.changed_by
        return (user.get_full_name() or user.username) if user is not None else ""


class SeriesPointSerializer(serializers.Serializer):
    measured_at = serializers.DateTimeField()
    value = serializers.DecimalField(max_digits=24, decimal_places=6)
    is_automatic = serializers.BooleanField()
    confidence = serializers.IntegerField(allow_null=True)

    class Meta:
        ref_name = "OkrSeriesPoint"


class PacePointSerializer(serializers.Serializer):
    at = serializers.DateTimeField()
    value = serializers.DecimalField(max_digits=20, decimal_places=4)

    class Meta:
        ref_name = "OkrPacePoint"


class KeyResultHistorySerializer(serializers.Serializer):
    """What a key result's chart and history show."""

    changes = KeyResultChangeSerializer(many=True, help_text=_("Changes of start, target, weight and due date, "
                                                                "newest first."))
    series = SeriesPointSerializer(many=True, help_text=_("Values over time (check-ins, manual and from KPI "
                                                          "snapshots), oldest first."))
    pace_line = PacePointSerializer(many=True, allow_null=True, help_text=_(
        "The expected-pace line: [{\"at\": start of the cycle, \"value\": start value}, {\"at\": end of the due "
        "date, \"value\": target}]; null for milestones and keep above/below."))

    class Meta:
        ref_name = "OkrKeyResultHistory"


# --- check-ins --------------------------------------------------------------------------------------------


class CheckInSerializer(StrictModelSerializer):
    """A reading of a key result: value, confidence (0–10), a note and blockers."""

    done = serializers.BooleanField(write_only=True, required=False, help_text=_(
        "For a milestone: whether it is done (instead of value 1/0)."))

    class Meta:
        model = CheckIn
        fields = ["id", "key_result", "value", "done", "confidence", "note", "blockers", "author", "measured_at",
                  "is_automatic", "snapshot", "created_at", "updated_at"]
        read_only_fields = ["author", "measured_at", "is_automatic", "snapshot", "created_at", "updated_at"]
        extra_kwargs = {
            "key_result": {"help_text": _("Key result id (one you may check in on).")},
            "value": {"help_text": _("The current value; refused for a key result measured by a KPI (its snapshots "
                                     "give it). Cannot change later: check in again.")},
            "is_automatic": {"help_text": _("Made from a KPI snapshot; only confidence, note and blockers change.")},
        }

    def get_fields(self):
        fields = super().get_fields()
        if not _reads_input(self):
            return fields
        user = request_user(self)
        _set_queryset(fields, "key_result", key_results_visible_to(user) if user else KeyResult.objects.none())
        return fields

    def validate(self, attrs):
        row = self.instance
        if row is None:
            return attrs
        errors = {}
        if "key_result" in attrs and attrs.pop("key_result").pk != row.key_result_id:
            errors["key_result"] = [_("A check-in stays with its key result.")]
        if "value" in attrs and attrs.pop("value") != row.value:
            errors["value"] = [_("This value comes from a KPI snapshot; add your confidence and a note.")
                               if row.is_automatic else _("A check-in's value does not change: check in again.")]
        if "done" in attrs:
            attrs.pop("done")
            errors["done"] = [_("A check-in's value does not change: check in again.")]
        if errors:
            raise serializers.ValidationError(errors)
        return attrs


# --- initiatives ------------------------------------------------------------------------------------------


class InitiativeSerializer(NamedEnumsMixin, StrictModelSerializer):
    """Work planned to move a key result."""

    enum_fields = {"status": "okr_initiative_status"}

    class Meta:
        model = Initiative
        fields = ["id", "key_result", "title", "owner", "status", "due_date", "created_at", "updated_at"]
        read_only_fields = ["created_at", "updated_at"]
        extra_kwargs = {
            "key_result": {"help_text": _("Key result id (one you may edit); cannot change later.")},
            "owner": {"required": False, "help_text": _("User id; defaults to you.")},
        }

    def get_fields(self):
        fields = super().get_fields()
        if not _reads_input(self):
            return fields
        user = request_user(self)
        _set_queryset(fields, "owner", users_visible_to(user) if user else User.objects.none())
        _set_queryset(fields, "key_result", key_results_visible_to(user) if user else KeyResult.objects.none())
        return fields

    def validate(self, attrs):
        if self.instance is not None:
            attrs = _unchanged(attrs, self.instance, ["key_result"], _("An initiative stays with its key result."))
        return attrs


# --- templates --------------------------------------------------------------------------------------------


class TemplateKeyResultSerializer(NamedEnumsMixin, serializers.Serializer):
    enum_fields = {"kind": "okr_kind", "unit": "okr_unit"}

    title = serializers.CharField()
    kind = serializers.ChoiceField(choices=KeyResult.Kind.choices)
    unit = serializers.ChoiceField(choices=KeyResult.Unit.choices)
    kpi = serializers.CharField(help_text=_("Key of the KPI that measures it when loaded (empty: by hand)."))

    class Meta:
        ref_name = "OkrTemplateKeyResult"


class TemplateSerializer(serializers.Serializer):
    """One of the seed's sample OKR sets."""

    key = serializers.CharField()
    name = serializers.CharField()
    objective = serializers.CharField()
    description = serializers.CharField()
    key_results = TemplateKeyResultSerializer(many=True)

    class Meta:
        ref_name = "OkrTemplate"


class TemplateLoadSerializer(StrictSerializer):
    cycle = serializers.PrimaryKeyRelatedField(queryset=Cycle.objects.all(), help_text=_("Cycle id."))
    team = serializers.PrimaryKeyRelatedField(queryset=Team.objects.all(), help_text=_(
        "Team id (you manage it, or you are an admin)."))
    owner = serializers.PrimaryKeyRelatedField(queryset=User.objects.none(), required=False, help_text=_(
        "User id of the objective's owner; defaults to the team's manager."))
    parent = serializers.PrimaryKeyRelatedField(queryset=Objective.objects.none(), required=False, allow_null=True,
                                                help_text=_("Objective id to align the new objective to."))

    class Meta:
        ref_name = "OkrTemplateLoad"

    def get_fields(self):
        fields = super().get_fields()
        user = request_user(self)
        if user is not None:
            fields["owner"].queryset = users_visible_to(user)
            fields["parent"].queryset = objectives_visible_to(user)
        return fields
