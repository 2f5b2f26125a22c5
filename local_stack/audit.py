"""``make audit`` and ``make pixels``: the pages measured as issue 12 measures them, against a local stack.

Starts ``python -m local_stack`` on free ports with its own state folder (``.audit/state``, kept between runs),
uploads the corpus photos to ``raw/`` with boto3 if the gallery is empty and waits until they are listed, then

* ``pixels``: in Chromium (Playwright) as a phone (390x844 @3x) and a desktop (1440x900 @2x): the gallery's
  first page (image bytes after scrolling to the bottom) and every photo's detail page, and for each displayed
  image the chosen file's pixels over the device pixels it fills (at most 1.5, and not below 1 when the
  srcset had a bigger file);
* ``lighthouse``: Lighthouse (``.lighthouse/``, installed by ``make audit``) mobile and desktop on the
  gallery, one detail page and the upload page (logged in as the stack's staff user), one retry on
  NO_NAVSTART, the four category scores in a table, the JSON reports under ``.audit/reports/``.

Ctrl-C or the end stops the stack. ``rm -rf .audit`` starts over (new uploads).
"""

from __future__ import annotations

import argparse
import http.cookiejar
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import boto3

from local_stack.config import DUMMY_CREDENTIALS, ROOT
from local_stack.front_door import STATS_PATH
from local_stack.template import read_stack_names

REGION: Final = "us-east-1"
AUDIT_DIR: Final = ROOT / ".audit"
REPORTS: Final = AUDIT_DIR / "reports"
CORPUS: Final = ROOT.parent / "shared" / "corpus" / "photos"
LIGHTHOUSE: Final = ROOT / ".lighthouse" / "node_modules" / ".bin" / "lighthouse"
CHROMIUM: Final = Path(os.environ.get("CHROME_PATH", "/usr/bin/chromium"))
CATEGORIES: Final = ("performance", "accessibility", "best-practices", "seo")
TARGETS: Final = {"performance": 95, "accessibility": 100, "best-practices": 100, "seo": 100}
PROCESSING_TIMEOUT_SECONDS: Final = 600
GALLERY_BYTES_TARGET: Final = 1_000_000


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Stack:
    web_url: str
    aws_url: str
    admin: tuple[str, str]


@contextmanager
def local_stack(state_dir: Path) -> Iterator[Stack]:
    """``python -m local_stack`` as a child, on free ports; Ctrl-C (SIGINT) when done, as in a terminal."""
    ports = {name: free_port() for name in ("LOCAL_AWS_PORT", "LOCAL_WEB_PORT", "LOCAL_DJANGO_PORT")}
    env = {**os.environ, "LOCAL_STATE_DIR": str(state_dir), "PYTHONUNBUFFERED": "1", **map_str(ports)}
    for name in ("IMAGE_BUCKET", "IMAGE_TABLE", "CDN_URL", "LOCAL_AWS"):
        env.pop(name, None)
    state_dir.mkdir(parents=True, exist_ok=True)
    log_path = AUDIT_DIR / "stack.log"
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "local_stack"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    web_url = f"http://127.0.0.1:{ports['LOCAL_WEB_PORT']}"
    try:
        deadline = time.monotonic() + 180
        while True:
            if process.poll() is not None:
                raise SystemExit(f"the local stack exited with {process.returncode}; see {log_path}")
            try:
                # The front door's stats, not the gallery: waiting must not leave an empty gallery in its cache.
                with urllib.request.urlopen(web_url + STATS_PATH, timeout=2):  # noqa: S310 (our own http URL)
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit(f"the local stack did not answer within 180 s; see {log_path}") from None
                time.sleep(0.3)
        admin = json.loads((state_dir / "admin.json").read_text())
        yield Stack(web_url, f"http://127.0.0.1:{ports['LOCAL_AWS_PORT']}", (admin["username"], admin["password"]))
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def map_str(values: dict[str, int]) -> dict[str, str]:
    return {name: str(value) for name, value in values.items()}


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 (our own http URL)
        return json.load(response)


def listed_ids(stack: Stack) -> list[str]:
    return [item["id"] for item in get_json(f"{stack.web_url}/api/images?limit=100")["items"]]


def ensure_photos(stack: Stack, photos: list[Path]) -> list[str]:
    """Upload ``photos`` to raw/ if the gallery is empty; wait until that many are listed. Ids, newest first."""
    ids = listed_ids(stack)
    if not ids:
        s3 = boto3.client(
            "s3",
            endpoint_url=stack.aws_url,
            region_name=REGION,
            aws_access_key_id=DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        )
        bucket = read_stack_names(REGION).bucket
        for photo in photos:
            s3.upload_file(str(photo), bucket, f"raw/{photo.name}")
        print(f"uploaded {len(photos)} photos to s3://{bucket}/raw/; waiting until they are processed", flush=True)
    deadline = time.monotonic() + PROCESSING_TIMEOUT_SECONDS
    while len(ids) < len(photos) and time.monotonic() < deadline:
        time.sleep(2)
        ids = listed_ids(stack)
    if len(ids) < len(photos):
        print(f"warning: only {len(ids)} of {len(photos)} photos are listed (see .audit/stack.log)", flush=True)
    return ids


