"""The browser proof: a staff member uploads, watches processing, views, edits, trashes, restores and deletes
photos in Chromium, against the whole local stack (moto, the real processor, Django, the front door) started as
``make run`` does.

The tests of this module share one stack, one logged-in browser context and the uploads made once by the
module fixtures; each test checks one behaviour of that journey.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from playwright.sync_api import Browser, BrowserContext, Page, expect

from pipeline import keys
from tests.conftest import HOSTILE, PHOTOS
from tests.e2e.conftest import StackProcess

pytestmark = pytest.mark.browser

PORTRAIT = PHOTOS / "Portrait_6.jpg"  # stored 1800x1200 with EXIF orientation 6: upright it is portrait
LANDSCAPE = PHOTOS / "Landscape_3.jpg"  # orientation 3 (upside down): upright it stays landscape
NO_JS_PHOTO = PHOTOS / "Landscape_5.jpg"
STUCK_PHOTO = PHOTOS / "Portrait_8.jpg"
HOSTILE_FILE = HOSTILE / "made-svg-script.jpg"  # an SVG with scripts, named .jpg
WAIT_MS = 60_000
DETAIL_LINK = re.compile(r"/images/([a-z2-7]{26})/$")

# Records every value each upload row's progress bar and status line take (upload.js changes them in
# separate tasks, so none is missed), keyed by file name.
RECORD_UPLOAD_ROWS = """() => {
  window.uploadRows = {};
  const list = document.getElementById("upload-list");
  const record = () => {
    for (const row of list.querySelectorAll(".upload")) {
      const name = row.querySelector(".upload__name").textContent;
      const seen = (window.uploadRows[name] ||= { progress: [], statuses: [] });
      const value = Number(row.querySelector("progress").value);
      if (seen.progress.at(-1) !== value) seen.progress.push(value);
      const status = row.querySelector(".upload__status").textContent.trim();
      if (seen.statuses.at(-1) !== status) seen.statuses.push(status);
    }
  };
  new MutationObserver(record).observe(list, { subtree: true, childList: true, attributes: true, characterData: true });
}"""
IMAGE_LOADED = "img => img.complete && img.naturalWidth > 0"


@dataclass(frozen=True)
class UploadRow:
    image_id: str | None
    state: str
    progress: list[int]
    statuses: list[str]


def log_in(page: Page, stack: StackProcess, next_path: str) -> None:
    page.goto(f"/accounts/login/?next={next_path}")
    page.fill("input[name=username]", stack.admin_user)
    page.fill("input[name=password]", stack.admin_password)
    page.click("main button[type=submit]")
    page.wait_for_url(f"**{next_path}")


def shoot(page: Page, directory: Path, name: str) -> None:
    page.screenshot(path=directory / f"{name}.png", full_page=True)


def upload_with_javascript(page: Page, files: list[Path], started: Path | None = None) -> dict[str, UploadRow]:
    """Choose ``files`` on the upload page and wait until every row is ready or failed; returns what each row
    showed. ``started``: where to save a screenshot taken as soon as the rows appear."""
    page.goto("/upload/")
    page.evaluate(RECORD_UPLOAD_ROWS)
    page.set_input_files("#upload-file", [str(path) for path in files])
    if started:
        expect(page.locator("#upload-list .upload")).to_have_count(len(files))
        page.screenshot(path=started, full_page=True)
    finished = "#upload-list .upload[data-state=ready], #upload-list .upload[data-state=failed]"
    expect(page.locator(finished)).to_have_count(len(files), timeout=WAIT_MS)
    recorded: dict[str, Any] = page.evaluate("() => window.uploadRows")
    rows = {}
    for path in files:
        row = page.locator("#upload-list .upload").filter(has_text=path.name)
        link = row.locator(".upload__status a")
        image_id = None
        if link.count():
            match = DETAIL_LINK.search(link.get_attribute("href") or "")
            image_id = match.group(1) if match else None
        rows[path.name] = UploadRow(
            image_id=image_id,
            state=row.get_attribute("data-state") or "",
            progress=recorded[path.name]["progress"],
            statuses=recorded[path.name]["statuses"],
        )
    return rows


def object_exists(s3: Any, bucket: str, key: str) -> bool:
    try:
        s3.head_object(Bucket=bucket, Key=key)
    except ClientError as error:
        if error.response["Error"]["Code"] == "404":
            return False
        raise
    return True


def versions(s3: Any, bucket: str, image_id: str) -> list[tuple[str, str, bool]]:
    """Every version and delete marker of an image's objects, oldest first: what a failed delete test shows."""
    found = []
    for prefix in ("raw/", *keys.image_rendition_prefixes(image_id)):
        listing = s3.list_object_versions(Bucket=bucket, Prefix=prefix)
        for entry in listing.get("Versions", []) + listing.get("DeleteMarkers", []):
            if image_id in entry["Key"]:
                found.append((entry["LastModified"].isoformat(), entry["Key"], "ETag" not in entry))
    return sorted(found)


