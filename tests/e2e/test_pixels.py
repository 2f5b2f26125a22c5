"""Every screen gets the pixels it needs: the gallery and detail pages in Chromium as a phone (390x844 @3x) and a
desktop (1440x900 @2x), with real corpus photos processed by the local stack. For every displayed image the
file the browser chose is at most 1.5x the device pixels it fills (for the cover-cropped tiles, along the
picture's narrower side), and never narrower than them when its srcset had a bigger file.

Pixels only: what the browser chose is deterministic for a layout, a `sizes` and a srcset; nothing is timed.
"""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path

import pytest
from playwright.sync_api import Browser

from local_stack import pixels
from tests.conftest import PHOTOS
from tests.e2e.conftest import StackProcess

pytestmark = pytest.mark.browser

# Landscape, portrait (EXIF-rotated), a 4608x1976 panorama, a 2048x1536 HDR photo and an 800x600 one whose
# ladder stops below the phone's detail box (no bigger rung exists: it may be narrower than its box).
SAMPLES = [
    PHOTOS / "Landscape_1.jpg",
    PHOTOS / "Portrait_6.jpg",
    PHOTOS / "HMD_Nokia_8.3_5G.jpg",
    PHOTOS / "canon_hdr_NO.jpg",
    PHOTOS / "nikon-e950.jpg",
]
PROCESSING_TIMEOUT_SECONDS = 120


def listed(stack: StackProcess) -> list[str]:
    # From Django itself: the front door keeps a listing for 30 s, and this waits on the processor.
    with urllib.request.urlopen(f"{stack.origin_url}/api/images?limit=100", timeout=10) as response:
        return [item["id"] for item in json.load(response)["items"]]


@pytest.fixture(scope="module")
def sample_ids(local_stack: StackProcess) -> list[str]:
    """The samples uploaded to raw/ as `aws s3 cp` would, once they are all processed and listed."""
    before = set(listed(local_stack))
    s3 = local_stack.client("s3")
    for photo in SAMPLES:
        s3.upload_file(str(photo), local_stack.names.bucket, f"raw/pixels-{photo.name}")
    deadline = time.monotonic() + PROCESSING_TIMEOUT_SECONDS
    new: list[str] = []
    while len(new) < len(SAMPLES) and time.monotonic() < deadline:
        time.sleep(0.5)
        new = [image_id for image_id in listed(local_stack) if image_id not in before]
    assert len(new) == len(SAMPLES), (
        f"only {len(new)} of {len(SAMPLES)} samples were processed\n{local_stack.log_tail()}"
    )
    return new


def check(measured: pixels.PageMeasure) -> list[str]:
    """Every broken rule on one page, as sentences."""
    assert measured.images, f"{measured.url} shows no image"
    problems = []
    for image in measured.images:
        if image.too_big:
            problems.append(f"more than {pixels.MAX_RATIO}x the pixels it fills: {image.describe()}")
        if image.too_soft:
            problems.append(f"narrower than its box although a bigger file exists: {image.describe()}")
    return problems


@pytest.mark.parametrize("device", list(pixels.DEVICES))
def test_gallery_tiles_get_the_pixels_they_fill(
    browser: Browser, local_stack: StackProcess, sample_ids: list[str], device: str, screenshot_dir: Path
) -> None:
    measured = pixels.measure_on(browser, device, local_stack.web_url, ["/"])["/"]

    shown = {image.src.split("/thumbs/")[-1].split("/")[0] for image in measured.images}
    assert set(sample_ids) <= shown
    assert all("/thumbs/" in image.src for image in measured.images)
    assert check(measured) == []
    context = browser.new_context(base_url=local_stack.web_url, **pixels.DEVICES[device])
    page = context.new_page()
    page.goto("/")
    page.screenshot(path=screenshot_dir / f"pixels-gallery-{device}.png")
    context.close()


@pytest.mark.parametrize("device", list(pixels.DEVICES))
def test_detail_pages_get_the_pixels_they_fill(
    browser: Browser, local_stack: StackProcess, sample_ids: list[str], device: str
) -> None:
    measured = pixels.measure_on(browser, device, local_stack.web_url, [f"/images/{i}/" for i in sample_ids])

    problems = [problem for page in measured.values() for problem in check(page)]
    assert problems == []
    assert all("/optimized/" in image.src for page in measured.values() for image in page.images)
