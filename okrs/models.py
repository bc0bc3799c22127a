"""OKRs: cycles, objectives (an alignment tree), key results, check-ins, initiatives and key result history.

The rules (who may edit, warnings, history, locking at close) live in ``okrs.services``; the math in
``okrs.progress``; reads for dashboards in ``okrs.selectors``.
"""

from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from kpis.models import DimensionKind


class Cycle(models.Model):
    """A period OKRs are set for (a quarter by default): planned, then active, then closed and scored."""

    class Status(models.TextChoices):
        PLANNING = "planning", _("Planning")
        ACTIVE = "active", _("Active")
        CLOSED = "closed", _("Closed")

    name = models.CharField(_("name"), max_length=100)
    start_date = models.DateField(_("first day"))
    end_date = models.DateField(_("last day"))
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.PLANNING)
    # pace = progress ÷ expected progress; on track at or above the first, at risk at or above the second.
    on_track_threshold = models.DecimalField(
        _("on track from (pace)"), max_digits=4, decimal_places=2, default=Decimal("0.95"),
        validators=[MinValueValidator(Decimal("0.01")), MaxValueValidator(Decimal("5"))],
    )
    at_risk_threshold = models.DecimalField(
        _("at risk from (pace)"), max_digits=4, decimal_places=2, default=Decimal("0.75"),
        validators=[MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("5"))],
    )
    grace_days = models.PositiveSmallIntegerField(
        _("days without a status"), default=7, validators=[MaxValueValidator(90)],
        help_text=_("No on-track/at-risk status is computed in the first days of a cycle."),
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("created by"), on_delete=models.SET_NULL, null=True, blank=True,
        related_name="+", editable=False,
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False)
    activated_at = models.DateTimeField(_("activated at"), null=True, blank=True, editable=False)
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True, editable=False)
    closed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("closed by"), on_delete=models.SET_NULL, null=True, blank=True,
        related_name="+", editable=False,
    )

    class Meta:
        ordering = ["-start_date", "-id"]
        verbose_name = _("cycle")
        verbose_name_plural = _("cycles")
        constraints = [
            models.CheckConstraint(condition=Q(end_date__gt=models.F("start_date")), name="cycle_dates_ordered"),
            models.CheckConstraint(
                condition=Q(at_risk_threshold__lte=models.F("on_track_threshold")), name="cycle_thresholds_ordered"
            ),
            # One name for one cycle, whatever the case ("Q1 2026" and "q1 2026" are the same cycle to people).
            models.UniqueConstraint(Lower("name"), name="cycle_name_unique_ci"),
        ]
        indexes = [models.Index(fields=["status", "-start_date"], name="cycle_status")]

    def __str__(self):
        return self.name

    @property
    def is_closed(self) -> bool:
        return self.status == self.Status.CLOSED


class Objective(models.Model):
    """What a company, a team or a person wants to achieve in a cycle, in words (numbers go in key results)."""

    class Level(models.TextChoices):
        # "Company" is also a company record (Turkish "Firma"); the OKR level is the whole company ("Şirket").
        COMPANY = "company", pgettext_lazy("okr level", "Company")
        TEAM = "team", _("Team")
        INDIVIDUAL = "individual", _("Individual")

    cycle = models.ForeignKey(Cycle, verbose_name=_("cycle"), on_delete=models.CASCADE, related_name="objectives")
    title = models.CharField(_("title"), max_length=200)
    description = models.TextField(_("description"), blank=True)
    level = models.CharField(_("level"), max_length=10, choices=Level.choices, default=Level.TEAM)
    # The team of a team objective; for an individual objective, the owner's team when it was created.
    team = models.ForeignKey(
        "accounts.Team", verbose_name=_("team"), on_delete=models.PROTECT, null=True, blank=True,
        related_name="objectives",
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("owner"), on_delete=models.PROTECT, related_name="objectives",
    )
    parent = models.ForeignKey(
        "self", verbose_name=_("aligned to"), on_delete=models.SET_NULL, null=True, blank=True,
        related_name="children",
    )
    order = models.PositiveIntegerField(_("order"), default=0)
    # The key of the template it was loaded from (okrs.templates_data), so one is not loaded twice.
    template = models.CharField(_("loaded from template"), max_length=40, blank=True, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("created by"), on_delete=models.SET_NULL, null=True, blank=True,
        related_name="+", editable=False,
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False)
    updated_at = models.DateTimeField(_("updated at"), default=timezone.now, editable=False)
    archived_at = models.DateTimeField(_("archived at"), null=True, blank=True)

    class Meta:
        ordering = ["cycle", "order", "id"]
        verbose_name = _("objective")
        verbose_name_plural = _("objectives")
        constraints = [
            models.CheckConstraint(
                condition=~Q(level="team") | Q(team__isnull=False), name="objective_team_level_has_team"
            ),
            models.CheckConstraint(condition=~Q(parent=models.F("id")), name="objective_not_own_parent"),
        ]
        indexes = [
            models.Index(fields=["cycle", "level", "order"], name="objective_cycle_level"),
            models.Index(fields=["cycle", "team", "order"], name="objective_cycle_team"),
            models.Index(fields=["owner", "cycle"], name="objective_owner"),
            models.Index(fields=["cycle", "team", "template"], name="objective_template",
                         condition=~Q(template="")),
        ]

    def __str__(self):
        return self.title

    @property
    def is_archived(self) -> bool:
        return self.archived_at is not None


