"""A JPEG's own compressed data without its metadata: a lossless alternative to re-encoding an upload.

An upload that is already a web-sized, upright, sRGB JPEG loses quality and often gains bytes when it is decoded
and encoded again. ``strip_metadata`` keeps its image data byte for byte and drops everything else, so the
result decodes to exactly the upload's pixels. It works by allow-list: only the segments a decoder needs are
copied (frame, Huffman and quantisation tables, restart interval, scans, Adobe's colour-transform flag); every
APPn segment (EXIF with GPS, XMP, ICC, IPTC, JFIF and its thumbnail, maker notes), every comment and anything
after the end of the first image (MPO's second image, phone makers' trailers) is left out. Anything unusual,
such as arithmetic coding, 12-bit samples, lossless or hierarchical JPEG or CMYK, gives None, and the caller
re-encodes instead.
"""

from __future__ import annotations

from typing import Final

_SOI: Final = b"\xff\xd8"
_EOI: Final = 0xD9
_SOS: Final = 0xDA
# Baseline, extended sequential and progressive, Huffman-coded: what every browser decodes.
_FRAMES: Final = frozenset({0xC0, 0xC1, 0xC2})
# DHT, DQT, DRI, APP14 (Adobe: says whether 3 components are YCbCr or RGB; holds nothing personal).
_KEPT: Final = frozenset({0xC4, 0xDB, 0xDD, 0xEE})
# APP0-APP15 but APP14, and COM: dropped.
_DROPPED: Final = frozenset({*range(0xE0, 0xF0), 0xFE}) - {0xEE}


def strip_metadata(data: bytes) -> bytes | None:
    """``data``'s first image with only the segments a decoder needs, or None if it is not a JPEG this copies."""
    if not data.startswith(_SOI):
        return None
    out = [_SOI]
    frame_seen = False
    position, end = 2, len(data)
    while position < end:
        if data[position] != 0xFF:
            return None  # not at a marker: damaged or not a plain JPEG
        while position < end and data[position] == 0xFF:  # fill bytes may precede a marker
            position += 1
        if position >= end:
            return None
        marker = data[position]
        position += 1
        if marker == _EOI:
            return b"".join([*out, b"\xff\xd9"]) if frame_seen else None
        if position + 2 > end:
            return None
        length = int.from_bytes(data[position : position + 2], "big")
        if length < 2 or position + length > end:
            return None
        body = data[position : position + length]  # the length bytes included
        position += length
        if marker in _DROPPED:
            continue
        if marker in _FRAMES:
            if frame_seen or not _plain_frame(body):
                return None
            frame_seen = True
        elif marker == _SOS:
            if not frame_seen:
                return None
            scan_end = _end_of_scan(data, position)
            if scan_end is None:
                return None
            out += [bytes((0xFF, marker)), body, data[position:scan_end]]
            position = scan_end
            continue
        elif marker not in _KEPT:
            return None  # another frame type, arithmetic conditioning, DNL, reserved markers: not copied
        out += [bytes((0xFF, marker)), body]
    return None  # no end of image


def _plain_frame(body: bytes) -> bool:
    """8-bit samples, 1 (grey) or 3 (YCbCr or RGB) components: not 12-bit, not CMYK/YCCK."""
    return len(body) >= 8 and body[2] == 8 and body[7] in (1, 3)


def _end_of_scan(data: bytes, position: int) -> int | None:
    """Where the entropy-coded data starting at ``position`` ends: the first marker that is not a byte stuffing
    (FF 00) or a restart marker (FF D0-D7)."""
    while True:
        position = data.find(b"\xff", position)
        if position < 0 or position + 1 >= len(data):
            return None
        following = data[position + 1]
        if following == 0x00 or 0xD0 <= following <= 0xD7:
            position += 2
        elif following == 0xFF:
            position += 1  # fill byte before a marker
        else:
            return position
