"""make run's front door (local_stack.front_door): routed, cached, compressed and invalidated as CloudFront will be.

The first part drives the front door with scripted origins; the second puts it in front of the real Django app
(pytest-django's live server), the bucket on moto and the read API Lambda, as ``make run`` does.
"""

from __future__ import annotations

import gzip
import http.client
import json
import re
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from test_api import http_event

from lambdas.image_api import handler as image_api
from local_stack import front_door, load
from local_stack.cdn import PublicBucket
from local_stack.config import LocalConfig
from local_stack.front_door import (
    CLOUDFRONT_API_PREFIX,
    DISTRIBUTION_ID,
    ApiLambdaOrigin,
    BucketOrigin,
    FrontDoor,
    FrontDoorServer,
    HttpOrigin,
    OriginRequest,
    OriginResponse,
    ViewerRequest,
    ViewerResponse,
)
from local_stack.stack import local_environment
from local_stack.template import read_stack_names
from pipeline import keys, visibility
from pipeline.config import Settings
from pipeline.store import IMMUTABLE_CACHE_CONTROL, Aws, CloudFrontCdn
from tests.test_gallery_pages import ready_record

PAGE = (("Content-Type", "text/html; charset=utf-8"), ("Cache-Control", "public, max-age=60"), ("Vary", "Cookie"))
BIG_TEXT = b"<p>" + b"a photo gallery " * 200 + b"</p>"


@dataclass
class Scripted:
    """An origin that answers with ``answer(request)`` and remembers every request it was sent."""

    answer: Callable[[OriginRequest], OriginResponse] = lambda _: OriginResponse(200, PAGE, BIG_TEXT)
    requests: list[OriginRequest] = field(default_factory=list)

    def fetch(self, request: OriginRequest) -> OriginResponse:
        self.requests.append(request)
        return self.answer(request)


