"""The stages in order: limits, decode once, colour, the widest rung, the ladder down from it, tiles cut from the
ladder, encodes in parallel, placeholders, facts. Bytes and settings in, renditions and facts out."""

from __future__ import annotations

from dataclasses import dataclass, replace

from PIL import Image

from pipeline import jpeg_copy, placeholder
from pipeline.config import ImagingSettings
from pipeline.imaging.colour import drop_opaque_alpha, is_srgb, normalise_mode, srgb_conversion
from pipeline.imaging.decode import Source, read
from pipeline.imaging.encode import EncodedRendition, submit_rung
from pipeline.imaging.limits import check_byte_size
from pipeline.imaging.plan import RenditionPlan
from pipeline.imaging.resize import REDUCING_GAP, resize

# EXIF orientation -> the transpose that makes the stored pixels upright (as ImageOps.exif_transpose does).
_TRANSPOSE_FOR_ORIENTATION = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


@dataclass(frozen=True)
class ImageFacts:
    format: str  # detected from content: "JPEG", "MPO", "PNG", "HEIF", "AVIF", "WEBP", "GIF", "TIFF"
    mime: str
    width: int  # displayed size, after EXIF orientation
    height: int
    frames: int  # 1 for stills; animated inputs use their first frame
    blurhash: str
    dominant_color: str  # "#rrggbb"
    notes: tuple[str, ...]


@dataclass(frozen=True)
class ProcessedImage:
    facts: ImageFacts
    # The ladder widest first, then the tiles widest first; JPEG then WebP for each rung.
    renditions: tuple[EncodedRendition, ...]
    plan: RenditionPlan


def process_image(source: bytes, settings: ImagingSettings, *, cascade: bool = True) -> ProcessedImage:
    """Check limits, decode once, and return every rendition and the facts; raises ImageRejected.

    ``cascade`` resizes each ladder rung from the one above it (the default: each step is at most 1.5x, so the
    Lanczos taps stay few); False resizes each from the widest rung, for `make bench` to compare.
    """
    check_byte_size(len(source), settings)
    notes: list[str] = []
    decoded, picture = read(source, settings, notes)
    plan = decoded.plan

    decoded_mode = picture.mode
    if isinstance(picture, Image.Image):
        picture = normalise_mode(picture, notes)
    to_srgb = srgb_conversion(picture.mode, decoded.icc_profile, notes)
    top = resize(picture, plan.as_stored(plan.top.size), to_srgb)
    del picture  # the full-size decode is the largest allocation: free it before the encoders start
    if plan.orientation != 1:
        top = top.transpose(_TRANSPOSE_FOR_ORIENTATION[plan.orientation])
    top = drop_opaque_alpha(top)
    top.info = {}  # no EXIF, XMP, ICC or comments can reach an encoder

    # The widest rung's encodes are the longest: they start first and run while the smaller rungs are resized.
    jobs = [submit_rung(plan.top, top, settings, notes)]
    ladder = [top]
    for rung in plan.ladder[1:]:
        larger = ladder[-1] if cascade else top
        ladder.append(larger.resize(rung.size, Image.Resampling.LANCZOS, reducing_gap=REDUCING_GAP))
        jobs.append(submit_rung(rung, ladder[-1], settings, notes))
    for tile in plan.tiles:
        # Cut from the narrowest rung whose crop still covers the tile: fewer source pixels, no upscaling.
        base = next(image for image in reversed(ladder) if _box_width(plan, image) >= tile.width - 0.5)
        cut = base.resize(tile.size, Image.Resampling.LANCZOS, box=plan.tile_box(base.size), reducing_gap=REDUCING_GAP)
        jobs.append(submit_rung(tile, cut, settings, notes))

    small = placeholder.small_rgb(ladder[-1])
    blurhash, dominant_color = placeholder.blurhash(small), placeholder.dominant_color(small)  # while encoders run
    renditions = [encoded for job in jobs for encoded in job.result()]
    if _upload_is_web_ready_jpeg(decoded, decoded_mode):
        encoded = renditions[0]  # the widest rung's JPEG, which is the upload's own size
        copied = jpeg_copy.strip_metadata(source)
        if copied is not None and len(copied) < len(encoded.data):
            notes.append("optimized JPEG: the upload's own JPEG data without its metadata (smaller than re-encoding)")
            renditions[0] = replace(encoded, data=copied)
    facts = ImageFacts(
        format=decoded.format,
        mime=decoded.mime,
        width=plan.displayed_size[0],
        height=plan.displayed_size[1],
        frames=decoded.frames,
        blurhash=blurhash,
        dominant_color=dominant_color,
        notes=tuple(dict.fromkeys(notes)),
    )
    return ProcessedImage(facts=facts, renditions=tuple(renditions), plan=plan)


def _box_width(plan: RenditionPlan, image: Image.Image) -> float:
    left, _upper, right, _lower = plan.tile_box(image.size)
    return right - left


def _upload_is_web_ready_jpeg(decoded: Source, mode: str) -> bool:
    """Whether the upload's own JPEG data could serve as the widest JPEG: nothing to resize, rotate or convert."""
    plan = decoded.plan
    return (
        decoded.format in ("JPEG", "MPO")
        and plan.orientation == 1
        and plan.top.size == plan.stored_size
        and mode in ("RGB", "L")
        and (decoded.icc_profile is None or is_srgb(decoded.icc_profile))
    )
