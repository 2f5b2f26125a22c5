"""Upload: a presigned POST straight to S3 raw/, the record made first, the no-JS redirect back, clear refusals."""

from __future__ import annotations

import base64
import json
import re
import time
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from botocore.exceptions import EndpointConnectionError
from conftest import PHOTOS
from django.test import Client

from pipeline import keys, records
from pipeline.processing import ImageProcessor, ObjectCreated
from pipeline.records import Status
from pipeline.store import Aws

JPEG = PHOTOS / "Canon_40D.jpg"


class FormReader(HTMLParser):
    """The upload form as a browser sees it: its action and its inputs in document order."""

    def __init__(self) -> None:
        super().__init__()
        self.action: str | None = None
        self.inputs: list[dict[str, str | None]] = []
        self._inside = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "form" and values.get("id") == "upload-form":
            self.action, self._inside = values["action"], True
        elif tag == "input" and self._inside:
            self.inputs.append(values)

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._inside = False


def read_form(html: str) -> FormReader:
    reader = FormReader()
    reader.feed(html)
    return reader


def policy_of(fields: dict[str, str]) -> dict[str, Any]:
    return json.loads(base64.b64decode(fields["policy"]))


def plain_conditions(policy: dict[str, Any]) -> list[Any]:
    """The policy's conditions without the signature bookkeeping (x-amz-algorithm, credential, date)."""
    return [c for c in policy["conditions"] if not (isinstance(c, dict) and next(iter(c)).startswith("x-amz-"))]


def post_to_s3(url: str, fields: dict[str, str], body: bytes, name: str = "photo.jpg") -> requests.Response:
    """What the browser does with the form: multipart POST, policy fields first, the file last."""
    return requests.post(url, data=fields, files={"file": (name, body)}, allow_redirects=False, timeout=10)


def process(aws: Aws, key: str) -> None:
    """What the processor Lambda does when S3 announces the object."""
    objects = aws.object_store()
    ImageProcessor(aws.settings, aws.image_store(), objects).process(
        ObjectCreated(aws.settings.bucket, key, etag=objects.head(key).etag)
    )


@pytest.fixture
def alice(django_user_model):
    return django_user_model.objects.create_user("alice")  # no password: hashing one costs a third of a second


@pytest.fixture
def alice_client(client, alice) -> Client:
    client.force_login(alice)
    return client


def no_js_form(client: Client) -> tuple[str, dict[str, str], list[str]]:
    """What a person without JavaScript does: press "Prepare an upload" (POST /upload/), then read the S3 form."""
    page = client.post("/upload/")
    assert page.status_code == 200
    form = read_form(page.content.decode())
    fields = {i["name"]: i["value"] for i in form.inputs if i.get("type") == "hidden"}
    order = [i["name"] for i in form.inputs]
    return form.action, fields, order


def ask_policy(client: Client, **claim: Any):
    return client.post("/upload/policy/", json.dumps(claim), content_type="application/json")


# -- login ---------------------------------------------------------------------------------------------------


def test_upload_page_requires_login(client, site_aws):
    response = client.get("/upload/")

    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/upload/"


def test_policy_endpoint_requires_login(client, site_aws):
    response = ask_policy(client, name="a.jpg", size=10, type="image/jpeg")

    assert response.status_code == 401


def test_policy_endpoint_requires_the_csrf_token(alice, site_aws):
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(alice)

    response = ask_policy(strict, name="a.jpg", size=10, type="image/jpeg")

    assert response.status_code == 403


def test_done_page_requires_login(client, site_aws):
    response = client.get("/upload/done/", {"bucket": site_aws.settings.bucket, "key": "raw/x/y.jpg"})

    assert response.status_code == 302


def test_people_log_in_on_the_site_without_being_staff(client, alice, site_aws):
    alice.set_password("pw-alice-123")
    alice.save()

    response = client.post("/accounts/login/", {"username": "alice", "password": "pw-alice-123", "next": "/upload/"})

    assert response.status_code == 302
    assert response["Location"] == "/upload/"


# -- the no-JS form ------------------------------------------------------------------------------------------


def test_preparing_an_upload_creates_an_uploading_record_owned_by_the_person(alice_client, site_aws):
    _action, fields, _ = no_js_form(alice_client)

    record = site_aws.image_store().get(keys.image_id_for_raw_key(fields["key"], site_aws.settings.secret))
    assert record is not None
    assert record.status is Status.UPLOADING
    assert record.owner == "alice"
    assert record.raw_key == fields["key"] == keys.raw_key_for_upload(record.id, "upload")
    expected_expiry = time.time() + site_aws.settings.upload_ttl_seconds
    assert record.expires_at is not None
    assert abs(record.expires_at - expected_expiry) < 60


