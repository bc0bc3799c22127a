from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CrmOkrConfig(AppConfig):
    name = "crm_okr"
    verbose_name = _("Core")

    def ready(self):
        # Event handlers register themselves when their module is imported.
        from . import handlers  # noqa: F401
