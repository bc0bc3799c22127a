"""Admin for the shared pieces: the event outbox and field history, both read-only (they are audit trails)."""

from django.contrib import admin, messages
from django.core.paginator import Paginator
from django.utils.functional import cached_property
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from . import events
from .models import Event, EventDelivery, FieldChange


class CappedCountPaginator(Paginator):
    """Counts at most ``CAP`` rows, so an admin list over a million rows never runs a full COUNT(*).

    The admin then pages through the first ``CAP`` rows of the current order; searching or filtering
    narrows the list to what one is looking for.
    """

    CAP = 10_000

    @cached_property
    def count(self) -> int:
        return self.object_list.order_by()[: self.CAP].count()


class NoWritesMixin:
    """Refuses add, change and delete in the admin (for lists and inlines alike)."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ReadOnlyAdmin(NoWritesMixin, admin.ModelAdmin):
    """Shown, never written: the rows are written by services (with their history and events)."""

    # A million rows: no COUNT(*) over the whole table, neither for the "n total" link nor for paging.
    show_full_result_count = False
    paginator = CappedCountPaginator


class ReadOnlyInline(NoWritesMixin, admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = False


class EventStatusFilter(admin.SimpleListFilter):
    title = _("status")
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return [
            ("pending", _("Pending")),
            ("failing", _("Pending, with an error")),
            ("dispatched", _("Dispatched")),
        ]

    def queryset(self, request, queryset):
        if self.value() == "pending":
            return queryset.filter(dispatched_at__isnull=True)
        if self.value() == "failing":
            return queryset.filter(dispatched_at__isnull=True).exclude(last_error="")
        if self.value() == "dispatched":
            return queryset.filter(dispatched_at__isnull=False)
        return queryset


class EventDeliveryInline(ReadOnlyInline):
    model = EventDelivery
    fields = ["handler", "delivered_at"]
    readonly_fields = fields


@admin.register(Event)
class EventAdmin(ReadOnlyAdmin):
    list_display = ["id", "name", "subject_type", "subject_id", "actor", "created_at", "dispatched_at", "attempts",
                    "short_error"]
    list_filter = [EventStatusFilter, "name", "subject_type"]
    list_select_related = ["actor"]
    search_fields = ["=subject_id"]
    ordering = ["-id"]
    inlines = [EventDeliveryInline]
    actions = ["send_again"]

    @admin.display(description=_("last error"))
    def short_error(self, obj: Event) -> str:
        return obj.last_error[:80]

    @admin.action(description=_("Send the selected pending events to the workers again"), permissions=["send"])
    def send_again(self, request, queryset):
        sent = sum(1 for pk in queryset.filter(dispatched_at__isnull=True).values_list("pk", flat=True)
                   if events.send(pk))
        self.message_user(
            request, ngettext("%(count)d event was sent.", "%(count)d events were sent.", sent) % {"count": sent},
            messages.SUCCESS if sent else messages.WARNING,
        )

    def has_send_permission(self, request) -> bool:
        return request.user.is_superuser

    def get_search_results(self, request, queryset, search_term):
        # Only a record id is searchable (an exact, indexed match); text would mean a full scan.
        if search_term and not search_term.strip().isdigit():
            return queryset.none(), False
        return super().get_search_results(request, queryset, search_term)


@admin.register(FieldChange)
class FieldChangeAdmin(ReadOnlyAdmin):
    list_display = ["changed_at", "record_type", "record_id", "actor", "fields_changed"]
    list_filter = ["record_type"]
    list_select_related = ["actor"]
    search_fields = ["=record_id"]
    fields = ["record_type", "record_id", "actor", "changed_at", "changes"]

    @admin.display(description=_("fields"))
    def fields_changed(self, obj: FieldChange) -> str:
        return ", ".join(change.get("label", name) for name, change in obj.changes.items())

    def get_search_results(self, request, queryset, search_term):
        if search_term and not search_term.strip().isdigit():
            return queryset.none(), False
        return super().get_search_results(request, queryset, search_term)
