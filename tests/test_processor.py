"""The processor Lambda end to end on moto: real-shaped S3 and SQS events in, records and renditions out."""

from __future__ import annotations

import copy
import hashlib
import io
import json
import re
import threading
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import boto3
import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError
from botocore.exceptions import ClientError, ReadTimeoutError
from conftest import EVENTS, HOSTILE, PHOTOS
from lambda_context import FakeLambdaContext
from PIL import Image, ImageChops, ImageStat

from lambdas.image_processor import handler as processor_lambda
from pipeline import keys, processing, records, reprocess, trash
from pipeline.processing import ImageProcessor
from pipeline.records import ImageRecord, Status
from pipeline.store import IMMUTABLE_CACHE_CONTROL, NoCdnCache
from reliability.faults import FailOnce

GPS_IFD = 0x8825


# -- fixtures and helpers ------------------------------------------------------------------------------

FIRST_SEQUENCER = 0x0062A1B2C3D4E5F600


class ProcessorEvents:
    """Real-shaped events from tests/events/, patched with what S3 says about the objects a test uploads."""

    def __init__(self, s3, bucket: str) -> None:
        self.s3 = s3
        self.bucket = bucket
        self.count = 0
        self.last_sequencer: str | None = None

    @staticmethod
    def load(name: str) -> dict[str, Any]:
        return json.loads((EVENTS / name).read_text())

    def put(self, key: str, body: Path | bytes, *, sequencer: str | None = None) -> dict[str, Any]:
        """Upload ``body`` to ``key`` and return the S3 notification for it, with a newer sequencer each time."""
        data = body.read_bytes() if isinstance(body, Path) else body
        etag = self.s3.put_object(Bucket=self.bucket, Key=key, Body=data)["ETag"].strip('"')
        self.count += 1
        sequencer = sequencer or f"{FIRST_SEQUENCER + self.count:018X}"
        event = self.load("s3_put.json")
        record = event["Records"][0]
        record["s3"]["bucket"].update(name=self.bucket, arn=f"arn:aws:s3:::{self.bucket}")
        # S3 URL-encodes keys in notifications the way HTML forms do.
        record["s3"]["object"].update(key=quote_plus(key, safe="/"), size=len(data), eTag=etag, sequencer=sequencer)
        self.last_sequencer = sequencer
        return event

    def announced(self, key: str) -> dict[str, Any]:
        """The notification S3 sends for the object at ``key`` as it is now (after a touch: a copy onto itself)."""
        head = self.s3.head_object(Bucket=self.bucket, Key=key)
        self.count += 1
        sequencer = f"{FIRST_SEQUENCER + self.count:018X}"
        event = self.load("s3_put.json")
        record = event["Records"][0]
        record["s3"]["bucket"].update(name=self.bucket, arn=f"arn:aws:s3:::{self.bucket}")
        record["s3"]["object"].update(
            key=quote_plus(key, safe="/"), size=head["ContentLength"], eTag=head["ETag"].strip('"'), sequencer=sequencer
        )
        self.last_sequencer = sequencer
        return event

    @staticmethod
    def sequencer_of(event: dict[str, Any]) -> str:
        return event["Records"][0]["s3"]["object"]["sequencer"]

    def sqs(self, *notifications: dict[str, Any]) -> dict[str, Any]:
        """The notifications as S3 -> SQS -> Lambda delivers them: one message each, the JSON in its body."""
        template = self.load("sqs_s3_put.json")["Records"][0]
        messages = []
        for notification in notifications:
            body = json.dumps(notification)
            message = copy.deepcopy(template)
            message.update(
                messageId=str(uuid.uuid4()),
                body=body,
                md5OfBody=hashlib.md5(body.encode(), usedforsecurity=False).hexdigest(),
            )
            messages.append(message)
        return {"Records": messages}


@pytest.fixture
def lambda_env(aws, pipeline_settings, monkeypatch):
    """The Lambda module wired to this test's moto stores and settings (the module's own are built at import)."""
    processor = ImageProcessor(pipeline_settings, aws.image_store(), aws.object_store())
    monkeypatch.setattr(processor_lambda, "processor", processor)
    return aws


@pytest.fixture
def events(lambda_env, pipeline_settings) -> ProcessorEvents:
    return ProcessorEvents(lambda_env.s3, pipeline_settings.bucket)


def invoke(event: dict[str, Any]) -> dict[str, Any] | None:
    return processor_lambda.handler(event, FakeLambdaContext())


def deliver(event: dict[str, Any], events: ProcessorEvents) -> None:
    """Through SQS, the deployed path; every message must succeed."""
    assert invoke(events.sqs(event)) == {"batchItemFailures": []}


def record_for(aws, settings, raw_key: str) -> ImageRecord | None:
    return aws.image_store().get(keys.image_id_for_raw_key(raw_key, settings.secret), consistent=True)


def public_keys(aws, settings) -> list[str]:
    listing = aws.s3.list_objects_v2(Bucket=settings.bucket, Prefix=keys.PUBLIC_PREFIX)
    return sorted(item["Key"] for item in listing.get("Contents", []))


def stored_image(aws, settings, key: str) -> Image.Image:
    body = aws.s3.get_object(Bucket=settings.bucket, Key=key)["Body"].read()
    return Image.open(io.BytesIO(body))


def count_calls(client, operation: str) -> list[str]:
    """The keys of every ``operation`` the client makes from now on (a botocore event hook, no mock)."""
    seen: list[str] = []
    client.meta.events.register(
        f"before-parameter-build.s3.{operation}", lambda params, **_: seen.append(params.get("Key"))
    )
    return seen


class Outage:
    """``operation`` on one key (or every key ending in ``*key``) fails the way S3 does under load (after botocore's
    own retries) until ended."""

    def __init__(self, client, operation: str, key: str, code: str = "SlowDown", status: int = 503) -> None:
        self.operation, self.key, self.code, self.status = operation, key, code, status
        self.active = True
        client.meta.events.register(f"before-parameter-build.s3.{operation}", self.raise_for_key)

    def raise_for_key(self, params: dict[str, Any], **_: Any) -> None:
        key = params.get("Key") or ""
        if self.active and (key == self.key or (self.key.startswith("*") and key.endswith(self.key[1:]))):
            error = {"Code": self.code, "Message": "Please reduce your request rate."}
            raise ClientError({"Error": error, "ResponseMetadata": {"HTTPStatusCode": self.status}}, self.operation)

    def end(self) -> None:
        self.active = False


