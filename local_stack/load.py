"""``python -m local_stack.load``: a bounded load test of the front door, on 127.0.0.1 only.

Against a running ``make run`` (``--url http://127.0.0.1:8000``) or, by default, a stack it starts itself the way
``make audit`` does (local_stack.audit: free ports, state in ``.audit/state``, the corpus photos uploaded once).
``--requests`` (5,000) requests from ``--clients`` (50) concurrent visitors, each on one keep-alive connection
and accepting gzip, in a seeded mix of what anonymous visitors ask for: gallery first pages, tag pages, detail
pages, the read API and renditions, a few photos far more popular than the rest. Prints requests/s, latency
percentiles, statuses, ``X-Cache`` counts and the origin hit ratio: origin requests (the front door's own count,
``/_front-door/stats``, before and after) over requests sent.
"""

from __future__ import annotations

import argparse
import http.client
import json
import random
import statistics
import sys
import threading
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

from local_stack import audit
from local_stack.front_door import STATS_PATH

LOOPBACK: Final = frozenset({"127.0.0.1", "localhost", "::1"})
MAX_REQUESTS: Final = 100_000
MAX_CLIENTS: Final = 200
# What a visit asks for, in proportion: pages, the API, and the images those pages show.
MIX: Final = {"gallery": 20, "tag": 10, "detail": 20, "api-list": 10, "api-image": 5, "rendition": 35}
# Tag pages for tags nobody set still cost the origin a Query: the mix asks for these when the photos have none.
FALLBACK_TAGS: Final = ("beach", "city", "night", "portrait")
HEADERS: Final = {"Accept-Encoding": "gzip, deflate, br", "Accept": "*/*", "User-Agent": "local_stack.load"}


@dataclass(frozen=True)
class Planned:
    kind: str
    path: str


@dataclass
class Outcome:
    kind: str
    path: str
    status: int
    cache: str
    seconds: float


@dataclass
class Report:
    url: str
    images: int
    clients: int
    elapsed: float
    outcomes: list[Outcome]
    origin: dict[str, Any]
    errors: int = 0
    statuses: Counter[int] = field(default_factory=Counter)

    @property
    def requests(self) -> int:
        return len(self.outcomes)

    @property
    def origin_ratio(self) -> float:
        return self.origin["origin_requests"] / self.requests if self.requests else 0.0

    def latency_ms(self, percent: int) -> float:
        times = sorted(outcome.seconds for outcome in self.outcomes)
        if not times:
            return 0.0
        return 1000 * times[min(len(times) - 1, round(percent / 100 * (len(times) - 1)))]

    def summary(self) -> dict[str, Any]:
        kinds = Counter(outcome.kind for outcome in self.outcomes)
        hits = Counter(outcome.kind for outcome in self.outcomes if outcome.cache in {"Hit", "RefreshHit"})
        return {
            "url": self.url,
            "images": self.images,
            "requests": self.requests,
            # A cache's floor: each distinct URL reaches the origin at least once per max-age.
            "distinct_urls": len({outcome.path for outcome in self.outcomes}),
            "clients": self.clients,
            "errors": self.errors,
            "elapsed_s": round(self.elapsed, 2),
            "requests_per_s": round(self.requests / self.elapsed, 1) if self.elapsed else None,
            "latency_ms": {f"p{p}": round(self.latency_ms(p), 1) for p in (50, 95, 99, 100)},
            "mean_ms": round(1000 * statistics.fmean(o.seconds for o in self.outcomes), 1) if self.outcomes else None,
            "statuses": dict(sorted(Counter(outcome.status for outcome in self.outcomes).items())),
            "x_cache": dict(Counter(outcome.cache for outcome in self.outcomes)),
            "origin_requests": self.origin["origin_requests"],
            "origin_requests_by_origin": self.origin["by_origin"],
            "origin_hit_ratio": round(self.origin_ratio, 4),
            "by_kind": {kind: {"requests": kinds[kind], "hits": hits[kind]} for kind in MIX},
        }


# -- what visitors ask for ---------------------------------------------------------------------------------------


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=30) as response:  # noqa: S310 (a loopback URL, checked in main)
        return json.load(response)


def plan(site: str, count: int, seed: int) -> tuple[list[Planned], int]:
    """``count`` requests in the mix, from the documents the site lists (popular photos first, Zipf-like)."""
    documents = get_json(f"{site}/api/images?limit=100")["items"]
    if not documents:
        raise SystemExit(f"{site} lists no photos: upload some first (or run without --url)")
    tags = sorted({tag for document in documents for tag in document["tags"]}) or list(FALLBACK_TAGS)
    popularity = [1 / (rank + 1) for rank in range(len(documents))]
    draw = random.Random(seed)  # noqa: S311 (a reproducible request mix, not a secret)
    kinds, weights = zip(*MIX.items(), strict=True)
    planned = []
    for kind in draw.choices(kinds, weights, k=count):
        document = draw.choices(documents, popularity)[0]
        if kind == "gallery":
            path = "/"
        elif kind == "tag":
            path = f"/?tag={draw.choice(tags)}"
        elif kind == "detail":
            path = f"/images/{document['id']}/"
        elif kind == "api-list":
            path = draw.choice(["/api/images", "/api/images?limit=12"])
        elif kind == "api-image":
            path = f"/api/images/{document['id']}"
        else:
            path = urlsplit(draw.choice(renditions_shown(document))).path
        planned.append(Planned(kind, path))
    return planned, len(documents)


