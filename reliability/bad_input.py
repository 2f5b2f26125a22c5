"""Bad input: the hostile corpus and seeded mutations of the corpus, each through the CLI and the processor handler.

Every input must get a verdict on both paths: renditions, or a refusal with a reason a person can read; never a
traceback, an "internal error", a retried message or a file left behind. The two paths must agree.
"""

from __future__ import annotations

import collections
import contextlib
import io
import itertools
import json
import shutil
import tempfile
import time
import traceback
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Final, Literal

from pipeline.records import Status
from reliability.harness import ImageState, ProcessorHarness
from reliability.mutations import mutations
from reliability.process import LOGS, Report, isolate, peak_rss_mb, reset_peak_rss, stderr_to

Route = Literal["cli", "handler"]
ROUTES: Final[tuple[Route, ...]] = ("cli", "handler")
# Inputs per task handed to a process, and per moto: few enough to share the work evenly and keep moto small (it
# keeps every object in memory, so the handler's peak RSS includes them), enough that a fresh moto costs little.
CHUNK: Final = 50
DECODER_LOG: Final = LOGS / "bad-input.log"


@dataclass(frozen=True)
class Verdict:
    index: int
    name: str
    route: Route
    outcome: Literal["renditions", "refused", "error"]
    # refused: the reason's code (handler) or text (CLI); error: what went wrong.
    reason: str
    seconds: float
    peak_rss_mb: int


@dataclass(frozen=True)
class BadInputs:
    """The ``hostile`` files as they are, then ``count`` seeded mutations of ``sources``: made alike in any process,
    so a process of the pool makes its own slice instead of receiving hundreds of megabytes."""

    hostile: tuple[Path, ...]
    sources: tuple[Path, ...]
    count: int
    seed: int

    @classmethod
    def of_corpus(cls, corpus: Path, count: int, seed: int) -> BadInputs:
        """The corpus's hostile files, then mutations of its photos and hostile files."""
        hostile = tuple(sorted(p for p in (corpus / "hostile").iterdir() if p.name != "README.md"))
        photos = tuple(sorted(p for p in (corpus / "photos").iterdir() if not p.name.startswith(".")))
        return cls(hostile, photos + hostile, count, seed)

    def __len__(self) -> int:
        return len(self.hostile) + self.count

    def numbered(self, start: int, stop: int) -> list[tuple[int, tuple[str, bytes]]]:
        every = itertools.chain(
            ((path.name, path.read_bytes()) for path in self.hostile),
            ((m.name, m.data) for m in mutations(self.sources, self.count, seed=self.seed)),
        )
        return list(enumerate(itertools.islice(every, start, stop), start))


def run(corpus: Path, count: int, seed: int, *, processes: int = 2) -> Report:
    inputs = BadInputs.of_corpus(corpus, count, seed)
    report = Report("bad input")
    report.lines.append(
        f"{len(inputs.hostile)} hostile files + {count} seeded mutations (seed {seed}) of the corpus, each through "
        "the CLI and the processor handler"
    )
    summarize(judge(inputs, processes=processes), report)
    return report


def judge(inputs: BadInputs, *, processes: int = 2) -> list[Verdict]:
    """Every input's verdict on both paths, from ``processes`` processes."""
    total = len(inputs)
    tasks = [(route, start, min(start + CHUNK, total)) for start in range(0, total, CHUNK) for route in ROUTES]
    verdicts: list[Verdict] = []
    with ProcessPoolExecutor(processes, mp_context=get_context("spawn"), initializer=_quiet) as pool:
        futures = [pool.submit(judge_slice, inputs, route, start, stop) for route, start, stop in tasks]
        for future in futures:
            verdicts += future.result()
    return verdicts


def _quiet() -> None:
    isolate(DECODER_LOG)
    stderr_to(DECODER_LOG)


def judge_slice(inputs: BadInputs, route: Route, start: int, stop: int) -> list[Verdict]:
    """Verdicts for inputs ``start``..``stop`` on one route (in a process of the pool)."""
    numbered = inputs.numbered(start, stop)
    return through_cli(numbered) if route == "cli" else through_handler(numbered)


def through_cli(inputs: Sequence[tuple[int, tuple[str, bytes]]]) -> list[Verdict]:
    """``python -m pipeline FILE --out DIR`` for each input, called in this process (its ``main``)."""
    from pipeline.__main__ import main as cli

    verdicts = []
    with tempfile.TemporaryDirectory(prefix="reliability-cli-") as scratch:
        source, out = Path(scratch) / "upload.bin", Path(scratch) / "out"
        for index, (name, data) in inputs:
            source.write_bytes(data)
            stdout, stderr = io.StringIO(), io.StringIO()
            reset_peak_rss()
            started = time.perf_counter()
            try:
                with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
                    status: Any = cli([str(source), "--out", str(out)])
            except BaseException as error:  # SystemExit from argparse too: what this run exists to find
                status = f"raised {type(error).__name__}: {error} ({_where(error)})"
            seconds = time.perf_counter() - started
            outcome, reason = _cli_verdict(status, stdout.getvalue(), stderr.getvalue())
            verdicts.append(Verdict(index, name, "cli", outcome, reason, seconds, peak_rss_mb()))
            shutil.rmtree(out, ignore_errors=True)
    return verdicts


