"""The admin's Images: listed from DynamoDB with the admin's look, edited, deleted and reprocessed under permissions."""

from __future__ import annotations

import re

import pytest
from botocore.stub import ANY, Stubber
from conftest import PHOTOS
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Permission
from django.contrib.messages import get_messages
from django.db import connection
from django.test.utils import CaptureQueriesContext
from test_api import ready_record, seed
from test_upload import process
from test_visibility import all_keys, invalidation, legacy_renditions, listed_ids, stored_image, write_files

from gallery import admin as gallery_admin
from gallery import selectors
from pipeline import keys, records, trash
from pipeline.records import Status
from pipeline.store import Aws

CHANGELIST = "/admin/gallery/image/"


def change_url(image_id: str) -> str:
    return f"/admin/gallery/image/{image_id}/change/"


def delete_url(image_id: str) -> str:
    return f"/admin/gallery/image/{image_id}/delete/"


def processed(aws: Aws, photo: str = "Canon_40D.jpg", owner: str = "alice") -> records.ImageRecord:
    """A real photo through the real processor: raw object, renditions in public/, a ready record."""
    image_id = keys.new_image_id()
    key = keys.raw_key_for_upload(image_id, photo)
    aws.image_store().create(records.new_record(image_id, key, Status.UPLOADING, owner=owner))
    aws.object_store().write(key, (PHOTOS / photo).read_bytes(), "image/jpeg")
    process(aws, key)
    return aws.image_store().get(image_id)


def failed(aws: Aws, reason: str = "The file is not an image (it looks like text).") -> records.ImageRecord:
    image_id = keys.new_image_id()
    record = records.new_record(image_id, keys.raw_key_for_upload(image_id, "notes.jpg"), Status.PROCESSING)
    return aws.image_store().create(record.with_status(Status.FAILED, reason=reason))


def rows(html: str) -> list[str]:
    return re.findall(r'name="_selected_action" value="([a-z2-7]{26})"', html)


def said(response) -> list[str]:
    """The messages a POST left for the next page (read without following the redirect)."""
    return [str(message) for message in get_messages(response.wsgi_request)]


@pytest.fixture
def store(site_aws):
    return site_aws.image_store()


@pytest.fixture
def staff(django_user_model):
    """Make a staff user holding exactly the named gallery permissions."""

    def make(*codenames: str):
        user = django_user_model.objects.create_user(f"staff-{'-'.join(codenames) or 'none'}", is_staff=True)
        user.user_permissions.set(Permission.objects.filter(content_type__app_label="gallery", codename__in=codenames))
        return user

    return make


@pytest.fixture
def root_client(client, django_user_model):
    client.force_login(django_user_model.objects.create_superuser("root", "root@example.com"))
    return client


def as_user(client, user):
    client.force_login(user)
    return client


# -- index and list --------------------------------------------------------------------------------------------


def test_images_appear_in_the_admin_index_next_to_users_and_groups(root_client, store):
    html = root_client.get("/admin/").content.decode()

    assert f'<a href="{CHANGELIST}">Images</a>' in html
    assert '<a href="/admin/auth/user/">Users</a>' in html
    assert '<a href="/admin/auth/group/">Groups</a>' in html
    assert "/admin/gallery/image/add/" not in html  # images arrive by upload only


def test_non_staff_are_sent_to_the_admin_login(client, store, django_user_model):
    client.force_login(django_user_model.objects.create_user("alice"))

    for url in (CHANGELIST, change_url(keys.new_image_id()), delete_url(keys.new_image_id())):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/admin/login/")


def test_staff_without_gallery_permissions_get_403(client, store, staff):
    as_user(client, staff())

    assert client.get(CHANGELIST).status_code == 403


def test_list_shows_every_image_newest_first_with_thumbnails(root_client, store, site_aws):
    ids = seed(store, 3)
    broken = failed(site_aws)

    html = root_client.get(CHANGELIST).content.decode()

    assert rows(html) == [broken.id, *ids]
    # The narrowest tile that fills the list's 80x60 box on a 2x screen, not the 1120 px one.
    assert re.search(rf'<img src="{site_aws.settings.cdn_url}/thumbs/{ids[0]}/[a-z2-7]{{10}}-256x192\.jpg"', html)
    assert "The file is not an image (it looks like text)." in html
    assert 'id="changelist"' in html
    assert 'id="result_list"' in html


def test_unused_upload_forms_stay_out_of_the_full_list_but_show_under_their_status(root_client, store, site_aws):
    ids = seed(store, 2)
    image_id = keys.new_image_id()
    store.create(records.new_record(image_id, keys.raw_key_for_upload(image_id, "upload"), Status.UPLOADING))

    assert rows(root_client.get(CHANGELIST).content.decode()) == ids
    assert rows(root_client.get(CHANGELIST, {"status": "uploading"}).content.decode()) == [image_id]


def test_list_page_is_one_query_and_no_sql_touches_the_image_model(root_client, store, site_aws):
    seed(store, 5)
    calls: list[str] = []
    site_aws.dynamodb.meta.events.register("before-call.dynamodb.*", lambda model, **_: calls.append(model.name))

    with CaptureQueriesContext(connection) as sql:
        root_client.get(CHANGELIST)
        root_client.get(CHANGELIST, {"status": "ready", "q": "Photo"})

    assert calls == ["Query", "Query"]
    assert not [q["sql"] for q in sql.captured_queries if "gallery_image" in q["sql"]]


