"""Upload quotas (review M5): uploads and bytes per rolling 24 hours and forms open at once, per person, a 429
with a sentence and Retry-After when over; a page view of /upload/ creates nothing."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
from conftest import PHOTOS, ROOT
from django.core.exceptions import ImproperlyConfigured
from django.test import Client
from test_settings import load_settings

from gallery import quotas
from gallery.models import UploadGrant
from pipeline import keys, records
from pipeline.records import Status
from pipeline.store import Aws

JPEG = PHOTOS / "Canon_40D.jpg"
MB = 1024 * 1024
START = datetime(2026, 12, 2, 11, 0, tzinfo=UTC)  # a Wednesday, 11:00 UTC


class Clock:
    """The quotas' clock, moved by hand."""

    def __init__(self, moment: datetime) -> None:
        self.moment = moment

    def __call__(self) -> datetime:
        return self.moment

    def advance(self, **delta: float) -> None:
        self.moment += timedelta(**delta)


@pytest.fixture
def clock(monkeypatch) -> Clock:
    clock = Clock(START)
    monkeypatch.setattr(quotas, "now", clock)
    return clock


@pytest.fixture
def quota(settings):
    """Small quotas for people and staff; a test changes one number by assigning to the dict."""
    settings.UPLOAD_QUOTA = {"uploads": 3, "bytes": 200 * MB, "open_forms": 10}
    settings.STAFF_UPLOAD_QUOTA = {"uploads": 5, "bytes": 400 * MB, "open_forms": 20}
    return settings


@pytest.fixture
def alice(django_user_model):
    return django_user_model.objects.create_user("alice")


@pytest.fixture
def alice_client(client, alice) -> Client:
    client.force_login(alice)
    return client


def ask_policy(client: Client, name: str = "a.jpg", size: int = 1000, content_type: str = "image/jpeg"):
    claim = {"name": name, "size": size, "type": content_type}
    return client.post("/upload/policy/", json.dumps(claim), content_type="application/json")


def uploading_records(aws: Aws) -> list[records.ImageRecord]:
    return aws.image_store().query_page(records.STATUS_INDEX, Status.UPLOADING.value, limit=500).records


def assert_refused(response, sentence: str, retry_after: int) -> None:
    assert response.status_code == 429
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"error": sentence}
    assert response["Retry-After"] == str(retry_after)


def upload_and_confirm(client: Client, ticket: dict[str, Any], body: bytes) -> None:
    """What upload.js does once it has a policy: POST the file to S3, then tell the done page."""
    answer = requests.post(ticket["url"], data=ticket["fields"], files={"file": ("a.jpg", body)}, timeout=10)
    assert int(answer.status_code) == 201  # moto answers with the string "201"
    assert client.get(ticket["done_url"], HTTP_ACCEPT="application/json").status_code == 200


# -- a page view creates nothing; the no-JS form is prepared by a POST --------------------------------------------


def test_viewing_the_upload_page_creates_no_record_and_no_grant(alice_client, site_aws):
    calls: list[str] = []
    site_aws.dynamodb.meta.events.register("before-call.dynamodb.*", lambda model, **_: calls.append(model.name))

    pages = [alice_client.get("/upload/") for _ in range(3)]

    assert [page.status_code for page in pages] == [200, 200, 200]
    assert calls == []
    assert uploading_records(site_aws) == []
    assert UploadGrant.objects.count() == 0
    html = pages[0].content.decode()
    assert re.search(r'<form id="upload-form" class="dropzone" method="post"\s+action="/upload/"', html)
    assert 'name="csrfmiddlewaretoken"' in html
    assert ">Prepare an upload</button>" in html
    assert 'name="key"' not in html  # no S3 form, no policy


def test_preparing_an_upload_creates_its_record_and_grant_and_shows_the_s3_form(alice_client, alice, site_aws):
    page = alice_client.post("/upload/")

    html = page.content.decode()
    (record,) = uploading_records(site_aws)
    (grant,) = UploadGrant.objects.all()
    assert page.status_code == 200
    assert (record.status, record.owner) == (Status.UPLOADING, "alice")
    assert f'name="key" value="{record.raw_key}"' in html
    assert (grant.user, grant.image_id, grant.confirmed_at) == (alice, record.id, None)
    assert grant.size_bytes == site_aws.settings.imaging.max_bytes  # the form cannot know its file: the most
    assert 'type="file" name="file"' in html


