"""Shared API pieces: one error format everywhere, ``{"errors": {"field": ["message"]}}``."""

import logging

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from django.utils.translation import gettext as _
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

logger = logging.getLogger(__name__)


def _as_lists(detail):
    if isinstance(detail, dict):
        return {str(k): _as_lists(v) for k, v in detail.items()}
    if isinstance(detail, list):
        if all(not isinstance(item, dict | list) for item in detail):
            return [str(item) for item in detail]
        return [_as_lists(item) for item in detail]
    return [str(detail)]


def validation_errors(exc: DjangoValidationError) -> dict:
    if hasattr(exc, "error_dict"):
        return {("non_field_errors" if k == "__all__" else k): v for k, v in exc.message_dict.items()}
    return {"non_field_errors": exc.messages}


def exception_handler(exc, context):
    """Turn service errors and DRF errors into the one error body, with the right status."""
    if isinstance(exc, DjangoValidationError):
        return Response({"errors": validation_errors(exc)}, status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or None)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    detail = response.data
    if isinstance(exc, exceptions.ValidationError):
        errors = _as_lists(detail) if isinstance(detail, dict) else {"non_field_errors": _as_lists(detail)}
    elif isinstance(detail, dict) and "detail" in detail:
        errors = {"detail": [str(detail["detail"])]}
    else:
        errors = {"detail": _as_lists(detail) or [_("Error.")]}
    response.data = {"errors": errors}
    return response
