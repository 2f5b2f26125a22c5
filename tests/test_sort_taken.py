"""``?sort=taken``: the API (Lambda and Django) and the gallery list by the date the photo was taken, newest first,
undated photos last; one Query a page on ListedByTaken, cursors bound to their order."""

from __future__ import annotations

import re

import pytest
from test_api import get, ready_record

from lambdas.image_api import handler as image_api
from pipeline import api
from pipeline.photo import Camera
from pipeline.store import ImageStore

# (n: upload order, taken_at). Newest taken first, worked out by hand (UTC where an offset was written, else the
# camera's local time as written):
#   n=4  2023-01-01T00:30:00+01:00  -> 2022-12-31T23:30 UTC
#   n=1  2022-12-31T23:45:00        -> local time as written, 23:45 (sorts above n=4's 23:30 UTC)
#   n=0  2021-06-05T14:03:22+02:00  -> 12:03:22 UTC
#   n=3  2021-06-05T13:00:00        -> 13:00 (above n=0)
#   n=2, n=5  undated                -> last, newest upload first: 5 then 2
PHOTOS: tuple[tuple[int, str | None], ...] = (
    (0, "2021-06-05T14:03:22+02:00"),
    (1, "2022-12-31T23:45:00"),
    (2, None),
    (3, "2021-06-05T13:00:00"),
    (4, "2023-01-01T00:30:00+01:00"),
    (5, None),
)
TAKEN_ORDER = (1, 4, 3, 0, 5, 2)


def seed_taken(store: ImageStore, *, tags: tuple[str, ...] = ()) -> dict[int, str]:
    """The PHOTOS as ready images; returns n -> id."""
    ids = {}
    for n, taken_at in PHOTOS:
        record = ready_record(n, tags=tags).replace(taken_at=taken_at, camera=Camera(make="Canon", model=f"M{n}"))
        ids[n] = store.create(record).id
    return ids


def walk(query: dict[str, str]) -> list[list[str]]:
    """The ids of every page of a listing through the Lambda, following ``next`` to the end."""
    pages, cursor = [], None
    while True:
        answer = get("/images", query={**query, **({"cursor": cursor} if cursor else {})})
        assert answer.status == 200, answer.text
        pages.append([item["id"] for item in answer.json["items"]])
        cursor = answer.json["next"]
        if cursor is None:
            return pages


@pytest.fixture
def store(aws, monkeypatch):
    monkeypatch.setattr(image_api, "aws", aws)
    return aws.image_store()


@pytest.fixture
def dynamodb_calls(aws) -> list[str]:
    calls: list[str] = []
    aws.dynamodb.meta.events.register("before-call.dynamodb.*", lambda model, **_: calls.append(model.name))
    return calls


# -- the API -------------------------------------------------------------------------------------------------


def test_sort_taken_lists_newest_taken_first_and_undated_photos_last(store):
    ids = seed_taken(store)

    answer = get("/images", query={"sort": "taken"})

    assert [item["id"] for item in answer.json["items"]] == [ids[n] for n in TAKEN_ORDER]
    assert [item["taken_at"] for item in answer.json["items"]][-2:] == [None, None]


def test_sort_uploaded_is_the_default_and_unchanged(store):
    ids = seed_taken(store)

    default = get("/images").json["items"]
    uploaded = get("/images", query={"sort": "uploaded"}).json["items"]

    assert [item["id"] for item in default] == [ids[n] for n in (5, 4, 3, 2, 1, 0)]
    assert uploaded == default


def test_sort_taken_pages_cleanly_with_one_query_a_page(store, dynamodb_calls):
    ids = seed_taken(store)
    dynamodb_calls.clear()

    pages = walk({"sort": "taken", "limit": "4"})
    small_pages = walk({"sort": "taken", "limit": "1"})

    assert pages == [[ids[n] for n in TAKEN_ORDER[:4]], [ids[n] for n in TAKEN_ORDER[4:]]]
    assert [page[0] for page in small_pages] == [ids[n] for n in TAKEN_ORDER]
    assert dynamodb_calls == ["Query"] * (len(pages) + len(small_pages))


def test_a_cursor_of_one_order_cannot_page_the_other(store):
    seed_taken(store)
    by_upload = get("/images", query={"limit": "2"}).json["next"]
    by_taken = get("/images", query={"limit": "2", "sort": "taken"}).json["next"]

    upload_cursor_on_taken = get("/images", query={"limit": "2", "sort": "taken", "cursor": by_upload})
    taken_cursor_on_upload = get("/images", query={"limit": "2", "cursor": by_taken})

    for refused in (upload_cursor_on_taken, taken_cursor_on_upload):
        assert refused.status == 400
        assert refused.json["error"]["code"] == "invalid_cursor"
        assert "another tag or sort" in refused.json["error"]["message"]


def test_an_unknown_sort_is_a_json_400(store):
    for value in ("newest", "TAKEN", ""):
        answer = get("/images", query={"sort": value})

        assert answer.status == 400, value
        assert answer.headers["Content-Type"] == "application/json"
        assert answer.json["error"]["code"] == "invalid_sort"
        assert "uploaded or taken" in answer.json["error"]["message"]


def test_a_tag_sorted_by_date_taken_lists_only_that_tag_in_taken_order(store):
    beach = seed_taken(store, tags=("beach",))
    seed_taken(store)  # the same dates, untagged

    pages = walk({"sort": "taken", "tag": "Beach", "limit": "4"})

    assert [image_id for page in pages for image_id in page] == [beach[n] for n in TAKEN_ORDER]


