"""Pipelines and their stages, deals, the stage history and the reasons deals are lost."""

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class Pipeline(models.Model):
    """A sales process (e.g. "New business", "Renewals"); exactly one is the default."""

    name = models.CharField(_("name"), max_length=100, unique=True)
    is_default = models.BooleanField(_("default"), default=False)
    order = models.PositiveIntegerField(_("order"), default=0)
    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False)

    class Meta:
        ordering = ["order", "id"]
        verbose_name = _("pipeline")
        verbose_name_plural = _("pipelines")
        constraints = [
            models.UniqueConstraint(fields=["is_default"], condition=Q(is_default=True), name="one_default_pipeline"),
        ]

    def __str__(self):
        return self.name


class Stage(models.Model):
    """A step of a pipeline. Open stages hold deals in progress; a won or lost stage closes them."""

    class Kind(models.TextChoices):
        OPEN = "open", _("Open")
        WON = "won", _("Won")
        LOST = "lost", _("Lost")

    pipeline = models.ForeignKey(Pipeline, verbose_name=_("pipeline"), on_delete=models.CASCADE, related_name="stages")
    name = models.CharField(_("name"), max_length=100)
    order = models.PositiveIntegerField(_("order"), default=0)
    kind = models.CharField(_("kind"), max_length=4, choices=Kind.choices, default=Kind.OPEN)
    probability = models.PositiveSmallIntegerField(
        _("win probability (%)"), default=10, validators=[MinValueValidator(0), MaxValueValidator(100)]
    )
    rotting_days = models.PositiveIntegerField(
        _("rotting limit (days)"), default=90, validators=[MinValueValidator(1), MaxValueValidator(3650)],
        help_text=_("A deal that stays in this stage longer is stale."),
    )
    # Field keys a deal must have filled before it may leave this stage forward (see pipeline.criteria).
    exit_criteria = models.JSONField(_("exit criteria"), default=list, blank=True)
    allow_skip = models.BooleanField(
        _("deals may skip stages"), default=True,
        help_text=_("When off, a deal leaving this stage forward may only go to the next stage."),
    )

    class Meta:
        ordering = ["pipeline", "order", "id"]
        verbose_name = _("stage")
        verbose_name_plural = _("stages")
        constraints = [
            models.UniqueConstraint(fields=["pipeline", "name"], name="stage_name_unique_in_pipeline"),
            models.CheckConstraint(condition=Q(probability__lte=100), name="stage_probability_max_100"),
            models.CheckConstraint(condition=Q(rotting_days__gte=1), name="stage_rotting_days_positive"),
        ]

    def __str__(self):
        return self.name

    @property
    def is_open(self) -> bool:
        return self.kind == self.Kind.OPEN


class LostReason(models.Model):
    """Why a deal was lost; a list that admins edit."""

    name = models.CharField(_("name"), max_length=100, unique=True)
    is_active = models.BooleanField(_("active"), default=True)
    order = models.PositiveIntegerField(_("order"), default=0)

    class Meta:
        ordering = ["order", "name"]
        verbose_name = _("lost reason")
        verbose_name_plural = _("lost reasons")

    def __str__(self):
        return self.name


