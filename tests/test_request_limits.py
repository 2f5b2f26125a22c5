"""Request limits (review L4): the web ACL in front of the Django app, the throttle on Zappa's stage, the read API's.

The template is read as written (moto's CloudFormation does not model WAFv2); make deploy's steps on Zappa's REST
API stage run against moto, which models get_stage/update_stage's method settings and WAF's associations.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from django.urls import reverse
from test_infra import (
    ACCOUNT,
    REGION,
    RESOURCES,
    TEMPLATE,
    assert_any_in_five_minutes_mails_the_topic,
    of_type,
    properties,
    statements,
)

from infra import deploy

RATE_RULES = ("SensitivePathsPerClient", "EveryPathPerClient")


def rules() -> dict[str, dict[str, Any]]:
    return {rule["Name"]: rule for rule in properties("WebAcl")["Rules"]}


def default(parameter: str) -> Any:
    return TEMPLATE["Parameters"][parameter]["Default"]


def ends_with_any(path: str, statements_: list[dict[str, Any]]) -> bool:
    """What WAF's ENDS_WITH byte matches decide for a path (after its decode and normalise transformations)."""
    return any(path.endswith(s["ByteMatchStatement"]["SearchString"]) for s in statements_)


# -- the web ACL, as written ------------------------------------------------------------------------------------------


def test_web_acl_is_regional_allows_by_default_and_reports_every_rule_to_cloudwatch():
    acl = properties("WebAcl")
    assert acl["Scope"] == "REGIONAL"  # API Gateway REST APIs take regional web ACLs only
    assert acl["DefaultAction"] == {"Allow": {}}
    for visibility in [acl["VisibilityConfig"], *(rule["VisibilityConfig"] for rule in acl["Rules"])]:
        assert visibility["CloudWatchMetricsEnabled"] is True
        assert visibility["SampledRequestsEnabled"] is True
    metric_names = [rule["VisibilityConfig"]["MetricName"] for rule in acl["Rules"]]
    assert len(set(metric_names)) == len(metric_names)
    priorities = [rule["Priority"] for rule in acl["Rules"]]
    assert len(set(priorities)) == len(priorities)


def test_every_request_counts_towards_a_per_address_limit_of_the_web_rate_limit_parameter():
    statement = rules()["EveryPathPerClient"]["Statement"]["RateBasedStatement"]
    assert statement == {"Limit": {"Ref": "WebRateLimit"}, "EvaluationWindowSec": 300, "AggregateKeyType": "IP"}
    assert default("WebRateLimit") == 1000
    assert TEMPLATE["Parameters"]["WebRateLimit"]["MinValue"] == 10  # WAF's lowest limit


def test_login_and_upload_paths_have_a_tighter_per_address_limit():
    statement = rules()["SensitivePathsPerClient"]["Statement"]["RateBasedStatement"]
    assert (statement["Limit"], statement["AggregateKeyType"]) == ({"Ref": "WebSensitiveRateLimit"}, "IP")
    assert statement["EvaluationWindowSec"] == 300
    assert default("WebSensitiveRateLimit") == 100 < default("WebRateLimit")
    matches = statement["ScopeDownStatement"]["OrStatement"]["Statements"]
    # Exactly the Django app's login, admin login, upload page and upload policy, as its URLconf spells them.
    sensitive = {reverse("login"), reverse("admin:login"), reverse("gallery:upload"), reverse("gallery:upload-policy")}
    assert {m["ByteMatchStatement"]["SearchString"] for m in matches} == sensitive
    for match in matches:
        byte_match = match["ByteMatchStatement"]
        assert byte_match["FieldToMatch"] == {"UriPath": {}}
        assert byte_match["PositionalConstraint"] == "ENDS_WITH"
        assert [t["Type"] for t in sorted(byte_match["TextTransformations"], key=lambda t: t["Priority"])] == [
            "URL_DECODE",
            "NORMALIZE_PATH",
        ]
    # Under Zappa's /<stage> prefix or a custom domain's root alike; the gallery, the API and upload/done are not.
    for path in sensitive:
        assert ends_with_any(f"/dev{path}", matches)
        assert ends_with_any(path, matches)
    for path in ("/dev/", "/dev/images/01HV6J1ZQ3M4ABCD/", "/dev/api/images", reverse("gallery:upload-done")):
        assert not ends_with_any(path, matches), path


