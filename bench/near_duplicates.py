"""How far apart are perceptual hashes of the same photo, and of different photos? ``python -m bench.near_duplicates``.

For every corpus photo this makes the copies a second upload of it would plausibly be (resized, recompressed as
JPEG or WebP, slightly cropped, rotated with an EXIF orientation that puts it back upright), hashes originals and
copies (pHash through the processor's own ``imaging.process_image`` with NEAR_DUPLICATES on, so the figures are
the shipped code's, ``duplicates.perceptual_hash``; dHash and wHash by imagehash, a dev requirement, for comparison,
of the upright picture scaled to the smallest ladder rung's width, as the processor hashes it), and prints, per
Hamming threshold, the false positives (pairs of different photos within it) and false negatives (copies not
within it of their original) as a Markdown table for docs/duplicates.md.

``Landscape_0..8`` and ``Portrait_0..8`` are one picture each stored under the nine EXIF orientations: upright they
are the same photo, so each series counts as one photo (its members are duplicates of each other, not false
positives), and its members other than ``_1`` are counted as further copies of ``_1``.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import itertools
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Final

import imagehash
from PIL import Image, ImageOps

from pipeline import imaging
from pipeline.config import ImagingSettings
from pipeline.duplicates import hamming

PHOTOS: Final = Path(__file__).resolve().parent.parent.parent / "shared" / "corpus" / "photos"
PHOTO_SUFFIXES: Final = {".jpg", ".jpeg", ".png", ".webp", ".heic", ".tif", ".tiff"}
# The processor hashes its smallest ladder rung (320 px wide, or the photo's own width if narrower).
RUNG_WIDTH: Final = 320
THRESHOLDS: Final = range(0, 17)
SERIES: Final = re.compile(r"^(Landscape|Portrait)_[0-8]$")
EXIF_ORIENTATION: Final = 0x0112

HASHES: Final[dict[str, Callable[[Image.Image], str]]] = {
    "dHash": lambda image: str(imagehash.dhash(image)),
    "wHash": lambda image: str(imagehash.whash(image)),
}


def _jpeg(image: Image.Image, quality: int = 90, exif: Image.Exif | None = None) -> bytes:
    out = io.BytesIO()
    image.convert("RGB").save(out, "JPEG", quality=quality, **({"exif": exif.tobytes()} if exif else {}))
    return out.getvalue()


def _webp(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.convert("RGB").save(out, "WEBP", quality=75)
    return out.getvalue()


def _scaled(image: Image.Image, factor: float) -> Image.Image:
    size = (max(1, round(image.width * factor)), max(1, round(image.height * factor)))
    return image.resize(size, Image.Resampling.LANCZOS)


def _cropped(image: Image.Image, fraction: float) -> Image.Image:
    dx, dy = round(image.width * fraction), round(image.height * fraction)
    return image.crop((dx, dy, image.width - dx, image.height - dy))


def _exif_rotated(image: Image.Image) -> bytes:
    """Pixels stored turned a quarter left, with orientation 6 ("turn right to view"): upright, the same picture."""
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = 6
    return _jpeg(image.transpose(Image.Transpose.ROTATE_90), exif=exif)


COPIES: Final[dict[str, Callable[[Image.Image], bytes | None]]] = {
    "resized 50%": lambda image: _jpeg(_scaled(image, 0.5)),
    "resized 25%": lambda image: _jpeg(_scaled(image, 0.25)),
    "resized 1920 px": lambda image: _jpeg(_scaled(image, 1920 / max(image.size))) if max(image.size) > 1920 else None,
    "JPEG q60": lambda image: _jpeg(image, 60),
    "JPEG q40": lambda image: _jpeg(image, 40),
    "WebP q75": _webp,
    "cropped 2%": lambda image: _jpeg(_cropped(image, 0.02)),
    "cropped 5%": lambda image: _jpeg(_cropped(image, 0.05)),
    "EXIF-rotated": _exif_rotated,
}


def upright_rung(source: bytes) -> Image.Image:
    """The upright picture at the width of the processor's smallest rung (what it hashes)."""
    with Image.open(io.BytesIO(source)) as opened:
        image = ImageOps.exif_transpose(opened).convert("RGB")
    if image.width > RUNG_WIDTH:
        image = image.resize((RUNG_WIDTH, max(1, round(image.height * RUNG_WIDTH / image.width))), Image.LANCZOS)
    return image


