"""Where an image's rendition files sit: under public/ (served by the CDN) while it is visible, under hidden/ while
it is hidden or in the trash (``ImageRecord.files_hidden``); and removing every one of them when the image is
deleted for good (pipeline.trash).

The record is the truth about where the files are: ``ImageRecord.renditions`` names every key. Moving is
copy -> point the record at the copies -> delete the originals -> invalidate the CDN, so at every moment the
record names objects that exist, and a crash at any step leaves a state that :func:`settle` finishes from:

* after some copies: the record still names the originals; a re-run copies again (same bytes) and goes on;
* after the record moved: the originals are the copies' twins on the other side; a re-run deletes them;
* after the deletes, before the invalidation: nothing is left to delete, so only a call that asks for the
  invalidation makes it (``set_hidden(..., True)`` always does, so re-running the hide finishes the job).

The record update is guarded by the revision the move read: if anything wrote the record meanwhile (a processor
run replaced the renditions, staff flipped the flag back), the move removes the copies it made that the record
does not name (nor their originals) and starts over from what the record says now. Stores are passed in
(pipeline.store); nothing here talks to AWS itself.
"""

from __future__ import annotations

import dataclasses
from typing import Final

from pipeline import keys, records
from pipeline.records import ImageRecord, InTrash
from pipeline.store import Cdn, ImageStore, ObjectMissing, ObjectStore, StoreError

# A move that finds the record changed under it starts over this many times before giving up.
MAX_SETTLE_ROUNDS: Final = 5


class SettleFailed(StoreError):
    """The renditions could not be put on the side the record asks for; the message says why. Re-running is safe."""


def side_key(key: str, *, hidden: bool) -> str:
    """Where a rendition key belongs for an image that is (or is not) hidden."""
    return keys.hidden_key(key) if hidden else keys.public_key(key)


def settle(
    images: ImageStore, objects: ObjectStore, cdn: Cdn, image_id: str, *, invalidate: bool = False
) -> ImageRecord | None:
    """Make the rendition objects match ``record.files_hidden``; returns the record as it now is (None if gone).

    The CDN paths are invalidated when a public object was removed, and with ``invalidate`` whenever the image
    ends off the CDN (a re-run after a crash between the deletes and the invalidation has nothing left to remove).
    Idempotent: with nothing to move and nothing left over it reads the record, lists two folders and returns.
    """
    for _ in range(MAX_SETTLE_ROUNDS):
        record = images.get(image_id, consistent=True)
        if record is None:
            return None
        moves = {r.key: side_key(r.key, hidden=record.files_hidden) for r in record.renditions}
        moves = {source: dest for source, dest in moves.items() if source != dest}
        if moves:
            moved = _move(images, objects, record, moves)
            if moved is None:
                continue  # the record changed while we copied: start over from what it says now
            record = moved
        removed_public = _remove_twins(objects, record)
        if removed_public or (invalidate and record.files_hidden):
            cdn.invalidate(keys.cdn_invalidation_paths(record.id))
        return record
    raise SettleFailed(
        f"image {image_id} kept changing while its renditions were being moved to "
        f"{'hidden/' if record and record.files_hidden else 'public/'}; run it again"
    )


def set_hidden(images: ImageStore, objects: ObjectStore, cdn: Cdn, image_id: str, hidden: bool) -> ImageRecord | None:
    """Hide or show an image: the flag first (the record leaves or joins the Listed index at once), then the files.

    InTrash for an image in the trash: restore it first.
    """

    def flip(current: ImageRecord | None) -> ImageRecord | None:
        if current is not None and current.in_trash:
            raise InTrash(f"image {image_id} is in the trash: restore it first, then hide or show it")
        if current is None or current.hidden == hidden:
            return None
        return current.replace(hidden=hidden, updated_at=records.now_iso())

    if images.update(image_id, flip) is None:
        return None
    return settle(images, objects, cdn, image_id, invalidate=hidden)


def stored_rendition_keys(objects: ObjectStore, image_id: str) -> set[str]:
    """Every file in the image's rendition folders, public and hidden, named by its record or not."""
    return {key for prefix in keys.image_rendition_prefixes(image_id) for key in objects.list_keys(prefix)}


