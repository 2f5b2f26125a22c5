"""`python -m reliability bad-input [--count 1000] [--seed 12]`: every seeded mutation of the corpus gets a verdict.

Runs the public hostile corpus and ``--count`` seeded mutations of the corpus (truncations, byte flips, chunk
splices, zero runs, duplicated chunks) through ``pipeline.imaging.process_image``, as the CLI and the processor
call it, and reports how many became renditions, how many were refused (with their reasons, grouped), the
worst time and the process's peak RSS. Exit status 1 if any input raised anything but a typed refusal.
"""

from __future__ import annotations

import argparse
import collections
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from pipeline.config import ImagingSettings
from pipeline.imaging import ImageRejected, process_image
from reliability.mutations import mutations

CORPUS = Path(__file__).resolve().parent.parent.parent / "shared" / "corpus"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reliability", description=__doc__.splitlines()[0])
    parser.add_argument("part", choices=["bad-input"])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    args = parser.parse_args(argv)

    hostile = sorted(p for p in (args.corpus / "hostile").iterdir() if p.name != "README.md")
    photos = sorted(p for p in (args.corpus / "photos").iterdir() if not p.name.startswith("."))
    inputs = [(path.name, path.read_bytes()) for path in hostile]
    inputs += [(m.name, m.data) for m in mutations(photos + hostile, args.count, seed=args.seed)]

    settings = ImagingSettings()
    outcomes: collections.Counter[str] = collections.Counter()
    reasons: collections.Counter[str] = collections.Counter()
    errors: list[str] = []
    worst = (0.0, "")
    for name, data in inputs:
        started = time.perf_counter()
        try:
            process_image(data, settings)
            outcomes["renditions"] += 1
        except ImageRejected as refused:
            outcomes["refused"] += 1
            reasons[type(refused).__name__] += 1
        except Exception as error:  # what this command exists to find
            outcomes["ERROR"] += 1
            errors.append(f"{name}: {type(error).__name__}: {error}")
        elapsed = time.perf_counter() - started
        worst = max(worst, (elapsed, name))

    print(f"bad input: {len(hostile)} hostile files + {args.count} mutations (seed {args.seed})")
    made, refused, failed = outcomes["renditions"], outcomes["refused"], outcomes["ERROR"]
    print(f"  renditions {made}, refused with a reason {refused}, errors {failed}")
    print("  refusals: " + ", ".join(f"{kind} {n}" for kind, n in reasons.most_common()))
    print(f"  worst time {worst[0]:.2f} s ({worst[1]}), peak RSS {_peak_rss_mb()} MB")
    for line in errors:
        print(f"  ERROR {line}")
    return 1 if errors else 0


def _peak_rss_mb() -> int:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) // 1024 for line in status if line.startswith("VmHWM:"))


if __name__ == "__main__":
    sys.exit(main())
