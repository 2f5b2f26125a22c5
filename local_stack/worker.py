"""``python -m local_stack.worker``: one instance of the processor Lambda, polling the local upload queue until SIGTERM.

Lambda runs up to the event source's MaximumConcurrency instances, each a process with its own interpreter; so
``python -m reliability load`` starts that many of these, which is how CPU-bound imaging really runs side by side
(threads of one process would share one GIL). ``make run`` keeps its single worker thread.

The environment is the local stack's (``local_stack.stack.local_environment``): ``AWS_ENDPOINT_URL`` must name the
emulator on 127.0.0.1, and the queue, batch size and function settings come from infra/pipeline.yaml.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import warnings
from urllib.parse import urlsplit

import boto3

from local_stack.config import LOCALHOST
from local_stack.lambda_runtime import FunctionSettings, QueueWorker
from local_stack.template import read_stack_names
from pipeline.config import Settings

log = logging.getLogger("local_stack.worker")


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%X")
    logging.getLogger("botocore").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message="No application metrics to publish", category=UserWarning)
    endpoint = os.environ.get("AWS_ENDPOINT_URL", "")
    if urlsplit(endpoint).hostname != LOCALHOST:
        # Never a real queue: many shells hold AWS credentials.
        print(
            f"local_stack.worker: AWS_ENDPOINT_URL is {endpoint!r}; it polls only an emulator on {LOCALHOST}",
            file=sys.stderr,
        )
        return 2
    settings = Settings.from_env()
    names = read_stack_names(settings.region)
    sqs = boto3.client("sqs", region_name=settings.region)
    queue_url = sqs.get_queue_url(QueueName=names.queue)["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    # Imported only now: the handler reads its configuration and builds its clients at import, as in Lambda.
    from lambdas.image_processor.handler import handler

    function = FunctionSettings.processor(names, settings.region)
    worker = QueueWorker(sqs, queue_url, queue_arn, settings.region, handler, function)
    stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopping.set())
    worker.start()
    log.info("polling %s (batch size %d), pid %d", names.queue, function.batch_size, os.getpid())
    stopping.wait()
    worker.stop(function.timeout_seconds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
