"""``make run``'s CloudFront: the whole site on one port, routed, cached and compressed as the distribution will be.

Behaviours, first match wins (CloudFront's path patterns, in the order infra/ lists them):

| paths | origin | cookies forwarded | query string (forwarded, in the key) | cached |
| --- | --- | --- | --- | --- |
| ``/static/*`` | Django's WhiteNoise (S3's ``static/`` in AWS) | none | none | as the origin says |
| ``/thumbs/*``, ``/optimized/*`` | the bucket's ``public/`` prefix (local_stack.cdn) | none | none | as S3 says |
| ``/api/*`` | the read API Lambda, invoked with API Gateway's event | none | limit, cursor, tag, sort | as it says |
| ``/admin/*``, ``/accounts/*``, ``/upload/*``, ``/my/*`` | Django, every method and header | all | all | never |
| everything else (pages) | Django, GET and HEAD | session, CSRF, messages | tag, sort, cursor, prev | anonymous only |

Caching as CloudFront does it: an answer is kept for its ``s-maxage``, else ``max-age``, else the behaviour's default
TTL (S3 objects without Cache-Control: a day; everything else: not at all), and then served stale for its
``stale-while-revalidate`` while one request fetches it again. Never kept: ``private``, ``no-store``, ``no-cache``,
any Set-Cookie, ``Vary: *``, server errors. ``Vary`` is honoured on what the origin was sent (``Origin`` on
``/api/*``; ``Cookie`` on the cookies in the cache key). A request that carries the session or messages cookie is
never answered from the cache nor stored, and concurrent misses for one key make one origin request (CloudFront's
request collapsing). Conditional requests are answered at the edge (304), an expired copy with an ETag is revalidated
(``RefreshHit``), text is gzipped for clients that accept it (Brotli too in AWS; no Brotli package is pinned here).
Every answer says ``X-Cache: Hit|RefreshHit|Miss from front-door``; ``GET /_front-door/stats`` counts requests,
hits and origin requests; ``/_front-door/cloudfront/`` answers CloudFront's CreateInvalidation API, so the app's
own ``CloudFrontCdn`` (hide, delete, trash) takes files off this cache as it takes them off CloudFront.

Where it differs: the app origin is sent the viewer's Host (API Gateway would get its own, so infra/ must pass the
site's host another way), the read API is invoked one event at a time (one warm instance) with ``/api`` taken off
the path, and the cache lives in memory (bounded, least recently used first out) until the stack stops.
"""

from __future__ import annotations

import base64
import fnmatch
import gzip
import http.client
import json
import logging
import re
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from email.utils import formatdate, parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Final, Protocol
from urllib.parse import parse_qsl, urlencode, urlsplit
from xml.sax.saxutils import escape, unescape

from local_stack.cdn import PublicBucket
from local_stack.config import LOCALHOST
from local_stack.lambda_runtime import FunctionSettings, LambdaContext
from local_stack.template import ACCOUNT_ID, STAGE

log = logging.getLogger(__name__)

SERVED_BY: Final = "front-door"
CONTROL_PREFIX: Final = "/_front-door"
STATS_PATH: Final = CONTROL_PREFIX + "/stats"
# boto3's CloudFront client is pointed here (AWS_ENDPOINT_URL_CLOUDFRONT) with this distribution id
# (CDN_DISTRIBUTION_ID): the app invalidates the local cache with the code it runs in AWS.
CLOUDFRONT_API_PREFIX: Final = CONTROL_PREFIX + "/cloudfront"
DISTRIBUTION_ID: Final = "ELOCALFRONTDOOR"
_CLOUDFRONT_NS: Final = "http://cloudfront.amazonaws.com/doc/2020-05-31/"
_INVALIDATION_PATH: Final = re.compile(
    re.escape(CLOUDFRONT_API_PREFIX) + r"/2020-05-31/distribution/(?P<distribution>[^/]+)/invalidation"
)

# Django's cookie names (settings keep its defaults).
SESSION_COOKIE: Final = "sessionid"
CSRF_COOKIE: Final = "csrftoken"
MESSAGES_COOKIE: Final = "messages"

