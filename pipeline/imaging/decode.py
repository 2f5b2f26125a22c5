"""Reading an upload: open it by content with the allowed plugins only, read its header, decode its first frame once
(JPEG at the smallest DCT scale that covers the widest rendition, HEIF in bands)."""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from dataclasses import dataclass

import pillow_heif
from PIL import Image

from pipeline.config import ImagingSettings
from pipeline.imaging.errors import CorruptImage, TooLarge, UnsupportedFormat
from pipeline.imaging.exif import NO_PHOTO_FACTS, PhotoFacts, read_photo_facts
from pipeline.imaging.limits import check_pixels, corrupt_reason, frame_count
from pipeline.imaging.plan import RenditionPlan, plan_renditions

# HEIC/HEIF through pillow-heif; AVIF through Pillow's own plugin (pillow-heif 1.x no longer decodes AVIF).
pillow_heif.register_heif_opener()

# Formats are recognised by content, and only these plugins may look at an upload: everything else (EPS hands the
# file to Ghostscript, exotic decoders are where fuzzers find bugs) is refused before any decoder runs.
# MPO has no opener of its own: Pillow's JPEG opener returns an MPO image when it finds further pictures.
OPENERS = ("JPEG", "PNG", "WEBP", "AVIF", "GIF", "TIFF", "HEIF")
ACCEPTED_FORMATS = (*OPENERS, "MPO")

_ORIENTATION_TAG = 0x0112


@dataclass(frozen=True)
class Rows:
    """Decoded pixels handed out as bands of rows: `band(first, last)` returns an image holding at least the source
    rows first..last-1 and the source row of its own first row. RGBA comes premultiplied (RGBa), ready to resize."""

    size: tuple[int, int]
    mode: str
    band: Callable[[int, int], tuple[Image.Image, int]]


@dataclass(frozen=True)
class Source:
    """What the header says, kept after the decoder is gone."""

    format: str
    mime: str
    frames: int
    plan: RenditionPlan
    icc_profile: bytes | None
    photo: PhotoFacts = NO_PHOTO_FACTS  # taken_at, camera (and location with KEEP_LOCATION) from EXIF/XMP


def read(source: bytes, settings: ImagingSettings, notes: list[str]) -> tuple[Source, Image.Image | Rows]:
    """Open by content, check pixels and frames from the header, plan the sizes, then decode the first frame once."""
    with _open(source) as opened:
        check_pixels(opened.size, settings)
        frames = frame_count(opened, settings)
        if frames > 1:
            notes.append(frames_note(opened.format, frames))
        plan = plan_renditions(opened.size, _orientation(opened), settings)
        if plan.orientation != 1:
            notes.append(f"rotated upright from EXIF orientation {plan.orientation}")
        fmt = opened.format or "unknown"
        photo = read_photo_facts(opened, keep_location=settings.keep_location)  # before the metadata is dropped
        header = Source(fmt, _mime(fmt, source), frames, plan, opened.info.get("icc_profile"), photo)
        return header, _decode(opened, plan, source)


def _open(source: bytes) -> Image.ImageFile.ImageFile:
    try:
        return Image.open(io.BytesIO(source), formats=OPENERS)
    except Image.DecompressionBombError as exc:
        raise TooLarge(_bomb_reason(exc)) from exc
    except Image.UnidentifiedImageError as exc:
        family = sniff_format(source)
        if family in ACCEPTED_FORMATS:
            raise CorruptImage(f"the {family} data could not be read") from exc
        raise UnsupportedFormat(f"unsupported format: {family or 'not a recognised image type'}") from exc
    except MemoryError:
        raise
    except Exception as exc:  # fuzzed headers raise TypeError, ValueError, struct.error, ... not only OSError
        raise CorruptImage(corrupt_reason(sniff_format(source), exc)) from exc


def _orientation(opened: Image.Image) -> int:
    try:
        value = opened.getexif().get(_ORIENTATION_TAG, 1)
    except MemoryError:
        raise
    except Exception as exc:  # a truncated file can fail while reading its EXIF
        raise CorruptImage(corrupt_reason(opened.format, exc)) from exc
    return value if isinstance(value, int) else 1


