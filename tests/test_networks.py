"""The encoders, the decoder and the critic: shapes, gradients and structure."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from stegcli.errors import ModelError
from stegcli.losses import critic_loss, generator_loss
from stegcli.models import StegoModel
from stegcli.networks import ARCHITECTURES, Critic, Decoder, Encoder, ModelSettings

NORMALISATION = (
    nn.modules.batchnorm._BatchNorm,
    nn.modules.instancenorm._InstanceNorm,
    nn.GroupNorm,
    nn.LayerNorm,
)


def _inputs(batch: int, depth: int, height: int, width: int, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    cover = torch.rand((batch, 3, height, width), generator=generator) * 2 - 1
    bits = torch.randint(0, 2, (batch, depth, height, width), generator=generator).float()
    return cover, bits


@pytest.mark.parametrize("architecture", ARCHITECTURES)
@pytest.mark.parametrize("depth", [1, 3])
@pytest.mark.parametrize("batch,height,width", [(1, 17, 23), (2, 5, 9)])
def test_output_shapes_for_odd_sizes(architecture, depth, batch, height, width):
    model = StegoModel.fresh(ModelSettings(architecture, depth, hidden=8), seed=0)
    cover, bits = _inputs(batch, depth, height, width)
    with torch.no_grad():
        stego = model.encoder(cover, bits)
        logits = model.decoder(stego)
        scores = model.critic(cover)
        score_map = model.critic.image_layers(cover)
    assert stego.shape == (batch, 3, height, width)
    assert logits.shape == (batch, depth, height, width)
    assert scores.shape == (batch,)
    assert score_map.shape == (batch, 1, height, width)
    assert torch.allclose(scores, score_map.mean(dim=(1, 2, 3)))


@pytest.mark.parametrize("architecture", ARCHITECTURES)
@pytest.mark.parametrize("depth", [1, 3])
def test_every_parameter_receives_a_finite_gradient(architecture, depth):
    model = StegoModel.fresh(ModelSettings(architecture, depth, hidden=8), seed=1)
    cover, bits = _inputs(2, depth, 9, 11, seed=2)
    stego = model.encoder(cover, bits)
    logits = model.decoder(stego)
    generator_terms = generator_loss(model.critic, cover, stego, logits, bits)
    critic_terms = critic_loss(
        model.critic, cover, stego, generator=torch.Generator().manual_seed(3)
    )
    (generator_terms.total + critic_terms.critic_loss).backward()

    for module_name, module in model.modules().items():
        for name, parameter in module.named_parameters():
            label = f"{module_name}.{name}"
            assert parameter.grad is not None, f"{label} got no gradient"
            assert torch.isfinite(parameter.grad).all(), f"{label} has a non-finite gradient"
            assert parameter.grad.abs().sum() > 0, f"{label} has an all-zero gradient"


@pytest.mark.parametrize("architecture", ARCHITECTURES)
@pytest.mark.parametrize("depth", [1, 3])
def test_critic_has_no_normalisation_layer(architecture, depth):
    critic = Critic(ModelSettings(architecture, depth, hidden=8))
    assert not any(isinstance(module, NORMALISATION) for module in critic.modules())


def test_encoder_and_decoder_do_use_batchnorm():
    # The critic check above looks for the right type: the other networks do contain it.
    settings = ModelSettings(hidden=8)
    for network in (Encoder(settings), Decoder(settings)):
        assert any(isinstance(module, nn.BatchNorm2d) for module in network.modules())


def test_critic_score_of_a_sample_does_not_depend_on_the_batch():
    critic = Critic(ModelSettings(hidden=8)).train()
    first, _ = _inputs(1, 1, 7, 9, seed=4)
    second, _ = _inputs(1, 1, 7, 9, seed=5)
    with torch.no_grad():
        alone = critic(first)
        together = critic(torch.cat([first, second]))
    assert torch.allclose(together[:1], alone, atol=1e-6)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"architecture": "unet"},
        {"architecture": ""},
        {"architecture": "Dense"},
        {"depth": 0},
        {"depth": 9},
        {"depth": -1},
        {"depth": 1.0},
        {"depth": "2"},
        {"hidden": 0},
        {"hidden": 257},
        {"hidden": 8.5},
        {"hidden": None},
    ],
)
def test_settings_reject_bad_values(kwargs):
    with pytest.raises(ModelError):
        ModelSettings(**kwargs)


@pytest.mark.parametrize("architecture", ARCHITECTURES)
@pytest.mark.parametrize("depth,hidden", [(1, 1), (8, 256)])
def test_settings_accept_the_bounds(architecture, depth, hidden):
    settings = ModelSettings(architecture, depth, hidden)
    assert settings.to_dict() == {"architecture": architecture, "depth": depth, "hidden": hidden}


def _zero_output(encoder: Encoder, bias: list[float] | None = None) -> None:
    with torch.no_grad():
        encoder.output.weight.zero_()
        encoder.output.bias.copy_(torch.tensor(bias or [0.0, 0.0, 0.0]))


@pytest.mark.parametrize("architecture", ["residual", "dense"])
def test_residual_and_dense_encoders_add_their_output_to_the_cover(architecture):
    encoder = Encoder(ModelSettings(architecture, depth=2, hidden=8)).eval()
    cover, bits = _inputs(2, 2, 5, 9, seed=6)
    _zero_output(encoder)
    with torch.no_grad():
        assert torch.equal(encoder(cover, bits), cover)

    # A constant output is added per channel, and the result is not clamped to [-1, 1].
    _zero_output(encoder, [0.5, -0.25, 0.0])
    bright = torch.full((1, 3, 4, 6), 0.9)
    with torch.no_grad():
        stego = encoder(bright, torch.ones(1, 2, 4, 6))
    assert torch.allclose(stego[0, 0], torch.full((4, 6), 1.4))
    assert torch.allclose(stego[0, 1], torch.full((4, 6), 0.65))
    assert torch.equal(stego[0, 2], bright[0, 2])


def test_basic_encoder_uses_tanh():
    encoder = Encoder(ModelSettings("basic", depth=2, hidden=8)).eval()
    cover, bits = _inputs(2, 2, 5, 9, seed=7)
    _zero_output(encoder, [0.5, -0.25, 0.0])
    with torch.no_grad():
        stego = encoder(cover, bits)
    # With a constant output the stego image forgets the cover: it is tanh of the constant.
    expected = torch.tanh(torch.tensor([0.5, -0.25, 0.0])).view(1, 3, 1, 1).expand_as(stego)
    assert torch.allclose(stego, expected)

    # Even with huge weights the output stays within [-1, 1].
    encoder = Encoder(ModelSettings("basic", depth=2, hidden=8)).eval()
    with torch.no_grad():
        encoder.output.weight.mul_(1000)
        stego = encoder(cover, bits)
    assert stego.abs().max() > 0.99
    assert stego.min() >= -1 and stego.max() <= 1
