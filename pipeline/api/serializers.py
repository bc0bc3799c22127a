"""Serializers of the pipeline API: types and shape only; the rules live in pipeline.services.

Related ids are looked up among the rows the caller may see (contacts, companies, users), so a hidden id
reads exactly like an unknown one: a 400 on that field, never a leak.
"""

import re

from django.core.exceptions import ValidationError as DjangoValidationError
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from accounts.api import StrictCharField, StrictModelSerializer, StrictSerializer, request_user
from accounts.models import User
from accounts.selectors import users_visible_to
from contacts.api.serializers import FieldChangeSerializer
from contacts.models import Company, Contact, LeadSource
from contacts.selectors import companies_visible_to, contacts_visible_to

from .. import criteria
from ..models import Deal, LostReason, Pipeline, Stage, StageChange

MOVE_STAGE_HINT = _("A deal changes stage only through POST %(url)s, which checks the stage's exit criteria.")
REORDER_HINT = _("Change the order with POST /api/v1/pipelines/{id}/reorder-stages/.")
CURRENCY_RE = re.compile(r"^[A-Za-z]{3}$")
# Bounds on a custom_fields object sent in a body (the definitions are checked by the service).
MAX_CUSTOM_KEYS = 100
MAX_CUSTOM_KEY_LENGTH = 100


def _reads_input(serializer) -> bool:
    """Whether the serializer validates a body: only then are related ids looked up in the visible rows
    (building those querysets costs a query for managers, which a list must not pay)."""
    return hasattr(serializer.root, "initial_data")


def _set_queryset(fields, name, queryset):
    if name in fields and not fields[name].read_only:
        fields[name].queryset = queryset


def _django_errors(exc: DjangoValidationError, name: str) -> serializers.ValidationError:
    messages = exc.message_dict.get(name) if hasattr(exc, "error_dict") else None
    return serializers.ValidationError(messages or exc.messages)


# --- pipelines and stages --------------------------------------------------------------------------

CRITERIA_HELP = _(
    "Keys of the fields a deal must have filled before it may leave this stage forward: amount, "
    "expected_close_date, contact, company, lead_source, owner, or custom_fields.<key> for a deal custom field "
    "(GET /api/v1/custom-fields/?entity=deal).")


class StageSerializer(StrictModelSerializer):
    """A step of a pipeline: its kind, win probability, rotting limit and exit criteria."""

    exit_criteria = serializers.ListField(
        child=StrictCharField(max_length=100), required=False, max_length=50, help_text=CRITERIA_HELP)

    class Meta:
        model = Stage
        fields = ["id", "pipeline", "name", "order", "kind", "probability", "rotting_days", "exit_criteria",
                  "allow_skip"]
        # A taken name is reported on "name" by the service (ignoring case and accents).
        validators = []
        extra_kwargs = {
            "pipeline": {"help_text": _("Pipeline id; cannot be changed later.")},
            "name": {"help_text": _("Unique in the pipeline, ignoring case and accents.")},
            "order": {"required": False, "help_text": _(
                "Position in the pipeline, from 1. On create: defaults to after the last open stage (won and "
                "lost stages at the end). Afterwards it changes only with POST "
                "/api/v1/pipelines/{id}/reorder-stages/.")},
            "kind": {"help_text": _("open: deals in progress; won/lost close them. Cannot change while the "
                                    "stage holds deals.")},
            "probability": {"help_text": _("Win probability in percent (0–100): weighted amount = amount × "
                                           "probability.")},
            "rotting_days": {"help_text": _("A deal that stays longer in this stage is stale (1–3650).")},
            "allow_skip": {"help_text": _("When false, a deal leaving this stage forward may only go to the "
                                          "next stage.")},
        }

    def validate_exit_criteria(self, value):
        try:
            return criteria.clean(value)
        except DjangoValidationError as exc:
            raise _django_errors(exc, "exit_criteria") from None

    def validate(self, attrs):
        errors = {}
        if self.instance is not None:
            if "pipeline" in attrs and attrs["pipeline"].pk != self.instance.pipeline_id:
                errors["pipeline"] = [_("A stage stays in its pipeline.")]
            if "order" in attrs and attrs["order"] != self.instance.order:
                errors["order"] = [REORDER_HINT]
        if errors:
            raise serializers.ValidationError(errors)
        if self.instance is not None:
            # The same pipeline and order sent back (a record read from the API) are no change.
            attrs.pop("pipeline", None)
            attrs.pop("order", None)
        return attrs


