"""PNG files made canonical: the same pixels in a fresh file, or a specific refusal.

A plot reaches a browser only as a PNG this module wrote. The uploaded file is read chunk by
chunk (every CRC checked); only the chunks that make the picture are used (``IHDR``, ``PLTE``,
``tRNS``, ``IDAT``, ``IEND``), so text chunks, metadata, anything after ``IEND`` and content
hidden for another reader of the same bytes (a zip, an HTML page) never leave; nor does the
palette a truecolour file may suggest, which no browser draws. The image data
is decompressed up to the size the header implies and no further (a zlib bomb stops there),
every scanline's filter byte is checked, and a new file is written from the header, palette,
transparency and scanlines. Samples of 16 bits are refused: no screen shows their low 8 bits,
so a steward could not see half of what such a file holds. Pure Python with :mod:`zlib`: no
image library reads the bytes.
"""

import struct
import zlib
from dataclasses import dataclass
from typing import Final

from pht_contract.manifests import MAX_PLOT_BYTES, MAX_PLOT_SIDE

SIGNATURE: Final = b"\x89PNG\r\n\x1a\n"
#: The chunks that make the picture; every other chunk is left out of the canonical file.
KEPT: Final = frozenset({b"IHDR", b"PLTE", b"tRNS", b"IDAT", b"IEND"})
#: Samples per pixel and the bit depths PNG allows, by colour type.
COLOUR_TYPES: Final = {
    0: (1, (1, 2, 4, 8, 16)),  # greyscale
    2: (3, (8, 16)),  # truecolour
    3: (1, (1, 2, 4, 8)),  # indexed
    4: (2, (8, 16)),  # greyscale with alpha
    6: (4, (8, 16)),  # truecolour with alpha
}
#: Scanline filters: None, Sub, Up, Average, Paeth.
FILTERS: Final = frozenset(range(5))
#: Decompressed image bytes a plot may have (filter bytes included).
MAX_IMAGE_BYTES: Final = 64 * 1024 * 1024 + MAX_PLOT_SIDE
#: Chunks a file may have: enough for any encoder's IDAT split, not for a chunk flood.
MAX_CHUNKS: Final = 4096


class InvalidPlot(ValueError):
    """The bytes are not a PNG this station will show; the message says why in a few words
    and never quotes the bytes."""


@dataclass(frozen=True)
class Header:
    width: int
    height: int
    bit_depth: int
    colour_type: int
    interlace: int

    @property
    def row_bytes(self) -> int:
        samples, _ = COLOUR_TYPES[self.colour_type]
        return (self.width * samples * self.bit_depth + 7) // 8

    @property
    def image_bytes(self) -> int:
        """Decompressed size of the image data: each scanline with its filter byte."""
        return self.height * (1 + self.row_bytes)


@dataclass(frozen=True)
class CanonicalPng:
    data: bytes
    width: int
    height: int


def _chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def _header(data: bytes) -> Header:
    if len(data) != 13:
        raise InvalidPlot("the IHDR chunk has the wrong length")
    width, height, depth, colour, compression, filtering, interlace = struct.unpack(
        ">IIBBBBB", data
    )
    if width == 0 or height == 0:
        raise InvalidPlot("the image has no pixels")
    if width > MAX_PLOT_SIDE or height > MAX_PLOT_SIDE:
        raise InvalidPlot(f"the image is larger than {MAX_PLOT_SIDE} × {MAX_PLOT_SIDE} pixels")
    if colour not in COLOUR_TYPES or depth not in COLOUR_TYPES[colour][1]:
        raise InvalidPlot("the colour type and bit depth are not a PNG combination")
    if depth == 16:
        # A screen shows 8 bits of a sample: the low 8 of each 16 would leave unseen.
        raise InvalidPlot("16-bit samples are not accepted: save the plot with 8 bits per sample")
    if compression != 0 or filtering != 0:
        raise InvalidPlot("unknown compression or filter method")
    if interlace == 1:
        raise InvalidPlot("interlaced PNG files are not accepted: save the plot without it")
    if interlace != 0:
        raise InvalidPlot("unknown interlace method")
    header = Header(width, height, depth, colour, interlace)
    if header.image_bytes > MAX_IMAGE_BYTES:
        raise InvalidPlot("the image data would be too large")
    return header


def _chunks(raw: bytes) -> list[tuple[bytes, bytes]]:
    """Every chunk up to and including ``IEND``, CRCs checked; nothing may follow."""
    if not raw.startswith(SIGNATURE):
        raise InvalidPlot("not a PNG file")
    position = len(SIGNATURE)
    chunks: list[tuple[bytes, bytes]] = []
    while True:
        if len(chunks) >= MAX_CHUNKS:
            raise InvalidPlot("too many chunks")
        if position + 12 > len(raw):
            raise InvalidPlot("the file ends inside a chunk")
        (length,) = struct.unpack(">I", raw[position : position + 4])
        kind = raw[position + 4 : position + 8]
        end = position + 8 + length
        if length > 0x7FFFFFFF or end + 4 > len(raw):
            raise InvalidPlot("the file ends inside a chunk")
        if not kind.isalpha() or not kind.isascii():
            raise InvalidPlot("a chunk has an invalid type")
        data = raw[position + 8 : end]
        (crc,) = struct.unpack(">I", raw[end : end + 4])
        if zlib.crc32(kind + data) & 0xFFFFFFFF != crc:
            raise InvalidPlot("a chunk's CRC does not match")
        chunks.append((kind, data))
        position = end + 4
        if kind == b"IEND":
            break
    if position != len(raw):
        raise InvalidPlot("bytes follow the IEND chunk")
    return chunks


