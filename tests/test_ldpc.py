"""LDPC codes of format 2: a pinned construction, valid codewords, correction, honest failure."""

from __future__ import annotations

import hashlib
import zlib
from statistics import NormalDist

import numpy as np
import pytest

from stegcli import container, ldpc, strength
from stegcli.container import Header, PayloadError


def noisy(bits: np.ndarray, bit_error_rate: float, seed: int) -> np.ndarray:
    """Readings of bits through Gaussian noise that flips about ``bit_error_rate`` of signs:
    float32, positive for 1, like the decoder's logits."""
    sigma = 1 / NormalDist().inv_cdf(1 - bit_error_rate)
    signal = bits.astype(np.float32) * 2 - 1
    noise = np.random.default_rng(seed).standard_normal(bits.shape).astype(np.float32)
    return signal + sigma * noise


def pinned_bits(count: int) -> np.ndarray:
    return np.unpackbits(np.frombuffer(hashlib.shake_256(b"pin").digest(count // 8), np.uint8))


@pytest.mark.parametrize(
    "rate_index, k, digest",
    [(3, 500, "b6435bb39b3f248d"), (12, 2000, "9ce2d29f7ea215aa"), (0, 300, "42cfae4557a89120")],
)
def test_the_construction_is_pinned(rate_index, k, digest):
    """The parity checks are part of format 2: any change here breaks every stego image."""
    rows = ldpc.build(rate_index, k).rows
    assert hashlib.sha256(rows.astype(">i4").tobytes()).hexdigest()[:16] == digest


@pytest.mark.parametrize("rate_index, digest", [(4, "ebc94dfec916e5eb"), (10, "03e1617c5091c302")])
def test_encoded_streams_are_pinned(rate_index, digest):
    stored = ldpc.encode_stream(pinned_bits(40_000), rate_index)
    assert hashlib.sha256(np.packbits(stored).tobytes()).hexdigest()[:16] == digest


@pytest.mark.parametrize("rate_index", range(len(ldpc.RATES)))
def test_every_rate_gives_valid_codewords_of_its_rate(rate_index):
    code = ldpc.full_code(rate_index)
    a, b = ldpc.RATES[rate_index]
    assert code.n <= ldpc.MAX_CODEWORD_BITS and abs(code.k / code.n - a / b) < 1e-3
    info = np.random.default_rng(rate_index).integers(0, 2, (3, code.k), dtype=np.uint8)
    codewords = code.encode(info)
    assert np.array_equal(codewords[:, : code.k], info)  # systematic
    assert code.syndrome_ok(codewords).all()
    flipped = codewords.copy()
    flipped[:, 5] ^= 1
    assert not code.syndrome_ok(flipped).any()
    # Each information bit joins about its profile's number of checks, each check once.
    rows = code.rows[:, : code.info_width]
    real = rows[rows < code.k]
    assert len(np.unique(real)) == code.k
    for row in rows[:50]:
        members = row[row < code.k]
        assert len(members) == len(set(members.tolist()))


@pytest.mark.parametrize("info_bits", [1, 7, 9_999, 19_660, 19_661, 60_000])
def test_streams_are_shortened_codewords_and_decode_back(info_bits):
    rate_index = ldpc.RATES.index((3, 5))
    info = np.random.default_rng(info_bits).integers(0, 2, info_bits, dtype=np.uint8)
    stored = ldpc.encode_stream(info, rate_index)
    # A payload shorter than the full code gets one codeword of its own size.
    code = ldpc.code_for(info_bits, rate_index)
    assert code.k == min(info_bits, ldpc.full_code(rate_index).k)
    codewords = -(-info_bits // code.k)
    assert len(stored) == ldpc.stored_bits(info_bits, rate_index) == info_bits + codewords * code.m
    assert np.array_equal(stored[ldpc.information_positions(info_bits, rate_index)], info)
    readings = noisy(stored, 0.04, seed=info_bits)
    bits, ok, used = ldpc.decode_stream(readings, info_bits, rate_index)
    assert ok.shape == (codewords,) and ok.all() and np.array_equal(bits, info)
    assert (used >= 0).all() and (used <= ldpc.MAX_ITERATIONS).all()


def test_decoding_corrects_thousands_of_errors_at_any_scale():
    rate_index = ldpc.RATES.index((1, 2))
    info = pinned_bits(4 * 16384)
    stored = ldpc.encode_stream(info, rate_index)
    readings = noisy(stored, 0.06, seed=1)
    assert ((readings > 0) != stored).sum() > 6000
    results = [ldpc.decode_stream(readings * scale, len(info), rate_index) for scale in (1, 9)]
    for bits, ok, _ in results:
        assert ok.all() and np.array_equal(bits, info)
    # Min-sum does not care about the readings' scale: the same iterations, not just bits.
    assert np.array_equal(results[0][2], results[1][2])


def test_too_much_noise_is_reported_not_guessed():
    rate_index = ldpc.RATES.index((4, 5))
    info = pinned_bits(3 * 26214)
    stored = ldpc.encode_stream(info, rate_index)
    _, ok, used = ldpc.decode_stream(noisy(stored, 0.12, seed=2), len(info), rate_index, 30)
    assert not ok.any() and (used == 30).all()
    pure_noise = np.random.default_rng(3).standard_normal(len(stored)).astype(np.float32)
    assert not ldpc.decode_stream(pure_noise, len(info), rate_index, 30)[1].any()


@pytest.mark.parametrize("rate_index", [0, 4, 12])
@pytest.mark.parametrize("room", [0, 100, 5_000, 32_767, 32_768, 400_000])
def test_capacity_bits_is_the_most_that_fits(rate_index, room):
    most = ldpc.capacity_bits(room, rate_index)
    if most:
        assert ldpc.stored_bits(most, rate_index) <= room
    assert ldpc.stored_bits(most + 1, rate_index) > room


def test_decode_stream_refuses_readings_of_the_wrong_length():
    with pytest.raises(ValueError, match="need"):
        ldpc.decode_stream(np.zeros(10, np.float32), 100, 0)


# ----- the body and header of format 2


def test_format_2_body_round_trip_through_noise_and_tampering():
    content = np.random.default_rng(5).bytes(3000)
    header, body = container.seal_ldpc(content, "data.bin", ldpc.RATES.index((2, 3)), "pw")
    assert header.version == 2 and header.body_length == len(body)
    bits = container.body_bits(header, body)
    assert len(bits) == header.body_slots
    found, corrected = container.read_body(noisy(bits, 0.03, seed=6), header)
    assert found == body and corrected > 0
    assert container.open_sealed(header, found, "pw") == ("data.bin", content)
    # Readings that say the opposite of every bit cannot be decoded.
    with pytest.raises(PayloadError, match="too many bit errors"):
        container.read_body(-(bits.astype(np.float32) * 2 - 1), header)


def test_format_2_header_round_trip_and_validation():
    header = Header.ldpc(container.FLAG_COMPRESSED, 12_345, 7)
    raw = header.to_bytes()
    assert raw[4] == 2 and raw[6] == 7 and raw[7] == 1 and raw[8:12] == bytes(4)
    assert Header.from_bytes(raw) == header
    copied = Header.ldpc(0, 99, 0, repeat=5)
    assert Header.from_bytes(copied.to_bytes()) == copied and copied.to_bytes()[7] == 5
    # Format 1 headers still read as format 1.
    old = Header(0, 16, 2, 999, 8)
    assert old.version == 1 and Header.from_bytes(old.to_bytes()) == old

    def with_byte(data: bytes, offset: int, value: int) -> bytes:
        changed = bytearray(data[:16])
        changed[offset] = value
        return bytes(changed) + zlib.crc32(bytes(changed)).to_bytes(4, "big")

    for offset, value in [(6, len(ldpc.RATES)), (7, 0), (7, container.MAX_REPEAT + 1), (8, 3)]:
        with pytest.raises(PayloadError, match="not valid"):
            Header.from_bytes(with_byte(raw, offset, value))
    with pytest.raises(PayloadError, match="format version 3"):
        Header.from_bytes(with_byte(raw, 4, 3))


def test_copies_carry_a_body_through_noise_that_one_copy_cannot():
    content = np.random.default_rng(7).bytes(500)
    single, body = container.seal_ldpc(content, "n.bin", 0, None)
    # The copies are in the header, so its checksum (or tag) covers them: another body.
    tripled, tripled_body = container.seal_ldpc(content, "n.bin", 0, None, repeat=3)
    assert tripled == Header.ldpc(single.flags, single.body_length, 0, 3)
    bits = container.body_bits(single, body)
    copies = container.body_bits(tripled, tripled_body)
    assert len(copies) == tripled.body_slots == 3 * len(bits)
    assert np.array_equal(copies, np.tile(copies[: len(bits)], 3))
    with pytest.raises(PayloadError):
        container.read_body(noisy(bits, 0.24, seed=8), single)
    found, _ = container.read_body(noisy(copies, 0.24, seed=8), tripled)
    assert found == tripled_body
    assert container.open_sealed(tripled, found, None) == ("n.bin", content)


def signed_readings(bit_error_rate: float, count: int = 400_000) -> np.ndarray:
    """A trial's signed logits (positive: read right) with the given share read wrong."""
    return -noisy(np.zeros(count, np.uint8), bit_error_rate, seed=9) * 4


def test_the_trial_keeps_the_weakest_level_that_decodes():
    slots = 400_000 + container.HEADER_SLOTS
    rates = (0.002, 0.03, 0.08)
    chosen = [strength.choose(signed_readings(rate), slots) for rate in rates]
    levels = [c.level for c in chosen]
    assert levels == sorted(levels, reverse=True) and len(set(levels)) == 3
    assert all(c.copies == 1 and c.capacity_bytes > 0 for c in chosen)
    for rate, c in zip(rates, chosen):  # its level decodes, the next one up does not
        assert c.capacity_bytes == container.ldpc_file_capacity(slots, c.code, c.copies)
        assert strength.decodes(signed_readings(rate), slots, c.level)
        if c.level + 1 < len(strength.LEVELS):
            assert not strength.decodes(signed_readings(rate), slots, c.level + 1)
    # Too noisy for rate 1/4 alone: copies of every bit, and still room for a file.
    hard = strength.choose(signed_readings(0.25), slots)
    assert hard.code == 0 and hard.copies > 1 and hard.capacity_bytes > 0
    hopeless = strength.choose(signed_readings(0.49), slots)
    assert hopeless.capacity_bytes == 0
