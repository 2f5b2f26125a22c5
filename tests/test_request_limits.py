"""Request limits (review L4, issue 14): the edge web ACL on the distribution, the throttles on Zappa's and the read
API's stages.

The templates are read as written (moto's CloudFormation does not model WAFv2 or CloudFront); make deploy's steps on
Zappa's REST API stage run against moto, which models get_stage/update_stage's method settings and WAF's
associations.
"""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

import pytest
from cfnlint.decode import cfn_yaml
from conftest import ROOT
from django.urls import reverse
from test_infra import (
    ACCOUNT,
    REGION,
    TEMPLATE,
    distribution,
    of_type,
    properties,
    statements,
)

from infra import deploy

EDGE = cfn_yaml.load(str(ROOT / "infra" / "edge-waf.yaml"))
RATE_RULES = ("SensitivePathsPerClient", "ApiPerClient", "EveryPagePerClient")


def edge_acl() -> dict[str, Any]:
    return EDGE["Resources"]["EdgeWebAcl"]["Properties"]


def rules() -> dict[str, dict[str, Any]]:
    return {rule["Name"]: rule for rule in edge_acl()["Rules"]}


def default(parameter: str) -> Any:
    template = EDGE if parameter in EDGE["Parameters"] else TEMPLATE
    return template["Parameters"][parameter]["Default"]


def byte_matches(path: str, statements_: list[dict[str, Any]]) -> bool:
    """What WAF's byte matches decide for a path (already decoded and normalised)."""
    checks = {"ENDS_WITH": str.endswith, "STARTS_WITH": str.startswith}
    return any(
        checks[s["ByteMatchStatement"]["PositionalConstraint"]](path, s["ByteMatchStatement"]["SearchString"])
        for s in statements_
    )


def ends_with_any(path: str, statements_: list[dict[str, Any]]) -> bool:
    """What WAF's ENDS_WITH byte matches decide for a path (after its decode and normalise transformations)."""
    return any(path.endswith(s["ByteMatchStatement"]["SearchString"]) for s in statements_)


# -- the web ACL, as written ------------------------------------------------------------------------------------------


def test_edge_web_acl_is_cloudfront_scope_in_us_east_1_allows_by_default_and_reports_every_rule():
    acl = edge_acl()
    assert acl["Scope"] == "CLOUDFRONT"
    # CloudFront takes web ACLs from us-east-1 only: the template refuses any other region.
    assert EDGE["Rules"]["OnlyInUsEast1"]["Assertions"][0]["Assert"] == {
        "Fn::Equals": [{"Ref": "AWS::Region"}, "us-east-1"]
    }
    assert deploy.EDGE_REGION == "us-east-1"
    assert acl["DefaultAction"] == {"Allow": {}}
    for visibility in [acl["VisibilityConfig"], *(rule["VisibilityConfig"] for rule in acl["Rules"])]:
        assert visibility["CloudWatchMetricsEnabled"] is True
        assert visibility["SampledRequestsEnabled"] is True
    metric_names = [rule["VisibilityConfig"]["MetricName"] for rule in acl["Rules"]]
    assert len(set(metric_names)) == len(metric_names)
    priorities = [rule["Priority"] for rule in acl["Rules"]]
    assert len(set(priorities)) == len(priorities)


def test_the_distribution_takes_the_edge_web_acl_only_when_one_is_given():
    assert distribution(HasEdgeWebAcl=True)["WebACLId"] == {"Ref": "EdgeWebAclArn"}
    assert "WebACLId" not in distribution(HasEdgeWebAcl=False)
    assert default("EdgeWebAclArn") == ""  # off by default, for cost
    assert EDGE["Outputs"]["EdgeWebAclArn"]["Value"] == {"Fn::GetAtt": ["EdgeWebAcl", "Arn"]}