class PipelineSerializer(StrictModelSerializer):
    """A sales process, with its stages in order."""

    stages = StageSerializer(many=True, read_only=True, help_text=_(
        "The pipeline's stages in order. Change them through /api/v1/stages/."))

    class Meta:
        model = Pipeline
        fields = ["id", "name", "is_default", "order", "created_at", "stages"]
        # A taken name is reported on "name" by the service (ignoring case and accents); the one-default rule is
        # the service's too (making one the default unmarks the previous one).
        extra_kwargs = {
            "name": {"validators": [], "help_text": _("Unique, ignoring case and accents.")},
            "is_default": {"validators": [], "help_text": _(
                "New deals go to the default pipeline unless another is given. Making one the default unmarks the "
                "previous one.")},
            "order": {"required": False, "help_text": _("Position among the pipelines.")},
        }

    def validate_is_default(self, value):
        if self.instance is not None and self.instance.is_default and value is False:
            raise serializers.ValidationError(_("Make another pipeline the default instead."))
        return value


class StageOrderSerializer(StrictSerializer):
    """The new order of a pipeline's stages."""

    stages = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=2**63 - 1), max_length=500,
        help_text=_("The ids of every stage of the pipeline, each once, in the new order."))

    class Meta:
        ref_name = "StageOrder"


class StageDeleteSerializer(StrictSerializer):
    """Where the deals of a deleted stage go."""

    move_to = serializers.PrimaryKeyRelatedField(
        queryset=Stage.objects.all(), required=False, allow_null=True, help_text=_(
            "Stage id (same pipeline, same kind) to move the stage's deals to; required when it holds deals. "
            "May also be given as the query parameter ?move_to=."))

    class Meta:
        ref_name = "StageDelete"


class LostReasonSerializer(StrictModelSerializer):
    """A reason a deal may be lost for."""

    class Meta:
        model = LostReason
        fields = ["id", "name", "is_active", "order"]
        extra_kwargs = {
            # A taken name is reported on "name" by the view, after spaces are collapsed.
            "name": {"validators": []},
            "is_active": {"help_text": _("Inactive reasons stay on the deals that have them but cannot be "
                                         "chosen for new losses.")},
        }


# --- deals ------------------------------------------------------------------------------------------


class CustomFieldsField(serializers.DictField):
    """Custom field values by key; bounded here, checked against the definitions by the service."""

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if len(value) > MAX_CUSTOM_KEYS:
            raise serializers.ValidationError(_("At most %(n)d fields at once.") % {"n": MAX_CUSTOM_KEYS})
        if any(len(str(key)) > MAX_CUSTOM_KEY_LENGTH for key in value):
            raise serializers.ValidationError(_("Unknown custom field: keys are at most %(n)d characters.")
                                              % {"n": MAX_CUSTOM_KEY_LENGTH})
        return value


DEAL_EXTRA_KWARGS = {
    "name": {"help_text": _("What is being sold, e.g. “Annual licence – Işık Tekstil”.")},
    "pipeline": {"required": False, "help_text": _(
        "Pipeline id; defaults to the stage's pipeline, else the default pipeline. A deal stays in its pipeline.")},
    "stage": {"required": False, "help_text": _(
        "Stage id. On create: an open stage of the pipeline (defaults to its first). Afterwards the stage "
        "changes only through POST /api/v1/deals/{id}/move-stage/.")},
    "status": {"help_text": _("open, won or lost: follows the stage's kind.")},
    "amount": {"help_text": _("Decimal string with up to 2 decimals, e.g. \"125000.00\"; null when not known.")},
    "currency": {"help_text": _("ISO 4217 code (TRY, EUR, USD, …); defaults to the company currency. Totals "
                                "and forecasts count only deals in the company currency.")},
    "owner": {"help_text": _("User id; defaults to you (integrations: no owner). Reps own their deals; managers "
                             "give deals to their teams.")},
    "team": {"help_text": _("The owner's team; follows the owner.")},
    "contact": {"help_text": _("Contact id (one you can see).")},
    "company": {"help_text": _("Company id (one you can see); defaults to the contact's company.")},
    "lead_source": {"help_text": _("Lead source id; defaults to the contact's.")},
    "lost_reason": {"help_text": _("Why a lost deal was lost; set by moving it to a lost stage.")},
    "lost_note": {"help_text": _("Set by moving the deal to a lost stage.")},
    "stage_entered_at": {"help_text": _("When the deal entered its current stage.")},
    "rots_at": {"help_text": _("When the deal becomes stale if it stays in its stage (null once closed).")},
    "closed_at": {"help_text": _("When the deal was won or lost (null while open).")},
}
CUSTOM_FIELDS_HELP = _(
    "Values of the deal custom fields (GET /api/v1/custom-fields/?entity=deal), by key. Sent values are merged "
    "into the stored ones; null or \"\" clears one.")


