"""pipeline.config: the ladder, tile and AVIF settings read from the environment, and their refusals."""

from __future__ import annotations

import pytest

from pipeline.config import ConfigError, ImagingSettings, Settings


def test_defaults_are_the_documented_ladder_and_tiles_with_avif_off():
    imaging = Settings.from_env({}).imaging

    assert imaging.ladder_widths == (320, 480, 640, 960, 1280, 1920)
    assert imaging.tile_widths == (256, 384, 560, 840)
    assert imaging.avif is False
    assert Settings.from_env({}).cdn_distribution_id == ""


def test_widths_are_read_sorted_and_without_repeats():
    env = {"LADDER_WIDTHS": "1280, 320,640,640", "TILE_WIDTHS": "300", "AVIF_RENDITIONS": "on"}

    imaging = Settings.from_env(env).imaging

    assert imaging.ladder_widths == (320, 640, 1280)
    assert imaging.tile_widths == (300,)
    assert imaging.avif is True


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("LADDER_WIDTHS", "320,wide", "must list whole numbers of pixels"),
        ("TILE_WIDTHS", "8,64", "from 16 to 8192 pixels"),
        ("LADDER_WIDTHS", "320,10000", "from 16 to 8192 pixels"),
        ("AVIF_RENDITIONS", "maybe", "AVIF_RENDITIONS must be one of"),
        ("AVIF_SPEED", "11", "AVIF_SPEED must be between 0 and 10"),
        ("TRASH_RETENTION_DAYS", "0", "TRASH_RETENTION_DAYS must be between 1 and 3650"),
        ("TRASH_RETENTION_DAYS", "a month", "TRASH_RETENTION_DAYS must be a whole number"),
    ],
)
def test_a_malformed_setting_is_refused_with_its_name(name, value, says):
    with pytest.raises(ConfigError, match=says):
        Settings.from_env({name: value})


def test_an_empty_list_means_the_default():
    assert Settings.from_env({"LADDER_WIDTHS": " "}).imaging.ladder_widths == ImagingSettings.ladder_widths


def test_the_trash_keeps_images_30_days_unless_told_otherwise():
    assert Settings.from_env({}).trash_retention_days == 30
    assert Settings.from_env({"TRASH_RETENTION_DAYS": "7"}).trash_retention_days == 7