def _cli_verdict(status: Any, stdout: str, stderr: str) -> tuple[Literal["renditions", "refused", "error"], str]:
    if isinstance(status, str):
        return "error", status
    if "Traceback" in stderr:
        return "error", f"traceback on stderr: {stderr.strip().splitlines()[-1]}"
    lines = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
    if len(lines) != 1:
        return "error", f"{len(lines)} verdict lines, exit status {status}"
    (line,) = lines
    if status == 0 and line.get("renditions"):
        return "renditions", ""
    if status == 1 and line.get("error"):
        return "refused", str(line["error"])
    return "error", f"exit status {status} with {sorted(line)}"


def through_handler(inputs: Sequence[tuple[int, tuple[str, bytes]]]) -> list[Verdict]:
    """Each input PUT under raw/, its S3 event through SQS to the processor handler, then its record read."""
    verdicts = []
    for start in range(0, len(inputs), CHUNK):
        verdicts += _through_one_moto(inputs[start : start + CHUNK])
    return verdicts


def _through_one_moto(inputs: Sequence[tuple[int, tuple[str, bytes]]]) -> list[Verdict]:
    # moto scans the whole bucket on every listing: a fresh one for each CHUNK inputs keeps a case's cost flat.
    verdicts = []
    with ProcessorHarness() as harness:
        for index, (name, data) in inputs:
            raw_key = f"raw/bad-input/{name}"
            reset_peak_rss()
            started = time.perf_counter()
            harness.upload(raw_key, data)
            received = harness.deliver()
            seconds = time.perf_counter() - started
            rss = peak_rss_mb()
            outcome, reason = handler_verdict(harness.state(raw_key), harness.take_log(), received)
            verdicts.append(Verdict(index, name, "handler", outcome, reason, seconds, rss))
    return verdicts


def handler_verdict(
    state: ImageState, log: list[dict[str, Any]], received: int
) -> tuple[Literal["renditions", "refused", "error"], str]:
    """The verdict an upload got: ``ready`` with exactly its renditions stored, or ``failed`` with a reason and no
    file; anything else (a traceback or error in the log, a retried message, an internal error) is an error."""
    errors = [line for line in log if line.get("level") in ("ERROR", "CRITICAL") or "exception" in line]
    if errors:
        first = errors[0]
        return "error", f"logged {first.get('level')}: {first.get('message')} {first.get('exception_name', '')}"
    if received != 1:
        return "error", f"the handler failed the message; it was delivered {received} times"
    record = state.record
    if record is None:
        return "error", "no record: the upload was lost"
    if state.orphans or state.missing:
        return "error", f"{len(state.orphans)} files no record names, {len(state.missing)} named but missing"
    if record.status is Status.READY:
        return ("renditions", "") if record.renditions else ("error", "ready without renditions")
    if record.status is Status.FAILED:
        reason = record.failure_reason or ""
        if not reason or "internal error" in reason:
            return "error", f"failed with {reason!r}"
        codes = [line.get("reason") for line in log if line.get("outcome") == "failed"]
        return "refused", str(codes[-1] if codes else reason)
    return "error", f"stuck in {record.status}"


def summarize(verdicts: list[Verdict], report: Report) -> None:
    """The counts, worst time and worst peak RSS of each route into ``report``; every error, and every input the two
    routes judged differently, into its problems."""
    by_route = {route: [v for v in verdicts if v.route == route] for route in ROUTES}
    for route, label, made, refused in (
        ("cli", "CLI     ", "renditions", "refused with a reason"),
        ("handler", "handler ", "ready", "failed with a reason"),
    ):
        found = by_route[route]
        outcomes = collections.Counter(v.outcome for v in found)
        line = f"{label} {made} {outcomes['renditions']}, {refused} {outcomes['refused']}, errors {outcomes['error']}"
        if route == "handler":
            reasons = collections.Counter(v.reason for v in found if v.outcome == "refused")
            line += " (" + ", ".join(f"{code} {n}" for code, n in reasons.most_common()) + ")"
        report.lines.append(line)
        slowest = max(found, key=lambda v: v.seconds)
        biggest = max(found, key=lambda v: v.peak_rss_mb)
        report.lines.append(
            f"{' ' * len(label)} worst time {slowest.seconds:.2f} s ({slowest.name}), "
            f"worst peak RSS {biggest.peak_rss_mb} MB ({biggest.name})"
        )
        report.problems += [f"{route}: {v.name}: {v.reason}" for v in found if v.outcome == "error"]
    cli_outcomes = {v.index: v.outcome for v in by_route["cli"]}
    differ = [v for v in by_route["handler"] if cli_outcomes.get(v.index) != v.outcome]
    report.lines.append(
        f"the CLI and the handler agree on {len(by_route['handler']) - len(differ)} of {len(by_route['handler'])}"
    )
    report.problems += [
        f"verdicts differ: {v.name}: CLI {cli_outcomes.get(v.index)}, handler {v.outcome}"
        for v in differ
        if v.outcome != "error" and cli_outcomes.get(v.index) != "error"
    ]
    report.lines.append(
        f"(the handler's RSS includes moto's, in the same process; decoder messages: {_shown(DECODER_LOG)})"
    )


def _where(error: BaseException) -> str:
    frames = traceback.extract_tb(error.__traceback__)
    return f"{frames[-1].filename}:{frames[-1].lineno}" if frames else "no frame"


def _shown(path: Path) -> str:
    with contextlib.suppress(ValueError):
        return str(path.relative_to(Path.cwd()))
    return str(path)
