"""Animations kept: animated GIF and WebP uploads become animated WebP renditions (plus the still poster) through the
processor Lambda on moto, within MAX_FRAMES and MAX_ANIMATION_PIXELS; the API, the detail page and the CLI show them.

The two animations are made here: a GIF of moving squares on a transparent background (frames of different
durations, a loop count) and a WebP of a bouncing disc over a gradient.
"""

from __future__ import annotations

import dataclasses
import io
import itertools
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import HOSTILE, PHOTOS, ROOT
from PIL import Image, ImageChops, ImageDraw, ImageStat
from test_api import get
from test_processor import ProcessorEvents, deliver, public_keys, record_for

from lambdas.image_api import handler as image_api
from lambdas.image_processor import handler as processor_lambda
from pipeline import keys
from pipeline.config import ImagingSettings
from pipeline.imaging import TooLarge, process_image
from pipeline.imaging.animation import MAX_ANIMATED_WIDTH
from pipeline.processing import ImageProcessor
from pipeline.records import ImageRecord, Status

GIF_DURATIONS = [60, 80, 100, 120, 140, 160, 180, 200]
WEBP_DURATIONS = [40, 40, 90, 90, 40, 40, 90, 90, 40, 40]
GIF_LOOP = 3  # the NETSCAPE extension's repeats: the GIF plays 4 times, as the WebP must
DEFAULTS = ImagingSettings()


def moving_squares_gif(size: tuple[int, int] = (720, 480)) -> bytes:
    """8 frames: a red square moving right and a blue one moving down over a transparent background."""
    frames = []
    for index in range(len(GIF_DURATIONS)):
        frame = Image.new("RGBA", size, (0, 0, 0, 0))
        draw = ImageDraw.Draw(frame)
        x, y = 40 + index * 70, 30 + index * 45
        draw.rectangle((x, 60, x + 120, 180), fill=(220, 30, 30, 255))
        draw.rectangle((420, y, 540, y + 120), fill=(30, 60, 220, 255))
        frames.append(frame)
    buffer = io.BytesIO()
    frames[0].save(
        buffer,
        "GIF",
        save_all=True,
        append_images=frames[1:],
        duration=GIF_DURATIONS,
        loop=GIF_LOOP,
        disposal=2,
        optimize=False,
    )
    return buffer.getvalue()


def bouncing_disc_webp(size: tuple[int, int] = (400, 300)) -> bytes:
    """10 opaque frames: a disc bouncing over a horizontal gradient, with an EXIF block that must not survive."""
    gradient = Image.linear_gradient("L").rotate(90).resize(size).convert("RGB")
    frames = []
    for index in range(len(WEBP_DURATIONS)):
        frame = gradient.copy()
        x = 20 + index * 32
        y = 40 + abs(5 - index) * 30
        ImageDraw.Draw(frame).ellipse((x, y, x + 80, y + 80), fill=(250, 200, 20))
        frames.append(frame)
    exif = Image.Exif()
    exif[0x010F] = "Secret Camera Maker"  # Make
    buffer = io.BytesIO()
    frames[0].save(
        buffer,
        "WEBP",
        save_all=True,
        append_images=frames[1:],
        duration=WEBP_DURATIONS,
        loop=0,
        quality=90,
        exif=exif.tobytes(),
    )
    return buffer.getvalue()


@pytest.fixture
def events(aws, pipeline_settings, monkeypatch) -> ProcessorEvents:
    """The processor Lambda and the read API Lambda wired to this test's moto and settings."""
    processor = ImageProcessor(pipeline_settings, aws.image_store(), aws.object_store())
    monkeypatch.setattr(processor_lambda, "processor", processor)
    monkeypatch.setattr(image_api, "aws", aws)
    monkeypatch.setattr(image_api, "settings", pipeline_settings)
    return ProcessorEvents(aws.s3, pipeline_settings.bucket)


def processed(events, aws, settings, key: str, body: bytes | Path) -> ImageRecord:
    deliver(events.put(key, body), events)
    record = record_for(aws, settings, key)
    assert record is not None
    assert record.status is Status.READY, record.failure_reason
    return record


def stored(aws, settings, key: str) -> bytes:
    return aws.s3.get_object(Bucket=settings.bucket, Key=key)["Body"].read()


def frames_of(data: bytes) -> tuple[Image.Image, list[int]]:
    """The decoded WebP and each frame's duration (ms)."""
    image = Image.open(io.BytesIO(data))
    durations = []
    for index in range(image.n_frames):
        image.seek(index)
        image.load()
        durations.append(image.info["duration"])
    image.seek(0)
    return image, durations


