"""The trash (pipeline.trash): trash, restore, purge one, the daily purge through its CLI, its Lambda and the local
stack, on moto."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from boto3.dynamodb.types import TypeDeserializer
from conftest import EVENTS, ROOT
from lambda_context import FakeLambdaContext
from test_visibility import (
    RecordingCdn,
    all_keys,
    cdn_status,
    cdn_url,  # noqa: F401 (a fixture this module uses)
    legacy_renditions,
    listed_ids,
    stored_image,
    write_files,
)

from lambdas.trash_purge import handler as purge_lambda
from local_stack import stack
from pipeline import keys, records, trash
from pipeline.records import ImageRecord, Status
from pipeline.store import Aws, NoCdnCache

RETENTION = 30


def days_ago(days: float) -> str:
    return (datetime.now(UTC) - timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def trash_it(aws: Aws, record: ImageRecord, *, days: float = 0, cdn=None) -> ImageRecord:
    """``record`` moved to the trash ``days`` ago (its purge date 30 days after that)."""
    trashed = trash.trash(
        aws.image_store(),
        aws.object_store(),
        cdn or NoCdnCache(),
        record.id,
        by="alice",
        retention_days=RETENTION,
        at=days_ago(days),
    )
    assert trashed is not None
    return trashed


def restore(aws: Aws, image_id: str) -> trash.Restored | None:
    return trash.restore(
        aws.image_store(), aws.object_store(), NoCdnCache(), image_id, by="bob", upload_ttl_seconds=3600
    )


def raw_items(aws: Aws, image_id: str) -> list[dict[str, Any]]:
    response = aws.dynamodb.query(
        TableName=aws.settings.table,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": records.image_pk(image_id)}},
    )
    deserializer = TypeDeserializer()
    return [{k: deserializer.deserialize(v) for k, v in item.items()} for item in response["Items"]]


def gone(aws: Aws, record: ImageRecord) -> bool:
    objects = aws.object_store()
    return (
        aws.image_store().get(record.id, consistent=True) is None
        and not objects.exists(record.raw_key)
        and all_keys(objects, record.id) == set()
    )


# -- trash and restore -----------------------------------------------------------------------------------------


def test_a_trashed_image_keeps_one_item_that_only_the_trash_partition_finds(aws):
    record = aws.image_store().update(stored_image(aws).id, lambda r: r.replace(tags=("harbour", "evening")))
    assert len(raw_items(aws, record.id)) == 3  # the image and its two tag items, while listed

    trash_it(aws, record)

    (item,) = raw_items(aws, record.id)
    assert item["status_pk"] == "deleted"
    assert "entity" not in item  # out of the admin's "All" (ByEntity)
    assert "listed_pk" not in item  # out of the gallery and the API (Listed)
    assert "expires_at" not in item  # no TTL: the purge deletes the files first, then the item
    assert (item["deleted_by"], item["status_before_delete"], item["tags"]) == (
        "alice",
        "ready",
        ["harbour", "evening"],
    )
    page = aws.image_store().query_page(records.STATUS_INDEX, "deleted", limit=10)
    assert [r.id for r in page.records] == [record.id]
    assert listed_ids(aws) == []


def test_trash_moves_the_renditions_off_the_cdn_and_restore_brings_them_back(aws, cdn_url):  # noqa: F811
    record = stored_image(aws)
    key = record.renditions[0].key

    trash_it(aws, record)
    while_trashed = cdn_status(cdn_url, key)
    restore(aws, record.id)

    assert while_trashed == 404
    assert cdn_status(cdn_url, key) == 200
    assert aws.image_store().get(record.id).renditions == record.renditions  # the same URLs come back


def test_trash_asks_the_cdn_to_forget_a_visible_image_only(aws):
    visible, hidden = stored_image(aws, n=1), stored_image(aws, hidden=True, n=2)
    cdn = RecordingCdn()

    trash_it(aws, visible, cdn=cdn)
    trash_it(aws, hidden, cdn=cdn)

    assert cdn.invalidations == [tuple(sorted(keys.cdn_invalidation_paths(visible.id)))]


def test_an_image_deleted_while_processing_is_processed_again_when_restored(aws):
    record = stored_image(aws, status=Status.PROCESSING)
    trash_it(aws, record)

    restored = restore(aws, record.id)

    assert restored is not None
    assert restored.reprocessing
    assert restored.record.status is Status.PROCESSING
    head = aws.s3.head_object(Bucket=aws.settings.bucket, Key=record.raw_key)
    assert "touched-at" in head["Metadata"]  # S3 announces the copy: the processor runs again


def test_an_unused_upload_form_restored_gets_its_ttl_again(aws):
    image_id = keys.new_image_id()
    form = records.new_record(image_id, keys.raw_key_for_upload(image_id, "upload"), Status.UPLOADING, expires_at=1)
    aws.image_store().create(form)
    trash_it(aws, form)
    assert aws.image_store().get(image_id).expires_at is None

    restored = restore(aws, image_id)

    assert restored is not None
    assert not restored.reprocessing  # nothing arrived, nothing to process
    assert restored.record.status is Status.UPLOADING
    assert restored.record.expires_at > datetime.now(UTC).timestamp() + 3000


def test_restore_refuses_an_image_that_is_not_in_the_trash(aws):
    record = stored_image(aws)

    with pytest.raises(trash.NotInTrash, match="is not in the trash"):
        restore(aws, record.id)


def test_restore_refuses_an_image_whose_permanent_delete_has_begun(aws):
    record = trash_it(aws, stored_image(aws))
    aws.image_store().update(record.id, lambda r: r.replace(purge_started_at=records.now_iso()))

    with pytest.raises(trash.PurgeStarted, match="being deleted for good"):
        restore(aws, record.id)
    assert aws.image_store().get(record.id).status is Status.DELETED


# -- purge -----------------------------------------------------------------------------------------------------


def test_purge_one_removes_record_upload_and_every_rendition_on_both_sides(aws):
    record = stored_image(aws)
    objects = aws.object_store()
    write_files(objects, legacy_renditions(record.id))
    objects.write(keys.hidden_key(record.renditions[0].key), b"left by a crashed hide", "image/jpeg")
    cdn = RecordingCdn()

    purged = trash.purge_one(aws.image_store(), objects, cdn, record.id, by="root")

    assert purged is not None
    assert purged.purge_started_at
    assert gone(aws, record)
    assert cdn.invalidations == [tuple(sorted(keys.cdn_invalidation_paths(record.id)))]


def test_purge_one_for_the_daily_purge_leaves_an_image_that_is_not_due(aws):
    record = trash_it(aws, stored_image(aws), days=29)

    purged = trash.purge_one(
        aws.image_store(), aws.object_store(), NoCdnCache(), record.id, by="purge", due_by=records.now_iso()
    )

    assert purged is None
    assert aws.image_store().get(record.id).status is Status.DELETED
    assert aws.object_store().exists(record.raw_key)


def test_purge_reads_the_trash_with_queries_on_by_status_and_never_scans(aws, monkeypatch):
    monkeypatch.setattr(trash, "PAGE_SIZE", 2)
    due = [trash_it(aws, stored_image(aws, n=n), days=31) for n in range(5)]
    fresh = trash_it(aws, stored_image(aws, n=9), days=1)
    live = stored_image(aws, n=10)
    calls: list[tuple[str, str | None]] = []
    aws.dynamodb.meta.events.register(
        "before-parameter-build.dynamodb",
        lambda model, params, **_: calls.append((model.name, params.get("IndexName"))),
    )

    summary = trash.purge_expired(aws.image_store(), aws.object_store(), NoCdnCache())

    assert sorted(summary.purged) == sorted(r.id for r in due)
    assert all(gone(aws, record) for record in due)
    assert aws.image_store().get(fresh.id).status is Status.DELETED
    assert aws.image_store().get(live.id).status is Status.READY
    assert not any(name == "Scan" for name, _ in calls)
    index_queries = [index for name, index in calls if name == "Query" and index]
    assert set(index_queries) == {records.STATUS_INDEX}
    assert len(index_queries) == 3  # 6 trashed items, 2 a page (the filter keeps the due ones)


def test_an_image_restored_after_the_purge_listed_it_is_skipped(aws):
    first, second = (trash_it(aws, stored_image(aws, n=n), days=40) for n in (1, 2))
    restored: list[str] = []

    def restore_the_other(outcome: str, record: ImageRecord, detail: str) -> None:
        other = second if record.id == first.id else first
        if not restored:
            restored.append(other.id)
            restore(aws, other.id)

    summary = trash.purge_expired(aws.image_store(), aws.object_store(), NoCdnCache(), report=restore_the_other)

    assert len(summary.purged) == 1
    assert summary.skipped == restored
    assert aws.image_store().get(restored[0]).status is Status.READY


def test_a_purge_that_fails_halfway_keeps_the_image_marked_and_the_next_run_finishes(aws):
    record = trash_it(aws, stored_image(aws), days=31)

    def refuse(**_):
        raise ConnectionError("S3 is unreachable")

    aws.s3.meta.events.register("before-call.s3.DeleteObjects", refuse)
    first = trash.purge_expired(aws.image_store(), aws.object_store(), NoCdnCache())
    aws.s3.meta.events.unregister("before-call.s3.DeleteObjects", refuse)
    left = aws.image_store().get(record.id)
    with pytest.raises(trash.PurgeStarted):
        restore(aws, record.id)
    second = trash.purge_expired(aws.image_store(), aws.object_store(), NoCdnCache())

    assert [image_id for image_id, _ in first.failed] == [record.id]
    assert "S3 is unreachable" in first.failed[0][1]
    assert left.status is Status.DELETED
    assert left.purge_started_at
    assert second.purged == [record.id]
    assert gone(aws, record)


# -- the CLI ---------------------------------------------------------------------------------------------------


def run(aws: Aws, *arguments: str) -> tuple[int, str]:
    out = io.StringIO()
    code = trash.main(["purge", *arguments], aws=aws, out=out)
    return code, out.getvalue()


def test_the_cli_purges_what_is_due_and_keeps_the_rest(aws):
    due = trash_it(aws, stored_image(aws, n=1), days=30.01)
    fresh = trash_it(aws, stored_image(aws, n=2), days=29.99)

    code, out = run(aws)

    assert code == 0
    assert gone(aws, due)
    assert aws.image_store().get(fresh.id).status is Status.DELETED
    assert f"purged       {due.id} deleted {due.deleted_at} by alice, due {due.purge_after}" in out
    assert fresh.id not in out
    assert out.rstrip().endswith("done: 1 purged, 0 restored meanwhile, 0 failed")


def test_the_cli_dry_run_deletes_nothing(aws):
    due = trash_it(aws, stored_image(aws), days=31)

    code, out = run(aws, "--dry-run")

    assert code == 0
    assert f"would purge  {due.id}" in out
    assert "done: 1 would be purged" in out
    assert aws.image_store().get(due.id).status is Status.DELETED
    assert aws.object_store().exists(due.raw_key)


def test_the_cli_exits_1_when_an_image_could_not_be_purged(aws):
    due = trash_it(aws, stored_image(aws), days=31)
    aws.s3.meta.events.register("before-call.s3.DeleteObjects", lambda **_: (_ for _ in ()).throw(OSError("down")))

    code, out = run(aws)

    assert code == 1
    assert f"failed       {due.id}" in out
    assert "OSError: down" in out


def test_the_cli_runs_as_a_module():
    result = subprocess.run(
        [sys.executable, "-m", "pipeline.trash", "purge", "--help"], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert "--dry-run" in result.stdout


# -- the scheduled Lambda --------------------------------------------------------------------------------------


@pytest.fixture
def purge_env(aws, monkeypatch) -> Aws:
    """The purge Lambda wired to this test's moto (its own clients are built at import)."""
    monkeypatch.setattr(purge_lambda, "aws", aws)
    return aws


