"""The AWS adapters: DynamoDB (ImageStore) and S3 (ObjectStore). The only module that talks to boto3.

Endpoints come from the environment the way boto3 reads them (``AWS_ENDPOINT_URL`` points everything at
the local emulator), so the same code runs against moto and AWS with no branch for either.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Final, Protocol

import boto3
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.config import Config
from botocore.exceptions import ClientError

from pipeline import records
from pipeline.config import Settings
from pipeline.records import ImageRecord

# Optimistic writes retried on a revision conflict before giving up (a conflict means someone else
# wrote in between: re-read and re-apply is always correct here).
MAX_CONFLICT_RETRIES: Final = 5
IMMUTABLE_CACHE_CONTROL: Final = "public, max-age=31536000, immutable"
# BatchGetItem's unprocessed keys: asked for again this many rounds in all, waiting 0.05, 0.1, 0.2, 0.4 s between.
BATCH_GET_ROUNDS: Final = 5
BATCH_GET_BACKOFF_SECONDS: Final = 0.05

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()
Mutation = Callable[[ImageRecord | None], ImageRecord | None]


class StoreError(RuntimeError):
    """A storage operation could not complete (the message says which and why)."""


class WriteConflict(StoreError):
    """The record kept changing under us; retrying later is safe."""


class ObjectMissing(StoreError):
    """The S3 object is not there (or no longer the version asked for)."""


@dataclass(frozen=True)
class ObjectHead:
    key: str
    size: int
    content_type: str | None
    etag: str
    version_id: str | None


@dataclass(frozen=True)
class Page:
    records: list[ImageRecord]
    # DynamoDB's LastEvaluatedKey, or None on the last page. Opaque to everyone but pipeline.api's cursor.
    last_key: dict[str, Any] | None


def client_config() -> Config:
    return Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=5, read_timeout=30)


class Aws:
    """Lazily built boto3 clients for one region; endpoints come from the environment."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @cached_property
    def dynamodb(self) -> Any:
        return boto3.client("dynamodb", region_name=self.settings.region, config=client_config())

    @cached_property
    def s3(self) -> Any:
        # SigV4 for presigned POSTs too (every region accepts it; newer ones accept nothing else).
        return boto3.client(
            "s3", region_name=self.settings.region, config=client_config().merge(Config(signature_version="s3v4"))
        )

    @cached_property
    def cloudfront(self) -> Any:
        return boto3.client("cloudfront", region_name=self.settings.region, config=client_config())

    def cdn(self) -> Cdn:
        """The CDN in front of public/: CloudFront when a distribution is configured, else the local stand-in's."""
        if self.settings.cdn_distribution_id:
            return CloudFrontCdn(self.cloudfront, self.settings.cdn_distribution_id)
        return NoCdnCache()

    def image_store(self) -> ImageStore:
        return ImageStore(self.dynamodb, self.settings.table)

    def object_store(self) -> ObjectStore:
        return ObjectStore(self.s3, self.settings.bucket)


