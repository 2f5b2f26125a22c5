"""The current person's uploads still on their way, remembered in the session (not in DynamoDB).

The gallery shows them as "processing" tiles that poll the API, without a second DynamoDB query per page:
an upload is remembered once S3 accepted it, and forgotten when it appears in the listing or grows old.
"""

from __future__ import annotations

import time
from typing import Final

from django.conf import settings
from django.http import HttpRequest

SESSION_KEY: Final = "gallery.pending_uploads"
MAX_REMEMBERED: Final = 50


def remember(request: HttpRequest, image_id: str) -> None:
    pending = dict(request.session.get(SESSION_KEY, {}))
    pending[image_id] = int(time.time())
    newest = sorted(pending.items(), key=lambda item: item[1])[-MAX_REMEMBERED:]
    request.session[SESSION_KEY] = dict(newest)


def still_pending(request: HttpRequest, listed_ids: set[str]) -> list[str]:
    """Ids to show as processing tiles, newest first; those now listed or past the upload TTL are dropped."""
    pending: dict[str, int] = request.session.get(SESSION_KEY, {})
    if not pending:
        return []
    oldest = time.time() - settings.PIPELINE.upload_ttl_seconds
    kept = {image_id: at for image_id, at in pending.items() if image_id not in listed_ids and at >= oldest}
    if kept != pending:
        request.session[SESSION_KEY] = kept
    return [image_id for image_id, _ in sorted(kept.items(), key=lambda item: item[1], reverse=True)]


def forget(request: HttpRequest, image_id: str) -> None:
    pending = dict(request.session.get(SESSION_KEY, {}))
    if pending.pop(image_id, None) is not None:
        request.session[SESSION_KEY] = pending