def test_status_filter_lists_failed_images_together(root_client, store, site_aws):
    seed(store, 4)
    broken = [failed(site_aws).id, failed(site_aws).id]

    html = root_client.get(CHANGELIST, {"status": "failed"}).content.decode()

    assert rows(html) == broken[::-1]
    assert "Retry" in root_client.get(change_url(broken[0])).content.decode()


def test_search_finds_by_title_or_by_tag_ignoring_case(root_client, store):
    store.create(ready_record(1).replace(title="Sunset over the bay"))
    tagged = store.create(ready_record(2, tags=("harbour",)))
    store.create(ready_record(3))

    by_title = root_client.get(CHANGELIST, {"q": "sunSET"}).content.decode()
    by_tag = root_client.get(CHANGELIST, {"q": "Harbour"}).content.decode()

    assert len(rows(by_title)) == 1
    assert "Sunset over the bay" in by_title
    assert rows(by_tag) == [tagged.id]


def search_pages(root_client, query: str) -> list[list[str]]:
    """The rows of every page of a search, following "Older" to the end."""
    pages, url = [], CHANGELIST + "?q=" + query
    while url:
        html = root_client.get(url).content.decode()
        pages.append(rows(html))
        older = re.search(r'<a href="(\?[^"]*cursor=[^"]+)">Older', html)
        url = CHANGELIST + older.group(1).replace("&amp;", "&") if older else None
    return pages


def test_a_rare_search_fills_its_page_by_reading_on_and_pages_without_gaps(root_client, store, site_aws, monkeypatch):
    monkeypatch.setattr(selectors, "ADMIN_PAGE_SIZE", 2)
    monkeypatch.setattr(selectors, "ADMIN_SEARCH_READ_SIZE", 4)
    # 5 matches among 30 images, far apart: one read of 4 index items finds at most one of them.
    matches = {2, 3, 11, 20, 28}
    needles = [
        store.create(ready_record(n).replace(title=f"Needle {n}" if n in matches else f"Hay {n}")).id for n in range(30)
    ]
    expected = [image_id for n, image_id in enumerate(needles) if n in matches][::-1]
    calls: list[str] = []
    site_aws.dynamodb.meta.events.register("before-call.dynamodb.*", lambda model, **_: calls.append(model.name))

    pages = search_pages(root_client, "needle")

    assert pages == [expected[0:2], expected[2:4], expected[4:5]]
    assert set(calls) == {"Query"}
    assert len(calls) <= 3 * selectors.ADMIN_SEARCH_MAX_READS


def test_a_search_reads_at_most_a_bounded_part_of_the_index_per_page(root_client, store, site_aws, monkeypatch):
    monkeypatch.setattr(selectors, "ADMIN_SEARCH_READ_SIZE", 3)
    monkeypatch.setattr(selectors, "ADMIN_SEARCH_MAX_READS", 2)
    oldest = store.create(ready_record(0).replace(title="Needle")).id
    seed(store, 10, start=1)
    calls: list[str] = []
    site_aws.dynamodb.meta.events.register("before-call.dynamodb.*", lambda model, **_: calls.append(model.name))

    html = root_client.get(CHANGELIST, {"q": "needle"}).content.decode()

    # Six of the eleven items read, no match yet: an empty page that still leads on, after exactly two Queries.
    assert rows(html) == []
    assert "No image in this part of the list matches “needle”; older ones may" in html
    assert "Reads up to 6 images per page" in html
    assert calls == ["Query", "Query"]
    assert search_pages(root_client, "needle") == [[], [oldest]]


def test_list_pages_with_a_cursor_over_the_index(root_client, store, monkeypatch):
    monkeypatch.setattr(selectors, "ADMIN_PAGE_SIZE", 4)
    ids = seed(store, 10)

    seen, url = [], CHANGELIST
    while url:
        html = root_client.get(url).content.decode()
        seen += rows(html)
        older = re.search(r'<a href="(\?[^"]*cursor=[^"]+)">Older', html)
        url = CHANGELIST + older.group(1).replace("&amp;", "&") if older else None

    assert seen == ids


def test_a_tampered_admin_cursor_is_a_400(root_client, store):
    response = root_client.get(CHANGELIST, {"cursor": "eyJrIjp7fX0:tampered:signature"})

    assert response.status_code == 400


# -- change ----------------------------------------------------------------------------------------------------


def test_change_page_shows_processing_history_and_renditions(root_client, site_aws):
    record = processed(site_aws)

    html = root_client.get(change_url(record.id)).content.decode()

    history = re.findall(
        r'image-status image-status--(\w+)">', html.split("Processing history")[1].split("Renditions")[0]
    )
    assert history == ["ready", "processing", "uploading"]
    assert record.renditions
    for rendition in record.renditions:
        assert f"<code>{rendition.key}</code>" in html
    assert f"<code>{record.raw_key}</code>" in html
    preview = record.rendition("thumb", "jpeg", at_least=640)  # the 320 px preview on a 2x screen
    assert f'<img src="{site_aws.settings.cdn_url}/{keys.cdn_path(preview.key)}"' in html


