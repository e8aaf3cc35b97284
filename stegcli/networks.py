"""The three networks of the SteganoGAN family: encoders, the decoder and the critic.

Every network is fully convolutional (3×3 convolutions, stride 1, padding 1), so it takes
images of any size, odd ones included, and its output has the cover's height and width.

Conventions shared by all of them:

- images are float tensors of shape (B, 3, H, W) with values in [-1, 1];
- the payload enters as a bit tensor of shape (B, D, H, W) with values in {0, 1}, where D is
  the data depth in bits per pixel;
- the decoder returns logits of shape (B, D, H, W): a positive logit reads as bit 1.

The encoders and the decoder use BatchNorm. In eval mode it is a fixed per-channel affine
map, so a tile of an image is processed exactly as the same pixels inside the whole image.
The critic uses no normalisation at all: its gradient penalty is computed per sample, and
BatchNorm would mix the samples of a batch.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from stegcli.errors import ModelError

ARCHITECTURES = ("basic", "residual", "dense")
MAX_DEPTH = 8
MAX_HIDDEN = 256


@dataclass(frozen=True)
class ModelSettings:
    """Everything needed to rebuild a model's networks before loading its weights.

    architecture: the encoder, one of ``basic``, ``residual`` or ``dense``.
    depth: data depth D, the number of payload bits hidden per pixel (1 to 8).
    hidden: the width of every hidden convolution layer.
    """

    architecture: str = "dense"
    depth: int = 1
    hidden: int = 32

    def __post_init__(self) -> None:
        if self.architecture not in ARCHITECTURES:
            raise ModelError(
                f"unknown architecture {self.architecture!r}; "
                f"choose one of {', '.join(ARCHITECTURES)}"
            )
        if not _is_int(self.depth) or not 1 <= self.depth <= MAX_DEPTH:
            raise ModelError(f"depth must be an integer from 1 to {MAX_DEPTH}, got {self.depth!r}")
        if not _is_int(self.hidden) or not 1 <= self.hidden <= MAX_HIDDEN:
            raise ModelError(
                f"hidden width must be an integer from 1 to {MAX_HIDDEN}, got {self.hidden!r}"
            )

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def _is_int(value: object) -> bool:
    """An int that is not a bool (True would otherwise pass as 1)."""
    return isinstance(value, int) and not isinstance(value, bool)


def _conv(in_channels: int, out_channels: int) -> nn.Conv2d:
    """A 3×3 convolution that keeps the height and width."""
    return nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1)


def _conv_block(in_channels: int, out_channels: int) -> nn.Sequential:
    """Convolution, LeakyReLU and BatchNorm: the hidden layer of encoders and decoder."""
    return nn.Sequential(
        _conv(in_channels, out_channels),
        nn.LeakyReLU(inplace=True),
        nn.BatchNorm2d(out_channels),
    )


class Encoder(nn.Module):
    """Writes payload bits into a cover image.

    Input: cover (B, 3, H, W) in [-1, 1] and bits (B, D, H, W) in {0, 1}.
    Output: stego image (B, 3, H, W), nominally in [-1, 1]; it is not clamped here, because
    training needs the gradient everywhere. Clamp and round it to write a file.

    Data flow, with F the hidden feature maps::

        cover ─ conv ─ F1
        [F1, bits] ─ conv ─ F2                       (basic, residual)
        [F1, F2, bits] ─ conv ─ F3                   (dense: every earlier map)
        [F_last (or all maps), bits] ─ conv ─ out
        stego = out                                  (basic: tanh(out))
        stego = cover + out                          (residual, dense)

    The bits are concatenated into every layer after the first, so each layer can place
    them where the cover hides them best.
    """

    def __init__(self, settings: ModelSettings):
        super().__init__()
        self.settings = settings
        D, W = settings.depth, settings.hidden
        self.dense = settings.architecture == "dense"
        self.adds_cover = settings.architecture in ("residual", "dense")

        self.features = _conv_block(3, W)
        if self.dense:
            self.layers = nn.ModuleList([_conv_block(W + D, W), _conv_block(2 * W + D, W)])
            self.output = _conv(3 * W + D, 3)
        else:
            self.layers = nn.ModuleList([_conv_block(W + D, W), _conv_block(W + D, W)])
            self.output = _conv(W + D, 3)

    def forward(self, cover: torch.Tensor, bits: torch.Tensor) -> torch.Tensor:
        maps = [self.features(cover)]
        for layer in self.layers:
            inputs = maps if self.dense else maps[-1:]
            maps.append(layer(torch.cat([*inputs, bits], dim=1)))
        inputs = maps if self.dense else maps[-1:]
        out = self.output(torch.cat([*inputs, bits], dim=1))
        return cover + out if self.adds_cover else torch.tanh(out)


class Decoder(nn.Module):
    """Reads payload bits back from a stego image, with dense connectivity.

    Input: stego image (B, 3, H, W) in [-1, 1].
    Output: logits (B, D, H, W); sigmoid(logit) is the probability that the bit is 1.

    Each layer sees the feature maps of all layers before it::

        image ─ conv ─ F1 ─ conv ─ F2;  [F1, F2] ─ conv ─ F3;  [F1, F2, F3] ─ conv ─ logits
    """

    def __init__(self, settings: ModelSettings):
        super().__init__()
        self.settings = settings
        D, W = settings.depth, settings.hidden
        self.features = _conv_block(3, W)
        self.layers = nn.ModuleList([_conv_block(W, W), _conv_block(2 * W, W)])
        self.output = _conv(3 * W, D)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        maps = [self.features(image)]
        for layer in self.layers:
            maps.append(layer(torch.cat(maps, dim=1)))
        return self.output(torch.cat(maps, dim=1))


class Critic(nn.Module):
    """Scores how much an image looks like an untouched photo (higher: more like a cover).

    ``image_layers`` maps (B, 3, H, W) in [-1, 1] to a score map (B, 1, H, W); the score of
    an image is the spatial mean of its map, shape (B,). No normalisation layers, so each
    sample's score depends on that sample alone (the gradient penalty needs this).
    """

    def __init__(self, settings: ModelSettings):
        super().__init__()
        self.settings = settings
        W = settings.hidden
        self.image_layers = nn.Sequential(
            _conv(3, W),
            nn.LeakyReLU(inplace=True),
            _conv(W, W),
            nn.LeakyReLU(inplace=True),
            _conv(W, W),
            nn.LeakyReLU(inplace=True),
            _conv(W, 1),
        )

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.image_layers(image).mean(dim=(1, 2, 3))
