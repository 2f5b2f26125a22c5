"""`python -m pipeline.reprocess`: touch every matching image's original so the processor renders it again."""

from __future__ import annotations

import io
import subprocess
import sys

import pytest
from conftest import ROOT
from test_visibility import stored_image

from pipeline import reprocess, trash
from pipeline.records import Status
from pipeline.store import NoCdnCache


class FakeClock:
    """A clock that moves only when the throttle sleeps: rate limiting is checked without waiting."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def run(aws, *arguments: str, clock: FakeClock | None = None) -> tuple[int, str]:
    clock = clock or FakeClock()
    out = io.StringIO()
    code = reprocess.main(["--all", *arguments], aws=aws, sleep=clock.sleep, clock=clock, out=out)
    return code, out.getvalue()


def touched(aws, record) -> bool:
    head = aws.s3.head_object(Bucket=aws.settings.bucket, Key=record.raw_key)
    return "touched-at" in head["Metadata"]


def test_a_record_in_the_old_flat_layout_gets_its_raw_touched(aws):
    legacy = stored_image(aws, legacy=True)

    code, output = run(aws)

    assert code == 0
    assert touched(aws, legacy)
    assert f"touched      {legacy.id} {legacy.raw_key}" in output
    assert "done: 1 image: 1 touched, 0 with the original missing, 0 failed" in output


def test_legacy_only_picks_records_whose_renditions_are_still_flat(aws):
    legacy = stored_image(aws, legacy=True, n=1)
    hidden_legacy = stored_image(aws, legacy=True, hidden=True, n=2)
    current = stored_image(aws, n=3)

    code, _ = run(aws, "--legacy-only")

    assert code == 0
    assert touched(aws, legacy)
    assert touched(aws, hidden_legacy)
    assert not touched(aws, current)


def test_dry_run_touches_nothing_and_says_what_it_would_do(aws):
    legacy = stored_image(aws, legacy=True)
    before = aws.s3.head_object(Bucket=aws.settings.bucket, Key=legacy.raw_key)

    code, output = run(aws, "--dry-run")

    after = aws.s3.head_object(Bucket=aws.settings.bucket, Key=legacy.raw_key)
    assert code == 0
    assert (after["ETag"], after["LastModified"], after["Metadata"]) == (
        before["ETag"],
        before["LastModified"],
        before["Metadata"],
    )
    assert f"would touch  {legacy.id}" in output
    assert "1 would be touched" in output


def test_touches_are_spaced_to_the_rate(aws):
    for n in range(4):
        stored_image(aws, n=n)
    clock = FakeClock()

    code, _ = run(aws, "--rate", "2", clock=clock)

    assert code == 0
    assert clock.sleeps == [0.5, 0.5, 0.5]  # the first touch at once, then one every half second


def test_a_missing_original_is_reported_and_the_walk_goes_on(aws):
    gone = stored_image(aws, n=1)
    kept = stored_image(aws, n=2)
    aws.s3.delete_object(Bucket=aws.settings.bucket, Key=gone.raw_key)

    code, output = run(aws)

    assert code == 0
    assert f"missing      {gone.id}" in output
    assert touched(aws, kept)
    assert "1 touched, 1 with the original missing, 0 failed" in output


def test_a_failed_touch_is_reported_and_makes_the_exit_status_non_zero(aws):
    broken = stored_image(aws, n=1)
    fine = stored_image(aws, n=2)

    def refuse(params, **_):
        if params["Key"] == broken.raw_key:
            raise ConnectionError("S3 is unreachable")

    aws.s3.meta.events.register("before-parameter-build.s3.CopyObject", refuse)
    code, output = run(aws)

    assert code == 1
    assert touched(aws, fine)
    assert f"failed: {broken.id}: ConnectionError: S3 is unreachable" in output


def test_status_walks_the_by_status_index_only(aws):
    ready = stored_image(aws, n=1)
    failed = stored_image(aws, n=2, status=Status.FAILED)

    code, _ = run(aws, "--status", "failed")

    assert code == 0
    assert touched(aws, failed)
    assert not touched(aws, ready)


def test_every_page_of_the_index_is_walked_one_query_each(aws, monkeypatch):
    monkeypatch.setattr(reprocess, "PAGE_SIZE", 2)
    made = [stored_image(aws, n=n) for n in range(5)]
    calls: list[str] = []
    aws.dynamodb.meta.events.register("before-call.dynamodb.*", lambda model, **_: calls.append(model.name))

    code, _ = run(aws)

    assert code == 0
    assert all(touched(aws, record) for record in made)
    assert calls == ["Query", "Query", "Query"]


def test_without_all_it_refuses_to_start(aws):
    with pytest.raises(SystemExit) as stopped:
        reprocess.main([], aws=aws, out=io.StringIO())
    assert stopped.value.code == 2
    assert not touched(aws, stored_image(aws))


def test_the_command_runs_as_a_module():
    result = subprocess.run(
        [sys.executable, "-m", "pipeline.reprocess", "--help"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "--legacy-only" in result.stdout


# -- the trash ----------------------------------------------------------------------------------------------------


def trashed(aws, record):
    return trash.trash(aws.image_store(), aws.object_store(), NoCdnCache(), record.id, by="root", retention_days=30)


def test_images_in_the_trash_are_never_touched(aws):
    kept = stored_image(aws, n=1)
    in_trash = trashed(aws, stored_image(aws, n=2))

    code, out = run(aws)

    assert code == 0
    assert touched(aws, kept)
    assert not touched(aws, in_trash)
    assert in_trash.id not in out  # the walk's index (ByEntity) does not hold the trash


def test_a_trashed_image_handed_to_the_loop_is_skipped_and_said_so(aws):
    in_trash = trashed(aws, stored_image(aws))
    lines: list[str] = []

    summary = reprocess.touch_all(
        aws.object_store(), [in_trash], throttle=reprocess.Throttle(1000), report=lambda r: lines.append(r.line())
    )

    assert summary.in_trash == [in_trash.id]
    assert summary.touched == []
    assert not touched(aws, in_trash)
    assert lines == [f"in trash     {in_trash.id} {in_trash.raw_key}  (restore it from the trash first)"]
    assert "1 in the trash (skipped)" in summary.text()


def test_the_trash_is_not_a_status_to_reprocess(aws):
    with pytest.raises(SystemExit) as stopped:
        reprocess.main(["--all", "--status", "deleted"], aws=aws, out=io.StringIO())

    assert stopped.value.code == 2