def test_no_js_form_posts_straight_to_s3_with_the_file_last(alice_client, site_aws):
    action, fields, order = no_js_form(alice_client)

    assert urlsplit(action).hostname == f"{site_aws.settings.bucket}.s3.amazonaws.com"
    assert order[-1] == "file"
    assert order[:-1] == list(fields)
    assert {"key", "policy", "x-amz-signature", "Content-Type", "success_action_redirect"} <= set(fields)


def test_no_js_policy_fixes_key_size_type_redirect_and_expiry(alice_client, site_aws):
    before = time.time()
    _, fields, _ = no_js_form(alice_client)

    policy = policy_of(fields)
    assert plain_conditions(policy) == [
        ["content-length-range", 1, site_aws.settings.imaging.max_bytes],
        {"Content-Type": "application/octet-stream"},
        {"success_action_redirect": "http://testserver/upload/done/"},
        {"bucket": site_aws.settings.bucket},
        {"key": fields["key"]},
    ]
    expires = policy["expiration"]
    seconds = time.mktime(time.strptime(expires, "%Y-%m-%dT%H:%M:%SZ")) - time.mktime(time.gmtime(before))
    assert abs(seconds - site_aws.settings.upload_expiry_seconds) < 60


def test_no_js_upload_lands_in_raw_and_s3_redirects_to_the_done_page(alice_client, site_aws):
    action, fields, _ = no_js_form(alice_client)

    answer = post_to_s3(action, fields, JPEG.read_bytes())

    assert answer.status_code == 303
    done = urlsplit(answer.headers["Location"])
    assert done.path == "/upload/done/"
    assert parse_qs(done.query)["key"] == [fields["key"]]
    assert site_aws.object_store().read(fields["key"]) == JPEG.read_bytes()


def test_done_page_says_received_and_links_to_the_image_page(alice_client, site_aws):
    action, fields, _ = no_js_form(alice_client)
    location = post_to_s3(action, fields, JPEG.read_bytes()).headers["Location"]

    page = alice_client.get(location)

    image_id = keys.image_id_for_raw_key(fields["key"], site_aws.settings.secret)
    assert page.status_code == 200
    assert "Received, processing" in page.content.decode()
    assert f'href="/images/{image_id}/"' in page.content.decode()
    assert f'data-status-url="/my/{image_id}/status"' in page.content.decode()
    assert 'href="/my/"' in page.content.decode()


def test_done_page_refuses_someone_elses_upload(alice_client, django_user_model, site_aws):
    _, fields, _ = no_js_form(alice_client)
    bob = Client()
    bob.force_login(django_user_model.objects.create_user("bob"))

    response = bob.get("/upload/done/", {"bucket": site_aws.settings.bucket, "key": fields["key"]})

    assert response.status_code == 404


def test_done_page_refuses_an_unknown_key(alice_client, site_aws):
    key = keys.raw_key_for_upload(keys.new_image_id(), "upload")

    response = alice_client.get("/upload/done/", {"bucket": site_aws.settings.bucket, "key": key})

    assert response.status_code == 404


def test_done_page_refuses_another_bucket_or_a_key_outside_raw(alice_client, site_aws):
    _, fields, _ = no_js_form(alice_client)

    other_bucket = alice_client.get("/upload/done/", {"bucket": "someone-elses-bucket", "key": fields["key"]})
    not_raw = alice_client.get("/upload/done/", {"bucket": site_aws.settings.bucket, "key": "public/thumbs/x.jpg"})

    assert other_bucket.status_code == 400
    assert not_raw.status_code == 400


# -- the JavaScript path: one policy per file ------------------------------------------------------------------


def test_policy_for_a_file_fixes_its_exact_key_and_type(alice_client, site_aws):
    response = ask_policy(alice_client, name="Beach day.JPG", size=123_456, type="image/jpeg")

    assert response.status_code == 200
    ticket = response.json()
    assert (
        ticket["key"] == keys.raw_key_for_upload(ticket["id"], "Beach day.JPG") == f"raw/{ticket['id']}/Beach-day.JPG"
    )
    assert plain_conditions(policy_of(ticket["fields"])) == [
        ["content-length-range", 1, 123_456],  # the declared size: what the upload quota counted
        {"Content-Type": "image/jpeg"},
        {"success_action_status": "201"},
        {"bucket": site_aws.settings.bucket},
        {"key": ticket["key"]},
    ]
    record = site_aws.image_store().get(ticket["id"])
    assert (record.status, record.owner, record.file_name) == (Status.UPLOADING, "alice", "Beach day.JPG")
    assert ticket["status_url"] == f"/my/{ticket['id']}/status"  # the owner's, which answers before publishing


