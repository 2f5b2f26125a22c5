"""The admin's "Images": DynamoDB records listed, edited, trashed, restored, deleted and reprocessed with the
admin's own look.

``Image`` is an unmanaged stand-in model (gallery.models), so every view that would query it is replaced:
the list is one Query per page on ByEntity/ByStatus (gallery.selectors; the trash is ByStatus=deleted), and
edits (hide/unhide included), the trash, reprocessing and the publish gate go through gallery.services. Django's
permissions still decide: view, change, delete (move to the trash and restore), purge_image (delete permanently),
reprocess_image and publish_image (approve and reject uploads held for review).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlencode

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import path, reverse
from django.utils.http import url_has_allowed_host_and_scheme

from gallery import selectors, services
from gallery.forms import ImageMetadataForm
from gallery.models import Image
from pipeline import api, records, review, trash
from pipeline.records import ImageRecord, InTrash, Rendition, Review, Status

ACTIONS = {
    "reprocess_selected": "Reprocess selected images (retry failed ones)",
    "reprocess_matching": "Reprocess every image matching this filter",
    "delete_selected": "Move selected images to the trash",
    "restore_selected": "Restore selected images from the trash",
    "purge_selected": "Delete selected images permanently (takedown)",
    "approve_selected": "Approve selected images (publish them)",
    "reject_selected": "Reject selected images (asks for a reason)",
}
# What the list's status filter calls each status.
STATUS_LABELS: Final = {**{s.value: s.value.capitalize() for s in Status}, Status.DELETED.value: "Trash"}
# "Reprocess every image matching": one request touches at most this many originals, this many a second, so it
# ends well inside the app's 30 s Lambda timeout; a "Continue" button carries on from there.
REPROCESS_BATCH: Final = 50
REPROCESS_RATE: Final = 5.0
# The list's narrowed views (gallery.selectors.ADMIN_NARROWED), as its filter names them.
NARROWED_LABELS: Final = {
    Review.PENDING.value: "Pending review",
    Review.NEEDS_ALT_TEXT.value: "Needs alt text",
    Review.REJECTED.value: "Rejected",
    "duplicates": "Duplicates",
}


class RejectionForm(forms.Form):
    """Why staff reject an upload: a sentence for the uploader, who reads it on their uploads."""

    reason = forms.CharField(
        max_length=review.MAX_REASON_LENGTH,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text="The uploader sees this on their uploads: say what is wrong, e.g. “Shows a person's face "
        "without their consent.”",
        error_messages={"required": "Give a reason: the uploader sees it on their uploads."},
    )


@dataclass(frozen=True)
class Row:
    """One image on the list: its record, thumbnail, and the images it duplicates if they still exist."""

    record: ImageRecord
    thumbnail: str | None
    duplicate_of: ImageRecord | None = None
    near_duplicate_of: ImageRecord | None = None

    @property
    def review_badge(self) -> str | None:
        return review.describe(self.record)


@dataclass(frozen=True)
class RenditionRow:
    rendition: Rendition
    url: str | None


def _thumbnail_url(record: ImageRecord, *, shown_at: int = 80) -> str | None:
    """The narrowest tile that fills ``shown_at`` CSS px on a 2x screen (the list's 80 px, the change form's 320):
    staff see it through a presigned GET when it is off the CDN, since they must see what they approve, reject or
    restore."""
    rendition = record.rendition("thumb", "jpeg", at_least=2 * shown_at)
    return services.private_rendition_url(rendition) if rendition else None


def _with_thumbnails(ids: list[str]) -> list[tuple[ImageRecord, str | None]]:
    """The images a confirmation page names, each with its thumbnail; ids that no longer exist are left out."""
    found = []
    for image_id in ids:
        try:
            record = services.get_record(image_id)
        except services.ImageNotFound:
            continue
        found.append((record, _thumbnail_url(record)))
    return found


def _cdn_note() -> str:
    if services.pipeline_settings().cdn_distribution_id:
        return "CloudFront was told to forget its copies (that takes about a minute)."
    return "The CDN no longer serves its files."


def _saved_message(before: ImageRecord, saved: ImageRecord) -> str:
    name = _stand_in(saved)
    if saved.hidden and not before.hidden:
        return (
            f"Hid “{name}”: it left the gallery and the API, and its files moved from public/ to hidden/. {_cdn_note()}"
        )
    if before.hidden and not saved.hidden:
        listed = " The gallery and the API list it now." if saved.listed else ""
        return f"Showed “{name}” again: its files are back under public/.{listed}"
    if saved.hidden:
        return f"Saved “{name}”. It stays hidden; its files were checked to be off the CDN. {_cdn_note()}"
    return f"Saved “{name}”. The gallery and the API show it now."


def _when(iso: str | None) -> str:
    """An ISO time as the admin shows it: ``2027-01-05 10:00 UTC``."""
    return f"{iso[:10]} {iso[11:16]} UTC" if iso else "—"


def _trash_kept_until() -> str:
    """Until when an image trashed now can be restored."""
    return trash.purge_date(records.now_iso(), services.pipeline_settings().trash_retention_days)


def _describe_filter(status: str | None, search: str) -> str:
    described = f"status {status}" if status else "every status"
    return described + (f", matching “{search}”" if search else "")


def _count(value: str | None) -> int:
    return int(value) if value and value.isdigit() else 0


def _back_url(request: HttpRequest) -> str:
    """Where an action returns to: the form's ``next`` if it is a page of this site, else the list.

    ``next`` comes from the request, so a crafted form could otherwise send staff to another site (or render a
    ``javascript:`` URL as the confirmation page's "No, take me back" link).
    """
    wanted = request.POST.get("next", "")
    if wanted and url_has_allowed_host_and_scheme(
        wanted, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return wanted
    return reverse("admin:gallery_image_changelist")


def _map_url(record: ImageRecord) -> str | None:
    """OpenStreetMap at the photo's position, for staff (the location is shown nowhere else)."""
    where = record.location
    if where is None:
        return None
    query = urlencode({"mlat": where.latitude, "mlon": where.longitude})
    return f"https://www.openstreetmap.org/?{query}#map=16/{where.latitude}/{where.longitude}"


def _plural(items: list[str]) -> str:
    return "s" if len(items) != 1 else ""


def _rows(found: list[ImageRecord]) -> list[Row]:
    """The list's rows, with the originals of duplicates that still exist: one BatchGetItem for the page."""
    originals = services.image_store().get_many(
        original for record in found for original in (record.duplicate_of, record.near_duplicate_of) if original
    )
    return [
        Row(
            record,
            _thumbnail_url(record),
            originals.get(record.duplicate_of or ""),
            originals.get(record.near_duplicate_of or ""),
        )
        for record in found
    ]


def _stand_in(record: ImageRecord) -> Image:
    """The unsaved model instance the admin log needs to name the image."""
    return Image(id=record.id, title=record.name)


@admin.register(Image)
class ImageAdmin(admin.ModelAdmin):
    """Every view replaced: no SQL reaches the unmanaged Image table."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # images arrive through uploads, not the admin

    def has_reprocess_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(f"{self.opts.app_label}.reprocess_image")

    def has_purge_permission(self, request: HttpRequest) -> bool:
        """Deleting for good (takedowns) is its own permission: delete_image only moves images to the trash."""
        return request.user.has_perm(f"{self.opts.app_label}.purge_image")

    def has_publish_permission(self, request: HttpRequest) -> bool:
        """Approving and rejecting others' uploads (the publish gate) is the right to publish: publish_image."""
        return request.user.has_perm(f"{self.opts.app_label}.publish_image")

    def get_urls(self) -> list:
        info = self.opts.app_label, self.opts.model_name
        wrap = self.admin_site.admin_view
        return [
            path("", wrap(self.changelist_view), name="{}_{}_changelist".format(*info)),
            path("<str:object_id>/change/", wrap(self.change_view), name="{}_{}_change".format(*info)),
            path("<str:object_id>/delete/", wrap(self.delete_view), name="{}_{}_delete".format(*info)),
            path("<str:object_id>/purge/", wrap(self.purge_view), name="{}_{}_purge".format(*info)),
        ]

    # -- list -------------------------------------------------------------------------------------------------

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        if not self.has_view_or_change_permission(request):
            raise PermissionDenied
        if request.method == "POST":
            return self._run_action(request)
        status = request.GET.get("status") or None
        if status not in {None, *Status}:
            status = None
        search = request.GET.get("q", "").strip()
        narrow = request.GET.get("only") or None
        if narrow not in selectors.ADMIN_NARROWED:
            narrow = None
        elif selectors.ADMIN_NARROWED[narrow][0]:
            status = None  # a review filter reads ready images: the status filter does not apply to it
        try:
            page = selectors.admin_page(status=status, search=search, cursor=request.GET.get("cursor"), narrow=narrow)
        except selectors.BadCursor as error:
            context = {"title": "Broken link", "message": str(error)}
            return self._render(request, "admin/gallery/image/error.html", context, status=400)
        filters = {key: value for key, value in (("status", status), ("q", search), ("only", narrow)) if value}
        rows = _rows(page.records)
        # Choosing a status leaves a review filter (those read ready images only) and keeps the rest.
        kept_by_status = {k: v for k, v in filters.items() if not (k == "only" and selectors.ADMIN_NARROWED[v][0])}
        in_trash = status == Status.DELETED
        if narrow:
            title = NARROWED_LABELS[narrow]
        else:
            title = "Trash" if in_trash else f"{status.capitalize()} images" if status else "Images"
        context = {
            "title": title,
            "rows": rows,
            "narrow": narrow,
            "narrow_urls": [
                (label, "?" + urlencode({**filters, "only": name}), name == narrow)
                for name, label in NARROWED_LABELS.items()
            ],
            "all_narrow_url": "?" + urlencode({k: v for k, v in filters.items() if k != "only"}),
            "status": status,
            "in_trash": in_trash,
            "retention_days": services.pipeline_settings().trash_retention_days,
            "search": search,
            "all_url": "?" + urlencode({k: v for k, v in filters.items() if k != "status"}),
            "status_urls": [
                (
                    STATUS_LABELS[s.value],
                    "?" + urlencode({**kept_by_status, "status": s.value}),
                    s.value == status,
                )
                for s in Status
            ],
            "first_url": "?" + urlencode(filters),
            "older_url": "?" + urlencode({**filters, "cursor": page.next_cursor}) if page.next_cursor else None,
            "is_later_page": bool(request.GET.get("cursor")),
            "search_reach": selectors.ADMIN_SEARCH_READ_SIZE * selectors.ADMIN_SEARCH_MAX_READS,
            "actions": self._allowed_actions(request, in_trash=in_trash),
        }
        return self._render(request, "admin/gallery/image/change_list.html", context)

    def _allowed_actions(self, request: HttpRequest, *, in_trash: bool) -> list[tuple[str, str]]:
        """The actions this person may run on this list: the trash offers restore and delete permanently."""
        wanted = []
        if in_trash:
            wanted += ["restore_selected"] if self.has_delete_permission(request) else []
        else:
            wanted += ["reprocess_selected", "reprocess_matching"] if self.has_reprocess_permission(request) else []
            wanted += ["delete_selected"] if self.has_delete_permission(request) else []
            wanted += ["approve_selected", "reject_selected"] if self.has_publish_permission(request) else []
        wanted += ["purge_selected"] if self.has_purge_permission(request) else []
        return [(name, ACTIONS[name]) for name in wanted]

    def _run_action(self, request: HttpRequest) -> HttpResponse:
        action = request.POST.get("action", "")
        ids = request.POST.getlist("_selected_action")
        back = _back_url(request)
        if action not in ACTIONS:
            messages.warning(request, "Choose an action.")
            return HttpResponseRedirect(back)
        if action == "reprocess_matching":
            if not self.has_reprocess_permission(request):
                raise PermissionDenied
            return self._reprocess_matching(request, back)
        if not ids:
            messages.warning(request, "Select one or more images, then choose an action.")
            return HttpResponseRedirect(back)
        if action == "reprocess_selected":
            if not self.has_reprocess_permission(request):
                raise PermissionDenied
            self._reprocess(request, ids)
            return HttpResponseRedirect(back)
        if action in ("approve_selected", "reject_selected"):
            if not self.has_publish_permission(request):
                raise PermissionDenied
            if action == "approve_selected":
                self._approve(request, ids)
                return HttpResponseRedirect(back)
            return self._reject(request, ids, back)
        if action == "restore_selected":
            if not self.has_delete_permission(request):
                raise PermissionDenied
            for image_id in ids:
                self._restore(request, image_id)
            return HttpResponseRedirect(back)
        permanent = action == "purge_selected"
        if not (self.has_purge_permission(request) if permanent else self.has_delete_permission(request)):
            raise PermissionDenied
        if request.POST.get("post") != "yes":
            found = _with_thumbnails(ids)
            return self._confirm_delete(request, found, ids=ids, permanent=permanent, next_url=back)
        for image_id in ids:
            if permanent:
                self._purge(request, image_id)
            else:
                self._delete(request, image_id)
        return HttpResponseRedirect(back)

    def _confirm_delete(
        self,
        request: HttpRequest,
        rows: list[tuple[ImageRecord, str | None]],
        *,
        ids: list[str],
        permanent: bool,
        next_url: str | None = None,
        single: bool = False,
    ) -> HttpResponse:
        """The admin's confirmation page, for the trash or for deleting permanently."""
        noun = "this image" if single else "these images"
        context = {
            "title": f"Delete {noun} permanently?" if permanent else f"Move {noun} to the trash?",
            "rows": rows,
            "ids": ids,
            "next": next_url,
            "single": single,
            "permanent": permanent,
            "action": "purge_selected" if permanent else "delete_selected",
            "kept_until": _when(_trash_kept_until()),
            "retention_days": services.pipeline_settings().trash_retention_days,
        }
        return self._render(request, "admin/gallery/image/delete_selected_confirmation.html", context)

    def _approve(self, request: HttpRequest, ids: list[str]) -> None:
        """Publish each image; one message for those published, one per image refused (and why)."""
        approved: list[str] = []
        already: list[str] = []
        for image_id in ids:
            try:
                done = services.approve(image_id, by=request.user.get_username())
            except (services.ImageNotFound, services.ReviewRefused, InTrash) as error:
                messages.error(request, f"Not approved: {error}")
                continue
            except services.VisibilityFailed as error:
                messages.error(request, str(error))
                continue
            name = _stand_in(done.record)
            if not done.changed:
                already.append(f"“{name}”")
                continue
            self.log_change(request, name, "Approved: published.")
            approved.append(f"“{name}”")
        if approved:
            messages.success(
                request,
                f"Approved {len(approved)} image{_plural(approved)}: {', '.join(approved)}. "
                f"{'They are' if len(approved) != 1 else 'It is'} published: listed in the gallery and the API "
                "(unless hidden), with the files under public/.",
            )
        if already:
            messages.info(request, f"Already published, nothing to do: {', '.join(already)}.")

    def _reject(self, request: HttpRequest, ids: list[str], back: str) -> HttpResponse:
        """Asks for the reason first (a page like the delete confirmation), then rejects each image with it."""
        form = RejectionForm(request.POST if request.POST.get("post") == "yes" else None)
        if not form.is_valid():
            found = _with_thumbnails(ids)
            single = len(ids) == 1 and request.POST.get("single") == "yes"
            context = {
                "title": "Reject this image?" if single else "Reject these images?",
                "rows": found,
                "ids": ids,
                "next": back,
                "form": form,
                "single": single,
            }
            return self._render(request, "admin/gallery/image/reject_confirmation.html", context)
        reason = form.cleaned_data["reason"]
        rejected: list[str] = []
        for image_id in ids:
            try:
                done = services.reject(image_id, by=request.user.get_username(), reason=reason)
            except (services.ImageNotFound, services.ReviewRefused, InTrash, services.VisibilityFailed) as error:
                messages.error(request, f"Not rejected: {error}")
                continue
            name = _stand_in(done.record)
            if done.changed:
                self.log_change(request, name, f"Rejected: {reason}")
            rejected.append(f"“{name}”")
        if rejected:
            messages.success(
                request,
                f"Rejected {len(rejected)} image{_plural(rejected)}: {', '.join(rejected)}, because “{reason}”. "
                "The uploader sees the reason on their uploads; the files stay off the CDN.",
            )
        return HttpResponseRedirect(back)

    def _reprocess(self, request: HttpRequest, ids: list[str]) -> None:
        started = 0
        for image_id in ids:
            try:
                record = services.reprocess(image_id)
            except (services.ImageNotFound, InTrash) as error:
                messages.error(request, str(error))
                continue
            started += 1
            self.log_change(request, _stand_in(record), "Reprocessing requested.")
        if started:
            messages.success(
                request,
                f"Reprocessing {started} image{'s' if started != 1 else ''}: the processor picks "
                f"{'them' if started != 1 else 'it'} up in a few seconds; reload to see the new status.",
            )

    def _reprocess_matching(self, request: HttpRequest, back: str) -> HttpResponse:
        """Every image the list's filter (status and search) matches, REPROCESS_BATCH per request: asks first,
        then touches a batch and offers to continue until the filter's last page."""
        status = request.POST.get("status") or None
        if status not in {None, *Status}:
            status = None
        search = request.POST.get("q", "").strip()
        described = _describe_filter(status, search)
        totals = {name: _count(request.POST.get(name)) for name in ("touched", "missing", "failed")}
        context = {
            "title": "Reprocess every matching image?",
            "described": described,
            "status": status or "",
            "search": search,
            "next": back,
            "rate": f"{REPROCESS_RATE:g}",
            "batch": REPROCESS_BATCH,
            "totals": totals,
        }
        if request.POST.get("post") != "yes":
            return self._render(request, "admin/gallery/image/reprocess_matching.html", context)
        cursor = request.POST.get("cursor") or None
        try:
            page = selectors.admin_page(status=status, search=search, cursor=cursor, limit=REPROCESS_BATCH)
        except selectors.BadCursor as error:
            messages.error(request, str(error))
            return HttpResponseRedirect(back)
        summary = services.reprocess_records(page.records, rate=REPROCESS_RATE)
        for record in page.records:
            if record.id in summary.touched:
                self.log_change(request, _stand_in(record), "Reprocessing requested (every matching image).")
        totals = {
            "touched": totals["touched"] + len(summary.touched),
            "missing": totals["missing"] + len(summary.missing),
            "failed": totals["failed"] + len(summary.failed),
        }
        for image_id, reason in summary.failed:
            messages.error(request, f"{image_id}: S3 did not take the touch ({reason}).")
        if summary.missing:
            messages.warning(
                request,
                f"{len(summary.missing)} original upload{'s are' if len(summary.missing) != 1 else ' is'} no longer "
                f"in S3, so nothing was started for {', '.join(summary.missing)}.",
            )
        if page.next_cursor:
            context |= {"title": "Reprocessing: continue?", "cursor": page.next_cursor, "totals": totals}
            return self._render(request, "admin/gallery/image/reprocess_matching.html", context)
        touched = totals["touched"]
        note = f" Not started: {totals['missing']} without an original, {totals['failed']} failed."
        messages.success(
            request,
            f"Reprocessing {touched} image{'s' if touched != 1 else ''} ({described}): the processor renders "
            f"{'them' if touched != 1 else 'it'} again over the next minutes; reload to see the new status."
            + (note if totals["missing"] or totals["failed"] else ""),
        )
        return HttpResponseRedirect(back)

    def _delete(self, request: HttpRequest, image_id: str) -> bool:
        """Move to the trash (an image already there has its files checked again, which finishes a failed move)."""
        try:
            before = services.get_record(image_id)
            record = services.trash_image(image_id, by=request.user.get_username())
        except services.ImageNotFound as error:
            messages.warning(request, str(error))
            return False
        except services.DeleteFailed as error:
            messages.error(request, str(error))
            return False
        name = _stand_in(record)
        if before.in_trash:
            messages.info(
                request,
                f"“{name}” was already in the trash (restorable until {_when(record.purge_after)}); its files were "
                "checked to be off the CDN.",
            )
            return True
        self.log_change(request, name, "Moved to the trash.")
        off_cdn = "" if before.hidden else f" {_cdn_note()}"
        messages.success(
            request,
            f"Moved “{name}” to the trash: it left the gallery and the API, and its files moved to hidden/.{off_cdn} "
            f"It can be restored until {_when(record.purge_after)}; then it is deleted for good.",
        )
        return True

    def _restore(self, request: HttpRequest, image_id: str) -> bool:
        try:
            restored = services.restore_image(image_id, by=request.user.get_username())
        except (services.ImageNotFound, services.RestoreRefused) as error:
            messages.error(request, str(error))
            return False
        except services.VisibilityFailed as error:
            messages.error(request, str(error))
            return True
        record = restored.record
        self.log_change(request, _stand_in(record), "Restored from the trash.")
        if restored.reprocessing:
            where = "The processor picks it up again in a few seconds."
        elif record.listed:
            where = "The gallery and the API list it again."
        elif record.hidden:
            where = "It is hidden, so it stays out of the gallery and the API."
        else:
            where = ""
        messages.success(request, f"Restored “{_stand_in(record)}” ({record.status}). {where}".rstrip())
        return True

    def _purge(self, request: HttpRequest, image_id: str) -> bool:
        try:
            record = services.purge_image(image_id, by=request.user.get_username())
        except services.ImageNotFound as error:
            messages.warning(request, str(error))
            return False
        except services.DeleteFailed as error:
            messages.error(request, str(error))
            return False
        self.log_deletions(request, [_stand_in(record)])
        messages.success(
            request,
            f"Deleted “{_stand_in(record)}” permanently: its record, its upload and every rendition are gone. "
            f"{_cdn_note()}",
        )
        return True

    # -- one image ----------------------------------------------------------------------------------------------

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        if not self.has_view_or_change_permission(request):
            raise PermissionDenied
        record = self._record_or_404(object_id)
        can_change = self.has_change_permission(request)
        if request.method == "POST":
            if not can_change:
                raise PermissionDenied
            form = ImageMetadataForm(request.POST)
            if form.is_valid():
                try:
                    saved = services.update_metadata(record.id, **form.cleaned_data)
                except (services.VisibilityFailed, InTrash) as error:
                    messages.error(request, str(error))
                    return HttpResponseRedirect(request.path)
                except services.AltTextRequired as error:
                    form.add_error("alt_text", str(error))
                else:
                    changed = form.changed_data
                    self.log_change(request, _stand_in(saved), [{"changed": {"fields": changed}}] if changed else "")
                    messages.success(request, _saved_message(record, saved))
                    if "_continue" in request.POST:
                        return HttpResponseRedirect(request.path)
                    return HttpResponseRedirect(reverse("admin:gallery_image_changelist"))
        else:
            form = ImageMetadataForm(
                initial={
                    "title": record.title,
                    "alt_text": record.alt_text,
                    "tags": ", ".join(record.tags),
                    "hidden": record.hidden,
                }
            )
        if not can_change or record.in_trash:
            for field in form.fields.values():
                field.disabled = True
        settings = services.pipeline_settings()
        context = {
            "title": f"Image “{record.name}”",
            "record": record,
            "form": form,
            "thumbnail_url": _thumbnail_url(record, shown_at=320),
            "renditions": [RenditionRow(r, api.rendition_url(r, settings)) for r in record.renditions],
            "history": list(reversed(record.history)),
            "can_change": can_change and not record.in_trash,
            "can_delete": self.has_delete_permission(request) and not record.in_trash,
            "can_restore": self.has_delete_permission(request) and record.in_trash and not record.purge_started_at,
            "can_purge": self.has_purge_permission(request),
            "can_reprocess": self.has_reprocess_permission(request) and not record.in_trash,
            "public_url": reverse("gallery:detail", args=[record.id]) if record.listed else None,
            "review_badge": review.describe(record),
            "can_review": self.has_publish_permission(request)
            and record.status is Status.READY
            and not record.in_trash,
            "originals": _rows([record])[0],
            "camera": record.camera,
            "location": record.location,
            "map_url": _map_url(record),
        }
        return self._render(request, "admin/gallery/image/change_form.html", context)

    def delete_view(
        self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        """Move to the trash: asks first."""
        if not self.has_delete_permission(request):
            raise PermissionDenied
        return self._delete_one(request, object_id, permanent=False)

    def purge_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Delete permanently (takedowns): asks first, then everything goes at once, from the trash too."""
        if not self.has_purge_permission(request):
            raise PermissionDenied
        return self._delete_one(request, object_id, permanent=True)

    def _delete_one(self, request: HttpRequest, object_id: str, *, permanent: bool) -> HttpResponse:
        """The confirmation page (GET), then the trash or the permanent delete (POST)."""
        record = self._record_or_404(object_id)
        if request.method == "POST":
            if self._purge(request, record.id) if permanent else self._delete(request, record.id):
                return HttpResponseRedirect(reverse("admin:gallery_image_changelist"))
            return HttpResponseRedirect(reverse("admin:gallery_image_change", args=[record.id]))
        rows = [(record, _thumbnail_url(record))]
        return self._confirm_delete(request, rows, ids=[record.id], permanent=permanent, single=True)

    # -- helpers ------------------------------------------------------------------------------------------------

    def _record_or_404(self, object_id: str) -> ImageRecord:
        try:
            return services.get_record(object_id)
        except services.ImageNotFound as missing:
            raise Http404(str(missing)) from None

    def _render(self, request: HttpRequest, template: str, context: dict[str, Any], status: int = 200) -> HttpResponse:
        base = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "app_label": self.opts.app_label,
            "has_view_permission": self.has_view_permission(request),
            "has_change_permission": self.has_change_permission(request),
        }
        return render(request, template, {**base, **context}, status=status)
