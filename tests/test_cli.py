"""`python -m pipeline`: the same imaging on local files, run as a user would, in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from conftest import HOSTILE, PHOTOS, ROOT
from PIL import Image


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pipeline", *args],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )


def lines(completed: subprocess.CompletedProcess[str]) -> list[dict]:
    return [json.loads(line) for line in completed.stdout.splitlines()]


def test_processes_files_into_thumbs_and_optimized_folders(tmp_path):
    completed = run(str(PHOTOS / "DSCN0010.jpg"), str(PHOTOS / "Canon_40D.jpg"), "--out", str(tmp_path))

    assert completed.returncode == 0, completed.stderr
    first, second = lines(completed)
    assert first["file"].endswith("DSCN0010.jpg")
    assert first["facts"]["format"] == "JPEG"
    assert first["facts"]["width"] == 640
    assert {(r["name"], r["width"], r["height"]) for r in first["renditions"]} == {
        ("optimized", 640, 480),
        ("optimized", 480, 360),
        ("optimized", 320, 240),
        ("thumb", 640, 480),
        ("thumb", 560, 420),
        ("thumb", 384, 288),
        ("thumb", 256, 192),
    }
    assert len(first["renditions"]) == 13  # each as JPEG and WebP, but no WebP of the JPEG at its own size
    for name in ("optimized/DSCN0010-640.jpg", "optimized/DSCN0010-320.webp", "thumbs/DSCN0010-560x420.jpg"):
        written = tmp_path / name
        reported = next(r for r in first["renditions"] if r["path"] == str(written))
        assert written.stat().st_size == reported["bytes"]
    with Image.open(tmp_path / "optimized" / "Canon_40D-100.jpg") as smallest:
        assert smallest.size == (100, 68) == (second["facts"]["width"], second["facts"]["height"])


def test_a_rejected_input_is_reported_and_fails_the_run(tmp_path):
    completed = run(str(HOSTILE / "made-svg-script.jpg"), str(PHOTOS / "Canon_40D.jpg"), "--out", str(tmp_path))

    assert completed.returncode == 1
    rejected, processed = lines(completed)
    assert rejected == {"file": str(HOSTILE / "made-svg-script.jpg"), "error": "unsupported format: SVG"}
    assert "facts" in processed
    assert not list(tmp_path.glob("*/made-svg-script*"))


def test_format_comes_from_the_content_not_the_file_name(tmp_path):
    misnamed = tmp_path / "in" / "really-a-png.jpg"
    misnamed.parent.mkdir()
    Image.new("RGB", (20, 10), (0, 128, 255)).save(misnamed, "PNG")

    completed = run(str(misnamed.parent), "--out", str(tmp_path / "out"))

    assert completed.returncode == 0, completed.stderr
    (report,) = lines(completed)
    assert (report["facts"]["format"], report["facts"]["mime"]) == ("PNG", "image/png")


def test_sizes_come_from_the_environment(tmp_path):
    completed = run(str(PHOTOS / "DSCN0021.jpg"), "--out", str(tmp_path), env={"TILE_WIDTHS": "64, 128"})

    assert completed.returncode == 0, completed.stderr
    assert sorted(path.name for path in (tmp_path / "thumbs").iterdir()) == [
        "DSCN0021-128x96.jpg",
        "DSCN0021-128x96.webp",
        "DSCN0021-64x48.jpg",
        "DSCN0021-64x48.webp",
    ]


def test_usage_errors_exit_with_status_2(tmp_path):
    assert run(str(PHOTOS / "Canon_40D.jpg")).returncode == 2  # no --out
    missing = run(str(tmp_path / "nope.jpg"), "--out", str(tmp_path))
    assert missing.returncode == 2
    assert "no such file or folder" in missing.stderr
    bad_setting = run(str(PHOTOS / "Canon_40D.jpg"), "--out", str(tmp_path), env={"THUMB_SIZE": "big"})
    assert bad_setting.returncode == 2
    assert "THUMB_SIZE must be a whole number" in bad_setting.stderr


def test_a_jpeg_and_a_png_with_a_broken_colour_profile_become_renditions(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    for fmt, name in (("JPEG", "broken-icc.jpg"), ("PNG", "broken-icc.png")):
        Image.new("RGB", (80, 60), (10, 120, 200)).save(folder / name, fmt, icc_profile=b"garbage" * 50)

    completed = run(str(folder), "--out", str(tmp_path / "out"))

    assert completed.returncode == 0, completed.stderr
    reports = lines(completed)
    assert len(reports) == 2
    for report in reports:
        assert "unreadable colour profile ignored" in report["facts"]["notes"]
        assert report["renditions"]
    assert "Traceback" not in completed.stderr
