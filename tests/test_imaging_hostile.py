"""Every file in the hostile corpus ends in renditions or in a typed rejection with a reason, never anything else.

The expected outcomes follow ../shared/corpus/hostile/README.md, file by file.
"""

from __future__ import annotations

import dataclasses
import io
import subprocess
import sys

import pytest
from conftest import HOSTILE, ROOT
from PIL import Image

from pipeline.config import ImagingSettings
from pipeline.imaging import CorruptImage, ImageRejected, TooLarge, UnsupportedFormat, process_image

DEFAULTS = ImagingSettings()

# file -> (detected format, frames, displayed width x height)
READY = {
    "app13-multiple.jpg": ("JPEG", 1, (256, 160)),
    "chi.gif": ("GIF", 31, (320, 240)),
    "i_trns.png": ("PNG", 1, (64, 64)),
    "iss634.apng": ("PNG", 41, (245, 245)),
    "iss634.webp": ("WEBP", 42, (245, 245)),
    "made-displayp3-icc.jpg": ("JPEG", 1, (128, 128)),
    "made-huge-exif-orient6.jpg": ("JPEG", 1, (64, 128)),  # stored 128x64, orientation 6
    "old-style-jpeg-compression.tif": ("TIFF", 1, (4160, 870)),
    "p_trns_single.png": ("PNG", 1, (64, 64)),
    "pil_sample_cmyk.jpg": ("JPEG", 1, (100, 100)),
    "star.avifs": ("AVIF", 5, (159, 159)),
    "sugarshack.mpo": ("MPO", 2, (640, 480)),
    "uncompressed_la.png": ("PNG", 1, (128, 128)),
}

ANIMATIONS = ("chi.gif", "iss634.apng", "iss634.webp", "star.avifs")

# file -> (rejection type, the reason it records)
REJECTED = {
    "crash-2020-10-test.tif": (CorruptImage, "the TIFF data is corrupt or truncated (Missing dimensions)"),
    "decompression_bomb.gif": (TooLarge, "image claims 4,364,696,535 pixels, more than can be processed safely"),
    "made-bomb-warning-12000x12000.png": (TooLarge, "image is 12000x12000 pixels, the limit is 100 megapixels"),
    "made-empty.jpg": (CorruptImage, "the file is empty"),
    "made-svg-script.jpg": (UnsupportedFormat, "unsupported format: SVG"),
    "png_decompression_dos.png": (
        CorruptImage,
        "the PNG data is corrupt or truncated (Decompressed data too large for PngImagePlugin.MAX_TEXT_CHUNK)",
    ),
    # The README expects "too many pixels"; BMP is not on the allow-list, so it is refused before its header is read.
    "reallybig.bmp": (UnsupportedFormat, "unsupported format: BMP"),
    "truncated_image.png": (CorruptImage, "the PNG data is corrupt or truncated (image file is truncated)"),
    "truncated_jpeg.jpg": (
        CorruptImage,
        "the JPEG data is corrupt or truncated (image file is truncated (8 bytes not processed))",
    ),
    # Never handed to Ghostscript: EPS is not on the allow-list.
    "zero_bb.eps": (UnsupportedFormat, "unsupported format: PostScript/EPS"),
}


def test_every_hostile_file_has_an_expected_outcome():
    on_disk = {path.name for path in HOSTILE.iterdir() if path.name != "README.md"}
    assert on_disk == READY.keys() | REJECTED.keys()


@pytest.mark.parametrize("name", sorted(READY))
def test_hostile_file_is_processed(name):
    fmt, frames, size = READY[name]

    result = process_image((HOSTILE / name).read_bytes(), DEFAULTS)

    assert (result.facts.format, result.facts.frames) == (fmt, frames)
    assert (result.facts.width, result.facts.height) == size
    assert [r.format for r in result.renditions].count("jpeg") == len(result.plan.rungs)  # every rung has a JPEG
    animated = [r for r in result.renditions if r.name == "animated"]
    # GIF, WebP, APNG and AVIF sequences are kept as animated WebP (tests/test_animation.py); MPO stays a still
    assert len(animated) == (1 if name in ANIMATIONS else 0)
    for rendition in result.renditions:
        out = Image.open(io.BytesIO(rendition.data))
        out.load()
        assert out.size == (rendition.width, rendition.height)
        if rendition.name == "optimized":
            assert max(out.size) <= DEFAULTS.optimized_size
        elif rendition.name == "thumb":
            assert out.width <= max(DEFAULTS.tile_widths)
        assert out.mode in ("RGB", "RGBA")
        assert not out.getexif()
        if rendition.name == "animated":
            assert (out.format, out.is_animated) == ("WEBP", True)
        else:
            assert getattr(out, "n_frames", 1) == 1  # a still: the first frame of an animation (its poster)