def test_failed_image_page_shows_the_reason_in_its_history(root_client, site_aws):
    record = failed(site_aws, reason="The image is 30000x30000 pixels; the limit is 100 megapixels.")

    html = root_client.get(change_url(record.id)).content.decode()

    assert html.count("The image is 30000x30000 pixels; the limit is 100 megapixels.") >= 2


def test_editing_metadata_shows_at_once_in_the_gallery_and_the_api(root_client, store):
    record = store.create(ready_record(1, tags=("old",)))

    response = root_client.post(
        change_url(record.id),
        {"title": "Harbour at dusk", "alt_text": "Boats moored at dusk", "tags": "Harbour, Evening ,harbour"},
    )

    assert response.status_code == 302
    saved = store.get(record.id)
    assert (saved.title, saved.alt_text, saved.tags) == (
        "Harbour at dusk",
        "Boats moored at dusk",
        ("harbour", "evening"),
    )
    assert record.id in root_client.get("/", {"tag": "harbour"}).content.decode()
    assert record.id not in root_client.get("/", {"tag": "old"}).content.decode()
    assert root_client.get(f"/api/images/{record.id}").json()["title"] == "Harbour at dusk"


@pytest.mark.parametrize("settings_env", [{"CDN_DISTRIBUTION_ID": "E2EXAMPLE7TEST"}])
def test_editing_metadata_asks_cloudfront_to_forget_the_images_page_and_document(root_client, site_aws):
    record = stored_image(site_aws)
    with Stubber(site_aws.cloudfront) as cloudfront:
        cloudfront.add_response(
            "create_invalidation",
            {"Location": "https://cloudfront.amazonaws.com/x", "Invalidation": invalidation("I5")},
            {
                "DistributionId": "E2EXAMPLE7TEST",
                "InvalidationBatch": {
                    "Paths": {"Quantity": 2, "Items": sorted([f"/images/{record.id}/", f"/api/images/{record.id}"])},
                    "CallerReference": ANY,
                },
            },
        )
        root_client.post(change_url(record.id), {"title": "Harbour at dusk", "alt_text": "", "tags": ""})
        cloudfront.assert_no_pending_responses()

    assert site_aws.image_store().get(record.id).title == "Harbour at dusk"


@pytest.mark.parametrize("settings_env", [{"CDN_DISTRIBUTION_ID": "E2EXAMPLE7TEST"}])
def test_an_edit_is_saved_even_when_cloudfront_refuses_to_forget_the_old_page(root_client, site_aws):
    record = stored_image(site_aws)
    with Stubber(site_aws.cloudfront) as cloudfront:
        cloudfront.add_client_error("create_invalidation", "TooManyInvalidationsInProgress", "slow down")
        response = root_client.post(change_url(record.id), {"title": "Harbour at dusk", "alt_text": "", "tags": ""})

    assert response.status_code == 302
    assert site_aws.image_store().get(record.id).title == "Harbour at dusk"


def hide_form(record: records.ImageRecord, *, hidden: bool) -> dict[str, str]:
    return {"title": record.title, "alt_text": "", "tags": "", **({"hidden": "on"} if hidden else {})}


def test_hiding_an_image_removes_it_from_the_gallery_and_the_api(root_client, site_aws):
    record = stored_image(site_aws)

    root_client.post(change_url(record.id), hide_form(record, hidden=True))

    assert record.id not in root_client.get("/").content.decode()
    assert root_client.get(f"/api/images/{record.id}").status_code == 404
    assert record.id in root_client.get(CHANGELIST).content.decode()  # staff still see it


def test_hiding_in_the_admin_moves_every_file_off_public_and_says_so(root_client, site_aws):
    record = stored_image(site_aws)

    response = root_client.post(change_url(record.id), hide_form(record, hidden=True))

    saved = site_aws.image_store().get(record.id)
    assert saved.hidden
    assert all_keys(site_aws.object_store(), record.id) == {keys.hidden_key(r.key) for r in record.renditions}
    assert [r.key for r in saved.renditions] == [keys.hidden_key(r.key) for r in record.renditions]
    assert said(response) == [
        "Hid “Photo 1”: it left the gallery and the API, and its files moved from public/ to hidden/. "
        "The CDN no longer serves its files."
    ]
    page = root_client.get(change_url(record.id)).content.decode()
    assert "hidden: not on the CDN" in page
    assert 'href="None"' not in page
    # Staff still see the picture, through a presigned GET of its file under hidden/ (the CDN serves none).
    shown = re.search(r'<img src="([^"]+)"', page).group(1).replace("&amp;", "&")
    assert "X-Amz-Signature=" in shown
    shown_key = shown.split("?")[0].split(f"/{site_aws.settings.bucket}/", 1)[-1].split(".amazonaws.com/", 1)[-1]
    assert shown_key in {r.key for r in saved.renditions if r.name == "thumb"}
    assert shown_key.startswith("hidden/thumbs/")
    assert f"<code>{saved.renditions[0].key}</code>" in page


