"""Settings of the minimal Django project that tests/python/test_django.py drives against embedb.

The database comes from the environment:

* ``EMBEDB_DJANGO_HOST`` (default 127.0.0.1), ``EMBEDB_DJANGO_PORT`` (default 4000),
  ``EMBEDB_DJANGO_DB`` (default ``django_app``); user root, empty password, driver mysqlclient.
* ``EMBEDB_DJANGO_SQL_LOG``: a file to which every SQL statement Django sends is logged
  (``django.db.backends`` at DEBUG; a failed statement is logged as ``FAILED SQL: ...`` with
  its parameters and error by ``shop.apps.log_failed_sql``).
"""

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = "embedb-django-client-test-not-secret"
SQL_LOG = os.environ.get("EMBEDB_DJANGO_SQL_LOG", "")
# Django logs SQL only with DEBUG on (or a forced debug cursor).
DEBUG = bool(SQL_LOG)
ALLOWED_HOSTS = ["*"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "shop",
]

MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]

ROOT_URLCONF = "djproject.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.mysql",
        "NAME": os.environ.get("EMBEDB_DJANGO_DB", "django_app"),
        "USER": "root",
        "PASSWORD": "",
        "HOST": os.environ.get("EMBEDB_DJANGO_HOST", "127.0.0.1"),
        "PORT": os.environ.get("EMBEDB_DJANGO_PORT", "4000"),
        "OPTIONS": {"charset": "utf8mb4"},
    }
}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
TIME_ZONE = "UTC"
LANGUAGE_CODE = "en-us"
USE_I18N = True
STATIC_URL = "static/"
# The tests create users; a fast hasher keeps them quick.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(name)s: %(message)s"}},
    "handlers": {
        "sqlfile": {
            "class": "logging.FileHandler" if SQL_LOG else "logging.NullHandler",
            **({"filename": SQL_LOG, "formatter": "plain"} if SQL_LOG else {}),
        },
    },
    "loggers": {
        "django.db.backends": {"handlers": ["sqlfile"], "level": "DEBUG", "propagate": False},
        "shop.failed_sql": {"handlers": ["sqlfile"], "level": "ERROR", "propagate": False},
    },
}