def animated(record: ImageRecord) -> list:
    return sorted((r for r in record.renditions if r.name == "animated"), key=lambda r: r.width, reverse=True)


# -- through the processor Lambda ---------------------------------------------------------------------------------


def test_animated_gif_becomes_an_animated_webp_with_every_frame_its_durations_and_loop(events, aws, pipeline_settings):
    source = moving_squares_gif()
    record = processed(events, aws, pipeline_settings, "raw/squares.gif", source)

    webps = animated(record)
    # The ladder's widths up to 640 (720 itself is wider), never upscaled; each keeps the 3:2 shape.
    assert [(r.width, r.height) for r in webps] == [(640, 427), (480, 320), (320, 213)]
    assert record.frames == len(GIF_DURATIONS)
    (version,) = {r.key.rsplit("/", 1)[1].split("-")[0] for r in record.renditions}  # one run, one version
    for rendition in webps:
        assert (
            rendition.key
            == (f"public/optimized/{record.id}/{version}-{rendition.width}-animated.webp")
            == keys.rendition_key(
                record.id, "animated", "webp", version=version, width=rendition.width, height=rendition.height
            )
        )
        data = stored(aws, pipeline_settings, rendition.key)
        assert len(data) == rendition.bytes
        image, durations = frames_of(data)
        assert (image.format, image.is_animated, image.n_frames) == ("WEBP", True, len(GIF_DURATIONS))
        assert image.size == (rendition.width, rendition.height)
        assert durations == GIF_DURATIONS
        assert image.info["loop"] == GIF_LOOP + 1  # WebP counts plays, GIF repeats after the first
    # Everything stored is named by the record, once.
    assert public_keys(aws, pipeline_settings) == sorted(r.key for r in record.renditions)
    assert f"animated GIF kept as animated WebP: {len(GIF_DURATIONS)} frames at widths 640, 480, 320" in record.notes
    assert not any("first of" in note for note in record.notes)


def test_the_gif_keeps_its_transparency_and_motion_in_every_frame(events, aws, pipeline_settings):
    record = processed(events, aws, pipeline_settings, "raw/squares.gif", moving_squares_gif())

    image, _ = frames_of(stored(aws, pipeline_settings, animated(record)[-1].key))  # 320x213: scale 4/9
    seen = []
    for index in range(image.n_frames):
        image.seek(index)
        frame = image.convert("RGBA")
        assert frame.getpixel((2, 210))[3] == 0  # the background stays transparent
        red = [x for x in range(frame.width) if _is_red(frame.getpixel((x, 53)))]
        seen.append(min(red))
    # The red square moves right by 70 px a frame at the source's scale: about 31 px here, every frame.
    steps = [after - before for before, after in itertools.pairwise(seen)]
    assert all(28 <= step <= 34 for step in steps), steps


def test_animated_webp_becomes_an_animated_webp_without_metadata_and_a_still_poster(events, aws, pipeline_settings):
    source = bouncing_disc_webp()
    record = processed(events, aws, pipeline_settings, "raw/disc.webp", source)

    assert [(r.width, r.height) for r in animated(record)] == [(400, 300), (320, 240)]  # the ladder's widths
    for webp in animated(record):
        data = stored(aws, pipeline_settings, webp.key)
        image, durations = frames_of(data)
        assert (image.n_frames, durations, image.info["loop"]) == (len(WEBP_DURATIONS), WEBP_DURATIONS, 0)
        for chunk in (b"EXIF", b"XMP ", b"ICCP"):
            assert chunk not in data
        assert b"Secret Camera Maker" not in data
    # The poster: the ladder's JPEGs are the first frame, stills, without metadata.
    poster = next(r for r in record.renditions if r.name == "optimized" and r.format == "jpeg" and r.width == 400)
    still = Image.open(io.BytesIO(stored(aws, pipeline_settings, poster.key)))
    assert (still.format, getattr(still, "n_frames", 1)) == ("JPEG", 1)
    assert not still.getexif()
    first = Image.open(io.BytesIO(source)).convert("RGB")
    assert _mean_difference(still.convert("RGB"), first) < 6


