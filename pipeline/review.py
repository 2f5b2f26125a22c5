"""The publish gate's decisions: which review state follows from an upload, an edit, an approval or a rejection.

Pure functions over ``ImageRecord`` (no AWS, no Django), so the Django services, the admin and any later caller
agree on one set of rules:

* PUBLISH_REVIEW=required holds an upload by someone without the right to publish as ``pending`` until staff
  approve it (or reject it with a reason the uploader sees);
* REQUIRE_ALT_TEXT makes alt text a condition of publishing: an upload that would publish waits as
  ``needs_alt_text`` and publishes itself once alt text is given; staff cannot approve an image without it, and a
  published image's alt text cannot be emptied (the edit is refused rather than the image silently unpublished);
* review is of what staff can see, so only a ``ready`` image is approved or rejected.

Uploads the processor meets without a record (``aws s3 cp`` by an operator) carry no review: they publish
directly, as operators hold the bucket anyway.
"""

from __future__ import annotations

from typing import Final

from pipeline import records
from pipeline.records import ImageRecord, InTrash, Review, Status

# PUBLISH_REVIEW's values (pipeline.config.Settings.publish_review).
REVIEW_OFF: Final = "off"
REVIEW_REQUIRED: Final = "required"
# A rejection's reason is a sentence or two for the uploader; the record keeps at most this much.
MAX_REASON_LENGTH: Final = 500


class ReviewRefused(ValueError):
    """An approval or rejection that cannot be made; the message says why and what to do."""


class AltTextRequired(ValueError):
    """REQUIRE_ALT_TEXT: the edit would leave a published image without alt text."""


def initial_review(*, publish_review: str, require_alt_text: bool, can_publish: bool) -> Review | None:
    """The review an upload starts with: staff review first, then alt text (none exists at upload time)."""
    if publish_review == REVIEW_REQUIRED and not can_publish:
        return Review.PENDING
    if require_alt_text:
        return Review.NEEDS_ALT_TEXT
    return None


def after_edit(record: ImageRecord, edited: ImageRecord, *, require_alt_text: bool) -> ImageRecord:
    """``edited`` (new title, alt text, tags) with the review that follows from it.

    An image waiting only for its alt text publishes once it has some (or once REQUIRE_ALT_TEXT is off); pending
    and rejected images stay as they are (alt text does not replace staff's review). AltTextRequired if the edit
    empties the alt text of a published image while REQUIRE_ALT_TEXT is on.
    """
    if record.review is Review.NEEDS_ALT_TEXT and (edited.alt_text or not require_alt_text):
        return edited.replace(review=None)
    if require_alt_text and record.published and record.alt_text and not edited.alt_text:
        raise AltTextRequired(
            "Alt text is required to keep this image published: describe what it shows instead of removing it."
        )
    return edited


def approve(record: ImageRecord, *, by: str, require_alt_text: bool, at: str | None = None) -> ImageRecord:
    """Published, with who approved it and when. ReviewRefused if it is not ready (review is of what staff can
    see), or REQUIRE_ALT_TEXT is on and it has no alt text. InTrash for an image in the trash."""
    _reviewable(record, "approve")
    if require_alt_text and not record.alt_text:
        raise ReviewRefused(f"“{record.name}” has no alt text: add alt text first, then approve it.")
    return record.replace(
        review=None,
        review_reason=None,
        reviewed_by=by,
        reviewed_at=at or records.now_iso(),
        updated_at=at or records.now_iso(),
    )


def reject(record: ImageRecord, *, by: str, reason: str, at: str | None = None) -> ImageRecord:
    """Rejected with ``reason`` (a sentence the uploader sees on their uploads); a published image may be rejected
    later too (it leaves the gallery). ReviewRefused without a reason or for an image that is not ready."""
    reason = " ".join(reason.split())
    if not reason:
        raise ReviewRefused("Give a reason for the rejection: the uploader sees it on their uploads.")
    if len(reason) > MAX_REASON_LENGTH:
        raise ReviewRefused(f"The reason is too long: at most {MAX_REASON_LENGTH} characters.")
    _reviewable(record, "reject")
    when = at or records.now_iso()
    return record.replace(
        review=Review.REJECTED, review_reason=reason, reviewed_by=by, reviewed_at=when, updated_at=when
    )


def describe(record: ImageRecord) -> str | None:
    """The review state as people read it ("pending review", "needs alt text", "rejected: <reason>"), or None.

    None for a failed image too: there is nothing to review until it is processed."""
    if record.status is Status.FAILED:
        return None
    if record.review is Review.PENDING:
        return "pending review"
    if record.review is Review.NEEDS_ALT_TEXT:
        return "needs alt text"
    if record.review is Review.REJECTED:
        return f"rejected: {record.review_reason}" if record.review_reason else "rejected"
    return None


def _reviewable(record: ImageRecord, verb: str) -> None:
    if record.in_trash:
        raise InTrash(f"“{record.name}” is in the trash: restore it first, then {verb} it.")
    if record.status is not Status.READY:
        raise ReviewRefused(
            f"“{record.name}” is {record.status.value}: only a ready image can be reviewed, once its renditions "
            "show what it is."
        )
