"""What every strategy returns, and the one geometry rule the baselines share with the pipeline's settings."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib import import_module

from pipeline.config import ImagingSettings

# Identical pixels have infinite PSNR; bench.quality caps it so averages stay finite and tables readable.
PSNR_CAP_DB = 100.0
# Today's four renditions (and the baselines'), in report order; the placeholder is measured but not compared.
# The project's ladder (issue 12) stores more: its widest rung is named "optimized.<format>" (the same size as
# today's optimized copy), its other rungs "optimized-<width>.<format>" and its tiles "thumb-<width>.<format>"
# ("thumb-max" for a widest tile narrower than the widest TILE_WIDTHS step). Every output but the placeholder
# is stored.
STORED = ("thumb.jpeg", "thumb.webp", "optimized.jpeg", "optimized.webp")
PLACEHOLDER = "placeholder"


@dataclass(frozen=True)
class Output:
    """One encoded output of a strategy: `name` is "<rendition>.<format>", e.g. "thumb.webp"."""

    name: str
    width: int
    height: int
    data: bytes
    # Tiles: the reference is the photo's centred crop of this aspect (width, height), resized to the output.
    crop_aspect: tuple[int, int] | None = None


Strategy = Callable[[bytes, ImagingSettings], list[Output]]

# Each strategy lives in its own module so that its subprocess imports only what it needs
# (a libvips run must not pay for, or measure, Pillow's plugins it never uses, and vice versa).
STRATEGIES: dict[str, str] = {
    "project": "bench.project:render",
    "naive": "bench.naive:render",
    "libvips": "bench.vips:render",
    # Today's two renditions (pipeline/imaging.py before issue 12, read from git): the ladder's baseline.
    "today": "bench.legacy:render",
}
# Prototypes for pipeline/imaging.py (bench/experiments.py): run only when named with --strategies.
EXPERIMENTS: dict[str, str] = {
    "project-webp-m1": "bench.experiments:render_webp_method_1",
    "project-webp-q90": "bench.experiments:render_webp_quality_90",
    "project-serial": "bench.experiments:render_serial",
    "project-vips-webp": "bench.experiments:render_webp_through_libvips",
    "libvips-effort2": "bench.vips:render_webp_effort_2",
    "libvips-effort1": "bench.vips:render_webp_effort_1",
    "project-direct": "bench.experiments:render_direct",
    "project-avif": "bench.experiments:render_avif",
}


def load_strategy(name: str) -> Strategy:
    target = {**STRATEGIES, **EXPERIMENTS}.get(name)
    if target is None:
        raise KeyError(f"unknown strategy {name!r}; known: {', '.join({**STRATEGIES, **EXPERIMENTS})}")
    module, _, function = target.partition(":")
    return getattr(import_module(module), function)


def fit_within(width: int, height: int, box: int) -> tuple[int, int]:
    """The size that fits `width`x`height` in a `box`x`box` square, never upscaled."""
    longest = max(width, height)
    if longest <= box:
        return width, height
    scale = box / longest
    return max(1, round(width * scale)), max(1, round(height * scale))


def rung_name(family: str, width: int, *, widest: bool, steps: tuple[int, ...]) -> str:
    """The output name (without format) of one of the project's rungs; see STORED."""
    if family == "optimized" and widest:
        return "optimized"
    return f"{family}-{width}" if width in steps else f"{family}-max"


def rung_order(name: str) -> tuple[int, int, str]:
    """Report order: the ladder, then the tiles, each widest first, JPEG before WebP."""
    stem, _, fmt = name.partition(".")
    family, _, label = stem.partition("-")
    width = 10**6 if label in ("", "max") else int(label)
    return ((0 if family == "optimized" else 1), -width, fmt)