READ: Final = frozenset({"GET", "HEAD"})
READ_AND_OPTIONS: Final = READ | {"OPTIONS"}
ALL_METHODS: Final = READ_AND_OPTIONS | {"POST", "PUT", "PATCH", "DELETE"}
# What CloudFront caches when the origin allows it (its "cacheable status codes" and error codes, minus 5xx).
CACHEABLE_STATUSES: Final = frozenset({200, 203, 204, 300, 301, 302, 307, 308, 400, 403, 404, 405, 410, 414})
MAX_TTL: Final = 365 * 24 * 3600
MAX_OBJECT_BYTES: Final = 20 * 1024 * 1024
CACHE_BYTES: Final = 256 * 1024 * 1024
# CloudFront compresses objects from 1,000 bytes to 10,000,000 bytes of these types.
COMPRESS_MIN_BYTES: Final = 1000
COMPRESS_MAX_BYTES: Final = 10_000_000
_COMPRESSIBLE: Final = re.compile(
    r"text/.*|application/(json|javascript|x-javascript|xml|manifest\+json|.*\+json|.*\+xml)|image/svg\+xml|font/.*"
)
_HOP_BY_HOP: Final = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
        "content-length",
    }
)
# Viewer headers the front door handles itself rather than forwarding (it asks origins for uncompressed bytes and
# answers conditional requests from what it holds).
_NOT_FORWARDED: Final = _HOP_BY_HOP | {"host", "cookie", "accept-encoding", "x-forwarded-for"}
_CONDITIONAL: Final = frozenset({"if-none-match", "if-modified-since", "if-match", "if-unmodified-since", "if-range"})
COLLAPSE_WAIT_SECONDS: Final = 30
_COUNTERS: Final = {"Hit": "hits", "RefreshHit": "refresh_hits", "Miss": "misses"}

Headers = tuple[tuple[str, str], ...]

# Seconds on a clock that only moves forward: how old a kept answer is (tests move it).
clock: Callable[[], float] = time.monotonic


# -- requests and answers --------------------------------------------------------------------------------------------


def _header(headers: Iterable[tuple[str, str]], name: str) -> str | None:
    wanted = name.lower()
    return next((value for key, value in headers if key.lower() == wanted), None)


class _WithHeaders:
    """A request or an answer: its first header of a name, whatever its case."""

    headers: Headers

    def header(self, name: str) -> str | None:
        return _header(self.headers, name)


@dataclass(frozen=True)
class ViewerRequest(_WithHeaders):
    """What the browser sent."""

    method: str
    target: str
    headers: Headers = ()
    body: bytes = b""
    address: str = LOCALHOST

    @property
    def path(self) -> str:
        return urlsplit(self.target).path or "/"

    @property
    def query(self) -> str:
        return urlsplit(self.target).query

    def cookies(self) -> list[tuple[str, str]]:
        """Cookie pairs as sent, leniently (a malformed one is skipped, as browsers and Django do)."""
        pairs = []
        for raw in (self.header("Cookie") or "").split(";"):
            name, equals, value = raw.strip().partition("=")
            if name and equals:
                pairs.append((name, value))
        return pairs


@dataclass(frozen=True)
class OriginRequest(_WithHeaders):
    """What an origin is sent: only what the behaviour forwards."""

    method: str
    path: str
    query: str = ""
    headers: Headers = ()
    body: bytes = b""


@dataclass(frozen=True)
class OriginResponse(_WithHeaders):
    status: int
    headers: Headers
    body: bytes = b""


@dataclass(frozen=True)
class ViewerResponse(_WithHeaders):
    """What the browser gets; ``length`` is the Content-Length (also for HEAD, whose body is empty)."""

    status: int
    headers: Headers
    body: bytes
    length: int


class Origin(Protocol):
    def fetch(self, request: OriginRequest) -> OriginResponse: ...


# -- origins ---------------------------------------------------------------------------------------------------------


class HttpOrigin:
    """An origin over HTTP: Django's runserver (API Gateway and Zappa in AWS). A connection per request."""

    def __init__(self, url: str, timeout: float = 60) -> None:
        parts = urlsplit(url)
        self.host = parts.hostname or LOCALHOST
        self.port = parts.port or 80
        self.timeout = timeout

    def fetch(self, request: OriginRequest) -> OriginResponse:
        connection = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        try:
            target = request.path + (f"?{request.query}" if request.query else "")
            connection.putrequest(request.method, target, skip_host=True, skip_accept_encoding=True)
            for name, value in request.headers:
                connection.putheader(name, value)
            if request.body or request.method not in READ_AND_OPTIONS:
                connection.putheader("Content-Length", str(len(request.body)))
            connection.endheaders(request.body or None)
            response = connection.getresponse()
            return OriginResponse(response.status, tuple(response.getheaders()), response.read())
        finally:
            connection.close()


class BucketOrigin:
    """CloudFront's S3 origin: the bucket's ``public/`` prefix (local_stack.cdn.PublicBucket)."""

    def __init__(self, bucket: PublicBucket) -> None:
        self.bucket = bucket

    def fetch(self, request: OriginRequest) -> OriginResponse:
        answer = self.bucket.read(
            request.path, if_none_match=request.header("If-None-Match"), with_body=request.method != "HEAD"
        )
        return OriginResponse(int(answer.status), tuple(answer.headers), answer.read())


LambdaHandler = Callable[[dict[str, Any], Any], dict[str, Any]]
# The HTTP API's routes (infra/pipeline.yaml): anything else is API Gateway's own 404, never the function.
_API_ROUTES: Final = (
    ("ANY /images", re.compile(r"/images")),
    ("ANY /images/{id}", re.compile(r"/images/(?P<id>[^/]+)")),
)


