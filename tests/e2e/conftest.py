"""The local stack as a person meets it: ``python -m local_stack`` (what ``make run`` runs) on free ports with a
temporary state folder, and Debian's Chromium driven by Playwright (pytest-playwright's fixtures)."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest

from local_stack.front_door import STATS_PATH
from local_stack.template import read_stack_names
from tests.conftest import ROOT

CHROMIUM = Path("/usr/bin/chromium")
# No sandbox (containers), no GPU, and nothing that phones home or updates itself during a test.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = ROOT / "artifacts"
SCREENSHOTS = ARTIFACTS / "screenshots"
STARTUP_TIMEOUT_SECONDS = 120
REGION = "us-east-1"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class StackProcess:
    """One ``python -m local_stack`` child; ``start`` returns once the site answers, ``stop`` is a Ctrl-C."""

    state_dir: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    aws_port: int = field(default_factory=free_port)
    web_port: int = field(default_factory=free_port)
    django_port: int = field(default_factory=free_port)
    admin_user: str = "e2e-admin"
    admin_password: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    process: subprocess.Popen[bytes] | None = None

    @property
    def web_url(self) -> str:
        """The site: the front door, which serves pages, the API and images, and caches them like CloudFront."""
        return f"http://127.0.0.1:{self.web_port}"

    @property
    def origin_url(self) -> str:
        """Django itself, behind the front door: for waiting on the pipeline without a cache in between."""
        return f"http://127.0.0.1:{self.django_port}"

    @property
    def aws_url(self) -> str:
        return f"http://127.0.0.1:{self.aws_port}"

    @property
    def log_path(self) -> Path:
        return self.state_dir.parent / f"{self.state_dir.name}-stack.log"

    @property
    def names(self) -> Any:
        return read_stack_names(REGION)

    def start(self) -> StackProcess:
        env = {
            **os.environ,
            "LOCAL_STATE_DIR": str(self.state_dir),
            "LOCAL_AWS_PORT": str(self.aws_port),
            "LOCAL_WEB_PORT": str(self.web_port),
            "LOCAL_DJANGO_PORT": str(self.django_port),
            "LOCAL_ADMIN_USER": self.admin_user,
            "LOCAL_ADMIN_PASSWORD": self.admin_password,
            "PYTHONUNBUFFERED": "1",
            **self.extra_env,
        }
        for name in ("IMAGE_BUCKET", "IMAGE_TABLE", "CDN_URL", "LOCAL_AWS"):
            env.pop(name, None)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "local_stack"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
            )
        self._wait_until_serving()
        return self

    def stop(self, timeout: float = 60) -> int:
        """Ctrl-C, as in the terminal; returns the exit code."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                raise AssertionError(f"the local stack ignored Ctrl-C for {timeout:.0f} s\n{self.log_tail()}") from None
        return self.process.returncode

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"

    def client(self, service: str) -> Any:
        return boto3.client(
            service,
            endpoint_url=self.aws_url,
            region_name=REGION,
            aws_access_key_id="local",
            aws_secret_access_key="local",
        )

    def _wait_until_serving(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"the local stack exited with {self.process.returncode}\n{self.log_tail()}")
            try:
                # The front door answers once Django does; its own stats page is never cached, so waiting leaves no
                # empty gallery in its cache.
                with urllib.request.urlopen(self.web_url + STATS_PATH, timeout=2):
                    return
            except urllib.error.HTTPError:
                return
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise AssertionError(f"the local stack did not serve within {STARTUP_TIMEOUT_SECONDS} s\n{self.log_tail()}")


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackProcess]:
    """The whole stack, shared by the browser tests; a retried message comes back after one second."""
    stack = StackProcess(tmp_path_factory.mktemp("e2e") / "state", extra_env={"LOCAL_VISIBILITY_TIMEOUT": "1"})
    stack.start()
    yield stack
    try:
        assert stack.stop() == 0, f"the local stack did not stop cleanly\n{stack.log_tail()}"
    finally:
        # Kept for a look after a failure (CI keeps artifacts/); the processor's log lines are JSON.
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(stack.log_path, ARTIFACTS / "local-stack.log")


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    """pytest-playwright launches Debian's Chromium, never a downloaded one."""
    if not CHROMIUM.exists():
        message = f"Chromium is not at {CHROMIUM}: `apt-get install chromium` (.ci/run does) to run the browser tests"
        if os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}:
            pytest.fail(message)
        pytest.skip(message)
    return {**browser_type_launch_args, "executable_path": str(CHROMIUM), "headless": True, "args": CHROMIUM_ARGS}


@pytest.fixture(scope="session")
def screenshot_dir() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS
