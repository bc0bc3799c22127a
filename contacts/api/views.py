"""Viewsets of the contacts API: reads from the selectors, writes through contacts.services."""

from django.db import IntegrityError, transaction
from django.db.models import ProtectedError
from django.db.models.functions import Lower
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import exceptions, mixins, permissions, status
from rest_framework.decorators import action
from rest_framework.response import Response

from accounts.api import PAGINATION_PARAMS, ApiViewSet
from crm_okr.history import history_for
from crm_okr.pagination import SortOption

from .. import services
from ..filters import ActivityFilter, CompanyFilter, ContactFilter, CustomFieldDefinitionFilter
from ..models import Activity, Company, Contact, CustomFieldDefinition, LeadSource, Tag
from ..selectors import (
    activities_visible_to,
    can_edit,
    companies_visible_to,
    contacts_visible_to,
    record_rows,
    tag_names_by_record,
)
from .serializers import (
    ActivitySerializer,
    CompanySerializer,
    ConsentInputSerializer,
    ConsentSerializer,
    ConsentsSerializer,
    ContactHistorySerializer,
    ContactSerializer,
    ContactUpsertSerializer,
    CustomFieldDefinitionSerializer,
    LeadSourceSerializer,
    TagSerializer,
)

# How many consent-log and history rows a contact's endpoints return (newest first).
HISTORY_LIMIT = 200

RECORD_SORTS = [
    SortOption("name", "sort_name"),
    SortOption("-name", "sort_name", descending=True),
    SortOption("created", "created_at"),
    SortOption("-created", "created_at", descending=True),
    SortOption("-updated", "updated_at", descending=True),
]


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"


class RecordViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ApiViewSet):
    """Shared by contacts and companies: list, read, create and change through the services."""

    sort_options = RECORD_SORTS
    default_sort = "name"

    create_service = None
    update_service = None
    record_arg = ""

    def list(self, request, *args, **kwargs):
        """Pages of plain rows written by the serializer's row plan (same output as the serializer's; the hot
        path of the API: no model instances, tag managers or serializer fields built per request)."""
        serializer_class = self.get_serializer_class()
        if PAGINATION_PARAMS.issuperset(request.query_params):
            queryset = self.filterset_class.unfiltered(self.get_queryset())
        else:
            queryset = self.filter_queryset(self.get_queryset())
        rows = self.paginate_queryset(record_rows(queryset, serializer_class.list_row_columns()))
        tags = tag_names_by_record(queryset.model, [row.pk for row in rows])
        return self.get_paginated_response(serializer_class.represent_rows(rows, tags=tags, request=request))

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        record = self.create_service(actor=request.user, data=serializer.validated_data)
        return Response(self.get_serializer(record).data, status=status.HTTP_201_CREATED)

    def update(self, request, *args, **kwargs):
        record = self.get_object()
        # Refuse a non-editor before looking at the body (the service checks again).
        if not can_edit(request.user, record):
            raise exceptions.PermissionDenied(_("You may not edit this record."))
        serializer = self.get_serializer(record, data=request.data, partial=kwargs.get("partial", False))
        serializer.is_valid(raise_exception=True)
        record = self.update_service(**{self.record_arg: record}, actor=request.user,
                                     data=serializer.validated_data)
        return Response(self.get_serializer(record).data)

    def partial_update(self, request, *args, **kwargs):
        return self.update(request, *args, partial=True, **kwargs)


