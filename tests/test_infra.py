"""The deployment: the CloudFormation template (deployed into moto where moto models the resource, read as
written where it does not), its agreement with the core, the Lambda packages and the Zappa settings.

cfn-lint and checkov run in `make lint`, not here.
"""

from __future__ import annotations

import copy
import fnmatch
import io
import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
from cfnlint.decode import cfn_yaml
from conftest import ROOT

from infra import deploy, package
from pipeline import records
from pipeline.config import Settings

TEMPLATE = cfn_yaml.load(str(ROOT / "infra" / "pipeline.yaml"))
RESOURCES = TEMPLATE["Resources"]
ZAPPA_SETTINGS = json.loads((ROOT / "zappa_settings.json").read_text())
STACK_PARAMETERS = {
    "Stage": "dev",
    "AppOrigin": "https://gallery.example.com",
    "AlertEmail": "ops@example.com",
    "ArtifactBucket": "artifacts",
    "ProcessorCodeKey": "lambda/image-processor.zip",
    "ApiCodeKey": "lambda/image-api.zip",
    "TrashPurgeCodeKey": "lambda/trash-purge.zip",
}
ACCOUNT = "123456789012"  # moto's default account
REGION = "us-east-1"
BUCKET_NAME = f"image-pipeline-dev-{ACCOUNT}-{REGION}"


def properties(name: str) -> dict[str, Any]:
    return RESOURCES[name]["Properties"]


def of_type(resource_type: str) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in RESOURCES.items() if r["Type"] == resource_type}


def statements(role: str) -> list[dict[str, Any]]:
    return [s for policy in properties(role)["Policies"] for s in policy["PolicyDocument"]["Statement"]]


def actions_by_resource(role: str) -> dict[str, set[str]]:
    """Each resource expression (as JSON text) -> the actions the role is allowed on it."""
    granted: dict[str, set[str]] = {}
    for statement in statements(role):
        assert statement["Effect"] == "Allow"
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        targets = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        for target in targets:
            granted.setdefault(json.dumps(target, sort_keys=True), set()).update(actions)
    return granted


def resolved(node: Any, conditions: dict[str, bool]) -> Any:
    """A template fragment with its Fn::If resolved for ``conditions`` and AWS::NoValue left out."""
    if isinstance(node, dict):
        if node.keys() == {"Fn::If"}:
            name, if_true, if_false = node["Fn::If"]
            return resolved(if_true if conditions[name] else if_false, conditions)
        values = {key: resolved(value, conditions) for key, value in node.items()}
        return {key: value for key, value in values.items() if value != NO_VALUE}
    if isinstance(node, list):
        return [value for value in (resolved(item, conditions) for item in node) if value != NO_VALUE]
    return node


NO_VALUE = {"Ref": "AWS::NoValue"}


FRONTING = {
    "FrontsApp": True,
    "HasSiteDomain": False,
    "HasEdgeWebAcl": False,
    "OriginSecretPinned": True,
    "EdgeSecretPinned": True,
    "UseOriginShield": True,
}


def distribution(**conditions: bool) -> dict[str, Any]:
    """The distribution's configuration once it fronts the app (or as ``conditions`` say)."""
    return resolved(properties("Distribution")["DistributionConfig"], {**FRONTING, **conditions})


def sub(expression: str) -> str:
    return json.dumps({"Fn::Sub": expression}, sort_keys=True)


def get_att(resource: str, attribute: str) -> str:
    return json.dumps({"Fn::GetAtt": [resource, attribute]}, sort_keys=True)


# -- the table and the core agree ---------------------------------------------------------------------------------


def test_template_table_has_exactly_the_keys_and_indexes_of_records_table_schema():
    table = properties("ImageTable")
    schema = records.TABLE_SCHEMA

    def index_shape(indexes):
        return {i["IndexName"]: (i["KeySchema"], i["Projection"]) for i in indexes}

    assert sorted(table["AttributeDefinitions"], key=str) == sorted(schema["AttributeDefinitions"], key=str)
    assert table["KeySchema"] == schema["KeySchema"]
    assert index_shape(table["GlobalSecondaryIndexes"]) == index_shape(schema["GlobalSecondaryIndexes"])
    assert table["BillingMode"] == schema["BillingMode"]
    assert table["TimeToLiveSpecification"] == {"AttributeName": records.TTL_ATTRIBUTE, "Enabled": True}


def test_no_stack_operation_deletes_the_images_or_the_table():
    # Retained on a stack delete and on a replacement; only a failed first create (nothing in them yet) removes them.
    for name in ("ImageBucket", "ImageTable"):
        assert RESOURCES[name]["DeletionPolicy"] == "RetainExceptOnCreate", name
        assert RESOURCES[name]["UpdateReplacePolicy"] == "Retain", name


