"""My uploads (/my/): a logged-in person's own images, whatever became of them, and what they may do to them.

Every view here answers for the person's own images only: anyone else's image, or an id that is no image, is a
404 (never a 403, which would confirm that the id exists). Reads go through gallery.selectors (one Query a page
on the ByOwner index), writes through gallery.services (``edit_own``, ``trash_own``, ``retry_own``), and no view
is @cacheable, so every answer is ``private, no-store`` (gallery.caching).
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from gallery import selectors, services
from gallery.forms import ImageMetadataForm
from pipeline.records import InTrash


class OwnImageForm(ImageMetadataForm):
    """The admin's metadata form (same fields, limits and messages) without ``hidden``, which is staff's to set."""

    hidden = None


@login_required
@require_GET
def my_uploads(request: HttpRequest) -> HttpResponse:
    try:
        page = selectors.owner_page(request.user.get_username(), cursor=request.GET.get("cursor") or None)
    except selectors.BadCursor as bad:
        return render(
            request,
            "gallery/error.html",
            {"status": 400, "title": "That link does not work", "message": str(bad)},
            status=400,
        )
    older_url = f"{reverse('gallery:my')}?cursor={page.next_cursor}" if page.next_cursor else None
    return render(
        request,
        "gallery/my.html",
        {"uploads": page.uploads, "older_url": older_url, "first_page": not request.GET.get("cursor")},
    )


@login_required
@require_http_methods(["GET", "POST"])
def edit(request: HttpRequest, image_id: str) -> HttpResponse:
    """The title, alt text and tags of one's own image; errors next to their fields."""
    upload = _own(request, image_id)
    record = upload.record
    if request.method == "POST":
        form = OwnImageForm(request.POST)
        if form.is_valid():
            try:
                services.edit_own(
                    record.id,
                    request.user.get_username(),
                    title=form.cleaned_data["title"],
                    alt_text=form.cleaned_data["alt_text"],
                    tags=form.cleaned_data["tags"],
                )
            except services.ImageNotFound:
                raise Http404("You have no image with this id.") from None
            except (InTrash, ValueError) as refused:  # AltTextRequired among them
                form.add_error("alt_text" if isinstance(refused, services.AltTextRequired) else None, str(refused))
            except services.VisibilityFailed as unfinished:
                messages.warning(request, str(unfinished))
                return redirect("gallery:my")
            else:
                messages.success(request, f"Saved “{form.cleaned_data['title'] or record.file_name}”.")
                return redirect("gallery:my")
    else:
        form = OwnImageForm(
            initial={"title": record.title, "alt_text": record.alt_text, "tags": ", ".join(record.tags)}
        )
    status = 400 if form.is_bound else 200
    return render(request, "gallery/my_edit.html", {"upload": upload, "form": form}, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def delete(request: HttpRequest, image_id: str) -> HttpResponse:
    """GET asks "are you sure?"; the POST moves the image to the trash (staff can restore it for a while)."""
    upload = _own(request, image_id)
    if request.method == "GET":
        return render(request, "gallery/my_delete.html", {"upload": upload})
    try:
        services.trash_own(upload.record.id, request.user.get_username())
    except (services.ImageNotFound, InTrash):
        raise Http404("You have no image with this id.") from None
    except services.DeleteFailed as unfinished:
        messages.warning(request, str(unfinished))
    else:
        messages.success(request, f"Deleted “{upload.name}”.")
    return redirect("gallery:my")


@login_required
@require_POST
def retry(request: HttpRequest, image_id: str) -> HttpResponse:
    """Process a failed upload of one's own again (its original is still in S3)."""
    try:
        record = services.retry_own(image_id, request.user.get_username())
    except (services.ImageNotFound, InTrash):
        raise Http404("You have no image with this id.") from None
    except services.RetryRefused as refused:
        messages.error(request, str(refused))
    else:
        messages.success(request, f"Processing “{record.name}” again.")
    return redirect("gallery:my")


@require_GET
def status(request: HttpRequest, image_id: str) -> JsonResponse:
    """What the upload page's script polls: the state of one of the person's own images, published or not."""
    if not request.user.is_authenticated:
        return JsonResponse({"error": "Log in to see your uploads."}, status=401)
    try:
        upload = selectors.own_upload(image_id, request.user.get_username())
    except services.ImageNotFound as missing:
        return JsonResponse({"error": str(missing)}, status=404)
    return JsonResponse(status_document(upload))


def status_document(upload: selectors.OwnUpload) -> dict[str, Any]:
    """``status`` is the record's (uploading, processing, ready, failed); ``state`` and ``label`` what the owner
    reads (pending review, rejected, ...), ``reason`` why; ``page_url`` only while the image is listed."""
    record, picture = upload.record, upload.picture
    return {
        "id": record.id,
        "status": record.status.value,
        "state": upload.state.key,
        "label": upload.state.label,
        "reason": upload.state.reason,
        "review": record.review.value if record.review else None,
        "review_reason": record.review_reason,
        "failure_reason": record.failure_reason,
        "page_url": reverse("gallery:detail", args=[record.id]) if record.listed else None,
        "my_url": reverse("gallery:my"),
        "duplicate_of": _original_document(upload.duplicate),
        "near_duplicate_of": _original_document(upload.near_duplicate),
        "thumbnail": {"src": picture.src, "srcset": picture.srcset_jpeg, "color": picture.color} if picture else None,
    }


def _original_document(original: selectors.Original | None) -> dict[str, str] | None:
    return {"id": original.id, "title": original.title, "url": original.url} if original else None


def _own(request: HttpRequest, image_id: str) -> selectors.OwnUpload:
    try:
        return selectors.own_upload(image_id, request.user.get_username())
    except services.ImageNotFound:
        raise Http404("You have no image with this id.") from None
