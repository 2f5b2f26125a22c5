"""Issue 15's browser proof, on a stack of its own with PUBLISH_REVIEW=required: uploader A (no right to publish)
uploads three photos through the upload page, one a duplicate of a photo already in the gallery and one that
fails; A sees them on /my/ with their states and cannot see or edit B's; A's photo reaches the gallery only once
staff approve it in the admin. Every page A sees passes axe.

One journey, in order: the tests of this module share the stack, the browser contexts and what the earlier steps
left (module fixtures), and each test checks one behaviour of it.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.conftest import HOSTILE, PHOTOS
from tests.e2e.conftest import StackProcess
from tests.e2e.test_browser import log_in

pytestmark = pytest.mark.browser

SHOTS = Path("/tmp/e2e-shots")
WAIT_MS = 120_000  # three photos processed one after another on a busy two-core machine
ORIGINAL = PHOTOS / "Landscape_3.jpg"  # staff's, published: A's second upload is the same file
NORMAL = PHOTOS / "Landscape_5.jpg"
FAILING = HOSTILE / "truncated_jpeg.jpg"
B_PHOTO = PHOTOS / "Portrait_6.jpg"
ITEM_ID = re.compile(r"^upload-([a-z2-7]{26})$")
FINISHED_ROWS = ", ".join(f"#upload-list .upload[data-state={state}]" for state in ("ready", "failed", "pending"))


@dataclass(frozen=True)
class Person:
    username: str
    password: str
    context: BrowserContext
    # How each upload's row on the upload page ended: file name -> (data-state, status text).
    rows: dict[str, tuple[str, str]] = field(default_factory=dict)


def shoot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SHOTS / f"{name}.png", full_page=True)


def assert_accessible(page: Page) -> None:
    results = Axe().run(page)
    assert results.violations_count == 0, results.generate_report()


def upload(page: Page, files: list[Path]) -> None:
    """Choose ``files`` on the upload page (upload.js) and wait until each row says how it ended."""
    page.goto("/upload/")
    page.set_input_files("#upload-file", [str(path) for path in files])
    expect(page.locator(FINISHED_ROWS)).to_have_count(len(files), timeout=WAIT_MS)


def upload_row(page: Page, path: Path):
    return page.locator("#upload-list .upload").filter(has_text=path.name)


def my_items(page: Page) -> list[str]:
    page.goto("/my/")
    return [ITEM_ID.match(i or "").group(1) for i in page.locator(".mine__item").evaluate_all("l => l.map(e => e.id)")]


def my_item(page: Page, file_name: str):
    return page.locator(".mine__item").filter(has=page.locator(".mine__meta, .mine__name", has_text=file_name))


def gallery_ids(page: Page) -> set[str]:
    page.goto("/")
    hrefs = page.locator(".tile a.tile__frame").evaluate_all("links => links.map(a => a.getAttribute('href'))")
    return {match.group(1) for href in hrefs if (match := re.search(r"/images/([a-z2-7]{26})/", href or ""))}


# -- the journey's people ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def review_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackProcess]:
    stack = StackProcess(
        tmp_path_factory.mktemp("library") / "state",
        extra_env={"PUBLISH_REVIEW": "required", "LOCAL_VISIBILITY_TIMEOUT": "1"},
    )
    stack.start()
    yield stack
    assert stack.stop() == 0, f"the local stack did not stop cleanly\n{stack.log_tail()}"


def new_context(browser: Browser, stack: StackProcess) -> BrowserContext:
    context = browser.new_context(base_url=stack.web_url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(WAIT_MS)
    return context


@pytest.fixture(scope="module")
def staff(browser: Browser, review_stack: StackProcess) -> Iterator[BrowserContext]:
    """The stack's superuser (who may publish), with the original photo uploaded and published."""
    context = new_context(browser, review_stack)
    page = context.new_page()
    log_in(page, review_stack, "/upload/")
    upload(page, [ORIGINAL])
    expect(upload_row(page, ORIGINAL)).to_have_attribute("data-state", "ready")
    page.close()
    yield context
    context.close()