def emitted_metrics(captured: str) -> list[dict[str, Any]]:
    """The EMF documents Powertools printed: one dict per metric value with its dimensions."""
    found = []
    for line in captured.splitlines():
        if not line.startswith("{") or '"_aws"' not in line:
            continue
        document = json.loads(line)
        for directive in document["_aws"]["CloudWatchMetrics"]:
            dimensions = {name: document[name] for group in directive["Dimensions"] for name in group}
            for metric in directive["Metrics"]:
                values = document[metric["Name"]]
                for value in values if isinstance(values, list) else [values]:
                    found.append({"name": metric["Name"], "value": value, "unit": metric["Unit"], **dimensions})
    return found


# -- a photo becomes a ready record with renditions ---------------------------------------------------------


def test_photo_upload_becomes_a_ready_record_with_every_fact(events, aws, pipeline_settings):
    source = (PHOTOS / "DSCN0010.jpg").read_bytes()
    deliver(events.put("raw/DSCN0010.jpg", source), events)

    record = record_for(aws, pipeline_settings, "raw/DSCN0010.jpg")
    assert record is not None
    assert record.status is Status.READY
    assert (record.width, record.height) == (640, 480)
    assert record.content_type == "image/jpeg"
    assert record.format == "JPEG"
    assert record.frames == 1
    assert record.byte_size == len(source)
    assert record.sha256 == hashlib.sha256(source).hexdigest()
    assert record.file_name == "DSCN0010.jpg"
    assert record.processed_at
    assert record.blurhash
    assert record.dominant_color.startswith("#")
    assert record.failure_reason is None
    assert record.source_sequencer == events.last_sequencer
    assert [entry.status for entry in record.history] == [Status.PROCESSING, Status.READY]
    # 3 ladder rungs and 4 tiles of a 640x480 photo, as JPEG and WebP, but no WebP of the JPEG at its own size
    assert len(record.renditions) == 13
    (version,) = {r.key.rsplit("/", 1)[1].split("-")[0] for r in record.renditions}  # one run, one version
    assert {r.key for r in record.renditions} == {
        keys.rendition_key(record.id, r.name, r.format, version=version, width=r.width, height=r.height)
        for r in record.renditions
    }


def test_renditions_are_stored_with_their_type_size_and_immutable_caching(events, aws, pipeline_settings):
    deliver(events.put("raw/DSCN0010.jpg", PHOTOS / "DSCN0010.jpg"), events)

    record = record_for(aws, pipeline_settings, "raw/DSCN0010.jpg")
    assert public_keys(aws, pipeline_settings) == sorted(r.key for r in record.renditions)
    for rendition in record.renditions:
        head = aws.s3.head_object(Bucket=pipeline_settings.bucket, Key=rendition.key)
        assert head["ContentType"] == rendition.content_type
        assert head["ContentLength"] == rendition.bytes
        assert head["CacheControl"] == IMMUTABLE_CACHE_CONTROL
        stored = stored_image(aws, pipeline_settings, rendition.key)
        assert stored.format.lower() == rendition.format
        assert stored.size == (rendition.width, rendition.height)
    ladder = sorted((r.width, r.height) for r in record.renditions if r.name == "optimized" and r.format == "jpeg")
    tiles = sorted((r.width, r.height) for r in record.renditions if r.name == "thumb" and r.format == "jpeg")
    assert ladder == [(320, 240), (480, 360), (640, 480)]  # never upscaled to 1920
    assert tiles == [(256, 192), (384, 288), (560, 420), (640, 480)]


def test_gps_is_removed_from_every_stored_output(events, aws, pipeline_settings):
    assert Image.open(PHOTOS / "DSCN0021.jpg").getexif().get_ifd(GPS_IFD)  # the source has a location
    deliver(events.put("raw/DSCN0021.jpg", PHOTOS / "DSCN0021.jpg"), events)

    record = record_for(aws, pipeline_settings, "raw/DSCN0021.jpg")
    assert len(record.renditions) == 13
    for rendition in record.renditions:
        stored = stored_image(aws, pipeline_settings, rendition.key)
        assert not stored.getexif().get_ifd(GPS_IFD), rendition.key
        assert b"GPS" not in (stored.info.get("exif") or b"")


def _upright_thumb(events, aws, settings, name: str) -> Image.Image:
    raw_key = f"raw/{name}"
    deliver(events.put(raw_key, PHOTOS / name), events)
    record = record_for(aws, settings, raw_key)
    smallest = min((r for r in record.renditions if r.name == "optimized"), key=lambda r: r.width)
    return stored_image(aws, settings, smallest.key).convert("L")


def _difference(first: Image.Image, second: Image.Image) -> float:
    return ImageStat.Stat(ImageChops.difference(first, second)).mean[0]


@pytest.mark.parametrize(
    ("rotated", "upright", "landscape"),
    [("Landscape_6.jpg", "Landscape_1.jpg", True), ("Portrait_8.jpg", "Portrait_1.jpg", False)],
)
def test_exif_orientation_is_applied_to_the_stored_outputs(events, aws, pipeline_settings, rotated, upright, landscape):
    from_rotated = _upright_thumb(events, aws, pipeline_settings, rotated)
    from_upright = _upright_thumb(events, aws, pipeline_settings, upright)

    assert (from_rotated.width > from_rotated.height) is landscape
    assert from_rotated.size == from_upright.size
    # Same picture the same way up: close to the upright one, far from it turned upside down.
    assert _difference(from_rotated, from_upright) < 8
    assert _difference(from_rotated, from_upright.rotate(180)) > 4 * _difference(from_rotated, from_upright)


# -- Django uploads and staff edits ------------------------------------------------------------------------


def _django_upload(aws, file_name: str, **staff_fields: Any) -> ImageRecord:
    """The record Django writes when it hands out a presigned POST (status uploading, owner, TTL)."""
    image_id = keys.new_image_id()
    record = records.new_record(
        image_id,
        keys.raw_key_for_upload(image_id, file_name),
        Status.UPLOADING,
        file_name=file_name,
        owner="alice",
        expires_at=2_000_000_000,
    ).replace(**staff_fields)
    return aws.image_store().create(record)


def test_django_upload_keeps_owner_and_title_and_becomes_ready(events, aws, pipeline_settings):
    created = _django_upload(aws, "Beach day.jpg", title="Beach day", tags=("beach", "summer"))
    assert created.expires_at is not None

    deliver(events.put(created.raw_key, PHOTOS / "Canon_40D.jpg"), events)

    record = aws.image_store().get(created.id)
    assert record.status is Status.READY
    assert (record.owner, record.title, record.tags, record.file_name) == (
        "alice",
        "Beach day",
        ("beach", "summer"),
        "Beach day.jpg",
    )
    assert record.created_at == created.created_at
    assert record.expires_at is None  # no longer an abandoned upload for the TTL to sweep
    assert [entry.status for entry in record.history] == [Status.UPLOADING, Status.PROCESSING, Status.READY]


