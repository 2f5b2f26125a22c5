"""Writes over the core's stores: start and confirm an upload, edit metadata, hide, trash, restore, delete for
good, reprocess; the publish gate (approve, reject) and what an uploader may do to their own images.

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

from pipeline import api, keys, records, review, trash, visibility
from pipeline.config import Settings
from pipeline.records import ImageRecord, InTrash, Rendition, Status
from pipeline.reprocess import Summary, Throttle, touch_all
from pipeline.review import AltTextRequired as AltTextRequired
from pipeline.review import ReviewRefused as ReviewRefused
from pipeline.store import Aws, Cdn, ImageStore, Mutation, ObjectMissing, ObjectStore

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


class RestoreRefused(ValueError):
    """The image cannot be restored: it is not in the trash, or its permanent delete has begun."""


class VisibilityFailed(RuntimeError):
    """The hidden flag was saved but the files could not all be moved; saving again finishes the move."""


class RetryRefused(ValueError):
    """Only a failed image can be retried by its owner; the message says what state it is in."""


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
    can_publish: bool,
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

    ``can_publish`` (see ``may_publish``) decides the publish gate's starting point (pipeline.review): without
    it, under PUBLISH_REVIEW=required, the image waits for staff; with REQUIRE_ALT_TEXT every upload waits for
    its alt text. The record carries that review from the start, so the processor writes its renditions under
    hidden/ and nothing unreviewed ever reaches the CDN.
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
    ).replace(
        review=review.initial_review(
            publish_review=config.publish_review, require_alt_text=config.require_alt_text, can_publish=can_publish
        )
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


def may_publish(user: Any) -> bool:
    """Whether this person's uploads skip staff review: staff (the issue: "staff uploads publish directly") and
    anyone granted ``gallery.publish_image`` (a trusted uploader who is not staff)."""
    return bool(user.is_staff or user.has_perm("gallery.publish_image"))


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
        raise _not_found(image_id)
    return record


def update_metadata(image_id: str, *, title: str, alt_text: str, tags: Iterable[str], hidden: bool) -> ImageRecord:
    """Change what people may edit; the store rewrites the tag items and the Listed index in one transaction.

    A changed ``hidden`` takes the image out of (or back into) the listings with that same write, then moves its
    files between public/ and hidden/ (pipeline.visibility). Saving a hidden image again re-checks its files and
    asks the CDN to forget them again, which finishes a hide that failed halfway. VisibilityFailed if the files
    could not be moved: the metadata is saved either way.

    The publish gate's rules hold for staff too (pipeline.review.after_edit): alt text given to an image waiting
    for it publishes it; AltTextRequired if REQUIRE_ALT_TEXT is on and the edit empties a published image's alt
    text. Approving a pending image is its own action (``approve``), never a side effect of an edit.
    """
    return _save_metadata(image_id, title=title, alt_text=alt_text, tags=tags, hidden=hidden, owner=None)


def edit_own(image_id: str, owner: str, *, title: str, alt_text: str, tags: Iterable[str]) -> ImageRecord:
    """An uploader's edit of their own image's title, alt text and tags (the /my/ page); ``hidden`` stays as
    staff set it. ImageNotFound unless ``owner`` uploaded it (someone else's image is answered like a missing
    one), InTrash, AltTextRequired and VisibilityFailed as ``update_metadata``."""
    return _save_metadata(image_id, title=title, alt_text=alt_text, tags=tags, hidden=None, owner=owner)


def _save_metadata(
    image_id: str, *, title: str, alt_text: str, tags: Iterable[str], hidden: bool | None, owner: str | None
) -> ImageRecord:
    """The edit behind ``update_metadata`` (staff, ``owner`` None) and ``edit_own`` (only ``owner``'s image)."""
    normalized = records.normalize_tags(list(tags))
    require_alt_text = pipeline_settings().require_alt_text
    before: ImageRecord | None = None

    def edit(current: ImageRecord | None) -> ImageRecord | None:
        nonlocal before
        if current is None or (owner is not None and current.owner != owner):
            return None
        if current.in_trash:
            name = current.name
            raise InTrash(f"“{name}” is in the trash: restore it before you edit, hide or show it.")
        before = current
        edited = current.replace(
            title=title.strip(),
            alt_text=alt_text.strip(),
            tags=normalized,
            hidden=current.hidden if hidden is None else hidden,
            updated_at=records.now_iso(),
        )
        return review.after_edit(current, edited, require_alt_text=require_alt_text)

    saved = image_store().update(_known_id(image_id), edit)
    if saved is None or before is None:
        raise _not_found(image_id)
    if before.files_hidden != saved.files_hidden or saved.hidden or _misplaced(saved):
        # Ask the CDN to forget the image when it leaves it, and on every save of a hidden image (that finishes a
        # hide that failed halfway); an image that was never public (pending review) has nothing there to forget.
        where = "out of the gallery and the API" if saved.files_hidden else "listed again"
        saved = _settle(
            saved,
            invalidate=saved.hidden or (saved.files_hidden and not before.files_hidden),
            done=f"Saved: the image is {where}",
            again="Save again to finish.",
        )
    elif saved.published:
        # The page and the document show the new title, alt text and tags at once, not when the CDN's copy ages
        # out (listing pages do: max-age). Best effort: the edit is saved, a stale copy lasts two minutes at most.
        _forget_documents(saved.id)
    return saved


def _forget_documents(image_id: str) -> None:
    try:
        cdn().invalidate(keys.cdn_document_paths(image_id))
    except Exception:  # botocore's ClientError/connection errors
        logger.warning("could not invalidate the CDN's copy of image %s's page and document", image_id)


# -- the publish gate --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reviewed:
    """What ``approve`` or ``reject`` did to one image: the record now, and whether it changed (False when it
    already was as asked)."""

    record: ImageRecord
    changed: bool


def approve(image_id: str, *, by: str) -> Reviewed:
    """Publish a ready image held by the gate (pending, rejected: staff may change their mind, or waiting for alt
    text), then move its files from hidden/ to public/.

    ReviewRefused without alt text under REQUIRE_ALT_TEXT ("add alt text first") or for an image that is not ready,
    InTrash, ImageNotFound, VisibilityFailed if the files could not all be moved (approving again finishes).

    Nothing is invalidated at the CDN: its renditions were never public under these keys (a rejection already made
    the CDN forget an image that had been public). The one thing a CDN may hold is a 404 for its page or document,
    if someone without a login asked for it while it was unpublished: that ages out within PAGE_MAX_AGE plus
    stale-while-revalidate (two minutes), as the listing pages do, and is not worth an invalidation per approval.
    """
    require_alt_text = pipeline_settings().require_alt_text

    def publish(current: ImageRecord | None) -> ImageRecord | None:
        if current is None or (current.published and not current.in_trash):
            return None  # already published: nothing to write
        return review.approve(current, by=by, require_alt_text=require_alt_text)

    return _review(image_id, publish, invalidate=False)


def reject(image_id: str, *, by: str, reason: str) -> Reviewed:
    """Reject a ready image with ``reason`` (the uploader sees it on their uploads): it leaves the listings with
    the same write, its files stay under (or move to) hidden/, and the CDN forgets it if it had been public (an
    approved image rejected later). ReviewRefused without a reason, InTrash, ImageNotFound, VisibilityFailed."""

    def refuse(current: ImageRecord | None) -> ImageRecord | None:
        if current is None:
            return None
        rejected = review.reject(current, by=by, reason=reason)
        if current.review is rejected.review and current.review_reason == rejected.review_reason:
            return None
        return rejected

    return _review(image_id, refuse, invalidate=True)


def _review(image_id: str, decide: Mutation, *, invalidate: bool) -> Reviewed:
    """Apply a review decision in one guarded write, then put the files on the side the record now says."""
    before = get_record(image_id)
    saved = image_store().update(image_id, decide)
    if saved is None:
        current = get_record(image_id)
        # Unchanged (already so): still settle, so that a move that failed before is finished by asking again.
        return Reviewed(_settle_reviewed(current, was_public=False, invalidate=invalidate), changed=False)
    return Reviewed(_settle_reviewed(saved, was_public=not before.files_hidden, invalidate=invalidate), changed=True)


def _settle_reviewed(record: ImageRecord, *, was_public: bool, invalidate: bool) -> ImageRecord:
    if not _misplaced(record) and not (was_public and record.files_hidden):
        return record
    return _settle(
        record,
        invalidate=invalidate and was_public,
        done=f"The review of “{record.name}” was saved",
        again="Do it again to finish.",
    )


def _misplaced(record: ImageRecord) -> bool:
    """Whether a rendition sits on the other side of public/ and hidden/ than the record says it should."""
    return any(keys.is_hidden_key(r.key) != record.files_hidden for r in record.renditions)


def _settle(record: ImageRecord, *, invalidate: bool, done: str, again: str) -> ImageRecord:
    """Put the files where the saved ``record`` says (pipeline.visibility); VisibilityFailed, saying what was
    ``done`` and to do it ``again``, if they could not all be moved."""
    try:
        settled = visibility.settle(image_store(), object_store(), cdn(), record.id, invalidate=invalidate)
    except Exception as error:  # StoreError, and botocore's ClientError/connection errors the stores pass on
        raise VisibilityFailed(
            f"{done}, but its files were not all moved to "
            f"{keys.HIDDEN_PREFIX if record.files_hidden else keys.PUBLIC_PREFIX} ({error}). {again}"
        ) from error
    return settled or record


# -- an uploader's own images (the /my/ page) --------------------------------------------------------------------


def own_record(image_id: str, owner: str) -> ImageRecord:
    """The image if ``owner`` uploaded it; ImageNotFound otherwise, worded as for a missing image so that nobody
    learns which ids exist."""
    record = get_record(image_id)
    if record.owner != owner:
        raise _not_found(image_id)
    return record


def trash_own(image_id: str, owner: str) -> ImageRecord:
    """An uploader deletes their own image: to the trash, as staff's delete (``trash_image``), by them."""
    own_record(image_id, owner)
    return trash_image(image_id, by=owner)


def retry_own(image_id: str, owner: str) -> ImageRecord:
    """An uploader retries their own failed image through the ordinary S3 event, as ``reprocess`` does.

    RetryRefused unless it failed (a ready one is not theirs to re-render at will), InTrash in the trash,
    ImageNotFound if it is not theirs or its original is gone."""
    record = own_record(image_id, owner)
    if record.in_trash:
        raise InTrash(f"“{record.name}” is in the trash: restore it first, then retry it.")
    if record.status is not Status.FAILED:
        raise RetryRefused(f"“{record.name}” is {record.status.value}: only a failed image can be retried.")
    return reprocess(image_id)


def trash_image(image_id: str, *, by: str) -> ImageRecord:
    """Move the image to the trash (pipeline.trash): listed nowhere at once, its files off the CDN, restorable
    until ``purge_after`` (TRASH_RETENTION_DAYS from now). DeleteFailed if its files could not all be moved (the
    image is in the trash either way; deleting it again finishes)."""
    retention_days = pipeline_settings().trash_retention_days
    try:
        record = trash.trash(
            image_store(), object_store(), cdn(), _known_id(image_id), by=by, retention_days=retention_days
        )
    except trash.TrashIncomplete as error:
        raise DeleteFailed(
            f"“{image_id}” is in the trash and listed nowhere, but S3 did not move all of its files off the CDN (or "
            f"CloudFront was not told to forget them); delete it again to finish: {error.__cause__ or error}"
        ) from error
    if record is None:
        raise _not_found(image_id)
    return record


def restore_image(image_id: str, *, by: str) -> trash.Restored:
    """Take the image out of the trash with the status it had. RestoreRefused if it is not in the trash (or its
    permanent delete began), VisibilityFailed if its files could not all be moved back (saving it finishes)."""
    try:
        restored = trash.restore(
            image_store(),
            object_store(),
            cdn(),
            _known_id(image_id),
            by=by,
            upload_ttl_seconds=pipeline_settings().upload_ttl_seconds,
        )
    except (trash.NotInTrash, trash.PurgeStarted) as refused:
        raise RestoreRefused(str(refused).capitalize() + ".") from refused
    except trash.TrashIncomplete as error:
        raise VisibilityFailed(
            f"Restored “{image_id}”, but its files were not all moved back to {keys.PUBLIC_PREFIX} "
            f"({error.__cause__ or error}). Save it again to finish."
        ) from error
    if restored is None:
        raise _not_found(image_id)
    return restored


def purge_image(image_id: str, *, by: str) -> ImageRecord:
    """Delete the image for good, in or out of the trash (takedowns): the raw upload and every rendition, the
    CDN's copies, then the record. DeleteFailed if AWS refused a step: once the record is marked the image stays in
    the trash, listed nowhere and no longer restorable, and deleting it permanently again finishes."""
    try:
        record = trash.purge_one(image_store(), object_store(), cdn(), _known_id(image_id), by=by)
    except ImageNotFound:
        raise
    except Exception as error:  # StoreError, and botocore's ClientError/connection errors the stores pass on
        raise DeleteFailed(
            f"The permanent delete of {image_id} did not finish (S3, DynamoDB or CloudFront refused); what is left "
            f"is listed nowhere once it started. Delete it permanently again to finish: {error}"
        ) from error
    if record is None:
        raise _not_found(image_id)
    return record


def _known_id(image_id: str) -> str:
    """The id, or ImageNotFound if it cannot be one (an id in a URL is whatever someone typed)."""
    if not keys.is_image_id(image_id):
        raise _not_found(image_id)
    return image_id


def _not_found(image_id: str) -> ImageNotFound:
    return ImageNotFound(f"No image with id {image_id!r}; it may have been deleted.")


def reprocess(image_id: str) -> ImageRecord:
    """Run the processor again on the image's original, through the ordinary S3 event (see ObjectStore.touch).

    InTrash for an image in the trash (the processor would skip its event): restore it first."""
    record = get_record(image_id)
    if record.in_trash:
        raise InTrash(f"{record.id} is in the trash: restore it first, then reprocess it.")
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


# Renditions the CDN does not serve (under hidden/: waiting for review, hidden, in the trash) are shown to the people
# who may see them (their uploader on /my/, staff in the admin) through presigned GETs this short-lived. Only
# private pages use them (never cached), so a reload signs anew.
PRIVATE_RENDITION_EXPIRY_SECONDS: Final = 900


def private_rendition_url(rendition: Rendition) -> str:
    """The rendition's CDN URL, or for one under hidden/ a presigned GET: for private pages only."""
    public = api.rendition_url(rendition, pipeline_settings())
    return public or object_store().presigned_get(rendition.key, expires_in=PRIVATE_RENDITION_EXPIRY_SECONDS)


def megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MB"
