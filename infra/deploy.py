"""`make deploy` / `make destroy`: the CloudFormation stack, the Lambda zips and the Zappa-deployed Django app.

deploy, in order: artifacts bucket -> upload the zips `make package` built and the template -> (EDGE_WAF=on: the
edge web ACL's stack in us-east-1) -> (an existing stack whose table lacks more than one of the template's indexes:
the deployed template with one more index, once per index but the last, "staged indexes") -> create or update the
stack and wait -> read its outputs -> write the app's
secrets to Zappa's remote env file -> render zappa_settings.json's placeholders from the outputs -> `zappa
deploy|update` -> `zappa manage migrate` and `collectstatic`. One CloudFront distribution is the site; on the very
first deploy Zappa's REST API (the app's origin) and the site's URL are unknown until the stack and Zappa have
created them, so the stack is updated once more with both (the distribution then fronts the app; CORS follows the
site's URL). Zappa's REST API stage gets a stage-wide throttle: Zappa creates that API outside the stack, so no
template can. STACK_PARAMETERS="Key=Value ..." sets the template's tuning parameters (and the edge web ACL's).

rotate-origin-secret: a new value for the header CloudFront sends the app and the read API, rolled out origins
first so that no request is refused (docs/deploy.md, "The origin secret").

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
BUILD_DIR: Final = ROOT / "build"
ZAPPA_VENV: Final = ROOT / ".venv-zappa"
# What Zappa zips: a directory laid out like a venv whose site-packages hold the app's pinned requirements as
# Lambda wheels (python3.12, arm64). Zappa's own replacement of compiled packages asks pypi.python.org's JSON
# API per package and, when that fails, silently keeps this machine's binaries; this does not depend on it.
WEB_PACKAGES: Final = ROOT / "build" / "zappa-venv"
APP_NAME: Final = "image-pipeline"
EDGE_WAF_TEMPLATE: Final = ROOT / "infra" / "edge-waf.yaml"
# CloudFront takes web ACLs (and certificates) from this region only.
EDGE_REGION: Final = "us-east-1"
# The bucket's and the API's CORS origin during a first deploy's first pass, before the distribution (the site) exists.
PENDING_ORIGIN: Final = "https://first-deploy.invalid"
STAGES: Final = ("dev", "prod")
DOMAIN_PATTERN: Final = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+")
CERTIFICATE_PATTERN: Final = re.compile(r"arn:aws[a-z-]*:acm:us-east-1:[0-9]{12}:certificate/[0-9a-f-]+")
EMAIL_PATTERN: Final = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
# What make destroy never lets a stack delete take with it (the template retains them; tests keep the two equal).
DATA_RESOURCES: Final = ("ImageBucket", "ImageTable")
# The one table whose indexes grow with the code (pipeline.records.TABLE_SCHEMA); CloudFormation creates or deletes
# at most one global secondary index of a table per stack update.
INDEXED_TABLE: Final = "ImageTable"
# What the app gets from Zappa's remote_env file (secrets) rather than from zappa_settings.json.
REMOTE_ENV_NAMES: Final = ("SECRET_KEY", "PIPELINE_SECRET", "DATABASE_URL", "ORIGIN_VERIFY_SECRET")
ORIGIN_SECRET_LENGTH: Final = 48


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

    @property
    def edge_stack_name(self) -> str:
        return f"{self.stack_name}-edge-waf"

    @property
    def origin_secret_name(self) -> str:
        """The stack's OriginVerifySecret (its Name in infra/pipeline.yaml)."""
        return f"{self.app_name}/{self.stage}/origin-verify"

    @property
    def regional_web_acl_name(self) -> str:
        """The regional web ACL earlier stacks associated with Zappa's stage (before the distribution fronted it)."""
        return f"{self.app_name}-{self.stage}-web"

    def web_stage_arn(self, api_id: str) -> str:
        """The ARN WAF knows Zappa's REST API stage by (Zappa names the stage after ours)."""
        return f"arn:{self.partition}:apigateway:{self.region}::/restapis/{api_id}/stages/{self.stage}"


