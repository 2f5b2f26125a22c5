"""The trash's daily purge in the stack: its function, schedule, role, log group and alarm, and its package."""

from __future__ import annotations

import json

from test_infra import (
    RESOURCES,
    TEMPLATE,
    actions_by_resource,
    assert_any_in_five_minutes_mails_the_topic,
    get_att,
    properties,
    stack,  # noqa: F401 (the stack deployed into moto, a fixture)
    statements,
    sub,
)

from infra import deploy, package
from pipeline.config import Settings


def test_the_purge_function_is_deployed_with_its_own_role_and_the_stacks_table_and_bucket(stack):  # noqa: F811
    session, outputs, physical = stack
    function = session.client("lambda").get_function_configuration(FunctionName=outputs["TrashPurgeFunctionName"])
    assert function["FunctionName"] == "image-pipeline-dev-trash-purge"
    assert function["Role"].endswith("/" + physical["TrashPurgeRole"])
    assert function["Handler"] == "lambdas/trash_purge/handler.handler"
    settings = Settings.from_env(function["Environment"]["Variables"])
    assert (settings.bucket, settings.table) == (outputs["ImageBucketName"], outputs["ImageTableName"])
    assert "PIPELINE_SECRET" not in function["Environment"]["Variables"]  # it signs nothing and derives no id
    log_groups = session.client("logs").describe_log_groups(logGroupNamePrefix="/aws/lambda/image-pipeline-dev-trash")
    assert [g["logGroupName"] for g in log_groups["logGroups"]] == ["/aws/lambda/image-pipeline-dev-trash-purge"]


def test_the_purge_runs_once_a_day_from_an_eventbridge_rule_that_alone_may_invoke_it():
    rule = properties("TrashPurgeSchedule")
    assert RESOURCES["TrashPurgeSchedule"]["Type"] == "AWS::Events::Rule"
    assert rule["ScheduleExpression"] == "cron(17 3 * * ? *)"  # every day at 03:17 UTC
    assert rule["State"] == "ENABLED"
    assert rule["Targets"] == [{"Id": "trash-purge", "Arn": {"Fn::GetAtt": ["TrashPurgeFunction", "Arn"]}}]
    assert properties("TrashPurgeInvokePermission") == {
        "Action": "lambda:InvokeFunction",
        "FunctionName": {"Ref": "TrashPurgeFunction"},
        "Principal": "events.amazonaws.com",
        "SourceArn": {"Fn::GetAtt": ["TrashPurgeSchedule", "Arn"]},
    }
    function = properties("TrashPurgeFunction")
    assert function["LoggingConfig"] == {"LogGroup": {"Ref": "TrashPurgeLogGroup"}}
    assert properties("TrashPurgeLogGroup")["RetentionInDays"] == {"Ref": "LogRetentionDays"}


def test_the_purge_role_may_find_and_delete_images_and_nothing_else():
    assert actions_by_resource("TrashPurgeRole") == {
        get_att("TrashPurgeLogGroup", "Arn"): {"logs:CreateLogStream", "logs:PutLogEvents"},
        # The trash is found on one index only, never by a Scan.
        sub("${ImageTable.Arn}/index/ByStatus"): {"dynamodb:Query"},
        get_att("ImageTable", "Arn"): {
            "dynamodb:GetItem",
            "dynamodb:PutItem",
            "dynamodb:DeleteItem",
            "dynamodb:Query",
            "dynamodb:BatchWriteItem",
        },
        # Deletes only: it can neither read a photo nor put one where the CDN serves it.
        sub("${ImageBucket.Arn}/raw/*"): {"s3:DeleteObject"},
        sub("${ImageBucket.Arn}/public/*"): {"s3:DeleteObject"},
        sub("${ImageBucket.Arn}/hidden/*"): {"s3:DeleteObject"},
        get_att("ImageBucket", "Arn"): {"s3:ListBucket"},
        sub("arn:${AWS::Partition}:cloudfront::${AWS::AccountId}:distribution/${Distribution}"): {
            "cloudfront:CreateInvalidation"
        },
    }
    (listing,) = [s for s in statements("TrashPurgeRole") if s["Action"] == "s3:ListBucket"]
    assert listing["Condition"] == {"StringLike": {"s3:prefix": ["public/*", "hidden/*"]}}
    assert not any("Scan" in json.dumps(s["Action"]) for s in statements("TrashPurgeRole"))


def test_a_failed_purge_mails_the_alert_topic():
    alarm = properties("TrashPurgeErrorsAlarm")
    assert (alarm["Namespace"], alarm["MetricName"]) == ("AWS/Lambda", "Errors")
    assert alarm["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": "TrashPurgeFunction"}}]
    assert_any_in_five_minutes_mails_the_topic(alarm)


def test_every_function_in_the_template_is_a_package_that_make_deploy_uploads():
    by_handler = {p.handler_module.replace(".", "/") + ".handler": p for p in package.PACKAGES}
    filled = {
        p["ParameterKey"]: p["ParameterValue"]
        for p in deploy.stack_parameters(
            deploy.Target("dev", "us-east-1", "123456789012"),
            "ops@example.com",
            "https://gallery.example.com",
            {p.name: f"lambda/{p.name}.zip" for p in package.PACKAGES},
        )
    }
    functions = {name: r["Properties"] for name, r in RESOURCES.items() if r["Type"] == "AWS::Lambda::Function"}
    assert len(functions) == len(package.PACKAGES)
    for function in functions.values():
        lambda_package = by_handler[function["Handler"]]
        code_key = function["Code"]["S3Key"]["Ref"]
        assert code_key in TEMPLATE["Parameters"]
        assert filled[code_key] == f"lambda/{lambda_package.name}.zip"
    (purge,) = [p for p in package.PACKAGES if p.name == "trash-purge"]
    assert {"pillow", "pillow-heif", "boto3"} <= purge.without  # no imaging in the purge's zip