def renditions_shown(document: dict[str, Any]) -> list[str]:
    """The files browsers fetch for a photo: its gallery tiles (the two widths phones and desktops pick, WebP where
    offered) and its detail image."""
    tiles = [source["url"] for source in document["sources"] if source["name"] == "thumb" and source["width"] >= 384]
    preferred = [url for url in tiles if url.endswith(".webp")] or tiles
    return [*preferred[:2], document["optimized"] or document["thumbnail"]]


# -- the visitors -------------------------------------------------------------------------------------------------


def visit(host: str, port: int, requests: list[Planned], outcomes: list[Outcome], errors: list[str]) -> None:
    """One visitor: one keep-alive connection (a new one after an error), requests one after another."""
    connection = http.client.HTTPConnection(host, port, timeout=60)
    for request in requests:
        started = time.perf_counter()
        try:
            connection.request("GET", request.path, headers=HEADERS)
            response = connection.getresponse()
            response.read()
        except (OSError, http.client.HTTPException) as error:
            errors.append(f"{request.path}: {error}")
            connection.close()
            connection = http.client.HTTPConnection(host, port, timeout=60)
            continue
        cache = (response.headers.get("X-Cache") or "-").split()[0]
        outcomes.append(Outcome(request.kind, request.path, response.status, cache, time.perf_counter() - started))
    connection.close()


def run(site: str, requests: int, clients: int, seed: int) -> Report:
    planned, images = plan(site, requests, seed)
    parts = urlsplit(site)
    before = get_json(site + STATS_PATH)
    outcomes: list[Outcome] = []
    errors: list[str] = []
    visitors = [
        threading.Thread(
            target=visit, args=(parts.hostname, parts.port or 80, planned[n::clients], outcomes, errors), daemon=True
        )
        for n in range(clients)
    ]
    started = time.perf_counter()
    for visitor in visitors:
        visitor.start()
    for visitor in visitors:
        visitor.join()
    elapsed = time.perf_counter() - started
    after = get_json(site + STATS_PATH)
    origin = {
        "origin_requests": after["origin_requests"] - before["origin_requests"],
        "by_origin": {
            name: count - before["by_origin"].get(name, 0)
            for name, count in after["by_origin"].items()
            if count - before["by_origin"].get(name, 0)
        },
    }
    for error in errors[:5]:
        print(f"error: {error}", file=sys.stderr)
    return Report(site, images, clients, elapsed, outcomes, origin, errors=len(errors))


def print_report(report: Report) -> None:
    summary = report.summary()
    latency = summary["latency_ms"]
    print(f"\nLoad test of the front door at {report.url} ({report.images} photos listed)")
    print(f"  {summary['requests']:,} requests from {report.clients} clients in {summary['elapsed_s']} s: "
          f"{summary['requests_per_s']:,} requests/s, {report.errors} errors")
    print(f"  latency ms: p50 {latency['p50']}, p95 {latency['p95']}, p99 {latency['p99']}, max {latency['p100']}")
    print(f"  statuses: {summary['statuses']}   X-Cache: {summary['x_cache']}")
    by_origin = ", ".join(f"{name} {count}" for name, count in sorted(summary["origin_requests_by_origin"].items()))
    print(f"  origin requests: {summary['origin_requests']} ({by_origin or 'none'}) for "
          f"{summary['distinct_urls']} distinct URLs; origin hit ratio {summary['origin_hit_ratio']:.2%} "
          f"({summary['origin_requests']} / {summary['requests']:,})")
    kinds = ", ".join(
        f"{kind} {row['requests']} ({row['hits'] / row['requests']:.0%} hits)"
        for kind, row in summary["by_kind"].items()
        if row["requests"]
    )
    print(f"  by kind: {kinds}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local_stack.load", description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="a running front door (make run's site URL); default: start a stack")
    parser.add_argument("--requests", type=int, default=5000, help="requests in all (default 5000)")
    parser.add_argument("--clients", type=int, default=50, help="concurrent visitors (default 50)")
    parser.add_argument("--seed", type=int, default=14, help="seed of the request mix (default 14)")
    parser.add_argument("--photos", type=Path, default=audit.CORPUS, help="photos a self-started stack uploads")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    if not 1 <= args.requests <= MAX_REQUESTS or not 1 <= args.clients <= MAX_CLIENTS:
        parser.error(f"--requests must be 1..{MAX_REQUESTS:,} and --clients 1..{MAX_CLIENTS}")
    if args.url:
        if urlsplit(args.url).hostname not in LOOPBACK:
            parser.error("--url must be this machine (127.0.0.1 or localhost): the load test never leaves it")
        report = run(args.url.rstrip("/"), args.requests, args.clients, args.seed)
    else:
        photos = sorted(path for path in args.photos.iterdir() if path.is_file())
        with audit.local_stack(audit.AUDIT_DIR / "state") as stack:
            print(f"local stack at {stack.web_url}", flush=True)
            audit.ensure_photos(stack, photos)
            report = run(stack.web_url, args.requests, args.clients, args.seed)
    print_report(report)
    if args.json:
        args.json.write_text(json.dumps(report.summary(), indent=2) + "\n")
    return 0 if report.errors == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
