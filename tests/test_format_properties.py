"""The format parser survives anything: property-based tests with hypothesis.

Random and mutated headers, header logits, bodies, body logits and codewords must each end
in a valid result or in stegcli's own error (PayloadError, ECCError: both StegcliError),
never another exception, a hang (every example has a deadline) or an allocation that a
length field inflated (tracemalloc bounds the peak of the examples whose length fields are
hostile). numpy registers its buffers with tracemalloc, so array allocations count.

Examples per run: 11 properties, MAX_EXAMPLES (300) each, 3,300 in all; the last test
checks that they all ran (hypothesis may stop a property early only when it has exhausted
its search space, which none of these can).
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import struct
import tracemalloc
import unicodedata
import zlib
from collections import Counter
from unittest import mock

import numpy as np
import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stegcli import container, hiding, ldpc
from stegcli.container import (
    BLOCK,
    HEADER_BYTES,
    HEADER_SLOTS,
    MAX_NAME_BYTES,
    Header,
    PayloadError,
    clean_name,
    open_sealed,
    read_body,
    read_header,
)
from stegcli.ecc import ECCError, decode_blocks, decode_blocks_partial, encode_blocks
from stegcli.errors import StegcliError
from stegcli.layout import Layout

MAX_EXAMPLES = 300
PROPERTIES = 11
RAN: Counter[str] = Counter()

fuzz = settings(
    max_examples=MAX_EXAMPLES,
    deadline=3000,  # milliseconds: a hang fails the example, generously on a loaded machine
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    database=None,  # leave no .hypothesis folder behind
)


def counted(function):
    RAN[function.__name__] += 0
    return function


def ran(name: str) -> None:
    RAN[name] += 1


class bounded_memory:
    """Fails if the block allocates more than ``limit`` bytes at its peak."""

    def __init__(self, limit: int):
        self.limit = limit

    def __enter__(self):
        tracemalloc.start()
        return self

    def __exit__(self, *exc):
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        if exc[0] is None:
            assert peak <= self.limit, f"peak allocation {peak:,} bytes > {self.limit:,}"
        return False


# ----- strategies

valid_nsym = st.integers(1, 127).map(lambda half: 2 * half)
headers = st.one_of(
    st.builds(
        Header,
        flags=st.integers(0, 3),
        nsym=valid_nsym,
        repeat=st.integers(1, container.MAX_REPEAT),
        body_length=st.integers(0, 2**32 - 1),
        erase_eighths=st.integers(0, 255),
    ),
    st.builds(  # format 2
        Header.ldpc,
        flags=st.integers(0, 3),
        body_length=st.integers(0, 2**32 - 1),
        code=st.integers(0, len(ldpc.RATES) - 1),
        repeat=st.integers(1, container.MAX_REPEAT),
    ),
)


def small_header(max_body: int = 1500):
    """Headers of format 1 and 2 with bodies of at most ``max_body`` bytes."""
    return st.one_of(
        st.builds(
            Header,
            flags=st.integers(0, 3),
            nsym=valid_nsym,
            repeat=st.integers(1, 3),
            body_length=st.integers(0, max_body),
            erase_eighths=st.integers(0, 255),
        ),
        st.builds(
            Header.ldpc,
            flags=st.integers(0, 3),
            body_length=st.integers(0, max_body),
            code=st.integers(0, len(ldpc.RATES) - 1),
            repeat=st.integers(1, 3),
        ),
    )


@st.composite
def logits(draw, length: int):
    """float32 logits: a random scale and sign pattern, with NaN, ±inf, ±0 and huge values."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    scale = draw(st.sampled_from([1e-6, 0.05, 1.0, 10.0, 1e30]))
    values = (rng.standard_normal(length) * scale).astype(np.float32)
    specials = draw(
        st.lists(
            st.tuples(
                st.integers(0, max(0, length - 1)),
                st.sampled_from([np.nan, np.inf, -np.inf, 0.0, -0.0, 3e38, -3e38]),
            ),
            max_size=20,
        )
    )
    for index, value in specials:
        if length:
            values[index] = value
    return values