def _picture(chunks: list[tuple[bytes, bytes]]) -> tuple[Header, bytes, bytes | None, bytes]:
    """The header, palette, transparency and joined image data, in the order PNG requires."""
    if not chunks or chunks[0][0] != b"IHDR":
        raise InvalidPlot("the file does not start with an IHDR chunk")
    header = _header(chunks[0][1])
    palette = b""
    transparency: bytes | None = None
    image = bytearray()
    seen_image = ended_image = False
    for kind, data in chunks[1:]:
        if seen_image and kind != b"IDAT":
            ended_image = True
        if kind not in KEPT:
            if kind[0:1].isupper():
                raise InvalidPlot("an unknown critical chunk")
            continue  # ancillary: text, metadata, anything else is left out
        if kind == b"IDAT":
            if ended_image:
                raise InvalidPlot("IDAT chunks are not consecutive")
            image += data
            seen_image = True
        elif kind == b"IHDR":
            raise InvalidPlot("a second IHDR chunk")
        elif kind == b"IEND":
            if data:
                raise InvalidPlot("the IEND chunk is not empty")
        elif seen_image:
            raise InvalidPlot(f"a {kind.decode()} chunk after the image data")
        elif kind == b"PLTE":
            if palette or transparency is not None:
                raise InvalidPlot("a misplaced PLTE chunk")
            if not data or len(data) % 3 or len(data) > 3 * 256 or header.colour_type in (0, 4):
                raise InvalidPlot("an invalid PLTE chunk")
            palette = data
        else:  # tRNS
            if transparency is not None:
                raise InvalidPlot("a second tRNS chunk")
            _check_transparency(header, palette, data)
            transparency = data
    if header.colour_type == 3 and not palette:
        raise InvalidPlot("an indexed image without a PLTE chunk")
    if not image:
        raise InvalidPlot("the file has no image data")
    return header, palette, transparency, bytes(image)


def _check_transparency(header: Header, palette: bytes, data: bytes) -> None:
    expected = {0: 2, 2: 6}.get(header.colour_type)
    if header.colour_type == 3:
        if not palette or not data or len(data) > len(palette) // 3:
            raise InvalidPlot("an invalid tRNS chunk")
    elif expected is None or len(data) != expected:
        raise InvalidPlot("an invalid tRNS chunk")
    elif any(value >> header.bit_depth for value in struct.unpack(f">{expected // 2}H", data)):
        # A key colour beyond the bit depth matches no pixel: bytes that only ride along.
        raise InvalidPlot("an invalid tRNS chunk")


def _scanlines(header: Header, compressed: bytes) -> bytes:
    """The decompressed image data, never more than the header implies, filters checked."""
    expected = header.image_bytes
    inflater = zlib.decompressobj()
    try:
        scanlines = inflater.decompress(compressed, expected + 1)
    except zlib.error:
        raise InvalidPlot("the image data is not a valid zlib stream") from None
    if len(scanlines) > expected or inflater.unconsumed_tail:
        raise InvalidPlot("the image data decompresses to more than the image size")
    if not inflater.eof:
        raise InvalidPlot("the image data is incomplete")
    if inflater.unused_data:
        raise InvalidPlot("bytes follow the image data's zlib stream")
    if len(scanlines) != expected:
        raise InvalidPlot("the image data is shorter than the image size")
    stride = 1 + header.row_bytes
    if any(scanlines[row] not in FILTERS for row in range(0, expected, stride)):
        raise InvalidPlot("a scanline has an unknown filter type")
    return scanlines


def canonical_png(raw: bytes) -> CanonicalPng:
    """A fresh PNG of the same pixels, or :class:`InvalidPlot` with the reason."""
    if len(raw) > MAX_PLOT_BYTES:
        raise InvalidPlot(f"the file is larger than {MAX_PLOT_BYTES} bytes")
    header, palette, transparency, compressed = _picture(_chunks(raw))
    scanlines = _scanlines(header, compressed)
    fresh = bytearray(SIGNATURE)
    fresh += _chunk(
        b"IHDR",
        struct.pack(
            ">IIBBBBB", header.width, header.height, header.bit_depth, header.colour_type, 0, 0, 0
        ),
    )
    if header.colour_type == 3:
        # Only an indexed image shows its palette; a truecolour file's "suggested palette" is
        # bytes no browser draws, so it is left out.
        fresh += _chunk(b"PLTE", palette)
    if transparency is not None:
        fresh += _chunk(b"tRNS", transparency)
    fresh += _chunk(b"IDAT", zlib.compress(scanlines, 6))
    fresh += _chunk(b"IEND", b"")
    return CanonicalPng(bytes(fresh), header.width, header.height)


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height of a PNG this module wrote (read from its IHDR)."""
    if not data.startswith(SIGNATURE) or data[12:16] != b"IHDR":
        raise InvalidPlot("not a PNG file")
    width, height = struct.unpack(">II", data[16:24])
    return int(width), int(height)
