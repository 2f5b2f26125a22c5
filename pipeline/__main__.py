"""`python -m pipeline FILES_OR_FOLDERS --out DIR`: the processor's imaging on local files, no AWS involved.

Writes every rung: DIR/optimized/<stem>-<width>.jpg|.webp (the uncropped ladder) and
DIR/thumbs/<stem>-<width>x<height>.jpg|.webp (the 4:3 tiles), DIR/animated/<stem>-<width>.webp (an animated
upload kept as animated WebP; the others are its first frame), and prints one JSON line per input
(inputs that share a stem, like a.png and a.webp, become <stem>-png and <stem>-webp).
Exit status: 0 when every input became an image, 1 when any was rejected, 2 on usage errors.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from pipeline.config import ConfigError, Settings
from pipeline.imaging import ImageRejected, ProcessedImage, check_byte_size, process_image

_FOLDERS = {"thumb": "thumbs", "optimized": "optimized", "animated": "animated"}
_SUFFIXES = {"jpeg": ".jpg", "webp": ".webp"}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline",
        description="Make the renditions (the width ladder and the 4:3 tiles, JPEG + WebP) of local images, as the "
        "processor Lambda does. Sizes, qualities and limits come from the environment (LADDER_WIDTHS, TILE_WIDTHS, "
        "OPTIMIZED_SIZE, JPEG_QUALITY, WEBP_QUALITY, WEBP_METHOD, MAX_UPLOAD_BYTES, MAX_PIXELS, MAX_FRAMES, ANIMATION, "
        "MAX_ANIMATION_PIXELS).",
    )
    parser.add_argument("inputs", nargs="+", type=Path, metavar="FILE_OR_FOLDER", help="images, or folders of them")
    parser.add_argument(
        "--out", required=True, type=Path, metavar="DIR", help="where thumbs/, optimized/ and animated/ go"
    )
    args = parser.parse_args(argv)

    try:
        settings = Settings.from_env()
    except ConfigError as error:
        parser.error(str(error))
    missing = [str(path) for path in args.inputs if not path.exists()]
    if missing:
        parser.error(f"no such file or folder: {', '.join(missing)}")
    files = list(_expand(args.inputs))
    stems = _output_stems(files)

    failed = 0
    for path in files:
        started, cpu_started = time.perf_counter(), time.process_time()
        try:
            check_byte_size(path.stat().st_size, settings.imaging)  # before reading a huge file into memory
            processed = process_image(path.read_bytes(), settings.imaging)
        except ImageRejected as rejected:
            failed += 1
            print(json.dumps({"file": str(path), "error": rejected.reason}), flush=True)
            continue
        # Wall and CPU time (all threads) of reading and processing, not of writing the outputs.
        timing = {
            "ms": round((time.perf_counter() - started) * 1000, 1),
            "cpu_ms": round((time.process_time() - cpu_started) * 1000, 1),
        }
        written = _write(stems[path], processed, args.out)
        report = _report(path, processed, written, timing, keep_location=settings.imaging.keep_location)
        print(json.dumps(report), flush=True)
    return 1 if failed else 0


def _expand(inputs: Sequence[Path]) -> Iterator[Path]:
    """Files as given; folders as their files, recursively, in name order, skipping hidden ones."""
    for path in inputs:
        if path.is_dir():
            yield from sorted(
                child
                for child in path.rglob("*")
                if child.is_file() and not any(part.startswith(".") for part in child.relative_to(path).parts)
            )
        else:
            yield path


def _output_stems(files: Sequence[Path]) -> dict[Path, str]:
    """<stem> per input; inputs sharing a stem (a.png, a.webp) get <stem>-<extension> so no output is overwritten."""
    by_stem: dict[str, list[Path]] = {}
    for path in files:
        by_stem.setdefault(path.stem, []).append(path)
    stems = {}
    for stem, paths in by_stem.items():
        for path in paths:
            stems[path] = stem if len(paths) == 1 else f"{stem}-{path.suffix.lstrip('.') or 'file'}"
    return stems


def _write(stem: str, processed: ProcessedImage, out: Path) -> dict[tuple[str, str, int], Path]:
    written = {}
    for rendition in processed.renditions:
        size = f"{rendition.width}x{rendition.height}" if rendition.name == "thumb" else f"{rendition.width}"
        target = out / _FOLDERS[rendition.name] / f"{stem}-{size}{_SUFFIXES[rendition.format]}"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(rendition.data)
        written[(rendition.name, rendition.format, rendition.width)] = target
    return written


def _report(
    path: Path,
    processed: ProcessedImage,
    written: dict[tuple[str, str, int], Path],
    timing: dict[str, float],
    *,
    keep_location: bool = False,
) -> dict:
    facts = dataclasses.asdict(processed.facts)
    facts["notes"] = list(processed.facts.notes)
    # Photo facts as the API shows them: the camera's known values only, and no location key at all unless
    # KEEP_LOCATION asked for it (then null where the photo has no GPS).
    facts["camera"] = processed.facts.camera.to_dict() if processed.facts.camera else None
    del facts["location"]
    if keep_location:
        facts["location"] = processed.facts.location.to_dict() if processed.facts.location else None
    return {
        "file": str(path),
        "facts": facts,
        "renditions": [
            {
                "name": rendition.name,
                "format": rendition.format,
                "width": rendition.width,
                "height": rendition.height,
                "bytes": len(rendition.data),
                "path": str(written[(rendition.name, rendition.format, rendition.width)]),
            }
            for rendition in processed.renditions
        ],
        "input_bytes": path.stat().st_size,
        **timing,
    }


if __name__ == "__main__":
    sys.exit(main())
