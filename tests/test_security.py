"""Login throttling (django-axes), password validators and the Content-Security-Policy (review finding L3)."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import pytest
from test_admin import failed
from test_api import ready_record, seed
from test_settings import PRODUCTION_ENV, load_settings
from test_upload import ask_policy

PASSWORD = "a-long-and-uncommon-passphrase"
HERE = "http://testserver"


@pytest.fixture
def bob(django_user_model):
    return django_user_model.objects.create_user("bob", password=PASSWORD)


def log_in(client, username: str, password: str, *, address: str = "10.0.0.1", path: str = "/accounts/login/"):
    return client.post(path, {"username": username, "password": password}, REMOTE_ADDR=address)


# -- login throttling ---------------------------------------------------------------------------------------------


def test_five_wrong_passwords_lock_that_user_name_at_that_address_for_15_minutes(client, bob):
    for _ in range(4):
        assert log_in(client, "bob", "wrong").status_code == 200  # the form again, with its error
    assert log_in(client, "bob", "wrong").status_code == 429  # the fifth failure locks

    locked = log_in(client, "bob", PASSWORD)

    assert locked.status_code == 429
    assert "_auth_user_id" not in client.session
    page = locked.content.decode()
    assert "Too many login attempts" in page
    assert "failed 5 times in a row for this user name from this address" in page
    assert "blocked for 15 minutes" in page


def test_the_lockout_covers_the_admin_login_too(client, bob):
    for _ in range(5):
        log_in(client, "bob", "wrong", path="/admin/login/")

    assert log_in(client, "bob", PASSWORD, path="/admin/login/").status_code == 429
    assert log_in(client, "bob", PASSWORD).status_code == 429


def test_a_lockout_blocks_neither_other_addresses_nor_other_user_names(client, bob, django_user_model):
    django_user_model.objects.create_user("carol", password=PASSWORD)
    for _ in range(5):
        log_in(client, "bob", "wrong", address="10.0.0.1")

    assert log_in(client, "bob", PASSWORD, address="10.0.0.2").status_code == 302
    client.post("/accounts/logout/")
    assert log_in(client, "carol", PASSWORD, address="10.0.0.1").status_code == 302


def test_a_successful_login_resets_the_count(client, bob):
    for _ in range(4):
        log_in(client, "bob", "wrong")
    assert log_in(client, "bob", PASSWORD).status_code == 302
    client.post("/accounts/logout/")
    for _ in range(4):
        log_in(client, "bob", "wrong")

    assert log_in(client, "bob", PASSWORD).status_code == 302


# -- password validators ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("password", "complaint"),
    [
        ("x1", "too short"),
        ("password123", "too common"),
        ("83749261538", "entirely numeric"),
        ("rootroot@example.com", "too similar"),
    ],
)
def test_the_admin_refuses_weak_passwords(client, django_user_model, password, complaint):
    root = django_user_model.objects.create_superuser("root", "rootroot@example.com")
    client.force_login(root)

    answer = client.post(
        f"/admin/auth/user/{root.pk}/password/",
        {"password1": password, "password2": password, "usable_password": "true"},
    )

    assert answer.status_code == 200  # the form again, not a redirect
    assert complaint in answer.content.decode()


# -- Content-Security-Policy --------------------------------------------------------------------------------------


def policy(response) -> dict[str, list[str]]:
    header = response["Content-Security-Policy"]
    directives = {}
    for part in header.split(";"):
        name, *values = part.split()
        directives[name] = values
    return directives


class LoadedUrls(HTMLParser):
    """What a page makes the browser fetch or submit to, by the directive that governs it."""

    def __init__(self) -> None:
        super().__init__()
        self.by_directive: dict[str, list[str]] = {"img-src": [], "script-src": [], "style-src": [], "form-action": []}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {name: value or "" for name, value in attrs}
        if tag == "img" and "src" in found:
            self.by_directive["img-src"].append(found["src"])
        if tag in {"img", "source"} and found.get("srcset"):
            self.by_directive["img-src"] += [part.split()[0] for part in found["srcset"].split(",") if part.strip()]
        if tag == "script" and "src" in found:
            self.by_directive["script-src"].append(found["src"])
        if tag == "link" and found.get("rel") == "stylesheet":
            self.by_directive["style-src"].append(found["href"])
        if tag == "link" and found.get("rel") == "icon":
            self.by_directive["img-src"].append(found["href"])
        if tag == "form":
            self.by_directive["form-action"].append(found.get("action") or "")


def loaded_urls(html: str) -> dict[str, list[str]]:
    reader = LoadedUrls()
    reader.feed(html)
    return reader.by_directive


def allows(sources: list[str], url: str, page_url: str = HERE + "/") -> bool:
    """Whether a CSP source list admits ``url`` (the subset of CSP matching these pages need)."""
    absolute = urljoin(page_url, url)
    parts = urlsplit(absolute)
    if parts.scheme in {"data", "blob"}:
        return f"{parts.scheme}:" in sources
    origin = f"{parts.scheme}://{parts.netloc}"
    return origin in sources or ("'self'" in sources and origin == HERE)


def assert_policy_admits_the_page(response) -> None:
    directives = policy(response)
    assert directives["default-src"] == ["'self'"]
    assert directives["frame-ancestors"] == ["'none'"]
    html = response.content.decode()
    # script-src has no 'unsafe-inline': no inline script or event handler may be needed (JSON data blocks run nothing)
    scripts = re.findall(r"<script\b[^>]*>", html)
    inline = [tag for tag in scripts if "src=" not in tag and "application/json" not in tag]
    assert inline == []
    assert not re.search(r"<[^>]+\son[a-z]+=", html)
    loaded = loaded_urls(html)
    for directive, urls in loaded.items():
        for url in urls:
            assert allows(directives[directive], url), f"{directive} {directives[directive]} blocks {url}"


@pytest.fixture
def store(site_aws):
    return site_aws.image_store()


def test_every_gallery_page_admits_what_it_loads_and_nothing_is_framed(client, store, site_aws, django_user_model):
    ids = seed(store, 3)
    client.force_login(django_user_model.objects.create_user("alice"))

    for path in ["/", f"/images/{ids[0]}/", "/upload/", "/no-such-page/"]:
        response = client.get(path)
        assert_policy_admits_the_page(response)
    assert_policy_admits_the_page(client.post("/upload/"))  # the prepared no-JS form, posting to S3

    gallery = loaded_urls(client.get("/").content.decode())
    assert any(url.startswith(site_aws.settings.cdn_url) for url in gallery["img-src"])  # renditions: the CDN


def test_the_login_and_admin_pages_admit_what_they_load(client, store, site_aws, django_user_model):
    seed(store, 2)
    broken = failed(site_aws)
    assert_policy_admits_the_page(client.get("/accounts/login/"))
    client.force_login(django_user_model.objects.create_superuser("root", "root@example.com"))

    for path in ["/admin/", "/admin/gallery/image/", f"/admin/gallery/image/{broken.id}/change/"]:
        assert_policy_admits_the_page(client.get(path))


def test_the_upload_page_may_post_files_to_the_buckets_s3_endpoint(client, store, django_user_model):
    client.force_login(django_user_model.objects.create_user("alice"))
    page = client.post("/upload/")  # "Prepare an upload": the form that posts to S3
    directives = policy(page)
    (form_action,) = loaded_urls(page.content.decode())["form-action"][-1:]  # the upload form (after the nav's)

    ticket = ask_policy(client, name="a.jpg", size=10, type="image/jpeg").json()

    assert urlsplit(form_action).scheme == "https"  # the no-JS form posts to S3 itself
    assert allows(directives["form-action"], form_action)
    assert allows(directives["connect-src"], ticket["url"])  # upload.js's XMLHttpRequest
    for same_site in (ticket["status_url"], ticket["done_url"], "/upload/policy/"):
        assert allows(directives["connect-src"], same_site)


def test_tiles_inline_placeholder_styles_and_blurhash_images_are_allowed(client, store):
    store.create(ready_record(1))
    page = client.get("/")
    directives = policy(page)

    assert re.search(r'style="--placeholder: ', page.content.decode())
    assert "'unsafe-inline'" in directives["style-src"]
    assert {"data:", "blob:"} <= set(directives["img-src"])
    assert "'unsafe-inline'" not in directives["script-src"]


def csp_of(site: dict) -> dict[str, list[str]]:
    return {name: list(values) for name, values in site["CONTENT_SECURITY_POLICY"]["DIRECTIVES"].items()}


def test_in_production_static_files_and_images_come_from_the_cdn_and_uploads_go_to_s3(monkeypatch):
    directives = csp_of(load_settings(monkeypatch, PRODUCTION_ENV))

    s3 = ["https://photos-prod-images.s3.amazonaws.com", "https://photos-prod-images.s3.eu-west-1.amazonaws.com"]
    # S3 too: an uploader's own unpublished thumbnails on /my/ are presigned GETs.
    assert directives["img-src"] == ["'self'", "https://cdn.example.com", *s3, "data:", "blob:"]
    assert directives["script-src"] == ["'self'", "https://cdn.example.com"]
    assert directives["style-src"] == ["'self'", "https://cdn.example.com", "'unsafe-inline'"]
    assert directives["connect-src"] == ["'self'", *s3]
    assert directives["form-action"] == ["'self'", *s3]
    assert directives["frame-ancestors"] == ["'none'"]


def test_a_bucket_with_dots_is_reached_path_style(monkeypatch):
    directives = csp_of(load_settings(monkeypatch, {**PRODUCTION_ENV, "IMAGE_BUCKET": "photos.example.com"}))

    assert directives["connect-src"] == ["'self'", "https://s3.eu-west-1.amazonaws.com"]


def test_locally_uploads_go_to_the_emulator_and_static_files_come_from_the_site(monkeypatch):
    env = {"AWS_ENDPOINT_URL": "http://127.0.0.1:4566", "CDN_URL": "http://127.0.0.1:8001/"}
    directives = csp_of(load_settings(monkeypatch, env))

    assert directives["connect-src"] == ["'self'", "http://127.0.0.1:4566"]
    assert directives["form-action"] == ["'self'", "http://127.0.0.1:4566"]
    assert directives["img-src"] == ["'self'", "http://127.0.0.1:8001", "http://127.0.0.1:4566", "data:", "blob:"]
    assert directives["script-src"] == ["'self'"]