def test_no_regional_web_acl_is_left_behind_the_distribution():
    # Behind CloudFront a regional web ACL would count CloudFront's addresses: one half-measure too many.
    assert not of_type("AWS::WAFv2::WebACL")
    assert not of_type("AWS::WAFv2::WebACLAssociation")
    assert "WebAclArn" not in TEMPLATE["Outputs"]


def test_pages_count_towards_a_per_address_limit_but_the_files_a_page_pulls_do_not():
    statement = rules()["EveryPagePerClient"]["Statement"]["RateBasedStatement"]
    assert (statement["Limit"], statement["EvaluationWindowSec"], statement["AggregateKeyType"]) == (
        {"Ref": "WebRateLimit"},
        300,
        "IP",
    )
    assert default("WebRateLimit") == 1000
    assert EDGE["Parameters"]["WebRateLimit"]["MinValue"] == 10  # WAF's lowest limit
    excluded = statement["ScopeDownStatement"]["NotStatement"]["Statement"]["OrStatement"]["Statements"]
    for path in ("/", "/images/01HV6J1ZQ3M4ABCD/", "/accounts/login/", "/upload/policy/"):
        assert not byte_matches(path, excluded), path
    for path in ("/static/gallery/gallery.js", "/thumbs/a/v-256x192.webp", "/optimized/a/v-1280.jpg", "/api/images"):
        assert byte_matches(path, excluded), path


def test_the_read_api_has_its_own_per_address_limit():
    statement = rules()["ApiPerClient"]["Statement"]["RateBasedStatement"]
    assert (statement["Limit"], statement["AggregateKeyType"]) == ({"Ref": "ApiRateLimit"}, "IP")
    scope = [statement["ScopeDownStatement"]]
    assert byte_matches("/api/images", scope)
    assert byte_matches("/api/images/01HV6J1ZQ3M4ABCD", scope)
    assert not byte_matches("/images/01HV6J1ZQ3M4ABCD/", scope)


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
    # The distribution serves the app at the root; the gallery, the API and upload/done are not sensitive.
    for path in sensitive:
        assert ends_with_any(path, matches)
    for path in ("/", "/images/01HV6J1ZQ3M4ABCD/", "/api/images", reverse("gallery:upload-done")):
        assert not ends_with_any(path, matches), path


def test_the_rate_limits_come_first_and_answer_a_json_429_with_retry_after():
    acl = edge_acl()
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
    assert EDGE["Conditions"]["BlockCommonRuleSetMatches"] == {
        "Fn::Equals": [{"Ref": "WebCommonRuleSetAction"}, "block"]
    }
    assert default("WebCommonRuleSetAction") == "count"
    # Its 8 KB body limit only ever counts: Django bounds bodies itself and admin actions may post more.
    assert group["RuleActionOverrides"] == [{"Name": "SizeRestrictions_BODY", "ActionToUse": {"Count": {}}}]


def test_blocked_requests_alarm_watches_the_whole_edge_web_acl_and_mails_its_own_topic():
    alarm = EDGE["Resources"]["EdgeWebAclBlockedAlarm"]["Properties"]
    assert (alarm["Namespace"], alarm["MetricName"]) == ("AWS/WAFV2", "BlockedRequests")
    dimensions = {d["Name"]: d["Value"] for d in alarm["Dimensions"]}
    assert dimensions == {"WebACL": edge_acl()["VisibilityConfig"]["MetricName"], "Rule": "ALL"}
    # An alarm in us-east-1 cannot publish to the site stack's topic in its own region.
    assert alarm["AlarmActions"] == alarm["OKActions"] == [{"Ref": "EdgeAlertTopic"}]
    assert (alarm["Threshold"], alarm["ComparisonOperator"], alarm["Period"]) == (0, "GreaterThanThreshold", 300)


def test_no_role_of_the_stack_may_change_the_firewall_or_the_stages():
    # The stage throttle is set by the deployer (make deploy), never by a function the stack runs.
    for role in of_type("AWS::IAM::Role"):
        for statement in statements(role):
            granted = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            assert not [a for a in granted if a.split(":")[0] in {"wafv2", "apigateway"}], (role, granted)


