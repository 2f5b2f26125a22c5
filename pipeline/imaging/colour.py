"""Colour: any decoded mode to L/RGB/RGBA, embedded profiles to sRGB (outputs then carry no profile, which
browsers read as sRGB), opaque alpha dropped, alpha flattened on white for JPEG."""

from __future__ import annotations

import hashlib
import io
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Final

from PIL import Image, ImageCms

from pipeline.imaging.errors import UnsupportedFormat

Finish = Callable[[Image.Image], Image.Image]

_WHITE = (255, 255, 255)

# Real ICC profiles are a few KB (Display P3: 536 bytes, a CMYK press profile: ~0.5-1 MB); anything larger is
# ignored unread, so an upload cannot make lcms parse and keep tens of MB.
MAX_PROFILE_BYTES: Final = 2 * 1024 * 1024
_PROFILE_ERRORS = (ImageCms.PyCMSError, OSError, ValueError, TypeError)
_CACHED_TRANSFORMS: Final = 32
_TRANSFORMS: OrderedDict[tuple[bytes, str, str], tuple[str, ImageCms.ImageCmsTransform]] = OrderedDict()
_CACHE_LOCK = threading.Lock()


def normalise_mode(picture: Image.Image, notes: list[str]) -> Image.Image:
    """Bring any decoded mode to L, RGB, RGBA or CMYK (CMYK waits for the colour transform after resizing)."""
    mode = picture.mode
    if mode in ("RGBA", "CMYK") or (mode in ("RGB", "L") and not picture.has_transparency_data):
        return picture
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        notes.append(f"{mode} high bit depth reduced to 8 bits")
        gray = (
            picture.convert("I").point(lambda v: v / 257).convert("L")
            if mode.startswith("I;16")
            else _scale_to_l(picture)
        )
        if "transparency" in picture.info:
            gray.putalpha(picture.convert("RGBA").getchannel("A"))
            return gray.convert("RGBA")
        return gray
    if mode == "1":
        return picture.convert("L")
    if mode in ("P", "PA", "LA", "La", "RGBa") or picture.has_transparency_data:
        return picture.convert("RGBA")  # a tRNS colour or palette index becomes real alpha
    try:
        return picture.convert("RGB")
    except ValueError as exc:
        raise UnsupportedFormat(f"unsupported colour mode: {mode}") from exc


def _scale_to_l(picture: Image.Image) -> Image.Image:
    """32-bit integer or float greys to 8 bits, reading the full scale off the data: 1.0, 255, 65535 or its maximum."""
    _low, high = picture.getextrema()
    full_scale = next(
        (scale for scale in (1.0, 255, 65535) if high <= scale and (scale != 1.0 or picture.mode == "F")), high
    )
    factor = 255 / max(full_scale, 1e-9)
    return picture.convert("F").point(lambda v: v * factor).convert("L")


_SRGB = ImageCms.createProfile("sRGB")


def srgb_conversion(mode: str, icc_profile: bytes | None, notes: list[str]) -> Finish:
    """How to turn pixels of `mode` with this embedded profile into sRGB RGB/RGBA (outputs then carry no profile,
    which browsers read as sRGB). A profile that cannot be read, or is too large to be a real one, is ignored with
    a note: the pixels are used as they are, never refused for it."""
    out_mode = "RGBA" if mode == "RGBA" else "RGB"
    if icc_profile and len(icc_profile) > MAX_PROFILE_BYTES:
        notes.append(f"colour profile of {len(icc_profile) / (1024 * 1024):.1f} MB ignored (larger than any real one)")
    elif icc_profile:
        transform = _transform_to_srgb(icc_profile, mode, out_mode)
        if transform is not None:
            description, cms = transform
            notes.append(f"colour converted from {description} to sRGB")
            return lambda image: ImageCms.applyTransform(image, cms)
        if mode != "L" and not is_srgb(icc_profile):
            notes.append("unreadable colour profile ignored")
    if mode == "CMYK":
        notes.append("CMYK converted to RGB")
    if mode == out_mode:
        return lambda image: image
    return lambda image: image.convert(out_mode)


def is_srgb(icc_profile: bytes) -> bool:
    if len(icc_profile) > MAX_PROFILE_BYTES:
        return False
    try:
        return "srgb" in _describe(icc_profile).lower()
    except _PROFILE_ERRORS:  # lcms says OSError("cannot open profile from string") for garbage, not PyCMSError
        return False


def _describe(icc_profile: bytes) -> str:
    return ImageCms.getProfileDescription(ImageCms.ImageCmsProfile(io.BytesIO(icc_profile))).strip()


def _transform_to_srgb(
    icc_profile: bytes, in_mode: str, out_mode: str
) -> tuple[str, ImageCms.ImageCmsTransform] | None:
    """A transform from the profile to sRGB, or None when the profile already is sRGB or cannot be used.

    Transforms are cached by the profile's digest, not its bytes, so a warm processor keeps at most
    _CACHED_TRANSFORMS small lcms objects however large or many the profiles it met; failures are not cached.
    """
    key = (hashlib.sha256(icc_profile).digest(), in_mode, out_mode)
    with _CACHE_LOCK:
        if key in _TRANSFORMS:
            _TRANSFORMS.move_to_end(key)
            return _TRANSFORMS[key]
    try:
        description = _describe(icc_profile) or "an embedded profile"
        if "srgb" in description.lower() and in_mode != "CMYK":
            return None
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc_profile))
        # NOCACHE: lcms's one-pixel cache is not thread-safe, and stripes share this transform across threads.
        transform = ImageCms.buildTransform(
            source,
            _SRGB,
            in_mode,
            out_mode,
            renderingIntent=ImageCms.Intent.PERCEPTUAL,
            flags=ImageCms.Flags.NOCACHE,
        )
    except _PROFILE_ERRORS:
        return None
    with _CACHE_LOCK:
        _TRANSFORMS[key] = (description, transform)
        while len(_TRANSFORMS) > _CACHED_TRANSFORMS:
            _TRANSFORMS.popitem(last=False)
    return description, transform


def drop_opaque_alpha(picture: Image.Image) -> Image.Image:
    if picture.mode == "RGBA" and picture.getchannel("A").getextrema() == (255, 255):
        return picture.convert("RGB")
    return picture


def flatten_on_white(picture: Image.Image) -> Image.Image:
    background = Image.new("RGB", picture.size, _WHITE)
    background.paste(picture, mask=picture.getchannel("A"))
    return background
