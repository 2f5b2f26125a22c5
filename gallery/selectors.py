"""Reads for the pages: the gallery and detail pages use the read API's own documents (pipeline.api), the
admin pages one paginated Query on an index. Each page costs one DynamoDB call."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from django.core import signing
from django.urls import reverse

from gallery import services
from pipeline import api, records
from pipeline.records import ImageRecord, Status

GALLERY_PAGE_SIZE: Final = 24
ADMIN_PAGE_SIZE: Final = 50
# A search reads the index this many items at a time, at most this many times per page (at most 500 items).
ADMIN_SEARCH_READ_SIZE: Final = 100
ADMIN_SEARCH_MAX_READS: Final = 5
# Page links (the admin's, My uploads') are bookmarks for the next page, valid a day.
CURSOR_MAX_AGE: Final = 24 * 3600
_ADMIN_CURSOR_SALT: Final = "gallery.admin.cursor"
# The two ways a page draws an image: a gallery tile (4:3 crops) or the detail page (the uncropped ladder).
TILE: Final = "tile"
DETAIL: Final = "detail"


class BadCursor(ValueError):
    """A cursor that was altered, expired or made for another listing (HTTP 400)."""


# -- pictures, as the templates draw them ----------------------------------------------------------------------


@dataclass(frozen=True)
class Picture:
    """One image drawn as a <picture>: the candidates of one family of renditions, the fallback JPEG whose size
    the <img> declares (no layout shift), the name people and screen readers get, its placeholder."""

    id: str
    status: str
    title: str
    alt_text: str
    label: str
    tags: tuple[str, ...]
    src: str | None
    width: int | None
    height: int | None
    srcset_avif: str
    srcset_webp: str
    srcset_jpeg: str
    color: str | None
    blurhash: str | None
    document: dict[str, Any]
    # Photo facts as the detail page shows them (photo_facts); empty when the file did not say.
    taken_at: datetime | None = None
    camera_name: str = ""
    lens: str = ""
    exposure: str = ""
    # An animation kept as animated WebP (the document's ``animation``): its srcset, on the detail page only. Tiles
    # stay still: 4:3 crops of the first frame, and a grid of moving tiles would cost every visitor the bytes.
    srcset_animated: str = ""

    @classmethod
    def from_document(cls, document: dict[str, Any], family: str = TILE) -> Picture:
        """``family``: TILE (the 4:3 crops, ``thumbnail_srcset``) or DETAIL (the uncropped ladder, ``srcset``).

        The document's ``webp`` srcset already holds, per width, the smaller of the WebP and the JPEG, and is
        absent when no WebP pays (``avif``, with AVIF_RENDITIONS on, the smallest of the three); the JPEG srcset is
        the fallback for browsers without either.
        """
        fallback_url = document.get("thumbnail" if family == TILE else "optimized")
        fallback = next((s for s in document.get("sources") or () if s["url"] == fallback_url), None)
        srcset = document.get("thumbnail_srcset" if family == TILE else "srcset") or {}
        placeholder = document.get("placeholder") or {}
        return cls(
            id=document["id"],
            status=document["status"],
            title=document.get("title") or "",
            alt_text=document.get("alt_text") or "",
            label=picture_label(document),
            tags=tuple(document.get("tags") or ()),
            src=fallback_url,
            width=fallback["width"] if fallback else document.get("width"),
            height=fallback["height"] if fallback else document.get("height"),
            srcset_avif=srcset.get("avif", ""),
            srcset_webp=srcset.get("webp", ""),
            srcset_jpeg=srcset.get("jpeg", ""),
            color=placeholder.get("color"),
            blurhash=placeholder.get("blurhash"),
            document=document,
            **photo_facts(document),
            srcset_animated=(document.get("animation") or {}).get("srcset", "") if family == DETAIL else "",
        )


def photo_facts(document: dict[str, Any]) -> dict[str, Any]:
    """The document's public photo facts as people read them: when it was taken (the camera's own clock, naive, so
    no time zone conversion moves it), "Canon EOS 40D", the lens, and "f/1.8 · 1/250 s · 4.25 mm · ISO 100"."""
    try:
        taken = datetime.fromisoformat(document.get("taken_at") or "").replace(tzinfo=None)
    except ValueError:
        taken = None
    camera = document.get("camera") or {}
    exposure = [
        f"f/{camera['f_number']}" if camera.get("f_number") else "",
        f"{camera['exposure_time']} s" if camera.get("exposure_time") else "",
        f"{camera['focal_length']} mm" if camera.get("focal_length") else "",
        f"ISO {camera['iso']}" if camera.get("iso") else "",
    ]
    return {
        "taken_at": taken,
        "camera_name": " ".join(part for part in (camera.get("make"), camera.get("model")) if part),
        "lens": camera.get("lens") or "",
        "exposure": " · ".join(part for part in exposure if part),
    }


def picture_label(document: dict[str, Any]) -> str:
    """What the image is called where it is the only content of a link: its alt text, else its title, else when
    it was uploaded ("Photo uploaded 2 Dec 2026")."""
    named = (document.get("alt_text") or "").strip() or (document.get("title") or "").strip()
    if named:
        return named
    try:
        uploaded = datetime.fromisoformat((document.get("created_at") or "").replace("Z", "+00:00"))
    except ValueError:
        return "Photo"
    return f"Photo uploaded {uploaded.day} {uploaded:%b %Y}"


@dataclass(frozen=True)
class GalleryPage:
    pictures: list[Picture]
    next_cursor: str | None


def gallery_page(*, cursor: str | None, tag: str | None, sort: str | None = None) -> GalleryPage:
    """One page of the public listing: exactly what GET /api/images answers (ApiError for a bad cursor, tag or
    sort)."""
    listing = api.list_documents(
        services.image_store(),
        services.pipeline_settings(),
        limit=GALLERY_PAGE_SIZE,
        cursor=cursor,
        tag=tag,
        sort=sort,
    )
    return GalleryPage([Picture.from_document(item) for item in listing["items"]], listing["next"])


def image_picture(image_id: str) -> Picture:
    """One image's document as the detail page draws it (ApiError 400/404 as the API answers)."""
    document = api.get_document(services.image_store(), services.pipeline_settings(), image_id)
    return Picture.from_document(document, family=DETAIL)


