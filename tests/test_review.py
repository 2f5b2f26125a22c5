"""The publish gate (PUBLISH_REVIEW, REQUIRE_ALT_TEXT), the owner's actions and the admin's side of the photo
library: uploads through the site, the processor through its Lambda handler, staff through the admin."""

from __future__ import annotations

import re

import pytest
from conftest import PHOTOS
from django.contrib.auth.models import Permission
from test_admin import CHANGELIST, change_url, rows, said
from test_processor import ProcessorEvents, deliver
from test_upload import ask_policy
from test_visibility import all_keys, stored_image

from gallery import services
from lambdas.image_processor import handler as processor_lambda
from pipeline import keys, records
from pipeline.photo import Camera, Location
from pipeline.processing import ImageProcessor
from pipeline.records import ImageRecord, Review, Status

PHOTO = PHOTOS / "Canon_40D.jpg"
REVIEW_REQUIRED = {"PUBLISH_REVIEW": "required"}
ALT_TEXT_REQUIRED = {"REQUIRE_ALT_TEXT": "on"}
BOTH = {**REVIEW_REQUIRED, **ALT_TEXT_REQUIRED}


@pytest.fixture
def events(site_aws, monkeypatch) -> ProcessorEvents:
    """The processor Lambda wired to this test's moto and settings; S3 notifications made as S3 sends them."""
    processor = ImageProcessor(site_aws.settings, site_aws.image_store(), site_aws.object_store())
    monkeypatch.setattr(processor_lambda, "processor", processor)
    return ProcessorEvents(site_aws.s3, site_aws.settings.bucket)


@pytest.fixture
def user(django_user_model):
    """A person who may log in and upload, holding the named gallery permissions (none: may not publish)."""

    def make(name: str, *codenames: str, is_staff: bool = False):
        person = django_user_model.objects.create_user(name, is_staff=is_staff)
        person.user_permissions.set(
            Permission.objects.filter(content_type__app_label="gallery", codename__in=codenames)
        )
        return person

    return make


@pytest.fixture
def reviewer(client, user):
    """A client logged in as staff who may view, change and publish (approve and reject)."""
    client.force_login(user("reviewer", "view_image", "change_image", "publish_image", is_staff=True))
    return client


def upload(client, person, events: ProcessorEvents) -> ImageRecord:
    """``person`` uploads the photo as the script does (policy, then the file at its key), and the processor
    Lambda handles the S3 notification through SQS."""
    client.force_login(person)
    ticket = ask_policy(client, name="canon.jpg", size=PHOTO.stat().st_size, type="image/jpeg").json()
    deliver(events.put(ticket["key"], PHOTO), events)
    client.logout()
    return services.image_store().get(ticket["id"], consistent=True)


def held(site_aws, state: Review = Review.PENDING, *, n: int = 1, **changes) -> ImageRecord:
    """A ready image held by the gate as the processor leaves it: files under hidden/, listed nowhere (``n``
    orders it, newest last)."""
    record = stored_image(site_aws, hidden=True, n=n)
    store = site_aws.image_store()
    return store.update(record.id, lambda r: r.replace(hidden=False, review=state, owner="alice", **changes))


def is_public(site_aws, record: ImageRecord) -> bool:
    found = all_keys(site_aws.object_store(), record.id)
    assert found
    return not any(keys.is_hidden_key(key) for key in found)


def is_hidden(site_aws, record: ImageRecord) -> bool:
    found = all_keys(site_aws.object_store(), record.id)
    assert found
    return all(keys.is_hidden_key(key) for key in found)


def seen_anywhere(client, image_id: str) -> dict[str, bool]:
    """Whether an anonymous visitor meets the image on the gallery page, in the API list, or by its document."""
    client.logout()
    return {
        "gallery": image_id in client.get("/").content.decode(),
        "api list": image_id in [item["id"] for item in client.get("/api/images").json()["items"]],
        "api document": client.get(f"/api/images/{image_id}").status_code == 200,
    }


NOWHERE = {"gallery": False, "api list": False, "api document": False}
EVERYWHERE = {"gallery": True, "api list": True, "api document": True}