def _decode(opened: Image.ImageFile.ImageFile, plan: RenditionPlan, source: bytes) -> Image.Image | Rows:
    """Decode the first frame once, at the smallest scale that still covers the widest rendition.

    JPEG decodes at 1/2, 1/4 or 1/8 scale through draft(). libheif has no scaled decode, and pillow-heif's load()
    copies its 37 MB buffer of a 12 Mpx photo into a 49 MB Pillow image; handing out bands of the buffer instead
    keeps the peak near the buffer alone.
    """
    try:
        rows = _heif_rows(source, opened.size) if opened.format == "HEIF" else None
        if rows is not None:
            return rows
        if opened.format in ("JPEG", "MPO"):
            opened.draft(None, plan.as_stored(plan.top.size))
        opened.load()
    except Image.DecompressionBombError as exc:
        raise TooLarge(_bomb_reason(exc)) from exc
    except MemoryError:
        raise
    except Exception as exc:  # truncated data: never ImageFile.LOAD_TRUNCATED_IMAGES, a half image is not a result
        raise CorruptImage(corrupt_reason(opened.format, exc)) from exc
    return opened


def _heif_rows(source: bytes, size: tuple[int, int]) -> Rows | None:
    """The primary image, 8 bits, libheif's rotation and mirroring applied, as bands; None when it is not the
    picture the opener described (then pillow-heif's own load() decodes it)."""
    heif = pillow_heif.open_heif(source, convert_hdr_to_8bit=True)
    if heif.size != size or heif.mode not in ("RGB", "RGBA", "L"):
        return None
    pixels, mode, stride = heif.data, heif.mode, heif.stride
    width = size[0]

    def band(first: int, last: int) -> tuple[Image.Image, int]:
        rows = Image.frombytes(mode, (width, last - first), pixels[first * stride : last * stride], "raw", mode, stride)
        return (rows.convert("RGBa") if mode == "RGBA" else rows), first

    return Rows(size, mode, band)


def _bomb_reason(exc: Exception) -> str:
    claimed = re.search(r"\((\d+) pixels\)", str(exc))
    if claimed:
        return f"image claims {int(claimed.group(1)):,} pixels, more than can be processed safely"
    return "image claims more pixels than can be processed safely"


_HEIC_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs"}
_MIME = {
    "JPEG": "image/jpeg",
    "MPO": "image/jpeg",  # a JPEG with further pictures appended; browsers read it as JPEG
    "PNG": "image/png",
    "WEBP": "image/webp",
    "AVIF": "image/avif",
    "GIF": "image/gif",
    "TIFF": "image/tiff",
    "HEIF": "image/heif",
}


def _mime(fmt: str, source: bytes) -> str:
    if fmt == "HEIF" and source[8:12] in _HEIC_BRANDS:
        return "image/heic"
    return _MIME.get(fmt, "application/octet-stream")


def frames_note(fmt: str | None, frames: int) -> str:
    if fmt == "MPO":
        return f"multi-picture JPEG: first of {frames} pictures used"
    if fmt in ("TIFF", "HEIF"):
        return f"{fmt} with {frames} images: first used"
    return f"animated {fmt}: first of {frames} frames used"


_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\xff\xd8\xff", "JPEG"),
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"II+\x00", "BigTIFF"),
    (b"MM\x00+", "BigTIFF"),
    (b"%PDF", "PDF"),
    (b"%!PS", "PostScript/EPS"),
    (b"\xc5\xd0\xd3\xc6", "EPS"),
    (b"BM", "BMP"),
    (b"8BPS", "PSD"),
    (b"\x00\x00\x01\x00", "ICO"),
    (b"qoif", "QOI"),
    (b"\xff\x0a", "JPEG XL"),
    (b"\x00\x00\x00\x0cJXL ", "JPEG XL"),
    (b"PK\x03\x04", "ZIP"),
)


def sniff_format(source: bytes) -> str | None:
    """Name the format by its magic bytes, to explain a refusal (decoding is always by Pillow's allowed plugins)."""
    for signature, name in _SIGNATURES:
        if source.startswith(signature):
            return name
    if source[:4] == b"RIFF" and source[8:12] == b"WEBP":
        return "WEBP"
    if source[4:8] == b"ftyp":
        brand = source[8:12]
        if brand in (b"avif", b"avis"):
            return "AVIF"
        if brand in _HEIC_BRANDS or brand in (b"mif1", b"msf1"):
            return "HEIF"
        return "MP4/QuickTime video"
    head = source[:1024].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if head.startswith((b"<svg", b"<?xml")) and b"<svg" in head:
        return "SVG"
    if head.startswith((b"<!doctype html", b"<html")):
        return "HTML"
    if _looks_like_text(source[:1024]):
        return "text"
    return None


def _looks_like_text(head: bytes) -> bool:
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:  # may also be a multi-byte character cut at 1024 bytes: then not called text
        return False
    return all(char.isprintable() or char in "\t\r\n" for char in text)
