"""Faults: every AWS call the processor makes fails once, at each position it is made in, and SQS delivers again.

Injected with botocore's event hooks on the processor's own clients: throttling, a 500 and a read timeout raised
before the call (as when botocore's retries ran out), and a read timeout raised after AWS acted (the answer lost
on the way back). After the redelivery the record must be consistent: ``ready`` with the new picture (or
``failed`` with a reason, for a refused file), exactly its files stored, one record, nothing dead-lettered.
"""

from __future__ import annotations

import collections
import hashlib
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Final, Literal

from botocore.exceptions import ClientError, ReadTimeoutError

from pipeline.records import Status
from reliability.harness import ProcessorHarness
from reliability.process import LOGS, Report, isolate

FaultKind = Literal["throttled", "server", "timeout", "timeout-after"]
KINDS: Final[tuple[FaultKind, ...]] = ("throttled", "server", "timeout", "timeout-after")
KIND_NAMES: Final = {
    "throttled": "throttling",
    "server": "a 500",
    "timeout": "a read timeout",
    "timeout-after": "a read timeout after AWS acted",
}
RAW_KEY: Final = "raw/fault.jpg"


def fault(kind: FaultKind, operation: str) -> Exception:
    """The error botocore raises for ``kind`` (a ClientError as the service answers it, or the timeout itself)."""
    if kind in ("timeout", "timeout-after"):
        return ReadTimeoutError(endpoint_url="https://example.invalid")
    code, status = {"throttled": ("ThrottlingException", 400), "server": ("InternalError", 500)}[kind]
    return ClientError(
        {"Error": {"Code": code, "Message": kind}, "ResponseMetadata": {"HTTPStatusCode": status}}, operation
    )


class FailOnce:
    """The ``n``-th call of ``operation`` on ``client`` fails once as ``kind`` says.

    Raised from ``before-call`` (after botocore's own retries, as a persistent fault looks to the caller), or for
    ``timeout-after`` from ``after-call``: the request went through and only its answer is lost."""

    def __init__(self, client: Any, service: str, operation: str, kind: FaultKind, n: int = 1) -> None:
        self.calls, self.n, self.error = 0, n, fault(kind, operation)
        self.client = client
        self.event = f"{'after-call' if kind == 'timeout-after' else 'before-call'}.{service}.{operation}"
        client.meta.events.register(self.event, self)

    def remove(self) -> None:
        self.client.meta.events.unregister(self.event, self)

    def __call__(self, **_: Any) -> None:
        self.calls += 1
        if self.calls == self.n:
            raise self.error

    @property
    def fired(self) -> bool:
        return self.calls >= self.n


@dataclass(frozen=True)
class Scenario:
    """An upload at RAW_KEY processed, then replaced by ``second`` (corpus paths), whose delivery meets the fault."""

    name: str
    first: str
    second: str
    expect: Status


SCENARIOS: Final = (
    # Every call of the ready path, the earlier run's files deleted included.
    Scenario("re-upload", "hostile/i_trns.png", "photos/Canon_40D.jpg", Status.READY),
    # The refusal path: the image's folders listed and emptied, the record marked failed.
    Scenario("refused re-upload", "photos/Canon_40D.jpg", "hostile/made-svg-script.jpg", Status.FAILED),
)


@dataclass(frozen=True)
class Call:
    service: str
    operation: str
    n: int  # the n-th call of this operation in the delivery


@dataclass(frozen=True)
class Case:
    scenario: Scenario
    call: Call
    kind: FaultKind


@dataclass(frozen=True)
class Outcome:
    case: Case
    status: str
    deliveries: int
    problems: tuple[str, ...]


def calls_made(harness: ProcessorHarness, scenario: Scenario, raw_key: str, corpus: Path) -> list[Call]:
    """The AWS calls the processor makes, in order, when ``scenario``'s second upload is delivered without a fault."""
    made: list[tuple[str, str]] = []

    def seen(event_name: str, **_: Any) -> None:
        _, service, operation = event_name.split(".")
        made.append((service, operation))

    harness.upload(raw_key, (corpus / scenario.first).read_bytes())
    harness.deliver()
    harness.upload(raw_key, (corpus / scenario.second).read_bytes())
    clients = (harness.processor_aws.s3, harness.processor_aws.dynamodb)
    for client in clients:
        client.meta.events.register("before-call", seen)
    try:
        harness.deliver()
    finally:
        for client in clients:
            client.meta.events.unregister("before-call", seen)
    counted: collections.Counter[tuple[str, str]] = collections.Counter()
    calls = []
    for service, operation in made:
        counted[service, operation] += 1
        calls.append(Call(service, operation, counted[service, operation]))
    return calls


