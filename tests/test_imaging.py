"""pipeline.imaging on real photos: sizes, orientation, privacy, colour, modes, limits and the placeholder."""

from __future__ import annotations

import dataclasses
import io
import struct
import zlib
from functools import cache

import blurhash as reference_blurhash
import pytest
from conftest import HOSTILE, PHOTOS
from PIL import Image, ImageChops, ImageCms, ImageStat

from pipeline import jpeg_copy, placeholder
from pipeline.config import ImagingSettings
from pipeline.imaging import (
    CorruptImage,
    EncodedRendition,
    ProcessedImage,
    TooLarge,
    UnsupportedFormat,
    process_image,
    resize,
)

DEFAULTS = ImagingSettings()
ORIENTATION_TAG = 0x0112


@cache
def processed(path: str) -> ProcessedImage:
    """Each corpus file is processed once per test session with the default settings."""
    return process_image((PHOTOS.parent / path).read_bytes(), DEFAULTS)


def rendition(result: ProcessedImage, name: str, fmt: str, width: int | None = None) -> EncodedRendition:
    """The rendition of family ``name`` in ``fmt`` at ``width``; the widest of them without one."""
    matches = [r for r in result.renditions if r.name == name and r.format == fmt]
    if width is None:
        return max(matches, key=lambda r: r.width)
    (match,) = [r for r in matches if r.width == width]
    return match


def sizes(result: ProcessedImage, name: str) -> list[tuple[int, int]]:
    """The sizes of family ``name``, widest first: every rung has a JPEG (WebP only where it can pay)."""
    jpeg = [(r.width, r.height) for r in result.renditions if r.name == name and r.format == "jpeg"]
    webp = [(r.width, r.height) for r in result.renditions if r.name == name and r.format == "webp"]
    assert set(webp) <= set(jpeg)
    return sorted(jpeg, reverse=True)


def decoded(rendition: EncodedRendition) -> Image.Image:
    image = Image.open(io.BytesIO(rendition.data))
    image.load()
    return image


def mean_difference(a: Image.Image, b: Image.Image) -> float:
    """Mean absolute difference per channel, 0-255."""
    return sum(ImageStat.Stat(ImageChops.difference(a.convert("RGB"), b.convert("RGB"))).mean) / 3


def encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def jpeg_segments(data: bytes) -> list[int]:
    """The marker of every JPEG segment before the image data (APPn, COM, DQT, SOF, ...)."""
    assert data[:2] == b"\xff\xd8"
    markers, offset = [], 2
    while data[offset] == 0xFF and data[offset + 1] != 0xDA:  # up to start-of-scan
        marker = data[offset + 1]
        (length,) = struct.unpack(">H", data[offset + 2 : offset + 4])
        markers.append(marker)
        offset += 2 + length
    return markers


def webp_chunks(data: bytes) -> list[bytes]:
    assert data[:4] == b"RIFF"
    assert data[8:12] == b"WEBP"
    chunks, offset = [], 12
    while offset + 8 <= len(data):
        fourcc = data[offset : offset + 4]
        (size,) = struct.unpack("<I", data[offset + 4 : offset + 8])
        chunks.append(fourcc)
        offset += 8 + size + (size & 1)
    return chunks


# --- the four renditions -------------------------------------------------------------------------------------------


def test_every_rung_comes_as_jpeg_and_as_webp_where_webp_can_pay():
    result = processed("photos/iphone_hdr_NO.jpg")  # 3264x2448, resized to every rung

    made = {(r.name, r.format, r.width, r.height) for r in result.renditions}
    ladder = [(1920, 1440), (1280, 960), (960, 720), (640, 480), (480, 360), (320, 240)]
    tiles = [(840, 630), (560, 420), (384, 288), (256, 192)]
    assert made == (
        {("optimized", "jpeg", w, h) for w, h in ladder}
        | {("optimized", "webp", w, h) for w, h in ladder if w <= 1280}  # at 1920 WebP saves nothing
        | {("thumb", fmt, w, h) for w, h in tiles for fmt in ("jpeg", "webp")}
    )
    assert len(made) == len(result.renditions)
    assert (result.renditions[0].name, result.renditions[0].width) == ("optimized", 1920)  # the widest first
    for r in result.renditions:
        image = decoded(r)
        assert image.format == r.format.upper()
        assert image.size == (r.width, r.height)
        assert r.content_type == f"image/{r.format}"


