"""The Django app as a child process of the stack, and the staff login it is started with."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from local_stack.config import ROOT, LocalConfig

ADMIN_FILE = "admin.json"
DEFAULT_ADMIN_USER = "admin"


class StackError(RuntimeError):
    """The local stack cannot start or keep running; the message says what to do."""


@dataclass(frozen=True)
class AdminLogin:
    username: str
    password: str
    # Where the password comes from, for the start-up banner: never print a password the user typed.
    source: str
    generated_now: bool = False


def admin_login(config: LocalConfig) -> AdminLogin:
    """LOCAL_ADMIN_USER/LOCAL_ADMIN_PASSWORD if given, else the login generated on the first start."""
    username = config.admin_user or DEFAULT_ADMIN_USER
    if config.admin_password:
        return AdminLogin(username, config.admin_password, source="LOCAL_ADMIN_PASSWORD")
    path = config.state_dir / ADMIN_FILE
    shown = _shown_path(path)
    try:
        saved = json.loads(path.read_text())
        if saved.get("username") == username and saved.get("password"):
            return AdminLogin(username, saved["password"], source=shown)
    except FileNotFoundError:
        pass
    login = AdminLogin(username, secrets.token_urlsafe(12), source=shown, generated_now=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.write_text(json.dumps({"username": login.username, "password": login.password}) + "\n")
    return login


class DjangoServer:
    def __init__(self, port: int, env: Mapping[str, str], login: AdminLogin) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}/"
        self.env = {**env, "LOCAL_ADMIN_USER": login.username, "LOCAL_ADMIN_PASSWORD": login.password}
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "local_stack.django_server", str(self.port)], env=self.env, cwd=ROOT
        )

    def exit_code(self) -> int | None:
        return self.process.poll() if self.process else None

    def wait_until_ready(self, stopping: threading.Event, timeout: float = 120) -> bool:
        """True once Django answers; False if the stack is told to stop first."""
        deadline = time.monotonic() + timeout
        while not stopping.is_set():
            code = self.exit_code()
            if code is not None:
                raise StackError(f"Django exited with code {code} while starting; its error is printed above")
            if time.monotonic() > deadline:
                raise StackError(f"Django did not answer on {self.url} within {timeout:.0f} s")
            try:
                with urllib.request.urlopen(self.url, timeout=2):  # noqa: S310 (our own http://127.0.0.1 URL)
                    return True
            except urllib.error.HTTPError:
                return True  # any answer means it serves
            except OSError:
                stopping.wait(0.2)
        return False

    def stop(self, timeout: float = 10) -> None:
        """SIGTERM (Django keeps nothing in memory worth a graceful exit), then a kill if it hangs."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _shown_path(path: Path) -> str:
    try:
        return str(path.relative_to(Path(os.getcwd())))
    except ValueError:
        return str(path)
