from django.urls import include, path

urlpatterns = [
    path("", include("pipeline.urls_deals")),
    path("", include("pipeline.urls_board")),
    path("", include("pipeline.urls_reports")),
    path("", include("pipeline.urls_settings")),
]