def test_a_jpeg_upload_at_its_own_size_gets_no_webp_of_that_size():
    # Re-encoded on its own 8x8 grid the JPEG is nearly lossless; WebP needs more bytes to match it there.
    result = processed("photos/Landscape_1.jpg")  # 1800x1200, nothing to resize

    assert [r.format for r in result.renditions if r.width == 1800] == ["jpeg"]
    assert {r.format for r in result.renditions if r.name == "optimized" and r.width == 1280} == {"jpeg", "webp"}


def test_an_upload_in_another_format_gets_webp_at_its_own_size():
    png = encode(Image.radial_gradient("L").resize((800, 600)).convert("RGB"), "PNG")

    result = process_image(png, DEFAULTS)

    assert {r.format for r in result.renditions if r.width == 800} == {"jpeg", "webp"}


def test_webp_max_width_follows_the_settings():
    result = process_image((PHOTOS / "DSCN0021.jpg").read_bytes(), dataclasses.replace(DEFAULTS, webp_max_width=400))

    assert {r.width for r in result.renditions if r.format == "webp"} == {320, 384, 256}


@pytest.mark.parametrize(
    ("path", "displayed", "ladder", "tiles"),
    [
        (
            "photos/HMD_Nokia_8.3_5G.jpg",  # a panorama: its 4:3 box is 1097x823, so the 840 tile fits
            (4608, 1976),
            [(1920, 823), (1280, 549), (960, 412), (640, 274), (480, 206), (320, 137)],
            [(840, 630), (560, 420), (384, 288), (256, 192)],
        ),
        (
            "photos/canon_hdr_NO.jpg",  # stored 2048x1536, orientation 6: a portrait capped at 1920 px tall
            (1536, 2048),
            [(1440, 1920), (1280, 1707), (960, 1280), (640, 853), (480, 640), (320, 427)],
            [(840, 630), (560, 420), (384, 288), (256, 192)],
        ),
        (
            "photos/DSCN0010.jpg",  # 640 px: the rungs below it plus its own width
            (640, 480),
            [(640, 480), (480, 360), (320, 240)],
            [(640, 480), (560, 420), (384, 288), (256, 192)],
        ),
    ],
)
def test_the_ladder_and_tiles_follow_the_photo_and_never_upscale(path, displayed, ladder, tiles):
    result = processed(path)

    assert (result.facts.width, result.facts.height) == displayed
    assert sizes(result, "optimized") == ladder
    assert sizes(result, "thumb") == tiles


def test_a_photo_smaller_than_every_rung_gets_its_own_size_and_one_tile():
    result = processed("photos/Canon_40D.jpg")  # 100x68

    assert sizes(result, "optimized") == [(100, 68)]
    assert sizes(result, "thumb") == [(90, 68)]  # the largest 4:3 box, never upscaled to a tile width


def test_a_tile_is_the_centred_4x3_crop_of_the_picture():
    result = processed("photos/HMD_Nokia_8.3_5G.jpg")  # 4608x1976: the tile keeps the middle 2635 columns
    tile = decoded(rendition(result, "thumb", "jpeg", width=560))
    widest = decoded(rendition(result, "optimized", "jpeg"))  # 1920x823
    box_width = 823 * 4 / 3
    left = (1920 - box_width) / 2
    expected = widest.resize(tile.size, Image.Resampling.LANCZOS, box=(left, 0, left + box_width, 823))

    assert mean_difference(tile, expected) < 3
    off_centre = widest.resize(tile.size, Image.Resampling.LANCZOS, box=(0, 0, box_width, 823))
    assert mean_difference(tile, off_centre) > 3 * mean_difference(tile, expected)


def test_sizes_follow_the_settings():
    small = dataclasses.replace(DEFAULTS, ladder_widths=(100, 200), tile_widths=(64,), optimized_size=200)

    result = process_image((PHOTOS / "DSCN0021.jpg").read_bytes(), small)

    assert sizes(result, "optimized") == [(200, 150), (100, 75)]
    assert sizes(result, "thumb") == [(64, 48)]


