"""Choosing the error correction for one photo, from the error rate measured on that photo.

How often the decoder misreads a bit depends on the photo far more than on anything else
(flat skies are easy, fences and foliage hard). So before hiding anything, a trial hides
pseudo-random bits in up to TRIAL_TILES tiles of the photo, rounds to 8-bit pixels, decodes
them and counts the bits read wrong (or with a logit under WEAK_LOGIT). From that rate it
picks, for each number of copies r = 1…MAX_REPEAT, the fewest Reed-Solomon parity bytes
that keep the chance that any codeword needs more than the safe correction under
FAILURE_BUDGET, and keeps the r that leaves the most room for the file.

The trial is deterministic (a fixed SHAKE-256 stream), so ``capacity`` and ``encode`` agree.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import numpy as np
import torch

from stegcli import container
from stegcli.embedding import HALO, _grow, _inner, _tiles
from stegcli.imaging import quantize
from stegcli.models import StegoModel

TRIAL_TILE = 256
TRIAL_TILES = 16
WEAK_LOGIT = 0.05  # a bit read with less confidence than this counts as an error (float noise
# between machines is far smaller: about 1e-4 on logits of magnitude 10)
FAILURE_BUDGET = 1e-3  # per payload; refinement covers the rare codeword beyond it
MIN_PARITY = 8


# Erasure thresholds tried, in eighths of a logit (0: errors only).
ERASE_EIGHTHS = (0, 2, 4, 8, 12, 16, 24, 32, 48)


@dataclass(frozen=True)
class Strength:
    """The error correction chosen for one photo.

    repeat: copies of each body bit; nsym: parity bytes per 255-byte codeword;
    erase_eighths: bytes read with less confidence (in eighths of a logit) are erasures;
    capacity_bytes: the largest file that always fits; bit_error_rate: the raw rate the
    trial measured (wrong or weak bits, before copies are combined).
    """

    repeat: int
    nsym: int
    erase_eighths: int
    capacity_bytes: int
    bit_error_rate: float


def safe_errors(nsym: int) -> int:
    """Wrong bytes per codeword that encode accepts without erasures or refining."""
    return nsym // 2 - container.guard(nsym)


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


def _upper(rate: float, count: int) -> float:
    """An upper bound on a rate measured over ``count`` trials, so a small trial does not
    flatter the photo."""
    return min(1.0, rate + 2 * math.sqrt(rate * (1 - rate) / count) + 3 / count)


def binomial_pmf(n: int, q: float) -> np.ndarray:
    """P(X = k) for X ~ Binomial(n, q), k = 0…n."""
    k = np.arange(n + 1)
    if q <= 0 or q >= 1:
        return (k == (n if q >= 1 else 0)).astype(float)
    log_choose = np.array(
        [math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) for i in k]
    )
    return np.exp(log_choose + k * math.log(q) + (n - k) * math.log1p(-q))


def parity_for(wrong_rate: float, erased_rate: float, blocks: int) -> int | None:
    """The fewest parity bytes for which 2·errors + erasures stays within nsym − 2·guard in
    every one of ``blocks`` codewords, but with chance ≤ FAILURE_BUDGET; None if none does.

    wrong_rate: chance that a byte is wrong and not erased; erased_rate: that it is erased.
    """
    n = container.BLOCK
    doubled = np.zeros(2 * n + 1)
    doubled[::2] = binomial_pmf(n, wrong_rate)
    load = np.convolve(doubled, binomial_pmf(n, erased_rate))  # pmf of 2e + s
    tails = load[::-1].cumsum()[::-1]  # tails[z] = P(2e + s >= z)
    for nsym in range(MIN_PARITY, n - 1, 2):
        if blocks * tails[nsym - 2 * container.guard(nsym) + 1] <= FAILURE_BUDGET:
            return nsym
    return None


def choose(signed: np.ndarray, slots: int) -> Strength:
    """The copies, parity and erasure threshold that leave the most room, from a trial's
    signed logits (see trial_read)."""
    raw_rate = float(np.mean(signed < WEAK_LOGIT)) if signed.size else 1.0
    best = Strength(1, container.BLOCK - 1, 0, 0, raw_rate)
    for repeat in range(1, container.MAX_REPEAT + 1):
        count = signed.size // (8 * repeat)
        if count == 0:
            break
        combined = signed[: count * 8 * repeat].reshape(repeat, -1).sum(axis=0)
        wrong = (combined < WEAK_LOGIT).reshape(count, 8).any(axis=1)
        confidence = np.abs(combined).reshape(count, 8).min(axis=1)
        blocks = max(1, (slots - container.HEADER_SLOTS) // (8 * repeat * container.BLOCK))
        for eighths in ERASE_EIGHTHS:
            erased = confidence < eighths / 8
            wrong_rate = _upper(float(np.mean(wrong & ~erased)), count)
            erased_rate = _upper(float(np.mean(erased)), count) if eighths else 0.0
            nsym = parity_for(wrong_rate, erased_rate, blocks)
            if nsym is None:
                continue
            room = container.file_capacity(slots, nsym, repeat)
            if room > best.capacity_bytes:
                best = Strength(repeat, nsym, eighths, room, raw_rate)
    return best


def measure(model: StegoModel, cover: torch.Tensor) -> Strength:
    """The error correction for hiding in ``cover`` (1, 3, H, W) with ``model``."""
    H, W = cover.shape[-2:]
    return choose(trial_read(model, cover), model.settings.depth * H * W)