def api_function(region: str) -> FunctionSettings:
    """infra/pipeline.yaml's ApiFunction (512 MB, 10 s), as a stack of stage ``local`` names it."""
    name = f"image-pipeline-{STAGE}-api"
    return FunctionSettings(
        name=name,
        arn=f"arn:aws:lambda:{region}:{ACCOUNT_ID}:function:{name}",
        batch_size=1,
        timeout_seconds=10,
        memory_limit_in_mb=512,
    )


class ApiLambdaOrigin:
    """The read API as API Gateway's HTTP API invokes it: a payload 2.0 event per request, its answer mapped back.

    ``/api`` is taken off the path first (the distribution's ``/api/*`` behaviour has to do the same, or the API has
    to route ``/api/images`` too). One invocation at a time, as on one warm instance: the handler's Powertools
    resolver keeps the current event on itself.
    """

    def __init__(self, handler: LambdaHandler, function: FunctionSettings, prefix: str = "/api") -> None:
        self.handler = handler
        self.function = function
        self.prefix = prefix
        self._lock = threading.Lock()

    def fetch(self, request: OriginRequest) -> OriginResponse:
        path = request.path.removeprefix(self.prefix) or "/"
        route = next(((key, match) for key, pattern in _API_ROUTES if (match := pattern.fullmatch(path))), None)
        if route is None:
            return OriginResponse(404, (("Content-Type", "application/json"),), b'{"message":"Not Found"}')
        route_key, match = route
        event = http_api_event(request, path, route_key, match.groupdict())
        with self._lock:
            result = self.handler(event, LambdaContext(self.function))
        headers = list((result.get("headers") or {}).items())
        for name, values in (result.get("multiValueHeaders") or {}).items():
            headers += [(name, value) for value in values]
        headers += [("Set-Cookie", cookie) for cookie in result.get("cookies") or []]
        body = result.get("body") or ""
        raw = base64.b64decode(body) if result.get("isBase64Encoded") else body.encode()
        return OriginResponse(int(result["statusCode"]), tuple(headers), raw)


def http_api_event(
    request: OriginRequest, path: str, route_key: str, path_parameters: dict[str, str]
) -> dict[str, Any]:
    """API Gateway's HTTP API event, payload 2.0 (tests/events/http_api_*.json): headers lower-cased and repeated
    query parameters joined with commas, as API Gateway does."""
    headers: dict[str, str] = {}
    for name, value in request.headers:
        key = name.lower()
        headers[key] = f"{headers[key]},{value}" if key in headers else value
    parameters: dict[str, str] = {}
    for name, value in parse_qsl(request.query, keep_blank_values=True):
        parameters[name] = f"{parameters[name]},{value}" if name in parameters else value
    now = time.time()
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": path,
        "rawQueryString": request.query,
        "headers": headers,
        "requestContext": {
            "accountId": ACCOUNT_ID,
            "apiId": "local",
            "domainName": headers.get("host", LOCALHOST),
            "domainPrefix": "local",
            "http": {
                "method": request.method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": (headers.get("x-forwarded-for") or LOCALHOST).split(",")[0].strip(),
                "userAgent": headers.get("user-agent", ""),
            },
            "requestId": secrets.token_urlsafe(12),
            "routeKey": route_key,
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
        },
        "isBase64Encoded": False,
    }
    if parameters:
        event["queryStringParameters"] = parameters
    if path_parameters:
        event["pathParameters"] = path_parameters
    return event


# -- behaviours ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Behaviour:
    """One cache behaviour: the paths, the origin, what is forwarded, what is cached (CloudFront's terms)."""

    name: str
    patterns: tuple[str, ...]
    origin: str
    cached: bool = True
    methods: frozenset[str] = READ
    # Forwarded cookies and viewer headers; None forwards all of them.
    cookies: tuple[str, ...] | None = ()
    headers: tuple[str, ...] | None = ()
    # Forwarded query parameters, which are also the query part of the cache key; None forwards the query as is.
    query: tuple[str, ...] | None = ()
    # A request carrying one of these is personal: never answered from the cache, never stored.
    personal_cookies: tuple[str, ...] = ()
    # Seconds an answer is kept when the origin sends no max-age (CloudFront's default TTL).
    default_ttl: int = 0

    def matches(self, path: str) -> bool:
        return any(fnmatch.fnmatchcase(path, pattern) for pattern in self.patterns)

    def is_personal(self, viewer: ViewerRequest) -> bool:
        return any(name in self.personal_cookies for name, _ in viewer.cookies())

    def forward(self, viewer: ViewerRequest) -> OriginRequest:
        headers: list[tuple[str, str]] = [("Host", viewer.header("Host") or LOCALHOST)]
        wanted = None if self.headers is None else {name.lower() for name in self.headers}
        for name, value in viewer.headers:
            key = name.lower()
            if key in _NOT_FORWARDED or (wanted is not None and key not in wanted):
                continue
            if self.cached and key in _CONDITIONAL:
                continue  # the edge answers conditional requests from what it holds
            headers.append((name, value))
        cookies = [(n, v) for n, v in viewer.cookies() if self.cookies is None or n in self.cookies]
        if cookies:
            headers.append(("Cookie", "; ".join(f"{name}={value}" for name, value in cookies)))
        forwarded_for = viewer.header("X-Forwarded-For")
        headers.append(("X-Forwarded-For", f"{forwarded_for}, {viewer.address}" if forwarded_for else viewer.address))
        if self.query is None:
            query = viewer.query
        else:
            pairs = parse_qsl(viewer.query, keep_blank_values=True)
            query = urlencode([(name, value) for name, value in pairs if name in self.query])
        return OriginRequest(viewer.method, viewer.path, query, tuple(headers), viewer.body)