def test_each_rung_resized_from_the_one_above_is_as_close_to_the_photo_as_one_resized_from_the_widest():
    source = (PHOTOS / "iphone_hdr_NO.jpg").read_bytes()  # upright, sRGB: the decoded photo is the reference
    with Image.open(io.BytesIO(source)) as photo:
        photo = photo.convert("RGB")

    cascaded = process_image(source, DEFAULTS)
    direct = process_image(source, DEFAULTS, cascade=False)

    for r in cascaded.renditions:
        if r.name != "optimized":
            continue
        reference = photo.resize((r.width, r.height), Image.Resampling.LANCZOS)
        error = mean_difference(decoded(r), reference)
        # Measured: within 0.08 of each other at every rung (errors 1.9-6.1, the encoders' own loss).
        assert error <= mean_difference(decoded(rendition(direct, r.name, r.format, r.width)), reference) + 0.25


@pytest.mark.parametrize("mode", ["RGB", "RGBA"])
def test_a_large_resize_done_in_parallel_stripes_matches_one_resize_without_seams(mode, monkeypatch):
    # The widest rung of a large photo is resized as horizontal stripes on the thread pool (one per CPU; three
    # here, whatever the machine). Pillow's own single resize is the reference: equal up to the rounding of its
    # intermediate pass, and no seam where stripes meet.
    monkeypatch.setattr(resize, "STRIPES", 3)
    with Image.open(PHOTOS / "canon_hdr_NO.jpg") as photo:
        picture = photo.convert(mode)
    size = (1920, 1440)

    striped = resize.resize(picture, size)

    whole = picture.resize(size, Image.Resampling.LANCZOS, reducing_gap=2.0)
    assert striped.mode == mode
    assert mean_difference(striped, whole) < 0.25
    for edge in (round(size[1] * i / resize.STRIPES) for i in range(1, resize.STRIPES)):
        rows = (0, edge - 2, size[0], edge + 2)
        assert mean_difference(striped.crop(rows), whole.crop(rows)) < 1


# --- orientation ---------------------------------------------------------------------------------------------------


@cache
def upright_reference(kind: str, size: tuple[int, int]) -> Image.Image:
    """<kind>_1.jpg has EXIF orientation 1: its stored pixels are upright. Resized by Pillow, not by the pipeline."""
    with Image.open(PHOTOS / f"{kind}_1.jpg") as reference:
        return reference.convert("RGB").resize(size, Image.Resampling.LANCZOS)


@pytest.mark.parametrize("kind", ["Landscape", "Portrait"])
@pytest.mark.parametrize("orientation", range(9))
def test_every_exif_orientation_comes_out_upright(kind, orientation):
    result = processed(f"photos/{kind}_{orientation}.jpg")

    expected_size = (1800, 1200) if kind == "Landscape" else (1200, 1800)
    assert (result.facts.width, result.facts.height) == expected_size
    for fmt in ("jpeg", "webp"):
        thumb = decoded(rendition(result, "optimized", fmt, width=320))
        # Upright outputs differ from the reference by JPEG noise (~4); a mirrored or rotated one by 40 or more.
        assert mean_difference(thumb, upright_reference(kind, thumb.size)) < 10
        # No orientation tag may survive to rotate the upright pixels a second time.
        assert ORIENTATION_TAG not in thumb.getexif()


def test_orientation_is_reported_in_the_notes():
    assert "rotated upright from EXIF orientation 6" in processed("photos/canon_hdr_NO.jpg").facts.notes
    assert not any("rotated" in note for note in processed("photos/Landscape_0.jpg").facts.notes)


