"""The read API's core: public image documents, keyset pages with signed cursors, and cacheable HTTP answers.

Both the Lambda (``lambdas/image_api``) and Django (``gallery.api_views``) call these functions and send what
``respond`` builds, so the two serve byte-identical JSON with the same ETag. Nothing here knows an event shape,
a Django request or boto3: the store is passed in.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from pipeline import keys, records
from pipeline.config import Settings
from pipeline.records import ImageRecord, Rendition, Status

if TYPE_CHECKING:
    from pipeline.store import ImageStore

DEFAULT_LIMIT: Final = 24
MAX_LIMIT: Final = 100
# A cursor is a bookmark for "the next page", not a permalink: it expires so that signed positions do not
# live forever in logs and caches. A day covers any human scrolling session. The expiry is rounded up to the
# hour so that the same page built twice within an hour is the same bytes: its ETag (and 304s) hold.
CURSOR_TTL_SECONDS: Final = 24 * 3600
CURSOR_EXPIRY_STEP: Final = 3600
MAX_CURSOR_LENGTH: Final = 1024

# Lists change with every upload: a short shared cache absorbs bursts. Documents of ready images change only
# when someone edits them. Anything still processing must not be cached, or polling would never see "ready".
LIST_CACHE_CONTROL: Final = "public, max-age=30"
READY_CACHE_CONTROL: Final = "public, max-age=120"
NO_STORE: Final = "no-store"
JSON_CONTENT_TYPE: Final = "application/json"

_LIMIT_PATTERN: Final = re.compile(r"[0-9]{1,4}")
_FORMAT_ORDER: Final = {"avif": 0, "webp": 1, "jpeg": 2}  # modern first, as a <picture> lists its <source>s
_FAMILY_ORDER: Final = {"thumb": 0, "optimized": 1, "animated": 2}
# ``?sort=``: the index each public order reads (both hold the same sparse set of listed items).
SORT_INDEXES: Final = {"uploaded": records.LISTED_INDEX, "taken": records.TAKEN_INDEX}
DEFAULT_SORT: Final = "uploaded"
# A position in each listing's index: the table's key and the index's own (what LastEvaluatedKey holds).
_KEY_ATTRIBUTES: Final = {
    index["IndexName"]: frozenset(
        {entry["AttributeName"] for entry in records.TABLE_SCHEMA["KeySchema"]}
        | {entry["AttributeName"] for entry in index["KeySchema"]}
    )
    for index in records.TABLE_SCHEMA["GlobalSecondaryIndexes"]
    if index["IndexName"] in SORT_INDEXES.values()
}


# The time cursors are signed and checked against (tests fix it).
clock: Callable[[], float] = time.time


class ApiError(Exception):
    """A request the API answers with an error status; ``code`` is stable, ``message`` is for people."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})

    def to_body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message}}


def not_found(image_id: str) -> ApiError:
    return ApiError(404, "not_found", f"no image with id {image_id!r}")


def route_not_found(path: str) -> ApiError:
    return ApiError(404, "route_not_found", f"no endpoint at {path!r}; see GET /images and GET /images/{{id}}")


def method_not_allowed(method: str, allowed: tuple[str, ...] = ("GET",)) -> ApiError:
    allow = ", ".join(allowed)
    return ApiError(405, "method_not_allowed", f"{method} is not supported here; use {allow}", {"Allow": allow})


def internal_error() -> ApiError:
    return ApiError(500, "internal_error", "something went wrong on our side; it has been logged, try again later")


# -- documents ---------------------------------------------------------------------------------------------