def test_preparing_an_upload_needs_the_csrf_token(alice, site_aws):
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(alice)

    forged = strict.post("/upload/")
    page = strict.get("/upload/")
    token = page.context["csrf_token"]
    prepared = strict.post("/upload/", {"csrfmiddlewaretoken": str(token)})

    assert forged.status_code == 403
    assert prepared.status_code == 200
    assert len(uploading_records(site_aws)) == 1


def test_the_reviews_probe_60_policies_and_20_page_views_hit_the_limit_and_views_make_nothing(
    alice_client, site_aws, clock
):
    """The review's test_p1_one_user_mints_unlimited_records (80 records, all 200) with the default quotas:
    each form expires before the next is asked for, so only the 50 a day limit stops the person."""
    answers = []
    for _ in range(60):
        answers.append(ask_policy(alice_client).status_code)
        clock.advance(seconds=site_aws.settings.upload_expiry_seconds + 1)
    views = [alice_client.get("/upload/").status_code for _ in range(20)]

    assert answers == [200] * 50 + [429] * 10
    assert views == [200] * 20
    assert len(uploading_records(site_aws)) == 50
    assert UploadGrant.objects.count() == 50
    refusal = ask_policy(alice_client).json()["error"]
    assert refusal.startswith("You have started 50 uploads in the last 24 hours, the most allowed.")


# -- each limit -----------------------------------------------------------------------------------------------------


def test_uploads_per_day_over_the_limit_get_a_429_saying_when_to_come_back(alice_client, site_aws, quota, clock):
    for _ in range(3):
        assert ask_policy(alice_client).status_code == 200
        clock.advance(hours=1)  # 11:00, 12:00, 13:00; now 14:00

    answer = ask_policy(alice_client)

    assert_refused(
        answer,
        "You have started 3 uploads in the last 24 hours, the most allowed. "
        "You can upload again at 11:00 UTC tomorrow (in about 21 hours).",
        retry_after=21 * 3600,
    )
    assert len(uploading_records(site_aws)) == 3  # a refusal makes no record
    assert UploadGrant.objects.count() == 3


def test_the_window_rolls_the_oldest_upload_out_after_24_hours(alice_client, site_aws, quota, clock):
    for _ in range(3):
        assert ask_policy(alice_client).status_code == 200
        clock.advance(hours=1)
    clock.moment = START + timedelta(hours=24) - timedelta(seconds=1)
    still_refused = ask_policy(alice_client)
    clock.advance(seconds=1)  # 11:00 tomorrow: the first upload leaves the window

    admitted = ask_policy(alice_client)
    refused_again = ask_policy(alice_client)

    assert still_refused.status_code == 429
    assert still_refused["Retry-After"] == "1"
    assert still_refused.json()["error"].endswith("You can upload again at 11:00 UTC (in about a minute).")
    assert admitted.status_code == 200
    assert refused_again.status_code == 429
    assert refused_again.json()["error"].endswith("You can upload again at 12:00 UTC (in about 60 minutes).")
    assert UploadGrant.objects.count() == 3  # the grant that left the window was deleted when granting


def test_bytes_per_day_count_the_declared_sizes(alice_client, site_aws, quota, clock):
    quota.UPLOAD_QUOTA = {"uploads": 50, "bytes": 100 * MB, "open_forms": 10}
    assert ask_policy(alice_client, size=40 * MB).status_code == 200
    clock.advance(minutes=30)
    assert ask_policy(alice_client, size=40 * MB).status_code == 200
    clock.advance(minutes=30)  # 12:00

    too_big = ask_policy(alice_client, size=30 * MB)
    fits = ask_policy(alice_client, size=20 * MB)

    assert_refused(
        too_big,
        "Your uploads in the last 24 hours add up to 80.0 MB of the 100.0 MB allowed, which leaves too little for "
        "this file (30.0 MB). You can upload again at 11:00 UTC tomorrow (in about 23 hours).",
        retry_after=23 * 3600,
    )
    assert fits.status_code == 200


def test_bytes_come_back_when_enough_of_the_oldest_uploads_leave_the_window(alice_client, site_aws, quota, clock):
    quota.UPLOAD_QUOTA = {"uploads": 50, "bytes": 100 * MB, "open_forms": 10}
    for size in (20 * MB, 20 * MB, 45 * MB):  # at 11:00, 12:00, 13:00
        assert ask_policy(alice_client, size=size).status_code == 200
        clock.advance(hours=1)

    answer = ask_policy(alice_client, size=40 * MB)

    # 85 MB used: 40 MB more fits once both 20 MB uploads have left, at 12:00 tomorrow.
    assert answer.json()["error"].endswith("You can upload again at 12:00 UTC tomorrow (in about 22 hours).")
    assert answer["Retry-After"] == str(22 * 3600)


