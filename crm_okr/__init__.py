"""The project package: settings, URLs, the Celery app and the shared base pieces (events, history)."""

from .celery import app as celery_app

__all__ = ("celery_app",)
