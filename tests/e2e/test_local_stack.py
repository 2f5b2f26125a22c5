"""``make run``'s stack without a browser: AWS-shaped events, retries into the DLQ, bucket CORS, restarts."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from local_stack import emulator
from local_stack.cdn import public_key_for_path
from local_stack.lambda_runtime import failed_message_ids, sqs_event
from local_stack.template import read_stack_names
from pipeline import records
from tests.conftest import EVENTS, PHOTOS, ROOT
from tests.e2e.conftest import REGION, StackProcess, free_port

WAIT_SECONDS = 60


def shape(value: Any) -> Any:
    """The keys of a JSON document, recursively: what two events must share to be the same shape."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    return type(value).__name__


def renditions(document: dict[str, Any]) -> list[tuple[Any, ...]]:
    """An API document's renditions without their URLs (which name the CDN's port)."""
    return [(s["name"], s["format"], s["width"], s["height"], s["bytes"]) for s in document["sources"]]


def get_json(url: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, None


def wait_for(what: str, check: Any) -> Any:
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.3)
    raise AssertionError(f"waited {WAIT_SECONDS} s for {what}")


# -- the emulator, in this process ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def moto_server() -> Iterator[tuple[emulator.Emulator, emulator.Resources]]:
    """The local stack's emulator with its resources, without the worker (this test reads the queue itself)."""
    from moto.s3 import notifications
    from moto.s3.responses import S3Response

    # The emulator adjusts moto for the whole process; put moto back as other tests know it afterwards.
    originals = (notifications._get_s3_event, S3Response._bucket_response_post)
    server = emulator.Emulator(free_port(), REGION)
    server.start()
    names = read_stack_names(REGION)
    resources = emulator.create_resources(server, names, REGION, ("http://127.0.0.1:8000",), visibility_timeout=30)
    emulator.connect_uploads(server, resources)
    yield server, resources
    server.stop()
    notifications._get_s3_event, S3Response._bucket_response_post = originals