@pytest.mark.parametrize("name", sorted(REJECTED))
@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")  # the warning-zone PNG warns on open
@pytest.mark.filterwarnings("ignore:Tag data larger than file:UserWarning")  # the fuzzed TIFF's tags
def test_hostile_file_is_rejected_with_a_reason(name):
    expected_type, reason = REJECTED[name]

    with pytest.raises(ImageRejected) as rejected:
        process_image((HOSTILE / name).read_bytes(), DEFAULTS)

    assert type(rejected.value) is expected_type
    assert rejected.value.reason == reason


def test_with_animation_off_animations_are_noted_as_first_frame_only():
    result = process_image((HOSTILE / "chi.gif").read_bytes(), dataclasses.replace(DEFAULTS, animation=False))

    assert "animated GIF: first of 31 frames used" in result.facts.notes
    assert {r.name for r in result.renditions} == {"thumb", "optimized"}


def test_iptc_and_multi_picture_segments_are_not_copied():
    for name in ("app13-multiple.jpg", "sugarshack.mpo"):
        for rendition in process_image((HOSTILE / name).read_bytes(), DEFAULTS).renditions:
            assert b"Photoshop 3.0" not in rendition.data  # APP13 / IPTC
            assert b"MPF\x00" not in rendition.data  # APP2 multi-picture index


def test_mpo_reports_a_jpeg_mime_type():
    result = process_image((HOSTILE / "sugarshack.mpo").read_bytes(), DEFAULTS)

    assert result.facts.mime == "image/jpeg"
    assert "multi-picture JPEG: first of 2 pictures used" in result.facts.notes


# --- colour profiles that are not what they claim (review findings M2 and M1) ------------------------------------


def _with_profile(fmt: str, profile: bytes, size: tuple[int, int] = (300, 200)) -> bytes:
    buffer = io.BytesIO()
    Image.radial_gradient("L").resize(size).convert("RGB").save(buffer, fmt, icc_profile=profile)
    return buffer.getvalue()


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_an_unreadable_colour_profile_is_ignored_with_a_note_not_an_error(fmt):
    source = _with_profile(fmt, b"not an ICC profile at all" * 20)

    result = process_image(source, DEFAULTS)

    assert "unreadable colour profile ignored" in result.facts.notes
    assert {(r.name, r.width) for r in result.renditions} >= {("optimized", 300)}
    for rendition in result.renditions:
        assert "icc_profile" not in Image.open(io.BytesIO(rendition.data)).info


def test_a_colour_profile_larger_than_any_real_one_is_ignored_unread():
    source = _with_profile("JPEG", b"\x00" * (15 * 1024 * 1024))

    result = process_image(source, DEFAULTS)

    assert any(note.startswith("colour profile of 15.0 MB ignored") for note in result.facts.notes)


def test_thirty_uploads_with_distinct_15_mb_profiles_do_not_pile_up_in_memory():
    # One process, as a warm Lambda: before the fix every profile stayed cached (519 MB for 30 of them).
    script = """
import io, sys
from PIL import Image
from pipeline.config import ImagingSettings
from pipeline.imaging import process_image
base = Image.new("RGB", (64, 64), (200, 100, 50))
for n in range(30):
    buffer = io.BytesIO()
    base.save(buffer, "JPEG", icc_profile=bytes([n]) * (15 * 1024 * 1024))
    process_image(buffer.getvalue(), ImagingSettings())
    del buffer
peak = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(peak // 1024)
"""
    completed = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300, check=True
    )
    assert int(completed.stdout.strip()) <= 250  # MB: the target