def approve(client, *ids: str):
    return client.post(CHANGELIST, {"action": "approve_selected", "_selected_action": list(ids)})


def reject(client, *ids: str, reason: str | None = None):
    form = {"action": "reject_selected", "_selected_action": list(ids)}
    if reason is not None:
        form |= {"post": "yes", "reason": reason}
    return client.post(CHANGELIST, form)


# -- uploads and the gate ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("settings_env", [REVIEW_REQUIRED])
def test_an_upload_by_someone_without_the_right_to_publish_ends_ready_but_pending_and_nowhere_public(
    client, user, events, site_aws
):
    record = upload(client, user("alice"), events)

    assert record.status is Status.READY
    assert record.review is Review.PENDING
    assert seen_anywhere(client, record.id) == NOWHERE
    assert is_hidden(site_aws, record)


@pytest.mark.parametrize("settings_env", [REVIEW_REQUIRED])
def test_the_uploaders_gallery_shows_no_processing_tile_for_an_upload_that_will_wait_for_review(client, user, site_aws):
    """The gallery's "processing" tiles poll the public document until the image is listed: one held for review
    never would be, so the tile would spin for a day. My uploads follows it instead."""
    client.force_login(user("alice"))
    ticket = ask_policy(client, name="canon.jpg", size=PHOTO.stat().st_size, type="image/jpeg").json()
    site_aws.s3.put_object(Bucket=site_aws.settings.bucket, Key=ticket["key"], Body=PHOTO.read_bytes())

    done = client.get(ticket["done_url"], headers={"Accept": "application/json"})

    assert done.status_code == 200
    assert "tile--processing" not in client.get("/").content.decode()
    assert ticket["id"] in client.get("/my/").content.decode()


def test_the_uploaders_gallery_shows_a_processing_tile_while_an_upload_that_will_publish_is_processed(
    client, user, site_aws
):
    client.force_login(user("alice"))
    ticket = ask_policy(client, name="canon.jpg", size=PHOTO.stat().st_size, type="image/jpeg").json()
    site_aws.s3.put_object(Bucket=site_aws.settings.bucket, Key=ticket["key"], Body=PHOTO.read_bytes())

    client.get(ticket["done_url"], headers={"Accept": "application/json"})

    assert "tile--processing" in client.get("/").content.decode()


@pytest.mark.parametrize("settings_env", [REVIEW_REQUIRED])
def test_staff_approval_lists_the_upload_and_moves_its_files_to_public(client, user, events, site_aws):
    record = upload(client, user("alice"), events)
    client.force_login(user("reviewer", "view_image", "change_image", "publish_image", is_staff=True))

    response = approve(client, record.id)

    approved = site_aws.image_store().get(record.id)
    assert response.status_code == 302
    assert said(response) == [
        "Approved 1 image: “canon.jpg”. It is published: listed in the gallery and the API (unless hidden), with "
        "the files under public/."
    ]
    assert (approved.review, approved.reviewed_by) == (None, "reviewer")
    assert is_public(site_aws, approved)
    assert seen_anywhere(client, record.id) == EVERYWHERE


@pytest.mark.parametrize("settings_env", [REVIEW_REQUIRED])
def test_reject_asks_for_a_reason_on_a_page_of_its_own_then_keeps_the_image_unlisted(reviewer, site_aws):
    record = held(site_aws)

    asked = reject(reviewer, record.id)
    refused = reject(reviewer, record.id, reason="   ")
    response = reject(reviewer, record.id, reason="Shows a licence plate.")

    assert asked.status_code == 200
    page = asked.content.decode()
    assert 'name="csrfmiddlewaretoken"' in page
    assert '<textarea name="reason"' in page
    assert 'value="reject_selected"' in page
    assert "Give a reason: the uploader sees it on their uploads." in refused.content.decode()
    rejected = site_aws.image_store().get(record.id)
    assert (rejected.review, rejected.review_reason, rejected.reviewed_by) == (
        Review.REJECTED,
        "Shows a licence plate.",
        "reviewer",
    )
    assert "Rejected 1 image" in said(response)[0]
    assert seen_anywhere(reviewer, record.id) == NOWHERE
    assert is_hidden(site_aws, rejected)


