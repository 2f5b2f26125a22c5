"""PSNR of each output against a reference rendering: full decode, upright, sRGB, LANCZOS from the full image."""

from __future__ import annotations

import math
from functools import lru_cache
from io import BytesIO
from pathlib import Path

import pillow_heif
from PIL import Image, ImageChops, ImageCms, ImageOps, ImageStat

pillow_heif.register_heif_opener()

# Identical pixels have infinite PSNR; cap it so averages stay finite and tables stay readable.
PSNR_CAP_DB = 100.0
_SRGB = ImageCms.createProfile("sRGB")


@lru_cache(maxsize=4)
def _upright_rgb(photo: str) -> Image.Image:
    with Image.open(photo) as opened:
        opened.load()
        icc_profile = opened.info.get("icc_profile")
        upright = ImageOps.exif_transpose(opened)
    if upright.mode in ("RGBA", "LA", "PA") or (upright.mode == "P" and "transparency" in upright.info):
        # Transparent areas are compared as white: what a JPEG shows when alpha is flattened for the web.
        rgba = upright.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        rgb = Image.alpha_composite(white, rgba).convert("RGB")
    else:
        rgb = upright.convert("RGB")
    if icc_profile:
        # What a browser shows: the embedded profile's colours in sRGB (outputs carry no profile).
        embedded = ImageCms.ImageCmsProfile(BytesIO(icc_profile))
        if "srgb" not in ImageCms.getProfileDescription(embedded).lower():
            rgb = ImageCms.profileToProfile(rgb, embedded, _SRGB, renderingIntent=ImageCms.Intent.PERCEPTUAL)
    return rgb


@lru_cache(maxsize=16)
def reference(photo: str, width: int, height: int) -> Image.Image:
    full = _upright_rgb(photo)
    if full.size == (width, height):
        return full
    return full.resize((width, height), Image.Resampling.LANCZOS)


def psnr(photo: Path, output: Path) -> float:
    """PSNR in dB of `output` (an encoded file) against the reference rendering of `photo` at the same size."""
    with Image.open(output) as encoded:
        decoded = encoded.convert("RGB")
    expected = reference(str(photo), *decoded.size)
    squares = ImageStat.Stat(ImageChops.difference(decoded, expected)).sum2
    mse = sum(squares) / (3 * decoded.width * decoded.height)
    if mse == 0:
        return PSNR_CAP_DB
    return min(PSNR_CAP_DB, 10 * math.log10(255**2 / mse))
