"""The site's one CloudFront distribution (issue 14): its origins and behaviours as written (moto's CloudFormation
skips AWS::CloudFront::*), its CloudFront Functions (run in node when it is installed), the origin secret that makes
the distribution the only way in (Django's middleware, the read API's check, make deploy's rotation on moto), and
Django building the site's URLs behind it.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from django.test import Client, override_settings
from test_api import http_event, invoke, store  # noqa: F401 (store is a fixture)
from test_infra import ACCOUNT, FRONTING, REGION, RESOURCES, TEMPLATE, distribution, properties, resolved

from infra import deploy
from lambdas.image_api import handler as image_api
from local_stack import front_door
from pipeline import origin

CACHING_DISABLED = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"  # AWS's managed CachingDisabled policy
APP_PATHS = ("/admin/*", "/accounts/*", "/upload/*", "/my/*")


def behaviours(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {**{b["PathPattern"]: b for b in config["CacheBehaviors"]}, "*": config["DefaultCacheBehavior"]}


def policy(behaviour: dict[str, Any], kind: str) -> dict[str, Any] | None:
    """The cache ("CachePolicyId") or origin request ("OriginRequestPolicyId") policy a behaviour names, as written."""
    reference = behaviour.get(kind)
    if reference is None or isinstance(reference, str):
        return None
    config = "CachePolicyConfig" if kind == "CachePolicyId" else "OriginRequestPolicyConfig"
    return properties(reference["Ref"])[config]


# -- origins and behaviours ------------------------------------------------------------------------------------------


def test_one_distribution_has_the_bucket_the_read_api_and_the_app_as_origins():
    assert [name for name, r in RESOURCES.items() if r["Type"] == "AWS::CloudFront::Distribution"] == ["Distribution"]
    origins = {o["Id"]: o for o in distribution()["Origins"]}
    assert set(origins) == {"ImageBucketPublic", "ImageBucketStatic", "ReadApi", "WebApp"}
    assert origins["ReadApi"]["DomainName"] == {"Fn::Sub": "${HttpApi}.execute-api.${AWS::Region}.amazonaws.com"}
    assert origins["WebApp"]["DomainName"] == {"Ref": "WebAppOriginDomain"}
    assert origins["WebApp"]["OriginPath"] == {"Fn::Sub": "/${Stage}"}  # Zappa's stage
    for name in ("ReadApi", "WebApp"):
        assert origins[name]["CustomOriginConfig"]["OriginProtocolPolicy"] == "https-only"


def test_until_zappa_has_deployed_the_default_behaviour_keeps_serving_the_bucket():
    # A first deploy's first pass: Zappa's API does not exist yet, so nothing may name it.
    assert TEMPLATE["Conditions"]["FrontsApp"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "WebAppOriginDomain"}, ""]}]}
    assert TEMPLATE["Parameters"]["WebAppOriginDomain"]["Default"] == ""
    config = distribution(FrontsApp=False)
    assert "WebApp" not in {o["Id"] for o in config["Origins"]}
    assert config["DefaultCacheBehavior"]["TargetOriginId"] == "ImageBucketPublic"
    assert set(behaviours(config)) == {"/static/*", "/thumbs/*", "/optimized/*", "/api/*", "*"}
    assert distribution()["DefaultCacheBehavior"]["TargetOriginId"] == "WebApp"


@pytest.mark.parametrize("fronts_app", [True, False], ids=["fronting", "first-pass"])
def test_every_behaviour_compresses_and_redirects_to_https(fronts_app):
    for path, behaviour in behaviours(distribution(FrontsApp=fronts_app)).items():
        assert behaviour["Compress"] is True, path
        assert behaviour["ViewerProtocolPolicy"] == "redirect-to-https", path
        cache = policy(behaviour, "CachePolicyId")
        # Cached text must be keyed on the encoding, or CloudFront could not keep gzip and brotli copies apart.
        if cache and cache["MaxTTL"] and behaviour["CachePolicyId"] != {"Ref": "RenditionCachePolicy"}:
            key = cache["ParametersInCacheKeyAndForwardedToOrigin"]
            assert key["EnableAcceptEncodingGzip"], path
            assert key["EnableAcceptEncodingBrotli"], path


def test_api_behaviour_strips_the_prefix_and_keys_on_the_apis_own_parameters():
    api = behaviours(distribution())["/api/*"]
    assert api["TargetOriginId"] == "ReadApi"
    assert api["FunctionAssociations"] == [
        {
            "EventType": "viewer-request",
            "FunctionARN": {"Fn::GetAtt": ["StripApiPrefixFunction", "FunctionMetadata.FunctionARN"]},
        }
    ]
    cache = policy(api, "CachePolicyId")
    assert (cache["MinTTL"], cache["DefaultTTL"]) == (0, 0)  # the API's own Cache-Control decides
    key = cache["ParametersInCacheKeyAndForwardedToOrigin"]
    queries = ["limit", "cursor", "tag", "sort"]
    assert key["QueryStringsConfig"] == {"QueryStringBehavior": "whitelist", "QueryStrings": queries}
    assert key["CookiesConfig"] == {"CookieBehavior": "none"}
    # Origin only: the API's CORS answer depends on it; a same-origin request sends none.
    assert key["HeadersConfig"] == {"HeaderBehavior": "whitelist", "Headers": ["Origin"]}
    assert set(api["AllowedMethods"]) == {"GET", "HEAD", "OPTIONS"}


def test_pages_honour_djangos_headers_and_keep_personal_requests_apart():
    pages = behaviours(distribution())["*"]
    cache = policy(pages, "CachePolicyId")
    assert (cache["MinTTL"], cache["DefaultTTL"]) == (0, 0)
    key = cache["ParametersInCacheKeyAndForwardedToOrigin"]
    cookies = [front_door.SESSION_COOKIE, front_door.CSRF_COOKIE, front_door.MESSAGES_COOKIE]
    assert key["CookiesConfig"] == {"CookieBehavior": "whitelist", "Cookies": cookies}
    assert key["QueryStringsConfig"]["QueryStrings"] == ["tag", "sort", "cursor", "prev"]
    forwarded = policy(pages, "OriginRequestPolicyId")
    assert forwarded["CookiesConfig"] == key["CookiesConfig"]
    assert forwarded["HeadersConfig"] == {"HeaderBehavior": "whitelist", "Headers": ["X-Forwarded-Host"]}
    assert set(pages["AllowedMethods"]) == {"GET", "HEAD"}


def test_login_admin_and_upload_are_never_cached_and_get_what_django_needs_but_host():
    for path in APP_PATHS:
        behaviour = behaviours(distribution())[path]
        assert behaviour["TargetOriginId"] == "WebApp"
        assert behaviour["CachePolicyId"] == CACHING_DISABLED
        assert "POST" in behaviour["AllowedMethods"]
        forwarded = policy(behaviour, "OriginRequestPolicyId")
        assert forwarded["CookiesConfig"] == {"CookieBehavior": "all"}
        assert forwarded["QueryStringsConfig"] == {"QueryStringBehavior": "all"}
        headers = set(forwarded["HeadersConfig"]["Headers"])
        assert {"Origin", "Referer", "X-CSRFToken", "Content-Type", "X-Forwarded-Host"} <= headers
        assert "Host" not in headers  # API Gateway answers 403 to a Host that is not its own


def test_cookies_reach_only_the_behaviours_that_need_them():
    for path, behaviour in behaviours(distribution()).items():
        forwarded = policy(behaviour, "OriginRequestPolicyId") or {"CookiesConfig": {"CookieBehavior": "none"}}
        cache = policy(behaviour, "CachePolicyId") or {}
        in_key = cache.get("ParametersInCacheKeyAndForwardedToOrigin", {}).get("CookiesConfig", {})
        if path in APP_PATHS:
            continue
        if path == "*":
            assert forwarded["CookiesConfig"]["CookieBehavior"] == "whitelist"
        else:
            assert forwarded["CookiesConfig"]["CookieBehavior"] == "none", path
            assert in_key.get("CookieBehavior", "none") == "none", path


def test_every_post_and_session_route_of_django_is_under_an_uncached_behaviour():
    from django.urls import reverse

    for name, args in [
        ("login", []),
        ("logout", []),
        ("admin:index", []),
        ("gallery:upload", []),
        ("gallery:upload-policy", []),
        ("gallery:upload-done", []),
        ("gallery:dismiss", ["01HV6J1ZQ3M4ABCD"]),
        ("gallery:my", []),
        ("gallery:my-edit", ["01HV6J1ZQ3M4ABCD"]),
        ("gallery:my-delete", ["01HV6J1ZQ3M4ABCD"]),
        ("gallery:my-retry", ["01HV6J1ZQ3M4ABCD"]),
        ("gallery:my-status", ["01HV6J1ZQ3M4ABCD"]),
    ]:
        path = reverse(name, args=args)
        assert any(path.startswith(pattern[:-1]) for pattern in APP_PATHS), path


def test_the_distribution_routes_as_make_runs_front_door_does():
    """local_stack/front_door.py's table is the distribution's: same paths, cookies and query parameters."""
    written = behaviours(distribution())
    local = {pattern: b for b in front_door.BEHAVIOURS for pattern in b.patterns}
    assert set(written) == set(local)
    assert local["*"].query == tuple(
        policy(written["*"], "CachePolicyId")["ParametersInCacheKeyAndForwardedToOrigin"]["QueryStringsConfig"][
            "QueryStrings"
        ]
    )
    assert local["/api/*"].query == ("limit", "cursor", "tag", "sort")
    for path in APP_PATHS:
        assert local[path].cookies is None
        assert not local[path].cached


def test_the_app_and_the_api_origins_get_the_origin_secret_and_nothing_else_does():
    for pinned in (True, False):
        origins = {o["Id"]: o for o in distribution(EdgeSecretPinned=pinned)["Origins"]}
        for name, origin_ in origins.items():
            headers = {h["HeaderName"]: h["HeaderValue"] for h in origin_.get("OriginCustomHeaders", [])}
            if name in {"ReadApi", "WebApp"}:
                value = headers[origin.HEADER]["Fn::Sub"]
                assert value.startswith("{{resolve:secretsmanager:${OriginVerifySecret}:SecretString:current")
                assert value.endswith("::${EdgeSecretVersion}}}") == pinned
            else:
                assert not headers, name
    secret = properties("OriginVerifySecret")["GenerateSecretString"]
    assert (secret["GenerateStringKey"], json.loads(secret["SecretStringTemplate"])) == ("current", {"previous": ""})
    api_env = resolved(properties("ApiFunction")["Environment"]["Variables"], FRONTING)
    assert api_env["ORIGIN_VERIFY_SECRET"] == {
        "Fn::Sub": "{{resolve:secretsmanager:${OriginVerifySecret}:SecretString:::${OriginSecretVersion}}}"
    }


def test_origin_shield_in_the_stacks_region_fronts_the_app_and_the_api_unless_turned_off():
    shield = {"Enabled": True, "OriginShieldRegion": {"Ref": "AWS::Region"}}
    for on in (True, False):
        origins = {o["Id"]: o for o in distribution(UseOriginShield=on)["Origins"]}
        for name, origin_ in origins.items():
            expected = shield if on and name in {"ReadApi", "WebApp"} else None
            assert origin_.get("OriginShield") == expected, name
    assert TEMPLATE["Parameters"]["OriginShield"]["Default"] == "true"
    assert TEMPLATE["Conditions"]["UseOriginShield"] == {"Fn::Equals": [{"Ref": "OriginShield"}, "true"]}


def test_a_custom_domain_brings_its_alias_and_a_modern_certificate():
    config = distribution(HasSiteDomain=True)
    assert config["Aliases"] == [{"Ref": "SiteDomain"}]
    assert config["ViewerCertificate"] == {
        "AcmCertificateArn": {"Ref": "CertificateArn"},
        "SslSupportMethod": "sni-only",
        "MinimumProtocolVersion": "TLSv1.2_2021",
    }
    assert "Aliases" not in distribution()
    assert distribution()["ViewerCertificate"] == {"CloudFrontDefaultCertificate": True}
    assert resolved(TEMPLATE["Outputs"]["SiteUrl"]["Value"], {"HasSiteDomain": True}) == {
        "Fn::Sub": "https://${SiteDomain}"
    }
    with pytest.raises(deploy.DeployError, match="go together"):
        deploy.check_arguments("dev", None, "gallery.example.com", "")
    with pytest.raises(deploy.DeployError, match="us-east-1"):
        deploy.check_arguments("dev", None, "gallery.example.com", f"arn:aws:acm:eu-west-1:{ACCOUNT}:certificate/abc")
    deploy.check_arguments("dev", None, "gallery.example.com", f"arn:aws:acm:us-east-1:{ACCOUNT}:certificate/ab-12")


# -- the CloudFront Functions, run in node ---------------------------------------------------------------------------

NODE = shutil.which("node")


def run_function(name: str, request: dict[str, Any], tmp_path: Path) -> dict[str, Any]:
    """The function's handler on a viewer-request event, in node (CloudFront's runtime is ES5.1 + some ES6)."""
    script = tmp_path / f"{name}.js"
    code = properties(name)["FunctionCode"]
    script.write_text(
        f"{code}\nconst event = {json.dumps({'request': request})};\n"
        "process.stdout.write(JSON.stringify(handler(event)));\n"
    )
    return json.loads(subprocess.run([NODE, str(script)], capture_output=True, text=True, check=True).stdout)


def test_functions_are_cloudfront_js_2_published_with_their_stack():
    for name in ("StripApiPrefixFunction", "ForwardHostFunction"):
        assert properties(name)["FunctionConfig"]["Runtime"] == "cloudfront-js-2.0"
        assert properties(name)["AutoPublish"] is True


@pytest.mark.skipif(NODE is None, reason="node is not installed")
def test_api_prefix_is_taken_off_as_the_http_apis_routes_expect(tmp_path):
    for viewer, sent in [("/api/images", "/images"), ("/api/images/01HV6J1ZQ3M4ABCD", "/images/01HV6J1ZQ3M4ABCD")]:
        request = {"method": "GET", "uri": viewer, "querystring": {"limit": {"value": "2"}}, "headers": {}}
        answer = run_function("StripApiPrefixFunction", request, tmp_path)
        assert answer["uri"] == sent
        assert answer["querystring"] == {"limit": {"value": "2"}}


@pytest.mark.skipif(NODE is None, reason="node is not installed")
def test_the_viewers_host_travels_as_x_forwarded_host(tmp_path):
    request = {"method": "GET", "uri": "/", "headers": {"host": {"value": "gallery.example.com"}}}
    answer = run_function("ForwardHostFunction", request, tmp_path)
    assert answer["headers"]["x-forwarded-host"] == {"value": "gallery.example.com"}
    assert answer["headers"]["host"] == {"value": "gallery.example.com"}


# -- the origins refuse direct traffic --------------------------------------------------------------------------------


def test_origin_secret_is_read_as_secrets_manager_holds_it():
    from pipeline.config import ConfigError, Settings

    assert Settings.from_env({}).origin_secrets == ()
    both = Settings.from_env({"ORIGIN_VERIFY_SECRET": '{"current": "new", "previous": "old"}'})
    assert both.origin_secrets == ("new", "old")
    assert Settings.from_env({"ORIGIN_VERIFY_SECRET": '{"current": "new", "previous": ""}'}).origin_secrets == ("new",)
    with pytest.raises(ConfigError, match="current"):
        Settings.from_env({"ORIGIN_VERIFY_SECRET": '{"previous": "old"}'})


@override_settings(PIPELINE=dataclasses.replace(image_api.settings, origin_secrets=("new-value", "old-value")))
def test_django_refuses_a_request_without_the_origin_secret_and_serves_one_with_either_value(client: Client, site_aws):
    refused = client.get("/")
    assert refused.status_code == 403
    assert refused.content.decode() == origin.REFUSED
    assert client.get("/", headers={origin.HEADER: "wrong"}).status_code == 403
    for value in ("new-value", "old-value"):
        assert client.get("/", headers={origin.HEADER: value}).status_code == 200


def test_django_without_an_origin_secret_refuses_nothing(client: Client, site_aws):
    assert client.get("/").status_code == 200  # make run and the tests


def test_read_api_refuses_a_request_without_the_origin_secret(monkeypatch, store):  # noqa: F811
    monkeypatch.setattr(image_api, "settings", dataclasses.replace(image_api.settings, origin_secrets=("new", "old")))
    refused = invoke(http_event("/images"))
    assert refused.status == 403
    assert refused.json["error"] == {"code": "forbidden", "message": origin.REFUSED}
    for value in ("new", "old"):
        answer = invoke(http_event("/images", headers={origin.HEADER: value}))
        assert answer.status == 200
        assert answer.json["items"] == []


# -- Django behind the distribution --------------------------------------------------------------------------------


@override_settings(FORCE_SCRIPT_NAME="", USE_X_FORWARDED_HOST=True, ALLOWED_HOSTS=["gallery.example.com"])
def test_behind_cloudfront_django_builds_root_relative_urls_on_the_sites_host(client: Client, site_aws):
    from django.urls import set_script_prefix

    # What Zappa hands Django for a request CloudFront sent to <api>.execute-api...amazonaws.com/dev/upload/.
    response = client.get(
        "/upload/",
        SCRIPT_NAME="/dev",
        HTTP_HOST="abc123.execute-api.eu-west-1.amazonaws.com",
        HTTP_X_FORWARDED_HOST="gallery.example.com",
        secure=True,
    )
    set_script_prefix("/")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/upload/"
    assert response.wsgi_request.build_absolute_uri("/upload/done/") == "https://gallery.example.com/upload/done/"


def test_settings_turn_on_the_proxy_settings_only_with_an_origin_secret(monkeypatch):
    from test_settings import PRODUCTION_ENV, load_settings

    behind = load_settings(
        monkeypatch,
        {**PRODUCTION_ENV, "SITE_URL": "https://gallery.example.com", "CDN_URL": "https://gallery.example.com",
         "ORIGIN_VERIFY_SECRET": '{"current": "c", "previous": ""}'},
    )  # fmt: skip
    assert (behind["FORCE_SCRIPT_NAME"], behind["USE_X_FORWARDED_HOST"]) == ("", True)
    assert behind["MIDDLEWARE"][0] == "gallery.origin.OriginVerifyMiddleware"
    # Images and static files are on the site's own origin: the CSP says 'self' and names no CDN.
    assert "https://gallery.example.com" not in behind["CONTENT_SECURITY_POLICY"]["DIRECTIVES"]["img-src"]
    monkeypatch.delenv("ORIGIN_VERIFY_SECRET")
    direct = load_settings(monkeypatch, PRODUCTION_ENV)
    assert "FORCE_SCRIPT_NAME" not in direct
    assert "USE_X_FORWARDED_HOST" not in direct


# -- make deploy: two passes on a first deploy, and the rotation -------------------------------------------------------


class RecordingDeployment:
    """deploy.Deployment's surface as deploy() uses it, recording what it is asked to do."""

    def __init__(self, *, app_exists: bool, stack_exists: bool) -> None:
        self.app_exists, self.stack_exists = app_exists, stack_exists
        self.target = deploy.Target("dev", REGION, ACCOUNT)
        self.events: list[str] = []
        self.stack_parameters: list[dict[str, str]] = []
        self.outputs = {
            "WebAppRoleArn": f"arn:aws:iam::{ACCOUNT}:role/web",
            "ImageBucketName": "bucket",
            "ImageTableName": "ImageMetadata-dev",
            "SiteUrl": "https://d111.cloudfront.net",
            "CdnDomainName": "d111.cloudfront.net",
            "CdnDistributionId": "E2EXAMPLE",
            "WebThrottleRateLimit": "50",
            "WebThrottleBurstLimit": "100",
        }

    def ensure_artifact_bucket(self) -> None:
        pass

    def upload(self, path: Path, prefix: str) -> str:
        return f"{prefix}/{path.name}"

    def web_app_host(self) -> str | None:
        return "web123.execute-api.us-east-1.amazonaws.com" if self.app_exists else None

    def existing_output(self, key: str) -> str | None:
        return self.outputs[key] if self.stack_exists else None

    def origin_secret(self) -> tuple[dict[str, str], str] | None:
        return ({"current": "c", "previous": ""}, "v1") if self.stack_exists else None

    def release_regional_web_acl(self) -> None:
        self.events.append("release regional web ACL")

    def add_indexes_one_at_a_time(self) -> int:
        return 0  # the table has the template's indexes (tests/test_staged_indexes.py covers the staging)

    def deploy_stack(self, parameters: list[dict], **_: Any) -> dict[str, str]:
        self.stack_exists = True
        self.stack_parameters.append({p["ParameterKey"]: p["ParameterValue"] for p in parameters})
        self.events.append("stack")
        return self.outputs

    def write_remote_env(self, outputs: Any, database_url: str) -> None:
        self.events.append("remote env")

    def web_app_exists(self) -> bool:
        return self.app_exists

    def throttle_web_app(self, limits: deploy.WebAppLimits) -> None:
        assert self.app_exists, "throttled before Zappa made the app"
        self.events.append("throttle")