@dataclass(frozen=True)
class WebAppLimits:
    """What make deploy puts on the REST API stage Zappa creates: a stage-wide throttle (every client together)."""

    rate_limit: float  # steady requests per second, per method, from every client together
    burst_limit: int

    @classmethod
    def from_outputs(cls, outputs: Mapping[str, str]) -> WebAppLimits:
        try:
            return cls(float(outputs["WebThrottleRateLimit"]), int(outputs["WebThrottleBurstLimit"]))
        except KeyError as missing:
            raise DeployError(
                f"the stack has no output {missing.args[0]}: its template predates the request limits; deploy again"
            ) from None

    def stage_operations(self) -> list[dict[str, str]]:
        """API Gateway's stage method settings for every method (``/*/*``) of the stage."""
        return [
            {"op": "replace", "path": "/*/*/throttling/rateLimit", "value": f"{self.rate_limit:g}"},
            {"op": "replace", "path": "/*/*/throttling/burstLimit", "value": str(self.burst_limit)},
        ]


@dataclass(frozen=True)
class FrontDoor:
    """The stack parameters of the distribution that make deploy fills (infra/pipeline.yaml's front door group)."""

    web_app_host: str = ""  # Zappa's REST API host; empty until Zappa has deployed
    site_domain: str = ""
    certificate_arn: str = ""
    edge_web_acl_arn: str = ""
    origin_secret_version: str = ""  # what the read API accepts
    edge_secret_version: str = ""  # what CloudFront sends; differs only during rotate-origin-secret

    def parameters(self) -> dict[str, str]:
        return {
            "WebAppOriginDomain": self.web_app_host,
            "SiteDomain": self.site_domain,
            "CertificateArn": self.certificate_arn,
            "EdgeWebAclArn": self.edge_web_acl_arn,
            "OriginSecretVersion": self.origin_secret_version,
            "EdgeSecretVersion": self.edge_secret_version or self.origin_secret_version,
        }

    @property
    def complete(self) -> bool:
        """True when the distribution fronts the app and both pin the origin secret's version."""
        return bool(self.web_app_host and self.origin_secret_version)


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


def zappa_values(target: Target, outputs: Mapping[str, str]) -> dict[str, str]:
    """The placeholder values for one stage, from the stack's outputs: the site's one URL above all."""
    site_url = outputs.get("SiteUrl") or outputs["CdnUrl"]  # CdnUrl: a stack from before the one distribution
    return {
        "STAGE": target.stage,
        "AWS_REGION": target.region,
        "ARTIFACT_BUCKET": target.artifact_bucket,
        "WEB_APP_ROLE_ARN": outputs["WebAppRoleArn"],
        "IMAGE_BUCKET": outputs["ImageBucketName"],
        "IMAGE_TABLE": outputs["ImageTableName"],
        "CDN_DISTRIBUTION_ID": outputs["CdnDistributionId"],
        # Pages, static files, renditions and the API on one origin: CDN_URL, CSRF_TRUSTED_ORIGINS, ALLOWED_HOSTS and
        # the API's CORS origin all follow from it. Django sees the site's host in X-Forwarded-Host (the distribution
        # sets it), never API Gateway's, which therefore is not an allowed host.
        "SITE_URL": site_url,
        "ALLOWED_HOSTS": site_url.split("://", 1)[1],
        # The photo library's settings Django reads, as the stack's parameters set them (a stack from before they
        # existed has no such outputs: the defaults then, as its processor has).
        "PUBLISH_REVIEW": outputs.get("PublishReview", "off"),
        "REQUIRE_ALT_TEXT": outputs.get("RequireAltText", "off"),
        "DUPLICATES": outputs.get("DuplicateUploads", "process"),
    }


