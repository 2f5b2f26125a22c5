"""The obvious Pillow code: full decode, exif_transpose, RGB, LANCZOS from the full image per size, default saves."""

from __future__ import annotations

from io import BytesIO

import pillow_heif
from PIL import Image, ImageOps

from bench.renditions import Output, fit_within
from pipeline import placeholder
from pipeline.config import ImagingSettings

pillow_heif.register_heif_opener()


def render(source: bytes, settings: ImagingSettings) -> list[Output]:
    with Image.open(BytesIO(source)) as opened:
        opened.load()
        upright = ImageOps.exif_transpose(opened)
    full = upright.convert("RGB")
    outputs = []
    for rendition, box in (("thumb", settings.thumb_size), ("optimized", settings.optimized_size)):
        size = fit_within(*full.size, box)
        resized = full if size == full.size else full.resize(size, Image.Resampling.LANCZOS)
        outputs.append(_save(resized, f"{rendition}.jpeg", "JPEG", settings.jpeg_quality))
        outputs.append(_save(resized, f"{rendition}.webp", "WEBP", settings.webp_quality))
        if rendition == "thumb":
            # The same placeholder the pipeline stores (BlurHash + dominant colour), from the thumb.
            outputs.append(placeholder_output(placeholder.small_rgb(resized)))
    return outputs


def placeholder_output(small: Image.Image) -> Output:
    text = f"{placeholder.blurhash(small)} {placeholder.dominant_color(small)}"
    return Output("placeholder", small.width, small.height, text.encode())


def _save(image: Image.Image, name: str, pil_format: str, quality: int) -> Output:
    buffer = BytesIO()
    image.save(buffer, pil_format, quality=quality)  # no exif=/icc_profile= given: Pillow writes no metadata
    return Output(name, image.width, image.height, buffer.getvalue())