# -- the admin's listing ---------------------------------------------------------------------------------------


# The admin's narrowed lists (its "Review" and "Duplicates" filters): the status whose ByStatus partition they read
# (None: the full list), a FilterExpression and its values, read in bounded Queries like a search. A review is
# outstanding on ready images (the publish gate), so those lists read ByStatus=ready.
ADMIN_NARROWED: Final[dict[str, tuple[str | None, str, dict[str, str]]]] = {
    **{state.value: (Status.READY.value, "review = :review", {":review": state.value}) for state in records.Review},
    "duplicates": (None, "attribute_exists(duplicate_of) OR attribute_exists(near_duplicate_of)", {}),
}


@dataclass(frozen=True)
class AdminPage:
    records: list[ImageRecord]
    next_cursor: str | None


def admin_page(
    *, status: str | None, search: str, cursor: str | None, limit: int | None = None, narrow: str | None = None
) -> AdminPage:
    """Newest first over ByEntity (every image) or ByStatus (one status): one Query per page.

    A search is a FilterExpression (title or file name contains the text, or a tag equals it, ignoring case: the
    records' ``search_text`` is lower case). DynamoDB applies it after reading, so a search reads the index in
    Queries of ADMIN_SEARCH_READ_SIZE items until its page is full, at most ADMIN_SEARCH_MAX_READS of them; a
    rare search can then show a short page whose "Older" link reads on. The table is never scanned. ``narrow``
    (a key of ADMIN_NARROWED: a review state, "duplicates") adds its FilterExpression the same way.
    """
    narrowed = ADMIN_NARROWED.get(narrow or "")
    if narrowed and narrowed[0]:
        status = narrowed[0]
    if status:
        index, partition = records.STATUS_INDEX, Status(status).value
    else:
        index, partition = records.ENTITY_INDEX, records.ENTITY_IMAGE
    scope = f"{index}:{partition}:{search}" + (f":{narrow}" if narrowed else "")
    start_key = _read_cursor(cursor, scope, _ADMIN_CURSOR_SALT, "another filter or search") if cursor else None
    store = services.image_store()
    expressions: list[str] = []
    values: dict[str, str] = {}
    if search:
        expressions.append("(contains(search_text, :q) OR contains(tags, :tag))")
        values |= {":q": search.lower(), ":tag": search.strip().lower()}
    if narrowed:
        expressions.append(f"({narrowed[1]})")
        values |= narrowed[2]
    if expressions:
        page = store.search_page(
            index,
            partition,
            limit=limit or ADMIN_PAGE_SIZE,
            start_key=start_key,
            filter_expression=" AND ".join(expressions),
            filter_values=values,
            read_size=ADMIN_SEARCH_READ_SIZE,
            max_reads=ADMIN_SEARCH_MAX_READS,
        )
    else:
        page = store.query_page(index, partition, limit=limit or ADMIN_PAGE_SIZE, start_key=start_key)
    return AdminPage(page.records, _sign_cursor(page.last_key, scope, _ADMIN_CURSOR_SALT))


