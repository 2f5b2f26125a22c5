"""moto in server mode, holding the same bucket, table, queues and topic as the CloudFormation stack.

Where moto's behaviour differs from AWS in a way the pipeline can see, this module makes it AWS-shaped
(see docs/local.md, "Where moto differs from AWS").
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, Protocol
from urllib.parse import quote_plus

import boto3
from botocore.config import Config
from moto.server import ThreadedMotoServer

from local_stack.config import DUMMY_CREDENTIALS, LOCALHOST
from local_stack.template import ACCOUNT_ID, StackNames
from pipeline import store

log = logging.getLogger(__name__)

DLQ_RETENTION_SECONDS: Final = 14 * 24 * 3600


@dataclass(frozen=True)
class Resources:
    names: StackNames
    queue_url: str
    queue_arn: str
    dead_letter_queue_url: str
    alerts_topic_arn: str

    @property
    def queue_urls(self) -> dict[str, str]:
        return {self.names.queue: self.queue_url, self.names.dead_letter_queue: self.dead_letter_queue_url}


class Clients(Protocol):
    """Where resources are made: the emulator's server, or moto's in-process mock (``python -m reliability``)."""

    def client(self, service: str) -> Any: ...


class Emulator:
    """moto's server in a thread of this process, on 127.0.0.1:<port>."""

    def __init__(self, port: int, region: str) -> None:
        self.port = port
        self.region = region
        self.url = f"http://{LOCALHOST}:{port}"
        self._server = ThreadedMotoServer(ip_address=LOCALHOST, port=port, verbose=False)

    def start(self) -> None:
        # One line per request is noise next to the app's own logs.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        make_s3_events_aws_shaped()
        make_transactions_per_item()
        _answer_bucket_posts_with_cors()
        self._server.start()

    def stop(self) -> None:
        self._server.stop()

    def client(self, service: str) -> Any:
        """A boto3 client for the emulator, whatever AWS_* variables the shell has."""
        config = Config(signature_version="s3v4") if service == "s3" else None
        return boto3.client(
            service,
            endpoint_url=self.url,
            region_name=self.region,
            aws_access_key_id=DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            config=config,
        )


def create_resources(
    emulator: Clients, names: StackNames, region: str, web_origins: tuple[str, ...], visibility_timeout: int
) -> Resources:
    """The bucket (versioned as in AWS, CORS for the upload page), the table (from the core's schema), the
    upload queue with its DLQ, and the alerts topic.

    S3 notifications are connected separately (``connect_uploads``), after a restore has put old objects
    back, so that restoring does not process every upload again.
    """
    s3 = emulator.client("s3")
    bucket_args: dict[str, Any] = {}
    if region != "us-east-1":
        bucket_args["CreateBucketConfiguration"] = {"LocationConstraint": region}
    s3.create_bucket(Bucket=names.bucket, **bucket_args)
    if names.bucket_versioned:
        s3.put_bucket_versioning(Bucket=names.bucket, VersioningConfiguration={"Status": "Enabled"})
    # The browser POSTs the file straight to the bucket from the gallery's origin.
    s3.put_bucket_cors(
        Bucket=names.bucket,
        CORSConfiguration={
            "CORSRules": [
                {
                    "AllowedOrigins": list(web_origins),
                    "AllowedMethods": ["POST"],
                    "AllowedHeaders": ["*"],
                    "ExposeHeaders": ["ETag", "Location"],
                    "MaxAgeSeconds": 3000,
                }
            ]
        },
    )
    store.create_table(emulator.client("dynamodb"), names.table)

    sqs = emulator.client("sqs")
    dead_letter_url = sqs.create_queue(
        QueueName=names.dead_letter_queue, Attributes={"MessageRetentionPeriod": str(DLQ_RETENTION_SECONDS)}
    )["QueueUrl"]
    redrive = {"deadLetterTargetArn": _queue_arn(sqs, dead_letter_url), "maxReceiveCount": names.max_receive_count}
    queue_url = sqs.create_queue(
        QueueName=names.queue,
        Attributes={"VisibilityTimeout": str(visibility_timeout), "RedrivePolicy": json.dumps(redrive)},
    )["QueueUrl"]
    topic_arn = emulator.client("sns").create_topic(Name=names.alerts_topic)["TopicArn"]
    return Resources(
        names=names,
        queue_url=queue_url,
        queue_arn=_queue_arn(sqs, queue_url),
        dead_letter_queue_url=dead_letter_url,
        alerts_topic_arn=topic_arn,
    )


