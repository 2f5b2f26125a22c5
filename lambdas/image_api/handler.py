"""API Gateway HTTP API (payload 2.0) -> pipeline.api: ``GET /images`` and ``GET /images/{id}``.

Route ``ANY /images`` and ``ANY /images/{id}`` (or ``$default``) here on the ``$default`` stage: other methods
get a JSON 405 from this function, unknown paths a JSON 404, and CORS preflights are answered by Powertools.
"""

from __future__ import annotations

import re
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, CORSConfig, Response
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from pipeline import api, origin
from pipeline.config import Settings
from pipeline.store import Aws

settings = Settings.from_env()
settings.require_deployable()  # never on AWS with the published PIPELINE_SECRET
aws = Aws(settings)
logger = Logger()
metrics = Metrics()

# Any other method on these paths is answered with 405 rather than "no such route".
API_PATHS = re.compile(r"/images(/[^/]+)?")


def _cors(origins: tuple[str, ...]) -> CORSConfig | None:
    if not origins:
        return None
    first, *extra = origins
    return CORSConfig(
        allow_origin=first,
        extra_origins=extra,
        allow_headers=["If-None-Match"],
        expose_headers=["ETag"],
        max_age=600,
    )


app = APIGatewayHttpResolver(cors=_cors(settings.cors_origins))


@app.get("/images")
def list_images() -> Response:
    query = app.current_event.query_string_parameters or {}
    page = api.list_documents(
        aws.image_store(),
        settings,
        limit=query.get("limit"),
        cursor=query.get("cursor"),
        tag=query.get("tag"),
        sort=query.get("sort"),
    )
    return _send(page)


@app.get("/images/<image_id>")
def get_image(image_id: str) -> Response:
    return _send(api.get_document(aws.image_store(), settings, image_id))


@app.exception_handler(api.ApiError)
def api_error(error: api.ApiError) -> Response:
    return _to_response(api.respond(error))


@app.not_found
def no_route(_: NotFoundError) -> Response:
    # Powertools answers CORS preflights before this; everything else that matched no GET route lands here.
    path = app.current_event.path
    if API_PATHS.fullmatch(path):
        return _to_response(api.respond(api.method_not_allowed(app.current_event.http_method)))
    return _to_response(api.respond(api.route_not_found(path)))


@app.exception_handler(Exception)
def unexpected_error(error: Exception) -> Response:
    # The trace goes to the log (with the request id); the client gets a generic message.
    logger.exception("unhandled error serving %s %s", app.current_event.http_method, app.current_event.path)
    return _to_response(api.respond(api.internal_error()))


def _send(document: dict[str, Any]) -> Response:
    return _to_response(api.respond(document, if_none_match=app.current_event.headers.get("if-none-match")))


def _refused() -> dict[str, Any]:
    answer = api.respond(api.ApiError(403, "forbidden", origin.REFUSED))
    return {
        "statusCode": answer.status,
        "headers": dict(answer.headers),
        "body": answer.body.decode(),
        "isBase64Encoded": False,
    }


def _to_response(answer: api.HttpResponse) -> Response:
    headers = dict(answer.headers)
    if settings.cors_origins:
        # The CORS headers depend on the request's Origin: shared caches must key on it.
        headers["Vary"] = "Origin"
    return Response(status_code=answer.status, content_type=None, body=answer.body.decode(), headers=headers)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # Only CloudFront, which adds the origin secret, may call the API (pipeline.origin); API Gateway lower-cases
    # header names in payload 2.0.
    sent = (event.get("headers") or {}).get(origin.HEADER.lower())
    response = app.resolve(event, context) if origin.is_verified(sent, settings.origin_secrets) else _refused()
    # Responses2xx/4xx/5xx: what the alarms and the dashboard count (a 5xx here is a bug or an AWS outage).
    metrics.add_metric(name=f"Responses{response['statusCode'] // 100}xx", unit=MetricUnit.Count, value=1)
    return response