def test_reupload_keeps_what_staff_set_on_the_record(events, aws, pipeline_settings):
    deliver(events.put("raw/kept.jpg", PHOTOS / "Canon_40D.jpg"), events)
    image_id = keys.image_id_for_raw_key("raw/kept.jpg", pipeline_settings.secret)
    aws.image_store().update(image_id, lambda r: r.replace(hidden=True, title="Moderated", alt_text="A lens"))

    deliver(events.put("raw/kept.jpg", PHOTOS / "DSCN0010.jpg"), events)

    record = aws.image_store().get(image_id)
    assert record.status is Status.READY
    assert (record.width, record.height) == (640, 480)
    assert (record.hidden, record.title, record.alt_text) == (True, "Moderated", "A lens")


def test_key_under_another_uploads_id_does_not_take_its_record_over(events, aws, pipeline_settings):
    created = _django_upload(aws, "mine.jpg")
    other_key = f"{keys.RAW_PREFIX}{created.id}/someone-else.jpg"

    deliver(events.put(other_key, PHOTOS / "Canon_40D.jpg"), events)

    assert aws.image_store().get(created.id) == created
    assert public_keys(aws, pipeline_settings) == []


# -- idempotency and ordering ------------------------------------------------------------------------------


def test_duplicate_event_is_skipped_and_leaves_one_record_and_one_set_of_outputs(events, aws, pipeline_settings):
    event = events.put("raw/twice.jpg", PHOTOS / "DSCN0010.jpg")
    deliver(event, events)
    first = record_for(aws, pipeline_settings, "raw/twice.jpg")
    writes = count_calls(aws.s3, "PutObject")

    deliver(event, events)

    assert record_for(aws, pipeline_settings, "raw/twice.jpg") == first
    assert writes == []
    assert public_keys(aws, pipeline_settings) == sorted(r.key for r in first.renditions)


def test_redelivery_after_an_interrupted_attempt_finishes_the_job(events, aws, pipeline_settings):
    event = events.put("raw/retry.jpg", PHOTOS / "Canon_40D.jpg")
    outage = Outage(aws.s3, "GetObject", "raw/retry.jpg")
    with pytest.raises(ClientError):
        invoke(event)
    assert record_for(aws, pipeline_settings, "raw/retry.jpg").status is Status.PROCESSING

    outage.end()
    invoke(event)  # the same event again, as Lambda's retry (or SQS after the visibility timeout) delivers it

    record = record_for(aws, pipeline_settings, "raw/retry.jpg")
    assert record.status is Status.READY
    assert [entry.status for entry in record.history] == [Status.PROCESSING, Status.PROCESSING, Status.READY]


def test_newer_upload_that_claims_the_record_mid_job_wins_and_the_older_job_writes_nothing(
    events, aws, pipeline_settings
):
    older = events.put("raw/race.jpg", PHOTOS / "Canon_40D.jpg")
    newer = events.put("raw/race.jpg", PHOTOS / "Canon_40D.jpg")  # same bytes: the older job's GET still succeeds
    writes_after_newer: list[str] = []

    def newer_runs_to_completion_during_the_older_download(params: dict[str, Any], **_: Any) -> None:
        aws.s3.meta.events.unregister("before-parameter-build.s3.GetObject", unique_id="race")
        invoke(newer)
        aws.s3.meta.events.register(
            "before-parameter-build.s3.PutObject", lambda params, **_: writes_after_newer.append(params["Key"])
        )

    aws.s3.meta.events.register(
        "before-parameter-build.s3.GetObject", newer_runs_to_completion_during_the_older_download, unique_id="race"
    )
    invoke(older)

    record = record_for(aws, pipeline_settings, "raw/race.jpg")
    assert record.status is Status.READY
    assert record.source_sequencer == events.sequencer_of(newer)
    assert writes_after_newer == []


def test_image_deleted_by_staff_mid_job_leaves_no_orphaned_renditions(events, aws, pipeline_settings):
    event = events.put("raw/deleted.jpg", PHOTOS / "Canon_40D.jpg")
    image_id = keys.image_id_for_raw_key("raw/deleted.jpg", pipeline_settings.secret)
    images = aws.image_store()
    record_writes: list[str] = []

    def staff_delete_before_the_job_marks_it_ready(params: dict[str, Any], **_: Any) -> None:
        record_writes.append(image_id)
        if len(record_writes) == 2:  # the first write is the claim, the second marks it ready
            images.delete(images.get(image_id))

    aws.dynamodb.meta.events.register(
        "before-parameter-build.dynamodb.TransactWriteItems", staff_delete_before_the_job_marks_it_ready
    )
    invoke(event)

    assert images.get(image_id) is None
    assert public_keys(aws, pipeline_settings) == []


def test_older_event_delivered_after_a_newer_one_changes_nothing(events, aws, pipeline_settings):
    # The same bytes uploaded twice: both events name the object that is there, only the sequencer differs.
    older = events.put("raw/order.jpg", PHOTOS / "Canon_40D.jpg")
    newer = events.put("raw/order.jpg", PHOTOS / "Canon_40D.jpg")
    deliver(newer, events)
    after_newer = record_for(aws, pipeline_settings, "raw/order.jpg")
    reads = count_calls(aws.s3, "GetObject")

    deliver(older, events)

    assert record_for(aws, pipeline_settings, "raw/order.jpg") == after_newer
    assert after_newer.source_sequencer == events.sequencer_of(newer)
    assert reads == []


def test_older_upload_processed_late_never_replaces_the_newer_image(events, aws, pipeline_settings):
    older = events.put("raw/late.jpg", PHOTOS / "DSCN0010.jpg")
    newer = events.put("raw/late.jpg", PHOTOS / "Canon_40D.jpg")
    deliver(newer, events)
    deliver(older, events)

    record = record_for(aws, pipeline_settings, "raw/late.jpg")
    assert record.sha256 == hashlib.sha256((PHOTOS / "Canon_40D.jpg").read_bytes()).hexdigest()
    optimized = stored_image(aws, pipeline_settings, record.rendition("optimized", "jpeg").key)
    assert optimized.size == (100, 68)


def test_reupload_to_the_same_key_replaces_the_renditions(events, aws, pipeline_settings):
    deliver(events.put("raw/again.jpg", PHOTOS / "DSCN0010.jpg"), events)
    first = record_for(aws, pipeline_settings, "raw/again.jpg")

    deliver(events.put("raw/again.jpg", PHOTOS / "Canon_40D.jpg"), events)

    second = record_for(aws, pipeline_settings, "raw/again.jpg")
    assert second.id == first.id
    assert second.created_at == first.created_at
    assert (second.width, second.height) == (100, 68)
    for rendition in second.renditions:
        assert stored_image(aws, pipeline_settings, rendition.key).size == (rendition.width, rendition.height)
    assert stored_image(aws, pipeline_settings, second.rendition("optimized", "jpeg").key).size == (100, 68)
    # The first upload's files went once the record pointed at the second's: nothing else is left in public/.
    assert public_keys(aws, pipeline_settings) == sorted(r.key for r in second.renditions)
    assert not {r.key for r in first.renditions} & {r.key for r in second.renditions}


