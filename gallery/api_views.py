"""The read API under Django (``/api/images``, ``/api/images/<id>``): the Lambda's core, so the same bytes."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from pipeline import api
from pipeline.config import Settings
from pipeline.store import Aws, ImageStore

logger = logging.getLogger(__name__)


def pipeline_settings() -> Settings:
    """The pipeline Settings Django was configured with (``settings.PIPELINE``), else the environment's."""
    return getattr(settings, "PIPELINE", None) or _settings_from_env()


@functools.cache
def _settings_from_env() -> Settings:
    return Settings.from_env()


@functools.cache
def _aws(pipeline: Settings) -> Aws:
    return Aws(pipeline)


def image_store() -> ImageStore:
    return _aws(pipeline_settings()).image_store()


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


@_read_api
def image_list(request: HttpRequest) -> dict:
    query = request.GET
    return api.list_documents(
        image_store(), pipeline_settings(), limit=query.get("limit"), cursor=query.get("cursor"), tag=query.get("tag")
    )


@_read_api
def image_detail(request: HttpRequest, image_id: str) -> dict:
    return api.get_document(image_store(), pipeline_settings(), image_id)


def no_route(request: HttpRequest, path: str = "") -> HttpResponse:
    """Unknown paths under the API answer in JSON, as the Lambda does."""
    return _send(api.respond(api.route_not_found(request.path)))


def _send(answer: api.HttpResponse) -> HttpResponse:
    response = HttpResponse(answer.body, status=answer.status, content_type=None)
    del response["Content-Type"]  # set below only if the answer has one (a 304 has no body)
    for name, value in answer.headers.items():
        response[name] = value
    return response
