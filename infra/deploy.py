"""`make deploy` / `make destroy`: the CloudFormation stack, the Lambda zips and the Zappa-deployed Django app.

deploy, in order: artifacts bucket -> upload the zips `make package` built and the template -> create or update
the stack and wait -> read its outputs -> write the app's secrets to Zappa's remote env file -> render
zappa_settings.json's placeholders from the outputs -> `zappa deploy|update` -> `zappa manage migrate` and
`collectstatic`. On the very first deploy the app's origin (Zappa's API Gateway URL) is unknown until Zappa has
created it, so the stack and the app are updated once more with it (CORS and ALLOWED_HOSTS need it). Then Zappa's
REST API stage gets the stack's web ACL (per-client rate limits) and a stage-wide throttle: Zappa creates that API
outside the stack, so no template can. STACK_PARAMETERS="Key=Value ..." sets the template's tuning parameters.

destroy: prod, and any stage with --delete-data, only once the stack's name is typed (or given as --confirm);
--delete-data backs the table up first, and never deletes prod's images or table (the template retains both).

Uses boto3 only (the AWS CLI is not a dependency) and the Zappa in .venv-zappa, a venv holding just the web
app's requirements, because Zappa zips the venv it runs in.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import string
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

ROOT: Final = Path(__file__).resolve().parent.parent
TEMPLATE: Final = ROOT / "infra" / "pipeline.yaml"
ZAPPA_SETTINGS: Final = ROOT / "zappa_settings.json"
RENDERED_ZAPPA_SETTINGS: Final = ROOT / "build" / "zappa_settings.json"
ZAPPA_VENV: Final = ROOT / ".venv-zappa"
# What Zappa zips: a directory laid out like a venv whose site-packages hold the app's pinned requirements as
# Lambda wheels (python3.12, arm64). Zappa's own replacement of compiled packages asks pypi.python.org's JSON
# API per package and, when that fails, silently keeps this machine's binaries; this does not depend on it.
WEB_PACKAGES: Final = ROOT / "build" / "zappa-venv"
APP_NAME: Final = "image-pipeline"
# Used for CORS and ALLOWED_HOSTS only during the first deploy, before Zappa has created the app's URL.
PENDING_ORIGIN: Final = "https://first-deploy.invalid"
STAGES: Final = ("dev", "prod")
ORIGIN_PATTERN: Final = re.compile(r"https?://[^/]+")
EMAIL_PATTERN: Final = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
# What make destroy never lets a stack delete take with it (the template retains them; tests keep the two equal).
DATA_RESOURCES: Final = ("ImageBucket", "ImageTable")
# What the app gets from Zappa's remote_env file (secrets) rather than from zappa_settings.json.
REMOTE_ENV_NAMES: Final = ("SECRET_KEY", "PIPELINE_SECRET", "DATABASE_URL")
# WAF answers WAFUnavailableEntityException for a stage or web ACL it cannot see yet (just created): wait and retry.
WAF_ATTEMPTS: Final = 12
WAF_RETRY_SECONDS: Final = 10


class DeployError(RuntimeError):
    """Something a person has to fix before deploying; the message says what."""


@dataclass(frozen=True)
class Target:
    """Where one stage lives: names derived from the app, the stage, the account and the region."""

    stage: str
    region: str
    account: str
    app_name: str = APP_NAME
    partition: str = "aws"

    @property
    def stack_name(self) -> str:
        return stack_name(self.stage, self.app_name)

    @property
    def artifact_bucket(self) -> str:
        return f"{self.app_name}-artifacts-{self.account}-{self.region}"

    @property
    def web_function(self) -> str:
        # Zappa names its function <project_name>-<stage>; zappa_settings.json's project_name is <app>-web.
        return f"{self.app_name}-web-{self.stage}"

    @property
    def remote_env_key(self) -> str:
        return f"zappa/{self.stage}/remote-env.json"

    def web_stage_arn(self, api_id: str) -> str:
        """The ARN WAF knows Zappa's REST API stage by (Zappa names the stage after ours)."""
        return f"arn:{self.partition}:apigateway:{self.region}::/restapis/{api_id}/stages/{self.stage}"


