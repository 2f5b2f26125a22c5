"""The local stack's AWS half as processes, for the load and kill runs: moto in server mode in a process of its own
(``local_stack.emulator``, with the template's bucket, table and queues and the S3 -> SQS notification) and the
processor as ``local_stack.worker`` processes, as many as the template's ProcessorConcurrency: each one instance of
the Lambda, with its own interpreter, as Lambda runs them. This process only uploads, watches and checks.
"""

from __future__ import annotations

import contextlib
import itertools
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path
from types import TracebackType
from typing import Final

import boto3
from boto3.dynamodb.types import TypeDeserializer
from botocore.config import Config

from local_stack import emulator
from local_stack.config import LOCALHOST, ROOT, LocalConfig
from local_stack.stack import local_environment
from local_stack.template import StackNames, read_stack_names
from pipeline import keys, records
from pipeline.config import Settings
from pipeline.records import ImageRecord, Status
from reliability.harness import messages_waiting
from reliability.process import isolate

REGION: Final = "us-east-1"
READY_LINE: Final = "polling"  # what a worker logs once it receives messages (local_stack.worker)
UPLOAD_THREADS: Final = 16
_deserializer = TypeDeserializer()


@dataclass(frozen=True)
class Upload:
    raw_key: str
    body: bytes


@dataclass(frozen=True)
class Uploaded:
    raw_key: str
    started: float  # epoch seconds, when the PUT was sent
    done: float  # when S3 answered it: the object is there and its event is on the queue


def corpus_uploads(photos: Path, count: int, prefix: str) -> list[Upload]:
    """``count`` uploads of the corpus photos, cycled, each under a key of its own (as ``aws s3 cp`` would)."""
    files = sorted(p for p in photos.iterdir() if p.is_file() and not p.name.startswith("."))
    bodies = {path: path.read_bytes() for path in files}
    return [
        Upload(f"{keys.RAW_PREFIX}{prefix}/{number:04d}-{path.name}", bodies[path])
        for number, path in zip(range(count), itertools.cycle(files), strict=False)
    ]


