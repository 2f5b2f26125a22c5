"""Per-person upload quotas: uploads and bytes in a rolling 24 hours, and upload forms open at once.

Every upload form (presigned POST) handed out is an ``UploadGrant`` row in Django's database; a new one is
granted only if the person's grants leave room for it under their quota (settings.UPLOAD_QUOTA, or
settings.STAFF_UPLOAD_QUOTA for staff). Over quota, ``QuotaExceeded`` says which limit was hit and when the
person may upload again; the views answer it with a 429 and ``Retry-After``.

What counts:

* **uploads**: grants created in the last 24 hours, used or not (each made a record and a policy);
* **bytes**: their sizes: the size a script declared (its policy allows no more), or for a form without
  JavaScript the largest accepted upload until the upload is confirmed, then the size S3 holds;
* **open forms**: grants neither confirmed (the done page, which the script calls too) nor expired.

Concurrency: ``admit`` checks and records in one transaction that first locks the person's row in the user
table (``select_for_update``). On PostgreSQL a second request of the same person blocks on that lock until the
first commits, then counts the first's grant, so two requests can never both take the last place. SQLite (local)
ignores ``select_for_update`` but its transactions begin with ``BEGIN IMMEDIATE`` (settings), which takes the
database's write lock at once: the same queueing, for the whole database. The record and the policy are made
inside the transaction, so a failure there (UploadUnavailable) leaves no grant behind; a failed commit after them
leaves an ``uploading`` record that expires by TTL and counts against nobody.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from gallery import services
from gallery.models import UploadGrant
from pipeline.store import ObjectMissing

# The quotas' window: uploads and bytes count for 24 hours after the form was handed out.
WINDOW: Final = timedelta(hours=24)

logger = logging.getLogger(__name__)


def now() -> datetime:
    """The quotas' clock (tests patch it)."""
    return timezone.now()


@dataclass(frozen=True)
class Quota:
    """What one person may start: ``uploads`` and ``bytes`` in any WINDOW, and ``open_forms`` at once."""

    uploads: int
    bytes: int
    open_forms: int

    @classmethod
    def for_user(cls, user: Any) -> Quota:
        return cls(**(settings.STAFF_UPLOAD_QUOTA if user.is_staff else settings.UPLOAD_QUOTA))


class QuotaExceeded(Exception):
    """A new upload would pass one of the person's limits; the message says which and when to try again."""

    def __init__(self, message: str, *, retry_at: datetime, moment: datetime) -> None:
        super().__init__(message)
        self.retry_at = retry_at
        # Whole seconds, rounded up (HTTP Retry-After), never 0: "now" is what was just refused.
        self.retry_after = max(1, math.ceil((retry_at - moment).total_seconds()))


def admit(
    user: Any, *, size_bytes: int, start: Callable[[], services.UploadTicket], size_is_limit: bool = False
) -> services.UploadTicket:
    """Start an upload of ``size_bytes`` for ``user`` if their quota has room: ``start()`` makes the record and
    the policy, and the grant is recorded with them, in one transaction. QuotaExceeded otherwise (nothing made).

    ``size_bytes`` is what the policy allows: the declared size, or (``size_is_limit``) the largest accepted
    upload, for a form without JavaScript that cannot know its file.
    """
    with transaction.atomic():
        # The lock that makes check-and-record atomic per person (see the module's docstring).
        get_user_model().objects.select_for_update().filter(pk=user.pk).exists()
        moment = now()
        UploadGrant.objects.filter(user=user, created_at__lte=moment - WINDOW).delete()  # the cheap prune
        grants = list(UploadGrant.objects.filter(user=user).order_by("created_at"))
        refusal = check(Quota.for_user(user), grants, size_bytes=size_bytes, size_is_limit=size_is_limit, moment=moment)
        if refusal is not None:
            raise refusal
        ticket = start()
        UploadGrant.objects.create(
            user=user,
            image_id=ticket.image_id,
            size_bytes=size_bytes,
            created_at=moment,
            expires_at=moment + timedelta(seconds=ticket.expires_in),
        )
    return ticket


def confirm(user: Any, image_id: str, raw_key: str) -> None:
    """The upload of this grant arrived (the done page, which the script calls too): it no longer holds a form
    open, and from now on it counts the size S3 holds (a no-JS form counted the largest upload until now).

    Nothing changes for an unknown or already confirmed grant, or while S3 has no object at ``raw_key`` (a done
    URL called without an upload does not free a place). If S3 cannot say, the grant keeps the size it counted.
    """
    grant = UploadGrant.objects.filter(user=user, image_id=image_id, confirmed_at__isnull=True).first()
    if grant is None:
        return
    try:
        stored: int | None = services.object_store().head(raw_key).size
    except ObjectMissing:
        return
    except Exception:  # botocore's ClientError/connection errors the store passes on
        logger.warning(
            "could not read the size of %s; its upload grant keeps counting %d bytes", raw_key, grant.size_bytes
        )
        stored = None
    grant.confirmed_at = now()
    if stored is not None and stored < grant.size_bytes:
        grant.size_bytes = stored
    grant.save(update_fields=["confirmed_at", "size_bytes"])


