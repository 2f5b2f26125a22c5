"""What a libvips user writes: shrink-on-load `thumbnail_buffer` to the optimized size, the thumb from that copy."""

from __future__ import annotations

import pillow_heif
import pyvips
from PIL import Image

from bench.renditions import Output
from pipeline import placeholder
from pipeline.config import ImagingSettings

# A Lambda sees each photo once; the operation cache would only flatter repeated passes over the same bytes.
pyvips.cache_set_max(0)

_KEEP_NONE = pyvips.enums.ForeignKeep.NONE
_WHITE = [255, 255, 255]


def render(source: bytes, settings: ImagingSettings, webp_effort: int = 4) -> list[Output]:
    """`webp_effort` 4 is libvips' default; the experiments lower it to compare at the project's encoder cost."""
    box = settings.optimized_size
    if pillow_heif.is_supported(source):
        # The pyvips-binary wheel has no HEVC decoder: decode with pillow-heif (which applies the
        # HEIF rotation/mirror) and hand the pixels to libvips.
        optimized = _from_heif(source).thumbnail_image(box, height=box, size="down")
    else:
        optimized = pyvips.Image.thumbnail_buffer(source, box, height=box, size="down")
    if optimized.hasalpha():
        optimized = optimized.flatten(background=_WHITE)
    if optimized.interpretation != "srgb":
        optimized = optimized.colourspace("srgb")
    # Materialise once so the two encoders and the thumbnail do not each re-run the decode pipeline.
    optimized = optimized.copy_memory()
    thumb = optimized.thumbnail_image(settings.thumb_size, height=settings.thumb_size, size="down")
    outputs = []
    for rendition, image in (("thumb", thumb), ("optimized", optimized)):
        jpeg = image.jpegsave_buffer(Q=settings.jpeg_quality, keep=_KEEP_NONE)
        webp = image.webpsave_buffer(Q=settings.webp_quality, effort=webp_effort, keep=_KEEP_NONE)
        outputs.append(Output(f"{rendition}.jpeg", image.width, image.height, jpeg))
        outputs.append(Output(f"{rendition}.webp", image.width, image.height, webp))
    # The placeholder (BlurHash + dominant colour) from a 32 px copy: libvips shrinks, the pure code hashes.
    size = placeholder.PLACEHOLDER_SIZE
    small = thumb.thumbnail_image(size, height=size, size="down")
    small_rgb = Image.frombytes("RGB", (small.width, small.height), small.write_to_memory())
    text = f"{placeholder.blurhash(small_rgb)} {placeholder.dominant_color(small_rgb)}"
    outputs.append(Output("placeholder", small.width, small.height, text.encode()))
    return outputs


def render_webp_effort_2(source: bytes, settings: ImagingSettings) -> list[Output]:
    return render(source, settings, webp_effort=2)


def render_webp_effort_1(source: bytes, settings: ImagingSettings) -> list[Output]:
    return render(source, settings, webp_effort=1)


def _from_heif(source: bytes) -> pyvips.Image:
    heif = pillow_heif.open_heif(source, convert_hdr_to_8bit=True)
    bands = len(heif.mode)  # "RGB" or "RGBA"
    width, height = heif.size
    pixels = heif.data
    if heif.stride != width * bands:
        pixels = b"".join(bytes(pixels[row * heif.stride : row * heif.stride + width * bands]) for row in range(height))
    return pyvips.Image.new_from_memory(pixels, width, height, bands, "uchar")
