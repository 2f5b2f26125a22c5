"""Today's imaging (before issue 12's width ladder), loaded from git, as the baseline the ladder is held to.

`pipeline/imaging.py` at commit LEGACY_COMMIT made two box-fit renditions (thumb 400, optimized 1920) in JPEG q82
and WebP q80. Its source is read with `git show` and executed as the module `bench._legacy_imaging` (no file is
written), so the bench can measure today's code beside the new one in the same run: strategy `today`.
It imports today's `pipeline.jpeg_copy`, `pipeline.placeholder` and `pipeline.config` as they are now.
"""

from __future__ import annotations

import subprocess
import sys
import types
from functools import cache

from bench.baseline import LEGACY_COMMIT, ROOT
from bench.renditions import Output
from pipeline.config import ImagingSettings

MODULE = "bench._legacy_imaging"


@cache
def module() -> types.ModuleType:
    source = subprocess.run(
        ["git", "show", f"{LEGACY_COMMIT}:pipeline/imaging.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    legacy = types.ModuleType(MODULE)
    legacy.__file__ = f"<git {LEGACY_COMMIT}:pipeline/imaging.py>"
    sys.modules[MODULE] = legacy  # dataclasses look their module up while the classes are made
    exec(compile(source, legacy.__file__, "exec"), legacy.__dict__)  # noqa: S102 (our own code from our own history)
    return legacy


def render(source: bytes, settings: ImagingSettings) -> list[Output]:
    """Today's `process_image`, as bench.project calls the current one: the four renditions and the placeholder."""
    processed = module().process_image(source, settings)
    outputs = [
        Output(f"{rendition.name}.{rendition.format}", rendition.width, rendition.height, rendition.data)
        for rendition in processed.renditions
    ]
    text = f"{processed.facts.blurhash} {processed.facts.dominant_color}"
    outputs.append(Output("placeholder", 0, 0, text.encode()))
    return outputs