def test_table_deletion_protection_is_on_in_prod_only():
    assert properties("ImageTable")["DeletionProtectionEnabled"] == {"Fn::If": ["IsProd", True, False]}
    assert TEMPLATE["Conditions"]["IsProd"] == {"Fn::Equals": [{"Ref": "Stage"}, "prod"]}
    assert properties("ImageTable")["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}


# -- the stack deployed into moto ----------------------------------------------------------------------------------
# moto's CloudFormation models S3 buckets, SQS queues, DynamoDB, Lambda, IAM, SNS topics, logs and dashboards;
# it skips (with a warning) CloudFront, API Gateway v2, alarms, bucket/queue policies, SNS subscriptions and
# Secrets Manager, and then fails on any output that reads an attribute of a skipped resource. The test deploys
# a copy of the template in which those resources are left out and references to them are replaced by
# stand-in strings; the template itself is not changed for moto. The skipped resources are checked as written
# further down.


def moto_supported_types() -> set[str]:
    from moto.cloudformation.parsing import get_model_map

    return set(get_model_map())


def for_moto(template: dict[str, Any]) -> tuple[dict[str, Any], set[str]]:
    """The template without the resources moto cannot create, references to them replaced by stand-ins."""
    supported = moto_supported_types()
    skipped = {name for name, resource in template["Resources"].items() if resource["Type"] not in supported}
    pattern = re.compile(r"\$\{(" + "|".join(map(re.escape, sorted(skipped))) + r")(\.[A-Za-z.]+)?\}")

    def stand_in(node: Any) -> Any:
        if isinstance(node, dict):
            if node.keys() == {"Ref"} and node["Ref"] in skipped:
                return f"moto-skipped-{node['Ref']}"
            if node.keys() == {"Fn::GetAtt"}:
                target = node["Fn::GetAtt"]
                name = target[0] if isinstance(target, list) else target.split(".")[0]
                if name in skipped:
                    return f"moto-skipped-{name}"
            if node.keys() == {"Fn::Sub"}:
                body = node["Fn::Sub"]
                if isinstance(body, str):
                    return {"Fn::Sub": pattern.sub(lambda m: f"moto-skipped-{m[1]}", body)}
                return {"Fn::Sub": [pattern.sub(lambda m: f"moto-skipped-{m[1]}", body[0]), stand_in(body[1])]}
            return {key: stand_in(value) for key, value in node.items()}
        if isinstance(node, list):
            return [stand_in(value) for value in node]
        return node

    kept = copy.deepcopy(template)
    kept["Resources"] = {}
    for name, resource in template["Resources"].items():
        if name in skipped:
            continue
        resource = stand_in(resource)
        if resource.get("DeletionPolicy") == "RetainExceptOnCreate":
            # moto keeps only "Retain" on a stack delete; the two mean the same there (and a create never rolls back).
            resource["DeletionPolicy"] = "Retain"
        depends = resource.get("DependsOn")
        if depends:
            depends = [depends] if isinstance(depends, str) else depends
            remaining = [d for d in depends if d not in skipped]
            if remaining:
                resource["DependsOn"] = remaining
            else:
                del resource["DependsOn"]
        kept["Resources"][name] = resource
    kept["Outputs"] = stand_in(template["Outputs"])
    return kept, skipped


@pytest.fixture
def stack():
    """The stack created in moto: yields (boto3 session, outputs, logical id -> physical id)."""
    import boto3
    from moto import mock_aws

    with mock_aws():
        session = boto3.session.Session(region_name=REGION)
        outputs, physical = create_stack_in_moto(session, "dev")
        yield session, outputs, physical


def create_stack_in_moto(session: Any, stage: str) -> tuple[dict[str, str], dict[str, str]]:
    """The stack of ``stage`` created in moto (inside mock_aws): its outputs and logical id -> physical id."""
    template, skipped = for_moto(TEMPLATE)
    # Everything the issue asks for that moto can model is really deployed, not stood in for.
    assert not skipped & {"ImageBucket", "UploadQueue", "UploadDeadLetterQueue", "ImageTable", "AlertTopic"}
    s3 = session.client("s3")
    s3.create_bucket(Bucket=STACK_PARAMETERS["ArtifactBucket"])
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("lambdas/__init__.py", "")
    for key in (value for name, value in STACK_PARAMETERS.items() if name.endswith("CodeKey")):
        s3.put_object(Bucket=STACK_PARAMETERS["ArtifactBucket"], Key=key, Body=code.getvalue())
    cloudformation = session.client("cloudformation")
    name = deploy.stack_name(stage)
    cloudformation.create_stack(
        StackName=name,
        TemplateBody=json.dumps(template),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in {**STACK_PARAMETERS, "Stage": stage}.items()],
        Capabilities=["CAPABILITY_IAM"],
    )
    described = cloudformation.describe_stacks(StackName=name)["Stacks"][0]
    assert described["StackStatus"] == "CREATE_COMPLETE", described.get("StackStatusReason")
    outputs = {o["OutputKey"]: o["OutputValue"] for o in described["Outputs"]}
    summaries = cloudformation.list_stack_resources(StackName=name)["StackResourceSummaries"]
    return outputs, {s["LogicalResourceId"]: s["PhysicalResourceId"] for s in summaries}


def test_bucket_is_named_for_app_stage_account_and_region_and_encrypted(stack):
    session, outputs, _ = stack
    assert outputs["ImageBucketName"] == BUCKET_NAME
    rules = session.client("s3").get_bucket_encryption(Bucket=BUCKET_NAME)["ServerSideEncryptionConfiguration"]
    assert rules["Rules"][0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"


def test_upload_queue_sends_a_message_to_the_dead_letter_queue_after_five_receives(stack):
    session, outputs, _ = stack
    sqs = session.client("sqs")
    attributes = sqs.get_queue_attributes(QueueUrl=outputs["UploadQueueUrl"], AttributeNames=["All"])["Attributes"]
    dead_letter_arn = sqs.get_queue_attributes(QueueUrl=outputs["DeadLetterQueueUrl"], AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    assert json.loads(attributes["RedrivePolicy"]) == {"deadLetterTargetArn": dead_letter_arn, "maxReceiveCount": 5}
    # The processor gives up (and marks the record failed) on exactly the delivery after which SQS dead-letters.
    function = session.client("lambda").get_function_configuration(FunctionName=outputs["ProcessorFunctionName"])
    assert Settings.from_env(function["Environment"]["Variables"]).max_receive_count == 5


def test_upload_queue_visibility_outlasts_six_processor_timeouts(stack):
    session, outputs, _ = stack
    attributes = session.client("sqs").get_queue_attributes(
        QueueUrl=outputs["UploadQueueUrl"], AttributeNames=["VisibilityTimeout"]
    )["Attributes"]
    function = session.client("lambda").get_function_configuration(FunctionName=outputs["ProcessorFunctionName"])
    assert int(attributes["VisibilityTimeout"]) >= 6 * function["Timeout"]


def test_both_queues_are_encrypted_at_rest(stack):
    session, outputs, _ = stack
    sqs = session.client("sqs")
    for url in (outputs["UploadQueueUrl"], outputs["DeadLetterQueueUrl"]):
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        assert attributes.get("SqsManagedSseEnabled") == "true", url


def test_processor_consumes_the_upload_queue_in_small_batches_with_partial_failures(stack):
    session, outputs, _ = stack
    client = session.client("lambda")
    (mapping,) = client.list_event_source_mappings(FunctionName=outputs["ProcessorFunctionName"])["EventSourceMappings"]
    queue_arn = session.client("sqs").get_queue_attributes(
        QueueUrl=outputs["UploadQueueUrl"], AttributeNames=["QueueArn"]
    )["Attributes"]["QueueArn"]
    assert mapping["EventSourceArn"] == queue_arn
    assert mapping["BatchSize"] <= 5
    # moto does not keep FunctionResponseTypes or ScalingConfig; the template says them.
    source = properties("ProcessorEventSource")
    assert source["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert source["ScalingConfig"] == {"MaximumConcurrency": {"Ref": "ProcessorConcurrency"}}


def test_lambdas_run_the_packaged_python_with_their_own_roles(stack):
    session, outputs, physical = stack
    client = session.client("lambda")
    for name, role in ((outputs["ProcessorFunctionName"], "ProcessorRole"), (outputs["ApiFunctionName"], "ApiRole")):
        function = client.get_function_configuration(FunctionName=name)
        assert function["Runtime"] == f"python{package.RUNTIME_PYTHON}"
        assert function["Role"].endswith("/" + physical[role])
        # moto does not keep Architectures; test_runtime_and_architecture_agree... reads the template.


def test_processor_environment_gives_the_core_the_stacks_bucket_table_and_cdn(stack):
    session, outputs, _ = stack
    function = session.client("lambda").get_function_configuration(FunctionName=outputs["ProcessorFunctionName"])
    environment = function["Environment"]["Variables"]
    settings = Settings.from_env(environment)
    assert (settings.bucket, settings.table) == (outputs["ImageBucketName"], outputs["ImageTableName"])
    assert environment["CDN_URL"] == outputs["CdnUrl"]
    # moto skips CloudFront, so the distribution's id is a stand-in here; the template says !Ref Distribution.
    assert settings.cdn_distribution_id == outputs["CdnDistributionId"] == "moto-skipped-Distribution"
    assert environment["POWERTOOLS_METRICS_NAMESPACE"] == "ImagePipeline/dev"


def test_deployed_table_indexes_match_records_table_schema(stack):
    session, outputs, _ = stack
    table = session.client("dynamodb").describe_table(TableName=outputs["ImageTableName"])["Table"]
    deployed = {i["IndexName"]: i["KeySchema"] for i in table["GlobalSecondaryIndexes"]}
    assert deployed == {i["IndexName"]: i["KeySchema"] for i in records.TABLE_SCHEMA["GlobalSecondaryIndexes"]}


def test_alert_topic_is_stage_suffixed(stack):
    session, outputs, _ = stack
    assert outputs["AlertTopicArn"] == f"arn:aws:sns:{REGION}:{ACCOUNT}:image-pipeline-alerts-dev"
    topics = session.client("sns").list_topics()["Topics"]
    assert {"TopicArn": outputs["AlertTopicArn"]} in topics


# -- resources moto skips, checked as written -----------------------------------------------------------------------


def test_bucket_sends_only_raw_object_created_events_to_the_upload_queue():
    (queue,) = properties("ImageBucket")["NotificationConfiguration"]["QueueConfigurations"]
    assert queue["Event"] == "s3:ObjectCreated:*"
    assert queue["Queue"] == {"Fn::GetAtt": ["UploadQueue", "Arn"]}
    assert queue["Filter"]["S3Key"]["Rules"] == [{"Name": "prefix", "Value": "raw/"}]


def test_queue_policy_admits_only_this_bucket_in_this_account_and_is_in_place_before_the_bucket():
    bucket = properties("ImageBucket")
    (allow,) = [s for s in properties("UploadQueuePolicy")["PolicyDocument"]["Statement"] if s["Effect"] == "Allow"]
    assert allow["Principal"] == {"Service": "s3.amazonaws.com"}
    assert allow["Action"] == "sqs:SendMessage"
    source_arn = allow["Condition"]["ArnEquals"]["aws:SourceArn"]["Fn::Sub"]
    assert source_arn == "arn:${AWS::Partition}:s3:::" + bucket["BucketName"]["Fn::Sub"]
    assert allow["Condition"]["StringEquals"]["aws:SourceAccount"] == {"Ref": "AWS::AccountId"}
    assert RESOURCES["ImageBucket"]["DependsOn"] == "UploadQueuePolicy"


def test_bucket_blocks_public_access_and_refuses_plain_http():
    bucket = properties("ImageBucket")
    assert all(bucket["PublicAccessBlockConfiguration"].values())
    assert len(bucket["PublicAccessBlockConfiguration"]) == 4
    (deny,) = [s for s in properties("ImageBucketPolicy")["PolicyDocument"]["Statement"] if s["Effect"] == "Deny"]
    assert deny["Action"] == "s3:*"
    assert deny["Principal"] == "*"
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_bucket_cors_lets_only_the_app_origin_post_uploads_and_a_developers_origin_when_asked():
    (rule,) = properties("ImageBucket")["CorsConfiguration"]["CorsRules"]
    condition, with_dev, without = rule["AllowedOrigins"]["Fn::If"]
    assert without == [{"Ref": "AppOrigin"}]
    assert with_dev == [{"Ref": "AppOrigin"}, {"Ref": "DevUploadOrigin"}]
    assert TEMPLATE["Conditions"][condition] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "DevUploadOrigin"}, ""]}]}
    assert TEMPLATE["Parameters"]["DevUploadOrigin"]["Default"] == ""
    assert rule["AllowedMethods"] == ["POST"]