def test_a_moving_object_leaves_no_ghost_where_it_was():
    """A ball crossing a flat background: every frame of the animated WebP shows the background where the ball was
    before (lossy frames blended over the last canvas left faint trails there: the reason for allow_mixed)."""
    background, frames = (240, 240, 250), []
    for index in range(12):
        frame = Image.new("RGB", (320, 200), background)
        ImageDraw.Draw(frame).ellipse((10 + index * 22, 70, 60 + index * 22, 120), fill=(220, 40, 40))
        frames.append(frame)
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:], duration=80, loop=0)

    (encoded,) = [r for r in process_image(buffer.getvalue(), ImagingSettings()).renditions if r.name == "animated"]

    image, _ = frames_of(encoded.data)
    assert image.n_frames == 12
    for index, source in enumerate(frames):
        image.seek(index)
        shown = image.convert("RGB")
        # Outside the ball's own box (a margin for resampling), the frame is the background: no trail of any frame.
        ball = (10 + index * 22 - 4, 66, 64 + index * 22, 124)
        mask = Image.new("L", shown.size, 255)
        ImageDraw.Draw(mask).rectangle(ball, fill=0)
        plain = Image.new("RGB", shown.size, background)
        off_ball = Image.composite(shown, plain, mask)
        worst = max(high for _, high in ImageChops.difference(off_ball, plain).getextrema())
        assert worst <= 8, f"frame {index}: a trail {worst} levels off the background"
        assert _mean_difference(shown, source) < 2


def test_the_total_pixel_budget_drops_the_widest_animated_rungs_first():
    frames = len(GIF_DURATIONS)
    budget = frames * (480 * 320 + 320 * 213)
    result = process_image(moving_squares_gif(), dataclasses.replace(DEFAULTS, max_animation_pixels=budget))

    assert [r.width for r in result.renditions if r.name == "animated"] == [480, 320]
    pixels = sum(frames * r.width * r.height for r in result.renditions if r.name == "animated")
    assert pixels <= budget


@pytest.mark.parametrize("settings_env", [{"MAX_ANIMATION_PIXELS": "100000"}])
def test_over_the_budget_the_upload_falls_back_to_the_still_with_the_reason(events, aws, pipeline_settings):
    record = processed(events, aws, pipeline_settings, "raw/squares.gif", moving_squares_gif())

    assert animated(record) == []
    assert {r.name for r in record.renditions} == {"thumb", "optimized"}
    assert "animated GIF: first of 8 frames used" in record.notes
    assert (
        "animation not kept: 8 frames at 320x213 are 0.545 Mpx, more than the 0.1 Mpx MAX_ANIMATION_PIXELS allows"
        in record.notes
    )
    assert get(f"/images/{record.id}").json["animation"] is None


@pytest.mark.parametrize("settings_env", [{"ANIMATION": "off"}])
def test_with_animation_off_an_animated_upload_gives_its_first_frame_as_before(events, aws, pipeline_settings):
    record = processed(events, aws, pipeline_settings, "raw/disc.webp", bouncing_disc_webp())

    assert animated(record) == []
    assert record.notes == ("animated WEBP: first of 10 frames used",)


def test_an_animation_with_an_exif_orientation_is_turned_upright_like_its_poster():
    frames = []
    for index in range(4):
        frame = Image.new("RGB", (300, 200), "white")  # stored landscape, the red bar on the left
        ImageDraw.Draw(frame).rectangle((0, 0, 40 + index * 10, 199), fill="red")
        frames.append(frame)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to view: the bar ends up on top
    buffer = io.BytesIO()
    frames[0].save(buffer, "WEBP", save_all=True, append_images=frames[1:], duration=50, exif=exif.tobytes())

    result = process_image(buffer.getvalue(), DEFAULTS)

    (webp,) = [r for r in result.renditions if r.name == "animated"]
    poster = next(r for r in result.renditions if r.name == "optimized" and r.format == "jpeg")
    image, _ = frames_of(webp.data)
    assert image.size == (poster.width, poster.height) == (200, 300)
    assert image.convert("RGB").getpixel((100, 10))[1] < 80  # red at the top, as in the poster
    assert Image.open(io.BytesIO(poster.data)).getpixel((100, 10))[1] < 80
    assert image.convert("RGB").getpixel((100, 290)) == (255, 255, 255)


def test_max_frames_still_refuses_any_file_with_more_frames():
    with pytest.raises(TooLarge, match="image has 8 frames, the limit is 5"):
        process_image(moving_squares_gif(), dataclasses.replace(DEFAULTS, max_frames=5))


def test_animated_files_sit_in_the_image_folders_that_listings_and_invalidations_name_once(
    events, aws, pipeline_settings
):
    record = processed(events, aws, pipeline_settings, "raw/squares.gif", moving_squares_gif())

    for rendition in animated(record):
        assert [p for p in keys.image_rendition_prefixes(record.id) if rendition.key.startswith(p)] == [
            f"public/optimized/{record.id}/"
        ]
        path = "/" + keys.cdn_path(rendition.key)
        assert [p for p in keys.cdn_invalidation_paths(record.id) if path.startswith(p.rstrip("*"))] == [
            f"/optimized/{record.id}/*"
        ]
        assert keys.hidden_key(rendition.key).startswith(f"hidden/optimized/{record.id}/")


