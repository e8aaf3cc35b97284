"""Soft-decision error correction: irregular repeat-accumulate LDPC codes, decoded by min-sum.

Reed-Solomon corrects bytes, so one wrong bit spoils a whole byte, and it reads only the
sign of each logit. At the 2–9 % raw bit errors of a model that hides 4 bits per pixel,
about a third of all bytes arrive wrong, and byte-wise Reed-Solomon needs copies and heavy
parity. An LDPC code works on bits and uses how confident the decoder was about each one
(the logit's magnitude), which is most of the difference between 1 and 2.5 bits per pixel
of payload. docs/FORMAT.md gives the construction as the format's contract.

A code of rate a/b protects k information bits with m = ⌈k·(b − a)/a⌉ parity bits, so a
codeword holds n = k + m bits: the k information bits, then the m parity bits. Its parity
checks are the rows of H = [H_info | H_acc]:

* H_info is sparse and pseudo-random: information bit j takes part in ``degree(j)`` checks
  (a third or so of them in 8–13 checks, the rest in 3, after the codes of DVB-S2), the
  checks drawn from a SHAKE-256 stream of the code's parameters, so that every stegcli
  version builds exactly the same code without any library's random generator;
* H_acc is the dual diagonal of an accumulator: check i holds parity bits i − 1 and i.

Encoding is then linear in time: parity bit i is the XOR of parity bit i − 1 and the
information bits of check i. Decoding is normalised min-sum belief propagation over the
Tanner graph, on many codewords at once with numpy. It works on log-likelihood ratios in
any scale (min-sum is unchanged when they are all multiplied by one positive number), so
the decoder's raw logits serve as they are: positive reads as bit 1.
"""

from __future__ import annotations

import functools
import hashlib
import struct
from dataclasses import dataclass

import numpy as np

CODE_VERSION = 1

# The code rates a/b, by their index in this table (the index is what the header stores),
# and the degree profile of each: (high degree, and the share of information bits with it
# as a fraction num/den: the first ⌊k·num/den⌋ bits). The
# other information bits have degree 3. Strongest first.
RATES: tuple[tuple[int, int], ...] = (
    (1, 4), (1, 3), (2, 5), (1, 2), (3, 5), (2, 3), (3, 4), (4, 5), (5, 6), (8, 9), (9, 10),
    (14, 15), (19, 20),
)  # fmt: skip
PROFILES: tuple[tuple[int, int, int], ...] = (
    (12, 1, 3), (12, 1, 3), (12, 1, 3), (8, 2, 5), (12, 1, 3), (13, 1, 10),
    (12, 1, 9), (11, 1, 9), (13, 1, 10), (4, 1, 9), (4, 1, 10), (4, 1, 15), (4, 1, 20),
)  # fmt: skip
BASE_DEGREE = 3

MAX_CODEWORD_BITS = 32768  # longer codes decode better; this bounds memory and latency
MAX_ITERATIONS = 60  # what decode allows; encode asks for convergence in far fewer
NORMALISE = 0.85  # min-sum's check messages scaled down, as they are overconfident
_CHUNK = 64  # codewords decoded together, to bound the (codewords, checks, width) arrays