def test_the_rate_limits_come_first_and_answer_a_json_429_with_retry_after():
    acl = properties("WebAcl")
    ordered = [rule["Name"] for rule in sorted(acl["Rules"], key=lambda rule: rule["Priority"])]
    # A rule after a terminating one never sees what that one blocked, so the rate rules count every request.
    assert ordered[: len(RATE_RULES)] == list(RATE_RULES)
    for name in RATE_RULES:
        response = rules()[name]["Action"]["Block"]["CustomResponse"]
        assert response["ResponseCode"] == 429
        assert response["ResponseHeaders"] == [{"Name": "Retry-After", "Value": "60"}]
        body = acl["CustomResponseBodies"][response["CustomResponseBodyKey"]]
        assert body["ContentType"] == "APPLICATION_JSON"
        # The shape of the site's own JSON errors, which the upload page shows as they are.
        assert isinstance(json.loads(body["Content"])["error"], str)


def test_known_bad_inputs_block_and_the_common_rule_set_counts_unless_blocking_is_chosen():
    known_bad = rules()["KnownBadInputs"]
    assert known_bad["Statement"]["ManagedRuleGroupStatement"] == {
        "VendorName": "AWS",
        "Name": "AWSManagedRulesKnownBadInputsRuleSet",
    }
    assert known_bad["OverrideAction"] == {"None": {}}
    common = rules()["CommonRuleSet"]
    group = common["Statement"]["ManagedRuleGroupStatement"]
    assert (group["VendorName"], group["Name"]) == ("AWS", "AWSManagedRulesCommonRuleSet")
    assert common["OverrideAction"] == {"Fn::If": ["BlockCommonRuleSetMatches", {"None": {}}, {"Count": {}}]}
    assert TEMPLATE["Conditions"]["BlockCommonRuleSetMatches"] == {
        "Fn::Equals": [{"Ref": "WebCommonRuleSetAction"}, "block"]
    }
    assert default("WebCommonRuleSetAction") == "count"
    # Its 8 KB body limit only ever counts: Django bounds bodies itself and admin actions may post more.
    assert group["RuleActionOverrides"] == [{"Name": "SizeRestrictions_BODY", "ActionToUse": {"Count": {}}}]


def test_blocked_requests_alarm_watches_the_whole_web_acl_and_mails_the_topic():
    alarm = properties("WebAclBlockedAlarm")
    assert (alarm["Namespace"], alarm["MetricName"]) == ("AWS/WAFV2", "BlockedRequests")
    dimensions = {d["Name"]: d["Value"] for d in alarm["Dimensions"]}
    # WAF publishes a regional web ACL's totals under its metric name, the region and Rule=ALL.
    assert dimensions == {
        "WebACL": properties("WebAcl")["VisibilityConfig"]["MetricName"],
        "Region": {"Ref": "AWS::Region"},
        "Rule": "ALL",
    }
    assert_any_in_five_minutes_mails_the_topic(alarm)


def test_no_role_of_the_stack_may_change_the_firewall_or_the_stages():
    # The web ACL is associated by the deployer (make deploy), never by a function the stack runs.
    for role in of_type("AWS::IAM::Role"):
        for statement in statements(role):
            granted = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            assert not [a for a in granted if a.split(":")[0] in {"wafv2", "apigateway"}], (role, granted)


def test_stack_outputs_give_make_deploy_the_web_acl_and_the_stage_throttle():
    outputs = TEMPLATE["Outputs"]
    assert outputs["WebAclArn"]["Value"] == {"Fn::GetAtt": ["WebAcl", "Arn"]}
    assert outputs["WebThrottleRateLimit"]["Value"] == {"Ref": "WebThrottleRateLimit"}
    assert outputs["WebThrottleBurstLimit"]["Value"] == {"Ref": "WebThrottleBurstLimit"}
    # CloudFormation hands outputs over as strings.
    limits = deploy.WebAppLimits.from_outputs(
        {
            "WebAclArn": f"arn:aws:wafv2:{REGION}:{ACCOUNT}:regional/webacl/image-pipeline-dev-web/abc",
            "WebThrottleRateLimit": str(default("WebThrottleRateLimit")),
            "WebThrottleBurstLimit": str(default("WebThrottleBurstLimit")),
        }
    )
    assert (limits.rate_limit, limits.burst_limit, limits.web_acl_name) == (50.0, 100, "image-pipeline-dev-web")
    assert limits.stage_operations() == [
        {"op": "replace", "path": "/*/*/throttling/rateLimit", "value": "50"},
        {"op": "replace", "path": "/*/*/throttling/burstLimit", "value": "100"},
    ]
    with pytest.raises(deploy.DeployError, match="no output WebAclArn"):
        deploy.WebAppLimits.from_outputs({})