def _valid_header(header: Header) -> None:
    """What every header the parser accepts must satisfy."""
    assert header.flags & ~3 == 0
    if header.version == 2:
        assert 0 <= header.code < len(ldpc.RATES)
        assert (header.nsym, header.erase_eighths) == (0, 0)
        assert 1 <= header.repeat <= container.MAX_REPEAT
    else:
        assert header.version == 1 and header.code is None
        assert 2 <= header.nsym <= 254 and header.nsym % 2 == 0
        assert 1 <= header.repeat <= container.MAX_REPEAT
    assert 0 <= header.body_length < 2**32


# ----- headers


@counted
@fuzz
@given(data=st.binary(max_size=64))
def test_random_header_bytes(data):
    ran("test_random_header_bytes")
    try:
        header = Header.from_bytes(data)
    except PayloadError:
        return
    _valid_header(header)
    assert header.to_bytes() == data


@counted
@fuzz
@given(
    header=headers,
    flips=st.lists(st.integers(0, 8 * HEADER_BYTES - 1), min_size=1, max_size=12),
    fix_crc=st.booleans(),
    cut=st.integers(-3, 3),
)
def test_mutated_headers(header, flips, fix_crc, cut):
    """Bit flips, with or without a recomputed CRC (so the field checks are reached), and
    headers a few bytes too short or too long."""
    ran("test_mutated_headers")
    data = bytearray(header.to_bytes())
    for bit in flips:
        data[bit // 8] ^= 0x80 >> (bit % 8)
    if fix_crc:
        data[16:20] = struct.pack(">I", zlib.crc32(bytes(data[:16])))
    data = bytes(data[: HEADER_BYTES + cut]) if cut < 0 else bytes(data) + bytes(cut)
    try:
        parsed = Header.from_bytes(data)
    except PayloadError:
        return
    # Accepted only if it says exactly what the bytes say: nothing ignored, nothing lost.
    _valid_header(parsed)
    assert parsed.to_bytes() == data


@counted
@fuzz
@given(values=logits(HEADER_SLOTS), extra=st.integers(-HEADER_SLOTS, 400))
def test_read_header_with_random_logits(values, extra):
    """Random logits, and fewer (an image too small for a header) or more than it needs."""
    ran("test_read_header_with_random_logits")
    values = np.resize(values, HEADER_SLOTS + extra) if extra else values
    try:
        with np.errstate(over="ignore", invalid="ignore"):  # sums of ±3e38 and inf
            header = read_header(values)
    except PayloadError:
        return
    _valid_header(header)


@counted
@fuzz
@given(
    header=headers,
    flips=st.lists(st.integers(0, HEADER_SLOTS - 1), max_size=1500),
    strength=st.floats(0.01, 50),
)
def test_read_header_from_damaged_header_logits(header, flips, strength):
    """A real header's logits with some signs flipped: the header itself, or no payload."""
    ran("test_read_header_from_damaged_header_logits")
    values = (container.header_bits(header).astype(np.float32) * 2 - 1) * strength
    values[flips] = -values[flips]
    try:
        found = read_header(values)
    except PayloadError:
        return
    assert found == header


# ----- bodies


def _fast_key(passphrase: str, salt: bytes) -> bytes:
    """scrypt's stand-in (scrypt costs ~0.1 s an example); the parser is what is tested."""
    return hashlib.sha256(salt + passphrase.encode()).digest()


@counted
@fuzz
@given(
    header=small_header(),
    body=st.binary(max_size=600),
    matching_length=st.booleans(),
    passphrase=st.sampled_from([None, "", "pw"]),
)
def test_open_sealed_with_random_bodies(header, body, matching_length, passphrase):
    ran("test_open_sealed_with_random_bodies")
    if matching_length:
        header = dataclasses.replace(header, body_length=len(body))
    with mock.patch.object(container, "_key", _fast_key), bounded_memory(4 << 20):
        try:
            name, _ = open_sealed(header, body, passphrase)
        except PayloadError:
            return
    assert name == clean_name(name)


@counted
@fuzz
@given(
    name_length=st.integers(0, 255),
    rest=st.binary(max_size=400),
    compressed=st.booleans(),
    zlib_content=st.one_of(st.none(), st.binary(max_size=300), st.integers(0, 3_000_000)),
    aligned=st.booleans(),
    encrypted=st.booleans(),
)
def test_open_sealed_with_authentic_hostile_inner(
    name_length, rest, compressed, zlib_content, aligned, encrypted
):
    """Bodies whose checksum or tag is right (what a hostile encoder makes) around a hostile
    inner: any name length byte, any name bytes, damaged or bomb-like zlib content."""
    ran("test_open_sealed_with_authentic_hostile_inner")
    original = bytes(zlib_content) if isinstance(zlib_content, int) else zlib_content
    if original is not None:  # an int: a zlib bomb, a few KB inflating to megabytes
        rest = rest[:MAX_NAME_BYTES] + zlib.compress(original, 9)
        if aligned:  # the name ends where the zlib stream starts
            name_length = len(rest) - len(zlib.compress(original, 9))
    inner = bytes([name_length]) + rest
    flags = (container.FLAG_COMPRESSED if compressed else 0) | (
        container.FLAG_ENCRYPTED if encrypted else 0
    )
    if encrypted:
        header = Header(flags, 16, 1, 16 + 12 + len(inner) + 16)
        salt, nonce = os.urandom(16), os.urandom(12)
        sealed = AESGCM(_fast_key("pw", salt)).encrypt(nonce, inner, header.prefix())
        body = salt + nonce + sealed
    else:
        header = Header(flags, 16, 1, len(inner) + 16)
        body = inner + hashlib.sha256(header.prefix() + inner).digest()[:16]
    # Inflating is bounded by 1100 × the body (zlib tops out at 1032), and its output buffer
    # by about twice that: proportional to the body, which the image bounds.
    with (
        mock.patch.object(container, "_key", _fast_key),
        bounded_memory(3 * 1100 * len(body) + (2 << 20)),
    ):
        try:
            name, content = open_sealed(header, body, "pw")
        except PayloadError:
            return
    assert name == clean_name(name) and len(name.encode()) <= MAX_NAME_BYTES
    if not compressed:
        assert content == inner[1 + name_length :]
    elif original is not None and aligned:
        assert content == original


@counted
@fuzz
@given(header=small_header(), data=st.data(), wrong_length=st.integers(-50, 50))
def test_read_body_with_random_logits(header, data, wrong_length):
    ran("test_read_body_with_random_logits")
    length = header.body_slots + (wrong_length if data.draw(st.booleans()) else 0)
    values = data.draw(logits(max(0, length)))
    try:
        body, corrected = read_body(values, header)
    except PayloadError:
        return
    assert len(values) == header.body_slots
    assert len(body) == header.body_length and corrected >= 0


@counted
@fuzz
@given(header=small_header(max_body=600), data=st.data())
def test_read_body_from_damaged_codewords(header, data):
    """A real body's logits with flipped and weakened bits: that body, or no payload."""
    ran("test_read_body_from_damaged_codewords")
    body = data.draw(st.binary(min_size=header.body_length, max_size=header.body_length))
    bits = container.body_bits(header, body).astype(np.float32)
    values = (bits * 2 - 1) * data.draw(st.floats(0.1, 20))
    if len(values):
        rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
        hit = rng.random(len(values)) < data.draw(st.sampled_from([0.0, 0.001, 0.01, 0.05, 0.3]))
        values[hit] = -values[hit]
        weak = rng.random(len(values)) < 0.02
        values[weak] *= 0.01
        flipped = bool(hit.any())
    else:
        flipped = False
    try:
        found, _ = read_body(values, header)
    except PayloadError:
        assert flipped, "an undamaged body must read back"
        return
    assert len(found) == header.body_length
    if not flipped:
        assert found == body


LAYOUT = Layout.derive(1, 64, 64, None)  # 4,096 slots: a header and a little body


@counted
@fuzz
@given(header=headers, data=st.data())
def test_length_fields_are_checked_before_they_are_trusted(header, data):
    """A perfectly readable header claiming any body length, up to 4 GiB, in a 64×64 image:
    the payload reader refuses what cannot fit before it gathers or allocates anything."""
    ran("test_length_fields_are_checked_before_they_are_trusted")
    stream = np.zeros(LAYOUT.slots, dtype=np.uint8)
    stream[:HEADER_SLOTS] = container.header_bits(header)
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    stream[HEADER_SLOTS:] = rng.integers(0, 2, LAYOUT.slots - HEADER_SLOTS)
    grid = LAYOUT.place(stream).astype(np.float32) * 8 - 4
    fits = HEADER_SLOTS + header.body_slots <= LAYOUT.slots
    with mock.patch.object(container, "_key", _fast_key), bounded_memory(8 << 20):
        try:
            hiding._read_payload(grid, LAYOUT, "pw")
        except PayloadError as error:
            if not fits:
                assert "claims more than fits" in str(error)
            return
    assert fits


# ----- error correction


@counted
@fuzz
@given(
    nsym=st.integers(1, 254),
    data=st.data(),
)
def test_decode_blocks_with_random_codewords_and_erasures(nsym, data):
    """Random codewords, or real ones with random errors, and random erasures: either a
    correction within reach (2·changed-outside-erasures + erasures ≤ nsym) or ECCError."""
    ran("test_decode_blocks_with_random_codewords_and_erasures")
    n = data.draw(st.integers(nsym + 1, BLOCK))
    blocks = data.draw(st.integers(0, 4))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    if data.draw(st.booleans()):
        words = rng.integers(0, 256, (blocks, n), dtype=np.uint8)
    else:
        words = encode_blocks(rng.integers(0, 256, (blocks, n - nsym), dtype=np.uint8), nsym)
        errors = rng.random((blocks, n)) < data.draw(st.sampled_from([0.0, 0.01, 0.05, 0.2]))
        words[errors] ^= rng.integers(1, 256, int(errors.sum()), dtype=np.uint8)
    erased = None
    if data.draw(st.booleans()):
        erased = rng.random((blocks, n)) < data.draw(st.sampled_from([0.0, 0.02, 0.1, 0.6]))
    try:
        fixed, corrected = decode_blocks(words, nsym, erased)
    except ECCError as error:
        assert isinstance(error, StegcliError)
        _, ok, _ = decode_blocks_partial(words, nsym, erased)
        assert not ok.all()
        return
    assert fixed.shape == (blocks, n - nsym) and fixed.dtype == np.uint8
    codewords = encode_blocks(fixed, nsym)
    changed = codewords != words
    assert corrected == int(changed.sum())
    marks = np.zeros_like(changed) if erased is None else erased
    for row in range(blocks):
        if changed[row].any():
            outside = int((changed[row] & ~marks[row]).sum())
            assert 2 * outside + int(marks[row].sum()) <= nsym


# ----- names

DEVICES = {"con", "prn", "aux", "nul", "conin$", "conout$", "clock$"} | {
    f"{port}{digit}" for port in ("com", "lpt") for digit in "0123456789¹²³"
}


@counted
@fuzz
@given(
    name=st.one_of(
        st.text(max_size=120),
        st.lists(
            st.sampled_from(
                ["..", ".", "/", "\\", ":", "con", "NUL", "com1", "lpt¹", "conin$", " ", "\x00",
                 "\x1b", "\u202e", "\ud800", "a", "é", "😀", ".txt", ".tar.gz", "C:", "~"]
            ),
            max_size=30,
        ).map("".join),
    )
)  # fmt: skip
def test_clean_name_is_always_safe(name):
    ran("test_clean_name_is_always_safe")
    cleaned = clean_name(name)
    assert len(cleaned.encode("utf-8")) <= MAX_NAME_BYTES  # encodes: no lone surrogates
    assert not set(cleaned) & set("/\\:")
    assert not any(unicodedata.category(ch)[0] == "C" for ch in cleaned)
    assert not cleaned.startswith(".") and cleaned not in (".", "..")
    assert cleaned.split(".")[0].rstrip(" ").lower() not in DEVICES
    assert clean_name(cleaned) == cleaned


def test_every_property_ran_its_examples():
    """The example count quoted in the module docstring: PROPERTIES × MAX_EXAMPLES."""
    assert len(RAN) == PROPERTIES
    if any(RAN[name] == 0 for name in RAN):
        pytest.skip("run the whole file to count the examples")
    total = sum(RAN.values())
    print(f"\nhypothesis examples this run: {total:,} ({dict(RAN)})")
    # Each property runs its examples (hypothesis adds a few replays of failing or shrunk
    # cases only when something fails).
    assert all(count >= MAX_EXAMPLES for count in RAN.values()), dict(RAN)
