"""Django settings, read once from the environment.

Locally (no ``DJANGO_ENV``) everything has a safe default, so ``make run`` and the tests need no setup.
In production (``DJANGO_ENV=production``, or ``DEBUG=0``) the site refuses to start unless the secrets and
the AWS names are set, and turns on the HTTPS protections. docs/django.md lists every variable.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from pipeline.config import ConfigError, Settings, flag

BASE_DIR = Path(__file__).resolve().parent.parent

# Variables a production site must set: secrets have no safe default, and the AWS names must not silently
# fall back to the local emulator's.
PRODUCTION_REQUIRED = (
    "SECRET_KEY",
    "ALLOWED_HOSTS",
    "DATABASE_URL",
    "PIPELINE_SECRET",
    "IMAGE_BUCKET",
    "IMAGE_TABLE",
    "CDN_URL",
    # Without it hide and delete could not take a photo off CloudFront: refuse rather than leave it served.
    "CDN_DISTRIBUTION_ID",
    "AWS_REGION",
)
LOCAL_SECRET_KEY = "local-only-insecure-django-key"  # noqa: S105 (never used in production: see below)


def _flag(name: str, default: bool) -> bool:
    try:
        return flag(os.environ, name, default=default)
    except ConfigError as error:
        raise ImproperlyConfigured(str(error)) from None


def _list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DJANGO_ENV = os.environ.get("DJANGO_ENV", "local").strip().lower()
PRODUCTION = DJANGO_ENV == "production" or not _flag("DEBUG", default=DJANGO_ENV != "production")
DEBUG = not PRODUCTION

if PRODUCTION:
    _missing = [name for name in PRODUCTION_REQUIRED if not os.environ.get(name, "").strip()]
    if _missing:
        raise ImproperlyConfigured(
            "Refusing to start in production without " + ", ".join(_missing) + " (see docs/django.md). "
            "For local development leave DJANGO_ENV unset and DEBUG on."
        )

# The one pipeline configuration: bucket, table, CDN, limits. Views and services pass it down to the core.
PIPELINE = Settings.from_env()

SECRET_KEY = os.environ.get("SECRET_KEY") or LOCAL_SECRET_KEY
ALLOWED_HOSTS = _list("ALLOWED_HOSTS", "" if PRODUCTION else "127.0.0.1,localhost,testserver,[::1]")
CSRF_TRUSTED_ORIGINS = _list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "gallery",
]
MIDDLEWARE = [
    # Outermost, so it compresses what every other middleware returns: the pages (API Gateway, in front of
    # Zappa, does not compress) and, locally, the static files WhiteNoise serves. Pages carrying a CSRF token
    # are compressed too: Django masks the token differently in every response, so BREACH cannot recover it
    # (docs/django.md, "Compression").
    "django.middleware.gzip.GZipMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
ROOT_URLCONF = "pipeline_site.urls"
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
            ]
        },
    }
]
WSGI_APPLICATION = "pipeline_site.wsgi.application"

# Django's own tables (users, sessions, admin log): SQLite locally, PostgreSQL in production.
# Images live in DynamoDB, never here.
DATABASES = {
    "default": dj_database_url.config(
        default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}", conn_max_age=60 if PRODUCTION else 0, conn_health_checks=True
    )
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "gallery:index"
LOGOUT_REDIRECT_URL = "gallery:index"

# -- static files --------------------------------------------------------------------------------------------
# Locally WhiteNoise serves them straight from the apps (no collectstatic). In production `collectstatic`
# (`zappa manage <stage> "collectstatic --noinput"`) uploads them with django-storages to the `static/` prefix
# of STATIC_BUCKET, and their URLs are built on the CDN, from the same CDN_URL that pipeline.api uses for
# rendition URLs: one setting, two users (django-storages for static files, the core for images).
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATIC_LOCATION = "static"
_cdn = urlsplit(PIPELINE.cdn_url)
CDN_DOMAIN = _cdn.netloc + _cdn.path.rstrip("/")

if PRODUCTION:
    STORAGES = {
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
        "staticfiles": {
            "BACKEND": "storages.backends.s3.S3ManifestStaticStorage",
            "OPTIONS": {
                "bucket_name": os.environ.get("STATIC_BUCKET") or PIPELINE.bucket,
                "region_name": PIPELINE.region,
                "location": STATIC_LOCATION,
                "custom_domain": CDN_DOMAIN,
                "url_protocol": f"{_cdn.scheme}:",
                "querystring_auth": False,
                "file_overwrite": True,
                # Hashed names change with the content, so the CDN and browsers may keep them for a year.
                "object_parameters": {"CacheControl": "public, max-age=31536000, immutable"},
            },
        },
    }
else:
    STORAGES = {
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    WHITENOISE_USE_FINDERS = True
    WHITENOISE_AUTOREFRESH = True

# -- HTTPS and cookies in production ---------------------------------------------------------------------------
if PRODUCTION:
    # API Gateway terminates TLS and forwards the original scheme.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = _flag("SECURE_SSL_REDIRECT", default=True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", str(365 * 24 * 3600)))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = _flag("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
    SECURE_HSTS_PRELOAD = _flag("SECURE_HSTS_PRELOAD", default=False)
    SECURE_REFERRER_POLICY = "same-origin"
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"botocore": {"level": "WARNING"}, "boto3": {"level": "WARNING"}, "urllib3": {"level": "WARNING"}},
}
