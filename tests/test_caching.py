"""What Django tells shared caches (CloudFront, make run's front door): public pages for anonymous visitors,
`private, no-store` for anything that depends on who asks (gallery.caching)."""

from __future__ import annotations

import re
import time

import pytest
from django.test import Client

from gallery import pending, selectors
from pipeline import keys, records
from pipeline.records import Status
from tests.test_gallery_pages import ready_record

PUBLIC_PAGE = "public, max-age=60, stale-while-revalidate=60"
PRIVATE = "private, no-store"
CSRF_IN_PAGE = re.compile(r'csrfmiddlewaretoken|name="csrf-token"')


@pytest.fixture
def store(site_aws):
    return site_aws.image_store()


@pytest.fixture
def picture_id(store) -> str:
    return store.create(ready_record(1, tags=("beach",))).id


@pytest.fixture
def alice(django_user_model):
    return django_user_model.objects.create_user("alice")


@pytest.fixture
def bob(django_user_model):
    return django_user_model.objects.create_user("bob")


def as_user(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def public_pages(picture_id: str) -> list[str]:
    return ["/", "/?tag=beach", f"/images/{picture_id}/"]


def assert_shareable(response, path: str) -> None:
    """What an anonymous visitor got may be handed to every other anonymous visitor."""
    html = response.content.decode()
    assert response["Cache-Control"] == PUBLIC_PAGE, path
    assert not response.cookies, f"{path} sets {list(response.cookies)}"
    assert not CSRF_IN_PAGE.search(html), f"{path} carries a CSRF token"
    assert "Log out" not in html, path
    assert "Cookie" in response["Vary"], path  # the page reads the session (the header's login link)


# -- anonymous visitors: shared --------------------------------------------------------------------------------


def test_gallery_tag_and_detail_pages_are_public_for_a_minute_to_anonymous_visitors(client, picture_id):
    for path in public_pages(picture_id):
        response = client.get(path)
        assert response.status_code == 200, path
        assert_shareable(response, path)


def test_the_page_max_age_and_stale_while_revalidate_are_settings(client, picture_id, settings):
    settings.PAGE_MAX_AGE = 10
    settings.PAGE_STALE_WHILE_REVALIDATE = 300

    assert client.get("/")["Cache-Control"] == "public, max-age=10, stale-while-revalidate=300"


def test_not_found_and_bad_request_pages_are_public_too(client, store):
    hidden = store.create(ready_record(2, hidden=True)).id
    for path in (f"/images/{hidden}/", f"/images/{keys.new_image_id()}/", "/no/such/page/", "/?cursor=tampered"):
        response = client.get(path)
        assert response.status_code in (400, 404), path
        assert_shareable(response, path)


def test_server_errors_are_never_cached(site_aws, monkeypatch):
    def broken(**_: object) -> None:
        raise RuntimeError("DynamoDB is down")

    monkeypatch.setattr(selectors, "gallery_page", broken)
    response = Client(raise_request_exception=False).get("/")

    assert response.status_code == 500
    assert response["Cache-Control"] == PRIVATE


def test_read_api_keeps_the_lambdas_own_caching_headers_for_everyone(client, store, picture_id, alice):
    processing = keys.new_image_id()
    store.create(records.new_record(processing, keys.raw_key_for_upload(processing, "a.jpg"), Status.PROCESSING))
    expected = {
        "/api/images": "public, max-age=30",
        f"/api/images/{picture_id}": "public, max-age=120",
        f"/api/images/{processing}": "no-store",
        "/api/images/not-an-id": "no-store",
        "/api/nothing-here": "no-store",
    }
    # The API reads no session and no user: a logged-in caller gets the same shareable bytes.
    for visitor in (client, as_user(alice)):
        for path, cache_control in expected.items():
            response = visitor.get(path)
            assert response["Cache-Control"] == cache_control, path
            assert not response.cookies, path
            assert "Cookie" not in response.get("Vary", ""), path


# -- anything personal: private ----------------------------------------------------------------------------------


def test_every_page_a_logged_in_person_sees_is_private(picture_id, alice):
    visitor = as_user(alice)
    for path in [*public_pages(picture_id), "/upload/", "/accounts/login/", "/no/such/page/"]:
        response = visitor.get(path)
        assert response["Cache-Control"] == PRIVATE, path


def test_staff_pages_in_the_admin_are_private(picture_id, django_user_model):
    visitor = as_user(django_user_model.objects.create_superuser("root", "root@example.com"))
    for path in ("/admin/", "/admin/gallery/image/", f"/admin/gallery/image/{picture_id}/change/"):
        response = visitor.get(path)
        assert response.status_code == 200, path
        assert response["Cache-Control"] == PRIVATE, path


def test_pages_with_a_form_are_private_even_for_anonymous_visitors(client):
    login = client.get("/accounts/login/")

    assert CSRF_IN_PAGE.search(login.content.decode())
    assert login["Cache-Control"] == PRIVATE
    assert "csrftoken" in login.cookies


def test_redirects_to_the_login_page_are_private(client):
    response = client.get("/upload/")

    assert response.status_code == 302
    assert response["Cache-Control"] == PRIVATE


def test_the_gallery_with_someones_uploads_in_flight_is_private(client, store, alice):
    visitor = as_user(alice)
    in_flight = keys.new_image_id()
    session = visitor.session
    session[pending.SESSION_KEY] = {in_flight: int(time.time())}
    session.save()

    mine = visitor.get("/")

    assert "tile--processing" in mine.content.decode()
    assert mine["Cache-Control"] == PRIVATE
    assert in_flight not in client.get("/").content.decode()


def test_a_stale_session_cookie_gets_a_private_page(client, picture_id, db):
    client.cookies["sessionid"] = "expired-or-forged"

    response = client.get("/")

    assert response["Cache-Control"] == PRIVATE
    assert "Log out" not in response.content.decode()


def test_no_page_leaks_from_one_person_to_another(client, picture_id, alice, bob):
    """A logs in and looks around; then anonymous and B look at the same pages: every answer to a logged-in person
    is private, every anonymous answer is public and holds nothing of A's (name, CSRF token, cookie)."""
    paths = [*public_pages(picture_id), "/upload/"]
    as_alice, as_bob = as_user(alice), as_user(bob)
    for path in paths:
        for name, visitor in (("alice", as_alice), ("bob", as_bob)):
            response = visitor.get(path)
            assert response["Cache-Control"] == PRIVATE, (name, path)
            if response.status_code == 200:
                assert f"Log out {name}" in response.content.decode(), (name, path)
        anonymous = client.get(path)
        if path == "/upload/":
            assert (anonymous.status_code, anonymous["Cache-Control"]) == (302, PRIVATE)
            continue
        assert_shareable(anonymous, path)
        assert "alice" not in anonymous.content.decode(), path
