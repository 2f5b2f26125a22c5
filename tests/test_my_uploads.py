"""My uploads (/my/): a person's own images in every state, one Query a page, and only their own to change."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pytest
from conftest import PHOTOS
from django.contrib.messages import get_messages
from test_api import ready_record
from test_upload import process

from gallery import selectors
from pipeline import keys, records
from pipeline.records import Review, Status
from pipeline.store import Aws

PRIVATE = "private, no-store"


def item_ids(html: str) -> list[str]:
    return re.findall(r'<li class="mine__item[^"]*" id="upload-([a-z2-7]{26})"', html)


def item_html(html: str, image_id: str) -> str:
    start = html.index(f'id="upload-{image_id}"')
    end = html.find("</li>", start)
    return html[start:end]


def said(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def owned(n: int, owner: str, **changes) -> records.ImageRecord:
    """A ready, published image of ``owner``'s, the ``n``-th oldest."""
    return ready_record(n).replace(owner=owner, **changes)


def with_hidden_files(record: records.ImageRecord) -> records.ImageRecord:
    """As the processor writes an unpublished image: every rendition under hidden/."""
    return record.replace(
        renditions=tuple(r.__class__(**{**r.__dict__, "key": keys.hidden_key(r.key)}) for r in record.renditions)
    )


def uploading(owner: str) -> records.ImageRecord:
    image_id = keys.new_image_id()
    return records.new_record(image_id, keys.raw_key_for_upload(image_id, "upload"), Status.UPLOADING, owner=owner)


def failed(aws: Aws, owner: str, reason: str = "The file is not an image (it looks like text).") -> records.ImageRecord:
    """A failed upload whose original is still in S3 (so it can be retried)."""
    image_id = keys.new_image_id()
    raw_key = keys.raw_key_for_upload(image_id, "notes.jpg")
    aws.object_store().write(raw_key, b"just some text", "image/jpeg")
    record = records.new_record(image_id, raw_key, Status.PROCESSING, owner=owner)
    return aws.image_store().create(record.with_status(Status.FAILED, reason=reason))


@pytest.fixture
def store(site_aws):
    return site_aws.image_store()


@pytest.fixture
def alice(django_user_model):
    return django_user_model.objects.create_user("alice")


@pytest.fixture
def bob(django_user_model):
    return django_user_model.objects.create_user("bob")


@pytest.fixture
def alice_client(client, alice):
    client.force_login(alice)
    return client


@pytest.fixture
def dynamodb_calls(site_aws) -> list[str]:
    calls: list[str] = []
    site_aws.dynamodb.meta.events.register("before-call.dynamodb.*", lambda model, **_: calls.append(model.name))
    return calls


# -- the list ----------------------------------------------------------------------------------------------------


def test_anonymous_visitors_are_sent_to_log_in(client, store):
    response = client.get("/my/")

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=/my/")


def test_lists_only_ones_own_images_newest_first_in_one_query(alice_client, store, dynamodb_calls):
    mine = [store.create(owned(n, "alice")).id for n in range(3)]
    store.create(owned(5, "bob"))
    dynamodb_calls.clear()

    response = alice_client.get("/my/")

    assert response.status_code == 200
    assert item_ids(response.content.decode()) == mine[::-1]
    assert dynamodb_calls == ["Query"]


def test_every_page_is_one_query_and_a_cursor_reads_on(alice_client, store, dynamodb_calls, monkeypatch):
    monkeypatch.setattr(selectors, "OWNER_PAGE_SIZE", 2)
    mine = [store.create(owned(n, "alice")).id for n in range(5)][::-1]
    dynamodb_calls.clear()

    seen: list[str] = []
    url = "/my/"
    pages = 0
    while url:
        html = alice_client.get(url).content.decode()
        seen += item_ids(html)
        pages += 1
        older = re.search(r'href="(/my/\?cursor=[^"]+)" rel="next"', html)
        url = older.group(1).replace("&amp;", "&") if older else ""

    assert seen == mine
    assert pages == 3
    assert dynamodb_calls == ["Query"] * 3


def test_a_cursor_of_someone_elses_list_is_refused(client, store, alice, bob, monkeypatch):
    monkeypatch.setattr(selectors, "OWNER_PAGE_SIZE", 1)
    for n in range(2):
        store.create(owned(n, "bob"))
        store.create(owned(10 + n, "alice"))
    client.force_login(bob)
    older = re.search(r'href="/my/\?cursor=([^"]+)" rel="next"', client.get("/my/").content.decode())
    assert older
    cursor = parse_qs(urlsplit(f"/my/?cursor={older.group(1)}").query)["cursor"][0]

    client.force_login(alice)
    response = client.get("/my/", {"cursor": cursor})

    assert response.status_code == 400
    assert "belongs to someone else" in response.content.decode()
    assert client.get("/my/", {"cursor": cursor[:-3] + "xyz"}).status_code == 400


