"""Configuration read once from the environment into frozen dataclasses that are passed down."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

# The one place where defaults live. Local defaults are safe for `make run` and tests;
# production overrides them through the environment (Lambda configuration, Zappa settings).
DEFAULT_BUCKET = "image-pipeline-local"
DEFAULT_TABLE = "ImageMetadata"
DEFAULT_REGION = "us-east-1"
DEFAULT_CDN_URL = "http://127.0.0.1:8001"  # the CDN stand-in `make run` starts
DEFAULT_SECRET = "local-only-pipeline-secret-change-me"  # noqa: S105 (local default; production sets PIPELINE_SECRET)
# Browser origins allowed to call the read API cross-origin (the local gallery; production sets API_CORS_ORIGINS).
DEFAULT_CORS_ORIGINS = ("http://127.0.0.1:8000", "http://localhost:8000")
# Shorter secrets are refused where a deployment starts (Django in production, the Lambdas on AWS).
MIN_SECRET_LENGTH = 32
# A trash that keeps images longer than this is an archive, not a trash.
MAX_TRASH_DAYS = 3650


class ConfigError(ValueError):
    """A setting is missing or malformed; the message names the variable."""


@dataclass(frozen=True)
class ImagingSettings:
    """What the imaging code needs: sizes, qualities and the limits checked before work is spent."""

    # The uncropped ladder (detail page, API): widths in px, each at most 1.5x the one below it, so a browser
    # picking the smallest rung that covers an image never gets more than 1.5x the pixels it fills
    # (docs/imaging.md says how these were chosen). No rung is upscaled; a rung past the source becomes its width.
    ladder_widths: tuple[int, ...] = (320, 480, 640, 960, 1280, 1920)
    # Gallery tiles: crops of TILE_ASPECT (the tile's CSS aspect-ratio) at these widths. The widest tile the
    # gallery lays out is 272.5 CSS px, 818 device px at 3x: 840 covers every screen.
    tile_widths: tuple[int, ...] = (256, 384, 560, 840)
    tile_aspect: tuple[int, int] = (4, 3)
    # The API's `thumbnail` is the widest tile at most this wide; no rendition's long side exceeds OPTIMIZED_SIZE.
    thumb_size: int = 400
    optimized_size: int = 1920
    jpeg_quality: int = 82
    # The quality at which WebP's luma SSIM reaches JPEG q82's on most rungs (docs/performance.md): at equal
    # measured quality, bytes decide where WebP is offered.
    webp_quality: int = 82
    # libwebp effort 0-6. 1 is the measured sweet spot (docs/performance.md): half the CPU of 2's analysis for
    # ~3 % more bytes and better PSNR, which keeps the full rendition set >= 2x naive Pillow and libvips.
    webp_method: int = 1
    # WebP is made only for rungs at most this wide: measured at equal SSIM it saves 4-12 % up to 1280 px and
    # nothing at 1920 (docs/performance.md), where its encode is the ladder's most expensive.
    webp_max_width: int = 1280
    # A third format for every rung, off by default: docs/performance.md has the measurement that decided it.
    avif: bool = False
    avif_quality: int = 60
    avif_speed: int = 8  # libavif 0 (slowest, smallest) - 10
    max_bytes: int = 50 * 1024 * 1024
    max_pixels: int = 100_000_000
    max_frames: int = 1000
    # Animated GIF/WebP: kept as an animated WebP (plus the still renditions of its first frame as the poster)
    # while frames x width x height of every animated output together stay within this budget; else the still.
    animation: bool = True
    max_animation_pixels: int = 60_000_000
    # KEEP_LOCATION: keep the GPS position of the upload's EXIF in the record (staff only). Off: it is never read.
    keep_location: bool = False
    # NEAR_DUPLICATES: compute a perceptual hash of each upload and flag near-duplicates (docs/duplicates.md).
    near_duplicates: bool = False


@dataclass(frozen=True)
class Settings:
    """Everything the core, the Lambdas and Django share."""

    region: str = DEFAULT_REGION
    bucket: str = DEFAULT_BUCKET
    table: str = DEFAULT_TABLE
    cdn_url: str = DEFAULT_CDN_URL
    # The CloudFront distribution in front of public/: hide and delete invalidate an image's paths in it.
    # Empty locally, where the CDN stand-in reads S3 on every request and so forgets a file as soon as it goes.
    cdn_distribution_id: str = ""
    # Signs API cursors and derives ids for uploads that did not come through Django.
    secret: str = DEFAULT_SECRET
    # Records of uploads that never arrive expire after this many seconds (DynamoDB TTL).
    upload_ttl_seconds: int = 24 * 3600
    # Presigned POST policies expire after this many seconds.
    upload_expiry_seconds: int = 600
    # An image deleted in the admin stays in the trash, restorable, this many days; then the purge removes it.
    # The date is fixed in the record when it is trashed (pipeline.trash), so only who trashes reads this.
    trash_retention_days: int = 30
    imaging: ImagingSettings = field(default_factory=ImagingSettings)
    # Origins the read API answers CORS requests from; empty means no CORS headers at all.
    cors_origins: tuple[str, ...] = DEFAULT_CORS_ORIGINS
    # The upload queue's maxReceiveCount: on this delivery of a message the processor gives up on a transient
    # error, marks the record failed and lets the message go to the dead-letter queue.
    max_receive_count: int = 5
    # The values of X-Origin-Verify the app and the read API accept (pipeline.origin): the origin secret's current
    # and previous ones. Empty (make run, the tests) accepts every request.
    origin_secrets: tuple[str, ...] = ()
    # The publish gate: "off" publishes every upload once ready; "required" holds an upload by someone without the
    # gallery.publish_image permission as "pending review" until staff approve it.
    publish_review: str = "off"
    # REQUIRE_ALT_TEXT: an image is published only once it has alt text (staff cannot approve one without).
    require_alt_text: bool = False
    # DUPLICATES: an upload whose bytes are already in the gallery is "process"ed (and flagged) or "skip"ped
    # (failed with a link to the image it repeats, no renditions made).
    duplicates: str = "process"

    def require_deployable(self, environ: Mapping[str, str] | None = None) -> None:
        """ConfigError if a Lambda on AWS would run with the published PIPELINE_SECRET (or one too short to keep).

        Anyone who read this repository could then forge API cursors and compute the ids of ``aws s3 cp``
        uploads. Only a process the Lambda runtime started is checked (it sets AWS_LAMBDA_FUNCTION_NAME), and not
        when its AWS is a local emulator (AWS_ENDPOINT_URL, as `make run` sets it): the CLI, the tests and the
        local stack keep the local default.
        """
        env = os.environ if environ is None else environ
        if not env.get("AWS_LAMBDA_FUNCTION_NAME") or env.get("AWS_ENDPOINT_URL", "").strip():
            return
        if self.secret == DEFAULT_SECRET or len(self.secret) < MIN_SECRET_LENGTH:
            raise ConfigError(
                "Refusing to start: PIPELINE_SECRET is unset, the public local default or shorter than "
                f"{MIN_SECRET_LENGTH} characters. Set it to the stack's generated secret (infra/pipeline.yaml "
                "resolves it from Secrets Manager), or set AWS_ENDPOINT_URL when running against a local emulator."
            )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        imaging = ImagingSettings(
            ladder_widths=_widths(env, "LADDER_WIDTHS", ImagingSettings.ladder_widths),
            tile_widths=_widths(env, "TILE_WIDTHS", ImagingSettings.tile_widths),
            thumb_size=_int(env, "THUMB_SIZE", ImagingSettings.thumb_size),
            optimized_size=_int(env, "OPTIMIZED_SIZE", ImagingSettings.optimized_size),
            jpeg_quality=_int(env, "JPEG_QUALITY", ImagingSettings.jpeg_quality, 1, 100),
            webp_quality=_int(env, "WEBP_QUALITY", ImagingSettings.webp_quality, 1, 100),
            webp_method=_int(env, "WEBP_METHOD", ImagingSettings.webp_method, 0, 6),
            webp_max_width=_int(env, "WEBP_MAX_WIDTH", ImagingSettings.webp_max_width, 0),
            avif=flag(env, "AVIF_RENDITIONS", default=ImagingSettings.avif),
            avif_quality=_int(env, "AVIF_QUALITY", ImagingSettings.avif_quality, 1, 100),
            avif_speed=_int(env, "AVIF_SPEED", ImagingSettings.avif_speed, 0, 10),
            max_bytes=_int(env, "MAX_UPLOAD_BYTES", ImagingSettings.max_bytes),
            max_pixels=_int(env, "MAX_PIXELS", ImagingSettings.max_pixels),
            max_frames=_int(env, "MAX_FRAMES", ImagingSettings.max_frames),
            animation=flag(env, "ANIMATION", default=ImagingSettings.animation),
            max_animation_pixels=_int(env, "MAX_ANIMATION_PIXELS", ImagingSettings.max_animation_pixels),
            keep_location=flag(env, "KEEP_LOCATION", default=ImagingSettings.keep_location),
            near_duplicates=flag(env, "NEAR_DUPLICATES", default=ImagingSettings.near_duplicates),
        )
        return cls(
            region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or DEFAULT_REGION,
            bucket=env.get("IMAGE_BUCKET", DEFAULT_BUCKET),
            table=env.get("IMAGE_TABLE", DEFAULT_TABLE),
            cdn_url=env.get("CDN_URL", DEFAULT_CDN_URL).rstrip("/"),
            cdn_distribution_id=env.get("CDN_DISTRIBUTION_ID", "").strip(),
            secret=env.get("PIPELINE_SECRET", DEFAULT_SECRET),
            upload_ttl_seconds=_int(env, "UPLOAD_TTL_SECONDS", cls.upload_ttl_seconds),
            upload_expiry_seconds=_int(env, "UPLOAD_EXPIRY_SECONDS", cls.upload_expiry_seconds),
            trash_retention_days=_int(env, "TRASH_RETENTION_DAYS", cls.trash_retention_days, 1, MAX_TRASH_DAYS),
            imaging=imaging,
            cors_origins=_origins(env, "API_CORS_ORIGINS", DEFAULT_CORS_ORIGINS),
            max_receive_count=_int(env, "MAX_RECEIVE_COUNT", cls.max_receive_count),
            origin_secrets=_origin_secrets(env, "ORIGIN_VERIFY_SECRET"),
            publish_review=_choice(env, "PUBLISH_REVIEW", cls.publish_review, ("off", "required")),
            require_alt_text=flag(env, "REQUIRE_ALT_TEXT", default=cls.require_alt_text),
            duplicates=_choice(env, "DUPLICATES", cls.duplicates, ("process", "skip")),
        )


def flag(env: Mapping[str, str], name: str, *, default: bool) -> bool:
    """A yes/no variable: 1/0, true/false, yes/no, on/off (any case); unset or empty means ``default``."""
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in {"1", "true", "yes", "on"}:
        return True
    if raw in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(f"{name} must be one of 1/0, true/false, yes/no, on/off; got {raw!r}")


def _choice(env: Mapping[str, str], name: str, default: str, choices: tuple[str, ...]) -> str:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}; got {raw!r}")
    return raw


def _int(env: Mapping[str, str], name: str, default: int, low: int = 1, high: int | None = None) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None
    if value < low or (high is not None and value > high):
        bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise ConfigError(f"{name} must be {bounds}, got {value}")
    return value


def _widths(env: Mapping[str, str], name: str, default: tuple[int, ...]) -> tuple[int, ...]:
    """A comma-separated list of pixel widths ("320, 640,1280"), sorted and without repeats."""
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        widths = sorted({int(part) for part in raw.split(",") if part.strip()})
    except ValueError:
        raise ConfigError(f"{name} must list whole numbers of pixels like 320,640,1280; got {raw!r}") from None
    if not widths or widths[0] < 16 or widths[-1] > 8192:
        raise ConfigError(f"{name} must list widths from 16 to 8192 pixels; got {raw!r}")
    return tuple(widths)


def _origins(env: Mapping[str, str], name: str, default: tuple[str, ...]) -> tuple[str, ...]:
    """A comma-separated list of origins ("https://a.example, https://b.example"); set but empty means none."""
    raw = env.get(name)
    if raw is None:
        return default
    origins = tuple(part.strip().rstrip("/") for part in raw.split(",") if part.strip())
    for origin in origins:
        if origin != "*" and not origin.startswith(("https://", "http://")):
            raise ConfigError(f"{name} must list origins like https://gallery.example.com, got {origin!r}")
    return origins


def _origin_secrets(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    """The origin secret as Secrets Manager holds it, {"current": ..., "previous": ...}, or one plain value."""
    raw = env.get(name, "").strip()
    if not raw:
        return ()
    if not raw.startswith("{"):
        return (raw,)
    try:
        document = json.loads(raw)
    except ValueError:
        raise ConfigError(f'{name} must be JSON like {{"current": "...", "previous": "..."}} or one value') from None
    values = tuple(str(document.get(key) or "") for key in ("current", "previous") if isinstance(document, dict))
    if not values or not values[0]:
        raise ConfigError(f'{name} has no "current" value')
    return tuple(value for value in values if value)