# --- privacy -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "photos/DSCN0010.jpg",
        "photos/DSCN0021.jpg",
        "photos/canon_hdr_NO.jpg",
        "photos/iphone_hdr_NO.jpg",
        "photos/HMD_Nokia_8.3_5G.jpg",
    ],
)
def test_no_exif_gps_xmp_or_comment_survives_in_any_rendition(path):
    source = (PHOTOS.parent / path).read_bytes()
    assert b"Exif" in source  # the source does carry metadata (GPS among it)

    for r in processed(path).renditions:
        assert not decoded(r).getexif()
        assert b"Exif" not in r.data
        assert b"http://ns.adobe.com/xap" not in r.data
        if r.format == "jpeg":
            # Only the JFIF header (APP0) may precede the image: no APP1 (EXIF/XMP), APP2 (ICC/MPF),
            # APP13 (IPTC), or COM segment.
            assert [m for m in jpeg_segments(r.data) if 0xE0 <= m <= 0xEF or m == 0xFE] == [0xE0]
        else:
            assert set(webp_chunks(r.data)) <= {b"VP8 ", b"VP8L", b"VP8X", b"ALPH"}


# --- an upload that is already a web-ready JPEG ---------------------------------------------------------------------

COPIED = "optimized JPEG: the upload's own JPEG data without its metadata (smaller than re-encoding)"


def with_metadata_and_trailer(jpeg: bytes) -> bytes:
    """``jpeg`` with EXIF GPS, XMP and a comment after its start, and a maker-style trailer after its end."""
    exif = Image.Exif()
    exif[0x010F] = "Camera Maker"
    exif.get_ifd(0x8825).update({1: "N", 2: (51.0, 30.0, 12.34), 3: "W", 4: (0.0, 7.0, 39.0)})  # GPS
    exif_payload = b"Exif\x00\x00" + exif.tobytes()
    xmp_payload = b"http://ns.adobe.com/xap/1.0/\x00<x:xmpmeta>secret place</x:xmpmeta>"

    def segment(marker: int, payload: bytes) -> bytes:
        return bytes((0xFF, marker)) + struct.pack(">H", len(payload) + 2) + payload

    extras = segment(0xE1, exif_payload) + segment(0xE1, xmp_payload) + segment(0xFE, b"secret comment")
    return jpeg[:2] + extras + jpeg[2:] + b"SECRET-TRAILER with the owner's name"


def test_a_web_ready_jpeg_keeps_its_own_data_when_that_is_smaller_than_re_encoding():
    source = (PHOTOS / "Landscape_0.jpg").read_bytes()  # 1800x1200, upright, no profile: nothing to do
    result = process_image(source, DEFAULTS)

    optimized = rendition(result, "optimized", "jpeg")
    assert COPIED in result.facts.notes
    assert len(optimized.data) < len(source)
    with Image.open(io.BytesIO(source)) as original:
        # The very pixels of the upload: no second lossy generation.
        assert ImageChops.difference(decoded(optimized), original.convert("RGB")).getbbox() is None
    # Everything else is made from the pixels as usual.
    assert rendition(result, "thumb", "jpeg").data != optimized.data
    assert decoded(rendition(result, "optimized", "webp")).size == (1280, 853)  # none at its own size


def test_gps_xmp_comments_and_trailers_never_survive_the_copy():
    source = with_metadata_and_trailer((PHOTOS / "Landscape_0.jpg").read_bytes())
    with Image.open(io.BytesIO(source)) as opened:
        assert opened.getexif().get_ifd(0x8825)  # the source does carry GPS

    result = process_image(source, DEFAULTS)

    assert COPIED in result.facts.notes
    for r in result.renditions:
        image = decoded(r)
        assert not image.getexif(), r
        assert not {"icc_profile", "xmp", "comment", "exif"} & set(image.info), r
        for secret in (b"Exif", b"GPS", b"xap", b"secret", b"SECRET-TRAILER", b"Camera Maker"):
            assert secret not in r.data, (r.name, r.format, secret)
    copied = rendition(result, "optimized", "jpeg").data
    assert [m for m in jpeg_segments(copied) if 0xE0 <= m <= 0xEF or m == 0xFE] == []
    assert copied.endswith(b"\xff\xd9")


