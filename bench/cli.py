"""`python -m bench`: run every strategy in its own subprocess over the corpus, then compare and print."""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench import baseline, equal_quality, lambda_cost, phases, report
from bench.renditions import EXPERIMENTS, PLACEHOLDER, PSNR_CAP_DB, STORED, STRATEGIES, rung_order

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PHOTOS = ROOT.parent / "shared" / "corpus" / "photos"
PHOTO_SUFFIXES = {".jpg", ".jpeg", ".png", ".tif", ".tiff", ".webp", ".heic", ".heif", ".gif"}


class BenchError(RuntimeError):
    """A benchmark child failed or the inputs are unusable; the message says which and why."""


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        results = run(args)
    except BenchError as error:
        print(f"bench: {error}", file=sys.stderr)
        return 1
    results["command"] = " ".join(["python -m bench", *(sys.argv[1:] if argv is None else argv)])
    print(report.render(results))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, sort_keys=True))
        print(f"\nwrote {args.json}")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--photos", type=Path, default=DEFAULT_PHOTOS, help="folder of photos (default: the corpus)")
    parser.add_argument("--files", nargs="+", metavar="NAME", help="only these files from --photos")
    parser.add_argument("--passes", type=int, default=3, help="timed passes after one warm-up; the median counts")
    parser.add_argument(
        "--strategies",
        nargs="+",
        choices=[*STRATEGIES, *EXPERIMENTS],
        help=f"default: {' '.join(STRATEGIES)} ('today' only where git still has {baseline.LEGACY_COMMIT})",
    )
    parser.add_argument(
        "--rss-photos",
        nargs="+",
        metavar="NAME",
        help="photos whose peak memory is measured alone in a fresh process "
        "(default: the largest photo and every HEIC)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="repeat the whole comparison, strategies taking turns; medians over all rounds (for busy machines)",
    )
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=0,
        metavar="SECONDS",
        help="before each timed run, wait up to SECONDS for the machine's CPUs to be idle (shared machines)",
    )
    parser.add_argument("--no-profile", action="store_true", help="skip the cProfile breakdown of the project")
    parser.add_argument(
        "--no-equal-quality",
        action="store_true",
        help="skip the search for the WebP quality that matches the JPEG's (about 2 s per large photo)",
    )
    parser.add_argument("--json", metavar="FILE", help="write every measurement to FILE")
    return parser


