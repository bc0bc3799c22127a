"""The API of users and teams (read-only), and the pieces every app's API builds on.

``accounts`` is the app every other app may import, so the shared API base lives here:

- strict serializers: a key the endpoint does not know is refused with its name (a typo must not be
  silently ignored by an integration), and text fields take only strings;
- strict filter sets: an unknown query parameter is refused the same way;
- one documented error body (``{"errors": {"field": ["message"]}}``, produced by ``crm_okr.api``);
- token authentication described in the OpenAPI schema (scheme ``Token``).
"""

from collections.abc import Mapping

from django import forms
from django.db import models
from django.utils.translation import gettext_lazy as _
from django_filters import rest_framework as filters
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiResponse
from rest_framework import mixins, serializers, viewsets

from crm_okr.pagination import SortOption

from .models import Team, User
from .selectors import teams_visible_to, users_visible_to

# Query parameters read by the pagination (crm_okr.pagination.KeysetPagination) and DRF itself.
PAGINATION_PARAMS = frozenset({"cursor", "page_size", "ordering", "format"})
MAX_ID = 2**63 - 1


# --- OpenAPI ---------------------------------------------------------------------------------------


class HashedTokenScheme(OpenApiAuthenticationExtension):
    """Documents ``accounts.authentication.HashedTokenAuthentication`` as the ``Token`` scheme."""

    target_class = "accounts.authentication.HashedTokenAuthentication"
    name = "Token"
    priority = 1

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": 'Send the header `Authorization: Token <token>`. An admin creates a token with '
                           '`python manage.py create_api_token USERNAME` and revokes it with `--revoke PREFIX`. '
                           'Only a hash of the token is stored, so a lost token cannot be shown again.',
        }


class ErrorSerializer(serializers.Serializer):
    """The one error body of every endpoint."""

    errors = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        help_text='Messages by field name, e.g. {"email": ["Enter a valid e-mail address …"]}; '
                  '"non_field_errors" and "detail" for errors that concern no single field.',
    )

    class Meta:
        ref_name = "Error"


def _error(description: str) -> OpenApiResponse:
    return OpenApiResponse(ErrorSerializer, description=description)


class ApiSchema(AutoSchema):
    """The default schema, plus the error answers every endpoint can give; grouped by resource."""

    def get_tags(self):
        words = [w for w in self.path.split("/") if w and w != "api" and not w.startswith("{")]
        if words and words[0][:1] == "v" and words[0][1:].isdigit():
            words = words[1:]
        return words[:1] or super().get_tags()

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        extra = {"401": _error("Missing, invalid or revoked token.")}
        writes = self.method in ("POST", "PUT", "PATCH", "DELETE")
        if writes or self._is_list_view():
            extra["400"] = _error("Invalid input or query parameter; the errors name the fields.")
        if writes:
            extra["403"] = _error("You may see this record but not change it.")
        if "{" in self.path:
            extra["404"] = _error("No such record, or not visible to you.")
        for code, response in extra.items():
            if code not in responses:
                responses[code] = self._get_response_for_code(response, code, direction=direction)
        return responses


# --- serializers -----------------------------------------------------------------------------------


class StrictCharField(serializers.CharField):
    """A text field that takes only strings (DRF's CharField would turn ``123`` or ``1.5`` into text)."""

    default_error_messages = {"invalid": _("Expected a string.")}

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictSerializerMixin:
    """Refuse body keys that are not fields of the serializer, each named in the error.

    Read-only fields are known and ignored, so a record read from the API can be sent back as it is.
    """

    def to_internal_value(self, data):
        unknown = sorted(str(key) for key in data if key not in self.fields) if isinstance(data, Mapping) else []
        if not unknown:
            return super().to_internal_value(data)
        writable = ", ".join(name for name, field in self.fields.items() if not field.read_only)
        message = _("Unknown field. Known fields: %(fields)s.") % {"fields": writable}
        errors = {key[:100]: [message] for key in unknown[:20]}
        # Report the other fields' errors too, so one round trip shows everything to fix.
        try:
            super().to_internal_value(data)
        except serializers.ValidationError as exc:
            if isinstance(exc.detail, dict):
                errors = {**exc.detail, **errors}
        raise serializers.ValidationError(errors)


class StrictSerializer(StrictSerializerMixin, serializers.Serializer):
    pass


class StrictModelSerializer(StrictSerializerMixin, serializers.ModelSerializer):
    serializer_field_mapping = {
        **serializers.ModelSerializer.serializer_field_mapping,
        models.CharField: StrictCharField,
        models.TextField: StrictCharField,
    }