def stack_parameters(
    target: Target,
    alert_email: str,
    site_url: str,
    code_keys: Mapping[str, str],
    overrides: Mapping[str, str] | None = None,
    front_door: FrontDoor | None = None,
) -> list[dict]:
    """Every parameter deploy.py fills, plus the tuning ones STACK_PARAMETERS sets (the rest keep their defaults)."""
    values = {
        "Stage": target.stage,
        "AppName": target.app_name,
        "AlertEmail": alert_email,
        "AppOrigin": site_url,
        "ArtifactBucket": target.artifact_bucket,
        "ProcessorCodeKey": code_keys["image-processor"],
        "ApiCodeKey": code_keys["image-api"],
        "TrashPurgeCodeKey": code_keys["trash-purge"],
        **(front_door or FrontDoor()).parameters(),
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


def split_overrides(overrides: Mapping[str, str], edge_parameters: set[str]) -> tuple[dict, dict]:
    """STACK_PARAMETERS for the site's stack, and those that belong to the edge web ACL's (infra/edge-waf.yaml)."""
    edge = {key: value for key, value in overrides.items() if key in edge_parameters}
    return {key: value for key, value in overrides.items() if key not in edge}, edge


def check_arguments(
    stage: str, alert_email: str | None, site_domain: str | None = None, certificate_arn: str | None = None
) -> None:
    if stage not in STAGES:
        raise DeployError(f"STAGE must be one of {', '.join(STAGES)}, got {stage!r}")
    if alert_email is not None and not EMAIL_PATTERN.fullmatch(alert_email):
        raise DeployError(f"ALERT_EMAIL must be an e-mail address (alarms go there), got {alert_email!r}")
    if site_domain and not DOMAIN_PATTERN.fullmatch(site_domain):
        raise DeployError(f"SITE_DOMAIN must be a host name like gallery.example.com (no scheme), got {site_domain!r}")
    if bool(site_domain) != bool(certificate_arn):
        raise DeployError(
            "SITE_DOMAIN and CERTIFICATE_ARN go together: CloudFront serves a custom domain only with an ACM "
            "certificate for it from us-east-1"
        )
    if certificate_arn and not CERTIFICATE_PATTERN.fullmatch(certificate_arn):
        raise DeployError(
            f"CERTIFICATE_ARN must be an ACM certificate in us-east-1 (CloudFront reads none elsewhere), got "
            f"{certificate_arn!r}"
        )


def new_origin_secret(previous: Mapping[str, str]) -> dict[str, str]:
    """The next origin secret: a new current value, the old current kept as previous (the origins accept both)."""
    import secrets

    alphabet = string.ascii_letters + string.digits
    return {"current": "".join(secrets.choice(alphabet) for _ in range(ORIGIN_SECRET_LENGTH)),
            "previous": previous.get("current", "")}  # fmt: skip


# -- AWS ---------------------------------------------------------------------------------------------------------


def load_template(body: str | Mapping[str, Any]) -> dict[str, Any]:
    """A CloudFormation template as data: YAML with its short forms (``!Sub``) or JSON, as GetTemplate returns it."""
    if isinstance(body, Mapping):
        return json.loads(json.dumps(body))
    from cfn_flip import load  # cfn-flip comes with Zappa (troposphere) in the deploy venv

    data, _ = load(body)
    return json.loads(json.dumps(data, default=str))


def table_index_names(template: Mapping[str, Any], table: str = INDEXED_TABLE) -> list[str]:
    properties = template["Resources"][table].get("Properties", {})
    return [index["IndexName"] for index in properties.get("GlobalSecondaryIndexes", [])]


def staged_index_templates(
    deployed: Mapping[str, Any], wanted: Mapping[str, Any], existing: list[str], table: str = INDEXED_TABLE
) -> list[dict[str, Any]]:
    """The templates to deploy, in order, before ``wanted`` so that each update creates one index only.

    Each is the ``deployed`` template (its code and settings unchanged: the new code, which may query the new
    indexes, goes live only with the real deploy) plus one more of the indexes ``wanted`` adds to the table,
    with the attribute definitions its keys need. ``existing`` names the indexes the table has now (DescribeTable).
    The last missing index comes with ``wanted`` itself, so n missing indexes take n - 1 of these. DeployError if
    ``wanted`` also removes an index while adding several: that needs a plan of its own (docs/deploy.md).
    """
    wanted_table = wanted["Resources"][table]["Properties"]
    wanted_indexes = {index["IndexName"]: index for index in wanted_table.get("GlobalSecondaryIndexes", [])}
    missing = [name for name in wanted_indexes if name not in existing]
    removed = sorted(set(existing) - set(wanted_indexes))
    if len(missing) <= 1:
        return []
    if removed:
        raise DeployError(
            f"the template adds the indexes {', '.join(missing)} to {table} and removes {', '.join(removed)}: "
            "CloudFormation makes one index change per update. Deploy a template that only removes first."
        )
    attribute_types = {a["AttributeName"]: a for a in wanted_table["AttributeDefinitions"]}
    templates: list[dict[str, Any]] = []
    current = json.loads(json.dumps(deployed))
    for name in missing[:-1]:
        current = json.loads(json.dumps(current))
        properties = current["Resources"][table]["Properties"]
        properties["GlobalSecondaryIndexes"] = [
            index for index in properties.get("GlobalSecondaryIndexes", []) if index["IndexName"] in existing
        ] + [wanted_indexes[name]]
        defined = {a["AttributeName"] for a in properties["AttributeDefinitions"]}
        keys = [k["AttributeName"] for k in wanted_indexes[name]["KeySchema"]]
        properties["AttributeDefinitions"] += [attribute_types[key] for key in keys if key not in defined]
        existing = [*existing, name]
        templates.append(current)
    return templates


class Deployment:
    """One stage's deployment, driven through boto3 clients of one session."""

    def __init__(self, session: Any, stage: str) -> None:
        if not session.region_name:
            raise DeployError("No AWS region: set AWS_REGION (or AWS_DEFAULT_REGION, or a profile's region)")
        account = session.client("sts").get_caller_identity()["Account"]
        partition = session.get_partition_for_region(session.region_name)
        self.target = Target(stage=stage, region=session.region_name, account=account, partition=partition)
        self.session = session
        self.s3 = session.client("s3")
        self.cloudformation = session.client("cloudformation")
        self.secrets = session.client("secretsmanager")
        self.lambda_ = session.client("lambda")
        self.apigateway = session.client("apigateway")

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

    def deploy_stack(self, parameters: list[dict], *, previous_template: bool = False) -> dict[str, str]:
        """Create or update the stack through a change set, wait, and return its outputs.

        ``previous_template`` changes parameters only (rotate-origin-secret): the deployed template is kept.
        """
        if previous_template:
            template: dict[str, Any] = {"UsePreviousTemplate": True}
        else:
            template_key = self.upload(TEMPLATE, "templates")
            bucket, region = self.target.artifact_bucket, self.target.region
            template = {"TemplateURL": f"https://{bucket}.s3.{region}.amazonaws.com/{template_key}"}
        return apply_change_set(
            self.cloudformation, self.target.stack_name, template, parameters, self.target, ["CAPABILITY_IAM"]
        )

    def add_indexes_one_at_a_time(self, *, staging_dir: Path | None = None) -> int:
        """Before the stack update: while the template adds more than one index to the table, deploy the deployed
        template plus one index more (its parameters kept), waiting for each; returns how many such updates ran.

        A first deploy creates the table with every index at once, which CloudFormation allows; nothing to do."""
        if self.stack_status() in {None, "REVIEW_IN_PROGRESS", "ROLLBACK_COMPLETE"}:
            return 0
        name = self.target.stack_name
        table = self.cloudformation.describe_stack_resource(StackName=name, LogicalResourceId=INDEXED_TABLE)
        described = self.session.client("dynamodb").describe_table(
            TableName=table["StackResourceDetail"]["PhysicalResourceId"]
        )["Table"]
        existing = [index["IndexName"] for index in described.get("GlobalSecondaryIndexes", [])]
        deployed = load_template(self.cloudformation.get_template(StackName=name)["TemplateBody"])
        steps = staged_index_templates(deployed, load_template(TEMPLATE.read_text()), existing)
        if not steps:
            return 0
        kept = [{"ParameterKey": key, "UsePreviousValue": True} for key in self.deployed_parameters()]
        folder = staging_dir or BUILD_DIR
        folder.mkdir(parents=True, exist_ok=True)
        for number, template in enumerate(steps, start=1):
            added = table_index_names(template)[-1]
            print(f"stack {name}: adding index {added} first ({number} of {len(steps)} staged updates)")
            path = folder / f"pipeline-staged-index-{added}.json"
            path.write_text(json.dumps(template, separators=(",", ":")))
            key = self.upload(path, "templates")
            url = f"https://{self.target.artifact_bucket}.s3.{self.target.region}.amazonaws.com/{key}"
            apply_change_set(self.cloudformation, name, {"TemplateURL": url}, kept, self.target, ["CAPABILITY_IAM"])
        return len(steps)

    def deploy_edge_waf(self, alert_email: str, overrides: Mapping[str, str]) -> str:
        """The edge web ACL's stack in us-east-1 (CloudFront takes web ACLs from there only); its ARN."""
        cloudformation = self.session.client("cloudformation", region_name=EDGE_REGION)
        values = {"Stage": self.target.stage, "AppName": self.target.app_name, "AlertEmail": alert_email, **overrides}
        parameters = [{"ParameterKey": key, "ParameterValue": value} for key, value in values.items()]
        outputs = apply_change_set(
            cloudformation,
            self.target.edge_stack_name,
            {"TemplateBody": EDGE_WAF_TEMPLATE.read_text()},
            parameters,
            self.target,
            [],
        )
        print(f"edge web ACL: {outputs['EdgeWebAclArn']} (stack {self.target.edge_stack_name} in {EDGE_REGION})")
        return outputs["EdgeWebAclArn"]

    def outputs(self) -> dict[str, str]:
        return stack_outputs(self.cloudformation, self.target.stack_name)

    def stack_status(self) -> str | None:
        return stack_status(self.cloudformation, self.target.stack_name)

    def existing_output(self, key: str) -> str | None:
        """An output of the stack as it is now, or None when there is no stack (a first deploy) or no such output."""
        if self.stack_status() in {None, "REVIEW_IN_PROGRESS", "ROLLBACK_COMPLETE"}:
            return None
        return self.outputs().get(key)

    def deployed_parameters(self) -> dict[str, str]:
        stack = self.cloudformation.describe_stacks(StackName=self.target.stack_name)["Stacks"][0]
        return {p["ParameterKey"]: p["ParameterValue"] for p in stack.get("Parameters", [])}

    # the origin secret

    def origin_secret(self) -> tuple[dict[str, str], str] | None:
        """The origin secret's value and its current version id, or None before the stack has made it."""
        try:
            found = self.secrets.get_secret_value(SecretId=self.target.origin_secret_name)
        except self.secrets.exceptions.ResourceNotFoundException:
            return None
        return json.loads(found["SecretString"]), found["VersionId"]

    # the Django app

    def write_remote_env(self, outputs: Mapping[str, str], database_url: str) -> None:
        """Secrets for Zappa's remote_env: an encrypted object only the app's role may read, never a file here."""
        secrets = dict(
            zip(
                REMOTE_ENV_NAMES,
                (
                    self._secret(outputs["DjangoSecretKeyArn"]),
                    self._secret(outputs["PipelineSecretArn"]),
                    database_url,
                    self._secret(outputs["OriginVerifySecretArn"]),
                ),
                strict=True,
            )
        )
        self._put_remote_env(secrets)

    def update_remote_env(self, name: str, value: str) -> None:
        """One variable of the app's remote env changed, the others kept (DATABASE_URL is not deploy.py's to know)."""
        current = self.s3.get_object(Bucket=self.target.artifact_bucket, Key=self.target.remote_env_key)
        secrets = json.loads(current["Body"].read())
        secrets[name] = value
        self._put_remote_env(secrets)

    def _put_remote_env(self, secrets: Mapping[str, str]) -> None:
        self.s3.put_object(
            Bucket=self.target.artifact_bucket,
            Key=self.target.remote_env_key,
            Body=json.dumps(secrets).encode(),
            ContentType="application/json",
            ServerSideEncryption="AES256",
        )

    def _secret(self, arn: str) -> str:
        return self.secrets.get_secret_value(SecretId=arn)["SecretString"]

    def recycle_web_app(self, reason: str) -> None:
        """New instances for the app's next requests: Zappa reads its remote env once per instance, at its start.

        Any configuration change does it; the description is the one nothing reads (Zappa's next update resets it).
        """
        self.lambda_.update_function_configuration(FunctionName=self.target.web_function, Description=reason[:256])
        self.lambda_.get_waiter("function_updated_v2").wait(FunctionName=self.target.web_function)

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

    def throttle_web_app(self, limits: WebAppLimits) -> None:
        """Throttle Zappa's stage (every client together). A second run changes nothing."""
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

    def release_regional_web_acl(self) -> None:
        """Take the regional web ACL earlier stacks put on Zappa's stage off it, before the stack update deletes it.

        Behind CloudFront a regional web ACL sees CloudFront's addresses, not the clients': its per-address limits
        would throttle everyone together. The per-client rules are the edge web ACL's now (infra/edge-waf.yaml).
        A web ACL someone else associated is left alone, with a warning.
        """
        api_id = self.web_app_api_id()
        if api_id is None:
            return
        wafv2 = self.session.client("wafv2")
        stage_arn = self.target.web_stage_arn(api_id)
        associated = (wafv2.get_web_acl_for_resource(ResourceArn=stage_arn).get("WebACL") or {}).get("Name")
        if associated is None:
            return
        if associated != self.target.regional_web_acl_name:
            print(f"warning: web ACL {associated} on Zappa's stage counts CloudFront's addresses, not the clients'")
            return
        wafv2.disassociate_web_acl(ResourceArn=stage_arn)
        print(f"web app: regional web ACL {associated} disassociated (per-client limits are at the edge now)")


def stack_status(cloudformation: Any, name: str) -> str | None:
    try:
        stack = cloudformation.describe_stacks(StackName=name)["Stacks"][0]
    except cloudformation.exceptions.ClientError as error:
        if "does not exist" in str(error):
            return None
        raise
    return stack["StackStatus"]


def apply_change_set(
    cloudformation: Any,
    name: str,
    template: Mapping[str, Any],
    parameters: list[dict],
    target: Target,
    capabilities: list[str],
) -> dict[str, str]:
    """Create or update a stack through a change set, wait, and return its outputs."""
    status = stack_status(cloudformation, name)
    if status == "ROLLBACK_COMPLETE":
        # A first create that failed leaves an empty stack that can only be deleted.
        print(f"stack {name}: deleting the failed first attempt")
        cloudformation.delete_stack(StackName=name)
        cloudformation.get_waiter("stack_delete_complete").wait(StackName=name)
        status = None
    exists = status not in {None, "REVIEW_IN_PROGRESS"}
    digest = hashlib.sha256(json.dumps([template, parameters], sort_keys=True).encode()).hexdigest()[:16]
    change_set = f"deploy-{digest}-{os.getpid()}"
    cloudformation.create_change_set(
        StackName=name,
        ChangeSetName=change_set,
        ChangeSetType="UPDATE" if exists else "CREATE",
        Parameters=parameters,
        Capabilities=capabilities,
        Tags=[{"Key": "app", "Value": target.app_name}, {"Key": "stage", "Value": target.stage}],
        **template,
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
            return stack_outputs(cloudformation, name)
        raise DeployError(f"CloudFormation refused the change set for {name}: {reason}") from error
    print(f"stack {name}: {'updating' if exists else 'creating'} (CloudFront takes 5-15 minutes)...")
    cloudformation.execute_change_set(StackName=name, ChangeSetName=change_set)
    waiter = "stack_update_complete" if exists else "stack_create_complete"
    try:
        cloudformation.get_waiter(waiter).wait(StackName=name, WaiterConfig={"Delay": 15, "MaxAttempts": 240})
    except Exception as error:
        raise DeployError(f"stack {name} failed: {first_failure(cloudformation, name)}") from error
    return stack_outputs(cloudformation, name)


def stack_outputs(cloudformation: Any, name: str) -> dict[str, str]:
    stack = cloudformation.describe_stacks(StackName=name)["Stacks"][0]
    return {output["OutputKey"]: output["OutputValue"] for output in stack.get("Outputs", [])}


def first_failure(cloudformation: Any, name: str) -> str:
    events = cloudformation.describe_stack_events(StackName=name)["StackEvents"]
    failed = [e for e in events if e["ResourceStatus"].endswith("_FAILED")]
    if not failed:
        return "see the stack's events in the console"
    first = failed[-1]
    return f"{first['LogicalResourceId']}: {first.get('ResourceStatusReason', 'no reason given')}"


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
    database_url: str | None,
    overrides: Mapping[str, str] | None = None,
    *,
    site_domain: str = "",
    certificate_arn: str = "",
    edge_waf: bool = False,
) -> str:
    """Deploy one stage; returns the site's one URL."""
    from infra.package import PACKAGES

    check_arguments(stage, alert_email, site_domain, certificate_arn)
    if not database_url:
        raise DeployError("DATABASE_URL is not set: Django's tables need PostgreSQL (postgres://user:pass@host/db)")
    missing = [str(p.zip_path.relative_to(ROOT)) for p in PACKAGES if not p.zip_path.exists()]
    if missing:
        raise DeployError(f"{', '.join(missing)} missing: run `make package` first")
    site_overrides, edge_overrides = split_overrides(
        overrides or {}, template_parameters(EDGE_WAF_TEMPLATE.read_text()) - {"Stage", "AppName", "AlertEmail"}
    )
    if edge_overrides and not edge_waf:
        raise DeployError(f"{', '.join(sorted(edge_overrides))} belong to the edge web ACL: add EDGE_WAF=on")

    deployment = Deployment(session, stage)
    target = deployment.target
    deployment.ensure_artifact_bucket()
    code_keys = {p.name: deployment.upload(p.zip_path, "lambda") for p in PACKAGES}
    edge_acl = deployment.deploy_edge_waf(alert_email, edge_overrides) if edge_waf else ""

    # What is known before this deploy: Zappa's API (not on a first deploy), the site's URL (a custom domain's, or
    # the distribution's once it exists) and the origin secret's version (once the stack has made it).
    api_host = deployment.web_app_host() or ""
    site_url = f"https://{site_domain}" if site_domain else deployment.existing_output("SiteUrl")
    secret = deployment.origin_secret()

    def front_door() -> FrontDoor:
        return FrontDoor(api_host, site_domain, certificate_arn, edge_acl, secret[1] if secret else "")

    if api_host:
        deployment.release_regional_web_acl()  # before the stack update deletes it (stacks from before issue 14)
    deployment.add_indexes_one_at_a_time()
    outputs = deployment.deploy_stack(
        stack_parameters(target, alert_email, site_url or PENDING_ORIGIN, code_keys, site_overrides, front_door())
    )
    first_pass = front_door()
    deployment.write_remote_env(outputs, database_url)
    settings = write_zappa_settings(zappa_values(target, outputs))
    # Through S3: Lambda takes at most 50 MB in a direct upload.
    web_zip = f"s3://{target.artifact_bucket}/{deployment.upload(package_web_app(stage, settings), 'web')}"
    zappa("update" if deployment.web_app_exists() else "deploy", stage, "-s", str(settings), "-z", web_zip)

    if not first_pass.complete or site_url != outputs["SiteUrl"]:
        # First deploy: now that Zappa has made the app's API and the stack the site's URL and the origin secret, the
        # distribution fronts the app, CORS allows the site, and everything pins the secret's version.
        api_host = deployment.web_app_host() or ""
        if not api_host:
            raise DeployError(f"Zappa deployed but no REST API named {target.web_function} exists; see its output")
        site_url, secret = outputs["SiteUrl"], deployment.origin_secret()
        outputs = deployment.deploy_stack(
            stack_parameters(target, alert_email, site_url, code_keys, site_overrides, front_door())
        )

    deployment.throttle_web_app(WebAppLimits.from_outputs(outputs))
    zappa("manage", stage, "migrate", "-s", str(settings))
    zappa("manage", stage, "collectstatic --noinput", "-s", str(settings))
    site_url = outputs["SiteUrl"]
    dns = f"  Point {site_domain}'s DNS at {outputs['CdnDomainName']} (CNAME, or an alias record).\n"
    print(
        f"\n{target.stack_name} is up.\n\n  site:  {site_url}/\n\n"
        f"  One URL for everything: the gallery, {site_url}/upload/, {site_url}/admin/, {site_url}/api/images and\n"
        f"  the images. The origins (Zappa's API {api_host}, the read API) refuse direct requests.\n"
        + (dns if site_domain else "")
        + f"  Confirm the SNS subscription e-mail sent to {alert_email}, or no alarm will reach you."
    )
    return site_url


def rotate_origin_secret(session: Any, stage: str) -> None:
    """A new origin secret, rolled out so that no request is ever refused (docs/deploy.md, "The origin secret").

    1. The secret becomes {"current": new, "previous": old}.
    2. The app learns it first: its remote env, then new instances (Zappa reads the env once per instance).
    3. The read API learns it: a stack update pinning the new version for the origins, CloudFront still sending old.
    4. CloudFront sends the new value: a stack update pinning the new version for the edge too.
    Between 2 and 4 both origins accept both values; the old one stays accepted until the next rotation.
    """
    check_arguments(stage, None)
    deployment = Deployment(session, stage)
    target = deployment.target
    found = deployment.origin_secret()
    if found is None or deployment.stack_status() is None:
        raise DeployError(f"{target.stack_name} has no origin secret yet: run `make deploy STAGE={stage}` first")
    old, old_version = found
    parameters = deployment.deployed_parameters()
    # The version CloudFront sends now: what the stack pins, or the current one (the same, after a deploy).
    edge_version = parameters.get("EdgeSecretVersion") or old_version
    new_version = deployment.secrets.put_secret_value(
        SecretId=target.origin_secret_name, SecretString=json.dumps(new_origin_secret(old))
    )["VersionId"]
    print(f"origin secret: new version {new_version} (the previous value stays accepted)")
    new_value = deployment.secrets.get_secret_value(SecretId=target.origin_secret_name)["SecretString"]
    deployment.update_remote_env("ORIGIN_VERIFY_SECRET", new_value)
    if deployment.web_app_exists():
        deployment.recycle_web_app(f"origin secret {new_version}")
        print("web app: new instances read the new origin secret")

    def keep_but(changed: Mapping[str, str]) -> list[dict]:
        return [
            {"ParameterKey": key, "ParameterValue": changed[key]} if key in changed
            else {"ParameterKey": key, "UsePreviousValue": True}
            for key in parameters
        ]  # fmt: skip

    deployment.deploy_stack(
        keep_but({"OriginSecretVersion": new_version, "EdgeSecretVersion": edge_version}), previous_template=True
    )
    print("read API: accepts the new origin secret")
    deployment.deploy_stack(
        keep_but({"OriginSecretVersion": new_version, "EdgeSecretVersion": new_version}), previous_template=True
    )
    print(f"CloudFront: sends the new origin secret ({target.stack_name} updated); rotation done")


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
    check_arguments(stage, None)
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
        settings = write_zappa_settings(zappa_values(target, outputs))
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
    up.add_argument("--site-domain", default=os.environ.get("SITE_DOMAIN", ""), help="a custom domain for the site")
    up.add_argument("--certificate-arn", default=os.environ.get("CERTIFICATE_ARN", ""), help="its ACM certificate")
    up.add_argument("--edge-waf", action="store_true", default=os.environ.get("EDGE_WAF", "").lower() in {"on", "1"})
    rotate = commands.add_parser("rotate-origin-secret", help="a new secret between CloudFront and the origins")
    rotate.add_argument("--stage", default="dev")
    down = commands.add_parser("destroy", help="undeploy the app and delete the stack")
    down.add_argument("--stage", default="dev")
    down.add_argument("--delete-data", action="store_true")
    down.add_argument("--confirm", metavar="STACK_NAME", help="the stack's name, for scripts (instead of the prompt)")
    args = parser.parse_args(argv)
    try:
        session = boto3.session.Session()
        if args.command == "deploy":
            known = template_parameters(TEMPLATE.read_text()) | template_parameters(EDGE_WAF_TEMPLATE.read_text())
            overrides = parameter_overrides(os.environ.get("STACK_PARAMETERS"), known)
            deploy(
                session,
                args.stage,
                args.alert_email,
                os.environ.get("DATABASE_URL"),
                overrides,
                site_domain=args.site_domain,
                certificate_arn=args.certificate_arn,
                edge_waf=args.edge_waf,
            )
        elif args.command == "rotate-origin-secret":
            rotate_origin_secret(session, args.stage)
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