def test_rejecting_a_published_image_takes_it_off_the_listings_and_the_cdn(reviewer, site_aws, monkeypatch):
    record = stored_image(site_aws)
    forgotten: list[str] = []
    monkeypatch.setattr(services, "cdn", lambda: type("Cdn", (), {"invalidate": lambda _, p: forgotten.extend(p)})())

    reject(reviewer, record.id, reason="Copyrighted.")

    assert site_aws.image_store().get(record.id).review is Review.REJECTED
    assert is_hidden(site_aws, record)
    assert set(keys.cdn_invalidation_paths(record.id)) <= set(forgotten)
    assert seen_anywhere(reviewer, record.id) == NOWHERE


def test_approving_never_asks_the_cdn_to_forget_anything(reviewer, site_aws, monkeypatch):
    record = held(site_aws)
    forgotten: list[str] = []
    monkeypatch.setattr(services, "cdn", lambda: type("Cdn", (), {"invalidate": lambda _, p: forgotten.extend(p)})())

    approve(reviewer, record.id)

    assert is_public(site_aws, record)
    assert forgotten == []


def test_a_rejected_image_can_still_be_approved(reviewer, site_aws):
    record = held(site_aws, Review.REJECTED, review_reason="Blurry.")

    approve(reviewer, record.id)

    approved = site_aws.image_store().get(record.id)
    assert (approved.review, approved.review_reason, approved.listed) == (None, None, True)


@pytest.mark.parametrize("action", ["approve_selected", "reject_selected"])
def test_staff_without_the_publish_permission_get_403_on_approve_and_reject(client, user, site_aws, action):
    record = held(site_aws)
    client.force_login(user("editor", "view_image", "change_image", "delete_image", is_staff=True))

    response = client.post(
        CHANGELIST, {"action": action, "_selected_action": [record.id], "post": "yes", "reason": "No."}
    )

    assert response.status_code == 403
    assert site_aws.image_store().get(record.id).review is Review.PENDING
    assert "approve_selected" not in client.get(CHANGELIST).content.decode()


@pytest.mark.parametrize("settings_env", [REVIEW_REQUIRED])
@pytest.mark.parametrize("who", ["staff", "permitted"])
def test_staff_and_people_with_the_publish_permission_publish_directly(client, user, events, site_aws, who):
    person = user("staffer", is_staff=True) if who == "staff" else user("trusted", "publish_image")

    record = upload(client, person, events)

    assert (record.status, record.review) == (Status.READY, None)
    assert seen_anywhere(client, record.id) == EVERYWHERE
    assert is_public(site_aws, record)


def test_with_review_off_every_upload_publishes_as_before(client, user, events, site_aws):
    record = upload(client, user("alice"), events)

    assert (record.status, record.review) == (Status.READY, None)
    assert seen_anywhere(client, record.id) == EVERYWHERE


@pytest.mark.parametrize("settings_env", [BOTH])
def test_an_operators_upload_with_aws_s3_cp_publishes_directly(events, site_aws, client):
    raw_key = "raw/harbour.jpg"

    deliver(events.put(raw_key, PHOTO), events)

    record = site_aws.image_store().get(keys.image_id_for_raw_key(raw_key, site_aws.settings.secret))
    assert (record.status, record.review, record.listed) == (Status.READY, None, True)


# -- REQUIRE_ALT_TEXT -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("settings_env", [BOTH])
def test_approval_is_refused_without_alt_text_and_says_to_add_it(reviewer, site_aws):
    record = held(site_aws)

    response = approve(reviewer, record.id)

    assert said(response) == ["Not approved: “Photo 1” has no alt text: add alt text first, then approve it."]
    assert site_aws.image_store().get(record.id).review is Review.PENDING
    assert is_hidden(site_aws, record)