def test_stack_outputs_give_make_deploy_the_stage_throttle():
    outputs = TEMPLATE["Outputs"]
    assert outputs["WebThrottleRateLimit"]["Value"] == {"Ref": "WebThrottleRateLimit"}
    assert outputs["WebThrottleBurstLimit"]["Value"] == {"Ref": "WebThrottleBurstLimit"}
    # CloudFormation hands outputs over as strings.
    limits = deploy.WebAppLimits.from_outputs(
        {
            "WebThrottleRateLimit": str(default("WebThrottleRateLimit")),
            "WebThrottleBurstLimit": str(default("WebThrottleBurstLimit")),
        }
    )
    assert (limits.rate_limit, limits.burst_limit) == (50.0, 100)
    assert limits.stage_operations() == [
        {"op": "replace", "path": "/*/*/throttling/rateLimit", "value": "50"},
        {"op": "replace", "path": "/*/*/throttling/burstLimit", "value": "100"},
    ]
    with pytest.raises(deploy.DeployError, match="no output WebThrottleRateLimit"):
        deploy.WebAppLimits.from_outputs({})


def test_read_api_keeps_a_stage_throttle_per_route_and_no_web_acl():
    stage = properties("HttpApiStage")
    assert stage["DefaultRouteSettings"] == {
        "ThrottlingBurstLimit": {"Ref": "ReadApiBurstLimit"},
        "ThrottlingRateLimit": {"Ref": "ReadApiRateLimit"},
    }
    assert (default("ReadApiRateLimit"), default("ReadApiBurstLimit")) == (50, 100)
    assert "RouteSettings" not in stage
    # WAF cannot be associated with an HTTP API: its per-client limit is the edge web ACL's ApiPerClient.
    assert not of_type("AWS::WAFv2::WebACLAssociation")
    assert "HttpApi" not in json.dumps(EDGE)


# -- STACK_PARAMETERS: changing a limit at deploy time ----------------------------------------------------------------


def test_stack_parameters_reader_finds_every_template_parameter():
    assert deploy.template_parameters(deploy.TEMPLATE.read_text()) == set(TEMPLATE["Parameters"])
    assert deploy.template_parameters(deploy.EDGE_WAF_TEMPLATE.read_text()) == set(EDGE["Parameters"])


def test_stack_parameters_set_tuning_values_and_refuse_unknown_or_deploy_owned_ones():
    known = set(TEMPLATE["Parameters"]) | set(EDGE["Parameters"])
    overrides = deploy.parameter_overrides(" WebRateLimit=2000  WebThrottleRateLimit=20 ", known)
    assert overrides == {"WebRateLimit": "2000", "WebThrottleRateLimit": "20"}
    # The per-client limits go to the edge web ACL's stack, the rest to the site's.
    assert deploy.split_overrides(overrides, set(EDGE["Parameters"])) == (
        {"WebThrottleRateLimit": "20"},
        {"WebRateLimit": "2000"},
    )
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
    with pytest.raises(deploy.DeployError, match="cannot set WebAppOriginDomain"):
        deploy.stack_parameters(
            target, "ops@example.com", "https://app.example.com", code_keys, {"WebAppOriginDomain": "x"}
        )


# -- make deploy's step on Zappa's stage, against moto --------------------------------------------------------------


@pytest.fixture
def zappa_app():
    """moto with the REST API Zappa makes for the dev app (`/` and `/{proxy+}`, ANY, stage dev)."""
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


def regional_web_acl(deployment: deploy.Deployment, name: str, api_id: str) -> str:
    wafv2 = deployment.session.client("wafv2")
    arn = wafv2.create_web_acl(
        Name=name,
        Scope="REGIONAL",
        DefaultAction={"Allow": {}},
        VisibilityConfig={"SampledRequestsEnabled": True, "CloudWatchMetricsEnabled": True, "MetricName": name},
    )["Summary"]["ARN"]
    wafv2.associate_web_acl(WebACLArn=arn, ResourceArn=deployment.target.web_stage_arn(api_id))
    return arn


