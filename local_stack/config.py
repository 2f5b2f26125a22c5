"""What the local stack needs to know, read once from the environment: ports, state folder, admin login."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from pipeline.config import ConfigError, flag

ROOT = Path(__file__).resolve().parent.parent
LOCALHOST = "127.0.0.1"
# moto does not check credentials; fixed dummies make sure nothing the stack starts can reach real AWS.
DUMMY_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local"}


class LocalConfigError(ValueError):
    """A LOCAL_* variable is malformed; the message names it."""


@dataclass(frozen=True)
class LocalConfig:
    # False (LOCAL_AWS=0) runs only Django, against whatever AWS the environment names.
    emulate_aws: bool = True
    aws_port: int = 4566
    # The site: the front door (local_stack.front_door) serves pages, /api/ and images on this one port, as
    # CloudFront serves them on one domain.
    web_port: int = 8000
    # Django itself, the front door's origin (what API Gateway and Zappa are in AWS); open it to bypass the cache.
    django_port: int = 8001
    state_dir: Path = ROOT / ".local"
    # Seconds between snapshots of the emulator's bucket and table (a kill -9 loses at most this much).
    snapshot_seconds: int = 30
    # How long a message the processor failed stays hidden before it is retried. AWS uses six times the
    # function timeout (12 minutes); locally a failure comes back, and reaches the DLQ, within minutes.
    visibility_timeout_seconds: int = 20
    admin_user: str | None = None
    admin_password: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> LocalConfig:
        state_dir = Path(env.get("LOCAL_STATE_DIR") or cls.state_dir)
        return cls(
            emulate_aws=_flag(env, "LOCAL_AWS", default=True),
            aws_port=_port(env, "LOCAL_AWS_PORT", cls.aws_port),
            web_port=_port(env, "LOCAL_WEB_PORT", cls.web_port),
            django_port=_port(env, "LOCAL_DJANGO_PORT", cls.django_port),
            state_dir=state_dir if state_dir.is_absolute() else ROOT / state_dir,
            snapshot_seconds=_whole(env, "LOCAL_SNAPSHOT_SECONDS", cls.snapshot_seconds),
            visibility_timeout_seconds=_whole(env, "LOCAL_VISIBILITY_TIMEOUT", cls.visibility_timeout_seconds),
            admin_user=env.get("LOCAL_ADMIN_USER") or None,
            admin_password=env.get("LOCAL_ADMIN_PASSWORD") or None,
        )

    @property
    def aws_url(self) -> str:
        return f"http://{LOCALHOST}:{self.aws_port}"

    @property
    def web_url(self) -> str:
        return f"http://{LOCALHOST}:{self.web_port}"

    @property
    def django_url(self) -> str:
        return f"http://{LOCALHOST}:{self.django_port}"

    @property
    def web_origins(self) -> tuple[str, ...]:
        """The origins a browser shows the site under (bucket CORS, the API's CORS and Django's CSRF allow both)."""
        return (self.web_url, f"http://localhost:{self.web_port}")


def _flag(env: Mapping[str, str], name: str, *, default: bool) -> bool:
    try:
        return flag(env, name, default=default)
    except ConfigError as error:
        raise LocalConfigError(str(error)) from None


def _whole(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or int(raw) < 1:
        raise LocalConfigError(f"{name} must be a positive whole number, got {raw!r}")
    return int(raw)


def _port(env: Mapping[str, str], name: str, default: int) -> int:
    port = _whole(env, name, default)
    if port > 65535:
        raise LocalConfigError(f"{name} must be a TCP port (1-65535), got {port}")
    return port
