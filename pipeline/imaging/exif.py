"""Photo facts from the upload's own metadata (EXIF, XMP), read before the outputs are stripped of it.

Best effort by design: cameras, phones and editors write odd values, and hostile files write anything, so every
fact is read on its own and a value that is missing, malformed or absurd is simply absent. Nothing here may fail
an upload. GPS is parsed only when the site keeps locations (KEEP_LOCATION): otherwise it is never even read.
"""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, Final, TypeVar

from PIL import Image

from pipeline.photo import Camera, Location

EXIF_IFD: Final = 0x8769
GPS_IFD: Final = 0x8825
# Base IFD (IFD0)
MAKE: Final = 0x010F
MODEL: Final = 0x0110
# Exif IFD
EXPOSURE_TIME: Final = 0x829A  # 33434
F_NUMBER: Final = 0x829D  # 33437
ISO_SPEED: Final = 0x8827  # 34855, ISOSpeedRatings / PhotographicSensitivity
DATE_TIME_ORIGINAL: Final = 0x9003  # 36867
OFFSET_TIME_ORIGINAL: Final = 0x9011  # 36881
FOCAL_LENGTH: Final = 0x920A  # 37386
LENS_MAKE: Final = 0xA433  # 42035
LENS_MODEL: Final = 0xA434  # 42036
# GPS IFD
GPS_LATITUDE_REF, GPS_LATITUDE, GPS_LONGITUDE_REF, GPS_LONGITUDE = 1, 2, 3, 4
GPS_ALTITUDE_REF, GPS_ALTITUDE = 5, 6

