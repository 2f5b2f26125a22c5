"""Django's /api/ answers with the very bytes and ETags the Lambda sends for the same data."""

from __future__ import annotations

import dataclasses

import pytest
from test_api import get, ready_record, seed

from gallery import services
from lambdas.image_api import handler as image_api
from pipeline import api, keys, records
from pipeline.records import Status

SIGNED_AT = 1_800_000_100.0  # one clock for both sides, so the cursors inside the pages are the same bytes


@pytest.fixture
def store(site_aws, monkeypatch):
    """Both adapters wired to the test's moto, with the same Settings and the same clock."""
    monkeypatch.setattr(image_api, "aws", site_aws)
    monkeypatch.setattr(api, "clock", lambda: SIGNED_AT)
    assert services.pipeline_settings() == image_api.settings == site_aws.settings
    return site_aws.image_store()


def test_django_and_the_lambda_send_identical_bytes_and_etags(client, store):
    seed(store, 7, tags=("beach",))
    seed(store, 5, start=20)
    ready = store.create(ready_record(40, tags=("beach", "sunset"))).id
    processing = keys.new_image_id()
    store.create(records.new_record(processing, keys.raw_key_for_upload(processing, "a.jpg"), Status.PROCESSING))
    cursor = get("/images", query={"limit": "5"}).json["next"]
    requests = [
        ("/images", {}),
        ("/images", {"limit": "5"}),
        ("/images", {"limit": "5", "cursor": cursor}),
        ("/images", {"tag": "Beach", "limit": "3"}),
        ("/images", {"tag": "beach", "cursor": cursor}),
        ("/images", {"limit": "1000"}),
        (f"/images/{ready}", {}),
        (f"/images/{processing}", {}),
        (f"/images/{keys.new_image_id()}", {}),
        ("/images/not-an-id", {}),
    ]

    for path, query in requests:
        from_lambda = get(path, query=query)
        from_django = client.get("/api" + path, query)

        assert from_django.content == from_lambda.text.encode(), path
        assert from_django.status_code == from_lambda.status
        for header in ("ETag", "Cache-Control", "Content-Type"):
            assert from_django.headers.get(header) == from_lambda.headers.get(header), (path, header)


def test_django_answers_304_to_a_matching_etag(client, store):
    seed(store, 3)
    etag = client.get("/api/images").headers["ETag"]

    again = client.get("/api/images", headers={"If-None-Match": etag})

    assert (again.status_code, again.content, again.headers["ETag"]) == (304, b"", etag)


def test_django_refuses_other_methods_with_the_json_405(client, store):
    answer = client.post("/api/images", {})

    assert (answer.status_code, answer.json()["error"]["code"], answer.headers["Allow"]) == (
        405,
        "method_not_allowed",
        "GET",
    )


def test_repeated_parameters_are_read_as_api_gateway_joins_them(client, store):
    answer = client.get("/api/images", {"tag": ["beach", "city"]})

    assert (answer.status_code, answer.json()["error"]["code"]) == (400, "invalid_tag")


def test_unknown_api_path_is_a_json_404(client, store):
    answer = client.get("/api/photos")

    assert (answer.status_code, answer.json()["error"]["code"]) == (404, "route_not_found")


def test_django_hides_unexpected_failures_behind_a_generic_500(client, site_aws, settings, caplog):
    # A real failure, not a mock: the site is pointed at a table that does not exist.
    settings.PIPELINE = dataclasses.replace(site_aws.settings, table="no-such-table")
    services.aws.cache_clear()

    answer = client.get("/api/images")

    assert (answer.status_code, answer.json()["error"]["code"]) == (500, "internal_error")
    assert b"ResourceNotFound" not in answer.content
    assert any(record.exc_info for record in caplog.records)