def receive_s3_events(server: emulator.Emulator, resources: emulator.Resources) -> list[dict[str, Any]]:
    """S3 notifications waiting on the upload queue (skipping S3's test message), deleted once read."""
    sqs = server.client("sqs")
    messages = sqs.receive_message(QueueUrl=resources.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
    records = []
    for message in messages.get("Messages", []):
        sqs.delete_message(QueueUrl=resources.queue_url, ReceiptHandle=message["ReceiptHandle"])
        records += json.loads(message["Body"]).get("Records", [])
    return records


def test_emulator_s3_events_have_the_shape_aws_sends(moto_server: tuple[emulator.Emulator, Any]) -> None:
    server, resources = moto_server
    server.client("s3").put_object(Bucket=resources.names.bucket, Key="raw/my photo (1).jpg", Body=b"not a photo")
    (record,) = wait_for("an S3 event", lambda: receive_s3_events(server, resources))
    aws_record = json.loads((EVENTS / "s3_put.json").read_text())["Records"][0]
    # A versioned bucket's events (the stack's bucket is versioned) also carry the object's versionId.
    record["s3"]["object"].pop("versionId")
    assert shape(record) == shape(aws_record)
    assert record["s3"]["object"]["key"] == "raw/my+photo+%281%29.jpg"  # form-encoded, "/" kept, as S3 does


def test_emulator_s3_events_of_one_key_are_in_sequencer_order(moto_server: tuple[emulator.Emulator, Any]) -> None:
    server, resources = moto_server
    for body in (b"first", b"second"):
        server.client("s3").put_object(Bucket=resources.names.bucket, Key="raw/again.jpg", Body=body)
    records: list[dict[str, Any]] = []
    wait_for("two S3 events", lambda: records.extend(receive_s3_events(server, resources)) or len(records) == 2)
    first, second = (record["s3"]["object"]["sequencer"] for record in records)
    assert second > first


def test_worker_event_has_the_shape_of_an_sqs_event_source(moto_server: tuple[emulator.Emulator, Any]) -> None:
    server, resources = moto_server
    sqs = server.client("sqs")
    sqs.send_message(QueueUrl=resources.dead_letter_queue_url, MessageBody="{}")
    received = sqs.receive_message(
        QueueUrl=resources.dead_letter_queue_url, MessageSystemAttributeNames=["All"], MessageAttributeNames=["All"]
    )["Messages"]
    event = sqs_event(received, resources.queue_arn, REGION)
    aws_event = json.loads((EVENTS / "sqs_s3_put.json").read_text())
    for record in (event["Records"][0], aws_event["Records"][0]):
        record["body"] = "{}"
    assert shape(event) == shape(aws_event)


def test_emulator_expires_items_whose_ttl_has_passed(moto_server: tuple[emulator.Emulator, Any]) -> None:
    server, resources = moto_server
    dynamodb = server.client("dynamodb")
    table = resources.names.table
    now = time.time()
    for sk, expires_at in (("past", now - 60), ("future", now + 3600), ("never", None)):
        item = {"pk": {"S": "TTL#test"}, "sk": {"S": sk}}
        if expires_at is not None:
            item[records.TTL_ATTRIBUTE] = {"N": str(int(expires_at))}
        dynamodb.put_item(TableName=table, Item=item)

    assert emulator.expire_items(dynamodb, table, now=now) == 1
    left = dynamodb.query(
        TableName=table, KeyConditionExpression="pk = :pk", ExpressionAttributeValues={":pk": {"S": "TTL#test"}}
    )["Items"]
    assert sorted(item["sk"]["S"] for item in left) == ["future", "never"]


# -- the worker's reading of a handler's answer --------------------------------------------------------------


def test_a_null_handler_response_means_every_message_succeeded() -> None:
    assert failed_message_ids(None, [{"MessageId": "a"}, {"MessageId": "b"}]) == set()


def test_reported_failures_are_the_messages_left_for_a_retry() -> None:
    response = {"batchItemFailures": [{"itemIdentifier": "b"}]}
    assert failed_message_ids(response, [{"MessageId": "a"}, {"MessageId": "b"}]) == {"b"}


def test_an_unknown_item_identifier_fails_the_whole_batch() -> None:
    response = {"batchItemFailures": [{"itemIdentifier": "not-in-the-batch"}]}
    assert failed_message_ids(response, [{"MessageId": "a"}, {"MessageId": "b"}]) == {"a", "b"}


# -- the S3 origin behind the front door (local_stack.cdn) ---------------------------------------------------


def test_cdn_serves_public_paths_from_the_public_prefix() -> None:
    assert public_key_for_path("/thumbs/abc.webp") == "public/thumbs/abc.webp"


@pytest.mark.parametrize("path", ["/../raw/abc/photo.jpg", "/thumbs/../../raw/x", "/%2e%2e/raw/x", "/"])
def test_cdn_never_maps_a_path_outside_the_public_prefix(path: str) -> None:
    assert public_key_for_path(path) is None


# -- the running stack --------------------------------------------------------------------------------------


def test_a_message_the_processor_cannot_read_ends_in_the_dead_letter_queue(local_stack: StackProcess) -> None:
    sqs = local_stack.client("sqs")
    names = local_stack.names
    queue_url = sqs.get_queue_url(QueueName=names.queue)["QueueUrl"]
    dead_letter_url = sqs.get_queue_url(QueueName=names.dead_letter_queue)["QueueUrl"]
    sqs.send_message(QueueUrl=queue_url, MessageBody='{"not": "an S3 notification"}')

    def parked() -> list[dict[str, Any]]:
        return sqs.receive_message(QueueUrl=dead_letter_url, WaitTimeSeconds=1).get("Messages", [])

    (message,) = wait_for("the message to reach the DLQ", parked)
    assert message["Body"] == '{"not": "an S3 notification"}'


@pytest.mark.parametrize(("origin", "allowed"), [("web", True), ("http://elsewhere.example", False)])
def test_bucket_accepts_browser_uploads_only_from_the_site(
    local_stack: StackProcess, origin: str, allowed: bool
) -> None:
    origin = local_stack.web_url if origin == "web" else origin
    preflight = urllib.request.Request(
        f"{local_stack.aws_url}/{local_stack.names.bucket}",
        method="OPTIONS",
        headers={"Origin": origin, "Access-Control-Request-Method": "POST"},
    )
    try:
        with urllib.request.urlopen(preflight, timeout=10) as response:
            answer = response.headers.get("Access-Control-Allow-Origin")
    except urllib.error.HTTPError:
        answer = None
    assert (answer == origin) is allowed


def test_uploads_and_records_survive_a_restart(tmp_path: Path) -> None:
    state = tmp_path / "state"
    first = StackProcess(state).start()
    try:
        first.client("s3").upload_file(str(PHOTOS / "Canon_40D.jpg"), first.names.bucket, "raw/Canon_40D.jpg")
        # From Django itself: the front door would keep the first, empty listing for its max-age (30 s).
        listing = wait_for("the upload to be ready", lambda: get_json(f"{first.origin_url}/api/images")[1]["items"])
    finally:
        assert first.stop() == 0, first.log_tail()
    (document,) = listing

    second = StackProcess(state).start()  # new ports, same state folder
    try:
        status, again = get_json(f"{second.web_url}/api/images/{document['id']}")
        assert status == 200
        assert (again["status"], renditions(again)) == ("ready", renditions(document))
        with urllib.request.urlopen(again["thumbnail"], timeout=10) as response:
            assert response.headers["Content-Type"].startswith("image/")
        raw = second.client("s3").head_object(Bucket=second.names.bucket, Key="raw/Canon_40D.jpg")
        assert raw["ContentLength"] == (PHOTOS / "Canon_40D.jpg").stat().st_size
    finally:
        assert second.stop() == 0, second.log_tail()


def test_running_against_aws_without_resource_names_says_what_is_missing(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "LOCAL_AWS": "0", "LOCAL_STATE_DIR": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-m", "local_stack"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert "IMAGE_BUCKET, IMAGE_TABLE, CDN_URL" in result.stderr