@pytest.mark.parametrize("content_type", ["image/png", "image/webp", "image/avif", "image/heic", "image/tiff"])
def test_policy_accepts_every_image_type_the_processor_reads(alice_client, site_aws, content_type):
    response = ask_policy(alice_client, name="x", size=10, type=content_type)

    assert response.status_code == 200
    assert {"Content-Type": content_type} in policy_of(response.json()["fields"])["conditions"]


def test_policy_refuses_a_file_that_is_not_an_image_with_a_message(alice_client, site_aws):
    response = ask_policy(alice_client, name="cv.pdf", size=10_000, type="application/pdf")

    assert response.status_code == 400
    assert "application/pdf is not an accepted image type" in response.json()["error"]
    assert site_aws.image_store().query_page(records.ENTITY_INDEX, records.ENTITY_IMAGE, limit=10).records == []


def test_policy_refuses_a_file_over_the_limit_with_a_message(alice_client, site_aws):
    limit = site_aws.settings.imaging.max_bytes

    response = ask_policy(alice_client, name="huge.jpg", size=limit + 1, type="image/jpeg")

    assert response.status_code == 400
    assert response.json()["error"] == "The file is 50.0 MB; the largest accepted upload is 50.0 MB."
    assert site_aws.image_store().query_page(records.ENTITY_INDEX, records.ENTITY_IMAGE, limit=10).records == []


@pytest.mark.parametrize(
    ("claim", "message"),
    [
        ({"name": "a.jpg", "size": 0, "type": "image/jpeg"}, "empty"),
        ({"name": "a.jpg", "type": "image/jpeg"}, "size is unknown"),
        ({"name": "", "size": 10, "type": "image/jpeg"}, "no name"),
        ({"name": "a.jpg", "size": 10}, "does not look like an image"),
    ],
)
def test_policy_refuses_incomplete_requests_with_a_message(alice_client, site_aws, claim, message):
    response = ask_policy(alice_client, **claim)

    assert response.status_code == 400
    assert message in response.json()["error"]


def test_policy_refuses_a_body_that_is_not_json(alice_client, site_aws):
    response = alice_client.post("/upload/policy/", "name=a.jpg", content_type="application/x-www-form-urlencoded")

    assert response.status_code == 400


def test_a_script_upload_may_be_no_larger_than_the_size_it_declared(alice_client, site_aws):
    # moto does not enforce POST policies; what S3 enforces is the condition, asserted exactly above. Here: the
    # policy allows the declared size and no more (the byte quota counts that size), within MAX_UPLOAD_BYTES.
    limit = site_aws.settings.imaging.max_bytes
    small = ask_policy(alice_client, name="a.jpg", size=10, type="image/jpeg").json()
    largest = ask_policy(alice_client, name="b.jpg", size=limit, type="image/jpeg").json()

    ranges = [[c for c in policy_of(t["fields"])["conditions"] if isinstance(c, list)] for t in (small, largest)]

    assert ranges == [[["content-length-range", 1, 10]], [["content-length-range", 1, limit]]]


def test_the_no_js_form_may_carry_the_largest_accepted_upload(alice_client, site_aws):
    _, fields, _ = no_js_form(alice_client)

    (length_range,) = [c for c in policy_of(fields)["conditions"] if isinstance(c, list)]

    assert length_range == ["content-length-range", 1, site_aws.settings.imaging.max_bytes]


def test_script_upload_then_done_then_processing_makes_the_image_ready(alice_client, site_aws):
    ticket = ask_policy(alice_client, name="canon.jpg", size=JPEG.stat().st_size, type="image/jpeg").json()

    answer = post_to_s3(ticket["url"], ticket["fields"], JPEG.read_bytes(), "canon.jpg")
    confirmed = alice_client.get(ticket["done_url"], HTTP_ACCEPT="application/json")
    process(site_aws, ticket["key"])

    assert int(answer.status_code) == 201  # moto answers with the string "201"
    assert confirmed.json() == {"id": ticket["id"], "status": "uploading"}
    assert alice_client.get(ticket["status_url"]).json()["state"] == "ready"
    document = alice_client.get(f"/api/images/{ticket['id']}").json()
    assert document["status"] == "ready"
    assert re.search(rf"/thumbs/{ticket['id']}/[a-z2-7]{{10}}-90x68\.jpg$", document["thumbnail"])


