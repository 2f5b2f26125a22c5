"""Reprocess many images: touch each one's raw upload, so the ordinary S3 event -> SQS -> processor path renders
it again (into the current key layout; the processor then deletes the old renditions and the flat legacy keys).

For a deployed stack (credentials and the stack's settings in the environment, as for the Lambdas)::

    python -m pipeline.reprocess --all [--status ready|failed|processing|uploading] [--rate 5] [--dry-run]
                                       [--legacy-only]

It walks the ByEntity index (every image whose upload arrived) or, with ``--status``, the ByStatus index, one
Query page at a time (never a Scan), touches at most ``--rate`` originals a second, prints one line per image and
a summary, and exits 1 if any touch failed. An image whose original is gone is reported and skipped; so is an
image in the trash (restore it first: the processor would skip its event anyway). The admin's "Reprocess every
image matching this filter" uses the same loop (``touch_all``).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Final, TextIO

from pipeline import keys, records
from pipeline.config import ConfigError, Settings
from pipeline.records import ImageRecord, Status
from pipeline.store import Aws, ImageStore, ObjectMissing, ObjectStore

DEFAULT_RATE: Final = 5.0
# Items per Query while walking an index (DynamoDB returns at most 1 MB a page anyway).
PAGE_SIZE: Final = 100
IN_TRASH: Final = "in trash"


class Throttle:
    """At most ``rate`` calls of ``wait`` return per second (the first at once); sleep and clock are injectable."""

    def __init__(
        self,
        rate: float,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate <= 0:
            raise ValueError(f"the rate must be above 0 per second, got {rate}")
        self.interval = 1.0 / rate
        self.sleep = sleep
        self.clock = clock
        self._next: float | None = None

    def wait(self) -> None:
        now = self.clock()
        if self._next is not None and now < self._next:
            self.sleep(self._next - now)
            now = self._next
        self._next = now + self.interval


@dataclass(frozen=True)
class Result:
    """What happened to one image: ``touched``, ``would touch`` (dry run), ``missing`` (no original), ``in trash``
    (skipped) or ``failed``."""

    image_id: str
    raw_key: str
    outcome: str
    detail: str = ""

    def line(self) -> str:
        return f"{self.outcome:<12} {self.image_id} {self.raw_key}" + (f"  ({self.detail})" if self.detail else "")


@dataclass
class Summary:
    touched: list[str] = field(default_factory=list)
    would_touch: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    in_trash: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)

    @property
    def seen(self) -> int:
        return len(self.touched) + len(self.would_touch) + len(self.missing) + len(self.in_trash) + len(self.failed)

    def add(self, result: Result) -> None:
        if result.outcome == "touched":
            self.touched.append(result.image_id)
        elif result.outcome == "would touch":
            self.would_touch.append(result.image_id)
        elif result.outcome == "missing":
            self.missing.append(result.image_id)
        elif result.outcome == IN_TRASH:
            self.in_trash.append(result.image_id)
        else:
            self.failed.append((result.image_id, result.detail))

    def text(self) -> str:
        done = f"{len(self.would_touch)} would be touched" if self.would_touch else f"{len(self.touched)} touched"
        trashed = f", {len(self.in_trash)} in the trash (skipped)" if self.in_trash else ""
        return (
            f"{self.seen} image{'s' if self.seen != 1 else ''}: {done}, {len(self.missing)} with the original "
            f"missing{trashed}, {len(self.failed)} failed"
        )


def uses_legacy_layout(record: ImageRecord) -> bool:
    """Whether any of the record's renditions is still a flat legacy key (``public/thumbs/<id>.jpg``), hidden or not."""
    legacy = set(keys.legacy_rendition_keys(record.id))
    return any(keys.public_key(r.key) in legacy for r in record.renditions)


