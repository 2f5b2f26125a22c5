"""The optimized WebP against the optimized JPEG at equal quality (issue 8's last target); with the width ladder
(issue 12), the widest ladder rung, which has today's optimized copy's size.

The stored pair differ in quality as well as in size (WebP q80 is not JPEG q82), so a size ratio alone says little.
For each photo this finds the lowest WebP quality whose PSNR, and separately whose SSIM, reaches the stored JPEG's,
re-encoding the very pixels the project hands its WebP encoder with the project's own encoder function, and
reports the bytes there. `measure` runs in benchmark children (`mode: equal_quality`), nothing of it timed;
`summarise` runs in bench.cli, which must stay free of the imaging imports (its children's memory is measured).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from PIL import Image

    from pipeline import imaging
    from pipeline.config import ImagingSettings

METRICS = ("psnr_db", "ssim")
# A JPEG kept at its own size is re-encoded on its own 8x8 grid: JPEG re-quantises the source's blocks and lands
# close to the decoded source (which is the reference), an advantage no other codec has. Reported apart.
JPEG_AT_SOURCE_SIZE = "JPEG at source size"
RESIZED_OR_CONVERTED = "resized or not JPEG"
# The upload's own JPEG data kept as the optimized JPEG (pipeline.jpeg_copy): the reference's exact pixels,
# which no lossy WebP reaches.
JPEG_COPIED = "JPEG kept as uploaded"
GROUPS = (RESIZED_OR_CONVERTED, JPEG_AT_SOURCE_SIZE, JPEG_COPIED)
_STEP = 5  # quality steps while bracketing; then bisection inside the bracket


def measure(photo: Path, settings: ImagingSettings) -> dict[str, Any]:
    from bench import quality
    from pipeline import jpeg_copy
    from pipeline.imaging import encode

    source = photo.read_bytes()
    picture, processed = _render_capturing_webp_input(source, settings)
    # The widest ladder rung (today's optimized copy's size) comes first, JPEG then WebP.
    widest = [r for r in processed.renditions if r.name == "optimized" and r.width == processed.plan.top.width]
    stored = {r.format: r.data for r in widest}
    jpeg = stored["jpeg"]
    # Where the pipeline makes no WebP of the widest rung (it cannot pay there), measure the one it would make.
    webp = stored.get("webp") or encode.encode("optimized", "webp", picture, settings).data
    target = quality.score(photo, jpeg)
    encodes: dict[int, dict[str, Any]] = {}

    def webp_at(webp_quality: int) -> dict[str, Any]:
        if webp_quality not in encodes:
            data = encode.encode(
                "optimized", "webp", picture, dataclasses.replace(settings, webp_quality=webp_quality)
            ).data
            encodes[webp_quality] = {"quality": webp_quality, "bytes": len(data), **_figures(photo, data)}
        return encodes[webp_quality]

    facts = processed.facts
    if jpeg == jpeg_copy.strip_metadata(source):
        group, jpeg_quality = JPEG_COPIED, None  # the upload's own data: no quality setting made it
    elif facts.format in ("JPEG", "MPO") and picture.size == (facts.width, facts.height):
        group, jpeg_quality = JPEG_AT_SOURCE_SIZE, settings.jpeg_quality
    else:
        group, jpeg_quality = RESIZED_OR_CONVERTED, settings.jpeg_quality
    result: dict[str, Any] = {
        "group": group,
        "jpeg": {"quality": jpeg_quality, "bytes": len(jpeg), **dataclasses.asdict(target)},
        "webp_stored": {
            "quality": settings.webp_quality,
            "bytes": len(webp),
            "made": "webp" in stored,
            **_figures(photo, webp),
        },
    }
    for metric in METRICS:
        goal = getattr(target, metric)
        if goal is None:  # too small for SSIM
            result[f"webp_at_equal_{metric}"] = None
            continue
        lowest = lowest_passing(lambda q, metric=metric, goal=goal: webp_at(q)[metric] >= goal, settings.webp_quality)
        # Where no WebP quality reaches the JPEG, q100 is reported (and flagged), so totals are never flattered.
        result[f"webp_at_equal_{metric}"] = {**webp_at(lowest or 100), "reached": lowest is not None}
    return result


def _figures(photo: Path, data: bytes) -> dict[str, float | None]:
    from bench import quality

    return dataclasses.asdict(quality.score(photo, data))


def lowest_passing(passes: Callable[[int], bool], start: int) -> int | None:
    """The lowest quality in 1..100 for which `passes` holds, assuming it holds from some quality upwards;
    None if even 100 does not. Brackets from `start` in steps of _STEP, then bisects."""
    if passes(start):
        low, high = start, start  # `high` passes; search below
        while low > 1:
            low = max(1, low - _STEP)
            if not passes(low):
                break
            high = low
        else:
            return 1
    else:
        low, high = start, start
        while True:
            if high == 100:
                return None
            low, high = high, min(100, high + _STEP)
            if passes(high):
                break
    # Invariant: `low` fails, `high` passes.
    while high - low > 1:
        middle = (low + high) // 2
        if passes(middle):
            high = middle
        else:
            low = middle
    return high


def _render_capturing_webp_input(
    source: bytes, settings: ImagingSettings
) -> tuple[Image.Image, imaging.ProcessedImage]:
    """process_image as the processor calls it, keeping the picture it passes to the widest rung's WebP encoder."""
    from pipeline import imaging
    from pipeline.imaging import encode as encode_module

    captured: dict[str, list[Image.Image]] = {"webp": [], "jpeg": []}
    encode = encode_module.encode

    def spy(name, fmt, picture, settings):
        if name == "optimized" and fmt in captured:
            captured[fmt].append(picture)
        return encode(name, fmt, picture, settings)

    encode_module.encode = spy  # type: ignore[assignment]
    try:
        processed = imaging.process_image(source, settings)
    finally:
        encode_module.encode = encode  # type: ignore[assignment]
    # The encodes run in threads, in any order. The widest rung gets no WebP where WebP cannot pay (a JPEG at its
    # own size, a rung above WEBP_MAX_WIDTH): then the search runs on the pixels its JPEG encoder got.
    candidates = captured["webp"] + captured["jpeg"]
    widest_width = max(picture.width for picture in candidates)
    widest = next(picture for picture in candidates if picture.width == widest_width)
    return widest, processed