@pytest.mark.parametrize(
    ("path", "why"),
    [
        ("photos/HMD_Nokia_8.3_5G.jpg", "resized to 1920 px"),
        ("hostile/made-huge-exif-orient6.jpg", "rotated upright"),
        ("hostile/made-displayp3-icc.jpg", "converted to sRGB"),
        ("hostile/pil_sample_cmyk.jpg", "CMYK converted to RGB"),
        ("photos/DSCN0010.jpg", "re-encoding is smaller than the upload's data"),
    ],
)
def test_a_jpeg_that_needs_work_or_shrinks_is_re_encoded(path, why):
    result = processed(path)

    assert COPIED not in result.facts.notes, why
    source = (PHOTOS.parent / path).read_bytes()
    optimized = rendition(result, "optimized", "jpeg").data
    assert jpeg_segments(optimized)[0] == 0xE0, why  # Pillow's encoder writes a JFIF header; the copy has none
    assert optimized[-2000:] not in source, why


def test_the_copy_of_a_multi_picture_file_is_its_first_picture_only():
    source = (HOSTILE / "sugarshack.mpo").read_bytes()
    copied = jpeg_copy.strip_metadata(source)

    assert copied is not None
    assert len(copied) < len(source) / 2
    with Image.open(io.BytesIO(source)) as first, Image.open(io.BytesIO(copied)) as alone:
        assert alone.format == "JPEG"
        assert ImageChops.difference(alone.convert("RGB"), first.convert("RGB")).getbbox() is None


@pytest.mark.parametrize(
    "path", ["hostile/truncated_jpeg.jpg", "hostile/pil_sample_cmyk.jpg", "photos/BSG1.tiff", "hostile/made-empty.jpg"]
)
def test_what_the_copy_cannot_vouch_for_is_left_to_the_encoder(path):
    assert jpeg_copy.strip_metadata((PHOTOS.parent / path).read_bytes()) is None


# --- colour --------------------------------------------------------------------------------------------------------


def _srgb_decode(value: int) -> float:
    v = value / 255
    return v / 12.92 if v <= 0.04045 else ((v + 0.055) / 1.055) ** 2.4


def _srgb_encode(linear: float) -> int:
    v = min(1.0, max(0.0, linear))
    return round(255 * (v * 12.92 if v <= 0.0031308 else 1.055 * v ** (1 / 2.4) - 0.055))


def display_p3_to_srgb(rgb: tuple[int, int, int]) -> tuple[int, ...]:
    """The textbook conversion: both spaces share the sRGB curve and D65, so it is one 3x3 matrix in linear light."""
    p3_to_srgb = ((1.2249, -0.2247, 0.0), (-0.0420, 1.0419, 0.0), (-0.0197, -0.0786, 1.0979))
    linear = [_srgb_decode(v) for v in rgb]
    return tuple(_srgb_encode(sum(m * c for m, c in zip(row, linear, strict=True))) for row in p3_to_srgb)


def test_display_p3_pixels_are_converted_to_srgb_and_no_profile_is_kept():
    display_p3 = Image.open(HOSTILE / "made-displayp3-icc.jpg").info["icc_profile"]
    p3_colour = (200, 100, 50)
    patch = Image.new("RGB", (64, 64), p3_colour)
    source = encode(patch, "PNG", icc_profile=display_p3)  # lossless, so the only change is the conversion

    result = process_image(source, DEFAULTS)

    expected = display_p3_to_srgb(p3_colour)  # about (215, 93, 31): far from the untouched (200, 100, 50)
    assert "colour converted from Display P3 to sRGB" in result.facts.notes
    for r in result.renditions:
        out = decoded(r)
        assert "icc_profile" not in out.info
        assert all(abs(a - b) <= 3 for a, b in zip(out.convert("RGB").getpixel((32, 32)), expected, strict=True))


def test_colour_conversion_keeps_the_alpha_channel():
    display_p3 = Image.open(HOSTILE / "made-displayp3-icc.jpg").info["icc_profile"]
    patch = Image.new("RGBA", (64, 64), (200, 100, 50, 255))
    patch.paste((0, 0, 0, 0), (0, 0, 32, 64))  # left half transparent

    webp = decoded(rendition(process_image(encode(patch, "PNG", icc_profile=display_p3), DEFAULTS), "thumb", "webp"))

    assert webp.getpixel((8, 8))[3] == 0
    assert webp.getpixel((48, 8))[3] == 255
    assert all(
        abs(a - b) <= 3 for a, b in zip(webp.getpixel((48, 8))[:3], display_p3_to_srgb((200, 100, 50)), strict=True)
    )


