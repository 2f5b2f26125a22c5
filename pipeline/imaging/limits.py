"""The limits checked before work is spent: bytes (before reading), pixels and frames (from the header)."""

from __future__ import annotations

from PIL import Image

from pipeline.config import ImagingSettings
from pipeline.imaging.errors import CorruptImage, TooLarge


def check_byte_size(byte_count: int, settings: ImagingSettings) -> None:
    """The first limit, checkable from a Content-Length or a file size before any byte is read."""
    if byte_count == 0:
        raise CorruptImage("the file is empty")
    if byte_count > settings.max_bytes:
        raise TooLarge(f"file is {human_bytes(byte_count)}, the limit is {human_bytes(settings.max_bytes)}")


def check_pixels(size: tuple[int, int], settings: ImagingSettings) -> None:
    width, height = size
    if width * height > settings.max_pixels:
        raise TooLarge(f"image is {width}x{height} pixels, the limit is {_megapixels(settings.max_pixels)}")
    if width < 1 or height < 1:
        raise CorruptImage(f"image claims a size of {width}x{height} pixels")


def frame_count(opened: Image.Image, settings: ImagingSettings) -> int:
    try:
        frames = int(getattr(opened, "n_frames", 1))
    except Exception as exc:  # counting walks the file; corrupt frame tables raise all sorts
        raise CorruptImage(corrupt_reason(opened.format, exc)) from exc
    if frames > settings.max_frames:
        raise TooLarge(f"image has {frames} frames, the limit is {settings.max_frames}")
    return frames


def corrupt_reason(family: str | None, exc: Exception) -> str:
    detail = str(exc).strip() or type(exc).__name__
    return f"the {family or 'image'} data is corrupt or truncated ({detail[:120]})"


def human_bytes(count: int) -> str:
    """Binary units, as the processor's ContentLength check words them: 52428800 bytes is "50.0 MB"."""
    if count < 1024:
        return f"{count} bytes"
    if count < 1024 * 1024:
        return f"{count / 1024:.1f} KB"
    return f"{count / (1024 * 1024):.1f} MB"


def _megapixels(count: int) -> str:
    return f"{count / 1_000_000:g} megapixels"
