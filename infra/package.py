"""Build the Lambda zips (processor, read API, trash purge) for the Lambda runtime: `make package`.

Each zip holds the project's ``pipeline`` and ``lambdas`` code plus its third-party requirements as Linux wheels
for the runtime's Python and architecture (never this machine's). boto3 is left out: the runtime ships it.
The handlers' import time (the cold-start cost the code controls) is measured in a clean interpreter: on the
Lambda build if its wheels fit this machine, otherwise on a build of the same requirements for this machine.
"""

from __future__ import annotations

import argparse
import hashlib
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Final

ROOT: Final = Path(__file__).resolve().parent.parent
REQUIREMENTS: Final = ROOT / "requirements" / "lambda.txt"
CONSTRAINTS: Final = ROOT / "requirements" / "constraints.txt"
BUILD: Final = ROOT / "build"

# Must agree with infra/pipeline.yaml (Runtime python3.12, Architectures arm64); tests/test_infra.py checks.
RUNTIME_PYTHON: Final = "3.12"
RUNTIME_ARCH: Final = "aarch64"
# Lambda's python3.12 runs on Amazon Linux 2023 (glibc 2.34): every manylinux tag up to 2.34 fits. pip does
# not widen an explicit --platform on its own, so all of them are listed.
RUNTIME_GLIBC_MINOR: Final = 34
# Lambda refuses larger packages (unzipped, including layers) and direct uploads above 50 MB zipped.
MAX_UNZIPPED_BYTES: Final = 250 * 1024 * 1024
# Fixed timestamps make the zip a function of its content, so its S3 key (a hash) only changes with the code.
ZIP_DATE: Final = (2020, 1, 1, 0, 0, 0)
SKIPPED_NAMES: Final = {"__pycache__"}
SKIPPED_SUFFIXES: Final = {".pyc", ".pyo"}


class PackagingError(RuntimeError):
    """A package could not be built or is too large for Lambda; the message says which and why."""


@dataclass(frozen=True)
class LambdaPackage:
    """One function's zip: its handler module, the project code it needs and the requirements it leaves out."""

    name: str
    handler_module: str
    code: tuple[str, ...]
    # Names from requirements/lambda.txt this function does not import (boto3 always: the runtime has it).
    without: frozenset[str]

    @property
    def zip_path(self) -> Path:
        return BUILD / f"{self.name}.zip"


PACKAGES: Final = (
    LambdaPackage(
        name="image-processor",
        handler_module="lambdas.image_processor.handler",
        code=("pipeline", "lambdas/__init__.py", "lambdas/image_processor"),
        without=frozenset({"boto3"}),
    ),
    LambdaPackage(
        name="image-api",
        handler_module="lambdas.image_api.handler",
        code=("pipeline", "lambdas/__init__.py", "lambdas/image_api"),
        without=frozenset({"boto3", "pillow", "pillow-heif"}),
    ),
    # The daily purge of the trash (pipeline.trash): records and S3 deletes, no imaging.
    LambdaPackage(
        name="trash-purge",
        handler_module="lambdas.trash_purge.handler",
        code=("pipeline", "lambdas/__init__.py", "lambdas/trash_purge"),
        without=frozenset({"boto3", "pillow", "pillow-heif"}),
    ),
)


@dataclass(frozen=True)
class BuildReport:
    package: LambdaPackage
    zipped_bytes: int
    unzipped_bytes: int
    import_seconds: float
    measured_on: str


def requirement_lines(without: frozenset[str]) -> list[str]:
    """requirements/lambda.txt minus the named distributions (names compared the way pip normalizes them)."""
    kept = []
    for line in REQUIREMENTS.read_text().splitlines():
        requirement = line.split("#", 1)[0].strip()
        if not requirement:
            continue
        name = re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0]
        if _normalize(name) not in {_normalize(n) for n in without}:
            kept.append(requirement)
    return kept


def runtime_requirements() -> list[str]:
    """What the runtime provides and the zips leave out (boto3), pinned as in requirements/lambda.txt."""
    everything = requirement_lines(frozenset())
    return [line for line in everything if line not in requirement_lines(frozenset({"boto3"}))]


def runtime_platform_args() -> list[str]:
    platforms = ["manylinux2014_" + RUNTIME_ARCH]
    platforms += [f"manylinux_2_{minor}_{RUNTIME_ARCH}" for minor in range(17, RUNTIME_GLIBC_MINOR + 1)]
    args = [arg for tag in platforms for arg in ("--platform", tag)]
    version = RUNTIME_PYTHON.replace(".", "")
    return [*args, "--python-version", RUNTIME_PYTHON, "--implementation", "cp", "--abi", f"cp{version}"]


def install(requirements: list[str], target: Path, *, for_runtime: bool, closure: bool = False) -> None:
    """pip-install ``requirements`` into ``target``: Lambda's wheels, or this machine's for measuring.

    ``closure`` says the list is already every distribution needed (a pip freeze): pip then installs exactly
    those, which lets a pure-Python package that publishes no wheel (Zappa's placebo) come as an sdist while
    every compiled one still comes as the runtime's wheel (``make deploy`` checks the zip for strays).
    """
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as listed:
        listed.write("\n".join(requirements) + "\n")
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--no-compile", "--disable-pip-version-check"]
    command += ["--target", str(target), "-r", listed.name, "-c", str(CONSTRAINTS)]
    if for_runtime:
        command += runtime_platform_args()
        command += ["--no-deps", "--prefer-binary"] if closure else ["--only-binary=:all:"]
    try:
        subprocess.run(command, check=True)
    except subprocess.CalledProcessError as error:
        where = f"Lambda (python{RUNTIME_PYTHON}, {RUNTIME_ARCH})" if for_runtime else "this machine"
        raise PackagingError(f"pip could not install {requirements} for {where}: see pip's message above") from error
    finally:
        Path(listed.name).unlink()


