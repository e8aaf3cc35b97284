"""Tiled encoding and decoding leave no seams; refinement makes the decoder read right."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import SAMPLES
from PIL import Image

import stegcli.hiding
from stegcli import container, ldpc
from stegcli.embedding import decode_tiled, encode_tiled, refine
from stegcli.hiding import hide, reveal
from stegcli.imaging import load_image
from stegcli.metrics import psnr
from stegcli.models import resolve_model
from stegcli.strength import Strength


@pytest.fixture(scope="module")
def model():
    return resolve_model(None).eval()


@pytest.fixture(scope="module")
def photo() -> torch.Tensor:
    """A 150×203 piece of a sample photo, (1, 3, H, W) in [-1, 1]."""
    return load_image(SAMPLES / "skimage_coffee.png").tensor()[..., 90:240, 180:383]


def bits_for(image: torch.Tensor, depth: int, seed: int = 0) -> torch.Tensor:
    H, W = image.shape[-2:]
    return torch.randint(0, 2, (1, depth, H, W), generator=torch.Generator().manual_seed(seed))


def test_tiles_leave_no_seams(model, photo):
    bits = bits_for(photo, model.settings.depth)
    whole = encode_tiled(model.encoder, photo, bits, tile=1024)
    tiled = encode_tiled(model.encoder, photo, bits, tile=48)
    # Float rounding may move a pixel across a rounding boundary, never by more than a level.
    levels = ((whole - tiled).abs() * 127.5).round()
    assert levels.max() <= 1 and (levels > 0).float().mean() < 1e-3
    logits_whole = decode_tiled(model.decoder, whole, tile=1024)
    logits_tiled = decode_tiled(model.decoder, whole, tile=37)
    assert torch.allclose(logits_whole, logits_tiled, atol=1e-3)


def test_refinement_makes_the_decoder_read_every_cared_bit(model, photo):
    bits = bits_for(photo, model.settings.depth, seed=1)
    stego = encode_tiled(model.encoder, photo, bits)
    with torch.no_grad():
        before = ((model.decoder(stego) > 0) == bits.bool()).float().mean().item()
    everywhere = torch.ones(photo.shape[-2:], dtype=torch.bool)
    refined = refine(model.decoder, photo, stego, bits, everywhere)
    with torch.no_grad():
        after = ((model.decoder(refined) > 0) == bits.bool()).float().mean().item()
    assert before < 0.999 < after
    assert psnr(refined, photo) > 30
    # Refined pixels are still 8-bit levels, as a PNG holds them.
    levels = (refined + 1) * 127.5
    assert torch.allclose(levels, levels.round(), atol=1e-3)


def test_encode_refines_when_the_trial_was_too_optimistic(tmp_path, monkeypatch):
    """With a code far too weak for this photo (9/10 where its trial finds 3/4 safe), the
    high-capacity model's first stego pixels do not decode: encode must refine them until
    every codeword does, and the written image must decode."""
    model = resolve_model("high-capacity").eval()
    cover = tmp_path / "cover.png"
    with Image.open(SAMPLES / "skimage_coffee.png") as image:
        image.convert("RGB").crop((180, 90, 383, 240)).save(cover)
    weak = ldpc.RATES.index((9, 10))
    room = container.ldpc_file_capacity(4 * 203 * 150, weak)
    monkeypatch.setattr(stegcli.hiding, "measure", lambda model, cover: Strength(weak, room, 0.0))
    payload = np.random.default_rng(0).bytes(room)
    result = hide(cover, payload, "p.bin", tmp_path / "stego.png", model, force=True)
    assert result.refine_steps >= 1 and result.psnr > 28
    monkeypatch.undo()
    assert reveal(Path(tmp_path / "stego.png"), model)[1] == payload