PAGE_COOKIES: Final = (SESSION_COOKIE, CSRF_COOKIE, MESSAGES_COOKIE)
BEHAVIOURS: Final = (
    # Locally WhiteNoise serves the static files from the apps; in AWS collectstatic put them in S3's static/.
    Behaviour("static", ("/static/*",), "app"),
    # Renditions: versioned keys, immutable for a year; the default TTL is CloudFront's for objects without one.
    Behaviour("images", ("/thumbs/*", "/optimized/*"), "bucket", default_ttl=24 * 3600),
    # The read API: its own Cache-Control; Origin forwarded (CORS), so its `Vary: Origin` keys the cache on it.
    Behaviour(
        "api",
        ("/api/*",),
        "api",
        methods=READ_AND_OPTIONS,
        headers=("Origin", "Access-Control-Request-Method", "Access-Control-Request-Headers"),
        query=("limit", "cursor", "tag", "sort"),
    ),
    # Logging in, the admin, uploading and one's own uploads: everything Django needs, nothing cached.
    Behaviour(
        "app-private",
        ("/admin/*", "/accounts/*", "/upload/*", "/my/*"),
        "app",
        cached=False,
        methods=ALL_METHODS,
        cookies=None,
        headers=None,
        query=None,
    ),
    # Pages: a logged-in person's request carries the session cookie (and the CSRF cookie their logout form needs)
    # and is never cached; everyone without a session shares one copy per URL, as Django's headers allow.
    Behaviour(
        "pages",
        ("*",),
        "app",
        cookies=PAGE_COOKIES,
        query=("tag", "sort", "cursor", "prev"),
        personal_cookies=(SESSION_COOKIE, MESSAGES_COOKIE),
    ),
)


# -- the cache -------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CacheKey:
    behaviour: str
    path: str
    query: str


@dataclass
class CacheEntry(_WithHeaders):
    status: int
    headers: Headers
    body: bytes
    ttl: float
    stale_seconds: float
    # The forwarded request's value of every header the answer varies on.
    vary: tuple[tuple[str, str], ...]
    stored_at: float = field(default_factory=lambda: clock())
    gzipped: bytes | None = None

    def age(self, now: float) -> float:
        return now - self.stored_at

    def fresh(self, now: float) -> bool:
        return self.age(now) < self.ttl

    def servable_stale(self, now: float) -> bool:
        return self.age(now) < self.ttl + self.stale_seconds

    def gzip_body(self) -> bytes:
        if self.gzipped is None:
            self.gzipped = gzip.compress(self.body, compresslevel=6, mtime=0)
        return self.gzipped


def cache_control(value: str | None) -> dict[str, str | None]:
    directives: dict[str, str | None] = {}
    for part in (value or "").split(","):
        name, equals, argument = part.strip().partition("=")
        if name:
            directives[name.lower()] = argument.strip('"') if equals else None
    return directives


def _seconds(value: str | None) -> int | None:
    try:
        return max(0, int(value)) if value is not None else None
    except ValueError:
        return None


def freshness(response: OriginResponse, default_ttl: int) -> tuple[float, float] | None:
    """(ttl, stale-while-revalidate) if a shared cache may keep this answer, else None."""
    if response.status not in CACHEABLE_STATUSES or response.header("Set-Cookie") is not None:
        return None
    if "*" in (response.header("Vary") or ""):
        return None
    directives = cache_control(response.header("Cache-Control"))
    if {"no-store", "private", "no-cache"} & directives.keys():
        return None
    ttl = _seconds(directives.get("s-maxage")) if "s-maxage" in directives else None
    if ttl is None and "max-age" in directives:
        ttl = _seconds(directives.get("max-age"))
    if ttl is None and response.header("Expires"):
        try:
            expires = parsedate_to_datetime(response.header("Expires") or "").timestamp()
            ttl = max(0, int(expires - time.time()))
        except (TypeError, ValueError):
            ttl = 0
    ttl = min(MAX_TTL, default_ttl if ttl is None else ttl)
    if ttl <= 0 or len(response.body) > MAX_OBJECT_BYTES:
        return None
    revalidate = {"must-revalidate", "proxy-revalidate"} & directives.keys()
    stale = 0 if revalidate else _seconds(directives.get("stale-while-revalidate")) or 0
    return float(ttl), float(stale)


