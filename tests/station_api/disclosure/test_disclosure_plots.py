"""Plots: a PNG is re-encoded by the station's own reader, and a result with one is held."""

import base64
import io
import struct
import time
import zipfile
import zlib
from typing import Any

import pytest
from disclosure_samples import (
    REVIEW_MOMENT,
    TRUSTED_IMAGE,
    gate_policy,
    manifest,
    stage_table,
)
from pngfiles import SIGNATURE, chunk, gradient_scanlines, ihdr, png
from pydantic import ValidationError

from pht_contract.manifests import PlotFile, ResultManifest
from pht_station_api.disclosure import GateDecision, Outcome, Rule, gate
from pht_station_api.disclosure.png import InvalidPlot, canonical_png, png_size

#: A policy that trusts the sample image: only the plot itself can hold these results.
POLICY = gate_policy()


def evaluate(*args: Any, **kwargs: Any) -> GateDecision:
    return gate.evaluate(*args, **{"image": TRUSTED_IMAGE, "at": REVIEW_MOMENT, **kwargs})


def plot(data: bytes, name: str = "survival", title: str = "Survival by stage") -> PlotFile:
    return PlotFile.model_validate(
        {"name": name, "title": title, "dataBase64": base64.b64encode(data).decode()}
    )


def chunk_types(data: bytes) -> list[bytes]:
    kinds, position = [], len(SIGNATURE)
    while position < len(data):
        (length,) = struct.unpack(">I", data[position : position + 4])
        kinds.append(data[position + 4 : position + 8])
        position += 12 + length
    return kinds


def image_data(data: bytes) -> bytes:
    joined, position = b"", len(SIGNATURE)
    while position < len(data):
        (length,) = struct.unpack(">I", data[position : position + 4])
        if data[position + 4 : position + 8] == b"IDAT":
            joined += data[position + 8 : position + 8 + length]
        position += 12 + length
    return zlib.decompress(joined)


def test_canonical_png_keeps_the_pixels_and_only_the_picture_chunks() -> None:
    scanlines = gradient_scanlines(40, 30, filters=(0, 1, 2, 3, 4))
    original = png(
        40,
        30,
        scanlines=scanlines,
        before_image=chunk(b"pHYs", b"\x00" * 9),
        after_image=chunk(b"tEXt", b"Comment\x00patient 1234 aged 67"),
    )
    fresh = canonical_png(original)
    assert (fresh.width, fresh.height) == (40, 30)
    assert chunk_types(fresh.data) == [b"IHDR", b"IDAT", b"IEND"]
    assert image_data(fresh.data) == scanlines
    assert b"patient" not in fresh.data
    assert png_size(fresh.data) == (40, 30)
    # Canonical twice is the same file.
    assert canonical_png(fresh.data).data == fresh.data


def test_palette_and_transparency_are_kept() -> None:
    palette = bytes([0, 0, 0, 255, 0, 0, 0, 0, 255])
    rows = b"".join(b"\x00" + bytes([x % 3 for x in range(8)]) for _ in range(4))
    original = (
        SIGNATURE
        + ihdr(8, 4, depth=8, colour=3)
        + chunk(b"PLTE", palette)
        + chunk(b"tRNS", b"\xff\x80")
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )
    fresh = canonical_png(original)
    assert chunk_types(fresh.data) == [b"IHDR", b"PLTE", b"tRNS", b"IDAT", b"IEND"]
    assert image_data(fresh.data) == rows


def test_a_matplotlib_plot_reads_and_keeps_its_pixels() -> None:
    pyplot = pytest.importorskip("matplotlib.pyplot")
    image = pytest.importorskip("PIL.Image")
    figure, axes = pyplot.subplots(figsize=(3, 2), dpi=50)
    axes.step([0, 100, 200, 365], [1.0, 0.9, 0.8, 0.7])
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Author": "algorithm"})
    pyplot.close(figure)
    original = buffer.getvalue()
    assert b"tEXt" in original
    fresh = canonical_png(original)
    assert b"tEXt" not in fresh.data and b"algorithm" not in fresh.data
    before = image.open(io.BytesIO(original))
    after = image.open(io.BytesIO(fresh.data))
    assert after.size == before.size == (fresh.width, fresh.height)
    assert after.tobytes() == before.tobytes()