def test_a_newer_run_deletes_the_older_runs_files_only_after_the_record_points_at_its_own(
    events, aws, pipeline_settings
):
    # Order 1: the older run finishes first, the newer one replaces it.
    deliver(events.put("raw/order1.jpg", PHOTOS / "DSCN0010.jpg"), events)
    older = record_for(aws, pipeline_settings, "raw/order1.jpg")
    seen_by_deletes: list[set[str]] = []

    def record_when_deleting(params: dict[str, Any], **_: Any) -> None:
        current = aws.image_store().get(older.id, consistent=True)
        seen_by_deletes.append({r.key for r in current.renditions})
        assert not {o["Key"] for o in params["Delete"]["Objects"]} & seen_by_deletes[-1], "deleted a named file"

    aws.s3.meta.events.register("before-parameter-build.s3.DeleteObjects", record_when_deleting)
    deliver(events.put("raw/order1.jpg", PHOTOS / "Canon_40D.jpg"), events)

    newer = record_for(aws, pipeline_settings, "raw/order1.jpg")
    assert seen_by_deletes
    assert all(named == {r.key for r in newer.renditions} for named in seen_by_deletes)
    assert public_keys(aws, pipeline_settings) == sorted(r.key for r in newer.renditions)


def test_a_run_that_loses_the_record_after_writing_deletes_only_its_own_files(events, aws, pipeline_settings):
    # Order 2: the older run has written all its files when a newer upload's run claims the record and finishes;
    # the older run then fails to mark the record ready, and takes back its own files and nothing else.
    older = events.put("raw/order2.jpg", PHOTOS / "DSCN0010.jpg")
    newer = events.put("raw/order2.jpg", PHOTOS / "DSCN0010.jpg")  # same bytes, so the older GET still works
    image_id = keys.image_id_for_raw_key("raw/order2.jpg", pipeline_settings.secret)
    transactions: list[int] = []

    def newer_finishes_before_the_older_marks_ready(params: dict[str, Any], **_: Any) -> None:
        transactions.append(1)
        if len(transactions) == 2:  # the older run's claim was the first; this is it marking ready
            invoke(newer)

    aws.dynamodb.meta.events.register(
        "before-parameter-build.dynamodb.TransactWriteItems", newer_finishes_before_the_older_marks_ready
    )
    outcome_log = count_calls(aws.s3, "PutObject")
    invoke(older)

    record = aws.image_store().get(image_id, consistent=True)
    assert record.status is Status.READY
    assert record.source_sequencer == events.sequencer_of(newer)
    versions = {key.rsplit("/", 1)[1].split("-")[0] for key in outcome_log}
    assert len(versions) == 2  # both runs wrote, each under its own version: nothing was overwritten
    assert public_keys(aws, pipeline_settings) == sorted(r.key for r in record.renditions)
    for rendition in record.renditions:  # the newer run's files are all there and intact
        assert stored_image(aws, pipeline_settings, rendition.key).size == (rendition.width, rendition.height)


def _into_the_flat_layout(aws, settings, record: ImageRecord) -> ImageRecord:
    """What the seed's processor left: four flat keys (public/thumbs/<id>.jpg ...) and the record naming them."""
    flat = []
    for name, folder in (("thumb", "thumbs"), ("optimized", "optimized")):
        for fmt, ext in (("jpeg", "jpg"), ("webp", "webp")):
            # The widest of the family, in this format where it was made (the fixture's bytes only need to exist).
            family = [r for r in record.renditions if r.name == name]
            source = max(family, key=lambda r: (r.width, r.format == fmt))
            key = f"public/{folder}/{record.id}.{ext}"
            aws.s3.copy_object(
                Bucket=settings.bucket, Key=key, CopySource={"Bucket": settings.bucket, "Key": source.key}
            )
            flat.append(source.replace(key=key))
    aws.object_store().delete([r.key for r in record.renditions])
    return aws.image_store().update(record.id, lambda current: current.replace(renditions=tuple(flat)))


def test_reprocess_all_moves_an_image_from_the_flat_layout_and_removes_the_old_files_after(
    events, aws, pipeline_settings
):
    deliver(events.put("raw/old.jpg", PHOTOS / "DSCN0010.jpg"), events)
    old = _into_the_flat_layout(aws, pipeline_settings, record_for(aws, pipeline_settings, "raw/old.jpg"))
    assert public_keys(aws, pipeline_settings) == sorted(keys.legacy_rendition_keys(old.id))
    named_while_deleting: list[set[str]] = []
    aws.s3.meta.events.register(
        "before-parameter-build.s3.DeleteObjects",
        lambda params, **_: named_while_deleting.append(
            {r.key for r in aws.image_store().get(old.id, consistent=True).renditions}
        ),
    )

    assert reprocess.main(["--all", "--legacy-only"], aws=aws, sleep=lambda _: None, out=io.StringIO()) == 0
    deliver(events.announced(old.raw_key), events)  # the touch's own ObjectCreated event

    moved = record_for(aws, pipeline_settings, "raw/old.jpg")
    assert moved.status is Status.READY
    assert not reprocess.uses_legacy_layout(moved)
    assert public_keys(aws, pipeline_settings) == sorted(r.key for r in moved.renditions)  # the flat files are gone
    assert named_while_deleting == [{r.key for r in moved.renditions}]  # deleted only once the record moved on


def test_a_hidden_images_new_renditions_are_written_outside_the_public_prefix(events, aws, pipeline_settings):
    deliver(events.put("raw/secret.jpg", PHOTOS / "Canon_40D.jpg"), events)
    image_id = keys.image_id_for_raw_key("raw/secret.jpg", pipeline_settings.secret)
    aws.image_store().update(image_id, lambda r: r.replace(hidden=True))

    deliver(events.put("raw/secret.jpg", PHOTOS / "DSCN0010.jpg"), events)

    record = aws.image_store().get(image_id, consistent=True)
    assert record.status is Status.READY
    assert all(keys.is_hidden_key(r.key) for r in record.renditions)
    assert not any(key.startswith(keys.PUBLIC_PREFIX) for key in public_keys(aws, pipeline_settings))