def test_bucket_aborts_stale_multipart_uploads_and_expires_raw_only_when_asked():
    rules = properties("ImageBucket")["LifecycleConfiguration"]["Rules"]
    assert any(r.get("AbortIncompleteMultipartUpload") == {"DaysAfterInitiation": 1} for r in rules)
    (raw_rule,) = [r for r in rules if "Fn::If" in r]
    condition, expire, otherwise = raw_rule["Fn::If"]
    assert condition == "ExpireRaw"
    assert otherwise == {"Ref": "AWS::NoValue"}
    assert expire["Prefix"] == "raw/"
    assert expire["ExpirationInDays"] == {"Ref": "RawExpiryDays"}


def test_cloudfront_reads_public_and_static_only_and_only_for_this_distribution():
    (allow,) = [s for s in properties("ImageBucketPolicy")["PolicyDocument"]["Statement"] if s["Effect"] == "Allow"]
    assert allow["Principal"] == {"Service": "cloudfront.amazonaws.com"}
    assert allow["Action"] == "s3:GetObject"
    assert [r["Fn::Sub"] for r in allow["Resource"]] == ["${ImageBucket.Arn}/public/*", "${ImageBucket.Arn}/static/*"]
    assert allow["Condition"]["StringEquals"]["AWS:SourceArn"]["Fn::Sub"].endswith(":distribution/${Distribution}")


def test_nothing_in_the_bucket_policy_lets_anyone_read_hidden_renditions():
    allowed = [
        resource["Fn::Sub"]
        for statement in properties("ImageBucketPolicy")["PolicyDocument"]["Statement"]
        if statement["Effect"] == "Allow"
        for resource in statement["Resource"]
    ]
    assert allowed
    assert all(resource.endswith(("/public/*", "/static/*")) for resource in allowed)


def test_cdn_serves_the_public_prefix_through_origin_access_control():
    config = distribution()
    origins = {o["Id"]: o for o in config["Origins"] if "S3OriginConfig" in o}
    assert set(origins) == {"ImageBucketPublic", "ImageBucketStatic"}
    assert origins["ImageBucketPublic"]["OriginPath"] == "/public"
    assert "OriginPath" not in origins["ImageBucketStatic"]  # static/ files are served at /static/ as stored
    for origin in origins.values():
        assert origin["OriginAccessControlId"] == {"Fn::GetAtt": ["OriginAccessControl", "Id"]}
        assert origin["S3OriginConfig"] == {"OriginAccessIdentity": ""}
    behaviours = {b["PathPattern"]: b for b in config["CacheBehaviors"]}
    assert behaviours["/static/*"]["TargetOriginId"] == "ImageBucketStatic"
    assert (
        behaviours["/thumbs/*"]["TargetOriginId"]
        == behaviours["/optimized/*"]["TargetOriginId"]
        == ("ImageBucketPublic")
    )
    for behaviour in [*behaviours.values(), config["DefaultCacheBehavior"]]:
        assert behaviour["ViewerProtocolPolicy"] == "redirect-to-https"
        assert behaviour["Compress"] is True
        assert behaviour["ResponseHeadersPolicyId"] == {"Ref": "SecurityHeadersPolicy"}


def test_rendition_cache_key_is_the_versioned_path_alone_and_caches_a_year():
    cache = properties("RenditionCachePolicy")["CachePolicyConfig"]
    key = cache["ParametersInCacheKeyAndForwardedToOrigin"]
    assert key["QueryStringsConfig"] == {"QueryStringBehavior": "none"}
    assert key["CookiesConfig"] == {"CookieBehavior": "none"}
    assert key["HeadersConfig"] == {"HeaderBehavior": "none"}
    assert not key["EnableAcceptEncodingGzip"]
    assert not key["EnableAcceptEncodingBrotli"]
    assert cache["DefaultTTL"] == cache["MaxTTL"] == 365 * 24 * 3600
    for behaviour in distribution()["CacheBehaviors"]:
        if behaviour["PathPattern"] in {"/thumbs/*", "/optimized/*"}:
            assert behaviour["CachePolicyId"] == {"Ref": "RenditionCachePolicy"}