def request_user(serializer) -> User | None:
    """The authenticated user of the serializer's request (None when building the schema)."""
    request = serializer.context.get("request")
    user = getattr(request, "user", None)
    return user if user is not None and user.is_authenticated else None


# --- filters ---------------------------------------------------------------------------------------


class _RefusedField(forms.Field):
    """A form field that refuses any value: stands for a query parameter the endpoint does not know."""

    def __init__(self, *, message, **kwargs):
        super().__init__(**kwargs)
        self.message = message

    def clean(self, value):
        raise forms.ValidationError(self.message, code="unknown")


class RefusedFilter(filters.Filter):
    field_class = _RefusedField

    def filter(self, qs, value):
        return qs


class IdFilter(filters.Filter):
    """An id (whole number); anything else is a 400 naming the parameter."""

    field_class = forms.IntegerField

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(*args, **kwargs)


class _TrueFalseField(forms.TypedChoiceField):
    def __init__(self, **kwargs):
        kwargs.update(choices=[("true", "true"), ("false", "false")], coerce=lambda value: value == "true",
                      empty_value=None)
        super().__init__(**kwargs)


class BoolFilter(filters.Filter):
    """``true`` or ``false``; any other value is refused (django-filter's BooleanFilter ignores it)."""

    field_class = _TrueFalseField


class StrictFilterSet(filters.FilterSet):
    """A filter set that refuses query parameters it does not know, naming them."""

    extra_params = PAGINATION_PARAMS

    def __init__(self, data=None, *args, **kwargs):
        super().__init__(data, *args, **kwargs)
        if data is not None:
            for name in list(data.keys()):
                if name not in self.filters and name not in self.extra_params and not self.accepts(name):
                    self.refuse(name, _("Unknown query parameter. Known parameters: %(names)s.") % {
                        "names": ", ".join([*self.base_filters, *sorted(self.extra_params - {"format"})])})

    def accepts(self, name: str) -> bool:
        """Whether a parameter not declared as a filter is still handled (subclasses: dynamic filters)."""
        return False

    def refuse(self, name: str, message) -> None:
        self.filters[name[:100]] = RefusedFilter(field_name=name[:100], message=message)


# --- views -----------------------------------------------------------------------------------------


class ApiViewSet(viewsets.GenericViewSet):
    """Base of every viewset: error answers in the schema, filters on lists only, keyset pages."""

    schema = ApiSchema()
    sort_options: list[SortOption] = [SortOption("id", "id")]
    default_sort = "id"

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            # Building the OpenAPI schema: there is no user, only the model matters.
            return self.queryset.none()
        return self.visible_queryset(self.request.user)

    def visible_queryset(self, user):
        """The rows this user may see (from the app's selectors); every detail URL looks up in it."""
        return self.queryset.all()

    def filter_queryset(self, queryset):
        # A detail URL with leftover query parameters must still find its record.
        if self.action != "list":
            return queryset
        return super().filter_queryset(queryset)


class UserSerializer(serializers.ModelSerializer):
    full_name = serializers.SerializerMethodField()

    class Meta:
        model = User
        fields = ["id", "username", "first_name", "last_name", "full_name", "email", "role", "team", "language",
                  "is_active"]
        read_only_fields = fields

    def get_full_name(self, user) -> str:
        return user.get_full_name() or user.username


class TeamSerializer(serializers.ModelSerializer):
    class Meta:
        model = Team
        fields = ["id", "name", "manager", "created_at"]
        read_only_fields = fields


class UserFilter(StrictFilterSet):
    team = IdFilter(field_name="team_id")
    role = filters.MultipleChoiceFilter(choices=User.Role.choices)
    is_active = BoolFilter(field_name="is_active")

    class Meta:
        model = User
        fields = []


class TeamFilter(StrictFilterSet):
    manager = IdFilter(field_name="manager_id")

    class Meta:
        model = Team
        fields = []


class UserViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ApiViewSet):
    """Users you can see (your team, the teams you manage; everyone for admins). Read-only."""

    serializer_class = UserSerializer
    filterset_class = UserFilter
    sort_options = [SortOption("username", "username"), SortOption("-username", "username", descending=True)]
    default_sort = "username"
    queryset = User.objects.none()

    def visible_queryset(self, user):
        return users_visible_to(user)


class TeamViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ApiViewSet):
    """Teams you can see (yours and the ones you manage; all for admins). Read-only."""

    serializer_class = TeamSerializer
    filterset_class = TeamFilter
    sort_options = [SortOption("name", "name"), SortOption("-name", "name", descending=True)]
    default_sort = "name"
    queryset = Team.objects.none()

    def visible_queryset(self, user):
        return teams_visible_to(user)
