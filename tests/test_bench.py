"""`python -m bench` end to end on two small corpus photos, one pass: it runs and writes the JSON the docs read.

The project makes issue 12's width ladder (every rung in JPEG and WebP); `today` is the imaging code before it,
read from git, and naive Pillow and libvips make today's two box-fit renditions."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import PHOTOS, ROOT

SMALL_PHOTOS = ("Canon_40D.jpg", "DSCN0010.jpg")
STORED = ("thumb.jpeg", "thumb.webp", "optimized.jpeg", "optimized.webp")
BOX_FIT = ("naive", "libvips", "today")  # the strategies that make today's four renditions
# DSCN0010.jpg is 640x480: the ladder is its own width and the steps below it, the tiles its 4:3 box and below.
DSCN0010_RUNGS = {
    "optimized": (640, 480),
    "optimized-480": (480, 360),
    "optimized-320": (320, 240),
    "thumb-max": (640, 480),
    "thumb-560": (560, 420),
    "thumb-384": (384, 288),
    "thumb-256": (256, 192),
}


def _stored(strategy: dict) -> list[str]:
    return [name for name in strategy["per_output"] if name != "placeholder"]


def _bench(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bench", *args], cwd=ROOT, capture_output=True, text=True, timeout=300, check=False
    )


@pytest.fixture(scope="module")
def bench_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], dict]:
    report = tmp_path_factory.mktemp("bench") / "bench.json"
    completed = _bench("--photos", str(PHOTOS), "--files", *SMALL_PHOTOS, "--passes", "1", "--json", str(report))
    assert completed.returncode == 0, completed.stderr
    return completed, json.loads(report.read_text())


def test_json_has_all_four_strategies(bench_run):
    _, results = bench_run
    assert set(results["strategies"]) == {"project", "naive", "libvips", "today"}
    assert set(results["photos"]) == set(SMALL_PHOTOS)


def test_every_strategy_reports_speed_cpu_and_memory(bench_run):
    _, results = bench_run
    for name, strategy in results["strategies"].items():
        assert strategy["images"] == len(SMALL_PHOTOS), name
        assert strategy["images_per_second"] > 0, name
        assert strategy["megapixels_per_second"] > 0, name
        assert strategy["cpu_seconds_per_image"] > 0, name
        assert strategy["peak_rss_mb"] >= strategy["baseline_rss_mb"] > 0, name
        assert set(strategy["per_photo_peak_rss_mb"]) == {"DSCN0010.jpg"}, name  # the larger of the two


def test_every_stored_output_has_bytes_and_a_plausible_psnr(bench_run):
    _, results = bench_run
    for name, strategy in results["strategies"].items():
        if name in BOX_FIT:
            assert set(_stored(strategy)) == set(STORED), name
        for output in _stored(strategy):
            entry = strategy["per_output"][output]
            expected = len(SMALL_PHOTOS) if output.startswith(("optimized.", "thumb.", "thumb-max.")) else 1
            assert entry["count"] == expected, (name, output)
            assert entry["bytes"] > 0, (name, output)
            # A mis-oriented, mis-sized or mis-cropped output against the reference would score far below 25 dB.
            assert 25 < entry["min_psnr_db"] <= entry["psnr_db"] <= 100, (name, output, entry)
        assert strategy["stored_bytes"] == sum(strategy["per_output"][o]["bytes"] for o in _stored(strategy))
    # Canon_40D.jpg (100x68, upright, sRGB) is stored as its own JPEG data: the reference's exact pixels.
    identical = {name: s["per_output"]["optimized.jpeg"]["identical"] for name, s in results["strategies"].items()}
    assert identical == {"project": 1, "naive": 0, "libvips": 0, "today": 1}


def test_outputs_keep_the_small_photo_unscaled(bench_run):
    _, results = bench_run
    for name in BOX_FIT:
        canon = {o["name"]: (o["width"], o["height"]) for o in results["strategies"][name]["outputs"]["Canon_40D.jpg"]}
        assert canon["thumb.jpeg"] == canon["optimized.webp"] == (100, 68), name
    # The ladder: one rung at the photo's own size, one tile (its 4:3 box, 90x68).
    canon = {o["name"]: (o["width"], o["height"]) for o in results["strategies"]["project"]["outputs"]["Canon_40D.jpg"]}
    assert canon == {
        "optimized.jpeg": (100, 68),  # a JPEG at its own size gets no WebP (it cannot pay there)
        "thumb-max.jpeg": (90, 68),
        "thumb-max.webp": (90, 68),
        "placeholder": (0, 0),
    }


def test_project_outputs_every_rung_in_both_formats_but_no_webp_of_a_jpeg_at_its_own_size(bench_run):
    _, results = bench_run
    outputs = {
        o["name"]: (o["width"], o["height"]) for o in results["strategies"]["project"]["outputs"]["DSCN0010.jpg"]
    }
    expected = {f"{rung}.{fmt}": size for rung, size in DSCN0010_RUNGS.items() for fmt in ("jpeg", "webp")}
    del expected["optimized.webp"]
    assert outputs == {**expected, "placeholder": (0, 0)}


def test_targets_ratios_and_lambda_sizing_are_reported(bench_run):
    completed, results = bench_run
    assert {target["target"] for target in results["targets"]} >= {
        "throughput >= 2x naive Pillow",
        "throughput >= 2x libvips",
        "output bytes <= 105% of naive",
    }
    assert all(isinstance(target["passed"], bool) for target in results["targets"])
    assert set(results["comparison"]) == {"naive", "libvips", "today"}
    assert [size["memory_mb"] for size in results["lambda"]["sizes"]] == [1024, 1769, 2048, 3008]
    assert results["lambda"]["recommended_mb"] in (1024, 1769, 2048, 3008)
    assert sum(phase["seconds"] for phase in results["project_phases"]["phases"].values()) > 0
    for heading in ("images/s", "Targets (issue 8)", "Lambda sizing", "Where the project's time goes"):
        assert heading in completed.stdout


def test_unknown_photo_is_refused_with_its_name():
    completed = _bench("--photos", str(PHOTOS), "--files", "no-such-photo.jpg", "--passes", "1")
    assert completed.returncode == 1
    assert "no-such-photo.jpg" in completed.stderr


def test_every_stored_output_has_a_plausible_ssim(bench_run):
    _, results = bench_run
    for name, strategy in results["strategies"].items():
        for output in _stored(strategy):
            entry = strategy["per_output"][output]
            # A mis-oriented, mis-sized or mis-cropped output would score far below 0.8; identical pixels score 1.
            assert 0.8 < entry["min_ssim"] <= entry["ssim"] <= 1, (name, output, entry)
            assert set(entry["ssim_by_photo"]) == set(entry["bytes_by_photo"]), (name, output)


def test_webp_matched_to_the_jpeg_reaches_its_quality_figure(bench_run):
    _, results = bench_run
    equal = results["webp_vs_jpeg_at_equal_quality"]
    assert set(equal["per_photo"]) == set(SMALL_PHOTOS)
    for photo, measured in equal["per_photo"].items():
        jpeg = measured["jpeg"]
        stored = {o["name"]: o["bytes"] for o in results["strategies"]["project"]["outputs"][photo]}
        assert jpeg["bytes"] == stored["optimized.jpeg"]  # the widest ladder rung
        for metric in ("psnr_db", "ssim"):
            found = measured[f"webp_at_equal_{metric}"]
            assert 1 <= found["quality"] <= 100, (photo, metric)
            if found["reached"]:
                assert found[metric] >= jpeg[metric], (photo, metric, found, jpeg)
            else:
                assert found["quality"] == 100, (photo, metric, found)
                assert found[metric] < jpeg[metric], (photo, metric, found)
    overall = equal["summary"][0]
    assert overall["group"] == "all photos"
    assert overall["photos"] == len(SMALL_PHOTOS)
    assert overall["jpeg"]["bytes"] == sum(p["jpeg"]["bytes"] for p in equal["per_photo"].values())
    # Canon_40D keeps its own JPEG data; DSCN0010 is re-encoded at its own size.
    assert {row["group"] for row in equal["summary"][1:]} == {"JPEG at source size", "JPEG kept as uploaded"}


@pytest.mark.parametrize("threshold", [1, 2, 37, 79, 80, 81, 86, 99, 100, 101])
@pytest.mark.parametrize("start", [1, 50, 80, 100])
def test_quality_search_finds_the_lowest_passing_quality(threshold, start):
    from bench.equal_quality import lowest_passing

    tried: list[int] = []

    def passes(quality: int) -> bool:
        tried.append(quality)
        return quality >= threshold

    assert lowest_passing(passes, start) == (threshold if threshold <= 100 else None)
    assert all(1 <= q <= 100 for q in tried)
    assert len(tried) <= 30


def test_ladder_reports_every_rung_against_today_and_issue_12_targets(bench_run):
    completed, results = bench_run
    ladder = results["ladder"]
    assert ladder["baseline"] == "this run (strategy today)"
    rows = {(row["rung"], row["format"]): row for row in ladder["rungs"]}
    assert set(rows) == {(rung, fmt) for rung in DSCN0010_RUNGS for fmt in ("jpeg", "webp")} - {("optimized", "webp")}
    project = results["strategies"]["project"]["per_output"]
    for (rung, fmt), row in rows.items():
        assert row["bytes"] == project[f"{rung}.{fmt}"]["bytes"] > 0, rung
        assert 0 < row["median_bytes"] <= row["bytes"], rung
        assert 0.8 < row["min_ssim"] <= row["ssim"] <= 1, (rung, fmt)
        assert 0.8 < row["today_optimized_ssim"] <= 1, (rung, fmt)
        if fmt == "webp":
            assert 0 <= row["webp_smaller_and_ssim_at_least_jpeg"] <= row["webp_smaller"] <= row["photos"]
    assert set(ladder["cpu_seconds_per_photo"]) == set(results["strategies"])
    names = [target["target"] for target in ladder["targets"]]
    assert names == [
        "ladder CPU <= naive CPU",
        "every rung's SSIM >= today's optimized copy's",
        "peak RSS <= today's +20% on DSCN0010.jpg",
    ]
    assert all(isinstance(target["passed"], bool) for target in ladder["targets"])
    for heading in ("Width ladder (issue 12)", "Targets (issue 12)", "thumb-256"):
        assert heading in completed.stdout


def test_recorded_baseline_covers_the_corpus():
    from bench import baseline

    photos = {p.name for p in PHOTOS.iterdir() if not p.name.startswith(".")}
    for name in STORED:
        assert set(baseline.SSIM[name]) <= photos, name
        assert all(0.8 < v <= 1 for v in baseline.SSIM[name].values()), name
    assert set(baseline.PEAK_RSS_MB) == {"HMD_Nokia_8.3_5G.jpg", "iphone_13_pro_max.heic"}


@pytest.mark.parametrize(
    "size", [(4608, 1976), (3024, 4032), (1800, 1200), (1200, 1800), (1300, 900), (640, 480), (635, 348), (100, 68)]
)
def test_ladder_experiments_plan_the_rungs_as_the_pipeline_does(size):
    from bench.ladder_experiments import ladder_sizes, tile_sizes
    from pipeline.config import ImagingSettings
    from pipeline.imaging import plan_renditions

    plan = plan_renditions(size, 1, ImagingSettings())
    assert ladder_sizes(size) == [rung.size for rung in plan.ladder]
    assert tile_sizes(size) == [rung.size for rung in plan.tiles]


def test_rung_names_and_report_order():
    from bench.renditions import rung_name, rung_order

    steps = (256, 384, 560, 840, 1120)
    assert rung_name("optimized", 1800, widest=True, steps=(320, 1920)) == "optimized"
    assert rung_name("optimized", 320, widest=False, steps=(320, 1920)) == "optimized-320"
    assert rung_name("thumb", 1120, widest=True, steps=steps) == "thumb-1120"
    assert rung_name("thumb", 640, widest=True, steps=steps) == "thumb-max"
    names = ["thumb-256.webp", "optimized-320.jpeg", "thumb-max.jpeg", "optimized.webp", "optimized.jpeg"]
    assert sorted(names, key=rung_order) == [
        "optimized.jpeg",
        "optimized.webp",
        "optimized-320.jpeg",
        "thumb-max.jpeg",
        "thumb-256.webp",
    ]
