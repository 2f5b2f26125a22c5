"""An animated GIF in Chromium against the local stack: uploaded on the upload page, its detail page plays the
animated WebP, and a viewer who asked for reduced motion gets the still poster instead."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, expect

from tests.e2e.conftest import StackProcess
from tests.e2e.test_browser import IMAGE_LOADED, WAIT_MS, log_in, shoot, upload_with_javascript
from tests.test_animation import GIF_DURATIONS, moving_squares_gif

pytestmark = pytest.mark.browser

# The frames the browser decoded: Chromium's ImageDecoder reads the file the <img> shows.
FRAME_COUNT = """async img => {
  const response = await fetch(img.currentSrc);
  const decoder = new ImageDecoder({ data: response.body, type: response.headers.get("content-type") });
  await decoder.tracks.ready;
  return [decoder.tracks.selectedTrack.frameCount, response.headers.get("content-type")];
}"""


@pytest.fixture(scope="module")
def viewer(browser: Browser, local_stack: StackProcess) -> Iterator[BrowserContext]:
    context = browser.new_context(base_url=local_stack.web_url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(WAIT_MS)
    page = context.new_page()
    log_in(page, local_stack, "/upload/")
    page.close()
    yield context
    context.close()


@pytest.fixture(scope="module")
def animation_id(viewer: BrowserContext, tmp_path_factory: pytest.TempPathFactory) -> str:
    upload = tmp_path_factory.mktemp("animation") / "squares.gif"
    upload.write_bytes(moving_squares_gif())
    page = viewer.new_page()
    row = upload_with_javascript(page, [upload])[upload.name]
    page.close()
    assert row.state == "ready", row.statuses
    assert row.image_id
    return row.image_id


def test_the_detail_page_plays_the_animated_webp(
    viewer: BrowserContext, animation_id: str, local_stack: StackProcess, screenshot_dir: Path
) -> None:
    page = viewer.new_page()
    page.goto(f"/images/{animation_id}/")
    image = page.locator(".detail__figure img")
    page.wait_for_function(IMAGE_LOADED, arg=image.element_handle())

    source = image.evaluate("img => img.currentSrc")
    assert source.startswith(local_stack.web_url + "/optimized/"), source
    assert source.endswith("-animated.webp"), source
    assert image.evaluate(FRAME_COUNT) == [len(GIF_DURATIONS), "image/webp"]
    shoot(page, screenshot_dir, "detail-animation")
    page.close()


def test_reduced_motion_gets_the_still_poster(browser: Browser, animation_id: str, local_stack: StackProcess) -> None:
    context = browser.new_context(base_url=local_stack.web_url, reduced_motion="reduce")
    context.set_default_timeout(WAIT_MS)
    page = context.new_page()
    page.goto(f"/images/{animation_id}/")
    image = page.locator(".detail__figure img")
    page.wait_for_function(IMAGE_LOADED, arg=image.element_handle())

    source = image.evaluate("img => img.currentSrc")
    assert source.startswith(local_stack.web_url + "/optimized/"), source
    assert "-animated" not in source
    assert image.evaluate(FRAME_COUNT)[0] == 1
    expect(page.locator(".detail__figure img")).to_be_visible()
    context.close()


def test_gallery_tiles_stay_still(viewer: BrowserContext, animation_id: str) -> None:
    page = viewer.new_page()
    page.goto("/")
    tile = page.locator(f'a[href="/images/{animation_id}/"] img').first
    page.wait_for_function(IMAGE_LOADED, arg=tile.element_handle())

    assert "/thumbs/" in tile.evaluate("img => img.currentSrc")
    page.close()
