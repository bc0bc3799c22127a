"""Companies, contacts, activities and tasks, tags, lead sources, custom fields, consent."""

from django.conf import settings
from django.contrib.postgres.indexes import GinIndex
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class Entity(models.TextChoices):
    """The record kinds that admins configure (required fields, custom fields)."""

    CONTACT = "contact", _("Contact")
    COMPANY = "company", _("Company")
    DEAL = "deal", _("Deal")


class LifecycleStage(models.TextChoices):
    SUBSCRIBER = "subscriber", _("Subscriber")
    LEAD = "lead", _("Lead")
    MQL = "mql", _("Marketing qualified lead (MQL)")
    SQL = "sql", _("Sales qualified lead (SQL)")
    OPPORTUNITY = "opportunity", _("Opportunity")
    CUSTOMER = "customer", _("Customer")
    ADVOCATE = "advocate", _("Advocate")
    CHURNED = "churned", _("Churned")


class Channel(models.TextChoices):
    EMAIL = "email", _("E-mail")
    PHONE = "phone", _("Phone")
    SMS = "sms", _("SMS")
    WHATSAPP = "whatsapp", _("WhatsApp")
    IN_PERSON = "in_person", _("In person")


class LeadSource(models.Model):
    """Where contacts come from; a list that admins edit."""

    name = models.CharField(_("name"), max_length=100, unique=True)
    is_active = models.BooleanField(_("active"), default=True)
    order = models.PositiveIntegerField(_("order"), default=0)

    class Meta:
        ordering = ["order", "name"]
        verbose_name = _("lead source")
        verbose_name_plural = _("lead sources")

    def __str__(self):
        return self.name


class Tag(models.Model):
    """A free label on contacts and companies; unique regardless of case."""

    name = models.CharField(_("name"), max_length=50)

    class Meta:
        ordering = ["name"]
        verbose_name = _("tag")
        verbose_name_plural = _("tags")
        constraints = [models.UniqueConstraint(Lower("name"), name="tag_name_unique_ci")]

    def __str__(self):
        return self.name


class CustomFieldDefinition(models.Model):
    """An admin-defined field on contacts or companies, stored in the record's ``custom_fields`` JSON."""

    class FieldType(models.TextChoices):
        TEXT = "text", _("Text")
        NUMBER = "number", _("Number")
        DATE = "date", _("Date")
        CHOICE = "choice", _("Choice")
        BOOLEAN = "boolean", _("Yes/no")

    entity = models.CharField(_("record kind"), max_length=20, choices=Entity.choices)
    key = models.SlugField(
        _("key"), max_length=50, help_text=_("Lower-case letters, digits and underscores; used in the API.")
    )
    label = models.CharField(_("label"), max_length=100)
    field_type = models.CharField(_("type"), max_length=20, choices=FieldType.choices)
    choices = models.JSONField(_("choices"), default=list, blank=True, help_text=_("For choice fields: the options."))
    is_required = models.BooleanField(_("required"), default=False)
    is_important = models.BooleanField(_("counts toward completeness"), default=False)
    order = models.PositiveIntegerField(_("order"), default=0)
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        ordering = ["entity", "order", "id"]
        verbose_name = _("custom field")
        verbose_name_plural = _("custom fields")
        constraints = [models.UniqueConstraint(fields=["entity", "key"], name="customfield_key_unique")]

    def __str__(self):
        return f"{self.get_entity_display()}: {self.label}"


class FieldSetting(models.Model):
    """Admin rules for a built-in field: required on save, and/or counted in completeness."""

    entity = models.CharField(_("record kind"), max_length=20, choices=Entity.choices)
    field_name = models.CharField(_("field"), max_length=50)
    is_required = models.BooleanField(_("required"), default=False)
    is_important = models.BooleanField(_("counts toward completeness"), default=True)

    class Meta:
        ordering = ["entity", "field_name"]
        verbose_name = _("field rule")
        verbose_name_plural = _("field rules")
        constraints = [models.UniqueConstraint(fields=["entity", "field_name"], name="fieldsetting_unique")]

    def __str__(self):
        return f"{self.entity}.{self.field_name}"