def session_cookie(stack: Stack) -> str:
    """Log in as the stack's staff user; the Cookie header of that session."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    opener.open(f"{stack.web_url}/accounts/login/", timeout=10).read()
    token = next(cookie.value for cookie in jar if cookie.name == "csrftoken")
    form = {"username": stack.admin[0], "password": stack.admin[1], "next": "/upload/", "csrfmiddlewaretoken": token}
    request = urllib.request.Request(  # noqa: S310 (our own http URL)
        f"{stack.web_url}/accounts/login/",
        data=urllib.parse.urlencode(form).encode(),
        headers={"Referer": f"{stack.web_url}/accounts/login/"},
    )
    opener.open(request, timeout=10).read()
    if not any(cookie.name == "sessionid" for cookie in jar):
        raise SystemExit("could not log in as the stack's staff user")
    return "; ".join(f"{cookie.name}={cookie.value}" for cookie in jar)


# -- pixels --------------------------------------------------------------------------------------------------


def run_pixels(stack: Stack, ids: list[str], screenshots: Path | None) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    from local_stack import pixels

    summary: dict[str, Any] = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu"])
        try:
            for device in pixels.DEVICES:
                gallery = pixels.measure_on(browser, device, stack.web_url, ["/"])["/"]
                details = pixels.measure_on(browser, device, stack.web_url, [f"/images/{i}/" for i in ids])
                detail_images = [image for page in details.values() for image in page.images]
                summary[device] = {
                    "gallery": _page_summary(gallery.images, gallery.image_bytes, gallery.image_requests),
                    "detail": _page_summary(detail_images, None, None),
                    "problems": [
                        f"{where}: {image.describe()}"
                        for where, images in (("gallery", gallery.images), ("detail", detail_images))
                        for image in images
                        if image.too_big or image.too_soft
                    ],
                }
                if screenshots:
                    _screenshots(browser, device, stack.web_url, ids, screenshots)
        finally:
            browser.close()
    return summary


def _page_summary(images: list[Any], image_bytes: int | None, requests: int | None) -> dict[str, Any]:
    ratios = sorted(image.ratio for image in images)
    return {
        "images": len(images),
        "image_bytes": image_bytes,
        "image_requests": requests,
        "ratio_min": round(ratios[0], 3) if ratios else None,
        "ratio_median": round(statistics.median(ratios), 3) if ratios else None,
        "ratio_max": round(ratios[-1], 3) if ratios else None,
        "over_1_5": sum(image.too_big for image in images),
        "narrower_with_bigger_rung": sum(image.too_soft for image in images),
    }


def _screenshots(browser: Any, device: str, base_url: str, ids: list[str], folder: Path) -> None:
    from local_stack import pixels

    folder.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(base_url=base_url, **pixels.DEVICES[device])
    page = context.new_page()
    page.goto("/")
    page.screenshot(path=folder / f"gallery-{device}.png")
    for image_id in ids[:1] + [i for i in ids if i != ids[0]][:1]:
        page.goto(f"/images/{image_id}/")
        page.wait_for_load_state("networkidle")
        page.screenshot(path=folder / f"detail-{device}-{image_id[:6]}.png")
    context.close()


def print_pixels(summary: dict[str, Any]) -> None:
    print("\nImages (Chromium, fresh cache; ratio = chosen file's pixels / device pixels filled)")
    header = ("device", "page", "images", "bytes", "min", "median", "max", ">1.5", "soft")
    print("{:8} {:8} {:>6} {:>11} {:>5} {:>6} {:>5} {:>5} {:>5}".format(*header))
    for device, pages in summary.items():
        for name in ("gallery", "detail"):
            row = pages[name]
            shown = f"{row['image_bytes']:,}" if row["image_bytes"] is not None else "-"
            print(
                f"{device:8} {name:8} {row['images']:>6} {shown:>11} {row['ratio_min']:>5} {row['ratio_median']:>6}"
                f" {row['ratio_max']:>5} {row['over_1_5']:>5} {row['narrower_with_bigger_rung']:>5}"
            )
        for problem in pages["problems"]:
            print(f"  {device}: {problem}")


# -- lighthouse ----------------------------------------------------------------------------------------------


def run_lighthouse(stack: Stack, ids: list[str]) -> dict[str, dict[str, dict[str, int | None]]]:
    if not LIGHTHOUSE.exists():
        raise SystemExit(f"Lighthouse is not installed at {LIGHTHOUSE}: run `make audit`")
    cookie = session_cookie(stack)
    pages = {"gallery": ("/", None), "detail": (f"/images/{ids[0]}/", None), "upload": ("/upload/", cookie)}
    REPORTS.mkdir(parents=True, exist_ok=True)
    scores: dict[str, dict[str, dict[str, int | None]]] = {}
    for page, (path, page_cookie) in pages.items():
        for preset in ("mobile", "desktop"):
            report = _lighthouse(stack.web_url + path, preset, page_cookie, REPORTS / f"{page}-{preset}.json")
            scores.setdefault(page, {})[preset] = {category: _score(report, category) for category in CATEGORIES}
            scores[page][preset]["failing"] = [  # type: ignore[assignment]
                audit_id
                for audit_id, audit in report.get("audits", {}).items()
                if audit.get("score") is not None
                and audit.get("score") < 0.9
                and audit.get("scoreDisplayMode") in ("binary", "numeric", "metricSavings")
            ]
    return scores


def _lighthouse(url: str, preset: str, cookie: str | None, output: Path) -> dict[str, Any]:
    command = [
        str(LIGHTHOUSE),
        url,
        "--output=json",
        f"--output-path={output}",
        "--only-categories=" + ",".join(CATEGORIES),
        "--chrome-flags=--headless=new --no-sandbox",
        "--quiet",
    ]
    if preset == "desktop":
        command.append("--preset=desktop")
    if cookie:
        command.append("--extra-headers=" + json.dumps({"Cookie": cookie}))
    env = {**os.environ, "CHROME_PATH": str(CHROMIUM)}
    for attempt in (1, 2):
        subprocess.run(command, env=env, check=False)
        report = json.loads(output.read_text()) if output.exists() else {}
        error = (report.get("runtimeError") or {}).get("code")
        if error != "NO_NAVSTART" or attempt == 2:
            if error:
                print(f"lighthouse {url} ({preset}): {error}", flush=True)
            return report
        print(f"lighthouse {url} ({preset}): NO_NAVSTART, retrying once", flush=True)
    return {}


def _score(report: dict[str, Any], category: str) -> int | None:
    score = report.get("categories", {}).get(category, {}).get("score")
    return round(score * 100) if score is not None else None


def print_lighthouse(scores: dict[str, dict[str, dict[str, Any]]]) -> None:
    print("\nLighthouse 12.2.3 (Debian's Chromium, headless) — performance, accessibility, best practices, SEO")
    print(f"{'page':8} {'preset':8} {'perf':>5} {'a11y':>5} {'bp':>5} {'seo':>5}  below target")
    for page, presets in scores.items():
        for preset, row in presets.items():
            values = [row[category] for category in CATEGORIES]
            missed = [c for c in CATEGORIES if row[c] is None or row[c] < TARGETS[c]]
            note = ", ".join(missed) + (f" (audits: {', '.join(row['failing'])})" if missed else "")
            print(f"{page:8} {preset:8} " + " ".join(f"{'-' if v is None else v:>5}" for v in values) + f"  {note}")


# -- main ------------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local_stack.audit", description=__doc__.split("\n\n")[0])
    parser.add_argument("what", nargs="*", choices=("pixels", "lighthouse"), default=["pixels", "lighthouse"])
    parser.add_argument("--photos", type=Path, default=CORPUS, help="folder of photos to upload (default: corpus)")
    parser.add_argument("--screenshots", type=Path, help="also save phone and desktop screenshots here")
    args = parser.parse_args(argv)
    photos = sorted(path for path in args.photos.iterdir() if path.is_file())
    results: dict[str, Any] = {}
    with local_stack(AUDIT_DIR / "state") as stack:
        print(f"local stack at {stack.web_url}", flush=True)
        ids = ensure_photos(stack, photos)
        if "pixels" in args.what:
            results["pixels"] = run_pixels(stack, ids, args.screenshots)
            print_pixels(results["pixels"])
        if "lighthouse" in args.what:
            results["lighthouse"] = run_lighthouse(stack, ids)
            print_lighthouse(results["lighthouse"])
    summary_path = AUDIT_DIR / "summary.json"
    earlier = json.loads(summary_path.read_text()) if summary_path.exists() else {}
    summary_path.write_text(json.dumps({**earlier, **results}, indent=2) + "\n")
    print(f"\nsummary: {AUDIT_DIR / 'summary.json'}; Lighthouse reports: {REPORTS}/")
    pixels_ok = all(
        not pages["problems"] and (pages["gallery"]["image_bytes"] or 0) <= GALLERY_BYTES_TARGET
        for pages in results.get("pixels", {}).values()
    )
    lighthouse_ok = all(
        row[c] is not None and row[c] >= TARGETS[c]
        for presets in results.get("lighthouse", {}).values()
        for row in presets.values()
        for c in CATEGORIES
    )
    return 0 if pixels_ok and lighthouse_ok else 1


if __name__ == "__main__":
    sys.exit(main())
