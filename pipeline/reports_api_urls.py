"""Filled in by the pipeline work in progress."""

urlpatterns = []