class Record(models.Model):
    """What contacts and companies share: owner and team (visibility), tags, custom fields, audit times."""

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("owner"), on_delete=models.SET_NULL, null=True, blank=True,
        related_name="+",
    )
    # The owner's team when the owner was set: visibility filters on it with one indexed column.
    team = models.ForeignKey(
        "accounts.Team", verbose_name=_("team"), on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    custom_fields = models.JSONField(_("custom fields"), default=dict, blank=True)
    # Folded text (Turkish-aware, accent-free) that search matches against.
    search_text = models.TextField(editable=False, default="")
    sort_name = models.CharField(max_length=300, editable=False, default="", db_collation="C")
    last_activity_at = models.DateTimeField(_("last activity"), null=True, blank=True, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("created by"), on_delete=models.SET_NULL, null=True, blank=True,
        related_name="+", editable=False,
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False)
    updated_at = models.DateTimeField(_("updated at"), default=timezone.now, editable=False)
    archived_at = models.DateTimeField(_("archived at"), null=True, blank=True, editable=False)

    class Meta:
        abstract = True


class Company(Record):
    """An organisation that contacts belong to (firmographic data)."""

    class Size(models.TextChoices):
        MICRO = "1-9", _("1–9 employees")
        SMALL = "10-49", _("10–49 employees")
        MEDIUM = "50-249", _("50–249 employees")
        LARGE = "250-999", _("250–999 employees")
        ENTERPRISE = "1000+", _("1000+ employees")

    name = models.CharField(_("name"), max_length=200)
    legal_name = models.CharField(_("legal name"), max_length=300, blank=True)
    tax_number = models.CharField(_("tax number"), max_length=30, blank=True)
    website = models.URLField(_("website"), max_length=300, blank=True)
    email = models.EmailField(_("e-mail"), max_length=254, blank=True)
    phone = models.CharField(_("phone"), max_length=20, blank=True)
    industry = models.CharField(_("industry"), max_length=100, blank=True)
    size = models.CharField(_("size"), max_length=10, choices=Size.choices, blank=True)
    annual_revenue = models.DecimalField(_("annual revenue"), max_digits=16, decimal_places=2, null=True, blank=True)
    address = models.CharField(_("address"), max_length=300, blank=True)
    city = models.CharField(_("city"), max_length=100, blank=True)
    country = models.CharField(_("country"), max_length=2, blank=True, help_text=_("ISO code, e.g. TR"))
    lead_source = models.ForeignKey(
        LeadSource, verbose_name=_("lead source"), on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    tags = models.ManyToManyField(Tag, verbose_name=_("tags"), blank=True, related_name="companies")

    class Meta:
        ordering = ["sort_name", "id"]
        verbose_name = _("company")
        verbose_name_plural = _("companies")
        indexes = [
            models.Index(fields=["sort_name", "id"], name="company_sort"),
            models.Index(fields=["team", "sort_name", "id"], name="company_team_sort"),
            models.Index(fields=["-created_at", "-id"], name="company_created"),
            models.Index(fields=["owner"], name="company_owner"),
        ]

    def __str__(self):
        return self.name


class Contact(Record):
    """A person: a lead, a customer or anyone in between."""

    class Gender(models.TextChoices):
        FEMALE = "female", _("Female")
        MALE = "male", _("Male")
        OTHER = "other", _("Other")

    first_name = models.CharField(_("first name"), max_length=100)
    last_name = models.CharField(_("last name"), max_length=100, blank=True)
    email = models.EmailField(_("e-mail"), max_length=254, blank=True)
    phone = models.CharField(_("phone"), max_length=20, blank=True, help_text=_("Stored in E.164, e.g. +905321234567"))
    mobile = models.CharField(_("mobile"), max_length=20, blank=True)
    job_title = models.CharField(_("job title"), max_length=150, blank=True)
    company = models.ForeignKey(
        Company, verbose_name=_("company"), on_delete=models.SET_NULL, null=True, blank=True, related_name="contacts"
    )
    lifecycle_stage = models.CharField(
        _("lifecycle stage"), max_length=20, choices=LifecycleStage.choices, default=LifecycleStage.LEAD
    )
    lifecycle_changed_at = models.DateTimeField(_("stage changed at"), default=timezone.now, editable=False)
    lead_source = models.ForeignKey(
        LeadSource, verbose_name=_("lead source"), on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    preferred_channel = models.CharField(_("preferred channel"), max_length=20, choices=Channel.choices, blank=True)
    language = models.CharField(_("language"), max_length=8, blank=True, help_text=_("e.g. tr, en"))
    birth_date = models.DateField(_("birth date"), null=True, blank=True)
    gender = models.CharField(_("gender"), max_length=10, choices=Gender.choices, blank=True)
    city = models.CharField(_("city"), max_length=100, blank=True)
    country = models.CharField(_("country"), max_length=2, blank=True, help_text=_("ISO code, e.g. TR"))
    notes = models.TextField(_("notes"), blank=True)
    tags = models.ManyToManyField(Tag, verbose_name=_("tags"), blank=True, related_name="contacts")

    class Meta:
        ordering = ["sort_name", "id"]
        verbose_name = _("contact")
        verbose_name_plural = _("contacts")
        constraints = [
            # One contact per e-mail address: integrations upsert by it.
            models.UniqueConstraint(Lower("email"), condition=~Q(email=""), name="contact_email_unique"),
        ]
        indexes = [
            models.Index(fields=["sort_name", "id"], name="contact_sort"),
            models.Index(fields=["team", "sort_name", "id"], name="contact_team_sort"),
            models.Index(fields=["-created_at", "-id"], name="contact_created"),
            models.Index(fields=["-updated_at", "-id"], name="contact_updated"),
            models.Index(fields=["owner", "sort_name", "id"], name="contact_owner_sort"),
            models.Index(fields=["lifecycle_stage", "sort_name", "id"], name="contact_stage_sort"),
            models.Index(fields=["company"], name="contact_company"),
            models.Index(fields=["lead_source"], name="contact_source"),
            models.Index(fields=["phone"], name="contact_phone"),
            GinIndex(fields=["custom_fields"], name="contact_custom_fields", opclasses=["jsonb_path_ops"]),
            # KPIs: the lifecycle stage at an instant T (kpis.formula.registry.contact_stage_pieces). Contacts
            # unchanged since T: their stage is the column (an index-only count by stage); those changed since T:
            # found by lifecycle_changed_at, their id for the last change before T. The dimension columns are
            # included for the per-team/owner/source breakdowns.
            models.Index(fields=["lifecycle_stage", "lifecycle_changed_at", "created_at"], name="contact_stage_kpi",
                         include=["team", "owner", "lead_source"]),
            models.Index(fields=["lifecycle_changed_at", "created_at"], name="contact_stage_changed_kpi",
                         include=["id", "team", "owner", "lead_source"]),
        ]

    def __str__(self):
        return self.full_name

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()


class LifecycleChange(models.Model):
    """A contact's move from one lifecycle stage to another, with its time (customers and churn come from here)."""

    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="lifecycle_changes")
    from_stage = models.CharField(_("from"), max_length=20, choices=LifecycleStage.choices, blank=True)
    to_stage = models.CharField(_("to"), max_length=20, choices=LifecycleStage.choices)
    changed_at = models.DateTimeField(_("changed at"), default=timezone.now)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["-changed_at", "-id"]
        verbose_name = _("lifecycle change")
        verbose_name_plural = _("lifecycle changes")
        indexes = [
            models.Index(fields=["contact", "-changed_at"], name="lifecycle_contact"),
            models.Index(fields=["to_stage", "changed_at"], name="lifecycle_to_stage"),
            # KPIs: a contact's last change before an instant (its stage then), index-only and without a sort.
            models.Index(fields=["contact", "-changed_at", "-id"], name="lifecycle_contact_last",
                         include=["to_stage"]),
        ]

    def __str__(self):
        return f"{self.contact_id}: {self.from_stage} → {self.to_stage}"


class Consent(models.Model):
    """The current consent of a contact for one channel (KVKK/GDPR/İYS); every change is in ConsentLog."""

    class ConsentChannel(models.TextChoices):
        EMAIL = "email", _("E-mail")
        SMS = "sms", _("SMS")
        PHONE = "phone", _("Phone call")

    class Status(models.TextChoices):
        GRANTED = "granted", _("Granted")
        WITHDRAWN = "withdrawn", _("Withdrawn")

    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="consents")
    channel = models.CharField(_("channel"), max_length=10, choices=ConsentChannel.choices)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices)
    source = models.CharField(_("source"), max_length=200, help_text=_("Where it was given: web form, call, İYS, …"))
    changed_at = models.DateTimeField(_("changed at"), default=timezone.now)

    class Meta:
        ordering = ["channel"]
        verbose_name = _("consent")
        verbose_name_plural = _("consents")
        constraints = [models.UniqueConstraint(fields=["contact", "channel"], name="consent_one_per_channel")]

    def __str__(self):
        return f"{self.contact_id} {self.channel}: {self.status}"


