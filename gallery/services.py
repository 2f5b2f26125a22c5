"""Writes over the core's stores: start and confirm an upload, edit metadata, hide, delete, reprocess.

Views and the admin call these and stay short. The key layout, the record and its state changes come from
the core (``pipeline.keys``, ``pipeline.records``, ``pipeline.store``); nothing here redefines them.
"""

from __future__ import annotations

import functools
import logging
import time
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

from django.conf import settings

from pipeline import keys, records, visibility
from pipeline.config import Settings
from pipeline.records import ImageRecord, Status
from pipeline.reprocess import Summary, Throttle, touch_all
from pipeline.store import Aws, Cdn, ImageStore, ObjectMissing, ObjectStore

# What the upload accepts: the formats the processor decodes. Browsers name them with these types.
ACCEPTED_TYPES: Final = (
    "image/jpeg",
    "image/png",
    "image/webp",
    "image/avif",
    "image/gif",
    "image/tiff",
    "image/heic",
    "image/heif",
)
# A form without JavaScript cannot know the file's type before the person picks it, and S3 stores the form's
# Content-Type field as the object's type. Rather than claim "image/jpeg" for every file, the no-JS policy fixes
# the honest "unknown bytes" type; the processor detects the real format from the content either way.
UNKNOWN_TYPE: Final = "application/octet-stream"
# The no-JS form must fix its key before the file is chosen, so the file name in the key is a generic one.
NO_JS_FILE_NAME: Final = "upload"
# The longest file name a record keeps (most file systems' limit). The record holds it twice (file_name and the
# admin's search text) and every listing reads it, so an unbounded name would make items, pages and read costs
# grow with whatever a browser sends.
MAX_DISPLAY_NAME: Final = 255
# An extension longer than this is not one worth keeping when a name is cut.
MAX_EXTENSION: Final = 16
# Control, format (bidi overrides, zero-width) and separator characters: invisible or misleading in a name.
_UNPRINTABLE_CATEGORIES: Final = frozenset({"Cc", "Cf", "Cs", "Co", "Zl", "Zp"})

logger = logging.getLogger(__name__)


class UploadRefused(ValueError):
    """An upload request we will not sign; the message is shown to the person (HTTP 400)."""


class UploadUnavailable(RuntimeError):
    """DynamoDB or S3 failed while starting an upload; nothing was signed and the person may try again (HTTP 503)."""


class ImageNotFound(LookupError):
    """No such image (or not one this person may see)."""


class DeleteFailed(RuntimeError):
    """S3 refused part of a delete (or CloudFront the invalidation); the record was kept so a retry can finish."""


class VisibilityFailed(RuntimeError):
    """The hidden flag was saved but the files could not all be moved; saving again finishes the move."""


# -- the app's AWS ---------------------------------------------------------------------------------------------


def pipeline_settings() -> Settings:
    return settings.PIPELINE


@functools.cache
def aws() -> Aws:
    """The one Aws of this process, built from settings.PIPELINE (tests call ``aws.cache_clear()``)."""
    return Aws(pipeline_settings())


def image_store() -> ImageStore:
    return aws().image_store()


def object_store() -> ObjectStore:
    return aws().object_store()


def cdn() -> Cdn:
    return aws().cdn()


# -- upload ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class UploadTicket:
    """A record in ``uploading`` and the presigned POST that lets one browser put one file at its key."""

    image_id: str
    key: str
    url: str
    fields: dict[str, str]
    content_type: str
    expires_in: int


def check_upload(*, size: Any, content_type: Any) -> tuple[int, str]:
    """The declared size and type of a file, or UploadRefused saying what is wrong with them."""
    limit = pipeline_settings().imaging.max_bytes
    formats = "Upload JPEG, PNG, WebP, AVIF, GIF, TIFF or HEIC/HEIF files."
    if not isinstance(content_type, str) or not content_type:
        raise UploadRefused(f"This file does not look like an image (its type is unknown). {formats}")
    if content_type.lower() not in ACCEPTED_TYPES:
        raise UploadRefused(f"{content_type} is not an accepted image type. {formats}")
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise UploadRefused("The file is empty or its size is unknown.")
    if size > limit:
        raise UploadRefused(f"The file is {megabytes(size)}; the largest accepted upload is {megabytes(limit)}.")
    return size, content_type.lower()