def make_uploader(browser: Browser, stack: StackProcess, staff: BrowserContext, username: str) -> Person:
    """An account without any permission, made in the admin as staff make one, then logged in."""
    password = secrets.token_urlsafe(12)
    admin = staff.new_page()
    admin.goto("/admin/auth/user/add/")
    admin.fill("input[name=username]", username)
    admin.fill("input[name=password1]", password)
    admin.fill("input[name=password2]", password)
    admin.click("input[name=_save]")
    expect(admin.locator(".messagelist")).to_contain_text(username)
    admin.close()
    context = new_context(browser, stack)
    page = context.new_page()
    page.goto("/accounts/login/?next=/my/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("main button[type=submit]")
    page.wait_for_url("**/my/")
    page.close()
    return Person(username, password, context)


@pytest.fixture(scope="module")
def uploader_b(browser: Browser, review_stack: StackProcess, staff: BrowserContext) -> Iterator[Person]:
    b = make_uploader(browser, review_stack, staff, "uploader-b")
    page = b.context.new_page()
    upload(page, [B_PHOTO])
    page.close()
    yield b
    b.context.close()


@pytest.fixture(scope="module")
def uploader_a(
    browser: Browser, review_stack: StackProcess, staff: BrowserContext, uploader_b: Person
) -> Iterator[Person]:
    """A, after uploading the three photos in one go through the upload page."""
    a = make_uploader(browser, review_stack, staff, "uploader-a")
    page = a.context.new_page()
    upload(page, [NORMAL, ORIGINAL, FAILING])
    shoot(page, "01-upload-page-a")
    rows = {
        path.name: (
            upload_row(page, path).get_attribute("data-state") or "",
            upload_row(page, path).locator(".upload__status").inner_text(),
        )
        for path in (NORMAL, ORIGINAL, FAILING)
    }
    page.close()
    yield replace(a, rows=rows)
    a.context.close()


@pytest.fixture(scope="module")
def a_ids(uploader_a: Person) -> dict[str, str]:
    """A's image ids by file name, as /my/ lists them."""
    page = uploader_a.context.new_page()
    page.goto("/my/")
    ids = {}
    for path in (NORMAL, ORIGINAL, FAILING):
        item = my_item(page, path.name)
        expect(item).to_have_count(1)
        ids[path.name] = ITEM_ID.match(item.get_attribute("id") or "").group(1)
    page.close()
    return ids


# -- the upload page ------------------------------------------------------------------------------------------


def test_the_upload_page_says_how_each_of_as_photos_ended(uploader_a: Person) -> None:
    """Pending review (the public API would 404: the page asks the owner's status), the duplicate named, the
    failure's reason."""
    rows = uploader_a.rows
    assert rows[NORMAL.name][0] == "pending", rows
    assert rows[NORMAL.name][1].startswith("Waiting for review."), rows
    assert rows[ORIGINAL.name][0] == "pending", rows
    assert f"Already in the gallery as {ORIGINAL.name}." in rows[ORIGINAL.name][1], rows
    assert rows[FAILING.name][0] == "failed", rows
    assert "truncated" in rows[FAILING.name][1], rows


# -- /my/ ----------------------------------------------------------------------------------------------------


def test_my_uploads_shows_each_state_in_words(uploader_a: Person, a_ids: dict[str, str]) -> None:
    page = uploader_a.context.new_page()
    page.goto("/my/")
    shoot(page, "02-my-uploads-a")

    normal = page.locator(f"#upload-{a_ids[NORMAL.name]}")
    expect(normal.locator(".badge")).to_have_text("Waiting for review")
    duplicate = page.locator(f"#upload-{a_ids[ORIGINAL.name]}")
    expect(duplicate.locator(".mine__dup")).to_contain_text(f"Already in the gallery as {ORIGINAL.name}")
    expect(duplicate.locator(".mine__dup a")).to_have_attribute("href", re.compile(r"^/images/[a-z2-7]{26}/$"))
    failed = page.locator(f"#upload-{a_ids[FAILING.name]}")
    expect(failed.locator(".badge")).to_have_text("Failed")
    expect(failed.locator(".mine__reason")).to_contain_text("truncated")
    expect(failed.get_by_role("button", name=re.compile("^Retry"))).to_be_visible()
    # Unpublished thumbnails come from hidden/ through presigned URLs, and they load.
    thumb = normal.locator("img")
    expect(thumb).to_have_attribute("src", re.compile(r"X-Amz-Signature="))
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=thumb.element_handle())
    assert_accessible(page)
    page.close()


