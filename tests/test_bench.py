"""`python -m bench` end to end on two small corpus photos, one pass: it runs and writes the JSON the docs read."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import PHOTOS, ROOT

SMALL_PHOTOS = ("Canon_40D.jpg", "DSCN0010.jpg")
STORED = ("thumb.jpeg", "thumb.webp", "optimized.jpeg", "optimized.webp")


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


def test_json_has_all_three_strategies(bench_run):
    _, results = bench_run
    assert set(results["strategies"]) == {"project", "naive", "libvips"}
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
        for output in STORED:
            entry = strategy["per_output"][output]
            assert entry["count"] == len(SMALL_PHOTOS), (name, output)
            assert entry["bytes"] > 0, (name, output)
            # A mis-oriented or mis-sized output against the reference would score far below 25 dB.
            assert 25 < entry["min_psnr_db"] <= entry["psnr_db"] <= 100, (name, output, entry)
        assert strategy["stored_bytes"] == sum(strategy["per_output"][o]["bytes"] for o in STORED)
    # Canon_40D.jpg (100x68, upright, sRGB) is stored as its own JPEG data: the reference's exact pixels.
    identical = {name: s["per_output"]["optimized.jpeg"]["identical"] for name, s in results["strategies"].items()}
    assert identical == {"project": 1, "naive": 0, "libvips": 0}


def test_outputs_keep_the_small_photo_unscaled(bench_run):
    _, results = bench_run
    for name, strategy in results["strategies"].items():
        canon = {o["name"]: (o["width"], o["height"]) for o in strategy["outputs"]["Canon_40D.jpg"]}
        assert canon["thumb.jpeg"] == canon["optimized.webp"] == (100, 68), name


def test_targets_ratios_and_lambda_sizing_are_reported(bench_run):
    completed, results = bench_run
    assert {target["target"] for target in results["targets"]} >= {
        "throughput >= 2x naive Pillow",
        "throughput >= 2x libvips",
        "output bytes <= 105% of naive",
    }
    assert all(isinstance(target["passed"], bool) for target in results["targets"])
    assert set(results["comparison"]) == {"naive", "libvips"}
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
        for output in STORED:
            entry = strategy["per_output"][output]
            # A mis-oriented or mis-sized output would score far below 0.8; identical pixels score 1.
            assert 0.8 < entry["min_ssim"] <= entry["ssim"] <= 1, (name, output, entry)
            assert set(entry["ssim_by_photo"]) == set(SMALL_PHOTOS), (name, output)


def test_webp_matched_to_the_jpeg_reaches_its_quality_figure(bench_run):
    _, results = bench_run
    equal = results["webp_vs_jpeg_at_equal_quality"]
    assert set(equal["per_photo"]) == set(SMALL_PHOTOS)
    for photo, measured in equal["per_photo"].items():
        jpeg = measured["jpeg"]
        assert jpeg["bytes"] == results["strategies"]["project"]["outputs"][photo][2]["bytes"]  # optimized.jpeg
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