def test_sequencers_of_different_lengths_compare_as_numbers(events, aws, pipeline_settings):
    # "FF" sorts after "0100" as text, but S3 means 255 < 256: the second upload is the newer one.
    deliver(events.put("raw/len.jpg", PHOTOS / "DSCN0010.jpg", sequencer="FF"), events)
    deliver(events.put("raw/len.jpg", PHOTOS / "Canon_40D.jpg", sequencer="0100"), events)

    record = record_for(aws, pipeline_settings, "raw/len.jpg")
    assert (record.width, record.height, record.source_sequencer) == (100, 68, "0100")


def test_object_replaced_before_processing_is_skipped_for_its_own_event(events, aws, pipeline_settings):
    replaced = events.put("raw/replaced.jpg", PHOTOS / "DSCN0010.jpg")
    events.put("raw/replaced.jpg", PHOTOS / "Canon_40D.jpg")  # its event is still on the way
    reads = count_calls(aws.s3, "GetObject")

    deliver(replaced, events)

    assert record_for(aws, pipeline_settings, "raw/replaced.jpg") is None
    assert reads == []


def test_object_deleted_before_processing_is_skipped_not_failed(events, aws, pipeline_settings):
    event = events.put("raw/gone.jpg", PHOTOS / "Canon_40D.jpg")
    aws.s3.delete_object(Bucket=pipeline_settings.bucket, Key="raw/gone.jpg")

    deliver(event, events)

    assert record_for(aws, pipeline_settings, "raw/gone.jpg") is None
    assert public_keys(aws, pipeline_settings) == []


def test_emulator_notifications_without_a_sequencer_are_processed_in_arrival_order(events, aws, pipeline_settings):
    # moto (the local stack) routes S3 -> SQS itself but sends no sequencer: each upload is processed as it comes.
    sqs = boto3.client("sqs", region_name=pipeline_settings.region)
    queue_url = sqs.create_queue(QueueName="uploads")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    aws.s3.put_bucket_notification_configuration(
        Bucket=pipeline_settings.bucket,
        NotificationConfiguration={
            "QueueConfigurations": [
                {
                    "QueueArn": queue_arn,
                    "Events": ["s3:ObjectCreated:*"],
                    "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "raw/"}]}},
                }
            ]
        },
    )

    def receive() -> dict[str, Any]:
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)["Messages"]
        assert len(messages) == 1
        sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=messages[0]["ReceiptHandle"])
        return json.loads(messages[0]["Body"])

    assert receive()["Event"] == "s3:TestEvent"  # sent when the notification is configured, as S3 does

    def upload_and_deliver(photo: str) -> None:
        aws.s3.put_object(Bucket=pipeline_settings.bucket, Key="raw/local copy.jpg", Body=(PHOTOS / photo).read_bytes())
        notification = receive()
        assert "sequencer" not in notification["Records"][0]["s3"]["object"]
        deliver(notification, events)

    upload_and_deliver("DSCN0010.jpg")
    upload_and_deliver("Canon_40D.jpg")

    record = record_for(aws, pipeline_settings, "raw/local copy.jpg")
    assert record.status is Status.READY
    assert (record.width, record.height) == (100, 68)


# -- events that are not uploads ---------------------------------------------------------------------------


def test_url_encoded_key_is_decoded(events, aws, pipeline_settings):
    body = (PHOTOS / "DSCN0021.jpg").read_bytes()
    event = events.load("s3_put_encoded_key.json")
    assert event["Records"][0]["s3"]["object"]["key"] == "raw/my+photo%281%29.jpg"
    put = aws.s3.put_object(Bucket=pipeline_settings.bucket, Key="raw/my photo(1).jpg", Body=body)
    event["Records"][0]["s3"]["object"].update(size=len(body), eTag=put["ETag"].strip('"'))

    deliver(event, events)

    record = record_for(aws, pipeline_settings, "raw/my photo(1).jpg")
    assert record.status is Status.READY
    assert (record.raw_key, record.file_name) == ("raw/my photo(1).jpg", "my photo(1).jpg")


def test_s3_test_event_is_ignored(events, aws, pipeline_settings):
    assert invoke(events.sqs(events.load("s3_test_event.json"))) == {"batchItemFailures": []}
    assert invoke(events.load("s3_test_event.json")) is None
    assert aws.dynamodb.scan(TableName=pipeline_settings.table)["Count"] == 0


@pytest.mark.parametrize("key", ["public/thumbs/abc.jpg", "elsewhere/photo.jpg", "raw/folder/"])
def test_objects_outside_raw_and_folder_markers_are_ignored(events, aws, pipeline_settings, key):
    heads = count_calls(aws.s3, "HeadObject")
    event = events.put(key, PHOTOS / "Canon_40D.jpg" if not key.endswith("/") else b"")

    deliver(event, events)

    assert heads == []
    assert aws.dynamodb.scan(TableName=pipeline_settings.table)["Count"] == 0


def test_events_other_than_object_created_are_ignored(events, aws, pipeline_settings):
    event = events.put("raw/removed.jpg", PHOTOS / "Canon_40D.jpg")
    event["Records"][0]["eventName"] = "ObjectRemoved:Delete"

    deliver(event, events)

    assert aws.dynamodb.scan(TableName=pipeline_settings.table)["Count"] == 0


# -- refusals ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("settings_env", [{"MAX_UPLOAD_BYTES": "100000"}])
def test_file_over_the_byte_limit_is_refused_without_downloading_it(events, aws, pipeline_settings):
    reads = count_calls(aws.s3, "GetObject")
    deliver(events.put("raw/big.jpg", PHOTOS / "DSCN0010.jpg"), events)  # 161,713 bytes

    record = record_for(aws, pipeline_settings, "raw/big.jpg")
    assert reads == []
    assert record.status is Status.FAILED
    assert record.failure_reason == "file is 157.9 KB, the limit is 97.7 KB"
    assert record.byte_size == 161_713
    assert public_keys(aws, pipeline_settings) == []


@pytest.mark.parametrize("settings_env", [{"MAX_PIXELS": "200000"}])
def test_image_over_the_pixel_limit_is_refused(events, aws, pipeline_settings):
    deliver(events.put("raw/wide.jpg", PHOTOS / "DSCN0010.jpg"), events)  # 307,200 pixels

    record = record_for(aws, pipeline_settings, "raw/wide.jpg")
    assert record.status is Status.FAILED
    assert record.failure_reason
    assert public_keys(aws, pipeline_settings) == []


def test_refused_reupload_removes_the_earlier_versions_renditions(events, aws, pipeline_settings):
    deliver(events.put("raw/swap.jpg", PHOTOS / "Canon_40D.jpg"), events)
    assert len(public_keys(aws, pipeline_settings)) == 3  # its own size as JPEG, its 90x68 tile as JPEG and WebP

    deliver(events.put("raw/swap.jpg", HOSTILE / "made-svg-script.jpg"), events)

    record = record_for(aws, pipeline_settings, "raw/swap.jpg")
    assert record.status is Status.FAILED
    assert record.renditions == ()
    assert record.width is None
    assert record.blurhash is None
    assert public_keys(aws, pipeline_settings) == []


