"""Every output size, worked out from the header alone before a pixel is decoded (as Wagtail and imgproxy plan).

Two families of renditions:

* ``optimized``, the uncropped ladder: one rung per width of ``ladder_widths`` below the source's width, plus
  the source's own width (capped so the long side stays within ``optimized_size``). Never upscaled; rungs within
  10 % of a wider one are dropped, since a browser gains nothing from a choice that close.
* ``thumb``, the gallery's tiles: crops of ``tile_aspect`` (4:3), the largest centred box of that shape, at each
  of ``tile_widths`` that the box can fill without upscaling, plus the box's own width when it is narrower than
  the widest tile. A tile shows exactly what a CSS ``object-fit: cover`` box shows, with none of the pixels CSS
  would throw away.

Sizes are as displayed (after EXIF orientation). Rungs are ordered widest first, the order they are made in:
each ladder rung is resized from the one before it, each tile cut from the narrowest ladder rung that covers it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

from pipeline.config import ImagingSettings

RenditionName = Literal["thumb", "optimized", "animated"]  # animated: pipeline.imaging.animation

# A rung this close to a wider one (width ratio) is dropped: "no two rungs within about 10 % of each other".
MIN_RUNG_STEP: Final = 1.1
# A tile is cut from a ladder rung whose crop is at least this much wider: a resize by a ratio near 1 softens the
# picture (measured: up to 0.011 luma SSIM lost for a 560 px tile cut from a 569 px crop, 0.003 from 1.5x);
# 1.25x picks the same or the next narrower rung, for a fifth less CPU on the widest tile.
TILE_SOURCE_MARGIN: Final = 1.25

# EXIF orientations that swap width and height.
_SIDEWAYS: Final = frozenset({5, 6, 7, 8})
VALID_ORIENTATIONS: Final = frozenset(range(1, 9))


@dataclass(frozen=True)
class Rung:
    """One output: its family and its size as displayed."""

    name: RenditionName
    width: int
    height: int

    @property
    def size(self) -> tuple[int, int]:
        return self.width, self.height


@dataclass(frozen=True)
class RenditionPlan:
    stored_size: tuple[int, int]
    orientation: int
    ladder: tuple[Rung, ...]  # optimized, widest first; ladder[0] is what the decoder must cover
    tiles: tuple[Rung, ...]  # thumb, widest first
    tile_aspect: tuple[int, int] = (4, 3)

    @property
    def turns_sideways(self) -> bool:
        return self.orientation in _SIDEWAYS

    @property
    def displayed_size(self) -> tuple[int, int]:
        return self.as_stored(self.stored_size)

    @property
    def top(self) -> Rung:
        return self.ladder[0]

    @property
    def rungs(self) -> tuple[Rung, ...]:
        return (*self.ladder, *self.tiles)

    def tile_source(self, tile: Rung) -> int:
        """The index of the ladder rung a tile is cut from: the narrowest whose crop is TILE_SOURCE_MARGIN times
        the tile's width, or the widest rung when none is (its crop always covers the tile)."""
        for index in range(len(self.ladder) - 1, -1, -1):
            left, _top, right, _bottom = self.tile_box(self.ladder[index].size)
            if right - left >= tile.width * TILE_SOURCE_MARGIN:
                return index
        return 0

    def as_stored(self, size: tuple[int, int]) -> tuple[int, int]:
        """A displayed size in the stored pixels' orientation (or back: the swap is its own inverse)."""
        return (size[1], size[0]) if self.turns_sideways else size

    def tile_box(self, within: tuple[int, int]) -> tuple[float, float, float, float]:
        """The largest centred box of the tiles' shape (left, top, right, bottom) in an image of size ``within``
        (a ladder rung): every ladder rung has the picture's shape, so tiles of every width show the same crop."""
        width, height = within
        aspect_w, aspect_h = self.tile_aspect
        box_width, box_height = min(width, height * aspect_w / aspect_h), min(height, width * aspect_h / aspect_w)
        left, upper = (width - box_width) / 2, (height - box_height) / 2
        return left, upper, left + box_width, upper + box_height


def fit_within(size: tuple[int, int], box: int) -> tuple[int, int]:
    """The largest size with the same aspect ratio that fits in box x box; never larger than `size`."""
    width, height = size
    if width <= box and height <= box:
        return size
    if width >= height:
        return box, max(1, round(height * box / width))
    return max(1, round(width * box / height)), box


def plan_renditions(stored_size: tuple[int, int], orientation: int, settings: ImagingSettings) -> RenditionPlan:
    if orientation not in VALID_ORIENTATIONS:
        orientation = 1  # 0 and out-of-range values are invalid; treat as "already upright"
    displayed = (stored_size[1], stored_size[0]) if orientation in _SIDEWAYS else stored_size
    top_width, top_height = fit_within(displayed, settings.optimized_size)
    ladder = tuple(
        Rung("optimized", width, _height_for(width, (top_width, top_height)))
        for width in ladder_widths(top_width, settings.ladder_widths)
    )
    aspect_w, aspect_h = settings.tile_aspect
    # The largest tile-shaped box inside the widest ladder rung (tiles are cut from ladder rungs, never upscaled),
    # and no wider than the widest tile.
    box_width = max(1, int(min(top_width, top_height * aspect_w / aspect_h)))
    tiles = tuple(
        Rung("thumb", width, max(1, round(width * aspect_h / aspect_w)))
        for width in ladder_widths(min(box_width, max(settings.tile_widths)), settings.tile_widths)
    )
    return RenditionPlan(
        stored_size=stored_size, orientation=orientation, ladder=ladder, tiles=tiles, tile_aspect=(aspect_w, aspect_h)
    )


def ladder_widths(top: int, steps: tuple[int, ...]) -> tuple[int, ...]:
    """``top`` and then every step narrower than it, widest first, skipping any step within 10 % of the last kept
    one: a 600 px image gets 600, 480, 320 from (320, 480, 640, 960); a 1300 px one 1300, 960, ... (not 1280)."""
    kept = [top]
    for step in sorted(steps, reverse=True):
        if step < top and step * MIN_RUNG_STEP <= kept[-1]:
            kept.append(step)
    return tuple(kept)


def _height_for(width: int, top: tuple[int, int]) -> int:
    top_width, top_height = top
    return top_height if width == top_width else max(1, round(width * top_height / top_width))
