"""Shared base pieces: the domain-event outbox and field history."""

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class Event(models.Model):
    """A domain event, written in the same transaction as the change it describes (the outbox).

    ``dispatched_at`` stays empty until every handler has run; the sweeper re-sends events
    that were never dispatched (Redis down, worker killed), so no event is lost.
    """

    name = models.CharField(_("name"), max_length=64)
    subject_type = models.CharField(_("subject type"), max_length=64)
    subject_id = models.BigIntegerField(_("subject id"))
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("actor"), on_delete=models.SET_NULL, null=True, blank=True,
        related_name="+",
    )
    payload = models.JSONField(_("payload"), default=dict, blank=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    dispatched_at = models.DateTimeField(_("dispatched at"), null=True, blank=True)
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    last_error = models.TextField(_("last error"), blank=True)

    class Meta:
        ordering = ["id"]
        verbose_name = _("event")
        verbose_name_plural = _("events")
        indexes = [
            models.Index(fields=["subject_type", "subject_id"], name="event_subject"),
            # The sweeper only ever reads pending events: keep that index small.
            models.Index(
                fields=["created_at"], name="event_pending", condition=models.Q(dispatched_at__isnull=True)
            ),
        ]

    def __str__(self):
        return f"{self.name} {self.subject_type}#{self.subject_id}"


class EventDelivery(models.Model):
    """That one handler has handled one event: the unique pair makes dispatch idempotent."""

    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="deliveries")
    handler = models.CharField(max_length=100)
    delivered_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["event", "handler"], name="event_delivered_once")]

    def __str__(self):
        return f"{self.handler} ← {self.event_id}"


class FieldChange(models.Model):
    """Who changed which fields of a record, and when (old and new values as shown to people)."""

    record_type = models.CharField(_("record type"), max_length=64)
    record_id = models.BigIntegerField(_("record id"))
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("changed by"), on_delete=models.SET_NULL, null=True, blank=True,
        related_name="+",
    )
    changed_at = models.DateTimeField(_("changed at"), default=timezone.now)
    # {"field": {"label": "...", "old": "...", "new": "..."}}
    changes = models.JSONField(_("changes"), default=dict)

    class Meta:
        ordering = ["-changed_at", "-id"]
        verbose_name = _("field change")
        verbose_name_plural = _("field changes")
        indexes = [
            models.Index(fields=["record_type", "record_id", "-changed_at"], name="fieldchange_record"),
            # Who changed records lately: the CRM user adoption KPI asks it per user.
            models.Index(fields=["actor", "changed_at"], name="fieldchange_actor_time"),
        ]

    def __str__(self):
        return f"{self.record_type}#{self.record_id} {', '.join(self.changes)}"