def run_deploy(fake: RecordingDeployment, monkeypatch, tmp_path, **options: Any) -> list[str]:
    import infra.package

    packages = []
    for package in infra.package.PACKAGES:
        zip_path = tmp_path / f"{package.name}.zip"
        zip_path.write_bytes(b"PK")
        packages.append(type("Package", (), {"name": package.name, "zip_path": zip_path}))
    rendered: list[dict[str, str]] = []

    def zappa(*arguments: str, **_: Any) -> None:
        fake.events.append("zappa " + " ".join(arguments[:2]))
        if arguments[0] == "deploy":
            fake.app_exists = True

    monkeypatch.setattr(infra.package, "PACKAGES", packages)
    monkeypatch.setattr(deploy, "Deployment", lambda session, stage: fake)
    monkeypatch.setattr(deploy, "zappa", zappa)
    monkeypatch.setattr(deploy, "package_web_app", lambda stage, settings: tmp_path / "web.zip")
    monkeypatch.setattr(deploy, "write_zappa_settings", lambda values: rendered.append(values) or tmp_path / "z.json")
    site = deploy.deploy(object(), "dev", "ops@example.com", "postgres://u:p@db/gallery", **options)
    assert site == fake.outputs["SiteUrl"]
    assert rendered[-1]["SITE_URL"] == site
    assert rendered[-1]["ALLOWED_HOSTS"] == site.removeprefix("https://")
    return fake.events


