"""Shared fixtures: small crops of the sample photos and a small fresh model."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image

from stegcli.models import StegoModel
from stegcli.networks import ModelSettings

SAMPLES = Path(__file__).resolve().parent.parent / "samples"

# The suite runs beside training jobs; tiny tensors gain nothing from more threads.
torch.set_num_threads(1)


def crop_sample(
    name: str, box: tuple[int, int, int, int], path: Path, mode: str | None = None
) -> Path:
    """Save the ``box`` (left, top, right, bottom) of a sample photo as a PNG at ``path``."""
    with Image.open(SAMPLES / name) as photo:
        piece = photo.convert("RGB").crop(box)
    if mode is not None:
        piece = piece.convert(mode)
    piece.save(path)
    return path


@pytest.fixture(scope="module")
def cover(tmp_path_factory) -> Path:
    """A 161×119 crop (odd sizes) of a sample photo: the cover of the hiding tests."""
    folder = tmp_path_factory.mktemp("covers")
    return crop_sample("skimage_coffee.png", (300, 120, 461, 239), folder / "coffee.png")


@pytest.fixture
def small_png(tmp_path: Path) -> Path:
    """A 23×17 RGB PNG cut from a real photo (odd height and width)."""
    return crop_sample("skimage_chelsea.png", (200, 100, 223, 117), tmp_path / "small.png")


@pytest.fixture
def small_model() -> StegoModel:
    """A freshly initialised small model: dense, 2 bits per pixel, 8 hidden channels."""
    return StegoModel.fresh(ModelSettings(depth=2, hidden=8), seed=0)
