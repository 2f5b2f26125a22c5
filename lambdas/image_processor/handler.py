"""The processor Lambda: S3 notifications, direct or wrapped in SQS messages -> pipeline.processing, one object each.

Only event shapes, logging and metrics live here; the work is ``pipeline.processing.ImageProcessor``.
"""

from __future__ import annotations

import time
from typing import Any, Final
from urllib.parse import unquote_plus

from aws_lambda_powertools import Logger, Metrics, single_metric
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes import S3Event
from aws_lambda_powertools.utilities.data_classes.s3_event import S3EventRecord
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from pipeline import store
from pipeline.config import Settings
from pipeline.processing import ImageProcessor, ObjectCreated, Outcome, Reason, Result

DEFAULT_METRICS_NAMESPACE: Final = "ImagePipeline"
S3_TEST_EVENT: Final = "s3:TestEvent"
# Kept back from the function's timeout to record a failure when imaging runs out of time (a GetItem, a listing,
# a delete and a transactional write: well under a second, with room for botocore's retries).
TIME_MARGIN_SECONDS: Final = 10.0

# Powertools reads POWERTOOLS_SERVICE_NAME / POWERTOOLS_METRICS_NAMESPACE / POWERTOOLS_LOG_LEVEL itself.
logger = Logger()
metrics = Metrics()
if not metrics.namespace:
    # Without a namespace EMF cannot be flushed and every invocation would fail; infra sets the variable.
    metrics.namespace = DEFAULT_METRICS_NAMESPACE
batch = BatchProcessor(event_type=EventType.SQS)

# Once per container: configuration and clients are reused by every invocation it serves.
settings = Settings.from_env()
settings.require_deployable()  # never on AWS with the published PIPELINE_SECRET
aws = store.Aws(settings)
processor = ImageProcessor(settings, aws.image_store(), aws.object_store(), cdn=aws.cdn())


class UnrecognizedMessage(ValueError):
    """A message that is neither an S3 notification nor S3's test message; it belongs in the DLQ."""


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any] | None:
    records = event.get("Records") or []
    if records and records[0].get("eventSource") == "aws:sqs":
        # Failed messages are reported back (batchItemFailures) and retried alone; the rest are deleted.
        return process_partial_response(event=event, record_handler=record_handler, processor=batch, context=context)
    # A direct S3 invocation: an error propagates and Lambda's async retries (then its DLQ) take over.
    handle_notification(event, deadline=imaging_deadline(context))
    return None


def record_handler(record: SQSRecord, lambda_context: LambdaContext) -> None:
    """One SQS message, whose body is an S3 notification (or S3's test message)."""
    attempt = int(record.attributes.approximate_receive_count or 1)
    with logger.append_context_keys(message_id=record.message_id, attempt=attempt):
        handle_notification(record.json_body, attempt=attempt, deadline=imaging_deadline(lambda_context))


def imaging_deadline(context: LambdaContext) -> float:
    """The ``time.monotonic()`` instant by which imaging must end: the invocation's timeout less the margin.

    Past it the processor marks the record failed (a file too slow to process) before Lambda stops the runtime.
    With BatchSize 1 (infra/pipeline.yaml) each image has the whole invocation to itself."""
    return time.monotonic() + context.get_remaining_time_in_millis() / 1000 - TIME_MARGIN_SECONDS


def handle_notification(
    notification: dict[str, Any], *, attempt: int | None = None, deadline: float | None = None
) -> None:
    """``attempt``: which delivery of an SQS message this is; None for a direct S3 invocation.
    ``deadline``: see ``imaging_deadline()``; None lets imaging take as long as it takes."""
    if notification.get("Event") == S3_TEST_EVENT:
        # S3 sends this once when the notification is configured; it names no object.
        logger.info("ignored S3 test event", bucket=notification.get("Bucket"))
        return
    if not isinstance(notification.get("Records"), list):
        raise UnrecognizedMessage(f"expected an S3 notification with Records, got keys {sorted(notification)}")
    for s3_record in S3Event(notification).records:
        created = object_created(s3_record)
        if created is None:
            logger.info("ignored S3 event", event_name=s3_record.event_name)
            continue
        handle_object(created, attempt=attempt, deadline=deadline)