def test_unhiding_in_the_admin_puts_the_files_back_and_lists_the_image_again(root_client, site_aws):
    record = stored_image(site_aws, hidden=True)

    response = root_client.post(change_url(record.id), hide_form(record, hidden=False))

    assert all_keys(site_aws.object_store(), record.id) == {keys.public_key(r.key) for r in record.renditions}
    assert root_client.get(f"/api/images/{record.id}").status_code == 200
    assert said(response) == [
        "Showed “Photo 1” again: its files are back under public/. The gallery and the API list it now."
    ]


@pytest.mark.parametrize("settings_env", [{"CDN_DISTRIBUTION_ID": "E2EXAMPLE7TEST"}])
def test_hiding_in_the_admin_asks_cloudfront_to_forget_the_image(root_client, site_aws):
    record = stored_image(site_aws)
    with Stubber(site_aws.cloudfront) as cloudfront:
        cloudfront.add_response(
            "create_invalidation",
            {"Location": "https://cloudfront.amazonaws.com/x", "Invalidation": invalidation("I4")},
            {
                "DistributionId": "E2EXAMPLE7TEST",
                "InvalidationBatch": {
                    "Paths": {"Quantity": 4, "Items": sorted(keys.cdn_invalidation_paths(record.id))},
                    "CallerReference": ANY,
                },
            },
        )
        response = root_client.post(change_url(record.id), hide_form(record, hidden=True))
        cloudfront.assert_no_pending_responses()

    assert "CloudFront was told to forget its copies (that takes about a minute)." in said(response)[0]


def test_when_the_files_cannot_be_moved_the_image_stays_hidden_and_the_admin_says_to_save_again(root_client, site_aws):
    record = stored_image(site_aws)

    def refuse(**_):
        raise ConnectionError("S3 is unreachable")

    site_aws.s3.meta.events.register("before-call.s3.CopyObject", refuse)
    response = root_client.post(change_url(record.id), hide_form(record, hidden=True))

    assert response.status_code == 302
    assert site_aws.image_store().get(record.id).hidden
    assert root_client.get(f"/api/images/{record.id}").status_code == 404
    (message,) = said(response)
    assert "out of the gallery and the API, but its files were not all moved to hidden/" in message
    assert "S3 is unreachable" in message
    assert "Save again to finish" in message

    site_aws.s3.meta.events.unregister("before-call.s3.CopyObject", refuse)
    root_client.post(change_url(record.id), hide_form(record, hidden=True))  # saved again: the move finishes

    assert all_keys(site_aws.object_store(), record.id) == {keys.hidden_key(r.key) for r in record.renditions}


def test_too_many_tags_are_refused_with_a_message(root_client, store):
    record = store.create(ready_record(1))

    response = root_client.post(
        change_url(record.id), {"title": "x", "alt_text": "", "tags": ",".join(f"t{n}" for n in range(25))}
    )

    assert response.status_code == 200
    assert "At most 20 tags" in response.content.decode()
    assert store.get(record.id).tags == ()


def test_staff_who_may_only_view_see_the_form_disabled_and_cannot_save(client, store, staff):
    record = store.create(ready_record(1))
    as_user(client, staff("view_image"))

    page = client.get(change_url(record.id)).content.decode()
    response = client.post(change_url(record.id), {"title": "Mine now", "alt_text": "", "tags": ""})

    assert re.search(r'<input type="text" name="title"[^>]*disabled', page)
    assert response.status_code == 403
    assert store.get(record.id).title == "Photo 1"


def test_unknown_image_in_the_admin_is_404(root_client, store):
    assert root_client.get(change_url(keys.new_image_id())).status_code == 404


# -- the trash: delete, restore, delete permanently ------------------------------------------------------------


def purge_url(image_id: str) -> str:
    return f"/admin/gallery/image/{image_id}/purge/"


def described(site_aws, **changes) -> records.ImageRecord:
    """A ready image with its files, and what people gave it: title, alt text, tags, owner."""
    record = stored_image(site_aws)
    mine = {"title": "Harbour at dusk", "alt_text": "Boats at dusk", "tags": ("harbour", "evening"), "owner": "alice"}
    return site_aws.image_store().update(record.id, lambda current: current.replace(**{**mine, **changes}))


def trashed(client, site_aws, **changes) -> records.ImageRecord:
    record = described(site_aws, **changes)
    assert client.post(delete_url(record.id)).status_code == 302
    return site_aws.image_store().get(record.id, consistent=True)


def public_files(site_aws, image_id: str) -> set[str]:
    return {key for key in all_keys(site_aws.object_store(), image_id) if key.startswith(keys.PUBLIC_PREFIX)}


def test_delete_moves_the_image_to_the_trash_and_keeps_its_upload_and_what_people_gave_it(root_client, site_aws):
    record = described(site_aws)
    objects = site_aws.object_store()

    confirm = root_client.get(delete_url(record.id))
    response = root_client.post(delete_url(record.id))

    assert "Move this image to the trash?" in confirm.content.decode()
    assert "can restore it from the trash until" in confirm.content.decode()
    assert response.status_code == 302
    saved = site_aws.image_store().get(record.id, consistent=True)
    assert saved.status is Status.DELETED
    assert (saved.deleted_by, saved.status_before_delete) == ("root", Status.READY)
    assert saved.purge_after == trash.purge_date(saved.deleted_at, 30)
    assert (saved.title, saved.alt_text, saved.tags, saved.owner, saved.hidden) == (
        "Harbour at dusk",
        "Boats at dusk",
        ("harbour", "evening"),
        "alice",
        False,
    )
    assert objects.exists(record.raw_key)
    assert public_files(site_aws, record.id) == set()
    assert {r.key for r in saved.renditions} == {keys.hidden_key(r.key) for r in record.renditions}
    assert all(objects.exists(r.key) for r in saved.renditions)
    assert any("Moved “Harbour at dusk” to the trash" in message for message in said(response))
    assert LogEntry.objects.get(object_id=record.id).change_message == "Moved to the trash."