def test_display_p3_jpeg_from_the_corpus_is_converted():
    result = processed("hostile/made-displayp3-icc.jpg")

    assert "colour converted from Display P3 to sRGB" in result.facts.notes
    assert all("icc_profile" not in decoded(r).info for r in result.renditions)


def test_iphone_heic_is_decoded_upright_and_converted_from_display_p3():
    result = processed("photos/iphone_13_pro_max.heic")

    assert (result.facts.format, result.facts.mime) == ("HEIF", "image/heic")
    assert (result.facts.width, result.facts.height) == (3024, 4032)  # portrait: libheif applied the rotation
    assert "colour converted from Display P3 to sRGB" in result.facts.notes
    assert not any("rotated" in note for note in result.facts.notes)  # and no second rotation from EXIF
    optimized = decoded(rendition(result, "optimized", "jpeg"))
    assert optimized.size == (1440, 1920)
    for image in (optimized, decoded(rendition(result, "optimized", "webp"))):  # WebP: the 1280 px rung
        assert "icc_profile" not in image.info
        assert not image.getexif()
    # The HEIC is resized from bands of libheif's buffer; a plain full decode, resize and conversion must agree.
    with Image.open(PHOTOS / "iphone_13_pro_max.heic") as heic:
        full = heic.convert("RGB")
        display_p3 = ImageCms.ImageCmsProfile(io.BytesIO(heic.info["icc_profile"]))
    reference = ImageCms.profileToProfile(
        full.resize((1440, 1920), Image.Resampling.LANCZOS), display_p3, ImageCms.createProfile("sRGB")
    )
    assert mean_difference(decoded(rendition(result, "optimized", "jpeg")), reference) < 4  # JPEG noise ~3


def test_adobe_cmyk_jpeg_keeps_its_colours():
    # Pillow's own test of this file: top-left is red (C0 M1 Y1 K0), bottom-right is black (K1).
    # An un-inverted Adobe CMYK decode would give cyan on white instead.
    out = decoded(rendition(processed("hostile/pil_sample_cmyk.jpg"), "optimized", "jpeg"))

    red, green, blue = out.getpixel((2, 2))
    assert red > 200
    assert green < 60
    assert blue < 60
    assert max(out.getpixel((97, 97))) < 40
    assert out.mode == "RGB"


@pytest.mark.parametrize(
    ("path", "transparent_pixel"),
    [
        ("hostile/p_trns_single.png", (32, 32)),  # palette with a transparent index
        ("hostile/uncompressed_la.png", (0, 0)),  # grey + alpha
        ("hostile/star.avifs", (0, 0)),  # RGBA AVIF
    ],
)
def test_transparency_is_flattened_on_white_for_jpeg_and_kept_in_webp(path, transparent_pixel):
    result = processed(path)

    jpeg = decoded(rendition(result, "optimized", "jpeg"))
    webp = decoded(rendition(result, "optimized", "webp"))
    assert min(jpeg.convert("RGB").getpixel(transparent_pixel)) > 240
    assert webp.mode == "RGBA"
    assert webp.getpixel(transparent_pixel)[3] == 0
    assert "alpha flattened on white for JPEG" in result.facts.notes


def test_rgba_tiff_with_an_opaque_alpha_keeps_its_pixels_and_drops_the_channel():
    # BSG1.tiff is RGBA but every pixel is opaque, its corners really black: nothing to flatten, nothing to keep.
    with Image.open(PHOTOS / "BSG1.tiff") as source:
        assert source.mode == "RGBA"
        assert source.getchannel("A").getextrema() == (255, 255)
        reference = source.convert("RGB")
    result = processed("photos/BSG1.tiff")

    for fmt in ("jpeg", "webp"):
        out = decoded(rendition(result, "optimized", fmt))
        assert out.mode == "RGB"
        assert mean_difference(out, reference) < 8  # JPEG noise plus the Color LCD -> sRGB shift
    assert "alpha flattened on white for JPEG" not in result.facts.notes


