"""The processor Lambda on moto's in-process mock, fed the way AWS feeds it, for runs of hundreds of cases.

An object PUT under ``raw/`` makes S3's notification (AWS-shaped by ``local_stack.emulator``) on the upload queue
of infra/pipeline.yaml; ``local_stack.lambda_runtime.QueueWorker`` receives it, builds the SQS event source's
event and calls the handler; what the handler fails comes back as after the visibility timeout, up to the queue's
``maxReceiveCount``, then goes to the dead-letter queue. No server and no worker process: a case costs
milliseconds, not seconds.
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import os
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import boto3
from moto import mock_aws

from local_stack import emulator
from local_stack.config import LocalConfig
from local_stack.lambda_runtime import FunctionSettings, QueueWorker
from local_stack.template import StackNames, read_stack_names
from pipeline import keys, records, store, visibility
from pipeline.config import Settings
from pipeline.processing import ImageProcessor
from pipeline.records import ImageRecord


class InProcessAws:
    """boto3 clients for moto's in-process mock (``emulator.Clients``), one per service."""

    def __init__(self, region: str) -> None:
        self.region = region
        self._clients: dict[str, Any] = {}

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = boto3.client(service, region_name=self.region)
        return self._clients[service]


@dataclass(frozen=True)
class ImageState:
    """What the stores say about one upload once its messages are handled."""

    raw_key: str
    record: ImageRecord | None
    # Every object under the image's rendition folders (public/ and hidden/), and what the record names.
    stored: frozenset[str]
    named: frozenset[str]

    @property
    def orphans(self) -> frozenset[str]:
        return self.stored - self.named

    @property
    def missing(self) -> frozenset[str]:
        return self.named - self.stored


class ProcessorHarness(AbstractContextManager["ProcessorHarness"]):
    """The template's bucket, table and queues on moto, and the processor handler wired to them."""

    def __init__(self, region: str = "us-east-1") -> None:
        self.region = region
        self.names = _stack_names(region)
        self.settings = Settings.from_env(
            {
                **os.environ,
                "IMAGE_BUCKET": self.names.bucket,
                "IMAGE_TABLE": self.names.table,
                "MAX_RECEIVE_COUNT": str(self.names.max_receive_count),
            }
        )
        self._mock = mock_aws()
        self._wiring: AbstractContextManager[Any] | None = None
        self._log = io.StringIO()

    def __enter__(self) -> ProcessorHarness:
        self._mock.start()
        emulator.make_s3_events_aws_shaped()
        emulator.make_transactions_per_item()
        clients = InProcessAws(self.region)
        self.resources = emulator.create_resources(
            clients,
            self.names,
            self.region,
            LocalConfig().web_origins,
            visibility_timeout=self.names.visibility_timeout_seconds,
        )
        emulator.connect_uploads(clients, self.resources)
        # The processor's clients apart from the run's own: a fault hooked on them hits only the processor.
        self.processor_aws = store.Aws(self.settings)
        self.aws = store.Aws(self.settings)
        self.sqs = clients.client("sqs")
        self._wiring = _handler_wired_to(self.settings, self.processor_aws, self._log)
        handler = self._wiring.__enter__()
        self.worker = QueueWorker(
            self.sqs,
            self.resources.queue_url,
            self.resources.queue_arn,
            self.region,
            handler,
            FunctionSettings.processor(self.names, self.region),
        )
        self.deliver()  # S3's test event, sent when the notification was configured
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self._wiring is not None:
            self._wiring.__exit__(kind, error, trace)
        self._mock.stop()

    # -- in -----------------------------------------------------------------------------------------------

    def upload(self, raw_key: str, body: bytes) -> None:
        """A PUT under raw/, as ``aws s3 cp`` makes it: S3 notifies the upload queue."""
        self.aws.s3.put_object(Bucket=self.names.bucket, Key=raw_key, Body=body)

    def deliver(self) -> int:
        """Hand every queued message to the handler, one batch at a time, until the queue is empty; a message the
        handler fails comes back (at once, standing for the visibility timeout) until it reaches the dead-letter
        queue. Returns how many messages were received, redeliveries included."""
        received = 0
        # The handler's metrics (EMF lines printed at the end of each invocation) are not this run's output.
        with contextlib.redirect_stdout(io.StringIO()):
            while True:
                if not self._visible():
                    if not self.worker.release_left_for_retry():
                        return received
                    continue
                received += self.worker.poll_once()

    def _visible(self) -> int:
        return messages_waiting(self.sqs, self.resources.queue_url)

    # -- out ----------------------------------------------------------------------------------------------

    def image_id(self, raw_key: str) -> str:
        return keys.image_id_for_raw_key(raw_key, self.settings.secret)

    def state(self, raw_key: str) -> ImageState:
        image_id = self.image_id(raw_key)
        record = self.aws.image_store().get(image_id, consistent=True)
        objects = self.aws.object_store()
        stored = visibility.stored_rendition_keys(objects, image_id)
        named = {rendition.key for rendition in record.renditions} if record else set()
        return ImageState(raw_key, record, frozenset(stored), frozenset(named))

    def take_log(self) -> list[dict[str, Any]]:
        """The handler's log lines (Powertools JSON) since the last call."""
        lines = self._log.getvalue().splitlines()
        self._log.seek(0)
        self._log.truncate()
        return [json.loads(line) for line in lines if line.startswith("{")]

    def item_count(self, raw_key: str) -> int:
        """One upload's items in the table: its record and its tag items."""
        return int(
            self.aws.dynamodb.query(
                TableName=self.names.table,
                KeyConditionExpression="pk = :pk",
                ExpressionAttributeValues={":pk": {"S": records.image_pk(self.image_id(raw_key))}},
                Select="COUNT",
            )["Count"]
        )

    def dead_letters(self) -> int:
        return messages_waiting(self.sqs, self.resources.dead_letter_queue_url)


def messages_waiting(sqs: Any, queue_url: str) -> int:
    """Messages on the queue that a receive would get now (not those in flight)."""
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages"])
    return int(attributes["Attributes"]["ApproximateNumberOfMessages"])


@functools.cache
def _stack_names(region: str) -> StackNames:
    return read_stack_names(region)  # once per process: the template takes a third of a second to parse


@contextmanager
def _handler_wired_to(settings: Settings, aws: store.Aws, log: io.StringIO) -> Iterator[Any]:
    """The processor Lambda's module with this run's settings and stores (it builds its own at import) and its log
    lines going to ``log``, put back as it was afterwards; yields its handler."""
    from lambdas.image_processor import handler as processor_lambda

    saved = (processor_lambda.settings, processor_lambda.aws, processor_lambda.processor)
    processor_lambda.settings = settings
    processor_lambda.aws = aws
    processor_lambda.processor = ImageProcessor(settings, aws.image_store(), aws.object_store())
    stream = processor_lambda.logger.registered_handler.setStream(log)
    try:
        yield processor_lambda.handler
    finally:
        processor_lambda.logger.registered_handler.setStream(stream)
        processor_lambda.settings, processor_lambda.aws, processor_lambda.processor = saved
