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

A codeword with nsym parity bytes is corrected when at most nsym // 2 of its bytes are wrong.
The caller may also name erasures, bytes it knows to be unreliable: a codeword with e wrong
bytes outside the erased positions and s erased bytes is corrected when 2e + s <= nsym (an
erased byte that is in fact right costs one parity byte all the same). With more, decoding
usually fails and :class:`ECCError` is raised; like any Reed-Solomon decoder it may instead,
rarely, land on another valid codeword, which no decoder can tell from the right one.
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

# _INV_POWERS[d, i] = alpha^(-d i): the powers X^-i of the locator X = alpha^d of every position
# (a table lookup; computing the exponents with an integer modulo per use is much slower).
_INV_POWERS = _EXP[(-np.outer(np.arange(_ORDER), np.arange(_MAX_N + 1))) % _ORDER]
_INV_POWERS.setflags(write=False)


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


def decode_blocks(
    codewords: np.ndarray, nsym: int, erasures: np.ndarray | None = None
) -> tuple[np.ndarray, int]:
    """Correct every row of ``codewords`` and return its data bytes.

    ``codewords`` is uint8 of shape (blocks, n), n <= 255, each row a codeword of
    :func:`encode_blocks` with nsym parity bytes, possibly with wrong bytes. ``erasures``, if
    given, is bool of the same shape, True at the bytes known to be unreliable. Returns the
    corrected data, uint8 of shape (blocks, n - nsym), and the number of bytes changed over
    all blocks. Raises :class:`ECCError` when any block has more errors than it can correct
    (2 * errors + erasures > nsym; without erasures, more than nsym // 2 errors) and the
    decoder notices. :func:`decode_blocks_partial` does the same without raising.
    """
    data, ok, corrected = decode_blocks_partial(codewords, nsym, erasures)
    failed = int((~ok).sum())
    if failed:
        n = codewords.shape[1]
        reach = (
            f" errors, or e errors and s erasures with 2e + s <= {nsym}"
            if erasures is not None and erasures.any()
            else ""
        )
        raise ECCError(
            f"too many bit errors to correct ({failed} of {len(ok)} blocks); each block of "
            f"{n} bytes can correct at most {nsym // 2}{reach}"
        )
    return data, int(corrected.sum())


