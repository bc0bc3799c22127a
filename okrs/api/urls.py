"""URL patterns (filled in by the module that owns them)."""

urlpatterns = []