def test_a_trashed_image_is_listed_nowhere_and_its_pages_say_404(root_client, client, site_aws):
    record = trashed(root_client, site_aws)

    assert record.id not in client.get("/").content.decode()
    assert record.id not in client.get("/", {"tag": "harbour"}).content.decode()
    assert client.get("/api/images").json()["items"] == []
    assert client.get(f"/api/images/{record.id}").status_code == 404
    assert client.get(f"/images/{record.id}/").status_code == 404
    assert rows(root_client.get(CHANGELIST).content.decode()) == []  # not in "All" either: it is in the trash
    assert listed_ids(site_aws) == []


def test_the_trash_lists_deleted_images_with_when_each_will_be_purged(root_client, site_aws):
    kept = described(site_aws)
    record = trashed(root_client, site_aws)

    html = root_client.get(CHANGELIST, {"status": "deleted"}).content.decode()

    assert rows(html) == [record.id]
    assert '<a href="?status=deleted">Trash</a>' in html
    purge_after = f"{record.purge_after[:10]} {record.purge_after[11:16]} UTC"
    assert f'<strong class="field-purge-after">purged after {purge_after}</strong>' in html
    assert "by root" in html
    assert "Restore selected images from the trash" in html
    assert rows(root_client.get(CHANGELIST).content.decode()) == [kept.id]


def test_restore_brings_back_the_status_the_files_and_the_listing(root_client, client, site_aws):
    record = trashed(root_client, site_aws)

    response = root_client.post(
        CHANGELIST, {"action": "restore_selected", "_selected_action": [record.id], "next": CHANGELIST}
    )

    restored = site_aws.image_store().get(record.id, consistent=True)
    assert response.status_code == 302
    assert restored.status is Status.READY
    assert (restored.deleted_at, restored.deleted_by, restored.purge_after) == (None, None, None)
    assert all(not keys.is_hidden_key(r.key) for r in restored.renditions)
    assert public_files(site_aws, record.id) == {r.key for r in restored.renditions}
    assert client.get(f"/api/images/{record.id}").json()["title"] == "Harbour at dusk"
    assert record.id in client.get("/", {"tag": "harbour"}).content.decode()
    assert [entry.status for entry in restored.history][-2:] == [Status.DELETED, Status.READY]
    assert any(
        "Restored “Harbour at dusk” (ready). The gallery and the API list it again." in m for m in said(response)
    )


def test_a_trashed_image_page_offers_restore_and_says_when_it_goes(root_client, site_aws):
    record = trashed(root_client, site_aws)

    page = root_client.get(change_url(record.id)).content.decode()
    response = root_client.post(
        CHANGELIST, {"action": "restore_selected", "_selected_action": [record.id], "next": change_url(record.id)}
    )

    assert "In the trash" in page
    assert f"deleted for good after <strong>{record.purge_after[:10]}" in page
    assert 'value="Restore from the trash"' in page
    assert 'name="_save"' not in page  # nothing to edit while it is in the trash
    assert response["Location"] == change_url(record.id)
    assert site_aws.image_store().get(record.id).status is Status.READY


def test_a_hidden_image_restored_stays_hidden_and_off_the_cdn(root_client, site_aws):
    record = trashed(root_client, site_aws, hidden=True)

    root_client.post(CHANGELIST, {"action": "restore_selected", "_selected_action": [record.id]})

    restored = site_aws.image_store().get(record.id, consistent=True)
    assert (restored.status, restored.hidden) == (Status.READY, True)
    assert all(keys.is_hidden_key(r.key) for r in restored.renditions)
    assert public_files(site_aws, record.id) == set()
    assert root_client.get(f"/api/images/{record.id}").status_code == 404


def test_a_failed_image_restored_is_failed_again_with_its_reason(root_client, site_aws):
    broken = failed(site_aws, reason="The file is not an image (it looks like text).")
    root_client.post(delete_url(broken.id))

    root_client.post(CHANGELIST, {"action": "restore_selected", "_selected_action": [broken.id]})

    restored = site_aws.image_store().get(broken.id)
    assert (restored.status, restored.failure_reason) == (
        Status.FAILED,
        "The file is not an image (it looks like text).",
    )


def test_restoring_an_image_that_is_not_in_the_trash_says_so(root_client, site_aws):
    record = described(site_aws)

    response = root_client.post(CHANGELIST, {"action": "restore_selected", "_selected_action": [record.id]})

    assert any("is not in the trash (it is ready)" in message for message in said(response))
    assert site_aws.image_store().get(record.id).status is Status.READY