def test_an_image_document_shows_taken_at_and_the_known_camera_values_only(store):
    record = ready_record(1).replace(
        taken_at="2021-06-05T14:03:22+02:00",
        camera=Camera(make="Apple", model="iPhone 13 Pro Max", f_number="1.5", exposure_time="1/60", iso=250),
    )
    image_id = store.create(record).id
    undated = store.create(ready_record(2)).id

    document = get(f"/images/{image_id}").json
    bare = get(f"/images/{undated}").json

    assert document["taken_at"] == "2021-06-05T14:03:22+02:00"
    assert document["camera"] == {
        "make": "Apple",
        "model": "iPhone 13 Pro Max",
        "f_number": "1.5",
        "exposure_time": "1/60",
        "iso": 250,
    }
    assert (bare["taken_at"], bare["camera"]) == (None, None)


# -- Django: the API twin and the gallery ----------------------------------------------------------------------


@pytest.fixture
def site_store(site_aws, monkeypatch):
    monkeypatch.setattr(image_api, "aws", site_aws)
    monkeypatch.setattr(api, "clock", lambda: 1_800_000_100.0)  # both sides sign the same cursors
    return site_aws.image_store()


def test_django_api_sorts_by_date_taken_with_the_lambdas_bytes(client, site_store):
    seed_taken(site_store)
    cursor = get("/images", query={"sort": "taken", "limit": "2"}).json["next"]

    for query in ({"sort": "taken"}, {"sort": "taken", "limit": "2", "cursor": cursor}, {"sort": "nope"}):
        from_lambda = get("/images", query=query)
        from_django = client.get("/api/images", query)

        assert from_django.status_code == from_lambda.status, query
        assert from_django.content == from_lambda.text.encode(), query
    assert client.get("/api/images", {"sort": "nope"}).json()["error"]["code"] == "invalid_sort"


def tiles(html: str) -> list[str]:
    return re.findall(r'<li class="tile">\s*<a class="tile__frame" href="/images/([a-z2-7]{26})/"', html)


def link(html: str, rel: str) -> str | None:
    match = re.search(rf'rel="{rel}" href="([^"]+)"', html)
    return match.group(1).replace("&amp;", "&") if match else None


def switch(html: str) -> dict[str, tuple[str, bool]]:
    """The order switch: label -> (href, is the current one)."""
    nav = re.search(r'<nav class="sort-switch" aria-label="Order">(.*?)</nav>', html, re.S)
    assert nav, "no order switch"
    found = re.findall(r'<a href="([^"]*)"( aria-current="true")?>([^<]+)</a>', nav.group(1))
    return {label: (href.replace("&amp;", "&"), bool(current)) for href, current, label in found}


def test_gallery_sorted_by_date_taken_pages_in_that_order_with_one_query(client, site_store, site_aws):
    starts = (24, 18, 12, 6, 0)  # 30 images: two pages of the gallery's 24
    ids = {}
    for start in sorted(starts):
        for n, taken_at in PHOTOS:
            ids[start + n] = site_store.create(ready_record(start + n).replace(taken_at=taken_at)).id
    calls: list[str] = []
    site_aws.dynamodb.meta.events.register("before-call.dynamodb.*", lambda model, **_: calls.append(model.name))

    first = client.get("/", {"sort": "taken"}).content.decode()
    second = client.get(link(first, "next")).content.decode()
    back = client.get(link(second, "prev")).content.decode()

    # The same date taken: the newer upload first; undated: by upload only, newest first.
    dated = [ids[start + n] for n in TAKEN_ORDER[:4] for start in starts]
    expected = dated + [ids[start + n] for start in starts for n in (5, 2)]
    assert tiles(first) + tiles(second) == expected
    assert tiles(back) == tiles(first)
    assert "sort=taken" in link(first, "next")
    assert calls == ["Query", "Query", "Query"]
    assert "Newest taken first, undated last" in first


def test_the_order_switch_marks_the_current_order_and_keeps_the_tag(client, site_store):
    seed_taken(site_store, tags=("beach",))

    by_upload = switch(client.get("/", {"tag": "beach"}).content.decode())
    by_taken = switch(client.get("/", {"tag": "beach", "sort": "taken"}).content.decode())

    assert by_upload == {"Newest uploads": ("/?tag=beach", True), "Date taken": ("/?tag=beach&sort=taken", False)}
    assert by_taken == {"Newest uploads": ("/?tag=beach", False), "Date taken": ("/?tag=beach&sort=taken", True)}


def test_the_tag_filter_keeps_the_date_taken_order(client, site_store):
    html = client.get("/", {"sort": "taken"}).content.decode()

    form = re.search(r'<form class="tag-filter".*?</form>', html, re.S).group(0)
    assert '<input type="hidden" name="sort" value="taken">' in form


def test_an_unknown_sort_is_the_gallerys_400_page(client, site_store):
    seed_taken(site_store)

    response = client.get("/", {"sort": "oldest"})

    assert response.status_code == 400
    assert "sort must be uploaded or taken" in response.content.decode()


def test_a_cursor_of_the_upload_order_is_a_400_page_in_the_taken_order(client, site_store):
    for _ in range(5):  # 30 images: more than a page
        seed_taken(site_store)
    cursor = link(client.get("/").content.decode(), "next").split("cursor=")[1].split("&")[0]

    response = client.get("/", {"sort": "taken", "cursor": cursor})

    assert response.status_code == 400