# -- M6: file names and bodies of bounded size, errors as JSON -----------------------------------------------------


def stored_names(aws: Aws) -> list[str]:
    """Every file name the table holds (a Scan: fine for a test's handful of items)."""
    items = aws.dynamodb.scan(TableName=aws.settings.table)["Items"]
    return [item["file_name"]["S"] for item in items if "file_name" in item]


def test_a_long_file_name_is_stored_cut_to_255_characters_keeping_its_extension(alice_client, site_aws):
    name = "holiday " * 150 + "final.jpeg"  # 1,210 characters: inside the body limit, far over the name limit

    answer = ask_policy(alice_client, name=name, size=1, type="image/jpeg")

    assert answer.status_code == 200
    stored = site_aws.image_store().get(answer.json()["id"]).file_name
    assert len(stored) <= 255
    assert stored.startswith("holiday holiday")
    assert stored.endswith(".jpeg")
    assert stored_names(site_aws) == [stored]


def test_the_reviews_180000_character_name_is_never_stored_at_length(alice_client, site_aws):
    """The review's probe test_p1_file_name_is_stored_unbounded (stored length was 180,004)."""
    name = "a" * 180_000 + ".jpg"

    answer = ask_policy(alice_client, name=name, size=1, type="image/jpeg")

    assert answer["Content-Type"] == "application/json"
    if answer.status_code == 200:
        assert len(site_aws.image_store().get(answer.json()["id"]).file_name) <= 255
    else:
        assert answer.status_code == 413
    assert all(len(stored) <= 255 for stored in stored_names(site_aws))


def test_the_reviews_300000_character_body_gets_a_json_413_not_an_html_500(alice_client, site_aws):
    """The review's probe test_p1_file_name_too_big_for_dynamodb_is_a_500."""
    answer = ask_policy(alice_client, name="a" * 300_000 + ".jpg", size=1, type="image/jpeg")

    assert answer.status_code == 413
    assert answer["Content-Type"] == "application/json"
    assert "at most 4096 bytes" in answer.json()["error"]
    assert stored_names(site_aws) == []


def test_control_and_invisible_characters_are_dropped_from_the_stored_name(alice_client, site_aws):
    name = "evil\x00\x1b[31m\u202egpj.\u200bexe\r\n  photo\t.jpg"

    answer = ask_policy(alice_client, name=name, size=1, type="image/jpeg")

    stored = site_aws.image_store().get(answer.json()["id"]).file_name
    assert stored == "evil[31mgpj.exe photo .jpg"
    assert answer.json()["key"].endswith("/evil-31mgpj.exe-photo-.jpg")


def test_a_name_of_nothing_but_control_characters_is_refused(alice_client, site_aws):
    answer = ask_policy(alice_client, name="\x00\x07\u200b", size=1, type="image/jpeg")

    assert answer.status_code == 400
    assert answer.json() == {"error": "The file has no name."}


def test_a_store_failure_while_asking_for_a_policy_is_a_json_503_with_a_sentence(alice_client, site_aws):
    def unreachable(**_: Any) -> None:
        raise EndpointConnectionError(endpoint_url="https://dynamodb.us-east-1.amazonaws.com")

    site_aws.dynamodb.meta.events.register("before-call.dynamodb.*", unreachable)

    answer = ask_policy(alice_client, name="a.jpg", size=1, type="image/jpeg")

    assert answer.status_code == 503
    assert answer["Content-Type"] == "application/json"
    assert answer.json() == {
        "error": "Uploads are not available right now (the image store did not answer). Try again in a minute."
    }


def test_a_store_failure_while_preparing_a_no_js_form_is_a_503_page_with_a_sentence(alice_client, site_aws):
    def unreachable(**_: Any) -> None:
        raise EndpointConnectionError(endpoint_url="https://dynamodb.us-east-1.amazonaws.com")

    site_aws.dynamodb.meta.events.register("before-call.dynamodb.*", unreachable)

    page = alice_client.post("/upload/")

    assert page.status_code == 503
    assert "Uploads are not available right now" in page.content.decode()
    assert 'action="/upload/"' in page.content.decode()  # the button to try again