def test_editing_or_hiding_a_trashed_image_is_refused_with_a_message(root_client, site_aws):
    record = trashed(root_client, site_aws)

    response = root_client.post(
        change_url(record.id), {"title": "New title", "alt_text": "", "tags": "x", "hidden": "on"}
    )

    saved = site_aws.image_store().get(record.id)
    assert (saved.title, saved.tags, saved.hidden) == ("Harbour at dusk", ("harbour", "evening"), False)
    assert said(response)[-1] == "“Harbour at dusk” is in the trash: restore it before you edit, hide or show it."


def test_reprocessing_a_trashed_image_is_refused_with_a_message(root_client, site_aws):
    record = trashed(root_client, site_aws)

    response = root_client.post(CHANGELIST, {"action": "reprocess_selected", "_selected_action": [record.id]})

    head = site_aws.s3.head_object(Bucket=site_aws.settings.bucket, Key=record.raw_key)
    assert "touched-at" not in head["Metadata"]
    assert said(response)[-1] == f"{record.id} is in the trash: restore it first, then reprocess it."


@pytest.mark.parametrize("settings_env", [{"CDN_DISTRIBUTION_ID": "E2EXAMPLE7TEST"}])
def test_delete_asks_cloudfront_to_forget_the_image(root_client, site_aws):
    record = stored_image(site_aws)
    paths = sorted(keys.cdn_invalidation_paths(record.id))
    with Stubber(site_aws.cloudfront) as cloudfront:
        cloudfront.add_response(
            "create_invalidation",
            {"Location": "https://cloudfront.amazonaws.com/x", "Invalidation": invalidation("I3")},
            {
                "DistributionId": "E2EXAMPLE7TEST",
                "InvalidationBatch": {
                    "Paths": {"Quantity": len(paths), "Items": paths},
                    "CallerReference": ANY,
                },
            },
        )
        response = root_client.post(delete_url(record.id))
        cloudfront.assert_no_pending_responses()

    assert site_aws.image_store().get(record.id).status is Status.DELETED
    assert any("CloudFront was told to forget" in message for message in said(response))


@pytest.mark.parametrize("settings_env", [{"CDN_DISTRIBUTION_ID": "E2EXAMPLE7TEST"}])
def test_when_cloudfront_refuses_the_invalidation_deleting_again_finishes(root_client, site_aws):
    record = stored_image(site_aws)
    with Stubber(site_aws.cloudfront) as cloudfront:
        cloudfront.add_client_error("create_invalidation", "TooManyInvalidationsInProgress", "slow down")
        response = root_client.post(delete_url(record.id))
    with Stubber(site_aws.cloudfront) as cloudfront:
        cloudfront.add_response("create_invalidation", {"Location": "x", "Invalidation": invalidation("I4")}, None)
        again = root_client.post(delete_url(record.id))
        cloudfront.assert_no_pending_responses()

    assert site_aws.image_store().get(record.id).status is Status.DELETED
    assert any("delete it again to finish" in message and "slow down" in message for message in said(response))
    assert any("was already in the trash" in message for message in said(again))


def test_bulk_delete_asks_first_then_moves_the_selected_images_to_the_trash(root_client, store, site_aws):
    keep, *doomed = seed(store, 3)

    confirm = root_client.post(CHANGELIST, {"action": "delete_selected", "_selected_action": doomed})
    done = root_client.post(CHANGELIST, {"action": "delete_selected", "_selected_action": doomed, "post": "yes"})

    assert confirm.status_code == 200
    assert "Move these images to the trash?" in confirm.content.decode()
    assert all(image_id in confirm.content.decode() for image_id in doomed)
    assert done.status_code == 302
    assert [store.get(image_id).status for image_id in doomed] == [Status.DELETED, Status.DELETED]
    assert store.get(keep).status is Status.READY


def test_when_s3_refuses_the_move_the_image_is_in_the_trash_and_deleting_again_finishes(root_client, site_aws):
    record = stored_image(site_aws)

    def refuse(**_):
        raise ConnectionError("S3 is unreachable")

    site_aws.s3.meta.events.register("before-call.s3.DeleteObjects", refuse)
    response = root_client.post(delete_url(record.id), follow=True)
    site_aws.s3.meta.events.unregister("before-call.s3.DeleteObjects", refuse)
    stuck = public_files(site_aws, record.id)
    root_client.post(delete_url(record.id))

    assert "delete it again to finish" in response.content.decode()
    assert "S3 is unreachable" in response.content.decode()
    assert stuck == {r.key for r in record.renditions}  # still public, but listed nowhere (API 404)
    assert site_aws.image_store().get(record.id).status is Status.DELETED
    assert public_files(site_aws, record.id) == set()


def test_staff_without_delete_permission_cannot_trash_or_restore(client, store, staff, site_aws):
    record = store.create(ready_record(1))
    in_trash = store.create(ready_record(2).to_trash(by="root", at=records.now_iso(), purge_after="2099-01-01"))
    as_user(client, staff("view_image", "change_image", "reprocess_image"))

    single = client.post(delete_url(record.id))
    bulk = client.post(CHANGELIST, {"action": "delete_selected", "_selected_action": [record.id], "post": "yes"})
    restore = client.post(CHANGELIST, {"action": "restore_selected", "_selected_action": [in_trash.id]})
    page = client.get(change_url(record.id)).content.decode()
    trash_page = client.get(change_url(in_trash.id)).content.decode()

    assert (single.status_code, bulk.status_code, restore.status_code) == (403, 403, 403)
    assert store.get(record.id).status is Status.READY
    assert store.get(in_trash.id).status is Status.DELETED
    assert delete_url(record.id) not in page
    assert "Restore from the trash" not in trash_page


