"""What every process of a reliability run does first (no real AWS, quiet decoders), and how it measures itself."""

from __future__ import annotations

import logging
import math
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from local_stack.config import DUMMY_CREDENTIALS, ROOT

LOGS: Final = ROOT / "artifacts" / "reliability"
# Variables that could point a run at a real account; the run talks only to moto.
_DROPPED_PREFIXES: Final = ("AWS_ENDPOINT_URL",)
_DROPPED: Final = frozenset({"AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"})


def isolate(log: Path) -> None:
    """Dummy credentials and no endpoint override; Pillow's warnings off; this process's log lines into ``log``."""
    for name in list(os.environ):
        if name in _DROPPED or name.startswith(_DROPPED_PREFIXES):
            del os.environ[name]
    os.environ.update(DUMMY_CREDENTIALS)
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    # Hostile files make Pillow warn ("Corrupt EXIF data", "Tag data larger than file"): noise, not findings.
    warnings.filterwarnings("ignore", module=r"PIL(\..*)?")
    warnings.filterwarnings("ignore", message="No application metrics to publish", category=UserWarning)
    log.parent.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(
        filename=log, level=logging.INFO, format="%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("botocore").setLevel(logging.WARNING)


def stderr_to(log: Path) -> None:
    """What C libraries print on file descriptor 2 (libtiff's "Not enough data at scanline") goes to ``log``: for
    the processes that decode hostile files, whose own errors are verdicts, not output."""
    descriptor = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(descriptor, 2)
    os.close(descriptor)


def reset_peak_rss() -> None:
    """Start this process's peak resident size (VmHWM) again from its current size (Linux's clear_refs 5)."""
    Path("/proc/self/clear_refs").write_text("5")


def peak_rss_mb() -> int:
    """This process's peak resident size since it started or since ``reset_peak_rss``."""
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) // 1024 for line in status if line.startswith("VmHWM:"))


def percentile(values: list[float], share: float) -> float:
    """The nearest-rank percentile (``share`` 0.5 for the median) of a non-empty list."""
    ordered = sorted(values)
    return ordered[max(1, math.ceil(share * len(ordered))) - 1]


@dataclass
class Report:
    """One part's figures (``lines``) and what it found wrong (``problems``: a run passes with none)."""

    title: str
    lines: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.problems