def test_a_transparent_grey_in_a_png_becomes_alpha():
    source = encode(Image.new("L", (16, 16), 100), "PNG", transparency=100)  # tRNS: grey 100 is transparent

    result = process_image(source, DEFAULTS)

    assert decoded(rendition(result, "optimized", "webp")).getpixel((3, 3))[3] == 0
    assert decoded(rendition(result, "optimized", "jpeg")).getpixel((3, 3)) == (255, 255, 255)


def _grey_png(mode: str, value: int) -> bytes:
    return encode(Image.new(mode, (16, 16), value), "PNG")


@pytest.mark.parametrize(
    ("source", "expected_grey"),
    [
        (_grey_png("1", 1), 255),
        (_grey_png("L", 128), 128),
        (encode(Image.new("LA", (16, 16), (128, 255)), "PNG"), 128),
        (encode(Image.new("L", (16, 16), 128).convert("P"), "GIF"), 128),
        (_grey_png("I;16", 128 * 257), 128),  # 16-bit is scaled down, not clipped to white
        (encode(Image.new("I", (16, 16), 128 * 257), "TIFF"), 128),
        (encode(Image.new("F", (16, 16), 0.5), "TIFF"), 128),  # float in 0..1
        (encode(Image.new("CMYK", (16, 16), (0, 0, 0, 127)), "TIFF"), 128),
    ],
    ids=["1-bit", "L", "LA", "P", "I;16", "I", "F", "CMYK"],
)
def test_every_decoded_mode_becomes_an_8_bit_rgb_output(source, expected_grey):
    result = process_image(source, DEFAULTS)

    for r in result.renditions:
        pixel = decoded(r).convert("RGB").getpixel((8, 8))
        assert all(abs(channel - expected_grey) <= 3 for channel in pixel), pixel


# --- formats -------------------------------------------------------------------------------------------------------


def test_a_png_with_a_jpeg_name_is_recognised_as_png():
    # process_image gets bytes only, so a name cannot mislead it; the CLI test covers a misnamed file on disk.
    result = process_image(_grey_png("L", 10), DEFAULTS)
    assert (result.facts.format, result.facts.mime) == ("PNG", "image/png")


@pytest.mark.parametrize(
    ("source", "name"),
    [
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n", "PDF"),
        (encode(Image.new("RGB", (8, 8)), "BMP"), "BMP"),
        (encode(Image.new("RGB", (8, 8)), "TGA"), "not a recognised image type"),
        (b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"/>', "SVG"),
    ],
    ids=["pdf", "bmp", "tga", "svg"],
)
def test_formats_outside_the_allow_list_are_refused_by_name(source, name):
    with pytest.raises(UnsupportedFormat) as refused:
        process_image(source, DEFAULTS)
    assert refused.value.reason == f"unsupported format: {name}"


# --- limits --------------------------------------------------------------------------------------------------------


def test_a_file_over_the_byte_limit_is_refused_before_decoding():
    source = (PHOTOS / "DSCN0010.jpg").read_bytes()

    with pytest.raises(TooLarge) as refused:
        process_image(source, dataclasses.replace(DEFAULTS, max_bytes=100 * 1024))
    assert refused.value.reason == "file is 157.9 KB, the limit is 100.0 KB"


def test_the_pixel_limit_comes_from_the_settings_not_from_pillow():
    with pytest.raises(TooLarge) as refused:
        process_image((PHOTOS / "DSCN0010.jpg").read_bytes(), dataclasses.replace(DEFAULTS, max_pixels=300_000))
    assert refused.value.reason == "image is 640x480 pixels, the limit is 0.3 megapixels"
    assert Image.MAX_IMAGE_PIXELS == 89_478_485  # the process-wide guard is left as Pillow ships it


def test_pixels_are_counted_from_the_header_without_decoding(monkeypatch):
    def decode_attempted(*args, **kwargs):
        raise AssertionError("pixels were decoded before the limit was checked")

    monkeypatch.setattr(Image.core, "zip_decoder", decode_attempted)
    source = encode(Image.new("L", (2000, 1000)), "PNG")

    with pytest.raises(TooLarge, match="2000x1000 pixels"):
        process_image(source, dataclasses.replace(DEFAULTS, max_pixels=1_000_000))


def test_a_header_claiming_ten_gigapixels_is_refused_as_too_large():
    # A 100000 x 100000 PNG header followed by nothing: Pillow's own bomb guard trips at open.
    ihdr = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 0, 0, 0, 0)

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    source = (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 100)) + chunk(b"IEND", b"")
    )

    with pytest.raises(TooLarge, match="10,000,000,000 pixels"):
        process_image(source, DEFAULTS)


