"""One benchmark child: runs one strategy over in-memory photos and prints its measurements as JSON on stdout.

Run by bench.cli as `python -m bench.worker` with a job on stdin, so that each strategy's CPU time and peak
memory (ru_maxrss) belong to a process that did nothing else.
"""

from __future__ import annotations

import cProfile
import hashlib
import json
import pstats
import resource
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from bench.renditions import load_strategy
from pipeline.config import ImagingSettings


def main() -> None:
    job = json.load(sys.stdin)
    mode = job["mode"]
    settings = ImagingSettings()
    render = load_strategy(job["strategy"]) if mode not in ("quality", "equal_quality") else None
    photos = {Path(path).name: Path(path).read_bytes() for path in job.get("files", [])}
    if mode == "throughput":
        result = _throughput(render, photos, settings, job["passes"], job.get("dump_dir"))
    elif mode == "peak":
        result = _peak(render, photos, settings)
    elif mode == "quality":
        from bench import quality

        scores = [
            quality.score(Path(photo), Path(output).read_bytes(), crop_aspect)
            for photo, output, crop_aspect in job["pairs"]
        ]
        json.dump({"scores": [[s.psnr_db, s.ssim] for s in scores]}, sys.stdout)
        return
    elif mode == "equal_quality":
        from bench import equal_quality

        per_photo = {Path(path).name: equal_quality.measure(Path(path), settings) for path in job["files"]}
        json.dump({"per_photo": per_photo}, sys.stdout)
        return
    elif mode == "profile":
        if job["strategy"] == "project":
            from bench.project import profile_serially

            profile_serially()
        result = _profile(render, photos, settings)
    else:
        raise SystemExit(f"unknown mode {mode!r}")
    result["code_version"] = _code_version()
    json.dump(result, sys.stdout)


def _code_version() -> str:
    """A short hash of the imaging code this child imported: the tree is shared, and a file edited mid-run
    would otherwise make strategies quietly compare different code."""
    digest = hashlib.sha256()
    root = Path(__file__).resolve().parent.parent
    modules = sorted((root / "pipeline" / "imaging").glob("*.py"))
    for path in [*modules, root / "pipeline/imaging.py", root / "pipeline/placeholder.py", root / "pipeline/config.py"]:
        digest.update(path.read_bytes() if path.exists() else b"")
    return digest.hexdigest()[:12]


def _throughput(render, photos: dict[str, bytes], settings: ImagingSettings, passes: int, dump_dir: str | None):
    baseline_rss_kb = _status_kb("VmRSS")
    for source in photos.values():  # warm-up: imports, codec tables, first-touch allocations
        render(source, settings)
    usage_before = resource.getrusage(resource.RUSAGE_SELF)
    per_photo_wall: dict[str, list[float]] = {name: [] for name in photos}
    per_photo_cpu: dict[str, list[float]] = {name: [] for name in photos}
    pass_wall: list[float] = []
    outputs: dict[str, list[dict[str, Any]]] = {}
    for pass_number in range(passes):
        total = 0.0
        for name, source in photos.items():
            cpu_start, wall_start = time.process_time(), time.perf_counter()
            rendered = render(source, settings)
            wall, cpu = time.perf_counter() - wall_start, time.process_time() - cpu_start
            total += wall
            per_photo_wall[name].append(wall)
            per_photo_cpu[name].append(cpu)
            if pass_number == passes - 1:  # outside the timers: keep the last pass's outputs for the quality check
                outputs[name] = [_describe(output, name, dump_dir) for output in rendered]
        pass_wall.append(total)
    usage_after = resource.getrusage(resource.RUSAGE_SELF)
    cpu_seconds = (usage_after.ru_utime - usage_before.ru_utime) + (usage_after.ru_stime - usage_before.ru_stime)
    return {
        "passes": passes,
        "pass_wall_seconds": pass_wall,
        "median_pass_seconds": statistics.median(pass_wall),
        "cpu_seconds_per_pass": cpu_seconds / passes,
        "per_photo_wall_seconds": {name: statistics.median(v) for name, v in per_photo_wall.items()},
        "per_photo_cpu_seconds": {name: statistics.median(v) for name, v in per_photo_cpu.items()},
        "baseline_rss_mb": baseline_rss_kb / 1024,
        "peak_rss_mb": _status_kb("VmHWM") / 1024,
        "ru_maxrss_mb": usage_after.ru_maxrss / 1024,
        "outputs": outputs,
    }


def _peak(render, photos: dict[str, bytes], settings: ImagingSettings) -> dict[str, Any]:
    """A fresh process renders one photo once: its high-water mark is that photo's peak memory."""
    baseline_rss_kb = _status_kb("VmRSS")
    for source in photos.values():
        render(source, settings)
    return {
        "baseline_rss_mb": baseline_rss_kb / 1024,
        "peak_rss_mb": _status_kb("VmHWM") / 1024,
        "ru_maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def _profile(render, photos: dict[str, bytes], settings: ImagingSettings) -> dict[str, Any]:
    """One profiled pass after a warm-up; returns (function, self seconds, cumulative seconds) rows."""
    for source in photos.values():
        render(source, settings)
    profiler = cProfile.Profile()
    profiler.enable()
    for source in photos.values():
        render(source, settings)
    profiler.disable()
    stats = pstats.Stats(profiler)
    rows = []
    for (filename, line, function), (_, _, self_seconds, cumulative_seconds, _) in stats.stats.items():  # type: ignore[attr-defined]
        rows.append(
            {"file": filename, "line": line, "function": function, "self": self_seconds, "cum": cumulative_seconds}
        )
    return {"functions": rows, "total_seconds": stats.total_tt}  # type: ignore[attr-defined]


def _describe(output, photo: str, dump_dir: str | None) -> dict[str, Any]:
    path = None
    if dump_dir:
        path = Path(dump_dir) / f"{photo}.{output.name}"
        path.write_bytes(output.data)
    return {
        "name": output.name,
        "width": output.width,
        "height": output.height,
        "bytes": len(output.data),
        "path": str(path) if path else None,
        "crop_aspect": output.crop_aspect,
    }


def _status_kb(field: str) -> int:
    """VmRSS (resident now) or VmHWM (the peak of this process's own memory) from /proc, in kB.

    VmHWM rather than ru_maxrss: Linux carries the parent's resident size at spawn into the child's ru_maxrss
    (exec records the outgoing, shared address space's high-water mark), so a large parent would mask the child.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status: peak memory needs Linux")


if __name__ == "__main__":
    main()
