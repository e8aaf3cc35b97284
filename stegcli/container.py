"""The payload format: a file and its name, sealed into a header and an error-corrected body.

This module turns bytes into stream bits and back; docs/FORMAT.md describes every field.
Where the stream bits go in the image is :mod:`stegcli.layout`'s business, and reading them
is :mod:`stegcli.embedding`'s.

Stream (stream positions, before whitening)::

    [0, 2592)      header: 20 bytes + 16 Reed-Solomon parity bytes = 288 bits, written 9
                   times (bit j at positions j, j+288, …), read by summing the 9 logits
    [2592, …)      body, format 2 (what encode writes): the body's bits in LDPC codewords
                   of :mod:`stegcli.ldpc` at the rate the header names, the last codeword
                   shortened, all written ``repeat`` times (usually once) like format 1's;
                   read with the copies' summed logits as soft information
                   body, format 1 (still read): Reed-Solomon codewords of 255 bytes (the
                   last one shortened), each of k = 255 − nsym data bytes and nsym parity
                   bytes; their L bits written ``repeat`` times (bit j at 2592 + j,
                   2592 + L + j, …) and read by summing the copies' logits; bytes read
                   with little confidence are treated as erasures
    the rest       random filler bits

Header (20 bytes, big-endian): magic "SGCL", version (2, or 1), flags (bit 0: compressed,
bit 1: encrypted), then format 2: the LDPC code (rate index), the copies and four zero
bytes; format 1: nsym, repeat, erasure threshold (eighths of a logit) and three zero bytes;
then the body length in bytes (uint32) and the CRC-32 of the first 16 bytes. Encode chooses
the code for each photo from how well it reads back (:mod:`stegcli.strength`).

Body: ``inner + SHA-256(header[:16] + inner)[:16]`` without a passphrase, or
``salt (16) + nonce (12) + AES-256-GCM(inner, aad=header[:16])`` with one, the key derived
by scrypt (N=2^15, r=8, p=1) from the passphrase and the salt. ``inner`` is the stored name's
length (1 byte), the name (UTF-8, at most 64 bytes), then the file's bytes, zlib-compressed
when that made them smaller.
"""

from __future__ import annotations

import hashlib
import os
import re
import struct
import unicodedata
import zlib
from dataclasses import dataclass

import numpy as np
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from stegcli import ldpc
from stegcli.ecc import ECCError, decode_blocks, decode_blocks_partial, encode_blocks
from stegcli.errors import StegcliError

MAGIC = b"SGCL"
FORMAT_VERSION = 2  # what encode writes; decode reads versions 1 and 2
READ_VERSIONS = (1, 2)
FLAG_COMPRESSED = 0x01
FLAG_ENCRYPTED = 0x02

HEADER_BYTES = 20
HEADER_NSYM = 16
HEADER_REPEATS = 9
HEADER_SLOTS = (HEADER_BYTES + HEADER_NSYM) * 8 * HEADER_REPEATS  # 2592 stream bits
MAX_REPEAT = 8

BLOCK = 255  # Reed-Solomon codeword length in bytes
MAX_NAME_BYTES = 64
CHECKSUM_BYTES = 16
SALT_BYTES, NONCE_BYTES, TAG_BYTES = 16, 12, 16
# The most a body adds to the file's bytes: the name, its length, and salt + nonce + tag.
MAX_OVERHEAD = 1 + MAX_NAME_BYTES + max(CHECKSUM_BYTES, SALT_BYTES + NONCE_BYTES + TAG_BYTES)
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**15, 8, 1

NOT_FOUND = "no payload found, or wrong passphrase"


class PayloadError(StegcliError):
    """The image holds no payload that can be read, or one that fails its checks."""


