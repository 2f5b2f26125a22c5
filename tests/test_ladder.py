"""The rendition plan (pipeline.imaging.plan): every size worked out from the header, before any pixel."""

from __future__ import annotations

import dataclasses
import itertools

import pytest

from pipeline.config import ImagingSettings
from pipeline.imaging import ladder_widths, plan_renditions

DEFAULTS = ImagingSettings()


def widths(plan_rungs) -> list[int]:
    return [rung.width for rung in plan_rungs]


def test_a_landscape_photo_gets_every_rung_up_to_the_widest():
    plan = plan_renditions((4000, 3000), 1, DEFAULTS)

    assert [r.size for r in plan.ladder] == [
        (1920, 1440),
        (1280, 960),
        (960, 720),
        (640, 480),
        (480, 360),
        (320, 240),
    ]
    assert [r.size for r in plan.tiles] == [(840, 630), (560, 420), (384, 288), (256, 192)]
    assert {r.name for r in plan.ladder} == {"optimized"}
    assert {r.name for r in plan.tiles} == {"thumb"}


def test_a_portrait_photo_is_capped_by_its_long_side_and_its_own_width_is_the_top_rung():
    plan = plan_renditions((3000, 4000), 1, DEFAULTS)

    assert plan.ladder[0].size == (1440, 1920)  # the long side within OPTIMIZED_SIZE
    assert widths(plan.ladder) == [1440, 1280, 960, 640, 480, 320]
    assert widths(plan.tiles) == [840, 560, 384, 256]


def test_a_sideways_exif_orientation_swaps_the_planned_sizes():
    plan = plan_renditions((4000, 3000), 6, DEFAULTS)  # stored landscape, displayed portrait

    assert plan.displayed_size == (3000, 4000)
    assert plan.ladder[0].size == (1440, 1920)
    assert plan.as_stored(plan.ladder[0].size) == (1920, 1440)


def test_the_4608x1976_panorama_keeps_its_shape_and_its_tiles_stay_within_its_height():
    plan = plan_renditions((4608, 1976), 1, DEFAULTS)

    assert [r.size for r in plan.ladder] == [
        (1920, 823),
        (1280, 549),
        (960, 412),
        (640, 274),
        (480, 206),
        (320, 137),
    ]
    # The widest 4:3 box of the 1920x823 rung is 1097 px wide: it holds every tile.
    assert [r.size for r in plan.tiles] == [(840, 630), (560, 420), (384, 288), (256, 192)]
    # Each tile is cut from the narrowest rung whose crop is 1.25x its width: 1280 (731 px crop) for 560.
    assert [plan.ladder[plan.tile_source(tile)].width for tile in plan.tiles] == [1920, 1280, 960, 640]


def test_a_panorama_narrower_than_the_widest_tile_gets_its_own_box_as_the_widest_tile():
    plan = plan_renditions((2000, 600), 1, DEFAULTS)  # the widest rung is 1920x576: its 4:3 box is 768x576

    assert [r.size for r in plan.tiles] == [(768, 576), (560, 420), (384, 288), (256, 192)]


def test_a_600_px_upload_gets_the_rungs_below_600_plus_its_own_width():
    plan = plan_renditions((600, 400), 1, DEFAULTS)

    assert widths(plan.ladder) == [600, 480, 320]
    assert widths(plan.tiles) == [533, 384, 256]  # 533x400 is its largest 4:3 box


def test_a_tiny_image_is_never_upscaled():
    plan = plan_renditions((100, 68), 1, DEFAULTS)

    assert [r.size for r in plan.ladder] == [(100, 68)]
    assert [r.size for r in plan.tiles] == [(90, 68)]


@pytest.mark.parametrize("size", [(1, 1), (7, 3000), (3000, 7), (321, 200), (1300, 900), (5000, 5000)])
def test_no_rung_is_larger_than_the_source_and_no_two_are_within_ten_percent(size):
    plan = plan_renditions(size, 1, DEFAULTS)

    for rung in plan.rungs:
        assert 1 <= rung.width <= size[0]
        assert 1 <= rung.height <= size[1]
    for family in (plan.ladder, plan.tiles):
        for wider, narrower in itertools.pairwise(widths(family)):
            assert wider >= narrower * 1.1


def test_a_rung_within_ten_percent_of_the_source_width_gives_way_to_the_source_width():
    assert ladder_widths(1300, (320, 480, 640, 960, 1280, 1920)) == (1300, 960, 640, 480, 320)
    assert ladder_widths(1500, (320, 480, 640, 960, 1280, 1920)) == (1500, 1280, 960, 640, 480, 320)


def test_the_ladder_steps_are_at_most_one_and_a_half_apart_so_a_browser_never_needs_more():
    # What docs/imaging.md promises: the smallest rung covering any display width is at most 1.5x that width.
    for family in (DEFAULTS.ladder_widths, DEFAULTS.tile_widths):
        for narrower, wider in itertools.pairwise(sorted(family)):
            assert wider <= narrower * 1.5


def test_the_plan_follows_the_settings():
    settings = dataclasses.replace(DEFAULTS, ladder_widths=(100, 200), tile_widths=(64,), optimized_size=200)

    plan = plan_renditions((640, 480), 1, settings)

    assert [r.size for r in plan.ladder] == [(200, 150), (100, 75)]
    assert [r.size for r in plan.tiles] == [(64, 48)]


def test_the_tile_box_is_centred_and_has_the_tiles_shape_at_every_rung():
    plan = plan_renditions((4608, 1976), 1, DEFAULTS)

    for rung in plan.ladder:
        left, top, right, bottom = plan.tile_box(rung.size)
        assert (right - left) / (bottom - top) == pytest.approx(4 / 3)
        assert left == pytest.approx(rung.width - right)  # centred
        assert top == pytest.approx(0)
