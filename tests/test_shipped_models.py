"""The models inside the package: small, loadable, and really hiding bits in a photo."""

from __future__ import annotations

import pytest
import torch
from conftest import SAMPLES

from stegcli.imaging import load_image, quantize
from stegcli.losses import bit_accuracy
from stegcli.metrics import psnr, rs_bits_per_pixel
from stegcli.models import DEFAULT_MODEL_NAME, load_model, shipped_models

SHIPPED = shipped_models()


def test_a_default_and_a_high_capacity_model_ship():
    assert DEFAULT_MODEL_NAME in SHIPPED
    assert any(load_model(path).settings.depth >= 3 for path in SHIPPED.values())


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_shipped_model_is_small_and_describes_itself(name):
    path = SHIPPED[name]
    assert path.stat().st_size < 5 * 1024 * 1024
    model = load_model(path)
    validation = model.info["validation"]
    assert {"val_accuracy", "val_psnr", "val_ssim", "val_rs_bpp"} <= set(validation)
    assert model.info["commands"] and model.info["training_seconds"] > 0


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_shipped_model_hides_bits_in_a_photo_it_never_saw(name):
    """A sample photo (not in the training data), 8-bit rounded exactly as a PNG holds it."""
    model = load_model(SHIPPED[name]).eval()
    cover = load_image(SAMPLES / "skimage_coffee.png").tensor()[..., 100:196, 200:328]
    B, _, H, W = cover.shape
    bits = torch.randint(
        0, 2, (B, model.settings.depth, H, W), generator=torch.Generator().manual_seed(0)
    )
    with torch.no_grad():
        stego = quantize(model.encoder(cover, bits.float()))
        accuracy = bit_accuracy(model.decoder(stego), bits)

    # Floors well below the validation figures, far above chance (0.5 accuracy, 0 bpp).
    assert rs_bits_per_pixel(model.settings.depth, accuracy) > 0.5 * model.settings.depth
    assert psnr(stego, cover) > model.info["validation"]["val_psnr"] - 6
