"""Read API latency and DynamoDB calls per page, through the Lambda handler, against moto's server.

    .venv/bin/python -m bench.api_latency            # starts moto_server on --port, seeds, measures, stops it

What it reports is the cost of our code plus one HTTP round trip to a local DynamoDB emulator per page;
real DynamoDB adds its own few milliseconds, a cold start adds the imports.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import io
import json
import os
import socket
import statistics
import subprocess
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from local_stack.lambda_runtime import FunctionSettings, LambdaContext

ROOT = Path(__file__).resolve().parent.parent
EVENT = ROOT / "tests" / "events" / "http_api_list_images.json"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=5055)
    parser.add_argument("--items", type=int, default=200)
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--limit", type=int, default=24)
    options = parser.parse_args(argv)

    endpoint = f"http://127.0.0.1:{options.port}"
    if _listening(options.port):
        parser.error(f"port {options.port} is taken (another emulator?); pick a free one with --port")
    server = subprocess.Popen(
        [str(ROOT / ".venv" / "bin" / "moto_server"), "-p", str(options.port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for_port(options.port)
        # Before the first import of the handler: it reads Settings and builds its clients from the environment.
        os.environ.update(
            AWS_ENDPOINT_URL=endpoint,
            AWS_ACCESS_KEY_ID="bench",
            AWS_SECRET_ACCESS_KEY="bench",  # noqa: S106 (the local emulator accepts anything)
            AWS_DEFAULT_REGION="us-east-1",
            AWS_REGION="us-east-1",
            POWERTOOLS_METRICS_NAMESPACE="ImagePipelineBench",
            POWERTOOLS_SERVICE_NAME="image-api-bench",
        )
        run(options)
    finally:
        server.terminate()
        try:
            server.wait(timeout=5)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    return 0


def run(options: argparse.Namespace) -> None:
    from lambdas.image_api import handler as image_api
    from pipeline import store

    store.create_table(image_api.aws.dynamodb, image_api.settings.table)
    images = image_api.aws.image_store()
    started = time.perf_counter()
    for n in range(options.items):
        images.create(ready_record(n, tags=("beach",) if n % 3 == 0 else ()))
    print(f"seeded {options.items} ready images in {time.perf_counter() - started:.1f} s")

    probe = DynamoDbProbe()
    events = image_api.aws.dynamodb.meta.events
    events.register("before-call.dynamodb.*", probe.before)
    events.register("after-call.dynamodb.*", probe.after)
    function = FunctionSettings(
        name="image-api-bench",
        arn="arn:aws:lambda:us-east-1:123456789012:function:image-api-bench",
        batch_size=1,
        timeout_seconds=10,
        memory_limit_in_mb=512,
    )
    context = LambdaContext(function)

    def invoke(path: str, query: dict[str, str]) -> dict[str, Any]:
        event = http_event(path, query=query)
        with contextlib.redirect_stdout(io.StringIO()):  # the metrics' EMF lines
            begin, waited = time.perf_counter(), probe.in_dynamodb
            result = image_api.handler(event, context)
            elapsed = time.perf_counter() - begin
        probe.total.append(elapsed)
        probe.own.append(elapsed - (probe.in_dynamodb - waited))
        assert result["statusCode"] == 200, result
        return json.loads(result["body"])

    limit = str(options.limit)
    invoke("/images", {"limit": limit})  # warm: imports, client, connection pool
    print(f"endpoint {os.environ['AWS_ENDPOINT_URL']} (moto_server), {options.requests} requests each, warm Lambda")

    probe.reset()
    for _ in range(options.requests):
        invoke("/images", {"limit": limit})
    probe.report(f"GET /images?limit={limit} (first page)")

    probe.reset()
    cursor = None
    for _ in range(options.requests):
        cursor = invoke("/images", {"limit": limit, **({"cursor": cursor} if cursor else {})})["next"]
    probe.report(f"GET /images?limit={limit}&cursor= (every page)")

    probe.reset()
    for _ in range(options.requests):
        invoke("/images", {"limit": limit, "tag": "beach"})
    probe.report(f"GET /images?limit={limit}&tag=beach")

    some_id = invoke("/images", {"limit": "1"})["items"][0]["id"]
    probe.reset()
    for _ in range(options.requests):
        invoke(f"/images/{some_id}", {})
    probe.report("GET /images/{id}")


class DynamoDbProbe:
    """Counts DynamoDB operations and the time spent in them (botocore events), next to each request's total."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.calls: Counter[str] = Counter()
        self.total: list[float] = []
        self.own: list[float] = []  # the request minus its DynamoDB round trips: our code and Powertools
        self.in_dynamodb = 0.0
        self._began = 0.0

    def before(self, model: Any, **_: Any) -> None:
        self.calls[model.name] += 1
        self._began = time.perf_counter()

    def after(self, **_: Any) -> None:
        self.in_dynamodb += time.perf_counter() - self._began

    def report(self, label: str) -> None:
        ms = [seconds * 1000 for seconds in self.total]
        own = [seconds * 1000 for seconds in self.own]
        calls = ", ".join(f"{name} x{n / len(ms):g}" for name, n in sorted(self.calls.items()))
        print(
            f"{label:<40} p50 {statistics.median(ms):6.1f} ms  p90 {statistics.quantiles(ms, n=10)[8]:6.1f} ms  "
            f"| without DynamoDB: p50 {statistics.median(own):5.1f} ms  | per request: {calls}"
        )


def http_event(path: str, query: dict[str, str]) -> dict[str, Any]:
    """The recorded v2 event with another path and query string."""
    event = copy.deepcopy(json.loads(EVENT.read_text()))
    event["rawPath"] = event["requestContext"]["http"]["path"] = path
    event["rawQueryString"] = urlencode(query)
    event["queryStringParameters"] = dict(query)
    if path.startswith("/images/"):
        event["pathParameters"] = {"id": path.rsplit("/", 1)[1]}
    return event


def ready_record(n: int, tags: tuple[str, ...]) -> Any:
    """A processed image with four renditions, as the processor leaves it; ``n`` orders them."""
    from pipeline import keys, records

    image_id = keys.new_image_id()
    created = (datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=n)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    renditions = tuple(
        records.Rendition(name, fmt, keys.rendition_key(image_id, name, fmt), size, size * 3 // 4, size * 40)
        for name, size in (("thumb", 400), ("optimized", 1920))
        for fmt in ("jpeg", "webp")
    )
    raw_key = keys.raw_key_for_upload(image_id, f"IMG_{n:04d}.jpg")
    return (
        records.new_record(image_id, raw_key, records.Status.PROCESSING, at=created)
        .with_status(records.Status.READY)
        .replace(
            sha256=f"{n:064x}",
            width=4000,
            height=3000,
            format="JPEG",
            byte_size=3_000_000,
            renditions=renditions,
            processed_at=created,
            blurhash="LEHV6nWB2yk8pyo0adR*.7kCMdnj",
            dominant_color="#6a7b8c",
            title=f"Photo {n}",
            tags=tags,
        )
    )


def _listening(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
        return True
    return False


def _wait_for_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _listening(port):
            return
        time.sleep(0.1)
    raise RuntimeError(f"moto_server did not listen on port {port} within {timeout:.0f} s")


if __name__ == "__main__":
    raise SystemExit(main())
