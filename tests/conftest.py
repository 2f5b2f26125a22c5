"""Shared fixtures: AWS mocked in-process by moto, the table and bucket made from the core's definitions."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT.parent / "shared" / "corpus"
PHOTOS = CORPUS / "photos"
HOSTILE = CORPUS / "hostile"
EVENTS = Path(__file__).resolve().parent / "events"

# Tests never reach AWS: dummy credentials, a fixed region, and no endpoint override from the shell.
for _name in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
    os.environ.pop(_name, None)
os.environ.update(
    AWS_ACCESS_KEY_ID="testing",
    AWS_SECRET_ACCESS_KEY="testing",
    AWS_DEFAULT_REGION="us-east-1",
    AWS_REGION="us-east-1",
    POWERTOOLS_METRICS_NAMESPACE="ImagePipelineTest",
    POWERTOOLS_SERVICE_NAME="image-pipeline-test",
)


@pytest.fixture
def settings_env() -> dict[str, str]:
    """The environment a test's Settings are built from (extend it in a test to change a limit)."""
    return {}


@pytest.fixture
def pipeline_settings(settings_env: dict[str, str]):
    from pipeline.config import Settings

    return Settings.from_env(settings_env)


@pytest.fixture
def aws(pipeline_settings) -> Iterator:
    """moto in-process with the pipeline's bucket and table created; yields a pipeline.store.Aws."""
    from moto import mock_aws

    from pipeline import store

    with mock_aws():
        clients = store.Aws(pipeline_settings)
        clients.s3.create_bucket(Bucket=pipeline_settings.bucket)
        store.create_table(clients.dynamodb, pipeline_settings.table)
        yield clients


@pytest.fixture
def site_aws(aws, settings) -> Iterator:
    """The Django app on moto: settings.PIPELINE is this test's pipeline settings and gallery.services builds
    its Aws from them afresh; yields that Aws (count its calls with a botocore hook on its clients)."""
    from gallery import services

    settings.PIPELINE = aws.settings
    services.aws.cache_clear()
    yield services.aws()
    services.aws.cache_clear()
