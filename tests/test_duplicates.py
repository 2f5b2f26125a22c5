"""Duplicates through the processor Lambda on moto: the same bytes uploaded again are flagged (DUPLICATES=process)
or refused without imaging (DUPLICATES=skip); near-duplicates by perceptual hash with NEAR_DUPLICATES."""

from __future__ import annotations

import io
import re
import sys
from pathlib import Path

import pillow_heif
import pytest
from conftest import HOSTILE, PHOTOS
from PIL import Image, ImageDraw, ImageOps
from test_processor import ProcessorEvents, deliver, record_for

from infra import package
from lambdas.image_processor import handler as processor_lambda
from pipeline import duplicates, records, trash, visibility
from pipeline.processing import ImageProcessor, ObjectCreated, Reason, Result
from pipeline.records import ImageRecord, Status
from pipeline.store import NoCdnCache

# Small corpus photos (640x480 and 800x600): quick to process, and two different pictures.
PHOTO = PHOTOS / "DSCN0010.jpg"
OTHER_PHOTO = PHOTOS / "nikon-e950.jpg"
SKIP = {"DUPLICATES": "skip"}
NEAR = {"NEAR_DUPLICATES": "on"}


class Gallery:
    """The processor Lambda on moto, fed real-shaped SQS-wrapped S3 events for what a test uploads."""

    def __init__(self, aws, settings) -> None:
        self.aws = aws
        self.settings = settings
        self.images = aws.image_store()
        self.events = ProcessorEvents(aws.s3, settings.bucket)

    def upload(self, key: str, body: Path | bytes) -> ImageRecord:
        deliver(self.events.put(key, body), self.events)
        return self.record(key)

    def reprocess(self, key: str) -> ImageRecord:
        """What Reprocess makes S3 send: the same object announced again."""
        deliver(self.events.announced(key), self.events)
        return self.record(key)

    def record(self, key: str) -> ImageRecord:
        record = record_for(self.aws, self.settings, key)
        assert record is not None
        return record

    def files(self, record: ImageRecord) -> set[str]:
        return visibility.stored_rendition_keys(self.aws.object_store(), record.id)

    def trash(self, record: ImageRecord) -> None:
        trash.trash(self.images, self.aws.object_store(), NoCdnCache(), record.id, by="root", retention_days=30)


@pytest.fixture
def gallery(aws, pipeline_settings, monkeypatch) -> Gallery:
    monkeypatch.setattr(
        processor_lambda, "processor", ImageProcessor(pipeline_settings, aws.image_store(), aws.object_store())
    )
    return Gallery(aws, pipeline_settings)


def recompressed(path, *, scale: float, quality: int) -> bytes:
    """Another upload of the same picture: scaled and saved again as JPEG (other bytes, same photo)."""
    with Image.open(path) as image:
        smaller = image.convert("RGB").resize((round(image.width * scale), round(image.height * scale)))
    out = io.BytesIO()
    smaller.save(out, "JPEG", quality=quality)
    return out.getvalue()


# -- exact duplicates ------------------------------------------------------------------------------------------


def test_same_bytes_again_is_processed_and_flagged_as_a_duplicate_of_the_first(gallery: Gallery) -> None:
    first = gallery.upload("raw/first.jpg", PHOTO)
    second = gallery.upload("raw/second.jpg", PHOTO)

    assert (first.status, first.duplicate_of) == (Status.READY, None)
    assert (second.status, second.duplicate_of) == (Status.READY, first.id)
    assert second.renditions
    assert second.sha256 == first.sha256


def test_a_third_copy_points_at_the_earliest_image(gallery: Gallery) -> None:
    first = gallery.upload("raw/first.jpg", PHOTO)
    gallery.upload("raw/second.jpg", PHOTO)
    third = gallery.upload("raw/third.jpg", PHOTO)

    assert third.duplicate_of == first.id


@pytest.mark.parametrize("settings_env", [SKIP])
def test_skip_mode_fails_the_copy_with_a_link_and_makes_no_file(gallery: Gallery) -> None:
    first = gallery.upload("raw/first.jpg", PHOTO)
    gallery.images.update(first.id, lambda current: current and current.replace(title="Harbour"))
    second = gallery.upload("raw/second.jpg", PHOTO)

    assert second.status is Status.FAILED
    assert second.duplicate_of == first.id
    assert second.sha256 == first.sha256
    assert second.failure_reason == (
        f"Already in the gallery as \u201cHarbour\u201d ({first.id}); not processed again (DUPLICATES=skip)."
    )
    assert second.renditions == ()
    assert second.width is None
    assert gallery.files(second) == set()
    assert gallery.files(first) == {r.key for r in first.renditions}