@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("decompression_bomb.gif", "pixels"),
        ("made-bomb-warning-12000x12000.png", "pixels"),
        ("made-empty.jpg", "empty"),
        ("zero_bb.eps", "unsupported"),
        ("made-svg-script.jpg", "unsupported"),
        ("truncated_jpeg.jpg", "truncated"),
        ("crash-2020-10-test.tif", "corrupt"),
    ],
)
def test_hostile_file_ends_failed_with_a_reason_and_nothing_public(events, aws, pipeline_settings, name, says):
    deliver(events.put(f"raw/{name}", HOSTILE / name), events)

    record = record_for(aws, pipeline_settings, f"raw/{name}")
    assert record.status is Status.FAILED
    assert says in record.failure_reason.lower()
    assert record.history[-1].reason == record.failure_reason
    assert record.renditions == ()
    assert public_keys(aws, pipeline_settings) == []


@pytest.mark.parametrize("name", ["pil_sample_cmyk.jpg", "uncompressed_la.png", "sugarshack.mpo", "chi.gif"])
def test_odd_but_valid_file_ends_ready_with_every_rung(events, aws, pipeline_settings, name):
    deliver(events.put(f"raw/{name}", HOSTILE / name), events)

    record = record_for(aws, pipeline_settings, f"raw/{name}")
    assert record.status is Status.READY
    assert public_keys(aws, pipeline_settings) == sorted(r.key for r in record.renditions)
    stills = [r for r in record.renditions if r.name != "animated"]
    assert {r.name for r in stills} == {"thumb", "optimized"}
    assert [r.format for r in stills].count("jpeg") == len({(r.name, r.width) for r in stills})
    # chi.gif is kept as animated WebP besides its first frame's still renditions (tests/test_animation.py)
    assert len(record.renditions) - len(stills) == (1 if name == "chi.gif" else 0)


def test_unexpected_imaging_error_fails_the_record_instead_of_retrying_forever(
    events, aws, pipeline_settings, monkeypatch
):
    def decoder_bug(source: bytes, settings: Any) -> None:
        raise IndexError("a decoder bug")  # what no rejection class covers

    monkeypatch.setattr(processing.imaging, "process_image", decoder_bug)
    deliver(events.put("raw/bug.jpg", PHOTOS / "Canon_40D.jpg"), events)

    record = record_for(aws, pipeline_settings, "raw/bug.jpg")
    assert record.status is Status.FAILED
    assert "internal error" in record.failure_reason
    assert public_keys(aws, pipeline_settings) == []


# -- failures that must be retried, and SQS batches --------------------------------------------------------


def test_transient_error_fails_only_its_own_message_in_a_batch(events, aws, pipeline_settings):
    first = events.put("raw/one.jpg", PHOTOS / "Canon_40D.jpg")
    poison = events.put("raw/two.jpg", PHOTOS / "Canon_40D.jpg")
    third = events.put("raw/three.jpg", PHOTOS / "Canon_40D.jpg")
    Outage(aws.s3, "HeadObject", "raw/two.jpg")
    batch = events.sqs(first, poison, third)

    response = invoke(batch)

    assert response == {"batchItemFailures": [{"itemIdentifier": batch["Records"][1]["messageId"]}]}
    assert record_for(aws, pipeline_settings, "raw/one.jpg").status is Status.READY
    assert record_for(aws, pipeline_settings, "raw/three.jpg").status is Status.READY
    assert record_for(aws, pipeline_settings, "raw/two.jpg") is None


def on_delivery(batch: dict[str, Any], attempt: int) -> dict[str, Any]:
    """The batch as SQS hands it out for the `attempt`-th time (ApproximateReceiveCount)."""
    for message in batch["Records"]:
        message["attributes"]["ApproximateReceiveCount"] = str(attempt)
    return batch


def test_last_delivery_marks_the_record_failed_and_a_redrive_processes_it(events, aws, pipeline_settings, capsys):
    event = events.put("raw/stuck.jpg", PHOTOS / "Canon_40D.jpg")
    # The last PUT (the tile's WebP; the 100 px JPEG at its own size has no WebP) fails: the run's other
    # renditions are already written when it does.
    outage = Outage(aws.s3, "PutObject", "*-90x68.webp")
    written_before_the_outage = count_calls(aws.s3, "PutObject")
    last = processor_lambda.settings.max_receive_count
    for attempt in range(1, last):
        with pytest.raises(BatchProcessingError):  # a batch whose every message failed fails the invocation
            invoke(on_delivery(events.sqs(event), attempt))
        assert record_for(aws, pipeline_settings, "raw/stuck.jpg").status is Status.PROCESSING, attempt
    capsys.readouterr()

    # Still failed, so the message reaches the dead-letter queue and its alarm.
    with pytest.raises(BatchProcessingError, match="SlowDown"):
        invoke(on_delivery(events.sqs(event), last))

    record = record_for(aws, pipeline_settings, "raw/stuck.jpg")
    assert record.status is Status.FAILED
    assert record.failure_reason == (
        f"processing failed {last} times in a row (ClientError); the upload is kept and can be retried"
    )
    assert len(written_before_the_outage) == 2 * last  # each attempt wrote two files before the third failed
    assert public_keys(aws, pipeline_settings) == []  # no partial result left behind
    failed = [m for m in emitted_metrics(capsys.readouterr().out) if m["name"] == "ImagesFailed"]
    assert [(m["value"], m["reason"]) for m in failed] == [(1, "RetriesExhausted")]

    outage.end()
    deliver(event, events)  # the same message, redriven from the dead-letter queue

    record = record_for(aws, pipeline_settings, "raw/stuck.jpg")
    assert record.status is Status.READY
    assert record.source_sequencer == events.sequencer_of(event)
    assert public_keys(aws, pipeline_settings) == sorted(r.key for r in record.renditions)


def test_last_delivery_leaves_a_finished_record_alone(events, aws, pipeline_settings):
    event = events.put("raw/done.jpg", PHOTOS / "Canon_40D.jpg")
    deliver(event, events)
    image_id = keys.image_id_for_raw_key("raw/done.jpg", pipeline_settings.secret)
    before = record_for(aws, pipeline_settings, "raw/done.jpg")
    # A newer upload of the key is being written while this stale message makes its last attempt.
    Outage(aws.s3, "HeadObject", "raw/done.jpg")

    with pytest.raises(BatchProcessingError, match="SlowDown"):
        invoke(on_delivery(events.sqs(event), processor_lambda.settings.max_receive_count))

    assert record_for(aws, pipeline_settings, "raw/done.jpg") == before
    assert before.status is Status.READY
    assert image_id in public_keys(aws, pipeline_settings)[0]


