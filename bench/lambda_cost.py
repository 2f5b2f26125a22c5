"""Lambda memory sizing from measured CPU seconds per photo: duration, cost per 1,000 photos, a recommendation."""

from __future__ import annotations

from dataclasses import asdict, dataclass

MEMORY_SIZES_MB = (1024, 1769, 2048, 3008)
MB_PER_VCPU = 1769  # Lambda gives a full vCPU at 1,769 MB and CPU in proportion to memory (2 vCPUs above ~3,538 MB)
PRICE_PER_GB_SECOND = {"arm64": 0.0000133334, "x86_64": 0.0000166667}
PRICE_PER_REQUEST = 0.20 / 1_000_000
# Memory the runtime, the interpreter and the event need besides the imaging peak measured here.
HEADROOM = 1.5
# Costs within this fraction of the cheapest are treated as equal, and the faster size wins.
COST_TOLERANCE = 0.05


@dataclass(frozen=True)
class Sizing:
    memory_mb: int
    vcpus: float
    seconds_per_photo: float
    arm64_per_1000: float
    x86_64_per_1000: float
    fits: bool


def estimate(cpu_seconds_per_photo: float, parallelism: float, peak_rss_mb: float) -> dict:
    """`parallelism` is CPU seconds over wall seconds measured here: ~1 single-threaded, up to 2 with 2 threads."""
    sizes = []
    for memory_mb in MEMORY_SIZES_MB:
        vcpus = memory_mb / MB_PER_VCPU
        seconds = cpu_seconds_per_photo / max(min(parallelism, vcpus), 1e-9)
        gb_seconds = seconds * memory_mb / 1024
        sizes.append(
            Sizing(
                memory_mb=memory_mb,
                vcpus=round(vcpus, 2),
                seconds_per_photo=seconds,
                arm64_per_1000=1000 * (gb_seconds * PRICE_PER_GB_SECOND["arm64"] + PRICE_PER_REQUEST),
                x86_64_per_1000=1000 * (gb_seconds * PRICE_PER_GB_SECOND["x86_64"] + PRICE_PER_REQUEST),
                fits=memory_mb >= peak_rss_mb * HEADROOM,
            )
        )
    fitting = [size for size in sizes if size.fits] or sizes
    cheapest = min(size.arm64_per_1000 for size in fitting)
    affordable = [size for size in fitting if size.arm64_per_1000 <= cheapest * (1 + COST_TOLERANCE)]
    recommended = min(affordable, key=lambda size: (size.seconds_per_photo, size.memory_mb))
    return {
        "cpu_seconds_per_photo": cpu_seconds_per_photo,
        "parallelism": parallelism,
        "peak_rss_mb": peak_rss_mb,
        "sizes": [asdict(size) for size in sizes],
        "recommended_mb": recommended.memory_mb,
    }