# -- what is not an animation --------------------------------------------------------------------------------------


def test_a_still_photo_gets_no_animated_rendition():
    result = process_image((PHOTOS / "DSCN0010.jpg").read_bytes(), DEFAULTS)

    assert "animated" not in {r.name for r in result.renditions}


@pytest.mark.parametrize("fmt", ["TIFF", "MPO"])
def test_several_pictures_in_one_file_are_not_an_animation(fmt):
    pages = [Image.new("RGB", (200, 150), colour) for colour in ("red", "green", "blue")]
    buffer = io.BytesIO()
    pages[0].save(buffer, fmt, save_all=True, append_images=pages[1:])

    result = process_image(buffer.getvalue(), DEFAULTS)

    assert result.facts.frames == 3
    assert "animated" not in {r.name for r in result.renditions}


def test_a_multi_image_heif_is_not_an_animation():
    pillow_heif = pytest.importorskip("pillow_heif")
    pictures = pillow_heif.from_pillow(Image.new("RGB", (200, 150), "red"))
    pictures.add_from_pillow(Image.new("RGB", (200, 150), "blue"))
    buffer = io.BytesIO()
    pictures.save(buffer, quality=80)

    result = process_image(buffer.getvalue(), DEFAULTS)

    assert result.facts.frames == 2
    assert "animated" not in {r.name for r in result.renditions}


def test_an_apng_default_image_outside_the_animation_is_its_poster_not_a_frame():
    default = Image.new("RGB", (200, 150), "white")  # what viewers without APNG show
    frames = [Image.new("RGB", (200, 150), colour) for colour in ("red", "green", "blue")]
    buffer = io.BytesIO()
    default.save(buffer, "PNG", save_all=True, append_images=frames, default_image=True, duration=[50, 60, 70])

    result = process_image(buffer.getvalue(), DEFAULTS)

    (webp,) = [r for r in result.renditions if r.name == "animated"]
    image, durations = frames_of(webp.data)
    assert durations == [50, 60, 70]
    assert image.convert("RGB").getpixel((100, 75))[0] > 200  # red first
    poster = next(r for r in result.renditions if r.name == "optimized" and r.format == "jpeg")
    assert Image.open(io.BytesIO(poster.data)).getpixel((100, 75)) == (255, 255, 255)


@pytest.mark.parametrize("name", ["chi.gif", "iss634.webp", "iss634.apng", "star.avifs"])
def test_the_corpus_animations_are_kept_within_the_budget(name):
    source = (HOSTILE / name).read_bytes()
    frames = Image.open(io.BytesIO(source)).n_frames

    result = process_image(source, DEFAULTS)

    (webp,) = [r for r in result.renditions if r.name == "animated"]
    assert webp.width <= MAX_ANIMATED_WIDTH
    assert frames * webp.width * webp.height <= DEFAULTS.max_animation_pixels
    image, durations = frames_of(webp.data)
    assert image.is_animated
    # libwebp merges a frame identical to the one before it into it (9 of chi.gif's 31): every other frame is kept,
    # and the time stays.
    source_image, source_durations = frames_of(source)
    assert image.n_frames == frames - _repeated_frames(source_image)
    assert sum(durations) == sum(_browser_ms(source_image.format, d) for d in source_durations)


