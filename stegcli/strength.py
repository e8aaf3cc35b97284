"""Choosing the error correction for one photo, from how well the decoder reads that photo.

How often the decoder misreads a bit depends on the photo far more than on anything else
(flat skies are easy, fences and foliage hard). So before hiding anything, a trial hides
pseudo-random bits in up to TRIAL_TILES tiles of the photo, rounds to 8-bit pixels and
decodes them. The decoder's logits on those known bits are exactly what an LDPC decoder
would get from a payload (the codes are linear, so which codeword is sent does not matter),
so each candidate rate is tried for real: the trial's readings are decoded as up to
TRIAL_CODEWORDS codewords, and a rate is safe when every one of them decodes within
SAFE_ITERATIONS, a third of what decode allows. The highest safe rate sets the capacity.

The trial is deterministic (a fixed SHAKE-256 stream), so ``capacity`` and ``encode`` agree.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import torch

from stegcli import container, ldpc
from stegcli.embedding import HALO, _grow, _inner, _tiles
from stegcli.imaging import quantize
from stegcli.models import StegoModel

TRIAL_TILE = 256
TRIAL_TILES = 16
TRIAL_CODEWORDS = 16
SAFE_ITERATIONS = 20  # of ldpc.MAX_ITERATIONS: what is left is the margin for other payloads
WEAK_LOGIT = 0.05  # a bit read with less confidence than this counts as unreliable (float
# noise between machines is far smaller: about 1e-4 on logits of magnitude 10)


@dataclass(frozen=True)
class Strength:
    """The error correction chosen for one photo.

    code: the LDPC rate, an index into ldpc.RATES (the strongest, 0, when none is safe);
    capacity_bytes: the largest file that always fits at that rate (0 when none is safe);
    bit_error_rate: the raw rate the trial measured (bits read wrong or under WEAK_LOGIT).
    """

    code: int
    capacity_bytes: int
    bit_error_rate: float

    @property
    def rate(self) -> str:
        return "%d/%d" % ldpc.RATES[self.code]


@torch.no_grad()
def trial_read(model: StegoModel, cover: torch.Tensor) -> np.ndarray:
    """Signed logits (logit times ±1 for the bit's value: positive reads right) of a trial.

    cover: (1, 3, H, W) in [-1, 1]. Returns a float32 array in a fixed pseudo-random
    order, so that consecutive entries come from scattered pixels, as copies do.
    """
    model.eval()
    H, W = cover.shape[-2:]
    D = model.settings.depth
    tiles = list(_tiles(H, W, TRIAL_TILE))
    step = max(1, len(tiles) // TRIAL_TILES)
    readings = []
    for index, core in enumerate(tiles[::step][:TRIAL_TILES]):
        outer = _grow(core, 2 * HALO, H, W)
        region = cover[..., outer[0], outer[1]]
        h, w = region.shape[-2:]
        key = b"stegcli-trial-%d" % index
        stream = np.frombuffer(hashlib.shake_256(key).digest(-(-D * h * w // 8)), np.uint8)
        bits = np.unpackbits(stream)[: D * h * w].reshape(1, D, h, w)
        bits = torch.from_numpy(bits).float()
        logits = model.decoder(quantize(model.encoder(region, bits)))
        inner = _inner(core, outer)
        signs = bits * 2 - 1
        signed = (logits * signs)[..., inner[0], inner[1]]
        readings.append(signed.reshape(-1).numpy())
    signed = np.concatenate(readings)
    shuffle = np.frombuffer(
        hashlib.shake_256(b"stegcli-trial-order").digest(4 * signed.size), ">u4"
    )
    return signed[np.argsort(shuffle, kind="stable")]


def decodes(signed: np.ndarray, slots: int, code: int) -> bool:
    """Whether the trial's readings decode at rate ldpc.RATES[code] within SAFE_ITERATIONS,
    laid out as a payload filling ``slots`` would be (at most TRIAL_CODEWORDS codewords)."""
    room = min(len(signed), max(0, slots - container.HEADER_SLOTS))
    info = min(ldpc.capacity_bits(room, code), TRIAL_CODEWORDS * ldpc.full_code(code).k)
    if info < 8 * (container.MAX_OVERHEAD + 1):
        return False
    # Signed logits are positive where a bit reads right: the all-zero codeword's readings.
    llr = -signed[: ldpc.stored_bits(info, code)]
    _, ok, _ = ldpc.decode_stream(llr, info, code, SAFE_ITERATIONS)
    return bool(ok.all())


def choose(signed: np.ndarray, slots: int) -> Strength:
    """The highest safe rate, and what it holds, from a trial's signed logits (trial_read)."""
    raw_rate = float(np.mean(signed < WEAK_LOGIT)) if signed.size else 1.0
    # Stronger codes decode whatever weaker ones do, so the safe rates are a prefix of RATES.
    low, high = -1, len(ldpc.RATES)  # RATES[low] is safe (or none), RATES[high] is not
    while high - low > 1:
        middle = (low + high) // 2
        if decodes(signed, slots, middle):
            low = middle
        else:
            high = middle
    if low < 0:
        return Strength(0, 0, raw_rate)
    return Strength(low, container.ldpc_file_capacity(slots, low), raw_rate)


def measure(model: StegoModel, cover: torch.Tensor) -> Strength:
    """The error correction for hiding in ``cover`` (1, 3, H, W) with ``model``."""
    H, W = cover.shape[-2:]
    return choose(trial_read(model, cover), model.settings.depth * H * W)
