"""``python -m reliability all|bad-input|load|faults|kill``: the pipeline's reliability, measured.

- bad-input: the hostile corpus and ``--count`` seeded mutations, through the CLI and the processor handler;
- load: ``--uploads`` photos PUT into the local stack's raw/ at once, the processor at its configured concurrency;
- faults: every AWS call the processor makes fails once, at each position, four ways, then SQS redelivers;
- kill: the worker processes SIGKILLed with ``--in-flight`` photos in flight, then restarted.

Prints each part's figures and what it found wrong; exit status 1 if any part found anything. Logs of the
processes (workers, emulator, decoder messages) go to artifacts/reliability/.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import sys
import time
from collections.abc import Callable, Sequence
from datetime import date
from importlib.metadata import version
from pathlib import Path

from reliability import bad_input, faults, kill, load
from reliability.process import LOGS, Report, isolate

CORPUS = Path(__file__).resolve().parent.parent.parent / "shared" / "corpus"
PARTS = ("bad-input", "load", "faults", "kill")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reliability", description=__doc__.splitlines()[0])
    parser.add_argument("part", choices=[*PARTS, "all"])
    parser.add_argument("--count", type=int, default=1000, help="bad-input: seeded mutations (default 1000)")
    parser.add_argument("--seed", type=int, default=12, help="bad-input: the mutations' seed (default 12)")
    parser.add_argument("--uploads", type=int, default=500, help="load: photos uploaded (default 500)")
    parser.add_argument("--in-flight", type=int, default=50, help="kill: photos in flight (default 50)")
    parser.add_argument("--corpus", type=Path, default=CORPUS, help="the shared corpus (photos/ and hostile/)")
    args = parser.parse_args(argv)

    isolate(LOGS / "reliability.log")
    processes = min(2, os.cpu_count() or 1)
    runs: dict[str, Callable[[], Report]] = {
        "bad-input": lambda: bad_input.run(args.corpus, args.count, args.seed, processes=processes),
        "load": lambda: load.run(args.corpus / "photos", args.uploads),
        "faults": lambda: faults.run(args.corpus, processes=processes),
        "kill": lambda: kill.run(args.corpus / "photos", args.in_flight),
    }
    print(
        f"python -m reliability {args.part}: {date.today().isoformat()}, {os.cpu_count()} cores (load average "
        f"{os.getloadavg()[0]:.1f}), Python {platform.python_version()}, moto {version('moto')}, Pillow "
        f"{version('pillow')}; logs in {LOGS.relative_to(Path.cwd()) if LOGS.is_relative_to(Path.cwd()) else LOGS}",
        flush=True,
    )
    failed = []
    started, cpu_started = time.perf_counter(), _cpu_seconds()
    for part in PARTS if args.part == "all" else (args.part,):
        part_started, part_cpu = time.perf_counter(), _cpu_seconds()
        report = runs[part]()
        print(f"\n{report.title}:", flush=True)
        for line in report.lines:
            print(f"  {line}")
        for problem in report.problems:
            print(f"  PROBLEM {problem}")
        print(f"  {'passed' if report.passed else 'FAILED'} in {_timing(part_started, part_cpu)}", flush=True)
        if not report.passed:
            failed.append(part)
    verdict = "FAILED: " + ", ".join(failed) if failed else "all passed"
    print(f"\n{verdict} in {_timing(started, cpu_started)}; load average {os.getloadavg()[0]:.1f}")
    return 1 if failed else 0


def _cpu_seconds() -> float:
    """CPU time of this process and of every process it started and waited for (pools, workers, moto)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _timing(started: float, cpu_started: float) -> str:
    # CPU time too: on a shared machine the wall time says as much about the neighbours as about the run.
    return f"{time.perf_counter() - started:.0f} s (CPU {_cpu_seconds() - cpu_started:.0f} s, all processes)"


if __name__ == "__main__":
    sys.exit(main())