class ImageStore:
    """ImageRecords in DynamoDB: the image item and its tag items, written together."""

    def __init__(self, client: Any, table: str) -> None:
        self.client = client
        self.table = table

    # -- reads -----------------------------------------------------------------------------------

    def get(self, image_id: str, *, consistent: bool = False) -> ImageRecord | None:
        response = self.client.get_item(
            TableName=self.table,
            Key=_serialize({"pk": records.image_pk(image_id), "sk": records.IMAGE_SK}),
            ConsistentRead=consistent,
        )
        item = response.get("Item")
        return ImageRecord.from_item(_deserialize(item)) if item else None

    def get_many(self, image_ids: Iterable[str]) -> dict[str, ImageRecord]:
        """Several images in one BatchGetItem (at most 100 ids, a page's worth), by id; missing ones are left out.

        What DynamoDB leaves unprocessed under load is asked for again, backing off, at most BATCH_GET_ROUNDS
        times in all (botocore retries throttling, not that); what is still unread then is left out as missing:
        callers read these for links and badges, which a page can do without."""
        wanted = list(dict.fromkeys(image_ids))[:100]
        if not wanted:
            return {}
        request: dict[str, Any] = {
            self.table: {"Keys": [_serialize({"pk": records.image_pk(i), "sk": records.IMAGE_SK}) for i in wanted]}
        }
        found: dict[str, ImageRecord] = {}
        for round_number in range(BATCH_GET_ROUNDS):
            if round_number:
                time.sleep(BATCH_GET_BACKOFF_SECONDS * 2 ** (round_number - 1))
            response = self.client.batch_get_item(RequestItems=request)
            for item in response.get("Responses", {}).get(self.table, []):
                record = ImageRecord.from_item(_deserialize(item))
                found[record.id] = record
            request = response.get("UnprocessedKeys") or {}
            if not request:
                break
        return found

    def lookup(self, partition: str) -> list[dict[str, Any]]:
        """The lookup items under one key (``records.sha256_pk``, ``records.phash_pks``): a Query, never a Scan.

        Each is ``{"image_id", "created_sk"[, "phash"]}``; eventually consistent, as any index read."""
        response = self.client.query(
            TableName=self.table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues=_serialize({":pk": partition}),
        )
        return [_deserialize(item) for item in response.get("Items", [])]

    def query_page(
        self,
        index: str,
        partition_value: str,
        *,
        limit: int,
        start_key: dict[str, Any] | None = None,
        filter_expression: str | None = None,
        filter_values: dict[str, Any] | None = None,
    ) -> Page:
        """One Query on ``index``: newest first, at most ``limit`` items."""
        response = self.client.query(
            **self._query_params(index, partition_value, limit, start_key, filter_expression, filter_values)
        )
        found = [ImageRecord.from_item(_deserialize(item)) for item in response.get("Items", [])]
        last = response.get("LastEvaluatedKey")
        return Page(records=found, last_key=_deserialize(last) if last else None)

    def search_page(
        self,
        index: str,
        partition_value: str,
        *,
        limit: int,
        filter_expression: str,
        filter_values: dict[str, Any],
        start_key: dict[str, Any] | None = None,
        read_size: int,
        max_reads: int,
    ) -> Page:
        """Up to ``limit`` items on ``index`` that pass ``filter_expression``, newest first.

        DynamoDB filters after it reads, so one Query of ``limit`` items may match none. This reads the index in
        Queries of ``read_size`` items until the page is full, the index ends or ``max_reads`` Queries were made
        (then the page is short but ``last_key`` leads on); ``last_key`` resumes right after the last item read
        or returned, so nothing is skipped or shown twice.
        """
        matches: list[tuple[ImageRecord, dict[str, Any]]] = []
        key = start_key
        for _ in range(max_reads):
            params = self._query_params(index, partition_value, read_size, key, filter_expression, filter_values)
            response = self.client.query(**params)
            matches += [
                (ImageRecord.from_item(_deserialize(item)), _deserialize(_index_key(index, item)))
                for item in response.get("Items", [])
            ]
            last = response.get("LastEvaluatedKey")
            key = _deserialize(last) if last else None
            if len(matches) >= limit:
                if len(matches) > limit or key is not None:
                    key = matches[limit - 1][1]  # resume after the last match shown
                break
            if key is None:
                break
        return Page(records=[record for record, _ in matches[:limit]], last_key=key)

    def _query_params(
        self,
        index: str,
        partition_value: str,
        limit: int,
        start_key: dict[str, Any] | None,
        filter_expression: str | None,
        filter_values: dict[str, Any] | None,
    ) -> dict[str, Any]:
        params: dict[str, Any] = {
            "TableName": self.table,
            "IndexName": index,
            "KeyConditionExpression": "#p = :p",
            "ExpressionAttributeNames": {"#p": _INDEX_PARTITION[index]},
            "ExpressionAttributeValues": _serialize({":p": partition_value, **(filter_values or {})}),
            "ScanIndexForward": False,
            "Limit": limit,
        }
        if filter_expression:
            params["FilterExpression"] = filter_expression
        if start_key:
            params["ExclusiveStartKey"] = _serialize(start_key)
        return params

    # -- writes ----------------------------------------------------------------------------------

    def create(self, record: ImageRecord) -> ImageRecord:
        """Write a new record; fails with WriteConflict if the id exists."""
        return self._save(record, previous=None)

    def update(self, image_id: str, mutate: Mutation) -> ImageRecord | None:
        """Read, apply ``mutate`` (a pure function of the current record or None), write if it changed.

        ``mutate`` returns the new record, or None (or the record unchanged) to write nothing. The write is
        guarded by the revision it read; on a conflict the read and the mutation run again.
        """
        for _ in range(MAX_CONFLICT_RETRIES):
            current = self.get(image_id, consistent=True)
            wanted = mutate(current)
            if wanted is None or wanted == current:
                return current
            try:
                return self._save(wanted, previous=current)
            except WriteConflict:
                continue
        raise WriteConflict(f"image {image_id} changed {MAX_CONFLICT_RETRIES} times while being updated; try again")

    def delete(self, record: ImageRecord) -> None:
        """Delete the image item, every tag item it has and its lookup items."""
        response = self.client.query(
            TableName=self.table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues=_serialize({":pk": records.image_pk(record.id)}),
            ProjectionExpression="pk, sk",
            ConsistentRead=True,
        )
        keys_to_delete = response.get("Items", []) + [_serialize(key) for key in record.lookup_keys()]
        for start in range(0, len(keys_to_delete), 25):
            self.client.batch_write_item(
                RequestItems={
                    self.table: [{"DeleteRequest": {"Key": key}} for key in keys_to_delete[start : start + 25]]
                }
            )

    def _save(self, record: ImageRecord, previous: ImageRecord | None) -> ImageRecord:
        saved = record.replace(revision=(previous.revision if previous else record.revision) + 1)
        main, *tag_items = saved.to_items()
        if previous is None:
            condition: dict[str, Any] = {"ConditionExpression": "attribute_not_exists(pk)"}
        else:
            condition = {
                "ConditionExpression": "revision = :r",
                "ExpressionAttributeValues": _serialize({":r": previous.revision}),
            }
        actions: list[dict[str, Any]] = [{"Put": {"TableName": self.table, "Item": _serialize(main), **condition}}]
        actions += [{"Put": {"TableName": self.table, "Item": _serialize(item)}} for item in tag_items]
        kept = {item["sk"] for item in tag_items}
        stale = {records.tag_sk(tag) for tag in (previous.tags if previous else ())} - kept
        actions += [
            {"Delete": {"TableName": self.table, "Key": _serialize({"pk": main["pk"], "sk": sk})}}
            for sk in sorted(stale)
        ]
        # The lookup items (sha256, perceptual-hash slices) follow the record: written while it is ready, removed
        # with the same write that takes it out of ready or changes its hashes.
        lookups = saved.lookup_items()
        wanted = {(item["pk"], item["sk"]) for item in lookups}
        had = {(key["pk"], key["sk"]) for key in (previous.lookup_keys() if previous else [])}
        actions += [{"Put": {"TableName": self.table, "Item": _serialize(item)}} for item in lookups]
        actions += [
            {"Delete": {"TableName": self.table, "Key": _serialize({"pk": pk, "sk": sk})}}
            for pk, sk in sorted(had - wanted)
        ]
        try:
            self.client.transact_write_items(TransactItems=actions)
        except ClientError as error:
            if _is_condition_failure(error):
                raise WriteConflict(f"image {record.id} was written by someone else") from error
            raise
        return saved