# Dates outside these years are a camera's unset clock ("0000:00:00 00:00:00", 1970 defaults are kept: some
# cameras really were never set, but a year 0 or 9999 is no date at all). Photography began in the 1820s.
MIN_YEAR: Final = 1826
# A camera's clock may run ahead, and time zones put "now" up to 14 h ahead of UTC; more than this is absurd.
MAX_AHEAD: Final = timedelta(days=2)
# Longer text is no camera or lens name (the hostile corpus has a 60 KB ImageDescription); it is left out.
MAX_TEXT: Final = 100
# Only the start of an XMP packet is searched; the dates sit in its first rdf:Description.
MAX_XMP: Final = 64 * 1024
_EXIF_DATE: Final = re.compile(r"(\d{4}):(\d{2}):(\d{2})[ T](\d{2}):(\d{2}):(\d{2})")
_OFFSET: Final = re.compile(r"([+-])(\d{2}):(\d{2})")
# XMP properties in either RDF form: attribute (exif:DateTimeOriginal="...") or element (<exif:...>...</...>).
# A pattern, not an XML parser, so that an upload's XML never reaches an entity-expanding parser.
_XMP_DATE_PROPERTIES: Final = ("exif:DateTimeOriginal", "photoshop:DateCreated", "xmp:CreateDate")
_XMP_DATE: Final = re.compile(r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?(Z|[+-]\d{2}:\d{2})?")

T = TypeVar("T")


@dataclass(frozen=True)
class PhotoFacts:
    """What the upload's metadata says about the photo: each None when it does not say (or says nonsense)."""

    taken_at: str | None = None  # ISO 8601: "2021-06-05T14:03:22+02:00", or without offset when none was written
    camera: Camera | None = None
    location: Location | None = None  # only when asked for (KEEP_LOCATION)


NO_PHOTO_FACTS: Final = PhotoFacts()


def read_photo_facts(opened: Image.Image, *, keep_location: bool) -> PhotoFacts:
    """The facts of an opened (not necessarily decoded) upload; never raises except MemoryError."""
    exif = _best_effort(opened.getexif, None)
    if exif is None:
        return PhotoFacts(taken_at=_xmp_taken_at(opened.info.get("xmp")))
    details = _best_effort(lambda: exif.get_ifd(EXIF_IFD), {})
    taken_at = _best_effort(lambda: _exif_taken_at(details), None) or _xmp_taken_at(opened.info.get("xmp"))
    camera = _best_effort(lambda: _camera(exif, details), None)
    location = _best_effort(lambda: _location(exif.get_ifd(GPS_IFD)), None) if keep_location else None
    return PhotoFacts(taken_at=taken_at, camera=camera or None, location=location)


def _best_effort(read: Callable[[], T], fallback: T) -> T:
    """One fact's reading: a fuzzed value raises anything (TypeError, struct.error, ZeroDivisionError, ...)."""
    try:
        return read()
    except MemoryError:
        raise
    except Exception:
        return fallback


# -- when ------------------------------------------------------------------------------------------------------


def _exif_taken_at(details: dict[int, Any]) -> str | None:
    written = _text(details.get(DATE_TIME_ORIGINAL))
    match = _EXIF_DATE.fullmatch(written) if written else None
    if match is None:
        return None
    moment = _plausible(*(int(part) for part in match.groups()))
    if moment is None:
        return None
    offset = _text(details.get(OFFSET_TIME_ORIGINAL))
    return moment.isoformat() + (offset if offset and _valid_offset(offset) else "")


def _xmp_taken_at(xmp: object) -> str | None:
    """The first of exif:DateTimeOriginal, photoshop:DateCreated, xmp:CreateDate that holds a date and a time."""
    if isinstance(xmp, bytes):
        xmp = xmp[:MAX_XMP].decode("utf-8", "replace")
    if not isinstance(xmp, str):
        return None
    packet = xmp[:MAX_XMP]
    for name in _XMP_DATE_PROPERTIES:
        escaped = re.escape(name)
        found = re.search(rf"{escaped}\s*=\s*[\"']([^\"'<]{{1,40}})[\"']|<{escaped}>\s*([^<]{{1,40}}?)\s*</", packet)
        if found is None:
            continue
        match = _XMP_DATE.fullmatch(found.group(1) or found.group(2))
        if match is None:
            continue
        year, month, day, hour, minute, second, zone = match.groups()
        moment = _plausible(int(year), int(month), int(day), int(hour), int(minute), int(second or 0))
        if moment is None:
            continue
        if zone == "Z":
            zone = "+00:00"
        return moment.isoformat() + (zone if zone and _valid_offset(zone) else "")
    return None


def _plausible(year: int, month: int, day: int, hour: int, minute: int, second: int) -> datetime | None:
    if year < MIN_YEAR:
        return None
    try:
        moment = datetime(year, month, day, hour, minute, second)  # naive: the camera's local time
    except ValueError:  # month 13, 31 February, hour 24, ...
        return None
    if moment > datetime.now() + MAX_AHEAD:
        return None
    return moment


def _valid_offset(offset: str) -> bool:
    match = _OFFSET.fullmatch(offset)
    return match is not None and int(match.group(2)) <= 14 and int(match.group(3)) < 60


# -- what with -------------------------------------------------------------------------------------------------


def _camera(exif: Image.Exif, details: dict[int, Any]) -> Camera:
    make = _text(exif.get(MAKE))
    model = _text(exif.get(MODEL))
    # "Canon" + "Canon EOS 40D": the model repeats the make, shown together it would say it twice.
    if make and model.casefold().startswith(make.casefold() + " "):
        model = model[len(make) :].strip()
    lens = _text(details.get(LENS_MODEL))
    lens_make = _text(details.get(LENS_MAKE))
    if lens and lens_make and lens_make.casefold() not in (make.casefold(), *lens.casefold().split()[:1]):
        lens = f"{lens_make} {lens}"
    return Camera(
        make=make,
        model=model,
        lens=lens,
        focal_length=_best_effort(lambda: _decimal(details.get(FOCAL_LENGTH), places=2, at_most=10_000), None),
        f_number=_best_effort(lambda: _decimal(details.get(F_NUMBER), places=1, at_most=1_000), None),
        exposure_time=_best_effort(lambda: _exposure(details.get(EXPOSURE_TIME)), None),
        iso=_best_effort(lambda: _iso(details.get(ISO_SPEED)), None),
    )


def _text(value: object) -> str:
    """An EXIF ASCII value as people read it: NUL padding and spaces trimmed, printable, not absurdly long."""
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if not isinstance(value, str):
        return ""
    text = value.split("\x00", 1)[0].strip()
    if len(text) > MAX_TEXT or not text.isprintable():
        return ""
    return text


def _number(value: object) -> float | None:
    """A positive, finite EXIF number (rationals with a zero denominator read as NaN)."""
    if isinstance(value, tuple | list) and value:
        value = value[0]
    if isinstance(value, bool) or not isinstance(value, numbers.Real):  # IFDRational is a Real
        return None
    number = float(value)
    return number if math.isfinite(number) and number > 0 else None


def _decimal(value: object, *, places: int, at_most: float) -> str | None:
    """A decimal string with at most ``places`` decimals and no trailing zeros: "4.25", "1.8", "135"."""
    number = _number(value)
    if number is None or number > at_most:
        return None
    return _trimmed(Decimal(str(round(number, places))))


def _trimmed(number: Decimal) -> str:
    text = format(number, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _exposure(value: object) -> str | None:
    """Seconds as a photographer writes them: "1/250" below a second, "2.5" or "30" from a second up."""
    seconds = _number(value)
    if seconds is None or seconds > 3600:
        return None
    if seconds < 1:
        return f"1/{round(1 / seconds)}"
    return _trimmed(Decimal(str(round(seconds, 1))))


def _iso(value: object) -> int | None:
    if isinstance(value, tuple | list) and value:
        value = value[0]
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value if 0 < value <= 10_000_000 else None


# -- where (only with KEEP_LOCATION) ---------------------------------------------------------------------------


def _location(gps: dict[int, Any]) -> Location | None:
    latitude = _degrees(gps.get(GPS_LATITUDE), gps.get(GPS_LATITUDE_REF), negative="S", limit=90)
    longitude = _degrees(gps.get(GPS_LONGITUDE), gps.get(GPS_LONGITUDE_REF), negative="W", limit=180)
    if latitude is None or longitude is None:
        return None
    return Location(latitude=latitude, longitude=longitude, altitude=_altitude(gps))


def _degrees(value: object, reference: object, *, negative: str, limit: int) -> str | None:
    """Degrees, minutes, seconds and N/S (E/W) as signed decimal degrees, 7 places (about a centimetre)."""
    if not isinstance(value, tuple | list) or len(value) != 3:
        return None
    parts = [float(part) for part in value]
    if not all(math.isfinite(part) and part >= 0 for part in parts) or parts[1] >= 60 or parts[2] >= 60:
        return None
    degrees = parts[0] + parts[1] / 60 + parts[2] / 3600
    if degrees > limit:
        return None
    sign = -1 if _text(reference).upper() == negative else 1
    try:
        return _trimmed(Decimal(str(round(sign * degrees, 7))))
    except InvalidOperation:
        return None


def _altitude(gps: dict[int, Any]) -> str | None:
    metres = _best_effort(lambda: float(gps[GPS_ALTITUDE]), math.nan)
    if not math.isfinite(metres) or abs(metres) > 100_000:
        return None
    reference = gps.get(GPS_ALTITUDE_REF)
    below = reference in (b"\x01", 1) or (isinstance(reference, bytes) and reference[:1] == b"\x01")
    return _trimmed(Decimal(str(round(-metres if below else metres, 1))))