def associated_web_acl(deployment: deploy.Deployment, api_id: str) -> str | None:
    wafv2 = deployment.session.client("wafv2")
    found = wafv2.get_web_acl_for_resource(ResourceArn=deployment.target.web_stage_arn(api_id))
    return (found.get("WebACL") or {}).get("ARN")


def stage_throttle(deployment: deploy.Deployment, api_id: str) -> tuple[float, int]:
    settings = deployment.apigateway.get_stage(restApiId=api_id, stageName="dev")["methodSettings"]["*/*"]
    return settings["throttlingRateLimit"], settings["throttlingBurstLimit"]


def test_stage_arn_is_the_one_waf_knows_zappas_stage_by():
    assert (
        deploy.Target("dev", "eu-west-1", ACCOUNT).web_stage_arn("abc123")
        == "arn:aws:apigateway:eu-west-1::/restapis/abc123/stages/dev"
    )
    china = deploy.Target("prod", "cn-north-1", ACCOUNT, partition="aws-cn")
    assert china.web_stage_arn("abc123") == "arn:aws-cn:apigateway:cn-north-1::/restapis/abc123/stages/prod"


def test_deploy_throttles_zappas_stage(zappa_app, capsys):
    deployment, api_id, calls = zappa_app

    deployment.throttle_web_app(deploy.WebAppLimits(50.0, 100))

    assert stage_throttle(deployment, api_id) == (50.0, 100)
    printed = capsys.readouterr().out
    assert f"stage dev of REST API {api_id}: throttled to 50 requests/s, burst 100, per method" in printed
    assert "UpdateStage" in calls


def test_deploying_again_changes_nothing_and_says_so(zappa_app, capsys):
    deployment, _api_id, calls = zappa_app
    deployment.throttle_web_app(deploy.WebAppLimits(50.0, 100))
    capsys.readouterr()
    calls.clear()

    deployment.throttle_web_app(deploy.WebAppLimits(50.0, 100))

    assert "UpdateStage" not in calls
    assert "throttle already 50 requests/s, burst 100" in capsys.readouterr().out


def test_a_changed_limit_reaches_the_stage_on_the_next_deploy(zappa_app):
    deployment, api_id, _ = zappa_app
    deployment.throttle_web_app(deploy.WebAppLimits(50.0, 100))
    deployment.throttle_web_app(deploy.WebAppLimits(12.5, 25))
    assert stage_throttle(deployment, api_id) == (12.5, 25)


def test_throttling_before_zappa_has_made_the_api_says_so():
    import boto3
    from moto import mock_aws

    with mock_aws():
        deployment = deploy.Deployment(boto3.session.Session(region_name=REGION), "dev")
        with pytest.raises(deploy.DeployError, match="no REST API named image-pipeline-web-dev"):
            deployment.throttle_web_app(deploy.WebAppLimits(50.0, 100))


def test_the_former_regional_web_acl_leaves_zappas_stage_before_the_stack_deletes_it(zappa_app, capsys):
    deployment, api_id, _ = zappa_app
    regional_web_acl(deployment, deployment.target.regional_web_acl_name, api_id)

    deployment.release_regional_web_acl()

    assert associated_web_acl(deployment, api_id) is None
    assert "regional web ACL image-pipeline-dev-web disassociated" in capsys.readouterr().out
    deployment.release_regional_web_acl()  # nothing left: a second run does nothing


def test_a_web_acl_someone_else_put_on_the_stage_is_left_with_a_warning(zappa_app, capsys):
    deployment, api_id, _ = zappa_app
    arn = regional_web_acl(deployment, "set-by-hand", api_id)

    deployment.release_regional_web_acl()

    assert associated_web_acl(deployment, api_id) == arn
    assert "set-by-hand on Zappa's stage counts CloudFront's addresses" in capsys.readouterr().out
