"""The pipeline part of the REST API (registered under /api/v1/)."""

urlpatterns = []