def test_each_state_is_shown_in_words_with_its_reason(alice_client, store, site_aws):
    published = store.create(owned(1, "alice"))
    pending = store.create(with_hidden_files(owned(2, "alice", review=Review.PENDING)))
    rejected = store.create(
        with_hidden_files(owned(3, "alice", review=Review.REJECTED, review_reason="Not a photo of the event."))
    )
    no_alt = store.create(with_hidden_files(owned(4, "alice", review=Review.NEEDS_ALT_TEXT)))
    broken = failed(site_aws, "alice", reason="The file is truncated (it ends before the image data does).")
    arriving = store.create(uploading("alice"))
    working = store.create(records.new_record(keys.new_image_id(), "raw/x/a.jpg", Status.PROCESSING, owner="alice"))

    html = alice_client.get("/my/").content.decode()

    expected = {
        published.id: ("badge--ready", "Published"),
        pending.id: ("badge--pending", "Waiting for review"),
        rejected.id: ("badge--rejected", "Rejected"),
        no_alt.id: ("badge--needs-alt-text", "Needs alt text"),
        broken.id: ("badge--failed", "Failed"),
        arriving.id: ("badge--uploading", "Uploading"),
        working.id: ("badge--processing", "Processing"),
    }
    for image_id, (css, words) in expected.items():
        item = item_html(html, image_id)
        assert f'<span class="badge {css}">{words}</span>' in item, image_id
    assert "Not a photo of the event." in item_html(html, rejected.id)
    assert "The file is truncated (it ends before the image data does)." in item_html(html, broken.id)
    assert f'href="/images/{published.id}/"' in item_html(html, published.id)
    assert f'href="/images/{pending.id}/"' not in item_html(html, pending.id)
    # Only the failed one offers a retry; the processing ones are followed by my.js.
    assert [i for i in expected if "/retry/" in item_html(html, i)] == [broken.id]
    assert f'data-status-url="/my/{working.id}/status"' in item_html(html, working.id)


def test_thumbnails_come_from_the_cdn_when_published_and_presigned_when_not(alice_client, store, site_aws):
    published = store.create(owned(1, "alice"))
    pending = store.create(with_hidden_files(owned(2, "alice", review=Review.PENDING)))

    html = alice_client.get("/my/").content.decode()

    cdn = site_aws.settings.cdn_url
    assert re.search(rf'srcset="{cdn}/thumbs/{published.id}/\S+ 256w', item_html(html, published.id))
    hidden_src = re.search(r'<img src="([^"]+)"', item_html(html, pending.id)).group(1).replace("&amp;", "&")
    assert cdn not in hidden_src
    assert f"/hidden/thumbs/{pending.id}/" in hidden_src
    assert "X-Amz-Signature=" in hidden_src
    assert "X-Amz-Expires=900" in hidden_src
    assert "srcset" not in item_html(html, pending.id)


def test_pages_are_private_and_never_stored(alice_client, store):
    image = store.create(owned(1, "alice"))

    for url in ("/my/", f"/my/{image.id}/edit/", f"/my/{image.id}/delete/", f"/my/{image.id}/status"):
        assert alice_client.get(url)["Cache-Control"] == PRIVATE, url


def test_the_header_links_to_my_uploads_for_people_logged_in(client, alice_client, store):
    assert 'href="/my/"' in alice_client.get("/my/").content.decode()
    client.logout()
    assert 'href="/my/"' not in client.get("/").content.decode()


# -- duplicates --------------------------------------------------------------------------------------------------


def test_a_duplicate_says_which_image_is_already_in_the_gallery(alice_client, store, dynamodb_calls):
    original = store.create(owned(1, "bob", title="Harbour at dawn"))
    hidden_original = store.create(owned(2, "bob", hidden=True))
    copy = store.create(with_hidden_files(owned(3, "alice", review=Review.PENDING, duplicate_of=original.id)))
    of_hidden = store.create(owned(4, "alice", duplicate_of=hidden_original.id))
    dynamodb_calls.clear()

    html = alice_client.get("/my/").content.decode()
    status = alice_client.get(f"/my/{copy.id}/status").json()

    assert dynamodb_calls[:2] == ["Query", "BatchGetItem"]  # the page's originals, read together
    assert f'Already in the gallery as <a href="/images/{original.id}/">Harbour at dawn</a>.' in item_html(
        html, copy.id
    )
    assert "Already in the gallery" not in item_html(html, of_hidden.id)  # no link to an image nobody may see
    assert status["duplicate_of"] == {"id": original.id, "title": "Harbour at dawn", "url": f"/images/{original.id}/"}
    assert status["state"] == "pending"