# -- the check (pure) ---------------------------------------------------------------------------------------------


def check(
    quota: Quota,
    grants: Sequence[UploadGrant],
    *,
    size_bytes: int,
    moment: datetime,
    size_is_limit: bool = False,
) -> QuotaExceeded | None:
    """Why one more upload of ``size_bytes`` at ``moment`` is refused, or None if it fits.

    ``grants`` are the person's. When several limits are hit, the one that lasts longest is named: its time is
    when the person can really upload again.
    """
    recent = sorted((grant for grant in grants if grant.created_at > moment - WINDOW), key=lambda g: g.created_at)
    refusals = [
        refusal
        for refusal in (
            _uploads_refusal(quota, recent, moment),
            _bytes_refusal(quota, recent, size_bytes, size_is_limit, moment),
            _open_forms_refusal(quota, recent, moment),
        )
        if refusal is not None
    ]
    return max(refusals, key=lambda refusal: refusal.retry_at, default=None)


def _uploads_refusal(quota: Quota, recent: Sequence[UploadGrant], moment: datetime) -> QuotaExceeded | None:
    if len(recent) < quota.uploads:
        return None
    # Room for one more once all but quota.uploads - 1 of them have left the window.
    retry_at = recent[len(recent) - quota.uploads].created_at + WINDOW
    started = _plural(len(recent), "upload")
    allowed = "the most allowed" if len(recent) == quota.uploads else f"more than the {quota.uploads} allowed"
    return QuotaExceeded(
        f"You have started {started} in the last 24 hours, {allowed}. {_again(retry_at, moment)}.",
        retry_at=retry_at,
        moment=moment,
    )


def _bytes_refusal(
    quota: Quota, recent: Sequence[UploadGrant], size_bytes: int, size_is_limit: bool, moment: datetime
) -> QuotaExceeded | None:
    used = sum(grant.size_bytes for grant in recent)
    if used + size_bytes <= quota.bytes:
        return None
    retry_at = moment + WINDOW  # only if the upload is larger than the whole quota, which settings refuse
    left = used
    for grant in recent:
        left -= grant.size_bytes
        if left + size_bytes <= quota.bytes:
            retry_at = grant.created_at + WINDOW
            break
    this_one = (
        f"this form (it counts the largest file, {amount(size_bytes)}, until its upload is done)"
        if size_is_limit
        else f"this file ({amount(size_bytes)})"
    )
    return QuotaExceeded(
        f"Your uploads in the last 24 hours add up to {amount(used)} of the {amount(quota.bytes)} allowed, which "
        f"leaves too little for {this_one}. {_again(retry_at, moment)}.",
        retry_at=retry_at,
        moment=moment,
    )


def _open_forms_refusal(quota: Quota, recent: Sequence[UploadGrant], moment: datetime) -> QuotaExceeded | None:
    open_forms = sorted(
        (grant for grant in recent if grant.confirmed_at is None and grant.expires_at > moment),
        key=lambda grant: grant.expires_at,
    )
    if len(open_forms) < quota.open_forms:
        return None
    retry_at = open_forms[len(open_forms) - quota.open_forms].expires_at
    allowed = "the most allowed" if len(open_forms) == quota.open_forms else f"more than the {quota.open_forms} allowed"
    return QuotaExceeded(
        f"You have {_plural(len(open_forms), 'upload')} under way (forms handed out and not yet used), {allowed} "
        f"at once. {_again(retry_at, moment)}, when the oldest form expires; a finished upload frees its place "
        "sooner.",
        retry_at=retry_at,
        moment=moment,
    )


# -- sentences ----------------------------------------------------------------------------------------------------


def _again(retry_at: datetime, moment: datetime) -> str:
    """ "You can upload again at 14:05 UTC (in about 3 hours)": the clock time rounded up to the minute."""
    at = retry_at.astimezone(UTC)
    if at.second or at.microsecond:
        at = at.replace(second=0, microsecond=0) + timedelta(minutes=1)
    day = " tomorrow" if at.date() > moment.astimezone(UTC).date() else ""
    return f"You can upload again at {at:%H:%M} UTC{day} ({_in_about(retry_at - moment)})"


def _in_about(wait: timedelta) -> str:
    minutes = math.ceil(wait.total_seconds() / 60)
    if minutes <= 1:
        return "in about a minute"
    if minutes < 90:
        return f"in about {minutes} minutes"
    hours = round(minutes / 60)
    return f"in about {hours} hours"


def amount(size: int) -> str:
    """Bytes as people read them: "990.0 MB", "1.5 GB"."""
    if size >= 1024**3:
        return f"{size / 1024**3:.1f} GB"
    return services.megabytes(size)


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"
