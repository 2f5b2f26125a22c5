"""Is this upload already in the gallery? Exact duplicates by sha256, near-duplicates by perceptual hash.

Both answers come from the lookup items the store writes with a ``ready`` record (``SHA256#<hex>`` and the
``PHASH#<n>#<slice>`` slices, pipeline.records), one Query each, never a Scan. Those items are read from an
eventually consistent partition and may name an image that has just left ``ready``, so every candidate is re-read
(consistent) before it counts. Why and how near is near: docs/duplicates.md.

A flag (``duplicate_of``, ``near_duplicate_of``) is a fact about the upload at the time it was processed: the
image it names may be deleted or trashed later. Readers read the images a page's flags name (one BatchGetItem,
``ImageStore.get_many``) and show a link only while the image is there and listed.
"""

from __future__ import annotations

import functools
import math
import operator
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from pipeline import records
from pipeline.records import ImageRecord, Status

if TYPE_CHECKING:
    from PIL import Image

    from pipeline.store import ImageStore

# The largest Hamming distance (of 64 bits) at which two perceptual hashes name the same picture. Measured on the
# corpus against resized, recompressed, cropped and EXIF-rotated copies (python -m bench.near_duplicates): see
# docs/duplicates.md for the table this was chosen from. It must stay below records.PHASH_BANDS, so that two
# hashes this close always share one lookup slice exactly.
NEAR_DUPLICATE_BITS: Final = 3
PHASH_HEX_DIGITS: Final = 16
# imagehash.phash's defaults (hash_size=8, highfreq_factor=4): the DCT of a 32x32 copy, its top-left 8x8 kept.
PHASH_SIDE: Final = 32
PHASH_LOW: Final = 8


@dataclass(frozen=True)
class Match:
    """An earlier image the upload repeats: its id and, for people, how it is called."""

    image_id: str
    label: str
    distance: int = 0  # Hamming distance of the perceptual hashes; 0 for an exact (sha256) duplicate


def perceptual_hash(image: Image.Image) -> str:
    """The 64-bit pHash of an upright picture, as 16 hex digits: bit for bit ``str(imagehash.phash(image))``.

    imagehash 4.3.2's algorithm in Pillow and plain Python: greyscale, Lanczos to 32x32, the DCT-II along the
    columns then the rows (unnormalised; a scale changes no comparison), the 8x8 lowest frequencies, each bit
    "above their median", row by row from the most significant bit. Not imagehash itself: its DCT is scipy's,
    which (with numpy and PyWavelets) made the processor's zip 5 times larger for a setting that is off by
    default. imagehash stays the reference: tests/test_duplicates.py holds this to it on every corpus photo.
    Only the 8 coefficients per axis that are kept are computed (docs/duplicates.md: CPU per hash)."""
    from PIL import Image  # here, not at module level: the read API imports this module and ships no Pillow

    small = image.convert("L").resize((PHASH_SIDE, PHASH_SIDE), Image.Resampling.LANCZOS)
    pixels = small.tobytes()  # one byte per pixel, row by row
    columns = [_dct_low(pixels[x::PHASH_SIDE], PHASH_LOW) for x in range(PHASH_SIDE)]
    low = [value for k in range(PHASH_LOW) for value in _dct_low([column[k] for column in columns], PHASH_LOW)]
    ordered = sorted(low)
    median = (ordered[len(low) // 2 - 1] + ordered[len(low) // 2]) / 2  # numpy.median of an even count
    bits = int("".join("1" if value > median else "0" for value in low), 2)
    return f"{bits:0{PHASH_HEX_DIGITS}x}"


def _dct_low(values: Sequence[float], count: int) -> list[float]:
    """The first ``count`` coefficients of the DCT-II of ``values`` (a power of two long), halved from scipy's.

    The even/odd split of a fast DCT: the even coefficients are the half-length DCT of ``x[n] + x[N-1-n]``,
    the odd ones sums over ``x[n] - x[N-1-n]``. It is 3 times fewer products than the plain sum and, like
    scipy's, gives exact zeros where a flat or mirrored picture has them, so a tie at the median falls the
    same way."""
    if count == 1:
        return [float(sum(values))]
    half = len(values) // 2
    head, tail = values[:half], values[: half - 1 : -1]
    evens = _dct_low([a + b for a, b in zip(head, tail, strict=True)], (count + 1) // 2)
    differences = [a - b for a, b in zip(head, tail, strict=True)]
    odds = [sum(map(operator.mul, differences, _cosines(len(values), k))) for k in range(1, count, 2)]
    return [evens[i // 2] if i % 2 == 0 else odds[i // 2] for i in range(count)]


@functools.cache
def _cosines(size: int, k: int) -> tuple[float, ...]:
    """cos(pi k (2n+1) / 2N) for the first half of n: the DCT-II's basis, computed once per (N, k)."""
    return tuple(math.cos(math.pi * k * (2 * n + 1) / (2 * size)) for n in range(size // 2))


def hamming(left: str, right: str) -> int:
    """Bits that differ between two hex hashes of equal length."""
    if len(left) != len(right):
        raise ValueError(f"hashes of different lengths cannot be compared: {left!r}, {right!r}")
    return (int(left, 16) ^ int(right, 16)).bit_count()


def exact_duplicate(images: ImageStore, image_id: str, sha256: str, *, before: str | None) -> Match | None:
    """The earliest-created other image with the same bytes that is ``ready`` (so not in the trash), if any.

    Only images created before ``before`` (the upload's own ``created_sk``) count: the later copy is the
    duplicate, and reprocessing the original never flags it against a copy of itself."""
    candidates = [item for item in images.lookup(records.sha256_pk(sha256)) if _earlier(item, image_id, before)]
    for item in sorted(candidates, key=lambda item: item["created_sk"]):
        record = _still_ready(images, item["image_id"])
        if record is not None and record.sha256 == sha256:
            return Match(record.id, record.name)
    return None


def near_duplicate(
    images: ImageStore, image_id: str, phash: str, *, before: str | None, max_bits: int = NEAR_DUPLICATE_BITS
) -> Match | None:
    """The closest ready image created before ``before`` whose perceptual hash is within ``max_bits`` of
    ``phash`` (the earliest created among equally close ones), found through the hash's slices: one Query each."""
    found: dict[str, tuple[int, str]] = {}
    for partition in records.phash_pks(phash):
        for item in images.lookup(partition):
            other = item.get("phash")
            if not _earlier(item, image_id, before) or not other or len(other) != len(phash):
                continue
            distance = hamming(phash, other)
            if distance <= max_bits:
                found[item["image_id"]] = (distance, item["created_sk"])
    for candidate in sorted(found, key=lambda candidate_id: found[candidate_id]):
        record = _still_ready(images, candidate)
        if record is not None and record.phash and hamming(phash, record.phash) <= max_bits:
            return Match(record.id, record.name, distance=hamming(phash, record.phash))
    return None


def _earlier(item: dict[str, str], image_id: str, before: str | None) -> bool:
    return item["image_id"] != image_id and (before is None or item["created_sk"] < before)


def _still_ready(images: ImageStore, image_id: str) -> ImageRecord | None:
    record = images.get(image_id, consistent=True)
    return record if record is not None and record.status is Status.READY else None
