"""Start everything, print where it is, stop everything on Ctrl-C (or SIGTERM) with the state saved.

Order matters both ways. Up: emulator, resources, restore, S3 -> SQS wiring, the front door's port, worker, Django,
then the front door serves. Down: Django (no new uploads), worker (finishes its batch, whose invalidations still reach
the front door), front door, final snapshot (queues included), emulator.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import signal
import socket
import threading
from collections.abc import Callable, Mapping
from typing import Any

from local_stack import emulator as aws
from local_stack import front_door
from local_stack.config import DUMMY_CREDENTIALS, LOCALHOST, LocalConfig
from local_stack.lambda_runtime import FunctionSettings, QueueWorker
from local_stack.snapshot import Snapshot
from local_stack.template import STAGE, StackNames, read_stack_names
from local_stack.web import AdminLogin, DjangoServer, StackError, admin_login
from pipeline import reprocess, trash
from pipeline.config import Settings
from pipeline.store import Aws

log = logging.getLogger("local_stack")

# Variables that could point the stack's processes at real AWS, or at production settings.
_DROPPED_PREFIXES = ("AWS_ENDPOINT_URL",)
_DROPPED = {"AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "DJANGO_ENV", "DEBUG"}
# What `LOCAL_AWS=0` needs to find the real resources (the rest has working defaults).
REAL_AWS_REQUIRED = ("IMAGE_BUCKET", "IMAGE_TABLE", "CDN_URL")
FRONT_DOOR_NOTE = "   (one front door for pages, the API and images, caching as CloudFront will)"


def local_environment(base: Mapping[str, str], config: LocalConfig, names: StackNames) -> dict[str, str]:
    """The environment of the processor and of Django: the shell's, with every AWS endpoint on the emulator
    and the stack's resource names (IMAGE_BUCKET and IMAGE_TABLE from the shell win, as in a deployment)."""
    env = {
        name: value for name, value in base.items() if name not in _DROPPED and not name.startswith(_DROPPED_PREFIXES)
    }
    env.setdefault("IMAGE_BUCKET", names.bucket)
    env.setdefault("IMAGE_TABLE", names.table)
    settings = Settings.from_env(env)
    env.update(DUMMY_CREDENTIALS)
    env.update(
        AWS_ENDPOINT_URL=config.aws_url,
        AWS_REGION=settings.region,
        AWS_DEFAULT_REGION=settings.region,
        AWS_EC2_METADATA_DISABLED="true",
        IMAGE_BUCKET=settings.bucket,
        IMAGE_TABLE=settings.table,
        PIPELINE_SECRET=settings.secret,
        # One site: pages, /api/ and images all come through the front door, as through the one distribution.
        CDN_URL=config.web_url,
        CSRF_TRUSTED_ORIGINS=",".join(config.web_origins),
        API_CORS_ORIGINS=",".join(config.web_origins),
        # Hide, delete and the trash invalidate through the app's own CloudFrontCdn; the front door answers.
        CDN_DISTRIBUTION_ID=front_door.DISTRIBUTION_ID,
        AWS_ENDPOINT_URL_CLOUDFRONT=config.web_url + front_door.CLOUDFRONT_API_PREFIX,
        DATABASE_URL=f"sqlite:///{config.state_dir / 'db.sqlite3'}",
        MAX_RECEIVE_COUNT=str(names.max_receive_count),
    )
    env.setdefault("POWERTOOLS_SERVICE_NAME", "image-processor")
    env.setdefault("POWERTOOLS_METRICS_NAMESPACE", f"ImagePipeline/{STAGE}")
    return env


def run(config: LocalConfig, environ: Mapping[str, str]) -> int:
    stopping = threading.Event()
    _stop_on_signals(stopping)
    if config.emulate_aws:
        return _run_on_emulator(config, environ, stopping)
    return _run_on_real_aws(config, environ, stopping)


