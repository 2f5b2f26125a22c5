"""Animations kept: an animated GIF, WebP, APNG or AVIF sequence becomes an animated WebP at a few ladder widths,
planned from the header, its frames decoded, coloured and resized one at a time as libwebp's encoder asks for them.

The still renditions of the first frame (the ladder and the tiles) are made as for any photo and serve as the
poster. What is made is decided before a frame is decoded: the ladder rungs up to ``MAX_ANIMATED_WIDTH``, then the
widest dropped first until ``frames x width x height`` of them all is within ``max_animation_pixels``; if not even
the narrowest fits, the still alone, with a note that says why. imgproxy budgets the same way
(``IMGPROXY_MAX_ANIMATION_FRAMES``, and its source resolution limit sums the pixels of every frame); Wagtail's
Willow hands animated GIFs to Wand (ImageMagick), its Pillow plugin flattening them: here Pillow does it all.

Memory: each animated rung opens the upload afresh and walks its frames once; Pillow's WebP writer seeks through the
frames of the images it appends, so ``_Frames`` makes each frame only when asked and lets it go after. A rung holds
one decoded canvas and one resized frame besides what libwebp keeps (the previous canvas and the encoded frames),
never every frame. Decoding again per rung costs about a quarter of the animation's CPU on the measured pan
(docs/performance.md), and keeps memory bounded by the frame size, whatever the frame count.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Final

from PIL import Image

from pipeline.config import ImagingSettings
from pipeline.imaging.colour import Finish, normalise_mode
from pipeline.imaging.decode import frames_note
from pipeline.imaging.encode import EncodedRendition
from pipeline.imaging.errors import CorruptImage
from pipeline.imaging.limits import corrupt_reason
from pipeline.imaging.plan import RenditionPlan, Rung
from pipeline.imaging.threads import POOL

# Formats whose frames are an animation in time. MPO (a stereo pair), multi-page TIFF and HEIF image collections are
# several pictures, not one moving picture: they keep their first picture only.
ANIMATED_FORMATS: Final = frozenset({"GIF", "WEBP", "PNG", "AVIF"})
# No animated rung wider than this: animated bytes grow with the pixels of every frame, and the detail page's
# animation at 640 px is sharp on a phone (docs/performance.md, "Animations").
MAX_ANIMATED_WIDTH: Final = 640
# Browsers play a GIF frame of 10 ms or less for 100 ms (Chrome, Firefox and Safari alike); the WebP keeps what
# people saw, not the number in the file.
_GIF_CLAMPED_MS: Final = 10
_GIF_SHORT_FRAME_MS: Final = 100
# libwebp's WebP loop count: 0 plays forever; GIF counts repeats after the first play (as gif2webp converts it).
_FOREVER: Final = 0
_MAX_LOOPS: Final = 65535


@dataclass(frozen=True)
class AnimationPlan:
    """What an animated upload becomes, decided from its header: the rungs (widest first; empty: the still only)."""

    format: str
    frames: int
    rungs: tuple[Rung, ...]
    note: str


def animated_pixels(frames: int, rungs: tuple[Rung, ...]) -> int:
    """The budget's measure: frames x width x height summed over the animated outputs."""
    return frames * sum(rung.width * rung.height for rung in rungs)


def plan_animation(fmt: str, frames: int, plan: RenditionPlan, settings: ImagingSettings) -> AnimationPlan | None:
    """The animated rungs of an upload, or None when it is no animation or ANIMATION is off (the still only, as
    before). Over the budget, a plan without rungs whose note says why."""
    if not settings.animation or frames < 2 or fmt not in ANIMATED_FORMATS:
        return None
    rungs = tuple(Rung("animated", r.width, r.height) for r in plan.ladder if r.width <= MAX_ANIMATED_WIDTH)
    while rungs and animated_pixels(frames, rungs) > settings.max_animation_pixels:
        rungs = rungs[1:]  # the widest costs the most pixels and the narrower ones still animate
    if rungs:
        widths = ", ".join(str(rung.width) for rung in rungs)
        note = f"animated {fmt} kept as animated WebP: {frames} frames at widths {widths}"
        return AnimationPlan(fmt, frames, rungs, note)
    narrowest = next((r for r in reversed(plan.ladder) if r.width <= MAX_ANIMATED_WIDTH), plan.ladder[-1])
    cost = animated_pixels(frames, (narrowest,))
    note = (
        f"animation not kept: {frames} frames at {narrowest.width}x{narrowest.height} are {_mpx(cost)}, more than "
        f"the {_mpx(settings.max_animation_pixels)} MAX_ANIMATION_PIXELS allows"
    )
    return AnimationPlan(fmt, frames, (), note)


