"""Load: hundreds of uploads PUT into the local stack's raw/ as fast as boto3 can, with the processor at the
template's concurrency; every one must end ``ready`` once, with exactly its files, and nothing left queued."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final

from local_stack.config import LocalConfig
from pipeline.records import ImageRecord
from reliability.local_run import (
    UPLOAD_THREADS,
    Check,
    LocalRun,
    Uploaded,
    check,
    corpus_uploads,
    epoch,
    processing_seconds,
)
from reliability.process import LOGS, Report, percentile

# No progress on the queue for this long ends the wait: what is left is reported stuck.
STALL_SECONDS: Final = 120


@dataclass(frozen=True)
class LoadRun:
    uploaded: list[Uploaded]
    found: Check
    records: dict[str, ImageRecord]  # by raw key
    drained: bool
    concurrency: int
    batch_size: int

    @property
    def latencies(self) -> list[float]:
        """Seconds from each PUT's answer to its record's ``processed_at``."""
        done = {key: epoch(r.processed_at) for key, r in self.records.items() if r.processed_at}
        return [done[u.raw_key] - u.done for u in self.uploaded if u.raw_key in done]

    @property
    def elapsed(self) -> float:
        """From the first PUT to the last image ready."""
        done = [epoch(r.processed_at) for r in self.records.values() if r.processed_at]
        return max(done) - min(u.started for u in self.uploaded) if done else 0.0

    def problems(self) -> list[str]:
        stalled = [] if self.drained else [f"the queue made no progress for {STALL_SECONDS} s"]
        return stalled + self.found.problems()


def measure(photos: Path, count: int, *, visibility_timeout: int, logs: Path = LOGS / "load") -> LoadRun:
    uploads = corpus_uploads(photos, count, "load")
    with LocalRun(logs, visibility_timeout=visibility_timeout) as local:
        concurrency = local.names.processor_concurrency or 1
        local.start_workers(concurrency)
        uploaded = local.upload(uploads)
        drained = local.wait_until_drained(stall_seconds=STALL_SECONDS)
        found, records = check(local, uploaded)
        return LoadRun(uploaded, found, records, drained, concurrency, local.names.batch_size)


def run(photos: Path, count: int) -> Report:
    visibility = LocalConfig().visibility_timeout_seconds
    measured = measure(photos, count, visibility_timeout=visibility)
    found, uploaded = measured.found, measured.uploaded
    photo_names = {u.raw_key.split("-", 1)[1] for u in uploaded}
    put_seconds = max(u.done for u in uploaded) - min(u.started for u in uploaded)
    report = Report("load")
    report.lines += [
        f"{count} uploads ({len(photo_names)} corpus photos cycled, a key each) PUT into raw/ from {UPLOAD_THREADS} "
        f"threads in {put_seconds:.1f} s; moto in server mode; {measured.concurrency} worker processes "
        f"(ProcessorConcurrency), BatchSize {measured.batch_size}; visibility timeout {visibility} s",
        found.summary(),
    ]
    if latencies := measured.latencies:
        per_image = [processing_seconds(record) for record in measured.records.values() if record.processed_at]
        report.lines.append(
            f"throughput {len(latencies) / measured.elapsed:.2f} images/s ({len(latencies)} in "
            f"{measured.elapsed:.0f} s from the first PUT); upload-to-ready latency p50 "
            f"{percentile(latencies, 0.5):.1f} s, p95 {percentile(latencies, 0.95):.1f} s, max {max(latencies):.1f} s; "
            f"one image, claim to ready: p50 {percentile(per_image, 0.5):.2f} s, "
            f"p95 {percentile(per_image, 0.95):.2f} s"
        )
    report.problems += measured.problems()
    return report
