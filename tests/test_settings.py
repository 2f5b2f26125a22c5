"""pipeline_site.settings: safe local defaults, a loud refusal in production without secrets, HTTPS when deployed."""

from __future__ import annotations

import os
import runpy
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured

from pipeline.config import DEFAULT_SECRET, Settings

ROOT = Path(__file__).resolve().parent.parent
SETTINGS_FILE = ROOT / "pipeline_site" / "settings.py"
SITE_VARIABLES = (
    "DJANGO_ENV",
    "DEBUG",
    "SECRET_KEY",
    "ALLOWED_HOSTS",
    "CSRF_TRUSTED_ORIGINS",
    "DATABASE_URL",
    "PIPELINE_SECRET",
    "IMAGE_BUCKET",
    "IMAGE_TABLE",
    "CDN_URL",
    "CDN_DISTRIBUTION_ID",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "STATIC_BUCKET",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
)
PRODUCTION_ENV = {
    "DJANGO_ENV": "production",
    "SECRET_KEY": "a-long-random-production-secret-key-for-the-test-0123456789",
    "ALLOWED_HOSTS": "photos.example.com, abc123.execute-api.eu-west-1.amazonaws.com",
    "CSRF_TRUSTED_ORIGINS": "https://photos.example.com",
    "DATABASE_URL": "postgres://site:pw@db.example.com:5432/site",
    "PIPELINE_SECRET": "another-long-random-pipeline-secret-0123456789",
    "IMAGE_BUCKET": "photos-prod-images",
    "IMAGE_TABLE": "photos-prod-ImageMetadata",
    "CDN_URL": "https://cdn.example.com/",
    "CDN_DISTRIBUTION_ID": "E2EXAMPLE1ABCD",
    "AWS_REGION": "eu-west-1",
}


