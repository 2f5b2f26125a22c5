"""Hide, unhide and delete take an image's files off (and back onto) the CDN: pipeline.visibility on moto."""

from __future__ import annotations

import dataclasses
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
from botocore.stub import ANY, Stubber

from local_stack.cdn import CdnServer
from pipeline import keys, records, trash, visibility
from pipeline.records import ImageRecord, InTrash, Rendition, Status
from pipeline.store import IMMUTABLE_CACHE_CONTROL, Aws, NoCdnCache, ObjectStore

DISTRIBUTION_ID = "E2EXAMPLE7TEST"
# A small ladder and two tiles, each as JPEG and WebP: the shape of a processor run's output.
SIZES = {"optimized": ((320, 240), (640, 480)), "thumb": ((256, 192), (560, 420))}


class RecordingCdn:
    """A Cdn that remembers what it was asked to forget."""

    def __init__(self) -> None:
        self.invalidations: list[tuple[str, ...]] = []

    def invalidate(self, paths) -> str | None:
        self.invalidations.append(tuple(sorted(paths)))
        return "I1"


def versioned_renditions(image_id: str, version: str, *, hidden: bool = False) -> tuple[Rendition, ...]:
    return tuple(
        Rendition(
            name,
            fmt,
            keys.rendition_key(image_id, name, fmt, version=version, width=w, height=h, hidden=hidden),
            w,
            h,
            100 + w,
        )
        for name, sizes in SIZES.items()
        for w, h in sizes
        for fmt in ("jpeg", "webp")
    )


def legacy_renditions(image_id: str) -> tuple[Rendition, ...]:
    """The flat layout before versioned keys: public/thumbs/<id>.jpg and friends."""
    shapes = {"thumbs": ("thumb", 400, 300), "optimized": ("optimized", 1920, 1440)}
    found = []
    for key in keys.legacy_rendition_keys(image_id):
        folder = key.split("/")[1]
        name, width, height = shapes[folder]
        found.append(Rendition(name, "jpeg" if key.endswith(".jpg") else "webp", key, width, height, 1000))
    return tuple(found)


def body_of(key: str) -> bytes:
    return f"bytes of {keys.public_key(key)}".encode()


def write_files(objects: ObjectStore, renditions: tuple[Rendition, ...]) -> None:
    for rendition in renditions:
        objects.write(rendition.key, body_of(rendition.key), rendition.content_type)


def stored_image(
    aws: Aws, *, hidden: bool = False, legacy: bool = False, n: int = 1, status: Status = Status.READY
) -> ImageRecord:
    """A ready image as the processor leaves it: raw upload, renditions written, record pointing at them."""
    image_id = keys.new_image_id()
    raw_key = keys.raw_key_for_upload(image_id, f"IMG_{n:04d}.jpg")
    objects = aws.object_store()
    objects.write(raw_key, b"raw jpeg bytes", "image/jpeg", cache_control="no-cache")
    renditions = legacy_renditions(image_id) if legacy else versioned_renditions(image_id, keys.new_version())
    if hidden:
        renditions = tuple(dataclasses.replace(r, key=keys.hidden_key(r.key)) for r in renditions)
    if status is not Status.READY:
        renditions = ()  # a failed or unfinished image has no renditions
    write_files(objects, renditions)
    record = records.new_record(image_id, raw_key, Status.PROCESSING, at=f"2026-11-01T09:{n:02d}:00.000000Z")
    if status is not Status.PROCESSING:
        record = record.with_status(status)
    record = record.replace(renditions=renditions, hidden=hidden, title=f"Photo {n}")
    return aws.image_store().create(record)


def all_keys(objects: ObjectStore, image_id: str) -> set[str]:
    found = {key for prefix in keys.image_rendition_prefixes(image_id) for key in objects.list_keys(prefix)}
    return found | {key for key in keys.legacy_rendition_keys(image_id) if objects.exists(key)}