def connect_uploads(emulator: Clients, resources: Resources) -> None:
    """Every object created under raw/ sends an S3 event to the queue, as the stack's notification does."""
    emulator.client("s3").put_bucket_notification_configuration(
        Bucket=resources.names.bucket,
        NotificationConfiguration={
            "QueueConfigurations": [
                {
                    "Id": "raw-uploads",
                    "QueueArn": resources.queue_arn,
                    "Events": ["s3:ObjectCreated:*"],
                    "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": resources.names.upload_prefix}]}},
                }
            ]
        },
    )


def _queue_arn(sqs: Any, queue_url: str) -> str:
    return sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


class _Sequencer:
    """S3's per-key event order: increasing hex strings, increasing across restarts too (time based)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last = 0

    def next(self) -> str:
        with self._lock:
            self._last = max(self._last + 1, time.time_ns())
            return f"{self._last:018X}"


def make_s3_events_aws_shaped() -> None:
    """moto 5.2's S3 events lack ``sequencer`` (and a few fields) and encode ``/`` in keys; AWS sends them all
    and keeps ``/`` as it is.

    The processor orders events per key by ``sequencer``, so without it the local stack would not exercise
    the code path AWS does. Patched where moto builds the event, once per process.
    """
    from moto.s3 import notifications

    build: Callable[..., dict[str, Any]] = notifications._get_s3_event
    if getattr(build, "aws_shaped", False):
        return
    sequencer = _Sequencer()

    def aws_shaped_event(event_name: str, bucket: Any, key: Any, notification_id: str) -> dict[str, Any]:
        event = build(event_name, bucket, key, notification_id)
        request_id = uuid.uuid4().hex[:16].upper()
        for record in event["Records"]:
            s3_object = record["s3"]["object"]
            s3_object["key"] = quote_plus(key.name, safe="/")
            s3_object["sequencer"] = sequencer.next()
            if getattr(key, "version_id", None) and key.version_id != "null":
                s3_object["versionId"] = key.version_id
            record.setdefault("userIdentity", {"principalId": f"AWS:{ACCOUNT_ID}"})
            record.setdefault("requestParameters", {"sourceIPAddress": LOCALHOST})
            record.setdefault("responseElements", {"x-amz-request-id": request_id, "x-amz-id-2": request_id})
            record["s3"]["bucket"].setdefault("ownerIdentity", {"principalId": ACCOUNT_ID})
        return event

    aws_shaped_event.aws_shaped = True  # type: ignore[attr-defined]
    notifications._get_s3_event = aws_shaped_event


def make_transactions_per_item() -> None:
    """Make a DynamoDB transaction cost and isolate per item, as in AWS.

    To roll a failed TransactWriteItems back, moto 5.2 deep-copies the whole table for each of its actions and, on a
    failure, puts the copy back: a transaction costs as much as the table is large (the processor's run over 500
    uploads slowed down as the table grew, its server CPU going to copying records), and a cancelled one undoes the
    writes other clients made to other items meanwhile. Here only the items the transaction names are copied, and
    only those are put back. Patched once per process, like the S3 events.
    """
    from moto.dynamodb import models
    from moto.dynamodb.models.dynamo_type import DynamoType, Item
    from moto.dynamodb.models.table import Table

    transact: Callable[..., None] = models.DynamoDBBackend.transact_write_items
    if getattr(transact, "per_item", False):
        return

    class TablesByReference:
        """The ``copy`` module as moto's DynamoDB backend sees it, except that a whole table is not copied."""

        def __getattr__(self, name: str) -> Any:
            return getattr(copy, name)

        @staticmethod
        def deepcopy(value: Any, memo: dict[int, Any] | None = None) -> Any:
            return value if isinstance(value, Table) else copy.deepcopy(value, memo)

    def transact_per_item(backend: Any, transact_items: list[dict[str, Any]]) -> None:
        saved: list[tuple[Table, DynamoType, DynamoType | None, Item | None]] = []
        for action in transact_items:
            operation = next(iter(action.values()), None) if action else None
            table = backend.tables.get(operation.get("TableName")) if isinstance(operation, dict) else None
            attributes = (operation.get("Item") or operation.get("Key")) if table and operation else None
            if table is None or not attributes or table.hash_key_attr not in attributes:
                continue  # moto refuses the action itself; nothing of it to put back
            hash_key = DynamoType(attributes[table.hash_key_attr])
            range_key = DynamoType(attributes[table.range_key_attr]) if table.range_key_attr in attributes else None
            with contextlib.suppress(Exception):
                saved.append((table, hash_key, range_key, copy.deepcopy(table.get_item(hash_key, range_key))))
        try:
            transact(backend, transact_items)
        except BaseException:
            for table, hash_key, range_key, item in reversed(saved):
                if item is None:
                    table.delete_item(hash_key, range_key)
                elif range_key is not None:
                    table.items[hash_key][range_key] = item
                else:
                    table.items[hash_key] = item
            raise

    transact_per_item.per_item = True  # type: ignore[attr-defined]
    models.copy = TablesByReference()  # type: ignore[assignment]
    models.DynamoDBBackend.transact_write_items = transact_per_item  # type: ignore[method-assign]


