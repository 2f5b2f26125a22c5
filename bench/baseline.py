"""Today's imaging (before issue 12's width ladder) as recorded numbers: the baseline when it cannot run live.

`make bench` runs today's code itself (strategy `today`, bench/legacy.py, read from git at LEGACY_COMMIT) and
holds the ladder to what that run measures. Where git no longer has that commit, the issue-12 targets use these
constants instead. They were measured on 2 Dec 2026 (commit 86a4c23 checked out, pipeline/imaging.py as at
LEGACY_COMMIT) with

    python -m bench --strategies today naive libvips --no-profile --no-equal-quality --json baseline.json

on the 28 corpus photos, 2 vCPUs: per photo, luma SSIM of today's four renditions against the reference rendering
(bench/quality.py), and the peak RSS (VmHWM) of a fresh process rendering one photo once.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

LEGACY_COMMIT = "93183bd"  # the last commit with pipeline/imaging.py as one module (unchanged since 92d22e4)
ROOT = Path(__file__).resolve().parent.parent

# Peak RSS MB of today's code, alone in a fresh process, per photo.
PEAK_RSS_MB: dict[str, float] = {
    "HMD_Nokia_8.3_5G.jpg": 62.8,
    "iphone_13_pro_max.heic": 90.2,
}
# CPU s per photo of today's code and of naive Pillow in that run (all threads; a busy machine, load ~1).
CPU_SECONDS_PER_PHOTO = {"today": 0.110, "naive": 0.251}

# Luma SSIM against the reference rendering, per output and photo.
SSIM: dict[str, dict[str, float]] = {
    "optimized.jpeg": {
        "BSG1.tiff": 0.98427,
        "Canon_40D.jpg": 1.00000,
        "DSCN0010.jpg": 0.99572,
        "DSCN0021.jpg": 0.97811,
        "HMD_Nokia_8.3_5G.jpg": 0.97280,
        "Landscape_0.jpg": 1.00000,
        "Landscape_1.jpg": 1.00000,
        "Landscape_2.jpg": 0.98852,
        "Landscape_3.jpg": 0.98852,
        "Landscape_4.jpg": 0.98863,
        "Landscape_5.jpg": 0.99207,
        "Landscape_6.jpg": 0.99196,
        "Landscape_7.jpg": 0.99197,
        "Landscape_8.jpg": 0.99205,
        "Portrait_0.jpg": 1.00000,
        "Portrait_1.jpg": 1.00000,
        "Portrait_2.jpg": 0.99309,
        "Portrait_3.jpg": 0.99302,
        "Portrait_4.jpg": 0.99305,
        "Portrait_5.jpg": 0.99465,
        "Portrait_6.jpg": 0.99463,
        "Portrait_7.jpg": 0.99462,
        "Portrait_8.jpg": 0.99458,
        "canon_hdr_NO.jpg": 0.97392,
        "fujifilm-dx10.jpg": 1.00000,
        "iphone_13_pro_max.heic": 0.95821,
        "iphone_hdr_NO.jpg": 0.98262,
        "nikon-e950.jpg": 0.98010,
    },
    "optimized.webp": {
        "BSG1.tiff": 0.97572,
        "Canon_40D.jpg": 0.97878,
        "DSCN0010.jpg": 0.98038,
        "DSCN0021.jpg": 0.97516,
        "HMD_Nokia_8.3_5G.jpg": 0.97047,
        "Landscape_0.jpg": 0.95737,
        "Landscape_1.jpg": 0.95755,
        "Landscape_2.jpg": 0.95757,
        "Landscape_3.jpg": 0.95756,
        "Landscape_4.jpg": 0.95750,
        "Landscape_5.jpg": 0.95787,
        "Landscape_6.jpg": 0.95786,
        "Landscape_7.jpg": 0.95788,
        "Landscape_8.jpg": 0.95788,
        "Portrait_0.jpg": 0.97070,
        "Portrait_1.jpg": 0.97110,
        "Portrait_2.jpg": 0.97123,
        "Portrait_3.jpg": 0.97130,
        "Portrait_4.jpg": 0.97121,
        "Portrait_5.jpg": 0.96996,
        "Portrait_6.jpg": 0.97007,
        "Portrait_7.jpg": 0.97004,
        "Portrait_8.jpg": 0.97004,
        "canon_hdr_NO.jpg": 0.96363,
        "fujifilm-dx10.jpg": 0.96191,
        "iphone_13_pro_max.heic": 0.95039,
        "iphone_hdr_NO.jpg": 0.96459,
        "nikon-e950.jpg": 0.96519,
    },
    "thumb.jpeg": {
        "BSG1.tiff": 0.97772,
        "Canon_40D.jpg": 1.00000,
        "DSCN0010.jpg": 0.94665,
        "DSCN0021.jpg": 0.94042,
        "HMD_Nokia_8.3_5G.jpg": 0.96625,
        "Landscape_0.jpg": 0.96359,
        "Landscape_1.jpg": 0.96346,
        "Landscape_2.jpg": 0.96360,
        "Landscape_3.jpg": 0.96361,
        "Landscape_4.jpg": 0.96352,
        "Landscape_5.jpg": 0.96366,
        "Landscape_6.jpg": 0.96364,
        "Landscape_7.jpg": 0.96349,
        "Landscape_8.jpg": 0.96374,
        "Portrait_0.jpg": 0.97571,
        "Portrait_1.jpg": 0.97564,
        "Portrait_2.jpg": 0.97569,
        "Portrait_3.jpg": 0.97558,
        "Portrait_4.jpg": 0.97561,
        "Portrait_5.jpg": 0.97531,
        "Portrait_6.jpg": 0.97544,
        "Portrait_7.jpg": 0.97555,
        "Portrait_8.jpg": 0.97530,
        "canon_hdr_NO.jpg": 0.97696,
        "fujifilm-dx10.jpg": 0.96015,
        "iphone_13_pro_max.heic": 0.96647,
        "iphone_hdr_NO.jpg": 0.96449,
        "nikon-e950.jpg": 0.95763,
    },
    "thumb.webp": {
        "BSG1.tiff": 0.97506,
        "Canon_40D.jpg": 0.97878,
        "DSCN0010.jpg": 0.97527,
        "DSCN0021.jpg": 0.96841,
        "HMD_Nokia_8.3_5G.jpg": 0.96608,
        "Landscape_0.jpg": 0.96454,
        "Landscape_1.jpg": 0.96453,
        "Landscape_2.jpg": 0.96468,
        "Landscape_3.jpg": 0.96280,
        "Landscape_4.jpg": 0.96449,
        "Landscape_5.jpg": 0.96449,
        "Landscape_6.jpg": 0.96461,
        "Landscape_7.jpg": 0.96471,
        "Landscape_8.jpg": 0.96423,
        "Portrait_0.jpg": 0.97030,
        "Portrait_1.jpg": 0.97072,
        "Portrait_2.jpg": 0.97081,
        "Portrait_3.jpg": 0.97107,
        "Portrait_4.jpg": 0.97089,
        "Portrait_5.jpg": 0.96988,
        "Portrait_6.jpg": 0.97048,
        "Portrait_7.jpg": 0.96727,
        "Portrait_8.jpg": 0.97099,
        "canon_hdr_NO.jpg": 0.97916,
        "fujifilm-dx10.jpg": 0.95920,
        "iphone_13_pro_max.heic": 0.97368,
        "iphone_hdr_NO.jpg": 0.97420,
        "nikon-e950.jpg": 0.96839,
    },
}


def legacy_available() -> bool:
    """Whether git can show today's imaging code (a shallow clone or an exported tree cannot)."""
    completed = subprocess.run(
        ["git", "cat-file", "-e", f"{LEGACY_COMMIT}:pipeline/imaging.py"], cwd=ROOT, capture_output=True, check=False
    )
    return completed.returncode == 0
