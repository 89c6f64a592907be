"""load_image: every input type, colour mode, EXIF orientation and bad input."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ganfit_core.face import image_io
from ganfit_core.face.errors import (
    CorruptImageError,
    DecompressionBombError,
    EmptyImageError,
    ImageLoadError,
    NotAnImageError,
    UnsupportedImageError,
)
from ganfit_core.face.image_io import BACKGROUND_GREY, load_image


def _encode(image: Image.Image, fmt: str = "PNG", **kwargs: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **kwargs)
    return buffer.getvalue()


def _rgb(width: int = 24, height: int = 16) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (height, width, 3), dtype=np.uint8)


def _check_rgb(array: np.ndarray, shape: tuple[int, int]) -> None:
    assert array.dtype == np.uint8
    assert array.shape == (*shape, 3)


def test_same_result_from_path_bytes_pil_and_array(tmp_path: Path) -> None:
    pixels = _rgb()
    data = _encode(Image.fromarray(pixels))
    path = tmp_path / "photo.png"
    path.write_bytes(data)
    for source in (path, str(path), data, bytearray(data), Image.fromarray(pixels), pixels):
        np.testing.assert_array_equal(load_image(source), pixels)


@pytest.mark.parametrize("mode", ["1", "L", "P", "CMYK", "YCbCr", "RGB", "LAB", "HSV"])
def test_colour_modes_become_rgb(mode: str) -> None:
    source = (
        Image.fromarray(_rgb()).convert(mode) if mode not in ("LAB", "HSV") else Image.new(mode, (24, 16))
    )
    _check_rgb(load_image(source), (16, 24))


def test_grey_image_keeps_its_values() -> None:
    grey = Image.fromarray(np.full((5, 7), 77, np.uint8), mode="L")
    out = load_image(_encode(grey))
    assert (out == 77).all()


@pytest.mark.parametrize("mode", ["RGBA", "LA", "PA"])
def test_transparency_is_composited_on_grey(mode: str) -> None:
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., :3] = 255
    rgba[:2, :, 3] = 255  # top half opaque white, bottom half fully transparent
    image = Image.fromarray(rgba, mode="RGBA")
    if mode != "RGBA":
        image = image.convert(mode)
    out = load_image(image if mode == "PA" else _encode(image))  # PNG cannot store PA
    assert (out[:2] == 255).all()
    assert (out[2:] == BACKGROUND_GREY).all()


def test_palette_with_transparency() -> None:
    image = Image.new("P", (4, 4), 0)
    image.putpalette([255, 0, 0, 0, 255, 0] + [0] * 762)
    image.info["transparency"] = 0
    out = load_image(_encode(image))
    assert (out == BACKGROUND_GREY).all()


def test_16_bit_png_is_scaled_to_8_bit() -> None:
    values = np.array([[0, 65535], [32768, 257 * 100]], dtype=np.uint16)
    out = load_image(_encode(Image.fromarray(values)))
    np.testing.assert_allclose(out[..., 0], [[0, 255], [128, 100]], atol=1)


@pytest.mark.parametrize(
    ("mode", "values", "expected"), [("I", [0, 255], [0, 255]), ("F", [0.0, 0.5], [0, 128])]
)
def test_int32_and_float_images(mode: str, values: list[float], expected: list[int]) -> None:
    dtype = np.int32 if mode == "I" else np.float32
    image = Image.fromarray(np.array([values], dtype=dtype), mode=mode)
    np.testing.assert_allclose(load_image(image)[0, :, 1], expected, atol=1)


def test_arrays_of_other_types() -> None:
    np.testing.assert_array_equal(load_image(np.full((2, 3), 65535, np.uint16)), 255)
    np.testing.assert_array_equal(load_image(np.full((2, 3, 3), 1.0, np.float32)), 255)
    np.testing.assert_array_equal(load_image(np.ones((2, 3, 1), bool)), 255)
    _check_rgb(load_image(np.zeros((2, 3, 4), np.uint8)), (2, 3))


def test_large_images_are_downsized() -> None:
    out = load_image(np.zeros((300, 1000, 3), np.uint8), max_side=100)
    _check_rgb(out, (30, 100))


def test_exif_orientation_is_applied() -> None:
    stored = np.zeros((20, 40, 3), np.uint8)  # landscape as stored: left red, right blue
    stored[:, :20, 0] = 255
    stored[:, 20:, 2] = 255
    exif = Image.Exif()
    exif[0x0112] = 6  # display = stored rotated 90° clockwise
    out = load_image(_encode(Image.fromarray(stored), "JPEG", exif=exif, quality=95))
    assert out.shape == (40, 20, 3)  # portrait once upright
    assert out[:15, :, 0].mean() > 200 and out[:15, :, 2].mean() < 50  # stored left → top
    assert out[25:, :, 2].mean() > 200 and out[25:, :, 0].mean() < 50


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ImageLoadError, match="not found"):
        load_image(tmp_path / "nope.jpg")


def test_folder_is_not_an_image(tmp_path: Path) -> None:
    with pytest.raises(NotAnImageError, match="folder"):
        load_image(tmp_path)


def test_empty_inputs(tmp_path: Path) -> None:
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    for source in (empty, b""):
        with pytest.raises(EmptyImageError, match="empty"):
            load_image(source)
    with pytest.raises(EmptyImageError, match="zero size"):
        load_image(np.zeros((0, 5, 3), np.uint8))


def test_non_image_bytes_and_file(tmp_path: Path) -> None:
    text = tmp_path / "notes.jpg"
    text.write_text("this is not a photo")
    for source in (text, b"%PDF-1.4 not an image"):
        with pytest.raises(NotAnImageError, match="not an image"):
            load_image(source)


def test_truncated_jpeg() -> None:
    data = _encode(Image.fromarray(_rgb(64, 64)), "JPEG")
    with pytest.raises(CorruptImageError, match="truncated or corrupt"):
        load_image(data[: len(data) // 2])


def test_corrupt_png_data() -> None:
    data = bytearray(_encode(Image.fromarray(_rgb(64, 64))))
    start = data.index(b"IDAT") + 8
    data[start : start + 40] = b"\xff" * 40
    with pytest.raises(CorruptImageError):
        load_image(bytes(data))


def test_decompression_bomb_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(image_io, "MAX_PIXELS", 100)
    data = _encode(Image.new("L", (20, 20)))
    with pytest.raises(DecompressionBombError, match="pixel"):
        load_image(data)
    with pytest.raises(DecompressionBombError):
        load_image(np.zeros((20, 20), np.uint8))


def test_unsupported_inputs() -> None:
    with pytest.raises(UnsupportedImageError, match="expected a path"):
        load_image(42)  # type: ignore[arg-type]
    with pytest.raises(UnsupportedImageError, match="shape"):
        load_image(np.zeros((4, 4, 2), np.uint8))
    with pytest.raises(UnsupportedImageError, match="dtype"):
        load_image(np.zeros((4, 4), np.complex64))
    with pytest.raises(UnsupportedImageError, match="NaN"):
        load_image(np.full((4, 4), np.nan))


def test_errors_are_value_errors() -> None:
    assert issubclass(ImageLoadError, ValueError)
    with pytest.raises(ValueError):
        load_image(b"junk")


def test_large_jpeg_is_decoded_small_with_the_right_content() -> None:
    gradient = np.broadcast_to(np.linspace(0, 255, 1000)[None, :, None], (600, 1000, 3)).astype(np.uint8)
    out = load_image(_encode(Image.fromarray(gradient), "JPEG", quality=95), max_side=200)
    _check_rgb(out, (120, 200))
    np.testing.assert_allclose(out[60, :, 1], np.linspace(0, 255, 200), atol=8)


# ------------------------------------------------------------------ bounded decoding (issue #15)


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose IHDR declares ``width`` × ``height`` (no pixel data worth decoding)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")
    )


def _jpeg_declaring(width: int, height: int) -> bytes:
    """A small JPEG whose SOF0 header is patched to declare ``width`` × ``height``."""
    data = bytearray(_encode(Image.fromarray(_rgb(16, 16)), "JPEG"))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = height.to_bytes(2, "big") + width.to_bytes(2, "big")
    return bytes(data)


def test_zero_size_png_is_empty_not_unreadable(tmp_path: Path) -> None:
    path = tmp_path / "zero.png"
    path.write_bytes(_png_header_only(0, 0))
    for source in (path, path.read_bytes()):
        with pytest.raises(EmptyImageError, match="empty"):
            load_image(source)


@pytest.mark.parametrize(
    "data",
    [_png_header_only(20_000, 20_000), _png_header_only(60_000, 60_000), _jpeg_declaring(40_000, 40_000)],
)
def test_decompression_bomb_message_quotes_one_limit(data: bytes) -> None:
    """Today's main quotes PIL's 2× limit and ours in one message; now there is one budget."""
    with pytest.raises(DecompressionBombError) as caught:
        load_image(data)
    message = str(caught.value)
    assert f"{image_io.MAX_PIXELS:,}" in message
    assert "exceeds limit" not in message and f"{2 * image_io.MAX_PIXELS:,}" not in message
    assert Image.MAX_IMAGE_PIXELS is not None  # PIL's global check is restored after the open


def test_corrupt_exif_is_logged_not_warned(caplog: pytest.LogCaptureFixture) -> None:
    import struct
    import warnings

    entry = struct.pack("<HHII", 0x010F, 2, 100, 1000)  # "Make", 100 ASCII bytes at an offset past the end
    tiff = b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", 1) + entry + struct.pack("<I", 0)
    data = _encode(Image.fromarray(_rgb(20, 20)), "JPEG", exif=b"Exif\x00\x00" + tiff)
    with warnings.catch_warnings(record=True) as seen, caplog.at_level("WARNING"):
        warnings.simplefilter("always")
        _check_rgb(load_image(data), (20, 20))
    assert [str(w.message) for w in seen] == []
    assert any("image data" in record.getMessage() for record in caplog.records)


def _reference(image: Image.Image, max_side: int) -> np.ndarray:
    """The straightforward pipeline: orient, convert at full size, then one area resize."""
    from PIL import ImageOps

    image = ImageOps.exif_transpose(image)
    if image.mode in ("RGBA", "LA", "PA", "P"):
        rgba = image.convert("RGBA")
        image = Image.new("RGB", image.size, (BACKGROUND_GREY,) * 3)
        image.paste(rgba, mask=rgba.getchannel("A"))
    image = image.convert("RGB")
    scale = max_side / max(image.size)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return np.asarray(image.resize(size, Image.Resampling.BOX))


@pytest.mark.parametrize("mode", ["1", "L", "P", "RGB", "RGBA", "LA", "CMYK", "YCbCr"])
def test_reduced_decoding_matches_full_size_conversion(mode: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(image_io, "STRIP_PIXELS", 301 * 7)  # many strips, none aligned to anything
    y, x = np.mgrid[0:203, 0:301] / 100.0
    channels = [np.sin(1.3 * x + 0.7 * y + phase) for phase in (0.0, 1.5, 3.0, 4.5)]
    smooth = np.round((np.stack(channels, axis=-1) + 1.0) * 127.5).astype(np.uint8)
    image = Image.fromarray(smooth, "RGBA").convert(mode)
    out = load_image(image, max_side=60)
    expected = _reference(image, 60)
    assert out.shape == expected.shape == (40, 60, 3)
    difference = np.abs(out.astype(int) - expected.astype(int))
    if mode == "1":  # dither noise: two slightly different area filters differ per pixel, not on average
        assert difference.mean() < 12 and abs(out.mean() - expected.mean()) < 1.0
    else:
        assert difference.mean() < 1.0 and difference.max() <= 12


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_on_a_reduced_jpeg(orientation: int) -> None:
    stored = np.zeros((200, 400, 3), np.uint8)
    stored[:100, :200] = (255, 0, 0)
    stored[:100, 200:] = (0, 255, 0)
    stored[100:, :200] = (0, 0, 255)
    stored[100:, 200:] = (255, 255, 255)
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = _encode(Image.fromarray(stored), "JPEG", exif=exif, quality=95)
    out = load_image(data, max_side=40)
    expected = _reference(Image.open(io.BytesIO(data)), 40)
    assert out.shape == expected.shape
    assert np.abs(out.astype(int) - expected.astype(int)).mean() < 6


def test_16_bit_png_is_reduced_before_its_bit_depth_is_converted() -> None:
    """Averaging at 16 bits keeps values a full-size 8-bit conversion would round away."""
    values = np.tile(np.array([[256 * 10, 256 * 10 + 255]], np.uint16), (4, 50))  # 2× 10.0 and 10.996 /255
    out = load_image(_encode(Image.fromarray(values)), max_side=50)
    assert out.shape == (2, 50, 3)
    np.testing.assert_allclose(out[..., 0], round((2560 + 2815) / 2 / 65535 * 255), atol=0)


@pytest.mark.parametrize(
    ("mode", "bit_depth", "side", "limit_mib"),
    [("L", 16, 16384, 900), ("RGBA", 8, 16384, 1300), ("RGB", 8, 16000, 1300)],
)
def test_huge_small_files_load_within_bounded_memory(
    tmp_path: Path, mode: str, bit_depth: int, side: int, limit_mib: float
) -> None:
    """The issue's probes (0.5–3 MB files): today's main peaks at 7.4 GB, 3.5 GB and 2.3 GB of RSS
    over the imports; now at most the file's own decoded size plus a few strips."""
    from probe_images import QUADRANTS, peak_rss_mib, write_quadrant_png

    path = write_quadrant_png(
        tmp_path / f"probe_{mode}{bit_depth}.png", side, side, mode=mode, bit_depth=bit_depth
    )
    probe = peak_rss_mib(
        "from ganfit_core.face.image_io import load_image\n# -- measure --\n"
        f"a = load_image({str(path)!r})\n"
        "result = [list(a.shape), a[5, 5].tolist(), a[5, -5].tolist(), a[-5, 5].tolist(), a[-5, -5].tolist()]"
    )
    shape, *corners = probe["result"]
    assert shape == [2048, 2048, 3]
    for corner, colour in zip(corners, QUADRANTS, strict=True):
        expected = (
            colour[:3]
            if mode != "L"
            else [round(0.299 * colour[0] + 0.587 * colour[1] + 0.114 * colour[2])] * 3
        )
        np.testing.assert_allclose(corner, expected, atol=1)
    assert probe["peak_mib"] - probe["baseline_mib"] < limit_mib, probe
