"""Reed-Solomon codec: reedsolo-identical codewords, exact correction, honest failure."""

from __future__ import annotations

import numpy as np
import pytest

from stegcli.ecc import ECCError, decode_blocks, encode_blocks
from stegcli.errors import StegcliError

# (n, nsym): a shortened code, the usual 255/223, and the extremes of parity.
CODES = [(20, 8), (255, 32), (255, 2), (255, 128)]


def random_data(rng: np.random.Generator, blocks: int, k: int) -> np.ndarray:
    return rng.integers(0, 256, (blocks, k), dtype=np.uint8)


def corrupt(
    rng: np.random.Generator, codewords: np.ndarray, per_block: np.ndarray
) -> np.ndarray:
    """Change per_block[b] distinct bytes of row b to a different value."""
    damaged = codewords.copy()
    n = codewords.shape[1]
    for row, count in enumerate(per_block):
        positions = rng.choice(n, int(count), replace=False)
        damaged[row, positions] ^= rng.integers(1, 256, int(count), dtype=np.uint8)
    return damaged


def syndromes_zero(codeword: np.ndarray, nsym: int) -> bool:
    """Whether codeword(alpha^j) == 0 for all j < nsym, checked with reedsolo's arithmetic."""
    reedsolo = pytest.importorskip("reedsolo")  # a test-only dependency
    reedsolo.init_tables(0x11D, 2, 8)
    synd = reedsolo.rs_calc_syndromes(bytearray(codeword.tobytes()), nsym)
    return not any(synd)


@pytest.mark.parametrize(("n", "nsym"), CODES)
def test_round_trip_without_errors(n: int, nsym: int) -> None:
    rng = np.random.default_rng(n * 1000 + nsym)
    data = random_data(rng, 37, n - nsym)
    codewords = encode_blocks(data, nsym)
    assert codewords.dtype == np.uint8 and codewords.shape == (37, n)
    assert np.array_equal(codewords[:, : n - nsym], data)  # systematic
    decoded, corrected = decode_blocks(codewords, nsym)
    assert decoded.dtype == np.uint8
    assert np.array_equal(decoded, data) and corrected == 0


@pytest.mark.parametrize(("n", "nsym"), CODES)
def test_codewords_match_reedsolo(n: int, nsym: int) -> None:
    rng = np.random.default_rng(7 + nsym)
    data = random_data(rng, 4, n - nsym)
    data[0] = 0  # the all-zero message and one starting with zeros are edge cases too
    data[1, :5] = 0
    reedsolo = pytest.importorskip("reedsolo")  # a test-only dependency
    codec = reedsolo.RSCodec(nsym, nsize=255, c_exp=8, prim=0x11D, generator=2, fcr=0)
    ours = encode_blocks(data, nsym)
    for row in range(len(data)):
        assert ours[row].tobytes() == bytes(codec.encode(data[row].tobytes()))


@pytest.mark.parametrize(("n", "nsym"), CODES)
def test_corrects_up_to_half_nsym_errors(n: int, nsym: int) -> None:
    rng = np.random.default_rng(100 + n + nsym)
    data = random_data(rng, 60, n - nsym)
    codewords = encode_blocks(data, nsym)
    t = nsym // 2
    per_block = rng.integers(0, t + 1, len(data))
    per_block[:3] = [t, 0, 1]  # always the worst case, a clean block and a single error
    decoded, corrected = decode_blocks(corrupt(rng, codewords, per_block), nsym)
    assert np.array_equal(decoded, data)
    assert corrected == per_block.sum()


def test_corrects_errors_in_parity_and_first_and_last_bytes() -> None:
    rng = np.random.default_rng(3)
    n, nsym = 20, 8
    data = random_data(rng, 3, n - nsym)
    damaged = encode_blocks(data, nsym)
    damaged[0, [0, n - 1]] ^= 0xFF
    damaged[1, n - nsym :][:4] ^= np.array([1, 2, 3, 4], dtype=np.uint8)  # parity only
    damaged[2, [0, 5, 11, 12]] ^= 0x80
    decoded, corrected = decode_blocks(damaged, nsym)
    assert np.array_equal(decoded, data) and corrected == 10


