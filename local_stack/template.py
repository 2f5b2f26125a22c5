"""The names and settings the CloudFormation stack gives its resources, read from infra/pipeline.yaml.

The local stack builds the same bucket, table, queues and topic as a stack of stage ``local`` would, so a
name or a retry setting is written once (in the template) and a drift shows up at the next ``make run``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import yaml

from local_stack.config import ROOT

TEMPLATE: Final = ROOT / "infra" / "pipeline.yaml"
STAGE: Final = "local"
# moto's default account: the ARNs it hands out carry it.
ACCOUNT_ID: Final = "123456789012"
_SUB_VARIABLE = re.compile(r"\$\{([^}!]+)\}")


class TemplateError(ValueError):
    """infra/pipeline.yaml does not have the shape the local stack reads; the message says what is missing."""


@dataclass(frozen=True)
class StackNames:
    bucket: str
    bucket_versioned: bool
    upload_prefix: str
    table: str
    queue: str
    dead_letter_queue: str
    max_receive_count: int
    alerts_topic: str
    processor_function: str
    processor_memory_mb: int
    batch_size: int
    function_timeout_seconds: int
    # The event source's ScalingConfig.MaximumConcurrency: how many instances Lambda runs at once (None: no bound).
    processor_concurrency: int | None
    # The upload queue's own; the local stack uses a shorter one (LOCAL_VISIBILITY_TIMEOUT).
    visibility_timeout_seconds: int


def read_stack_names(region: str, path: Path = TEMPLATE) -> StackNames:
    template = _load(path)
    resources: dict[str, dict[str, Any]] = template.get("Resources", {})
    variables = {
        **{name: str(spec.get("Default", "")) for name, spec in template.get("Parameters", {}).items()},
        "Stage": STAGE,
        "AWS::AccountId": ACCOUNT_ID,
        "AWS::Region": region,
    }

    def name_of(logical_id: str, attribute: str) -> str:
        return _substitute(_properties(resources, logical_id).get(attribute), variables, f"{logical_id}.{attribute}")

    bucket_id = _only(resources, "AWS::S3::Bucket")
    bucket = _properties(resources, bucket_id)
    queue_id = next(
        (rid for rid in _all(resources, "AWS::SQS::Queue") if "RedrivePolicy" in _properties(resources, rid)), None
    )
    if queue_id is None:
        raise TemplateError(f"{path}: no AWS::SQS::Queue with a RedrivePolicy (the upload queue)")
    redrive = _properties(resources, queue_id)["RedrivePolicy"]
    dead_letter_id = _get_att_target(redrive.get("deadLetterTargetArn"), f"{queue_id}.RedrivePolicy")
    mapping = _properties(resources, _only(resources, "AWS::Lambda::EventSourceMapping"))
    concurrency = mapping.get("ScalingConfig", {}).get("MaximumConcurrency")
    function_id = _ref_target(mapping.get("FunctionName"), "EventSourceMapping.FunctionName")
    try:
        rules = bucket["NotificationConfiguration"]["QueueConfigurations"][0]["Filter"]["S3Key"]["Rules"]
        prefix = next(rule["Value"] for rule in rules if rule["Name"] == "prefix")
    except (KeyError, IndexError, StopIteration):
        raise TemplateError(f"{path}: {bucket_id} has no queue notification with a prefix filter") from None
    return StackNames(
        bucket=name_of(bucket_id, "BucketName"),
        bucket_versioned=bucket.get("VersioningConfiguration", {}).get("Status") == "Enabled",
        upload_prefix=prefix,
        table=name_of(_only(resources, "AWS::DynamoDB::Table"), "TableName"),
        queue=name_of(queue_id, "QueueName"),
        dead_letter_queue=name_of(dead_letter_id, "QueueName"),
        max_receive_count=int(redrive["maxReceiveCount"]),
        alerts_topic=name_of(_only(resources, "AWS::SNS::Topic"), "TopicName"),
        processor_function=name_of(function_id, "FunctionName"),
        processor_memory_mb=int(_value(_properties(resources, function_id).get("MemorySize", 128), variables)),
        batch_size=int(mapping.get("BatchSize", 10)),
        function_timeout_seconds=int(_properties(resources, function_id).get("Timeout", 3)),
        processor_concurrency=None if concurrency is None else int(_value(concurrency, variables)),
        visibility_timeout_seconds=int(_properties(resources, queue_id).get("VisibilityTimeout", 30)),
    )


class _CloudFormationLoader(yaml.SafeLoader):
    """Reads ``!Sub x`` as ``{"Fn::Sub": x}`` (``!Ref x`` as ``{"Ref": x}``), like CloudFormation does."""


def _intrinsic(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if suffix == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {"Ref" if suffix == "Ref" else f"Fn::{suffix}": value}


_CloudFormationLoader.add_multi_constructor("!", _intrinsic)


def _load(path: Path) -> dict[str, Any]:
    try:
        return yaml.load(path.read_text(), Loader=_CloudFormationLoader)  # noqa: S506 (a SafeLoader subclass)
    except FileNotFoundError:
        raise TemplateError(f"{path} is missing; the local stack takes its resource names from it") from None


def _all(resources: dict[str, dict[str, Any]], resource_type: str) -> list[str]:
    return [rid for rid, resource in resources.items() if resource.get("Type") == resource_type]


def _only(resources: dict[str, dict[str, Any]], resource_type: str) -> str:
    found = _all(resources, resource_type)
    if len(found) != 1:
        raise TemplateError(f"expected one {resource_type} in the template, found {len(found)}")
    return found[0]


def _properties(resources: dict[str, dict[str, Any]], logical_id: str) -> dict[str, Any]:
    if logical_id not in resources:
        raise TemplateError(f"the template has no resource {logical_id}")
    return resources[logical_id].get("Properties", {})


def _substitute(value: Any, variables: dict[str, str], where: str) -> str:
    if isinstance(value, str):
        return value
    if not isinstance(value, dict) or not isinstance(value.get("Fn::Sub"), str):
        raise TemplateError(f"{where} must be a string or a !Sub string, got {value!r}")

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in variables:
            raise TemplateError(f"{where} uses ${{{name}}}, which the local stack cannot resolve")
        return variables[name]

    return _SUB_VARIABLE.sub(replace, value["Fn::Sub"])


def _value(value: Any, variables: dict[str, str]) -> Any:
    """A literal, or the default of the parameter a ``!Ref`` names."""
    if isinstance(value, dict) and "Ref" in value:
        return variables[value["Ref"]]
    return value


def _get_att_target(value: Any, where: str) -> str:
    if isinstance(value, dict) and isinstance(value.get("Fn::GetAtt"), list):
        return str(value["Fn::GetAtt"][0])
    raise TemplateError(f"{where} must be !GetAtt <queue>.Arn, got {value!r}")


def _ref_target(value: Any, where: str) -> str:
    if isinstance(value, dict) and "Ref" in value:
        return str(value["Ref"])
    raise TemplateError(f"{where} must be !Ref <function>, got {value!r}")
