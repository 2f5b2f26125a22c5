"""Issue 12's encoder questions, measured on the corpus independently of the imaging code.

    python -m bench.ladder_experiments webp      # WebP quality at equal SSIM with JPEG q82, per ladder width
    python -m bench.ladder_experiments avif      # AVIF (libavif/aom) at equal SSIM: bytes and CPU, speeds 6 and 8
    python -m bench.ladder_experiments cascade   # each rung resized from the previous rung vs from the full image
    python -m bench.ladder_experiments all --json /tmp/ladder.json

Every photo is decoded as bench.quality's reference is (full decode, upright, alpha on white, sRGB) and resized
with one LANCZOS from the full image: that resize *is* the reference at that size, so an encode's SSIM (luma,
bench.quality.ssim_luma) measures the encoder alone. JPEG is encoded as pipeline/imaging.py's `_encode` does
(q82, optimize, 4:2:0), WebP with method 1. Photos are spread over a process pool (`--workers`, default 2);
CPU seconds are `time.process_time` in the worker, one thread per encode, so two workers on the two
hyper-threads of one core make every figure somewhat slower than on an idle machine, but alike for all
encoders compared in one run. Nothing here is used by `make bench`; the findings are in docs/performance.md.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from bench.cli import DEFAULT_PHOTOS, PHOTO_SUFFIXES
from pipeline.config import ImagingSettings

WEBP_WIDTHS = (480, 960, 1280, 1920)
WEBP_QUALITIES = tuple(range(60, 101))  # every quality: the equal-SSIM one and any fixed one are read off the sweep
AVIF_WIDTHS = (1920, 960)
AVIF_SPEEDS = (6, 8)
JPEG_QUALITY = 82
WEBP_METHOD = 1
BOX = 1920  # ImagingSettings.optimized_size: no rendition's long side exceeds it
LADDER_WIDTHS = ImagingSettings.ladder_widths
TILE_WIDTHS = ImagingSettings.tile_widths
TILE_ASPECT = (4, 3)
MERGE = 0.10  # rungs within 10 % of each other are one rung
REDUCING_GAP = 2.0  # as pipeline/imaging.py resizes


# --- geometry ------------------------------------------------------------------------------------------------------


def resized_size(size: tuple[int, int], width: int, box: int = BOX) -> tuple[int, int] | None:
    """`size` scaled to `width`, then down until its long side fits `box`; None when that is not a reduction."""
    source_width, source_height = size
    target = (width, max(1, round(source_height * width / source_width)))
    if max(target) > box:
        scale = box / max(target)
        target = (max(1, round(target[0] * scale)), max(1, round(target[1] * scale)))
    return target if target[0] < source_width else None


def ladder_sizes(size: tuple[int, int], widths: Iterable[int] = LADDER_WIDTHS, box: int = BOX) -> list[tuple[int, int]]:
    """Issue 12's uncropped ladder as this module reads it, largest first: each width clamped so the long side
    fits `box` and never past the source; a rung within MERGE of a larger kept rung is dropped."""
    source_width, source_height = size
    candidates = set()
    for width in widths:
        width = min(width, source_width)
        height = max(1, round(source_height * width / source_width))
        if max(width, height) > box:
            scale = box / max(width, height)
            width, height = max(1, round(width * scale)), max(1, round(height * scale))
        candidates.add((width, height))
    kept: list[tuple[int, int]] = []
    for candidate in sorted(candidates, reverse=True):
        if not kept or candidate[0] < kept[-1][0] * (1 - MERGE):
            kept.append(candidate)
    return kept


def tile_crop(size: tuple[int, int], aspect: tuple[int, int] = TILE_ASPECT) -> tuple[float, float, float, float]:
    """The centred crop of `aspect` in `size` (float box, as Pillow's resize takes it)."""
    width, height = size
    if width * aspect[1] > height * aspect[0]:  # wider than the tile: cut the sides
        crop_width = height * aspect[0] / aspect[1]
        return ((width - crop_width) / 2, 0.0, (width + crop_width) / 2, float(height))
    crop_height = width * aspect[1] / aspect[0]
    return (0.0, (height - crop_height) / 2, float(width), (height + crop_height) / 2)


def tile_sizes(size: tuple[int, int], widths: Iterable[int] = TILE_WIDTHS) -> list[tuple[int, int]]:
    """Tiles of TILE_ASPECT, largest first, as pipeline/imaging/plan.py plans them: never wider than the crop of
    the widest ladder rung (tiles are cut from ladder rungs), nor than the widest tile; rungs within MERGE merged."""
    left, _top, right, _bottom = tile_crop(ladder_sizes(size)[0])
    top = min(int(right - left), max(widths))
    kept = [top]
    for width in sorted(widths, reverse=True):
        if width < top and width * (1 + MERGE) <= kept[-1]:
            kept.append(width)
    return [(width, max(1, round(width * TILE_ASPECT[1] / TILE_ASPECT[0]))) for width in kept]


def cut_tile(ladder: list[Any], size: tuple[int, int], min_ratio: float = 1.0) -> Any:
    """A tile cut from the narrowest ladder rung (widest first in `ladder`) whose crop is at least `min_ratio` times
    the tile's width, else from the widest rung. `min_ratio` 1 is what pipeline/imaging/process.py does."""
    from PIL import Image

    for rung in reversed(ladder):
        box = tile_crop(rung.size)
        if box[2] - box[0] >= size[0] * min_ratio - 0.5:
            return rung.resize(size, Image.Resampling.LANCZOS, box=box, reducing_gap=REDUCING_GAP)
    return ladder[0].resize(size, Image.Resampling.LANCZOS, box=tile_crop(ladder[0].size), reducing_gap=REDUCING_GAP)


# --- encoders ------------------------------------------------------------------------------------------------------


def encode(image: Any, fmt: str, quality: int, speed: int = 6) -> tuple[bytes, float]:
    """(encoded bytes, CPU seconds of the encode alone)."""
    buffer = io.BytesIO()
    start = time.process_time()
    if fmt == "JPEG":
        image.save(buffer, "JPEG", quality=quality, optimize=True, subsampling="4:2:0")
    elif fmt == "WEBP":
        image.save(buffer, "WEBP", quality=quality, method=WEBP_METHOD)
    elif fmt == "AVIF":
        image.save(buffer, "AVIF", quality=quality, speed=speed, max_threads=1)
    else:
        raise ValueError(fmt)
    return buffer.getvalue(), time.process_time() - start


def ssim_of(reference_luma: Any, data: bytes) -> float:
    from PIL import Image

    from bench import quality

    with Image.open(io.BytesIO(data)) as decoded:
        return quality.ssim_luma(reference_luma, quality.luma(decoded))


def _decode(photo: Path):
    from PIL import Image

    from bench import quality

    full = quality.upright_rgb(photo)
    return full, lambda size, box=None: full.resize(size, Image.Resampling.LANCZOS, box=box)


# --- 1. WebP at equal SSIM -----------------------------------------------------------------------------------------


def webp_photo(photo: Path) -> list[dict[str, Any]]:
    from bench import quality

    full, resize = _decode(photo)
    rows = []
    for width in WEBP_WIDTHS:
        size = resized_size(full.size, width)
        if size is None:
            continue
        picture = resize(size)
        reference = quality.luma(picture)
        jpeg, _ = encode(picture, "JPEG", JPEG_QUALITY)
        jpeg_ssim = ssim_of(reference, jpeg)
        sweep = {}
        for webp_quality in WEBP_QUALITIES:
            data, _ = encode(picture, "WEBP", webp_quality)
            sweep[webp_quality] = {"bytes": len(data), "ssim": ssim_of(reference, data)}
        reaching = [q for q, r in sweep.items() if r["ssim"] >= jpeg_ssim]
        rows.append(
            {
                "photo": photo.name,
                "rung": width,
                "size": size,
                "jpeg": {"bytes": len(jpeg), "ssim": jpeg_ssim},
                "equal_ssim_quality": min(reaching) if reaching else None,
                "webp": sweep,
            }
        )
    return rows


def webp_report(rows: list[dict[str, Any]]) -> tuple[list[str], dict[str, Any]]:
    lines = [
        f"WebP (method {WEBP_METHOD}) at equal luma SSIM with JPEG q{JPEG_QUALITY} (optimize, 4:2:0): the lowest WebP",
        f"quality whose SSIM reaches the JPEG's, per (photo, rung); qualities {WEBP_QUALITIES[0]}-{WEBP_QUALITIES[-1]}"
        f" swept, a pair none reaches counts at q100 and is flagged !; saving = 1 - WebP bytes / JPEG bytes",
    ]
    table = []
    for width in (*WEBP_WIDTHS, None):
        pairs = [r for r in rows if width is None or r["rung"] == width]
        if not pairs:
            continue
        qualities = [r["equal_ssim_quality"] or 100 for r in pairs]
        webp = [r["webp"][r["equal_ssim_quality"] or 100]["bytes"] for r in pairs]
        jpeg = [r["jpeg"]["bytes"] for r in pairs]
        unreached = sum(1 for r in pairs if r["equal_ssim_quality"] is None)
        table.append(
            [
                "all" if width is None else str(width),
                str(len(pairs)),
                f"{statistics.median(qualities):g}" + (f" {unreached}!" if unreached else ""),
                f"{statistics.median(jpeg):,.0f}",
                f"{statistics.median(webp):,.0f}",
                f"{statistics.median(1 - w / j for w, j in zip(webp, jpeg, strict=True)):+.1%}",
                f"{sum(jpeg):,}",
                f"{sum(webp):,}",
                f"{1 - sum(webp) / sum(jpeg):+.1%}",
            ]
        )
    lines += _table(
        [
            "rung",
            "pairs",
            "equal-SSIM q (median)",
            "JPEG median B",
            "WebP median B",
            "median saving",
            "JPEG total B",
            "WebP total B",
            "total saving",
        ],
        table,
    )
    lines += [
        "",
        "One WEBP_QUALITY for every rung: share of (photo, rung) pairs where WebP's SSIM >= the JPEG's, where WebP is",
        "smaller than the JPEG, and where both hold (where the product would offer WebP); bytes over all pairs",
    ]
    fixed = []
    by_quality: dict[int, dict[str, float]] = {}
    for webp_quality in range(76, 101, 2):
        reach = [r["webp"][webp_quality]["ssim"] >= r["jpeg"]["ssim"] for r in rows]
        smaller = [r["webp"][webp_quality]["bytes"] < r["jpeg"]["bytes"] for r in rows]
        both = [a and b for a, b in zip(reach, smaller, strict=True)]
        total = 1 - sum(r["webp"][webp_quality]["bytes"] for r in rows) / sum(r["jpeg"]["bytes"] for r in rows)
        by_quality[webp_quality] = {
            "reach": sum(reach) / len(rows),
            "smaller": sum(smaller) / len(rows),
            "both": sum(both) / len(rows),
            "total_saving": total,
        }
        per_rung = " ".join(
            f"{width}:{_share([r for r in rows if r['rung'] == width], webp_quality):.0%}"
            for width in WEBP_WIDTHS
            if any(r["rung"] == width for r in rows)
        )
        fixed.append(
            [
                f"q{webp_quality}",
                f"{sum(reach) / len(rows):.0%}",
                per_rung,
                f"{sum(smaller) / len(rows):.0%}",
                f"{sum(both) / len(rows):.0%}",
                f"{total:+.1%}",
            ]
        )
    lines += _table(
        ["WebP", "SSIM >= JPEG", "by rung", "smaller than JPEG", "both", "total saving"],
        fixed,
    )
    # "Most rungs": the lowest quality at which WebP reaches the JPEG's SSIM on more than half of the pairs.
    most = next((q for q in WEBP_QUALITIES if _share(rows, q) > 0.5), None)
    if most is not None:
        smaller = sum(1 for r in rows if r["webp"][most]["bytes"] < r["jpeg"]["bytes"]) / len(rows)
        both = sum(
            1
            for r in rows
            if r["webp"][most]["bytes"] < r["jpeg"]["bytes"] and r["webp"][most]["ssim"] >= r["jpeg"]["ssim"]
        ) / len(rows)
        lines.append(
            f"  lowest quality with WebP's SSIM >= JPEG's on most pairs: q{most} ({_share(rows, most):.0%} of "
            f"{len(rows)} pairs); there WebP is smaller on {smaller:.0%} of pairs (smaller and >= SSIM on {both:.0%})"
        )
    return lines, {"pairs": rows, "fixed_quality": by_quality, "most_pairs_quality": most}


def _share(rows: list[dict[str, Any]], webp_quality: int) -> float:
    return sum(1 for r in rows if r["webp"][webp_quality]["ssim"] >= r["jpeg"]["ssim"]) / max(1, len(rows))


# --- 2. AVIF ---------------------------------------------------------------------------------------------------------


def avif_photo(photo: Path) -> dict[str, Any]:
    from bench import quality
    from bench.equal_quality import lowest_passing

    full, resize = _decode(photo)
    rungs = []
    for width in AVIF_WIDTHS:
        size = resized_size(full.size, width)
        if size is None:
            continue
        picture = resize(size)
        reference = quality.luma(picture)
        jpeg, jpeg_cpu = encode(picture, "JPEG", JPEG_QUALITY)
        jpeg_ssim = ssim_of(reference, jpeg)
        _, webp_cpu = encode(picture, "WEBP", 80)
        rung: dict[str, Any] = {
            "rung": width,
            "size": size,
            "jpeg": {"bytes": len(jpeg), "ssim": jpeg_ssim, "cpu": jpeg_cpu},
            "webp_q80_cpu": webp_cpu,
        }
        for speed in AVIF_SPEEDS:
            tried: dict[int, dict[str, float]] = {}

            def at(
                avif_quality: int,
                speed: int = speed,
                tried: dict = tried,
                picture: Any = picture,
                reference: Any = reference,
            ) -> dict[str, float]:
                if avif_quality not in tried:
                    data, cpu = encode(picture, "AVIF", avif_quality, speed)
                    tried[avif_quality] = {"bytes": len(data), "ssim": ssim_of(reference, data), "cpu": cpu}
                return tried[avif_quality]

            lowest = lowest_passing(lambda q, at=at, goal=jpeg_ssim: at(q)["ssim"] >= goal, 60)
            rung[f"speed{speed}"] = {"quality": lowest, **at(lowest or 100), "reached": lowest is not None}
        rungs.append(rung)
    return {"photo": photo.name, "rungs": rungs}


def avif_ladder_cpu(job: tuple[Path, dict[int, int]]) -> dict[str, Any]:
    """CPU of one photo through naive Pillow (its two sizes, encodes and placeholder, single thread) and, on the
    same machine, of the whole issue-12 ladder (both families) encoded as JPEG + WebP, and as AVIF per speed."""
    from PIL import Image

    from bench import naive
    from pipeline.config import ImagingSettings

    photo, qualities = job
    source = photo.read_bytes()
    naive.render(source, ImagingSettings())  # warm-up: plugins, codec tables
    start = time.process_time()
    naive.render(source, ImagingSettings())
    naive_cpu = time.process_time() - start
    full, _ = _decode(photo)
    pictures = []
    previous = full
    for size in ladder_sizes(full.size):  # cascade, as the ladder will be made
        previous = previous.resize(size, Image.Resampling.LANCZOS, reducing_gap=REDUCING_GAP)
        pictures.append(previous)
    ladder = list(pictures)
    pictures += [cut_tile(ladder, size) for size in tile_sizes(full.size)]
    jpeg_webp = sum(encode(p, "JPEG", JPEG_QUALITY)[1] + encode(p, "WEBP", 80)[1] for p in pictures)
    avif = {speed: sum(encode(p, "AVIF", q, speed)[1] for p in pictures) for speed, q in qualities.items()}
    return {
        "photo": photo.name,
        "rungs": len(pictures),
        "naive_cpu": naive_cpu,
        "ladder_jpeg_webp_cpu": jpeg_webp,
        "ladder_avif_cpu": avif,
    }


def avif_report(photos: list[dict[str, Any]], ladder: list[dict[str, Any]], qualities: dict[int, int]):
    lines = [
        f"AVIF (libavif + aom, 4:2:0, one thread) at equal luma SSIM with JPEG q{JPEG_QUALITY}: the lowest quality",
        "whose SSIM reaches the JPEG's (bisection); saving = 1 - AVIF bytes / JPEG bytes; CPU = that one encode",
    ]
    table = []
    for width in AVIF_WIDTHS:
        rungs = [r for p in photos for r in p["rungs"] if r["rung"] == width]
        if not rungs:
            continue
        jpeg = [r["jpeg"]["bytes"] for r in rungs]
        table.append(
            [
                str(width),
                "JPEG q82",
                str(len(rungs)),
                "-",
                f"{statistics.median(jpeg):,.0f}",
                "",
                f"{sum(jpeg):,}",
                "",
                f"{statistics.fmean(r['jpeg']['cpu'] for r in rungs):.3f}",
            ]
        )
        table.append(
            ["", "WebP q80 m1", "", "", "", "", "", "", f"{statistics.fmean(r['webp_q80_cpu'] for r in rungs):.3f}"]
        )
        for speed in AVIF_SPEEDS:
            found = [r[f"speed{speed}"] for r in rungs]
            unreached = sum(1 for f in found if not f["reached"])
            avif = [f["bytes"] for f in found]
            table.append(
                [
                    "",
                    f"AVIF speed {speed}",
                    "",
                    f"{statistics.median(f['quality'] or 100 for f in found):g}"
                    + (f" {unreached}!" if unreached else ""),
                    f"{statistics.median(avif):,.0f}",
                    f"{statistics.median(1 - a / j for a, j in zip(avif, jpeg, strict=True)):+.1%}",
                    f"{sum(avif):,}",
                    f"{1 - sum(avif) / sum(jpeg):+.1%}",
                    f"{statistics.fmean(f['cpu'] for f in found):.3f}",
                ]
            )
    lines += _table(
        [
            "rung",
            "encoding",
            "pairs",
            "equal-SSIM q (median)",
            "median B",
            "median saving",
            "total B",
            "total saving",
            "CPU s/encode (mean)",
        ],
        table,
    )
    per_photo = {
        speed: statistics.fmean(sum(r[f"speed{speed}"]["cpu"] for r in p["rungs"]) for p in photos if p["rungs"])
        for speed in AVIF_SPEEDS
    }
    lines.append(
        "  AVIF CPU s per photo for its 1920 and 960 rungs only (mean over photos with a rung): "
        + ", ".join(f"speed {s} {c:.3f}" for s, c in per_photo.items())
    )
    summary: dict[str, Any] = {"per_photo_two_rungs_cpu": per_photo}
    if ladder:
        naive_cpu = statistics.fmean(r["naive_cpu"] for r in ladder)
        jpeg_webp = statistics.fmean(r["ladder_jpeg_webp_cpu"] for r in ladder)
        lines += [
            "",
            f"The whole ladder (both families, {statistics.fmean(r['rungs'] for r in ladder):.1f} rungs per photo "
            "on average) "
            f"over {len(ladder)} photos, CPU s per photo (mean), one thread:",
        ]
        rows = [
            ["naive Pillow: decode, 2 sizes, JPEG + WebP, placeholder (the budget)", f"{naive_cpu:.3f}"],
            ["ladder: JPEG q82 + WebP q80 encodes only", f"{jpeg_webp:.3f}"],
        ]
        for speed, avif_quality in qualities.items():
            avif = statistics.fmean(r["ladder_avif_cpu"][speed] for r in ladder)
            rows.append([f"ladder: AVIF encodes only, speed {speed} q{avif_quality}", f"{avif:.3f}"])
            summary[f"ladder_avif_speed{speed}_cpu"] = avif
        lines += _table(["what", "CPU s/photo"], rows)
        summary.update({"naive_cpu": naive_cpu, "ladder_jpeg_webp_cpu": jpeg_webp})
    return lines, {"photos": photos, "ladder": ladder, "summary": summary, "ladder_qualities": qualities}


# --- 3. cascade vs direct ------------------------------------------------------------------------------------------

# Where a cascade cuts each tile from: the narrowest ladder rung whose 4:3 crop is at least this many times the
# tile's width (1: the narrowest that covers it, as pipeline/imaging/process.py does).
TILE_SOURCE_RATIOS = (1.0, 1.5, 2.0)


def _cascade_label(ratio: float) -> str:
    return "cascade" if ratio == 1.0 else f"cascade, tiles >= {ratio:g}x"


def cascade_photo(photo: Path) -> dict[str, Any]:
    from PIL import Image

    from bench import quality

    full, reference_resize = _decode(photo)
    lanczos = Image.Resampling.LANCZOS
    families = {"optimized": (ladder_sizes(full.size), None), "thumb": (tile_sizes(full.size), tile_crop(full.size))}
    approaches = ["direct", *(_cascade_label(ratio) for ratio in TILE_SOURCE_RATIOS)]
    cpu = dict.fromkeys(approaches, 0.0)
    pictures: dict[str, dict[tuple[str, tuple[int, int]], Any]] = {approach: {} for approach in approaches}
    # Direct: every rung and tile from the full image.
    start = time.process_time()
    for family, (sizes, crop) in families.items():
        for size in sizes:
            pictures["direct"][family, size] = full.resize(size, lanczos, box=crop, reducing_gap=REDUCING_GAP)
    cpu["direct"] = time.process_time() - start
    # Cascade, as pipeline/imaging/process.py makes them: the widest ladder rung from the full image, every other
    # rung from the one above it, each tile cut from a ladder rung (see TILE_SOURCE_RATIOS).
    for ratio in TILE_SOURCE_RATIOS:
        approach = _cascade_label(ratio)
        start = time.process_time()
        ladder = [full]
        for size in families["optimized"][0]:
            ladder.append(ladder[-1].resize(size, lanczos, reducing_gap=REDUCING_GAP))
            pictures[approach]["optimized", size] = ladder[-1]
        for size in families["thumb"][0]:
            pictures[approach]["thumb", size] = cut_tile(ladder[1:], size, ratio)
        cpu[approach] = time.process_time() - start
    rungs = []
    for family, (sizes, crop) in families.items():
        for size in sizes:
            reference = quality.luma(reference_resize(size, crop))
            row: dict[str, Any] = {"family": family, "size": size}
            for approach in approaches:
                picture = pictures[approach][family, size]
                jpeg, _ = encode(picture, "JPEG", JPEG_QUALITY)
                row[approach] = {
                    "ssim": quality.ssim_luma(reference, quality.luma(picture)),
                    "jpeg_ssim": ssim_of(reference, jpeg),
                }
            rungs.append(row)
    return {"photo": photo.name, "size": full.size, "rungs": rungs, "cpu": cpu}


def cascade_report(photos: list[dict[str, Any]]) -> tuple[list[str], dict[str, Any]]:
    cascades = [_cascade_label(ratio) for ratio in TILE_SOURCE_RATIOS]
    lines = [
        "Cascade (each ladder rung from the one above it; each tile cut from the narrowest ladder rung whose 4:3 crop",
        "covers it, or is >= 1.5x / 2x its width) vs direct (every rung and tile from the full decode), all LANCZOS",
        "with reducing_gap=2.0. Luma SSIM against one plain LANCZOS of the full image to the rung's size (tiles: of",
        "its 4:3 centre crop): mean over photos of the pixels; worst drop = max over photos of direct - cascade,",
        "for the pixels and for their JPEG q82",
    ]
    rows = [r for p in photos for r in p["rungs"] if r["direct"]["ssim"] is not None]
    table = []
    for family in ("optimized", "thumb"):
        buckets: dict[str, list[dict[str, Any]]] = {}
        for r in rows:
            if r["family"] == family:
                buckets.setdefault(_bucket(family, r["size"][0]), []).append(r)
        for label, bucket in sorted(buckets.items(), key=lambda kv: -int(kv[0].split()[-1])):
            cells = [label, str(len(bucket)), f"{statistics.fmean(r['direct']['ssim'] for r in bucket):.4f}"]
            for approach in cascades if family == "thumb" else cascades[:1]:
                cells += [
                    f"{statistics.fmean(r[approach]['ssim'] for r in bucket):.4f}",
                    f"{max(r['direct']['ssim'] - r[approach]['ssim'] for r in bucket):+.4f}",
                    f"{max(r['direct']['jpeg_ssim'] - r[approach]['jpeg_ssim'] for r in bucket):+.4f}",
                ]
            table.append(cells + [""] * (3 + 3 * len(cascades) - len(cells)))
    header = ["rung", "n", "direct"]
    for approach in cascades:
        short = "cascade" if approach == "cascade" else approach.replace("cascade, tiles ", "tiles ")
        header += [short, "worst drop", "after JPEG"]
    lines += _table(header, table)
    lines.append(
        "  JPEG q82's own loss for scale: mean JPEG SSIM of the direct rungs "
        f"{statistics.fmean(r['direct']['jpeg_ssim'] for r in rows):.4f}"
    )
    photo_of = {id(r): p["photo"] for p in photos for r in p["rungs"]}
    summary: dict[str, Any] = {}
    for approach in cascades:
        worst = max(rows, key=lambda r, a=approach: r["direct"]["ssim"] - r[a]["ssim"])
        worst_jpeg = max(r["direct"]["jpeg_ssim"] - r[approach]["jpeg_ssim"] for r in rows)
        total = sum(p["cpu"][approach] for p in photos)
        summary[approach] = {"cpu": total, "worst_drop": worst["direct"]["ssim"] - worst[approach]["ssim"]}
        lines.append(
            f"  {approach}: worst pixel drop {worst['direct']['ssim'] - worst[approach]['ssim']:+.4f} "
            f"({photo_of[id(worst)]} {worst['family']} {worst['size'][0]}x{worst['size'][1]}), after JPEG "
            f"{worst_jpeg:+.4f}; mean drop "
            f"{statistics.fmean(r['direct']['ssim'] - r[approach]['ssim'] for r in rows):+.5f}; resize CPU "
            f"{total / len(photos) * 1000:.0f} ms/photo"
        )
    direct_cpu = sum(p["cpu"]["direct"] for p in photos)
    lines.append(f"  direct: resize CPU {direct_cpu / len(photos) * 1000:.0f} ms/photo (all from the full decode)")
    return lines, {"photos": photos, "direct_cpu": direct_cpu, "cascades": summary}


def _bucket(family: str, width: int) -> str:
    """Rungs clamped to a source's width are grouped with the nominal width they stand for."""
    nominal = LADDER_WIDTHS if family == "optimized" else TILE_WIDTHS
    below = [w for w in nominal if w <= width * (1 + MERGE)]
    label = max(below) if below else min(nominal)
    return f"{family} {label}"


# --- running -------------------------------------------------------------------------------------------------------


def _photos(folder: Path, names: list[str] | None) -> list[Path]:
    paths = (
        [folder / n for n in names]
        if names
        else sorted(p for p in folder.iterdir() if p.suffix.lower() in PHOTO_SUFFIXES)
    )
    # Largest first, so that the pool's last task is a small one.
    return sorted(paths, key=lambda p: -p.stat().st_size)


def _map(function: Callable, jobs: list, workers: int) -> list:
    with ProcessPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(function, jobs))


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    from bench.report import _table as table

    return table(header, rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ladder_experiments", description=__doc__.split("\n")[0])
    parser.add_argument("experiment", choices=("webp", "avif", "cascade", "all"))
    parser.add_argument("--photos", type=Path, default=DEFAULT_PHOTOS)
    parser.add_argument("--files", nargs="+", metavar="NAME", help="only these files from --photos")
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--json", metavar="FILE", help="write every measurement to FILE")
    args = parser.parse_args(argv)
    photos = _photos(args.photos, args.files)
    print(
        f"{len(photos)} photos from {args.photos}; {args.workers} worker processes; "
        f"load average before {os.getloadavg()[0]:.2f}",
        flush=True,
    )
    results: dict[str, Any] = {}
    for experiment in ("webp", "avif", "cascade") if args.experiment == "all" else (args.experiment,):
        start = time.perf_counter()
        if experiment == "webp":
            lines, results["webp"] = webp_report(
                [row for rows in _map(webp_photo, photos, args.workers) for row in rows]
            )
        elif experiment == "avif":
            measured = _map(avif_photo, photos, args.workers)
            qualities = {
                speed: round(
                    statistics.median(r[f"speed{speed}"]["quality"] or 100 for p in measured for r in p["rungs"])
                )
                for speed in AVIF_SPEEDS
            }
            ladder = _map(avif_ladder_cpu, [(p, qualities) for p in photos], args.workers)
            lines, results["avif"] = avif_report(measured, ladder, qualities)
        else:
            lines, results["cascade"] = cascade_report(_map(cascade_photo, photos, args.workers))
        print(
            "\n".join(
                ["", *lines, f"  ({time.perf_counter() - start:.0f} s wall, load average {os.getloadavg()[0]:.2f})"]
            ),
            flush=True,
        )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1, default=str))
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