class KeyResult(models.Model):
    """A measurable result that shows whether the objective is reached: from a start value to a target by a date.

    Measured by hand (check-ins) or by a linked KPI (a check-in from every new snapshot of the KPI for the
    chosen dimension; company-wide when the dimension is empty).
    """

    class Kind(models.TextChoices):
        INCREASE = "increase", _("Increase to target")
        DECREASE = "decrease", _("Decrease to target")
        KEEP_ABOVE = "keep_above", _("Keep at or above")
        KEEP_BELOW = "keep_below", _("Keep at or below")
        MILESTONE = "milestone", _("Milestone (done or not)")

    class Unit(models.TextChoices):
        NUMBER = "number", _("Number")
        PERCENT = "percent", _("Percent")
        CURRENCY = "currency", _("Money")

    objective = models.ForeignKey(
        Objective, verbose_name=_("objective"), on_delete=models.CASCADE, related_name="key_results"
    )
    title = models.CharField(_("title"), max_length=300)
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices, default=Kind.INCREASE)
    # Unused by milestones; for keep above/below only the target (the threshold) counts.
    start_value = models.DecimalField(_("start value"), max_digits=20, decimal_places=4, null=True, blank=True)
    target_value = models.DecimalField(_("target value"), max_digits=20, decimal_places=4, null=True, blank=True)
    unit = models.CharField(_("unit"), max_length=10, choices=Unit.choices, default=Unit.NUMBER)
    due_date = models.DateField(_("due date"))
    weight = models.DecimalField(
        _("weight"), max_digits=6, decimal_places=2, default=Decimal("1"),
        validators=[MinValueValidator(Decimal("0.01")), MaxValueValidator(Decimal("100"))],
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("owner"), on_delete=models.PROTECT, related_name="key_results",
    )
    kpi = models.ForeignKey(
        "kpis.Kpi", verbose_name=_("measured by KPI"), on_delete=models.SET_NULL, null=True, blank=True,
        related_name="key_results",
    )
    # Empty kind: the company-wide value (dimension id 0, as in KpiSnapshot).
    dimension_kind = models.CharField(
        _("KPI dimension"), max_length=10, choices=DimensionKind.choices, blank=True,
    )
    dimension_id = models.BigIntegerField(_("KPI dimension value"), default=0)
    # The latest check-in's value (kept here so lists need no extra query).
    current_value = models.DecimalField(_("current value"), max_digits=24, decimal_places=6, null=True, blank=True)
    milestone_done = models.BooleanField(_("done"), default=False)
    # Given when the cycle closes: progress rounded to one decimal unless overridden with a comment.
    score = models.DecimalField(
        _("score"), max_digits=2, decimal_places=1, null=True, blank=True,
        validators=[MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("1"))],
    )
    score_comment = models.TextField(_("score comment"), blank=True)
    order = models.PositiveIntegerField(_("order"), default=0)
    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False)
    updated_at = models.DateTimeField(_("updated at"), default=timezone.now, editable=False)

    class Meta:
        ordering = ["objective", "order", "id"]
        verbose_name = _("key result")
        verbose_name_plural = _("key results")
        constraints = [
            models.CheckConstraint(condition=Q(weight__gt=0), name="keyresult_weight_positive"),
            models.CheckConstraint(
                condition=Q(score__isnull=True) | Q(score__gte=0, score__lte=1), name="keyresult_score_0_1"
            ),
            models.CheckConstraint(
                condition=Q(kind="milestone") | Q(target_value__isnull=False), name="keyresult_has_target"
            ),
            models.CheckConstraint(
                condition=~Q(kind__in=["increase", "decrease"]) | Q(start_value__isnull=False),
                name="keyresult_has_start",
            ),
        ]
        indexes = [
            models.Index(fields=["objective", "order"], name="keyresult_objective"),
            models.Index(fields=["owner", "objective"], name="keyresult_owner"),
            # Snapshots find the key results they measure.
            models.Index(fields=["kpi", "dimension_kind", "dimension_id"], name="keyresult_kpi_dimension",
                         condition=Q(kpi__isnull=False)),
        ]

    def __str__(self):
        return self.title

    @property
    def is_manual(self) -> bool:
        return self.kpi_id is None


