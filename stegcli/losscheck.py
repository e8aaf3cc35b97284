"""The core of ``stegcli loss-check``: every loss term of training, measured on given photos.

For each cover, the fake image is either a stego image the user gives, or the model's own
encoder output for the payload bits, clamped and rounded to 8-bit pixels exactly as a
written stego image would be. Both go through the same loss functions as training.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from stegcli.errors import InputError
from stegcli.imaging import LoadedImage, load_image, quantize
from stegcli.losses import LossWeights, bit_accuracy, critic_loss, generator_loss
from stegcli.metrics import psnr_from_mse
from stegcli.models import StegoModel

# The figures reported per image, in the order they are shown.
TERMS = (
    "decoder_loss",
    "encoder_mse",
    "adversarial_loss",
    "gradient_penalty",
    "critic_loss",
    "total",
    "bit_accuracy",
    "psnr",
)


@dataclass
class ImageLosses:
    """The loss terms of one cover and its stego image (plain floats)."""

    cover: str
    stego: str | None
    width: int
    height: int
    conversions: list[str]  # what was converted in the cover and stego, "path: change"
    figures: dict[str, float]


@dataclass
class LossCheckReport:
    """The figures of every image, and what produced them."""

    model: StegoModel
    weights: LossWeights
    seed: int
    payload: str
    images: list[ImageLosses] = field(default_factory=list)

    def mean(self) -> dict[str, float]:
        """The mean of each figure over the images."""
        return {
            term: float(np.mean([image.figures[term] for image in self.images])) for term in TERMS
        }


def payload_bits(
    shape: tuple[int, int, int, int], secret: bytes | None, generator: torch.Generator
) -> torch.Tensor:
    """Payload bits of ``shape`` (B, D, H, W) as a float tensor in {0, 1}.

    From ``secret`` (its bits, most significant first, repeated to fill the shape), or
    random bits drawn from ``generator`` when there is no secret.
    """
    count = math.prod(shape)
    if secret is None:
        return torch.randint(0, 2, shape, generator=generator).float()
    bits = np.unpackbits(np.frombuffer(secret, dtype=np.uint8))
    return torch.from_numpy(np.resize(bits, count).reshape(shape).astype(np.float32))


def read_secret(path: Path, max_bytes: int) -> bytes:
    """The first ``max_bytes`` of a secret file; an empty or unreadable file is an error."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(max_bytes)
    except OSError as exc:
        raise InputError(f"could not read secret file {str(path)!r} ({exc.strerror})") from None
    if not data:
        raise InputError(f"secret file {str(path)!r} is empty; give a file with some bytes")
    return data


def check_losses(
    model: StegoModel,
    covers: list[Path],
    stegos: list[Path] | None = None,
    secret: Path | None = None,
    weights: LossWeights = LossWeights(),
    seed: int = 0,
) -> LossCheckReport:
    """Measure every loss term on each cover, one image at a time.

    stegos: one stego image per cover, of the cover's size; without them the model's
        encoder makes them from the payload bits.
    secret: a file whose bits are the payload; without it, random bits drawn with ``seed``.
    seed: seeds the random bits and the gradient penalty's α, so numbers repeat exactly.
    """
    if stegos is not None and len(stegos) != len(covers):
        raise InputError(
            f"got {len(covers)} covers but {len(stegos)} stego images; give one --stego per cover"
        )
    model.eval()
    generator = torch.Generator().manual_seed(seed)
    report = LossCheckReport(
        model,
        weights,
        seed,
        payload=f"bits of {secret}" if secret else f"random bits, seed {seed}",
    )

    for index, cover_path in enumerate(covers):
        cover_image = load_image(cover_path)
        cover = cover_image.tensor()
        B, _, H, W = cover.shape
        shape = (B, model.settings.depth, H, W)
        data = read_secret(secret, math.ceil(math.prod(shape) / 8)) if secret else None
        bits = payload_bits(shape, data, generator)

        conversions = [f"{cover_path}: {change}" for change in cover_image.conversions]
        stego_path = stegos[index] if stegos is not None else None
        with torch.no_grad():
            if stego_path is None:
                stego = quantize(model.encoder(cover, bits))
            else:
                stego_image = _load_matching_stego(
                    stego_path, cover_image.width, cover_image.height
                )
                stego = stego_image.tensor()
                conversions += [f"{stego_path}: {change}" for change in stego_image.conversions]
            logits = model.decoder(stego)
            generator_terms = generator_loss(model.critic, cover, stego, logits, bits, weights)
            critic_terms = critic_loss(
                model.critic, cover, stego, weights.gradient_penalty, generator, create_graph=False
            )

        figures = {
            "decoder_loss": generator_terms.decoder_loss.item(),
            "encoder_mse": generator_terms.encoder_mse.item(),
            "adversarial_loss": generator_terms.adversarial_loss.item(),
            "gradient_penalty": critic_terms.gradient_penalty.item(),
            "critic_loss": critic_terms.critic_loss.item(),
            "total": generator_terms.total.item(),
            "bit_accuracy": bit_accuracy(logits, bits),
        }
        figures["psnr"] = psnr_from_mse(figures["encoder_mse"])
        report.images.append(
            ImageLosses(
                cover=str(cover_path),
                stego=str(stego_path) if stego_path else None,
                width=W,
                height=H,
                conversions=conversions,
                figures=figures,
            )
        )
    return report


def _load_matching_stego(path: Path, width: int, height: int) -> LoadedImage:
    stego_image = load_image(path)
    if (stego_image.width, stego_image.height) != (width, height):
        raise InputError(
            f"stego image {str(path)!r} is {stego_image.width}×{stego_image.height} but its "
            f"cover is {width}×{height}; give the stego image made from that cover"
        )
    return stego_image