def test_delete_permanently_asks_then_removes_record_upload_and_every_rendition_at_once(root_client, site_aws):
    record = described(site_aws)
    objects = site_aws.object_store()
    write_files(objects, legacy_renditions(record.id))  # the flat layout of before, not yet reprocessed
    objects.write(keys.hidden_key(record.renditions[0].key), b"left by a crashed hide", "image/jpeg")

    confirm = root_client.get(purge_url(record.id))
    response = root_client.post(purge_url(record.id))

    assert "Delete this image permanently?" in confirm.content.decode()
    assert "This cannot be undone" in confirm.content.decode()
    assert response.status_code == 302
    assert response["Location"] == CHANGELIST
    assert site_aws.image_store().get(record.id) is None
    assert not objects.exists(record.raw_key)
    assert all_keys(objects, record.id) == set()
    assert root_client.get(f"/api/images/{record.id}").status_code == 404
    assert any("permanently: its record, its upload and every rendition are gone" in m for m in said(response))
    assert LogEntry.objects.get(object_id=record.id).is_deletion()


def test_delete_permanently_empties_the_trash_of_the_selected_images(root_client, site_aws):
    doomed = trashed(root_client, site_aws)
    kept = trashed(root_client, site_aws)
    form = {"action": "purge_selected", "_selected_action": [doomed.id], "next": CHANGELIST + "?status=deleted"}

    confirm = root_client.post(CHANGELIST, form)
    done = root_client.post(CHANGELIST, {**form, "post": "yes"})

    assert "Delete these images permanently?" in confirm.content.decode()
    assert done["Location"] == CHANGELIST + "?status=deleted"
    assert site_aws.image_store().get(doomed.id) is None
    assert all_keys(site_aws.object_store(), doomed.id) == set()
    assert not site_aws.object_store().exists(doomed.raw_key)
    assert rows(root_client.get(CHANGELIST, {"status": "deleted"}).content.decode()) == [kept.id]


def test_delete_permanently_needs_its_own_permission(client, site_aws, staff):
    record = described(site_aws)
    in_trash = described(site_aws)
    site_aws.image_store().update(
        in_trash.id, lambda current: current.to_trash(by="root", at=records.now_iso(), purge_after="2099-01-01")
    )
    as_user(client, staff("view_image", "change_image", "delete_image", "reprocess_image"))

    page = client.get(purge_url(record.id))
    single = client.post(purge_url(record.id))
    bulk = client.post(CHANGELIST, {"action": "purge_selected", "_selected_action": [in_trash.id], "post": "yes"})
    trash_list = client.get(CHANGELIST, {"status": "deleted"}).content.decode()

    assert (page.status_code, single.status_code, bulk.status_code) == (403, 403, 403)
    assert site_aws.image_store().get(record.id).status is Status.READY
    assert site_aws.image_store().get(in_trash.id).status is Status.DELETED
    assert site_aws.object_store().exists(record.raw_key)
    assert purge_url(record.id) not in client.get(change_url(record.id)).content.decode()
    assert "purge_selected" not in trash_list
    assert "restore_selected" in trash_list  # delete_image is enough to put back what it put in the trash


def test_the_purge_permission_alone_may_delete_permanently(client, site_aws, staff):
    record = described(site_aws)
    as_user(client, staff("view_image", "purge_image"))

    response = client.post(purge_url(record.id))

    assert response.status_code == 302
    assert site_aws.image_store().get(record.id) is None
    assert client.post(delete_url(described(site_aws).id)).status_code == 403  # but not the trash


# -- reprocess -------------------------------------------------------------------------------------------------


def test_reprocess_starts_a_new_processing_round_through_the_ordinary_s3_event(root_client, site_aws):
    record = processed(site_aws)
    before = site_aws.s3.head_object(Bucket=site_aws.settings.bucket, Key=record.raw_key)

    response = root_client.post(CHANGELIST, {"action": "reprocess_selected", "_selected_action": [record.id]})
    after = site_aws.s3.head_object(Bucket=site_aws.settings.bucket, Key=record.raw_key)
    process(site_aws, record.raw_key)  # what S3's ObjectCreated:Copy event makes the processor Lambda do

    assert response.status_code == 302
    assert "touched-at" in after["Metadata"]
    assert "touched-at" not in before["Metadata"]
    history = [entry.status for entry in site_aws.image_store().get(record.id).history]
    assert history == [Status.UPLOADING, Status.PROCESSING, Status.READY, Status.PROCESSING, Status.READY]


def test_retrying_a_failed_image_whose_upload_is_gone_says_so(root_client, site_aws):
    broken = failed(site_aws)

    response = root_client.post(
        CHANGELIST, {"action": "reprocess_selected", "_selected_action": [broken.id]}, follow=True
    )

    assert "the original upload is no longer in S3" in response.content.decode()


