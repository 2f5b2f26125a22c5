"""Visitors never reach Django's database: an anonymous gallery, tag, detail, error or read-API request makes no SQL
query, so the database (users, sessions, upload quotas, login attempts) only has to serve staff and uploaders and
may sleep while nobody is logged in (docs/deploy.md, "Django's users and sessions")."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from tests.test_gallery_pages import ready_record

pytestmark = pytest.mark.django_db


@pytest.fixture
def store(site_aws):
    return site_aws.image_store()


@pytest.fixture
def visitor_paths(store) -> dict[str, int]:
    """Every page an anonymous visitor can ask for, and the status it answers with."""
    listed = store.create(ready_record(1, tags=("beach",))).id
    hidden = store.create(ready_record(2, hidden=True)).id
    return {
        "/": 200,
        "/?tag=beach": 200,
        "/?tag=nobody-uses-this": 200,
        f"/images/{listed}/": 200,
        f"/images/{hidden}/": 404,
        "/images/not-an-id/": 404,
        "/?cursor=forged": 400,
        "/api/images": 200,
        "/api/images?tag=beach&limit=12": 200,
        f"/api/images/{listed}": 200,
        f"/api/images/{hidden}": 404,
    }


def sql_of(client: Client, path: str, status: int) -> list[str]:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(path)
    assert response.status_code == status, path
    return [query["sql"] for query in queries.captured_queries]


def test_anonymous_pages_and_the_read_api_make_no_sql_query(client, visitor_paths):
    for path, status in visitor_paths.items():
        assert sql_of(client, path, status) == [], f"{path} queried Django's database for an anonymous visitor"


def test_a_visitor_who_has_a_csrf_cookie_makes_no_sql_query_either(client, visitor_paths):
    """The login page gave this visitor a CSRF cookie (it is in CloudFront's cache key); still no session, no user."""
    assert client.get("/accounts/login/").status_code == 200
    assert "csrftoken" in client.cookies
    for path, status in visitor_paths.items():
        assert sql_of(client, path, status) == [], f"{path} queried Django's database for a visitor with a CSRF cookie"


def test_a_logged_in_page_does_query_so_the_capture_sees_queries(visitor_paths, django_user_model):
    """The control: a person who is logged in needs the database (session and user), which the capture shows."""
    person = Client()
    person.force_login(django_user_model.objects.create_user("alice"))
    assert sql_of(person, "/", 200)
