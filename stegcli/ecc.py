"""Reed-Solomon error correction over GF(2^8), vectorised over many codewords at once.

A hidden payload comes back from an image with a few wrong bytes; cutting it into blocks and
protecting each block with Reed-Solomon parity lets the decoder repair them. A payload of a
megabyte is thousands of blocks, so the work is done with numpy on all blocks at once rather
than one block at a time.

Conventions (the defaults of the ``reedsolo`` package, ``RSCodec(nsym)``, whose codewords are
byte-identical to ours):

* field GF(256) built from the primitive polynomial x^8 + x^4 + x^3 + x^2 + 1 (0x11d), with
  generator alpha = 2;
* generator polynomial g(x) = prod_{i=0}^{nsym-1} (x - alpha^i), i.e. first consecutive
  root fcr = 0;
* codewords are systematic: the k data bytes first, then the nsym parity bytes. Byte j of a
  codeword of length n is the coefficient of x^(n-1-j);
* codes may be shortened: a codeword of n < 255 bytes is a codeword of 255 bytes whose
  leading 255 - n data bytes are zero and are not stored.

A codeword with nsym parity bytes is corrected when at most nsym // 2 of its bytes are wrong
(errors only, no erasures). With more, decoding usually fails and :class:`ECCError` is raised;
like any Reed-Solomon decoder it may instead, rarely, land on another valid codeword, which
no decoder can tell from the right one.
"""

from __future__ import annotations

import numpy as np

from stegcli.errors import StegcliError

_PRIMITIVE = 0x11D
_ORDER = 255  # size of the multiplicative group: alpha^255 == 1
_MAX_N = 255  # longest codeword the field allows

# Dirty blocks are corrected this many at a time, to bound the (blocks, n) temporaries.
_CHUNK = 2048


class ECCError(StegcliError):
    """Some blocks carry more byte errors than their parity can correct."""