def api_document(page: Page, image_id: str) -> tuple[int, dict[str, Any]]:
    response = page.request.get(f"/api/images/{image_id}")
    return response.status, (response.json() if response.ok else {})


# -- shared journey ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def staff(browser: Browser, local_stack: StackProcess) -> Iterator[BrowserContext]:
    """A browser context logged in as the stack's staff user."""
    context = browser.new_context(base_url=local_stack.web_url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(WAIT_MS)
    page = context.new_page()
    log_in(page, local_stack, "/upload/")
    page.close()
    yield context
    context.close()


@pytest.fixture(scope="module")
def js_uploads(staff: BrowserContext, screenshot_dir: Path) -> dict[str, UploadRow]:
    """Two photos uploaded together with JavaScript (one presigned POST and one progress bar each)."""
    page = staff.new_page()
    rows = upload_with_javascript(page, [PORTRAIT, LANDSCAPE], started=screenshot_dir / "upload-in-progress.png")
    shoot(page, screenshot_dir, "upload-finished")
    page.close()
    return rows


@pytest.fixture(scope="module")
def no_js_upload(browser: Browser, local_stack: StackProcess, screenshot_dir: Path) -> Iterator[dict[str, Any]]:
    """One photo sent by the plain HTML form (JavaScript off): S3 itself redirects the browser back."""
    context = browser.new_context(java_script_enabled=False, base_url=local_stack.web_url)
    context.set_default_timeout(WAIT_MS)
    page = context.new_page()
    log_in(page, local_stack, "/upload/")
    answers: list[tuple[str, int, str | None]] = []
    page.on(
        "response", lambda response: answers.append((response.url, response.status, response.header_value("location")))
    )
    expect(page.locator("#upload-file")).to_be_hidden()  # a page view makes no form: first ask for one (POST)
    page.get_by_role("button", name="Prepare an upload").click()
    page.set_input_files("#upload-file", str(NO_JS_PHOTO))
    page.click("#upload-form button[type=submit]")
    page.wait_for_url("**/upload/done/**")
    shoot(page, screenshot_dir, "upload-done-no-js")
    link = page.get_by_role("link", name="View the image page").get_attribute("href") or ""
    match = DETAIL_LINK.search(link)
    yield {
        "image_id": match.group(1) if match else None,
        "answers": answers,
        "page": page,
        "done_text": page.inner_text("main"),
    }
    context.close()


# -- uploading ----------------------------------------------------------------------------------------------


def test_each_javascript_upload_fills_its_progress_bar(js_uploads: dict[str, UploadRow]) -> None:
    for name, row in js_uploads.items():
        assert row.progress[-1] == 100, f"{name}: the bar stopped at {row.progress}"
        assert row.progress == sorted(row.progress), f"{name}: the bar went backwards: {row.progress}"


def test_javascript_uploads_go_from_processing_to_ready(js_uploads: dict[str, UploadRow]) -> None:
    for name, row in js_uploads.items():
        assert row.state == "ready", f"{name} ended {row.state}: {row.statuses}"
        processing = next(i for i, text in enumerate(row.statuses) if text.startswith("Received, processing"))
        ready = next(i for i, text in enumerate(row.statuses) if text.startswith("Ready"))
        assert processing < ready, row.statuses
        assert row.image_id, f"{name}: no link to its page"


def test_upload_without_javascript_is_redirected_back_by_s3(
    no_js_upload: dict[str, Any], local_stack: StackProcess
) -> None:
    redirects = [answer for answer in no_js_upload["answers"] if answer[0].startswith(local_stack.aws_url)]
    assert [(status, (location or "").split("?")[0]) for _, status, location in redirects] == [
        (303, f"{local_stack.web_url}/upload/done/")
    ]
    assert "Received" in no_js_upload["done_text"]
    assert no_js_upload["image_id"], "the done page links to no image"


def test_upload_without_javascript_becomes_ready(no_js_upload: dict[str, Any]) -> None:
    page: Page = no_js_upload["page"]
    image_id = no_js_upload["image_id"]
    # No script polls for us: the test asks the API, then looks at the page as a person reloading it would.
    deadline = time.monotonic() + WAIT_MS / 1000
    while api_document(page, image_id)[1].get("status") not in {"ready", "failed"} and time.monotonic() < deadline:
        time.sleep(0.3)
    assert api_document(page, image_id)[1].get("status") == "ready"
    page.goto(f"/images/{image_id}/")
    expect(page.locator(".detail__figure img")).to_have_count(1)


# -- seeing ----------------------------------------------------------------------------------------------------


def test_gallery_shows_the_uploads_from_the_cdn(
    staff: BrowserContext, js_uploads: dict[str, UploadRow], local_stack: StackProcess, screenshot_dir: Path
) -> None:
    page = staff.new_page()
    page.goto("/")
    for row in js_uploads.values():
        image = page.locator(f'.tile a[href="/images/{row.image_id}/"] img')
        image.scroll_into_view_if_needed()
        page.wait_for_function(IMAGE_LOADED, arg=image.element_handle())
        assert image.evaluate("img => img.currentSrc").startswith(local_stack.web_url + "/thumbs/")
    shoot(page, screenshot_dir, "gallery")
    page.close()


@pytest.mark.parametrize(("photo", "upright"), [(PORTRAIT, "portrait"), (LANDSCAPE, "landscape")])
def test_detail_page_shows_the_photo_upright_from_the_cdn(
    photo: Path,
    upright: str,
    staff: BrowserContext,
    js_uploads: dict[str, UploadRow],
    local_stack: StackProcess,
    screenshot_dir: Path,
) -> None:
    page = staff.new_page()
    page.goto(f"/images/{js_uploads[photo.name].image_id}/")
    image = page.locator(".detail__figure img")
    page.wait_for_function(IMAGE_LOADED, arg=image.element_handle())
    width, height, source = image.evaluate("img => [img.naturalWidth, img.naturalHeight, img.currentSrc]")
    assert source.startswith(local_stack.web_url + "/optimized/"), source
    assert ("portrait" if height > width else "landscape") == upright, f"{photo.name} shows {width}x{height}"
    shoot(page, screenshot_dir, f"detail-{upright}")
    page.close()


def test_gallery_tile_turns_ready_by_itself_once_a_stuck_upload_is_reprocessed(
    staff: BrowserContext, local_stack: StackProcess, screenshot_dir: Path
) -> None:
    """With S3's event lost, the upload waits as a "processing" tile; staff's Reprocess in the admin sends a
    new event, and the open gallery page shows the image without a reload."""
    s3 = local_stack.client("s3")
    bucket = local_stack.names.bucket
    wiring = s3.get_bucket_notification_configuration(Bucket=bucket)
    wiring.pop("ResponseMetadata")
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={})
    try:
        upload = staff.new_page()
        upload.goto("/upload/")
        with upload.expect_response("**/upload/policy/") as policy:
            upload.set_input_files("#upload-file", str(STUCK_PHOTO))
        image_id = policy.value.json()["id"]
        expect(upload.locator("#upload-list .upload__status")).to_have_text("Received, processing…")
    finally:
        s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration=wiring)

    gallery = staff.new_page()
    gallery.goto("/")
    tile = gallery.locator(f'.tile[data-page="/images/{image_id}/"]')
    expect(tile).to_have_class(re.compile(r"\btile--processing\b"))
    shoot(gallery, screenshot_dir, "gallery-processing")

    admin = staff.new_page()
    admin.goto(f"/admin/gallery/image/{image_id}/change/")
    admin.click(".reprocess-form input[type=submit]")
    expect(admin.locator(".messagelist")).to_contain_text("Reprocessing")

    image = gallery.locator(f'a[href="/images/{image_id}/"] img')
    expect(image).to_have_count(1)
    gallery.wait_for_function(IMAGE_LOADED, arg=image.element_handle())
    assert image.evaluate("img => img.currentSrc").startswith(local_stack.web_url + "/thumbs/")
    expect(gallery.locator(".tile--processing")).to_have_count(0)
    for page in (upload, gallery, admin):
        page.close()