def test_read_api_keeps_a_stage_throttle_per_route_and_no_web_acl():
    stage = properties("HttpApiStage")
    assert stage["DefaultRouteSettings"] == {
        "ThrottlingBurstLimit": {"Ref": "ReadApiBurstLimit"},
        "ThrottlingRateLimit": {"Ref": "ReadApiRateLimit"},
    }
    assert (default("ReadApiRateLimit"), default("ReadApiBurstLimit")) == (50, 100)
    assert "RouteSettings" not in stage
    # WAF cannot be associated with an HTTP API: nothing in the stack tries (its per-client limit is issue 14's).
    assert not of_type("AWS::WAFv2::WebACLAssociation")
    assert "HttpApi" not in json.dumps(RESOURCES["WebAcl"])


# -- STACK_PARAMETERS: changing a limit at deploy time ----------------------------------------------------------------


def test_stack_parameters_reader_finds_every_template_parameter():
    text = deploy.TEMPLATE.read_text()
    assert deploy.template_parameters(text) == set(TEMPLATE["Parameters"])


def test_stack_parameters_set_tuning_values_and_refuse_unknown_or_deploy_owned_ones():
    known = set(TEMPLATE["Parameters"])
    overrides = deploy.parameter_overrides(" WebRateLimit=2000  WebThrottleRateLimit=20 ", known)
    assert overrides == {"WebRateLimit": "2000", "WebThrottleRateLimit": "20"}
    assert deploy.parameter_overrides(None, known) == {}
    with pytest.raises(deploy.DeployError, match="no parameter 'WebRateLimt'"):
        deploy.parameter_overrides("WebRateLimt=2000", known)
    with pytest.raises(deploy.DeployError, match="Key=Value pairs"):
        deploy.parameter_overrides("WebRateLimit", known)
    target = deploy.Target("dev", REGION, ACCOUNT)
    code_keys = defaultdict(lambda: "lambda/code.zip")  # a key for every package
    passed = deploy.stack_parameters(target, "ops@example.com", "https://app.example.com", code_keys, overrides)
    assert {"ParameterKey": "WebRateLimit", "ParameterValue": "2000"} in passed
    with pytest.raises(deploy.DeployError, match="cannot set Stage"):
        deploy.stack_parameters(target, "ops@example.com", "https://app.example.com", code_keys, {"Stage": "prod"})


# -- make deploy's step on Zappa's stage, against moto --------------------------------------------------------------


@pytest.fixture
def zappa_app():
    """moto with the REST API Zappa makes for the dev app (`/` and `/{proxy+}`, ANY, stage dev) and a web ACL."""
    import boto3
    from moto import mock_aws

    with mock_aws():
        session = boto3.session.Session(region_name=REGION)
        calls: list[str] = []
        session.events.register("before-call", lambda model, **_: calls.append(model.name))  # before the clients
        deployment = deploy.Deployment(session, "dev")
        apigateway = session.client("apigateway")
        api_id = apigateway.create_rest_api(name=deployment.target.web_function)["id"]
        root = apigateway.get_resources(restApiId=api_id)["items"][0]["id"]
        proxy = apigateway.create_resource(restApiId=api_id, parentId=root, pathPart="{proxy+}")["id"]
        for resource in (root, proxy):
            apigateway.put_method(restApiId=api_id, resourceId=resource, httpMethod="ANY", authorizationType="NONE")
            apigateway.put_integration(restApiId=api_id, resourceId=resource, httpMethod="ANY", type="MOCK")
        apigateway.create_deployment(restApiId=api_id, stageName="dev")
        calls.clear()
        yield deployment, api_id, calls


def web_acl(deployment: deploy.Deployment, name: str) -> str:
    return deployment.wafv2.create_web_acl(
        Name=name,
        Scope="REGIONAL",
        DefaultAction={"Allow": {}},
        VisibilityConfig={"SampledRequestsEnabled": True, "CloudWatchMetricsEnabled": True, "MetricName": name},
    )["Summary"]["ARN"]


def stage_throttle(deployment: deploy.Deployment, api_id: str) -> tuple[float, int]:
    settings = deployment.apigateway.get_stage(restApiId=api_id, stageName="dev")["methodSettings"]["*/*"]
    return settings["throttlingRateLimit"], settings["throttlingBurstLimit"]


def associated_web_acl(deployment: deploy.Deployment, api_id: str) -> str | None:
    found = deployment.wafv2.get_web_acl_for_resource(ResourceArn=deployment.target.web_stage_arn(api_id))
    return (found.get("WebACL") or {}).get("ARN")