@dataclass(frozen=True)
class WebAppLimits:
    """What make deploy puts on the REST API stage Zappa creates: the stack's web ACL and a stage-wide throttle."""

    web_acl_arn: str
    rate_limit: float  # steady requests per second, per method, from every client together
    burst_limit: int

    @classmethod
    def from_outputs(cls, outputs: Mapping[str, str]) -> WebAppLimits:
        try:
            return cls(
                outputs["WebAclArn"], float(outputs["WebThrottleRateLimit"]), int(outputs["WebThrottleBurstLimit"])
            )
        except KeyError as missing:
            raise DeployError(
                f"the stack has no output {missing.args[0]}: its template predates the request limits; deploy again"
            ) from None

    @property
    def web_acl_name(self) -> str:
        return self.web_acl_arn.rsplit("/", 2)[-2]  # arn:...:regional/webacl/<name>/<id>

    def stage_operations(self) -> list[dict[str, str]]:
        """API Gateway's stage method settings for every method (``/*/*``) of the stage."""
        return [
            {"op": "replace", "path": "/*/*/throttling/rateLimit", "value": f"{self.rate_limit:g}"},
            {"op": "replace", "path": "/*/*/throttling/burstLimit", "value": str(self.burst_limit)},
        ]


# -- pure parts (tested without AWS) ---------------------------------------------------------------------------


def stack_name(stage: str, app_name: str = APP_NAME) -> str:
    return f"{app_name}-{stage}"


def needs_confirmation(stage: str, delete_data: bool) -> bool:
    """prod, and any stage whose data would go: a mistyped STAGE or a pasted command must not be enough."""
    return stage == "prod" or delete_data


def confirm_destroy(stage: str, delete_data: bool, confirm: str | None, ask: Callable[[str], str] | None) -> None:
    """Go on only if the stack's name was typed at the prompt or given as --confirm; else say what to type."""
    if not needs_confirmation(stage, delete_data):
        return
    name = stack_name(stage)
    command = f"make destroy STAGE={stage}{' DELETE_DATA=yes' if delete_data else ''} CONFIRM={name}"
    if confirm is None and ask is not None:
        if not delete_data:
            consequence = "undeploys the Django app"
        elif stage == "prod":
            consequence = "backs up the table, then deletes the stack (the images and the table are kept)"
        else:
            consequence = "backs up the table, then deletes the stack, every version of every image and the table"
        confirm = ask(f"This {consequence} of {name}. Type the stack name ({name}) to go on: ").strip()
    if confirm != name:
        given = "nothing was typed" if not confirm else f"{confirm!r} is not the stack's name"
        raise DeployError(f"refused to destroy {name} ({given}): type {name} at the prompt, or run `{command}`")


def not_retained(template_body: Any, logical_ids: tuple[str, ...]) -> list[str]:
    """Which of the resources a stack delete would delete, from the deployed template (JSON, YAML or a dict).

    YAML is read by indentation (resources at two spaces, their attributes at four), as infra/pipeline.yaml is
    written, so no YAML library with CloudFormation's tags is needed.
    """
    if isinstance(template_body, str) and template_body.lstrip().startswith("{"):
        template_body = json.loads(template_body)
    if isinstance(template_body, dict):
        resources = template_body.get("Resources", {})
        return [i for i in logical_ids if not str(resources.get(i, {}).get("DeletionPolicy", "")).startswith("Retain")]
    policies: dict[str, str] = {}
    current = None
    for line in str(template_body).splitlines():
        if re.match(r"^  [A-Za-z0-9]+:\s*$", line):
            current = line.strip()[:-1]
        elif current and (policy := re.match(r"^    DeletionPolicy:\s*(\S+)", line)):
            policies[current] = policy[1]
        elif line.strip() and not line.startswith("  "):
            current = None  # Outputs, Conditions...: past the resources
    return [i for i in logical_ids if not policies.get(i, "").startswith("Retain")]


def placeholders(settings: Any) -> set[str]:
    """Every ``${NAME}`` in the Zappa settings."""
    if isinstance(settings, dict):
        return set().union(*(placeholders(value) for value in settings.values()))
    if isinstance(settings, list):
        return set().union(*(placeholders(value) for value in settings))
    if isinstance(settings, str):
        return {match[1] or match[2] for match in string.Template.pattern.findall(settings) if match[1] or match[2]}
    return set()


def render(settings: Any, values: Mapping[str, str]) -> Any:
    """The settings with every ``${NAME}`` replaced; a placeholder without a value is an error, never left in."""
    if isinstance(settings, dict):
        return {key: render(value, values) for key, value in settings.items()}
    if isinstance(settings, list):
        return [render(value, values) for value in settings]
    if isinstance(settings, str):
        try:
            return string.Template(settings).substitute(values)
        except KeyError as missing:
            raise DeployError(
                f"zappa_settings.json uses ${{{missing.args[0]}}}, which deploy.py does not fill"
            ) from None
    return settings