@pytest.mark.parametrize("settings_env", [SKIP])
def test_skip_mode_outcome_carries_the_duplicate_reason_code(gallery: Gallery) -> None:
    gallery.upload("raw/first.jpg", PHOTO)
    s3 = gallery.events.put("raw/second.jpg", PHOTO)["Records"][0]["s3"]
    outcome = processor_lambda.processor.process(
        ObjectCreated(gallery.settings.bucket, "raw/second.jpg", s3["object"]["sequencer"], s3["object"]["eTag"])
    )

    assert (outcome.result, outcome.reason) == (Result.FAILED, Reason.DUPLICATE_IMAGE)
    assert Reason.DUPLICATE_IMAGE != Reason.DUPLICATE  # a repeated S3 delivery is another thing


def test_reprocessing_the_original_does_not_flag_it(gallery: Gallery) -> None:
    first = gallery.upload("raw/first.jpg", PHOTO)
    gallery.upload("raw/second.jpg", PHOTO)

    again = gallery.reprocess("raw/first.jpg")

    assert again is not None
    assert again.status is Status.READY
    assert again.processed_at != first.processed_at
    assert again.duplicate_of is None


def test_reprocessing_the_copy_keeps_its_flag(gallery: Gallery) -> None:
    first = gallery.upload("raw/first.jpg", PHOTO)
    gallery.upload("raw/second.jpg", PHOTO)

    assert gallery.reprocess("raw/second.jpg").duplicate_of == first.id


@pytest.mark.parametrize("settings_env", [SKIP])
def test_a_trashed_original_is_not_a_duplicate_target(gallery: Gallery) -> None:
    first = gallery.upload("raw/first.jpg", PHOTO)
    gallery.trash(first)

    second = gallery.upload("raw/second.jpg", PHOTO)

    assert (second.status, second.duplicate_of) == (Status.READY, None)
    assert second.renditions


@pytest.mark.parametrize("settings_env", [SKIP])
def test_a_failed_original_is_not_a_duplicate_target(gallery: Gallery) -> None:
    broken = (HOSTILE / "truncated_jpeg.jpg").read_bytes()
    first = gallery.upload("raw/first.jpg", broken)
    assert first.status is Status.FAILED

    second = gallery.upload("raw/second.jpg", broken)

    assert second.duplicate_of is None
    assert "DUPLICATES" not in (second.failure_reason or "")
    assert gallery.images.lookup(records.sha256_pk(first.sha256)) == []


def test_a_flag_stays_as_history_when_its_target_goes_to_the_trash(gallery: Gallery) -> None:
    """The pages show its link only while the target is listed (tests/test_my_uploads.py, tests/test_review.py)."""
    first = gallery.upload("raw/first.jpg", PHOTO)
    second = gallery.upload("raw/second.jpg", PHOTO)
    assert second.duplicate_of == first.id

    gallery.trash(first)

    assert gallery.record("raw/second.jpg").duplicate_of == first.id
    # A trashed image is no duplicate target: its lookup item went with the write that trashed it.
    assert [item["image_id"] for item in gallery.images.lookup(records.sha256_pk(first.sha256))] == [second.id]


# -- near duplicates -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("settings_env", [NEAR])
def test_a_resized_recompressed_copy_is_flagged_as_a_near_duplicate(gallery: Gallery) -> None:
    first = gallery.upload("raw/first.jpg", PHOTO)
    copy = gallery.upload("raw/copy.jpg", recompressed(PHOTO, scale=0.5, quality=60))

    assert first.phash
    assert len(first.phash) == duplicates.PHASH_HEX_DIGITS
    assert copy.sha256 != first.sha256
    assert (copy.status, copy.duplicate_of, copy.near_duplicate_of) == (Status.READY, None, first.id)


@pytest.mark.parametrize("settings_env", [NEAR])
def test_an_unrelated_photo_is_never_flagged(gallery: Gallery) -> None:
    gallery.upload("raw/first.jpg", PHOTO)
    other = gallery.upload("raw/other.jpg", OTHER_PHOTO)

    assert (other.duplicate_of, other.near_duplicate_of) == (None, None)


@pytest.mark.parametrize("settings_env", [NEAR])
def test_an_exact_duplicate_is_not_also_a_near_duplicate(gallery: Gallery) -> None:
    first = gallery.upload("raw/first.jpg", PHOTO)
    second = gallery.upload("raw/second.jpg", PHOTO)

    assert (second.duplicate_of, second.near_duplicate_of) == (first.id, None)


