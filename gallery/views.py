"""The gallery's pages: gallery grid, image detail, upload (form, policy, done), logout and error pages.

Views only orchestrate: reads through gallery.selectors (the read API's documents), writes through
gallery.services, errors mapped to statuses here at the edge.
"""

from __future__ import annotations

import json
from typing import Any, Final
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth import logout
from django.contrib.auth.decorators import login_required
from django.core.exceptions import RequestDataTooBig
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from gallery import pending, quotas, selectors, services
from gallery.caching import cacheable
from pipeline import api, records

# Tiles loaded eagerly: the first row on a wide screen (the grid has at most this many columns).
EAGER_TILES: Final = 4
# How many "newer" cursors a gallery URL carries (each is ~200 characters): past that, "Newer" goes home.
MAX_TRAIL: Final = 12
# The largest JSON body /upload/policy/ reads: {name, size, type} with a 255-character name (4 times that many
# bytes in UTF-8, plus escapes) fits several times over.
MAX_POLICY_BODY: Final = 4096
# Files upload.js sends at once (fewer if the person's quota allows fewer open forms).
MAX_PARALLEL_UPLOADS: Final = 4


# -- gallery -------------------------------------------------------------------------------------------------


@cacheable
@require_GET
def index(request: HttpRequest) -> HttpResponse:
    tag = _as_stored(request.GET.get("tag", ""))
    sort = request.GET.get("sort") or None  # ?sort=taken: by date taken; anything unknown is the API's 400
    cursor = request.GET.get("cursor") or None
    trail = request.GET.getlist("prev")[-MAX_TRAIL:]
    try:
        page = selectors.gallery_page(cursor=cursor, tag=tag, sort=sort)
    except api.ApiError as error:
        return _error_page(request, error.status, error.message)
    processing: list[str] = []
    if request.user.is_authenticated and not cursor:
        processing = pending.still_pending(request, {picture.id for picture in page.pictures})
    older_trail = [*trail, cursor] if cursor else []
    context = {
        "tiles": [(picture, position < EAGER_TILES) for position, picture in enumerate(page.pictures)],
        "processing": processing,
        "tag": tag,
        "by_taken": sort == "taken",
        "uploaded_url": _gallery_url(tag, None, []),
        "taken_url": _gallery_url(tag, None, [], sort="taken"),
        "older_url": _gallery_url(tag, page.next_cursor, older_trail, sort=sort) if page.next_cursor else None,
        "newer_url": _gallery_url(tag, trail[-1] if trail else None, trail[:-1], sort=sort) if cursor else None,
        "page_number": len(trail) + (2 if cursor else 1),
    }
    return render(request, "gallery/index.html", context)


def _as_stored(tag: str) -> str | None:
    """A tag as people type it ("Beach ") as it is stored ("beach"); anything else goes to the API to refuse."""
    try:
        normalized = records.normalize_tags(tag)
    except ValueError:
        return tag
    return normalized[0] if len(normalized) == 1 else (tag.strip() or None)


def _gallery_url(tag: str | None, cursor: str | None, trail: list[str], *, sort: str | None = None) -> str:
    params: list[tuple[str, str]] = []
    if tag:
        params.append(("tag", tag))
    if sort and sort != api.DEFAULT_SORT:
        params.append(("sort", sort))
    if cursor:
        params.append(("cursor", cursor))
        params += [("prev", previous) for previous in trail[-MAX_TRAIL:]]
    query = urlencode(params)
    return reverse("gallery:index") + (f"?{query}" if query else "")


@cacheable
@require_GET
def detail(request: HttpRequest, image_id: str) -> HttpResponse:
    try:
        picture = selectors.image_picture(image_id)
    except api.ApiError as error:
        if error.status in (400, 404):
            raise Http404("No image with this id.") from None
        raise
    return render(request, "gallery/detail.html", {"picture": picture, "document": picture.document})


# -- upload --------------------------------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def upload(request: HttpRequest) -> HttpResponse:
    """The upload page. A GET only shows it: a drop zone for upload.js, which asks /upload/policy/ per file, and
    without JavaScript a button that POSTs here. The POST (within the person's quota) creates the record and
    shows the plain HTML form that posts one file straight to S3, which redirects back to /upload/done/."""
    if request.method == "GET":
        return _upload_page(request)
    try:
        ticket = quotas.admit(
            request.user,
            size_bytes=settings.PIPELINE.imaging.max_bytes,
            size_is_limit=True,
            start=lambda: services.start_upload(
                request.user.get_username(),
                services.NO_JS_FILE_NAME,
                can_publish=services.may_publish(request.user),
                redirect_url=request.build_absolute_uri(reverse("gallery:upload-done")),
            ),
        )
    except quotas.QuotaExceeded as over:
        response = _upload_page(request, error=str(over), status=429)
        response["Retry-After"] = str(over.retry_after)
        return response
    except services.UploadUnavailable as unavailable:
        return _upload_page(request, error=str(unavailable), status=503)
    return _upload_page(request, ticket=ticket)


