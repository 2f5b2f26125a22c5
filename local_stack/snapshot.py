"""The emulator's state on disk: moto keeps everything in memory, so the bucket, the table and (on a clean
shutdown) the queues are copied to the state folder and put back at the next start.

Layout of ``<state dir>/emulator/``::

    objects/<sha256 of key>   object bytes (named by hash: any key is a safe file name)
    objects.json              key -> etag, blob, Content-Type, Cache-Control, user metadata
    items.json                every table item, in DynamoDB's typed JSON
    messages.json             bodies of messages still queued at shutdown, per queue name

Each JSON file is replaced atomically and written after the blobs it names, so a kill -9 in the middle of
a snapshot leaves the previous one readable.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

log = logging.getLogger(__name__)

BATCH_WRITE_LIMIT: Final = 25
OBJECT_FIELDS: Final = ("ContentType", "CacheControl", "ContentDisposition", "ContentEncoding", "Metadata")


@dataclass(frozen=True)
class Restored:
    objects: int
    items: int


class Snapshot:
    def __init__(self, state_dir: Path, s3: Any, dynamodb: Any, sqs: Any, bucket: str, table: str) -> None:
        self.root = state_dir / "emulator"
        self.blobs = self.root / "objects"
        self.s3 = s3
        self.dynamodb = dynamodb
        self.sqs = sqs
        self.bucket = bucket
        self.table = table
        # The periodic snapshot and the one at shutdown must not interleave.
        self._lock = threading.Lock()

    # -- save -------------------------------------------------------------------------------------

    def save(self, queue_urls: dict[str, str] | None = None) -> None:
        """Copy the bucket (only what changed since the last save) and the table; with ``queue_urls``, drain
        those queues into the snapshot too (only at shutdown: draining takes the messages away)."""
        with self._lock:
            self.blobs.mkdir(parents=True, exist_ok=True)
            self._save_objects()
            _write_json(self.root / "items.json", self._scan_items())
            if queue_urls is not None:
                drained = {name: self._drain(url) for name, url in queue_urls.items()}
                _write_json(self.root / "messages.json", drained)

    def _save_objects(self) -> None:
        previous: dict[str, dict[str, Any]] = _read_json(self.root / "objects.json", {})
        current: dict[str, dict[str, Any]] = {}
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket):
            for summary in page.get("Contents", []):
                key, etag = summary["Key"], summary["ETag"]
                saved = previous.get(key)
                if saved and saved["etag"] == etag and (self.blobs / saved["blob"]).exists():
                    current[key] = saved
                    continue
                response = self.s3.get_object(Bucket=self.bucket, Key=key)
                blob = _blob_name(key)
                _write_bytes(self.blobs / blob, response["Body"].read())
                fields = {name: response[name] for name in OBJECT_FIELDS if response.get(name)}
                current[key] = {"etag": response["ETag"], "blob": blob, "fields": fields}
        _write_json(self.root / "objects.json", current)
        kept = {entry["blob"] for entry in current.values()}
        for path in self.blobs.iterdir():
            if path.name not in kept:
                path.unlink(missing_ok=True)

    def _scan_items(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        for page in self.dynamodb.get_paginator("scan").paginate(TableName=self.table, ConsistentRead=True):
            items.extend(page.get("Items", []))
        return items

    def _drain(self, queue_url: str) -> list[str]:
        bodies: list[str] = []
        while True:
            messages = self.sqs.receive_message(
                QueueUrl=queue_url, MaxNumberOfMessages=10, VisibilityTimeout=300, WaitTimeSeconds=0
            ).get("Messages", [])
            if not messages:
                return bodies
            bodies.extend(message["Body"] for message in messages)

    # -- restore ----------------------------------------------------------------------------------

    def restore_storage(self) -> Restored:
        """Put saved objects and items back (before S3 notifications are connected: no events for them)."""
        objects: dict[str, dict[str, Any]] = _read_json(self.root / "objects.json", {})
        restored_objects = 0
        for key, entry in objects.items():
            blob = self.blobs / entry["blob"]
            if not blob.exists():
                log.warning("snapshot lost the bytes of s3://%s/%s; skipping it", self.bucket, key)
                continue
            self.s3.put_object(Bucket=self.bucket, Key=key, Body=blob.read_bytes(), **entry["fields"])
            restored_objects += 1
        items: list[dict[str, Any]] = _read_json(self.root / "items.json", [])
        for start in range(0, len(items), BATCH_WRITE_LIMIT):
            batch = items[start : start + BATCH_WRITE_LIMIT]
            pending = {self.table: [{"PutRequest": {"Item": item}} for item in batch]}
            while pending:
                pending = self.dynamodb.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
        return Restored(objects=restored_objects, items=len(items))

    def restore_messages(self, queue_urls: dict[str, str]) -> int:
        """Send back the messages a clean shutdown saved (their receive counts start again at zero)."""
        path = self.root / "messages.json"
        saved: dict[str, list[str]] = _read_json(path, {})
        count = 0
        for name, bodies in saved.items():
            url = queue_urls.get(name)
            if url is None:
                log.warning("snapshot holds %d messages for unknown queue %s; dropping them", len(bodies), name)
                continue
            for body in bodies:
                self.sqs.send_message(QueueUrl=url, MessageBody=body)
                count += 1
        # Sent once: the next periodic snapshot must not send them again after a crash.
        path.unlink(missing_ok=True)
        return count


def _blob_name(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _read_json(path: Path, default: Any) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return default


def _write_json(path: Path, value: Any) -> None:
    _write_bytes(path, json.dumps(value, indent=1, sort_keys=True).encode())


def _write_bytes(path: Path, data: bytes) -> None:
    """Write to a temporary file next to ``path`` and rename it over: readers see old or new, never half."""
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
