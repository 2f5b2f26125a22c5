"""Photo facts as the record keeps them: what the camera wrote (EXIF/XMP) before the outputs were stripped.

Pure values shared by imaging (which reads them from the upload) and records (which stores them). Numbers that
are not whole are kept as decimal strings ("4.25", "1/250"), so DynamoDB stores them exactly and the API shows
what the camera wrote, not a float's rounding.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

# ``taken_sk`` of an image without a date taken: below every date ("0" sorts before any year's first digit), so
# newest-taken-first lists (descending) put undated photos after the dated ones, newest upload first among them.
UNDATED_PREFIX: Final = "0#"


@dataclass(frozen=True)
class Camera:
    """Camera and exposure, each as the EXIF says it; empty/None when the file does not say."""

    make: str = ""
    model: str = ""
    lens: str = ""
    focal_length: str | None = None  # millimetres, decimal string: "4.25"
    f_number: str | None = None  # "1.8"
    exposure_time: str | None = None  # seconds as a photographer writes them: "1/250", "2.5"
    iso: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """Only what is known (the item and the API leave out the rest)."""
        return {k: v for k, v in dataclasses.asdict(self).items() if v not in (None, "")}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Camera:
        names = {f.name for f in dataclasses.fields(cls)}
        known = {k: v for k, v in values.items() if k in names}
        if known.get("iso") is not None:
            known["iso"] = int(known["iso"])
        return cls(**known)

    def __bool__(self) -> bool:
        return bool(self.to_dict())


@dataclass(frozen=True)
class Location:
    """Where the photo was taken (EXIF GPS), decimal degrees as strings. Private: only staff see it (KEEP_LOCATION)."""

    latitude: str
    longitude: str
    altitude: str | None = None  # metres above sea level

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in dataclasses.asdict(self).items() if v not in (None, "")}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Location:
        altitude = values.get("altitude")
        return cls(latitude=str(values["latitude"]), longitude=str(values["longitude"]), altitude=altitude)


def taken_sort_key(taken_at: str | None, created_sk: str) -> str:
    """The ``ListedByTaken`` index's sort key: the date taken in UTC when the camera gave its offset, else the
    camera's local time as written (all a camera without OffsetTimeOriginal tells), then the ``created_sk`` as a
    tie-break; an undated photo gets UNDATED_PREFIX and its ``created_sk``."""
    if not taken_at:
        return f"{UNDATED_PREFIX}{created_sk}"
    try:
        moment = datetime.fromisoformat(taken_at)
    except ValueError:
        return f"{UNDATED_PREFIX}{created_sk}"
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return f"{moment:%Y-%m-%dT%H:%M:%S}#{created_sk}"