def test_a_skipped_duplicate_is_shown_as_a_duplicate(alice_client, store, site_aws):
    original = store.create(owned(1, "bob", title="Harbour at dawn"))
    skipped = failed(site_aws, "alice", reason="Already in the gallery.")
    store.update(skipped.id, lambda current: current.replace(duplicate_of=original.id))

    item = item_html(alice_client.get("/my/").content.decode(), skipped.id)

    assert '<span class="badge badge--duplicate">Duplicate, not processed</span>' in item
    assert f'<a href="/images/{original.id}/">Harbour at dawn</a>' in item


# -- the status endpoint -----------------------------------------------------------------------------------------


def test_status_answers_the_owner_for_an_unpublished_image_the_api_hides(alice_client, store, site_aws):
    pending = store.create(with_hidden_files(owned(1, "alice", review=Review.PENDING)))

    status = alice_client.get(f"/my/{pending.id}/status")

    assert status.status_code == 200
    assert status["Cache-Control"] == PRIVATE
    body = status.json()
    assert (body["status"], body["state"], body["label"]) == ("ready", "pending", "Waiting for review")
    assert body["page_url"] is None
    assert "X-Amz-Signature=" in body["thumbnail"]["src"]
    assert alice_client.get(f"/api/images/{pending.id}").status_code == 404


def test_status_of_someone_elses_image_is_404_and_anonymous_is_401(client, store, bob):
    image = store.create(owned(1, "alice"))
    assert client.get(f"/my/{image.id}/status").status_code == 401
    client.force_login(bob)
    assert client.get(f"/my/{image.id}/status").status_code == 404
    assert client.get("/my/not-an-id/status").status_code == 404


def test_the_upload_policy_points_the_script_at_the_owners_status(alice_client, site_aws):
    ticket = alice_client.post(
        "/upload/policy/", {"name": "a.jpg", "size": 10, "type": "image/jpeg"}, content_type="application/json"
    ).json()

    assert ticket["status_url"] == f"/my/{ticket['id']}/status"
    assert alice_client.get(ticket["status_url"]).json()["state"] == "uploading"


# -- only one's own ----------------------------------------------------------------------------------------------


def test_nobody_sees_or_changes_someone_elses_image(client, store, site_aws, bob):
    image = store.create(owned(1, "alice", title="Alice's"))
    broken = failed(site_aws, "alice")
    client.force_login(bob)

    assert image.id not in client.get("/my/").content.decode()
    assert client.get(f"/my/{image.id}/edit/").status_code == 404
    assert client.post(f"/my/{image.id}/edit/", {"title": "Bob's now", "alt_text": "", "tags": ""}).status_code == 404
    assert client.get(f"/my/{image.id}/delete/").status_code == 404
    assert client.post(f"/my/{image.id}/delete/").status_code == 404
    assert client.post(f"/my/{broken.id}/retry/").status_code == 404

    after = store.get(image.id)
    assert (after.title, after.status) == ("Alice's", Status.READY)
    assert store.get(broken.id).status is Status.FAILED