def decode_blocks_partial(
    codewords: np.ndarray, nsym: int, erasures: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Like :func:`decode_blocks`, but report each block's outcome instead of raising.

    Returns (data, ok, corrected): data is uint8 (blocks, n - nsym), corrected where ok and
    the block's own data bytes, as received, where not; ok is bool (blocks,), False for the
    blocks the decoder found beyond its reach; corrected is intp (blocks,), the bytes changed
    in each block (0 where not ok). A caller can retry the failed blocks, for instance with
    other erasures.
    """
    codewords = _check_blocks(codewords, "codewords")
    blocks, n = codewords.shape
    _check_sizes(n, nsym)
    erased = _check_erasures(erasures, codewords.shape)
    k = n - nsym
    data = codewords[:, :k].copy()
    ok = np.ones(blocks, dtype=bool)
    corrected = np.zeros(blocks, dtype=np.intp)
    if blocks == 0:
        return data, ok, corrected
    # Most blocks are usually clean: only those with a nonzero syndrome need the decoder,
    # whatever erasures they carry (a valid codeword is taken as it is).
    synd = _syndromes(codewords, nsym)
    dirty = synd.any(axis=1)
    if erased is not None:
        # More erasures than parity bytes leave more unknowns than equations.
        hopeless = dirty & (erased.sum(axis=1) > nsym)
        ok[hopeless] = False
        dirty &= ~hopeless
    rows_all = np.flatnonzero(dirty)
    for start in range(0, rows_all.size, _CHUNK):
        rows = rows_all[start : start + _CHUNK]
        fixed, counts, good = _correct(
            codewords[rows], synd[rows], nsym, None if erased is None else erased[rows]
        )
        data[rows[good]] = fixed[good, :k]
        corrected[rows[good]] = counts[good]
        ok[rows[~good]] = False
    return data, ok, corrected


def _check_erasures(erasures: np.ndarray | None, shape: tuple[int, ...]) -> np.ndarray | None:
    """``erasures`` if bool of ``shape`` with some True; None if absent or all False."""
    if erasures is None:
        return None
    if not isinstance(erasures, np.ndarray):
        raise ValueError(f"erasures must be a numpy array, got {type(erasures).__name__}")
    if erasures.dtype != np.bool_ or erasures.shape != shape:
        raise ValueError(
            f"erasures must be bool of the codewords' shape {shape}, got "
            f"{erasures.dtype} {erasures.shape}"
        )
    return erasures if erasures.any() else None


def _berlekamp_massey(
    synd: np.ndarray, usable: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Error locators of all rows at once.

    Row b uses its first ``usable[b]`` syndromes (all of them if ``usable`` is None); the
    rest of the row is ignored. Returns Lambda, uint8 (blocks, nsym + 1) with the coefficient
    of x^i in column i and Lambda(0) = 1, and its LFSR length L (blocks,), the number of
    errors it claims.
    """
    blocks, nsym = synd.shape
    lam = np.zeros((blocks, nsym + 1), dtype=np.uint8)
    lam[:, 0] = 1
    # x^m B(x): the last locator before a length change, scaled by its inverse discrepancy.
    prev = lam.copy()
    length = np.zeros(blocks, dtype=np.intp)
    steps = nsym if usable is None else int(usable.max(initial=0))
    for r in range(steps):
        # Discrepancy sum_{j<=r} Lambda_j S_{r-j}; coefficients above L are zero anyway.
        delta = np.bitwise_xor.reduce(_MUL[lam[:, : r + 1], synd[:, r::-1]], axis=1)
        if usable is not None:
            delta[usable <= r] = 0  # past its syndromes, a row's locator stays as it is
        # deg(x^m B) <= r + 1 - L <= nsym, so nothing nonzero is shifted out.
        prev[:, 1:] = prev[:, :-1].copy()
        prev[:, 0] = 0
        updated = lam ^ _MUL[delta[:, None], prev]  # unchanged where delta == 0
        grow = (delta != 0) & (2 * length <= r)
        prev = np.where(grow[:, None], _MUL[_INV[delta][:, None], lam], prev)
        length = np.where(grow, r + 1 - length, length)
        lam = updated
    return lam, length


def _erasure_locator(erased: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Gamma(x) = prod over erased bytes p of (1 - X_p x), X_p = alpha^(n-1-p), of every row.

    Returns Gamma, uint8 (blocks, s_max + 1), coefficient of x^i in column i, and the number
    of erasures s (blocks,). Rows with fewer than s_max erasures are padded with X = 0, whose
    factor 1 - 0 x is 1, so one loop serves all rows.
    """
    blocks, n = erased.shape
    count = erased.sum(axis=1)
    s_max = int(count.max(initial=0))
    rank = np.cumsum(erased, axis=1) - 1  # erased byte p is the rank[p]-th of its row
    rows, positions = np.nonzero(erased)
    roots = np.zeros((blocks, s_max), dtype=np.uint8)
    roots[rows, rank[rows, positions]] = _EXP[n - 1 - positions]
    gamma = np.zeros((blocks, s_max + 1), dtype=np.uint8)
    gamma[:, 0] = 1
    for j in range(s_max):
        # gamma * (1 + X_j x): the right side is evaluated before the in-place xor.
        gamma[:, 1 : j + 2] ^= _MUL[roots[:, j : j + 1], gamma[:, : j + 1]]
    return gamma, count


def _correct(
    codewords: np.ndarray, synd: np.ndarray, nsym: int, erased: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Correct blocks whose syndromes are not all zero, with at most nsym erasures each.

    ``erased`` is None (no erasures) or bool, the shape of ``codewords``. Returns the
    corrected codewords (uint8, same shape), the bytes changed per block and a bool mask of
    the blocks that decoded; rows where the mask is False hold no usable data.
    """
    blocks, n = codewords.shape
    if erased is None:
        gamma = np.ones((blocks, 1), dtype=np.uint8)
        count = np.zeros(blocks, dtype=np.intp)
        lam, length = _berlekamp_massey(synd)
    else:
        gamma, count = _erasure_locator(erased)
        # Modified (Forney) syndromes T = S * Gamma mod x^nsym. T_r for r >= s is
        # sum over the errors of Y Gamma(X^-1) X^s * X^(r-s), the erasures dropping out:
        # T_s, ..., T_(nsym-1) are the syndromes of the errors alone, with other magnitudes.
        modified = synd.copy()
        for j in range(1, gamma.shape[1]):
            modified[:, j:] ^= _MUL[gamma[:, j : j + 1], synd[:, : nsym - j]]
        index = np.arange(nsym)[None, :] + count[:, None]
        shifted = np.take_along_axis(modified, np.minimum(index, nsym - 1), axis=1)
        shifted[index >= nsym] = 0
        # Berlekamp-Massey from iteration s on, i.e. on the nsym - s shifted syndromes.
        lam, length = _berlekamp_massey(shifted, nsym - count)
    ok = 2 * length + count <= nsym

    # Chien search: byte p is wrong when Lambda(alpha^-(n-1-p)) == 0. Only the n stored
    # positions are tried, so a root in the part a shortened code leaves out is a failure,
    # and so is one at an erased byte (a true error locator has none there).
    degree = n - 1 - np.arange(n)
    most = int(length[ok].max(initial=0))
    powers = _INV_POWERS[degree, : most + 1].T  # (most + 1, n)
    values = np.zeros((blocks, n), dtype=np.uint8)
    for i in range(most + 1):
        values ^= _MUL[lam[:, i : i + 1], powers[i]]
    roots = values == 0
    if erased is not None:
        roots &= ~erased
    # As many distinct roots as the locator's length, or the errors are beyond its reach.
    ok &= roots.sum(axis=1) == length

    fixed = codewords.copy()
    counts = np.zeros(blocks, dtype=np.intp)
    errata = roots if erased is None else roots | erased
    errata &= ok[:, None]
    err_block, err_pos = np.nonzero(errata)
    if err_block.size:
        # Errata locator Psi = Lambda * Gamma, of degree L + s <= nsym where ok (BM's Lambda
        # has degree <= L), so coefficients above x^nsym need not be kept.
        s_max = gamma.shape[1] - 1
        top = min(most + s_max, nsym) + 1
        psi = np.zeros((blocks, top), dtype=np.uint8)
        for i in range(most + 1):
            end = min(i + s_max + 1, top)
            psi[:, i:end] ^= _MUL[lam[:, i : i + 1], gamma[:, : end - i]]
        # Forney with fcr = 0: e = X * Omega(X^-1) / Psi'(X^-1), with errata locator
        # X = alpha^(n-1-p) and Omega = S * Psi mod x^nsym, of degree < L + s.
        width = min(nsym, int((length + count)[ok].max()))
        omega = np.zeros((blocks, width), dtype=np.uint8)
        for j in range(width):
            omega[:, j:] ^= _MUL[psi[:, j : j + 1], synd[:, : width - j]]
        err_degree = degree[err_pos]
        span = max(width, psi.shape[1])
        inv_powers = _INV_POWERS[err_degree, :span]  # X^-i
        omega_at = np.bitwise_xor.reduce(_MUL[omega[err_block], inv_powers[:, :width]], axis=1)
        # In characteristic 2 the formal derivative keeps only the odd powers:
        # Psi'(x) = sum over odd i of Psi_i x^(i-1).
        odd = np.arange(1, psi.shape[1], 2)
        slope_at = np.bitwise_xor.reduce(
            _MUL[psi[err_block][:, odd], inv_powers[:, odd - 1]], axis=1
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