def invoke(*, timeout_seconds: float = 600) -> dict[str, Any]:
    """The handler with the event an EventBridge schedule sends (tests/events/eventbridge_scheduled.json)."""
    event = json.loads((EVENTS / "eventbridge_scheduled.json").read_text())
    return purge_lambda.handler(event, FakeLambdaContext(function_name="trash-purge", timeout_seconds=timeout_seconds))


def emitted(stdout: str, name: str) -> list[float]:
    values = []
    for line in stdout.splitlines():
        if line.startswith("{") and '"_aws"' in line:
            metric = json.loads(line)
            if name in metric:
                values.append(metric[name])
    return values


def test_the_scheduled_lambda_purges_what_is_due(purge_env, capsys):
    due = trash_it(purge_env, stored_image(purge_env, n=1), days=31)
    fresh = trash_it(purge_env, stored_image(purge_env, n=2), days=2)

    answer = invoke()

    assert answer == {"purged": [due.id], "skipped": [], "stopped_early": False}
    assert gone(purge_env, due)
    assert purge_env.image_store().get(fresh.id).status is Status.DELETED
    assert emitted(capsys.readouterr().out, "ImagesPurged") == [[1.0]]


def test_the_lambda_fails_when_an_image_could_not_be_purged_and_purges_the_rest(purge_env):
    stuck = trash_it(purge_env, stored_image(purge_env, n=1), days=31)
    due = trash_it(purge_env, stored_image(purge_env, n=2), days=31)

    def refuse(params, **_):
        if any(stuck.id in item["Key"] for item in params["Delete"]["Objects"]):
            raise ConnectionError("S3 is unreachable")

    purge_env.s3.meta.events.register("before-parameter-build.s3.DeleteObjects", refuse)
    with pytest.raises(purge_lambda.PurgeIncomplete, match=stuck.id):
        invoke()

    assert gone(purge_env, due)
    assert purge_env.image_store().get(stuck.id).purge_started_at


def test_the_lambda_stops_before_its_timeout_and_leaves_the_rest_for_the_next_run(purge_env):
    due = trash_it(purge_env, stored_image(purge_env), days=31)

    answer = invoke(timeout_seconds=20)

    assert answer["stopped_early"] is True
    assert answer["purged"] == []
    assert purge_env.image_store().get(due.id).status is Status.DELETED


# -- the local stack -------------------------------------------------------------------------------------------


def test_the_local_stacks_housekeeping_purges_the_trash(aws):
    due = trash_it(aws, stored_image(aws, n=1), days=31)
    fresh = trash_it(aws, stored_image(aws, n=2), days=1)

    stack._purge_trash(aws)

    assert gone(aws, due)
    assert aws.image_store().get(fresh.id).status is Status.DELETED