def zip_bytes(name: str, content: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(name, content)
    return buffer.getvalue()


def test_an_html_and_zip_polyglot_loses_both() -> None:
    html = b"<html><script>alert(document.cookie)</script></html>"
    archive = zip_bytes("patients.csv", b"id,age\n1,67\n")
    # The zip's end record counts the rest of the file (this chunk's CRC and IEND) as its
    # comment, so zip readers open the PNG as an archive.
    archive = archive[:-2] + struct.pack("<H", 4 + 12)
    polyglot = png(before_image=chunk(b"htMl", html), after_image=chunk(b"zipP", archive))
    assert zipfile.is_zipfile(io.BytesIO(polyglot))
    assert html in polyglot
    fresh = canonical_png(polyglot).data
    assert not zipfile.is_zipfile(io.BytesIO(fresh))
    assert b"<html" not in fresh and b"PK" not in fresh


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "not a PNG file"),
        (b"<svg xmlns='http://www.w3.org/2000/svg'><script>x</script></svg>", "not a PNG"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 64, "not a PNG"),
        (png(trailing=b"PK\x05\x06" + b"\x00" * 18), "bytes follow the IEND chunk"),
        (png()[:-20], "ends inside a chunk"),
        (png(width=5000, height=10), "larger than 4096"),
        (
            SIGNATURE
            + ihdr(10, 10, interlace=1)
            + chunk(b"IDAT", zlib.compress(b""))
            + chunk(b"IEND", b""),
            "interlaced",
        ),
        (SIGNATURE + ihdr(10, 10, depth=3) + chunk(b"IEND", b""), "bit depth"),
        (png(before_image=chunk(b"ABCD", b"x")), "unknown critical chunk"),
        (png(scanlines=gradient_scanlines(32, 24, filters=(0, 7))), "unknown filter type"),
        (png(scanlines=gradient_scanlines(32, 23)), "shorter than the image size"),
        (
            SIGNATURE + ihdr(4, 4) + chunk(b"IDAT", b"not zlib at all") + chunk(b"IEND", b""),
            "not a valid zlib stream",
        ),
        (
            SIGNATURE + chunk(b"IDAT", zlib.compress(b"\x00" * 8)) + chunk(b"IEND", b""),
            "does not start with an IHDR",
        ),
        (
            SIGNATURE
            + ihdr(4, 1)
            + chunk(b"IDAT", zlib.compress(b"\x00" * 13))
            + chunk(b"tEXt", b"a\x00b")
            + chunk(b"IDAT", zlib.compress(b""))
            + chunk(b"IEND", b""),
            "not consecutive",
        ),
    ],
    ids=lambda value: value if isinstance(value, str) else "",
)
def test_refusals_name_the_reason(data: bytes, reason: str) -> None:
    with pytest.raises(InvalidPlot, match=reason):
        canonical_png(data)


def test_a_bad_crc_is_refused() -> None:
    good = png()
    position = len(SIGNATURE) + 8 + 13  # the IHDR chunk's CRC
    bad = good[:position] + bytes([good[position] ^ 1]) + good[position + 1 :]
    with pytest.raises(InvalidPlot, match="CRC"):
        canonical_png(bad)


def test_a_header_of_100000_by_100000_pixels_is_refused_before_any_decompression() -> None:
    bomb_header = SIGNATURE + ihdr(100_000, 100_000) + chunk(b"IDAT", b"x") + chunk(b"IEND", b"")
    with pytest.raises(InvalidPlot, match="larger than 4096"):
        canonical_png(bomb_header)


def test_a_zlib_bomb_stops_at_the_size_the_header_implies() -> None:
    # 4096 × 4096 RGBA says 64 MiB; the stream inflates to 1 GiB of zeros from about 1 MiB.
    inflater = zlib.compressobj(9)
    block = b"\x00" * (1 << 20)
    stream = b"".join(inflater.compress(block) for _ in range(1024)) + inflater.flush()
    assert len(stream) < 2 * 1024 * 1024
    bomb = (
        SIGNATURE
        + ihdr(4096, 4096, depth=8, colour=6)
        + chunk(b"IDAT", stream)
        + chunk(b"IEND", b"")
    )
    started = time.monotonic()
    with pytest.raises(InvalidPlot, match="more than the image size"):
        canonical_png(bomb)
    assert time.monotonic() - started < 10


def test_a_file_over_the_size_bound_is_refused() -> None:
    with pytest.raises(InvalidPlot, match="larger than"):
        canonical_png(SIGNATURE + b"\x00" * (8 * 1024 * 1024))


@pytest.mark.parametrize("name", ["../etc/passwd", "a/b", "plot.png", "C:\\x", ""])
def test_a_plot_name_with_path_characters_is_not_a_manifest(name: str) -> None:
    with pytest.raises(ValidationError):
        plot(png(), name=name)


def test_plot_titles_carry_no_markup_and_names_are_unique() -> None:
    with pytest.raises(ValidationError):
        plot(png(), title="<img src=x onerror=alert(1)>")
    with pytest.raises(ValidationError):
        ResultManifest.model_validate({"plots": [plot(png()).model_dump(by_alias=True)] * 2})
    with pytest.raises(ValidationError):
        ResultManifest.model_validate(
            {"plots": [plot(png(), name=f"p{i}").model_dump(by_alias=True) for i in range(5)]}
        )


