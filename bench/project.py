"""The project's own imaging code, called exactly as the processor Lambda calls it."""

from __future__ import annotations

from bench.renditions import Output
from pipeline.config import ImagingSettings
from pipeline.imaging import process_image


def render(source: bytes, settings: ImagingSettings) -> list[Output]:
    processed = process_image(source, settings)
    outputs = [
        Output(f"{rendition.name}.{rendition.format}", rendition.width, rendition.height, rendition.data)
        for rendition in processed.renditions
    ]
    # The placeholder is stored in the record, not as a file; measured here for its size only.
    text = f"{processed.facts.blurhash} {processed.facts.dominant_color}"
    outputs.append(Output("placeholder", 0, 0, text.encode()))
    return outputs


def profile_serially() -> None:
    """Run the encoders on the calling thread, so that cProfile (which sees one thread) sees them too.

    Profiling only: the per-phase CPU is the same, only the overlap between threads is lost.
    """
    from concurrent.futures import Future

    from pipeline import imaging

    class _Inline:
        def submit(self, function, *args):
            future: Future = Future()
            future.set_result(function(*args))
            return future

    imaging._ENCODERS = _Inline()  # type: ignore[assignment]
