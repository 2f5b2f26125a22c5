"""What shared caches (CloudFront, ``make run``'s front door) may keep: a page only when it is the same for everyone.

Two pieces. ``@cacheable`` marks a view whose answer depends on nothing but its URL (the gallery, a detail page, the
error pages, the read API): for an anonymous visitor it says ``public, max-age=PAGE_MAX_AGE,
stale-while-revalidate=PAGE_STALE_WHILE_REVALIDATE``, unless the view set a Cache-Control of its own (the read API
sends exactly what the Lambda sends). ``CacheControlMiddleware`` then looks at what actually happened while the
answer was made and replaces any Cache-Control with ``private, no-store`` when the answer turned out personal (it
sets a cookie, used the CSRF token, read the session of a request that has one, or a user is logged in), and gives
the same to every answer no view declared cacheable. A view cannot forget: private is the default, public is opt-in
and checked.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Final, ParamSpec, TypeVar

from django.conf import settings
from django.http import HttpRequest, HttpResponseBase
from django.utils.cache import patch_cache_control
from django.utils.functional import empty

PRIVATE: Final = "private, no-store"

Params = ParamSpec("Params")
Response = TypeVar("Response", bound=HttpResponseBase)


def cacheable(view: Callable[Params, Response]) -> Callable[Params, Response]:
    """Shared caches may keep this view's answers briefly (server errors excepted); see the module's docstring."""

    @functools.wraps(view)
    def wrapped(*args: Params.args, **kwargs: Params.kwargs) -> Response:
        response = view(*args, **kwargs)
        if response.has_header("Cache-Control"):
            return response
        if response.status_code >= 500:
            patch_cache_control(response, no_store=True)
        else:
            patch_cache_control(
                response,
                public=True,
                max_age=settings.PAGE_MAX_AGE,
                stale_while_revalidate=settings.PAGE_STALE_WHILE_REVALIDATE,
            )
        return response

    return wrapped


class CacheControlMiddleware:
    """``private, no-store`` for every personal answer and every answer no view declared cacheable.

    It sits outside the session, CSRF, auth and messages middleware (second in MIDDLEWARE), so it sees the cookies
    they set and the session they read.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        response = self.get_response(request)
        if is_personal(request, response) or not response.has_header("Cache-Control"):
            make_private(response)
        return response


def is_personal(request: HttpRequest, response: HttpResponseBase) -> bool:
    """True if the answer depends on who asked, so that no shared cache may hand it to anyone else.

    * It sets a cookie: a cached Set-Cookie would give everyone the same session, CSRF token or messages.
    * It used the CSRF token (a form, the upload page's meta tag): Django then renews the cookie, so the first rule
      catches it too; the flag is checked as well, in case an inner middleware kept the cookie back.
    * It read the session of a request that carries a session cookie: the pending uploads, the messages, or just
      ``user`` in a template (the header's "Log out alice"). Every page reads the session for that header, so
      SessionMiddleware marks every page ``Vary: Cookie``; a request without a session cookie gets the anonymous
      page, the same for everyone who has none, which is what ``Vary: Cookie`` lets a cache share.
    * A user is logged in (however authenticated).
    """
    if response.cookies or request.META.get("CSRF_COOKIE_NEEDS_UPDATE"):
        return True
    session = getattr(request, "session", None)
    if session is not None and session.accessed and settings.SESSION_COOKIE_NAME in request.COOKIES:
        return True
    user = getattr(request, "user", None)
    # request.user is lazy; looking at an unevaluated one would read the session just to find out.
    evaluated = user is not None and getattr(user, "_wrapped", None) is not empty
    return bool(evaluated and user.is_authenticated)


def make_private(response: HttpResponseBase) -> None:
    response["Cache-Control"] = PRIVATE
    if response.has_header("Expires"):
        del response["Expires"]