def display_file_name(file_name: str) -> str:
    """The name people gave a file as the record shows it: no control or invisible characters, runs of white
    space as one space, at most MAX_DISPLAY_NAME characters with the extension kept. Empty if nothing is left."""
    printable = "".join(
        " " if character.isspace() else character
        for character in file_name
        if unicodedata.category(character) not in _UNPRINTABLE_CATEGORIES or character.isspace()
    )
    name = " ".join(printable.split())
    if len(name) <= MAX_DISPLAY_NAME:
        return name
    stem, dot, extension = name.rpartition(".")
    if dot and stem and len(extension) <= MAX_EXTENSION:
        return stem[: MAX_DISPLAY_NAME - len(extension) - 1].rstrip() + dot + extension
    return name[:MAX_DISPLAY_NAME].rstrip()


def start_upload(
    owner: str,
    file_name: str,
    *,
    content_type: str | None = None,
    redirect_url: str | None = None,
    max_bytes: int | None = None,
) -> UploadTicket:
    """Create the ``uploading`` record first (so the gallery can show it), then sign a POST for its exact key.

    With ``content_type`` the policy fixes that type (the JavaScript path, which knows each file's type);
    without it the form declares the honest unknown type (the no-JavaScript path). ``redirect_url`` makes S3
    answer a successful POST with a 303 to it (with ``bucket``, ``key`` and ``etag`` in the query) instead of
    a 201 for a script. ``max_bytes`` lowers the policy's size limit below the pipeline's (to the size a script
    declared, which the upload quota counted). UploadUnavailable if DynamoDB or S3 fails.
    """
    config = pipeline_settings()
    file_name = display_file_name(file_name) or NO_JS_FILE_NAME
    image_id = keys.new_image_id()
    raw_key = keys.raw_key_for_upload(image_id, file_name)
    record = records.new_record(
        image_id,
        raw_key,
        Status.UPLOADING,
        file_name=file_name,
        owner=owner,
        content_type=content_type,
        # Uploads that never arrive disappear through DynamoDB TTL.
        expires_at=int(time.time()) + config.upload_ttl_seconds,
    )
    declared = content_type or UNKNOWN_TYPE
    try:
        image_store().create(record)
        post = object_store().presigned_post(
            raw_key,
            max_bytes=min(max_bytes or config.imaging.max_bytes, config.imaging.max_bytes),
            expires_in=config.upload_expiry_seconds,
            content_type=declared,
            redirect_url=redirect_url,
        )
    except Exception as error:  # StoreError, and botocore's ClientError/connection errors the stores pass on
        logger.exception("could not start an upload for %s", owner)
        raise UploadUnavailable(
            "Uploads are not available right now (the image store did not answer). Try again in a minute."
        ) from error
    return UploadTicket(
        image_id=image_id,
        key=raw_key,
        url=post["url"],
        fields=dict(post["fields"]),
        content_type=declared,
        expires_in=config.upload_expiry_seconds,
    )


def confirm_upload(owner: str, *, bucket: str, key: str) -> ImageRecord:
    """The record of an upload S3 just accepted (the ``bucket``/``key`` S3 redirected with), if it is ``owner``'s.

    UploadRefused for a malformed answer, ImageNotFound for a key that is not one of this person's uploads.
    """
    config = pipeline_settings()
    if bucket != config.bucket or not keys.is_raw_key(key):
        raise UploadRefused("This link does not describe an upload to this site.")
    record = image_store().get(keys.image_id_for_raw_key(key, config.secret), consistent=True)
    if record is None or record.raw_key != key or record.owner != owner:
        raise ImageNotFound("No upload of yours has this key.")
    return record


