"""Tiny placeholders computed from a small image already in memory: a BlurHash and a dominant colour."""

from __future__ import annotations

import math

from PIL import Image

# The standard BlurHash base-83 alphabet (woltapp/blurhash).
_BASE83 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz#$%*+,-.:;=?@[]^_{|}~"

# BlurHash averages in linear light; a 256-entry table makes the sRGB decoding free per pixel.
_SRGB_TO_LINEAR = tuple(
    v / 12.92 if v <= 0.04045 else ((v + 0.055) / 1.055) ** 2.4 for v in (i / 255 for i in range(256))
)

# The placeholder needs a handful of cosine components; 32 px on the long side is plenty and keeps it cheap.
PLACEHOLDER_SIZE = 32


def small_rgb(image: Image.Image, size: int = PLACEHOLDER_SIZE) -> Image.Image:
    """An RGB copy at most `size` px on its long side (alpha flattened on white), for the placeholders."""
    width, height = image.size
    scale = min(1.0, size / max(width, height))
    target = (max(1, round(width * scale)), max(1, round(height * scale)))
    small = image.resize(target, Image.Resampling.BOX) if target != image.size else image
    if small.mode == "RGBA":
        background = Image.new("RGB", small.size, (255, 255, 255))
        background.paste(small, mask=small.getchannel("A"))
        return background
    return small.convert("RGB") if small.mode != "RGB" else small


def blurhash(image: Image.Image, x_components: int = 4, y_components: int = 3) -> str:
    """The BlurHash of an RGB image (standard encoding, as woltapp/blurhash's reference encoder computes it).

    The cosine basis is separable, so each component is a sum over rows of (row weight x per-row sums), computed
    once per column frequency: O(pixels x components_x) rather than O(pixels x components).
    """
    if not (1 <= x_components <= 9 and 1 <= y_components <= 9):
        raise ValueError("BlurHash components must be between 1 and 9")
    if image.mode != "RGB":
        raise ValueError(f"BlurHash needs an RGB image, got {image.mode}")
    width, height = image.size
    channels = [[_SRGB_TO_LINEAR[v] for v in band.tobytes()] for band in image.split()]
    cos_x = [[math.cos(math.pi * i * x / width) for x in range(width)] for i in range(x_components)]
    cos_y = [[math.cos(math.pi * j * y / height) for y in range(height)] for j in range(y_components)]

    # row_sums[i][c][y] = sum over x of cos_x[i][x] * channel c at (x, y)
    row_sums = [
        [
            [
                sum(w * p for w, p in zip(cos_x[i], channel[y * width : (y + 1) * width], strict=True))
                for y in range(height)
            ]
            for channel in channels
        ]
        for i in range(x_components)
    ]
    components: list[tuple[float, float, float]] = []
    for j in range(y_components):
        for i in range(x_components):
            scale = (1.0 if i == 0 and j == 0 else 2.0) / (width * height)
            r, g, b = (scale * sum(w * s for w, s in zip(cos_y[j], row_sums[i][c], strict=True)) for c in range(3))
            components.append((r, g, b))

    dc, ac = components[0], components[1:]
    hash_chars = [_base83((x_components - 1) + (y_components - 1) * 9, 1)]
    if ac:
        actual_max = max(abs(v) for component in ac for v in component)
        quantised_max = int(max(0, min(82, math.floor(actual_max * 166 - 0.5))))
        max_value = (quantised_max + 1) / 166
        hash_chars.append(_base83(quantised_max, 1))
    else:
        max_value = 1.0
        hash_chars.append(_base83(0, 1))
    hash_chars.append(
        _base83((_linear_to_srgb(dc[0]) << 16) + (_linear_to_srgb(dc[1]) << 8) + _linear_to_srgb(dc[2]), 4)
    )
    for r, g, b in ac:
        hash_chars.append(
            _base83(_quantise_ac(r, max_value) * 361 + _quantise_ac(g, max_value) * 19 + _quantise_ac(b, max_value), 2)
        )
    return "".join(hash_chars)


def dominant_color(image: Image.Image) -> str:
    """The most common colour of a small RGB image after median-cut quantisation to 5 colours, as "#rrggbb"."""
    quantised = image.quantize(colors=5, method=Image.Quantize.MEDIANCUT)
    palette = quantised.getpalette() or []
    counts = quantised.getcolors() or [(1, 0)]
    _count, index = max(counts)
    r, g, b = palette[index * 3 : index * 3 + 3]
    return f"#{r:02x}{g:02x}{b:02x}"


def _linear_to_srgb(value: float) -> int:
    v = max(0.0, min(1.0, value))
    if v <= 0.0031308:
        return int(v * 12.92 * 255 + 0.5)
    return int((1.055 * v ** (1 / 2.4) - 0.055) * 255 + 0.5)


def _quantise_ac(value: float, max_value: float) -> int:
    scaled = value / max_value
    return int(max(0, min(18, math.floor(math.copysign(abs(scaled) ** 0.5, scaled) * 9 + 9.5))))


def _base83(value: int, length: int) -> str:
    return "".join(_BASE83[(value // 83 ** (length - i)) % 83] for i in range(1, length + 1))