def test_open_forms_over_the_limit_get_a_429_until_the_oldest_expires(alice_client, site_aws, quota, clock):
    quota.UPLOAD_QUOTA = {"uploads": 50, "bytes": 200 * MB, "open_forms": 2}
    assert ask_policy(alice_client).status_code == 200
    clock.advance(minutes=3)
    assert ask_policy(alice_client).status_code == 200
    clock.advance(minutes=1)  # 11:04; the first form expires at 11:10

    answer = ask_policy(alice_client)
    clock.moment = START + timedelta(seconds=site_aws.settings.upload_expiry_seconds)
    after_expiry = ask_policy(alice_client)

    assert_refused(
        answer,
        "You have 2 uploads under way (forms handed out and not yet used), the most allowed at once. You can "
        "upload again at 11:10 UTC (in about 6 minutes), when the oldest form expires; a finished upload frees "
        "its place sooner.",
        retry_after=6 * 60,
    )
    assert after_expiry.status_code == 200


def test_a_finished_upload_frees_its_open_form_at_once(alice_client, site_aws, quota, clock):
    quota.UPLOAD_QUOTA = {"uploads": 50, "bytes": 200 * MB, "open_forms": 1}
    body = JPEG.read_bytes()
    ticket = ask_policy(alice_client, size=len(body)).json()
    refused = ask_policy(alice_client)

    upload_and_confirm(alice_client, ticket, body)
    admitted = ask_policy(alice_client)

    assert refused.status_code == 429
    assert admitted.status_code == 200
    grant = UploadGrant.objects.get(image_id=ticket["id"])
    assert grant.confirmed_at == START
    assert grant.size_bytes == len(body)


def test_calling_the_done_url_without_uploading_does_not_free_the_form(alice_client, site_aws, quota, clock):
    quota.UPLOAD_QUOTA = {"uploads": 50, "bytes": 200 * MB, "open_forms": 1}
    ticket = ask_policy(alice_client).json()

    alice_client.get(ticket["done_url"], HTTP_ACCEPT="application/json")

    assert ask_policy(alice_client).status_code == 429
    assert UploadGrant.objects.get(image_id=ticket["id"]).confirmed_at is None


# -- the form without JavaScript --------------------------------------------------------------------------------------


def test_a_no_js_form_counts_the_largest_upload_until_done_then_its_real_size(alice_client, site_aws, quota, clock):
    quota.UPLOAD_QUOTA = {"uploads": 50, "bytes": 60 * MB, "open_forms": 10}
    page = alice_client.post("/upload/")
    fields = dict(page.context["fields"])
    body = JPEG.read_bytes()
    refused = ask_policy(alice_client, size=20 * MB)  # 50 MB counted + 20 MB > 60 MB

    answer = requests.post(
        page.context["ticket"].url, data=fields, files={"file": ("p.jpg", body)}, allow_redirects=False, timeout=10
    )
    done = alice_client.get(answer.headers["Location"])
    admitted = ask_policy(alice_client, size=20 * MB)

    assert refused.status_code == 429
    assert "add up to 50.0 MB of the 60.0 MB allowed" in refused.json()["error"]
    assert done.status_code == 200
    image_id = keys.image_id_for_raw_key(fields["key"], site_aws.settings.secret)
    assert UploadGrant.objects.get(image_id=image_id).size_bytes == len(body)
    assert admitted.status_code == 200


def test_preparing_a_no_js_form_over_quota_is_a_429_page_with_the_sentence(alice_client, site_aws, quota, clock):
    quota.UPLOAD_QUOTA = {"uploads": 50, "bytes": 60 * MB, "open_forms": 10}
    assert alice_client.post("/upload/").status_code == 200
    clock.advance(minutes=5)

    page = alice_client.post("/upload/")

    html = page.content.decode()
    sentence = (
        "Your uploads in the last 24 hours add up to 50.0 MB of the 60.0 MB allowed, which leaves too little for "
        "this form (it counts the largest file, 50.0 MB, until its upload is done). You can upload again at "
        "11:00 UTC tomorrow (in about 24 hours)."
    )
    assert page.status_code == 429
    assert page["Retry-After"] == str(24 * 3600 - 5 * 60)
    assert f'<p id="upload-error" class="message message--error" role="alert">{sentence}</p>' in html
    assert ">Prepare an upload</button>" in html  # try again later from the same page
    assert 'name="key"' not in html
    assert len(uploading_records(site_aws)) == 1


