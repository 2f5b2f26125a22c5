"""Prototypes of changes to pipeline/imaging.py, measured as strategies (`--strategies project-webp-m1 ...`).

Each runs the project's own process_image with one setting or function swapped, in its own benchmark child
only; pipeline/imaging.py itself is untouched. What they showed is written up in docs/performance.md.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from bench import project
from bench.renditions import Output
from pipeline.config import ImagingSettings
from pipeline.imaging import encode as encode_module

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


def render_direct(source: bytes, settings: ImagingSettings) -> list[Output]:
    """Every ladder rung resized from the widest one instead of from the rung above it (issue 12's cascade)."""
    return project.render(source, settings, cascade=False)


def render_avif(source: bytes, settings: ImagingSettings) -> list[Output]:
    """The ladder with the optional third format on (AVIF_RENDITIONS=1 at the default quality and speed)."""
    return project.render(source, dataclasses.replace(settings, avif=True))


def render_serial(source: bytes, settings: ImagingSettings) -> list[Output]:
    """The four encodes on the calling thread: what the project's encoder threads buy."""
    _install_once("serial", project.profile_serially)
    return project.render(source, settings)


def render_webp_through_libvips(source: bytes, settings: ImagingSettings) -> list[Output]:
    """WebP encoded by libvips at the same quality and effort (= method): does libvips' libwebp, called through
    cffi, overlap better with the JPEG encodes and the resize than Pillow's? (Measured: no; see the docs.)"""
    _install_once("vips-webp", _encode_webp_with_libvips)
    return project.render(source, settings)


def _encode_webp_with_libvips() -> None:
    import pyvips

    pyvips.cache_set_max(0)
    original = encode_module.encode

    def encode(name, fmt, picture, settings):
        if fmt != "webp" or picture.mode not in ("RGB", "RGBA", "L"):
            return original(name, fmt, picture, settings)
        pixels = pyvips.Image.new_from_memory(
            picture.tobytes(), picture.width, picture.height, len(picture.getbands()), "uchar"
        )
        data = pixels.webpsave_buffer(
            Q=settings.webp_quality, effort=settings.webp_method, keep=pyvips.enums.ForeignKeep.NONE
        )
        return encode_module.EncodedRendition(name, fmt, picture.width, picture.height, data)

    encode_module.encode = encode  # type: ignore[assignment]


# --- encoder sweeps: `python -m bench.experiments` ------------------------------------------------------------------

SWEEP_PHOTOS = ("HMD_Nokia_8.3_5G.jpg", "iphone_hdr_NO.jpg", "Landscape_3.jpg", "Portrait_6.jpg", "canon_hdr_NO.jpg")


def _sweep(photos_dir: str) -> None:
    """CPU, bytes and PSNR of each encoder setting on the same 1920 px images, and how much two threads overlap
    (Pillow's JPEG and WebP encoders release the GIL; what is left is how much a second vCPU really adds)."""
    import io
    import math
    import time
    from concurrent.futures import ThreadPoolExecutor
    from pathlib import Path

    from PIL import Image, ImageChops, ImageOps, ImageStat

    images = []
    for name in SWEEP_PHOTOS:
        with Image.open(Path(photos_dir) / name) as opened:
            image = ImageOps.exif_transpose(opened).convert("RGB")
        image.thumbnail((1920, 1920), Image.Resampling.LANCZOS)
        images.append(image)

    def encode(image: Image.Image, fmt: str, options: dict) -> bytes:
        buffer = io.BytesIO()
        image.save(buffer, fmt, **options)
        return buffer.getvalue()

    def psnr(image: Image.Image, data: bytes) -> float:
        with Image.open(io.BytesIO(data)) as decoded:
            squares = ImageStat.Stat(ImageChops.difference(image, decoded.convert("RGB"))).sum2
        return 10 * math.log10(255**2 / (sum(squares) / (3 * image.width * image.height)))

    settings = [("WEBP", {"quality": 80, "method": m}) for m in range(7)]
    settings += [("WEBP", {"quality": q, "method": 2}) for q in (85, 90)]
    settings += [
        ("JPEG", {"quality": 82, "subsampling": "4:2:0"}),
        ("JPEG", {"quality": 82, "subsampling": "4:2:0", "optimize": True}),
        ("JPEG", {"quality": 82, "subsampling": "4:2:0", "optimize": True, "progressive": True}),
    ]
    print(f"{len(images)} photos resized to 1920 px: {', '.join(SWEEP_PHOTOS)}")
    print(f"  {'format':6}  {'options':58}  {'CPU s':>6}  {'bytes':>10}  {'PSNR dB':>7}")
    for fmt, options in settings:
        start = time.process_time()
        encoded = [encode(image, fmt, options) for image in images]
        cpu = time.process_time() - start
        mean_psnr = sum(psnr(i, d) for i, d in zip(images, encoded, strict=True)) / len(images)
        print(f"  {fmt:6}  {options!s:58}  {cpu:6.3f}  {sum(map(len, encoded)):>10,}  {mean_psnr:7.2f}")

    print("Encodes in 2 threads (wall seconds for the same encodes: 2x would be two full cores)")
    for fmt, options in (("WEBP", {"quality": 80, "method": 2}), ("JPEG", {"quality": 82, "optimize": True})):
        start = time.perf_counter()
        for image in images:
            encode(image, fmt, options)
        serial = time.perf_counter() - start
        with ThreadPoolExecutor(2) as pool:
            start = time.perf_counter()
            list(pool.map(lambda image, fmt=fmt, options=options: encode(image, fmt, options), images))
            threaded = time.perf_counter() - start
        print(f"  {fmt} {options}: serial {serial:.3f} s, 2 threads {threaded:.3f} s ({serial / threaded:.2f}x)")


if __name__ == "__main__":
    import sys

    from bench.cli import DEFAULT_PHOTOS

    _sweep(sys.argv[1] if len(sys.argv) > 1 else str(DEFAULT_PHOTOS))