def vary_names(headers: Iterable[tuple[str, str]]) -> tuple[str, ...]:
    names = []
    for name, value in headers:
        if name.lower() == "vary":
            names += [part.strip().lower() for part in value.split(",") if part.strip()]
    return tuple(sorted(set(names)))


class EdgeCache:
    """Answers by key and Vary, least recently used out first past ``max_bytes``; invalidation by path pattern."""

    def __init__(self, max_bytes: int = CACHE_BYTES) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[CacheKey, list[CacheEntry]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self._generation = 0
        self._invalidations: list[tuple[int, str]] = []

    @property
    def generation(self) -> int:
        return self._generation

    def lookup(self, key: CacheKey, vary_value: Callable[[str], str]) -> CacheEntry | None:
        with self._lock:
            entries = self._entries.get(key, [])
            for entry in entries:
                if all(vary_value(name) == value for name, value in entry.vary):
                    self._entries.move_to_end(key)
                    return entry
        return None

    def store(self, key: CacheKey, entry: CacheEntry, since_generation: int) -> bool:
        """Keep ``entry`` unless an invalidation of its path came after its fetch began (CloudFront drops those)."""
        with self._lock:
            if any(gen > since_generation and path_matches(pattern, key.path) for gen, pattern in self._invalidations):
                return False
            entries = self._entries.setdefault(key, [])
            for old in [old for old in entries if old.vary == entry.vary]:
                entries.remove(old)
                self._bytes -= len(old.body)
            entries.append(entry)
            self._bytes += len(entry.body)
            self._entries.move_to_end(key)
            while self._bytes > self.max_bytes and len(self._entries) > 1:
                _, evicted = self._entries.popitem(last=False)
                self._bytes -= sum(len(old.body) for old in evicted)
            return True

    def invalidate(self, patterns: Iterable[str]) -> int:
        """Forget every answer whose path matches (``/thumbs/<id>/*``: a trailing ``*`` is a prefix); how many."""
        patterns = list(patterns)
        with self._lock:
            self._generation += 1
            self._invalidations = [*self._invalidations[-999:], *((self._generation, p) for p in patterns)]
            doomed = [key for key in self._entries if any(path_matches(p, key.path) for p in patterns)]
            for key in doomed:
                self._bytes -= sum(len(entry.body) for entry in self._entries.pop(key))
        return len(doomed)

    def __len__(self) -> int:
        with self._lock:
            return sum(len(entries) for entries in self._entries.values())


def path_matches(pattern: str, path: str) -> bool:
    """CloudFront's invalidation paths: exact, or a prefix when the last character is ``*``."""
    return path.startswith(pattern[:-1]) if pattern.endswith("*") else path == pattern


# -- the front door --------------------------------------------------------------------------------------------------


@dataclass
class Stats:
    """What the front door did; ``origin_requests`` / ``requests`` is the load test's origin hit ratio."""

    requests: int = 0
    hits: int = 0
    refresh_hits: int = 0
    misses: int = 0
    origin_requests: int = 0
    by_origin: dict[str, int] = field(default_factory=dict)
    invalidated_paths: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def count(self, **amounts: int) -> None:
        with self._lock:
            for name, amount in amounts.items():
                setattr(self, name, getattr(self, name) + amount)

    def count_origin(self, origin: str) -> None:
        with self._lock:
            self.origin_requests += 1
            self.by_origin[origin] = self.by_origin.get(origin, 0) + 1

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "requests": self.requests,
                "hits": self.hits,
                "refresh_hits": self.refresh_hits,
                "misses": self.misses,
                "origin_requests": self.origin_requests,
                "by_origin": dict(self.by_origin),
                "invalidated_paths": self.invalidated_paths,
            }


@dataclass(frozen=True)
class _Answer:
    """An answer before it is shaped for this viewer (conditional request, compression, X-Cache)."""

    status: int
    headers: Headers
    body: bytes
    cache: str
    cacheable_route: bool
    entry: CacheEntry | None = None
    age: int | None = None


