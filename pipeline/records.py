"""ImageRecord, its DynamoDB item layout and its table schema: the one definition of what an image is.

Key design (one table, written down here and nowhere else; ``infra/`` and the local stack build the table
from ``TABLE_SCHEMA``, and a test fails if the template drifts from it):

=========================  ================  ===============  =============================================
item                       pk                sk               index attributes
=========================  ================  ===============  =============================================
the image                  ``IMAGE#<id>``    ``IMAGE``        ``entity``/``created_sk`` (once it arrived,
                                                              not while in the trash),
                                                              ``status_pk``/``created_sk`` (by status, the
                                                              trash as ``status_pk=deleted``),
                                                              ``listed_pk=ALL``/``created_sk`` while public
                                                              (and ``listed_pk``/``taken_sk`` the same),
                                                              ``owner_pk=OWNER#<user>``/``created_sk`` for
                                                              an upload's owner (not while in the trash)
a tag of a public image    ``IMAGE#<id>``    ``TAG#<tag>``    ``listed_pk=TAG#<tag>``/``created_sk``
                                                              and ``listed_pk``/``taken_sk``
a ready image's hash       ``SHA256#<hex>``  ``IMAGE#<id>``   (none: read by the key, for duplicates)
a ready image's phash      ``PHASH#<n>#<h>`` ``IMAGE#<id>``   (none: one of PHASH_BANDS slices of its
                                                              perceptual hash, for near-duplicates)
=========================  ================  ===============  =============================================

``created_sk`` is ``<created_at ISO>#<id>``: unique and ordered, so every listing is a Query on an index,
newest first with ``ScanIndexForward=False``, never a Scan:

* ``Listed`` (sparse: only ready, visible images and their tag items) serves the gallery and the public API,
  with or without a tag, one Query a page and no filter that could leave a page short;
* ``ListedByTaken`` is the same sparse set ordered by the date the photo was taken (``taken_sk``, from
  pipeline.photo: newest taken first, undated photos after every dated one), for ``?sort=taken``;
* ``ByOwner`` serves an uploader's own list (``/my/``), in every status but the trash;
* ``ByStatus`` serves the admin's status filter (``failed`` images together) and the trash (``deleted``: the
  admin's "Trash" and the purge, pipeline.trash), ``ByEntity`` its full list: every image whose file arrived
  and that is not in the trash. Upload forms that were handed out but never used (``uploading``, expiring
  through TTL) and trashed images stay out of it and are found under their status.

An image in the trash (``deleted``) keeps its item, with ``deleted_at``, ``deleted_by``, the status it had
(``status_before_delete``) and when the purge may remove it (``purge_after``, fixed when it was trashed); it has
no TTL (the purge deletes its files first, then the item) and no tag items.

Published means no review is outstanding (``review`` is None): an image waiting for staff (PUBLISH_REVIEW),
for its alt text (REQUIRE_ALT_TEXT) or rejected is ``ready`` but listed nowhere, and its files sit under
``hidden/`` like a hidden image's, so nothing unreviewed is on the CDN.

The lookup items (``SHA256#``, ``PHASH#``) exist while the image is ``ready``: they answer "is this upload
already in the gallery?" with a Query on one key, never a Scan.

Items also carry ``search_text`` (title and file name in lower case), which the admin's search filters on.
Tag items carry a copy of the image's attributes (the index projects everything), so a tag page is one
Query too. The store writes an image and its tag items in one transaction, guarded by ``revision``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Final

from pipeline import keys
from pipeline.photo import Camera, Location, taken_sort_key

HISTORY_LIMIT: Final = 20
MAX_TAGS: Final = 20
MAX_TAG_LENGTH: Final = 40
MAX_TITLE_LENGTH: Final = 200
MAX_ALT_TEXT_LENGTH: Final = 500

# Index names and their key attributes.
LISTED_INDEX: Final = "Listed"
STATUS_INDEX: Final = "ByStatus"
ENTITY_INDEX: Final = "ByEntity"
TAKEN_INDEX: Final = "ListedByTaken"
OWNER_INDEX: Final = "ByOwner"
LISTED_ALL: Final = "ALL"
ENTITY_IMAGE: Final = "IMAGE"
IMAGE_SK: Final = "IMAGE"
TTL_ATTRIBUTE: Final = "expires_at"
LOOKUP_SK_PREFIX: Final = "IMAGE#"
# A perceptual hash (16 hex digits, 64 bits) is stored in this many slices, one lookup item each: two hashes
# within PHASH_BANDS - 1 bits of each other share at least one slice exactly (pigeonhole).
PHASH_BANDS: Final = 4


class Status(StrEnum):
    UPLOADING = "uploading"  # Django handed out a policy; the file has not arrived yet
    PROCESSING = "processing"
    READY = "ready"
    FAILED = "failed"
    DELETED = "deleted"  # in the trash: listed nowhere, files under hidden/, restorable until purged


class Review(StrEnum):
    """Why a ready image is not published yet (``ImageRecord.review``; None means published)."""

    PENDING = "pending"  # PUBLISH_REVIEW=required and the uploader may not publish: staff approve or reject it
    NEEDS_ALT_TEXT = "needs_alt_text"  # REQUIRE_ALT_TEXT: published as soon as it has alt text
    REJECTED = "rejected"  # staff said no (``review_reason`` says why; the uploader sees it)


class InTrash(ValueError):
    """The image is in the trash: it cannot be edited, hidden, shown or reprocessed until it is restored."""


@dataclass(frozen=True)
class Rendition:
    """One stored file: a rung of the ``optimized`` ladder or a ``thumb`` tile, as ``jpeg`` or ``webp``, and its key."""

    name: keys.RenditionName
    format: keys.RenditionFormat
    key: str
    width: int
    height: int
    bytes: int

    @property
    def content_type(self) -> str:
        return f"image/{self.format}"

    def replace(self, **changes: Any) -> Rendition:
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class HistoryEntry:
    at: str
    status: Status
    reason: str | None = None


@dataclass(frozen=True)
class ImageRecord:
    id: str
    status: Status
    raw_key: str
    file_name: str
    created_at: str
    updated_at: str = ""
    content_type: str | None = None
    byte_size: int | None = None
    sha256: str | None = None
    # The source's size as displayed, after EXIF orientation.
    width: int | None = None
    height: int | None = None
    format: str | None = None
    frames: int | None = None
    renditions: tuple[Rendition, ...] = ()
    processed_at: str | None = None
    failure_reason: str | None = None
    history: tuple[HistoryEntry, ...] = ()
    blurhash: str | None = None
    dominant_color: str | None = None
    notes: tuple[str, ...] = ()
    title: str = ""
    alt_text: str = ""
    tags: tuple[str, ...] = ()
    hidden: bool = False
    owner: str | None = None
    # S3 event ordering: the sequencer of the object version the record describes (hex, compared padded).
    source_sequencer: str | None = None
    source_etag: str | None = None
    # Files of earlier runs that the record no longer names and that are still to be deleted: written in the same
    # transaction that moves the record to its new renditions, cleared once S3 confirmed the delete, so a failure
    # in between is finished by the next delivery or run instead of leaving orphans.
    stale_keys: tuple[str, ...] = ()
    # Optimistic concurrency: bumped by every write, checked by the next.
    revision: int = 0
    # Epoch seconds; set only while ``uploading`` so abandoned uploads vanish through DynamoDB TTL.
    expires_at: int | None = None
    # In the trash (status ``deleted``): when and by whom, the status to restore, and from when the purge may
    # remove it (ISO times like ``created_at``). ``purge_started_at`` is set by the purge before it deletes
    # anything, so that a restore can never bring back an image whose files are being deleted.
    deleted_at: str | None = None
    deleted_by: str | None = None
    status_before_delete: Status | None = None
    purge_after: str | None = None
    purge_started_at: str | None = None
    # Photo facts from the upload's EXIF/XMP (pipeline.photo): when it was taken (ISO 8601, with the offset when
    # the camera wrote one), the camera, and, only with KEEP_LOCATION, where (private: staff only).
    taken_at: str | None = None
    camera: Camera | None = None
    location: Location | None = None
    # The publish gate: None when published; otherwise why not yet (Review), with staff's reason on a rejection.
    review: Review | None = None
    review_reason: str | None = None
    reviewed_by: str | None = None
    reviewed_at: str | None = None
    # Duplicates: the earlier image whose upload had the same bytes (sha256), or a perceptual hash within the
    # near-duplicate distance; ``phash`` is this image's (16 hex digits), when near-duplicates are on.
    duplicate_of: str | None = None
    near_duplicate_of: str | None = None
    phash: str | None = None

    # -- state changes (pure: each returns a new record) -------------------------------------------

    def with_status(self, status: Status, reason: str | None = None, at: str | None = None) -> ImageRecord:
        when = at or now_iso()
        entry = HistoryEntry(at=when, status=status, reason=reason)
        history = (*self.history, entry)[-HISTORY_LIMIT:]
        return dataclasses.replace(
            self,
            status=status,
            failure_reason=reason if status is Status.FAILED else None,
            history=history,
            updated_at=when,
            expires_at=self.expires_at if status is Status.UPLOADING else None,
        )

    def to_trash(self, *, by: str, at: str, purge_after: str) -> ImageRecord:
        """In the trash: status ``deleted``, out of every listing; title, tags, owner, renditions and the failure
        reason are kept for the restore."""
        trashed = self.with_status(Status.DELETED, reason=f"moved to the trash by {by}", at=at)
        return trashed.replace(
            failure_reason=self.failure_reason,
            deleted_at=at,
            deleted_by=by,
            status_before_delete=self.status,
            purge_after=purge_after,
            purge_started_at=None,
        )

    def from_trash(self, *, by: str, at: str, expires_at: int | None = None) -> ImageRecord:
        """Back from the trash with the status it had (``expires_at``: the TTL an ``uploading`` one gets again)."""
        previous = self.status_before_delete or Status.FAILED
        restored = self.with_status(previous, reason=f"restored from the trash by {by}", at=at)
        return restored.replace(
            failure_reason=self.failure_reason if previous is Status.FAILED else None,
            expires_at=expires_at if previous is Status.UPLOADING else None,
            deleted_at=None,
            deleted_by=None,
            status_before_delete=None,
            purge_after=None,
            purge_started_at=None,
        )

    def replace(self, **changes: Any) -> ImageRecord:
        return dataclasses.replace(self, **changes)

    @property
    def name(self) -> str:
        """How people know the image: its title, else the uploaded file's name."""
        return self.title or self.file_name

    @property
    def published(self) -> bool:
        """No review outstanding (the publish gate let it through, or there is none)."""
        return self.review is None

    @property
    def listed(self) -> bool:
        """Whether the gallery and the public API list this image."""
        return self.status is Status.READY and not self.hidden and self.published

    @property
    def in_trash(self) -> bool:
        return self.status is Status.DELETED

    @property
    def files_hidden(self) -> bool:
        """Whether its renditions belong under hidden/, out of the CDN's reach: hidden by staff, in the trash, or
        not published yet (the publish gate).

        ``hidden`` itself is left as staff set it, so a restored image goes back to where it was."""
        return self.hidden or self.in_trash or not self.published

    def rendition(self, name: str, fmt: str, *, at_least: int = 0) -> Rendition | None:
        """The narrowest rendition of family ``name`` in ``fmt`` at least ``at_least`` px wide, else the widest."""
        family = sorted((r for r in self.renditions if r.name == name and r.format == fmt), key=lambda r: r.width)
        return next((r for r in family if r.width >= at_least), family[-1] if family else None)

    @property
    def created_sk(self) -> str:
        return f"{self.created_at}#{self.id}"

    @property
    def taken_sk(self) -> str:
        return taken_sort_key(self.taken_at, self.created_sk)

    def lookup_keys(self) -> list[dict[str, str]]:
        """The keys of this image's lookup items (sha256, perceptual-hash slices): present while it is ready."""
        if self.status is not Status.READY:
            return []
        sk = f"{LOOKUP_SK_PREFIX}{self.id}"
        found = [{"pk": sha256_pk(self.sha256), "sk": sk}] if self.sha256 else []
        found += [{"pk": pk, "sk": sk} for pk in phash_pks(self.phash)] if self.phash else []
        return found

    # -- DynamoDB items (plain Python values; the store serializes them) ----------------------------

    def to_items(self) -> list[dict[str, Any]]:
        """The image item, then one item per tag while the image is listed (use ``lookup_items`` for the rest)."""
        body = _attributes(self)
        main = {"pk": image_pk(self.id), "sk": IMAGE_SK, "status_pk": self.status.value, **body}
        if self.status not in (Status.UPLOADING, Status.DELETED):
            main["entity"] = ENTITY_IMAGE
        if self.owner and self.status is not Status.DELETED:
            main["owner_pk"] = owner_pk(self.owner)
        if not self.listed:
            return [main]
        main["listed_pk"] = LISTED_ALL
        main["taken_sk"] = self.taken_sk
        tag_items = [
            {**body, "pk": image_pk(self.id), "sk": tag_sk(tag), "listed_pk": tag_pk(tag), "taken_sk": self.taken_sk}
            for tag in self.tags
        ]
        return [main, *tag_items]

    def lookup_items(self) -> list[dict[str, Any]]:
        """Small items under other partitions that point back at this image (``lookup_keys``)."""
        facts = {"image_id": self.id, "created_sk": self.created_sk, **({"phash": self.phash} if self.phash else {})}
        return [{**key, **facts} for key in self.lookup_keys()]

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> ImageRecord:
        names = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in item.items() if k in names}
        values["status"] = Status(values["status"])
        if values.get("status_before_delete"):
            values["status_before_delete"] = Status(values["status_before_delete"])
        if values.get("review"):
            values["review"] = Review(values["review"])
        if values.get("camera"):
            values["camera"] = Camera.from_dict(values["camera"])
        if values.get("location"):
            values["location"] = Location.from_dict(values["location"])
        values["renditions"] = tuple(
            Rendition(
                name=r["name"],
                format=r["format"],
                key=r["key"],
                width=int(r["width"]),
                height=int(r["height"]),
                bytes=int(r["bytes"]),
            )
            for r in values.get("renditions", ())
        )
        values["history"] = tuple(
            HistoryEntry(at=h["at"], status=Status(h["status"]), reason=h.get("reason"))
            for h in values.get("history", ())
        )
        for name in ("tags", "notes", "stale_keys"):
            values[name] = tuple(values.get(name, ()))
        for name in ("byte_size", "width", "height", "frames", "revision", "expires_at"):
            if values.get(name) is not None:
                values[name] = int(values[name])
        return cls(**values)