def _sign_cursor(last_key: dict[str, Any] | None, scope: str, salt: str) -> str | None:
    """A page link's cursor: DynamoDB's position, signed with what it is a position in (None on the last page)."""
    return signing.dumps({"k": last_key, "s": scope}, salt=salt) if last_key else None


def _read_cursor(cursor: str, scope: str, salt: str, elsewhere: str) -> dict[str, Any]:
    """The position in ``cursor``; BadCursor if it was altered, is older than a day, or belongs ``elsewhere``."""
    try:
        payload = signing.loads(cursor, salt=salt, max_age=CURSOR_MAX_AGE)
    except signing.BadSignature:
        raise BadCursor("This page link is broken or has expired; start again from the first page.") from None
    if payload.get("s") != scope or not isinstance(payload.get("k"), dict):
        raise BadCursor(f"This page link belongs to {elsewhere}; start again from the first page.")
    return payload["k"]


# -- an uploader's own images (/my/) ---------------------------------------------------------------------------

OWNER_PAGE_SIZE: Final = 24
_OWNER_CURSOR_SALT: Final = "gallery.my.cursor"
# The CSS box of a thumbnail on /my/ (site.css, .mine__thumb): the presigned tile is the narrowest at least
# twice as wide, for 2x screens.
OWN_THUMB_PX: Final = 120


@dataclass(frozen=True)
class UploadState:
    """What became of an upload, as its owner reads it: a ``key`` for the colour (CSS) and words that say the
    same without the colour, and why when there is a why."""

    key: str
    label: str
    reason: str = ""


@dataclass(frozen=True)
class Original:
    """The gallery's image an upload duplicates (listed, so its page exists)."""

    id: str
    title: str
    url: str


@dataclass(frozen=True)
class OwnUpload:
    record: ImageRecord
    state: UploadState
    picture: Picture | None
    duplicate: Original | None
    near_duplicate: Original | None

    @property
    def name(self) -> str:
        return self.record.name


@dataclass(frozen=True)
class OwnerPage:
    uploads: list[OwnUpload]
    next_cursor: str | None


