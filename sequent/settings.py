"""Settings, read from the environment. See docs/CONFIGURATION.md."""

from __future__ import annotations

import os
from pathlib import Path

import dj_database_url

from sequent.lib.env import envbool, envint, envlist, persistent_secret

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("SEQUENT_VAR_DIR", BASE_DIR / "var"))

DEBUG = envbool("DEBUG", False)
SECRET_KEY = os.environ.get("SECRET_KEY") or persistent_secret(VAR_DIR / "secret_key")
ALLOWED_HOSTS = envlist("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "testserver"])
SEQUENT_BASE_URL = os.environ.get("SEQUENT_BASE_URL", "http://127.0.0.1:8000").rstrip("/")
CSRF_TRUSTED_ORIGINS = envlist("CSRF_TRUSTED_ORIGINS", [SEQUENT_BASE_URL])

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_htmx",
    "sequent.users",
    "sequent.crm",
    "sequent.sequences",
    "sequent.mail",
    "sequent.sms",
    "sequent.tasks",
    "sequent.worker",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "sequent.api.nul.RefuseNulMiddleware",
]

ROOT_URLCONF = "sequent.urls"
WSGI_APPLICATION = "sequent.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "sequent" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "sequent.users.context_processors.permissions",
            ],
        },
    },
]


def _database() -> dict:
    url = os.environ.get("DATABASE_URL")
    if url:
        db = dj_database_url.parse(url, conn_max_age=envint("DB_CONN_MAX_AGE", 0))
        if db["ENGINE"] == "django.db.backends.sqlite3":
            db["OPTIONS"] = _sqlite_options()
        return dict(db)
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    return {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": str(VAR_DIR / "sequent.sqlite3"),
        "OPTIONS": _sqlite_options(),
    }


def _sqlite_options() -> dict:
    # WAL lets readers run beside the one writer; IMMEDIATE takes the write lock at
    # BEGIN so two writers queue on the busy timeout instead of failing mid-transaction.
    return {
        "transaction_mode": "IMMEDIATE",
        "timeout": envint("SQLITE_BUSY_TIMEOUT", 30),
        "init_command": (
            "PRAGMA journal_mode=WAL;"
            "PRAGMA synchronous=NORMAL;"
            "PRAGMA foreign_keys=ON;"
            "PRAGMA cache_size=-64000;"
        ),
    }


DATABASES = {"default": _database()}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "users.User"
LOGIN_URL = "/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/login/"
# Login throttling (sequent/users/throttle.py): failures counted per email and per client IP.
SEQUENT_LOGIN_WINDOW_SECONDS = envint("SEQUENT_LOGIN_WINDOW_SECONDS", 15 * 60)
SEQUENT_LOGIN_MAX_FAILURES = envint("SEQUENT_LOGIN_MAX_FAILURES", 5)
SEQUENT_LOGIN_MAX_FAILURES_PER_IP = envint("SEQUENT_LOGIN_MAX_FAILURES_PER_IP", 20)

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "sequent" / "static"]
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True
MEDIA_ROOT = VAR_DIR / "media"
IMPORT_DIR = VAR_DIR / "imports"
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SECURE = SEQUENT_BASE_URL.startswith("https://")
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE

# Email delivery: Postfix-like back-off for temporary failures, and how long a quota
# error pauses a mailbox. See docs/EMAIL.md.
SEQUENT_MAIL_RETRY_FIRST_SECONDS = envint("SEQUENT_MAIL_RETRY_FIRST_SECONDS", 300)
SEQUENT_MAIL_RETRY_MAX_SECONDS = envint("SEQUENT_MAIL_RETRY_MAX_SECONDS", 14400)
SEQUENT_MAIL_GIVE_UP_HOURS = envint("SEQUENT_MAIL_GIVE_UP_HOURS", 120)
SEQUENT_MAIL_QUOTA_PAUSE_SECONDS = envint("SEQUENT_MAIL_QUOTA_PAUSE_SECONDS", 3600)
SEQUENT_SMTP_TIMEOUT = envint("SEQUENT_SMTP_TIMEOUT", 30)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "WARNING")},
}
