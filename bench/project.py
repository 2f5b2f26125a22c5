"""The project's own imaging code, called exactly as the processor Lambda calls it."""

from __future__ import annotations

from bench.renditions import Output, rung_name
from pipeline.config import ImagingSettings
from pipeline.imaging import process_image


def render(source: bytes, settings: ImagingSettings, *, cascade: bool = True) -> list[Output]:
    """Every rung of both families in both formats (named as bench.renditions.STORED says), then the placeholder."""
    processed = process_image(source, settings) if cascade else process_image(source, settings, cascade=False)
    widest = {"optimized": processed.plan.ladder[0].width, "thumb": processed.plan.tiles[0].width}
    steps = {"optimized": settings.ladder_widths, "thumb": settings.tile_widths}
    outputs = []
    for rendition in processed.renditions:
        name = rung_name(
            rendition.name,
            rendition.width,
            widest=rendition.width == widest[rendition.name],
            steps=steps[rendition.name],
        )
        crop = settings.tile_aspect if rendition.name == "thumb" else None
        outputs.append(
            Output(f"{name}.{rendition.format}", rendition.width, rendition.height, rendition.data, crop_aspect=crop)
        )
    # The placeholder is stored in the record, not as a file; measured here for its size only.
    text = f"{processed.facts.blurhash} {processed.facts.dominant_color}"
    outputs.append(Output("placeholder", 0, 0, text.encode()))
    return outputs


def profile_serially() -> None:
    """Run the encoders on the calling thread, so that cProfile (which sees one thread) sees them too.

    Profiling only: the per-phase CPU is the same, only the overlap between threads is lost.
    """
    from concurrent.futures import Future

    from pipeline.imaging import encode, resize

    class _Inline:
        def submit(self, function, *args):
            future: Future = Future()
            future.set_result(function(*args))
            return future

    encode.POOL = resize.POOL = _Inline()  # type: ignore[assignment]