def upload_state(record: ImageRecord) -> UploadState:
    """The one state an owner sees (the record's status, refined by the publish gate and the hidden flag)."""
    if record.status is Status.UPLOADING:
        return UploadState("uploading", "Uploading", "The file has not arrived yet.")
    if record.status is Status.PROCESSING:
        return UploadState("processing", "Processing")
    if record.status is Status.FAILED:
        if record.duplicate_of:
            return UploadState("duplicate", "Duplicate, not processed", record.failure_reason or "")
        return UploadState("failed", "Failed", record.failure_reason or "The processor gave no reason.")
    if record.status is Status.DELETED:
        return UploadState("deleted", "In the trash")
    if record.review is records.Review.PENDING:
        return UploadState("pending", "Waiting for review", "A staff member will publish it or say why not.")
    if record.review is records.Review.NEEDS_ALT_TEXT:
        return UploadState("needs-alt-text", "Needs alt text", "Add alt text to publish it.")
    if record.review is records.Review.REJECTED:
        return UploadState("rejected", "Rejected", record.review_reason or "Staff gave no reason.")
    if record.hidden:
        return UploadState("hidden", "Hidden by staff", "It is in no listing; staff can show it again.")
    return UploadState("ready", "Published")


def owner_page(owner: str, *, cursor: str | None, limit: int | None = None) -> OwnerPage:
    """One page of ``owner``'s images, newest first: one Query on ByOwner (every status but the trash), plus one
    BatchGetItem for the originals of the page's duplicates, if it has any. BadCursor for a cursor that is not
    this owner's."""
    scope = f"owner:{owner}"
    start_key = _read_cursor(cursor, scope, _OWNER_CURSOR_SALT, "someone else's list") if cursor else None
    store = services.image_store()
    page = store.query_page(
        records.OWNER_INDEX, records.owner_pk(owner), limit=limit or OWNER_PAGE_SIZE, start_key=start_key
    )
    originals = store.get_many(
        original for record in page.records for original in (record.duplicate_of, record.near_duplicate_of) if original
    )
    uploads = [_own_upload(record, originals) for record in page.records]
    return OwnerPage(uploads, _sign_cursor(page.last_key, scope, _OWNER_CURSOR_SALT))


def own_upload(image_id: str, owner: str) -> OwnUpload:
    """One of ``owner``'s images (ImageNotFound for anyone else's, or one in the trash): one GetItem, and one
    more for the original when it is a duplicate."""
    record = services.own_record(image_id, owner)
    if record.in_trash:
        raise services.ImageNotFound(f"You have no image with id {image_id!r}.")
    wanted = [original for original in (record.duplicate_of, record.near_duplicate_of) if original]
    return _own_upload(record, services.image_store().get_many(wanted) if wanted else {})


def _own_upload(record: ImageRecord, originals: dict[str, ImageRecord]) -> OwnUpload:
    return OwnUpload(
        record=record,
        state=upload_state(record),
        picture=_own_picture(record),
        duplicate=_original(originals.get(record.duplicate_of or "")),
        near_duplicate=_original(originals.get(record.near_duplicate_of or "")),
    )


def _original(record: ImageRecord | None) -> Original | None:
    """Only an original that still exists and is listed is worth a link (anything else would be a 404)."""
    if record is None or not record.listed:
        return None
    return Original(record.id, record.name, reverse("gallery:detail", args=[record.id]))


def _own_picture(record: ImageRecord) -> Picture | None:
    """The tile as the gallery draws it (CDN URLs) while listed; else the one tile its owner may fetch from
    hidden/ through a presigned GET. None while there are no renditions (uploading, processing, failed)."""
    if not record.renditions or record.status is not Status.READY:
        return None
    picture = Picture.from_document(api.image_document(record, services.pipeline_settings()))
    if not record.files_hidden:
        return picture
    tile = record.rendition("thumb", "jpeg", at_least=2 * OWN_THUMB_PX)
    if tile is None:
        return None
    return dataclasses.replace(
        picture,
        src=services.private_rendition_url(tile),
        width=tile.width,
        height=tile.height,
        srcset_avif="",
        srcset_webp="",
        srcset_jpeg="",
    )