def copy_code(package: LambdaPackage, target: Path) -> None:
    """Copy the project code a function needs (sources only) into ``target``."""
    for relative in package.code:
        source = ROOT / relative
        destination = target / relative
        destination.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, destination, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(source, destination)


def write_zip(source: Path, zip_path: Path) -> tuple[int, int]:
    """Zip ``source`` deterministically; returns (zipped, unzipped) sizes in bytes."""
    zip_path.parent.mkdir(parents=True, exist_ok=True)
    unzipped = 0
    with zipfile.ZipFile(zip_path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for path in sorted(source.rglob("*")):
            if path.is_dir() or SKIPPED_NAMES & set(path.parts) or path.suffix in SKIPPED_SUFFIXES:
                continue
            info = zipfile.ZipInfo(path.relative_to(source).as_posix(), date_time=ZIP_DATE)
            info.external_attr = (0o755 if path.stat().st_mode & 0o111 else 0o644) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            data = path.read_bytes()
            unzipped += len(data)
            archive.writestr(info, data, compresslevel=9)
    return zip_path.stat().st_size, unzipped


def measure_import(package: LambdaPackage, *paths: Path) -> float:
    """Seconds to import the handler in a clean interpreter whose import path is ``paths`` + the stdlib.

    ``-I -S`` drops the environment, the current directory and every site-packages, so a missing requirement
    or an accidental Django import fails here exactly as it would on Lambda. The build gives the package's
    directory, then one holding boto3, which the Lambda runtime puts on the path after the function's code.
    """
    probe = (
        "import sys, time\n"
        f"sys.path[0:0] = {[str(path) for path in paths]!r}\n"
        "start = time.perf_counter()\n"
        f"import {package.handler_module}\n"
        "elapsed = time.perf_counter() - start\n"
        "assert 'django' not in sys.modules, 'the handler imported Django'\n"
        "print(elapsed)\n"
    )
    environment = {"AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1", "PATH": "/usr/bin:/bin"}
    # The base interpreter, not the venv's: nothing installed for development can leak in.
    interpreter = getattr(sys, "_base_executable", sys.executable)
    result = subprocess.run(
        [interpreter, "-I", "-S", "-c", probe], capture_output=True, text=True, env=environment, check=False
    )
    if result.returncode != 0:
        raise PackagingError(f"{package.handler_module} does not import from its package:\n{result.stderr.strip()}")
    return float(result.stdout.strip().splitlines()[-1])


def wheels_fit_this_machine() -> bool:
    machine = platform.machine().lower()
    same_arch = machine == RUNTIME_ARCH or (machine == "arm64" and RUNTIME_ARCH == "aarch64")
    return same_arch and f"{sys.version_info.major}.{sys.version_info.minor}" == RUNTIME_PYTHON


def build(package: LambdaPackage, workdir: Path, runtime_dir: Path) -> BuildReport:
    requirements = requirement_lines(package.without)
    lambda_dir = workdir / package.name / "lambda"
    install(requirements, lambda_dir, for_runtime=True)
    copy_code(package, lambda_dir)
    zipped, unzipped = write_zip(lambda_dir, package.zip_path)
    if unzipped > MAX_UNZIPPED_BYTES:
        raise PackagingError(f"{package.name} is {unzipped / 2**20:.0f} MB unzipped; Lambda allows 250 MB")
    if wheels_fit_this_machine():
        measured_dir, measured_on = lambda_dir, "the Lambda build itself"
    else:
        measured_dir = workdir / package.name / "local"
        install(requirements, measured_dir, for_runtime=False)
        copy_code(package, measured_dir)
        measured_on = (
            f"a build for this machine (python{sys.version_info.major}.{sys.version_info.minor}, "
            f"{platform.machine()}): the Lambda wheels are python{RUNTIME_PYTHON} {RUNTIME_ARCH}"
        )
    seconds = min(measure_import(package, measured_dir, runtime_dir) for _ in range(3))
    return BuildReport(package, zipped, unzipped, seconds, measured_on)


def content_hash(zip_path: Path) -> str:
    return hashlib.sha256(zip_path.read_bytes()).hexdigest()[:16]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="lambda-build-") as workdir:
        runtime_dir = Path(workdir) / "runtime"
        try:
            install(runtime_requirements(), runtime_dir, for_runtime=False)
            reports = [build(package, Path(workdir), runtime_dir) for package in PACKAGES]
        except PackagingError as error:
            print(f"make package: {error}", file=sys.stderr)
            return 1
    print(f"{'package':<18}{'zipped':>10}{'unzipped':>11}{'import':>9}  zip")
    for report in reports:
        print(
            f"{report.package.name:<18}{report.zipped_bytes / 2**20:>8.1f}MB{report.unzipped_bytes / 2**20:>9.1f}MB"
            f"{report.import_seconds * 1000:>7.0f}ms  {report.package.zip_path.relative_to(ROOT)}"
        )
    print(f"import time measured (best of 3, clean interpreter, no site-packages) on {reports[0].measured_on}")
    return 0


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


if __name__ == "__main__":
    raise SystemExit(main())