def test_stage_arn_is_the_one_waf_knows_zappas_stage_by():
    assert (
        deploy.Target("dev", "eu-west-1", ACCOUNT).web_stage_arn("abc123")
        == "arn:aws:apigateway:eu-west-1::/restapis/abc123/stages/dev"
    )
    china = deploy.Target("prod", "cn-north-1", ACCOUNT, partition="aws-cn")
    assert china.web_stage_arn("abc123") == "arn:aws-cn:apigateway:cn-north-1::/restapis/abc123/stages/prod"


def test_deploy_throttles_zappas_stage_and_associates_the_stacks_web_acl(zappa_app, capsys):
    deployment, api_id, calls = zappa_app
    limits = deploy.WebAppLimits(web_acl(deployment, "image-pipeline-dev-web"), 50.0, 100)

    deployment.protect_web_app(limits)

    assert stage_throttle(deployment, api_id) == (50.0, 100)
    assert associated_web_acl(deployment, api_id) == limits.web_acl_arn
    printed = capsys.readouterr().out
    assert f"stage dev of REST API {api_id}: throttled to 50 requests/s, burst 100, per method" in printed
    assert "web ACL image-pipeline-dev-web associated" in printed
    assert {"UpdateStage", "AssociateWebACL"} <= set(calls)


def test_deploying_again_changes_nothing_and_says_so(zappa_app, capsys):
    deployment, api_id, calls = zappa_app
    limits = deploy.WebAppLimits(web_acl(deployment, "image-pipeline-dev-web"), 50.0, 100)
    deployment.protect_web_app(limits)
    capsys.readouterr()
    calls.clear()

    deployment.protect_web_app(limits)

    assert not {"UpdateStage", "AssociateWebACL", "DisassociateWebACL"} & set(calls)
    printed = capsys.readouterr().out
    assert "throttle already 50 requests/s, burst 100" in printed
    assert "web ACL image-pipeline-dev-web already associated" in printed
    assert associated_web_acl(deployment, api_id) == limits.web_acl_arn


def test_a_changed_limit_reaches_the_stage_on_the_next_deploy(zappa_app):
    deployment, api_id, _ = zappa_app
    arn = web_acl(deployment, "image-pipeline-dev-web")
    deployment.protect_web_app(deploy.WebAppLimits(arn, 50.0, 100))
    deployment.protect_web_app(deploy.WebAppLimits(arn, 12.5, 25))
    assert stage_throttle(deployment, api_id) == (12.5, 25)


def test_another_web_acl_on_the_stage_is_replaced_by_the_stacks(zappa_app, capsys):
    deployment, api_id, calls = zappa_app
    stray = web_acl(deployment, "set-by-hand")
    deployment.wafv2.associate_web_acl(WebACLArn=stray, ResourceArn=deployment.target.web_stage_arn(api_id))
    ours = web_acl(deployment, "image-pipeline-dev-web")
    calls.clear()

    deployment.protect_web_app(deploy.WebAppLimits(ours, 50.0, 100))

    assert associated_web_acl(deployment, api_id) == ours
    assert calls.index("DisassociateWebACL") < calls.index("AssociateWebACL")
    assert f"web ACL {stray} disassociated" in capsys.readouterr().out


def test_protecting_before_zappa_has_made_the_api_says_so():
    import boto3
    from moto import mock_aws

    with mock_aws():
        deployment = deploy.Deployment(boto3.session.Session(region_name=REGION), "dev")
        with pytest.raises(deploy.DeployError, match="no REST API named image-pipeline-web-dev"):
            deployment.protect_web_app(deploy.WebAppLimits("arn:aws:wafv2:x:y:regional/webacl/n/i", 50.0, 100))


def unavailable(deployment: deploy.Deployment) -> ClientError:
    error = {"Error": {"Code": "WAFUnavailableEntityException", "Message": "AWS WAF couldn't retrieve the resource"}}
    return deployment.wafv2.exceptions.WAFUnavailableEntityException(error, "AssociateWebACL")


def test_waf_not_seeing_a_new_stage_yet_is_waited_for(zappa_app, monkeypatch):
    deployment, api_id, _ = zappa_app
    arn = web_acl(deployment, "image-pipeline-dev-web")
    associate = deployment.wafv2.associate_web_acl
    failures = iter([unavailable(deployment), unavailable(deployment)])

    def associate_when_visible(**kwargs: Any) -> Any:
        failure = next(failures, None)
        if failure:
            raise failure
        return associate(**kwargs)

    monkeypatch.setattr(deployment.wafv2, "associate_web_acl", associate_when_visible)
    slept: list[float] = []
    deployment.protect_web_app(deploy.WebAppLimits(arn, 50.0, 100), sleep=slept.append)
    assert slept == [deploy.WAF_RETRY_SECONDS] * 2
    assert associated_web_acl(deployment, api_id) == arn