def test_a_first_deploy_makes_the_stack_then_zappa_then_fronts_the_app(monkeypatch, tmp_path, capsys):
    fake = RecordingDeployment(app_exists=False, stack_exists=False)
    events = run_deploy(fake, monkeypatch, tmp_path)
    assert events == [
        "stack",
        "remote env",
        "zappa deploy dev",
        "stack",
        "throttle",
        "zappa manage dev",
        "zappa manage dev",
    ]
    first, second = fake.stack_parameters
    assert (first["WebAppOriginDomain"], first["AppOrigin"], first["OriginSecretVersion"]) == (
        "",
        deploy.PENDING_ORIGIN,
        "",
    )
    assert second["WebAppOriginDomain"] == "web123.execute-api.us-east-1.amazonaws.com"
    assert second["AppOrigin"] == "https://d111.cloudfront.net"
    assert second["OriginSecretVersion"] == second["EdgeSecretVersion"] == "v1"
    assert "site:  https://d111.cloudfront.net/" in capsys.readouterr().out


def test_a_later_deploy_is_one_pass_and_releases_the_former_regional_web_acl_first(monkeypatch, tmp_path):
    fake = RecordingDeployment(app_exists=True, stack_exists=True)
    events = run_deploy(fake, monkeypatch, tmp_path)
    assert events[:3] == ["release regional web ACL", "stack", "remote env"]
    assert events.count("stack") == 1
    assert fake.stack_parameters[0]["WebAppOriginDomain"] == "web123.execute-api.us-east-1.amazonaws.com"


