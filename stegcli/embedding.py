"""Running the networks over whole photos: tiled encoding and decoding, and refinement.

Images are (1, 3, H, W) float tensors in [-1, 1]; bit grids are (1, D, H, W) in {0, 1};
logits are (1, D, H, W) float32.

Both networks are stacks of four 3×3 convolutions, so an output pixel depends only on input
pixels at most 4 away (the receptive-field radius). Each tile is therefore processed with a
margin of HALO ≥ 4 pixels of real neighbours and only its core is kept: the result equals
processing the whole image at once (up to float rounding), so tiles leave no seams, and
memory stays bounded by the tile size whatever the photo's size.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch
import torch.nn.functional as F

from stegcli.imaging import quantize
from stegcli.networks import Decoder, Encoder

TILE = 512
HALO = 8
RADIUS = 4  # receptive-field radius of encoder and decoder

Progress = Callable[[int, int], None]  # (tiles done, tiles in all)


def _tiles(height: int, width: int, tile: int) -> Iterator[tuple[slice, slice]]:
    for top in range(0, height, tile):
        for left in range(0, width, tile):
            yield slice(top, min(top + tile, height)), slice(left, min(left + tile, width))


def _grow(area: tuple[slice, slice], margin: int, height: int, width: int):
    rows, cols = area
    return (
        slice(max(0, rows.start - margin), min(height, rows.stop + margin)),
        slice(max(0, cols.start - margin), min(width, cols.stop + margin)),
    )


def _inner(area, outer) -> tuple[slice, slice]:
    """``area`` in the coordinates of the region ``outer`` that contains it."""
    rows, cols = area
    return (
        slice(rows.start - outer[0].start, rows.stop - outer[0].start),
        slice(cols.start - outer[1].start, cols.stop - outer[1].start),
    )


def tile_count(height: int, width: int, tile: int = TILE) -> int:
    return -(-height // tile) * -(-width // tile)


@torch.no_grad()
def encode_tiled(
    encoder: Encoder,
    cover: torch.Tensor,
    bits: torch.Tensor,
    tile: int = TILE,
    progress: Progress | None = None,
) -> torch.Tensor:
    """The stego image (1, 3, H, W), clamped and rounded to 8-bit levels as a PNG holds it."""
    H, W = cover.shape[-2:]
    stego = torch.empty_like(cover)
    total = tile_count(H, W, tile)
    for done, core in enumerate(_tiles(H, W, tile), start=1):
        outer = _grow(core, HALO, H, W)
        out = encoder(cover[..., outer[0], outer[1]], bits[..., outer[0], outer[1]].float())
        inner = _inner(core, outer)
        stego[..., core[0], core[1]] = quantize(out[..., inner[0], inner[1]])
        if progress:
            progress(done, total)
    return stego


@torch.no_grad()
def decode_tiled(
    decoder: Decoder, image: torch.Tensor, tile: int = TILE, progress: Progress | None = None
) -> torch.Tensor:
    """The decoder's logits (1, D, H, W) for a whole image, tile by tile."""
    H, W = image.shape[-2:]
    logits = torch.empty(1, decoder.settings.depth, H, W)
    total = tile_count(H, W, tile)
    for done, core in enumerate(_tiles(H, W, tile), start=1):
        outer = _grow(core, HALO, H, W)
        out = decoder(image[..., outer[0], outer[1]])
        inner = _inner(core, outer)
        logits[..., core[0], core[1]] = out[..., inner[0], inner[1]].float()
        if progress:
            progress(done, total)
    return logits


def refine(
    decoder: Decoder,
    cover: torch.Tensor,
    stego: torch.Tensor,
    bits: torch.Tensor,
    wrong: torch.Tensor,
    care: torch.Tensor | None = None,
    margin: float = 2.0,
    steps: int = 40,
    change_weight: float = 0.05,
    tile: int = 128,
    progress: Progress | None = None,
) -> torch.Tensor:
    """Nudge stego pixels until the fixed decoder reads the bits right (in the way of FNNS).

    Only tiles holding a wrong or weak bit (``wrong``: (H, W) bool) are touched. In each, the
    pixels are optimised with Adam to minimise softplus(margin − s·logit), s = ±1 the bit's
    sign, over every logit the tile's pixels can reach that carries payload (``care``:
    (1, D, H, W) bool; all of them when None; filler bits need not read right), plus
    ``change_weight`` times the
    mean squared change from the cover, with straight-through 8-bit rounding. The tile's
    neighbours are fixed context, and a tile stops as soon as it reads right with the margin.

    Returns the refined stego image, rounded to 8-bit levels.
    """
    H, W = stego.shape[-2:]
    stego = stego.clone()
    signs = bits.float() * 2 - 1
    todo = [core for core in _tiles(H, W, tile) if wrong[core[0], core[1]].any()]
    for done, core in enumerate(todo, start=1):
        reach = _grow(core, RADIUS, H, W)  # logits that the core's pixels influence
        outer = _grow(reach, HALO, H, W)  # pixels those logits depend on
        core_in, reach_in = _inner(core, outer), _inner(reach, outer)
        context = stego[..., outer[0], outer[1]]
        original = cover[..., core[0], core[1]]
        target = signs[..., reach[0], reach[1]]
        if care is not None:
            target = target * care[..., reach[0], reach[1]]  # 0: no pull either way
        pixels = context[..., core_in[0], core_in[1]].clone().requires_grad_(True)
        optimiser = torch.optim.Adam([pixels], lr=1.0 / 127.5)
        for _ in range(steps):
            rounded = pixels + (quantize(pixels) - pixels).detach()
            image = context.clone()
            image[..., core_in[0], core_in[1]] = rounded
            logits = decoder(image)[..., reach_in[0], reach_in[1]]
            if bool((logits * target > margin)[target != 0].all()):
                break
            loss = (F.softplus(margin - target * logits) * target.abs()).mean()
            loss = loss + change_weight * ((pixels - original) ** 2).mean() * 127.5**2 / 100
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
        with torch.no_grad():
            stego[..., core[0], core[1]] = quantize(pixels)
        if progress:
            progress(done, len(todo))
    return stego