@pytest.fixture
def now(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The front door's clock, moved by the test (``now[0] += 61``)."""
    clock = [1000.0]
    monkeypatch.setattr(front_door, "clock", lambda: clock[0])
    return clock


@pytest.fixture
def app() -> Scripted:
    return Scripted()


@pytest.fixture
def door(app: Scripted, now: list[float]) -> FrontDoor:
    return FrontDoor({"app": app, "bucket": Scripted(), "api": Scripted()})


def get(door: FrontDoor, target: str, *headers: tuple[str, str], method: str = "GET") -> ViewerResponse:
    return door.serve(ViewerRequest(method, target, (("Host", "127.0.0.1:8000"), *headers)))


def x_cache(response: ViewerResponse) -> str:
    return (response.header("X-Cache") or "").split()[0]


def answering(status: int = 200, *headers: tuple[str, str], body: bytes = BIG_TEXT) -> Scripted:
    return Scripted(lambda _: OriginResponse(status, headers, body))


# -- caching as Cache-Control says -----------------------------------------------------------------------------------


def test_a_second_get_within_max_age_is_answered_without_the_origin(door, app, now):
    first = get(door, "/")
    now[0] += 59
    second = get(door, "/")

    assert [x_cache(first), x_cache(second)] == ["Miss", "Hit"]
    assert len(app.requests) == 1
    assert second.header("Age") == "59"
    assert door.stats.snapshot()["origin_requests"] == 1


def test_after_max_age_the_next_request_goes_to_the_origin(door, app, now):
    get(door, "/")
    now[0] += 61

    assert x_cache(get(door, "/")) == "Miss"
    assert len(app.requests) == 2


def test_s_maxage_is_what_a_shared_cache_obeys(now):
    app = answering(200, ("Cache-Control", "public, max-age=600, s-maxage=5"))
    door = FrontDoor({"app": app, "bucket": Scripted(), "api": Scripted()})
    get(door, "/")
    now[0] += 6
    get(door, "/")

    assert len(app.requests) == 2


@pytest.mark.parametrize(
    "headers",
    [
        (("Cache-Control", "private, no-store"),),
        (("Cache-Control", "no-store"),),
        (("Cache-Control", "no-cache"),),
        (("Cache-Control", "public, max-age=0"),),
        (),  # nothing said: the pages' default TTL is 0
        (("Cache-Control", "public, max-age=60"), ("Set-Cookie", "sessionid=abc; HttpOnly")),
        (("Cache-Control", "public, max-age=60"), ("Vary", "*")),
    ],
    ids=["private", "no-store", "no-cache", "max-age=0", "silent", "set-cookie", "vary-star"],
)
def test_answers_a_shared_cache_may_not_keep_are_never_served_twice(now, headers):
    app = answering(200, *headers)
    door = FrontDoor({"app": app, "bucket": Scripted(), "api": Scripted()})

    answers = [get(door, "/") for _ in range(3)]

    assert len(app.requests) == 3
    assert {x_cache(answer) for answer in answers} == {"Miss"}


def test_server_errors_are_not_kept(now):
    app = answering(500, ("Cache-Control", "public, max-age=60"))
    door = FrontDoor({"app": app, "bucket": Scripted(), "api": Scripted()})
    get(door, "/")
    get(door, "/")

    assert len(app.requests) == 2


def test_a_request_with_a_session_cookie_is_never_answered_from_the_cache_nor_stored(door, app):
    anonymous = get(door, "/")
    logged_in = [get(door, "/", ("Cookie", f"sessionid=alice; csrftoken=t{n}")) for n in range(2)]
    after = get(door, "/")

    assert [x_cache(r) for r in (anonymous, *logged_in, after)] == ["Miss", "Miss", "Miss", "Hit"]
    assert [request.header("Cookie") for request in app.requests] == [None, "sessionid=alice; csrftoken=t0",
                                                                     "sessionid=alice; csrftoken=t1"]


def test_the_messages_cookie_makes_a_request_personal_too(door, app):
    get(door, "/")
    get(door, "/", ("Cookie", "messages=abc"))

    assert len(app.requests) == 2


def test_anonymous_visitors_with_only_a_csrf_cookie_share_the_cached_page(door, app):
    get(door, "/")
    shared = get(door, "/", ("Cookie", "csrftoken=abc"))

    assert x_cache(shared) == "Hit"


def test_a_head_is_answered_from_what_a_get_kept(door, app):
    get(door, "/")
    head = get(door, "/", method="HEAD")

    assert (x_cache(head), head.body, head.length) == ("Hit", b"", len(BIG_TEXT))
    assert len(app.requests) == 1


# -- what is forwarded, and the cache key ------------------------------------------------------------------------


def test_pages_get_only_the_session_csrf_and_messages_cookies_and_their_own_query_parameters(door, app):
    cookies = "sessionid=s; csrftoken=c; messages=m; _ga=tracker; theme=dark"
    get(door, "/?tag=beach&utm_source=news&cursor=abc&prev=p1&prev=p2", ("Cookie", cookies), ("Accept-Language", "de"))

    (sent,) = app.requests
    assert sent.header("Cookie") == "sessionid=s; csrftoken=c; messages=m"
    assert sent.query == "tag=beach&cursor=abc&prev=p1&prev=p2"
    assert sent.header("Accept-Language") is None
    assert sent.header("Host") == "127.0.0.1:8000"


def test_query_parameters_outside_the_key_neither_reach_the_origin_nor_split_the_cache(door, app):
    get(door, "/?tag=beach")
    again = get(door, "/?tag=beach&utm_source=news&fbclid=x")
    other_tag = get(door, "/?tag=city")

    assert [x_cache(again), x_cache(other_tag)] == ["Hit", "Miss"]
    assert [request.query for request in app.requests] == ["tag=beach", "tag=city"]


def test_images_and_the_api_get_no_cookies_and_only_their_own_query_parameters(now):
    bucket = answering(200, ("Content-Type", "image/webp"), ("Cache-Control", IMMUTABLE_CACHE_CONTROL))
    api = answering(200, ("Content-Type", "application/json"), ("Cache-Control", "public, max-age=30"))
    door = FrontDoor({"app": Scripted(), "bucket": bucket, "api": api})
    cookie = ("Cookie", "sessionid=s; csrftoken=c")

    get(door, "/thumbs/abc/v-384x288.webp?v=2", cookie)
    get(door, "/api/images?limit=5&tag=beach&cursor=c&callback=x&debug=1", cookie)

    assert (bucket.requests[0].header("Cookie"), bucket.requests[0].query) == (None, "")
    assert (api.requests[0].header("Cookie"), api.requests[0].query) == (None, "limit=5&tag=beach&cursor=c")
    # A session cookie does not make an image or an API answer personal: none of them reads it.
    assert x_cache(get(door, "/thumbs/abc/v-384x288.webp", cookie)) == "Hit"


@pytest.mark.parametrize("path", ["/admin/gallery/image/", "/accounts/login/", "/upload/", "/upload/policy/"])
def test_login_admin_and_upload_get_everything_django_needs_and_are_never_cached(door, app, path):
    post = door.serve(
        ViewerRequest(
            "POST",
            f"{path}?next=/x",
            (("Host", "127.0.0.1:8000"), ("Cookie", "sessionid=s; csrftoken=c; other=1"), ("X-CSRFToken", "t")),
            b"a=1",
        )
    )
    get(door, path)
    get(door, path)

    sent = app.requests[0]
    assert (sent.method, sent.query, sent.body) == ("POST", "next=/x", b"a=1")
    assert sent.header("Cookie") == "sessionid=s; csrftoken=c; other=1"
    assert sent.header("X-CSRFToken") == "t"
    assert len(app.requests) == 3
    assert x_cache(post) == "Miss"


def test_pages_refuse_other_methods_as_cloudfront_does(door, app):
    response = get(door, "/", method="POST")

    assert response.status == 403
    assert app.requests == []


def test_vary_origin_keeps_one_copy_per_origin(now):
    def by_origin(request: OriginRequest) -> OriginResponse:
        origin = request.header("Origin") or ""
        headers = (("Cache-Control", "public, max-age=30"), ("Vary", "Origin"), ("Access-Control-Allow-Origin", origin))
        return OriginResponse(200, headers, b"{}")

    api = Scripted(by_origin)
    door = FrontDoor({"app": Scripted(), "bucket": Scripted(), "api": api})
    seen = [
        get(door, "/api/images", *((("Origin", origin),) if origin else ())).header("Access-Control-Allow-Origin")
        for origin in ("https://a.example", "https://b.example", "https://a.example", None, None)
    ]

    assert seen == ["https://a.example", "https://b.example", "https://a.example", "", ""]
    assert len(api.requests) == 3


# -- the edge's own work -----------------------------------------------------------------------------------------


def test_text_is_gzipped_for_clients_that_accept_it(door):
    plain = get(door, "/")
    zipped = get(door, "/", ("Accept-Encoding", "gzip, deflate, br"))
    refused = get(door, "/", ("Accept-Encoding", "gzip;q=0, identity"))

    assert plain.body == refused.body == BIG_TEXT
    assert zipped.header("Content-Encoding") == "gzip"
    assert gzip.decompress(zipped.body) == BIG_TEXT
    assert zipped.length < len(BIG_TEXT) / 5
    assert "Accept-Encoding" in (plain.header("Vary") or "")


def test_images_and_tiny_answers_are_not_compressed(now):
    bucket = answering(200, ("Content-Type", "image/jpeg"), ("Cache-Control", "max-age=60"), body=b"\xff" * 5000)
    app = answering(200, ("Content-Type", "text/html"), ("Cache-Control", "max-age=60"), body=b"<p>tiny</p>")
    door = FrontDoor({"app": app, "bucket": bucket, "api": Scripted()})
    accept = ("Accept-Encoding", "gzip")

    assert get(door, "/thumbs/a/b.jpg", accept).header("Content-Encoding") is None
    assert get(door, "/", accept).header("Content-Encoding") is None


def test_conditional_requests_are_answered_at_the_edge(now):
    bucket = answering(200, ("Content-Type", "image/webp"), ("Cache-Control", "max-age=600"), ("ETag", '"v1"'))
    door = FrontDoor({"app": Scripted(), "bucket": bucket, "api": Scripted()})
    get(door, "/thumbs/a/b.webp")

    unchanged = get(door, "/thumbs/a/b.webp", ("If-None-Match", '"v1"'))
    changed = get(door, "/thumbs/a/b.webp", ("If-None-Match", '"v0"'))

    assert (unchanged.status, unchanged.body, changed.status) == (304, b"", 200)
    assert len(bucket.requests) == 1
    assert bucket.requests[0].header("If-None-Match") is None  # the viewer's validators stay at the edge


def test_stale_while_revalidate_serves_the_kept_copy_while_one_request_refreshes_it(now):
    versions = iter([b"old", b"new"])
    headers = (("Cache-Control", "public, max-age=60, stale-while-revalidate=60"),)
    app = Scripted(lambda _: OriginResponse(200, headers, next(versions)))
    door = FrontDoor({"app": app, "bucket": Scripted(), "api": Scripted()})
    get(door, "/")
    now[0] += 90

    stale = get(door, "/")
    deadline = time.monotonic() + 5
    while len(app.requests) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.05)  # let the refresh store its answer
    refreshed = get(door, "/")

    assert (x_cache(stale), stale.body) == ("Hit", b"old")
    assert (x_cache(refreshed), refreshed.body) == ("Hit", b"new")
    assert len(app.requests) == 2


