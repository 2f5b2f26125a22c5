"""A CloudFront stand-in: serves the bucket's public/ prefix at the CDN root, with S3's headers.

Like the real distribution it serves only ``public/`` (raw uploads and hidden images' ``hidden/`` files are never
reachable), ignores the query string (renditions carry their version in the path), answers conditional requests
with 304 and passes on the object's Content-Type and Cache-Control. It caches nothing: every request reads S3, so
a rendition that hide or delete removed is gone at once (what CloudFront needs an invalidation for).
"""

from __future__ import annotations

import logging
import threading
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


class CdnServer:
    def __init__(self, port: int, s3: Any, bucket: str) -> None:
        handler = type("BoundCdnHandler", (CdnHandler,), {"s3": s3, "bucket": bucket})
        self._server = ThreadingHTTPServer((LOCALHOST, port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="cdn", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class CdnHandler(BaseHTTPRequestHandler):
    s3: Any
    bucket: str
    server_version = "local-cdn"

    def do_GET(self) -> None:
        self._serve(with_body=True)

    def do_HEAD(self) -> None:
        self._serve(with_body=False)

    def _serve(self, *, with_body: bool) -> None:
        key = public_key_for_path(urlsplit(self.path).path)
        if key is None:
            self._status(HTTPStatus.NOT_FOUND)
            return
        params: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
        if self.headers.get("If-None-Match"):
            params["IfNoneMatch"] = self.headers["If-None-Match"]
        try:
            response = self.s3.get_object(**params) if with_body else self.s3.head_object(**params)
        except ClientError as error:
            code = str(error.response.get("Error", {}).get("Code", ""))
            if code in {"304", "NotModified"}:
                self._status(HTTPStatus.NOT_MODIFIED)
            elif code in {"404", "NoSuchKey", "NotFound"}:
                self._status(HTTPStatus.NOT_FOUND)
            else:
                log.warning("CDN could not read s3://%s/%s: %s", self.bucket, key, error)
                self._status(HTTPStatus.BAD_GATEWAY)
            return
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", response.get("ContentType") or "application/octet-stream")
        self.send_header("Cache-Control", response.get("CacheControl") or DEFAULT_CACHE_CONTROL)
        self.send_header("Content-Length", str(response["ContentLength"]))
        self.send_header("ETag", response["ETag"])
        self.send_header("Last-Modified", self.date_time_string(response["LastModified"].timestamp()))
        self.send_header("Access-Control-Allow-Origin", "*")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.end_headers()
        if with_body:
            body = response["Body"]
            try:
                for chunk in body.iter_chunks(64 * 1024):
                    self.wfile.write(chunk)
            finally:
                body.close()

    def _status(self, status: HTTPStatus) -> None:
        self.send_response(status)
        self.send_header("Content-Length", "0")
        if status is not HTTPStatus.NOT_MODIFIED:
            self.send_header("Cache-Control", "no-store")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("cdn: " + format, *args)


def public_key_for_path(path: str) -> str | None:
    """The bucket key a CDN path maps to (``/thumbs/x.webp`` -> ``public/thumbs/x.webp``), None if it may not."""
    relative = unquote(path).lstrip("/")
    parts = relative.split("/")
    if not relative or any(part in {"", ".", ".."} for part in parts) or "\\" in relative:
        return None
    return keys.PUBLIC_PREFIX + relative
