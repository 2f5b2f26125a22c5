"""Why an upload cannot become an image: one exception type per kind of refusal, each with a sentence for people."""

from __future__ import annotations


class ImageRejected(Exception):
    """The upload cannot become an image; `reason` is a short sentence for the record and the uploader."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class UnsupportedFormat(ImageRejected):
    """The content is not one of the accepted image formats (whatever its name says)."""


class TooLarge(ImageRejected):
    """Too many bytes, pixels (a decompression bomb) or frames to process."""


class CorruptImage(ImageRejected):
    """Empty, truncated or undecodable data in an otherwise accepted format."""