def image_document(record: ImageRecord, settings: Settings) -> dict[str, Any]:
    """The public JSON document of one image: what clients may know, and URLs they can use as they are.

    ``sources`` lists every rendition; ``srcset`` offers the uncropped ladder and ``thumbnail_srcset`` the 4:3
    tiles, each as ``{"webp": ..., "jpeg": ...}`` for a ``<picture>``: the ``jpeg`` candidates for every browser,
    and for browsers that take WebP, at each width the WebP where it is smaller than the JPEG and the JPEG where
    it is not (WebP is encoded at the quality that matches the JPEG's SSIM, so bytes decide).
    """
    renditions = sorted(
        record.renditions, key=lambda r: (_FAMILY_ORDER.get(r.name, 9), r.width, _FORMAT_ORDER.get(r.format, 9))
    )
    sources = [_source(rendition, settings) for rendition in renditions]
    sources = [source for source in sources if source["url"]]
    return {
        "id": record.id,
        "status": record.status.value,
        "failure_reason": record.failure_reason,
        "title": record.title,
        "alt_text": record.alt_text,
        "tags": list(record.tags),
        "width": record.width,
        "height": record.height,
        "format": record.format,
        "bytes": record.byte_size,
        "created_at": record.created_at,
        "processed_at": record.processed_at,
        # Photo facts (pipeline.photo): public ones only. The location, kept with KEEP_LOCATION, is staff's alone.
        "taken_at": record.taken_at,
        "camera": record.camera.to_dict() if record.camera else None,
        "thumbnail": _default_url(sources, "thumb", settings.imaging.thumb_size),
        "optimized": _default_url(sources, "optimized", None),
        "sources": sources,
        "srcset": _srcsets([s for s in sources if s["name"] == "optimized"]),
        "thumbnail_srcset": _srcsets([s for s in sources if s["name"] == "thumb"]),
        "placeholder": {"blurhash": record.blurhash, "color": record.dominant_color},
        "animation": _animation([s for s in sources if s["name"] == "animated"], record.frames),
    }


def _animation(sources: list[dict[str, Any]], frames: int | None) -> dict[str, Any] | None:
    """An animated upload kept as animated WebP (pipeline.imaging.animation): its ``srcset`` (one candidate per
    width, for a ``<source type="image/webp">``), its widest as ``url``, and the source's frame count; None for a
    still, or an animation that was over its budget. ``optimized`` and ``srcset`` stay its first frame: the poster."""
    if not sources:
        return None
    return {
        "srcset": ", ".join(f"{s['url']} {s['width']}w" for s in sources),  # sorted by width
        "url": sources[-1]["url"],
        "frames": frames,
    }


def rendition_url(rendition: Rendition, settings: Settings) -> str | None:
    """The CDN URL of a rendition; None while its image is hidden (its files are then outside the CDN's reach).

    The key carries its own version, so the URL never changes meaning and caches keep it for a year.
    """
    if keys.is_hidden_key(rendition.key):
        return None
    return f"{settings.cdn_url}/{keys.cdn_path(rendition.key)}"


def _source(rendition: Rendition, settings: Settings) -> dict[str, Any]:
    return {
        "name": rendition.name,
        "format": rendition.format,
        "type": rendition.content_type,
        "width": rendition.width,
        "height": rendition.height,
        "bytes": rendition.bytes,
        "url": rendition_url(rendition, settings),
    }


def _default_url(sources: list[dict[str, Any]], name: str, at_most: int | None) -> str | None:
    """The JPEG of family ``name``: the widest no wider than ``at_most`` (else the narrowest), or the widest."""
    jpegs = [s for s in sources if s["name"] == name and s["format"] == "jpeg"]  # sorted by width
    if not jpegs:
        return None
    if at_most is None:
        return jpegs[-1]["url"]
    fitting = [s for s in jpegs if s["width"] <= at_most]
    return (fitting[-1] if fitting else jpegs[0])["url"]


def _srcsets(sources: list[dict[str, Any]]) -> dict[str, str]:
    """``{"avif": ..., "webp": "url 320w, url 480w, ...", "jpeg": ...}`` over one family, one candidate per width.

    ``jpeg`` names the JPEGs. ``webp`` (for browsers that take WebP) names at each width the smaller of the WebP and
    the JPEG, and ``avif`` (for browsers that take AVIF, which all take WebP) the smallest of the three; each is
    present only when its format is the smaller file at some width, and covers every width either way.
    """
    by_width: dict[int, dict[str, dict[str, Any]]] = {}
    for source in sources:
        by_width.setdefault(source["width"], {}).setdefault(source["format"], source)
    candidates: dict[str, list[str]] = {"avif": [], "webp": [], "jpeg": []}
    pays = {"avif": False, "webp": False}
    for width, formats in sorted(by_width.items()):
        best = formats.get("jpeg")
        if best is None:
            continue
        candidates["jpeg"].append(f"{best['url']} {width}w")
        for fmt in ("webp", "avif"):  # each browser tier may use what the tier below it can
            modern = formats.get(fmt)
            if modern is not None and modern["bytes"] < best["bytes"]:
                best, pays[fmt] = modern, True
            candidates[fmt].append(f"{best['url']} {width}w")
    return {fmt: ", ".join(listed) for fmt, listed in candidates.items() if listed and (fmt == "jpeg" or pays[fmt])}