@extend_schema_view(
    list=extend_schema(summary="List contacts", description=(
        "Contacts you can see, in keyset pages (follow `next`). Archived contacts are left out unless "
        "`archived=true`. Filter custom fields with `cf_<key>=<value>` (e.g. `?cf_sector=Retail`); the value is "
        "checked against the field's type.")),
    retrieve=extend_schema(summary="Read a contact"),
    create=extend_schema(summary="Create a contact", description=(
        "Required: `first_name`, plus the fields an admin made required. E-mail and phones are normalised "
        "(lower-case; E.164). The owner defaults to you.")),
    update=extend_schema(summary="Replace a contact's fields"),
    partial_update=extend_schema(summary="Change some fields of a contact"),
)
class ContactViewSet(RecordViewSet):
    """Contacts: people, from subscriber to advocate."""

    serializer_class = ContactSerializer
    filterset_class = ContactFilter
    create_service = staticmethod(services.contact_create)
    update_service = staticmethod(services.contact_update)
    record_arg = "contact"

    queryset = Contact.objects.none()

    def visible_queryset(self, user):
        return contacts_visible_to(user).prefetch_related("tags")

    @extend_schema(summary="Archive a contact", description=(
        "Contacts are never deleted through the API: DELETE **archives** the contact (sets `archived_at`). "
        "It leaves the default list but stays readable at its URL, in `?archived=true` lists and in reports, "
        "with its history and activities."), responses={204: None})
    def destroy(self, request, *args, **kwargs):
        """Archive the contact rather than delete it (see the schema description)."""
        services.contact_archive(contact=self.get_object(), actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        summary="Create or update a contact by e-mail",
        description=("For integrations that sync: the contact with this e-mail address (matched ignoring case) "
                     "is updated with the fields sent, or a new one is created. 201 when created, 200 when "
                     "updated."),
        request=ContactUpsertSerializer,
        responses={201: ContactSerializer, 200: ContactSerializer},
    )
    @action(detail=False, methods=["post"])
    def upsert(self, request):
        serializer = ContactUpsertSerializer(data=request.data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        contact, created = services.contact_upsert(actor=request.user, data=serializer.validated_data)
        return Response(self.get_serializer(contact).data,
                        status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)

    @extend_schema(methods=["GET"], summary="A contact's consents", description=(
        "The current consent per channel and the consent log (KVKK/GDPR/İYS), newest first."),
        responses=ConsentsSerializer)
    @extend_schema(methods=["POST"], summary="Record a consent given or withdrawn", description=(
        "Anyone who sees the contact may record it (a withdrawal must never wait for the owner). "
        "Answers the channel's current consent."), request=ConsentInputSerializer,
        responses={201: ConsentSerializer})
    @action(detail=True, methods=["get", "post"])
    def consents(self, request, pk=None):
        contact = self.get_object()
        if request.method == "POST":
            serializer = ConsentInputSerializer(data=request.data)
            serializer.is_valid(raise_exception=True)
            consent = services.consent_set(contact=contact, actor=request.user, **serializer.validated_data)
            return Response(ConsentSerializer(consent).data, status=status.HTTP_201_CREATED)
        data = {
            "consents": contact.consents.all(),
            "log": contact.consent_log.all()[:HISTORY_LIMIT],
        }
        return Response(ConsentsSerializer(data).data)

    @extend_schema(summary="A contact's history", description=(
        "Field changes (who changed what, when) and lifecycle stage changes, newest first."),
        responses=ContactHistorySerializer)
    @action(detail=True, methods=["get"])
    def history(self, request, pk=None):
        contact = self.get_object()
        data = {
            "field_changes": history_for(contact, limit=HISTORY_LIMIT),
            "lifecycle_changes": contact.lifecycle_changes.all()[:HISTORY_LIMIT],
        }
        return Response(ContactHistorySerializer(data).data)


@extend_schema_view(
    list=extend_schema(summary="List companies", description=(
        "Companies you can see, in keyset pages (follow `next`). Filter custom fields with `cf_<key>=<value>`.")),
    retrieve=extend_schema(summary="Read a company"),
    create=extend_schema(summary="Create a company"),
    update=extend_schema(summary="Replace a company's fields"),
    partial_update=extend_schema(summary="Change some fields of a company"),
)
class CompanyViewSet(RecordViewSet):
    """Companies: the organisations contacts belong to."""

    serializer_class = CompanySerializer
    filterset_class = CompanyFilter
    create_service = staticmethod(services.company_create)
    update_service = staticmethod(services.company_update)
    record_arg = "company"

    queryset = Company.objects.none()

    def visible_queryset(self, user):
        return companies_visible_to(user).prefetch_related("tags")

    @extend_schema(summary="Archive a company", description=(
        "Companies are never deleted through the API: DELETE **archives** the company (sets `archived_at`). "
        "Its contacts, activities and history stay; it leaves the default list but stays readable at its URL "
        "and in `?archived=true` lists."), responses={204: None})
    def destroy(self, request, *args, **kwargs):
        """Archive the company rather than delete it (see the schema description)."""
        services.company_archive(company=self.get_object(), actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema_view(
    list=extend_schema(summary="List activities", description=(
        "Calls, e-mails, meetings, notes and tasks on records you can see, newest first. "
        "`?done=false` lists open tasks.")),
    retrieve=extend_schema(summary="Read an activity"),
    create=extend_schema(summary="Log an activity or add a task", description=(
        "On a contact and/or company you can see. A task needs `due_at`; its assignee defaults to you.")),
)
class ActivityViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, ApiViewSet):
    """Activities and tasks."""

    serializer_class = ActivitySerializer
    filterset_class = ActivityFilter
    sort_options = [
        SortOption("-occurred", "occurred_at", descending=True),
        SortOption("occurred", "occurred_at"),
        SortOption("-created", "created_at", descending=True),
        SortOption("created", "created_at"),
    ]
    default_sort = "-occurred"

    queryset = Activity.objects.none()

    def visible_queryset(self, user):
        return activities_visible_to(user)

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        activity = services.activity_log(actor=request.user, **serializer.validated_data)
        return Response(self.get_serializer(activity).data, status=status.HTTP_201_CREATED)

    def _set_done(self, request, done: bool):
        task = services.task_set_done(task=self.get_object(), actor=request.user, done=done)
        return Response(self.get_serializer(task).data)

    @extend_schema(summary="Tick a task done", request=None, responses=ActivitySerializer)
    @action(detail=True, methods=["post"])
    def done(self, request, pk=None):
        return self._set_done(request, True)

    @extend_schema(summary="Re-open a done task", request=None, responses=ActivitySerializer)
    @action(detail=True, methods=["post"])
    def undone(self, request, pk=None):
        return self._set_done(request, False)


# --- lists that admins edit ----------------------------------------------------------------------


class IsAdminOrReadOnly(permissions.BasePermission):
    """Everyone signed in reads; only admins write."""

    message = _("Only admins can change this list.")

    def has_permission(self, request, view):
        return request.method in permissions.SAFE_METHODS or request.user.is_admin


class AdminListViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin,
                       mixins.UpdateModelMixin, ApiViewSet):
    """A small list everyone reads and admins edit. Writes are validated by the model (fields, constraints)."""

    permission_classes = [permissions.IsAuthenticated, IsAdminOrReadOnly]

    def perform_create(self, serializer):
        serializer.instance = self._save(serializer.Meta.model(), serializer.validated_data)

    def perform_update(self, serializer):
        serializer.instance = self._save(serializer.instance, serializer.validated_data)

    def _save(self, instance, data):
        for name, value in data.items():
            setattr(instance, name, value)
        self.check_unique(instance)
        instance.full_clean()
        try:
            with transaction.atomic():
                instance.save()
        except IntegrityError:
            # Taken by a concurrent request between the check and the insert.
            self.check_unique(instance)
            raise
        return instance

    def check_unique(self, instance) -> None:
        """Report a taken name/key on its field (a database constraint over an expression names no field)."""