def test_an_expired_copy_with_an_etag_is_revalidated_not_fetched_again(now):
    def answer(request: OriginRequest) -> OriginResponse:
        if request.header("If-None-Match") == '"v1"':
            return OriginResponse(304, (("Cache-Control", "max-age=60"), ("ETag", '"v1"')))
        return OriginResponse(200, (("Cache-Control", "max-age=60"), ("ETag", '"v1"')), b"photo")

    bucket = Scripted(answer)
    door = FrontDoor({"app": Scripted(), "bucket": bucket, "api": Scripted()})
    get(door, "/optimized/a/v-320.jpg")
    now[0] += 61
    refreshed = get(door, "/optimized/a/v-320.jpg")
    now[0] += 30
    kept = get(door, "/optimized/a/v-320.jpg")

    assert (x_cache(refreshed), refreshed.body, x_cache(kept)) == ("RefreshHit", b"photo", "Hit")
    assert len(bucket.requests) == 2


def test_concurrent_misses_for_one_page_make_one_origin_request(now):
    release = threading.Event()

    def slow(_: OriginRequest) -> OriginResponse:
        release.wait(5)
        return OriginResponse(200, PAGE, BIG_TEXT)

    app = Scripted(slow)
    door = FrontDoor({"app": app, "bucket": Scripted(), "api": Scripted()})
    answers: list[ViewerResponse] = []
    visitors = [threading.Thread(target=lambda: answers.append(get(door, "/"))) for _ in range(8)]
    for visitor in visitors:
        visitor.start()
    time.sleep(0.2)
    release.set()
    for visitor in visitors:
        visitor.join(10)

    assert len(app.requests) == 1
    assert sorted(x_cache(answer) for answer in answers) == ["Hit"] * 7 + ["Miss"]


