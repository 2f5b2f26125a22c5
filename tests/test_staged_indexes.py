"""make deploy adds a table's new indexes one stack update at a time, as CloudFormation requires.

CloudFormation refuses "more than one GSI creation or deletion in a single update", and moto does not enforce it,
so these tests drive ``deploy.Deployment`` against stand-in clients that do: a CloudFormation that applies change
sets to one stack and fails an update the way AWS does, the DynamoDB table that stack describes, and an S3 that
keeps the uploaded templates for the TemplateURLs.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT

from infra import deploy
from pipeline import records

TEMPLATE_YAML = (ROOT / "infra" / "pipeline.yaml").read_text()
REGION = "us-east-1"
ACCOUNT = "123456789012"
STACK = "image-pipeline-dev"
ONE_CHANGE_ONLY = "Cannot perform more than one GSI creation or deletion in a single update"


def release_without(*indexes: str) -> str:
    """infra/pipeline.yaml as a release before ``indexes`` were added (and the attributes only they used)."""
    text = TEMPLATE_YAML
    for name in indexes:
        text, found = re.subn(rf"        - IndexName: {name}\n(?:          .*\n)+", "", text)
        assert found == 1, name
    wanted = deploy.load_template(text)["Resources"]["ImageTable"]["Properties"]
    used = {k["AttributeName"] for k in wanted["KeySchema"]} | {
        k["AttributeName"] for index in wanted["GlobalSecondaryIndexes"] for k in index["KeySchema"]
    }
    for attribute in {a["AttributeName"] for a in wanted["AttributeDefinitions"]} - used:
        text = text.replace(f"        - {{ AttributeName: {attribute}, AttributeType: S }}\n", "")
    return text


class Stack:
    """One deployed stack and its table: what AWS would hold."""

    def __init__(self, template_body: str | None, parameters: dict[str, str]) -> None:
        self.template_body = template_body
        self.parameters = parameters
        self.status = "UPDATE_COMPLETE" if template_body else None
        self.updates: list[dict[str, Any]] = []  # every executed update: its template and index changes
        self.failure = ""

    @property
    def template(self) -> dict[str, Any]:
        return deploy.load_template(self.template_body)

    def indexes(self) -> list[str]:
        return deploy.table_index_names(self.template) if self.template_body else []


class FakeError(Exception):
    pass


class Waiter:
    def __init__(self, stack: Stack, name: str) -> None:
        self.stack, self.name = stack, name

    def wait(self, **_: Any) -> None:
        if self.name.startswith("stack_") and self.stack.failure:
            raise FakeError(self.stack.failure)


class CloudFormation:
    class exceptions:
        ClientError = FakeError

    def __init__(self, stack: Stack, s3: S3) -> None:
        self.stack, self.s3 = stack, s3
        self.change_sets: dict[str, tuple[str, dict[str, str]]] = {}

    def describe_stacks(self, StackName: str) -> dict[str, Any]:
        if self.stack.status is None:
            raise FakeError(f"Stack with id {StackName} does not exist")
        parameters = [{"ParameterKey": k, "ParameterValue": v} for k, v in self.stack.parameters.items()]
        return {"Stacks": [{"StackStatus": self.stack.status, "Parameters": parameters, "Outputs": []}]}

    def describe_stack_resource(self, StackName: str, LogicalResourceId: str) -> dict[str, Any]:
        assert LogicalResourceId == "ImageTable"
        return {"StackResourceDetail": {"PhysicalResourceId": "ImageMetadata-dev"}}

    def get_template(self, StackName: str) -> dict[str, Any]:
        return {"TemplateBody": self.stack.template_body}

    def create_change_set(self, **request: Any) -> None:
        body = self.s3.fetch(request["TemplateURL"]) if "TemplateURL" in request else request["TemplateBody"]
        parameters = {
            p["ParameterKey"]: self.stack.parameters[p["ParameterKey"]]
            if p.get("UsePreviousValue")
            else p["ParameterValue"]
            for p in request["Parameters"]
        }
        self.change_sets[request["ChangeSetName"]] = (body, parameters)

    def get_waiter(self, name: str) -> Waiter:
        return Waiter(self.stack, name)

    def execute_change_set(self, StackName: str, ChangeSetName: str) -> None:
        body, parameters = self.change_sets.pop(ChangeSetName)
        before = set(self.stack.indexes())
        after_template = deploy.load_template(body)
        after = set(deploy.table_index_names(after_template))
        table = after_template["Resources"]["ImageTable"]["Properties"]
        keys = {k["AttributeName"] for k in table["KeySchema"]} | {
            k["AttributeName"] for index in table.get("GlobalSecondaryIndexes", []) for k in index["KeySchema"]
        }
        if self.stack.template_body and len(before ^ after) > 1:
            self.stack.failure = ONE_CHANGE_ONLY
        elif {a["AttributeName"] for a in table["AttributeDefinitions"]} != keys:
            self.stack.failure = "Property AttributeDefinitions is inconsistent with the KeySchema of the table"
        else:
            self.stack.failure = ""
            self.stack.updates.append({"template": after_template, "added": after - before, "removed": before - after})
            self.stack.template_body, self.stack.parameters = body, parameters
            self.stack.status = "UPDATE_COMPLETE"

    def describe_stack_events(self, StackName: str) -> dict[str, Any]:
        reason = self.stack.failure
        return {"StackEvents": [{"ResourceStatus": "UPDATE_FAILED", "LogicalResourceId": "ImageTable",
                                 "ResourceStatusReason": reason}]}  # fmt: skip


class DynamoDB:
    def __init__(self, stack: Stack) -> None:
        self.stack = stack

    def describe_table(self, TableName: str) -> dict[str, Any]:
        return {"Table": {"GlobalSecondaryIndexes": [{"IndexName": name} for name in self.stack.indexes()]}}


class S3:
    def __init__(self) -> None:
        self.objects: dict[str, str] = {}

    def upload_file(self, path: str, bucket: str, key: str) -> None:
        self.objects[key] = Path(path).read_text()

    def fetch(self, url: str) -> str:
        return self.objects[url.split(".amazonaws.com/", 1)[1]]


class Session:
    region_name = REGION

    def __init__(self, stack: Stack) -> None:
        self.s3 = S3()
        self.clients = {
            "cloudformation": CloudFormation(stack, self.s3),
            "dynamodb": DynamoDB(stack),
            "s3": self.s3,
            "sts": type("Sts", (), {"get_caller_identity": lambda self: {"Account": ACCOUNT}})(),
        }

    def client(self, name: str, **_: Any) -> Any:
        return self.clients.get(name)

    def get_partition_for_region(self, region: str) -> str:
        return "aws"


PARAMETERS = {"Stage": "dev", "AlertEmail": "ops@example.com", "ProcessorCodeKey": "lambda/processor-old.zip"}


def deployed(template_body: str | None) -> tuple[deploy.Deployment, Stack]:
    stack = Stack(template_body, dict(PARAMETERS))
    return deploy.Deployment(Session(stack), "dev"), stack


def new_parameters() -> list[dict[str, str]]:
    new = {**PARAMETERS, "ProcessorCodeKey": "lambda/processor-new.zip"}
    return [{"ParameterKey": k, "ParameterValue": v} for k, v in new.items()]


def real_deploy(deployment: deploy.Deployment, tmp_path: Path) -> None:
    """make deploy's stack step: the staged updates, then the stack update with the new template."""
    deployment.add_indexes_one_at_a_time(staging_dir=tmp_path)
    deployment.deploy_stack(new_parameters())