def test_unrecognized_message_fails_only_itself(events, aws, pipeline_settings):
    good = events.put("raw/good.jpg", PHOTOS / "Canon_40D.jpg")
    batch = events.sqs(good, {"hello": "world"})
    batch["Records"].append({**batch["Records"][0], "messageId": "not-json", "body": "<xml/>"})

    response = invoke(batch)

    failed = [item["itemIdentifier"] for item in response["batchItemFailures"]]
    assert failed == [batch["Records"][1]["messageId"], "not-json"]
    assert record_for(aws, pipeline_settings, "raw/good.jpg").status is Status.READY


def test_transient_error_propagates_from_a_direct_s3_event(events, aws):
    event = events.put("raw/direct.jpg", PHOTOS / "Canon_40D.jpg")
    Outage(aws.s3, "PutObject", "*-90x68.jpg")

    with pytest.raises(ClientError, match="SlowDown"):
        invoke(event)


def test_direct_s3_event_is_processed(events, aws, pipeline_settings):
    assert invoke(events.put("raw/direct.jpg", PHOTOS / "Canon_40D.jpg")) is None

    assert record_for(aws, pipeline_settings, "raw/direct.jpg").status is Status.READY


# -- metrics -----------------------------------------------------------------------------------------------


def test_metrics_count_processed_and_failed_images_with_a_reason(events, aws, pipeline_settings, capsys):
    good = events.put("raw/good.jpg", PHOTOS / "Canon_40D.jpg")
    bad = events.put("raw/bad.jpg", HOSTILE / "made-empty.jpg")
    capsys.readouterr()

    invoke(events.sqs(good, bad))

    emitted = emitted_metrics(capsys.readouterr().out)
    by_name: dict[str, list[dict[str, Any]]] = {}
    for metric in emitted:
        by_name.setdefault(metric["name"], []).append(metric)
    record = record_for(aws, pipeline_settings, "raw/good.jpg")
    assert [m["value"] for m in by_name["ImagesProcessed"]] == [1]
    assert [(m["value"], m["reason"]) for m in by_name["ImagesFailed"]] == [(1, "CorruptImage")]
    assert sorted(m["value"] for m in by_name["BytesIn"]) == [0, (PHOTOS / "Canon_40D.jpg").stat().st_size]
    assert [m["value"] for m in by_name["BytesOut"]] == [sum(r.bytes for r in record.renditions)]
    assert len(by_name["ProcessingTime"]) == 2
    assert all(m["unit"] == "Milliseconds" for m in by_name["ProcessingTime"])
    assert all("reason" not in m for m in by_name["ImagesProcessed"] + by_name["ProcessingTime"])


def test_a_deleted_form_upload_posted_again_does_not_come_back_as_a_public_image(events, aws, pipeline_settings):
    # Review M3: a presigned POST can be used again until it expires. After staff delete the image, a second POST
    # of the same form must not make a new, listed, ownerless record.
    created = _django_upload(aws, "mine.jpg", title="Mine")
    deliver(events.put(created.raw_key, PHOTOS / "Canon_40D.jpg"), events)
    images = aws.image_store()
    ready = images.get(created.id)
    assert ready.listed
    images.delete(ready)  # what the admin's delete leaves: no record, no files
    aws.object_store().delete([r.key for r in ready.renditions])

    deliver(events.put(created.raw_key, PHOTOS / "Canon_40D.jpg"), events)  # the same form, posted again

    assert images.get(created.id) is None
    assert public_keys(aws, pipeline_settings) == []


# -- the trash: no event brings a trashed image back -----------------------------------------------------------


def _trash(aws, image_id: str) -> ImageRecord:
    return trash.trash(aws.image_store(), aws.object_store(), NoCdnCache(), image_id, by="root", retention_days=30)


def _files(aws, settings, prefix: str) -> list[str]:
    listing = aws.s3.list_objects_v2(Bucket=settings.bucket, Prefix=prefix)
    return sorted(item["Key"] for item in listing.get("Contents", []))


