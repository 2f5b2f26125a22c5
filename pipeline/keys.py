"""The S3 key layout (raw/, public/thumbs/, public/optimized/) and image ids: written once, imported everywhere.

An image id is 26 characters of lowercase base32 (130 bits): not guessable and free of the file name.
Two upload paths meet the same record through the raw key:

* Django chooses the id and hands out a policy for ``raw/<id>/<file name>``; the processor reads the id
  back from the key.
* A plain ``aws s3 cp photo.jpg s3://<bucket>/raw/photo.jpg`` has no record yet; the processor derives the
  id from the key with a keyed hash (HMAC with the pipeline secret), so duplicate events and re-uploads of
  the same key land on the same record, and nobody without the secret can compute the id from the name.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import unicodedata
from typing import Final, Literal

RAW_PREFIX: Final = "raw/"
PUBLIC_PREFIX: Final = "public/"
# The CDN serves the bucket's public/ prefix at its root: public/thumbs/x.jpg -> https://cdn/thumbs/x.jpg
RENDITION_DIRS: Final = {"thumb": "thumbs", "optimized": "optimized"}
RENDITION_EXTENSIONS: Final = {"jpeg": "jpg", "webp": "webp"}

RenditionName = Literal["thumb", "optimized"]
RenditionFormat = Literal["jpeg", "webp"]

ID_LENGTH: Final = 26
ID_PATTERN: Final = re.compile(r"[a-z2-7]{26}")
_RAW_WITH_ID = re.compile(rf"{re.escape(RAW_PREFIX)}(?P<id>[a-z2-7]{{{ID_LENGTH}}})/[^/]+")
_UNSAFE_NAME_CHARS = re.compile(r"[^A-Za-z0-9._-]+")
MAX_FILE_NAME = 120


def new_image_id() -> str:
    """A fresh random id."""
    return _encode(secrets.token_bytes(17))


def is_image_id(candidate: str) -> bool:
    return ID_PATTERN.fullmatch(candidate) is not None


def image_id_for_raw_key(raw_key: str, secret: str) -> str:
    """The id of the image stored at ``raw_key``: the one in the key, or one derived from the key."""
    match = _RAW_WITH_ID.fullmatch(raw_key)
    if match:
        return match.group("id")
    digest = hmac.new(secret.encode(), b"image-id\0" + raw_key.encode(), hashlib.sha256).digest()
    return _encode(digest[:17])


def is_raw_key(key: str) -> bool:
    return key.startswith(RAW_PREFIX) and len(key) > len(RAW_PREFIX) and not key.endswith("/")


def raw_key_for_upload(image_id: str, file_name: str) -> str:
    """Where a browser upload goes: ``raw/<id>/<safe file name>``."""
    if not is_image_id(image_id):
        raise ValueError(f"not an image id: {image_id!r}")
    return f"{RAW_PREFIX}{image_id}/{safe_file_name(file_name)}"


def file_name_from_raw_key(raw_key: str) -> str:
    return raw_key.rsplit("/", 1)[-1]


def safe_file_name(file_name: str) -> str:
    """A file name reduced to characters that are safe in a key, a header and a URL."""
    base = file_name.replace("\\", "/").rsplit("/", 1)[-1]
    ascii_name = unicodedata.normalize("NFKD", base).encode("ascii", "ignore").decode()
    cleaned = _UNSAFE_NAME_CHARS.sub("-", ascii_name).strip(".-")
    if len(cleaned) > MAX_FILE_NAME:
        stem, dot, ext = cleaned.rpartition(".")
        cleaned = (
            (stem[: MAX_FILE_NAME - len(ext) - 1] + dot + ext) if dot and len(ext) <= 10 else cleaned[:MAX_FILE_NAME]
        )
    return cleaned or "upload"


def rendition_path(image_id: str, name: RenditionName, fmt: RenditionFormat) -> str:
    """The path below the CDN root (and below ``public/`` in the bucket): ``thumbs/<id>.webp``."""
    return f"{RENDITION_DIRS[name]}/{image_id}.{RENDITION_EXTENSIONS[fmt]}"


def rendition_key(image_id: str, name: RenditionName, fmt: RenditionFormat) -> str:
    """The S3 key of a rendition: ``public/thumbs/<id>.webp``."""
    return PUBLIC_PREFIX + rendition_path(image_id, name, fmt)


def all_rendition_keys(image_id: str) -> list[str]:
    return [rendition_key(image_id, name, fmt) for name in RENDITION_DIRS for fmt in RENDITION_EXTENSIONS]


def cdn_path(key: str) -> str:
    """The CDN path of a public key (``public/thumbs/x.jpg`` -> ``thumbs/x.jpg``)."""
    if not key.startswith(PUBLIC_PREFIX):
        raise ValueError(f"not a public key: {key!r}")
    return key[len(PUBLIC_PREFIX) :]


def _encode(raw: bytes) -> str:
    return base64.b32encode(raw).decode().rstrip("=").lower()[:ID_LENGTH]
