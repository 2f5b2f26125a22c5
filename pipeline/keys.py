"""The S3 key layout (raw/, public/thumbs/, public/optimized/, hidden/) and image ids: written once.

Renditions live in a folder per image, and every processing run writes under a version of its own::

    public/optimized/<id>/<version>-<width>.<ext>           the uncropped ladder (detail page, API)
    public/thumbs/<id>/<version>-<width>x<height>.<ext>     the 4:3 tile crops (gallery tiles)
    public/optimized/<id>/<version>-<width>-animated.webp   an animated upload kept as animated WebP

A key is written once and never rewritten (its URL never changes meaning, so CDNs and browsers keep it for a
year); a run that loses a race deletes only the keys of its own version. A hidden image's renditions sit under
``hidden/`` with the same rest of the key, outside what the CDN serves. One folder per image lets a CDN
invalidation name every file of an image with two wildcard paths.

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
# Renditions of hidden images: same layout as public/, never served by the CDN.
HIDDEN_PREFIX: Final = "hidden/"
# The CDN serves the bucket's public/ prefix at its root: public/thumbs/<id>/v-1.jpg -> https://cdn/thumbs/<id>/v-1.jpg
RENDITION_DIRS: Final = {"thumb": "thumbs", "optimized": "optimized"}
# Animations sit in the folder of the still ladder they animate, told apart by a suffix: the two folders stay all
# that listings and CDN invalidations name, each file once.
_FAMILY_FOLDERS: Final = {**RENDITION_DIRS, "animated": RENDITION_DIRS["optimized"]}
_FAMILY_SUFFIXES: Final = {"animated": "-animated"}
RENDITION_EXTENSIONS: Final = {"jpeg": "jpg", "webp": "webp", "avif": "avif"}
VERSION_LENGTH: Final = 10
_VERSION_PATTERN: Final = re.compile(r"[a-z2-7]{10}")

RenditionName = Literal["thumb", "optimized", "animated"]
RenditionFormat = Literal["jpeg", "webp", "avif"]

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


def is_form_upload_key(raw_key: str) -> bool:
    """Whether ``raw_key`` has the form Django hands out (``raw/<id>/<name>``): its record is made before the form."""
    return _RAW_WITH_ID.fullmatch(raw_key) is not None


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


def new_version() -> str:
    """A fresh rendition version: one per processing run, so two runs never write the same key."""
    return _encode(secrets.token_bytes(7))[:VERSION_LENGTH]


def rendition_key(
    image_id: str,
    name: RenditionName,
    fmt: RenditionFormat,
    *,
    version: str,
    width: int,
    height: int,
    hidden: bool = False,
) -> str:
    """The S3 key of one rendition: ``public/optimized/<id>/<v>-1280.webp``, ``public/thumbs/<id>/<v>-560x420.jpg``,
    ``public/optimized/<id>/<v>-480-animated.webp``.

    Tiles (``thumb``) carry their height too: they are crops, so their shape is part of what the file is.
    """
    if not is_image_id(image_id):
        raise ValueError(f"not an image id: {image_id!r}")
    if not _VERSION_PATTERN.fullmatch(version):
        raise ValueError(f"not a rendition version: {version!r}")
    size = f"{width}x{height}" if name == "thumb" else f"{width}"
    prefix = HIDDEN_PREFIX if hidden else PUBLIC_PREFIX
    suffix = _FAMILY_SUFFIXES.get(name, "")
    return f"{prefix}{_FAMILY_FOLDERS[name]}/{image_id}/{version}-{size}{suffix}.{RENDITION_EXTENSIONS[fmt]}"


def image_rendition_prefixes(image_id: str) -> tuple[str, ...]:
    """Every folder that can hold a rendition of this image (public and hidden), for listing what is there."""
    return tuple(
        f"{prefix}{folder}/{image_id}/"
        for prefix in (PUBLIC_PREFIX, HIDDEN_PREFIX)
        for folder in RENDITION_DIRS.values()
    )


def cdn_invalidation_paths(image_id: str) -> tuple[str, ...]:
    """The CDN paths that show this image: every rendition (``/thumbs/<id>/*``, ``/optimized/<id>/*``), and, since
    the one distribution caches the whole site, its page (``/images/<id>/``) and its API document
    (``/api/images/<id>``), so that hide and delete take those off at once too. Listing pages age out (max-age)."""
    renditions = tuple(f"/{folder}/{image_id}/*" for folder in RENDITION_DIRS.values())
    return (*renditions, *cdn_document_paths(image_id))


def cdn_document_paths(image_id: str) -> tuple[str, str]:
    """The image's page and its API document on the CDN: what a metadata edit changes."""
    return (f"/images/{image_id}/", f"/api/images/{image_id}")


def legacy_rendition_keys(image_id: str) -> list[str]:
    """The keys of the flat layout before versioned keys (``public/thumbs/<id>.jpg``): reprocess-all removes them."""
    return [
        f"{PUBLIC_PREFIX}{folder}/{image_id}.{ext}" for folder in RENDITION_DIRS.values() for ext in ("jpg", "webp")
    ]


def is_hidden_key(key: str) -> bool:
    return key.startswith(HIDDEN_PREFIX)


def hidden_key(key: str) -> str:
    """Where a public rendition sits while its image is hidden (``public/x`` -> ``hidden/x``)."""
    if key.startswith(HIDDEN_PREFIX):
        return key
    if not key.startswith(PUBLIC_PREFIX):
        raise ValueError(f"not a rendition key: {key!r}")
    return HIDDEN_PREFIX + key[len(PUBLIC_PREFIX) :]


def public_key(key: str) -> str:
    """The public key of a hidden rendition (``hidden/x`` -> ``public/x``); public keys as they are."""
    if key.startswith(PUBLIC_PREFIX):
        return key
    if not key.startswith(HIDDEN_PREFIX):
        raise ValueError(f"not a rendition key: {key!r}")
    return PUBLIC_PREFIX + key[len(HIDDEN_PREFIX) :]


def cdn_path(key: str) -> str:
    """The CDN path of a public key (``public/thumbs/x.jpg`` -> ``thumbs/x.jpg``)."""
    if not key.startswith(PUBLIC_PREFIX):
        raise ValueError(f"not a public key: {key!r}")
    return key[len(PUBLIC_PREFIX) :]


def _encode(raw: bytes) -> str:
    return base64.b32encode(raw).decode().rstrip("=").lower()[:ID_LENGTH]