class DealSerializer(StrictModelSerializer):
    """A deal. Keys that are not fields are refused by name; read-only fields sent back are ignored."""

    amount = serializers.DecimalField(
        max_digits=16, decimal_places=2, min_value=0, required=False, allow_null=True,
        help_text=DEAL_EXTRA_KWARGS["amount"]["help_text"])
    custom_fields = CustomFieldsField(required=False, help_text=CUSTOM_FIELDS_HELP)
    weighted_amount = serializers.DecimalField(
        max_digits=18, decimal_places=2, read_only=True, allow_null=True,
        help_text=_("amount × the stage's win probability; null when the amount is not known."))
    is_stale = serializers.BooleanField(read_only=True, help_text=_(
        "Open and in its stage longer than the stage's rotting limit."))

    class Meta:
        model = Deal
        fields = [
            "id", "name", "pipeline", "stage", "status", "amount", "currency", "expected_close_date", "owner", "team",
            "contact", "company", "lead_source", "lost_reason", "lost_note", "custom_fields", "weighted_amount",
            "is_stale", "stage_entered_at", "rots_at", "created_at", "updated_at", "closed_at",
        ]
        read_only_fields = ["team", "lost_reason", "lost_note"]
        extra_kwargs = DEAL_EXTRA_KWARGS

    def get_fields(self):
        fields = super().get_fields()
        if not _reads_input(self):
            return fields
        user = request_user(self)
        _set_queryset(fields, "owner", users_visible_to(user) if user else User.objects.none())
        _set_queryset(fields, "contact", contacts_visible_to(user) if user else Contact.objects.none())
        _set_queryset(fields, "company", companies_visible_to(user) if user else Company.objects.none())
        _set_queryset(fields, "lead_source", LeadSource.objects.all())
        return fields

    def validate_currency(self, value):
        # The service checks the length and letters; non-Latin letters ("ÇĞŞ") are no ISO code either.
        if value.strip() and not CURRENCY_RE.match(value.strip()):
            raise serializers.ValidationError(_("Use a three-letter ISO currency code such as TRY, EUR or USD."))
        return value

    def validate(self, attrs):
        deal = self.instance
        if deal is None:
            return attrs
        errors = {}
        # A record read from the API may be sent back as it is: the same pipeline and stage are no change.
        if "stage" in attrs:
            if attrs["stage"].pk != deal.stage_id:
                errors["stage"] = [MOVE_STAGE_HINT % {"url": reverse("api-deal-move-stage", args=[deal.pk])}]
            attrs.pop("stage")
        if "pipeline" in attrs:
            if attrs["pipeline"].pk != deal.pipeline_id:
                errors["pipeline"] = [_("A deal stays in its pipeline.")]
            attrs.pop("pipeline")
        if errors:
            raise serializers.ValidationError(errors)
        return attrs


# The fields that may be filled in the same step as a move (the service's DEAL_FIELDS).
CHANGE_FIELDS = ["name", "amount", "currency", "expected_close_date", "owner", "contact", "company", "lead_source",
                 "custom_fields"]


class DealChangesSerializer(DealSerializer):
    """Deal fields filled in the same step as a move."""

    class Meta(DealSerializer.Meta):
        fields = CHANGE_FIELDS
        read_only_fields = []
        extra_kwargs = {
            **{name: kwargs for name, kwargs in DEAL_EXTRA_KWARGS.items() if name in CHANGE_FIELDS},
            "name": {"required": False},
        }
        ref_name = "DealChanges"

    def validate(self, attrs):
        return attrs


@extend_schema_field(DealChangesSerializer)
class ChangesField(serializers.JSONField):
    """Any JSON here; checked field by field by DealChangesSerializer in DealMoveSerializer.validate."""