# -- managing ----------------------------------------------------------------------------------------------


def test_admin_edits_show_in_the_gallery_and_the_api(
    staff: BrowserContext, js_uploads: dict[str, UploadRow], local_stack: StackProcess
) -> None:
    image_id = js_uploads[LANDSCAPE.name].image_id
    page = staff.new_page()
    page.goto(f"/admin/gallery/image/{image_id}/change/")
    page.fill("input[name=title]", "Waterfall at dusk")
    page.fill("input[name=tags]", "Iceland, water")
    page.click("input[name=_save]")
    expect(page.locator(".messagelist")).to_contain_text("Saved")

    page.goto("/?tag=iceland")
    tile = page.locator(".tile").filter(has=page.locator(f'a[href="/images/{image_id}/"]'))
    expect(tile.locator(".tile__title")).to_have_text("Waterfall at dusk")
    expect(tile.locator(".tag")).to_have_text(["iceland", "water"])
    # The API: a listing nobody asked for yet comes fresh through the front door. The image's own document is kept
    # there for its max-age (2 minutes, docs/api.md: an edit invalidates nothing), so it is read from Django itself.
    listing = page.request.get("/api/images?tag=iceland").json()["items"]
    assert [(item["id"], item["title"]) for item in listing] == [(image_id, "Waterfall at dusk")]
    response = page.request.get(f"{local_stack.origin_url}/api/images/{image_id}")
    assert response.status == 200
    assert (response.json()["title"], response.json()["tags"]) == ("Waterfall at dusk", ["iceland", "water"])
    page.close()