def test_two_new_indexes_are_added_by_two_updates_of_one_index_each(tmp_path, capsys):
    deployment, stack = deployed(release_without("ListedByTaken", "ByOwner"))

    real_deploy(deployment, tmp_path)

    assert [update["added"] for update in stack.updates] == [{"ListedByTaken"}, {"ByOwner"}]
    assert all(not update["removed"] for update in stack.updates)
    assert stack.indexes() == [index["IndexName"] for index in records.TABLE_SCHEMA["GlobalSecondaryIndexes"]]
    assert "adding index ListedByTaken first (1 of 1 staged updates)" in capsys.readouterr().out


def test_the_staged_update_changes_nothing_but_the_index(tmp_path):
    old = release_without("ListedByTaken", "ByOwner")
    deployment, stack = deployed(old)

    real_deploy(deployment, tmp_path)

    staged = stack.updates[0]["template"]
    expected = deploy.load_template(old)
    table = expected["Resources"]["ImageTable"]["Properties"]
    new_table = deploy.load_template(TEMPLATE_YAML)["Resources"]["ImageTable"]["Properties"]
    table["GlobalSecondaryIndexes"].append(new_table["GlobalSecondaryIndexes"][3])
    table["AttributeDefinitions"].append({"AttributeName": "taken_sk", "AttributeType": "S"})
    assert staged == expected


