"""Seeded mutations of corpus files: every one gets a verdict, renditions or a refusal with a reason, through the
imaging and the CLI as a subprocess; never a traceback. `make reliability`'s sample is tests/test_reliability.py."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import HOSTILE, PHOTOS, ROOT

from pipeline.config import ImagingSettings
from pipeline.imaging import ImageRejected, ProcessedImage, process_image
from reliability.mutations import mutations

SMALL_SOURCES = sorted(
    p for p in [*PHOTOS.iterdir(), *HOSTILE.iterdir()] if p.suffix != ".md" and 0 < p.stat().st_size < 600_000
)


def test_the_same_seed_gives_the_same_mutations():
    first = [(m.name, m.data) for m in mutations(SMALL_SOURCES, 20, seed=7)]
    again = [(m.name, m.data) for m in mutations(SMALL_SOURCES, 20, seed=7)]

    assert first == again
    assert len({name.rsplit(":", 1)[1] for name, _ in first}) >= 3  # several kinds of damage


@pytest.mark.parametrize("mutation", list(mutations(SMALL_SOURCES, 60, seed=12)), ids=lambda m: m.name)
def test_a_mutated_file_becomes_renditions_or_a_refusal_with_a_reason(mutation):
    try:
        result: ProcessedImage | ImageRejected = process_image(mutation.data, ImagingSettings())
    except ImageRejected as refused:
        result = refused
    if isinstance(result, ImageRejected):
        assert result.reason
        assert "internal" not in result.reason
    else:
        assert result.renditions


def test_every_mutation_given_to_the_cli_gets_a_verdict_line(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    for number, mutation in enumerate(mutations(SMALL_SOURCES, 30, seed=99)):
        (folder / f"m{number:03d}.bin").write_bytes(mutation.data)

    completed = subprocess.run(
        [sys.executable, "-m", "pipeline", str(folder), "--out", str(tmp_path / "out")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )

    verdicts = [json.loads(line) for line in completed.stdout.splitlines()]
    assert len(verdicts) == 30
    assert all(("facts" in verdict) != ("error" in verdict) for verdict in verdicts)
    assert "Traceback" not in completed.stderr
    assert completed.returncode in (0, 1)