# -- reads -------------------------------------------------------------------------------------------------


def get_document(store: ImageStore, settings: Settings, image_id: str) -> dict[str, Any]:
    """One image in any status (clients poll while it processes); hidden images and images in the trash do not
    exist publicly."""
    if not keys.is_image_id(image_id):
        raise ApiError(400, "invalid_id", f"{image_id!r} is not an image id (26 characters a-z, 2-7)")
    record = store.get(image_id)
    if record is None or record.files_hidden:
        raise not_found(image_id)
    return image_document(record, settings)


def list_documents(
    store: ImageStore,
    settings: Settings,
    *,
    limit: str | int | None = None,
    cursor: str | None = None,
    tag: str | None = None,
    sort: str | None = None,
) -> dict[str, Any]:
    """One page of listed images, newest first: ``{"items": [...], "next": cursor or None}``.

    One Query per page on a sparse index of listed images: ``Listed`` by upload (``created_sk``), or with
    ``sort="taken"`` ``ListedByTaken`` by date taken (``taken_sk``: undated photos after every dated one, newest
    upload first among them). Keyset-paginated, so new uploads never shift or repeat items on later pages. It
    asks for one item more than it returns: if that item exists there is a next page, so the last page never
    comes with a cursor to an empty page.
    """
    page_size = parse_limit(limit)
    index = parse_sort(sort)
    partition = listing_partition(tag)
    scope = listing_scope(partition, index)
    start_key = decode_cursor(cursor, scope, settings, index=index) if cursor is not None else None
    page = store.query_page(index, partition, limit=page_size + 1, start_key=start_key)
    shown = page.records[:page_size]
    if len(page.records) > page_size:
        next_key: dict[str, Any] | None = _listed_key(shown[-1], partition, index)
    else:
        # Fewer items than asked for and a LastEvaluatedKey only happens when DynamoDB stopped at its 1 MB
        # page limit: the page is short but there is more.
        next_key = page.last_key if shown else None
    return {
        "items": [image_document(record, settings) for record in shown],
        "next": encode_cursor(next_key, scope, settings) if next_key else None,
    }


def parse_limit(limit: str | int | None) -> int:
    if limit is None:
        return DEFAULT_LIMIT
    if isinstance(limit, str):
        if not _LIMIT_PATTERN.fullmatch(limit):
            raise _bad_limit(limit)
        limit = int(limit)
    if isinstance(limit, bool) or not 1 <= limit <= MAX_LIMIT:
        raise _bad_limit(limit)
    return limit


def parse_sort(sort: str | None) -> str:
    """The index of the order asked for (``uploaded``, the default, or ``taken``); ApiError 400 for others."""
    if sort is None:
        sort = DEFAULT_SORT
    try:
        return SORT_INDEXES[sort]
    except KeyError:
        choices = " or ".join(SORT_INDEXES)
        raise ApiError(400, "invalid_sort", f"sort must be {choices}, got {sort!r}") from None


def listing_partition(tag: str | None) -> str:
    """The ``Listed`` partition to read: every listed image, or those with one tag (normalized as stored)."""
    if tag is None:
        return records.LISTED_ALL
    try:
        tags = records.normalize_tags(tag)
    except ValueError:  # more tags than an image may have
        raise _bad_tag(tag) from None
    if len(tags) > 1:
        raise _bad_tag(tag)
    return records.tag_pk(tags[0]) if tags else records.LISTED_ALL


def listing_scope(partition: str, index: str = records.LISTED_INDEX) -> str:
    """What a cursor is valid for: the index (the order) and its partition, so a tag's cursor cannot page another
    tag, nor a cursor of one order the other."""
    return f"{index}:{partition}"


def _listed_key(record: ImageRecord, partition: str, index: str = records.LISTED_INDEX) -> dict[str, str]:
    """The ``index`` key of ``record``'s item in ``partition`` (the image item, or its tag item)."""
    item_sk = records.IMAGE_SK if partition == records.LISTED_ALL else records.tag_sk(partition.split("#", 1)[1])
    position = {"taken_sk": record.taken_sk} if index == records.TAKEN_INDEX else {"created_sk": record.created_sk}
    return {"pk": records.image_pk(record.id), "sk": item_sk, "listed_pk": partition, **position}


def _bad_tag(tag: str) -> ApiError:
    return ApiError(400, "invalid_tag", f"filter by one tag at a time (no commas), got {tag!r}")


