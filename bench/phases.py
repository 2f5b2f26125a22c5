"""Where a strategy's time goes: one cProfile pass, its self-times grouped into imaging phases."""

from __future__ import annotations

from typing import Any

# (phase, predicate on (file, function)) in priority order; the first match wins. Pillow's C work shows up
# as methods of ImagingCore/ImagingDecoder/ImagingEncoder and as _webp/_imagingcms built-ins.
PHASES: tuple[tuple[str, Any], ...] = (
    ("decode", lambda f, fn: "'decode' of 'ImagingDecoder'" in fn or "pillow_heif" in f or "_pillow_heif" in fn),
    (
        "orient/convert/colour",
        lambda f, fn: (
            any(
                key in fn
                for key in ("'transpose' of", "'convert' of", "_imagingcms", "CmsTransform", "'copy' of 'ImagingCore'")
            )
            or f.endswith("ImageCms.py")
        ),
    ),
    ("resize/reduce", lambda f, fn: any(key in fn for key in ("'resize' of", "'reduce' of", "'filter' of"))),
    ("encode JPEG", lambda f, fn: "ImagingEncoder" in fn or "encode_to" in fn),
    ("encode WebP", lambda f, fn: "_webp" in fn),
)
OTHER = "Python and the rest"


def group(profile: dict[str, Any]) -> dict[str, Any]:
    """Self seconds per phase (they add up to the profiled total) plus the placeholder's cumulative time."""
    seconds = {phase: 0.0 for phase, _ in PHASES} | {OTHER: 0.0}
    placeholder = 0.0
    for row in profile["functions"]:
        file, function = row["file"], row["function"]
        phase = next((name for name, matches in PHASES if matches(file, function)), OTHER)
        seconds[phase] += row["self"]
        if file.endswith("pipeline/placeholder.py") and not function.startswith(("_", "<")):
            placeholder += row["cum"]  # the public functions: small_rgb, blurhash, dominant_color
    total = profile["total_seconds"] or 1.0
    return {
        "total_seconds": profile["total_seconds"],
        "phases": {phase: {"seconds": s, "share": s / total} for phase, s in seconds.items()},
        "placeholder_cumulative_seconds": placeholder,
    }