class FrontDoor:
    def __init__(
        self, origins: dict[str, Origin], behaviours: tuple[Behaviour, ...] = BEHAVIOURS, cache: EdgeCache | None = None
    ) -> None:
        missing = {b.origin for b in behaviours} - origins.keys()
        if missing:
            raise ValueError(f"no origin for {sorted(missing)}")
        self.origins = origins
        self.behaviours = behaviours
        self.cache = cache or EdgeCache()
        self.stats = Stats()
        self._inflight: dict[CacheKey, threading.Event] = {}
        self._inflight_lock = threading.Lock()

    def behaviour_for(self, path: str) -> Behaviour:
        return next(b for b in self.behaviours if b.matches(path))

    def serve(self, viewer: ViewerRequest) -> ViewerResponse:
        if viewer.path == CONTROL_PREFIX or viewer.path.startswith(CONTROL_PREFIX + "/"):
            return self._control(viewer)
        self.stats.count(requests=1)
        behaviour = self.behaviour_for(viewer.path)
        if viewer.method not in behaviour.methods:
            return _text_response(
                403,
                "This distribution is not configured to allow the HTTP request method that was used for this "
                "request. The distribution supports only cachable requests.",
            )
        forwarded = behaviour.forward(viewer)
        try:
            if not behaviour.cached or viewer.method not in READ or behaviour.is_personal(viewer):
                response = self._fetch(behaviour, forwarded)
                answer = _Answer(response.status, response.headers, response.body, "Miss", behaviour.cached)
            else:
                answer = self._through_cache(behaviour, forwarded)
        except Exception:
            log.exception("the %s origin failed on %s %s", behaviour.origin, viewer.method, viewer.path)
            return _text_response(502, "The origin did not answer.")
        self.stats.count(**{_COUNTERS[answer.cache]: 1})
        return _for_viewer(viewer, answer)

    # -- caching --

    def _through_cache(self, behaviour: Behaviour, forwarded: OriginRequest) -> _Answer:
        key = CacheKey(behaviour.name, forwarded.path, forwarded.query)
        as_get = replace(forwarded, method="GET")  # a HEAD miss is fetched whole, so it can be kept

        def vary_value(name: str) -> str:
            if name == "cookie":  # the cookies in the cache key: requests carrying them never get here
                return ""
            return forwarded.header(name) or ""

        entry = self.cache.lookup(key, vary_value)
        now = clock()
        if entry and entry.fresh(now):
            return _hit(entry, now)
        if entry and entry.servable_stale(now):
            self._refresh_in_background(behaviour, key, as_get, entry, vary_value)
            return _hit(entry, now)
        leader, waiting = self._lead(key)
        if not leader:
            waiting.wait(COLLAPSE_WAIT_SECONDS)
            collapsed = self.cache.lookup(key, vary_value)
            if collapsed and collapsed.fresh(clock()):
                return _hit(collapsed, clock())
            return self._fetch_and_keep(behaviour, key, as_get, entry, vary_value)
        try:
            return self._fetch_and_keep(behaviour, key, as_get, entry, vary_value)
        finally:
            self._done(key)

    def _lead(self, key: CacheKey) -> tuple[bool, threading.Event]:
        with self._inflight_lock:
            if key in self._inflight:
                return False, self._inflight[key]
            self._inflight[key] = threading.Event()
            return True, self._inflight[key]

    def _done(self, key: CacheKey) -> None:
        with self._inflight_lock:
            self._inflight.pop(key).set()

    def _refresh_in_background(
        self, behaviour: Behaviour, key: CacheKey, request: OriginRequest, stale: CacheEntry, vary: Callable[[str], str]
    ) -> None:
        leader, _ = self._lead(key)
        if not leader:
            return  # someone is fetching it already

        def refresh() -> None:
            try:
                self._fetch_and_keep(behaviour, key, request, stale, vary)
            except OSError as error:
                log.warning("refreshing %s failed: %s", key.path, error)
            finally:
                self._done(key)

        threading.Thread(target=refresh, name="front-door-refresh", daemon=True).start()

    def _fetch_and_keep(
        self,
        behaviour: Behaviour,
        key: CacheKey,
        request: OriginRequest,
        stale: CacheEntry | None,
        vary_value: Callable[[str], str],
    ) -> _Answer:
        generation = self.cache.generation
        if stale is not None:
            validators = (("If-None-Match", stale.header("ETag")), ("If-Modified-Since", stale.header("Last-Modified")))
            request = replace(request, headers=request.headers + tuple((n, v) for n, v in validators if v))
        response = self._fetch(behaviour, request)
        if response.status == 304 and stale is not None:
            # Still good: the copy is kept, with the freshness the 304 gives it.
            merged = _merge_headers(stale.headers, response.headers)
            kept = freshness(OriginResponse(stale.status, merged, stale.body), behaviour.default_ttl)
            if kept:
                renewed = replace(stale, headers=merged, ttl=kept[0], stale_seconds=kept[1], stored_at=clock())
                self.cache.store(key, renewed, generation)
            return _Answer(stale.status, merged, stale.body, "RefreshHit", True, stale, age=0)
        kept = freshness(response, behaviour.default_ttl)
        entry = None
        if kept:
            vary = tuple((name, vary_value(name)) for name in vary_names(response.headers))
            entry = CacheEntry(response.status, _end_to_end(response.headers), response.body, kept[0], kept[1], vary)
            self.cache.store(key, entry, generation)
        return _Answer(response.status, response.headers, response.body, "Miss", True, entry)

    def _fetch(self, behaviour: Behaviour, request: OriginRequest) -> OriginResponse:
        self.stats.count_origin(behaviour.origin)
        log.debug("%s %s?%s -> %s", request.method, request.path, request.query, behaviour.origin)
        return self.origins[behaviour.origin].fetch(request)

    # -- its own endpoints --

    def _control(self, viewer: ViewerRequest) -> ViewerResponse:
        if viewer.path == STATS_PATH and viewer.method in READ:
            body = json.dumps({**self.stats.snapshot(), "cached_answers": len(self.cache)}).encode()
            return _response(200, (("Content-Type", "application/json"), ("Cache-Control", "no-store")), body)
        invalidation = _INVALIDATION_PATH.fullmatch(viewer.path)
        if invalidation and viewer.method == "POST":
            return self._create_invalidation(invalidation["distribution"], viewer.body)
        return _text_response(404, f"No front-door endpoint at {viewer.path}.")

    def _create_invalidation(self, distribution: str, body: bytes) -> ViewerResponse:
        """CloudFront's CreateInvalidation, as boto3 calls it: the paths are gone when it answers (Completed)."""
        if distribution != DISTRIBUTION_ID:
            return _cloudfront_error(404, "NoSuchDistribution", "The specified distribution does not exist.")
        # boto3's InvalidationBatch: a flat list of <Path> and one <CallerReference>, no attributes, no entities.
        text = body.decode("utf-8", errors="replace")
        paths = [unescape(path) for path in re.findall(r"<Path>(.*?)</Path>", text, re.S)]
        reference = unescape(next(iter(re.findall(r"<CallerReference>(.*?)</CallerReference>", text, re.S)), ""))
        if not paths:
            return _cloudfront_error(400, "MalformedInput", "The request body holds no InvalidationBatch paths.")
        dropped = self.cache.invalidate(paths)
        self.stats.count(invalidated_paths=len(paths))
        log.info("invalidated %s (%d cached keys)", ", ".join(paths), dropped)
        invalidation_id = "I" + secrets.token_hex(7).upper()
        items = "".join(f"<Path>{escape(path)}</Path>" for path in paths)
        created = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
        xml = (
            f'<?xml version="1.0" encoding="UTF-8"?>\n<Invalidation xmlns="{_CLOUDFRONT_NS}"><Id>{invalidation_id}</Id>'
            f"<Status>Completed</Status><CreateTime>{created}</CreateTime><InvalidationBatch><Paths>"
            f"<Quantity>{len(paths)}</Quantity><Items>{items}</Items></Paths>"
            f"<CallerReference>{escape(reference)}</CallerReference></InvalidationBatch></Invalidation>"
        )
        location = f"{CLOUDFRONT_API_PREFIX}/2020-05-31/distribution/{distribution}/invalidation/{invalidation_id}"
        return _response(201, (("Content-Type", "text/xml"), ("Location", location)), xml.encode())