class DealMoveSerializer(StrictSerializer):
    """A move of a deal to another stage, with what it needs."""

    stage = serializers.PrimaryKeyRelatedField(queryset=Stage.objects.all(), help_text=_(
        "Id of the stage to move to, in the deal's pipeline."))
    lost_reason = serializers.PrimaryKeyRelatedField(
        queryset=LostReason.objects.all(), required=False, allow_null=True, help_text=_(
            "Lost reason id (GET /api/v1/lost-reasons/): required for a move to a lost stage, refused otherwise."))
    lost_note = StrictCharField(max_length=2000, required=False, allow_blank=True, help_text=_(
        "Free text next to the lost reason."))
    changes = ChangesField(required=False, help_text=_(
        "Deal fields to fill in the same step (amount, expected_close_date, contact, custom_fields, …), e.g. the "
        "ones the exit criteria asked for. They are saved only if the move succeeds; their errors are reported "
        "under the field's own name."))

    class Meta:
        ref_name = "DealMove"

    def validate(self, attrs):
        errors = {}
        stage = attrs["stage"]
        if attrs.get("lost_reason") is not None and stage.kind != Stage.Kind.LOST:
            errors["lost_reason"] = [_("Only for a move to a lost stage.")]
        if attrs.get("lost_note") and stage.kind != Stage.Kind.LOST:
            errors["lost_note"] = [_("Only for a move to a lost stage.")]
        changes = attrs.get("changes")
        if changes is not None:
            if not isinstance(changes, dict):
                errors["changes"] = [_("Expected an object of deal fields and values.")]
            else:
                nested = DealChangesSerializer(data=changes, partial=True, context=self.context)
                if nested.is_valid():
                    attrs["changes"] = nested.validated_data
                else:
                    errors.update(_flatten_changes(nested.errors))
        if errors:
            raise serializers.ValidationError(errors)
        return attrs


def _flatten_changes(errors: dict) -> dict:
    """Errors of ``changes`` under the deal field's own name (as the exit criteria name them); keys that are
    not deal fields under ``changes``, so they cannot be mistaken for the move's own ``stage`` and the like."""
    flat: dict[str, list[str]] = {}
    for key, messages in errors.items():
        messages = [str(m) for m in (messages if isinstance(messages, list) else [messages])]
        if key in CHANGE_FIELDS:
            flat[key] = messages
        elif key == "non_field_errors":
            flat.setdefault("changes", []).extend(messages)
        else:
            flat.setdefault("changes", []).extend(f"“{key}”: {message}" for message in messages)
    return flat


# --- history ----------------------------------------------------------------------------------------


class StageHistoryRowSerializer(serializers.Serializer):
    """One stage the deal entered: from where, when, by whom, and how long it stayed."""

    id = serializers.IntegerField(source="change.id")
    from_stage = serializers.IntegerField(source="change.from_stage_id", allow_null=True, help_text=_(
        "Stage id left (null for the creation; null too once that stage was deleted)."))
    from_stage_name = serializers.CharField(source="change.from_stage_name", help_text=_(
        "Its name at the time (kept when the stage is renamed or deleted)."))
    to_stage = serializers.IntegerField(source="change.to_stage_id", allow_null=True)
    to_stage_name = serializers.CharField(source="change.to_stage_name")
    direction = serializers.ChoiceField(source="change.direction", choices=StageChange.Direction.choices)
    changed_at = serializers.DateTimeField(source="change.changed_at", help_text=_("When the deal entered to_stage."))
    actor = serializers.IntegerField(source="change.actor_id", allow_null=True, help_text=_("User id of who moved it."))
    actor_name = serializers.SerializerMethodField()
    left_at = serializers.DateTimeField(allow_null=True, help_text=_(
        "When the deal left to_stage (null: it is still there)."))
    seconds_in_stage = serializers.SerializerMethodField(help_text=_(
        "How long the deal stayed (or has stayed so far) in to_stage; a closed deal's time stops when it closed."))
    seconds_in_from_stage = serializers.IntegerField(source="change.seconds_in_from_stage", allow_null=True,
                                                     help_text=_("How long the deal had been in from_stage."))
    current = serializers.BooleanField(help_text=_("Whether to_stage is the deal's current stage."))

    class Meta:
        ref_name = "StageHistoryRow"

    def get_actor_name(self, row) -> str:
        actor = row["change"].actor
        return (actor.get_full_name() or actor.username) if actor is not None else ""

    def get_seconds_in_stage(self, row) -> int | None:
        duration = row["duration"]
        return None if duration is None else int(duration.total_seconds())


class DealHistorySerializer(serializers.Serializer):
    """The field changes of a deal."""

    field_changes = FieldChangeSerializer(many=True, help_text=_(
        "Who changed which fields, newest first (at most 200). Stage moves are in stage-history."))

    class Meta:
        ref_name = "DealHistory"
