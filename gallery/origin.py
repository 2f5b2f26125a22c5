"""Refuse requests that did not come through the site's CloudFront distribution (pipeline.origin).

Active when ORIGIN_VERIFY_SECRET is set (make deploy sets it); locally and in the tests nothing is refused. First in
MIDDLEWARE, so a refused request costs no session, database or template work. It is also what makes
USE_X_FORWARDED_HOST safe: only CloudFront, which sets X-Forwarded-Host itself, can reach Django.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseBase

from pipeline import origin


class OriginVerifyMiddleware:
    """403 with a short sentence for any request without a current or previous origin secret."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        if not origin.is_verified(request.headers.get(origin.HEADER), settings.PIPELINE.origin_secrets):
            refused = HttpResponse(origin.REFUSED, status=403, content_type="text/plain; charset=utf-8")
            refused["Cache-Control"] = "private, no-store"
            return refused
        return self.get_response(request)