def _build_tables() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Antilog (512), log (256), full multiplication (256x256) and inverse (256) tables."""
    exp = np.zeros(512, dtype=np.uint8)
    log = np.zeros(256, dtype=np.intp)  # log[0] is undefined; every use masks zero out
    x = 1
    for i in range(_ORDER):
        exp[i] = x
        log[x] = i
        x <<= 1
        if x & 0x100:
            x ^= _PRIMITIVE
    # Doubled so that exp[log a + log b] needs no modulo.
    exp[_ORDER : 2 * _ORDER] = exp[:_ORDER]
    exp[2 * _ORDER :] = exp[: 512 - 2 * _ORDER]
    mul = exp[log[:, None] + log[None, :]]
    mul[0, :] = 0
    mul[:, 0] = 0
    inv = exp[(_ORDER - log) % _ORDER]
    inv[0] = 0  # zero has no inverse; callers treat a zero divisor as a failure
    for table in (exp, log, mul, inv):
        table.setflags(write=False)
    return exp, log, mul, inv


_EXP, _LOG, _MUL, _INV = _build_tables()


def _check_blocks(array: np.ndarray, name: str) -> np.ndarray:
    """``array`` itself if it is a 2-D uint8 array, else ValueError (a caller's bug)."""
    if not isinstance(array, np.ndarray):
        raise ValueError(f"{name} must be a numpy array, got {type(array).__name__}")
    if array.dtype != np.uint8 or array.ndim != 2:
        raise ValueError(
            f"{name} must be uint8 of shape (blocks, length), got {array.dtype} {array.shape}"
        )
    return array


def _check_sizes(n: int, nsym: int) -> None:
    """ValueError unless a codeword of n bytes with nsym parity bytes is possible."""
    if nsym < 1 or n - nsym < 1 or n > _MAX_N:
        raise ValueError(
            f"need 1 <= nsym < n <= {_MAX_N} (at least one data byte), got n={n}, nsym={nsym}"
        )


def _generator(nsym: int) -> np.ndarray:
    """g(x) = prod_{i<nsym} (x - alpha^i), coefficients highest degree first (g[0] == 1)."""
    gen = np.ones(1, dtype=np.uint8)
    for i in range(nsym):
        # gen * (x + alpha^i): shift up one degree, add gen scaled by alpha^i.
        gen = np.append(gen, 0) ^ np.insert(_MUL[gen, _EXP[i]], 0, 0)
    return gen


def _syndromes(codewords: np.ndarray, nsym: int) -> np.ndarray:
    """S_j = c(alpha^j) for j < nsym, shape (blocks, nsym), by Horner over all blocks."""
    blocks, n = codewords.shape
    # times_root[j * 256 + s] = s * alpha^j: one flat gather multiplies every S_j by its root.
    times_root = _MUL[_EXP[:nsym]].ravel()
    offsets = np.arange(nsym, dtype=np.intp) * 256
    columns = np.ascontiguousarray(codewords.T)
    synd = np.zeros((blocks, nsym), dtype=np.uint8)
    for p in range(n):
        synd = times_root[synd + offsets]
        synd ^= columns[p][:, None]
    return synd


def encode_blocks(data: np.ndarray, nsym: int) -> np.ndarray:
    """Append nsym Reed-Solomon parity bytes to every row of ``data``.

    ``data`` is uint8 of shape (blocks, k) with k + nsym <= 255; the result is uint8 of shape
    (blocks, k + nsym): each row is the systematic codeword, its k data bytes then its parity.
    """
    data = _check_blocks(data, "data")
    blocks, k = data.shape
    _check_sizes(k + nsym, nsym)
    gen = _generator(nsym)
    # Row f: f * g(x) without its leading term, what the divider subtracts for quotient f.
    feedback = _MUL[:, gen[1:]]
    columns = np.ascontiguousarray(data.T)
    # The LFSR register: the remainder of the data so far times x^nsym, divided by g(x).
    register = np.zeros((blocks, nsym), dtype=np.uint8)
    for i in range(k):
        quotient = columns[i] ^ register[:, 0]
        step = feedback[quotient]
        step[:, :-1] ^= register[:, 1:]
        register = step
    return np.concatenate([data, register], axis=1)


def decode_blocks(codewords: np.ndarray, nsym: int) -> tuple[np.ndarray, int]:
    """Correct every row of ``codewords`` and return its data bytes.

    ``codewords`` is uint8 of shape (blocks, n), n <= 255, each row a codeword of
    :func:`encode_blocks` with nsym parity bytes, possibly with wrong bytes. Returns the
    corrected data, uint8 of shape (blocks, n - nsym), and the number of bytes corrected over
    all blocks. Raises :class:`ECCError` when any block has more errors than it can correct
    (more than nsym // 2) and the decoder notices.
    """
    codewords = _check_blocks(codewords, "codewords")
    blocks, n = codewords.shape
    _check_sizes(n, nsym)
    k = n - nsym
    data = codewords[:, :k].copy()
    if blocks == 0:
        return data, 0
    # Most blocks are usually clean: only those with a nonzero syndrome need the decoder.
    synd = _syndromes(codewords, nsym)
    dirty = np.flatnonzero(synd.any(axis=1))
    corrected = 0
    failed = 0
    for start in range(0, dirty.size, _CHUNK):
        rows = dirty[start : start + _CHUNK]
        fixed, counts, ok = _correct(codewords[rows], synd[rows], nsym)
        data[rows[ok]] = fixed[ok, :k]
        corrected += int(counts[ok].sum())
        failed += int((~ok).sum())
    if failed:
        raise ECCError(
            f"too many bit errors to correct ({failed} of {blocks} blocks); each block of "
            f"{n} bytes can correct at most {nsym // 2}"
        )
    return data, corrected


def _berlekamp_massey(synd: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Error locators of all rows at once.

    Returns Lambda, uint8 (blocks, nsym + 1) with the coefficient of x^i in column i and
    Lambda(0) = 1, and its LFSR length L (blocks,), the number of errors it claims.
    """
    blocks, nsym = synd.shape
    lam = np.zeros((blocks, nsym + 1), dtype=np.uint8)
    lam[:, 0] = 1
    # x^m B(x): the last locator before a length change, scaled by its inverse discrepancy.
    prev = lam.copy()
    length = np.zeros(blocks, dtype=np.intp)
    for r in range(nsym):
        # Discrepancy sum_{j<=r} Lambda_j S_{r-j}; coefficients above L are zero anyway.
        delta = np.bitwise_xor.reduce(_MUL[lam[:, : r + 1], synd[:, r::-1]], axis=1)
        # deg(x^m B) <= r + 1 - L <= nsym, so nothing nonzero is shifted out.
        prev[:, 1:] = prev[:, :-1].copy()
        prev[:, 0] = 0
        updated = lam ^ _MUL[delta[:, None], prev]  # unchanged where delta == 0
        grow = (delta != 0) & (2 * length <= r)
        prev = np.where(grow[:, None], _MUL[_INV[delta][:, None], lam], prev)
        length = np.where(grow, r + 1 - length, length)
        lam = updated
    return lam, length


def _correct(
    codewords: np.ndarray, synd: np.ndarray, nsym: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Correct blocks whose syndromes are not all zero.

    Returns the corrected codewords (uint8, same shape), the bytes corrected per block and a
    bool mask of the blocks that decoded; rows where the mask is False hold no usable data.
    """
    blocks, n = codewords.shape
    t = nsym // 2
    lam, length = _berlekamp_massey(synd)
    ok = length <= t

    # Chien search: byte p is wrong when Lambda(alpha^-(n-1-p)) == 0. Only the n stored
    # positions are tried, so a root in the part a shortened code leaves out is a failure.
    degree = n - 1 - np.arange(n)
    width = int(min(t, length[ok].max(initial=0))) + 1
    powers = _EXP[(-np.outer(np.arange(width), degree)) % _ORDER]  # (width, n)
    values = np.zeros((blocks, n), dtype=np.uint8)
    for i in range(width):
        values ^= _MUL[lam[:, i : i + 1], powers[i]]
    roots = values == 0
    # As many distinct roots as the locator's length, or the errors are beyond its reach.
    ok &= roots.sum(axis=1) == length

    fixed = codewords.copy()
    counts = np.zeros(blocks, dtype=np.intp)
    roots &= ok[:, None]
    err_block, err_pos = np.nonzero(roots)
    if err_block.size:
        # Forney with fcr = 0: e = X * Omega(X^-1) / Lambda'(X^-1), with error locator
        # X = alpha^(n-1-p) and Omega = S * Lambda mod x^nsym, of degree < L <= t.
        omega = np.zeros((blocks, t), dtype=np.uint8)
        for j in range(t):
            omega[:, j:] ^= _MUL[lam[:, j : j + 1], synd[:, : t - j]]
        err_degree = degree[err_pos]
        inv_powers = _EXP[(-np.outer(err_degree, np.arange(t + 1))) % _ORDER]  # X^-i
        omega_at = np.bitwise_xor.reduce(_MUL[omega[err_block], inv_powers[:, :t]], axis=1)
        # In characteristic 2 the formal derivative keeps only the odd powers:
        # Lambda'(x) = sum over odd i of Lambda_i x^(i-1).
        odd = np.arange(1, t + 1, 2)
        slope_at = np.bitwise_xor.reduce(
            _MUL[lam[err_block][:, odd], inv_powers[:, odd - 1]], axis=1
        )
        magnitude = _MUL[_EXP[err_degree], _MUL[omega_at, _INV[slope_at]]]
        # A zero derivative means a repeated root: the locator is not a real one.
        bad = np.zeros(blocks, dtype=bool)
        bad[err_block[slope_at == 0]] = True
        ok &= ~bad
        fixed[err_block, err_pos] ^= magnitude
        counts = np.bincount(err_block, weights=magnitude != 0, minlength=blocks).astype(np.intp)

    # Trust no correction that does not leave a valid codeword.
    if ok.any():
        check = np.flatnonzero(ok)
        ok[check[_syndromes(fixed[check], nsym).any(axis=1)]] = False
    return fixed, counts, ok
