"""The read API through its Lambda handler: real-shaped HTTP API v2 events against moto DynamoDB."""

from __future__ import annotations

import copy
import dataclasses
import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import pytest
from conftest import EVENTS
from lambda_context import FakeLambdaContext

from lambdas.image_api import handler as image_api
from pipeline import api, keys, records
from pipeline.config import ImagingSettings, Settings
from pipeline.imaging import plan_renditions
from pipeline.records import ImageRecord, Rendition, Status
from pipeline.store import Aws, ImageStore

GALLERY_ORIGIN = "http://127.0.0.1:8000"  # one of the default API_CORS_ORIGINS
BASE_TIME = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
PLAN = plan_renditions((4000, 3000), 1, ImagingSettings())
VERSION = "abcdefgh23"


def rendition_bytes(width: int, fmt: str) -> int:
    jpeg = width * 50
    return jpeg if fmt == "jpeg" else (jpeg * 4 // 5 if width >= 640 else jpeg * 11 // 10)


INTERNAL_FIELDS = (
    *("raw_key", "file_name", "owner", "revision", "sequencer", "source_etag", "expires_at", "history"),
    *('"pk"', '"sk"', "created_sk", "IMAGE#", "TAG#", '"S":', '"N":'),
)


# -- seeding through the core's own store ------------------------------------------------------------------


def ready_record(
    n: int, *, tags: tuple[str, ...] = (), sha256: str | None = None, hidden: bool = False, image_id: str | None = None
) -> ImageRecord:
    """A processed image as the processor leaves it: a 4000x3000 photo's ladder and tiles (WebP smaller than the
    JPEG from 640 px up, larger below), facts, placeholder; ``n`` orders it."""
    image_id = image_id or keys.new_image_id()
    created = (BASE_TIME + timedelta(minutes=n)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    processed = (BASE_TIME + timedelta(minutes=n, seconds=3)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    raw_key = keys.raw_key_for_upload(image_id, f"IMG_{n:04d}.jpg")
    renditions = tuple(
        Rendition(
            rung.name,
            fmt,
            keys.rendition_key(image_id, rung.name, fmt, version=VERSION, width=rung.width, height=rung.height),
            rung.width,
            rung.height,
            rendition_bytes(rung.width, fmt) + n,
        )
        for rung in PLAN.rungs
        for fmt in ("jpeg", "webp")
    )
    return (
        records.new_record(image_id, raw_key, Status.PROCESSING, owner="alice", content_type="image/jpeg", at=created)
        .with_status(Status.READY, at=processed)
        .replace(
            byte_size=2_000_000 + n,
            sha256=sha256 or f"{n:064x}",
            width=4000,
            height=3000,
            format="JPEG",
            renditions=renditions,
            processed_at=processed,
            blurhash="LEHV6nWB2yk8pyo0adR*.7kCMdnj",
            dominant_color="#6a7b8c",
            title=f"Photo {n}",
            alt_text=f"A test photo, number {n}",
            tags=tags,
            hidden=hidden,
            source_sequencer=f"{n:016X}",
            source_etag=f'"{n:032x}"',
        )
    )


def seed(store: ImageStore, count: int, *, start: int = 0, tags: tuple[str, ...] = ()) -> list[str]:
    """``count`` ready images; returns their ids newest first (the API's order)."""
    ids = [store.create(ready_record(start + n, tags=tags)).id for n in range(count)]
    return ids[::-1]


# -- calling the handler with HTTP API v2 events ---------------------------------------------------------


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    text: str

    @property
    def json(self) -> Any:
        return json.loads(self.text)


def http_event(
    path: str, *, method: str = "GET", query: dict[str, str] | None = None, headers: dict[str, str] | None = None
) -> dict[str, Any]:
    """A v2 event as API Gateway sends it for ``ANY /images`` / ``ANY /images/{id}`` on the $default stage."""
    template = "http_api_get_image.json" if path.startswith("/images/") else "http_api_list_images.json"
    event = copy.deepcopy(json.loads((EVENTS / template).read_text()))
    route = "ANY /images/{id}" if path.startswith("/images/") else "ANY /images"
    event["routeKey"] = event["requestContext"]["routeKey"] = route
    event["rawPath"] = event["requestContext"]["http"]["path"] = path
    event["requestContext"]["http"]["method"] = method
    event["rawQueryString"] = urlencode(query or {})
    event.pop("queryStringParameters", None)
    if query:
        event["queryStringParameters"] = dict(query)
    event.pop("pathParameters", None)
    if path.startswith("/images/"):
        event["pathParameters"] = {"id": path.removeprefix("/images/")}
    event["headers"].update({name.lower(): value for name, value in (headers or {}).items()})
    return event


def invoke(event: dict[str, Any]) -> Answer:
    result = image_api.handler(event, FakeLambdaContext(function_name="image-api"))
    assert result["isBase64Encoded"] is False
    return Answer(result["statusCode"], result.get("headers", {}), result.get("body") or "")


def get(path: str, **params: Any) -> Answer:
    return invoke(http_event(path, **params))


@pytest.fixture
def store(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> ImageStore:
    """The handler wired to the test's moto: its module-level clients replaced by the fixture's."""
    assert image_api.settings == aws.settings, "the handler and the test must agree on Settings"
    monkeypatch.setattr(image_api, "aws", aws)
    return aws.image_store()


@pytest.fixture
def dynamodb_calls(aws: Aws) -> list[str]:
    """The names of the DynamoDB operations made from the moment the fixture is requested."""
    calls: list[str] = []
    aws.dynamodb.meta.events.register("before-call.dynamodb.*", lambda model, **_: calls.append(model.name))
    return calls


def walk(query: dict[str, str]) -> list[dict[str, Any]]:
    """Every page of a listing, following ``next`` until it is null."""
    pages, cursor = [], None
    while True:
        answer = get("/images", query={**query, **({"cursor": cursor} if cursor else {})})
        assert answer.status == 200, answer.text
        pages.append(answer.json)
        cursor = answer.json["next"]
        if cursor is None:
            return pages


# -- listing -------------------------------------------------------------------------------------------------


def test_pages_walk_every_listed_image_exactly_once_newest_first(store):
    ids = seed(store, 53)

    pages = walk({"limit": "10"})

    assert [len(page["items"]) for page in pages] == [10, 10, 10, 10, 10, 3]
    assert [item["id"] for page in pages for item in page["items"]] == ids


def test_a_listing_that_fills_its_last_page_exactly_has_no_empty_page_after_it(store):
    seed(store, 20)

    pages = walk({"limit": "10"})

    assert [len(page["items"]) for page in pages] == [10, 10]


def test_a_page_costs_exactly_one_query_and_never_a_scan(store, dynamodb_calls):
    seed(store, 30)
    dynamodb_calls.clear()

    first = get("/images", query={"limit": "24"})
    second = get("/images", query={"limit": "24", "cursor": first.json["next"]})
    tagged = get("/images", query={"tag": "nothing-yet"})

    assert [first.status, second.status, tagged.status] == [200, 200, 200]
    assert dynamodb_calls == ["Query", "Query", "Query"]


@pytest.mark.parametrize("tag", [None, "beach"])
def test_cursor_resumes_exactly_where_dynamodb_itself_would(store, pipeline_settings, tag):
    seed(store, 8, tags=("beach",))
    partition = records.tag_pk(tag) if tag else records.LISTED_ALL
    own = store.query_page(records.LISTED_INDEX, partition, limit=3)

    cursor = get("/images", query={"limit": "3", **({"tag": tag} if tag else {})}).json["next"]

    assert api.decode_cursor(cursor, api.listing_scope(partition), pipeline_settings) == own.last_key


def test_default_page_size_is_24(store):
    seed(store, 30)

    assert len(get("/images").json["items"]) == api.DEFAULT_LIMIT == 24


def test_limit_of_100_is_allowed(store):
    seed(store, 3)

    assert get("/images", query={"limit": "100"}).status == 200


def test_pages_do_not_shift_when_images_are_uploaded_between_them(store):
    older = seed(store, 15)
    first = get("/images", query={"limit": "5"}).json

    seed(store, 4, start=100)  # newer than everything: they belong before page one
    second = get("/images", query={"limit": "5", "cursor": first["next"]}).json

    assert [item["id"] for item in second["items"]] == older[5:10]


def test_only_ready_visible_images_are_listed(store):
    listed = seed(store, 2)
    store.create(ready_record(10, hidden=True))
    uploading = keys.new_image_id()
    store.create(
        records.new_record(uploading, keys.raw_key_for_upload(uploading, "a.jpg"), Status.UPLOADING, expires_at=1)
    )
    processing = store.create(ready_record(11)).id
    store.update(processing, lambda current: current.with_status(Status.PROCESSING))
    failed = store.create(ready_record(12)).id
    store.update(failed, lambda current: current.with_status(Status.FAILED, reason="not an image"))

    items = get("/images").json["items"]

    assert [item["id"] for item in items] == listed


def test_tag_filter_lists_only_images_with_that_tag_normalized_like_stored_tags(store):
    beach = seed(store, 3, tags=("beach", "sunset"))
    seed(store, 3, start=10, tags=("city",))

    items = get("/images", query={"tag": "  BEACH "}).json["items"]

    assert [item["id"] for item in items] == beach


def test_tag_pages_walk_every_tagged_image_once(store):
    tagged = seed(store, 12, tags=("beach",))
    seed(store, 5, start=50, tags=("city",))

    pages = walk({"tag": "beach", "limit": "5"})

    assert [item["id"] for page in pages for item in page["items"]] == tagged


def test_image_hidden_after_listing_disappears_from_the_tag_listing(store):
    kept, hidden = seed(store, 2, tags=("beach",))
    store.update(hidden, lambda current: current.replace(hidden=True))

    items = get("/images", query={"tag": "beach"}).json["items"]

    assert [item["id"] for item in items] == [kept]


# -- documents ----------------------------------------------------------------------------------------------


def test_document_describes_the_image_with_immutable_cdn_urls(store, pipeline_settings):
    record = store.create(ready_record(7, tags=("beach",), sha256="ab12" * 16))

    document = get(f"/images/{record.id}").json

    base = pipeline_settings.cdn_url
    thumbs, optimized = f"{base}/thumbs/{record.id}/{VERSION}", f"{base}/optimized/{record.id}/{VERSION}"
    assert document["thumbnail"] == f"{thumbs}-384x288.jpg"  # the widest tile within THUMB_SIZE (400)
    assert document["optimized"] == f"{optimized}-1920.jpg"
    assert len(document["sources"]) == len(record.renditions) == 20
    assert {source["url"] for source in document["sources"]} == {
        f"{base}/{r.key.removeprefix('public/')}" for r in record.renditions
    }
    assert "?" not in json.dumps(document)  # the version is in the path: nothing to bust with a query
    assert document["placeholder"] == {"blurhash": record.blurhash, "color": "#6a7b8c"}
    assert (document["width"], document["height"], document["bytes"], document["tags"]) == (
        4000,
        3000,
        record.byte_size,
        ["beach"],
    )


def test_srcset_covers_the_whole_ladder_and_offers_webp_only_where_it_is_smaller(store, pipeline_settings):
    record = store.create(ready_record(7))

    document = get(f"/images/{record.id}").json

    base = f"{pipeline_settings.cdn_url}/optimized/{record.id}/{VERSION}"
    assert document["srcset"]["jpeg"] == ", ".join(f"{base}-{w}.jpg {w}w" for w in (320, 480, 640, 960, 1280, 1920))
    # WebP is the smaller file from 640 px up; below that the JPEG is, so browsers that take WebP get the JPEG.
    assert document["srcset"]["webp"] == ", ".join(
        [f"{base}-320.jpg 320w", f"{base}-480.jpg 480w"] + [f"{base}-{w}.webp {w}w" for w in (640, 960, 1280, 1920)]
    )
    tiles = f"{pipeline_settings.cdn_url}/thumbs/{record.id}/{VERSION}"
    assert document["thumbnail_srcset"]["jpeg"] == ", ".join(
        f"{tiles}-{w}x{h}.jpg {w}w" for w, h in ((256, 192), (384, 288), (560, 420), (840, 630))
    )
    assert document["thumbnail_srcset"]["webp"].endswith(f"{tiles}-840x630.webp 840w")


def test_srcset_has_no_webp_when_no_webp_is_smaller(store):
    plain = ready_record(1)
    bigger_webp = tuple(dataclasses.replace(r, bytes=10**6) if r.format == "webp" else r for r in plain.renditions)
    record = store.create(plain.replace(renditions=bigger_webp))

    document = get(f"/images/{record.id}").json

    assert set(document["srcset"]) == set(document["thumbnail_srcset"]) == {"jpeg"}
    assert {s["format"] for s in document["sources"]} == {"jpeg", "webp"}  # still listed, just not offered


def test_srcset_has_one_candidate_per_width_when_a_small_source_makes_equal_renditions(store):
    small = ready_record(1)
    same_size = tuple(dataclasses.replace(r, width=320, height=240) for r in small.renditions)
    record = store.create(small.replace(renditions=same_size, width=320, height=240))

    srcset = get(f"/images/{record.id}").json["srcset"]

    assert [candidate.rsplit(" ", 1)[1] for candidate in srcset["webp"].split(", ")] == ["320w"]
    assert [candidate.rsplit(" ", 1)[1] for candidate in srcset["jpeg"].split(", ")] == ["320w"]


def test_a_reprocessed_image_gets_new_rendition_urls(store):
    record = store.create(ready_record(1))
    before = get(f"/images/{record.id}").json

    rerun = tuple(r.replace(key=r.key.replace(VERSION, "zzzzzzzzzz")) for r in record.renditions)
    store.update(record.id, lambda current: current.replace(renditions=rerun))
    after = get(f"/images/{record.id}").json

    assert before["thumbnail"] != after["thumbnail"]
    assert after["thumbnail"] == before["thumbnail"].replace(VERSION, "zzzzzzzzzz")


def test_document_leaks_no_internals(store):
    record = store.create(ready_record(3))

    text = get(f"/images/{record.id}").text + get("/images").text

    for secret in (*INTERNAL_FIELDS, record.raw_key, record.file_name, "alice", record.source_sequencer, "public/"):
        assert secret not in text


def test_a_processing_image_can_be_polled(store):
    image_id = keys.new_image_id()
    store.create(records.new_record(image_id, keys.raw_key_for_upload(image_id, "a.jpg"), Status.PROCESSING))

    answer = get(f"/images/{image_id}")

    assert answer.status == 200
    assert (answer.json["status"], answer.json["thumbnail"], answer.json["sources"]) == ("processing", None, [])


def test_a_failed_image_says_why(store):
    image_id = store.create(ready_record(1)).id
    store.update(image_id, lambda current: current.with_status(Status.FAILED, reason="file is not an image"))

    document = get(f"/images/{image_id}").json

    assert (document["status"], document["failure_reason"]) == ("failed", "file is not an image")


def test_hidden_image_is_not_found(store):
    record = store.create(ready_record(1, hidden=True))

    answer = get(f"/images/{record.id}")

    assert (answer.status, answer.json["error"]["code"]) == (404, "not_found")


def test_an_image_in_the_trash_is_not_found_and_not_listed(store):
    record = store.create(ready_record(1, tags=("beach",)).to_trash(by="root", at=records.now_iso(), purge_after="x"))

    answer = get(f"/images/{record.id}")

    assert (answer.status, answer.json["error"]["code"]) == (404, "not_found")
    assert get("/images").json["items"] == []
    assert get("/images", query={"tag": "beach"}).json["items"] == []


# -- errors -------------------------------------------------------------------------------------------------


def test_unknown_id_is_not_found(store):
    answer = get(f"/images/{keys.new_image_id()}")

    assert (answer.status, answer.json["error"]["code"]) == (404, "not_found")


@pytest.mark.parametrize("bad_id", ["abc", "A" * 26, "a" * 27])
def test_malformed_id_is_a_bad_request(store, bad_id):
    answer = get(f"/images/{bad_id}")

    assert (answer.status, answer.json["error"]["code"]) == (400, "invalid_id")


@pytest.mark.parametrize("limit", ["0", "101", "ten", "2.5", ""])
def test_bad_limit_is_a_bad_request(store, limit):
    answer = get("/images", query={"limit": limit})

    assert (answer.status, answer.json["error"]["code"]) == (400, "invalid_limit")


def test_two_tags_at_once_are_a_bad_request(store):
    # API Gateway joins repeated parameters with commas: ?tag=a&tag=b arrives as "a,b".
    answer = get("/images", query={"tag": "beach,city"})

    assert (answer.status, answer.json["error"]["code"]) == (400, "invalid_tag")


def _flip_last_character(text: str) -> str:
    return text[:-1] + ("A" if text[-1] != "A" else "B")


def _forge_scope(cursor: str) -> str:
    """The same position, claimed for the ALL listing, with the signature left as it was."""
    body, signature = cursor.split(".")
    payload = json.loads(api._b64decode(body))
    payload["s"] = api.listing_scope(records.LISTED_ALL)
    return api._b64encode(json.dumps(payload).encode()) + "." + signature


@pytest.mark.parametrize(
    "tamper", [_flip_last_character, _forge_scope, lambda c: c.split(".")[0], lambda c: "x.y", lambda c: ""]
)
def test_tampered_cursor_is_a_bad_request(store, tamper):
    seed(store, 4, tags=("beach",))
    cursor = get("/images", query={"tag": "beach", "limit": "2"}).json["next"]

    answer = get("/images", query={"cursor": tamper(cursor)})

    assert (answer.status, answer.json["error"]["code"]) == (400, "invalid_cursor")


def test_a_tag_cursor_cannot_page_another_tag(store):
    seed(store, 4, tags=("beach",))
    cursor = get("/images", query={"tag": "beach", "limit": "2"}).json["next"]

    answer = get("/images", query={"tag": "city", "cursor": cursor})

    assert answer.status == 400
    assert "different listing" in answer.json["error"]["message"]


def test_expired_cursor_is_a_bad_request(store, monkeypatch):
    seed(store, 3)
    cursor = get("/images", query={"limit": "1"}).json["next"]
    issued = time.time()
    monkeypatch.setattr(api, "clock", lambda: issued + api.CURSOR_TTL_SECONDS + api.CURSOR_EXPIRY_STEP)

    answer = get("/images", query={"limit": "1", "cursor": cursor})

    assert (answer.status, answer.json["error"]["code"]) == (400, "invalid_cursor")
    assert "expired" in answer.json["error"]["message"]


def test_cursor_still_works_a_day_later(store, monkeypatch):
    ids = seed(store, 3)
    cursor = get("/images", query={"limit": "1"}).json["next"]
    issued = time.time()
    monkeypatch.setattr(api, "clock", lambda: issued + api.CURSOR_TTL_SECONDS - 1)

    answer = get("/images", query={"limit": "1", "cursor": cursor})

    assert [item["id"] for item in answer.json["items"]] == ids[1:2]


def test_cursor_signed_with_another_secret_is_a_bad_request(store):
    position = {"pk": "IMAGE#x", "sk": records.IMAGE_SK, "listed_pk": "ALL", "created_sk": "x"}
    foreign = Settings(secret="someone else's secret")
    cursor = api.encode_cursor(position, api.listing_scope(records.LISTED_ALL), foreign)

    answer = get("/images", query={"cursor": cursor})

    assert (answer.status, answer.json["error"]["code"]) == (400, "invalid_cursor")


@pytest.mark.parametrize(("method", "path"), [("POST", "/images"), ("DELETE", "/images/" + "a" * 26)])
def test_unsupported_method_is_405_with_allow(store, method, path):
    answer = get(path, method=method)

    assert (answer.status, answer.json["error"]["code"], answer.headers["Allow"]) == (405, "method_not_allowed", "GET")


def test_post_event_from_api_gateway_is_405(store):
    answer = invoke(json.loads((EVENTS / "http_api_post_images.json").read_text()))

    assert answer.status == 405


@pytest.mark.parametrize("path", ["/photos", "/images/a/b"])
def test_unknown_route_is_404_in_json(store, path):
    answer = get(path)

    assert (answer.status, answer.json["error"]["code"]) == (404, "route_not_found")


def test_unexpected_failure_is_a_generic_500_and_the_trace_is_logged(aws, monkeypatch, caplog):
    # A real failure, not a mock: the function is pointed at a table that does not exist.
    monkeypatch.setattr(image_api, "aws", Aws(dataclasses.replace(aws.settings, table="no-such-table")))

    answer = get("/images")

    assert (answer.status, answer.json["error"]["code"]) == (500, "internal_error")
    assert "ResourceNotFoundException" not in answer.text
    logged = [record.exc_info[0].__name__ for record in caplog.records if record.exc_info]
    assert logged == ["ResourceNotFoundException"]


# -- HTTP caching -------------------------------------------------------------------------------------------


def test_matching_if_none_match_gets_304_without_a_body(store):
    seed(store, 3)
    first = get("/images")

    again = get("/images", headers={"If-None-Match": first.headers["ETag"]})

    assert (again.status, again.text, again.headers["ETag"]) == (304, "", first.headers["ETag"])


def test_unchanged_page_with_a_next_cursor_gets_304_when_asked_again_later(store, monkeypatch):
    # The cursor inside the page is re-signed on every request: its expiry must not change the bytes.
    seed(store, 5)
    monkeypatch.setattr(api, "clock", lambda: 1_800_000_100.0)
    first = get("/images", query={"limit": "2"})
    monkeypatch.setattr(api, "clock", lambda: 1_800_000_100.0 + 59)

    again = get("/images", query={"limit": "2"}, headers={"If-None-Match": first.headers["ETag"]})

    assert first.json["next"] is not None
    assert again.status == 304


def test_weak_or_listed_etags_also_match(store):
    record = store.create(ready_record(1))
    etag = get(f"/images/{record.id}").headers["ETag"]

    again = get(f"/images/{record.id}", headers={"If-None-Match": f'"other", W/{etag}'})

    assert again.status == 304


def test_changed_image_gets_a_new_etag_and_a_full_answer(store):
    record = store.create(ready_record(1))
    etag = get(f"/images/{record.id}").headers["ETag"]
    store.update(record.id, lambda current: current.replace(title="Renamed"))

    again = get(f"/images/{record.id}", headers={"If-None-Match": etag})

    assert (again.status, again.json["title"]) == (200, "Renamed")
    assert again.headers["ETag"] != etag


def test_cache_control_is_short_for_lists_longer_for_ready_images_and_off_while_processing(store):
    ready = store.create(ready_record(1)).id
    processing = keys.new_image_id()
    store.create(records.new_record(processing, keys.raw_key_for_upload(processing, "a.jpg"), Status.PROCESSING))

    assert get("/images").headers["Cache-Control"] == "public, max-age=30"
    assert get(f"/images/{ready}").headers["Cache-Control"] == "public, max-age=120"
    assert get(f"/images/{processing}").headers["Cache-Control"] == "no-store"
    assert get(f"/images/{keys.new_image_id()}").headers["Cache-Control"] == "no-store"


# -- CORS ---------------------------------------------------------------------------------------------------


def test_cors_headers_are_sent_to_the_gallery_origin(store):
    answer = get("/images", headers={"Origin": GALLERY_ORIGIN})

    assert answer.headers["Access-Control-Allow-Origin"] == GALLERY_ORIGIN
    assert "ETag" in answer.headers["Access-Control-Expose-Headers"]
    assert answer.headers["Vary"] == "Origin"


def test_no_cors_headers_for_other_origins(store):
    answer = get("/images", headers={"Origin": "https://evil.example"})

    assert "Access-Control-Allow-Origin" not in answer.headers


def test_preflight_from_the_gallery_is_allowed(store):
    answer = invoke(json.loads((EVENTS / "http_api_preflight.json").read_text()))

    assert answer.status == 204
    assert answer.headers["Access-Control-Allow-Origin"] == GALLERY_ORIGIN
    assert "GET" in answer.headers["Access-Control-Allow-Methods"]
    assert "If-None-Match" in answer.headers["Access-Control-Allow-Headers"]


def test_avif_is_offered_first_where_it_is_the_smallest_file(store, pipeline_settings):
    plain = ready_record(2)
    with_avif = (
        *plain.renditions,
        *(
            r.replace(
                format="avif", key=r.key.rsplit(".", 1)[0] + ".avif", bytes=r.bytes // 2 if r.width >= 960 else 10**6
            )
            for r in plain.renditions
            if r.format == "jpeg"
        ),
    )
    record = store.create(plain.replace(renditions=with_avif))

    document = get(f"/images/{record.id}").json

    base = f"{pipeline_settings.cdn_url}/optimized/{record.id}/{VERSION}"
    assert list(document["srcset"]) == ["avif", "webp", "jpeg"]
    assert document["srcset"]["avif"] == ", ".join(
        [f"{base}-320.jpg 320w", f"{base}-480.jpg 480w", f"{base}-640.webp 640w"]
        + [f"{base}-{w}.avif {w}w" for w in (960, 1280, 1920)]
    )
    assert [s["format"] for s in document["sources"] if s["width"] == 1920] == ["avif", "webp", "jpeg"]
