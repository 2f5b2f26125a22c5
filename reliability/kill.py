"""Kill: every worker process is SIGKILLed while photos are in flight, some mid-image; after a restart every upload
must end ``ready`` once, with exactly its files: the messages the dead instances held come back after the queue's
visibility timeout, and their records, left ``processing``, are claimed again."""

from __future__ import annotations

import collections
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from pipeline.records import Status
from reliability.local_run import Check, LocalRun, check, corpus_uploads
from reliability.process import LOGS, Report

# Short, so that the killed instances' messages come back within the run (AWS: the template's 720 s).
VISIBILITY_TIMEOUT_SECONDS: Final = 20
# Kill once this share of the uploads is ready and some image is being processed: mid-run and mid-image.
KILL_AFTER_SHARE: Final = 0.2


@dataclass(frozen=True)
class KillRun:
    count: int
    killed: int
    at_kill: collections.Counter[Status]  # the records' statuses a moment before the kill
    drained: bool
    recovered_seconds: float  # from the kill to an empty queue
    found: Check
    concurrency: int
    batch_size: int
    template_visibility_timeout: int

    def problems(self) -> list[str]:
        found = []
        if not self.at_kill[Status.PROCESSING]:
            found.append("no image was being processed at the kill: the run did not test what it should")
        if not self.drained:
            found.append("the queue made no progress after the restart")
        return found + self.found.problems()


def measure(
    photos: Path, count: int, *, visibility_timeout: int = VISIBILITY_TIMEOUT_SECONDS, logs: Path = LOGS / "kill"
) -> KillRun:
    uploads = corpus_uploads(photos, count, "kill")
    with LocalRun(logs, visibility_timeout=visibility_timeout) as local:
        concurrency = local.names.processor_concurrency or 1
        local.start_workers(concurrency)
        uploaded = local.upload(uploads)
        at_kill = _wait_for_mid_run(local, count)
        killed = local.kill_workers()
        killed_at = time.monotonic()
        local.start_workers(concurrency)
        drained = local.wait_until_drained(stall_seconds=visibility_timeout + 60)
        recovered = time.monotonic() - killed_at
        found, _ = check(local, uploaded)
        names = local.names
    return KillRun(
        count,
        killed,
        at_kill,
        drained,
        recovered,
        found,
        concurrency,
        names.batch_size,
        names.visibility_timeout_seconds,
    )


def run(photos: Path, count: int) -> Report:
    measured = measure(photos, count)
    found, at_kill = measured.found, measured.at_kill
    report = Report("kill")
    report.lines += [
        f"{count} photos PUT into raw/, {measured.concurrency} worker processes (BatchSize {measured.batch_size}); "
        f"visibility timeout {VISIBILITY_TIMEOUT_SECONDS} s here instead of the template's "
        f"{measured.template_visibility_timeout} s, so that the redelivery happens within the run",
        f"SIGKILL to {measured.killed} workers with {at_kill[Status.PROCESSING]} images being processed, "
        f"{at_kill[Status.READY]} ready, {count - sum(at_kill.values())} still queued; workers restarted",
        f"{measured.recovered_seconds:.0f} s after the kill: {found.summary()}",
    ]
    report.problems += measured.problems()
    return report


def _wait_for_mid_run(local: LocalRun, count: int, timeout: float = 300) -> collections.Counter[Status]:
    """The records' statuses at the first moment some image is mid-processing after KILL_AFTER_SHARE are ready."""
    deadline = time.monotonic() + timeout
    while True:
        statuses = collections.Counter(record.status for record in local.records())
        if statuses[Status.READY] >= count * KILL_AFTER_SHARE and statuses[Status.PROCESSING]:
            return statuses
        if statuses[Status.READY] + statuses[Status.FAILED] == count or time.monotonic() > deadline:
            return statuses
        time.sleep(0.05)
