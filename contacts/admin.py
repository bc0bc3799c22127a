"""Admin for the lists admins edit (lead sources, tags, custom fields, field rules) and a read-only view of records.

Contacts, companies and activities are edited in the app, never here: every write goes through
``contacts.services`` (data-entry standards, required fields, field history, domain events), and the
admin's own save would skip all of that. So the admin shows them read-only.
"""

import re

from django import forms
from django.apps import apps
from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from crm_okr.admin import ReadOnlyAdmin, ReadOnlyInline

from .models import (
    Activity,
    Company,
    Consent,
    ConsentLog,
    Contact,
    CustomFieldDefinition,
    Entity,
    FieldSetting,
    LeadSource,
    LifecycleChange,
    Tag,
)
from .rules import CONFIGURABLE_FIELDS
from .selectors import search_filter

MODELS = {Entity.CONTACT: "contacts.Contact", Entity.COMPANY: "contacts.Company", Entity.DEAL: "pipeline.Deal"}
CUSTOM_KEY = re.compile(r"[a-z][a-z0-9_]*")


@admin.register(LeadSource)
class LeadSourceAdmin(admin.ModelAdmin):
    list_display = ["name", "is_active", "order"]
    list_editable = ["is_active", "order"]
    list_filter = ["is_active"]
    search_fields = ["name"]


@admin.register(Tag)
class TagAdmin(admin.ModelAdmin):
    list_display = ["name"]
    search_fields = ["name"]


class CustomFieldDefinitionForm(forms.ModelForm):
    class Meta:
        model = CustomFieldDefinition
        fields = ["entity", "key", "label", "field_type", "choices", "is_required", "is_important", "order",
                  "is_active"]

    def clean_key(self):
        key = self.cleaned_data["key"]
        if not CUSTOM_KEY.fullmatch(key):
            raise forms.ValidationError(
                _("Use lower-case letters, digits and underscores, starting with a letter (e.g. budget_2025).")
            )
        return key

    def clean(self):
        cleaned = super().clean()
        choices = cleaned.get("choices")
        if cleaned.get("field_type") == CustomFieldDefinition.FieldType.CHOICE:
            if not isinstance(choices, list) or not choices or not all(
                isinstance(c, str) and c.strip() for c in choices
            ):
                self.add_error("choices", _('List the options as a JSON list of texts, e.g. ["bronze", "silver"].'))
        elif choices:
            self.add_error("choices", _("Only choice fields have options."))
        return cleaned


@admin.register(CustomFieldDefinition)
class CustomFieldDefinitionAdmin(admin.ModelAdmin):
    form = CustomFieldDefinitionForm
    list_display = ["label", "entity", "key", "field_type", "is_required", "is_important", "is_active", "order"]
    list_editable = ["is_required", "is_important", "is_active", "order"]
    list_filter = ["entity", "field_type", "is_active"]
    search_fields = ["key", "label"]

    def get_readonly_fields(self, request, obj=None):
        # Stored values are keyed by it: renaming the key or changing the type would orphan them.
        return ["entity", "key", "field_type"] if obj is not None else []


def _field_choices():
    return [
        (label, [(name, apps.get_model(MODELS[entity])._meta.get_field(name).verbose_name) for name in names])
        for entity, label in Entity.choices
        for names in [CONFIGURABLE_FIELDS[entity]]
    ]


class FieldSettingForm(forms.ModelForm):
    field_name = forms.ChoiceField(label=_("field"), choices=_field_choices)

    class Meta:
        model = FieldSetting
        fields = ["entity", "field_name", "is_required", "is_important"]

    def clean(self):
        cleaned = super().clean()
        entity, name = cleaned.get("entity"), cleaned.get("field_name")
        if entity and name and name not in CONFIGURABLE_FIELDS[entity]:
            self.add_error("field_name", _("%(entity)s records have no field “%(field)s” that can be configured.") % {
                "entity": Entity(entity).label, "field": name})
        return cleaned


@admin.register(FieldSetting)
class FieldSettingAdmin(admin.ModelAdmin):
    """Which built-in fields are required on save and which count toward completeness."""

    form = FieldSettingForm
    list_display = ["entity", "field_name", "field_label", "is_required", "is_important"]
    list_editable = ["is_required", "is_important"]
    list_filter = ["entity", "is_required", "is_important"]

    @admin.display(description=_("label"))
    def field_label(self, obj: FieldSetting) -> str:
        try:
            return str(apps.get_model(MODELS[obj.entity])._meta.get_field(obj.field_name).verbose_name)
        except Exception:  # a row left from a field that no longer exists
            return "—"


# --- records: read-only ----------------------------------------------------------------------------


class RecordAdmin(ReadOnlyAdmin):
    """Records at a million rows: folded, indexed search; no full count; rows' relations in one query."""

    search_fields = ["search_text"]  # shows the search box; the search itself is get_search_results
    search_help_text = _("Name, e-mail or phone; Turkish letters optional (“isik” finds “IŞIK”).")
    list_per_page = 50
    # Set by the services, not typed: shown on the record's page all the same.
    readonly_fields = ["created_by", "created_at", "updated_at", "last_activity_at", "archived_at"]

    def get_search_results(self, request, queryset, search_term):
        if not search_term.strip():
            return queryset, False
        return queryset.filter(search_filter(search_term, model=self.model)), False


class LifecycleChangeInline(ReadOnlyInline):
    model = LifecycleChange
    fields = ["from_stage", "to_stage", "changed_at", "actor"]
    readonly_fields = fields


class ConsentInline(ReadOnlyInline):
    model = Consent
    fields = ["channel", "status", "source", "changed_at"]
    readonly_fields = fields


@admin.register(Contact)
class ContactAdmin(RecordAdmin):
    list_display = ["__str__", "email", "phone", "company", "lifecycle_stage", "owner", "team", "last_activity_at"]
    list_filter = ["lifecycle_stage", "team", "lead_source"]
    list_select_related = ["company", "owner", "team"]
    inlines = [LifecycleChangeInline, ConsentInline]


@admin.register(Company)
class CompanyAdmin(RecordAdmin):
    list_display = ["name", "industry", "city", "phone", "owner", "team", "last_activity_at"]
    list_filter = ["team", "size", "lead_source"]
    list_select_related = ["owner", "team"]


@admin.register(Activity)
class ActivityAdmin(ReadOnlyAdmin):
    list_display = ["occurred_at", "kind", "subject", "contact", "company", "owner", "assignee", "due_at", "done_at"]
    list_filter = ["kind"]
    list_select_related = ["contact", "company", "owner", "assignee"]
    list_per_page = 50


@admin.register(ConsentLog)
class ConsentLogAdmin(ReadOnlyAdmin):
    """The append-only proof of consent (KVKK/GDPR/İYS)."""

    list_display = ["recorded_at", "contact", "channel", "status", "source", "actor"]
    list_filter = ["channel", "status"]
    list_select_related = ["contact", "actor"]
    list_per_page = 50
