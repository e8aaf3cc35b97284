"""The loss terms, checked against values computed by hand."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from stegcli.losses import (
    LossWeights,
    adversarial_loss,
    bit_accuracy,
    critic_loss,
    decoder_loss,
    encoder_mse,
    generator_loss,
    gradient_penalty,
)
from stegcli.networks import Critic, ModelSettings


def _images(shape: tuple[int, ...], seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(shape, generator=generator) * 2 - 1


def _linear_critic(weights: list[float]) -> Critic:
    """A critic whose score map is a 1×1 convolution with the given per-channel weights."""
    critic = Critic(ModelSettings(hidden=4))
    critic.image_layers = nn.Conv2d(3, 1, kernel_size=1, bias=False)
    with torch.no_grad():
        critic.image_layers.weight.copy_(torch.tensor(weights).view(1, 3, 1, 1))
    return critic


class _HalfSquaredNorm(nn.Module):
    """Score map ½·Σ_c x², whose gradient with respect to x is x itself."""

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return 0.5 * (image**2).sum(dim=1, keepdim=True)


@pytest.mark.parametrize(
    "weights,height,width",
    [
        ([0.3, -0.2, 0.1], 3, 5),
        ([1.0, 2.0, -0.5], 4, 4),
        ([0.05, 0.0, 0.02], 7, 2),
        ([0.5, 0.0, 0.0], 2, 2),  # H·W·Σw² = 1: the norm is exactly 1
    ],
)
def test_gradient_penalty_of_a_linear_critic(weights, height, width):
    critic = _linear_critic(weights)
    cover = _images((3, 3, height, width), seed=1)
    stego = _images((3, 3, height, width), seed=2)
    norm = math.sqrt(height * width * sum(w * w for w in weights))
    expected = torch.tensor((norm - 1) ** 2)

    # Whatever α each sample draws, the gradient of a linear critic is w at every pixel.
    for seed in (0, 1, 2):
        penalty = gradient_penalty(critic, cover, stego, torch.Generator().manual_seed(seed))
        assert torch.allclose(penalty, expected, rtol=1e-5, atol=1e-6)


def test_gradient_penalty_is_zero_when_the_norm_is_one():
    critic = _linear_critic([0.5, 0.0, 0.0])
    penalty = gradient_penalty(critic, _images((2, 3, 2, 2), 3), _images((2, 3, 2, 2), 4))
    assert penalty.item() == pytest.approx(0.0, abs=1e-12)


def test_gradient_penalty_takes_the_norm_of_each_sample():
    critic = Critic(ModelSettings(hidden=4))
    critic.image_layers = _HalfSquaredNorm()
    # With stego == cover the mixture is the cover whatever α is, and the gradient is the
    # cover itself: the penalty is the batch mean of (‖cover_b‖ − 1)².
    cover = torch.zeros(3, 3, 2, 2)
    cover[0, 0, 0, 0] = 1.0  # norm 1
    cover[1, :, 0, 0] = torch.tensor([2.0, 0.0, 0.0])  # norm 2
    cover[2, :, 1, :] = 1.5  # norm √(6·2.25) = √13.5
    expected = ((1 - 1) ** 2 + (2 - 1) ** 2 + (math.sqrt(13.5) - 1) ** 2) / 3
    penalty = gradient_penalty(critic, cover, cover.clone())
    assert penalty.item() == pytest.approx(expected, rel=1e-6)


def test_gradient_penalty_can_be_trained_on():
    critic = Critic(ModelSettings(hidden=8))
    cover, stego = _images((2, 3, 6, 7), 5), _images((2, 3, 6, 7), 6)
    penalty = gradient_penalty(critic, cover, stego, torch.Generator().manual_seed(0))
    assert penalty.requires_grad
    penalty.backward()
    # The gradient of a LeakyReLU network with respect to its input depends on the
    # convolution weights (biases only pick the piecewise-constant slopes): each of them
    # must receive a gradient from the penalty.
    for name, parameter in critic.named_parameters():
        if name.endswith("weight"):
            assert parameter.grad is not None, name
            assert torch.isfinite(parameter.grad).all(), name
            assert parameter.grad.abs().sum() > 0, name

    reported = gradient_penalty(
        critic, cover, stego, torch.Generator().manual_seed(0), create_graph=False
    )
    assert not reported.requires_grad
    assert torch.allclose(reported, penalty.detach())


def test_gradient_penalty_depends_on_alpha_for_a_nonlinear_critic():
    critic = Critic(ModelSettings(hidden=8))
    cover, stego = _images((2, 3, 6, 7), 7), _images((2, 3, 6, 7), 8)
    first = gradient_penalty(critic, cover, stego, torch.Generator().manual_seed(0))
    again = gradient_penalty(critic, cover, stego, torch.Generator().manual_seed(0))
    other = gradient_penalty(critic, cover, stego, torch.Generator().manual_seed(1))
    assert torch.equal(first, again)
    assert not torch.equal(first, other)


def test_decoder_loss_of_zero_logits_is_ln_2():
    bits = torch.tensor([[[[1.0, 0.0, 1.0], [0.0, 0.0, 1.0]]]])
    loss = decoder_loss(torch.zeros_like(bits), bits)
    assert loss.item() == pytest.approx(math.log(2), rel=1e-6)


def test_decoder_loss_of_confident_correct_logits_is_near_zero():
    bits = torch.tensor([[[[1.0, 0.0, 1.0], [0.0, 0.0, 1.0]]]])
    loss = decoder_loss((bits * 2 - 1) * 30, bits)
    assert 0 <= loss.item() < 1e-9
    wrong = decoder_loss((1 - bits * 2) * 30, bits)
    assert wrong.item() == pytest.approx(30, rel=1e-6)


def test_decoder_loss_matches_binary_cross_entropy_by_hand():
    logits = torch.tensor([[[[2.0, -1.0, 0.5, -3.0]]]])
    bits = torch.tensor([[[[1, 1, 0, 0]]]], dtype=torch.int64)  # any dtype of bits works

    def bce(x: float, y: int) -> float:
        p = 1 / (1 + math.exp(-x))
        return -(y * math.log(p) + (1 - y) * math.log(1 - p))

    expected = sum(bce(x, y) for x, y in [(2, 1), (-1, 1), (0.5, 0), (-3, 0)]) / 4
    assert decoder_loss(logits, bits).item() == pytest.approx(expected, rel=1e-6)


def test_encoder_mse():
    cover = _images((1, 3, 4, 5), 9)
    assert encoder_mse(cover.clone(), cover).item() == 0.0
    stego = cover.clone()
    stego[0, 1, 2, 3] += 0.5
    stego[0, 0, 0, 0] -= 0.25
    expected = (0.5**2 + 0.25**2) / (3 * 4 * 5)
    assert encoder_mse(stego, cover).item() == pytest.approx(expected, rel=1e-5)


def test_adversarial_loss_is_minus_the_mean_critic_score():
    critic = Critic(ModelSettings(hidden=8))
    stego = _images((3, 3, 5, 6), 10)
    expected = -critic(stego).mean()
    assert torch.allclose(adversarial_loss(critic, stego), expected)
    # A linear critic's score is computable by hand: the mean of w·x over pixels.
    linear = _linear_critic([0.5, -1.0, 2.0])
    scores = (stego * torch.tensor([0.5, -1.0, 2.0]).view(1, 3, 1, 1)).sum(1).mean(dim=(1, 2))
    assert torch.allclose(adversarial_loss(linear, stego), -scores.mean(), atol=1e-6)


def test_critic_loss_combines_scores_and_penalty():
    critic = Critic(ModelSettings(hidden=8))
    cover, stego = _images((2, 3, 5, 7), 11), _images((2, 3, 5, 7), 12)
    terms = critic_loss(
        critic, cover, stego, gp_weight=7.0, generator=torch.Generator().manual_seed(4)
    )
    penalty = gradient_penalty(critic, cover, stego, torch.Generator().manual_seed(4))
    expected = critic(stego).mean() - critic(cover).mean() + 7.0 * penalty
    assert torch.allclose(terms.gradient_penalty, penalty)
    assert torch.allclose(terms.critic_loss, expected)


def test_critic_loss_sends_no_gradient_into_the_stego_producer():
    critic = Critic(ModelSettings(hidden=8))
    cover = _images((2, 3, 5, 7), 13)
    scale = torch.tensor(0.9, requires_grad=True)
    stego = cover * scale

    critic_loss(critic, cover, stego).critic_loss.backward()
    assert scale.grad is None or torch.all(scale.grad == 0)
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in critic.parameters())

    # The generator's adversarial term, by contrast, does reach the producer.
    adversarial_loss(critic, cover * scale).backward()
    assert scale.grad is not None and scale.grad.abs() > 0


def test_generator_loss_is_the_weighted_sum_of_its_terms():
    critic = Critic(ModelSettings(hidden=8))
    cover, stego = _images((2, 3, 5, 7), 14), _images((2, 3, 5, 7), 15)
    logits = _images((2, 2, 5, 7), 16) * 3
    bits = (_images((2, 2, 5, 7), 17) > 0).float()
    weights = LossWeights(decoder=2.0, mse=3.0, adversarial=0.5, gradient_penalty=1.0)

    terms = generator_loss(critic, cover, stego, logits, bits, weights)
    d = decoder_loss(logits, bits)
    m = encoder_mse(stego, cover)
    a = adversarial_loss(critic, stego)
    assert torch.allclose(terms.decoder_loss, d)
    assert torch.allclose(terms.encoder_mse, m)
    assert torch.allclose(terms.adversarial_loss, a)
    assert torch.allclose(terms.total, 2.0 * d + 3.0 * m + 0.5 * a)
    default = generator_loss(critic, cover, stego, logits, bits)
    assert torch.allclose(default.total, d + 100.0 * m + 0.1 * a)
    assert not torch.allclose(default.total, terms.total)


def test_loss_weights_to_dict():
    weights = LossWeights(decoder=2.0, mse=3.0, adversarial=0.5, gradient_penalty=1.5)
    assert weights.to_dict() == {
        "decoder": 2.0,
        "mse": 3.0,
        "adversarial": 0.5,
        "gradient_penalty": 1.5,
    }


def test_bit_accuracy():
    logits = torch.tensor([[[[2.0, -1.0], [0.0, 3.0]]]])
    # 2 → 1 right, −1 → 0 right, 0 → 0 (not positive) right, 3 → 1 wrong.
    assert bit_accuracy(logits, torch.tensor([[[[1.0, 0.0], [0.0, 0.0]]]])) == 0.75
    assert bit_accuracy(logits, torch.tensor([[[[1.0, 0.0], [0.0, 1.0]]]])) == 1.0
    assert bit_accuracy(logits, torch.tensor([[[[0.0, 1.0], [1.0, 0.0]]]])) == 0.0
