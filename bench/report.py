"""Plain-text tables of a bench run, in the order a reader asks: how fast, how big, how good, did it pass, cost."""

from __future__ import annotations

from typing import Any

from bench.renditions import PLACEHOLDER, STORED


def render(results: dict[str, Any]) -> str:
    strategies: dict[str, Any] = results["strategies"]
    names = list(strategies)
    photos = results["photos"]
    megapixels = sum(fact["megapixels"] for fact in photos.values())
    rounds = results.get("rounds", 1)
    lines = [
        f"{len(photos)} photos, {megapixels:.1f} input megapixels; 1 warm-up + {results['passes']} passes"
        + (f" in each of {rounds} rounds (strategies taking turns)" if rounds > 1 else "")
        + f", median pass counts; {results['machine']['cpus']} CPUs, Python {results['machine']['python']}, "
        f"commit {results.get('git', 'unknown')}",
        "",
        "Throughput and memory (each strategy in its own process)",
    ]
    versions = {s.get("code_version") for s in strategies.values()}
    if len(versions) > 1:
        lines.append(
            "  WARNING: pipeline/imaging.py changed during the run: strategies did not all run the same project code"
        )
    busy = {name: s["load_average"] for name, s in strategies.items() if max(s.get("load_average", [0])) > 1.6}
    if busy:
        lines.append(
            "  WARNING: the machine was busy (1-min load average before/after "
            + ", ".join(f"{name} {a:.1f}/{b:.1f}" for name, (a, b) in busy.items())
            + "): wall times and images/s are inflated; CPU s/image is the steadier figure"
        )
    lines += _table(
        [
            "strategy",
            "images/s",
            "MP/s",
            "wall s/pass",
            "CPU s/pass",
            "CPU s/image",
            "CPU/wall",
            "peak RSS MB",
            "RSS before MB",
        ],
        [
            [
                name,
                f"{s['images_per_second']:.2f}",
                f"{s['megapixels_per_second']:.1f}",
                f"{s['median_pass_seconds']:.2f}",
                f"{s['cpu_seconds_per_pass']:.2f}",
                f"{s['cpu_seconds_per_image']:.3f}",
                f"{s['parallelism']:.2f}",
                f"{s['peak_rss_mb']:.0f}",
                f"{s['baseline_rss_mb']:.0f}",
            ]
            for name, s in strategies.items()
        ],
    )
    lines += ["", "Peak RSS MB per photo, alone in a fresh process (RSS after imports and reading the photo)"]
    lines += _table(
        ["photo", *names],
        [
            [
                photo,
                *(
                    f"{strategies[n]['per_photo_peak_rss_mb'][photo]:.0f} "
                    f"({strategies[n]['per_photo_baseline_rss_mb'][photo]:.0f})"
                    for n in names
                ),
            ]
            for photo in results["rss_photos"]
        ],
    )
    lines += [
        "",
        "Outputs: total bytes over all photos; mean PSNR dB (min in brackets) and mean SSIM vs the reference rendering",
    ]
    rows = []
    for output in STORED:
        row = [output]
        for name in names:
            entry = strategies[name]["per_output"].get(output)
            row.append(
                "-"
                if entry is None
                else f"{entry['bytes']:>10,} {entry.get('psnr_db', 0):6.2f} ({entry.get('min_psnr_db', 0):.1f})"
                f" {entry.get('ssim', 0):.4f}"
            )
        rows.append(row)
    rows.append(["stored total", *(f"{strategies[n]['stored_bytes']:>10,}" for n in names)])
    # The ladder's other rungs have a table of their own (below); here only what every strategy makes.
    extras = [PLACEHOLDER] if any(PLACEHOLDER in strategies[n]["per_output"] for n in names) else []
    rows += [
        [extra, *(f"{strategies[n]['per_output'].get(extra, {}).get('bytes', 0):>10,}" for n in names)]
        for extra in extras
    ]
    lines += _table(["output", *names], rows)
    identical = [
        f"{name} {output} {strategies[name]['per_output'][output]['identical']}"
        for name in names
        for output in STORED
        if strategies[name]["per_output"].get(output, {}).get("identical")
    ]
    if identical:
        lines.append("  outputs with the reference's exact pixels (counted as 100 dB): " + ", ".join(identical))
    if results.get("ladder"):
        count = sum(1 for name in strategies["project"]["per_output"] if name != PLACEHOLDER)
        lines.append(
            f"  project: optimized.* is the ladder's widest rung (today's optimized size); its stored total counts all "
            f"{count} rung/format outputs (table below)"
        )

    if results.get("comparison"):
        lines += ["", "Ratios project/other (throughput > 1 is faster; bytes, CPU and RSS < 1 are smaller)"]
        lines += _table(
            [
                "vs",
                "throughput",
                "CPU s/image",
                "stored bytes",
                "peak RSS",
                "PSNR delta dB (" + " ".join(next(iter(results["comparison"].values()))["psnr_delta_db"]) + ")",
            ],
            [
                [
                    other,
                    f"{r['throughput']:.2f}x",
                    f"{r['cpu_seconds']:.2f}",
                    f"{r['stored_bytes']:.3f}",
                    f"{r['peak_rss']:.2f}",
                    " ".join(f"{d:+.2f}" for d in r["psnr_delta_db"].values()),
                ]
                for other, r in results["comparison"].items()
            ],
        )
    if results.get("project_phases"):
        breakdown = results["project_phases"]
        lines += [
            "",
            f"Where the project's time goes (one cProfile pass, {breakdown['total_seconds']:.2f} s "
            "profiled; self time per phase)",
        ]
        lines += _table(
            ["phase", "seconds", "share"],
            [[phase, f"{v['seconds']:.2f}", f"{v['share']:.0%}"] for phase, v in breakdown["phases"].items()]
            + [
                [
                    "(placeholder, cumulative, included above)",
                    f"{breakdown['placeholder_cumulative_seconds']:.2f}",
                    f"{breakdown['placeholder_cumulative_seconds'] / (breakdown['total_seconds'] or 1):.0%}",
                ]
            ],
        )
    if results.get("webp_vs_jpeg_at_equal_quality"):
        lines += ["", *_equal_quality(results["webp_vs_jpeg_at_equal_quality"]["summary"])]
    if results.get("ladder"):
        lines += ["", *_ladder(results["ladder"])]
    if results.get("targets"):
        lines += ["", "Targets (issue 8)"]
        lines += [f"  {'PASS' if t['passed'] else 'MISS'}  {t['target']}: {t['measured']}" for t in results["targets"]]
    if results.get("lambda"):
        sizing = results["lambda"]
        lines += [
            "",
            f"Lambda sizing from the project's {sizing['cpu_seconds_per_photo']:.3f} CPU s/photo, "
            f"CPU/wall {sizing['parallelism']:.2f}, peak RSS {sizing['peak_rss_mb']:.0f} MB "
            "(same per-core speed assumed; init and S3 I/O not included)",
        ]
        lines += _table(
            ["memory MB", "vCPUs", "s/photo", "arm64 $/1000", "x86_64 $/1000", "fits 1.5x peak"],
            [
                [
                    str(s["memory_mb"]),
                    f"{s['vcpus']:.2f}",
                    f"{s['seconds_per_photo']:.3f}",
                    f"{s['arm64_per_1000']:.5f}",
                    f"{s['x86_64_per_1000']:.5f}",
                    "yes" if s["fits"] else "no",
                ]
                for s in sizing["sizes"]
            ],
        )
        lines.append(f"  recommended: {sizing['recommended_mb']} MB arm64 (the fastest size within 5% of the cheapest)")
    return "\n".join(lines)


