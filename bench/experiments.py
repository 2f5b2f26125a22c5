"""Prototypes of changes to pipeline/imaging.py, measured as strategies (`--strategies project-webp-m1 ...`).

Each runs the project's own process_image with one setting or function swapped, in its own benchmark child
only; pipeline/imaging.py itself is untouched. What they showed is written up in docs/performance.md.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from bench import project
from bench.renditions import Output
from pipeline import imaging
from pipeline.config import ImagingSettings

_installed: list[str] = []


def _install_once(name: str, install: Callable[[], None]) -> None:
    if _installed and _installed[0] != name:
        raise RuntimeError(f"experiment {_installed[0]} already installed in this process")
    if not _installed:
        install()
        _installed.append(name)


def render_webp_method_1(source: bytes, settings: ImagingSettings) -> list[Output]:
    """libwebp method 1 instead of the project's 2: fewer mode decisions, bigger files."""
    return project.render(source, dataclasses.replace(settings, webp_method=1))


def render_webp_quality_90(source: bytes, settings: ImagingSettings) -> list[Output]:
    """WebP at quality 90: what it costs in bytes for WebP to match the JPEG's PSNR."""
    return project.render(source, dataclasses.replace(settings, webp_quality=90))


def render_serial(source: bytes, settings: ImagingSettings) -> list[Output]:
    """The four encodes on the calling thread: what the project's encoder threads buy."""
    _install_once("serial", project.profile_serially)
    return project.render(source, settings)


def render_webp_through_libvips(source: bytes, settings: ImagingSettings) -> list[Output]:
    """WebP encoded by libvips at the same quality and effort (= method). Pillow's WebPEncode holds the GIL for
    the whole encode, so the project's threads cannot overlap it with anything; libvips (through cffi) releases
    it, so the WebP encodes run beside the JPEG encodes and the thumbnail resize on a second core."""
    _install_once("vips-webp", _encode_webp_with_libvips)
    return project.render(source, settings)


def _encode_webp_with_libvips() -> None:
    import pyvips

    pyvips.cache_set_max(0)
    original = imaging._encode

    def encode(name, fmt, picture, settings):
        if fmt != "webp" or picture.mode not in ("RGB", "RGBA", "L"):
            return original(name, fmt, picture, settings)
        pixels = pyvips.Image.new_from_memory(
            picture.tobytes(), picture.width, picture.height, len(picture.getbands()), "uchar"
        )
        data = pixels.webpsave_buffer(
            Q=settings.webp_quality, effort=settings.webp_method, keep=pyvips.enums.ForeignKeep.NONE
        )
        return imaging.EncodedRendition(name, fmt, picture.width, picture.height, data)

    imaging._encode = encode  # type: ignore[assignment]
