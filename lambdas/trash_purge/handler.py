"""The trash's daily purge: an EventBridge schedule -> pipeline.trash.purge_expired, a few lines.

Any event runs the purge (the schedule's ``Scheduled Event``, or a manual ``aws lambda invoke``); what is due is
decided by the records' purge dates and the clock, never by the event. An image that could not be purged makes
the invocation fail (the Errors alarm), and the next run tries it again.
"""

from __future__ import annotations

from typing import Any, Final

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from pipeline import store, trash
from pipeline.config import Settings
from pipeline.records import ImageRecord

DEFAULT_METRICS_NAMESPACE: Final = "ImagePipeline"
# Stop taking new images this long before the function's timeout: one purge is a few S3 and DynamoDB calls.
STOP_MARGIN_MS: Final = 30_000

logger = Logger()
metrics = Metrics()
if not metrics.namespace:
    metrics.namespace = DEFAULT_METRICS_NAMESPACE

# Once per container. No PIPELINE_SECRET here: the purge neither signs cursors nor derives ids.
settings = Settings.from_env()
aws = store.Aws(settings)


class PurgeIncomplete(RuntimeError):
    """Some images due for purging could not be purged; they are named in the log and tried again next run."""


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    logger.info("purging the trash", scheduled_at=event.get("time"), rules=event.get("resources"))

    def report(outcome: str, record: ImageRecord, detail: str) -> None:
        fields = {"image_id": record.id, "deleted_at": record.deleted_at, "purge_after": record.purge_after}
        if outcome == "failed":
            logger.error(f"could not purge: {detail}", **fields)
        else:
            logger.info(outcome, **fields)

    summary = trash.purge_expired(
        aws.image_store(),
        aws.object_store(),
        aws.cdn(),
        should_stop=lambda: context.get_remaining_time_in_millis() < STOP_MARGIN_MS,
        report=report,
    )
    metrics.add_metric(name="ImagesPurged", unit=MetricUnit.Count, value=len(summary.purged))
    metrics.add_metric(name="PurgeFailures", unit=MetricUnit.Count, value=len(summary.failed))
    logger.info(f"done: {summary.text()}")
    if summary.stopped_early:
        logger.warning("the purge ran out of time; the next run goes on where this one stopped")
    if summary.failed:
        raise PurgeIncomplete(f"{len(summary.failed)} image(s) could not be purged: {summary.failed}")
    return {"purged": summary.purged, "skipped": summary.skipped, "stopped_early": summary.stopped_early}