def run(args: argparse.Namespace) -> dict[str, Any]:
    photos = _photos(args.photos, args.files)
    if args.strategies is None:
        args.strategies = [s for s in STRATEGIES if s != "today" or baseline.legacy_available()]
        if "today" not in args.strategies:
            _progress(f"git has no {baseline.LEGACY_COMMIT}: today's figures are the recorded constants")
    facts = {path.name: _photo_facts(path) for path in photos}
    rss_photos = args.rss_photos or _default_rss_photos(facts)
    unknown = set(rss_photos) - set(facts)
    if unknown:
        raise BenchError(f"--rss-photos names files not in the run: {', '.join(sorted(unknown))}")
    if args.passes < 1 or args.rounds < 1:
        raise BenchError("--passes and --rounds must be at least 1")

    strategies: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-") as scratch:
        rounds: dict[str, list[dict[str, Any]]] = {strategy: [] for strategy in args.strategies}
        # Strategies take turns round by round, so that load from other processes falls on all of them alike.
        for round_number in range(args.rounds):
            for strategy in args.strategies:
                last = round_number == args.rounds - 1
                dump_dir = Path(scratch) / strategy
                dump_dir.mkdir(exist_ok=True)
                _progress(
                    f"{strategy}: {len(photos)} photos, 1 warm-up + {args.passes} passes"
                    + (f" (round {round_number + 1} of {args.rounds})" if args.rounds > 1 else "")
                )
                job = {
                    "strategy": strategy,
                    "mode": "throughput",
                    "files": [str(p) for p in photos],
                    "passes": args.passes,
                    "dump_dir": str(dump_dir) if last else None,
                }
                _wait_for_quiet(args.quiet_wait)
                load_before = os.getloadavg()[0]
                measured = _child(job)
                # Other processes on the machine steal wall time (CPU seconds suffer much less): keep the evidence.
                measured["load_average"] = [load_before, os.getloadavg()[0]]
                rounds[strategy].append(measured)
        for strategy in args.strategies:
            measured = _merge_rounds(rounds[strategy])
            for name in rss_photos:
                peak = _child({"strategy": strategy, "mode": "peak", "files": [str(args.photos / name)]})
                measured.setdefault("per_photo_peak_rss_mb", {})[name] = peak["peak_rss_mb"]
                measured.setdefault("per_photo_baseline_rss_mb", {})[name] = peak["baseline_rss_mb"]
            _progress(f"{strategy}: quality against the reference rendering")
            strategies[strategy] = _summarise(measured, facts, args.photos)

    breakdown = None
    if "project" in args.strategies and not args.no_profile:
        _progress("project: one profiled pass")
        profile = _child({"strategy": "project", "mode": "profile", "files": [str(p) for p in photos]})
        breakdown = phases.group(profile)

    equal = None
    if "project" in args.strategies and not args.no_equal_quality:
        _progress("project: optimized WebP against JPEG at equal quality")
        equal = _equal_quality(photos)

    results: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
        "git": _git_state(),
        "photos": facts,
        "passes": args.passes,
        "rounds": args.rounds,
        "rss_photos": rss_photos,
        "strategies": strategies,
        "project_phases": breakdown,
        "webp_vs_jpeg_at_equal_quality": equal,
    }
    results["comparison"] = _compare(strategies, rss_photos)
    results["targets"] = _targets(strategies, rss_photos, facts, equal)
    results["ladder"] = _ladder(strategies, rss_photos)
    if "project" in strategies:
        project = strategies["project"]
        peak = max([project["peak_rss_mb"], *project.get("per_photo_peak_rss_mb", {}).values()])
        # CPU/wall below 1 only means other processes took turns on the CPUs: the code itself runs at least 1 core.
        parallelism = max(1.0, project["parallelism"])
        results["lambda"] = lambda_cost.estimate(project["cpu_seconds_per_image"], parallelism, peak)
    return results


def _photos(folder: Path, names: list[str] | None) -> list[Path]:
    if not folder.is_dir():
        raise BenchError(f"no photo folder at {folder} (pass --photos DIR)")
    if names:
        paths = [folder / name for name in names]
        missing = [p.name for p in paths if not p.is_file()]
        if missing:
            raise BenchError(f"not in {folder}: {', '.join(missing)}")
        return paths
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in PHOTO_SUFFIXES)
    if not paths:
        raise BenchError(f"no photos in {folder}")
    return paths


def _photo_facts(path: Path) -> dict[str, Any]:
    import pillow_heif
    from PIL import Image

    pillow_heif.register_heif_opener()
    with Image.open(path) as image:  # header only: no pixels decoded here
        width, height = image.size
        return {
            "width": width,
            "height": height,
            "megapixels": width * height / 1e6,
            "bytes": path.stat().st_size,
            "format": image.format,
            "non_srgb_profile": _non_srgb_profile(image.info.get("icc_profile")),
        }


def _non_srgb_profile(icc_profile: bytes | None) -> bool:
    """Whether colours need converting to sRGB: a strategy that skips colour management is wrong there by
    more than its resampling and encoding lose, so fidelity is also compared without these photos."""
    if not icc_profile:
        return False
    from io import BytesIO

    from PIL import ImageCms

    try:
        description = ImageCms.getProfileDescription(ImageCms.ImageCmsProfile(BytesIO(icc_profile)))
    except (ImageCms.PyCMSError, OSError):
        return True
    return "srgb" not in description.lower()


def _default_rss_photos(facts: dict[str, dict[str, Any]]) -> list[str]:
    """The largest photo in a browser format (JPEG, ...) and every HEIF, which take different decoders."""
    heif = [name for name, fact in facts.items() if fact["format"] in ("HEIF", "HEIC", "AVIF")]
    others = [name for name in facts if name not in heif] or heif
    largest = max(others, key=lambda name: facts[name]["width"] * facts[name]["height"])
    return list(dict.fromkeys([largest, *heif]))


