"""Quality of each output against a reference rendering: full decode, upright, sRGB, LANCZOS from the full image
(for a tile, from the full image's centred crop of the tile's aspect).

Two figures, as issue 8 allows either: PSNR over the RGB channels (dB), and SSIM on luma (Wang et al. 2004:
Gaussian window, sigma 1.5, scikit-image's reference implementation). PSNR counts every error alike; SSIM weighs
structure, which is closer to what people see and is the figure WebP's encoder is tuned for.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from io import BytesIO
from pathlib import Path

import numpy as np
import pillow_heif
from PIL import Image, ImageCms, ImageOps
from skimage.metrics import structural_similarity

from bench.renditions import PSNR_CAP_DB

pillow_heif.register_heif_opener()

_SRGB = ImageCms.createProfile("sRGB")
_SSIM_WINDOW = 11  # scikit-image's Gaussian window for sigma 1.5
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # ITU-R BT.601, as JPEG's and WebP's YCbCr


@dataclass(frozen=True)
class Score:
    psnr_db: float
    ssim: float | None  # None for an image smaller than SSIM's 11-pixel window


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


@lru_cache(maxsize=8)
def reference(
    photo: str, width: int, height: int, crop_aspect: tuple[int, int] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The reference rendering of `photo` at `width`x`height`: (RGB as float32, its luma). With `crop_aspect`
    (a tile), of the photo's largest centred box of that aspect, as pipeline/imaging/plan.py's tile_box."""
    full = _upright_rgb(photo)
    box = None if crop_aspect is None else centred_box(full.size, crop_aspect)
    if box is None and full.size == (width, height):
        resized = full
    else:
        resized = full.resize((width, height), Image.Resampling.LANCZOS, box=box)
    rgb = np.asarray(resized, dtype=np.float32)
    return rgb, rgb @ _LUMA


def centred_box(size: tuple[int, int], aspect: tuple[int, int]) -> tuple[float, float, float, float]:
    """The largest centred (left, top, right, bottom) box of `aspect` in an image of `size`."""
    width, height = size
    box_width, box_height = min(width, height * aspect[0] / aspect[1]), min(height, width * aspect[1] / aspect[0])
    left, top = (width - box_width) / 2, (height - box_height) / 2
    return left, top, left + box_width, top + box_height


def score(photo: Path, encoded: bytes, crop_aspect: tuple[int, int] | None = None) -> Score:
    """PSNR and SSIM of `encoded` (a JPEG, WebP, ... file's bytes) against `photo`'s reference at the same size
    (of its centred crop of `crop_aspect`, for a tile)."""
    with Image.open(BytesIO(encoded)) as opened:
        decoded = np.asarray(opened.convert("RGB"), dtype=np.float32)
    height, width = decoded.shape[:2]
    expected_rgb, expected_luma = reference(
        str(photo), width, height, None if crop_aspect is None else tuple(crop_aspect)
    )
    mse = float(np.mean(np.square(decoded - expected_rgb, dtype=np.float64)))
    psnr = PSNR_CAP_DB if mse == 0 else min(PSNR_CAP_DB, 10 * math.log10(255**2 / mse))
    return Score(psnr_db=psnr, ssim=ssim_luma(expected_luma, decoded @ _LUMA))


def luma(image: Image.Image) -> np.ndarray:
    """BT.601 luma of an RGB image as float32, the plane SSIM is computed on."""
    return np.asarray(image.convert("RGB"), dtype=np.float32) @ _LUMA


def ssim_luma(expected: np.ndarray, actual: np.ndarray) -> float | None:
    """SSIM of two luma planes (Gaussian window, sigma 1.5); None below the 11-pixel window."""
    if min(expected.shape[:2]) < _SSIM_WINDOW:
        return None
    return float(
        structural_similarity(
            expected,
            actual,
            data_range=255,
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
        )
    )


def upright_rgb(photo: Path) -> Image.Image:
    """The decoded photo as the reference sees it: upright, alpha on white, sRGB, full size (cached)."""
    return _upright_rgb(str(photo))