def test_the_staged_update_keeps_the_deployed_parameters(tmp_path, monkeypatch):
    deployment, _stack = deployed(release_without("ListedByTaken", "ByOwner"))
    seen: list[dict[str, str]] = []
    real_execute = CloudFormation.execute_change_set

    def execute(self, StackName, ChangeSetName):
        seen.append(dict(self.change_sets[ChangeSetName][1]))
        real_execute(self, StackName, ChangeSetName)

    monkeypatch.setattr(CloudFormation, "execute_change_set", execute)

    real_deploy(deployment, tmp_path)

    assert seen == [PARAMETERS, {**PARAMETERS, "ProcessorCodeKey": "lambda/processor-new.zip"}]


def test_without_staging_the_update_fails_as_cloudformation_does():
    deployment, stack = deployed(release_without("ListedByTaken", "ByOwner"))

    with pytest.raises(deploy.DeployError, match=ONE_CHANGE_ONLY):
        deployment.deploy_stack(new_parameters())
    assert stack.updates == []


def test_three_new_indexes_take_two_staged_updates(tmp_path):
    deployment, stack = deployed(release_without("ByEntity", "ListedByTaken", "ByOwner"))

    real_deploy(deployment, tmp_path)

    assert [update["added"] for update in stack.updates] == [{"ByEntity"}, {"ListedByTaken"}, {"ByOwner"}]


def test_one_new_index_needs_no_staged_update(tmp_path):
    deployment, stack = deployed(release_without("ByOwner"))

    assert deployment.add_indexes_one_at_a_time(staging_dir=tmp_path) == 0
    deployment.deploy_stack(new_parameters())

    assert [update["added"] for update in stack.updates] == [{"ByOwner"}]


def test_a_deploy_stopped_after_a_staged_update_resumes_from_the_tables_indexes(tmp_path):
    deployment, stack = deployed(release_without("ListedByTaken", "ByOwner"))
    assert deployment.add_indexes_one_at_a_time(staging_dir=tmp_path) == 1
    # ... and the deploy stopped here. The next one finds ListedByTaken on the table and stages nothing more.

    assert deployment.add_indexes_one_at_a_time(staging_dir=tmp_path) == 0
    deployment.deploy_stack(new_parameters())

    assert [update["added"] for update in stack.updates] == [{"ListedByTaken"}, {"ByOwner"}]


def test_a_first_deploy_creates_every_index_at_once(tmp_path):
    deployment, stack = deployed(None)

    assert deployment.add_indexes_one_at_a_time(staging_dir=tmp_path) == 0
    deployment.deploy_stack(new_parameters())

    assert stack.indexes() == [index["IndexName"] for index in records.TABLE_SCHEMA["GlobalSecondaryIndexes"]]


def test_adding_several_indexes_while_removing_one_is_refused_with_what_to_do():
    old = deploy.load_template(release_without("ListedByTaken", "ByOwner"))
    new = deploy.load_template(release_without("ByEntity"))

    with pytest.raises(deploy.DeployError, match=r"removes ByEntity.*Deploy a template that only removes first"):
        deploy.staged_index_templates(old, new, deploy.table_index_names(old))


def test_the_template_is_read_with_its_short_forms():
    template = deploy.load_template(TEMPLATE_YAML)

    assert template["Resources"]["ImageTable"]["Properties"]["TableName"] == {"Fn::Sub": "${TableBaseName}-${Stage}"}
    assert json.loads(json.dumps(template)) == template