def _child(job: dict[str, Any]) -> dict[str, Any]:
    completed = subprocess.run(
        [sys.executable, "-m", "bench.worker"],
        input=json.dumps(job),
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    if completed.returncode != 0:
        raise BenchError(f"{job['strategy']} ({job['mode']}) failed:\n{completed.stderr.strip()}")
    return json.loads(completed.stdout)


def _merge_rounds(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """One strategy's rounds as one measurement: medians of times, the highest peak, the last round's outputs."""
    if len(rounds) == 1:
        return rounds[0]
    photos = rounds[0]["per_photo_wall_seconds"]
    pass_wall = [seconds for r in rounds for seconds in r["pass_wall_seconds"]]
    return {
        "passes": sum(r["passes"] for r in rounds),
        "rounds": len(rounds),
        "pass_wall_seconds": pass_wall,
        "median_pass_seconds": statistics.median(pass_wall),
        "cpu_seconds_per_pass": statistics.median(r["cpu_seconds_per_pass"] for r in rounds),
        "per_photo_wall_seconds": {
            p: statistics.median(r["per_photo_wall_seconds"][p] for r in rounds) for p in photos
        },
        "per_photo_cpu_seconds": {p: statistics.median(r["per_photo_cpu_seconds"][p] for r in rounds) for p in photos},
        "baseline_rss_mb": min(r["baseline_rss_mb"] for r in rounds),
        "peak_rss_mb": max(r["peak_rss_mb"] for r in rounds),
        "ru_maxrss_mb": max(r["ru_maxrss_mb"] for r in rounds),
        "outputs": rounds[-1]["outputs"],
        "code_version": "+".join(sorted({r["code_version"] for r in rounds})),
        "load_average": [min(r["load_average"][0] for r in rounds), max(r["load_average"][1] for r in rounds)],
    }


def _summarise(measured: dict[str, Any], facts: dict[str, dict[str, Any]], folder: Path) -> dict[str, Any]:
    count = len(facts)
    wall = measured["median_pass_seconds"]
    cpu = measured["cpu_seconds_per_pass"]
    per_output: dict[str, dict[str, Any]] = {}
    compared: list[tuple[str, str]] = []  # (output name, photo), in the order the quality children score them
    pairs: list[tuple[str, str, Any]] = []
    for photo, outputs in measured["outputs"].items():
        for output in outputs:
            entry = per_output.setdefault(output["name"], {"bytes": 0, "count": 0, "bytes_by_photo": {}})
            entry["bytes"] += output["bytes"]
            entry["count"] += 1
            entry["bytes_by_photo"][photo] = output["bytes"]
            if output["name"] != PLACEHOLDER and output["path"]:
                compared.append((output["name"], photo))
                pairs.append((str(folder / photo), output["path"], output.get("crop_aspect")))
    scores = _scores(pairs)
    psnr: dict[str, dict[str, float]] = {}
    ssim: dict[str, dict[str, float]] = {}
    for (name, photo), (psnr_db, ssim_index) in zip(compared, scores, strict=True):
        psnr.setdefault(name, {})[photo] = psnr_db
        if ssim_index is not None:  # None: smaller than SSIM's window
            ssim.setdefault(name, {})[photo] = ssim_index
    for name, by_photo in psnr.items():
        # Only an output with the reference's exact pixels reaches the cap.
        per_output[name]["identical"] = sum(1 for score in by_photo.values() if score >= PSNR_CAP_DB)
        per_output[name]["psnr_db"] = statistics.fmean(by_photo.values())
        per_output[name]["min_psnr_db"] = min(by_photo.values())
        per_output[name]["psnr_db_by_photo"] = by_photo
    for name, by_photo in ssim.items():
        per_output[name]["ssim"] = statistics.fmean(by_photo.values())
        per_output[name]["min_ssim"] = min(by_photo.values())
        per_output[name]["ssim_by_photo"] = by_photo
    for outputs in measured["outputs"].values():
        for output in outputs:
            output.pop("path", None)
    per_output = dict(sorted(per_output.items(), key=lambda item: rung_order(item[0])))
    return {
        **measured,
        "images": count,
        "input_megapixels": sum(f["megapixels"] for f in facts.values()),
        "images_per_second": count / wall,
        "megapixels_per_second": sum(f["megapixels"] for f in facts.values()) / wall,
        "cpu_seconds_per_image": cpu / count,
        "parallelism": cpu / wall,
        "per_output": per_output,
        "stored_bytes": sum(entry["bytes"] for name, entry in per_output.items() if name != PLACEHOLDER),
    }


def _scores(pairs: list[tuple[str, str, Any]]) -> list[list[float | None]]:
    """PSNR and SSIM of every (photo, output file, crop) pair, in order, from one child per CPU (split by photo, so
    each child's reference cache serves all of a photo's outputs). Scored in children: the reference images would
    otherwise swell this process (and, through the spawn, the next children's ru_maxrss)."""
    photos = list(dict.fromkeys(photo for photo, _, _ in pairs))
    workers = max(1, min(os.cpu_count() or 1, len(photos)))
    shares = [set(photos[i::workers]) for i in range(workers)]
    jobs = [[(i, pair) for i, pair in enumerate(pairs) if pair[0] in share] for share in shares]
    with ThreadPoolExecutor(workers) as pool:
        parts = list(
            pool.map(
                lambda job: _child({"strategy": "quality", "mode": "quality", "pairs": [pair for _, pair in job]}),
                jobs,
            )
        )
    scores: list[list[float | None]] = [[]] * len(pairs)
    for job, part in zip(jobs, parts, strict=True):
        for (index, _), score in zip(job, part["scores"], strict=True):
            scores[index] = score
    return scores


def _equal_quality(photos: list[Path]) -> dict[str, Any]:
    """The WebP quality search over the photos, in one child per CPU (it is not timed, only slow)."""
    workers = max(1, min(os.cpu_count() or 1, len(photos)))
    shares = [[str(p) for p in photos[i::workers]] for i in range(workers)]
    jobs = [{"strategy": "project", "mode": "equal_quality", "files": share} for share in shares]
    with ThreadPoolExecutor(workers) as pool:
        parts = list(pool.map(_child, jobs))
    per_photo = {p.name: part["per_photo"][p.name] for p in photos for part in parts if p.name in part["per_photo"]}
    return {"per_photo": per_photo, "summary": equal_quality.summarise(per_photo)}


def _compare(strategies: dict[str, Any], rss_photos: list[str]) -> dict[str, Any]:
    if "project" not in strategies:
        return {}
    project = strategies["project"]
    ratios = {}
    for other in strategies:
        if other == "project":
            continue
        base = strategies[other]
        ratios[other] = {
            "throughput": project["images_per_second"] / base["images_per_second"],
            "cpu_seconds": project["cpu_seconds_per_image"] / base["cpu_seconds_per_image"],
            "stored_bytes": project["stored_bytes"] / base["stored_bytes"],
            "peak_rss": project["peak_rss_mb"] / base["peak_rss_mb"],
            "psnr_delta_db": {
                name: project["per_output"][name]["psnr_db"] - base["per_output"][name]["psnr_db"]
                for name in STORED
                if "psnr_db" in project["per_output"].get(name, {}) and "psnr_db" in base["per_output"].get(name, {})
            },
            "per_photo_peak_rss": {
                name: project["per_photo_peak_rss_mb"][name] / base["per_photo_peak_rss_mb"][name]
                for name in rss_photos
                if name in project.get("per_photo_peak_rss_mb", {}) and name in base.get("per_photo_peak_rss_mb", {})
            },
        }
    return ratios


def _targets(
    strategies: dict[str, Any], rss_photos: list[str], facts: dict[str, Any], equal: dict[str, Any] | None
) -> list[dict[str, Any]]:
    """Issue 8's targets, each with what was measured and PASS/MISS; a target needing an absent strategy is skipped."""
    targets: list[dict[str, Any]] = []
    project = strategies.get("project")
    if project is None:
        return targets
    naive, vips = strategies.get("naive"), strategies.get("libvips")

    def add(name: str, passed: bool, measured: str) -> None:
        targets.append({"target": name, "passed": bool(passed), "measured": measured})

    for label, base in (("naive Pillow", naive), ("libvips", vips)):
        if base:
            ratio = project["images_per_second"] / base["images_per_second"]
            per_cpu = base["cpu_seconds_per_image"] / project["cpu_seconds_per_image"]
            add(
                f"throughput >= 2x {label}",
                ratio >= 2.0,
                f"{ratio:.2f}x images/s ({per_cpu:.2f}x images per CPU-second)",
            )
    if naive:
        ratio = project["stored_bytes"] / naive["stored_bytes"]
        add("output bytes <= 105% of naive", ratio <= 1.05, f"{ratio:.1%} (the project stores every rung)")
        srgb = [photo for photo, fact in facts.items() if not fact.get("non_srgb_profile")]
        every = _psnr_deltas(project, naive, list(facts))
        same_colours = _psnr_deltas(project, naive, srgb)
        add(
            "PSNR within 0.3 dB of naive (every output, photos already in sRGB)",
            all(d >= -0.3 for d in same_colours.values()),
            f"{len(srgb)} sRGB photos: "
            + ", ".join(f"{name} {d:+.2f}" for name, d in same_colours.items())
            + " dB; all photos: "
            + ", ".join(f"{d:+.2f}" for d in every.values())
            + " dB",
        )
    if vips:
        for name in rss_photos:
            mine, theirs = project["per_photo_peak_rss_mb"][name], vips["per_photo_peak_rss_mb"][name]
            add(f"peak RSS <= libvips on {name}", mine <= theirs, f"{mine:.0f} MB vs {theirs:.0f} MB")
    # Issue 8's "optimized WebP >= 20% smaller than JPEG at >= quality" is replaced by issue 12's rule: WebP is made
    # only where it can be smaller at equal quality (no WebP of most photos' widest rung), so a total over the
    # widest rungs compares different photos; the equal-quality search above still reports what WebP would need.
    return targets


# Issue 12: the ladder may cost no more CPU per photo than naive Pillow's two sizes, every rung must be at least as
# good (SSIM) as today's optimized copy, and the peak memory may grow by at most this much over today's.
RSS_ALLOWANCE = 1.20
# SSIM differences below this are rounding (bench/baseline.py records 5 decimals), not a worse rung.
SSIM_TOLERANCE = 1e-4


def _ladder(strategies: dict[str, Any], rss_photos: list[str]) -> dict[str, Any] | None:
    """Issue 12's figures: per rung (family, width, format) bytes and SSIM against today's copies, and the targets.

    Today's figures come from the `today` strategy of this run, or from bench/baseline.py's recorded constants."""
    project = strategies.get("project")
    if project is None:
        return None
    today = strategies.get("today")
    source = (
        "this run (strategy today)" if today else f"recorded constants (bench/baseline.py, {baseline.LEGACY_COMMIT})"
    )

    def today_ssim(name: str) -> dict[str, float]:
        if today:
            return today["per_output"].get(name, {}).get("ssim_by_photo", {})
        return baseline.SSIM.get(name, {})

    rungs = []
    for name, entry in project["per_output"].items():
        if name == PLACEHOLDER:
            continue
        stem, _, fmt = name.rpartition(".")
        ssim = entry.get("ssim_by_photo", {})
        optimized, thumb = today_ssim(f"optimized.{fmt}"), today_ssim(f"thumb.{fmt}")
        shared = [photo for photo in ssim if photo in optimized]
        row: dict[str, Any] = {
            "rung": stem,
            "format": fmt,
            "photos": entry["count"],
            "bytes": entry["bytes"],
            "median_bytes": statistics.median(entry["bytes_by_photo"].values()),
            "ssim": statistics.fmean(ssim.values()) if ssim else None,
            "min_ssim": min(ssim.values()) if ssim else None,
            "today_optimized_ssim": statistics.fmean(optimized[p] for p in shared) if shared else None,
            "today_thumb_ssim": statistics.fmean(thumb[p] for p in shared if p in thumb) if shared else None,
            "photos_below_today": sum(1 for p in shared if ssim[p] < optimized[p] - SSIM_TOLERANCE),
        }
        if fmt == "webp":
            jpeg = project["per_output"].get(f"{stem}.jpeg", {})
            both = [p for p in entry["bytes_by_photo"] if p in jpeg.get("bytes_by_photo", {})]
            row["webp_smaller"] = sum(1 for p in both if entry["bytes_by_photo"][p] < jpeg["bytes_by_photo"][p])
            scored = [p for p in both if p in ssim and p in jpeg.get("ssim_by_photo", {})]
            row["webp_smaller_and_ssim_at_least_jpeg"] = sum(
                1
                for p in scored
                if entry["bytes_by_photo"][p] < jpeg["bytes_by_photo"][p] and ssim[p] >= jpeg["ssim_by_photo"][p]
            )
        rungs.append(row)

    targets: list[dict[str, Any]] = []
    naive = strategies.get("naive")
    if naive:
        mine, theirs = project["cpu_seconds_per_image"], naive["cpu_seconds_per_image"]
        targets.append(
            {
                "target": "ladder CPU <= naive CPU",
                "passed": mine <= theirs,
                "measured": f"{mine:.3f} vs {theirs:.3f} CPU s/photo ({mine / theirs:.0%}; every rung, both formats, "
                f"the placeholder; naive: 2 sizes)",
            }
        )
    scored = [r for r in rungs if r["ssim"] is not None and r["today_optimized_ssim"] is not None]
    if scored:
        below = [r for r in scored if r["ssim"] < r["today_optimized_ssim"] - SSIM_TOLERANCE]
        worst = min(scored, key=lambda r: r["ssim"] - r["today_optimized_ssim"])
        targets.append(
            {
                "target": "every rung's SSIM >= today's optimized copy's",
                "passed": not below,
                "measured": f"{len(scored) - len(below)} of {len(scored)} rungs (mean over their photos, per format); "
                f"worst {worst['rung']}.{worst['format']} {worst['ssim']:.4f} vs {worst['today_optimized_ssim']:.4f}; "
                f"today's from {source}",
            }
        )
    for photo in rss_photos:
        mine = project.get("per_photo_peak_rss_mb", {}).get(photo)
        theirs = (today or {}).get("per_photo_peak_rss_mb", {}).get(photo) or baseline.PEAK_RSS_MB.get(photo)
        if mine is None or theirs is None:
            continue
        targets.append(
            {
                "target": f"peak RSS <= today's +{RSS_ALLOWANCE - 1:.0%} on {photo}",
                "passed": mine <= theirs * RSS_ALLOWANCE,
                "measured": f"{mine:.0f} MB vs {theirs:.0f} MB ({mine / theirs - 1:+.0%})",
            }
        )
    cpu = {name: s["cpu_seconds_per_image"] for name, s in strategies.items()}
    return {"baseline": source, "rungs": rungs, "cpu_seconds_per_photo": cpu, "targets": targets}


def _git_state() -> str:
    """The commit measured, and whether the imaging code differed from it."""

    def git(*args: str) -> str:
        completed = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)
        return completed.stdout.strip()

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = git(
        "status",
        "--porcelain",
        "--",
        "pipeline/imaging",
        "pipeline/imaging.py",
        "pipeline/placeholder.py",
        "pipeline/config.py",
    )
    return f"{commit} (imaging code edited)" if dirty else commit


def _wait_for_quiet(seconds: float) -> None:
    """Wait (at most `seconds`) until other processes use under 10% of the machine's CPU over one second."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if _busy_fraction() < 0.10:
            return
        time.sleep(2)
    if seconds:
        _progress(f"the machine stayed busy for {seconds:.0f} s; measuring anyway")


def _busy_fraction() -> float:
    def sample() -> tuple[int, int]:
        fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
        idle = fields[3] + fields[4]  # idle + iowait
        return sum(fields) - idle, sum(fields)

    busy_before, total_before = sample()
    time.sleep(1)
    busy_after, total_after = sample()
    return (busy_after - busy_before) / max(total_after - total_before, 1)


def _psnr_deltas(project: dict[str, Any], other: dict[str, Any], photos: list[str]) -> dict[str, float]:
    """Mean over `photos` of project PSNR minus the other's, per stored output."""
    deltas = {}
    for name in STORED:
        if name not in project["per_output"] or name not in other["per_output"]:
            continue  # the ladder has no box-fit thumb: only the optimized copy (its widest rung) compares
        mine, theirs = project["per_output"][name]["psnr_db_by_photo"], other["per_output"][name]["psnr_db_by_photo"]
        shared = [photo for photo in photos if photo in mine and photo in theirs]
        deltas[name] = statistics.fmean(mine[p] - theirs[p] for p in shared) if shared else 0.0
    return deltas


def _progress(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)