def _run_on_emulator(config: LocalConfig, environ: Mapping[str, str], stopping: threading.Event) -> int:
    template_names = read_stack_names(Settings.from_env(environ).region)
    env = local_environment(environ, config, template_names)
    # The processor runs in this process and reads its configuration at import, as it does in Lambda.
    os.environ.clear()
    os.environ.update(env)
    settings = Settings.from_env(env)
    names = dataclasses.replace(template_names, bucket=settings.bucket, table=settings.table)
    for port, variable in (
        (config.aws_port, "LOCAL_AWS_PORT"),
        (config.django_port, "LOCAL_DJANGO_PORT"),
        (config.web_port, "LOCAL_WEB_PORT"),
    ):
        _require_free(port, variable)
    config.state_dir.mkdir(parents=True, exist_ok=True)
    handler = _processor_handler()
    api_handler = _api_handler()

    with contextlib.ExitStack() as running:
        emulator = aws.Emulator(config.aws_port, settings.region)
        emulator.start()
        running.callback(emulator.stop)
        resources = aws.create_resources(
            emulator, names, settings.region, config.web_origins, config.visibility_timeout_seconds
        )
        snapshot = Snapshot(
            config.state_dir,
            s3=emulator.client("s3"),
            dynamodb=emulator.client("dynamodb"),
            sqs=emulator.client("sqs"),
            bucket=names.bucket,
            table=names.table,
        )
        restored = snapshot.restore_storage()
        expired = aws.expire_items(emulator.client("dynamodb"), names.table)
        # Registered only once the old state is back in: a failed start must not save an empty emulator over it.
        running.callback(_final_snapshot, snapshot, resources.queue_urls)
        aws.connect_uploads(emulator, resources)
        requeued = snapshot.restore_messages(resources.queue_urls)

        # The port is taken now, so that an invalidation sent while Django starts waits instead of failing;
        # requests are answered once Django is ready.
        site = front_door.FrontDoorServer(
            config.web_port,
            front_door.local_front_door(
                config.django_url, emulator.client("s3"), names.bucket, api_handler, settings.region
            ),
        )
        running.callback(site.stop)
        function = FunctionSettings.processor(names, settings.region)
        worker = QueueWorker(
            emulator.client("sqs"), resources.queue_url, resources.queue_arn, settings.region, handler, function
        )
        worker.start()
        running.callback(worker.stop, function.timeout_seconds)
        migrating = _reprocess_legacy_layout(settings)
        dynamodb = emulator.client("dynamodb")

        emulated = Aws(settings)

        def housekeeping() -> None:
            aws.expire_items(dynamodb, names.table)
            _purge_trash(emulated)
            snapshot.save()

        periodic = _Every(config.snapshot_seconds, housekeeping)
        periodic.start()
        running.callback(periodic.stop)

        login = admin_login(config)
        web = DjangoServer(config.django_port, env, login)
        web.start()
        running.callback(web.stop)
        if not web.wait_until_ready(stopping):
            return 0
        site.start()
        log.info(
            "restored %d objects, %d table items (%d expired since) and %d queued messages from %s",
            restored.objects,
            restored.items,
            expired,
            requeued,
            config.state_dir,
        )
        if migrating:
            log.info("%d images were saved with the old flat rendition layout: reprocessing them now", migrating)
        _print_banner(config, login, resources)
        return _serve_until_stopped(web, stopping)


def _reprocess_legacy_layout(settings: Settings) -> int:
    """State saved before versioned rendition keys (``public/thumbs/<id>.jpg``) moves to the new layout the way a
    deployment does (``python -m pipeline.reprocess --all --legacy-only``): each such image's original is touched,
    the worker renders it again, and the processor removes the flat files once the record points at the new ones."""
    emulated = Aws(settings)
    legacy = list(reprocess.images_to_reprocess(emulated.image_store(), legacy_only=True))
    if legacy:
        reprocess.touch_all(emulated.object_store(), legacy, throttle=reprocess.Throttle(50))
    return len(legacy)


def _purge_trash(emulated: Aws) -> None:
    """The trash's purge, which the deployed stack runs once a day (lambdas/trash_purge): here with every snapshot,
    since it reads only the trash's own index partition. A failure is logged and tried again next time."""
    try:
        summary = trash.purge_expired(emulated.image_store(), emulated.object_store(), emulated.cdn())
    except Exception:
        log.exception("the trash purge failed; it runs again with the next snapshot")
        return
    if summary.purged or summary.failed:
        log.info("trash purge: %s", summary.text())