def test_cdn_responses_carry_security_headers():
    headers = properties("SecurityHeadersPolicy")["ResponseHeadersPolicyConfig"]["SecurityHeadersConfig"]
    assert headers["StrictTransportSecurity"]["AccessControlMaxAgeSec"] >= 31536000
    assert headers["ContentTypeOptions"]["Override"] is True
    assert headers["FrameOptions"]["FrameOption"] == "DENY"
    assert headers["ReferrerPolicy"]["ReferrerPolicy"] == "strict-origin-when-cross-origin"
    # Django sends its own, stricter referrer policy and a more precise CSP on pages: those are kept.
    assert headers["ReferrerPolicy"]["Override"] is False
    assert headers["ContentSecurityPolicy"]["Override"] is False


def test_http_api_routes_both_paths_to_the_api_function_with_payload_2():
    # ANY so that the function's JSON 405 answers other methods (API Gateway alone would answer 404).
    routes = {r["Properties"]["RouteKey"] for r in of_type("AWS::ApiGatewayV2::Route").values()}
    assert routes == {"ANY /images", "ANY /images/{id}"}
    integration = properties("HttpApiIntegration")
    assert integration["PayloadFormatVersion"] == "2.0"
    assert integration["IntegrationUri"] == {"Fn::GetAtt": ["ApiFunction", "Arn"]}
    assert properties("HttpApi")["CorsConfiguration"]["AllowOrigins"] == [{"Ref": "AppOrigin"}]
    assert set(properties("HttpApiStage")["DefaultRouteSettings"]) == {"ThrottlingBurstLimit", "ThrottlingRateLimit"}
    assert properties("ApiInvokePermission")["Principal"] == "apigateway.amazonaws.com"


HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def test_api_invoke_permission_admits_every_method_of_every_route_to_the_function():
    """An execute-api ARN is <api>/<stage>/<method>/<path>; ANY routes send every method to the function."""
    source_arn = properties("ApiInvokePermission")["SourceArn"]["Fn::Sub"]
    prefix = "arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:${HttpApi}/"
    assert source_arn.startswith(prefix)
    pattern = source_arn[len(prefix) :]
    assert properties("ApiInvokePermission")["FunctionName"] == {"Ref": "ApiFunction"}
    routes = [
        r["Properties"]["RouteKey"]
        for r in of_type("AWS::ApiGatewayV2::Route").values()
        if r["Properties"]["Target"] == {"Fn::Sub": "integrations/${HttpApiIntegration}"}
    ]
    assert routes
    for route in routes:
        method, path = route.split(" ", 1)
        concrete = path.lstrip("/").replace("{id}", "01HV6J1ZQ3M4ABCD")
        for sent in HTTP_METHODS if method == "ANY" else (method,):
            assert fnmatch.fnmatchcase(f"$default/{sent}/{concrete}", pattern), (route, sent, pattern)


def test_alarms_watch_errors_dead_letters_5xx_throttles_and_duration_and_mail_the_topic():
    alarms = of_type("AWS::CloudWatch::Alarm")
    watched = set()
    for alarm in alarms.values():
        props = alarm["Properties"]
        assert props["AlarmActions"] == [{"Ref": "AlertTopic"}]
        names = [props.get("MetricName")] + [m["MetricStat"]["Metric"]["MetricName"] for m in props.get("Metrics", [])
                                             if "MetricStat" in m]  # fmt: skip
        watched.update(n for n in names if n)
    assert {"Errors", "ApproximateNumberOfMessagesVisible", "5xx", "Throttles", "Duration"} <= watched
    assert properties("AlertEmailSubscription") == {
        "TopicArn": {"Ref": "AlertTopic"},
        "Protocol": "email",
        "Endpoint": {"Ref": "AlertEmail"},
    }


def alarm_dimensions(alarm: dict[str, Any]) -> dict[str, Any]:
    return {d["Name"]: d["Value"] for d in alarm["Dimensions"]}


def assert_any_in_five_minutes_mails_the_topic(alarm: dict[str, Any]) -> None:
    assert (alarm["Statistic"], alarm["Period"], alarm["EvaluationPeriods"]) == ("Sum", 300, 1)
    assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (0, "GreaterThanThreshold")
    assert alarm["TreatMissingData"] == "notBreaching"
    assert alarm["AlarmActions"] == alarm["OKActions"] == [{"Ref": "AlertTopic"}]


def test_processing_error_alarm_counts_the_processors_handled_unexpected_failures():
    from pipeline.processing import Reason

    alarm = properties("ProcessingErrorAlarm")
    environment = properties("ProcessorFunction")["Environment"]["Variables"]
    # The EMF line handler._count writes: this namespace, dimensions exactly reason + Powertools' service.
    assert alarm["Namespace"] == environment["POWERTOOLS_METRICS_NAMESPACE"] == {"Fn::Sub": "ImagePipeline/${Stage}"}
    assert alarm["MetricName"] == "ImagesFailed"
    assert alarm_dimensions(alarm) == {
        "reason": Reason.PROCESSING_ERROR.value,
        "service": environment["POWERTOOLS_SERVICE_NAME"],
    }
    assert_any_in_five_minutes_mails_the_topic(alarm)


def test_web_app_errors_alarm_watches_the_function_zappa_creates():
    alarm = properties("WebAppErrorsAlarm")
    assert (alarm["Namespace"], alarm["MetricName"]) == ("AWS/Lambda", "Errors")
    function_name = alarm_dimensions(alarm)["FunctionName"]
    assert function_name == TEMPLATE["Outputs"]["WebFunctionName"]["Value"] == {"Fn::Sub": "${AppName}-web-${Stage}"}
    # make deploy's name for it (Zappa's <project_name>-<stage>), with the template's default AppName.
    app_name = TEMPLATE["Parameters"]["AppName"]["Default"]
    rendered = function_name["Fn::Sub"].replace("${AppName}", app_name).replace("${Stage}", "prod")
    assert rendered == deploy.Target("prod", REGION, ACCOUNT).web_function
    assert rendered == ZAPPA_SETTINGS["dev"]["project_name"] + "-prod"
    assert_any_in_five_minutes_mails_the_topic(alarm)


def test_duration_alarm_fires_at_80_percent_of_the_processor_timeout():
    alarm = properties("ProcessorDurationAlarm")
    assert alarm["ExtendedStatistic"] == "p99"
    assert alarm["Threshold"] == 0.8 * properties("ProcessorFunction")["Timeout"] * 1000


def test_dashboard_is_valid_json_showing_every_processor_metric_and_the_queue():
    body, variables = properties("Dashboard")["DashboardBody"]["Fn::Sub"]
    rendered = re.sub(r"\$\{[^}]+\}", "x", body)
    widgets = json.loads(rendered)["widgets"]
    text = json.dumps(widgets)
    for metric in ("ImagesProcessed", "ImagesFailed", "ProcessingTime", "BytesIn", "BytesOut"):
        assert metric in text
    assert "ApproximateNumberOfMessagesVisible" in text
    assert (
        variables["Namespace"]
        == properties("ProcessorFunction")["Environment"]["Variables"]["POWERTOOLS_METRICS_NAMESPACE"]
    )