def test_a_cannot_see_or_edit_bs_images(uploader_a: Person, uploader_b: Person, a_ids: dict[str, str]) -> None:
    b_page = uploader_b.context.new_page()
    b_ids = my_items(b_page)
    b_page.close()
    assert len(b_ids) == 1, b_ids

    page = uploader_a.context.new_page()
    assert sorted(my_items(page)) == sorted(a_ids.values())
    for url in (f"/my/{b_ids[0]}/edit/", f"/my/{b_ids[0]}/delete/", f"/my/{b_ids[0]}/status"):
        response = page.goto(url)
        assert response is not None
        assert response.status == 404, url
    shoot(page, "03-a-edits-bs-image-404")
    page.close()


def test_a_edits_the_title_and_alt_text_of_their_own(uploader_a: Person, a_ids: dict[str, str]) -> None:
    page = uploader_a.context.new_page()
    page.goto(f"/my/{a_ids[NORMAL.name]}/edit/")
    assert_accessible(page)
    page.get_by_label("Tags").fill(", ".join(f"tag{n}" for n in range(21)))
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#id_tags_error")).to_contain_text("t most 20 tags")  # next to the field, by name
    expect(page.get_by_label("Tags")).to_have_attribute("aria-invalid", "true")
    shoot(page, "04-edit-error")
    assert_accessible(page)
    page.get_by_label("Tags").fill("harbour, boats")
    page.get_by_label("Title").fill("Harbour by A")
    page.get_by_label("Alt text").fill("Boats moored in a small harbour")
    page.get_by_role("button", name="Save").click()
    page.wait_for_url("**/my/")
    expect(page.locator(f"#upload-{a_ids[NORMAL.name]} .mine__name")).to_have_text("Harbour by A")
    page.close()


# -- the publish gate ---------------------------------------------------------------------------------------


def test_as_photo_reaches_the_gallery_only_after_staff_approve_it(
    browser: Browser, review_stack: StackProcess, staff: BrowserContext, uploader_a: Person, a_ids: dict[str, str]
) -> None:
    image_id = a_ids[NORMAL.name]
    page = staff.new_page()
    assert image_id not in gallery_ids(page)
    assert page.goto(f"/images/{image_id}/").status == 404

    page.goto("/admin/gallery/image/")
    page.check(f"input[name=_selected_action][value='{image_id}']")
    page.select_option("select[name=action]", "approve_selected")
    page.get_by_role("button", name="Go").click()
    expect(page.locator(".messagelist")).to_contain_text("Approved 1 image")
    shoot(page, "05-staff-approved")

    assert image_id in gallery_ids(page)
    anonymous = new_context(browser, review_stack).new_page()
    assert image_id in gallery_ids(anonymous)
    expect(anonymous.locator(f"a.tile__frame[href='/images/{image_id}/'] img")).to_have_attribute(
        "alt", "Boats moored in a small harbour"
    )
    shoot(anonymous, "06-gallery-after-approval")
    anonymous.context.close()

    mine = uploader_a.context.new_page()
    mine.goto("/my/")
    expect(mine.locator(f"#upload-{image_id} .badge")).to_have_text("Published")
    shoot(mine, "07-my-uploads-after-approval")
    page.close()
    mine.close()


def test_a_deletes_the_failed_one_after_confirming(uploader_a: Person, a_ids: dict[str, str]) -> None:
    page = uploader_a.context.new_page()
    page.goto(f"/my/{a_ids[FAILING.name]}/delete/")
    assert_accessible(page)
    page.get_by_role("button", name="Yes, delete it").click()
    page.wait_for_url("**/my/")
    expect(page.locator(".messages")).to_contain_text("Deleted")
    expect(page.locator(f"#upload-{a_ids[FAILING.name]}")).to_have_count(0)
    page.close()