@extend_schema_view(
    list=extend_schema(summary="List tags"), retrieve=extend_schema(summary="Read a tag"),
    create=extend_schema(summary="Create a tag (admins)"), update=extend_schema(summary="Rename a tag (admins)"),
    partial_update=extend_schema(summary="Rename a tag (admins)"),
    destroy=extend_schema(summary="Delete a tag (admins)", description="Removes it from every record."),
)
class TagViewSet(mixins.DestroyModelMixin, AdminListViewSet):
    """Tags: labels on contacts and companies (unique ignoring case)."""

    queryset = Tag.objects.all()
    serializer_class = TagSerializer
    sort_options = [SortOption("name", "name"), SortOption("-name", "name", descending=True)]
    default_sort = "name"

    def check_unique(self, instance):
        taken = Tag.objects.annotate(lname=Lower("name")).filter(lname=(instance.name or "").strip().lower())
        if taken.exclude(pk=instance.pk).exists():
            raise exceptions.ValidationError({"name": [_("A tag with this name already exists.")]})


@extend_schema_view(
    list=extend_schema(summary="List lead sources"), retrieve=extend_schema(summary="Read a lead source"),
    create=extend_schema(summary="Create a lead source (admins)"),
    update=extend_schema(summary="Change a lead source (admins)"),
    partial_update=extend_schema(summary="Change a lead source (admins)"),
    destroy=extend_schema(summary="Delete an unused lead source (admins)", description=(
        "Only a lead source no record uses can be deleted (409 otherwise): deactivate it with "
        "`is_active=false` instead."), responses={204: None, 409: OpenApiResponse(description="In use.")}),
)
class LeadSourceViewSet(mixins.DestroyModelMixin, AdminListViewSet):
    """Lead sources: where contacts come from (web form, referral, event, …)."""

    queryset = LeadSource.objects.all()
    serializer_class = LeadSourceSerializer
    sort_options = [SortOption("order", "order"), SortOption("name", "name")]
    default_sort = "order"

    def check_unique(self, instance):
        if LeadSource.objects.filter(name=instance.name).exclude(pk=instance.pk).exists():
            raise exceptions.ValidationError({"name": [_("A lead source with this name already exists.")]})

    def perform_destroy(self, instance):
        try:
            with transaction.atomic():
                instance.delete()
        except ProtectedError:
            raise Conflict(_("This lead source is in use; deactivate it (is_active=false) instead.")) from None


@extend_schema_view(
    list=extend_schema(summary="List custom field definitions"),
    retrieve=extend_schema(summary="Read a custom field definition"),
    create=extend_schema(summary="Define a custom field (admins)"),
    update=extend_schema(summary="Change a custom field definition (admins)"),
    partial_update=extend_schema(summary="Change a custom field definition (admins)"),
)
class CustomFieldDefinitionViewSet(AdminListViewSet):
    """Custom fields of contacts and companies. They are deactivated (`is_active=false`), never deleted,
    so stored values keep their meaning."""

    queryset = CustomFieldDefinition.objects.all()
    serializer_class = CustomFieldDefinitionSerializer
    filterset_class = CustomFieldDefinitionFilter
    sort_options = [SortOption("order", "order"), SortOption("id", "id")]
    default_sort = "order"

    def check_unique(self, instance):
        taken = CustomFieldDefinition.objects.filter(entity=instance.entity, key=instance.key)
        if taken.exclude(pk=instance.pk).exists():
            raise exceptions.ValidationError({"key": [_("This record kind already has a field with this key.")]})

