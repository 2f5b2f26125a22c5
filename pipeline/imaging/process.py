"""The stages in order: limits, decode once, colour, the widest rung, the ladder down from it, tiles cut from the
ladder, encodes in parallel, placeholders, facts. Bytes and settings in, renditions and facts out."""

from __future__ import annotations

from dataclasses import dataclass, replace

from PIL import Image

from pipeline import duplicates, jpeg_copy, placeholder
from pipeline.config import ImagingSettings
from pipeline.imaging import animation as animated
from pipeline.imaging.colour import drop_opaque_alpha, is_srgb, normalise_mode, srgb_conversion
from pipeline.imaging.decode import Source, read
from pipeline.imaging.encode import EncodedRendition, submit_rung
from pipeline.imaging.limits import check_byte_size
from pipeline.imaging.plan import RenditionPlan, Rung
from pipeline.imaging.resize import REDUCING_GAP, resize
from pipeline.photo import Camera, Location

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
    # Photo facts from the EXIF/XMP (pipeline.photo); location only with KEEP_LOCATION.
    taken_at: str | None = None
    camera: Camera | None = None
    location: Location | None = None
    # Perceptual hash (16 hex digits) with NEAR_DUPLICATES; None otherwise.
    phash: str | None = None


@dataclass(frozen=True)
class ProcessedImage:
    facts: ImageFacts
    # Each ladder rung widest first, followed by the tiles cut from it; JPEG, WebP (and AVIF) for each; then the
    # animated WebPs of an animation (pipeline.imaging.animation), widest first.
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
    animation = animated.plan_animation(decoded.format, decoded.frames, plan, settings)  # from the header alone

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
    animated_jobs = (
        animated.submit_animation(
            source,
            animation,
            plan,
            {mode: srgb_conversion(mode, decoded.icc_profile, []) for mode in ("RGB", "RGBA")},
            _TRANSPOSE_FOR_ORIENTATION.get(plan.orientation),
            settings,
        )
        if animation
        else []
    )

    # Down the ladder, widest first: each rung is resized from the one above it and encoded on the pool while the
    # next is made, each tile is cut as soon as its source rung exists, and a rung is let go once nothing below
    # needs it (its encode job holds it until done), so at most two rungs are held here at a time.
    jobs = []
    cut_from = {index: [t for t in plan.tiles if plan.tile_source(t) == index] for index in range(len(plan.ladder))}
    widest = None if cascade else top
    current = top
    del top
    for index, rung in enumerate(plan.ladder):
        if index:
            larger = current if cascade else widest
            current = larger.resize(rung.size, Image.Resampling.LANCZOS, reducing_gap=REDUCING_GAP)
        jobs.append(submit_rung(rung, current, settings, notes, webp=_webp_pays(rung, index, plan, decoded, settings)))
        for tile in cut_from[index]:
            box = plan.tile_box(current.size)
            cut = current.resize(tile.size, Image.Resampling.LANCZOS, box=box, reducing_gap=REDUCING_GAP)
            jobs.append(submit_rung(tile, cut, settings, notes, webp=tile.width <= settings.webp_max_width))

    small = placeholder.small_rgb(current)
    blurhash, dominant_color = placeholder.blurhash(small), placeholder.dominant_color(small)  # while encoders run
    renditions = [encoded for job in jobs for encoded in job.result()]
    if _upload_is_web_ready_jpeg(decoded, decoded_mode):
        encoded = renditions[0]  # the widest rung's JPEG, which is the upload's own size
        copied = jpeg_copy.strip_metadata(source)
        if copied is not None and len(copied) < len(encoded.data):
            notes.append("optimized JPEG: the upload's own JPEG data without its metadata (smaller than re-encoding)")
            renditions[0] = replace(encoded, data=copied)
    if animation:
        renditions += animated.collect(animated_jobs, animation, notes)
    facts = ImageFacts(
        format=decoded.format,
        mime=decoded.mime,
        width=plan.displayed_size[0],
        height=plan.displayed_size[1],
        frames=decoded.frames,
        taken_at=decoded.photo.taken_at,
        camera=decoded.photo.camera,
        location=decoded.photo.location,
        blurhash=blurhash,
        dominant_color=dominant_color,
        notes=tuple(dict.fromkeys(notes)),
        # NEAR_DUPLICATES: of the smallest rung, upright and sRGB (the hash scales to 32x32 anyway: ~1.5 ms).
        phash=duplicates.perceptual_hash(current) if settings.near_duplicates else None,
    )
    return ProcessedImage(facts=facts, renditions=tuple(renditions), plan=plan)


def _webp_pays(rung: Rung, index: int, plan: RenditionPlan, decoded: Source, settings: ImagingSettings) -> bool:
    """Whether a WebP of this ladder rung can be smaller than its JPEG at equal quality (docs/performance.md):

    * not above WEBP_MAX_WIDTH: at equal luma SSIM WebP saves 4-12 % up to 1280 px and nothing at 1920;
    * not for a JPEG upload at its own size: its JPEG re-encodes on its own 8x8 grid nearly losslessly (luma SSIM
      0.990 on the corpus) and WebP needs about a quarter more bytes to match it.
    """
    if rung.width > settings.webp_max_width:
        return False
    return not (index == 0 and rung.size == plan.displayed_size and decoded.format in ("JPEG", "MPO"))


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