def test_a_custom_domain_is_the_site_url_from_the_first_pass(monkeypatch, tmp_path):
    fake = RecordingDeployment(app_exists=True, stack_exists=True)
    fake.outputs["SiteUrl"] = "https://gallery.example.com"
    certificate = f"arn:aws:acm:us-east-1:{ACCOUNT}:certificate/ab-12"
    run_deploy(fake, monkeypatch, tmp_path, site_domain="gallery.example.com", certificate_arn=certificate)
    (only,) = fake.stack_parameters
    assert (only["AppOrigin"], only["SiteDomain"], only["CertificateArn"]) == (
        "https://gallery.example.com",
        "gallery.example.com",
        certificate,
    )


@pytest.fixture
def deployed(monkeypatch):
    """moto with the stack's origin secret, the app's remote env file, and stack updates recorded."""
    import boto3
    from moto import mock_aws

    with mock_aws():
        session = boto3.session.Session(region_name=REGION)
        deployment = deploy.Deployment(session, "dev")
        target = deployment.target
        deployment.secrets.create_secret(
            Name=target.origin_secret_name, SecretString=json.dumps({"current": "old", "previous": ""})
        )
        deployment.s3.create_bucket(Bucket=target.artifact_bucket)
        env = {"SECRET_KEY": "k", "DATABASE_URL": "postgres://db", "ORIGIN_VERIFY_SECRET": "x"}
        deployment.s3.put_object(Bucket=target.artifact_bucket, Key=target.remote_env_key, Body=json.dumps(env))
        order: list[tuple[str, dict[str, str]]] = []
        parameters = {"Stage": "dev", "OriginSecretVersion": "", "EdgeSecretVersion": ""}

        def deploy_stack(given: list[dict], *, previous_template: bool = False) -> dict[str, str]:
            assert previous_template  # a rotation changes parameters only
            kept = {p["ParameterKey"] for p in given if p.get("UsePreviousValue")}
            assert kept == set(parameters) - {"OriginSecretVersion", "EdgeSecretVersion"}
            order.append(("stack", {p["ParameterKey"]: p["ParameterValue"] for p in given if "ParameterValue" in p}))
            return {}

        monkeypatch.setattr(deployment, "deploy_stack", deploy_stack)
        monkeypatch.setattr(deployment, "stack_status", lambda: "UPDATE_COMPLETE")
        monkeypatch.setattr(deployment, "deployed_parameters", lambda: parameters)
        monkeypatch.setattr(deployment, "web_app_exists", lambda: True)
        monkeypatch.setattr(deployment, "recycle_web_app", lambda reason: order.append(("recycle app", {})))
        monkeypatch.setattr(deploy, "Deployment", lambda session, stage: deployment)
        yield deployment, order