class LocalRun(AbstractContextManager["LocalRun"]):
    """moto in server mode and the processor's workers, each a process; ``logs`` gets their output."""

    def __init__(self, logs: Path, *, visibility_timeout: int) -> None:
        self.logs = logs
        self.visibility_timeout = visibility_timeout
        self.names: StackNames = read_stack_names(REGION)
        self.port = _free_port()
        self.workers: list[subprocess.Popen[bytes]] = []
        self._started_workers = 0
        self._server: multiprocessing.process.BaseProcess | None = None
        self._control: Connection | None = None

    # -- the emulator ---------------------------------------------------------------------------------------

    def __enter__(self) -> LocalRun:
        self.logs.mkdir(parents=True, exist_ok=True)
        context = multiprocessing.get_context("spawn")
        self._control, theirs = context.Pipe()
        self._server = context.Process(
            target=_serve,
            args=(self.port, self.visibility_timeout, self.logs / "emulator.log", theirs),
            name="moto-server",
            daemon=True,
        )
        self._server.start()
        if not self._control.poll(60):
            raise RuntimeError(f"moto did not start in 60 s; see {self.logs / 'emulator.log'}")
        self.resources: emulator.Resources = self._control.recv()
        config = LocalConfig(aws_port=self.port, state_dir=self.logs / "state")
        self.env = local_environment(os.environ, config, self.names)
        self.settings = Settings.from_env(self.env)
        client_config = Config(max_pool_connections=UPLOAD_THREADS * 2, retries={"mode": "standard"})
        session = boto3.Session(
            aws_access_key_id=self.env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=self.env["AWS_SECRET_ACCESS_KEY"],
            region_name=REGION,
        )
        self.s3 = session.client("s3", endpoint_url=config.aws_url, config=client_config)
        self.dynamodb = session.client("dynamodb", endpoint_url=config.aws_url, config=client_config)
        self.sqs = session.client("sqs", endpoint_url=config.aws_url, config=client_config)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.kill_workers()
        if self._control is not None:
            self._control.send("stop")
        if self._server is not None:
            self._server.join(10)
            if self._server.is_alive():
                self._server.kill()
            self._server.join()  # reaped now, so that its CPU time counts for this run

    # -- the workers ----------------------------------------------------------------------------------------

    def start_workers(self, count: int, *, timeout: float = 60) -> None:
        """``count`` worker processes; returns once each is polling the queue."""
        started = []
        for _ in range(count):
            self._started_workers += 1
            log = self.logs / f"worker-{self._started_workers}.log"
            with log.open("wb") as output:
                started.append(
                    (
                        log,
                        subprocess.Popen(
                            [sys.executable, "-m", "local_stack.worker"],
                            cwd=ROOT,
                            env=self.env,
                            stdout=output,
                            stderr=subprocess.STDOUT,
                        ),
                    )
                )
        self.workers += [process for _, process in started]
        deadline = time.monotonic() + timeout
        for log, process in started:
            while READY_LINE not in log.read_text(errors="replace"):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"a worker did not start; see {log}")
                time.sleep(0.1)

    def kill_workers(self) -> int:
        """SIGKILL every worker, as when a Lambda instance dies mid-batch: nothing is handed back."""
        killed = 0
        for process in self.workers:
            if process.poll() is None:
                process.send_signal(signal.SIGKILL)
                killed += 1
            process.wait()
        self.workers = []
        return killed

    # -- uploads and what became of them ------------------------------------------------------------------------

    def upload(self, uploads: Sequence[Upload]) -> list[Uploaded]:
        """PUT every upload under raw/ as fast as boto3 can, from UPLOAD_THREADS threads."""

        def put(upload: Upload) -> Uploaded:
            started = time.time()
            self.s3.put_object(Bucket=self.names.bucket, Key=upload.raw_key, Body=upload.body)
            return Uploaded(upload.raw_key, started, time.time())

        with ThreadPoolExecutor(UPLOAD_THREADS) as pool:
            return list(pool.map(put, uploads))

    def queued(self) -> tuple[int, int]:
        """Messages on the upload queue: (waiting, being processed)."""
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=self.resources.queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]), int(attributes["ApproximateNumberOfMessagesNotVisible"])

    def dead_letters(self) -> int:
        return messages_waiting(self.sqs, self.resources.dead_letter_queue_url)

    def wait_until_drained(self, *, stall_seconds: float) -> bool:
        """Until no message is waiting or being processed; False if nothing changed for ``stall_seconds``."""
        last, changed = None, time.monotonic()
        while True:
            now = self.queued()
            if now == (0, 0):
                return True
            if now != last:
                last, changed = now, time.monotonic()
            elif time.monotonic() - changed > stall_seconds:
                return False
            time.sleep(0.5)

    def records(self) -> list[ImageRecord]:
        """Every image record in the table (a Scan: fine for a run's few hundred)."""
        found = []
        for page in self.dynamodb.get_paginator("scan").paginate(TableName=self.names.table):
            for item in page.get("Items", []):
                values = {name: _deserializer.deserialize(value) for name, value in item.items()}
                if values.get("sk") == records.IMAGE_SK:
                    found.append(ImageRecord.from_item(values))
        return found

    def stored_renditions(self) -> dict[str, int]:
        """Every object under public/ and hidden/, with its size."""
        return {
            item["Key"]: int(item["Size"])
            for prefix in (keys.PUBLIC_PREFIX, keys.HIDDEN_PREFIX)
            for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.names.bucket, Prefix=prefix)
            for item in page.get("Contents", [])
        }

    def image_id(self, raw_key: str) -> str:
        return keys.image_id_for_raw_key(raw_key, self.settings.secret)