def zappa_values(target: Target, outputs: Mapping[str, str], app_origin: str, api_host: str | None) -> dict[str, str]:
    """The placeholder values for one stage, from the stack's outputs and the app's origin."""
    hosts = {host for host in (api_host, app_origin.split("://", 1)[1]) if host and host != "first-deploy.invalid"}
    return {
        "STAGE": target.stage,
        "AWS_REGION": target.region,
        "ARTIFACT_BUCKET": target.artifact_bucket,
        "WEB_APP_ROLE_ARN": outputs["WebAppRoleArn"],
        "IMAGE_BUCKET": outputs["ImageBucketName"],
        "IMAGE_TABLE": outputs["ImageTableName"],
        "CDN_URL": outputs["CdnUrl"],
        "CDN_DISTRIBUTION_ID": outputs["CdnDistributionId"],
        "API_URL": outputs["ApiUrl"],
        "APP_ORIGIN": app_origin,
        # Django refuses every request until the second pass of a first deploy fills in the real host.
        "ALLOWED_HOSTS": ",".join(sorted(hosts)) or "first-deploy.invalid",
    }


def stack_parameters(
    target: Target,
    alert_email: str,
    app_origin: str,
    code_keys: Mapping[str, str],
    overrides: Mapping[str, str] | None = None,
) -> list[dict]:
    """Every parameter deploy.py fills, plus the tuning ones STACK_PARAMETERS sets (the rest keep their defaults)."""
    values = {
        "Stage": target.stage,
        "AppName": target.app_name,
        "AlertEmail": alert_email,
        "AppOrigin": app_origin,
        "ArtifactBucket": target.artifact_bucket,
        "ProcessorCodeKey": code_keys["image-processor"],
        "ApiCodeKey": code_keys["image-api"],
        "TrashPurgeCodeKey": code_keys["trash-purge"],
    }
    taken = sorted(set(overrides or {}) & set(values))
    if taken:
        raise DeployError(f"STACK_PARAMETERS cannot set {', '.join(taken)}: make deploy fills it")
    values.update(overrides or {})
    return [{"ParameterKey": key, "ParameterValue": value} for key, value in values.items()]


def template_parameters(template_text: str) -> set[str]:
    """The parameter names of infra/pipeline.yaml, read by indentation (as not_retained reads its resources)."""
    section = re.search(r"^Parameters:\n(.*?)^\S", template_text, re.MULTILINE | re.DOTALL)
    return set(re.findall(r"^  ([A-Za-z0-9]+):", section[1], re.MULTILINE)) if section else set()


def parameter_overrides(text: str | None, known: set[str]) -> dict[str, str]:
    """STACK_PARAMETERS, e.g. "WebRateLimit=2000 ReadApiRateLimit=100": template parameters to set on this deploy.

    Give them on every deploy that should keep them: a parameter left out goes back to its default.
    """
    overrides: dict[str, str] = {}
    for pair in (text or "").split():
        key, equals, value = pair.partition("=")
        if not (key and equals and value):
            raise DeployError(
                f"STACK_PARAMETERS takes Key=Value pairs separated by spaces, like WebRateLimit=2000; got {pair!r}"
            )
        if key not in known:
            raise DeployError(
                f"STACK_PARAMETERS: infra/pipeline.yaml has no parameter {key!r} ({', '.join(sorted(known))})"
            )
        overrides[key] = value
    return overrides


def check_arguments(stage: str, alert_email: str | None, app_origin: str | None) -> None:
    if stage not in STAGES:
        raise DeployError(f"STAGE must be one of {', '.join(STAGES)}, got {stage!r}")
    if alert_email is not None and not EMAIL_PATTERN.fullmatch(alert_email):
        raise DeployError(f"ALERT_EMAIL must be an e-mail address (alarms go there), got {alert_email!r}")
    if app_origin and not ORIGIN_PATTERN.fullmatch(app_origin):
        raise DeployError(
            f"APP_ORIGIN must be scheme and host only, like https://gallery.example.com; got {app_origin!r}"
        )


# -- AWS ---------------------------------------------------------------------------------------------------------