# -- invalidation and its own endpoints ----------------------------------------------------------------------------


@pytest.fixture
def served(door: FrontDoor) -> Iterator[FrontDoorServer]:
    server = FrontDoorServer(0, door)
    server.start()
    yield server
    server.stop()


def cloudfront(server: FrontDoorServer) -> Any:
    """boto3's CloudFront client, as the app builds it, pointed at the front door (AWS_ENDPOINT_URL_CLOUDFRONT)."""
    return boto3.client(
        "cloudfront",
        endpoint_url=server.url + CLOUDFRONT_API_PREFIX,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )


def test_the_apps_cloudfront_invalidation_drops_those_paths_from_the_cache(served, door):
    door.origins["bucket"] = answering(200, ("Content-Type", "image/jpeg"), ("Cache-Control", IMMUTABLE_CACHE_CONTROL))
    paths = ["/thumbs/a/v-256x192.jpg", "/optimized/a/v-320.jpg", "/thumbs/b/v-256x192.jpg"]
    for path in paths:
        get(door, path)

    invalidation = CloudFrontCdn(cloudfront(served), DISTRIBUTION_ID).invalidate(["/thumbs/a/*", "/optimized/a/*"])

    assert (invalidation or "").startswith("I")
    assert [x_cache(get(door, path)) for path in paths] == ["Miss", "Miss", "Hit"]
    assert door.stats.snapshot()["invalidated_paths"] == 2


