"""Every loss term of adversarial steganography training, in one place.

Training and ``stegcli loss-check`` both call these functions, so the numbers a user
inspects are the numbers the optimiser sees.

Shapes and ranges: cover and stego images are (B, 3, H, W) in [-1, 1]; payload bits are
(B, D, H, W) in {0, 1}; decoder logits are (B, D, H, W).

The encoder and decoder minimise a weighted sum of three terms::

    total = decoder_weight · decoder_loss + mse_weight · encoder_mse
            + adversarial_weight · adversarial_loss

and the critic, trained as a Wasserstein GAN with gradient penalty (WGAN-GP), minimises::

    critic_loss = mean score(stego) − mean score(cover) + gp_weight · gradient_penalty
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

from stegcli.networks import Critic


@dataclass(frozen=True)
class LossWeights:
    """The weights of the loss terms.

    decoder: weight of the decoder's bit cross-entropy (recovering the payload).
    mse: weight of the encoder's mean squared error; the largest by default, because an MSE
        of 4e-4 on the [-1, 1] scale is already a PSNR of only 40 dB.
    adversarial: weight of the term that rewards stego images the critic takes for covers.
    gradient_penalty: λ of WGAN-GP, the weight of the penalty in the critic's loss.
    """

    decoder: float = 1.0
    mse: float = 100.0
    adversarial: float = 0.1
    gradient_penalty: float = 10.0

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def decoder_loss(logits: torch.Tensor, bits: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy between the decoder's logits and the payload bits (a scalar).

    This is the bitwise form of a cross-entropy between the decoded and the original payload.
    """
    return F.binary_cross_entropy_with_logits(logits, bits.to(logits.dtype))


def encoder_mse(stego: torch.Tensor, cover: torch.Tensor) -> torch.Tensor:
    """Mean squared error between stego and cover images on the [-1, 1] scale (a scalar)."""
    return F.mse_loss(stego, cover)


def adversarial_loss(critic: Critic, stego: torch.Tensor) -> torch.Tensor:
    """Minus the mean critic score of the stego images: low when they pass for covers."""
    return -critic(stego).mean()


def gradient_penalty(
    critic: Critic,
    cover: torch.Tensor,
    stego: torch.Tensor,
    generator: torch.Generator | None = None,
    create_graph: bool = True,
) -> torch.Tensor:
    """The WGAN-GP penalty that keeps the critic close to 1-Lipschitz (a scalar).

    One α ~ U(0, 1) per sample mixes the cover (real) and the stego image (fake); the
    mixture is scored by ``critic.image_layers``, differentiated with a grad_outputs of
    ones, and each sample's gradient norm over all channels and pixels is pushed towards 1:
    mean over the batch of (‖∇‖₂ − 1)².

    generator: the random source of α, for reproducible numbers.
    create_graph: keep the graph of the gradient so the penalty itself can be trained on;
        turn it off when the value is only reported.
    """
    B = cover.shape[0]
    alpha = torch.rand(B, 1, 1, 1, generator=generator, device=cover.device, dtype=cover.dtype)
    mixed = (alpha * cover.detach() + (1 - alpha) * stego.detach()).requires_grad_(True)

    with torch.enable_grad():
        scores = critic.image_layers(mixed)
        (gradient,) = torch.autograd.grad(
            outputs=scores,
            inputs=mixed,
            grad_outputs=torch.ones_like(scores),
            create_graph=create_graph,
        )
    norms = gradient.flatten(start_dim=1).norm(2, dim=1)  # (B,)
    return ((norms - 1) ** 2).mean()


@dataclass
class CriticTerms:
    """The critic's loss and its gradient penalty, both scalars."""

    critic_loss: torch.Tensor
    gradient_penalty: torch.Tensor


def critic_loss(
    critic: Critic,
    cover: torch.Tensor,
    stego: torch.Tensor,
    gp_weight: float = LossWeights.gradient_penalty,
    generator: torch.Generator | None = None,
    create_graph: bool = True,
) -> CriticTerms:
    """Mean critic score of stego − mean score of cover + gp_weight · gradient penalty.

    The stego images are detached: this loss trains the critic only, never the encoder.
    """
    stego = stego.detach()
    penalty = gradient_penalty(critic, cover, stego, generator, create_graph)
    loss = critic(stego).mean() - critic(cover).mean() + gp_weight * penalty
    return CriticTerms(critic_loss=loss, gradient_penalty=penalty)


@dataclass
class GeneratorTerms:
    """The three terms the encoder and decoder minimise, and their weighted total (scalars)."""

    decoder_loss: torch.Tensor
    encoder_mse: torch.Tensor
    adversarial_loss: torch.Tensor
    total: torch.Tensor


def generator_loss(
    critic: Critic,
    cover: torch.Tensor,
    stego: torch.Tensor,
    logits: torch.Tensor,
    bits: torch.Tensor,
    weights: LossWeights = LossWeights(),
) -> GeneratorTerms:
    """The weighted sum that encoder and decoder minimise, with each of its terms."""
    terms = dict(
        decoder_loss=decoder_loss(logits, bits),
        encoder_mse=encoder_mse(stego, cover),
        adversarial_loss=adversarial_loss(critic, stego),
    )
    total = (
        weights.decoder * terms["decoder_loss"]
        + weights.mse * terms["encoder_mse"]
        + weights.adversarial * terms["adversarial_loss"]
    )
    return GeneratorTerms(**terms, total=total)


def bit_accuracy(logits: torch.Tensor, bits: torch.Tensor) -> float:
    """The share of payload bits the logits read back correctly, in [0, 1]."""
    return ((logits > 0) == (bits > 0.5)).float().mean().item()
