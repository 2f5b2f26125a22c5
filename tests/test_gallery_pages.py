"""The gallery and detail pages: <picture> from the API's documents, one DynamoDB Query a page, cursors, tags."""

from __future__ import annotations

import dataclasses
import re

import pytest
from test_api import ready_record, seed

from pipeline import keys, records
from pipeline.records import Status


@pytest.fixture
def store(site_aws):
    return site_aws.image_store()


@pytest.fixture
def dynamodb_calls(site_aws) -> list[str]:
    """The DynamoDB operations the app makes from the moment the fixture is requested."""
    calls: list[str] = []
    site_aws.dynamodb.meta.events.register("before-call.dynamodb.*", lambda model, **_: calls.append(model.name))
    return calls


def tiles(html: str) -> list[str]:
    """Image ids of the finished tiles, in page order."""
    return re.findall(r'<li class="tile">\s*<a class="tile__frame" href="/images/([a-z2-7]{26})/"', html)


def link(html: str, rel: str) -> str | None:
    match = re.search(rf'rel="{rel}" href="([^"]+)"', html)
    return match.group(1).replace("&amp;", "&") if match else None


# -- gallery -------------------------------------------------------------------------------------------------


def test_gallery_draws_each_image_as_a_picture_with_webp_first_and_a_sized_jpeg_fallback(client, store, site_aws):
    record = store.create(ready_record(1, tags=("beach",)))
    cdn = site_aws.settings.cdn_url
    version = record.sha256[:12]

    html = client.get("/").content.decode()

    assert f'<source type="image/webp" srcset="{cdn}/thumbs/{record.id}.webp?v={version} 400w, ' in html
    assert (
        f'<img src="{cdn}/thumbs/{record.id}.jpg?v={version}" srcset="{cdn}/thumbs/{record.id}.jpg?v={version} 400w'
        in html
    )
    assert 'width="400" height="300" alt="A test photo, number 1"' in html
    assert 'style="--placeholder: #6a7b8c"' in html
    assert 'data-blurhash="LEHV6nWB2yk8pyo0adR*.7kCMdnj"' in html
    assert 'sizes="(max-width: 520px) 50vw, (max-width: 900px) 33vw, 300px"' in html


def test_the_first_row_loads_eagerly_and_the_rest_lazily(client, store):
    seed(store, 10)

    html = client.get("/").content.decode()

    loading = re.findall(r'loading="(eager|lazy)"', html)
    assert loading == ["eager"] * 4 + ["lazy"] * 6


def test_gallery_lists_newest_first_and_a_page_costs_one_query(client, store, dynamodb_calls):
    ids = seed(store, 30)
    dynamodb_calls.clear()

    html = client.get("/").content.decode()

    assert tiles(html) == ids[:24]
    assert dynamodb_calls == ["Query"]


def test_gallery_of_someone_with_uploads_in_flight_still_costs_one_query(
    client, store, dynamodb_calls, django_user_model
):
    client.force_login(django_user_model.objects.create_user("alice"))
    seed(store, 3)
    ticket = client.post(
        "/upload/policy/", {"name": "a.jpg", "size": 10, "type": "image/jpeg"}, content_type="application/json"
    ).json()
    client.get(ticket["done_url"])
    dynamodb_calls.clear()

    client.get("/")

    assert dynamodb_calls == ["Query"]


def test_older_and_newer_walk_the_pages_and_back(client, store):
    ids = seed(store, 53)

    first = client.get("/").content.decode()
    second = client.get(link(first, "next")).content.decode()
    third = client.get(link(second, "next")).content.decode()
    back_to_second = client.get(link(third, "prev")).content.decode()
    back_to_first = client.get(link(back_to_second, "prev")).content.decode()

    assert tiles(first) + tiles(second) + tiles(third) == ids
    assert link(first, "prev") is None
    assert link(third, "next") is None
    assert tiles(back_to_second) == tiles(second)
    assert tiles(back_to_first) == tiles(first)
    assert link(second, "prev") == "/"


def test_tag_links_filter_the_gallery_and_pages_keep_the_tag(client, store):
    beach = seed(store, 26, tags=("beach",))
    seed(store, 5, start=100, tags=("city",))

    html = client.get("/", {"tag": "Beach"}).content.decode()
    second = client.get(link(html, "next")).content.decode()

    assert tiles(html) + tiles(second) == beach
    assert '<a class="tag" href="/?tag=beach">beach</a>' in html
    assert "tag=beach" in link(html, "next")


def test_a_malformed_cursor_is_a_400_page(client, store):
    seed(store, 2)

    response = client.get("/", {"cursor": "not-a-cursor"})

    assert response.status_code == 400
    assert "cursor" in response.content.decode()


def test_a_cursor_of_another_tag_is_a_400_page(client, store):
    seed(store, 30, tags=("beach",))
    cursor_for_beach = link(client.get("/", {"tag": "beach"}).content.decode(), "next").split("cursor=")[1]

    response = client.get("/", {"cursor": cursor_for_beach.split("&")[0]})

    assert response.status_code == 400


def test_empty_gallery_invites_an_upload(client, store):
    html = client.get("/").content.decode()

    assert "No photos yet." in html
    assert 'href="/upload/"' in html


