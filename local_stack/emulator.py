"""moto in server mode, holding the same bucket, table, queues and topic as the CloudFormation stack.

Where moto's behaviour differs from AWS in a way the pipeline can see, this module makes it AWS-shaped
(see docs/local.md, "Where moto differs from AWS").
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import quote_plus

import boto3
from botocore.config import Config
from moto.server import ThreadedMotoServer

from local_stack.config import DUMMY_CREDENTIALS, LOCALHOST
from local_stack.template import StackNames
from pipeline import store

log = logging.getLogger(__name__)

# Short, so that a failed message comes back (and reaches the DLQ) within a minute or two locally; AWS uses
# six times the function timeout (infra/pipeline.yaml).
VISIBILITY_TIMEOUT_SECONDS: Final = 20
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
        _make_s3_events_aws_shaped()
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


def create_resources(emulator: Emulator, names: StackNames, region: str, web_origins: tuple[str, ...]) -> Resources:
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
        Attributes={"VisibilityTimeout": str(VISIBILITY_TIMEOUT_SECONDS), "RedrivePolicy": json.dumps(redrive)},
    )["QueueUrl"]
    topic_arn = emulator.client("sns").create_topic(Name=names.alerts_topic)["TopicArn"]
    return Resources(
        names=names,
        queue_url=queue_url,
        queue_arn=_queue_arn(sqs, queue_url),
        dead_letter_queue_url=dead_letter_url,
        alerts_topic_arn=topic_arn,
    )


def connect_uploads(emulator: Emulator, resources: Resources) -> None:
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


def _make_s3_events_aws_shaped() -> None:
    """moto 5.2's S3 events lack ``sequencer`` and encode ``/`` in keys; AWS sends the one and keeps the other.

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
        for record in event["Records"]:
            s3_object = record["s3"]["object"]
            s3_object["key"] = quote_plus(key.name, safe="/")
            s3_object["sequencer"] = sequencer.next()
            if getattr(key, "version_id", None) and key.version_id != "null":
                s3_object["versionId"] = key.version_id
            record.setdefault("userIdentity", {"principalId": "AWS:LOCAL"})
            record.setdefault("requestParameters", {"sourceIPAddress": LOCALHOST})
        return event

    aws_shaped_event.aws_shaped = True  # type: ignore[attr-defined]
    notifications._get_s3_event = aws_shaped_event