class ObjectStore:
    """Objects in the pipeline's bucket: raw uploads in, renditions out, presigned POSTs for browsers."""

    def __init__(self, client: Any, bucket: str) -> None:
        self.client = client
        self.bucket = bucket

    def head(self, key: str) -> ObjectHead:
        try:
            response = self.client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as error:
            if _error_code(error) in {"404", "NoSuchKey", "NotFound"}:
                raise ObjectMissing(f"s3://{self.bucket}/{key} does not exist") from error
            raise
        return ObjectHead(
            key=key,
            size=int(response["ContentLength"]),
            content_type=response.get("ContentType"),
            etag=response["ETag"],
            version_id=response.get("VersionId"),
        )

    def read(self, key: str, *, if_match: str | None = None) -> bytes:
        """The object's bytes; ``if_match`` (an ETag) makes sure it is the version we checked."""
        params: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
        if if_match:
            params["IfMatch"] = if_match
        try:
            response = self.client.get_object(**params)
        except ClientError as error:
            if _error_code(error) in {"404", "NoSuchKey", "NotFound", "PreconditionFailed", "412"}:
                raise ObjectMissing(f"s3://{self.bucket}/{key} is gone or was replaced") from error
            raise
        body = response["Body"]
        try:
            return body.read()
        finally:
            body.close()

    def write(self, key: str, body: bytes, content_type: str, *, cache_control: str = IMMUTABLE_CACHE_CONTROL) -> None:
        self.client.put_object(
            Bucket=self.bucket, Key=key, Body=body, ContentType=content_type, CacheControl=cache_control
        )

    def delete(self, keys: Iterable[str]) -> None:
        """Delete these keys (missing ones are fine)."""
        objects = [{"Key": key} for key in keys]
        for start in range(0, len(objects), 1000):
            response = self.client.delete_objects(
                Bucket=self.bucket, Delete={"Objects": objects[start : start + 1000], "Quiet": True}
            )
            if response.get("Errors"):
                first = response["Errors"][0]
                raise StoreError(f"could not delete s3://{self.bucket}/{first['Key']}: {first.get('Message')}")

    def copy(self, source_key: str, dest_key: str) -> None:
        """Copy an object within the bucket; S3 copies its Content-Type and Cache-Control with it (COPY directive).

        ObjectMissing when the source is not there.
        """
        try:
            self.client.copy_object(
                Bucket=self.bucket,
                Key=dest_key,
                CopySource={"Bucket": self.bucket, "Key": source_key},
                MetadataDirective="COPY",
            )
        except ClientError as error:
            if _error_code(error) in {"404", "NoSuchKey", "NotFound"}:
                raise ObjectMissing(f"s3://{self.bucket}/{source_key} does not exist") from error
            raise

    def list_keys(self, prefix: str) -> Iterator[str]:
        """Every key under ``prefix``, a page (1000 keys, one ListObjectsV2) at a time."""
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                yield item["Key"]

    def touch(self, key: str) -> None:
        """Copy the object onto itself with fresh metadata, which S3 announces as a new ObjectCreated event.

        "Reprocess" uses this: the ordinary pipeline (S3 event -> processor) runs again on the same bytes, in
        order (the copy gets a newer sequencer), with no second way into the processor.
        """
        head = self.head(key)
        try:
            self.client.copy_object(
                Bucket=self.bucket,
                Key=key,
                CopySource={"Bucket": self.bucket, "Key": key},
                CopySourceIfMatch=head.etag,
                MetadataDirective="REPLACE",
                ContentType=head.content_type or "application/octet-stream",
                Metadata={"touched-at": records.now_iso()},
            )
        except ClientError as error:
            if _error_code(error) in {"404", "NoSuchKey", "NotFound", "PreconditionFailed", "412"}:
                raise ObjectMissing(f"s3://{self.bucket}/{key} is gone or was replaced") from error
            raise

    def exists(self, key: str) -> bool:
        try:
            self.head(key)
        except ObjectMissing:
            return False
        return True

    def presigned_post(
        self,
        key: str,
        *,
        max_bytes: int,
        expires_in: int,
        content_type: str | None = None,
        content_type_prefix: str = "image/",
        redirect_url: str | None = None,
    ) -> dict[str, Any]:
        """A browser form's target (``url`` and ``fields``) with a policy that fixes key, size and type.

        The policy allows exactly ``key`` and 1..``max_bytes`` bytes. With ``content_type`` the type is fixed
        to it (and set in the fields); without it the form must send a ``Content-Type`` starting with
        ``content_type_prefix``. The processor checks the content itself either way.
        """
        fields: dict[str, str] = {}
        conditions: list[Any] = [["content-length-range", 1, max_bytes]]
        if content_type:
            fields["Content-Type"] = content_type
            conditions.append({"Content-Type": content_type})
        else:
            conditions.append(["starts-with", "$Content-Type", content_type_prefix])
        if redirect_url:
            fields["success_action_redirect"] = redirect_url
            conditions.append({"success_action_redirect": redirect_url})
        else:
            fields["success_action_status"] = "201"
            conditions.append({"success_action_status": "201"})
        return self.client.generate_presigned_post(
            Bucket=self.bucket, Key=key, Fields=fields, Conditions=conditions, ExpiresIn=expires_in
        )

    def presigned_get(self, key: str, *, expires_in: int) -> str:
        """A short-lived URL that lets one browser read one object (an uploader's own unpublished rendition)."""
        return self.client.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=expires_in
        )