def listed_ids(aws: Aws) -> list[str]:
    page = aws.image_store().query_page(records.LISTED_INDEX, records.LISTED_ALL, limit=100)
    return [record.id for record in page.records]


@pytest.fixture
def cdn_url(aws: Aws) -> Iterator[str]:
    """The local CDN stand-in (what `make run` serves public/ with) on a free port, reading this test's moto."""
    server = CdnServer(0, aws.s3, aws.settings.bucket)
    server.start()
    host, port = server._server.server_address[:2]
    yield f"http://{host}:{port}"
    server.stop()


def cdn_status(cdn_url: str, key: str) -> int:
    try:
        with urllib.request.urlopen(f"{cdn_url}/{keys.cdn_path(keys.public_key(key))}", timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


# -- hide and unhide -------------------------------------------------------------------------------------------


def test_hiding_moves_every_rendition_off_public_and_the_cdn_path_404s(aws, cdn_url):
    record = stored_image(aws)
    objects = aws.object_store()
    assert {cdn_status(cdn_url, r.key) for r in record.renditions} == {200}

    hidden = visibility.set_hidden(aws.image_store(), objects, NoCdnCache(), record.id, True)

    assert hidden.hidden
    assert [r.key for r in hidden.renditions] == [keys.hidden_key(r.key) for r in record.renditions]
    assert all_keys(objects, record.id) == {r.key for r in hidden.renditions}
    assert {cdn_status(cdn_url, r.key) for r in record.renditions} == {404}
    assert record.id not in listed_ids(aws)
    for rendition in hidden.renditions:
        head = aws.s3.head_object(Bucket=aws.settings.bucket, Key=rendition.key)
        assert (head["ContentType"], head["CacheControl"]) == (rendition.content_type, IMMUTABLE_CACHE_CONTROL)
        assert objects.read(rendition.key) == body_of(rendition.key)


def test_unhiding_puts_every_rendition_back_where_the_cdn_serves_it(aws, cdn_url):
    record = stored_image(aws)
    objects = aws.object_store()
    visibility.set_hidden(aws.image_store(), objects, NoCdnCache(), record.id, True)

    shown = visibility.set_hidden(aws.image_store(), objects, NoCdnCache(), record.id, False)

    assert not shown.hidden
    assert shown.renditions == record.renditions
    assert all_keys(objects, record.id) == {r.key for r in record.renditions}
    assert {cdn_status(cdn_url, r.key) for r in record.renditions} == {200}
    assert listed_ids(aws) == [record.id]
    head = aws.s3.head_object(Bucket=aws.settings.bucket, Key=record.renditions[0].key)
    assert head["CacheControl"] == IMMUTABLE_CACHE_CONTROL


def test_a_hidden_image_in_the_legacy_flat_layout_moves_too(aws, cdn_url):
    record = stored_image(aws, legacy=True)

    hidden = visibility.set_hidden(aws.image_store(), aws.object_store(), NoCdnCache(), record.id, True)

    assert all(keys.is_hidden_key(r.key) for r in hidden.renditions)
    assert not any(aws.object_store().exists(key) for key in keys.legacy_rendition_keys(record.id))
    assert {cdn_status(cdn_url, r.key) for r in record.renditions} == {404}


@pytest.mark.parametrize("settings_env", [{"CDN_DISTRIBUTION_ID": DISTRIBUTION_ID}])
def test_hiding_asks_cloudfront_to_forget_the_images_two_folders(aws):
    record = stored_image(aws)
    cdn = aws.cdn()
    with Stubber(aws.cloudfront) as cloudfront:
        cloudfront.add_response(
            "create_invalidation",
            {"Location": "https://cloudfront.amazonaws.com/x", "Invalidation": invalidation("I2")},
            {
                "DistributionId": DISTRIBUTION_ID,
                "InvalidationBatch": {
                    "Paths": {
                        "Quantity": 4,
                        "Items": [
                            f"/api/images/{record.id}",
                            f"/images/{record.id}/",
                            f"/optimized/{record.id}/*",
                            f"/thumbs/{record.id}/*",
                        ],
                    },
                    "CallerReference": ANY,
                },
            },
        )
        visibility.set_hidden(aws.image_store(), aws.object_store(), cdn, record.id, True)
        cloudfront.assert_no_pending_responses()


@pytest.mark.parametrize("settings_env", [{"CDN_DISTRIBUTION_ID": DISTRIBUTION_ID}])
def test_unhiding_and_settling_a_settled_image_invalidate_nothing(aws):
    record = stored_image(aws, hidden=True)
    cdn = aws.cdn()
    with Stubber(aws.cloudfront):  # no responses queued: any CloudFront call fails the test
        visibility.settle(aws.image_store(), aws.object_store(), cdn, record.id)
        shown = visibility.set_hidden(aws.image_store(), aws.object_store(), cdn, record.id, False)
        visibility.settle(aws.image_store(), aws.object_store(), cdn, record.id)

    assert not any(keys.is_hidden_key(r.key) for r in shown.renditions)


def test_hiding_an_image_already_hidden_still_invalidates_once(aws):
    """A re-run after a crash between the deletes and the invalidation must still reach the CDN."""
    record = stored_image(aws, hidden=True)
    cdn = RecordingCdn()

    visibility.set_hidden(aws.image_store(), aws.object_store(), cdn, record.id, True)

    assert cdn.invalidations == [tuple(sorted(keys.cdn_invalidation_paths(record.id)))]


def invalidation(invalidation_id: str) -> dict:
    from datetime import UTC, datetime

    return {
        "Id": invalidation_id,
        "Status": "InProgress",
        "CreateTime": datetime(2026, 11, 1, tzinfo=UTC),
        "InvalidationBatch": {"Paths": {"Quantity": 0}, "CallerReference": "x"},
    }


# -- delete ----------------------------------------------------------------------------------------------------


def test_remove_all_deletes_every_rendition_on_both_sides_in_both_layouts_then_invalidates(aws):
    record = stored_image(aws)
    objects = aws.object_store()
    # What earlier runs and crashes can leave: an older version, a hidden twin, the flat legacy files.
    write_files(objects, versioned_renditions(record.id, keys.new_version()))
    objects.write(keys.hidden_key(record.renditions[0].key), b"twin", "image/jpeg")
    write_files(objects, legacy_renditions(record.id))
    other = stored_image(aws, n=2)
    cdn = RecordingCdn()

    visibility.remove_all(objects, cdn, record)

    assert all_keys(objects, record.id) == set()
    assert cdn.invalidations == [tuple(sorted(keys.cdn_invalidation_paths(record.id)))]
    assert all_keys(objects, other.id) == {r.key for r in other.renditions}  # nobody else's files


def test_remove_all_of_an_image_that_never_had_public_files_does_not_invalidate(aws):
    record = stored_image(aws, status=Status.FAILED)
    cdn = RecordingCdn()

    visibility.remove_all(aws.object_store(), cdn, record)

    assert cdn.invalidations == []


# -- crashes and races ---------------------------------------------------------------------------------------------


class Crash(Exception):
    pass


@pytest.mark.parametrize("crash_at", ["record update", "delete"])
def test_settle_run_again_after_a_crash_finishes_the_move(aws, monkeypatch, crash_at):
    record = stored_image(aws)
    images, objects, cdn = aws.image_store(), aws.object_store(), RecordingCdn()
    target = (type(images), "update") if crash_at == "record update" else (ObjectStore, "delete")
    with monkeypatch.context() as patch:
        original = getattr(*target)
        calls = []

        def crash_once(self, *args, **kwargs):
            calls.append(args)
            # The first update is set_hidden's flag flip: the crash is at the move's own update.
            if crash_at == "delete" or len(calls) == 2:
                raise Crash(f"power cut at the {crash_at}")
            return original(self, *args, **kwargs)

        patch.setattr(*target, crash_once)
        with pytest.raises(Crash):
            visibility.set_hidden(images, objects, cdn, record.id, True)

    # Both copies exist: nothing was lost, nothing is finished.
    public = {r.key for r in record.renditions}
    assert all_keys(objects, record.id) == public | {keys.hidden_key(key) for key in public}
    assert images.get(record.id).hidden
    assert cdn.invalidations == []

    settled = visibility.settle(images, objects, cdn, record.id)

    assert all_keys(objects, record.id) == {keys.hidden_key(key) for key in public}
    assert [r.key for r in settled.renditions] == [keys.hidden_key(r.key) for r in record.renditions]
    assert cdn.invalidations == [tuple(sorted(keys.cdn_invalidation_paths(record.id)))]


def test_settle_when_a_processor_replaced_the_renditions_meanwhile_keeps_the_new_ones(aws, monkeypatch):
    record = stored_image(aws)
    images, objects = aws.image_store(), aws.object_store()
    images.update(record.id, lambda current: current.replace(hidden=True))  # staff hid it; settle comes next
    new = versioned_renditions(record.id, keys.new_version())
    original_copy = ObjectStore.copy
    copies: list[str] = []

    def copy_while_a_processor_finishes(self, source, dest):
        original_copy(self, source, dest)
        copies.append(dest)
        if len(copies) == 1:
            # A processor run that claimed the record before it was hidden writes its version under public/
            # and marks the record ready with it, between this move's copies and its record update.
            write_files(objects, new)
            images.update(record.id, lambda current: current.replace(renditions=new))

    monkeypatch.setattr(ObjectStore, "copy", copy_while_a_processor_finishes)
    settled = visibility.settle(images, objects, RecordingCdn(), record.id)

    assert [r.key for r in settled.renditions] == [keys.hidden_key(r.key) for r in new]
    for rendition in settled.renditions:
        assert objects.read(rendition.key) == body_of(rendition.key)
    # The first move's copies of the old version are gone; the old public files are the processor's to delete.
    assert not any(objects.exists(keys.hidden_key(r.key)) for r in record.renditions)
    assert all(objects.exists(r.key) for r in record.renditions)
    assert not any(objects.exists(r.key) for r in new)  # public copies of the new version moved to hidden/


def test_settle_of_a_missing_record_is_none(aws):
    assert visibility.settle(aws.image_store(), aws.object_store(), RecordingCdn(), keys.new_image_id()) is None


# -- the store's additions ---------------------------------------------------------------------------------------


def test_list_keys_reads_every_page_and_only_under_the_prefix(aws):
    objects = aws.object_store()
    image_id = keys.new_image_id()
    folder = f"public/thumbs/{image_id}/"
    for n in range(1001):  # one more than a ListObjectsV2 page
        objects.write(f"{folder}{n:04d}.jpg", b"x", "image/jpeg")
    objects.write(f"public/thumbs/{image_id}.jpg", b"x", "image/jpeg")

    assert sorted(objects.list_keys(folder)) == [f"{folder}{n:04d}.jpg" for n in range(1001)]


def test_copy_of_a_missing_object_says_which(aws):
    from pipeline.store import ObjectMissing

    with pytest.raises(ObjectMissing, match="public/nothing-here"):
        aws.object_store().copy("public/nothing-here", "hidden/nothing-here")


def test_hiding_or_showing_an_image_in_the_trash_is_refused(aws):
    record = stored_image(aws)
    trash.trash(aws.image_store(), aws.object_store(), NoCdnCache(), record.id, by="root", retention_days=30)

    for hidden in (True, False):
        with pytest.raises(InTrash, match="is in the trash: restore it first"):
            visibility.set_hidden(aws.image_store(), aws.object_store(), NoCdnCache(), record.id, hidden)

    assert aws.image_store().get(record.id).hidden is False
