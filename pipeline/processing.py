"""One raw upload -> its ImageRecord and renditions: check, claim, decode, write, record. No AWS SDK, no events.

The flow for one ``ObjectCreated`` (see docs/processor.md for the why):

1. HEAD the object: gone, or no longer the version the event describes -> skip (its own event will come).
2. Claim the record as ``processing`` with the event's sequencer, in one optimistic ``ImageStore.update``:
   an event older than the record's, or a duplicate of one already finished, is skipped here.
3. Refuse a file larger than ``max_bytes`` from its ContentLength, before any byte is downloaded.
4. GET exactly the version we checked (If-Match) and look its sha256 up (``pipeline.duplicates``): an earlier
   ready image with the same bytes is flagged as ``duplicate_of``, and with DUPLICATES=skip the upload ends
   ``failed`` (``DuplicateImage``) right here, without imaging. Else decode and encode it (``pipeline.imaging``),
   and with NEAR_DUPLICATES look its perceptual hash up (``near_duplicate_of``, a flag only). With a deadline
   (the Lambda's remaining time), a watchdog marks the record ``failed`` if imaging is still running then: a file
   that keeps the decoder busy past the timeout gets a reason instead of a record stuck in ``processing``.
5. Re-read the record (consistent): still ours? Then write the renditions under a version of this run's own
   (``keys.rendition_key``; under ``hidden/`` for a hidden image) and mark the record ``ready`` with every fact
   and the list of its renditions. Only once the record points at the new files are the files it pointed at
   before deleted (and the flat layout's, for records made before versioned keys, and any file in the image's
   folders that no record names: what a killed run or a lost PUT answer left). A run that loses the record
   on the way deletes the files of its own version and nothing else, so no run can overwrite or delete another's.
   A refused image instead loses any renditions of an earlier version and is marked ``failed`` with the reason.

Transient errors (throttling, 5xx, ``WriteConflict``) propagate so the message is retried; everything that would
fail the same way again ends in a ``failed`` record or a skip, so no message is retried forever.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final

from pipeline import duplicates, imaging, keys, records, visibility
from pipeline.config import Settings
from pipeline.records import ImageRecord, Rendition, Status
from pipeline.store import Cdn, ImageStore, NoCdnCache, ObjectMissing, ObjectStore

FINISHED: Final = frozenset({Status.READY, Status.FAILED})
# Below this much time left for imaging, the time went on I/O, not on the file: the event is retried instead of
# the file being blamed. The corpus's slowest photo takes about 1 s here (`make bench`).
MIN_IMAGING_SECONDS: Final = 10.0


@dataclass(frozen=True)
class ObjectCreated:
    """What the processor needs from one S3 ``ObjectCreated`` notification (key already URL-decoded)."""

    bucket: str
    key: str
    # S3 orders the events of one key by this hex string; emulators may leave it out.
    sequencer: str | None = None
    # The ETag as S3 events carry it (no quotes); None when the event has none.
    etag: str | None = None


class Result(StrEnum):
    PROCESSED = "processed"
    FAILED = "failed"
    SKIPPED = "skipped"


class Reason(StrEnum):
    """Low-cardinality codes: the ``reason`` metric dimension and a log field. People read ``Outcome.detail``."""

    # failed (besides the class names of imaging's rejections)
    PROCESSING_ERROR = "ProcessingError"  # imaging raised something it should have mapped; logged with traceback
    TIME_BUDGET = "TimeBudgetExceeded"  # imaging was still running at the deadline (a property of the file)
    RETRIES_EXHAUSTED = "RetriesExhausted"  # every delivery of the event met a transient error (ImageProcessor.give_up)
    DUPLICATE_IMAGE = "DuplicateImage"  # DUPLICATES=skip: the same bytes are in the gallery already (not DUPLICATE)
    # skipped
    NOT_RAW = "NotRaw"
    OTHER_BUCKET = "OtherBucket"
    OBJECT_MISSING = "ObjectMissing"
    KEY_MISMATCH = "KeyMismatch"
    STALE = "Stale"
    DUPLICATE = "Duplicate"  # a repeated S3 delivery of an event already finished (not a repeated photo)
    SUPERSEDED = "Superseded"
    NO_RECORD = "NoRecord"
    DELETED = "Deleted"  # the record is in the trash (pipeline.trash): no event brings it back


@dataclass(frozen=True)
class Outcome:
    result: Result
    key: str
    image_id: str | None = None
    # Result.FAILED: a Reason or the imaging exception's class name (UnsupportedFormat, TooLarge, CorruptImage).
    reason: str | None = None
    detail: str | None = None
    bytes_in: int = 0
    bytes_out: int = 0
    # An unexpected exception that was turned into a failure (Reason.PROCESSING_ERROR): the caller logs its trace.
    error: BaseException | None = field(default=None, compare=False)


def newer(sequencer: str, than: str) -> int:
    """1, 0 or -1 as ``sequencer`` is newer than, equal to or older than ``than``.

    S3 sequencers are hex strings of varying length; AWS says to compare them left-padded with zeros
    to equal length (as numbers, in effect), never as plain strings ("FF" is older than "0100").
    """
    width = max(len(sequencer), len(than))
    left, right = sequencer.upper().rjust(width, "0"), than.upper().rjust(width, "0")
    return (left > right) - (left < right)


def _bare_etag(etag: str) -> str:
    return etag.strip('"')


class ImageProcessor:
    """Processes one S3 object at a time over injected stores; safe to call again with the same event."""

    def __init__(
        self,
        settings: Settings,
        images: ImageStore,
        objects: ObjectStore,
        *,
        cdn: Cdn | None = None,
        clock: Callable[[], str] = records.now_iso,
        new_version: Callable[[], str] = keys.new_version,
    ) -> None:
        self.settings = settings
        self.images = images
        self.objects = objects
        self.cdn = cdn or NoCdnCache()
        self.clock = clock
        self.new_version = new_version

    def process(self, event: ObjectCreated, *, deadline: float | None = None) -> Outcome:
        """``deadline``: a ``time.monotonic()`` instant by which imaging must be done, leaving time to record a
        failure (the handler derives it from the Lambda's remaining time); None waits as long as imaging takes."""
        if not keys.is_raw_key(event.key):
            # Our own outputs (public/) and folder markers land here when notifications are scoped too widely.
            return Outcome(Result.SKIPPED, event.key, reason=Reason.NOT_RAW, detail="not an upload under raw/")
        if event.bucket != self.settings.bucket:
            detail = f"event for bucket {event.bucket!r}, this processor serves {self.settings.bucket!r}"
            return Outcome(Result.SKIPPED, event.key, reason=Reason.OTHER_BUCKET, detail=detail)
        image_id = keys.image_id_for_raw_key(event.key, self.settings.secret)
        return _Job(self, event, image_id, deadline=deadline).run()

    def give_up(self, event: ObjectCreated, error: BaseException, attempts: int) -> Outcome | None:
        """After the last delivery of ``event`` failed with ``error`` (a transient error, raised by ``process``):
        mark its record failed, so that people see why instead of a record stuck in ``processing``.

        None when the record is not this event's to mark (no record, a newer upload's, already finished).
        The failed record keeps no sequencer, so a redrive of the dead-lettered message processes it again,
        as Reprocess does.
        """
        if not keys.is_raw_key(event.key) or event.bucket != self.settings.bucket:
            return None
        image_id = keys.image_id_for_raw_key(event.key, self.settings.secret)
        return _Job(self, event, image_id).give_up(error, attempts)


class _Job:
    """One event's trip through the pipeline; holds what the steps share (the HEAD, the claim)."""

    def __init__(
        self, processor: ImageProcessor, event: ObjectCreated, image_id: str, *, deadline: float | None = None
    ) -> None:
        self.settings = processor.settings
        self.images = processor.images
        self.objects = processor.objects
        self.cdn = processor.cdn
        self.clock = processor.clock
        self.new_version = processor.new_version
        self.event = event
        self.image_id = image_id
        self.deadline = deadline
        # The ETag this job checked and claimed (no quotes); every later step works on exactly that version.
        self.etag: str | None = None
        # The claimed record's created_sk: only images created before it can be what it duplicates, so that
        # reprocessing an original never flags it against a later copy of itself.
        self.created_sk: str | None = None
        # The download's sha256 (hashed once) and the earlier ready image with the same bytes, once looked up.
        self.sha256: str | None = None
        self.duplicate: duplicates.Match | None = None

    def outcome(self, result: Result, reason: str | None = None, detail: str | None = None, **sizes: int) -> Outcome:
        return Outcome(result, self.event.key, self.image_id, reason=reason, detail=detail, **sizes)

    def run(self) -> Outcome:
        event = self.event
        try:
            head = self.objects.head(event.key)
        except ObjectMissing as missing:
            return self.outcome(Result.SKIPPED, Reason.OBJECT_MISSING, str(missing))
        if event.etag and _bare_etag(head.etag) != _bare_etag(event.etag):
            detail = f"s3://{self.settings.bucket}/{event.key} was replaced after this event; its own event follows"
            return self.outcome(Result.SKIPPED, Reason.OBJECT_MISSING, detail)
        self.etag = _bare_etag(head.etag)

        skipped = self.claim()
        if skipped:
            return skipped

        try:
            # From the ContentLength, before a byte is downloaded (an empty file is refused here too).
            imaging.check_byte_size(head.size, self.settings.imaging)
        except imaging.ImageRejected as rejected:
            return self.fail(type(rejected).__name__, rejected.reason, byte_size=head.size)

        try:
            source = self.objects.read(event.key, if_match=head.etag)
        except ObjectMissing as missing:
            # Replaced between HEAD and GET: the newer version's event will claim the record.
            return self.outcome(Result.SKIPPED, Reason.OBJECT_MISSING, str(missing))

        self.sha256 = hashlib.sha256(source).hexdigest()
        self.duplicate = duplicates.exact_duplicate(self.images, self.image_id, self.sha256, before=self.created_sk)
        if self.duplicate and self.settings.duplicates == "skip":
            detail = (
                f"Already in the gallery as \u201c{self.duplicate.label}\u201d ({self.duplicate.image_id}); "
                "not processed again (DUPLICATES=skip)."
            )
            return self.fail(Reason.DUPLICATE_IMAGE, detail, source=source)

        if self.deadline is None:
            return self.render(source)
        budget = self.deadline - time.monotonic()
        if budget < MIN_IMAGING_SECONDS:
            raise ProcessingTimedOut(f"only {budget:.1f} s left for imaging after the download; retried")
        detail = (
            f"processing did not finish within {budget:.0f} s, the time one image may take here; the upload is "
            "kept. An image with fewer pixels or frames will work."
        )
        with _Watchdog(budget, lambda: self.fail(Reason.TIME_BUDGET, detail, source=source)) as watchdog:
            result = self.render(source, watchdog)
        return watchdog.outcome or result

    def render(self, source: bytes, watchdog: _Watchdog | None = None) -> Outcome:
        """Decode and encode ``source``, then write and record the result (or the refusal).

        Under a ``watchdog`` that has fired, its failure stands and nothing more is done here."""
        timed_out = self.outcome(Result.FAILED, Reason.TIME_BUDGET)  # replaced by the watchdog's own outcome
        try:
            processed = imaging.process_image(source, self.settings.imaging)
        except imaging.ImageRejected as rejected:
            if watchdog and not watchdog.stand_down():
                return timed_out
            return self.fail(type(rejected).__name__, rejected.reason, source=source)
        except Exception as error:
            if watchdog and not watchdog.stand_down():
                return timed_out
            # A decoder bug must not loop through retries into the DLQ with the record stuck in `processing`:
            # the same bytes would fail the same way. Record a failure; the outcome carries the trace to the log.
            reason = "the image could not be processed because of an internal error"
            return dataclasses.replace(self.fail(Reason.PROCESSING_ERROR, reason, source=source), error=error)
        if watchdog and not watchdog.stand_down():
            return timed_out
        return self.finish(processed, source)

    def give_up(self, error: BaseException, attempts: int) -> Outcome | None:
        current = self.images.get(self.image_id, consistent=True)
        self.etag = current.source_etag if current else None  # the version this event claimed, if it did
        if current is None or not self.still_ours(current):
            return None
        detail = (
            f"processing failed {attempts} times in a row ({type(error).__name__}); "
            "the upload is kept and can be retried"
        )
        return self.fail(Reason.RETRIES_EXHAUSTED, detail, byte_size=current.byte_size, retryable=True)

    # -- steps -------------------------------------------------------------------------------------

    def claim(self) -> Outcome | None:
        """Mark the record ``processing`` for this event, or say why this event must not touch it."""
        event = self.event
        refused: list[Outcome] = []

        def mutate(current: ImageRecord | None) -> ImageRecord | None:
            refused.clear()  # the store may run this again after a write conflict
            refusal = self.refusal(current)
            if refusal:
                refused.append(refusal)
                return None
            at = self.clock()
            if current is None:
                # An upload that did not come through Django (`aws s3 cp`): the record starts here.
                current = records.new_record(self.image_id, event.key, Status.PROCESSING, at=at)
            else:
                current = current.with_status(Status.PROCESSING, at=at)
            return current.replace(source_sequencer=event.sequencer, source_etag=self.etag)

        current = self.images.update(self.image_id, mutate)
        self.created_sk = current.created_sk if current is not None and not refused else None
        if refused and refused[0].reason == Reason.DUPLICATE:
            self.remove_stale(current)  # a delivery that failed after the record moved on left its delete unfinished
        return refused[0] if refused else None

    def refusal(self, current: ImageRecord | None) -> Outcome | None:
        event = self.event
        if current is None:
            if keys.is_form_upload_key(event.key):
                # Django writes the record before it signs the form, so a form upload without one was deleted (or
                # its form re-used after a delete, or its raw object restored): it must not come back as a new,
                # public, ownerless image. Only `aws s3 cp` uploads (ids derived from the key) start records here.
                detail = f"no record for {event.key!r}: the image was deleted; a re-used upload form is not processed"
                return self.outcome(Result.SKIPPED, Reason.NO_RECORD, detail)
            return None
        if current.in_trash:
            # A re-used upload form (M3), a restored raw object or a reprocess touch that raced the delete: the
            # image stays in the trash until staff restore it (which starts processing again if it was unfinished).
            detail = f"image {self.image_id} is in the trash (deleted {current.deleted_at}); the event is not processed"
            return self.outcome(Result.SKIPPED, Reason.DELETED, detail)
        if current.raw_key != event.key:
            # Sequencers only order events of one key; another key under this id cannot take the record over.
            detail = f"image {self.image_id} belongs to {current.raw_key!r}, not {event.key!r}"
            return self.outcome(Result.SKIPPED, Reason.KEY_MISMATCH, detail)
        if event.sequencer is None or current.source_sequencer is None:
            return None  # nothing to order by (emulators, hand-made events, a record Django just created)
        order = newer(event.sequencer, current.source_sequencer)
        if order < 0:
            detail = f"sequencer {event.sequencer} is older than the record's {current.source_sequencer}"
            return self.outcome(Result.SKIPPED, Reason.STALE, detail)
        if order == 0 and current.status in FINISHED:
            detail = f"sequencer {event.sequencer} was already {current.status}"
            return self.outcome(Result.SKIPPED, Reason.DUPLICATE, detail)
        # Same sequencer still `processing`: an earlier attempt died or timed out (or a twin delivery runs
        # right now); processing again is safe because the outputs depend only on the same bytes.
        return None

    def still_ours(self, current: ImageRecord | None) -> bool:
        return (
            current is not None
            and current.status is Status.PROCESSING
            and current.raw_key == self.event.key
            and current.source_sequencer == self.event.sequencer
            and current.source_etag == self.etag
        )

    def update_if_ours(self, change: Callable[[ImageRecord], ImageRecord]) -> ImageRecord | None:
        """Apply ``change`` to the record only while this job's claim holds; the saved record, or None if not."""
        applied = False

        def mutate(current: ImageRecord | None) -> ImageRecord | None:
            nonlocal applied
            applied = current is not None and self.still_ours(current)
            return change(current) if applied and current is not None else None

        saved = self.images.update(self.image_id, mutate)
        return saved if applied else None

    def superseded(self) -> Outcome:
        detail = "a newer upload or a twin delivery took the record over; its results stand"
        return self.outcome(Result.SKIPPED, Reason.SUPERSEDED, detail)

    def finish(self, processed: imaging.ProcessedImage, source: bytes) -> Outcome:
        facts = processed.facts
        # An exact duplicate is the stronger fact: a near-duplicate is only looked for when there is none.
        near = None
        if facts.phash and self.duplicate is None:
            near = duplicates.near_duplicate(self.images, self.image_id, facts.phash, before=self.created_sk)
        # A cheap consistent read right before the writes: a run that has already lost writes nothing.
        claimed = self.images.get(self.image_id, consistent=True)
        if claimed is None or not self.still_ours(claimed):
            return self.superseded()
        renditions = self.write_renditions(processed, version=self.new_version(), hidden=claimed.files_hidden)
        written = [r.key for r in renditions]

        at = self.clock()
        sha256 = self.sha256 or hashlib.sha256(source).hexdigest()
        legacy = keys.legacy_rendition_keys(self.image_id)
        # Files no record names: a run killed between its PUTs and its ready write, a PUT whose answer was lost
        # after S3 stored it. Listed after this run's PUTs, so that they go with the record's old files. A twin run
        # writing right now may be listed too: if this write wins, that run loses and its files are stale anyway.
        unnamed = visibility.stored_rendition_keys(self.objects, self.image_id)

        def ready(current: ImageRecord) -> ImageRecord:
            stale = {r.key for r in current.renditions} | set(current.stale_keys) | set(legacy) | unnamed
            return current.with_status(Status.READY, at=at).replace(
                stale_keys=tuple(sorted(stale - set(written))),
                content_type=facts.mime,
                byte_size=len(source),
                sha256=sha256,
                width=facts.width,
                height=facts.height,
                format=facts.format,
                frames=facts.frames,
                renditions=tuple(renditions),
                processed_at=at,
                blurhash=facts.blurhash,
                dominant_color=facts.dominant_color,
                notes=tuple(facts.notes),
                taken_at=facts.taken_at,
                camera=facts.camera,
                location=facts.location if self.settings.imaging.keep_location else None,
                phash=facts.phash,
                duplicate_of=self.duplicate.image_id if self.duplicate else None,
                near_duplicate_of=near.image_id if near else None,
            )

        try:
            saved = self.update_if_ours(ready)
        except BaseException:
            # The record may not name them: take this run's files back before the error is retried, unless the
            # write went through after all (a timeout can come after DynamoDB committed). If the record cannot be
            # read, leave them: an unnamed file is better than a record naming a deleted one.
            with contextlib.suppress(Exception):
                current = self.images.get(self.image_id, consistent=True)
                if current is None or not {r.key for r in current.renditions} & set(written):
                    self.objects.delete(written)
            raise
        if saved is None:
            # A newer upload, a twin delivery or a delete took the record: our version's files belong to nothing.
            self.objects.delete(written)
            return self.superseded()
        bytes_out = sum(r.bytes for r in renditions)
        self.remove_stale(saved)
        if saved.files_hidden != claimed.files_hidden:
            # Hidden, shown or reviewed by staff while we worked: put the files on the side the record now says.
            visibility.settle(self.images, self.objects, self.cdn, self.image_id)
        return self.outcome(Result.PROCESSED, bytes_in=len(source), bytes_out=bytes_out)

    def write_renditions(self, processed: imaging.ProcessedImage, *, version: str, hidden: bool) -> list[Rendition]:
        """PUT every rendition under this run's version. If a PUT fails, the ones already written are deleted
        before the error goes on to be retried: no record names them, so they would be public orphans."""
        renditions: list[Rendition] = []
        key = None  # the PUT under way: S3 may have stored it even if its answer never came
        try:
            for encoded in processed.renditions:
                key = keys.rendition_key(
                    self.image_id,
                    encoded.name,
                    encoded.format,
                    version=version,
                    width=encoded.width,
                    height=encoded.height,
                    hidden=hidden,
                )
                self.objects.write(key, encoded.data, encoded.content_type)
                renditions.append(
                    Rendition(
                        name=encoded.name,
                        format=encoded.format,
                        key=key,
                        width=encoded.width,
                        height=encoded.height,
                        bytes=len(encoded.data),
                    )
                )
        except BaseException:
            with contextlib.suppress(Exception):  # the outage may stop this too: the next run's listing sweeps them
                self.objects.delete([r.key for r in renditions] + ([key] if key else []))
            raise
        return renditions

    def remove_stale(self, record: ImageRecord | None) -> None:
        """Delete the files ``record`` lists as stale (earlier runs', the flat layout's), then clear the list.

        Only after the record names the new files; if S3 fails here the error is raised and the message retried,
        and the retry (a duplicate by then) or any later run finishes the delete from the record's list."""
        if record is None or not record.stale_keys:
            return
        named = {r.key for r in record.renditions}
        self.objects.delete([key for key in record.stale_keys if key not in named])

        def cleared(current: ImageRecord | None) -> ImageRecord | None:
            if current is None or current.stale_keys != record.stale_keys:
                return None  # another run moved the record on; its own list stands
            return current.replace(stale_keys=())

        self.images.update(self.image_id, cleared)

    def fail(
        self,
        reason: str,
        detail: str,
        *,
        source: bytes | None = None,
        byte_size: int | None = None,
        retryable: bool = False,
    ) -> Outcome:
        """Record a refusal: no renditions (an earlier version's are removed first), the reason for people.
        ``retryable`` drops the record's sequencer, so that the same event is not skipped as a duplicate.
        The facts are cleared but the upload's sha256 and ``duplicate_of`` stay: they are facts of the bytes, and
        a skipped duplicate (DUPLICATES=skip) is shown with a link to the image it repeats."""
        current = self.images.get(self.image_id, consistent=True)
        if current is None or not self.still_ours(current):
            return self.superseded()
        # Remove before recording: if recording fails, the retry removes again; the other way round a retry
        # would see a finished duplicate and the stale renditions would stay.
        # Everything of this image's: what the record names, the flat layout's, and any run's leftovers (a run
        # that died between PUTs). While this job holds the claim no other run may write, so all of it is stale.
        doomed = {r.key for r in current.renditions} | set(keys.legacy_rendition_keys(self.image_id))
        self.objects.delete(doomed | visibility.stored_rendition_keys(self.objects, self.image_id))
        at = self.clock()
        sha256 = (self.sha256 or hashlib.sha256(source).hexdigest()) if source is not None else None
        if source is not None:
            byte_size = len(source)

        def failed(current: ImageRecord) -> ImageRecord:
            return current.with_status(Status.FAILED, reason=detail, at=at).replace(
                content_type=None,
                byte_size=byte_size,
                sha256=sha256,
                width=None,
                height=None,
                format=None,
                frames=None,
                renditions=(),
                processed_at=at,
                blurhash=None,
                dominant_color=None,
                notes=(),
                taken_at=None,
                camera=None,
                location=None,
                phash=None,
                duplicate_of=self.duplicate.image_id if self.duplicate else None,
                near_duplicate_of=None,
                stale_keys=(),  # every file of the image was deleted just above
                source_sequencer=None if retryable else current.source_sequencer,
            )

        if not self.update_if_ours(failed):
            return self.superseded()
        return self.outcome(Result.FAILED, reason, detail, bytes_in=len(source or b""))


class ProcessingTimedOut(RuntimeError):
    """Imaging ran past its deadline and the failure could not be recorded either: retried like any outage."""


class _Watchdog:
    """Runs ``on_expiry`` once, on a timer thread, if the work it watches is still running after ``seconds``.

    The work calls ``stand_down()`` when it is done and goes on only if that returns True. A lock makes the two
    exclusive: either the work goes on to write and record (the watchdog then does nothing), or the watchdog
    records its failure (and the work, whenever it ends, writes nothing). In Lambda the work usually never ends:
    the timeout stops the runtime after the failure is recorded, and the redelivered message is a duplicate of a
    finished event.
    """

    def __init__(self, seconds: float, on_expiry: Callable[[], Outcome]) -> None:
        self.on_expiry = on_expiry
        self.outcome: Outcome | None = None
        self.error: BaseException | None = None
        self._lock = threading.Lock()
        self._done = False
        self._fired = False
        self._timer = threading.Timer(max(0.0, seconds), self._expire)
        self._timer.daemon = True

    def __enter__(self) -> _Watchdog:
        self._timer.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stand_down()
        if self._fired and self.outcome is None and self.error is not None:
            raise ProcessingTimedOut("imaging ran past its deadline; recording the failure failed") from self.error

    def stand_down(self) -> bool:
        """True if the work may go on; False if the watchdog fired (returns once its failure is recorded)."""
        with self._lock:
            self._done = True
            fired = self._fired
        self._timer.cancel()
        self._timer.join()  # at once if it never fired; else once its failure is recorded
        return not fired

    def _expire(self) -> None:
        with self._lock:
            if self._done:
                return
            self._fired = True
        try:
            self.outcome = self.on_expiry()
        except BaseException as error:  # handed to the work's thread, which raises it
            self.error = error