def _skip_reasons(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The ``reason`` of the handler's "skipped" log lines (Powertools passes the fields as the record's extras)."""
    return [record.reason for record in caplog.records if getattr(record, "outcome", None) == "skipped"]


def test_a_trashed_form_upload_posted_again_stays_in_the_trash(events, aws, pipeline_settings, caplog):
    # Review M3 with the trash: the presigned POST is used again (it works until it expires) after the admin's delete.
    created = _django_upload(aws, "mine.jpg", title="Mine")
    deliver(events.put(created.raw_key, PHOTOS / "Canon_40D.jpg"), events)
    in_trash = _trash(aws, created.id)
    caplog.clear()

    deliver(events.put(created.raw_key, PHOTOS / "DSCN0010.jpg"), events)

    assert aws.image_store().get(created.id) == in_trash  # not even claimed: same revision, same files
    assert public_keys(aws, pipeline_settings) == []
    assert _files(aws, pipeline_settings, keys.HIDDEN_PREFIX) == sorted(r.key for r in in_trash.renditions)
    assert _skip_reasons(caplog) == [processing.Reason.DELETED.value]


def test_a_restored_raw_object_does_not_bring_a_trashed_image_back(events, aws, pipeline_settings):
    deliver(events.put("raw/holiday/beach.jpg", PHOTOS / "Canon_40D.jpg"), events)  # `aws s3 cp`: id from the key
    image_id = keys.image_id_for_raw_key("raw/holiday/beach.jpg", pipeline_settings.secret)
    in_trash = _trash(aws, image_id)

    # An old version copied back (docs/trash.md), or the same file uploaded again: a new ObjectCreated event.
    deliver(events.put("raw/holiday/beach.jpg", PHOTOS / "Canon_40D.jpg"), events)

    record = aws.image_store().get(image_id)
    assert (record.status, record.revision) == (Status.DELETED, in_trash.revision)
    assert public_keys(aws, pipeline_settings) == []


def test_an_image_trashed_while_it_is_processed_ends_in_the_trash_with_no_file_of_that_run(
    events, aws, pipeline_settings, monkeypatch
):
    deliver(events.put("raw/busy.jpg", PHOTOS / "DSCN0010.jpg"), events)
    image_id = keys.image_id_for_raw_key("raw/busy.jpg", pipeline_settings.secret)
    objects = processor_lambda.processor.objects
    read = objects.read

    def trashed_meanwhile(key: str, **options: Any) -> bytes:
        _trash(aws, image_id)  # staff delete it after the processor claimed it, before it writes
        return read(key, **options)

    monkeypatch.setattr(objects, "read", trashed_meanwhile)
    deliver(events.put("raw/busy.jpg", PHOTOS / "Canon_40D.jpg"), events)

    record = aws.image_store().get(image_id, consistent=True)
    assert record.status is Status.DELETED
    assert record.status_before_delete is Status.PROCESSING
    assert public_keys(aws, pipeline_settings) == []
    assert _files(aws, pipeline_settings, keys.HIDDEN_PREFIX) == sorted(r.key for r in record.renditions)


def test_an_upload_without_a_form_still_starts_its_own_record(events, aws, pipeline_settings):
    deliver(events.put("raw/holiday/beach.jpg", PHOTOS / "Canon_40D.jpg"), events)  # `aws s3 cp`, any folder

    assert record_for(aws, pipeline_settings, "raw/holiday/beach.jpg").status is Status.READY


@pytest.mark.parametrize("number", range(8))
def test_a_mutated_upload_ends_ready_or_failed_with_a_reason_people_can_read(events, aws, pipeline_settings, number):
    from reliability.mutations import mutations

    sources = [PHOTOS / "DSCN0010.jpg", PHOTOS / "Canon_40D.jpg", HOSTILE / "i_trns.png", HOSTILE / "chi.gif"]
    mutation = list(mutations(sources, 8, seed=2026))[number]

    deliver(events.put(f"raw/mutated-{number}.bin", mutation.data), events)

    record = record_for(aws, pipeline_settings, f"raw/mutated-{number}.bin")
    assert record.status in (Status.READY, Status.FAILED), mutation.name
    if record.status is Status.FAILED:
        assert record.failure_reason
        assert "internal error" not in record.failure_reason, (mutation.name, record.failure_reason)
        assert public_keys(aws, pipeline_settings) == []


# -- faults (every AWS call failing once at each position, then redelivery: tests/test_reliability.py) ------


def test_a_timeout_after_the_ready_write_went_through_does_not_delete_the_files_it_names(
    events, aws, pipeline_settings
):
    event = events.put("raw/late-answer.jpg", PHOTOS / "DSCN0010.jpg")
    # The claim, then the ready write: it commits, and its answer is lost.
    FailOnce(aws.dynamodb, "dynamodb", "TransactWriteItems", "timeout-after", n=2)
    with pytest.raises(ReadTimeoutError):
        invoke(event)

    record = record_for(aws, pipeline_settings, "raw/late-answer.jpg")
    assert record.status is Status.READY
    for rendition in record.renditions:  # every file the record names is still there
        assert stored_image(aws, pipeline_settings, rendition.key).size == (rendition.width, rendition.height)


# -- the time budget (review finding L5) ------------------------------------------------------------------


class StalledImaging:
    """Imaging that keeps the decoder busy until released (a file that would outlast the Lambda timeout)."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.released = threading.Event()
        self.real = processing.imaging.process_image

    def __call__(self, source: bytes, settings: Any) -> Any:
        self.started.set()
        assert self.released.wait(30), "the test never released imaging"
        return self.real(source, settings)


def wait_for_status(aws, settings, raw_key: str, status: Status) -> ImageRecord:
    for _ in range(300):
        record = record_for(aws, settings, raw_key)
        if record is not None and record.status is status:
            return record
        time.sleep(0.05)
    raise AssertionError(f"{raw_key} never became {status}")


def test_an_image_still_decoding_at_the_deadline_fails_with_a_reason_and_the_late_result_is_dropped(
    events, aws, pipeline_settings, monkeypatch, capsys
):
    stalled = StalledImaging()
    monkeypatch.setattr(processing.imaging, "process_image", stalled)
    monkeypatch.setattr(processing, "MIN_IMAGING_SECONDS", 0.0)
    # The invocation has the margin plus 3 s (ample for the HEAD, the claim and the GET on a busy machine): imaging is
    # still running when they run out.
    context = FakeLambdaContext(timeout_seconds=processor_lambda.TIME_MARGIN_SECONDS + 3)
    event = events.put("raw/slow.jpg", PHOTOS / "Canon_40D.jpg")
    batch = events.sqs(event)
    responses: list[Any] = []
    invocation = threading.Thread(target=lambda: responses.append(processor_lambda.handler(batch, context)))
    invocation.start()

    record = wait_for_status(aws, pipeline_settings, "raw/slow.jpg", Status.FAILED)
    assert stalled.started.is_set()
    assert invocation.is_alive()  # failed while the decoder was still busy
    assert re.fullmatch(
        r"processing did not finish within [0-3] s, the time one image may take here; the upload is kept\. "
        r"An image with fewer pixels or frames will work\.",
        record.failure_reason,
    )
    assert record.sha256 == hashlib.sha256((PHOTOS / "Canon_40D.jpg").read_bytes()).hexdigest()

    stalled.released.set()  # the decoder ends after all (in Lambda the timeout would have stopped it)
    invocation.join(30)
    assert responses == [{"batchItemFailures": []}]
    assert record_for(aws, pipeline_settings, "raw/slow.jpg") == record  # the late result wrote nothing
    assert public_keys(aws, pipeline_settings) == []
    failed = [m for m in emitted_metrics(capsys.readouterr().out) if m["name"] == "ImagesFailed"]
    assert [(m["value"], m["reason"]) for m in failed] == [(1, "TimeBudgetExceeded")]

    # SQS delivers the message again after the timeout: a duplicate of a finished event, not another long run.
    monkeypatch.setattr(processing.imaging, "process_image", stalled.real)
    deliver(event, events)
    assert record_for(aws, pipeline_settings, "raw/slow.jpg") == record


def test_imaging_that_ends_in_time_is_left_alone_by_its_watchdog(events, aws, pipeline_settings):
    timers_before = {t for t in threading.enumerate() if isinstance(t, threading.Timer)}
    deliver(events.put("raw/quick.jpg", PHOTOS / "Canon_40D.jpg"), events)  # 50 s to spare: the watchdog stands down

    assert record_for(aws, pipeline_settings, "raw/quick.jpg").status is Status.READY
    assert {t for t in threading.enumerate() if isinstance(t, threading.Timer)} == timers_before


def test_too_little_time_left_after_the_download_retries_instead_of_blaming_the_file(events, aws, pipeline_settings):
    context = FakeLambdaContext(timeout_seconds=processor_lambda.TIME_MARGIN_SECONDS + 2)  # below the minimum
    event = events.put("raw/late.jpg", PHOTOS / "Canon_40D.jpg")

    with pytest.raises(BatchProcessingError, match="left for imaging"):
        processor_lambda.handler(events.sqs(event), context)

    assert record_for(aws, pipeline_settings, "raw/late.jpg").status is Status.PROCESSING  # retried, not failed
    deliver(event, events)
    assert record_for(aws, pipeline_settings, "raw/late.jpg").status is Status.READY
