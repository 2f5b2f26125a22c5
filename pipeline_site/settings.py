"""Django settings, read once from the environment.

Locally (no ``DJANGO_ENV``, or ``local``) everything has a safe default, so ``make run`` and the tests need no
setup. In production (``DJANGO_ENV=production``, or ``DEBUG=0``) the site refuses to start unless the secrets and
the AWS names are set (and are not the published defaults), and turns on the HTTPS protections. Any other
``DJANGO_ENV`` is refused: a typo must never start a site with DEBUG and the public secrets. docs/django.md lists
every variable.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url
from csp.constants import NONE, SELF, UNSAFE_INLINE
from django.core.exceptions import ImproperlyConfigured

from pipeline.config import DEFAULT_SECRET, MIN_SECRET_LENGTH, ConfigError, Settings, flag

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
ENVIRONMENTS = ("local", "production")


def _flag(name: str, default: bool) -> bool:
    try:
        return flag(os.environ, name, default=default)
    except ConfigError as error:
        raise ImproperlyConfigured(str(error)) from None


def _list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def _production_problems() -> list[str]:
    """What makes a production configuration unsafe even though every variable is set: the secrets published in
    this repository, secrets too short to resist guessing, and a Host check turned off."""
    problems = []
    secrets = {"SECRET_KEY": LOCAL_SECRET_KEY, "PIPELINE_SECRET": DEFAULT_SECRET}
    for name, public_default in secrets.items():
        value = os.environ[name].strip()
        if value == public_default:
            problems.append(f"{name} is the public local default")
        elif len(value) < MIN_SECRET_LENGTH:
            problems.append(f"{name} is shorter than {MIN_SECRET_LENGTH} characters")
    if "*" in _list("ALLOWED_HOSTS"):
        problems.append("ALLOWED_HOSTS contains '*' (list the site's host names)")
    return problems


DJANGO_ENV = os.environ.get("DJANGO_ENV", "").strip().lower() or "local"
if DJANGO_ENV not in ENVIRONMENTS:
    raise ImproperlyConfigured(
        f"DJANGO_ENV must be 'local' or 'production' (any case), not {os.environ['DJANGO_ENV']!r}: "
        "leave it unset for local development (see docs/django.md)."
    )
PRODUCTION = DJANGO_ENV == "production" or not _flag("DEBUG", default=DJANGO_ENV != "production")
DEBUG = not PRODUCTION

if PRODUCTION:
    _missing = [name for name in PRODUCTION_REQUIRED if not os.environ.get(name, "").strip()]
    if _missing:
        raise ImproperlyConfigured(
            "Refusing to start in production without " + ", ".join(_missing) + " (see docs/django.md). "
            "For local development leave DJANGO_ENV unset and DEBUG on."
        )
    _problems = _production_problems()
    if _problems:
        raise ImproperlyConfigured(
            "Refusing to start in production: " + "; ".join(_problems) + ". Use the generated secrets "
            "(infra/pipeline.yaml keeps them in Secrets Manager) and see docs/django.md."
        )

# The one pipeline configuration: bucket, table, CDN, limits. Views and services pass it down to the core.
PIPELINE = Settings.from_env()

SECRET_KEY = os.environ.get("SECRET_KEY") or LOCAL_SECRET_KEY
# The site's one URL (its CloudFront distribution or custom domain): pages, the API, static files and renditions.
# make deploy sets it, and CDN_URL, CSRF_TRUSTED_ORIGINS, ALLOWED_HOSTS and API_CORS_ORIGINS from it.
SITE_URL = os.environ.get("SITE_URL", "").strip().rstrip("/")
_SITE_HOST = urlsplit(SITE_URL).hostname or ""
ALLOWED_HOSTS = _list("ALLOWED_HOSTS", _SITE_HOST or ("" if PRODUCTION else "127.0.0.1,localhost,testserver,[::1]"))
CSRF_TRUSTED_ORIGINS = _list("CSRF_TRUSTED_ORIGINS", SITE_URL)

# -- behind the site's CloudFront distribution (gallery/origin.py, docs/deploy.md) ------------------------------------
# With an origin secret, every request Django answers came through CloudFront (the others get a 403), which reaches
# Zappa's API Gateway at /<stage>/... with API Gateway's Host. Zappa then sets SCRIPT_NAME=/<stage>: Django must
# build root-relative URLs instead (the distribution serves the app at /), and take the site's host from
# X-Forwarded-Host, which CloudFront's ForwardHostFunction sets from the viewer's Host. Trusting that header is safe
# only because nobody else can reach Django; without an origin secret neither setting is on.
BEHIND_CLOUDFRONT = bool(PIPELINE.origin_secrets)
if BEHIND_CLOUDFRONT:
    FORCE_SCRIPT_NAME = ""
    USE_X_FORWARDED_HOST = True

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "axes",
    "csp",
    "gallery",
]
MIDDLEWARE = [
    # First: a request that did not come through CloudFront is refused before anything else runs (gallery/origin.py).
    "gallery.origin.OriginVerifyMiddleware",
    # Outermost, so it compresses what every other middleware returns: the pages (API Gateway, in front of
    # Zappa, does not compress) and, locally, the static files WhiteNoise serves. Pages carrying a CSRF token
    # are compressed too: Django masks the token differently in every response, so BREACH cannot recover it
    # (docs/django.md, "Compression").
    "django.middleware.gzip.GZipMiddleware",
    # Right inside it, outside the session, CSRF, auth and messages middleware: it sees what they did and makes
    # every personal answer `private, no-store` (gallery/caching.py, docs/django.md "Caching").
    "gallery.caching.CacheControlMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    # Last, as django-axes asks: it turns a locked-out login into the lockout page.
    "axes.middleware.AxesMiddleware",
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
# SQLite (local): a transaction takes the write lock as it begins, so two concurrent upload-quota checks
# (gallery.quotas) wait for each other instead of one failing with "database is locked". PostgreSQL locks the
# person's row instead (select_for_update).
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"].setdefault("OPTIONS", {})["transaction_mode"] = "IMMEDIATE"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# -- accounts ----------------------------------------------------------------------------------------------------
# Django's four validators: staff set passwords in the admin, and a one-character password should not pass.
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Login throttling (django-axes) on /accounts/login/ and /admin/login/ alike: after AXES_FAILURE_LIMIT wrong
# passwords for one user name from one address, that pair is refused for AXES_COOLOFF_TIME, even with the right
# password. Per user name + address, so an attacker cannot lock a person out from elsewhere, and a person who
# mistypes is not blocked everywhere. A success resets the count. The address is REMOTE_ADDR (Zappa sets it from
# API Gateway's source IP); X-Forwarded-For is not trusted, since any client can write it.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = int(os.environ.get("LOGIN_FAILURE_LIMIT", "5"))
AXES_COOLOFF_TIME = timedelta(minutes=int(os.environ.get("LOGIN_LOCKOUT_MINUTES", "15")))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "gallery.views.locked_out"
AXES_VERBOSE = False

# -- upload quotas -----------------------------------------------------------------------------------------------
# Per person, counted in Django's database by gallery.quotas: uploads started and bytes declared in the last 24
# hours, and upload forms open at once (handed out, neither used nor expired). Staff (is_staff) have their own,
# higher numbers. A byte quota under MAX_UPLOAD_BYTES is refused: a form without JavaScript counts that much
# until its upload is confirmed, so no such form could ever be handed out.


def _quota(prefix: str, *, uploads: int, megabytes: int, open_forms: int) -> dict[str, int]:
    defaults = {"UPLOADS": uploads, "BYTES": megabytes * 1024 * 1024, "OPEN_FORMS": open_forms}
    quota = {}
    for name, default in defaults.items():
        variable = f"{prefix}_{name}"
        raw = os.environ.get(variable, "").strip()
        try:
            value = int(raw) if raw else default
        except ValueError:
            value = 0
        if value < 1:
            raise ImproperlyConfigured(f"{variable} must be a whole number of at least 1, not {raw!r}.")
        quota[name.lower()] = value
    if quota["bytes"] < PIPELINE.imaging.max_bytes:
        raise ImproperlyConfigured(
            f"{prefix}_BYTES ({quota['bytes']}) is less than MAX_UPLOAD_BYTES ({PIPELINE.imaging.max_bytes}): "
            "a form without JavaScript counts the largest upload, so none could ever be handed out."
        )
    return quota


UPLOAD_QUOTA = _quota("UPLOAD_QUOTA", uploads=50, megabytes=1024, open_forms=10)
STAFF_UPLOAD_QUOTA = _quota("STAFF_UPLOAD_QUOTA", uploads=500, megabytes=10 * 1024, open_forms=50)

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

# -- Content-Security-Policy (django-csp) ------------------------------------------------------------------------
# What the pages load, and nothing else: renditions from the CDN (and BlurHash placeholders drawn as data:/blob:
# images), scripts and styles from the site (and, in production, from the CDN, where django-storages puts the
# static files), inline style attributes (tiles carry style="--placeholder: ..."), and uploads that go straight
# from the browser to the bucket's S3 endpoint: upload.js POSTs there (connect-src) and the no-JS form too
# (form-action). The API the pages poll is Django's own /api/ ('self').


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _s3_upload_origins(bucket: str, region: str) -> list[str]:
    """Where a presigned POST for ``bucket`` sends the browser: the endpoint boto3 signs it for."""
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    if endpoint:
        return [_origin(endpoint)]  # the local emulator (make run)
    if "." in bucket:  # not usable as a host name under TLS: boto3 signs the path-style URL
        return ["https://s3.amazonaws.com" if region == "us-east-1" else f"https://s3.{region}.amazonaws.com"]
    # boto3 signs the global virtual-hosted URL; S3 may send a POST on to the regional one while a new bucket's
    # DNS settles.
    return [f"https://{bucket}.s3.amazonaws.com", f"https://{bucket}.s3.{region}.amazonaws.com"]


CDN_ORIGIN = _origin(PIPELINE.cdn_url)
S3_UPLOAD_ORIGINS = _s3_upload_origins(PIPELINE.bucket, PIPELINE.region)
# One distribution serves the site, its static files and its renditions: then the CDN is 'self'.
_CDN_SOURCES = [] if SITE_URL and _origin(SITE_URL) == CDN_ORIGIN else [CDN_ORIGIN]
_STATIC_ORIGINS = _CDN_SOURCES if PRODUCTION else []
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        # The S3 endpoint: an uploader's own unpublished thumbnails are presigned GETs (gallery.selectors).
        "img-src": [SELF, *_CDN_SOURCES, *S3_UPLOAD_ORIGINS, "data:", "blob:"],
        "script-src": [SELF, *_STATIC_ORIGINS],
        "style-src": [SELF, *_STATIC_ORIGINS, UNSAFE_INLINE],
        "connect-src": [SELF, *S3_UPLOAD_ORIGINS],
        "form-action": [SELF, *S3_UPLOAD_ORIGINS],
        "frame-ancestors": [NONE],
    }
}
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True

# -- shared caches (gallery.caching) ----------------------------------------------------------------------------
# How long CloudFront (and make run's front door) may keep a page an anonymous visitor saw, and how much longer it may
# serve that copy while it fetches a new one. An edit or a hide shows on public pages within the sum (2 minutes, as
# for the read API's documents); personal pages are never kept.
PAGE_MAX_AGE = int(os.environ.get("PAGE_MAX_AGE", "60"))
PAGE_STALE_WHILE_REVALIDATE = int(os.environ.get("PAGE_STALE_WHILE_REVALIDATE", "60"))

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"botocore": {"level": "WARNING"}, "boto3": {"level": "WARNING"}, "urllib3": {"level": "WARNING"}},
}