# -- staff actions ---------------------------------------------------------------------------------------------


def get_record(image_id: str) -> ImageRecord:
    record = image_store().get(image_id, consistent=True) if keys.is_image_id(image_id) else None
    if record is None:
        raise ImageNotFound(f"No image with id {image_id!r}; it may have been deleted.")
    return record


def update_metadata(image_id: str, *, title: str, alt_text: str, tags: Iterable[str], hidden: bool) -> ImageRecord:
    """Change what people may edit; the store rewrites the tag items and the Listed index in one transaction.

    A changed ``hidden`` takes the image out of (or back into) the listings with that same write, then moves its
    files between public/ and hidden/ (pipeline.visibility). Saving a hidden image again re-checks its files and
    asks the CDN to forget them again, which finishes a hide that failed halfway. VisibilityFailed if the files
    could not be moved: the metadata is saved either way.
    """
    normalized = records.normalize_tags(list(tags))
    was_hidden: bool | None = None

    def edit(current: ImageRecord | None) -> ImageRecord | None:
        nonlocal was_hidden
        if current is None:
            return None
        was_hidden = current.hidden
        return current.replace(
            title=title.strip(), alt_text=alt_text.strip(), tags=normalized, hidden=hidden, updated_at=records.now_iso()
        )

    saved = image_store().update(image_id, edit)
    if saved is None:
        raise ImageNotFound(f"No image with id {image_id!r}; it may have been deleted.")
    misplaced = any(keys.is_hidden_key(r.key) != saved.hidden for r in saved.renditions)
    if was_hidden != saved.hidden or saved.hidden or misplaced:
        try:
            settled = visibility.settle(image_store(), object_store(), cdn(), saved.id, invalidate=saved.hidden)
        except Exception as error:  # StoreError, and botocore's ClientError/connection errors the stores pass on
            where = "out of the gallery and the API" if saved.hidden else "listed again"
            raise VisibilityFailed(
                f"Saved: the image is {where}, but its files were not all moved to "
                f"{keys.HIDDEN_PREFIX if saved.hidden else keys.PUBLIC_PREFIX} ({error}). Save again to finish."
            ) from error
        saved = settled or saved
    return saved


def delete_image(image_id: str) -> ImageRecord:
    """Remove the raw upload and every rendition from S3 (public/ and hidden/, any layout), have the CDN forget
    the image's paths, then delete the record.

    In that order: if S3 or CloudFront refuses, the record stays (and says where the files are), so a retry can
    finish the job; the other way round a failure would leave files that nothing points to.
    """
    record = get_record(image_id)
    try:
        object_store().delete([record.raw_key])
        visibility.remove_all(object_store(), cdn(), record)
    except Exception as error:  # StoreError, and botocore's ClientError/connection errors the stores pass on
        raise DeleteFailed(
            f"S3 did not delete the files of {record.id} (or CloudFront was not told to forget them), so the image "
            f"was kept; delete it again to finish: {error}"
        ) from error
    image_store().delete(record)
    return record


def reprocess(image_id: str) -> ImageRecord:
    """Run the processor again on the image's original, through the ordinary S3 event (see ObjectStore.touch)."""
    record = get_record(image_id)
    try:
        object_store().touch(record.raw_key)
    except ObjectMissing:
        if record.status is Status.UPLOADING:
            raise ImageNotFound(f"{record.id}: the upload never arrived, so there is nothing to process.") from None
        raise ImageNotFound(f"{record.id}: the original upload is no longer in S3.") from None
    return record


def reprocess_records(found: Iterable[ImageRecord], *, rate: float) -> Summary:
    """Touch the originals of these images, at most ``rate`` a second (the admin's "every image matching")."""
    return touch_all(object_store(), found, throttle=Throttle(rate))


def megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MB"