class Cdn(Protocol):
    """What the pipeline asks of the CDN: forget these paths now (hide, delete)."""

    def invalidate(self, paths: Iterable[str]) -> str | None: ...


class CloudFrontCdn:
    """CloudFront invalidations for one distribution (the IAM policy allows exactly this distribution)."""

    def __init__(self, client: Any, distribution_id: str) -> None:
        self.client = client
        self.distribution_id = distribution_id

    def invalidate(self, paths: Iterable[str]) -> str | None:
        """Start an invalidation of ``paths`` (wildcards allowed); returns its id. CloudFront finishes it in
        about a minute at every edge location."""
        items = sorted(set(paths))
        if not items:
            return None
        response = self.client.create_invalidation(
            DistributionId=self.distribution_id,
            InvalidationBatch={
                "Paths": {"Quantity": len(items), "Items": items},
                # Unique per call: CloudFront treats a repeated reference as the same request.
                "CallerReference": f"{records.now_iso()}-{secrets.token_hex(4)}",
            },
        )
        return str(response["Invalidation"]["Id"])


class NoCdnCache:
    """The local CDN stand-in caches nothing (it reads S3 on every request): a removed file is gone at once."""

    def invalidate(self, paths: Iterable[str]) -> str | None:
        return None


def create_table(client: Any, table: str) -> None:
    """Create the table from ``records.TABLE_SCHEMA`` with TTL on (the local stack and tests use this)."""
    client.create_table(TableName=table, **records.TABLE_SCHEMA)
    client.get_waiter("table_exists").wait(TableName=table)
    client.update_time_to_live(
        TableName=table, TimeToLiveSpecification={"Enabled": True, "AttributeName": records.TTL_ATTRIBUTE}
    )