def test_anonymous_visitors_change_nothing(client, store):
    image = store.create(owned(1, "alice"))

    for url in (f"/my/{image.id}/edit/", f"/my/{image.id}/delete/", f"/my/{image.id}/retry/"):
        response = client.post(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith("/accounts/login/"), url
    assert store.get(image.id).status is Status.READY


# -- edit, delete, retry ------------------------------------------------------------------------------------------


def test_edit_saves_title_alt_text_and_tags(alice_client, store):
    image = store.create(owned(1, "alice"))

    form = alice_client.get(f"/my/{image.id}/edit/").content.decode()
    response = alice_client.post(
        f"/my/{image.id}/edit/", {"title": " Harbour ", "alt_text": "Boats at dawn", "tags": "Sea, boats , sea"}
    )

    assert '<label for="id_title">Title</label>' in form
    assert '<label for="id_alt_text">Alt text</label>' in form
    assert 'name="hidden"' not in form  # staff's to set
    assert response.status_code == 302
    assert response["Location"] == "/my/"
    saved = store.get(image.id)
    assert (saved.title, saved.alt_text, saved.tags) == ("Harbour", "Boats at dawn", ("sea", "boats"))


def test_edit_shows_each_error_next_to_its_field_and_saves_nothing(alice_client, store):
    image = store.create(owned(1, "alice", title="Before"))
    too_many = ", ".join(f"tag{n}" for n in range(records.MAX_TAGS + 1))

    response = alice_client.post(
        f"/my/{image.id}/edit/", {"title": "x" * (records.MAX_TITLE_LENGTH + 1), "alt_text": "", "tags": too_many}
    )

    html = response.content.decode()
    assert response.status_code == 400
    title_error = re.search(r'id="id_title_error">([^<]+)<', html)
    tags_error = re.search(r'id="id_tags_error">([^<]+)<', html)
    assert title_error
    assert f"at most {records.MAX_TITLE_LENGTH} characters" in title_error.group(1)
    assert tags_error
    assert f"at most {records.MAX_TAGS} tags" in tags_error.group(1).lower()
    assert html.index("id_title_error") < html.index('name="title"') < html.index("id_tags_error")
    assert store.get(image.id).title == "Before"


def test_delete_asks_first_then_moves_the_image_to_the_trash(alice_client, store):
    image = store.create(owned(1, "alice", title="Harbour"))

    confirm = alice_client.get(f"/my/{image.id}/delete/")
    response = alice_client.post(f"/my/{image.id}/delete/")

    assert "Delete “Harbour”?" in confirm.content.decode()
    assert response["Location"] == "/my/"
    trashed = store.get(image.id)
    assert trashed.in_trash
    assert trashed.deleted_by == "alice"
    assert image.id not in item_ids(alice_client.get("/my/").content.decode())
    assert alice_client.get(f"/my/{image.id}/edit/").status_code == 404


def test_retry_runs_a_failed_upload_again_and_only_a_failed_one(alice_client, store, site_aws):
    broken = failed(site_aws, "alice")
    fine = store.create(owned(1, "alice"))

    retried = alice_client.post(f"/my/{broken.id}/retry/")
    refused = alice_client.post(f"/my/{fine.id}/retry/")

    assert retried.status_code == 302
    assert said(retried) == ["Processing “notes.jpg” again."]
    # The retry is the ordinary S3 event: the original is copied onto itself, which S3 announces again.
    touched = site_aws.s3.head_object(Bucket=site_aws.settings.bucket, Key=broken.raw_key)["Metadata"]
    assert "touched-at" in touched
    assert "only a failed image can be retried" in said(refused)[-1]
    assert alice_client.get(f"/my/{broken.id}/retry/").status_code == 405  # a change is never a GET


def test_a_real_upload_through_the_processor_shows_as_published(alice_client, site_aws):
    image_id = keys.new_image_id()
    key = keys.raw_key_for_upload(image_id, "Canon_40D.jpg")
    site_aws.image_store().create(records.new_record(image_id, key, Status.UPLOADING, owner="alice"))
    site_aws.object_store().write(key, (PHOTOS / "Canon_40D.jpg").read_bytes(), "image/jpeg")
    process(site_aws, key)

    item = item_html(alice_client.get("/my/").content.decode(), image_id)

    assert '<span class="badge badge--ready">Published</span>' in item
    assert f"/thumbs/{image_id}/" in item


# -- reading a page's originals ------------------------------------------------------------------------------------


class _BusyDynamoDB:
    """A DynamoDB client whose BatchGetItem answers ``busy_rounds`` times with every key unprocessed (as under load)
    before it answers from the real client."""

    def __init__(self, real, busy_rounds: int) -> None:
        self.real, self.busy_rounds, self.calls = real, busy_rounds, 0

    def batch_get_item(self, RequestItems):  # boto3 names it so
        self.calls += 1
        if self.calls <= self.busy_rounds:
            return {"Responses": {}, "UnprocessedKeys": RequestItems}
        return self.real.batch_get_item(RequestItems=RequestItems)


def test_originals_left_unprocessed_are_asked_for_again_and_a_busy_table_costs_a_bounded_wait(site_aws, monkeypatch):
    monkeypatch.setattr("pipeline.store.BATCH_GET_BACKOFF_SECONDS", 0)
    store = site_aws.image_store()
    originals = [store.create(owned(n, "bob")) for n in (1, 2)]
    ids = [record.id for record in originals]

    store.client = busy = _BusyDynamoDB(site_aws.dynamodb, busy_rounds=2)
    assert set(store.get_many(ids)) == set(ids)
    assert busy.calls == 3

    store.client = busy = _BusyDynamoDB(site_aws.dynamodb, busy_rounds=100)
    assert store.get_many(ids) == {}  # still unread after every round: left out, as missing
    assert busy.calls == 5