def test_staff_without_reprocess_permission_cannot_reprocess(client, store, staff):
    record = store.create(ready_record(1))
    as_user(client, staff("view_image", "change_image", "delete_image"))

    response = client.post(CHANGELIST, {"action": "reprocess_selected", "_selected_action": [record.id]})

    assert response.status_code == 403


def test_reprocess_every_image_matching_the_filter_asks_first_then_touches_them_in_batches(
    root_client, site_aws, monkeypatch
):
    monkeypatch.setattr(gallery_admin, "REPROCESS_BATCH", 2)
    monkeypatch.setattr(gallery_admin, "REPROCESS_RATE", 1000.0)
    broken = [stored_image(site_aws, n=n, status=Status.FAILED) for n in range(3)]
    ready = stored_image(site_aws, n=9)
    form = {"action": "reprocess_matching", "status": "failed", "q": "", "next": CHANGELIST + "?status=failed"}

    def raw_touched(record) -> bool:
        head = site_aws.s3.head_object(Bucket=site_aws.settings.bucket, Key=record.raw_key)
        return "touched-at" in head["Metadata"]

    confirm = root_client.post(CHANGELIST, form)
    assert confirm.status_code == 200
    assert "Every image with <strong>status failed</strong> goes back to the processor" in confirm.content.decode()
    assert not any(raw_touched(record) for record in [*broken, ready])

    first = root_client.post(CHANGELIST, {**form, "post": "yes"})
    page = first.content.decode()
    assert first.status_code == 200
    assert "So far 2 images (status failed) went back to the processor" in page
    cursor = re.search(r'name="cursor" value="([^"]+)"', page).group(1)
    assert sum(raw_touched(record) for record in broken) == 2

    done = root_client.post(CHANGELIST, {**form, "post": "yes", "cursor": cursor, "touched": "2"})

    assert done.status_code == 302
    assert done["Location"] == CHANGELIST + "?status=failed"
    assert all(raw_touched(record) for record in broken)
    assert not raw_touched(ready)
    assert said(done) == [
        "Reprocessing 3 images (status failed): the processor renders them again over the next minutes; "
        "reload to see the new status."
    ]


def test_reprocess_every_match_reports_originals_that_are_gone(root_client, site_aws, monkeypatch):
    monkeypatch.setattr(gallery_admin, "REPROCESS_RATE", 1000.0)
    gone = stored_image(site_aws, n=1)
    stored_image(site_aws, n=2)
    site_aws.s3.delete_object(Bucket=site_aws.settings.bucket, Key=gone.raw_key)

    done = root_client.post(CHANGELIST, {"action": "reprocess_matching", "post": "yes", "next": CHANGELIST})

    messages = said(done)
    assert f"1 original upload is no longer in S3, so nothing was started for {gone.id}." in messages
    assert any(m.startswith("Reprocessing 1 image (every status)") and "1 without an original" in m for m in messages)


def test_staff_without_reprocess_permission_cannot_reprocess_every_match(client, site_aws, staff):
    record = stored_image(site_aws)
    as_user(client, staff("view_image", "change_image", "delete_image"))

    response = client.post(CHANGELIST, {"action": "reprocess_matching", "post": "yes"})

    assert response.status_code == 403
    head = site_aws.s3.head_object(Bucket=site_aws.settings.bucket, Key=record.raw_key)
    assert "touched-at" not in head["Metadata"]
    assert "reprocess_matching" not in client.get(CHANGELIST).content.decode()


# -- L1: where an action sends staff back to --------------------------------------------------------------------

FOREIGN_NEXT = [
    "https://evil.example/phish",
    "//evil.example/phish",
    "/\\evil.example/phish",
    "javascript:alert(document.cookie)",
    " javascript:alert(1)",
    "http://testserver.evil.example/",
]


@pytest.mark.parametrize("next_url", FOREIGN_NEXT)
def test_an_action_never_redirects_off_the_site(client, staff, store, next_url):
    """The review's probe test_p2_admin_action_next_is_an_open_redirect (it was a 302 to evil.example)."""
    response = as_user(client, staff("view_image")).post(CHANGELIST, {"action": "", "next": next_url})

    assert response.status_code == 302
    assert response["Location"] == CHANGELIST


def test_an_action_returns_to_the_filtered_list_it_came_from(root_client, store):
    back = CHANGELIST + "?status=failed&q=beach"

    response = root_client.post(CHANGELIST, {"action": "reprocess_selected", "next": back})

    assert response["Location"] == back


@pytest.mark.parametrize("next_url", FOREIGN_NEXT)
def test_the_delete_confirmation_never_renders_a_foreign_or_script_link(root_client, store, site_aws, next_url):
    """The review's probe test_p2_delete_confirmation_renders_next_into_a_link."""
    record = failed(site_aws)

    page = root_client.post(
        CHANGELIST, {"action": "delete_selected", "_selected_action": [record.id], "next": next_url}
    ).content.decode()

    assert "javascript:" not in page
    assert "evil.example" not in page
    back_link = re.search(r'<a href="([^"]*)" class="button cancel-link">', page)
    assert back_link
    assert back_link.group(1) == CHANGELIST