DISTRIBUTION_ARN = "arn:${AWS::Partition}:cloudfront::${AWS::AccountId}:distribution/${Distribution}"


def test_processor_role_allows_exactly_its_work():
    bucket = "arn:${AWS::Partition}:s3:::${AppName}-${Stage}-${AWS::AccountId}-${AWS::Region}"
    dynamodb = {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"}
    dynamodb |= {"dynamodb:ConditionCheckItem", "dynamodb:Query"}
    renditions = {"s3:GetObject", "s3:PutObject", "s3:DeleteObject"}  # Get: a move is a CopyObject
    assert actions_by_resource("ProcessorRole") == {
        get_att("ProcessorLogGroup", "Arn"): {"logs:CreateLogStream", "logs:PutLogEvents"},
        sub(bucket + "/raw/*"): {"s3:GetObject"},
        sub(bucket + "/public/*"): renditions,
        sub(bucket + "/hidden/*"): renditions,
        sub(bucket): {"s3:ListBucket"},
        get_att("ImageTable", "Arn"): dynamodb,
        sub("${ImageTable.Arn}/index/*"): dynamodb,
        get_att("UploadQueue", "Arn"): {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"},
        sub(DISTRIBUTION_ARN): {"cloudfront:CreateInvalidation"},
    }


@pytest.mark.parametrize("role", ["ProcessorRole", "WebAppRole"])
def test_both_roles_may_invalidate_exactly_this_distribution_and_nothing_else_in_cloudfront(role):
    granted = [s for s in statements(role) if any(str(a).startswith("cloudfront:") for a in [s["Action"]])]
    assert len(granted) == 1
    assert granted[0]["Action"] == "cloudfront:CreateInvalidation"
    assert granted[0]["Resource"] == {"Fn::Sub": DISTRIBUTION_ARN}
    assert not any(
        str(action).startswith("cloudfront:")
        for statement in statements(role)
        if statement is not granted[0]
        for action in (statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]])
    )


def test_api_role_only_reads_the_table():
    assert actions_by_resource("ApiRole") == {
        get_att("ApiFunctionLogGroup", "Arn"): {"logs:CreateLogStream", "logs:PutLogEvents"},
        get_att("ImageTable", "Arn"): {"dynamodb:GetItem", "dynamodb:Query"},
        sub("${ImageTable.Arn}/index/*"): {"dynamodb:GetItem", "dynamodb:Query"},
    }


def test_web_app_role_writes_raw_uploads_and_static_files_and_moves_but_never_writes_renditions():
    granted = actions_by_resource("WebAppRole")
    assert granted[sub("${ImageBucket.Arn}/raw/*")] == {"s3:PutObject", "s3:GetObject", "s3:DeleteObject"}
    assert granted[sub("${ImageBucket.Arn}/static/*")] == {"s3:PutObject", "s3:GetObject", "s3:DeleteObject"}
    for side in ("public", "hidden"):
        assert granted[sub(f"${{ImageBucket.Arn}}/{side}/*")] == {"s3:GetObject", "s3:DeleteObject", "s3:PutObject"}
    # PutObject on renditions only as a copy of a rendition already in the bucket (hide and unhide move files).
    (put,) = [s for s in statements("WebAppRole") if s["Action"] == "s3:PutObject" and "/raw/" not in json.dumps(s)]
    assert put["Condition"] == {
        "StringLike": {
            "s3:x-amz-copy-source": [{"Fn::Sub": "${ImageBucket}/public/*"}, {"Fn::Sub": "${ImageBucket}/hidden/*"}]
        }
    }
    assert sub(DISTRIBUTION_ARN) in granted
    assert not any(action.startswith("sqs:") for actions in granted.values() for action in actions)


def test_every_lambda_variable_the_template_sets_is_one_the_core_reads():
    sample = {"IMAGE_BUCKET": "b", "IMAGE_TABLE": "t", "CDN_URL": "https://cdn.example", "PIPELINE_SECRET": "s"}
    sample["API_CORS_ORIGINS"] = "https://gallery.example.com"
    sample["CDN_DISTRIBUTION_ID"] = "E2EXAMPLE7TEST"
    sample["MAX_RECEIVE_COUNT"] = "3"
    sample["ORIGIN_VERIFY_SECRET"] = '{"current": "c", "previous": "p"}'
    default = Settings.from_env({})
    # The photo library's switches, each set to the value that is not its default.
    sample["KEEP_LOCATION"] = "off" if default.imaging.keep_location else "on"
    sample["NEAR_DUPLICATES"] = "off" if default.imaging.near_duplicates else "on"
    sample["DUPLICATES"] = "process" if default.duplicates == "skip" else "skip"
    for function in ("ProcessorFunction", "ApiFunction", "TrashPurgeFunction"):
        for name in properties(function)["Environment"]["Variables"]:
            if name.startswith("POWERTOOLS_") or name == "LOG_LEVEL":
                continue  # read by Powertools itself
            if name == "MALLOC_ARENA_MAX":
                continue  # read by glibc's allocator
            assert Settings.from_env({name: sample[name]}) != default, f"{function}: {name} is not read by config"


# -- Lambda packages ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("lambda_package", package.PACKAGES, ids=lambda p: p.name)
def test_lambda_package_code_imports_its_handler_without_django(lambda_package, tmp_path):
    """The zip's code layout, in a clean interpreter: only the package's code and the installed libraries."""
    package.copy_code(lambda_package, tmp_path)
    site_packages = next(Path(p) for p in sys.path if p.endswith("site-packages"))
    # measure_import fails (PackagingError) if the import fails or pulls in Django.
    assert package.measure_import(lambda_package, tmp_path, site_packages) > 0


def test_api_package_leaves_out_imaging_libraries_and_boto3():
    (api,) = [p for p in package.PACKAGES if p.name == "image-api"]
    kept = package.requirement_lines(api.without)
    assert kept
    assert not any(line.lower().startswith(("pillow", "boto3")) for line in kept)


def test_lambda_zip_bytes_depend_only_on_content(tmp_path):
    source = tmp_path / "code"
    (source / "pipeline").mkdir(parents=True)
    (source / "pipeline" / "config.py").write_text("X = 1\n")
    first, second = tmp_path / "first.zip", tmp_path / "second.zip"
    package.write_zip(source, first)
    (source / "pipeline" / "config.py").touch()  # a new mtime must not change the zip
    package.write_zip(source, second)
    assert first.read_bytes() == second.read_bytes()


def test_runtime_and_architecture_agree_across_template_packager_and_zappa():
    for function in of_type("AWS::Lambda::Function").values():
        assert function["Properties"]["Runtime"] == f"python{package.RUNTIME_PYTHON}"
        assert function["Properties"]["Architectures"] == ["arm64"]
    assert ZAPPA_SETTINGS["dev"]["runtime"] == f"python{package.RUNTIME_PYTHON}"
    assert ZAPPA_SETTINGS["dev"]["architecture"] == "arm64"
    assert package.RUNTIME_ARCH == "aarch64"


# -- Zappa ----------------------------------------------------------------------------------------------------------