def submit_animation(
    source: bytes,
    animation: AnimationPlan,
    plan: RenditionPlan,
    to_srgb: dict[str, Finish],
    transpose: Image.Transpose | None,
    settings: ImagingSettings,
) -> list[Future]:
    """Encode each animated rung on the shared pool; each future's result is one EncodedRendition.

    ``to_srgb`` is the still path's colour step for RGB and for RGBA pixels (``colour.srgb_conversion``) and
    ``transpose`` its EXIF turn, so the animation and its poster show the same colours the same way up.
    """
    options = encoder_options(animated_pixels(animation.frames, animation.rungs))
    return [
        POOL.submit(_encode_rung, source, animation.format, rung, plan, to_srgb, transpose, settings, options)
        for rung in animation.rungs
    ]


def collect(jobs: list[Future], animation: AnimationPlan, notes: list[str]) -> tuple[EncodedRendition, ...]:
    """The animated renditions, their note in the place of "first of N frames used"; or none, with why not, and
    the still stands (over the budget, or a later frame that turned out undecodable)."""
    if not animation.rungs:
        notes.append(animation.note)
        return ()
    try:
        encoded = tuple(job.result() for job in jobs)
    except CorruptImage as corrupt:
        notes.append(f"animation not kept: {corrupt.reason}")
        return ()
    first_frame_only = frames_note(animation.format, animation.frames)
    notes[:] = [animation.note if note == first_frame_only else note for note in notes]
    return encoded


def _encode_rung(
    source: bytes,
    fmt: str,
    rung: Rung,
    plan: RenditionPlan,
    to_srgb: dict[str, Finish],
    transpose: Image.Transpose | None,
    settings: ImagingSettings,
    options: dict[str, object],
) -> EncodedRendition:
    stored_size = plan.as_stored(rung.size)

    def frame(opened: Image.Image) -> Image.Image:
        # RGB where the frame has no transparency: resizing RGBA costs a third more, and libwebp drops an alpha
        # channel that is opaque anyway. Each frame's mode is its own; the encoder takes RGB and RGBA alike.
        picture = normalise_mode(opened, [])
        if picture.mode not in ("RGB", "RGBA"):
            picture = picture.convert("RGBA" if picture.has_transparency_data else "RGB")
        picture = to_srgb[picture.mode](picture.resize(stored_size, Image.Resampling.LANCZOS))
        return picture.transpose(transpose) if transpose is not None else picture

    try:
        with Image.open(io.BytesIO(source), formats=(fmt,)) as opened:
            frames = _Frames(opened, frame, fmt)
            buffer = io.BytesIO()
            frames.first().save(
                buffer,
                "WEBP",
                save_all=True,
                append_images=[frames],
                duration=frames.durations,  # filled as the writer seeks: it reads a frame's duration after adding it
                loop=_webp_loop(fmt, opened.info.get("loop")),
                quality=settings.webp_quality,
                method=settings.webp_method,
                **options,
            )
    except MemoryError:
        raise
    except Exception as exc:  # a later frame may be truncated or corrupt though the first one decoded
        raise CorruptImage(corrupt_reason(fmt, exc)) from exc
    if len(frames.durations) != frames.n_frames + 1:  # a Pillow whose writer reads frames otherwise: say so, loudly
        raise RuntimeError(f"{len(frames.durations)} of {frames.n_frames + 1} frames reached the WebP encoder")
    return EncodedRendition(
        name="animated", format="webp", width=rung.width, height=rung.height, data=buffer.getvalue()
    )


