"""Is this upload already in the gallery? Exact duplicates by sha256, near-duplicates by perceptual hash.

Both answers come from the lookup items the store writes with a ``ready`` record (``SHA256#<hex>`` and the
``PHASH#<n>#<slice>`` slices, pipeline.records), one Query each, never a Scan. Those items are read from an
eventually consistent partition and may name an image that has just left ``ready``, so every candidate is re-read
(consistent) before it counts. Why and how near is near: docs/duplicates.md.

A flag (``duplicate_of``, ``near_duplicate_of``) is a fact about the upload at the time it was processed: the
image it names may be deleted or trashed later. Readers use ``flag_target`` and show a link only while it is
still there.
"""

from __future__ import annotations

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


@dataclass(frozen=True)
class Match:
    """An earlier image the upload repeats: its id and, for people, how it is called."""

    image_id: str
    label: str
    distance: int = 0  # Hamming distance of the perceptual hashes; 0 for an exact (sha256) duplicate


def perceptual_hash(image: Image.Image) -> str:
    """The 64-bit pHash (DCT of a 32x32 greyscale copy) of an upright picture, as 16 hex digits.

    imagehash scales the picture down itself, so a small rendition gives the same hash as the full decode at a
    fraction of the cost. Imported here, not at module level: numpy and scipy load only when near-duplicates
    are on (a cold start of the processor pays nothing otherwise)."""
    import imagehash

    return str(imagehash.phash(image))


def hamming(left: str, right: str) -> int:
    """Bits that differ between two hex hashes of equal length."""
    if len(left) != len(right):
        raise ValueError(f"hashes of different lengths cannot be compared: {left!r}, {right!r}")
    return (int(left, 16) ^ int(right, 16)).bit_count()


def label(record: ImageRecord) -> str:
    """How people know an image: its title, else the uploaded file's name."""
    return record.title or record.file_name or record.id


def exact_duplicate(images: ImageStore, image_id: str, sha256: str, *, before: str | None) -> Match | None:
    """The earliest-created other image with the same bytes that is ``ready`` (so not in the trash), if any.

    Only images created before ``before`` (the upload's own ``created_sk``) count: the later copy is the
    duplicate, and reprocessing the original never flags it against a copy of itself."""
    candidates = [item for item in images.lookup(records.sha256_pk(sha256)) if _earlier(item, image_id, before)]
    for item in sorted(candidates, key=lambda item: item["created_sk"]):
        record = _still_ready(images, item["image_id"])
        if record is not None and record.sha256 == sha256:
            return Match(record.id, label(record))
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
            return Match(record.id, label(record), distance=hamming(phash, record.phash))
    return None


def flag_target(images: ImageStore, target_id: str | None) -> ImageRecord | None:
    """The image a ``duplicate_of``/``near_duplicate_of`` flag names, while it still exists outside the trash;
    None once it is gone (pages then show no link: the flag stays as history)."""
    if not target_id:
        return None
    record = images.get(target_id)
    return None if record is None or record.in_trash else record


def _earlier(item: dict[str, str], image_id: str, before: str | None) -> bool:
    return item["image_id"] != image_id and (before is None or item["created_sk"] < before)


def _still_ready(images: ImageStore, image_id: str) -> ImageRecord | None:
    record = images.get(image_id, consistent=True)
    return record if record is not None and record.status is Status.READY else None
