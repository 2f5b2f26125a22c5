"""The origin header: the secret CloudFront adds to every request it sends the app and the read API.

Both origins refuse a request without it, so the distribution (its cache, its WAF, its headers) is the only way in.
They accept either of two values, ``current`` and ``previous``, so that a rotation (``python -m infra.deploy
rotate-origin-secret``) never refuses CloudFront while the new value propagates; docs/deploy.md has the runbook.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable
from typing import Final

HEADER: Final = "X-Origin-Verify"
REFUSED: Final = "Direct requests to this origin are refused: use the site's own address."


def is_verified(sent: str | None, accepted: Iterable[str]) -> bool:
    """True if ``sent`` is one of the ``accepted`` values, or if none is configured (make run, the tests)."""
    values = [value for value in accepted if value]
    if not values:
        return True
    offered = (sent or "").encode()
    # Every value is compared, in constant time, whatever matched first.
    return any([hmac.compare_digest(offered, value.encode()) for value in values])  # noqa: C419