# Measured on the corpus's animations, a generated pan and a moving ball (docs/performance.md, "Animations"), at the
# stills' WebP quality and effort. allow_mixed (each frame lossy or lossless, whichever is smaller) always: lossy
# frames blended over the last canvas leave ghosts of a moving object on a flat background, which allow_mixed
# encodes losslessly, exact and smaller, at lossy's CPU. minimize_size (libwebp tries each frame's sub-rectangle and
# disposal both ways, no key frames) on top saves another 25-40 % on the corpus's cartoon-like animations, but with
# allow_mixed it tries lossless on every frame of a photo-like one too, for 4x the CPU and no byte saved (the pan):
# so only while the animation is small enough for that not to matter.
ENCODER_OPTIONS: Final[dict[str, object]] = {"allow_mixed": True}
MINIMIZE_SIZE_MAX_PIXELS: Final = 8_000_000  # frames x width x height of all animated rungs: at most ~5 CPU s


def encoder_options(pixels: int) -> dict[str, object]:
    """libwebp's options for an animation of ``pixels`` (``animated_pixels``): ENCODER_OPTIONS, with minimize_size
    while it is cheap (an entry in ENCODER_OPTIONS wins, for the bench's comparisons)."""
    return {"minimize_size": pixels <= MINIMIZE_SIZE_MAX_PIXELS, **ENCODER_OPTIONS}


class _Frames:
    """The upload's frames from the second on, as Pillow's WebP writer reads an image it appends: it seeks to each
    of ``n_frames`` in turn and takes that frame's pixels (``mode``, ``getim``). Each frame is decoded, converted and
    resized when sought, the one before it let go, and its duration appended to ``durations``."""

    def __init__(self, opened: Image.Image, make: Callable[[Image.Image], Image.Image], fmt: str) -> None:
        # An APNG's default image may stand outside the animation (for viewers without APNG): it is then frame 0.
        self._skipped = 1 if fmt == "PNG" and opened.info.get("default_image") else 0
        self.n_frames = int(getattr(opened, "n_frames", 1)) - 1 - self._skipped
        self.durations: list[int] = []
        self._opened = opened
        self._make = make
        self._fmt = fmt
        self._current: Image.Image | None = None

    def first(self) -> Image.Image:
        """The first frame, made as the others are: the image the writer is called on."""
        self.seek(-1)
        return self._frame()

    def seek(self, index: int) -> None:
        self._opened.seek(index + 1 + self._skipped)
        self._opened.load()
        self._current = self._make(self._opened)
        self.durations.append(_duration(self._fmt, self._opened.info.get("duration")))

    @property
    def mode(self) -> str:
        return self._frame().mode

    def getim(self) -> object:
        return self._frame().getim()

    def _frame(self) -> Image.Image:
        if self._current is None:
            raise ValueError("no frame sought yet")
        return self._current


def _duration(fmt: str, milliseconds: object) -> int:
    duration = round(milliseconds) if isinstance(milliseconds, int | float) else 0
    if fmt == "GIF" and duration <= _GIF_CLAMPED_MS:
        return _GIF_SHORT_FRAME_MS
    return max(0, duration)


def _webp_loop(fmt: str, loop: object) -> int:
    """The WebP loop count for the source's: a GIF without a loop extension plays once, one with ``loop`` N plays
    N + 1 times (gif2webp's reading); APNG's and WebP's count plays, 0 forever; an AVIF sequence loops."""
    if fmt == "GIF":
        if not isinstance(loop, int):
            return 1
        return _FOREVER if loop == 0 else min(loop + 1, _MAX_LOOPS)
    return min(loop, _MAX_LOOPS) if isinstance(loop, int) and loop >= 0 else _FOREVER


def _mpx(pixels: int) -> str:
    return f"{pixels / 1_000_000:.3g} Mpx"