class ConsentLog(models.Model):
    """An append-only record of every consent given or withdrawn: the proof a regulator asks for."""

    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="consent_log")
    channel = models.CharField(_("channel"), max_length=10, choices=Consent.ConsentChannel.choices)
    status = models.CharField(_("status"), max_length=10, choices=Consent.Status.choices)
    source = models.CharField(_("source"), max_length=200)
    note = models.CharField(_("note"), max_length=500, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    recorded_at = models.DateTimeField(_("recorded at"), default=timezone.now)

    class Meta:
        ordering = ["-recorded_at", "-id"]
        verbose_name = _("consent log entry")
        verbose_name_plural = _("consent log")
        indexes = [models.Index(fields=["contact", "-recorded_at"], name="consentlog_contact")]

    def __str__(self):
        return f"{self.contact_id} {self.channel}: {self.status} ({self.source})"


class Activity(models.Model):
    """A call, e-mail, meeting or note with a contact and/or company, or a task someone must do."""

    class Kind(models.TextChoices):
        CALL = "call", _("Call")
        EMAIL = "email", _("E-mail")
        MEETING = "meeting", _("Meeting")
        NOTE = "note", _("Note")
        TASK = "task", _("Task")

    kind = models.CharField(_("type"), max_length=10, choices=Kind.choices)
    subject = models.CharField(_("subject"), max_length=200)
    body = models.TextField(_("details"), blank=True)
    contact = models.ForeignKey(
        Contact, verbose_name=_("contact"), on_delete=models.CASCADE, null=True, blank=True, related_name="activities"
    )
    company = models.ForeignKey(
        Company, verbose_name=_("company"), on_delete=models.CASCADE, null=True, blank=True, related_name="activities"
    )
    deal = models.ForeignKey(
        "pipeline.Deal", verbose_name=_("deal"), on_delete=models.CASCADE, null=True, blank=True,
        related_name="activities",
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("owner"), on_delete=models.SET_NULL, null=True, blank=True,
        related_name="+",
    )
    # The team of the record it is about, so the record's viewers see its timeline.
    team = models.ForeignKey("accounts.Team", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    occurred_at = models.DateTimeField(_("when"), default=timezone.now)
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("assignee"), on_delete=models.SET_NULL, null=True, blank=True,
        related_name="+",
    )
    due_at = models.DateTimeField(_("due"), null=True, blank=True)
    done_at = models.DateTimeField(_("done at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False)

    class Meta:
        ordering = ["-occurred_at", "-id"]
        verbose_name = _("activity")
        verbose_name_plural = _("activities")
        constraints = [
            models.CheckConstraint(
                condition=Q(contact__isnull=False) | Q(company__isnull=False) | Q(deal__isnull=False),
                name="activity_has_subject",
            ),
            models.CheckConstraint(
                condition=~Q(kind="task") | (Q(due_at__isnull=False) & Q(assignee__isnull=False)),
                name="task_has_due_and_assignee",
            ),
        ]
        indexes = [
            models.Index(fields=["contact", "-occurred_at", "-id"], name="activity_contact_time"),
            models.Index(fields=["company", "-occurred_at", "-id"], name="activity_company_time"),
            models.Index(fields=["deal", "-occurred_at", "-id"], name="activity_deal_time"),
            models.Index(fields=["owner", "-occurred_at"], name="activity_owner_time"),
            models.Index(fields=["-occurred_at", "-id"], name="activity_time"),
            # KPIs: activities of a period counted by an index-only scan (kind and done for the conditions, the
            # owner/team/deal/contact for the per-owner/team/pipeline/source breakdowns).
            models.Index(fields=["occurred_at"], name="activity_time_kpi",
                         include=["kind", "done_at", "owner", "team", "deal", "contact"]),
            models.Index(
                fields=["assignee", "due_at"], name="open_task_assignee",
                condition=Q(kind="task", done_at__isnull=True),
            ),
        ]

    def __str__(self):
        return f"{self.get_kind_display()}: {self.subject}"

    @property
    def is_task(self) -> bool:
        return self.kind == self.Kind.TASK

    @property
    def is_overdue(self) -> bool:
        return self.is_task and self.done_at is None and self.due_at is not None and self.due_at < timezone.now()
