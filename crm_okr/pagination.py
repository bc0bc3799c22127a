"""Keyset (cursor) pagination for large tables, shared by list pages and API endpoints.

No ``COUNT(*)`` and no ``OFFSET``: each page continues from the last row's ``(sort value, id)``
with a row comparison that PostgreSQL answers from a composite index, so page 1 and page 20,000
cost the same.
"""

import base64
import binascii
import json
from dataclasses import dataclass
from decimal import Decimal
from urllib.parse import urlencode

from django.core.exceptions import ValidationError
from django.db.models import F, QuerySet
from django.db.models.fields.tuple_lookups import Tuple, TupleGreaterThan, TupleLessThan
from django.utils.translation import gettext as _
from rest_framework.pagination import BasePagination
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param


@dataclass(frozen=True)
class SortOption:
    """A way a list may be sorted: a public key, the model field, and the direction."""

    key: str
    field: str
    descending: bool = False
    label: str = ""


@dataclass
class Page:
    items: list
    next_cursor: str | None
    previous_cursor: str | None
    sort: SortOption


def encode_cursor(value, pk: int, reverse: bool = False) -> str:
    if hasattr(value, "isoformat"):
        value = value.isoformat()
    elif isinstance(value, Decimal):
        value = str(value)
    raw = json.dumps({"v": value, "id": pk, "r": int(reverse)}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, *, model, field: str, output_field=None):
    """Return (value, id, reverse) or raise ValidationError for a cursor we did not make.

    ``output_field`` types the value when the sort is on an annotation (e.g. a Coalesce that keeps
    a nullable column out of the row comparison) rather than on a model field.
    """
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()).decode())
        pk = int(data["id"])
        reverse = bool(data.get("r", 0))
        value = (output_field or model._meta.get_field(field)).to_python(data["v"])
    except (ValueError, TypeError, KeyError, binascii.Error, UnicodeDecodeError, ValidationError, AttributeError):
        raise ValidationError({"cursor": _("Invalid cursor: use the next/previous links as given.")}) from None
    return value, pk, reverse


def paginate(qs: QuerySet, *, sort: SortOption, cursor: str | None, page_size: int) -> Page:
    """One page of ``qs`` in ``sort`` order, after (or, going back, before) the cursor's row."""
    reverse = False
    if cursor:
        annotation = qs.query.annotations.get(sort.field)
        value, pk, reverse = decode_cursor(cursor, model=qs.model, field=sort.field,
                                           output_field=annotation.output_field if annotation is not None else None)
        # Going forward on an ascending list means "after"; the other three cases follow.
        after = sort.descending == reverse
        lookup = TupleGreaterThan if after else TupleLessThan
        qs = qs.filter(lookup(Tuple(F(sort.field), F("pk")), (value, pk)))
    descending = sort.descending != reverse
    prefix = "-" if descending else ""
    rows = list(qs.order_by(f"{prefix}{sort.field}", f"{prefix}pk")[: page_size + 1])
    has_more = len(rows) > page_size
    rows = rows[:page_size]
    if reverse:
        rows.reverse()
    next_cursor = previous_cursor = None
    if rows:
        first, last = rows[0], rows[-1]
        if (has_more and not reverse) or (reverse and cursor):
            next_cursor = encode_cursor(getattr(last, sort.field), last.pk)
        if (cursor and not reverse) or (reverse and has_more):
            previous_cursor = encode_cursor(getattr(first, sort.field), first.pk, reverse=True)
    return Page(items=rows, next_cursor=next_cursor, previous_cursor=previous_cursor, sort=sort)


class KeysetPagination(BasePagination):
    """DRF pagination over :func:`paginate`. Views declare ``sort_options`` and ``default_sort``.

    Query parameters: ``ordering`` (one of the view's sort keys), ``cursor`` (from ``next``/``previous``)
    and ``page_size`` (1–200, default 50).
    """

    page_size = 50
    max_page_size = 200

    def paginate_queryset(self, queryset, request, view=None):
        from rest_framework.exceptions import ValidationError as DRFValidationError

        options = {o.key: o for o in getattr(view, "sort_options", [SortOption("id", "id")])}
        key = request.query_params.get("ordering") or getattr(view, "default_sort", next(iter(options)))
        errors = {}
        if key not in options:
            errors["ordering"] = [_("“%(value)s” is not one of: %(options)s.") % {
                "value": key[:50], "options": ", ".join(options)}]
        size = request.query_params.get("page_size")
        if size is not None:
            if not size.isdigit() or not 1 <= int(size) <= self.max_page_size:
                errors["page_size"] = [_("Expected a whole number from 1 to %(max)d.") % {"max": self.max_page_size}]
            else:
                self.page_size = int(size)
        if errors:
            raise DRFValidationError(errors)
        try:
            self.page = paginate(queryset, sort=options[key], cursor=request.query_params.get("cursor"),
                                 page_size=self.page_size)
        except ValidationError as exc:
            raise DRFValidationError(exc.message_dict) from None
        self.request = request
        return self.page.items

    def _link(self, cursor):
        if cursor is None:
            return None
        return replace_query_param(self.request.build_absolute_uri(), "cursor", cursor)

    def get_paginated_response(self, data):
        return Response({
            "next": self._link(self.page.next_cursor),
            "previous": self._link(self.page.previous_cursor),
            "results": data,
        })

    def get_paginated_response_schema(self, schema):
        return {
            "type": "object",
            "required": ["results"],
            "properties": {
                "next": {"type": "string", "nullable": True, "format": "uri"},
                "previous": {"type": "string", "nullable": True, "format": "uri"},
                "results": schema,
            },
        }

    def get_schema_operation_parameters(self, view):
        options = [o.key for o in getattr(view, "sort_options", [])]
        return [
            {"name": "cursor", "required": False, "in": "query", "description": "Cursor from next/previous.",
             "schema": {"type": "string"}},
            {"name": "page_size", "required": False, "in": "query", "description": "Rows per page (1–200).",
             "schema": {"type": "integer", "minimum": 1, "maximum": 200}},
            {"name": "ordering", "required": False, "in": "query", "description": "Sort order.",
             "schema": {"type": "string", "enum": options}},
        ]


def page_query(params, **changes) -> str:
    """The current query string with some parameters replaced (for links on list pages)."""
    merged = {k: v for k, v in params.items() if v not in ("", None)}
    for key, value in changes.items():
        if value in (None, ""):
            merged.pop(key, None)
        else:
            merged[key] = value
    return urlencode(merged)