def test_an_animation_whose_later_frame_is_corrupt_keeps_its_still_with_the_reason():
    source = moving_squares_gif()

    result = process_image(source[: len(source) * 3 // 4], DEFAULTS)  # the header and 6 frames' starts are whole

    assert "animated" not in {r.name for r in result.renditions}
    assert {r.name for r in result.renditions} == {"thumb", "optimized"}
    assert "animated GIF: first of 6 frames used" in result.facts.notes
    assert any(note.startswith("animation not kept: the GIF data is corrupt") for note in result.facts.notes)


# -- the API, the detail page and the CLI ---------------------------------------------------------------------------


def test_the_api_document_offers_the_animation_and_keeps_the_poster_as_the_default(events, aws, pipeline_settings):
    record = processed(events, aws, pipeline_settings, "raw/squares.gif", moving_squares_gif())

    document = get(f"/images/{record.id}").json
    animation = document["animation"]
    cdn = pipeline_settings.cdn_url
    urls = {r.width: f"{cdn}/{keys.cdn_path(r.key)}" for r in animated(record)}
    assert animation == {
        "srcset": f"{urls[320]} 320w, {urls[480]} 480w, {urls[640]} 640w",
        "url": urls[640],
        "frames": 8,
    }
    assert document["optimized"].endswith("-720.jpg")  # the poster: the widest still JPEG
    assert [s["name"] for s in document["sources"]][-3:] == ["animated"] * 3
    assert "animated" not in document["srcset"].get("webp", "") + document["srcset"]["jpeg"]


def test_a_still_has_no_animation_in_its_document(events, aws, pipeline_settings):
    record = processed(events, aws, pipeline_settings, "raw/photo.jpg", PHOTOS / "DSCN0010.jpg")

    assert get(f"/images/{record.id}").json["animation"] is None


def test_the_detail_page_plays_the_animation_unless_reduced_motion_is_asked_for(
    events, aws, pipeline_settings, site_aws, client
):
    record = processed(events, aws, pipeline_settings, "raw/squares.gif", moving_squares_gif())
    photo = processed(events, aws, pipeline_settings, "raw/photo.jpg", PHOTOS / "DSCN0010.jpg")

    html = client.get(f"/images/{record.id}/").content.decode()
    gallery = client.get("/").content.decode()

    (source,) = re.findall(r'<source type="image/webp" media="\(prefers-reduced-motion: no-preference\)"[^>]*>', html)
    assert all(keys.cdn_path(r.key) in source for r in animated(record))
    # The still sources and the JPEG poster follow it: what reduced motion and browsers without WebP get.
    assert html.index(source) < html.index('<source type="image/webp" srcset=') < html.index("<img src=")
    assert re.search(r'<img src="[^"]+-720\.jpg"', html)
    # Gallery tiles stay still; a still photo's page has no animated source.
    assert "-animated.webp" not in gallery
    assert "prefers-reduced-motion" not in client.get(f"/images/{photo.id}/").content.decode()


def test_the_cli_writes_the_animated_renditions_beside_the_stills(tmp_path):
    upload = tmp_path / "squares.gif"
    upload.write_bytes(moving_squares_gif())

    done = subprocess.run(
        [sys.executable, "-m", "pipeline", str(upload), "--out", str(tmp_path / "out")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    written = sorted(path.name for path in (tmp_path / "out" / "animated").iterdir())
    assert written == ["squares-320.webp", "squares-480.webp", "squares-640.webp"]
    assert sorted(Path(r["path"]).name for r in report["renditions"] if r["name"] == "animated") == written
    assert Image.open(tmp_path / "out" / "animated" / "squares-640.webp").n_frames == len(GIF_DURATIONS)
    assert report["facts"]["frames"] == len(GIF_DURATIONS)


# -- helpers --------------------------------------------------------------------------------------------------------


def _is_red(pixel: tuple[int, ...]) -> bool:
    red, green, blue, alpha = pixel
    return alpha > 200 and red > 150 and green < 90 and blue < 90


def _mean_difference(one: Image.Image, other: Image.Image) -> float:
    return sum(ImageStat.Stat(ImageChops.difference(one, other)).mean) / 3


def _repeated_frames(image: Image.Image) -> int:
    """How many frames show exactly what the frame before them shows."""
    repeated, previous = 0, None
    for index in range(image.n_frames):
        image.seek(index)
        frame = image.convert("RGBA")
        if previous is not None and ImageChops.difference(frame, previous).getbbox(alpha_only=False) is None:
            repeated += 1
        previous = frame
    return repeated


def _browser_ms(fmt: str, duration: int) -> int:
    """A GIF frame of 10 ms or less plays for 100 ms in browsers, and so in the WebP made from it."""
    return 100 if fmt == "GIF" and duration <= 10 else duration


def test_bench_reports_cpu_and_bytes_of_every_animation(tmp_path):
    report = tmp_path / "animation.json"

    done = subprocess.run(
        [sys.executable, "-m", "bench.animation", "--passes", "1", "--no-rss", "--json", str(report)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    files = json.loads(report.read_text())["files"]
    assert set(files) == {
        "chi.gif",
        "iss634.webp",
        "iss634.apng",
        "star.avifs",
        "made-ball.gif",
        "made-pan-960.gif",
        "made-pan-960.webp",
    }
    for measured in files.values():
        assert measured["on"]["cpu_s"] > 0
        assert measured["off"]["cpu_s"] > 0
        assert [a["width"] for a in measured["on"]["animated"]]
        assert measured["off"]["animated"] == []
        assert all(a["bytes"] > 0 for a in measured["on"]["animated"])
    assert "| made-pan-960.gif |" in done.stdout
