"""Choosing the error correction for one photo, from how well the decoder reads that photo.

How often the decoder misreads a bit depends on the photo far more than on anything else
(flat skies are easy, fences and foliage hard). So before hiding anything, a trial hides
pseudo-random bits in up to TRIAL_TILES tiles of the photo, rounds to 8-bit pixels and
decodes them. The decoder's logits on those known bits are exactly what an LDPC decoder
would get from a payload (the codes are linear, so which codeword is sent does not matter),
so each candidate level (a rate, and for the hardest photos copies of every bit) is tried
for real: the trial's readings are decoded as up to TRIAL_CODEWORDS codewords, and a level
is safe when every one of them decodes within SAFE_ITERATIONS, a third of what decode
allows. The weakest safe level (the highest rate) sets the capacity.

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
# The levels of protection, strongest first: the strongest rate with copies of every stored
# bit (for photos that read back too badly even for rate 1/4), then each rate alone.
LEVELS: tuple[tuple[int, int], ...] = tuple(
    [(0, copies) for copies in range(container.MAX_REPEAT, 1, -1)]
    + [(code, 1) for code in range(len(ldpc.RATES))]
)
MIN_TRIAL_BITS = 8 * (container.MAX_OVERHEAD + 1)  # the body of a one-byte file
WEAK_LOGIT = 0.05  # a bit read with less confidence than this counts as unreliable (float
# noise between machines is far smaller: about 1e-4 on logits of magnitude 10)


@dataclass(frozen=True)
class Strength:
    """The error correction chosen for one photo.

    code: the LDPC rate, an index into ldpc.RATES; copies: how often each stored bit is
    written (the strongest level, LEVELS[0], when none is safe); capacity_bytes: the largest
    file that always fits at that level (0 when none is safe); bit_error_rate: the raw rate
    the trial measured (bits read wrong or under WEAK_LOGIT).
    """

    code: int
    capacity_bytes: int
    bit_error_rate: float
    copies: int = 1

    @property
    def rate(self) -> str:
        """The code rate, copies included: "3/5", or "1/4 × 3 copies"."""
        a, b = ldpc.RATES[self.code]
        return f"{a}/{b}" if self.copies == 1 else f"{a}/{b} × {self.copies} copies"

    @property
    def level(self) -> int:
        return LEVELS.index((self.code, self.copies))


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


def _trial_bits(signed: np.ndarray, slots: int, level: int) -> int:
    """Information bits the trial tests at a level: as a payload filling ``slots`` would be
    laid out, but at most TRIAL_CODEWORDS codewords and what the trial's readings cover."""
    code, copies = LEVELS[level]
    room = min(len(signed), max(0, slots - container.HEADER_SLOTS)) // copies
    return min(ldpc.capacity_bits(room, code), TRIAL_CODEWORDS * ldpc.full_code(code).k)


def _holds_a_file(signed: np.ndarray, slots: int, level: int) -> bool:
    """Whether a level leaves room for at least a one-byte file."""
    return _trial_bits(signed, slots, level) >= MIN_TRIAL_BITS


def decodes(signed: np.ndarray, slots: int, level: int) -> bool:
    """Whether the trial's readings decode at LEVELS[level] within SAFE_ITERATIONS."""
    code, copies = LEVELS[level]
    info = _trial_bits(signed, slots, level)
    if info < MIN_TRIAL_BITS:
        return False
    stored = ldpc.stored_bits(info, code)
    # Signed logits are positive where a bit reads right: the all-zero codeword's readings.
    llr = -container.combine_copies(signed[: copies * stored], copies)
    _, ok, _ = ldpc.decode_stream(llr, info, code, SAFE_ITERATIONS)
    return bool(ok.all())


def choose(signed: np.ndarray, slots: int) -> Strength:
    """The weakest safe level, and what it holds, from a trial's signed logits (trial_read)."""
    raw_rate = float(np.mean(signed < WEAK_LOGIT)) if signed.size else 1.0
    # Copies and low rates leave the least room: in a small image the strongest levels may
    # hold no file at all. Those that do are a suffix of LEVELS; of those, stronger ones
    # decode whatever weaker ones do, so the safe ones are a prefix of that suffix.
    first = next((i for i in range(len(LEVELS)) if _holds_a_file(signed, slots, i)), len(LEVELS))
    low, high = first - 1, len(LEVELS)  # LEVELS[low] is safe (or none is), LEVELS[high] not
    while high - low > 1:
        middle = (low + high) // 2
        if decodes(signed, slots, middle):
            low = middle
        else:
            high = middle
    if low < first:
        return Strength(LEVELS[0][0], 0, raw_rate, LEVELS[0][1])
    code, copies = LEVELS[low]
    return Strength(code, container.ldpc_file_capacity(slots, code, copies), raw_rate, copies)


def measure(model: StegoModel, cover: torch.Tensor) -> Strength:
    """The error correction for hiding in ``cover`` (1, 3, H, W) with ``model``."""
    H, W = cover.shape[-2:]
    return choose(trial_read(model, cover), model.settings.depth * H * W)