def test_waf_that_never_sees_the_stage_ends_the_deploy_with_a_sentence(zappa_app, monkeypatch):
    deployment, _, _ = zappa_app
    arn = web_acl(deployment, "image-pipeline-dev-web")

    def never(**kwargs: Any) -> Any:
        raise unavailable(deployment)

    monkeypatch.setattr(deployment.wafv2, "associate_web_acl", never)
    slept: list[float] = []
    with pytest.raises(deploy.DeployError, match=r"WAF still cannot see .* run make deploy again"):
        deployment.protect_web_app(deploy.WebAppLimits(arn, 50.0, 100), sleep=slept.append)
    assert len(slept) == deploy.WAF_ATTEMPTS - 1


# -- make deploy runs the step after Zappa, every time ------------------------------------------------------------


class RecordingDeployment:
    """deploy.Deployment's surface as deploy() uses it, recording the order of what it is asked to do."""

    def __init__(self, events: list[str], *, app_exists: bool) -> None:
        self.events = events
        self.app_exists = app_exists
        self.target = deploy.Target("dev", REGION, ACCOUNT)
        self.outputs = {
            "WebAppRoleArn": "arn:aws:iam::123456789012:role/web",
            "ImageBucketName": "bucket",
            "ImageTableName": "ImageMetadata-dev",
            "CdnUrl": "https://d111.cloudfront.net",
            "CdnDistributionId": "E2EXAMPLE",
            "ApiUrl": "https://abc.execute-api.us-east-1.amazonaws.com",
            "WebAclArn": f"arn:aws:wafv2:{REGION}:{ACCOUNT}:regional/webacl/image-pipeline-dev-web/id",
            "WebThrottleRateLimit": "50",
            "WebThrottleBurstLimit": "100",
        }

    def ensure_artifact_bucket(self) -> None:
        pass

    def upload(self, path: Path, prefix: str) -> str:
        return f"{prefix}/{path.name}"

    def web_app_host(self) -> str | None:
        return "web123.execute-api.us-east-1.amazonaws.com" if self.app_exists else None

    def deploy_stack(self, parameters: list[dict]) -> dict[str, str]:
        self.events.append("stack")
        return self.outputs

    def write_remote_env(self, outputs: Any, database_url: str) -> None:
        pass

    def web_app_exists(self) -> bool:
        return self.app_exists

    def protect_web_app(self, limits: deploy.WebAppLimits) -> None:
        assert self.app_exists, "protected before Zappa made the app"
        self.events.append(f"protect {limits.web_acl_name} {limits.rate_limit:g}/{limits.burst_limit}")


@pytest.mark.parametrize("first_deploy", [False, True], ids=["update", "first-deploy"])
def test_make_deploy_protects_the_app_after_zappa_and_before_migrate(first_deploy, monkeypatch, tmp_path):
    import infra.package

    events: list[str] = []
    fake = RecordingDeployment(events, app_exists=not first_deploy)
    packages = []
    for package in infra.package.PACKAGES:
        zip_path = tmp_path / f"{package.name}.zip"
        zip_path.write_bytes(b"PK")
        packages.append(type("Package", (), {"name": package.name, "zip_path": zip_path}))

    def zappa(*arguments: str, **_: Any) -> None:
        events.append("zappa " + " ".join(arguments[:2]))
        if arguments[0] == "deploy":
            fake.app_exists = True

    monkeypatch.setattr(infra.package, "PACKAGES", packages)
    monkeypatch.setattr(deploy, "Deployment", lambda session, stage: fake)
    monkeypatch.setattr(deploy, "zappa", zappa)
    monkeypatch.setattr(deploy, "package_web_app", lambda stage, settings: tmp_path / "web.zip")
    monkeypatch.setattr(deploy, "write_zappa_settings", lambda values: tmp_path / "zappa_settings.json")

    deploy.deploy(object(), "dev", "ops@example.com", None, "postgres://u:p@db/gallery")

    zappa_app = [e for e in events if e.startswith(("zappa deploy", "zappa update"))]
    protect = events.index("protect image-pipeline-dev-web 50/100")
    assert events.count("protect image-pipeline-dev-web 50/100") == 1
    assert events.index(zappa_app[-1]) < protect < events.index("zappa manage dev")