@dataclass(frozen=True)
class Check:
    """What the stores say about a run's uploads: each must be ``ready`` exactly once, with exactly its files."""

    ready: int
    failed: list[str]
    lost: list[str]
    stuck: list[str]
    extra_records: int
    processed_twice: int
    orphans: list[str]
    missing: list[str]
    wrong_size: list[str]
    objects: int
    queued: tuple[int, int]
    dead_letters: int

    def summary(self) -> str:
        return (
            f"ready {self.ready}, failed {len(self.failed)}, lost {len(self.lost)}, stuck {len(self.stuck)}, "
            f"duplicate records {self.extra_records}, processed twice {self.processed_twice}; {self.objects} files "
            f"stored, orphans {len(self.orphans)}, missing {len(self.missing)}; queue "
            f"{'empty' if self.queued == (0, 0) else self.queued}, dead letters {self.dead_letters}"
        )

    def problems(self) -> list[str]:
        found = []
        for label, items in (
            ("failed", self.failed),
            ("lost (no record)", self.lost),
            ("stuck (not finished)", self.stuck),
            ("orphan files (named by no record)", self.orphans),
            ("files a record names but missing", self.missing),
            ("files of the wrong size", self.wrong_size),
        ):
            if items:
                found.append(f"{len(items)} {label}: {', '.join(items[:3])}{' ...' if len(items) > 3 else ''}")
        if self.extra_records:
            found.append(f"{self.extra_records} records for no upload of this run (duplicates)")
        if self.queued != (0, 0):
            found.append(f"messages still on the queue (waiting, in flight): {self.queued}")
        if self.dead_letters:
            found.append(f"{self.dead_letters} messages in the dead-letter queue")
        return found


def check(run: LocalRun, uploaded: Sequence[Uploaded]) -> tuple[Check, dict[str, ImageRecord]]:
    """Every upload's record, and every stored file against what the records name; the records by raw key."""
    records = {record.id: record for record in run.records()}
    by_key = {u.raw_key: records[run.image_id(u.raw_key)] for u in uploaded if run.image_id(u.raw_key) in records}
    named = {r.key: r.bytes for record in records.values() for r in record.renditions}
    stored = run.stored_renditions()
    lost = [u.raw_key for u in uploaded if u.raw_key not in by_key]
    return (
        Check(
            ready=sum(1 for record in by_key.values() if record.status is Status.READY),
            failed=[f"{key}: {r.failure_reason}" for key, r in by_key.items() if r.status is Status.FAILED],
            lost=lost,
            stuck=[f"{key} ({r.status})" for key, r in by_key.items() if r.status not in (Status.READY, Status.FAILED)],
            extra_records=len(records) - len(by_key),
            processed_twice=sum(1 for r in by_key.values() if [h.status for h in r.history].count(Status.READY) > 1),
            orphans=sorted(set(stored) - set(named)),
            missing=sorted(set(named) - set(stored)),
            wrong_size=sorted(key for key in set(named) & set(stored) if named[key] != stored[key]),
            objects=len(stored),
            queued=run.queued(),
            dead_letters=run.dead_letters(),
        ),
        by_key,
    )


def epoch(iso: str) -> float:
    """A record's time (``records.now_iso``) as epoch seconds."""
    return datetime.strptime(iso, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC).timestamp()


def processing_seconds(record: ImageRecord) -> float:
    """From the last claim (``processing``) to ``ready``: the time one instance spent on the image."""
    claimed = [h.at for h in record.history if h.status is Status.PROCESSING]
    return epoch(record.processed_at or record.updated_at) - epoch(claimed[-1]) if claimed else 0.0


def _serve(port: int, visibility_timeout: int, log: Path, control: Connection) -> None:
    """The emulator process: moto's server with the stack's resources, until told to stop."""
    isolate(log)
    server = emulator.Emulator(port, REGION)
    server.start()
    names = read_stack_names(REGION)
    resources = emulator.create_resources(
        server, names, REGION, LocalConfig().web_origins, visibility_timeout=visibility_timeout
    )
    emulator.connect_uploads(server, resources)
    control.send(resources)
    with contextlib.suppress(EOFError):  # EOF: the run's process ended
        control.recv()
    server.stop()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((LOCALHOST, 0))
        return int(probe.getsockname()[1])
