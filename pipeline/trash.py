"""The trash: a delete keeps the image restorable for TRASH_RETENTION_DAYS, then the purge removes everything.

* :func:`trash` (the admin's delete): the record becomes ``deleted`` (listed nowhere, ``GET /images/{id}`` 404,
  the processor skips its events) with when, by whom and the status it had, and the date after which it may be
  purged; then its renditions move to ``hidden/`` and the CDN forgets them (pipeline.visibility). The raw
  upload, title, alt text, tags, owner and hidden flag stay as they were.
* :func:`restore`: the status it had comes back, its files go back to ``public/`` unless it is hidden, and an
  image whose processing the delete cut short is processed again (its original is touched).
* :func:`purge_one` (the admin's "permanently delete", and each image of the daily purge): the record is
  marked first (a restore then refuses it), then the raw upload and every rendition on either side are
  deleted and the CDN told, and the record goes last, so a failure leaves a record that names what is left.
* :func:`purge_expired`: every trashed image whose ``purge_after`` has passed. It reads the ``ByStatus`` index's
  ``deleted`` partition (never a Scan) with a filter on ``purge_after``. That partition is sorted by upload time,
  not by deletion time, so each run reads the whole trash; at one item of ~4 KB per trashed image, 10,000 images
  in the trash cost about 5,000 read units a day (well under a cent). A sparse index keyed on the purge date
  would read only what is due; it is not worth a second index until the trash holds hundreds of thousands.

The purge date is fixed in the record when the image is trashed (``deleted_at`` + the retention then in force),
so the admin can say exactly when it goes and the purge needs no setting of its own.

Used by the admin (gallery.services), ``python -m pipeline.trash purge [--dry-run]``, the scheduled Lambda
(lambdas/trash_purge) and the local stack. Stores are passed in; nothing here talks to AWS itself.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final, TextIO

from pipeline import records, visibility
from pipeline.config import ConfigError, Settings
from pipeline.records import ImageRecord, Status
from pipeline.store import Aws, Cdn, ImageStore, ObjectMissing, ObjectStore, StoreError

# Items per Query while reading the trash (DynamoDB stops at 1 MB a page anyway).
PAGE_SIZE: Final = 100
# Who the daily purge says it is in a record it converts (only a takedown of a live image is converted).
PURGE_ACTOR: Final = "the trash purge"
# Unfinished work a restore hands back to the processor.
_UNFINISHED: Final = frozenset({Status.UPLOADING, Status.PROCESSING})


class NotInTrash(ValueError):
    """Restore was asked for an image that is not in the trash (restored already, or never deleted)."""


class PurgeStarted(ValueError):
    """The image is being deleted for good (the purge marked it): it can no longer be restored."""


class TrashIncomplete(StoreError):
    """The record changed (trashed or restored) but its files could not all be moved; the message says how to
    finish. The record is the truth: repeating the action (or saving the image) settles the files."""


@dataclass(frozen=True)
class Restored:
    record: ImageRecord
    # The delete had cut its processing short (``uploading``/``processing``): its original was touched, so the
    # processor renders it again.
    reprocessing: bool


def purge_date(at: str, retention_days: int) -> str:
    """The ISO time ``retention_days`` after ``at`` (both like ``records.now_iso``, so they compare as strings)."""
    return _iso(_parse(at) + timedelta(days=retention_days))


def trash(
    images: ImageStore,
    objects: ObjectStore,
    cdn: Cdn,
    image_id: str,
    *,
    by: str,
    retention_days: int,
    at: str | None = None,
) -> ImageRecord | None:
    """Move the image to the trash; the record as it now is, or None if there is no such image.

    The record first, in one conditional write: from then on it is listed nowhere and the processor skips it.
    Then the files (copies to hidden/, record pointed at them, public originals deleted, CDN invalidated).
    An image already in the trash keeps its dates; its files are checked again, which finishes an earlier
    trash that failed halfway. TrashIncomplete if the files could not all be moved.
    """
    when = at or records.now_iso()

    def to_trash(current: ImageRecord | None) -> ImageRecord | None:
        if current is None or current.in_trash:
            return None
        return current.to_trash(by=by, at=when, purge_after=purge_date(when, retention_days))

    saved = images.update(image_id, to_trash)
    if saved is None:
        return None
    try:
        # A hidden image's files are off the CDN already; otherwise ask it to forget them even on a re-run.
        settled = visibility.settle(images, objects, cdn, image_id, invalidate=not saved.hidden)
    except Exception as error:  # StoreError, and botocore's ClientError/connection errors the stores pass on
        raise TrashIncomplete(
            f"image {image_id} is in the trash (listed nowhere), but its files were not all moved to hidden/ "
            f"({error}); delete it again to finish"
        ) from error
    return settled or saved


def restore(
    images: ImageStore,
    objects: ObjectStore,
    cdn: Cdn,
    image_id: str,
    *,
    by: str,
    upload_ttl_seconds: int,
    at: str | None = None,
) -> Restored | None:
    """Take the image out of the trash with the status it had; None if there is no such image.

    NotInTrash if it is not in the trash, PurgeStarted if the purge has begun deleting it. Its files go back to
    public/ unless it is hidden (TrashIncomplete if they could not all be moved: saving it again finishes). An
    image deleted while ``uploading`` or ``processing`` is processed again: nothing else would finish it (the
    processor skipped its events while it was in the trash). An ``uploading`` one whose file never arrived gets
    ``upload_ttl_seconds`` again before DynamoDB's TTL removes it.
    """
    when = at or records.now_iso()

    def from_trash(current: ImageRecord | None) -> ImageRecord | None:
        if current is None:
            return None
        if not current.in_trash:
            raise NotInTrash(f"image {image_id} is not in the trash (it is {current.status}); nothing to restore")
        if current.purge_started_at:
            raise PurgeStarted(
                f"image {image_id} is being deleted for good (since {current.purge_started_at}); it cannot be restored"
            )
        return current.from_trash(by=by, at=when, expires_at=int(time.time()) + upload_ttl_seconds)

    saved = images.update(image_id, from_trash)
    if saved is None:
        return None
    reprocessing = False
    if saved.status in _UNFINISHED:
        try:
            objects.touch(saved.raw_key)
            reprocessing = True
        except ObjectMissing:
            pass  # uploading: the form may still be used (or the TTL removes it); processing: the original is gone
    try:
        settled = visibility.settle(images, objects, cdn, image_id)
    except Exception as error:  # StoreError, and botocore's ClientError/connection errors the stores pass on
        raise TrashIncomplete(
            f"image {image_id} is restored ({saved.status}), but its files were not all moved back ({error}); "
            "save it in the admin to finish"
        ) from error
    return Restored(settled or saved, reprocessing)


def purge_one(
    images: ImageStore,
    objects: ObjectStore,
    cdn: Cdn,
    image_id: str,
    *,
    by: str,
    due_by: str | None = None,
    at: str | None = None,
) -> ImageRecord | None:
    """Delete the image for good: record, raw upload and every rendition (public/ and hidden/, any layout).

    With ``due_by`` (an ISO time) only an image in the trash whose ``purge_after`` is at or before it (the
    daily purge); without, any image (the admin's "permanently delete", for takedowns). Returns the record as it
    was, or None if there was nothing to purge (gone, or not due: restored meanwhile).

    The record is marked first (``purge_started_at``; a live image goes to the trash in the same write, so it
    leaves every listing at once), which makes a restore refuse it; then the files, the CDN invalidation, and
    last the record. If S3 or CloudFront fails, the marked record stays, naming what is left: purging again (or
    the next daily run) finishes. S3 versioning keeps the deleted objects as noncurrent versions for the bucket's
    NoncurrentVersionDays (docs/trash.md).
    """
    when = at or records.now_iso()

    def mark(current: ImageRecord | None) -> ImageRecord | None:
        if current is None or current.purge_started_at:
            return None  # gone, or marked by an earlier attempt: finish that one
        if due_by is not None and not (current.in_trash and current.purge_after and current.purge_after <= due_by):
            return None
        trashed = current if current.in_trash else current.to_trash(by=by, at=when, purge_after=when)
        return trashed.replace(purge_started_at=when)

    marked = images.update(image_id, mark)
    if marked is None or not marked.purge_started_at:
        return None
    objects.delete([marked.raw_key])
    visibility.remove_all(objects, cdn, marked)
    images.delete(marked)
    return marked


# -- the daily purge ---------------------------------------------------------------------------------------------


@dataclass
class PurgeSummary:
    purged: list[str] = field(default_factory=list)
    would_purge: list[str] = field(default_factory=list)
    # Due when listed, not any more when purged: restored (or purged by someone else) meanwhile.
    skipped: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    # Stopped before the end (the Lambda's time ran short): the rest waits for the next run.
    stopped_early: bool = False

    def text(self) -> str:
        done = f"{len(self.would_purge)} would be purged" if self.would_purge else f"{len(self.purged)} purged"
        text = f"{done}, {len(self.skipped)} restored meanwhile, {len(self.failed)} failed"
        return text + ("; stopped early, the rest is purged next time" if self.stopped_early else "")


def due_for_purge(images: ImageStore, due_by: str, *, page_size: int | None = None) -> Iterator[ImageRecord]:
    """Every image in the trash whose ``purge_after`` is at or before ``due_by``: Queries on ByStatus=deleted."""
    page_size = page_size or PAGE_SIZE
    start_key = None
    while True:
        page = images.query_page(
            records.STATUS_INDEX,
            Status.DELETED.value,
            limit=page_size,
            start_key=start_key,
            filter_expression="purge_after <= :due",
            filter_values={":due": due_by},
        )
        yield from page.records
        if page.last_key is None:
            return
        start_key = page.last_key


def purge_expired(
    images: ImageStore,
    objects: ObjectStore,
    cdn: Cdn,
    *,
    now: str | None = None,
    dry_run: bool = False,
    should_stop: Callable[[], bool] | None = None,
    report: Callable[[str, ImageRecord, str], None] | None = None,
) -> PurgeSummary:
    """Purge every image whose time in the trash is over (see the module's note on what it reads).

    One image's failure does not stop the rest; it is purged again by the next run. ``should_stop`` is asked
    before each image (the Lambda stops well before its timeout). ``report(outcome, record, detail)`` hears each.
    """
    due_by = now or records.now_iso()
    summary = PurgeSummary()
    for record in due_for_purge(images, due_by):
        if should_stop is not None and should_stop():
            summary.stopped_early = True
            break
        detail = ""
        if dry_run:
            outcome = "would purge"
            summary.would_purge.append(record.id)
        else:
            try:
                purged = purge_one(images, objects, cdn, record.id, by=PURGE_ACTOR, due_by=due_by)
            except Exception as error:  # ClientError, connection errors: reported, and the purge goes on
                outcome, detail = "failed", f"{type(error).__name__}: {error}"
                summary.failed.append((record.id, detail))
            else:
                outcome = "purged" if purged else "skipped"
                (summary.purged if purged else summary.skipped).append(record.id)
        if report:
            report(outcome, record, detail)
    return summary


def main(
    argv: Sequence[str] | None = None,
    *,
    aws: Aws | None = None,
    out: TextIO | None = None,
    now: str | None = None,
) -> int:
    out = out or sys.stdout
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.trash",
        description="The trash's purge: delete for good the images whose time in the trash is over (their record, "
        "raw upload and every rendition). Reads IMAGE_BUCKET, IMAGE_TABLE, AWS_REGION, CDN_DISTRIBUTION_ID and "
        "credentials from the environment. The scheduled Lambda runs the same once a day.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    purge = commands.add_parser("purge", help="purge the images whose purge date has passed")
    purge.add_argument("--dry-run", action="store_true", help="list what would be purged; delete nothing")
    args = parser.parse_args(argv)
    if aws is None:
        try:
            aws = Aws(Settings.from_env())
        except ConfigError as error:
            parser.error(str(error))

    when = now or records.now_iso()
    print(
        f"{'dry run: ' if args.dry_run else ''}purging images due by {when} from s3://{aws.settings.bucket} "
        f"(table {aws.settings.table})",
        file=out,
        flush=True,
    )

    def report(outcome: str, record: ImageRecord, detail: str) -> None:
        line = f"{outcome:<12} {record.id} deleted {record.deleted_at} by {record.deleted_by}, due {record.purge_after}"
        print(line + (f"  ({detail})" if detail else ""), file=out, flush=True)

    summary = purge_expired(
        aws.image_store(), aws.object_store(), aws.cdn(), now=when, dry_run=args.dry_run, report=report
    )
    print(f"done: {summary.text()}", file=out, flush=True)
    return 1 if summary.failed else 0


def _parse(iso: str) -> datetime:
    return datetime.fromisoformat(iso.replace("Z", "+00:00"))


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


if __name__ == "__main__":
    raise SystemExit(main())
