"""Settings for the benchmarks: the production settings (DEBUG off), served over plain HTTP on 127.0.0.1.

Only what a local run without TLS needs is relaxed (HTTPS redirect, secure cookies, HSTS), and static
files are served without the manifest (no collectstatic step).
"""

import os
import warnings

os.environ.setdefault("SECRET_KEY", "bench-only-secret-key-not-for-production-0123456789abcdefghij")
os.environ.setdefault("ENVIRONMENT", "bench")
os.environ["DEBUG"] = "false"

from crm_okr.settings import *  # noqa: E402,F403

DEBUG = False
SECURE_SSL_REDIRECT = False
SESSION_COOKIE_SECURE = False
CSRF_COOKIE_SECURE = False
SECURE_HSTS_SECONDS = 0
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
}
# Static files come from the apps and static/ (no collectstatic run for a benchmark).
WHITENOISE_USE_FINDERS = True
warnings.filterwarnings("ignore", message="No directory at", module="whitenoise.base")
