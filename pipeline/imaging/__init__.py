"""Image bytes in, upright, private, sRGB renditions and facts out: pure Pillow, no AWS, no environment.

The stages, one module each: ``limits`` (bytes, pixels, frames), ``plan`` (every output size from the header),
``decode`` (open by content, decode once), ``colour`` (modes, profiles to sRGB), ``resize``, ``encode``, and
``process``, which runs them in order. docs/imaging.md tells the whole journey.
"""

from pipeline.imaging.decode import ACCEPTED_FORMATS, OPENERS, sniff_format
from pipeline.imaging.encode import CONTENT_TYPES, EncodedRendition, OutputFormat
from pipeline.imaging.errors import CorruptImage, ImageRejected, TooLarge, UnsupportedFormat
from pipeline.imaging.limits import check_byte_size
from pipeline.imaging.plan import RenditionName, RenditionPlan, Rung, fit_within, ladder_widths, plan_renditions
from pipeline.imaging.process import ImageFacts, ProcessedImage, process_image

__all__ = [
    "ACCEPTED_FORMATS",
    "CONTENT_TYPES",
    "OPENERS",
    "CorruptImage",
    "EncodedRendition",
    "ImageFacts",
    "ImageRejected",
    "OutputFormat",
    "ProcessedImage",
    "RenditionName",
    "RenditionPlan",
    "Rung",
    "TooLarge",
    "UnsupportedFormat",
    "check_byte_size",
    "fit_within",
    "ladder_widths",
    "plan_renditions",
    "process_image",
    "sniff_format",
]