def test_admin_delete_moves_to_the_trash_restore_brings_it_back_and_delete_permanently_removes_all(
    staff: BrowserContext, no_js_upload: dict[str, Any], local_stack: StackProcess, screenshot_dir: Path
) -> None:
    image_id = no_js_upload["image_id"]
    s3 = local_stack.client("s3")
    bucket = local_stack.names.bucket

    def keys_under(*prefixes: str) -> list[str]:
        return [
            entry["Key"]
            for prefix in prefixes
            for entry in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
        ]

    raw = f"{keys.RAW_PREFIX}{image_id}/"
    public = [prefix for prefix in keys.image_rendition_prefixes(image_id) if prefix.startswith(keys.PUBLIC_PREFIX)]
    assert keys_under(raw), "nothing to delete"
    assert keys_under(*public), "no public renditions to take off the CDN"

    page = staff.new_page()
    page.goto("/admin/gallery/image/")
    shoot(page, screenshot_dir, "admin-list")
    page.goto(f"/admin/gallery/image/{image_id}/change/")
    page.click("text=Move to the trash")
    shoot(page, screenshot_dir, "admin-trash-confirm")
    page.click("input[value='Yes, move to the trash']")
    expect(page.locator(".messagelist")).to_contain_text("to the trash")
    expect(page.locator(f"#result_list >> text={image_id}")).to_have_count(0)
    assert keys_under(raw), "the trash keeps the upload"
    assert keys_under(*public) == [], f"still public: {keys_under(*public)}"
    assert api_document(page, image_id)[0] == 404
    assert page.request.get(f"/images/{image_id}/").status == 404

    page.goto("/admin/gallery/image/?status=deleted")
    row = page.locator("#result_list tbody tr").filter(has_text=image_id)
    expect(row.locator(".field-purge-after")).to_contain_text("UTC")
    shoot(page, screenshot_dir, "admin-trash")
    row.locator("a").first.click()
    expect(page.locator(".trash-note")).to_contain_text("In the trash")
    shoot(page, screenshot_dir, "admin-trashed-image")
    page.click("input[value='Restore from the trash']")
    expect(page.locator(".messagelist")).to_contain_text("Restored")
    expect(page.locator(".trash-note")).to_have_count(0)
    # Not asked of the API here: a ready document may be kept 120 s by a shared cache (the front door), and the
    # 404 after the permanent delete below is what this journey checks.
    assert keys_under(*public), "restored files are public again"
    shoot(page, screenshot_dir, "admin-restored")

    page.click("text=Delete permanently")
    page.click("input[value='Yes, delete permanently']")
    expect(page.locator(".messagelist")).to_contain_text("permanently: its record, its upload and every rendition")
    left = keys_under(raw, *keys.image_rendition_prefixes(image_id))
    assert left == [], f"still there: {left}; versions: {versions(s3, bucket, image_id)}"
    assert api_document(page, image_id)[0] == 404
    page.close()


def test_hostile_upload_fails_clearly_everywhere(staff: BrowserContext, screenshot_dir: Path) -> None:
    page = staff.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    row = upload_with_javascript(page, [HOSTILE_FILE])[HOSTILE_FILE.name]
    assert row.state == "failed", row.statuses
    reason = row.statuses[-1]
    assert reason, row.statuses
    assert reason != "Processing failed.", "the page gave no reason"
    shoot(page, screenshot_dir, "upload-hostile")

    page.goto("/")
    failed_tile = page.locator(".tile--failed")
    expect(failed_tile).to_have_count(1)
    expect(failed_tile).to_contain_text(reason)

    page.goto("/admin/gallery/image/?status=failed")
    listed = page.locator("#result_list tbody tr").filter(has_text=HOSTILE_FILE.name)
    expect(listed.locator(".image-reason")).to_have_text(reason)
    shoot(page, screenshot_dir, "admin-failed")
    assert dialogs == [], f"the hostile file ran script: {dialogs}"
    page.close()
