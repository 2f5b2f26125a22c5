"""Template filters and tags for the core's values: ISO timestamps, and the `sizes` of the pages' images.

`sizes` tells the browser how wide an image will be drawn before CSS has loaded, so it must describe the
layout in gallery/static/gallery/site.css exactly. That layout is kept simple so that it can be written down:
fixed paddings, gaps and column counts per breakpoint (the numbers below), and a detail image as wide as its
column unless its height cap makes it narrower.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final

from django import template

register = template.Library()


@register.filter
def iso_datetime(value: str | None) -> datetime | str | None:
    """``2026-05-01T10:00:00.123456Z`` -> an aware datetime, for ``|date``; anything else as it is."""
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value


# -- sizes -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Width:
    """A CSS width of the form ``vw% of the viewport - px`` (a fluid column), or a fixed ``-px`` when vw is 0."""

    vw: float
    px: float = 0.0

    def css(self) -> str:
        vw, px = self.vw, self.px
        if not vw:
            return f"{_number(-px)}px"
        if not px:
            return f"{_number(vw)}vw"
        return f"calc({_number(vw)}vw - {_number(px)}px)"

    def expression(self) -> str:
        """The same width as an operand of ``min()`` (no ``calc`` needed there)."""
        text = self.css()
        return text[len("calc(") : -1] if text.startswith("calc(") else text


def _number(value: float, digits: int = 2) -> str:
    return f"{value:.{digits}f}".rstrip("0").rstrip(".")


# site.css, per breakpoint (widest first is the default): the wrap is at most WRAP px wide including its
# padding; the grid has COLUMNS columns and GAP between them; the detail page's image column sits beside a
# DETAIL_ASIDE px column (DETAIL_GAP apart) above DETAIL_TWO_COLUMNS px.
WRAP: Final = 1200
PADDING: Final = ((520, 12), (960, 20), (None, 28))  # (max-width or None, padding-inline px)
GAP: Final = ((520, 8), (960, 12), (None, 18))
COLUMNS: Final = ((520, 2), (840, 3), (None, 4))
DETAIL_ASIDE: Final = 320
DETAIL_GAP: Final = 32
DETAIL_TWO_COLUMNS: Final = 960  # one column up to this width, two above it
DETAIL_MAX_HEIGHT_VH: Final = 80  # .detail__figure img { max-height: 80vh }
# No allowance for the browser's choice: measured (make pixels), Debian's Chromium 150 picks the first candidate at
# least as dense as the screen, at 1x, 2x and 3x alike. (Blink once preferred the smaller of two candidates
# below their geometric mean; with that, `sizes` would have to announce boxes sqrt(1.5) wider.)


def _at(table: tuple[tuple[int | None, int], ...], viewport: int) -> int:
    return next(value for limit, value in table if limit is None or viewport <= limit)


def _breakpoints() -> list[int | None]:
    limits = {limit for table in (PADDING, GAP, COLUMNS) for limit, _ in table if limit}
    return [*sorted(limits | {DETAIL_TWO_COLUMNS, WRAP}), None]


def tile_widths() -> list[tuple[int | None, Width]]:
    """(max-width, tile width) for each breakpoint of the grid, narrowest first."""
    widths = []
    for limit in _breakpoints():
        viewport = limit or WRAP + 1
        padding, gap, columns = _at(PADDING, viewport), _at(GAP, viewport), _at(COLUMNS, viewport)
        fixed = 2 * padding + (columns - 1) * gap
        if limit is None or limit > WRAP:
            widths.append((limit, Width(0, -(WRAP - fixed) / columns)))
        else:
            widths.append((limit, Width(100 / columns, fixed / columns)))
    return _merge(widths)


def detail_widths() -> list[tuple[int | None, Width]]:
    """(max-width, width of the detail page's image column) for each breakpoint, narrowest first."""
    widths = []
    for limit in _breakpoints():
        viewport = limit or WRAP + 1
        fixed = 2 * _at(PADDING, viewport)
        if viewport > DETAIL_TWO_COLUMNS:
            fixed += DETAIL_ASIDE + DETAIL_GAP
        if limit is None or limit > WRAP:
            widths.append((limit, Width(0, -(WRAP - fixed))))
        else:
            widths.append((limit, Width(100, fixed)))
    return _merge(widths)


def _merge(widths: list[tuple[int | None, Width]]) -> list[tuple[int | None, Width]]:
    """Drop a breakpoint whose width is the same as the next one's."""
    merged: list[tuple[int | None, Width]] = []
    for limit, width in reversed(widths):
        if merged and merged[0][1] == width:
            continue  # the wider breakpoint's entry covers this one too
        merged.insert(0, (limit, width))
    return merged


def _sizes(entries: list[tuple[int | None, str]]) -> str:
    return ", ".join(f"(max-width: {limit}px) {width}" if limit else width for limit, width in entries)


@register.simple_tag
def tile_sizes() -> str:
    """`sizes` of a gallery tile (a 4:3 box filled by a 4:3 crop)."""
    return _sizes([(limit, width.css()) for limit, width in tile_widths()])


@register.simple_tag
def detail_sizes(width: int | None, height: int | None) -> str:
    """`sizes` of the detail image: its column's width, or less when its height cap (80vh) binds."""
    aspect = (width / height) if width and height else None

    entries = []
    for limit, column in detail_widths():
        if aspect is None:
            entries.append((limit, column.css()))
        else:
            entries.append((limit, f"min({column.expression()}, {_number(DETAIL_MAX_HEIGHT_VH * aspect)}vh)"))
    return _sizes(entries)


@register.filter
def aspect(picture: object) -> str:
    """Width / height of a picture, for the CSS that caps the detail image's height without letterboxing."""
    width, height = getattr(picture, "width", None), getattr(picture, "height", None)
    return _number(width / height, 4) if width and height else "1.5"