def remove_all(objects: ObjectStore, cdn: Cdn, record: ImageRecord) -> list[str]:
    """Delete every rendition of the image on either side, in either layout, then invalidate its CDN paths.

    The record's keys and their twins, everything in the image's folders (a run that crashed may have left keys
    the record never named) and the flat legacy keys. Returns the keys deleted (or already absent).
    """
    named = {r.key for r in record.renditions}
    doomed = named | {side_key(key, hidden=not keys.is_hidden_key(key)) for key in named}
    listed = stored_rendition_keys(objects, record.id)
    doomed |= listed | set(keys.legacy_rendition_keys(record.id))
    objects.delete(sorted(doomed))
    if any(not keys.is_hidden_key(key) for key in named | listed):
        cdn.invalidate(keys.cdn_invalidation_paths(record.id))
    return sorted(doomed)


# -- the steps of a move -------------------------------------------------------------------------------------------


def _move(images: ImageStore, objects: ObjectStore, record: ImageRecord, moves: dict[str, str]) -> ImageRecord | None:
    """Copy, then point the record at the copies if it still names the originals. None if it no longer does
    (then the copies this call made are removed, except any the record names now)."""
    for source, dest in moves.items():
        try:
            objects.copy(source, dest)
        except ObjectMissing:
            # Another move finished first and deleted the original, or a processor run replaced the renditions.
            current = images.get(record.id, consistent=True)
            if current is None or current.revision != record.revision:
                _discard(objects, moves, current)
                return None
            if not objects.exists(dest):
                raise SettleFailed(
                    f"image {record.id}: its record names {source}, which is missing, and {dest} is not there "
                    f"either; reprocess the image to make its renditions again"
                ) from None

    wanted = tuple(dataclasses.replace(r, key=moves.get(r.key, r.key)) for r in record.renditions)

    def point_at_copies(current: ImageRecord | None) -> ImageRecord | None:
        if current is None or current.revision != record.revision:
            return None  # written since we read it (new renditions, the flag flipped back): leave it alone
        return current.replace(renditions=wanted)

    saved = images.update(record.id, point_at_copies)
    if saved is None or saved.renditions != wanted or saved.revision != record.revision + 1:
        _discard(objects, moves, saved)
        return None
    return saved


def _discard(objects: ObjectStore, moves: dict[str, str], current: ImageRecord | None) -> None:
    """Delete the copies a lost move made, except those whose original or copy the current record names.

    A record that still names the original is being settled by someone else too (same keys, same bytes):
    whichever move wins, its ``settle`` removes the wrong-side twins, and those copies are such twins.
    """
    named = {r.key for r in current.renditions} if current else set()
    objects.delete(sorted(dest for source, dest in moves.items() if source not in named and dest not in named))


def _remove_twins(objects: ObjectStore, record: ImageRecord) -> bool:
    """Delete the wrong-side twins of the record's keys (the originals of a move); True if any was public.

    Only twins of keys the record names are touched: a processor run may be writing a new version into the
    image's folders right now, and those files are not ours to delete.
    """
    twins = {side_key(r.key, hidden=not record.files_hidden) for r in record.renditions}
    if not twins:
        return False
    present = {key for prefix in _wrong_side_prefixes(record) for key in objects.list_keys(prefix)}
    # Flat legacy keys (public/thumbs/<id>.jpg) sit outside the image's folders: ask for those one by one.
    outside = {key for key in twins if not key.startswith(_wrong_side_prefixes(record))}
    present |= {key for key in outside if objects.exists(key)}
    stale = sorted(twins & present)
    if stale:
        objects.delete(stale)
    return bool(stale) and record.files_hidden


def _wrong_side_prefixes(record: ImageRecord) -> tuple[str, ...]:
    wrong = keys.PUBLIC_PREFIX if record.files_hidden else keys.HIDDEN_PREFIX
    return tuple(prefix for prefix in keys.image_rendition_prefixes(record.id) if prefix.startswith(wrong))
