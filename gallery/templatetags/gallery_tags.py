"""Template filters for the core's values: ISO timestamps from records and documents."""

from __future__ import annotations

from datetime import datetime

from django import template

register = template.Library()


@register.filter
def iso_datetime(value: str | None) -> datetime | str | None:
    """``2026-05-01T10:00:00.123456Z`` -> an aware datetime, for ``|date``; anything else as it is."""
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value