def test_without_near_duplicates_no_perceptual_hash_is_kept(gallery: Gallery) -> None:
    first = gallery.upload("raw/first.jpg", PHOTO)

    assert first.phash is None
    assert all(not item["pk"].startswith("PHASH#") for item in first.lookup_items())


# -- the perceptual hash against imagehash, its reference -------------------------------------------------------

CORPUS_PHOTOS = sorted(path for path in PHOTOS.iterdir() if path.suffix.lower() in {".jpg", ".heic", ".tiff"})


def saved_again(image: Image.Image, file_format: str, quality: int) -> Image.Image:
    out = io.BytesIO()
    image.save(out, file_format, quality=quality)
    return Image.open(io.BytesIO(out.getvalue()))


def as_uploaded_again(image: Image.Image) -> dict[str, Image.Image]:
    """The picture as the processor hashes it (its 320 px rung) and as other uploads of it would be decoded."""
    width, height = image.size
    return {
        "full decode": image,
        "320 px rung": image.resize((320, max(1, round(height * 320 / width))), Image.Resampling.LANCZOS),
        "resized 50%": image.resize((width // 2, height // 2)),
        "resized to 97 px, bilinear": image.resize((97, max(1, height * 97 // width)), Image.Resampling.BILINEAR),
        "JPEG q40": saved_again(image, "JPEG", 40),
        "WebP q75": saved_again(image, "WEBP", 75),
    }


@pytest.mark.parametrize("path", CORPUS_PHOTOS, ids=lambda path: path.name)
def test_perceptual_hash_is_imagehash_phash_bit_for_bit_on_every_corpus_photo_and_its_copies(path: Path) -> None:
    import imagehash  # a test dependency only: the reference the shipped pure-Python pHash is held to

    pillow_heif.register_heif_opener()
    with Image.open(path) as opened:
        upright = ImageOps.exif_transpose(opened).convert("RGB")

    hashes = {
        kind: (duplicates.perceptual_hash(image), str(imagehash.phash(image)))
        for kind, image in as_uploaded_again(upright).items()
    }

    assert {kind: ours for kind, (ours, _) in hashes.items()} == {kind: theirs for kind, (_, theirs) in hashes.items()}
    assert all(len(ours) == duplicates.PHASH_HEX_DIGITS for ours, _ in hashes.values())


def generated_pictures() -> dict[str, Image.Image]:
    """Flat, ramped and mirror-symmetric pictures: many DCT coefficients are exactly zero, so a hash that rounds
    them to noise (a plain cosine sum does) puts the median, and half the bits, elsewhere than imagehash."""
    square = Image.new("L", (64, 64), 0)
    ImageDraw.Draw(square).rectangle((16, 16, 47, 47), fill=255)
    disc = Image.new("RGB", (90, 60), "navy")
    ImageDraw.Draw(disc).ellipse((20, 5, 69, 54), fill="orange")
    pictures = {f"flat {value}": Image.new("L", (40, 30), value) for value in (0, 1, 128, 255)}
    pictures |= {
        "flat colour": Image.new("RGB", (3, 500), "teal"),
        "1x1": Image.new("RGB", (1, 1), "red"),
        "ramp": Image.linear_gradient("L"),
        "ramp turned": Image.linear_gradient("L").rotate(90),
        "ramp turned 45": Image.linear_gradient("L").rotate(45),
        "radial": Image.radial_gradient("L"),
        "square": square,
        "disc": disc,
    }
    pictures |= {f"radial in {mode}": Image.radial_gradient("L").convert(mode) for mode in ("RGBA", "P", "1", "I", "F")}
    return pictures


@pytest.mark.parametrize("name", list(generated_pictures()))
def test_perceptual_hash_is_imagehash_phash_on_flat_and_symmetric_pictures(name: str) -> None:
    import imagehash

    picture = generated_pictures()[name]

    assert duplicates.perceptual_hash(picture) == str(imagehash.phash(picture))


def test_perceptual_hash_needs_neither_numpy_nor_scipy_and_the_processor_package_ships_neither(monkeypatch) -> None:
    for module in ("numpy", "scipy", "scipy.fftpack", "imagehash", "pywt"):
        monkeypatch.setitem(sys.modules, module, None)  # any import of them now raises ImportError
    picture = Image.radial_gradient("L")

    assert duplicates.perceptual_hash(picture) == "ee989837e69ac819"  # imagehash.phash's, checked above
    (processor,) = [p for p in package.PACKAGES if p.name == "image-processor"]
    shipped = {re.split(r"[=<>]", line)[0].lower() for line in package.requirement_lines(processor.without)}
    assert shipped.isdisjoint({"imagehash", "numpy", "scipy", "pywavelets"})