def load_settings(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> dict[str, Any]:
    """Execute settings.py afresh in exactly this environment (the site's variables only)."""
    for name in SITE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(str(SETTINGS_FILE))


def test_local_defaults_need_no_environment(monkeypatch):
    site = load_settings(monkeypatch, {})

    assert site["DEBUG"] is True
    assert site["DATABASES"]["default"]["ENGINE"] == "django.db.backends.sqlite3"
    assert "whitenoise.middleware.WhiteNoiseMiddleware" in site["MIDDLEWARE"]
    assert site["PIPELINE"] == Settings.from_env({})
    assert "127.0.0.1" in site["ALLOWED_HOSTS"]


def test_production_refuses_to_start_and_names_every_missing_variable(monkeypatch):
    with pytest.raises(ImproperlyConfigured) as refused:
        load_settings(monkeypatch, {"DJANGO_ENV": "production", "IMAGE_BUCKET": "photos-prod-images"})

    message = str(refused.value)
    for name in ("SECRET_KEY", "ALLOWED_HOSTS", "DATABASE_URL", "PIPELINE_SECRET", "IMAGE_TABLE", "CDN_URL"):
        assert name in message
    assert "AWS_REGION" in message
    assert "IMAGE_BUCKET" not in message


@pytest.mark.parametrize("missing", ["SECRET_KEY", "ALLOWED_HOSTS", "CDN_URL", "CDN_DISTRIBUTION_ID", "AWS_REGION"])
def test_production_refuses_to_start_without_any_one_of_them(monkeypatch, missing):
    env = {name: value for name, value in PRODUCTION_ENV.items() if name != missing}

    with pytest.raises(ImproperlyConfigured, match=missing):
        load_settings(monkeypatch, env)


def test_turning_debug_off_counts_as_production(monkeypatch):
    with pytest.raises(ImproperlyConfigured, match="SECRET_KEY"):
        load_settings(monkeypatch, {"DEBUG": "0"})


def test_a_typo_in_a_flag_is_refused_rather_than_guessed(monkeypatch):
    with pytest.raises(ImproperlyConfigured, match="DEBUG"):
        load_settings(monkeypatch, {"DEBUG": "flase"})


def test_production_turns_on_https_protections(monkeypatch):
    site = load_settings(monkeypatch, PRODUCTION_ENV)

    assert site["DEBUG"] is False
    assert site["SECRET_KEY"] == PRODUCTION_ENV["SECRET_KEY"]
    assert site["ALLOWED_HOSTS"] == ["photos.example.com", "abc123.execute-api.eu-west-1.amazonaws.com"]
    assert site["CSRF_TRUSTED_ORIGINS"] == ["https://photos.example.com"]
    assert site["SESSION_COOKIE_SECURE"] is True
    assert site["CSRF_COOKIE_SECURE"] is True
    assert site["SECURE_SSL_REDIRECT"] is True
    assert site["SECURE_HSTS_SECONDS"] >= 31_536_000
    assert site["SECURE_PROXY_SSL_HEADER"] == ("HTTP_X_FORWARDED_PROTO", "https")


def test_production_uses_the_database_url_and_the_aws_names(monkeypatch):
    site = load_settings(monkeypatch, PRODUCTION_ENV)

    database = site["DATABASES"]["default"]
    assert database["ENGINE"] == "django.db.backends.postgresql"
    assert (database["HOST"], database["NAME"]) == ("db.example.com", "site")
    pipeline = site["PIPELINE"]
    assert (pipeline.bucket, pipeline.table, pipeline.region) == (
        "photos-prod-images",
        "photos-prod-ImageMetadata",
        "eu-west-1",
    )
    assert pipeline.cdn_url == "https://cdn.example.com"
    assert pipeline.secret == PRODUCTION_ENV["PIPELINE_SECRET"]


def test_production_static_files_go_to_s3_under_static_and_are_served_from_the_cdn(monkeypatch):
    site = load_settings(monkeypatch, PRODUCTION_ENV)

    static = site["STORAGES"]["staticfiles"]
    assert static["BACKEND"].startswith("storages.backends.s3.")
    options = static["OPTIONS"]
    assert (options["bucket_name"], options["location"]) == ("photos-prod-images", "static")
    # The same CDN_URL that pipeline.api builds rendition URLs from.
    assert (options["url_protocol"], options["custom_domain"]) == ("https:", "cdn.example.com")
    assert options["querystring_auth"] is False


def test_collectstatic_uploads_hashed_files_that_the_cdn_serves(monkeypatch, aws, settings, tmp_path):
    """collectstatic with the production storage (what `zappa manage <stage> collectstatic` runs)."""
    from django.core.management import call_command
    from django.templatetags.static import static

    site = load_settings(
        monkeypatch, {**PRODUCTION_ENV, "IMAGE_BUCKET": aws.settings.bucket, "AWS_REGION": "us-east-1"}
    )
    settings.STORAGES = site["STORAGES"]
    settings.INSTALLED_APPS = ["django.contrib.staticfiles", "gallery"]  # our files only: seconds, not minutes
    settings.DEBUG = False

    call_command("collectstatic", interactive=False, verbosity=0)

    url = static("gallery/site.css")
    assert url.startswith("https://cdn.example.com/static/gallery/site.")
    assert url.endswith(".css")
    assert url != "https://cdn.example.com/static/gallery/site.css"
    hashed_key = url.removeprefix("https://cdn.example.com/")
    stored = aws.s3.head_object(Bucket=aws.settings.bucket, Key=hashed_key)
    assert stored["CacheControl"] == "public, max-age=31536000, immutable"


# -- M7: no fail-open configuration --------------------------------------------------------------------------------


@pytest.mark.parametrize("unknown", ["prod", "staging", "dev", "productionn", "true"])
def test_an_unknown_django_env_is_refused_with_a_sentence_naming_the_allowed_values(monkeypatch, unknown):
    with pytest.raises(ImproperlyConfigured) as refused:
        load_settings(monkeypatch, {"DJANGO_ENV": unknown})

    message = str(refused.value)
    assert "DJANGO_ENV must be 'local' or 'production'" in message
    assert repr(unknown) in message


def test_django_env_ignores_case_and_surrounding_space(monkeypatch):
    assert load_settings(monkeypatch, {"DJANGO_ENV": " LOCAL "})["DEBUG"] is True
    assert load_settings(monkeypatch, {**PRODUCTION_ENV, "DJANGO_ENV": " Production\n"})["DEBUG"] is False


def test_manage_py_check_fails_for_an_unknown_django_env():
    env = {"PATH": os.environ["PATH"], "DJANGO_ENV": "prod"}
    checked = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )

    assert checked.returncode != 0
    assert "DJANGO_ENV must be 'local' or 'production'" in checked.stderr


