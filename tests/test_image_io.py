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