def test_rotation_keeps_the_old_value_accepted_and_moves_the_origins_before_cloudfront(deployed):
    deployment, order = deployed
    target = deployment.target
    old_version = deployment.secrets.get_secret_value(SecretId=target.origin_secret_name)["VersionId"]

    deploy.rotate_origin_secret(object(), "dev")

    found = deployment.secrets.get_secret_value(SecretId=target.origin_secret_name)
    rotated = json.loads(found["SecretString"])
    assert rotated["previous"] == "old"
    assert len(rotated["current"]) == deploy.ORIGIN_SECRET_LENGTH
    env = json.loads(deployment.s3.get_object(Bucket=target.artifact_bucket, Key=target.remote_env_key)["Body"].read())
    assert env["ORIGIN_VERIFY_SECRET"] == found["SecretString"]
    assert env["DATABASE_URL"] == "postgres://db"  # the rest of the app's env is kept
    # The app first (new instances read the new env), then the read API, and only then CloudFront.
    assert order == [
        ("recycle app", {}),
        ("stack", {"OriginSecretVersion": found["VersionId"], "EdgeSecretVersion": old_version}),
        ("stack", {"OriginSecretVersion": found["VersionId"], "EdgeSecretVersion": found["VersionId"]}),
    ]
    assert origin.is_verified("old", (rotated["current"], rotated["previous"]))


def test_rotating_before_a_deploy_says_what_to_do():
    import boto3
    from moto import mock_aws

    with mock_aws(), pytest.raises(deploy.DeployError, match="run `make deploy STAGE=dev` first"):
        deploy.rotate_origin_secret(boto3.session.Session(region_name=REGION), "dev")