def test_own_upload_shows_as_a_processing_tile_until_it_is_listed(client, store, django_user_model):
    client.force_login(django_user_model.objects.create_user("alice"))
    ticket = client.post(
        "/upload/policy/", {"name": "a.jpg", "size": 10, "type": "image/jpeg"}, content_type="application/json"
    ).json()
    client.get(ticket["done_url"])

    while_processing = client.get("/").content.decode()
    store.update(ticket["id"], lambda current: ready_record(1, image_id=current.id))
    once_ready = client.get("/").content.decode()

    assert f'data-poll="/api/images/{ticket["id"]}"' in while_processing
    assert "tile--processing" in while_processing
    assert "tile--processing" not in once_ready
    assert tiles(once_ready) == [ticket["id"]]


def test_other_people_do_not_see_someone_elses_processing_tile(client, store, django_user_model):
    client.force_login(django_user_model.objects.create_user("alice"))
    ticket = client.post(
        "/upload/policy/", {"name": "a.jpg", "size": 10, "type": "image/jpeg"}, content_type="application/json"
    ).json()
    client.get(ticket["done_url"])
    client.logout()

    html = client.get("/").content.decode()

    assert ticket["id"] not in html


def test_header_offers_admin_only_to_staff(client, store, django_user_model):
    anonymous = client.get("/").content.decode()
    client.force_login(django_user_model.objects.create_user("alice"))
    person = client.get("/").content.decode()
    client.force_login(django_user_model.objects.create_user("sam", is_staff=True))
    staff = client.get("/").content.decode()

    assert 'href="/accounts/login/' in anonymous
    assert 'href="/admin/"' not in person
    assert "Log out" in person
    assert 'href="/admin/"' in staff


# -- detail --------------------------------------------------------------------------------------------------


def test_detail_page_shows_the_optimized_picture_and_the_facts(client, store, site_aws):
    record = store.create(ready_record(7, tags=("beach", "sunset")))
    cdn = site_aws.settings.cdn_url

    html = client.get(f"/images/{record.id}/").content.decode()

    assert f'<img src="{cdn}/optimized/{record.id}.jpg?v=' in html
    assert 'width="1920" height="1440"' in html
    assert f"{cdn}/optimized/{record.id}.webp?v={record.sha256[:12]} 1920w" in html
    assert 'loading="eager"' in html
    assert "<h1>Photo 7</h1>" in html
    assert "A test photo, number 7" in html
    assert '<a class="tag" href="/?tag=sunset">sunset</a>' in html
    assert "4000 \u00d7 3000 px" in html
    assert "JPEG" in html
    assert "1.9\xa0MB" in html
    assert "1 Nov 2026, 09:07" in html


def test_detail_page_offers_no_webp_when_the_jpeg_kept_as_uploaded_is_smaller(client, store, site_aws):
    record = ready_record(8)
    bigger_webp = tuple(
        dataclasses.replace(r, bytes=r.bytes * 2) if (r.name, r.format) == ("optimized", "webp") else r
        for r in record.renditions
    )
    kept = store.create(record.replace(renditions=bigger_webp))
    usual = store.create(ready_record(9))

    kept_html = client.get(f"/images/{kept.id}/").content.decode()
    usual_html = client.get(f"/images/{usual.id}/").content.decode()

    assert 'type="image/webp"' not in kept_html
    assert f'<img src="{site_aws.settings.cdn_url}/optimized/{kept.id}.jpg?v=' in kept_html
    assert 'type="image/webp"' in usual_html
    # The gallery tile compares the thumbnails, whose WebP is the smaller one here.
    assert client.get("/").content.decode().count('type="image/webp"') == 2


def test_detail_page_costs_one_read(client, store, dynamodb_calls):
    record = store.create(ready_record(1))
    dynamodb_calls.clear()

    client.get(f"/images/{record.id}/")

    assert dynamodb_calls == ["GetItem"]


def test_detail_of_an_image_still_processing_polls_until_ready(client, store):
    image_id = keys.new_image_id()
    store.create(records.new_record(image_id, keys.raw_key_for_upload(image_id, "a.jpg"), Status.PROCESSING))

    html = client.get(f"/images/{image_id}/").content.decode()

    assert "Processing…" in html
    assert f'data-poll="/api/images/{image_id}"' in html


def test_detail_of_a_failed_image_says_why(client, store):
    image_id = keys.new_image_id()
    failed = records.new_record(image_id, keys.raw_key_for_upload(image_id, "a.jpg"), Status.PROCESSING).with_status(
        Status.FAILED, reason="The file is not an image (it looks like text)."
    )
    store.create(failed)

    html = client.get(f"/images/{image_id}/").content.decode()

    assert "could not be processed" in html
    assert "The file is not an image (it looks like text)." in html


@pytest.mark.parametrize("image_id", [keys.new_image_id(), "not-an-id"])
def test_unknown_or_malformed_image_id_is_a_404_page(client, store, image_id):
    response = client.get(f"/images/{image_id}/")

    assert response.status_code == 404
    assert "Not found" in response.content.decode()


def test_hidden_image_is_a_404_page_and_not_in_the_gallery(client, store):
    record = store.create(ready_record(1, hidden=True))

    assert client.get(f"/images/{record.id}/").status_code == 404
    assert record.id not in client.get("/").content.decode()