class Deployment:
    """One stage's deployment, driven through boto3 clients of one session."""

    def __init__(self, session: Any, stage: str) -> None:
        if not session.region_name:
            raise DeployError("No AWS region: set AWS_REGION (or AWS_DEFAULT_REGION, or a profile's region)")
        account = session.client("sts").get_caller_identity()["Account"]
        partition = session.get_partition_for_region(session.region_name)
        self.target = Target(stage=stage, region=session.region_name, account=account, partition=partition)
        self.s3 = session.client("s3")
        self.cloudformation = session.client("cloudformation")
        self.secrets = session.client("secretsmanager")
        self.lambda_ = session.client("lambda")
        self.apigateway = session.client("apigateway")
        self.wafv2 = session.client("wafv2")

    # artifacts

    def ensure_artifact_bucket(self) -> None:
        bucket = self.target.artifact_bucket
        try:
            self.s3.head_bucket(Bucket=bucket, ExpectedBucketOwner=self.target.account)
            return
        except self.s3.exceptions.ClientError as error:
            if error.response["Error"]["Code"] not in {"404", "NoSuchBucket"}:
                raise DeployError(f"s3://{bucket} exists but is not usable by this account: {error}") from error
        print(f"creating s3://{bucket} for Lambda zips, templates and Zappa's packages")
        location = {} if self.target.region == "us-east-1" else {"LocationConstraint": self.target.region}
        self.s3.create_bucket(Bucket=bucket, **({"CreateBucketConfiguration": location} if location else {}))
        self.s3.get_waiter("bucket_exists").wait(Bucket=bucket)
        self.s3.put_public_access_block(
            Bucket=bucket,
            PublicAccessBlockConfiguration={
                "BlockPublicAcls": True,
                "IgnorePublicAcls": True,
                "BlockPublicPolicy": True,
                "RestrictPublicBuckets": True,
            },
        )
        self.s3.put_bucket_encryption(
            Bucket=bucket,
            ServerSideEncryptionConfiguration={
                "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
            },
        )
        tls_only = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "DenyInsecureTransport",
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": "s3:*",
                    "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
                    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                }
            ],
        }
        self.s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(tls_only))
        # Old zips and templates are only needed for a rollback soon after a deploy.
        self.s3.put_bucket_lifecycle_configuration(
            Bucket=bucket,
            LifecycleConfiguration={
                "Rules": [
                    {"ID": "expire-old-lambda-zips", "Status": "Enabled", "Filter": {"Prefix": "lambda/"},
                     "Expiration": {"Days": 90}},
                    {"ID": "expire-old-templates", "Status": "Enabled", "Filter": {"Prefix": "templates/"},
                     "Expiration": {"Days": 90}},
                    {"ID": "expire-old-web-zips", "Status": "Enabled", "Filter": {"Prefix": "web/"},
                     "Expiration": {"Days": 90}},
                ]
            },
        )  # fmt: skip

    def upload(self, path: Path, prefix: str) -> str:
        """Upload under a content-addressed key (so CloudFormation sees a change exactly when the bytes change)."""
        digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
        key = f"{prefix}/{path.stem}-{digest}{path.suffix}"
        self.s3.upload_file(str(path), self.target.artifact_bucket, key)
        return key

    # stack

    def deploy_stack(self, parameters: list[dict]) -> dict[str, str]:
        """Create or update the stack through a change set, wait, and return its outputs."""
        cloudformation, name = self.cloudformation, self.target.stack_name
        template_key = self.upload(TEMPLATE, "templates")
        template_url = f"https://{self.target.artifact_bucket}.s3.{self.target.region}.amazonaws.com/{template_key}"
        status = self.stack_status()
        if status == "ROLLBACK_COMPLETE":
            # A first create that failed leaves an empty stack that can only be deleted.
            print(f"stack {name}: deleting the failed first attempt")
            cloudformation.delete_stack(StackName=name)
            cloudformation.get_waiter("stack_delete_complete").wait(StackName=name)
            status = None
        exists = status not in {None, "REVIEW_IN_PROGRESS"}
        change_set = f"deploy-{template_key.rsplit('-', 1)[-1].split('.')[0]}-{os.getpid()}"
        cloudformation.create_change_set(
            StackName=name,
            ChangeSetName=change_set,
            ChangeSetType="UPDATE" if exists else "CREATE",
            TemplateURL=template_url,
            Parameters=parameters,
            Capabilities=["CAPABILITY_IAM"],
            Tags=[{"Key": "app", "Value": self.target.app_name}, {"Key": "stage", "Value": self.target.stage}],
        )
        try:
            cloudformation.get_waiter("change_set_create_complete").wait(
                StackName=name, ChangeSetName=change_set, WaiterConfig={"Delay": 5, "MaxAttempts": 120}
            )
        except Exception as error:
            described = cloudformation.describe_change_set(StackName=name, ChangeSetName=change_set)
            reason = described.get("StatusReason", "")
            if "didn't contain changes" in reason or "No updates" in reason:
                cloudformation.delete_change_set(StackName=name, ChangeSetName=change_set)
                print(f"stack {name}: no changes")
                return self.outputs()
            raise DeployError(f"CloudFormation refused the change set for {name}: {reason}") from error
        print(f"stack {name}: {'updating' if exists else 'creating'} (CloudFront takes 5-15 minutes)...")
        cloudformation.execute_change_set(StackName=name, ChangeSetName=change_set)
        waiter = "stack_update_complete" if exists else "stack_create_complete"
        try:
            cloudformation.get_waiter(waiter).wait(StackName=name, WaiterConfig={"Delay": 15, "MaxAttempts": 240})
        except Exception as error:
            raise DeployError(f"stack {name} failed: {self._first_failure()}") from error
        return self.outputs()

    def outputs(self) -> dict[str, str]:
        stack = self.cloudformation.describe_stacks(StackName=self.target.stack_name)["Stacks"][0]
        return {output["OutputKey"]: output["OutputValue"] for output in stack.get("Outputs", [])}

    def stack_status(self) -> str | None:
        try:
            stack = self.cloudformation.describe_stacks(StackName=self.target.stack_name)["Stacks"][0]
        except self.cloudformation.exceptions.ClientError as error:
            if "does not exist" in str(error):
                return None
            raise
        return stack["StackStatus"]

    def _first_failure(self) -> str:
        events = self.cloudformation.describe_stack_events(StackName=self.target.stack_name)["StackEvents"]
        failed = [e for e in events if e["ResourceStatus"].endswith("_FAILED")]
        if not failed:
            return "see the stack's events in the console"
        first = failed[-1]
        return f"{first['LogicalResourceId']}: {first.get('ResourceStatusReason', 'no reason given')}"

    # the Django app

    def write_remote_env(self, outputs: Mapping[str, str], database_url: str) -> None:
        """Secrets for Zappa's remote_env: an encrypted object only the app's role may read, never a file here."""
        secrets = dict(
            zip(
                REMOTE_ENV_NAMES,
                (self._secret(outputs["DjangoSecretKeyArn"]), self._secret(outputs["PipelineSecretArn"]), database_url),
                strict=True,
            )
        )
        self.s3.put_object(
            Bucket=self.target.artifact_bucket,
            Key=self.target.remote_env_key,
            Body=json.dumps(secrets).encode(),
            ContentType="application/json",
            ServerSideEncryption="AES256",
        )

    def _secret(self, arn: str) -> str:
        return self.secrets.get_secret_value(SecretId=arn)["SecretString"]

    def web_app_exists(self) -> bool:
        try:
            self.lambda_.get_function(FunctionName=self.target.web_function)
        except self.lambda_.exceptions.ResourceNotFoundException:
            return False
        return True

    def web_app_api_id(self) -> str | None:
        """The id of the REST API Zappa created for the app (named after its function), if any."""
        for page in self.apigateway.get_paginator("get_rest_apis").paginate():
            for api in page["items"]:
                if api["name"] == self.target.web_function:
                    return api["id"]
        return None

    def web_app_host(self) -> str | None:
        api_id = self.web_app_api_id()
        return f"{api_id}.execute-api.{self.target.region}.amazonaws.com" if api_id else None

    # the Django app's request limits (review L4)

    def protect_web_app(self, limits: WebAppLimits, *, sleep: Callable[[float], None] = time.sleep) -> None:
        """Throttle Zappa's stage and put the stack's web ACL in front of it. A second run changes nothing."""
        api_id = self.web_app_api_id()
        if api_id is None:
            raise DeployError(f"no REST API named {self.target.web_function}: Zappa has not deployed the app yet")
        stage = self.target.stage
        where = f"web app: stage {stage} of REST API {api_id}"
        try:
            described = self.apigateway.get_stage(restApiId=api_id, stageName=stage)
        except self.apigateway.exceptions.NotFoundException:
            raise DeployError(
                f"REST API {api_id} has no stage {stage}: run `make deploy STAGE={stage}` again"
            ) from None
        current = described.get("methodSettings", {}).get("*/*", {})
        throttle = f"{limits.rate_limit:g} requests/s, burst {limits.burst_limit}, per method"
        if (current.get("throttlingRateLimit"), current.get("throttlingBurstLimit")) == (
            limits.rate_limit,
            limits.burst_limit,
        ):
            print(f"{where}: throttle already {throttle}")
        else:
            self.apigateway.update_stage(restApiId=api_id, stageName=stage, patchOperations=limits.stage_operations())
            print(f"{where}: throttled to {throttle}")

        stage_arn = self.target.web_stage_arn(api_id)
        found = self._waf(lambda: self.wafv2.get_web_acl_for_resource(ResourceArn=stage_arn), sleep)
        associated = (found.get("WebACL") or {}).get("ARN")
        if associated == limits.web_acl_arn:
            print(f"{where}: web ACL {limits.web_acl_name} already associated")
            return
        if associated:
            # One web ACL per resource: another one (set by hand, or a former stack's) goes first.
            self._waf(lambda: self.wafv2.disassociate_web_acl(ResourceArn=stage_arn), sleep)
            print(f"{where}: web ACL {associated} disassociated")
        self._waf(lambda: self.wafv2.associate_web_acl(WebACLArn=limits.web_acl_arn, ResourceArn=stage_arn), sleep)
        print(f"{where}: web ACL {limits.web_acl_name} associated (per-client rate limits)")

    def _waf(self, call: Callable[[], Any], sleep: Callable[[float], None]) -> Any:
        """One WAF call, retried while WAF cannot see a stage or web ACL created moments ago."""
        unavailable = self.wafv2.exceptions.WAFUnavailableEntityException
        for _ in range(WAF_ATTEMPTS - 1):
            try:
                return call()
            except unavailable:
                sleep(WAF_RETRY_SECONDS)
        try:
            return call()
        except unavailable as error:
            raise DeployError(
                f"WAF still cannot see the web ACL or Zappa's stage after {WAF_ATTEMPTS} tries: {error}; "
                "run make deploy again"
            ) from error