def _index_key(index: str, item: dict[str, Any]) -> dict[str, Any]:
    """The ExclusiveStartKey that resumes a Query on ``index`` right after ``item`` (DynamoDB-typed values)."""
    return {name: item[name] for name in _INDEX_KEY_ATTRIBUTES[index]}


_INDEX_PARTITION: Final = {
    index["IndexName"]: index["KeySchema"][0]["AttributeName"]
    for index in records.TABLE_SCHEMA["GlobalSecondaryIndexes"]
}
# A position in an index: the table's key and the index's own (what LastEvaluatedKey holds).
_INDEX_KEY_ATTRIBUTES: Final = {
    index["IndexName"]: tuple(
        dict.fromkeys(key["AttributeName"] for key in (*records.TABLE_SCHEMA["KeySchema"], *index["KeySchema"]))
    )
    for index in records.TABLE_SCHEMA["GlobalSecondaryIndexes"]
}


def _serialize(values: dict[str, Any]) -> dict[str, Any]:
    return {name: _serializer.serialize(value) for name, value in values.items()}


def _deserialize(item: dict[str, Any]) -> dict[str, Any]:
    return {name: _deserializer.deserialize(value) for name, value in item.items()}


def _error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _is_condition_failure(error: ClientError) -> bool:
    if _error_code(error) == "ConditionalCheckFailedException":
        return True
    reasons = error.response.get("CancellationReasons") or []
    return any(reason.get("Code") == "ConditionalCheckFailed" for reason in reasons)