def test_one_error_too_many_is_detected() -> None:
    # Beyond nsym // 2 errors a decoder may in principle land on another codeword; for 17
    # errors against 32 parity bytes that is astronomically unlikely, and with this seed
    # every damaged block is detected.
    rng = np.random.default_rng(11)
    nsym = 32
    data = random_data(rng, 40, 255 - nsym)
    per_block = np.zeros(len(data), dtype=np.intp)
    per_block[[3, 17, 29]] = [nsym // 2 + 1, 40, 200]
    per_block[[0, 5]] = nsym // 2  # correctable blocks beside them do not hide the failure
    damaged = corrupt(rng, encode_blocks(data, nsym), per_block)
    with pytest.raises(ECCError, match=r"too many bit errors to correct \(3 of 40 blocks\)"):
        decode_blocks(damaged, nsym)


def test_shortened_code_detects_too_many_errors() -> None:
    rng = np.random.default_rng(5)
    n, nsym = 20, 8
    data = random_data(rng, 30, n - nsym)
    damaged = corrupt(rng, encode_blocks(data, nsym), np.full(len(data), nsym // 2 + 1))
    with pytest.raises(ECCError):
        decode_blocks(damaged, nsym)


# Little parity makes wrong corrections common, so both outcomes are exercised: with n = 255
# and nsym = 2 nearly every word lies within one byte of some codeword (failure is rare), with
# nsym = 4 about half of all words lie within two bytes of one.
@pytest.mark.parametrize(
    ("n", "nsym", "can_fail"), [(20, 2, True), (255, 2, False), (255, 4, True), (255, 6, True)]
)
def test_never_returns_an_invalid_correction(n: int, nsym: int, can_fail: bool) -> None:
    """With too many errors: either ECCError, or a true codeword within nsym // 2 bytes."""
    rng = np.random.default_rng(n + nsym)
    t = nsym // 2
    data = random_data(rng, 100, n - nsym)
    codewords = encode_blocks(data, nsym)
    damaged = corrupt(rng, codewords, rng.integers(t + 1, n // 2, len(data)))
    outcomes = {"failed": 0, "miscorrected": 0}
    for row in damaged:
        try:
            decoded, corrected = decode_blocks(row[None, :], nsym)
        except ECCError:
            outcomes["failed"] += 1
            continue
        outcomes["miscorrected"] += 1
        # Whatever comes back must be a real codeword at distance `corrected` <= t.
        recoded = encode_blocks(decoded, nsym)[0]
        assert syndromes_zero(recoded, nsym)
        assert 0 < corrected <= t
        assert int((recoded != row).sum()) == corrected
    assert outcomes["miscorrected"] > 0
    assert outcomes["failed"] > 0 or not can_fail


def test_fails_only_when_no_codeword_is_within_reach() -> None:
    """For nsym = 2 (one correctable byte), compare with trying every single-byte change."""
    rng = np.random.default_rng(21)
    n, nsym = 20, 2
    k = n - nsym
    data = random_data(rng, 40, k)
    damaged = corrupt(rng, encode_blocks(data, nsym), rng.integers(0, 6, len(data)))
    positions, values = np.divmod(np.arange(n * 256), 256)
    for row in damaged:
        candidates = np.repeat(row[None, :], n * 256, axis=0)
        candidates[np.arange(n * 256), positions] = values
        valid = candidates[(encode_blocks(candidates[:, :k], nsym) == candidates).all(axis=1)]
        try:
            decoded, _ = decode_blocks(row[None, :], nsym)
        except ECCError:
            assert len(valid) == 0
            continue
        # Codewords are 3 bytes apart, so at most one lies within one byte of any word.
        assert len(valid) >= 1 and (valid[:, :k] == decoded[0]).all(axis=1).all()


def test_error_is_a_stegcli_error() -> None:
    assert issubclass(ECCError, StegcliError)


@pytest.mark.parametrize(("n", "nsym"), CODES)
def test_zero_blocks(n: int, nsym: int) -> None:
    encoded = encode_blocks(np.zeros((0, n - nsym), dtype=np.uint8), nsym)
    assert encoded.shape == (0, n) and encoded.dtype == np.uint8
    decoded, corrected = decode_blocks(np.zeros((0, n), dtype=np.uint8), nsym)
    assert decoded.shape == (0, n - nsym) and decoded.dtype == np.uint8 and corrected == 0


@pytest.mark.parametrize(
    ("shape", "nsym", "dtype"),
    [((2, 224), 32, np.uint8), ((2, 10), 0, np.uint8), ((2, 10), 4, np.int64), ((10,), 4, None)],
)
def test_rejects_unusable_arguments(shape: tuple[int, ...], nsym: int, dtype: type | None) -> None:
    array = np.zeros(shape, dtype=dtype or np.uint8)
    with pytest.raises(ValueError):
        encode_blocks(array, nsym)


def test_decode_rejects_codewords_longer_than_255() -> None:
    with pytest.raises(ValueError):
        decode_blocks(np.zeros((1, 256), dtype=np.uint8), 32)