def test_the_no_js_upload_count_limit_names_the_count(alice_client, site_aws, quota, clock):
    for _ in range(3):
        assert alice_client.post("/upload/").status_code == 200

    page = alice_client.post("/upload/")

    assert page.status_code == 429
    assert "You have started 3 uploads in the last 24 hours, the most allowed." in page.content.decode()


# -- staff, people apart ----------------------------------------------------------------------------------------------


def test_staff_have_their_own_higher_quota(client, django_user_model, site_aws, quota, clock):
    client.force_login(django_user_model.objects.create_user("sam", is_staff=True))

    answers = [ask_policy(client).status_code for _ in range(6)]

    assert answers == [200] * 5 + [429]
    assert "You have started 5 uploads" in ask_policy(client).json()["error"]


def test_one_persons_quota_does_not_touch_anothers(alice_client, django_user_model, site_aws, quota, clock):
    for _ in range(3):
        ask_policy(alice_client)
    bob = Client()
    bob.force_login(django_user_model.objects.create_user("bob"))

    assert ask_policy(alice_client).status_code == 429
    assert ask_policy(bob).status_code == 200


def test_the_upload_page_states_the_quota(alice_client, site_aws, quota):
    html = alice_client.get("/upload/").content.decode()

    assert "You may upload 3 photos (200.0 MB) in any 24 hours." in html
    assert 'data-parallel="4"' in html


# -- settings --------------------------------------------------------------------------------------------------------

QUOTA_VARIABLES = [
    f"{prefix}_{name}"
    for prefix in ("UPLOAD_QUOTA", "STAFF_UPLOAD_QUOTA")
    for name in ("UPLOADS", "BYTES", "OPEN_FORMS")
]


def site_with(monkeypatch, env: dict[str, str]) -> dict[str, Any]:
    for name in [*QUOTA_VARIABLES, "MAX_UPLOAD_BYTES"]:
        monkeypatch.delenv(name, raising=False)
    return load_settings(monkeypatch, env)


def test_quotas_have_defaults_and_are_read_from_the_environment(monkeypatch):
    default = site_with(monkeypatch, {})
    tuned = site_with(monkeypatch, {"UPLOAD_QUOTA_UPLOADS": "7", "STAFF_UPLOAD_QUOTA_OPEN_FORMS": " 3 "})

    assert default["UPLOAD_QUOTA"] == {"uploads": 50, "bytes": 1024 * MB, "open_forms": 10}
    assert default["STAFF_UPLOAD_QUOTA"] == {"uploads": 500, "bytes": 10 * 1024 * MB, "open_forms": 50}
    assert tuned["UPLOAD_QUOTA"]["uploads"] == 7
    assert tuned["STAFF_UPLOAD_QUOTA"]["open_forms"] == 3
    # Local SQLite takes the write lock when a transaction begins (see quotas.admit).
    assert default["DATABASES"]["default"]["OPTIONS"]["transaction_mode"] == "IMMEDIATE"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"UPLOAD_QUOTA_UPLOADS": "0"}, "UPLOAD_QUOTA_UPLOADS must be a whole number of at least 1, not '0'"),
        ({"STAFF_UPLOAD_QUOTA_OPEN_FORMS": "ten"}, "STAFF_UPLOAD_QUOTA_OPEN_FORMS must be a whole number"),
        ({"UPLOAD_QUOTA_BYTES": "1000000"}, "UPLOAD_QUOTA_BYTES (1000000) is less than MAX_UPLOAD_BYTES (52428800)"),
    ],
)
def test_a_quota_that_cannot_work_stops_the_site_with_a_sentence(monkeypatch, env, message):
    with pytest.raises(ImproperlyConfigured) as refused:
        site_with(monkeypatch, env)

    assert message in str(refused.value)


# -- the check itself ---------------------------------------------------------------------------------------------


def grant(minutes_ago: float, size: int = MB, *, confirmed: bool = False, expires_in: int = 600) -> UploadGrant:
    created = START - timedelta(minutes=minutes_ago)
    return UploadGrant(
        image_id=keys.new_image_id(),
        size_bytes=size,
        created_at=created,
        expires_at=created + timedelta(seconds=expires_in),
        confirmed_at=created if confirmed else None,
    )


def test_when_several_limits_are_hit_the_one_lasting_longest_is_named():
    quota = quotas.Quota(uploads=2, bytes=10 * MB, open_forms=1)
    grants = [grant(60 * 5, confirmed=True), grant(2)]  # 06:00 (done) and 10:58 (open until 11:08)

    refusal = quotas.check(quota, grants, size_bytes=MB, moment=START)

    assert refusal is not None
    assert str(refusal).startswith("You have started 2 uploads")  # back at 06:00 tomorrow, not 11:08
    assert refusal.retry_after == 19 * 3600