def test_an_unknown_distribution_is_refused_as_cloudfront_refuses_it(served):
    with pytest.raises(cloudfront(served).exceptions.NoSuchDistribution):
        CloudFrontCdn(cloudfront(served), "EOTHER").invalidate(["/thumbs/a/*"])


def test_an_answer_fetched_while_its_path_was_invalidated_is_not_kept(now):
    bucket = Scripted()
    door = FrontDoor({"app": Scripted(), "bucket": bucket, "api": Scripted()})

    def invalidated_meanwhile(request: OriginRequest) -> OriginResponse:
        door.cache.invalidate(["/thumbs/a/*"])
        return OriginResponse(200, (("Cache-Control", "max-age=600"),), b"photo")

    bucket.answer = invalidated_meanwhile
    get(door, "/thumbs/a/v-256x192.jpg")
    get(door, "/thumbs/a/v-256x192.jpg")

    assert len(bucket.requests) == 2


def test_stats_and_x_cache_count_what_reached_the_origin(served):
    connection = http.client.HTTPConnection("127.0.0.1", served.port, timeout=10)
    seen = []
    for _ in range(3):  # one keep-alive connection, as browsers and the load test use
        connection.request("GET", "/", headers={"Accept-Encoding": "gzip"})
        response = connection.getresponse()
        response.read()
        seen.append(response.headers["X-Cache"])
    connection.request("GET", front_door.STATS_PATH)
    stats = json.loads(connection.getresponse().read())

    assert seen == ["Miss from front-door", "Hit from front-door", "Hit from front-door"]
    assert (stats["requests"], stats["hits"], stats["origin_requests"], stats["by_origin"]) == (3, 2, 1, {"app": 1})


def test_make_run_points_the_pages_and_the_apps_invalidations_at_the_front_door(monkeypatch):
    config = LocalConfig(web_port=8123, django_port=8124)
    env = local_environment({"CDN_URL": "https://elsewhere.example"}, config, read_stack_names("us-east-1"))
    for name, value in env.items():
        monkeypatch.setenv(name, value)

    cdn = Aws(Settings.from_env(env)).cdn()

    assert (env["CDN_URL"], env["CSRF_TRUSTED_ORIGINS"]) == (
        "http://127.0.0.1:8123",
        "http://127.0.0.1:8123,http://localhost:8123",
    )
    assert isinstance(cdn, CloudFrontCdn)
    assert cdn.distribution_id == DISTRIBUTION_ID
    assert cdn.client.meta.endpoint_url == "http://127.0.0.1:8123" + CLOUDFRONT_API_PREFIX


# -- the read API origin ---------------------------------------------------------------------------------------------


def test_the_api_is_invoked_with_api_gateways_event_and_unknown_routes_never_reach_it():
    events: list[dict[str, Any]] = []

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        events.append(event)
        return {"statusCode": 200, "headers": {"Content-Type": "application/json"}, "body": "{}", "cookies": []}

    origin = ApiLambdaOrigin(handler, front_door.api_function("us-east-1"))
    request = OriginRequest("GET", "/api/images", "limit=5&tag=a&tag=b", (("Host", "x"), ("Origin", "https://o")))

    assert origin.fetch(request).status == 200
    assert origin.fetch(OriginRequest("GET", "/api/images/abc", "")).status == 200
    assert origin.fetch(OriginRequest("GET", "/api/somewhere/else", "")).body == b'{"message":"Not Found"}'
    listing, one = events
    assert shape(listing) == shape(http_event("/images", query={"limit": "5"}))
    assert (listing["rawPath"], listing["routeKey"], listing["queryStringParameters"]) == (
        "/images",
        "ANY /images",
        {"limit": "5", "tag": "a,b"},
    )
    assert listing["headers"]["origin"] == "https://o"
    assert (one["routeKey"], one["pathParameters"]) == ("ANY /images/{id}", {"id": "abc"})