def test_a_result_with_a_plot_is_always_held_and_leaves_canonical() -> None:
    uploaded = png(after_image=chunk(b"tEXt", b"Comment\x00hidden words"))
    decision = evaluate(
        manifest(tables=[stage_table([50, 50])], plots=[plot(uploaded)]),
        POLICY,
        audited_cohort=100,
    )
    assert (decision.outcome, decision.rule) == (Outcome.HELD, Rule.PLOT_HELD)
    assert [f.where for f in decision.findings if f.rule == Rule.PLOT_HELD] == ["survival"]
    leaving = base64.b64decode(decision.released.plots[0].data_base64)
    assert leaving == canonical_png(uploaded).data
    assert b"hidden words" not in leaving


def test_the_same_result_without_the_plot_is_released() -> None:
    decision = evaluate(manifest(tables=[stage_table([50, 50])]), POLICY, audited_cohort=100)
    assert decision.outcome == Outcome.RELEASED


def test_an_invalid_plot_blocks_the_result_with_its_reason() -> None:
    jpeg = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 64
    decision = evaluate(
        manifest(plots=[plot(png(), name="ok"), plot(jpeg, name="photo")]),
        POLICY,
        audited_cohort=100,
    )
    assert (decision.outcome, decision.rule) == (Outcome.BLOCKED, Rule.INVALID_PLOT)
    assert "InvalidPlot (photo: not a PNG file): Blocked" in [
        f.describe() for f in decision.findings
    ]
    assert decision.released.plots == []


def test_a_plot_that_is_not_base64_is_refused() -> None:
    broken = PlotFile.model_validate({"name": "p", "title": "P", "dataBase64": "%%%"})
    decision = evaluate(manifest(plots=[broken]), POLICY, audited_cohort=100)
    assert decision.rule == Rule.INVALID_PLOT


def test_16_bit_samples_whose_low_bytes_no_screen_shows_are_refused() -> None:
    # Each 16-bit sample's high byte draws a grey square; its low byte spells a patient list.
    hidden = b"patient 4711 born 1950-01-01;" * 2
    width = len(hidden)
    row = b"".join(bytes([0x80, letter]) for letter in hidden)
    scanlines = b"".join(b"\x00" + row for _ in range(4))
    data = (
        SIGNATURE
        + ihdr(width, 4, depth=16, colour=0)
        + chunk(b"IDAT", zlib.compress(scanlines))
        + chunk(b"IEND", b"")
    )
    with pytest.raises(InvalidPlot, match="16-bit samples are not accepted"):
        canonical_png(data)
    decision = evaluate(manifest(plots=[plot(data)]), POLICY, audited_cohort=100)
    assert (decision.outcome, decision.rule) == (Outcome.BLOCKED, Rule.INVALID_PLOT)
    assert decision.released.plots == []


def test_the_largest_8_bit_picture_is_accepted() -> None:
    side = 4096
    scanlines = bytes((1 + side * 4) * side)
    data = (
        SIGNATURE
        + ihdr(side, side, colour=6)
        + chunk(b"IDAT", zlib.compress(scanlines))
        + chunk(b"IEND", b"")
    )
    canonical = canonical_png(data)
    assert (canonical.width, canonical.height) == (side, side)


def test_a_truecolour_files_suggested_palette_no_browser_draws_is_left_out() -> None:
    hidden = b"patient 4711 born 1950-01-01, patient 4712 born 1961-02-03".ljust(96, b" ")
    original = png(8, 4, before_image=chunk(b"PLTE", hidden))
    fresh = canonical_png(original)
    assert chunk_types(fresh.data) == [b"IHDR", b"IDAT", b"IEND"]
    assert b"patient" not in fresh.data
    assert image_data(fresh.data) == gradient_scanlines(8, 4)


def test_many_tiny_image_chunks_read_and_a_chunk_flood_is_refused() -> None:
    scanlines = gradient_scanlines(16, 16)
    compressed = zlib.compress(scanlines)
    pieces = b"".join(chunk(b"IDAT", compressed[i : i + 1]) for i in range(len(compressed)))
    split = SIGNATURE + ihdr(16, 16) + pieces + chunk(b"IEND", b"")
    assert image_data(canonical_png(split).data) == scanlines
    flood = SIGNATURE + ihdr(16, 16) + chunk(b"IDAT", compressed) + chunk(b"tIME", b"x") * 4100
    with pytest.raises(InvalidPlot, match="too many chunks"):
        canonical_png(flood + chunk(b"IEND", b""))


def test_a_transparent_key_colour_beyond_the_bit_depth_is_refused() -> None:
    # An 8-bit truecolour key whose high bytes spell "pat" matches no pixel: it would only
    # carry those bytes along.
    key = bytes([ord("p"), 0, ord("a"), 0, ord("t"), 0])
    with pytest.raises(InvalidPlot, match="invalid tRNS"):
        canonical_png(png(8, 4, before_image=chunk(b"tRNS", key)))
    fresh = canonical_png(png(8, 4, before_image=chunk(b"tRNS", bytes([0, 255, 0, 64, 0, 0]))))
    assert chunk_types(fresh.data) == [b"IHDR", b"tRNS", b"IDAT", b"IEND"]