def _answer_bucket_posts_with_cors() -> None:
    """Let the bucket's CORS rules decide for browser uploads, as S3 does.

    ``python -m local_stack`` turns off moto's global allow-every-origin CORS (MOTO_DISABLE_GLOBAL_CORS), so
    preflights are answered from the bucket's rules; moto 5.2 then omits the CORS headers on the POST
    itself (a form upload), which browsers need to read the answer. Added here from the same rules.
    """
    from moto.s3.responses import S3Response

    post: Callable[..., Any] = S3Response._bucket_response_post
    if getattr(post, "with_cors", False):
        return

    def post_with_cors(self: Any, request: Any, bucket_name: str) -> Any:
        status, headers, body = post(self, request, bucket_name)
        return status, {**self._get_cors_headers_other(), **headers}, body

    post_with_cors.with_cors = True  # type: ignore[attr-defined]
    S3Response._bucket_response_post = post_with_cors  # type: ignore[method-assign]


def expire_items(dynamodb: Any, table: str, now: float | None = None) -> int:
    """Delete the items whose TTL attribute is in the past, as DynamoDB's TTL does (moto never does).

    DynamoDB removes them within a day or two; the local stack does it at every snapshot. The condition
    spares an item that was written again meanwhile (an upload that arrived clears its ``expires_at``).
    """
    ttl = dynamodb.describe_time_to_live(TableName=table)["TimeToLiveDescription"]
    if ttl.get("TimeToLiveStatus") != "ENABLED":
        return 0
    key_names = [key["AttributeName"] for key in dynamodb.describe_table(TableName=table)["Table"]["KeySchema"]]
    names = {"#ttl": ttl["AttributeName"], **{f"#k{i}": name for i, name in enumerate(key_names)}}
    expired = {":now": {"N": str(int(time.time() if now is None else now))}}
    deleted = 0
    for page in dynamodb.get_paginator("scan").paginate(
        TableName=table,
        FilterExpression="#ttl < :now",
        ProjectionExpression=", ".join(f"#k{i}" for i in range(len(key_names))),
        ExpressionAttributeNames=names,
        ExpressionAttributeValues=expired,
    ):
        for key in page.get("Items", []):
            try:
                dynamodb.delete_item(
                    TableName=table,
                    Key=key,
                    ConditionExpression="#ttl < :now",
                    ExpressionAttributeNames={"#ttl": ttl["AttributeName"]},
                    ExpressionAttributeValues=expired,
                )
                deleted += 1
            except dynamodb.exceptions.ConditionalCheckFailedException:
                continue
    return deleted