@pytest.mark.parametrize(
    ("name", "value", "problem"),
    [
        ("SECRET_KEY", "local-only-insecure-django-key", "SECRET_KEY is the public local default"),
        ("PIPELINE_SECRET", DEFAULT_SECRET, "PIPELINE_SECRET is the public local default"),
        ("SECRET_KEY", "x" * 31, "SECRET_KEY is shorter than 32 characters"),
        ("PIPELINE_SECRET", "another-long-random-secret", "PIPELINE_SECRET is shorter than 32 characters"),
        ("ALLOWED_HOSTS", "*", "ALLOWED_HOSTS contains '*'"),
        ("ALLOWED_HOSTS", "photos.example.com, *", "ALLOWED_HOSTS contains '*'"),
    ],
)
def test_production_refuses_public_defaults_short_secrets_and_any_host(monkeypatch, name, value, problem):
    with pytest.raises(ImproperlyConfigured, match="Refusing to start in production") as refused:
        load_settings(monkeypatch, {**PRODUCTION_ENV, name: value})

    assert problem in str(refused.value)


def test_production_accepts_secrets_of_32_characters(monkeypatch):
    site = load_settings(monkeypatch, {**PRODUCTION_ENV, "SECRET_KEY": "k" * 32, "PIPELINE_SECRET": "p" * 32})

    assert site["SECRET_KEY"] == "k" * 32


def import_lambda(module: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Import a Lambda handler in a fresh interpreter, as the Lambda runtime starts it (its init phase)."""
    base = {"PATH": os.environ["PATH"], "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1"}
    return subprocess.run(
        [sys.executable, "-c", f"import {module}"],
        cwd=ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        check=False,
    )


LAMBDAS = ["lambdas.image_api.handler", "lambdas.image_processor.handler"]


@pytest.mark.parametrize("module", LAMBDAS)
@pytest.mark.parametrize("secret", [None, DEFAULT_SECRET, "short-secret"])
def test_lambdas_on_aws_refuse_to_start_with_the_public_or_a_short_pipeline_secret(module, secret):
    env = {"AWS_LAMBDA_FUNCTION_NAME": "image-pipeline-prod-fn"}
    if secret is not None:
        env["PIPELINE_SECRET"] = secret
    started = import_lambda(module, env)

    assert started.returncode != 0
    assert "Refusing to start: PIPELINE_SECRET" in started.stderr


@pytest.mark.parametrize("module", LAMBDAS)
@pytest.mark.parametrize(
    "env",
    [
        {"AWS_LAMBDA_FUNCTION_NAME": "fn", "PIPELINE_SECRET": "s" * 48},  # deployed with the generated secret
        {"AWS_LAMBDA_FUNCTION_NAME": "fn", "AWS_ENDPOINT_URL": "http://127.0.0.1:4566"},  # make run's emulator
        {},  # the CLI, the tests and the packager's import check: not the Lambda runtime
    ],
    ids=["generated-secret", "local-emulator", "outside-lambda"],
)
def test_lambdas_start_with_a_real_secret_or_on_the_local_emulator(module, env):
    started = import_lambda(module, env)

    assert started.returncode == 0, started.stderr