@dataclass(frozen=True)
class Header:
    flags: int
    nsym: int
    repeat: int
    body_length: int
    erase_eighths: int = 0  # bytes read with less confidence than this/8 are erasures
    code: int | None = None  # format 2: the LDPC rate (ldpc.RATES index); None: format 1

    @classmethod
    def ldpc(cls, flags: int, body_length: int, code: int, repeat: int = 1) -> Header:
        """A format-2 header: the body protected by the LDPC code of rate ldpc.RATES[code],
        its stored bits written ``repeat`` times."""
        return cls(flags, 0, repeat, body_length, 0, code)

    @property
    def version(self) -> int:
        return 1 if self.code is None else 2

    @property
    def erase_threshold(self) -> float:
        return self.erase_eighths / 8

    @property
    def compressed(self) -> bool:
        return bool(self.flags & FLAG_COMPRESSED)

    @property
    def encrypted(self) -> bool:
        return bool(self.flags & FLAG_ENCRYPTED)

    def prefix(self) -> bytes:
        """The first 16 bytes: what the checksum and the encryption authenticate."""
        if self.code is not None:  # format 2: the code and the copies, bytes 8 … 11 zero
            fields = (self.code, self.repeat, 0)
        else:
            fields = (self.nsym, self.repeat, self.erase_eighths)
        return struct.pack(
            ">4sBBBBB3xI", MAGIC, self.version, self.flags, *fields, self.body_length
        )

    def to_bytes(self) -> bytes:
        prefix = self.prefix()
        return prefix + struct.pack(">I", zlib.crc32(prefix))

    @classmethod
    def from_bytes(cls, data: bytes) -> Header:
        if len(data) != HEADER_BYTES:
            raise PayloadError(f"{NOT_FOUND} (the header is not {HEADER_BYTES} bytes)")
        fields = struct.unpack(">4sBBBBB3sII", data)
        magic, version, flags, nsym, repeat, erase_eighths, reserved, body_length, crc = fields
        if magic != MAGIC or crc != zlib.crc32(data[:16]):
            raise PayloadError(NOT_FOUND)
        if version not in READ_VERSIONS:
            raise PayloadError(
                f"this image holds a payload of format version {version}; this stegcli reads "
                f"versions {', '.join(map(str, READ_VERSIONS))}: use a stegcli release that "
                "supports it"
            )
        if version == 2:
            code = nsym
            valid = code < len(ldpc.RATES) and 1 <= repeat <= MAX_REPEAT and erase_eighths == 0
        else:
            valid = 2 <= nsym < BLOCK and not nsym % 2 and 1 <= repeat <= MAX_REPEAT
        if not valid or flags & ~(FLAG_COMPRESSED | FLAG_ENCRYPTED) or reserved != bytes(3):
            raise PayloadError(f"{NOT_FOUND} (the header is not valid)")
        if version == 2:
            return cls.ldpc(flags, body_length, code, repeat)
        return cls(flags, nsym, repeat, body_length, erase_eighths)

    @property
    def body_slots(self) -> int:
        """Stream bits the body occupies, parity and copies included."""
        if self.code is not None:
            return ldpc.stored_bits(8 * self.body_length, self.code) * self.repeat
        return 8 * stored_bytes(self.body_length, self.nsym) * self.repeat


# ----- sizes


def body_capacity(slots: int, nsym: int, repeat: int = 1) -> int:
    """Body bytes that fit in ``slots`` stream bits once the header, parity and copies are paid."""
    stored = max(0, slots - HEADER_SLOTS) // (8 * repeat)
    full, rest = divmod(stored, BLOCK)
    return full * (BLOCK - nsym) + max(0, rest - nsym)


def file_capacity(slots: int, nsym: int, repeat: int = 1) -> int:
    """The largest file that always fits, whatever its name and with or without passphrase.

    Compression may let a larger file fit, but this figure never counts on it.
    """
    return max(0, body_capacity(slots, nsym, repeat) - MAX_OVERHEAD)