class CheckIn(models.Model):
    """A reading of a key result: its value, the owner's confidence (0–10), a note and blockers.

    Automatic check-ins come from KPI snapshots (one per key result and snapshot: a recomputed snapshot
    updates its check-in); people may add their confidence and a note to them.
    """

    key_result = models.ForeignKey(
        KeyResult, verbose_name=_("key result"), on_delete=models.CASCADE, related_name="check_ins"
    )
    value = models.DecimalField(_("value"), max_digits=24, decimal_places=6, null=True, blank=True)
    confidence = models.PositiveSmallIntegerField(
        _("confidence (0–10)"), null=True, blank=True, validators=[MaxValueValidator(10)]
    )
    note = models.TextField(_("note"), blank=True)
    blockers = models.TextField(_("blockers"), blank=True)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("by"), on_delete=models.SET_NULL, null=True, blank=True,
        related_name="okr_check_ins",
    )
    # When the value applies (for an automatic check-in: the snapshot time, at most its period end).
    measured_at = models.DateTimeField(_("measured at"), default=timezone.now)
    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False)
    updated_at = models.DateTimeField(_("updated at"), default=timezone.now, editable=False)
    is_automatic = models.BooleanField(_("automatic"), default=False)
    snapshot = models.ForeignKey(
        "kpis.KpiSnapshot", verbose_name=_("KPI snapshot"), on_delete=models.SET_NULL, null=True, blank=True,
        related_name="okr_check_ins",
    )

    class Meta:
        ordering = ["key_result", "-measured_at", "-id"]
        verbose_name = _("check-in")
        verbose_name_plural = _("check-ins")
        constraints = [
            models.UniqueConstraint(
                fields=["key_result", "snapshot"], condition=Q(snapshot__isnull=False),
                name="checkin_one_per_snapshot",
            ),
            models.CheckConstraint(
                condition=Q(confidence__isnull=True) | Q(confidence__lte=10), name="checkin_confidence_0_10"
            ),
        ]
        indexes = [
            models.Index(fields=["key_result", "-measured_at", "-id"], name="checkin_latest"),
            models.Index(fields=["-measured_at"], name="checkin_recent"),
        ]

    def __str__(self):
        return f"{self.key_result_id}: {self.value}"


class Initiative(models.Model):
    """Work planned to move a key result (the seed's action plans)."""

    class Status(models.TextChoices):
        NOT_STARTED = "not_started", _("Not started")
        IN_PROGRESS = "in_progress", _("In progress")
        DONE = "done", _("Done")
        CANCELLED = "cancelled", _("Cancelled")

    key_result = models.ForeignKey(
        KeyResult, verbose_name=_("key result"), on_delete=models.CASCADE, related_name="initiatives"
    )
    title = models.CharField(_("title"), max_length=300)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("owner"), on_delete=models.PROTECT, related_name="okr_initiatives",
    )
    status = models.CharField(_("status"), max_length=12, choices=Status.choices, default=Status.NOT_STARTED)
    due_date = models.DateField(_("due date"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False)
    updated_at = models.DateTimeField(_("updated at"), default=timezone.now, editable=False)

    class Meta:
        ordering = ["key_result", "due_date", "id"]
        verbose_name = _("initiative")
        verbose_name_plural = _("initiatives")
        indexes = [
            models.Index(fields=["key_result", "status"], name="initiative_key_result"),
            models.Index(fields=["owner", "status"], name="initiative_owner"),
        ]

    def __str__(self):
        return self.title


class KeyResultChange(models.Model):
    """A change of a key result's start, target, weight or due date: who, when and why (never silent)."""

    class Field(models.TextChoices):
        START_VALUE = "start_value", _("Start value")
        TARGET_VALUE = "target_value", _("Target value")
        WEIGHT = "weight", _("Weight")
        DUE_DATE = "due_date", _("Due date")

    key_result = models.ForeignKey(
        KeyResult, verbose_name=_("key result"), on_delete=models.CASCADE, related_name="changes"
    )
    field = models.CharField(_("field"), max_length=12, choices=Field.choices)
    old_value = models.CharField(_("old value"), max_length=40, blank=True)
    new_value = models.CharField(_("new value"), max_length=40, blank=True)
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("changed by"), on_delete=models.SET_NULL, null=True, blank=True,
        related_name="+",
    )
    changed_at = models.DateTimeField(_("changed at"), default=timezone.now)
    reason = models.TextField(_("why"), blank=True)

    class Meta:
        ordering = ["key_result", "-changed_at", "-id"]
        verbose_name = _("key result change")
        verbose_name_plural = _("key result changes")
        indexes = [
            models.Index(fields=["key_result", "-changed_at"], name="keyresultchange_history"),
            models.Index(fields=["-changed_at"], name="keyresultchange_recent"),
        ]

    def __str__(self):
        return f"{self.key_result_id} {self.field}: {self.old_value} → {self.new_value}"


class KeyResultReminder(models.Model):
    """A check-in reminder sent to the owner of a key result kept by hand (``okrs.reminders``): the same key
    result is not reminded again within 7 days."""

    key_result = models.ForeignKey(
        KeyResult, verbose_name=_("key result"), on_delete=models.CASCADE, related_name="reminders"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("reminded"), on_delete=models.CASCADE, related_name="+",
    )
    sent_at = models.DateTimeField(_("sent at"), default=timezone.now)

    class Meta:
        ordering = ["key_result", "-sent_at", "-id"]
        verbose_name = _("check-in reminder")
        verbose_name_plural = _("check-in reminders")
        indexes = [models.Index(fields=["key_result", "-sent_at"], name="keyresultreminder_latest")]

    def __str__(self):
        return f"{self.key_result_id} → {self.user_id} at {self.sent_at:%Y-%m-%d %H:%M}"