def shape(value: Any) -> Any:
    """The keys of an event, recursively; headers and parameters are maps whose keys vary with the request."""
    if isinstance(value, dict):
        return {
            key: "map" if key in {"headers", "queryStringParameters"} else shape(item)
            for key, item in value.items()
            if key != "pathParameters"
        }
    return type(value).__name__


# -- in front of the real app --------------------------------------------------------------------------------------

PASSWORD = "a-long-and-uncommon-passphrase"


@pytest.fixture
def site(site_aws, live_server, transactional_db, monkeypatch) -> Iterator[FrontDoorServer]:
    """The front door as make run builds it: Django (the live server), the bucket on moto, the API Lambda."""
    monkeypatch.setattr(image_api, "aws", site_aws)
    door = FrontDoor(
        {
            "app": HttpOrigin(live_server.url),
            "bucket": BucketOrigin(PublicBucket(site_aws.s3, site_aws.settings.bucket)),
            "api": ApiLambdaOrigin(image_api.handler, front_door.api_function("us-east-1")),
        }
    )
    server = FrontDoorServer(0, door)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def picture(site_aws) -> Any:
    """A ready image whose rendition files are in the bucket, as the processor leaves them."""
    record = site_aws.image_store().create(ready_record(1, tags=("beach",)))
    for rendition in record.renditions:
        site_aws.s3.put_object(
            Bucket=site_aws.settings.bucket,
            Key=rendition.key,
            Body=b"\xff\xd8 not really a photo",
            ContentType=rendition.content_type,
            CacheControl=IMMUTABLE_CACHE_CONTROL,
        )
    return record


@dataclass
class Visitor:
    """A browser without JavaScript: keeps its cookies, follows no redirects."""

    site: FrontDoorServer
    cookies: dict[str, str] = field(default_factory=dict)

    def request(self, method: str, path: str, form: dict[str, str] | None = None) -> tuple[int, Any, str]:
        connection = http.client.HTTPConnection("127.0.0.1", self.site.port, timeout=30)
        headers = {"Host": f"127.0.0.1:{self.site.port}", "Accept-Encoding": "gzip"}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{name}={value}" for name, value in self.cookies.items())
        body = urllib.parse.urlencode(form).encode() if form is not None else None
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        raw = response.read()
        if response.headers.get("Content-Encoding") == "gzip":
            raw = gzip.decompress(raw)
        for cookie in response.headers.get_all("Set-Cookie") or []:
            name, _, rest = cookie.partition("=")
            value = rest.split(";")[0]
            if "expires=Thu, 01 Jan 1970" in cookie:
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = value
        return response.status, response.headers, raw.decode(errors="replace")

    def get(self, path: str) -> tuple[int, Any, str]:
        return self.request("GET", path)

    def log_in(self, username: str) -> None:
        self.get("/accounts/login/")
        form = {"username": username, "password": PASSWORD, "csrfmiddlewaretoken": self.cookies["csrftoken"]}
        status, _, _ = self.request("POST", "/accounts/login/", form)
        assert (status, "sessionid" in self.cookies) == (302, True), "the login did not take"


def origin_requests(site: FrontDoorServer) -> int:
    return site.front_door.stats.snapshot()["origin_requests"]


def test_a_second_anonymous_visit_of_the_gallery_a_detail_page_and_the_api_makes_no_origin_request(site, picture):
    visitor = Visitor(site)
    paths = ["/", f"/images/{picture.id}/", "/api/images"]
    first = {path: visitor.get(path) for path in paths}
    before = origin_requests(site)
    second = {path: Visitor(site).get(path) for path in paths}

    assert origin_requests(site) == before
    for path in paths:
        assert first[path][0] == second[path][0] == 200, path
        assert first[path][1]["X-Cache"] == "Miss from front-door", path
        assert second[path][1]["X-Cache"] == "Hit from front-door", path
        assert second[path][2] == first[path][2], path
    assert picture.id in second["/"][2]


