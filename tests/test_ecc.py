"""Reed-Solomon codec: reedsolo-identical codewords, exact correction, honest failure."""

from __future__ import annotations

import numpy as np
import pytest

from stegcli.ecc import ECCError, decode_blocks, decode_blocks_partial, encode_blocks
from stegcli.errors import StegcliError

# (n, nsym): a shortened code, the usual 255/223, and the extremes of parity.
CODES = [(20, 8), (255, 32), (255, 2), (255, 128)]


def random_data(rng: np.random.Generator, blocks: int, k: int) -> np.ndarray:
    return rng.integers(0, 256, (blocks, k), dtype=np.uint8)


def corrupt(rng: np.random.Generator, codewords: np.ndarray, per_block: np.ndarray) -> np.ndarray:
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


# Errors and erasures. (n, nsym): shortened codes, long ones and the smallest parity.
ERASURE_CODES = [(40, 16), (255, 64), (255, 2), (20, 8), (255, 32), (9, 3)]


def corrupt_with_erasures(
    rng: np.random.Generator,
    codewords: np.ndarray,
    errors: np.ndarray,
    erasures: np.ndarray,
    wrong: float = 0.5,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row b gets errors[b] wrong bytes and erasures[b] erased ones elsewhere, each erased byte
    wrong with probability ``wrong`` (else a false alarm). Returns (damaged, erased, changed),
    changed[b] being how many bytes of row b differ from the codeword."""
    damaged = codewords.copy()
    erased = np.zeros(codewords.shape, dtype=bool)
    n = codewords.shape[1]
    for row, (e, s) in enumerate(zip(errors, erasures)):
        positions = rng.choice(n, int(e + s), replace=False)
        erased[row, positions[:s]] = True
        hit = np.concatenate([positions[:s][rng.random(s) < wrong], positions[s:]])
        damaged[row, hit] ^= rng.integers(1, 256, len(hit), dtype=np.uint8)
    return damaged, erased, (damaged != codewords).sum(axis=1)


def within_reach(rng: np.random.Generator, blocks: int, nsym: int) -> tuple[np.ndarray, ...]:
    """Random (errors, erasures) per block with 2e + s <= nsym, the extremes in front."""
    erasures = rng.integers(0, nsym + 1, blocks)
    errors = rng.integers(0, (nsym - erasures) // 2 + 1)
    extremes = [(0, nsym), (nsym // 2, 0), ((nsym - 1) // 2, 1), (0, 0), (1, nsym - 2)]
    for row, (e, s) in enumerate(extremes):
        errors[row], erasures[row] = e, s
    return errors, erasures


@pytest.mark.parametrize(("n", "nsym"), ERASURE_CODES)
def test_corrects_errors_and_erasures_within_reach(n: int, nsym: int) -> None:
    rng = np.random.default_rng(500 + n + nsym)
    data = random_data(rng, 80, n - nsym)
    codewords = encode_blocks(data, nsym)
    errors, erasures = within_reach(rng, len(data), nsym)
    assert (2 * errors + erasures <= nsym).all()
    damaged, erased, changed = corrupt_with_erasures(rng, codewords, errors, erasures)
    decoded, corrected = decode_blocks(damaged, nsym, erased)
    assert np.array_equal(decoded, data)
    assert corrected == changed.sum()  # only bytes actually changed count
    partial, ok, per_block = decode_blocks_partial(damaged, nsym, erased)
    assert ok.dtype == bool and ok.all() and np.array_equal(partial, data)
    assert np.array_equal(per_block, changed)


@pytest.mark.parametrize(("n", "nsym"), ERASURE_CODES)
def test_erasures_only_up_to_nsym(n: int, nsym: int) -> None:
    """nsym erased bytes, every one wrong, in data and parity alike: all recovered."""
    rng = np.random.default_rng(600 + n + nsym)
    data = random_data(rng, 30, n - nsym)
    codewords = encode_blocks(data, nsym)
    damaged, erased, changed = corrupt_with_erasures(
        rng, codewords, np.zeros(len(data), dtype=int), np.full(len(data), nsym), wrong=1.0
    )
    erased[0] = False  # the parity bytes exactly, and then the first data bytes exactly
    erased[0, n - nsym :] = True
    erased[1] = False
    erased[1, :nsym] = True
    damaged[:2] = codewords[:2] ^ erased[:2].astype(np.uint8)
    changed[:2] = nsym
    decoded, corrected = decode_blocks(damaged, nsym, erased)
    assert np.array_equal(decoded, data) and corrected == changed.sum() == nsym * len(data)


def test_false_alarms_cost_parity_but_decode() -> None:
    """Erasures on bytes that are in fact right still decode while 2e + s <= nsym."""
    rng = np.random.default_rng(7)
    n, nsym = 40, 16
    data = random_data(rng, 50, n - nsym)
    codewords = encode_blocks(data, nsym)
    erasures = rng.integers(0, nsym + 1, len(data))
    errors = (nsym - erasures) // 2  # the most errors each block can take
    damaged, erased, changed = corrupt_with_erasures(rng, codewords, errors, erasures, wrong=0.0)
    assert np.array_equal(changed, errors)  # no erased byte was touched
    decoded, corrected = decode_blocks(damaged, nsym, erased)
    assert np.array_equal(decoded, data) and corrected == errors.sum()
    # A valid codeword stays as it is, whatever is marked, even more than nsym bytes.
    everything = np.ones(codewords.shape, dtype=bool)
    decoded, corrected = decode_blocks(codewords, nsym, everything)
    assert np.array_equal(decoded, data) and corrected == 0


def test_one_erasure_or_error_too_many_is_detected() -> None:
    rng = np.random.default_rng(13)
    n, nsym = 255, 64
    data = random_data(rng, 40, n - nsym)
    codewords = encode_blocks(data, nsym)
    errors, erasures = within_reach(rng, len(data), nsym)
    # 2e + s = nsym + 1 (one past), nsym + 2, and more erasures than parity bytes.
    beyond = {3: (22, 21), 11: (1, 63), 17: (32, 1), 23: (0, nsym + 1), 31: (5, 56)}
    for row, (e, s) in beyond.items():
        errors[row], erasures[row] = e, s
    damaged, erased, changed = corrupt_with_erasures(rng, codewords, errors, erasures, 1.0)
    partial, ok, per_block = decode_blocks_partial(damaged, nsym, erased)
    assert np.array_equal(ok, 2 * errors + erasures <= nsym)
    assert np.array_equal(partial[ok], data[ok])
    # The failed blocks come back as received, with nothing counted.
    assert np.array_equal(partial[~ok], damaged[~ok, : n - nsym]) and (per_block[~ok] == 0).all()
    assert np.array_equal(per_block[ok], changed[ok])
    with pytest.raises(ECCError, match=r"too many bit errors to correct \(5 of 40 blocks\)"):
        decode_blocks(damaged, nsym, erased)


@pytest.mark.parametrize(("n", "nsym"), [(20, 4), (255, 6), (30, 8), (255, 5)])
def test_never_returns_an_invalid_correction_with_erasures(n: int, nsym: int) -> None:
    """With 2e + s > nsym: either a failure, or a true codeword the decoder could justify:
    at most (nsym - s) // 2 changed bytes outside the erasures, and all changes counted."""
    rng = np.random.default_rng(800 + n + nsym)
    blocks = 300
    data = random_data(rng, blocks, n - nsym)
    erasures = rng.integers(1, nsym + 1, blocks)
    errors = (nsym - erasures) // 2 + rng.integers(1, 4, blocks)
    damaged, erased, _ = corrupt_with_erasures(
        rng, encode_blocks(data, nsym), errors, erasures, wrong=0.7
    )
    decoded, ok, per_block = decode_blocks_partial(damaged, nsym, erased)
    assert 0 < ok.sum() < blocks  # both outcomes happen at such low parity
    recoded = encode_blocks(decoded[ok], nsym)
    for word, row, marks, count in zip(recoded, damaged[ok], erased[ok], per_block[ok]):
        assert syndromes_zero(word, nsym)
        outside = int(((word != row) & ~marks).sum())
        assert 2 * outside + int(marks.sum()) <= nsym
        assert int((word != row).sum()) == count
    for row, marks in zip(damaged[~ok], erased[~ok]):
        with pytest.raises(ECCError):
            decode_blocks(row[None, :], nsym, marks[None, :])


@pytest.mark.parametrize(("n", "nsym"), CODES)
def test_no_erasures_is_the_errors_only_decoder(n: int, nsym: int) -> None:
    rng = np.random.default_rng(900 + n + nsym)
    data = random_data(rng, 60, n - nsym)
    damaged = corrupt(rng, encode_blocks(data, nsym), rng.integers(0, nsym + 3, len(data)))
    none = np.zeros(damaged.shape, dtype=bool)
    decoded, ok, per_block = decode_blocks_partial(damaged, nsym)
    for erasures in (None, none):
        again, ok_again, per_block_again = decode_blocks_partial(damaged, nsym, erasures)
        assert np.array_equal(again, decoded) and np.array_equal(ok_again, ok)
        assert np.array_equal(per_block_again, per_block)
    if ok.all():  # with nsym = 2 nearly every word is within one byte of a codeword
        assert (n, nsym) == (255, 2)
        return
    # Some blocks fail, and decode_blocks says so the same way.
    messages = []
    for erasures in (None, none):
        with pytest.raises(ECCError) as raised:
            decode_blocks(damaged, nsym, erasures)
        messages.append(str(raised.value))
    assert messages[0] == messages[1]
    assert f"({int((~ok).sum())} of 60 blocks)" in messages[0]
    assert messages[0].endswith(f"can correct at most {nsym // 2}")
    # Only the correctable blocks: decode_blocks agrees with the partial decode.
    good, corrected = decode_blocks(damaged[ok], nsym)
    assert np.array_equal(good, decoded[ok]) and corrected == per_block.sum()


@pytest.mark.parametrize(("n", "nsym"), [(40, 16), (255, 64), (255, 2), (30, 7)])
def test_errors_and_erasures_match_reedsolo(n: int, nsym: int) -> None:
    """reedsolo's decoder (which zeroes erased bytes first) agrees wherever it decodes within
    2e + s <= nsym; beyond that it sometimes accepts a far codeword, which we refuse."""
    reedsolo = pytest.importorskip("reedsolo")  # a test-only dependency
    codec = reedsolo.RSCodec(nsym, nsize=255, c_exp=8, prim=0x11D, generator=2, fcr=0)
    rng = np.random.default_rng(1000 + n + nsym)
    blocks = 12
    data = random_data(rng, blocks, n - nsym)
    codewords = encode_blocks(data, nsym)
    erasures = rng.integers(0, nsym + 1, blocks)
    errors = np.maximum((nsym - erasures) // 2 + rng.integers(-2, 2, blocks), 0)
    damaged, erased, _ = corrupt_with_erasures(rng, codewords, errors, erasures, wrong=0.8)
    decoded, ok, _ = decode_blocks_partial(damaged, nsym, erased)
    for row in range(blocks):
        marks = [int(p) for p in np.flatnonzero(erased[row])]
        try:
            message, full, _ = codec.decode(bytearray(damaged[row].tobytes()), erase_pos=marks)
        except reedsolo.ReedSolomonError:
            assert not ok[row]
            continue
        full = np.frombuffer(bytes(full), dtype=np.uint8)
        outside = int(((full != damaged[row]) & ~erased[row]).sum())
        if 2 * outside + len(marks) <= nsym:
            assert ok[row] and bytes(message) == decoded[row].tobytes()
        else:
            assert not ok[row]
    correctable = 2 * errors + erasures <= nsym
    assert correctable.any() and not correctable.all()
    assert ok[correctable].all()


def test_decode_rejects_unusable_erasures() -> None:
    codewords = encode_blocks(np.zeros((2, 10), dtype=np.uint8), 4)
    for erasures in (
        np.zeros((2, 13), dtype=bool),
        np.zeros((1, 14), dtype=bool),
        np.zeros((2, 14), dtype=np.uint8),
        [[False] * 14] * 2,
    ):
        with pytest.raises(ValueError):
            decode_blocks(codewords, 4, erasures)  # type: ignore[arg-type]
        with pytest.raises(ValueError):
            decode_blocks_partial(codewords, 4, erasures)  # type: ignore[arg-type]


def test_partial_decode_of_zero_blocks() -> None:
    empty = np.zeros((0, 20), dtype=np.uint8)
    data, ok, per_block = decode_blocks_partial(empty, 8, np.zeros((0, 20), dtype=bool))
    assert data.shape == (0, 12) and ok.shape == (0,) and per_block.shape == (0,)