def test_frames_beyond_the_limit_are_refused():
    with pytest.raises(TooLarge) as refused:
        process_image((HOSTILE / "chi.gif").read_bytes(), dataclasses.replace(DEFAULTS, max_frames=10))
    assert refused.value.reason == "image has 31 frames, the limit is 10"


def test_an_empty_file_is_corrupt():
    with pytest.raises(CorruptImage, match="the file is empty"):
        process_image(b"", DEFAULTS)


def test_a_truncated_photo_is_refused_not_half_decoded():
    source = (PHOTOS / "DSCN0010.jpg").read_bytes()

    with pytest.raises(CorruptImage, match="truncated"):
        process_image(source[: len(source) // 2], DEFAULTS)


# --- placeholder ---------------------------------------------------------------------------------------------------


def _rows(image: Image.Image) -> list[list[list[int]]]:
    pixels = list(image.get_flattened_data())
    return [[list(pixels[y * image.width + x]) for x in range(image.width)] for y in range(image.height)]


@pytest.mark.parametrize("path", ["photos/Landscape_1.jpg", "photos/DSCN0021.jpg", "hostile/chi.gif"])
def test_blurhash_matches_the_reference_encoder(path):
    with Image.open(PHOTOS.parent / path) as image:
        small = placeholder.small_rgb(image.convert("RGBA") if image.mode == "P" else image)

    assert placeholder.blurhash(small) == reference_blurhash.encode(_rows(small), 4, 3)
    assert placeholder.blurhash(small, 3, 4) == reference_blurhash.encode(_rows(small), 3, 4)


def test_facts_carry_a_4x3_blurhash_whose_average_colour_is_the_photos():
    result = processed("photos/DSCN0021.jpg")
    thumb = decoded(rendition(result, "thumb", "jpeg"))

    code = result.facts.blurhash
    assert len(code) == 4 + 2 * 12
    assert code[0] == "L"
    dc = 0
    for char in code[2:6]:
        dc = dc * 83 + placeholder._BASE83.index(char)
    average_colour = (dc >> 16, (dc >> 8) & 255, dc & 255)
    # BlurHash averages in linear light, ImageStat in sRGB: close, not equal.
    assert all(abs(a - b) < 25 for a, b in zip(average_colour, ImageStat.Stat(thumb).mean, strict=True))


def test_dominant_colour_is_the_most_common_colour():
    image = Image.new("RGB", (32, 32), (200, 30, 40))
    image.paste((20, 40, 220), (0, 0, 32, 8))  # a quarter blue

    assert placeholder.dominant_color(image) == "#c81e28"
    assert processed("photos/Canon_40D.jpg").facts.dominant_color.startswith("#")


# --- AVIF (off by default) ------------------------------------------------------------------------------------------


def test_avif_is_a_third_format_for_every_rung_only_when_enabled():
    source = (PHOTOS / "DSCN0021.jpg").read_bytes()  # carries GPS
    assert {r.format for r in processed("photos/DSCN0021.jpg").renditions} == {"jpeg", "webp"}

    result = process_image(source, dataclasses.replace(DEFAULTS, avif=True))

    avif = [r for r in result.renditions if r.format == "avif"]
    assert [(r.name, r.width, r.height) for r in avif] == [
        (r.name, r.width, r.height) for r in result.renditions if r.format == "jpeg"
    ]
    for r in avif:
        image = decoded(r)
        assert (image.format, image.size, r.content_type) == ("AVIF", (r.width, r.height), "image/avif")
        assert not image.getexif()
        assert b"GPS" not in r.data
    widest = rendition(result, "optimized", "jpeg")
    assert mean_difference(decoded(rendition(result, "optimized", "avif")), decoded(widest)) < 12  # same picture