def summarise(per_photo: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """`_totals` over all photos, then over each group that has photos (a list: the order survives JSON)."""
    summary = [{"group": "all photos", **_totals(per_photo)}]
    for group in GROUPS:
        members = {name: p for name, p in per_photo.items() if p["group"] == group}
        if members:
            summary.append({"group": group, **_totals(members)})
    return summary


def _totals(per_photo: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Totals over the photos: bytes, saving against the JPEG and mean figures of the stored WebP and of each
    equal-quality WebP (the JPEG's own figures alongside)."""
    summary: dict[str, Any] = {"photos": len(per_photo)}
    for key in ("jpeg", "webp_stored", *(f"webp_at_equal_{m}" for m in METRICS)):
        photos = [p for p in per_photo.values() if p.get(key)]
        if not photos:
            summary[key] = None
            continue
        rows = [p[key] for p in photos]
        qualities = sorted(r["quality"] for r in rows if r["quality"] is not None)
        summary[key] = {
            "bytes": sum(r["bytes"] for r in rows),
            "saving_vs_jpeg": 1 - sum(r["bytes"] for r in rows) / sum(p["jpeg"]["bytes"] for p in photos),
            "median_quality": qualities[len(qualities) // 2] if qualities else None,
            "psnr_db": sum(r["psnr_db"] for r in rows) / len(rows),
            "ssim": _mean([r["ssim"] for r in rows]),
            "photos": len(rows),
            "not_reached": sum(1 for r in rows if r.get("reached") is False),
        }
    return summary


def _mean(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return sum(present) / len(present) if present else None