@dataclasses.dataclass
class Version:
    photo: str  # the photo it shows (a series' name for its members)
    kind: str  # "original" or the copy's kind
    hashes: dict[str, str]


def photo_name(path: Path) -> str:
    match = SERIES.match(path.stem)
    return match.group(1) if match else path.stem


def hashed(source: bytes, settings: ImagingSettings) -> dict[str, str]:
    """pHash as the processor computes it (from its own decode and ladder), dHash and wHash for comparison."""
    phash = imaging.process_image(source, settings).facts.phash
    assert phash, "process_image made no pHash with NEAR_DUPLICATES on"
    rung = upright_rung(source)
    return {"pHash": phash, **{name: function(rung) for name, function in HASHES.items()}}


def measure(photos: Path) -> list[Version]:
    """Every original and copy hashed."""
    import pillow_heif

    pillow_heif.register_heif_opener()
    settings = dataclasses.replace(ImagingSettings(), near_duplicates=True)
    versions: list[Version] = []
    for path in sorted(p for p in photos.iterdir() if p.suffix.lower() in PHOTO_SUFFIXES):
        source = path.read_bytes()
        name = photo_name(path)
        series_member = SERIES.match(path.stem) and not path.stem.endswith("_1")
        versions.append(
            Version(name, f"{path.name} (series)" if series_member else "original", hashed(source, settings))
        )
        if series_member:
            continue  # the series' own copies come from its _1 member
        with Image.open(io.BytesIO(source)) as opened:
            upright = ImageOps.exif_transpose(opened).convert("RGB")
        for kind, make in COPIES.items():
            copy = make(upright)
            if copy is not None:
                versions.append(Version(name, kind, hashed(copy, settings)))
        print(f"{path.name}: hashed with its copies", file=sys.stderr, flush=True)
    return versions


def table(versions: list[Version], hash_name: str) -> list[str]:
    originals = [v for v in versions if v.kind == "original"]
    copies = [v for v in versions if v.kind != "original"]
    by_photo = {v.photo: v.hashes[hash_name] for v in originals}
    # The closest any version of photo A comes to the original of a different photo B.
    cross: dict[tuple[str, str], int] = {}
    for version in versions:
        for other, other_hash in by_photo.items():
            if other != version.photo:
                pair = tuple(sorted((version.photo, other)))
                distance = hamming(version.hashes[hash_name], other_hash)
                cross[pair] = min(cross.get(pair, 64), distance)  # type: ignore[index]
    originals_only = {
        tuple(sorted((a.photo, b.photo))): hamming(a.hashes[hash_name], b.hashes[hash_name])
        for a, b in itertools.combinations(originals, 2)
    }
    own = [(v, hamming(v.hashes[hash_name], by_photo[v.photo])) for v in copies]
    lines = [
        f"| {hash_name} threshold (bits) | false positives: originals | false positives: any copy vs another original "
        f"| false negatives (of {len(own)} copies) |",
        "| ---: | ---: | ---: | ---: |",
    ]
    for threshold in THRESHOLDS:
        fp_originals = sum(d <= threshold for d in originals_only.values())
        fp_any = sum(d <= threshold for d in cross.values())
        fn = sum(d > threshold for _, d in own)
        lines.append(f"| {threshold} | {fp_originals} | {fp_any} | {fn} |")
    closest = min(cross.items(), key=lambda item: item[1])
    lines.append("")
    lines.append(
        f"{hash_name}: {len(by_photo)} different photos, {len(cross)} pairs; the closest different pair is "
        f"{closest[0][0]} / {closest[0][1]} at {closest[1]} bits."
    )
    worst: dict[str, int] = {}
    for version, distance in own:
        kind = "series member" if version.kind.endswith("(series)") else version.kind
        worst[kind] = max(worst.get(kind, 0), distance)
    lines.append(
        f"{hash_name}: largest distance from its original, by kind of copy: "
        + ", ".join(f"{kind} {distance}" for kind, distance in worst.items())
        + "."
    )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.near_duplicates", description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=Path, default=PHOTOS, help="folder of photos (default: the corpus)")
    args = parser.parse_args(argv)
    versions = measure(args.photos)
    print(f"{len(versions)} versions hashed (originals and copies).\n")
    for hash_name in ("pHash", *HASHES):
        print("\n".join(table(versions, hash_name)))
        print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