# -- shaping answers -------------------------------------------------------------------------------------------------


def _hit(entry: CacheEntry, now: float) -> _Answer:
    return _Answer(entry.status, entry.headers, entry.body, "Hit", True, entry, age=int(entry.age(now)))


def _end_to_end(headers: Iterable[tuple[str, str]]) -> Headers:
    return tuple((name, value) for name, value in headers if name.lower() not in _HOP_BY_HOP)


def _merge_headers(kept: Headers, fresh: Headers) -> Headers:
    """A 304's headers replace the kept ones of the same names (RFC 9111, 4.3.4)."""
    replaced = {name.lower() for name, _ in fresh if name.lower() not in _HOP_BY_HOP}
    return tuple((n, v) for n, v in kept if n.lower() not in replaced) + _end_to_end(fresh)


def _for_viewer(viewer: ViewerRequest, answer: _Answer) -> ViewerResponse:
    headers = [(name, value) for name, value in answer.headers if name.lower() not in _HOP_BY_HOP]
    body = answer.body
    content_type = (_header(headers, "Content-Type") or "").split(";")[0].strip().lower()
    compressible = bool(_COMPRESSIBLE.fullmatch(content_type)) and answer.status not in (204, 304)
    if compressible:
        headers = _add_vary(headers, "Accept-Encoding")
    if (
        compressible
        and _accepts_gzip(viewer.header("Accept-Encoding"))
        and _header(headers, "Content-Encoding") is None
        and COMPRESS_MIN_BYTES <= len(body) <= COMPRESS_MAX_BYTES
    ):
        body = answer.entry.gzip_body() if answer.entry else gzip.compress(body, compresslevel=6, mtime=0)
        headers.append(("Content-Encoding", "gzip"))
        # Another representation of the same object: a strong validator would claim the same bytes.
        headers = [(n, f"W/{v}" if n.lower() == "etag" and not v.startswith("W/") else v) for n, v in headers]
    if answer.age is not None:
        headers = [(n, v) for n, v in headers if n.lower() != "age"] + [("Age", str(answer.age))]
    headers += [("X-Cache", f"{answer.cache} from {SERVED_BY}"), ("Via", f"1.1 {SERVED_BY} (local_stack)")]
    if answer.cacheable_route and answer.status == 200 and viewer.method in READ and _not_modified(viewer, headers):
        kept = {"etag", "cache-control", "last-modified", "vary", "expires", "date", "age", "x-cache", "via"}
        return ViewerResponse(304, tuple((n, v) for n, v in headers if n.lower() in kept), b"", 0)
    length = len(body)
    if viewer.method == "HEAD" and not body:  # a HEAD the origin answered itself: its length, not ours
        length = _seconds(_header(answer.headers, "Content-Length")) or 0
    return ViewerResponse(answer.status, tuple(headers), b"" if viewer.method == "HEAD" else body, length)