def ldpc_file_capacity(slots: int, code: int, repeat: int = 1) -> int:
    """The largest file that always fits at an LDPC rate with ``repeat`` copies (format 2),
    as file_capacity."""
    body = ldpc.capacity_bits(max(0, slots - HEADER_SLOTS) // repeat, code) // 8
    return max(0, body - MAX_OVERHEAD)


def stored_bytes(body_length: int, nsym: int) -> int:
    """Bytes of Reed-Solomon codewords holding a body of ``body_length`` bytes."""
    full, rest = divmod(body_length, BLOCK - nsym)
    return full * BLOCK + (rest + nsym if rest else 0)


# ----- names


# Windows device names, also with an extension or spaces before it ("nul .txt"), the
# superscript-digit ports and the console buffers.
_DEVICE_NAMES = re.compile(
    r"^(con|prn|aux|nul|com[0-9¹²³]|lpt[0-9¹²³]|conin\$|conout\$|clock\$)\s*(\..*)?$",
    re.IGNORECASE,
)


def clean_name(name: str) -> str:
    """A file name safe to write in the current folder, or "" when nothing usable is left.

    Keeps the base name only (no folder, no drive), drops control and format characters,
    leading dots and spaces, and Windows device names, and cuts it to 64 UTF-8 bytes,
    keeping the extension.
    """
    name = re.split(r"[/\\:]", name)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C")
    name = re.sub(r"^[\s.]+", "", name).rstrip()  # leading dots and spaces, mixed too: ". ."
    if _DEVICE_NAMES.match(name):
        name = "_" + name
    encoded = name.encode("utf-8")
    if len(encoded) > MAX_NAME_BYTES:
        stem, dot, extension = name.rpartition(".")
        extension = dot + extension if dot and len(extension.encode()) <= 16 else ""
        budget = MAX_NAME_BYTES - len(extension.encode())
        stem = (stem if extension else name).encode()[:budget].decode("utf-8", "ignore")
        name = stem + extension
    return name


# ----- sealing and opening


def _key(passphrase: str, salt: bytes) -> bytes:
    kdf = Scrypt(salt=salt, length=32, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P)
    return kdf.derive(passphrase.encode("utf-8"))


@dataclass(frozen=True)
class Packed:
    """A file and its name, ready to seal: ``inner`` and its flags (compressed or not)."""

    flags: int
    inner: bytes

    def body_length(self, passphrase: str | None) -> int:
        """The sealed body's length: inner plus checksum, or salt, nonce and tag."""
        if passphrase:
            return SALT_BYTES + NONCE_BYTES + len(self.inner) + TAG_BYTES
        return len(self.inner) + CHECKSUM_BYTES


def pack(content: bytes, name: str) -> Packed:
    """``content`` under its (cleaned) ``name``, zlib-compressed when that is smaller."""
    flags = 0
    packed = zlib.compress(content, 9)
    if len(packed) < len(content):
        content, flags = packed, flags | FLAG_COMPRESSED
    stored_name = clean_name(name).encode("utf-8")
    return Packed(flags, bytes([len(stored_name)]) + stored_name + content)


def seal_packed(packed: Packed, passphrase: str | None, make_header) -> tuple[Header, bytes]:
    """The header (``make_header(flags, body_length)``) and the body carrying ``packed``."""
    flags = packed.flags | (FLAG_ENCRYPTED if passphrase else 0)
    header = make_header(flags, packed.body_length(passphrase))
    if passphrase:
        salt, nonce = os.urandom(SALT_BYTES), os.urandom(NONCE_BYTES)
        sealed = AESGCM(_key(passphrase, salt)).encrypt(nonce, packed.inner, header.prefix())
        return header, salt + nonce + sealed
    checksum = hashlib.sha256(header.prefix() + packed.inner).digest()[:CHECKSUM_BYTES]
    return header, packed.inner + checksum


def seal(
    content: bytes,
    name: str,
    nsym: int,
    repeat: int,
    passphrase: str | None,
    erase_eighths: int = 0,
) -> tuple[Header, bytes]:
    """The format-1 header and body that carry ``content`` under its (cleaned) ``name``:
    Reed-Solomon with nsym parity bytes and ``repeat`` copies."""
    return seal_packed(
        pack(content, name),
        passphrase,
        lambda flags, length: Header(flags, nsym, repeat, length, erase_eighths),
    )


def seal_ldpc(
    content: bytes, name: str, code: int, passphrase: str | None, repeat: int = 1
) -> tuple[Header, bytes]:
    """The format-2 header and body that carry ``content``: LDPC of rate ldpc.RATES[code],
    written ``repeat`` times."""
    return seal_packed(
        pack(content, name),
        passphrase,
        lambda flags, length: Header.ldpc(flags, length, code, repeat),
    )


def open_sealed(header: Header, body: bytes, passphrase: str | None) -> tuple[str, bytes]:
    """(stored name, file bytes) from a body, after checking its checksum or tag."""
    if len(body) != header.body_length:
        raise PayloadError(f"{NOT_FOUND} (the body is cut short)")
    if header.encrypted:
        if not passphrase:
            raise PayloadError(NOT_FOUND)
        salt, nonce = body[:SALT_BYTES], body[SALT_BYTES : SALT_BYTES + NONCE_BYTES]
        try:
            inner = AESGCM(_key(passphrase, salt)).decrypt(
                nonce, body[SALT_BYTES + NONCE_BYTES :], header.prefix()
            )
        except (InvalidTag, ValueError):
            raise PayloadError(f"{NOT_FOUND} (the payload fails authentication)") from None
    else:
        inner, checksum = body[:-CHECKSUM_BYTES], body[-CHECKSUM_BYTES:]
        if hashlib.sha256(header.prefix() + inner).digest()[:CHECKSUM_BYTES] != checksum:
            raise PayloadError(f"{NOT_FOUND} (the payload fails its checksum)")
    if not inner or inner[0] > MAX_NAME_BYTES or len(inner) < 1 + inner[0]:
        raise PayloadError(f"{NOT_FOUND} (the stored name is not valid)")
    name = clean_name(inner[1 : 1 + inner[0]].decode("utf-8", "replace"))
    content = inner[1 + inner[0] :]
    if header.compressed:
        content = _inflate(content, limit=header.body_length * 1100)
    return name, content


def _inflate(data: bytes, limit: int) -> bytes:
    """zlib-decompress, refusing more than ``limit`` bytes (zlib's ratio tops out at 1032)."""
    inflater = zlib.decompressobj()
    try:
        out = inflater.decompress(data, limit)
    except zlib.error:
        raise PayloadError(f"{NOT_FOUND} (the compressed payload is damaged)") from None
    if inflater.unconsumed_tail or not inflater.eof:
        raise PayloadError(f"{NOT_FOUND} (the compressed payload is damaged)")
    return out


# ----- stream bits


def _to_blocks(data: bytes, nsym: int) -> list[np.ndarray]:
    """Data bytes to codeword arrays: one (full, 255) array and the shortened rest."""
    k = BLOCK - nsym
    array = np.frombuffer(data, dtype=np.uint8)
    full = len(array) // k
    parts = [encode_blocks(array[: full * k].reshape(full, k), nsym)]
    if len(array) % k:
        parts.append(encode_blocks(array[full * k :].reshape(1, -1), nsym))
    return parts


def header_bits(header: Header) -> np.ndarray:
    """The header's HEADER_SLOTS stream bits: codeword bits, repeated HEADER_REPEATS times."""
    data = np.frombuffer(header.to_bytes(), dtype=np.uint8).reshape(1, -1)
    codeword = encode_blocks(data, HEADER_NSYM)
    return np.tile(np.unpackbits(codeword.reshape(-1)), HEADER_REPEATS)


def body_bits(header: Header, body: bytes) -> np.ndarray:
    """The body's stream bits (header.body_slots,) uint8: its codewords, all copies."""
    if header.code is not None:
        stored = ldpc.encode_stream(np.unpackbits(np.frombuffer(body, np.uint8)), header.code)
        return np.tile(stored, header.repeat)
    codewords = np.concatenate([c.reshape(-1) for c in _to_blocks(body, header.nsym)])
    return np.tile(np.unpackbits(codewords), header.repeat)


def stream_bits(header: Header, body: bytes, slots: int) -> np.ndarray:
    """All ``slots`` stream bits (uint8 in {0, 1}): header, body codewords, random filler."""
    coded = body_bits(header, body)
    used = np.concatenate([header_bits(header), coded])
    if len(used) > slots:
        raise ValueError(f"{len(used)} bits do not fit in {slots} slots")
    filler = np.unpackbits(np.frombuffer(os.urandom(-(-(slots - len(used)) // 8)), np.uint8))
    return np.concatenate([used, filler[: slots - len(used)]])


def read_header(logits: np.ndarray) -> Header:
    """The header from its HEADER_SLOTS stream logits (positive reads as 1).

    Fewer logits (an image too small to hold a header) mean no payload, not a crash.
    """
    if len(logits) < HEADER_SLOTS:
        raise PayloadError(NOT_FOUND)
    summed = logits[:HEADER_SLOTS].reshape(HEADER_REPEATS, -1).sum(axis=0)
    codeword = np.packbits((summed > 0).astype(np.uint8)).reshape(1, -1)
    try:
        data, _ = decode_blocks(codeword, HEADER_NSYM)
    except ECCError:
        raise PayloadError(NOT_FOUND) from None
    return Header.from_bytes(data.tobytes())


def combine_copies(logits: np.ndarray, repeat: int) -> np.ndarray:
    """Sum the logits of the ``repeat`` copies of each body bit: (repeat·L,) to (L,)."""
    return logits.reshape(repeat, -1).sum(axis=0)


def guard(nsym: int) -> int:
    """Correctable bytes per codeword that encode keeps in reserve, against the small float
    differences another machine's decoder may show on bits read with little confidence."""
    return max(1, nsym // 16)


def codeword_views(values: np.ndarray, nsym: int) -> list[np.ndarray]:
    """Per-byte values of the stored codewords as 2-D views: (full, 255) and (1, rest)."""
    full = len(values) // BLOCK
    parts = [values[: full * BLOCK].reshape(full, BLOCK)]
    if len(values) % BLOCK:
        parts.append(values[full * BLOCK :].reshape(1, -1))
    return [part for part in parts if part.size]


def erasures(confidence: np.ndarray, nsym: int, threshold: float) -> np.ndarray:
    """Which bytes decode treats as erasures, for (blocks, n) byte confidences.

    A byte's confidence is the smallest |summed logit| of its 8 bits. Bytes under the
    threshold are erased, at most nsym − 2·guard(nsym) per codeword (the least confident).
    """
    if threshold <= 0:
        return np.zeros(confidence.shape, dtype=bool)
    limit = max(0, nsym - 2 * guard(nsym))
    rank = np.argsort(np.argsort(confidence, axis=1, kind="stable"), axis=1, kind="stable")
    return (confidence < threshold) & (rank < limit)


def byte_readings(logits: np.ndarray, repeat: int) -> tuple[np.ndarray, np.ndarray]:
    """(hard-decided bytes, their confidences) from body logits, all copies."""
    combined = combine_copies(logits, repeat)
    hard = np.packbits((combined > 0).astype(np.uint8))
    return hard, np.abs(combined).reshape(-1, 8).min(axis=1)


def read_body(logits: np.ndarray, header: Header) -> tuple[bytes, int]:
    """(body bytes, corrected byte errors) from the body's stream logits, all copies.

    Each codeword is corrected with its unconfident bytes as erasures; one that fails is
    tried again with errors only, before the payload is given up.
    """
    if len(logits) != header.body_slots:
        raise PayloadError(f"{NOT_FOUND} (the header claims more than the image holds)")
    if header.code is not None:
        return _read_ldpc_body(logits, header)
    hard, confidence = byte_readings(logits, header.repeat)
    parts, corrected, failed = [], 0, 0
    for codewords, certainty in zip(
        codeword_views(hard, header.nsym), codeword_views(confidence, header.nsym)
    ):
        erased = erasures(certainty, header.nsym, header.erase_threshold)
        data, ok, fixed = decode_blocks_partial(codewords, header.nsym, erased)
        if not ok.all():
            retry, ok_again, fixed_again = decode_blocks_partial(codewords[~ok], header.nsym)
            data[~ok], fixed[~ok] = retry, fixed_again
            failed += int((~ok_again).sum())
        parts.append(data.reshape(-1))
        corrected += int(fixed.sum())
    if failed:
        raise PayloadError(
            f"{NOT_FOUND} (too many bit errors to correct in {failed} of "
            f"{-(-len(hard) // BLOCK)} codewords)"
        )
    return np.concatenate(parts).tobytes() if parts else b"", corrected


def _read_ldpc_body(logits: np.ndarray, header: Header) -> tuple[bytes, int]:
    """(body bytes, bytes the code corrected) of a format-2 body from its stream logits."""
    combined = combine_copies(logits, header.repeat)
    bits, ok, _ = ldpc.decode_stream(combined, 8 * header.body_length, header.code)
    if not ok.all():
        raise PayloadError(
            f"{NOT_FOUND} (too many bit errors to correct in {int((~ok).sum())} of "
            f"{len(ok)} codewords)"
        )
    body = np.packbits(bits)
    as_read = np.packbits(combined[ldpc.information_positions(len(bits), header.code)] > 0)
    return body.tobytes(), int((as_read != body).sum())