def _bad_limit(limit: object) -> ApiError:
    return ApiError(400, "invalid_limit", f"limit must be a whole number from 1 to {MAX_LIMIT}, got {limit!r}")


# -- cursors -----------------------------------------------------------------------------------------------


def encode_cursor(last_key: dict[str, Any], scope: str, settings: Settings, *, now: float | None = None) -> str:
    """An opaque, signed bookmark: the position, what it is a position in, and when it stops being valid."""
    issued = int(now if now is not None else clock())
    expires = -(-(issued + CURSOR_TTL_SECONDS) // CURSOR_EXPIRY_STEP) * CURSOR_EXPIRY_STEP
    payload = json.dumps({"k": last_key, "s": scope, "x": expires}, separators=(",", ":"), sort_keys=True)
    body = _b64encode(payload.encode())
    return f"{body}.{_b64encode(_signature(body, settings))}"


def decode_cursor(
    cursor: str, scope: str, settings: Settings, *, now: float | None = None, index: str = records.LISTED_INDEX
) -> dict[str, Any]:
    """The DynamoDB start key in ``cursor``; ApiError 400 if it was altered, expired or made for another list."""
    if len(cursor) > MAX_CURSOR_LENGTH or cursor.count(".") != 1:
        raise _bad_cursor("it is not one this API handed out")
    body, signature = cursor.split(".")
    try:
        given = _b64decode(signature)
        payload = json.loads(_b64decode(body))
    except (ValueError, binascii.Error):
        raise _bad_cursor("it is not one this API handed out") from None
    if not hmac.compare_digest(given, _signature(body, settings)):
        raise _bad_cursor("it is not one this API handed out")
    if payload.get("s") != scope:
        raise _bad_cursor("it belongs to a different listing (another tag or sort); start from the first page")
    if not isinstance(payload.get("x"), int) or payload["x"] < (now if now is not None else clock()):
        raise _bad_cursor("it has expired; start again from the first page")
    start_key = payload.get("k")
    if not isinstance(start_key, dict) or set(start_key) != _KEY_ATTRIBUTES[index]:
        raise _bad_cursor("it does not point into this listing")
    return start_key


def _signature(body: str, settings: Settings) -> bytes:
    # A key of its own, derived from the pipeline secret, so a cursor MAC can never double as an image id.
    cursor_key = hmac.new(settings.secret.encode(), b"api-cursor", hashlib.sha256).digest()
    return hmac.new(cursor_key, body.encode(), hashlib.sha256).digest()[:16]


def _bad_cursor(why: str) -> ApiError:
    return ApiError(400, "invalid_cursor", f"the cursor cannot be used: {why}")


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _b64decode(text: str) -> bytes:
    if not re.fullmatch(r"[A-Za-z0-9_-]*", text):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# -- HTTP --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HttpResponse:
    """What both adapters send: status, headers and the exact body bytes."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


def respond(document_or_error: dict[str, Any] | ApiError, *, if_none_match: str | None = None) -> HttpResponse:
    """JSON bytes with a strong ETag and the Cache-Control its content deserves; 304 if the client has it."""
    if isinstance(document_or_error, ApiError):
        error = document_or_error
        headers = {"Content-Type": JSON_CONTENT_TYPE, "Cache-Control": NO_STORE, **error.headers}
        return HttpResponse(error.status, headers, _json_bytes(error.to_body()))
    body = _json_bytes(document_or_error)
    etag = f'"{hashlib.sha256(body).hexdigest()[:32]}"'
    headers = {"ETag": etag, "Cache-Control": cache_control_for(document_or_error)}
    if if_none_match and _etag_matches(if_none_match, etag):
        return HttpResponse(304, headers, b"")
    return HttpResponse(200, {"Content-Type": JSON_CONTENT_TYPE, **headers}, body)


def cache_control_for(document: dict[str, Any]) -> str:
    if "items" in document:
        return LIST_CACHE_CONTROL
    return READY_CACHE_CONTROL if document.get("status") == Status.READY.value else NO_STORE


def _etag_matches(if_none_match: str, etag: str) -> bool:
    """If-None-Match uses the weak comparison (RFC 9110 13.1.2): ``W/"x"`` matches ``"x"``."""
    if if_none_match.strip() == "*":
        return True
    candidates = (tag.strip().removeprefix("W/") for tag in if_none_match.split(","))
    return etag in candidates


def _json_bytes(document: dict[str, Any]) -> bytes:
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()
