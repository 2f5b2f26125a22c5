"""Upload quotas in Chromium (review M5): over quota the person reads which limit they hit and when they may
upload again, in the file's row with JavaScript and on the page without it. A stack of its own, whose staff may
start two uploads a day, so the shared stack's journey keeps the usual quota."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from tests.conftest import PHOTOS
from tests.e2e.conftest import StackProcess
from tests.e2e.test_browser import WAIT_MS, log_in, shoot

pytestmark = pytest.mark.browser

ALLOWED = 2
PHOTOS_CHOSEN = [PHOTOS / "Portrait_6.jpg", PHOTOS / "Landscape_3.jpg", PHOTOS / "Landscape_5.jpg"]
REFUSAL = re.compile(
    rf"^You have started {ALLOWED} uploads in the last 24 hours, the most allowed\. "
    r"You can upload again at \d\d:\d\d UTC( tomorrow)? \(in about 24 hours\)\.$"
)


@pytest.fixture(scope="module")
def quota_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackProcess]:
    stack = StackProcess(
        tmp_path_factory.mktemp("quota") / "state", extra_env={"STAFF_UPLOAD_QUOTA_UPLOADS": str(ALLOWED)}
    )
    stack.start()
    yield stack
    assert stack.stop() == 0, f"the local stack did not stop cleanly\n{stack.log_tail()}"


def test_over_quota_the_file_row_says_which_limit_and_when(
    browser: Browser, quota_stack: StackProcess, screenshot_dir: Path
) -> None:
    context = browser.new_context(base_url=quota_stack.web_url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(WAIT_MS)
    page = context.new_page()
    log_in(page, quota_stack, "/upload/")
    expect(page.get_by_role("button", name="Prepare an upload")).to_be_hidden()  # the no-JS step, replaced

    page.set_input_files("#upload-file", [str(path) for path in PHOTOS_CHOSEN])

    refused = page.locator("#upload-list .upload[data-state=failed]")
    expect(refused).to_have_count(1)
    expect(refused.locator(".upload__status")).to_have_text(REFUSAL)
    finished = page.locator("#upload-list .upload[data-state=ready]")
    expect(finished).to_have_count(ALLOWED, timeout=WAIT_MS)
    shoot(page, screenshot_dir, "upload-over-quota-js")
    context.close()


def test_over_quota_the_page_without_javascript_says_which_limit_and_when(
    browser: Browser, quota_stack: StackProcess, screenshot_dir: Path
) -> None:
    context = browser.new_context(java_script_enabled=False, base_url=quota_stack.web_url)
    context.set_default_timeout(WAIT_MS)
    page = context.new_page()
    log_in(page, quota_stack, "/upload/")
    statuses = []
    for _ in range(ALLOWED + 1):  # whatever the other test used: ask until refused
        page.goto("/upload/")
        with page.expect_response("**/upload/") as prepared:
            page.get_by_role("button", name="Prepare an upload").click()
        statuses.append(prepared.value.status)
        if prepared.value.status == 429:
            break
        expect(page.locator("#upload-file")).to_be_focused()  # the prepared form: choose the photo next

    assert statuses[-1] == 429, statuses
    assert re.fullmatch(r"\d+", prepared.value.headers["retry-after"])
    alert = page.get_by_role("alert")
    expect(alert).to_have_text(REFUSAL)
    expect(page.get_by_role("button", name="Prepare an upload")).to_be_visible()
    shoot(page, screenshot_dir, "upload-over-quota-no-js")
    context.close()