def test_grants_outside_the_window_and_expired_or_done_forms_do_not_count():
    quota = quotas.Quota(uploads=1, bytes=MB, open_forms=1)
    grants = [grant(24 * 60, MB), grant(24 * 60 + 1, MB)]

    assert quotas.check(quota, grants, size_bytes=MB, moment=START) is None


def test_a_lowered_quota_waits_for_enough_uploads_to_leave():
    quota = quotas.Quota(uploads=2, bytes=100 * MB, open_forms=10)
    grants = [grant(60 * 4, confirmed=True), grant(60 * 3, confirmed=True), grant(60 * 2, confirmed=True)]

    refusal = quotas.check(quota, grants, size_bytes=MB, moment=START)

    assert refusal is not None
    assert str(refusal).startswith("You have started 3 uploads in the last 24 hours, more than the 2 allowed.")
    assert refusal.retry_at == START - timedelta(hours=3) + quotas.WINDOW  # the two oldest must leave


@pytest.mark.parametrize(
    ("wait", "said"),
    [
        (timedelta(seconds=20), "in about a minute"),
        (timedelta(minutes=7, seconds=1), "in about 8 minutes"),
        (timedelta(minutes=89), "in about 89 minutes"),
        (timedelta(hours=1, minutes=31), "in about 2 hours"),
        (timedelta(hours=23, minutes=59), "in about 24 hours"),
    ],
)
def test_the_wait_is_said_in_round_words(wait, said):
    assert quotas._in_about(wait) == said


def test_the_clock_time_is_rounded_up_to_the_minute_and_says_tomorrow():
    assert quotas._again(START + timedelta(minutes=4, seconds=1), START) == (
        "You can upload again at 11:05 UTC (in about 5 minutes)"
    )
    assert quotas._again(START + timedelta(hours=14), START).startswith("You can upload again at 01:00 UTC tomorrow")


# -- concurrency ------------------------------------------------------------------------------------------------------


# Run in a child process against a database of its own (a SQLite file, or the PostgreSQL of
# QUOTA_RACE_DATABASE_URL): pytest-django's in-memory SQLite shares one cache between threads, whose locks fail
# at once instead of waiting, so it cannot show what a real database does. The record is not made (start is a stub):
# the race is the database's.
RACE = """
import json, threading
import django
django.setup()
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connection
from gallery import quotas, services
from gallery.models import UploadGrant
from pipeline import keys

call_command("migrate", verbosity=0)
get_user_model().objects.filter(username="racer").delete()
racer = get_user_model().objects.create_user("racer")
second = {}

def ticket():
    return services.UploadTicket(keys.new_image_id(), "raw/x/upload", "https://s3", {}, "image/jpeg", 600)

def second_request():
    try:
        quotas.admit(racer, size_bytes=1, start=ticket)
        second["outcome"] = "admitted"
    except quotas.QuotaExceeded:
        second["outcome"] = "refused"
    except Exception as error:
        second["outcome"] = repr(error)
    finally:
        connection.close()

thread = threading.Thread(target=second_request)

def first_start():
    thread.start()
    thread.join(timeout=1)
    second["waited"] = thread.is_alive()  # still blocked on the first request's lock
    return ticket()

quotas.admit(racer, size_bytes=1, start=first_start)
thread.join(timeout=30)
second["grants"] = UploadGrant.objects.filter(user=racer).count()
print(json.dumps(second))
"""


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_two_requests_at_once_cannot_both_take_the_last_place(database, tmp_path):
    """A person's first request holds its transaction open while its record is made (``start``); a second
    request of theirs, arriving then, waits for it, then counts its grant and is refused: never both admitted."""
    if database == "postgresql":
        url = os.environ.get("QUOTA_RACE_DATABASE_URL", "")
        if not url.startswith("postgres"):
            pytest.skip("set QUOTA_RACE_DATABASE_URL=postgres://... to race on PostgreSQL")
    else:
        url = f"sqlite:///{tmp_path / 'race.sqlite3'}"
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "UPLOAD_QUOTA_UPLOADS": "1",
        "DJANGO_SETTINGS_MODULE": "pipeline_site.settings",
    }

    run = subprocess.run([sys.executable, "-c", RACE], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)

    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout.strip().splitlines()[-1]) == {"waited": True, "outcome": "refused", "grants": 1}