def new_record(
    image_id: str,
    raw_key: str,
    status: Status,
    *,
    file_name: str | None = None,
    owner: str | None = None,
    content_type: str | None = None,
    expires_at: int | None = None,
    at: str | None = None,
) -> ImageRecord:
    when = at or now_iso()
    return ImageRecord(
        id=image_id,
        status=status,
        raw_key=raw_key,
        file_name=file_name or keys.file_name_from_raw_key(raw_key),
        created_at=when,
        updated_at=when,
        owner=owner,
        content_type=content_type,
        history=(HistoryEntry(at=when, status=status),),
        expires_at=expires_at if status is Status.UPLOADING else None,
    )


def normalize_tags(raw: str | list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """Tags as people type them ("Beach, sunset  ,beach") -> ("beach", "sunset"): lower case, unique, ordered."""
    parts = raw.split(",") if isinstance(raw, str) else raw
    tags: list[str] = []
    for part in parts:
        tag = " ".join(part.split()).lower()[:MAX_TAG_LENGTH]
        if tag and tag not in tags:
            tags.append(tag)
    if len(tags) > MAX_TAGS:
        raise ValueError(f"at most {MAX_TAGS} tags, got {len(tags)}")
    return tuple(tags)


def image_pk(image_id: str) -> str:
    return f"IMAGE#{image_id}"


def tag_pk(tag: str) -> str:
    return f"TAG#{tag}"


def tag_sk(tag: str) -> str:
    return f"TAG#{tag}"


def owner_pk(owner: str) -> str:
    return f"OWNER#{owner}"


def sha256_pk(sha256: str) -> str:
    return f"SHA256#{sha256}"


def phash_pks(phash: str) -> list[str]:
    """``PHASH#<n>#<slice>`` for each of PHASH_BANDS slices of a perceptual hash in hex."""
    step = -(-len(phash) // PHASH_BANDS)
    return [f"PHASH#{n}#{phash[n * step : (n + 1) * step]}" for n in range(PHASH_BANDS)]


def now_iso() -> str:
    """UTC time with microseconds, so that ``created_sk`` orders uploads within a second."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _attributes(record: ImageRecord) -> dict[str, Any]:
    body: dict[str, Any] = {}
    for f in dataclasses.fields(record):
        value = getattr(record, f.name)
        if value is None or value == () or value == "":
            continue  # DynamoDB keeps no empty strings in index keys; absent reads back as the default
        if f.name == "renditions":
            value = [dataclasses.asdict(r) for r in value]
        elif isinstance(value, Camera | Location):
            value = value.to_dict()
            if not value:
                continue
        elif f.name == "history":
            value = [
                {"at": h.at, "status": h.status.value, **({"reason": h.reason} if h.reason else {})} for h in value
            ]
        elif isinstance(value, tuple):
            value = list(value)
        elif isinstance(value, StrEnum):
            value = value.value
        body[f.name] = value
    body["created_sk"] = record.created_sk
    # Derived, for the admin's search (a FilterExpression's contains() is case-sensitive): never read back.
    body["search_text"] = " ".join(part for part in (record.title, record.file_name) if part).lower()
    return body


def _key_schema(pk: str, sk: str) -> list[dict[str, str]]:
    return [{"AttributeName": pk, "KeyType": "HASH"}, {"AttributeName": sk, "KeyType": "RANGE"}]


def _index(name: str, pk: str, sk: str) -> dict[str, Any]:
    """A global secondary index that projects every attribute (a page is read from the index alone)."""
    return {"IndexName": name, "KeySchema": _key_schema(pk, sk), "Projection": {"ProjectionType": "ALL"}}


# The table's keys and indexes, in CreateTable's own words. The local stack and tests create the table
# from this; infra/ declares the same and a test compares them.
TABLE_SCHEMA: Final[dict[str, Any]] = {
    "AttributeDefinitions": [
        {"AttributeName": name, "AttributeType": "S"}
        for name in ("pk", "sk", "listed_pk", "status_pk", "entity", "created_sk", "taken_sk", "owner_pk")
    ],
    "KeySchema": _key_schema("pk", "sk"),
    "GlobalSecondaryIndexes": [
        _index(LISTED_INDEX, "listed_pk", "created_sk"),
        _index(STATUS_INDEX, "status_pk", "created_sk"),
        _index(ENTITY_INDEX, "entity", "created_sk"),
        _index(TAKEN_INDEX, "listed_pk", "taken_sk"),
        _index(OWNER_INDEX, "owner_pk", "created_sk"),
    ],
    "BillingMode": "PAY_PER_REQUEST",
}
