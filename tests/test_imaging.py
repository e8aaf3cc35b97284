"""Reading images of every kind, and the pixel ↔ tensor conversions."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from stegcli.errors import ImageError
from stegcli.imaging import load_image, pixels_to_tensor, quantize, tensor_to_pixels


def _rgb_pixels(height: int, width: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def test_rgb_png_loads_unchanged(small_png):
    with Image.open(small_png) as image:
        expected = np.asarray(image.convert("RGB"))
    loaded = load_image(small_png)
    assert loaded.pixels.dtype == np.uint8
    assert loaded.pixels.shape == (17, 23, 3)
    assert (loaded.width, loaded.height) == (23, 17)
    assert np.array_equal(loaded.pixels, expected)
    assert loaded.original_mode == "RGB"
    assert loaded.conversions == []
    assert loaded.path == small_png


def test_grayscale_is_copied_into_three_channels(tmp_path):
    gray = np.random.default_rng(1).integers(0, 256, (5, 7), dtype=np.uint8)
    path = tmp_path / "gray.png"
    Image.fromarray(gray, mode="L").save(path)
    loaded = load_image(path)
    assert loaded.original_mode == "L"
    assert loaded.pixels.shape == (5, 7, 3)
    for channel in range(3):
        assert np.array_equal(loaded.pixels[..., channel], gray)
    assert any("grayscale" in change for change in loaded.conversions)


def test_palette_colours_are_expanded(tmp_path):
    palette = [255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 20, 30]
    image = Image.new("P", (3, 2))
    image.putpalette(palette + [0] * (768 - len(palette)))
    image.putdata([0, 1, 2, 3, 2, 1])
    path = tmp_path / "palette.png"
    image.save(path)

    loaded = load_image(path)
    colours = np.array(palette, dtype=np.uint8).reshape(4, 3)
    assert np.array_equal(loaded.pixels, colours[[[0, 1, 2], [3, 2, 1]]])
    assert loaded.original_mode == "P"
    assert any("palette" in change for change in loaded.conversions)
    assert not any("alpha" in change for change in loaded.conversions)


def test_palette_with_transparency_reports_alpha(tmp_path):
    image = Image.new("P", (3, 2))
    image.putpalette([255, 0, 0, 0, 255, 0] + [0] * 762)
    image.putdata([0, 1, 0, 1, 0, 1])
    path = tmp_path / "palette.png"
    image.save(path, transparency=1)
    loaded = load_image(path)
    assert loaded.pixels[0, 0].tolist() == [255, 0, 0]
    assert loaded.pixels[0, 1].tolist() == [0, 255, 0]
    assert any("alpha" in change for change in loaded.conversions)


def test_rgba_keeps_the_colours_and_reports_alpha(tmp_path):
    rgb = _rgb_pixels(4, 6, seed=2)
    alpha = np.random.default_rng(3).integers(0, 256, (4, 6, 1), dtype=np.uint8)
    path = tmp_path / "rgba.png"
    Image.fromarray(np.concatenate([rgb, alpha], axis=2), mode="RGBA").save(path)
    loaded = load_image(path)
    assert loaded.original_mode == "RGBA"
    assert np.array_equal(loaded.pixels, rgb)
    assert any("alpha" in change for change in loaded.conversions)


def test_16_bit_samples_are_scaled_not_clipped(tmp_path):
    values = np.array([[0, 257, 32768], [65535, 65535, 1000]], dtype=np.uint16)
    path = tmp_path / "deep.png"
    Image.fromarray(values).save(path)
    with Image.open(path) as image:
        assert image.mode == "I;16"  # the file really holds 16-bit samples

    loaded = load_image(path)
    assert loaded.original_mode == "I;16"
    assert loaded.pixels[..., 0].tolist() == [[0, 1, 128], [255, 255, 4]]
    assert np.array_equal(loaded.pixels[..., 0], loaded.pixels[..., 2])
    assert any("8 bits" in change for change in loaded.conversions)


def test_cmyk_jpeg_is_converted_to_rgb(tmp_path):
    path = tmp_path / "cmyk.jpg"
    image = Image.new("CMYK", (8, 6), (0, 0, 0, 0))  # no ink: white
    image.paste((255, 0, 0, 0), (0, 0, 4, 6))  # full cyan on the left half
    image.save(path, quality=95)
    loaded = load_image(path)
    assert loaded.original_mode == "CMYK"
    assert loaded.pixels.shape == (6, 8, 3)
    assert np.abs(loaded.pixels[:, 6:].astype(int) - 255).max() <= 3
    assert np.abs(loaded.pixels[:, :2].astype(int) - [0, 255, 255]).max() <= 3
    assert any("CMYK" in change for change in loaded.conversions)


def test_exif_orientation_is_applied(tmp_path):
    stored = _rgb_pixels(2, 4, seed=4)  # 4 wide, 2 high as stored
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    path = tmp_path / "rotated.png"
    Image.fromarray(stored).save(path, exif=exif)

    loaded = load_image(path)
    assert (loaded.width, loaded.height) == (2, 4)
    assert np.array_equal(loaded.pixels, np.rot90(stored, k=-1))
    assert any("orientation" in change and "6" in change for change in loaded.conversions)


def test_tensor_range_and_layout():
    pixels = np.zeros((3, 5, 3), dtype=np.uint8)
    pixels[0, 0] = [0, 255, 51]
    pixels[2, 4] = [255, 0, 204]
    tensor = pixels_to_tensor(pixels)
    assert tensor.shape == (1, 3, 3, 5)
    assert tensor.dtype == torch.float32
    assert tensor[0, :, 0, 0].tolist() == pytest.approx([-1.0, 1.0, 51 / 127.5 - 1])
    assert tensor[0, :, 2, 4].tolist() == pytest.approx([1.0, -1.0, 204 / 127.5 - 1])
    full = pixels_to_tensor(_rgb_pixels(16, 16, seed=5))
    assert full.min() >= -1 and full.max() <= 1


def test_loaded_image_tensor(small_png):
    loaded = load_image(small_png)
    assert torch.equal(loaded.tensor(), pixels_to_tensor(loaded.pixels))


def test_pixels_round_trip_exactly():
    every_value = np.arange(256 * 3, dtype=np.int64).reshape(16, 16, 3) % 256
    pixels = np.concatenate([every_value.astype(np.uint8), _rgb_pixels(16, 16, seed=6)])
    back = tensor_to_pixels(pixels_to_tensor(pixels))
    assert back.dtype == np.uint8
    assert np.array_equal(back, pixels)
    # Non-contiguous input (a transposed view) round-trips as well.
    view = pixels.transpose(1, 0, 2)
    assert np.array_equal(tensor_to_pixels(pixels_to_tensor(view)), view)


def test_tensor_to_pixels_clamps_and_rounds():
    tensor = torch.tensor([-3.0, -1.0, 0.0, 1.0, 2.5, 1 / 127.5 - 1 + 0.4 / 127.5])
    pixels = tensor_to_pixels(tensor.view(1, 1, 1, 6).expand(1, 3, 1, 6))
    assert pixels[0, :, 0].tolist() == [0, 0, 128, 255, 255, 1]


@settings(max_examples=50, deadline=None)
@given(
    st.integers(1, 20).flatmap(
        lambda n: st.lists(st.floats(-3.0, 3.0, width=32), min_size=3 * n, max_size=3 * n)
    )
)
def test_quantize_is_idempotent_and_on_the_pixel_grid(values):
    image = torch.tensor(values, dtype=torch.float32).view(1, 3, 1, -1)
    once = quantize(image)
    assert torch.equal(quantize(once), once)
    assert once.min() >= -1 and once.max() <= 1
    levels = (once + 1) * 127.5
    assert torch.allclose(levels, levels.round(), atol=1e-4)
    # It is what 8-bit pixels hold.
    assert torch.equal(once, pixels_to_tensor(tensor_to_pixels(image)))


def test_quantize_equals_a_png_written_and_read_back(tmp_path):
    generator = torch.Generator().manual_seed(7)
    image = torch.randn((1, 3, 9, 11), generator=generator) * 0.8
    path = tmp_path / "stego.png"
    Image.fromarray(tensor_to_pixels(image)).save(path)
    assert torch.equal(load_image(path).tensor(), quantize(image))
    assert not torch.equal(quantize(image), image)


def test_missing_file(tmp_path):
    with pytest.raises(ImageError, match="does not exist"):
        load_image(tmp_path / "absent.png")


def test_directory_is_not_an_image(tmp_path):
    with pytest.raises(ImageError):
        load_image(tmp_path)


def test_empty_file(tmp_path):
    path = tmp_path / "empty.png"
    path.write_bytes(b"")
    with pytest.raises(ImageError):
        load_image(path)


def test_text_file(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("this is not an image\n" * 10)
    with pytest.raises(ImageError, match="not an image format"):
        load_image(path)


def test_truncated_png(small_png):
    data = small_png.read_bytes()
    small_png.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageError, match="truncated"):
        load_image(small_png)


@pytest.mark.parametrize("limit", [100, 300])  # past the error level, and the warning level
def test_decompression_bomb_guard(small_png, monkeypatch, limit):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", limit)  # the 23×17 image has 391 pixels
    with pytest.raises(ImageError, match="decompression"):
        load_image(small_png)


def test_decompression_bomb_guard_lets_smaller_images_through(small_png, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 391)
    assert load_image(small_png).pixels.shape == (17, 23, 3)