def _upload_page(
    request: HttpRequest, *, ticket: services.UploadTicket | None = None, error: str = "", status: int = 200
) -> HttpResponse:
    limit = settings.PIPELINE.imaging.max_bytes
    quota = quotas.Quota.for_user(request.user)
    context = {
        "ticket": ticket,
        # S3 reads the policy fields in order and the file must come last.
        "fields": list(ticket.fields.items()) if ticket else [],
        "error": error,
        "max_bytes": limit,
        "max_size": services.megabytes(limit),
        "accepted_types": ",".join(services.ACCEPTED_TYPES),
        "expiry_minutes": max(1, settings.PIPELINE.upload_expiry_seconds // 60),
        "quota": quota,
        "quota_bytes": quotas.amount(quota.bytes),
        # upload.js sends at most this many files at once, so a big batch waits instead of passing open_forms.
        "parallel": min(quota.open_forms, MAX_PARALLEL_UPLOADS),
    }
    return render(request, "gallery/upload.html", context, status=status)


@require_POST
def upload_policy(request: HttpRequest) -> JsonResponse:
    """A presigned POST for one file the script is about to send: JSON {name, size, type} in, url + fields out.

    The policy allows no more than the declared size, which is what the person's quota counts (429 when over).
    """
    if not request.user.is_authenticated:
        return JsonResponse({"error": "Log in to upload."}, status=401)
    too_big = JsonResponse(
        {"error": f"The request is too large: send only {{name, size, type}}, at most {MAX_POLICY_BODY} bytes."},
        status=413,
    )
    try:
        declared_length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared_length = 0
    if declared_length > MAX_POLICY_BODY:
        return too_big  # refused before the body is read
    try:
        body = request.body
    except RequestDataTooBig:
        return too_big
    if len(body) > MAX_POLICY_BODY:
        return too_big
    try:
        claim = json.loads(body or b"{}")
        if not isinstance(claim, dict):
            raise ValueError
    except ValueError:
        return JsonResponse({"error": "Send JSON: {name, size, type}."}, status=400)
    name = services.display_file_name(str(claim.get("name") or ""))
    try:
        if not name:
            raise services.UploadRefused("The file has no name.")
        size, content_type = services.check_upload(size=claim.get("size"), content_type=claim.get("type"))
    except services.UploadRefused as refused:
        return JsonResponse({"error": str(refused)}, status=400)
    try:
        ticket = quotas.admit(
            request.user,
            size_bytes=size,
            start=lambda: services.start_upload(
                request.user.get_username(),
                name,
                can_publish=services.may_publish(request.user),
                content_type=content_type,
                max_bytes=size,
            ),
        )
    except quotas.QuotaExceeded as over:
        response = JsonResponse({"error": str(over)}, status=429)
        response["Retry-After"] = str(over.retry_after)
        return response
    except services.UploadUnavailable as unavailable:
        return JsonResponse({"error": str(unavailable)}, status=503)
    return JsonResponse(
        {
            "id": ticket.image_id,
            "key": ticket.key,
            "url": ticket.url,
            "fields": ticket.fields,
            "expires_in": ticket.expires_in,
            "done_url": _done_url(settings.PIPELINE.bucket, ticket.key),
            "status_url": reverse("gallery:my-status", args=[ticket.image_id]),
            "page_url": reverse("gallery:detail", args=[ticket.image_id]),
        }
    )


def _done_url(bucket: str, key: str) -> str:
    """The "received" URL as S3 would redirect to it, for the script to confirm its upload."""
    return reverse("gallery:upload-done") + "?" + urlencode({"bucket": bucket, "key": key})


@login_required
@require_GET
def upload_done(request: HttpRequest) -> HttpResponse:
    """Where S3 sends the browser after a no-JS upload (303 with bucket, key, etag); the script calls it too."""
    wants_json = "application/json" in request.headers.get("Accept", "")
    try:
        record = services.confirm_upload(
            request.user.get_username(), bucket=request.GET.get("bucket", ""), key=request.GET.get("key", "")
        )
    except services.UploadRefused as refused:
        if wants_json:
            return JsonResponse({"error": str(refused)}, status=400)
        return _error_page(request, 400, str(refused))
    except services.ImageNotFound as missing:
        if wants_json:
            return JsonResponse({"error": str(missing)}, status=404)
        raise Http404(str(missing)) from None
    quotas.confirm(request.user, record.id, record.raw_key)
    if record.published:
        # The gallery shows it as a "processing" tile until it is listed. One that waits for review (or for its
        # alt text) will not be listed when it is ready: My uploads follows it instead.
        pending.remember(request, record.id)
    if wants_json:
        return JsonResponse({"id": record.id, "status": record.status.value})
    return render(request, "gallery/upload_done.html", {"record": record})


@require_POST
def dismiss(request: HttpRequest, image_id: str) -> HttpResponse:
    """Stop showing a finished (usually failed) upload of one's own as a tile in the gallery."""
    pending.forget(request, image_id)
    if "application/json" in request.headers.get("Accept", ""):
        return JsonResponse({"dismissed": image_id})
    return redirect("gallery:index")


# -- accounts, errors -----------------------------------------------------------------------------


@require_POST
def logout_view(request: HttpRequest) -> HttpResponse:
    logout(request)
    return redirect("gallery:index")


def locked_out(
    request: HttpRequest, original_response: HttpResponse | None = None, credentials: dict[str, Any] | None = None
) -> HttpResponse:
    """django-axes' answer to a login while its user name and address are locked out (AXES_LOCKOUT_CALLABLE)."""
    minutes = max(1, round(settings.AXES_COOLOFF_TIME.total_seconds() / 60))
    message = (
        f"Logging in failed {settings.AXES_FAILURE_LIMIT} times in a row for this user name from this address, "
        f"so it is blocked for {minutes} minutes. Wait, then try again; a staff member can lift the block sooner "
        "(admin, Axes, Access attempts)."
    )
    return render(request, "gallery/locked_out.html", {"message": message}, status=429)


@cacheable
def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return _error_page(request, 404, "There is no page or image here. It may have been deleted or hidden.")


@cacheable
def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return _error_page(request, 400, "The request could not be understood.")


def _error_page(request: HttpRequest, status: int, message: str) -> HttpResponse:
    titles = {400: "That link does not work", 404: "Not found", 503: "Try again in a minute"}
    title = titles.get(status, "Something went wrong")
    context: dict[str, Any] = {"status": status, "title": title, "message": message}
    return render(request, "gallery/error.html", context, status=status)