FAKE_OUTPUTS = {
    "WebAppRoleArn": f"arn:aws:iam::{ACCOUNT}:role/web",
    "ImageBucketName": BUCKET_NAME,
    "ImageTableName": "ImageMetadata-dev",
    "SiteUrl": "https://d111111abcdef8.cloudfront.net",
    "CdnUrl": "https://d111111abcdef8.cloudfront.net",
    "CdnDistributionId": "E2EXAMPLE7TEST",
    "ApiUrl": "https://abc123.execute-api.us-east-1.amazonaws.com",
}


def rendered_zappa_settings(stage: str = "dev") -> dict[str, Any]:
    target = deploy.Target(stage=stage, region=REGION, account=ACCOUNT)
    values = deploy.zappa_values(target, FAKE_OUTPUTS)
    return deploy.render(ZAPPA_SETTINGS, values)


def test_deploy_fills_every_zappa_settings_placeholder():
    assert "${" not in json.dumps(rendered_zappa_settings())


def test_django_gets_the_stacks_distribution_id_so_hide_and_delete_can_invalidate():
    environment = rendered_zappa_settings()["dev"]["aws_environment_variables"]
    assert Settings.from_env(environment).cdn_distribution_id == FAKE_OUTPUTS["CdnDistributionId"]
    assert TEMPLATE["Outputs"]["CdnDistributionId"]["Value"] == {"Ref": "Distribution"}
    assert properties("ProcessorFunction")["Environment"]["Variables"]["CDN_DISTRIBUTION_ID"] == {"Ref": "Distribution"}


def test_django_gets_the_stacks_photo_library_settings():
    outputs = {**FAKE_OUTPUTS, "PublishReview": "required", "RequireAltText": "on", "DuplicateUploads": "skip"}
    values = deploy.zappa_values(deploy.Target(stage="dev", region=REGION, account=ACCOUNT), outputs)
    environment = deploy.render(ZAPPA_SETTINGS, values)["dev"]["aws_environment_variables"]
    settings = Settings.from_env(environment)
    assert (settings.publish_review, settings.require_alt_text, settings.duplicates) == ("required", True, "skip")
    for output, parameter in (("PublishReview", "PublishReview"), ("RequireAltText", "RequireAltText")):
        assert TEMPLATE["Outputs"][output]["Value"] == {"Ref": parameter}
    # The processor reads the same switch from the same parameter.
    assert properties("ProcessorFunction")["Environment"]["Variables"]["DUPLICATES"] == {"Ref": "DuplicateUploads"}
    # Before a stack has these outputs, Django runs with the defaults.
    assert Settings.from_env(rendered_zappa_settings()["dev"]["aws_environment_variables"]).publish_review == "off"


def test_zappa_settings_name_a_placeholder_deploy_does_not_know_is_an_error():
    with pytest.raises(deploy.DeployError, match="NOT_A_VALUE"):
        deploy.render({"dev": {"x": "${NOT_A_VALUE}"}}, {})


def test_zappa_stages_run_django_as_the_stacks_role():
    for stage in ("dev", "prod"):
        settings = {**rendered_zappa_settings()["dev"], **rendered_zappa_settings()[stage]}
        assert settings["app_function"] == "pipeline_site.wsgi.application"
        assert settings["django_settings"] == "pipeline_site.settings"
        assert settings["manage_roles"] is False
        assert settings["role_arn"] == FAKE_OUTPUTS["WebAppRoleArn"]
        assert settings["project_name"] + "-" + stage == deploy.Target(stage, REGION, ACCOUNT).web_function
    assert ZAPPA_SETTINGS["prod"]["extends"] == "dev"


def test_zappa_settings_hold_no_secret_and_the_remote_env_brings_them():
    from pipeline_site.settings import PRODUCTION_REQUIRED

    environment = ZAPPA_SETTINGS["dev"]["aws_environment_variables"]
    assert not set(environment) & set(deploy.REMOTE_ENV_NAMES)
    assert "environment_variables" not in ZAPPA_SETTINGS["dev"]  # they would be baked into the zip
    # Lambda sets AWS_REGION itself; everything else Django insists on comes from one of the two.
    assert set(PRODUCTION_REQUIRED) - {"AWS_REGION"} <= set(environment) | set(deploy.REMOTE_ENV_NAMES)
    remote_env = rendered_zappa_settings("prod")["dev"]["remote_env"]  # prod extends dev, rendered for prod
    assert remote_env == f"s3://image-pipeline-artifacts-{ACCOUNT}-{REGION}/zappa/prod/remote-env.json"


def test_zappa_never_swaps_binaries_itself():
    # make deploy hands Zappa site-packages already made of Lambda wheels (see deploy.build_web_packages).
    assert ZAPPA_SETTINGS["dev"]["use_precompiled_packages"] is False


def test_deploy_refuses_an_app_zip_with_binaries_for_another_platform(tmp_path):
    web_zip = tmp_path / "web.zip"
    with zipfile.ZipFile(web_zip, "w") as archive:
        for name in (
            "PIL/_imaging.cpython-312-aarch64-linux-gnu.so",
            "PIL/_imaging.cpython-311-x86_64-linux-gnu.so",
            "pillow.libs/libjpeg-45e70d75.so.62.4.0",
            "yaml/_yaml.cpython-311-aarch64-linux-gnu.so",
            "django/__init__.py",
        ):
            archive.writestr(name, b"")
    assert deploy.foreign_binaries(web_zip) == [
        "PIL/_imaging.cpython-311-x86_64-linux-gnu.so",
        "yaml/_yaml.cpython-311-aarch64-linux-gnu.so",
    ]


def test_zappa_leaves_development_trees_out_of_the_package():
    assert {"tests", "corpus", ".venv*", "infra", "node_modules", "bench", "local_stack"} <= set(
        ZAPPA_SETTINGS["dev"]["exclude"]
    )