def _run_on_real_aws(config: LocalConfig, environ: Mapping[str, str], stopping: threading.Event) -> int:
    missing = [name for name in REAL_AWS_REQUIRED if not environ.get(name)]
    if missing:
        raise StackError(
            f"LOCAL_AWS=0 runs only Django, against the AWS resources the environment names; set {', '.join(missing)}"
            " (the stack's outputs: see docs/local.md)"
        )
    _require_free(config.web_port, "LOCAL_WEB_PORT")
    config.state_dir.mkdir(parents=True, exist_ok=True)
    env = {"DATABASE_URL": f"sqlite:///{config.state_dir / 'db.sqlite3'}", **environ}
    login = admin_login(config)
    web = DjangoServer(config.web_port, env, login)
    web.start()
    try:
        if not web.wait_until_ready(stopping):
            return 0
        _print_banner(config, login, None, environ)
        return _serve_until_stopped(web, stopping)
    finally:
        web.stop()


def _serve_until_stopped(web: DjangoServer, stopping: threading.Event) -> int:
    while not stopping.wait(0.5):
        code = web.exit_code()
        if code is not None:
            log.error("Django stopped on its own (exit code %s); stopping the rest", code)
            return 1
    log.info("stopping (press Ctrl-C again to skip waiting for the processor and the last snapshot)")
    return 0


def _processor_handler() -> Callable[[dict[str, Any], Any], Any]:
    try:
        from lambdas.image_processor.handler import handler
    except ImportError as error:
        raise StackError(f"cannot import the processor (lambdas/image_processor/handler.py): {error}") from error
    return handler


def _api_handler() -> front_door.LambdaHandler:
    try:
        from lambdas.image_api.handler import handler
    except ImportError as error:
        raise StackError(f"cannot import the read API (lambdas/image_api/handler.py): {error}") from error
    return handler


def _final_snapshot(snapshot: Snapshot, queues: dict[str, str]) -> None:
    try:
        snapshot.save(queue_urls=queues)
        log.info("state saved to %s", snapshot.root)
    except Exception:
        log.exception("could not save the final snapshot; the last periodic one is kept")


class _Every:
    """Calls ``action`` every ``seconds`` in a thread until stopped; a failure is logged, not fatal."""

    def __init__(self, seconds: int, action: Callable[[], object]) -> None:
        self.seconds = seconds
        self.action = action
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="snapshot", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stopping.wait(self.seconds):
            try:
                self.action()
            except Exception:
                log.exception("periodic snapshot failed; will try again")


def _stop_on_signals(stopping: threading.Event) -> None:
    def handle(signum: int, _frame: object) -> None:
        if stopping.is_set():
            # A second Ctrl-C: stop waiting for the processor or the snapshot.
            signal.signal(signum, signal.SIG_DFL)
            raise KeyboardInterrupt
        stopping.set()

    signal.signal(signal.SIGINT, handle)
    signal.signal(signal.SIGTERM, handle)


def _require_free(port: int, variable: str) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((LOCALHOST, port))
        except OSError:
            raise StackError(
                f"port {port} on {LOCALHOST} is in use (another `make run`?): stop that, or set {variable}"
            ) from None


def _print_banner(
    config: LocalConfig,
    login: AdminLogin,
    resources: aws.Resources | None,
    environ: Mapping[str, str] | None = None,
) -> None:
    web = config.web_url
    if login.generated_now:
        credentials = f"user {login.username}, password {login.password} (saved in {login.source})"
    else:
        credentials = f"user {login.username}, password in {login.source}"
    lines = [
        "",
        "Image pipeline running locally" + (" on moto" if resources else " against real AWS") + ":",
        f"  site      {web}/" + (FRONT_DOOR_NOTE if resources else ""),
        f"  upload    {web}/upload/",
        f"  admin     {web}/admin/   ({credentials})",
        f"  API       {web}/api/images",
    ]
    if resources:
        names = resources.names
        lines += [
            f"  images    {web}/optimized/<id>/<version>-1280.webp   (the bucket's public/ prefix)",
            f"  cache     {web}{front_door.STATS_PATH}   (and X-Cache: Hit or Miss on every answer)",
            f"  Django    {config.django_url}/   (the origin behind the front door, uncached)",
            f"  AWS       {config.aws_url}   (moto: bucket {names.bucket}, table {names.table}, queue {names.queue})",
            f"  try       aws --endpoint-url {config.aws_url} s3 cp photo.jpg s3://{names.bucket}/raw/",
            f"  state     {config.state_dir} (saved every {config.snapshot_seconds} s and on exit;"
            " `make clean-local` wipes it)",
        ]
    elif environ is not None:
        lines.append(f"  AWS       bucket {environ.get('IMAGE_BUCKET')}, table {environ.get('IMAGE_TABLE')}")
    lines += ["Ctrl-C stops everything.", ""]
    print("\n".join(lines), flush=True)