def _ladder(ladder: dict[str, Any]) -> list[str]:
    lines = [
        "Width ladder (issue 12): CPU s per photo in this run (all threads; the ladder makes every rung in JPEG and",
        "WebP plus the placeholder, naive Pillow its two box-fit sizes)",
    ]
    lines += _table(
        ["strategy", "CPU s/photo"], [[name, f"{cpu:.3f}"] for name, cpu in ladder["cpu_seconds_per_photo"].items()]
    )
    lines += [
        "",
        "Every rung: bytes (median per photo, total) and luma SSIM vs the reference at its size (tiles: of the 4:3",
        "centre crop), mean (min); today's optimized copy's and thumb's mean SSIM over the same photos, from "
        + ladder["baseline"],
        "(optimized = the widest ladder rung, <= 1920 px; thumb-max = a widest tile narrower than TILE_WIDTHS allow)",
    ]
    rows = []
    for r in ladder["rungs"]:
        offered = (
            f"{r['webp_smaller']}/{r['photos']} ({r['webp_smaller_and_ssim_at_least_jpeg']})"
            if "webp_smaller" in r
            else ""
        )
        rows.append(
            [
                r["rung"],
                r["format"],
                str(r["photos"]),
                f"{r['median_bytes']:,.0f}",
                f"{r['bytes']:,}",
                "-" if r["ssim"] is None else f"{r['ssim']:.4f} ({r['min_ssim']:.4f})",
                _ssim(r["today_optimized_ssim"]),
                _ssim(r["today_thumb_ssim"]),
                str(r["photos_below_today"]),
                offered,
            ]
        )
    lines += _table(
        [
            "rung",
            "format",
            "photos",
            "median B",
            "total B",
            "SSIM mean (min)",
            "today optimized",
            "today thumb",
            "photos below today optimized",
            "WebP smaller (and SSIM >= JPEG's)",
        ],
        rows,
    )
    lines += ["", "Targets (issue 12)"]
    lines += [f"  {'PASS' if t['passed'] else 'MISS'}  {t['target']}: {t['measured']}" for t in ladder["targets"]]
    return lines


def _equal_quality(summary: list[dict[str, Any]]) -> list[str]:
    lines = [
        "Optimized WebP against the optimized JPEG at equal quality (per photo, the lowest WebP quality whose",
        "figure reaches the JPEG's; saving = 1 - WebP bytes / JPEG bytes; ! = photos no quality reached, at q100)",
    ]
    rows = []
    for totals in summary:
        for key, label in (
            ("jpeg", "JPEG as stored"),
            ("webp_stored", "WebP as stored"),
            ("webp_at_equal_psnr_db", "WebP, equal PSNR"),
            ("webp_at_equal_ssim", "WebP, equal SSIM"),
        ):
            entry = totals.get(key)
            if not entry:
                continue
            unreached = f" {entry['not_reached']}!" if entry.get("not_reached") else ""
            rows.append(
                [
                    f"{totals['group']} ({totals['photos']})" if key == "jpeg" else "",
                    label,
                    f"{entry['median_quality'] or '-'}{unreached}",
                    f"{entry['bytes']:,}",
                    "" if key == "jpeg" else f"{entry['saving_vs_jpeg']:+.1%}",
                    f"{entry['psnr_db']:.2f}",
                    _ssim(entry["ssim"]),
                ]
            )
    return lines + _table(["photos", "encoding", "quality (median)", "bytes", "saving", "PSNR dB", "SSIM"], rows)


def _ssim(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=True)]
    out = ["  " + "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
    out.append("  " + "  ".join("-" * w for w in widths))
    out += [
        "  "
        + "  ".join(str(c).rjust(w) if i else str(c).ljust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True)))
        for row in rows
    ]
    return out