def cases(corpus: Path, scenarios: Iterable[Scenario] = SCENARIOS, kinds: Sequence[FaultKind] = KINDS) -> list[Case]:
    """Every call of every scenario, failing each way."""
    with ProcessorHarness() as harness:
        return [
            Case(scenario, call, kind)
            for number, scenario in enumerate(scenarios)
            for call in calls_made(harness, scenario, f"raw/unfailed-{number}.jpg", corpus)
            for kind in kinds
        ]


def run_cases(cases: Sequence[Case], corpus: Path) -> list[Outcome]:
    """Each case on a raw key of its own, in one moto."""
    with ProcessorHarness() as harness:
        return [run_case(harness, case, f"raw/fault-{number}.jpg", corpus) for number, case in enumerate(cases)]


def run_case(harness: ProcessorHarness, case: Case, raw_key: str, corpus: Path) -> Outcome:
    scenario = case.scenario
    second = (corpus / scenario.second).read_bytes()
    harness.upload(raw_key, (corpus / scenario.first).read_bytes())
    harness.deliver()
    harness.upload(raw_key, second)
    dead_before = harness.dead_letters()
    client = getattr(harness.processor_aws, case.call.service)
    injected = FailOnce(client, case.call.service, case.call.operation, case.kind, case.call.n)
    try:
        deliveries = harness.deliver()
    finally:
        injected.remove()
    state = harness.state(raw_key)
    problems = []
    if not injected.fired:
        problems.append("the fault never fired (the call was not made)")
    record = state.record
    if record is None:
        problems.append("no record")
    elif record.status is not scenario.expect:
        exhausted = record.status is Status.FAILED and deliveries >= harness.settings.max_receive_count
        if not (exhausted and record.failure_reason):
            problems.append(f"record {record.status}, expected {scenario.expect} ({record.failure_reason})")
    elif record.sha256 != hashlib.sha256(second).hexdigest():
        problems.append("the record does not describe the second upload")
    elif record.status is Status.FAILED and not record.failure_reason:
        problems.append("failed without a reason")
    if record is not None and "internal error" in (record.failure_reason or ""):
        problems.append(f"internal error: {record.failure_reason}")
    if state.orphans:
        problems.append(f"{len(state.orphans)} orphan file(s): {', '.join(sorted(state.orphans)[:3])}")
    if state.missing:
        problems.append(f"{len(state.missing)} file(s) the record names are missing")
    if (items := harness.item_count(raw_key)) != 1:
        problems.append(f"{items} items for the image in the table, expected one record")
    if dead := harness.dead_letters() - dead_before:
        problems.append(f"{dead} message(s) dead-lettered")
    return Outcome(case, str(record.status) if record else "none", deliveries, tuple(problems))


def run(corpus: Path, *, processes: int = 2) -> Report:
    every_case = cases(corpus)
    chunks = [every_case[start :: processes * 4] for start in range(processes * 4)]
    outcomes: list[Outcome] = []
    with ProcessPoolExecutor(processes, mp_context=get_context("spawn"), initializer=_quiet) as pool:
        for found in pool.map(run_cases, chunks, [corpus] * len(chunks)):
            outcomes += found
    order = {case: number for number, case in enumerate(every_case)}
    return summarize(sorted(outcomes, key=lambda outcome: order[outcome.case]))


def _quiet() -> None:
    isolate(LOGS / "faults.log")


def summarize(outcomes: list[Outcome]) -> Report:
    report = Report("faults")
    operations = sorted({(o.case.call.service, o.case.call.operation) for o in outcomes})
    positions = {(o.case.scenario.name, o.case.call) for o in outcomes}
    report.lines.append(
        f"{len(SCENARIOS)} scenarios ({', '.join(s.name for s in SCENARIOS)}): every AWS call the processor makes "
        f"({', '.join(op for _, op in operations)}) fails once at each of its {len(positions)} positions, "
        f"{len(KINDS)} ways ({', '.join(KIND_NAMES[kind] for kind in KINDS)}): {len(outcomes)} cases"
    )
    consistent = [o for o in outcomes if not o.problems]
    statuses = collections.Counter(o.status for o in consistent)
    redelivered = sum(1 for o in outcomes if o.deliveries > 1)
    report.lines.append(
        f"consistent after redelivery: {len(consistent)} of {len(outcomes)} "
        f"({', '.join(f'{status} {n}' for status, n in sorted(statuses.items()))}); "
        f"{redelivered} needed a redelivery, {len(outcomes) - redelivered} none"
    )
    report.lines.append("checked: the expected status, exactly the record's files stored, one record, no dead letter")
    for outcome in outcomes:
        case = outcome.case
        report.problems += [
            f"{case.scenario.name}: {case.call.service} {case.call.operation} #{case.call.n} fails "
            f"({KIND_NAMES[case.kind]}): {problem}"
            for problem in outcome.problems
        ]
    return report
