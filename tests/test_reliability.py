"""A seeded sample of every part of `make reliability` (README "Reliability" has the full run's figures): bad input
through the CLI and the processor handler, a burst of uploads, every AWS call failing once, and a SIGKILL mid-batch.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest
from conftest import CORPUS, HOSTILE, PHOTOS, ROOT

from pipeline.records import Status
from reliability import bad_input, faults, kill, load
from reliability.harness import ProcessorHarness
from reliability.process import Report

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")
# The corpus files under 200 KB (photos of 640x480 and less, most hostile files): the same decoders as the full run's,
# at a third of its cost per file.
SMALL_SOURCES = tuple(
    sorted(p for p in [*PHOTOS.iterdir(), *HOSTILE.iterdir()] if p.suffix != ".md" and 0 < p.stat().st_size < 200_000)
)


# -- bad input ---------------------------------------------------------------------------------------------------


def test_300_seeded_mutations_get_300_verdicts_through_the_cli_and_through_the_handler():
    inputs = bad_input.BadInputs(hostile=(), sources=SMALL_SOURCES, count=300, seed=2026)

    verdicts = bad_input.judge(inputs, processes=2)

    for route in bad_input.ROUTES:
        judged = sorted((v for v in verdicts if v.route == route), key=lambda v: v.index)
        assert [v.index for v in judged] == list(range(300)), route
        assert [(v.name, v.reason) for v in judged if v.outcome == "error"] == [], route
    assert {v.outcome for v in verdicts} == {"renditions", "refused"}  # the sample holds both kinds
    report = Report("bad input")
    bad_input.summarize(verdicts, report)
    assert report.problems == []  # no error, and the CLI and the handler agree on every file


def test_make_reliability_bad_input_prints_its_figures_and_finds_nothing_wrong():
    completed = subprocess.run(
        [sys.executable, "-m", "reliability", "bad-input", "--count", "5"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert completed.returncode == 0, completed.stdout
    assert "handler  ready" in completed.stdout
    assert "worst peak RSS" in completed.stdout
    assert "Warning" not in completed.stdout + completed.stderr  # Pillow's warnings are silenced


# -- load ----------------------------------------------------------------------------------------------------------


def test_a_burst_of_uploads_ends_ready_once_each_with_exactly_their_files(tmp_path):
    measured = load.measure(PHOTOS, 10, visibility_timeout=20, logs=tmp_path)

    assert measured.concurrency >= 2  # the template's ProcessorConcurrency, each a process
    assert measured.found.ready == 10
    assert measured.problems() == []  # none lost, duplicated, stuck or orphaned; the queue and the DLQ empty
    assert len(measured.latencies) == 10
    assert all(latency > 0 for latency in measured.latencies)


# -- faults --------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def first_calls() -> list[faults.Case]:
    """Each scenario's first call of each operation: the sample of `make reliability`'s every position."""
    with ProcessorHarness() as harness:
        return [
            faults.Case(scenario, call, "throttled")
            for number, scenario in enumerate(faults.SCENARIOS)
            for call in faults.calls_made(harness, scenario, f"raw/unfailed-{number}.jpg", CORPUS)
            if call.n == 1
        ]


@pytest.fixture
def fault_harness() -> Iterator[ProcessorHarness]:
    # A fresh moto per test: moto lists a prefix by scanning the whole bucket, so a shared one slows down.
    with ProcessorHarness() as harness:
        yield harness


@pytest.mark.parametrize("kind", faults.KINDS)
def test_any_aws_call_failing_once_leaves_a_consistent_record_after_redelivery(fault_harness, first_calls, kind):
    operations = set()
    for number, case in enumerate(first_calls):
        outcome = faults.run_case(
            fault_harness, faults.Case(case.scenario, case.call, kind), f"raw/{kind}-{number}.jpg", CORPUS
        )
        assert outcome.problems == (), case
        assert outcome.deliveries == 2  # the fault reached the handler, SQS delivered the message again
        operations.add(case.call.operation)

    assert {"HeadObject", "GetObject", "GetItem", "TransactWriteItems", "DeleteObjects", "ListObjectsV2"} <= operations


def test_a_rendition_put_whose_answer_is_lost_leaves_no_orphan(fault_harness):
    case = faults.Case(faults.SCENARIOS[0], faults.Call("s3", "PutObject", 1), "timeout-after")

    outcome = faults.run_case(fault_harness, case, "raw/lost-answer.jpg", CORPUS)

    assert outcome.problems == ()


# -- kill ----------------------------------------------------------------------------------------------------------


def test_a_sigkill_mid_batch_then_a_restart_leaves_every_upload_ready_once(tmp_path):
    measured = kill.measure(PHOTOS, 5, visibility_timeout=8, logs=tmp_path)

    assert measured.killed >= 2
    assert measured.at_kill[Status.PROCESSING] >= 1  # killed mid-image
    found = measured.found
    assert found.ready == 5
    assert (found.failed, found.lost, found.stuck, found.extra_records) == ([], [], [], 0)
    assert (found.queued, found.dead_letters) == ((0, 0), 0)
    assert found.missing == []
    assert found.orphans == []  # what the killed run wrote went with the next run's ready write


# -- the emulator under load ---------------------------------------------------------------------------------------


def test_a_cancelled_transaction_on_the_emulator_puts_back_only_its_own_items(aws, pipeline_settings):
    # local_stack.emulator: moto restores the whole table after a cancelled transaction (undoing other writers'
    # changes) and copies it for every action (a transaction's cost grew with the table); the patch works per item.
    from local_stack.emulator import make_transactions_per_item

    make_transactions_per_item()
    table, dynamodb = pipeline_settings.table, aws.dynamodb

    def item(pk: str, value: str) -> dict[str, dict[str, str]]:
        return {"pk": {"S": pk}, "sk": {"S": "IMAGE"}, "v": {"S": value}}

    dynamodb.put_item(TableName=table, Item=item("a", "before"))
    dynamodb.put_item(TableName=table, Item=item("b", "before"))
    with pytest.raises(dynamodb.exceptions.TransactionCanceledException):
        dynamodb.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": table, "Item": item("a", "cancelled")}},
                {"Put": {"TableName": table, "Item": item("new", "cancelled")}},
                {
                    "ConditionCheck": {
                        "TableName": table,
                        "Key": {"pk": {"S": "b"}, "sk": {"S": "IMAGE"}},
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                },
            ]
        )

    values = {i["pk"]["S"]: i["v"]["S"] for i in dynamodb.scan(TableName=table)["Items"]}
    assert values == {"a": "before", "b": "before"}  # its Puts undone, nothing else touched
