"""PNG files for the plot tests, written byte by byte (chunks, CRCs, zlib) so each test can
build exactly the file it means, hostile ones included."""

import struct
import zlib

SIGNATURE = b"\x89PNG\r\n\x1a\n"


def chunk(kind: bytes, data: bytes, crc: int | None = None) -> bytes:
    value = zlib.crc32(kind + data) & 0xFFFFFFFF if crc is None else crc
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", value)


def ihdr(width: int, height: int, depth: int = 8, colour: int = 2, interlace: int = 0) -> bytes:
    return chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, interlace))


def gradient_scanlines(width: int, height: int, filters: tuple[int, ...] = (0,)) -> bytes:
    """RGB rows of a red-to-blue gradient, each behind one of ``filters`` (in turn)."""
    rows = bytearray()
    for y in range(height):
        rows.append(filters[y % len(filters)])
        for x in range(width):
            rows += bytes(((x * 255) // max(width - 1, 1), 64, (y * 255) // max(height - 1, 1)))
    return bytes(rows)


def png(
    width: int = 32,
    height: int = 24,
    *,
    before_image: bytes = b"",
    after_image: bytes = b"",
    scanlines: bytes | None = None,
    trailing: bytes = b"",
) -> bytes:
    """A truecolour PNG; ``before_image``/``after_image`` are extra chunks around IDAT."""
    image = gradient_scanlines(width, height) if scanlines is None else scanlines
    return (
        SIGNATURE
        + ihdr(width, height)
        + before_image
        + chunk(b"IDAT", zlib.compress(image))
        + after_image
        + chunk(b"IEND", b"")
        + trailing
    )