def test_a_logged_in_page_is_never_served_from_the_cache_to_anyone_else(site, picture, django_user_model):
    """A logs in through the front door and looks around; anonymous visitors and B come after (and before):
    every answer to a logged-in person is private and theirs, every anonymous answer is public and holds nothing
    of A's, and no anonymous answer carries a cookie."""
    for name in ("alice", "bob"):
        django_user_model.objects.create_user(name, password=PASSWORD)
    alice, bob = Visitor(site), Visitor(site)
    alice.log_in("alice")
    bob.log_in("bob")
    pages = ["/", "/?tag=beach", f"/images/{picture.id}/", "/upload/"]

    for path in pages:
        early = Visitor(site).get(path)
        for name, visitor in (("alice", alice), ("bob", bob)):
            status, headers, html = visitor.get(path)
            assert status == 200, (name, path)
            assert headers["Cache-Control"] == "private, no-store", (name, path)
            assert headers["X-Cache"] == "Miss from front-door", (name, path)
            assert f"Log out {name}" in html, (name, path)
            other = "bob" if name == "alice" else "alice"
            assert f"Log out {other}" not in html, (name, path)
        for status, headers, html in (early, Visitor(site).get(path)):
            if path == "/upload/":
                assert (status, headers["Cache-Control"]) == (302, "private, no-store")
                continue
            assert (status, headers["Cache-Control"]) == (200, "public, max-age=60, stale-while-revalidate=60"), path
            assert headers.get_all("Set-Cookie") is None, path
            assert not {"alice", "bob"} & set(re.findall(r"[a-z]+", html.lower())), path
            assert not re.search(r'csrfmiddlewaretoken|name="csrf-token"', html), path


def test_a_hidden_images_renditions_are_gone_from_the_front_door_right_after_hide(site, site_aws, picture):
    visitor = Visitor(site)
    paths = [f"/{keys.cdn_path(rendition.key)}" for rendition in picture.renditions]
    assert {visitor.get(path)[0] for path in paths} == {200}
    assert {visitor.get(path)[1]["X-Cache"] for path in paths} == {"Hit from front-door"}

    cdn = CloudFrontCdn(cloudfront(site), DISTRIBUTION_ID)  # what the app builds from the local environment
    visibility.set_hidden(site_aws.image_store(), site_aws.object_store(), cdn, picture.id, True)

    assert {visitor.get(path)[0] for path in paths} == {404}


# -- the load test -----------------------------------------------------------------------------------------------


def test_the_load_test_counts_origin_requests_against_what_it_sent(served, door):
    documents = [
        {
            "id": image_id,
            "tags": ["beach"],
            "optimized": f"{served.url}/optimized/{image_id}/v-1280.jpg",
            "thumbnail": f"{served.url}/thumbs/{image_id}/v-384x288.jpg",
            "sources": [
                {"name": "thumb", "width": 560, "url": f"{served.url}/thumbs/{image_id}/v-560x420.webp"},
            ],
        }
        for image_id in ("a", "b", "c")
    ]
    listing = json.dumps({"items": documents, "next": None}).encode()
    api_headers = (("Content-Type", "application/json"), ("Cache-Control", "public, max-age=30"))
    door.origins["api"] = answering(200, *api_headers, body=listing)
    door.origins["bucket"] = answering(200, ("Content-Type", "image/jpeg"), ("Cache-Control", IMMUTABLE_CACHE_CONTROL))

    report = load.run(served.url, requests=400, clients=8, seed=1)
    summary = report.summary()

    assert (summary["requests"], summary["errors"], summary["statuses"]) == (400, 0, {200: 400})
    assert summary["origin_requests"] == summary["x_cache"]["Miss"] <= summary["distinct_urls"]
    assert summary["origin_hit_ratio"] == summary["origin_requests"] / 400 < 0.1


def test_the_load_test_refuses_to_leave_this_machine():
    with pytest.raises(SystemExit) as refused:
        load.main(["--url", "http://example.com"])

    assert refused.value.code == 2
