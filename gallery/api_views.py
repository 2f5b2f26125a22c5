"""The read API under Django (``/api/images``, ``/api/images/<id>``): the Lambda's core, so the same bytes."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from gallery import services
from gallery.caching import cacheable
from pipeline import api

logger = logging.getLogger(__name__)


def _read_api(view: Callable[..., dict]) -> Callable[..., HttpResponse]:
    """GET only, like the Lambda; ApiErrors and surprises become the same JSON errors it sends."""

    @csrf_exempt  # nothing here writes: other methods get the API's JSON 405, not Django's CSRF page
    @functools.wraps(view)
    def wrapped(request: HttpRequest, **kwargs: str) -> HttpResponse:
        if request.method != "GET":
            return _send(api.respond(api.method_not_allowed(request.method or "")))
        try:
            document = view(request, **kwargs)
        except api.ApiError as error:
            return _send(api.respond(error))
        except Exception:
            logger.exception("unhandled error serving %s %s", request.method, request.path)
            return _send(api.respond(api.internal_error()))
        return _send(api.respond(document, if_none_match=request.headers.get("If-None-Match")))

    return wrapped


@cacheable
@_read_api
def image_list(request: HttpRequest) -> dict:
    return api.list_documents(
        services.image_store(),
        services.pipeline_settings(),
        limit=_parameter(request, "limit"),
        cursor=_parameter(request, "cursor"),
        tag=_parameter(request, "tag"),
        sort=_parameter(request, "sort"),
    )


@cacheable
@_read_api
def image_detail(request: HttpRequest, image_id: str) -> dict:
    return api.get_document(services.image_store(), services.pipeline_settings(), image_id)


def _parameter(request: HttpRequest, name: str) -> str | None:
    """A query parameter as API Gateway hands it to the Lambda: repeated values joined with commas."""
    values = request.GET.getlist(name)
    return ",".join(values) if values else None


@cacheable
def no_route(request: HttpRequest, path: str = "") -> HttpResponse:
    """Unknown paths under the API answer in JSON, as the Lambda does."""
    return _send(api.respond(api.route_not_found(request.path)))


def _send(answer: api.HttpResponse) -> HttpResponse:
    response = HttpResponse(answer.body, status=answer.status, content_type=None)
    del response["Content-Type"]  # set below only if the answer has one (a 304 has no body)
    for name, value in answer.headers.items():
        response[name] = value
    return response