@pytest.mark.parametrize("settings_env", [ALT_TEXT_REQUIRED])
def test_an_upload_waits_for_alt_text_and_its_owner_adding_some_publishes_it(client, user, events, site_aws):
    record = upload(client, user("alice"), events)
    assert record.review is Review.NEEDS_ALT_TEXT
    assert seen_anywhere(client, record.id) == NOWHERE

    edited = services.edit_own(record.id, "alice", title="Lens", alt_text="A camera lens on a table", tags=["kit"])

    assert (edited.review, edited.listed) == (None, True)
    assert is_public(site_aws, edited)
    assert seen_anywhere(client, record.id) == EVERYWHERE


@pytest.mark.parametrize("settings_env", [ALT_TEXT_REQUIRED])
def test_staff_adding_alt_text_publishes_an_image_that_waited_for_it(reviewer, site_aws):
    record = held(site_aws, Review.NEEDS_ALT_TEXT)

    response = reviewer.post(change_url(record.id), {"title": "Dunes", "alt_text": "Sand dunes at noon", "tags": ""})

    assert response.status_code == 302
    saved = site_aws.image_store().get(record.id)
    assert (saved.review, saved.listed) == (None, True)
    assert is_public(site_aws, saved)


@pytest.mark.parametrize("settings_env", [BOTH])
def test_alt_text_alone_does_not_publish_an_image_pending_review(site_aws):
    record = held(site_aws)

    edited = services.edit_own(record.id, "alice", title="", alt_text="A harbour", tags=[])

    assert edited.review is Review.PENDING


@pytest.mark.parametrize("settings_env", [ALT_TEXT_REQUIRED])
def test_emptying_the_alt_text_of_a_published_image_is_refused(reviewer, site_aws):
    record = site_aws.image_store().update(
        stored_image(site_aws).id, lambda r: r.replace(alt_text="Boats", owner="alice")
    )

    page = reviewer.post(change_url(record.id), {"title": "Boats", "alt_text": "", "tags": ""})
    with pytest.raises(services.AltTextRequired):
        services.edit_own(record.id, "alice", title="", alt_text=" ", tags=[])

    assert page.status_code == 200
    assert "Alt text is required to keep this image published" in page.content.decode()
    assert site_aws.image_store().get(record.id).alt_text == "Boats"


# -- the owner's actions ----------------------------------------------------------------------------------------


def test_owner_functions_refuse_other_peoples_images_as_if_missing(site_aws):
    record = held(site_aws)

    for attempt in (
        lambda: services.edit_own(record.id, "bob", title="Mine now", alt_text="", tags=[]),
        lambda: services.trash_own(record.id, "bob"),
        lambda: services.retry_own(record.id, "bob"),
    ):
        with pytest.raises(services.ImageNotFound, match="No image with id"):
            attempt()
    assert site_aws.image_store().get(record.id) == record


def test_an_owner_moves_their_image_to_the_trash(site_aws):
    record = held(site_aws)

    trashed = services.trash_own(record.id, "alice")

    assert trashed.in_trash
    assert trashed.deleted_by == "alice"


def test_an_owner_may_retry_only_a_failed_image(site_aws):
    ready = held(site_aws)
    image_id = keys.new_image_id()
    raw_key = keys.raw_key_for_upload(image_id, "notes.jpg")
    site_aws.object_store().write(raw_key, b"not an image", "image/jpeg")
    broken = site_aws.image_store().create(
        records.new_record(image_id, raw_key, Status.PROCESSING, owner="alice").with_status(Status.FAILED, reason="x")
    )
    before = site_aws.object_store().head(raw_key).etag

    with pytest.raises(services.RetryRefused, match="only a failed image can be retried"):
        services.retry_own(ready.id, "alice")
    services.retry_own(broken.id, "alice")

    # The ordinary S3 event again: the original copied onto itself (same bytes), as "reprocess" does.
    assert site_aws.object_store().head(raw_key).etag == before
    assert "touched-at" in site_aws.s3.head_object(Bucket=site_aws.settings.bucket, Key=raw_key)["Metadata"]


# -- the admin: filters, badges, photo facts --------------------------------------------------------------------


