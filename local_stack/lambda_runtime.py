"""What the Lambda service does around the processor: an SQS poller, the event it builds, the context it passes.

The event is the one an SQS event source mapping with ReportBatchItemFailures delivers, so the handler
runs unchanged; messages it reports in ``batchItemFailures`` stay on the queue, come back after the
visibility timeout and move to the dead-letter queue after MAX_RECEIVE_COUNT receives, as in AWS.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Final

from botocore.exceptions import ClientError

from local_stack.template import ACCOUNT_ID, StackNames

log = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any], Any], Any]
# How long one receive waits for a message (long polling). Short, so that Ctrl-C never waits for an idle poll.
WAIT_SECONDS: Final = 1


@dataclass(frozen=True)
class FunctionSettings:
    """What the event source mapping and the function definition say (infra/pipeline.yaml)."""

    name: str
    arn: str
    batch_size: int
    timeout_seconds: int
    memory_limit_in_mb: int

    @classmethod
    def processor(cls, names: StackNames, region: str) -> FunctionSettings:
        """The processor function as the template defines it (a stack of stage ``local``)."""
        return cls(
            name=names.processor_function,
            arn=f"arn:aws:lambda:{region}:{ACCOUNT_ID}:function:{names.processor_function}",
            batch_size=names.batch_size,
            timeout_seconds=names.function_timeout_seconds,
            memory_limit_in_mb=names.processor_memory_mb,
        )


@dataclass
class LambdaContext:
    """The attributes of the Lambda context object that handlers and Powertools read."""

    function: FunctionSettings
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    log_stream_name: str = "local"
    started: float = field(default_factory=time.monotonic)

    @property
    def function_name(self) -> str:
        return self.function.name

    @property
    def invoked_function_arn(self) -> str:
        return self.function.arn

    @property
    def memory_limit_in_mb(self) -> int:
        return self.function.memory_limit_in_mb

    @property
    def log_group_name(self) -> str:
        return f"/aws/lambda/{self.function.name}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.started + self.function.timeout_seconds - time.monotonic()) * 1000))


def sqs_event(messages: Iterable[dict[str, Any]], queue_arn: str, region: str) -> dict[str, Any]:
    """The event Lambda builds from ReceiveMessage's messages (its field names, not SQS's)."""
    return {"Records": [_record(message, queue_arn, region) for message in messages]}


def _record(message: dict[str, Any], queue_arn: str, region: str) -> dict[str, Any]:
    record: dict[str, Any] = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": dict(message.get("Attributes", {})),
        "messageAttributes": {
            name: {
                "stringValue": value.get("StringValue"),
                "binaryValue": value.get("BinaryValue"),
                "stringListValues": value.get("StringListValues", []),
                "binaryListValues": value.get("BinaryListValues", []),
                "dataType": value["DataType"],
            }
            for name, value in message.get("MessageAttributes", {}).items()
        },
        "md5OfBody": message["MD5OfBody"],
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }
    if "MD5OfMessageAttributes" in message:
        record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
    return record


def failed_message_ids(response: Any, batch: list[dict[str, Any]]) -> set[str]:
    """The ids Lambda would return to the queue for this handler response.

    As with ReportBatchItemFailures: a null or empty ``batchItemFailures`` means all succeeded; an id that is
    not in the batch, or a malformed response, fails the whole batch.
    """
    all_ids = {message["MessageId"] for message in batch}
    if response is None:
        return set()
    if not isinstance(response, dict):
        return all_ids
    failures = response.get("batchItemFailures") or []
    try:
        failed = {str(failure["itemIdentifier"]) for failure in failures}
    except (TypeError, KeyError):
        return all_ids
    return failed if failed <= all_ids else all_ids


class QueueWorker:
    """Long-polls the queue and calls the processor handler with each batch, one batch at a time."""

    def __init__(
        self, sqs: Any, queue_url: str, queue_arn: str, region: str, handler: Handler, function: FunctionSettings
    ) -> None:
        self.sqs = sqs
        self.function = function
        self.queue_url = queue_url
        self.queue_arn = queue_arn
        self.region = region
        self.handler = handler
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="queue-worker", daemon=True)
        # Receipt handles of messages left for redelivery, released at shutdown so a snapshot can save them.
        self._left_for_retry: dict[str, str] = {}

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float) -> None:
        """Finish the batch in hand (an idle poll is abandoned), then hand unfinished messages back."""
        self._stopping.set()
        self._thread.join(timeout)
        self._release(list(self._left_for_retry.values()))
        self._left_for_retry.clear()

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                self.poll_once()
            except Exception:
                log.exception("polling %s failed; retrying in a moment", self.queue_url)
                self._stopping.wait(WAIT_SECONDS)

    def poll_once(self) -> int:
        """Receive one batch and process it; returns how many messages were processed."""
        response = self.sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=self.function.batch_size,
            WaitTimeSeconds=WAIT_SECONDS,
            MessageSystemAttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        batch: list[dict[str, Any]] = response.get("Messages", [])
        if not batch:
            return 0
        if self._stopping.is_set():
            self._release([message["ReceiptHandle"] for message in batch])
            return 0
        event = sqs_event(batch, self.queue_arn, self.region)
        try:
            result = self.handler(event, LambdaContext(self.function))
        except Exception:
            # A raising handler fails the whole batch: every message comes back after the visibility timeout.
            log.exception("the processor raised; all %d messages of the batch will be retried", len(batch))
            result = {"batchItemFailures": [{"itemIdentifier": message["MessageId"]} for message in batch]}
        failed = failed_message_ids(result, batch)
        done = [message for message in batch if message["MessageId"] not in failed]
        self._delete(done)
        for message in batch:
            if message["MessageId"] in failed:
                self._left_for_retry[message["MessageId"]] = message["ReceiptHandle"]
            else:
                self._left_for_retry.pop(message["MessageId"], None)
        if failed:
            log.warning("%d of %d messages left on the queue for a retry", len(failed), len(batch))
        return len(batch)

    def release_left_for_retry(self) -> int:
        """Make the messages the handler failed visible again now, as the visibility timeout would later; how many.

        For runs that step the worker by hand (``poll_once``) and would otherwise wait for the timeout."""
        handles = list(self._left_for_retry.values())
        self._left_for_retry.clear()
        self._release(handles)
        return len(handles)

    def _delete(self, messages: list[dict[str, Any]]) -> None:
        if not messages:
            return
        entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)]
        response = self.sqs.delete_message_batch(QueueUrl=self.queue_url, Entries=entries)
        for failure in response.get("Failed", []):
            log.warning("could not delete a processed message: %s", failure.get("Message"))

    def _release(self, receipt_handles: list[str]) -> None:
        """Make messages visible again now instead of after the visibility timeout."""
        for handle in receipt_handles:
            # ClientError: already redelivered, moved to the DLQ or deleted; nothing to hand back.
            with contextlib.suppress(ClientError):
                self.sqs.change_message_visibility(QueueUrl=self.queue_url, ReceiptHandle=handle, VisibilityTimeout=0)