def object_created(s3_record: S3EventRecord) -> ObjectCreated | None:
    """The object an ``ObjectCreated:*`` record names, its key URL-decoded; None for any other event."""
    if not s3_record.event_name.startswith("ObjectCreated:"):
        return None
    s3_object = s3_record.s3.get_object
    return ObjectCreated(
        bucket=s3_record.s3.bucket.name,
        # S3 encodes keys in events like a form ("my photo(1).jpg" -> "my+photo%281%29.jpg").
        key=unquote_plus(s3_object.key),
        sequencer=s3_object.get("sequencer") or None,
        etag=s3_object.etag or None,
    )


def handle_object(created: ObjectCreated, *, attempt: int | None = None, deadline: float | None = None) -> Outcome:
    with logger.append_context_keys(raw_key=created.key, sequencer=created.sequencer):
        started = time.perf_counter()
        try:
            outcome = processor.process(created, deadline=deadline)
        except Exception as error:
            # Transient by design (throttling, 5xx, write conflicts): raised again so the message is retried.
            _count("ProcessingErrors", reason=type(error).__name__)
            if attempt is not None and attempt >= settings.max_receive_count:
                logger.exception(
                    "processing failed on the last delivery; the message goes to the dead-letter queue",
                    error=type(error).__name__,
                )
                _give_up(created, error, attempt)
            else:
                logger.exception("processing interrupted; the event will be retried", error=type(error).__name__)
            raise
        elapsed_ms = (time.perf_counter() - started) * 1000
        _report(outcome, elapsed_ms)
        return outcome


def _give_up(created: ObjectCreated, error: Exception, attempt: int) -> None:
    """Best effort: mark the record failed (if the outage also stops that, it stays ``processing``)."""
    try:
        outcome = processor.give_up(created, error, attempt)
    except Exception:
        logger.exception("could not mark the record failed; it stays processing until Reprocess or a redrive")
        return
    if outcome is not None and outcome.result is Result.FAILED:
        logger.warning(f"gave up: {outcome.detail}", image_id=outcome.image_id, reason=outcome.reason)
        _count("ImagesFailed", reason=Reason.RETRIES_EXHAUSTED)


def _report(outcome: Outcome, elapsed_ms: float) -> None:
    fields = {"image_id": outcome.image_id, "outcome": outcome.result.value, "reason": outcome.reason}
    if outcome.result is Result.SKIPPED:
        logger.info(f"skipped: {outcome.detail}", **fields)
        metrics.add_metric(name="ImagesSkipped", unit=MetricUnit.Count, value=1)
        return
    if outcome.result is Result.FAILED:
        if outcome.error is not None:
            logger.error("imaging failed unexpectedly", exc_info=outcome.error, **fields)
        logger.warning(f"refused: {outcome.detail}", **fields)
        _count("ImagesFailed", reason=outcome.reason or "Unknown")
    else:
        logger.info("processed", bytes_in=outcome.bytes_in, bytes_out=outcome.bytes_out, **fields)
        metrics.add_metric(name="ImagesProcessed", unit=MetricUnit.Count, value=1)
        metrics.add_metric(name="BytesOut", unit=MetricUnit.Bytes, value=outcome.bytes_out)
    metrics.add_metric(name="ProcessingTime", unit=MetricUnit.Milliseconds, value=elapsed_ms)
    metrics.add_metric(name="BytesIn", unit=MetricUnit.Bytes, value=outcome.bytes_in)


def _count(name: str, *, reason: str) -> None:
    """A count with a ``reason`` dimension: its own EMF line, so the dimension stays off the other metrics."""
    with single_metric(
        name=name,
        unit=MetricUnit.Count,
        value=1,
        namespace=metrics.namespace,
        default_dimensions=metrics.default_dimensions,
    ) as metric:
        metric.add_dimension(name="reason", value=reason)