def images_to_reprocess(
    images: ImageStore, *, status: Status | None = None, legacy_only: bool = False, page_size: int | None = None
) -> Iterator[ImageRecord]:
    """Every image on ByEntity (or on ByStatus for ``status``), newest first, one Query page at a time."""
    page_size = page_size or PAGE_SIZE
    if status:
        index, partition = records.STATUS_INDEX, status.value
    else:
        index, partition = records.ENTITY_INDEX, records.ENTITY_IMAGE
    start_key = None
    while True:
        page = images.query_page(index, partition, limit=page_size, start_key=start_key)
        for record in page.records:
            if not legacy_only or uses_legacy_layout(record):
                yield record
        if page.last_key is None:
            return
        start_key = page.last_key


def touch_all(
    objects: ObjectStore,
    found: Iterable[ImageRecord],
    *,
    throttle: Throttle,
    dry_run: bool = False,
    report: Callable[[Result], None] | None = None,
) -> Summary:
    """Touch each image's original (ObjectStore.touch), throttled; one image's failure does not stop the rest.

    A dry run only checks that each original is there (HEAD) and touches nothing. An image in the trash is
    skipped: it stays there until staff restore it.
    """
    summary = Summary()
    for record in found:
        if record.in_trash:
            result = Result(record.id, record.raw_key, IN_TRASH, "restore it from the trash first")
        elif dry_run:
            present = objects.exists(record.raw_key)
            result = Result(record.id, record.raw_key, "would touch" if present else "missing")
        else:
            throttle.wait()
            try:
                objects.touch(record.raw_key)
                result = Result(record.id, record.raw_key, "touched")
            except ObjectMissing:
                result = Result(record.id, record.raw_key, "missing", "the original upload is no longer in S3")
            except Exception as error:  # ClientError, connection errors: reported, and the walk goes on
                result = Result(record.id, record.raw_key, "failed", f"{type(error).__name__}: {error}")
        summary.add(result)
        if report:
            report(result)
    return summary


def main(
    argv: Sequence[str] | None = None,
    *,
    aws: Aws | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    out: TextIO | None = None,
) -> int:
    out = out or sys.stdout
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.reprocess",
        description="Run the processor again on many images by touching their originals in S3 (each touch is an "
        "ordinary upload event). Reads IMAGE_BUCKET, IMAGE_TABLE, AWS_REGION and credentials from the environment.",
    )
    parser.add_argument("--all", action="store_true", required=True, help="required: yes, every matching image")
    parser.add_argument(
        "--status",
        choices=[s.value for s in Status if s is not Status.DELETED],
        help="only images with this status (images in the trash are never reprocessed)",
    )
    parser.add_argument(
        "--rate", type=float, default=DEFAULT_RATE, help=f"touches per second at most (default {DEFAULT_RATE:g})"
    )
    parser.add_argument("--dry-run", action="store_true", help="list what would be touched; touch nothing")
    parser.add_argument(
        "--legacy-only", action="store_true", help="only images whose renditions are still in the flat legacy layout"
    )
    args = parser.parse_args(argv)
    if args.rate <= 0:
        parser.error("--rate must be above 0")
    if aws is None:
        try:
            aws = Aws(Settings.from_env())
        except ConfigError as error:
            parser.error(str(error))

    scope = f"status={args.status}" if args.status else "every image"
    print(
        f"{'dry run: ' if args.dry_run else ''}reprocessing {scope}{', legacy layout only' if args.legacy_only else ''}"
        f" in s3://{aws.settings.bucket} (table {aws.settings.table}), at most {args.rate:g} a second",
        file=out,
        flush=True,
    )
    found = images_to_reprocess(
        aws.image_store(), status=Status(args.status) if args.status else None, legacy_only=args.legacy_only
    )
    summary = touch_all(
        aws.object_store(),
        found,
        throttle=Throttle(args.rate, sleep=sleep, clock=clock),
        dry_run=args.dry_run,
        report=lambda result: print(result.line(), file=out, flush=True),
    )
    print(f"done: {summary.text()}", file=out, flush=True)
    for image_id, reason in summary.failed:
        print(f"failed: {image_id}: {reason}", file=out)
    return 1 if summary.failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