def test_the_pending_review_filter_lists_only_images_waiting_for_staff(reviewer, site_aws):
    waiting = held(site_aws)
    held(site_aws, Review.REJECTED, review_reason="No.")
    stored_image(site_aws, n=2)

    html = reviewer.get(CHANGELIST, {"only": "pending"}).content.decode()

    assert rows(html) == [waiting.id]
    assert '<span class="image-badge image-badge--review">pending review</span>' in html


def test_badges_say_pending_needs_alt_text_and_rejected_with_the_reason(reviewer, site_aws):
    held(site_aws)
    held(site_aws, Review.NEEDS_ALT_TEXT)
    rejected = held(site_aws, Review.REJECTED, review_reason="Shows a licence plate.")

    html = reviewer.get(CHANGELIST).content.decode()
    page = reviewer.get(change_url(rejected.id)).content.decode()

    assert ">pending review<" in html
    assert ">needs alt text<" in html
    assert ">rejected: Shows a licence plate.<" in html
    assert "“Shows a licence plate.”" in page


def test_the_change_page_offers_approve_and_reject_to_those_who_may_publish(reviewer, client, user, site_aws):
    record = held(site_aws)

    page = reviewer.get(change_url(record.id)).content.decode()
    client.force_login(user("viewer", "view_image", is_staff=True))
    viewer_page = client.get(change_url(record.id)).content.decode()

    assert 'value="Approve: publish it"' in page
    assert 'value="Reject…"' in page
    assert "Approve: publish it" not in viewer_page


def test_duplicates_link_to_their_original_only_while_it_exists(reviewer, site_aws):
    original = stored_image(site_aws, n=1)
    gone = keys.new_image_id()
    copy = held(site_aws, n=2, duplicate_of=original.id)
    orphan = held(site_aws, n=3, near_duplicate_of=gone)
    calls: list[str] = []
    site_aws.dynamodb.meta.events.register("before-call.dynamodb.*", lambda model, **_: calls.append(model.name))

    html = reviewer.get(CHANGELIST, {"only": "duplicates"}).content.decode()

    assert rows(html) == [orphan.id, copy.id]
    assert re.search(rf'href="/admin/gallery/image/{original.id}/change/"[^>]*>duplicate of Photo 1<', html)
    assert "near duplicate" not in html
    assert calls.count("BatchGetItem") == 1


def test_the_change_page_shows_photo_facts_and_the_location_only_to_staff(reviewer, client, site_aws):
    camera = Camera(
        make="Canon",
        model="EOS 40D",
        lens="EF-S 17-85mm",
        focal_length="4.25",
        f_number="1.8",
        exposure_time="1/250",
        iso=100,
    )
    where = Location(latitude="47.3769", longitude="8.5417", altitude="408")
    record = site_aws.image_store().update(
        stored_image(site_aws).id,
        lambda r: r.replace(taken_at="2008-05-30T15:56:01+02:00", camera=camera, location=where),
    )

    page = reviewer.get(change_url(record.id)).content.decode()
    public = (
        client.get(f"/images/{record.id}/").content.decode() + client.get(f"/api/images/{record.id}").content.decode()
    )

    assert "2008-05-30T15:56:01+02:00" in page
    assert "Canon EOS 40D" in page
    assert "EF-S 17-85mm" in page
    assert "4.25 mm · f/1.8 · 1/250 s · ISO 100" in page
    assert "47.3769, 8.5417 (altitude 408 m)" in page
    assert "https://www.openstreetmap.org/?mlat=47.3769&amp;mlon=8.5417" in page
    assert "47.3769" not in public
    assert "8.5417" not in public


def test_the_change_page_shows_no_location_row_without_one(reviewer, site_aws):
    record = stored_image(site_aws)

    assert "Location" not in reviewer.get(change_url(record.id)).content.decode()


def test_the_review_filter_reads_a_bounded_part_of_the_index_per_page(reviewer, site_aws):
    held(site_aws)
    calls: list[dict] = []
    site_aws.dynamodb.meta.events.register(
        "provide-client-params.dynamodb.Query", lambda params, **_: calls.append(dict(params))
    )

    reviewer.get(CHANGELIST, {"only": "pending"})

    assert [(c["IndexName"], c["FilterExpression"]) for c in calls] == [("ByStatus", "(review = :review)")]