def write_zappa_settings(values: Mapping[str, str]) -> Path:
    rendered = render(json.loads(ZAPPA_SETTINGS.read_text()), values)
    RENDERED_ZAPPA_SETTINGS.parent.mkdir(parents=True, exist_ok=True)
    RENDERED_ZAPPA_SETTINGS.write_text(json.dumps(rendered, indent=4))
    return RENDERED_ZAPPA_SETTINGS


def build_web_packages() -> Path:
    """The app's requirements (exactly .venv-zappa's, Zappa included) installed as the Lambda runtime's wheels."""
    from infra.package import install

    frozen = subprocess.run(
        [str(ZAPPA_VENV / "bin" / "pip"), "freeze", "--exclude-editable"], capture_output=True, text=True, check=True
    ).stdout.split()
    version = subprocess.run(
        [str(ZAPPA_VENV / "bin" / "python"), "-c", "import sys; print(f'{sys.version_info[0]}.{sys.version_info[1]}')"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    shutil.rmtree(WEB_PACKAGES, ignore_errors=True)
    # Zappa reads <venv>/lib/python<the version it runs on>/site-packages, whatever the wheels inside target.
    install(frozen, WEB_PACKAGES / "lib" / f"python{version}" / "site-packages", for_runtime=True, closure=True)
    return WEB_PACKAGES


def foreign_binaries(zip_path: Path) -> list[str]:
    """Compiled files in the app's zip that cannot load on the runtime (another architecture or Python)."""
    with zipfile.ZipFile(zip_path) as archive:
        names = archive.namelist()
    binary = re.compile(r"\.so(\.[0-9.]+)?$")
    wrong = re.compile(r"x86_64|i686|cpython-3(?!12)\d+-")
    return [name for name in names if binary.search(name) and wrong.search(name)]


def package_web_app(stage: str, settings: Path) -> Path:
    """`zappa package` from the Lambda-wheel site-packages, refused if a foreign binary slipped in."""
    build_web_packages()
    output = ROOT / "build" / f"web-{stage}.zip"
    output.unlink(missing_ok=True)
    zappa("package", stage, "-s", str(settings), "-o", str(output), venv=WEB_PACKAGES)
    strays = foreign_binaries(output)
    if strays:
        raise DeployError(f"{output.name} holds binaries that cannot run on Lambda arm64/python3.12: {strays[:5]}")
    print(f"{output.relative_to(ROOT)}: {output.stat().st_size / 2**20:.1f} MB")
    return output


def zappa(*arguments: str, venv: Path = ZAPPA_VENV) -> None:
    executable = ZAPPA_VENV / "bin" / "zappa"
    if not executable.exists():
        raise DeployError(f"{executable} is missing: run `make deploy` (it builds .venv-zappa) rather than this script")
    # Zappa zips the venv named by VIRTUAL_ENV; it runs from .venv-zappa either way.
    environment = {**os.environ, "VIRTUAL_ENV": str(venv), "PATH": f"{ZAPPA_VENV / 'bin'}:{os.environ['PATH']}"}
    print("+ zappa " + " ".join(arguments), flush=True)
    result = subprocess.run([str(executable), *arguments], cwd=ROOT, env=environment, check=False)
    if result.returncode != 0:
        raise DeployError(f"`zappa {' '.join(arguments)}` failed (exit {result.returncode}); its output is above")


def deploy(
    session: Any,
    stage: str,
    alert_email: str,
    app_origin: str | None,
    database_url: str | None,
    overrides: Mapping[str, str] | None = None,
) -> None:
    from infra.package import PACKAGES

    check_arguments(stage, alert_email, app_origin)
    if not database_url:
        raise DeployError("DATABASE_URL is not set: Django's tables need PostgreSQL (postgres://user:pass@host/db)")
    missing = [str(p.zip_path.relative_to(ROOT)) for p in PACKAGES if not p.zip_path.exists()]
    if missing:
        raise DeployError(f"{', '.join(missing)} missing: run `make package` first")

    deployment = Deployment(session, stage)
    target = deployment.target
    deployment.ensure_artifact_bucket()
    code_keys = {p.name: deployment.upload(p.zip_path, "lambda") for p in PACKAGES}

    api_host = deployment.web_app_host()
    origin = app_origin or (f"https://{api_host}" if api_host else None)
    outputs = deployment.deploy_stack(
        stack_parameters(target, alert_email, origin or PENDING_ORIGIN, code_keys, overrides)
    )
    deployment.write_remote_env(outputs, database_url)
    settings = write_zappa_settings(zappa_values(target, outputs, origin or PENDING_ORIGIN, api_host))
    # Through S3: Lambda takes at most 50 MB in a direct upload.
    web_zip = f"s3://{target.artifact_bucket}/{deployment.upload(package_web_app(stage, settings), 'web')}"
    zappa("update" if deployment.web_app_exists() else "deploy", stage, "-s", str(settings), "-z", web_zip)

    if origin is None:
        # First deploy: now that Zappa has made the app's URL, give it to CORS, ALLOWED_HOSTS and CSRF.
        api_host = deployment.web_app_host()
        if not api_host:
            raise DeployError(f"Zappa deployed but no REST API named {target.web_function} exists; see its output")
        origin = f"https://{api_host}"
        outputs = deployment.deploy_stack(stack_parameters(target, alert_email, origin, code_keys, overrides))
        settings = write_zappa_settings(zappa_values(target, outputs, origin, api_host))
        zappa("update", stage, "-s", str(settings), "-z", web_zip)

    api_host = api_host or deployment.web_app_host()
    deployment.protect_web_app(WebAppLimits.from_outputs(outputs))
    zappa("manage", stage, "migrate", "-s", str(settings))
    zappa("manage", stage, "collectstatic --noinput", "-s", str(settings))
    print(
        f"\n{target.stack_name} is up.\n"
        f"  app:  https://{api_host}/{stage}/  (origin {origin})\n"
        f"  CDN:  {outputs['CdnUrl']}\n  API:  {outputs['ApiUrl']}/images\n"
        f"  Confirm the SNS subscription e-mail sent to {alert_email}, or no alarm will reach you."
    )


def destroy(
    session: Any,
    stage: str,
    delete_data: bool,
    confirm: str | None = None,
    ask: Callable[[str], str] | None = None,
) -> None:
    """Undeploy the app, then delete the stack. The data goes only with --delete-data, and never prod's.

    prod, and any stage with --delete-data, needs the stack's name: ``confirm`` (--confirm) or typed at ``ask``.
    With --delete-data the table is backed up first (on demand, kept after the table is gone). The bucket and the
    table are retained by the template (DeletionPolicy): a dev stage's are deleted here after the stack, a prod
    stage's are left for a person to empty and delete by hand.
    """
    check_arguments(stage, None, None)
    confirm_destroy(stage, delete_data, confirm, ask)
    deployment = Deployment(session, stage)
    target = deployment.target
    status = deployment.stack_status()
    if status is None:
        print(f"stack {target.stack_name} does not exist")
        return
    outputs = deployment.outputs()
    if delete_data:
        deployed = deployment.cloudformation.get_template(StackName=target.stack_name)["TemplateBody"]
        unprotected = not_retained(deployed, DATA_RESOURCES)
        if unprotected:
            raise DeployError(
                f"the deployed {target.stack_name} would delete {' and '.join(unprotected)} with the stack (its "
                f"template predates DeletionPolicy Retain): run `make deploy STAGE={stage}` first, then destroy"
            )
    if deployment.web_app_exists():
        api_host = deployment.web_app_host()
        origin = f"https://{api_host}" if api_host else PENDING_ORIGIN
        settings = write_zappa_settings(zappa_values(target, outputs, origin, api_host))
        zappa("undeploy", stage, "--yes", "-s", str(settings))
    bucket, table = outputs["ImageBucketName"], outputs["ImageTableName"]
    if not delete_data:
        print(
            f"The app is undeployed. The stack and its data (s3://{bucket}, table {table}) are kept: "
            f"`make destroy STAGE={stage} DELETE_DATA=yes CONFIRM={target.stack_name}` deletes them."
        )
        return
    dynamodb = session.client("dynamodb")
    backup_arn = back_up_table(dynamodb, table)
    print(f"table {table}: on-demand backup {backup_arn} (it outlives the table; restore-table-from-backup)")
    deployment.s3.delete_object(Bucket=target.artifact_bucket, Key=target.remote_env_key)
    deployment.cloudformation.delete_stack(StackName=target.stack_name)
    print(f"stack {target.stack_name}: deleting...")
    deployment.cloudformation.get_waiter("stack_delete_complete").wait(
        StackName=target.stack_name, WaiterConfig={"Delay": 15, "MaxAttempts": 240}
    )
    print(f"stack {target.stack_name} deleted (s3://{target.artifact_bucket} is kept for the other stage)")
    if stage == "prod":
        print(prod_data_left(bucket, table, target.region))
        return
    # dev: the template retained them (so no stack delete alone can lose data); delete them now.
    s3 = session.resource("s3").Bucket(bucket)
    empty_bucket(s3)
    s3.delete()
    dynamodb.update_table(TableName=table, DeletionProtectionEnabled=False)
    dynamodb.delete_table(TableName=table)
    print(f"s3://{bucket} (every version) and table {table} deleted; the backup above is kept")


def back_up_table(dynamodb: Any, table: str, *, sleep: Callable[[float], None] = time.sleep) -> str:
    """An on-demand backup (CreateBackup), waited for: a table cannot be deleted while its backup is made."""
    name = f"{table}-before-destroy-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}"
    arn = dynamodb.create_backup(TableName=table, BackupName=name)["BackupDetails"]["BackupArn"]
    for _ in range(120):
        details = dynamodb.describe_backup(BackupArn=arn)["BackupDescription"]["BackupDetails"]
        if details["BackupStatus"] == "AVAILABLE":
            return arn
        sleep(5)
    raise DeployError(f"the backup {arn} of {table} is not AVAILABLE after 10 minutes; nothing was deleted")


def prod_data_left(bucket: str, table: str, region: str) -> str:
    """What a person does by hand to delete prod's images and table, which make destroy never deletes."""
    return (
        f"prod's data is kept (the template retains it; make destroy never deletes prod's images):\n"
        f"  s3://{bucket}: to delete it, empty it in the S3 console (Empty, which removes every version), or add a\n"
        f"    lifecycle rule expiring current and noncurrent versions and wait a day, then\n"
        f"    `aws s3api delete-bucket --bucket {bucket} --region {region}`\n"
        f"  table {table} (deletion protection on):\n"
        f"    `aws dynamodb update-table --table-name {table} --no-deletion-protection-enabled --region {region}`\n"
        f"    `aws dynamodb delete-table --table-name {table} --region {region}`\n"
        f"  Until both are gone, `make deploy STAGE=prod` fails: their names are taken."
    )


def empty_bucket(bucket: Any) -> None:
    """Delete every object version and delete marker (a versioned bucket is not empty until then). Never prod's."""
    if f"{APP_NAME}-prod-" in bucket.name:
        raise DeployError(f"refusing to delete the object versions of s3://{bucket.name}: prod's are deleted by hand")
    bucket.object_versions.delete()


def main(argv: list[str] | None = None) -> int:
    import boto3

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("deploy", help="create or update a stage")
    up.add_argument("--stage", default="dev")
    up.add_argument("--alert-email", required=True)
    up.add_argument("--app-origin", default=os.environ.get("APP_ORIGIN") or None)
    down = commands.add_parser("destroy", help="undeploy the app and delete the stack")
    down.add_argument("--stage", default="dev")
    down.add_argument("--delete-data", action="store_true")
    down.add_argument("--confirm", metavar="STACK_NAME", help="the stack's name, for scripts (instead of the prompt)")
    args = parser.parse_args(argv)
    try:
        session = boto3.session.Session()
        if args.command == "deploy":
            known = template_parameters(TEMPLATE.read_text())
            overrides = parameter_overrides(os.environ.get("STACK_PARAMETERS"), known)
            deploy(session, args.stage, args.alert_email, args.app_origin, os.environ.get("DATABASE_URL"), overrides)
        else:
            # The prompt only where a person can answer it; a script passes --confirm.
            ask = input if sys.stdin.isatty() else None
            destroy(session, args.stage, args.delete_data, args.confirm, ask)
    except DeployError as error:
        print(f"make {args.command}: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
