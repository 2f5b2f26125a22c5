"""`python -m bench.animation`: CPU, bytes and peak memory of animated uploads kept as animated WebP.

Inputs: the hostile corpus's four animations (GIF, WebP, APNG, AVIF sequence) and two made here from a corpus
photo, a 960x640 pan of 24 frames as GIF and as WebP (the corpus has no animation wider than 320 px). Each is run
through ``process_image`` as the processor runs it, with ANIMATION on and off: the difference is what keeping the
animation costs. ``--experiments`` also compares libwebp's options and the animated widths that decided
``ENCODER_OPTIONS`` and ``MAX_ANIMATED_WIDTH`` (docs/performance.md, "Animations").
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw

from pipeline.config import ImagingSettings
from pipeline.imaging import animation, process_image

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT.parent / "shared" / "corpus"
CORPUS_ANIMATIONS = ("chi.gif", "iss634.webp", "iss634.apng", "star.avifs")
PAN_SOURCE = CORPUS / "photos" / "Landscape_1.jpg"
PAN_SIZE = (960, 640)
PAN_FRAMES = 24


def made_pan(fmt: str) -> bytes:
    """A 960x640 window panning across a corpus photo, 24 frames of 80 ms: a screen-recording-like animation."""
    with Image.open(PAN_SOURCE) as photo:
        photo.draft("RGB", (PAN_SIZE[0] * 2, PAN_SIZE[1] * 2))
        wide = photo.convert("RGB")
    wide = wide.resize((PAN_SIZE[0] * 3 // 2, round(wide.height * PAN_SIZE[0] * 3 / 2 / wide.width)))
    step = (wide.width - PAN_SIZE[0]) // PAN_FRAMES
    frames = [wide.crop((i * step, 0, i * step + PAN_SIZE[0], PAN_SIZE[1])) for i in range(PAN_FRAMES)]
    if fmt == "GIF":
        frames = [frame.quantize(256) for frame in frames]
    buffer = io.BytesIO()
    options: dict[str, Any] = {"quality": 90} if fmt == "WEBP" else {}
    frames[0].save(buffer, fmt, save_all=True, append_images=frames[1:], duration=80, loop=0, **options)
    return buffer.getvalue()


def made_ball() -> bytes:
    """A red ball crossing a flat background, 12 frames of 80 ms: the cartoon-like case where lossy frames blended
    over the last canvas leave ghosts of where the ball was."""
    frames = []
    for index in range(12):
        frame = Image.new("RGB", (320, 200), (240, 240, 250))
        ImageDraw.Draw(frame).ellipse((10 + index * 22, 70, 60 + index * 22, 120), fill=(220, 40, 40))
        frames.append(frame)
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:], duration=80, loop=0)
    return buffer.getvalue()


def inputs() -> dict[str, bytes]:
    found = {name: (CORPUS / "hostile" / name).read_bytes() for name in CORPUS_ANIMATIONS}
    found["made-ball.gif"] = made_ball()
    found["made-pan-960.gif"] = made_pan("GIF")
    found["made-pan-960.webp"] = made_pan("WEBP")
    return found


def measure(source: bytes, settings: ImagingSettings, passes: int) -> dict[str, Any]:
    """Median CPU seconds (every thread) and wall seconds of ``process_image``, and what it made."""
    process_image(source, settings)  # warm-up
    cpu, wall = [], []
    for _ in range(passes):
        started, cpu_started = time.perf_counter(), time.process_time()
        processed = process_image(source, settings)
        cpu.append(time.process_time() - cpu_started)
        wall.append(time.perf_counter() - started)
    animated = [r for r in processed.renditions if r.name == "animated"]
    return {
        "cpu_s": round(statistics.median(cpu), 3),
        "wall_s": round(statistics.median(wall), 3),
        "still_bytes": sum(len(r.data) for r in processed.renditions if r.name != "animated"),
        "animated": [{"width": r.width, "height": r.height, "bytes": len(r.data)} for r in animated],
        "output_frames": [_frames(r.data) for r in animated],
        "frames": processed.facts.frames,
        "notes": list(processed.facts.notes),
    }


def peak_rss_mb(source: bytes, animate: bool) -> float:
    """Peak RSS (MB) of one ``process_image`` in a fresh process, above its RSS before it: Linux resets the peak
    (VmHWM) when 5 is written to /proc/self/clear_refs, so the imports' own high-water mark does not hide it."""
    code = (
        "import re, sys\n"
        "from pipeline.config import ImagingSettings\n"
        "from pipeline.imaging import process_image\n"
        "def status(name):\n"
        "    text = open('/proc/self/status').read()\n"
        "    return int(re.search(name + r':\\s+(\\d+) kB', text).group(1)) / 1024\n"
        "source = sys.stdin.buffer.read()\n"
        "open('/proc/self/clear_refs', 'w').write('5')\n"
        "before = status('VmRSS')\n"
        f"process_image(source, ImagingSettings(animation={animate!r}))\n"
        "print(status('VmHWM') - before)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, input=source, capture_output=True, check=True)
    return round(float(done.stdout.decode().strip()), 1)


def experiments(sources: dict[str, bytes], passes: int) -> list[dict[str, Any]]:
    """libwebp's options, and every ladder width up to 960 px, on each animation: CPU and bytes of the animated
    outputs alone (ANIMATION on minus off)."""
    variants: dict[str, Callable[[], Any]] = {
        "allow_mixed, + minimize_size when small (shipped)": lambda: _patched({}, animation.MAX_ANIMATED_WIDTH),
        "allow_mixed + minimize_size": lambda: _patched({"minimize_size": True}, animation.MAX_ANIMATED_WIDTH),
        "lossy, minimize_size": lambda: _patched(
            {"allow_mixed": False, "minimize_size": True}, animation.MAX_ANIMATED_WIDTH
        ),
        "lossy": lambda: _patched({"minimize_size": False, "allow_mixed": False}, animation.MAX_ANIMATED_WIDTH),
        "allow_mixed": lambda: _patched({"minimize_size": False}, animation.MAX_ANIMATED_WIDTH),
        "lossless": lambda: _patched(
            {"minimize_size": False, "allow_mixed": False, "lossless": True}, animation.MAX_ANIMATED_WIDTH
        ),
        "widths up to 960": lambda: _patched({}, 960),
        "widths up to 480": lambda: _patched({}, 480),
    }
    settings = ImagingSettings(max_animation_pixels=10**9)
    still = ImagingSettings(animation=False)
    rows = []
    for name, source in sources.items():
        base = measure(source, still, passes)["cpu_s"]
        for variant, patch in variants.items():
            with patch():
                got = measure(source, settings, passes)
            rows.append(
                {
                    "file": name,
                    "variant": variant,
                    "cpu_s": round(got["cpu_s"] - base, 3),
                    "widths": [a["width"] for a in got["animated"]],
                    "bytes": [a["bytes"] for a in got["animated"]],
                }
            )
    return rows


@contextmanager
def _patched(options: dict[str, object], max_width: int) -> Iterator[None]:
    saved = dict(animation.ENCODER_OPTIONS), animation.MAX_ANIMATED_WIDTH
    animation.ENCODER_OPTIONS.update(options)  # type: ignore[attr-defined]
    animation.MAX_ANIMATED_WIDTH = max_width  # type: ignore[misc]
    try:
        yield
    finally:
        animation.ENCODER_OPTIONS.clear()  # type: ignore[attr-defined]
        animation.ENCODER_OPTIONS.update(saved[0])  # type: ignore[attr-defined]
        animation.MAX_ANIMATED_WIDTH = saved[1]  # type: ignore[misc]


def _frames(data: bytes) -> int:
    with Image.open(io.BytesIO(data)) as image:
        return int(getattr(image, "n_frames", 1))


def render(results: dict[str, Any]) -> str:
    lines = [
        f"Animations ({results['command']}; {results['cpus']} CPUs, median of {results['passes']} passes)",
        "",
        "| file | bytes | frames | CPU s still only | CPU s with animation | animated WebP (width: bytes, frames) "
        "| still renditions bytes | peak RSS MB still / animated |",
        "| --- | ---: | ---: | ---: | ---: | --- | ---: | --- |",
    ]
    for name, row in results["files"].items():
        on, off = row["on"], row["off"]
        outputs = ", ".join(
            f"{a['width']}: {a['bytes']:,} B, {n}" for a, n in zip(on["animated"], on["output_frames"], strict=True)
        )
        rss = row.get("peak_rss_mb")
        lines.append(
            f"| {name} | {row['bytes']:,} | {on['frames']} | {off['cpu_s']:.3f} | {on['cpu_s']:.3f} "
            f"| {outputs or 'none: ' + '; '.join(on['notes'])} | {on['still_bytes']:,} "
            f"| {f'{rss[0]} / {rss[1]}' if rss else '-'} |"
        )
    if results.get("experiments"):
        lines += ["", "| file | variant | CPU s (animated only) | widths | bytes |", "| --- | --- | ---: | --- | --- |"]
        for row in results["experiments"]:
            lines.append(
                f"| {row['file']} | {row['variant']} | {row['cpu_s']:.3f} | {row['widths']} "
                f"| {', '.join(f'{b:,}' for b in row['bytes'])} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.animation", description=__doc__)
    parser.add_argument("--passes", type=int, default=3, help="timed passes after one warm-up; the median counts")
    parser.add_argument("--experiments", action="store_true", help="also compare encoder options and widths")
    parser.add_argument("--no-rss", action="store_true", help="skip the peak-memory runs (one process each)")
    parser.add_argument("--json", metavar="FILE", help="write every measurement to FILE")
    args = parser.parse_args(argv)
    sources = inputs()
    defaults = ImagingSettings()
    files = {}
    for name, source in sources.items():
        print(f"bench.animation: {name}", file=sys.stderr, flush=True)
        files[name] = {
            "bytes": len(source),
            "on": measure(source, defaults, args.passes),
            "off": measure(source, dataclasses.replace(defaults, animation=False), args.passes),
        }
        if not args.no_rss:
            files[name]["peak_rss_mb"] = [peak_rss_mb(source, False), peak_rss_mb(source, True)]
    results: dict[str, Any] = {
        "command": " ".join(["python -m bench.animation", *(sys.argv[1:] if argv is None else argv)]),
        "cpus": os.cpu_count(),
        "passes": args.passes,
        "files": files,
        "experiments": experiments(sources, args.passes) if args.experiments else None,
    }
    print(render(results))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