@dataclass(frozen=True)
class Code:
    """One LDPC code: ``k`` information bits and ``m`` parity bits per codeword.

    rows: int array (m, width), the variable indices of each check (information bits
    0…k−1, parity bits k…k+m−1), padded with n, a virtual variable that always reads as a
    certain 0. info_width: how many leading columns of ``rows`` hold information bits.
    """

    rate_index: int
    k: int
    m: int
    rows: np.ndarray
    info_width: int

    @property
    def n(self) -> int:
        return self.k + self.m

    @functools.cached_property
    def _edges(self) -> tuple[np.ndarray, np.ndarray]:
        """(positions of the real edges in rows.ravel(), sorted by variable; where each
        variable's edges start in that order)."""
        flat = self.rows.ravel()
        real = flat < self.n
        by_variable = np.flatnonzero(real)[np.argsort(flat[real], kind="stable")]
        counts = np.bincount(flat[real], minlength=self.n)
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        return by_variable, starts

    def encode(self, info: np.ndarray) -> np.ndarray:
        """Codewords (c, n) uint8 from information bits (c, k) uint8 in {0, 1}."""
        c = info.shape[0]
        padded = np.concatenate([info, np.zeros((c, 1), np.uint8)], axis=1)
        columns = np.where(
            self.rows[:, : self.info_width] < self.k, self.rows[:, : self.info_width], self.k
        )
        check_sums = np.bitwise_xor.reduce(padded[:, columns], axis=2)  # (c, m)
        parity = np.bitwise_xor.accumulate(check_sums, axis=1)
        return np.concatenate([info, parity], axis=1)

    def syndrome_ok(self, bits: np.ndarray) -> np.ndarray:
        """Whether each codeword (c, n) of bits in {0, 1} meets every check: bool (c,)."""
        padded = np.concatenate([bits, np.zeros((bits.shape[0], 1), bits.dtype)], axis=1)
        return ~np.bitwise_xor.reduce(padded[:, self.rows], axis=2).any(axis=1)

    def decode(
        self, llr: np.ndarray, iterations: int = MAX_ITERATIONS
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Decode codewords from their soft readings.

        llr: float (c, n), positive for bit 1, larger for more confidence (any scale).
        Returns (info bits uint8 (c, k), ok bool (c,): every check met, iterations used intp
        (c,)), with ``iterations`` at most; a codeword that is not ok holds no usable bits.
        """
        c = llr.shape[0]
        bits = np.zeros((c, self.k), np.uint8)
        ok = np.zeros(c, bool)
        used = np.full(c, iterations, np.intp)
        for start in range(0, c, _CHUNK):
            part = slice(start, min(c, start + _CHUNK))
            bits[part], ok[part], used[part] = self._decode_chunk(llr[part], iterations)
        return bits, ok, used

    def _decode_chunk(self, llr: np.ndarray, iterations: int):
        c, n = llr.shape
        by_variable, starts = self._edges
        rows = self.rows
        width = rows.shape[1]
        # Our logits say "positive is 1"; belief propagation below uses "positive is 0".
        channel = np.concatenate(
            [-llr.astype(np.float32), np.full((c, 1), _CERTAIN, np.float32)], 1
        )
        total = channel.copy()
        to_var = np.zeros((c, rows.shape[0], width), np.float32)
        active = np.arange(c)
        bits = np.zeros((c, self.k), np.uint8)
        ok = np.zeros(c, bool)
        used = np.full(c, iterations, np.intp)
        for iteration in range(iterations + 1):
            hard = (total[:, :n] < 0).astype(np.uint8)
            done = self.syndrome_ok(hard)
            if done.any():
                bits[active[done]] = hard[done, : self.k]
                ok[active[done]] = True
                used[active[done]] = iteration
                keep = ~done
                active, channel, total, to_var = (
                    active[keep],
                    channel[keep],
                    total[keep],
                    to_var[keep],
                )
            if active.size == 0 or iteration == iterations:
                break
            # Variable to check: all a variable has heard, but what this check told it.
            to_check = total[:, rows] - to_var
            negative = to_check < 0
            magnitude = np.abs(to_check)
            # Check to variable: the product of the other signs, the smallest other magnitude.
            sign_odd = np.bitwise_xor.reduce(negative, axis=2, keepdims=True)
            smallest = np.argmin(magnitude, axis=2)[..., None]
            first = np.take_along_axis(magnitude, smallest, axis=2)
            np.put_along_axis(magnitude, smallest, np.inf, axis=2)
            second = magnitude.min(axis=2, keepdims=True)
            is_smallest = np.arange(width) == smallest
            out = NORMALISE * np.where(is_smallest, second, first)
            to_var = np.where(sign_odd ^ negative, -out, out).astype(np.float32)
            # Each variable: its channel reading plus everything its checks said.
            flat = to_var.reshape(to_var.shape[0], -1)[:, by_variable]
            total = channel.copy()
            total[:, :n] += np.add.reduceat(flat, starts, axis=1)
        return bits, ok, used


def _degrees(rate_index: int, k: int, m: int) -> np.ndarray:
    high, num, den = PROFILES[rate_index]
    degrees = np.full(k, min(BASE_DEGREE, m), np.intp)
    degrees[: k * num // den] = min(high, m)
    return degrees


def parity_bits(k: int, rate_index: int) -> int:
    """m, the parity bits of the code of rate RATES[rate_index] with k information bits."""
    a, b = RATES[rate_index]
    return max(2, -(-k * (b - a) // a))


def full_k(rate_index: int) -> int:
    """k of the longest code of a rate (MAX_CODEWORD_BITS at most in all)."""
    a, b = RATES[rate_index]
    return MAX_CODEWORD_BITS * a // b


@functools.lru_cache(maxsize=64)
def build(rate_index: int, k: int) -> Code:
    """The code of rate RATES[rate_index] with k information bits (k ≥ 1)."""
    m = parity_bits(k, rate_index)
    degrees = _degrees(rate_index, k, m)
    variables = np.repeat(np.arange(k), degrees)
    edges = len(variables)
    # Checks receive the information edges as evenly as possible, in a keyed shuffle.
    checks = np.repeat(np.arange(m), [edges // m + (i < edges % m) for i in range(m)])
    seed = struct.pack(">4sBIIB", b"SGLD", CODE_VERSION, k, m, rate_index)
    words = np.frombuffer(hashlib.shake_256(seed).digest(4 * edges), ">u4")
    checks = checks[np.argsort(words, kind="stable")]
    # An information bit drawn twice into one check keeps one edge.
    pairs = np.unique(checks.astype(np.int64) * k + variables)
    checks, variables = pairs // k, pairs % k
    per_check = np.bincount(checks, minlength=m)
    info_width = int(per_check.max())
    rank = np.arange(len(pairs)) - np.concatenate([[0], np.cumsum(per_check)[:-1]])[checks]
    n = k + m
    rows = np.full((m, info_width + 2), n, np.int64)
    rows[checks, rank] = variables
    rows[1:, info_width] = k + np.arange(m - 1)  # parity bit i − 1
    rows[:, info_width + 1] = k + np.arange(m)  # parity bit i
    rows.setflags(write=False)
    return Code(rate_index, k, m, rows, info_width)


def full_code(rate_index: int) -> Code:
    """The longest code of a rate: MAX_CODEWORD_BITS at most."""
    return build(rate_index, full_k(rate_index))


def code_for(info_bits: int, rate_index: int) -> Code:
    """The code whose codewords carry ``info_bits`` (≥ 1) information bits at a rate: one
    codeword of exactly that size if the full code is larger, else the full code."""
    return build(rate_index, min(info_bits, full_k(rate_index)))


def stored_bits(info_bits: int, rate_index: int) -> int:
    """Stream bits that ``info_bits`` information bits take at a rate, parity included.

    Information bits fill codewords of code_for(info_bits) in order; the last codeword is
    shortened: its missing information bits are zeros that are known, so they are not
    stored. Every codeword stores all of its parity bits.
    """
    if info_bits <= 0:
        return 0
    # Sizes only: the code itself (costly to build) is not needed to count its bits.
    k = min(info_bits, full_k(rate_index))
    return info_bits + -(-info_bits // k) * parity_bits(k, rate_index)


def capacity_bits(room: int, rate_index: int) -> int:
    """The most information bits that fit in ``room`` stream bits at a rate."""
    k = full_k(rate_index)
    m = parity_bits(k, rate_index)
    if room >= k + m:
        full, rest = divmod(room, k + m)
        return full * k + max(0, rest - m)
    # One codeword shorter than the full code: k + m(k) ≤ room.
    a, b = RATES[rate_index]
    k = room * a // b
    while k > 0 and stored_bits(k, rate_index) > room:
        k -= 1
    return k


def encode_stream(info: np.ndarray, rate_index: int) -> np.ndarray:
    """Stored bits (stored_bits(K),) uint8 of information bits (K,) uint8 in {0, 1}."""
    if len(info) == 0:
        return np.zeros(0, np.uint8)
    code = code_for(len(info), rate_index)
    count = -(-len(info) // code.k)
    padded = np.zeros(count * code.k, np.uint8)
    padded[: len(info)] = info
    codewords = code.encode(padded.reshape(count, code.k))
    return codewords.reshape(-1)[_stored_positions(len(info), code)]


def decode_stream(
    llr: np.ndarray, info_bits: int, rate_index: int, iterations: int = MAX_ITERATIONS
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Information bits from the soft readings of their stored bits.

    llr: float (stored_bits(info_bits),), positive for bit 1. Returns (bits uint8
    (info_bits,), ok bool (codewords,), iterations used intp (codewords,)); the bits of a
    codeword that is not ok are zeros, never to be used.
    """
    if len(llr) != stored_bits(info_bits, rate_index):
        raise ValueError(
            f"{info_bits} information bits need {stored_bits(info_bits, rate_index)} "
            f"readings, got {len(llr)}"
        )
    if info_bits <= 0:
        return np.zeros(0, np.uint8), np.ones(0, bool), np.zeros(0, np.intp)
    code = code_for(info_bits, rate_index)
    count = -(-info_bits // code.k)
    # The shortened codeword's missing information bits are certain zeros.
    full = np.full(count * code.n, -_CERTAIN, np.float32)
    # A reading that is not a number says nothing; infinities are merely certain.
    readings = np.nan_to_num(llr, nan=0.0, posinf=_CERTAIN, neginf=-_CERTAIN)
    full[_stored_positions(info_bits, code)] = np.clip(readings, -_CERTAIN, _CERTAIN)
    bits, ok, used = code.decode(full.reshape(count, code.n), iterations)
    return bits.reshape(-1)[:info_bits], ok, used


_CERTAIN = 1e6


def information_positions(info_bits: int, rate_index: int) -> np.ndarray:
    """Where the information bits sit among the stored bits of :func:`encode_stream`."""
    if info_bits <= 0:
        return np.zeros(0, np.intp)
    code = code_for(info_bits, rate_index)
    return np.flatnonzero(_stored_positions(info_bits, code) % code.n < code.k)


def _stored_positions(info_bits: int, code: Code) -> np.ndarray:
    """Where the stored bits sit in the codewords laid end to end (shortening skips the
    last codeword's missing information bits)."""
    count = -(-info_bits // code.k)
    positions = np.arange(count * code.n)
    missing = count * code.k - info_bits
    start = (count - 1) * code.n + code.k - missing
    return np.concatenate([positions[:start], positions[start + missing :]])