def run_zappa(*arguments: str, settings: dict[str, Any], tmp_path: Path) -> subprocess.CompletedProcess:
    settings_path = tmp_path / "zappa_settings.json"
    settings_path.write_text(json.dumps(settings))
    zappa = Path(sys.prefix) / "bin" / "zappa"
    return subprocess.run(
        [str(zappa), arguments[0], "dev", "-s", str(settings_path), *arguments[1:]],
        cwd=ROOT,
        env={**os.environ, "VIRTUAL_ENV": sys.prefix},
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


def test_zappa_reads_the_rendered_settings_into_the_module_it_packages(tmp_path):
    """Zappa's own settings loader on the file make deploy renders; writes the zappa_settings.py of the zip."""
    output = tmp_path / "zappa_settings.py"
    result = run_zappa(
        "save-python-settings-file", "-o", str(output), settings=rendered_zappa_settings(), tmp_path=tmp_path
    )
    assert result.returncode == 0, result.stdout + result.stderr
    packaged_settings = output.read_text()
    assert "DJANGO_SETTINGS='pipeline_site.settings'" in packaged_settings
    assert "APP_MODULE='pipeline_site.wsgi'" in packaged_settings
    assert "APP_FUNCTION='application'" in packaged_settings
    assert (
        f"REMOTE_ENV='s3://image-pipeline-artifacts-{ACCOUNT}-{REGION}/zappa/dev/remote-env.json'" in packaged_settings
    )
    assert FAKE_OUTPUTS["ImageBucketName"] not in packaged_settings  # stack values live in the function's config


@pytest.mark.skipif(
    os.environ.get("RUN_ZAPPA_PACKAGE") != "1",
    reason="set RUN_ZAPPA_PACKAGE=1: `zappa package` zips the whole venv (1-4 minutes measured here)",
)
def test_zappa_packages_the_django_app_without_development_trees(tmp_path):
    """`zappa package dev` with the settings make deploy renders.

    Offline (use_precompiled_packages is off), from this development venv; make deploy packages the app's
    requirements installed as Lambda wheels instead (build/zappa-venv) and checks the zip for stray binaries.
    """
    settings = rendered_zappa_settings()
    output = tmp_path / "web.zip"
    result = run_zappa("package", "-o", str(output), settings=settings, tmp_path=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    with zipfile.ZipFile(output) as archive:
        top = {name.split("/")[0] for name in archive.namelist()}
    assert {"pipeline_site", "gallery", "pipeline", "django", "storages", "zappa", "handler.py"} <= top
    assert "zappa_settings.py" in top
    assert not top & {"tests", "infra", "docs", "bench", "local_stack", "build", ".venv", ".venv-checkov"}


# -- make deploy's AWS steps, against moto ---------------------------------------------------------------------------


@pytest.fixture
def deployment(tmp_path, monkeypatch):
    """A deploy.Deployment on moto, with the moto-deployable copy of the template."""
    import boto3
    from moto import mock_aws

    template, _ = for_moto(TEMPLATE)
    moto_template = tmp_path / "pipeline.json"
    moto_template.write_text(json.dumps(template))
    monkeypatch.setattr(deploy, "TEMPLATE", moto_template)
    with mock_aws():
        yield deploy.Deployment(boto3.session.Session(region_name=REGION), "dev")


def plain_artifact_bucket(deployment) -> None:
    # moto enforces the TLS-only Deny of ensure_artifact_bucket without reading its condition, so the tests of
    # later steps start from a bucket without that policy.
    deployment.s3.create_bucket(Bucket=deployment.target.artifact_bucket)


def test_artifact_bucket_is_created_private_encrypted_and_tls_only(deployment):
    deployment.ensure_artifact_bucket()
    bucket = deployment.target.artifact_bucket
    assert all(deployment.s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"].values())
    encryption = deployment.s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]
    assert encryption["Rules"][0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    (deny,) = json.loads(deployment.s3.get_bucket_policy(Bucket=bucket)["Policy"])["Statement"]
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    deployment.ensure_artifact_bucket()  # a second deploy finds it and leaves it alone


def test_uploads_are_keyed_by_content(deployment, tmp_path):
    plain_artifact_bucket(deployment)
    code = tmp_path / "image-api.zip"
    code.write_bytes(b"one")
    first = deployment.upload(code, "lambda")
    assert deployment.upload(code, "lambda") == first
    code.write_bytes(b"two")
    assert deployment.upload(code, "lambda") != first


def test_stack_is_created_through_a_change_set_with_the_given_parameters(deployment):
    plain_artifact_bucket(deployment)
    for key in ("lambda/p.zip", "lambda/a.zip", "lambda/t.zip"):
        deployment.s3.put_object(Bucket=deployment.target.artifact_bucket, Key=key, Body=b"PK\x05\x06" + b"\0" * 18)
    parameters = deploy.stack_parameters(
        deployment.target,
        "ops@example.com",
        "https://gallery.example.com",
        {"image-processor": "lambda/p.zip", "image-api": "lambda/a.zip", "trash-purge": "lambda/t.zip"},
    )
    deployment.deploy_stack(parameters)
    # moto leaves Outputs empty after a change set, so the stack is read through its resources here.
    cloudformation = deployment.cloudformation
    stack = cloudformation.describe_stacks(StackName="image-pipeline-dev")["Stacks"][0]
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    assert {p["ParameterKey"]: p["ParameterValue"] for p in stack["Parameters"]}[
        "AppOrigin"
    ] == "https://gallery.example.com"
    summaries = cloudformation.list_stack_resources(StackName="image-pipeline-dev")["StackResourceSummaries"]
    assert {s["LogicalResourceId"]: s["PhysicalResourceId"] for s in summaries}["ImageBucket"] == BUCKET_NAME


def test_remote_env_holds_the_stack_secrets_and_the_database_url_encrypted(deployment):
    plain_artifact_bucket(deployment)
    secrets = deployment.secrets
    django_arn = secrets.create_secret(Name="django", SecretString="django-key")["ARN"]
    pipeline_arn = secrets.create_secret(Name="pipeline", SecretString="pipeline-secret")["ARN"]
    origin_arn = secrets.create_secret(Name="origin", SecretString='{"current": "c", "previous": ""}')["ARN"]
    outputs = {"DjangoSecretKeyArn": django_arn, "PipelineSecretArn": pipeline_arn, "OriginVerifySecretArn": origin_arn}
    deployment.write_remote_env(outputs, "postgres://u:p@db/gallery")
    stored = deployment.s3.get_object(Bucket=deployment.target.artifact_bucket, Key="zappa/dev/remote-env.json")
    assert stored["ServerSideEncryption"] == "AES256"
    assert json.loads(stored["Body"].read()) == {
        "SECRET_KEY": "django-key",
        "PIPELINE_SECRET": "pipeline-secret",
        "DATABASE_URL": "postgres://u:p@db/gallery",
        "ORIGIN_VERIFY_SECRET": '{"current": "c", "previous": ""}',
    }


# -- make destroy: confirmation, a backup first, prod's data never deleted --------------------------------------------


class NoAws:
    """A session that fails the test if destroy touches AWS before it is confirmed."""

    region_name = REGION

    def client(self, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"AWS was called before the destroy was confirmed: {args}")

    resource = client


@pytest.mark.parametrize(
    ("stage", "delete_data", "command"),
    [
        ("prod", False, "make destroy STAGE=prod CONFIRM=image-pipeline-prod"),
        ("prod", True, "make destroy STAGE=prod DELETE_DATA=yes CONFIRM=image-pipeline-prod"),
        ("dev", True, "make destroy STAGE=dev DELETE_DATA=yes CONFIRM=image-pipeline-dev"),
    ],
)
def test_destroy_without_confirmation_refuses_and_says_what_to_type(stage, delete_data, command):
    with pytest.raises(deploy.DeployError, match=re.escape(command)) as refused:
        deploy.destroy(NoAws(), stage, delete_data)
    assert f"type image-pipeline-{stage} at the prompt" in str(refused.value)


def test_destroy_refuses_a_wrong_name_at_the_prompt_or_in_confirm():
    prompts = []

    def answer_dev(prompt: str) -> str:
        prompts.append(prompt)
        return "image-pipeline-dev\n"

    with pytest.raises(deploy.DeployError, match="'image-pipeline-dev' is not the stack's name"):
        deploy.destroy(NoAws(), "prod", True, ask=answer_dev)
    assert "Type the stack name (image-pipeline-prod)" in prompts[0]
    with pytest.raises(deploy.DeployError, match="type image-pipeline-prod at the prompt"):
        deploy.destroy(NoAws(), "prod", True, confirm="prod")


def test_undeploying_dev_without_deleting_data_needs_no_confirmation():
    assert not deploy.needs_confirmation("dev", False)
    deploy.confirm_destroy("dev", False, None, None)  # no prompt, no refusal


@pytest.fixture
def destroyable(monkeypatch):
    """A stage's stack in moto with versioned images and records, and the AWS operations destroy then calls."""
    import boto3
    from moto import mock_aws

    def create(stage: str) -> tuple[Any, dict[str, str], list[str]]:
        session = boto3.session.Session(region_name=REGION)
        outputs, _ = create_stack_in_moto(session, stage)
        s3 = session.client("s3")
        # moto's CloudFormation leaves out the bucket's VersioningConfiguration; the template has it.
        s3.put_bucket_versioning(Bucket=outputs["ImageBucketName"], VersioningConfiguration={"Status": "Enabled"})
        for body in (b"first", b"second"):  # two versions of one key, and a delete marker on another
            s3.put_object(Bucket=outputs["ImageBucketName"], Key="public/thumbs/a/v1-320.jpg", Body=body)
        s3.put_object(Bucket=outputs["ImageBucketName"], Key="raw/a/photo.jpg", Body=b"raw")
        s3.delete_object(Bucket=outputs["ImageBucketName"], Key="raw/a/photo.jpg")
        session.client("dynamodb").put_item(
            TableName=outputs["ImageTableName"], Item={"pk": {"S": "IMAGE#a"}, "sk": {"S": "META"}}
        )
        target = deploy.Target(stage, REGION, ACCOUNT)
        s3.create_bucket(Bucket=target.artifact_bucket)
        s3.put_object(Bucket=target.artifact_bucket, Key=target.remote_env_key, Body=b"{}")
        calls: list[str] = []
        session.events.register("before-call", lambda model, **_: calls.append(model.name))
        return session, outputs, calls

    with mock_aws():
        yield create


def object_versions(session: Any, bucket: str) -> int:
    listed = session.client("s3").list_object_versions(Bucket=bucket)
    return len(listed.get("Versions", [])) + len(listed.get("DeleteMarkers", []))


def test_prod_destroy_with_delete_data_backs_up_the_table_and_keeps_the_bucket_and_the_table(destroyable, capsys):
    session, outputs, calls = destroyable("prod")
    bucket, table = outputs["ImageBucketName"], outputs["ImageTableName"]
    assert object_versions(session, bucket) == 4

    deploy.destroy(session, "prod", True, confirm="image-pipeline-prod")

    printed = capsys.readouterr().out
    (backup,) = session.client("dynamodb").list_backups(TableName=table)["BackupSummaries"]
    assert backup["BackupArn"] in printed
    assert calls.index("CreateBackup") < calls.index("DeleteStack")
    # No object version, bucket or table deletion was even attempted; the stack itself is gone.
    assert not {"DeleteObjects", "DeleteObjectVersion", "DeleteBucket", "DeleteTable", "UpdateTable"} & set(calls)
    assert object_versions(session, bucket) == 4
    assert session.client("dynamodb").describe_table(TableName=table)["Table"]["ItemCount"] == 1
    assert "image-pipeline-prod" not in {
        s["StackName"] for s in session.client("cloudformation").list_stacks()["StackSummaries"]
        if s["StackStatus"] != "DELETE_COMPLETE"
    }  # fmt: skip
    # ... and says how to delete them by hand.
    assert f"aws s3api delete-bucket --bucket {bucket}" in printed
    assert f"aws dynamodb delete-table --table-name {table}" in printed
    assert "Empty" in printed


def test_dev_destroy_with_delete_data_backs_up_the_table_then_deletes_the_data(destroyable, capsys):
    session, outputs, calls = destroyable("dev")
    bucket, table = outputs["ImageBucketName"], outputs["ImageTableName"]

    deploy.destroy(session, "dev", True, confirm="image-pipeline-dev")

    (backup,) = session.client("dynamodb").list_backups(TableName=table)["BackupSummaries"]
    assert backup["BackupArn"] in capsys.readouterr().out
    assert calls.index("CreateBackup") < calls.index("DeleteStack") < calls.index("DeleteTable")
    assert bucket not in {b["Name"] for b in session.client("s3").list_buckets()["Buckets"]}
    assert table not in session.client("dynamodb").list_tables()["TableNames"]


def test_prod_object_versions_are_never_emptied_even_when_asked_directly():
    class ProdBucket:
        name = f"image-pipeline-prod-{ACCOUNT}-{REGION}"

        @property
        def object_versions(self):
            raise AssertionError("listed prod's object versions")

    with pytest.raises(deploy.DeployError, match="by hand"):
        deploy.empty_bucket(ProdBucket())


def test_backup_is_waited_for_before_anything_is_deleted():
    states = iter(["CREATING", "CREATING", "AVAILABLE"])
    slept = []

    class DynamoDB:
        def create_backup(self, TableName, BackupName):
            assert BackupName.startswith(f"{TableName}-before-destroy-")
            return {"BackupDetails": {"BackupArn": "arn:backup", "BackupStatus": "CREATING"}}

        def describe_backup(self, BackupArn):
            return {"BackupDescription": {"BackupDetails": {"BackupStatus": next(states)}}}

    assert deploy.back_up_table(DynamoDB(), "ImageMetadata-prod", sleep=slept.append) == "arn:backup"
    assert slept == [5, 5]


def test_destroy_reads_the_retention_of_exactly_the_templates_data_resources():
    yaml_text = (ROOT / "infra" / "pipeline.yaml").read_text()
    assert deploy.not_retained(yaml_text, deploy.DATA_RESOURCES) == []
    assert deploy.not_retained(json.dumps(TEMPLATE), deploy.DATA_RESOURCES) == []
    older = yaml_text.replace("DeletionPolicy: RetainExceptOnCreate", "DeletionPolicy: Delete", 1)
    assert deploy.not_retained(older, deploy.DATA_RESOURCES) == ["ImageBucket"]
    retained = {name for name, r in RESOURCES.items() if str(r.get("DeletionPolicy", "")).startswith("Retain")}
    assert retained == set(deploy.DATA_RESOURCES)


def test_destroy_refuses_to_delete_data_of_a_stack_deployed_before_the_data_was_retained(destroyable):
    session, _, calls = destroyable("dev")
    cloudformation = session.client("cloudformation")
    older, _ = for_moto(TEMPLATE)
    older["Resources"]["ImageTable"]["DeletionPolicy"] = "Delete"
    cloudformation.update_stack(
        StackName="image-pipeline-dev",
        TemplateBody=json.dumps(older),
        Parameters=[{"ParameterKey": k, "UsePreviousValue": True} for k in STACK_PARAMETERS],
        Capabilities=["CAPABILITY_IAM"],
    )
    with pytest.raises(deploy.DeployError, match=r"would delete ImageTable with the stack.*make deploy STAGE=dev"):
        deploy.destroy(session, "dev", True, confirm="image-pipeline-dev")
    assert not {"CreateBackup", "DeleteStack", "DeleteObjects", "DeleteTable"} & set(calls)