def _not_modified(viewer: ViewerRequest, headers: list[tuple[str, str]]) -> bool:
    if_none_match = viewer.header("If-None-Match")
    etag = _header(headers, "ETag")
    if if_none_match is not None:
        if not etag:
            return False
        candidates = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
        return "*" in candidates or etag.removeprefix("W/") in candidates
    since, modified = viewer.header("If-Modified-Since"), _header(headers, "Last-Modified")
    if since and modified:
        try:
            return parsedate_to_datetime(modified) <= parsedate_to_datetime(since)
        except (TypeError, ValueError):
            return False
    return False


def _accepts_gzip(accept_encoding: str | None) -> bool:
    for part in (accept_encoding or "").split(","):
        coding, _, parameters = part.strip().partition(";")
        if coding.strip().lower() in {"gzip", "*"}:
            return parameters.replace(" ", "").lower() not in {"q=0", "q=0.0", "q=0.00", "q=0.000"}
    return False


def _add_vary(headers: list[tuple[str, str]], name: str) -> list[tuple[str, str]]:
    present = vary_names(headers)
    if name.lower() in present or "*" in present:
        return headers
    others = [(n, v) for n, v in headers if n.lower() != "vary"]
    return [*others, ("Vary", ", ".join([*(_title(p) for p in present), name]))]


def _title(name: str) -> str:
    return "-".join(part.capitalize() for part in name.split("-"))


def _response(status: int, headers: Headers, body: bytes) -> ViewerResponse:
    return ViewerResponse(status, headers, body, len(body))


def _text_response(status: int, message: str, cache: str = "Error") -> ViewerResponse:
    headers = (
        ("Content-Type", "text/plain; charset=utf-8"),
        ("Cache-Control", "no-store"),
        ("X-Cache", f"{cache} from {SERVED_BY}"),
    )
    return _response(status, headers, message.encode() + b"\n")


def _cloudfront_error(status: int, code: str, message: str) -> ViewerResponse:
    xml = (
        f'<?xml version="1.0"?>\n<ErrorResponse xmlns="{_CLOUDFRONT_NS}"><Error><Type>Sender</Type><Code>{code}</Code>'
        f"<Message>{escape(message)}</Message></Error><RequestId>{secrets.token_hex(8)}</RequestId></ErrorResponse>"
    )
    return _response(status, (("Content-Type", "text/xml"),), xml.encode())


# -- the server ------------------------------------------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # The load test opens 50 connections at once; the default backlog of 5 would make some wait a second.
    request_queue_size = 256


class FrontDoorHandler(BaseHTTPRequestHandler):
    front_door: FrontDoor
    protocol_version = "HTTP/1.1"  # keep-alive: browsers and the load test reuse connections, as with CloudFront
    server_version = SERVED_BY

    def do_GET(self) -> None:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            self._write(_text_response(411, "Send a Content-Length."))
            return
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        viewer = ViewerRequest(self.command, self.path, tuple(self.headers.items()), body, self.client_address[0])
        self._write(self.front_door.serve(viewer))

    do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_GET

    def _write(self, response: ViewerResponse) -> None:
        self.send_response_only(response.status)
        if response.header("Date") is None:
            self.send_header("Date", formatdate(usegmt=True))
        for name, value in response.headers:
            self.send_header(name, value)
        if response.status not in (204, 304):
            self.send_header("Content-Length", str(response.length))
        self.end_headers()
        if response.body:
            self.wfile.write(response.body)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug(format, *args)


class FrontDoorServer:
    """The front door on 127.0.0.1:<port>, in a thread."""

    def __init__(self, port: int, front_door: FrontDoor) -> None:
        handler = type("BoundFrontDoorHandler", (FrontDoorHandler,), {"front_door": front_door})
        self.front_door = front_door
        self._server = _Server((LOCALHOST, port), handler)
        self.port = self._server.server_address[1]
        self.url = f"http://{LOCALHOST}:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="front-door", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        if self._thread.is_alive():  # shutdown() would wait forever for a loop that never started
            self._server.shutdown()
        self._server.server_close()


def local_front_door(django_url: str, s3: Any, bucket: str, api_handler: LambdaHandler, region: str) -> FrontDoor:
    """The distribution of a stack of stage ``local``: Django at ``django_url``, the bucket, the API handler."""
    return FrontDoor(
        {
            "app": HttpOrigin(django_url),
            "bucket": BucketOrigin(PublicBucket(s3, bucket)),
            "api": ApiLambdaOrigin(api_handler, api_function(region)),
        }
    )