class Deal(models.Model):
    """A sales opportunity moving through a pipeline's stages."""

    class Status(models.TextChoices):
        OPEN = "open", _("Open")
        WON = "won", _("Won")
        LOST = "lost", _("Lost")

    name = models.CharField(_("name"), max_length=200)
    pipeline = models.ForeignKey(Pipeline, verbose_name=_("pipeline"), on_delete=models.PROTECT, related_name="deals")
    stage = models.ForeignKey(Stage, verbose_name=_("stage"), on_delete=models.PROTECT, related_name="deals")
    # Follows the stage's kind; kept on the row so lists and reports filter on one indexed column.
    status = models.CharField(_("status"), max_length=4, choices=Status.choices, default=Status.OPEN, editable=False)
    amount = models.DecimalField(
        _("amount"), max_digits=16, decimal_places=2, null=True, blank=True, validators=[MinValueValidator(0)]
    )
    currency = models.CharField(_("currency"), max_length=3, default=settings.CRM_CURRENCY)
    expected_close_date = models.DateField(_("expected close date"), null=True, blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("owner"), on_delete=models.SET_NULL, null=True, blank=True,
        related_name="+",
    )
    # The owner's team when the owner was set: visibility filters on it, as for contacts.
    team = models.ForeignKey(
        "accounts.Team", verbose_name=_("team"), on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    contact = models.ForeignKey(
        "contacts.Contact", verbose_name=_("contact"), on_delete=models.SET_NULL, null=True, blank=True,
        related_name="deals",
    )
    company = models.ForeignKey(
        "contacts.Company", verbose_name=_("company"), on_delete=models.SET_NULL, null=True, blank=True,
        related_name="deals",
    )
    lead_source = models.ForeignKey(
        "contacts.LeadSource", verbose_name=_("lead source"), on_delete=models.PROTECT, null=True, blank=True,
        related_name="+",
    )
    lost_reason = models.ForeignKey(
        LostReason, verbose_name=_("lost reason"), on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    lost_note = models.TextField(_("lost note"), blank=True)
    custom_fields = models.JSONField(_("custom fields"), default=dict, blank=True)
    search_text = models.TextField(editable=False, default="")
    stage_entered_at = models.DateTimeField(_("in stage since"), default=timezone.now, editable=False)
    # When the deal becomes stale if it stays where it is: stage_entered_at + the stage's rotting limit.
    rots_at = models.DateTimeField(_("stale from"), null=True, blank=True, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("created by"), on_delete=models.SET_NULL, null=True, blank=True,
        related_name="+", editable=False,
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False)
    updated_at = models.DateTimeField(_("updated at"), default=timezone.now, editable=False)
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("deal")
        verbose_name_plural = _("deals")
        constraints = [
            models.CheckConstraint(condition=Q(amount__gte=0) | Q(amount__isnull=True), name="deal_amount_not_negative"),
            models.CheckConstraint(
                condition=Q(status="open", closed_at__isnull=True) | (~Q(status="open") & Q(closed_at__isnull=False)),
                name="deal_closed_at_matches_status",
            ),
        ]
        indexes = [
            # A board column: the open deals of a stage, longest in the stage first.
            models.Index(fields=["stage", "stage_entered_at", "id"], name="deal_open_board",
                         condition=Q(status="open")),
            models.Index(fields=["team", "stage", "stage_entered_at", "id"], name="deal_open_board_team",
                         condition=Q(status="open")),
            models.Index(fields=["pipeline", "expected_close_date"], name="deal_open_forecast",
                         condition=Q(status="open")),
            models.Index(fields=["rots_at"], name="deal_open_rots", condition=Q(status="open")),
            models.Index(fields=["status", "closed_at"], name="deal_closed"),
            # Win/loss and the board's Won/Lost strip: closed deals by close time, with what they group by.
            models.Index(
                fields=["closed_at"], name="deal_closed_cover", condition=Q(status__in=["won", "lost"]),
                include=["status", "pipeline", "stage", "owner", "team", "lead_source", "lost_reason", "amount",
                         "currency"],
            ),
            models.Index(fields=["-created_at", "-id"], name="deal_created"),
            models.Index(fields=["team", "-created_at", "-id"], name="deal_team_created"),
            models.Index(fields=["owner", "-created_at", "-id"], name="deal_owner_created"),
            models.Index(fields=["contact"], name="deal_contact"),
            models.Index(fields=["company"], name="deal_company"),
        ]

    def __str__(self):
        return self.name

    @property
    def is_open(self) -> bool:
        return self.status == self.Status.OPEN

    @property
    def is_stale(self) -> bool:
        return self.is_open and self.rots_at is not None and self.rots_at <= timezone.now()

    @property
    def weighted_amount(self):
        if self.amount is None:
            return None
        return (self.amount * self.stage.probability / 100).quantize(self.amount)


class StageChange(models.Model):
    """One step of a deal's stage history: from where to where, when and by whom.

    ``seconds_in_from_stage`` is how long the deal had been in the stage it left, so the average time
    in each stage is one aggregate. ``direction`` is judged when the move happens (stage order may
    change later).
    """

    class Direction(models.TextChoices):
        CREATED = "created", _("Created")
        FORWARD = "forward", _("Forward")
        BACKWARD = "backward", _("Backward")
        WON = "won", _("Won")
        LOST = "lost", _("Lost")
        REOPENED = "reopened", _("Reopened")
        # Moved out of a deleted stage by an admin: not a step of the sale, so reports leave it out.
        MOVED = "moved", _("Moved (stage deleted)")

    deal = models.ForeignKey(Deal, verbose_name=_("deal"), on_delete=models.CASCADE, related_name="stage_changes")
    # The stage names are kept as they were, so the history still reads after a stage is renamed or deleted.
    from_stage = models.ForeignKey(
        Stage, verbose_name=_("from"), on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    from_stage_name = models.CharField(_("from"), max_length=100, blank=True)
    to_stage = models.ForeignKey(
        Stage, verbose_name=_("to"), on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    to_stage_name = models.CharField(_("to"), max_length=100)
    direction = models.CharField(_("direction"), max_length=10, choices=Direction.choices)
    changed_at = models.DateTimeField(_("when"), default=timezone.now)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("by"), on_delete=models.SET_NULL, null=True, blank=True,
        related_name="+",
    )
    seconds_in_from_stage = models.BigIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-changed_at", "-id"]
        verbose_name = _("stage change")
        verbose_name_plural = _("stage changes")
        indexes = [
            models.Index(fields=["deal", "-changed_at", "-id"], name="stagechange_deal"),
            # The review and the funnel read stage changes by time; the covered columns spare the table visits.
            models.Index(
                fields=["changed_at"], name="stagechange_time",
                include=["deal", "direction", "from_stage", "to_stage", "seconds_in_from_stage"],
            ),
            models.Index(fields=["from_stage"], name="stagechange_from"),
            models.Index(fields=["to_stage"], name="stagechange_to"),
        ]

    def __str__(self):
        return f"{self.deal_id}: {self.from_stage_id} → {self.to_stage_id}"
