"""CloudFront's S3 origin (with Origin Access Control): the bucket's public/ prefix at the CDN root, with S3's headers.

Like the real distribution it serves only ``public/`` (raw uploads and hidden images' ``hidden/`` files are never
reachable), ignores the query string (renditions carry their version in the path), answers conditional requests
with 304 and passes on the object's Content-Type and Cache-Control. ``PublicBucket`` reads one path; the front door
(local_stack.front_door) caches what it reads, as CloudFront does, and ``CdnServer`` serves it uncached on a port of
its own (tests that watch S3 itself use it).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from email.utils import formatdate
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Final
from urllib.parse import unquote, urlsplit

from botocore.exceptions import ClientError

from local_stack.config import LOCALHOST
from pipeline import keys

log = logging.getLogger(__name__)

# What CloudFront's default behaviour would add for an object stored without Cache-Control.
DEFAULT_CACHE_CONTROL: Final = "public, max-age=86400"
CHUNK_BYTES: Final = 64 * 1024


@dataclass
class S3Answer:
    """What the origin answers for one path: a status, headers in order, and S3's body stream (GET, 200 only)."""

    status: HTTPStatus
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: Any = None

    def read(self) -> bytes:
        if self.body is None:
            return b""
        try:
            return b"".join(self.body.iter_chunks(CHUNK_BYTES))
        finally:
            self.body.close()


class PublicBucket:
    """The bucket's ``public/`` prefix as CloudFront's S3 origin sees it."""

    def __init__(self, s3: Any, bucket: str) -> None:
        self.s3 = s3
        self.bucket = bucket

    def read(self, path: str, *, if_none_match: str | None = None, with_body: bool = True) -> S3Answer:
        key = public_key_for_path(urlsplit(path).path)
        if key is None:
            return _empty(HTTPStatus.NOT_FOUND)
        params: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
        if if_none_match:
            params["IfNoneMatch"] = if_none_match
        try:
            response = self.s3.get_object(**params) if with_body else self.s3.head_object(**params)
        except ClientError as error:
            code = str(error.response.get("Error", {}).get("Code", ""))
            if code in {"304", "NotModified"}:
                return _empty(HTTPStatus.NOT_MODIFIED)
            if code in {"404", "NoSuchKey", "NotFound"}:
                return _empty(HTTPStatus.NOT_FOUND)
            log.warning("CDN could not read s3://%s/%s: %s", self.bucket, key, error)
            return _empty(HTTPStatus.BAD_GATEWAY)
        headers = [
            ("Content-Type", response.get("ContentType") or "application/octet-stream"),
            ("Cache-Control", response.get("CacheControl") or DEFAULT_CACHE_CONTROL),
            ("Content-Length", str(response["ContentLength"])),
            ("ETag", response["ETag"]),
            ("Last-Modified", formatdate(response["LastModified"].timestamp(), usegmt=True)),
            ("Access-Control-Allow-Origin", "*"),
            ("X-Content-Type-Options", "nosniff"),
        ]
        return S3Answer(HTTPStatus.OK, headers, response["Body"] if with_body else None)


def _empty(status: HTTPStatus) -> S3Answer:
    headers = [("Content-Length", "0")]
    if status is not HTTPStatus.NOT_MODIFIED:
        headers.append(("Cache-Control", "no-store"))
    return S3Answer(status, headers)


class CdnServer:
    """``PublicBucket`` on a port of its own, uncached: every request reads S3."""

    def __init__(self, port: int, s3: Any, bucket: str) -> None:
        handler = type("BoundCdnHandler", (CdnHandler,), {"origin": PublicBucket(s3, bucket)})
        self._server = ThreadingHTTPServer((LOCALHOST, port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="cdn", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class CdnHandler(BaseHTTPRequestHandler):
    origin: PublicBucket
    server_version = "local-cdn"

    def do_GET(self) -> None:
        self._serve(with_body=True)

    def do_HEAD(self) -> None:
        self._serve(with_body=False)

    def _serve(self, *, with_body: bool) -> None:
        answer = self.origin.read(self.path, if_none_match=self.headers.get("If-None-Match"), with_body=with_body)
        self.send_response(answer.status)
        for name, value in answer.headers:
            self.send_header(name, value)
        self.end_headers()
        if answer.body is not None:
            try:
                for chunk in answer.body.iter_chunks(CHUNK_BYTES):
                    self.wfile.write(chunk)
            finally:
                answer.body.close()

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("cdn: " + format, *args)


def public_key_for_path(path: str) -> str | None:
    """The bucket key a CDN path maps to (``/thumbs/x.webp`` -> ``public/thumbs/x.webp``), None if it may not."""
    relative = unquote(path).lstrip("/")
    parts = relative.split("/")
    if not relative or any(part in {"", ".", ".."} for part in parts) or "\\" in relative:
        return None
    return keys.PUBLIC_PREFIX + relative
