"""Where each payload bit goes in the image, and the whitening that makes bits look random.

An image of H×W pixels hidden at depth D has N = D·H·W bit slots, numbered in the order of
the decoder's output tensor (B=1, D, H, W) flattened: slot = (d·H + y)·W + x.

Format version 1 derives everything from a layout key with SHAKE-256, an extendable-output
hash whose output is fixed by its standard (FIPS 202), never from torch's or numpy's random
generators, so that an image made today decodes after any upgrade of torch, numpy or Python:

- slot order: slot order[i] carries stream bit i. It sorts 32-bit big-endian words of a
  SHAKE-256 stream with a stable sort (ties keep slot order), which spreads the stream over
  all D·H·W slots, so no region carries the payload alone and a local defect touches many
  codewords a little rather than one codeword a lot;
- whitening: stream bit i is XOR-ed with bit i of a second SHAKE-256 stream (most
  significant bit of each byte first), so that the encoder always sees random-looking bits,
  as in training, whatever the file holds.

The layout key mixes the format version, D, H, W and the passphrase (empty when there is
none), so that without the passphrase the payload cannot even be found.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass

import numpy as np

LAYOUT_VERSION = 1


def layout_key(depth: int, height: int, width: int, passphrase: str | None) -> bytes:
    """The 32-byte key of the layout of a D×H×W slot grid under a passphrase (or none)."""
    secret = (passphrase or "").encode("utf-8")
    # A keyed BLAKE2b: the dimensions and version are the message, the passphrase the key.
    return hashlib.blake2b(
        struct.pack(">4sBIII", b"SGLY", LAYOUT_VERSION, depth, height, width),
        key=hashlib.sha256(secret).digest(),
        digest_size=32,
    ).digest()


def _stream(key: bytes, label: bytes, length: int) -> bytes:
    return hashlib.shake_256(key + label).digest(length)


@dataclass(frozen=True)
class Layout:
    """The slot order and whitening of one image size, depth and passphrase.

    order: integer array of length N (int32 where N allows), a permutation of range(N).
    whitening: uint8 array of N bits in {0, 1}.
    """

    depth: int
    height: int
    width: int
    order: np.ndarray
    whitening: np.ndarray

    @classmethod
    def derive(cls, depth: int, height: int, width: int, passphrase: str | None) -> Layout:
        slots = depth * height * width
        key = layout_key(depth, height, width, passphrase)
        words = np.frombuffer(_stream(key, b"order", 4 * slots), dtype=">u4")
        order = np.argsort(words, kind="stable")
        if slots < 2**31:
            order = order.astype(np.int32)  # half the memory of a 12-megapixel layout
        whitening = np.unpackbits(np.frombuffer(_stream(key, b"white", -(-slots // 8)), np.uint8))
        return cls(depth, height, width, order, whitening[:slots])

    @property
    def slots(self) -> int:
        return self.depth * self.height * self.width

    def place(self, stream: np.ndarray) -> np.ndarray:
        """Stream bits (N,) in {0, 1} to a (D, H, W) uint8 bit grid, whitened and spread."""
        if stream.shape != (self.slots,):
            raise ValueError(f"the stream must hold {self.slots} bits, got {stream.shape}")
        grid = np.empty(self.slots, dtype=np.uint8)
        grid[self.order] = stream ^ self.whitening
        return grid.reshape(self.depth, self.height, self.width)

    def gather(self, grid: np.ndarray, start: int, stop: int) -> np.ndarray:
        """Stream positions start..stop−1 read from a (D, H, W) grid of decoder logits.

        The whitening is undone by flipping the sign where its bit is 1, so a positive value
        still reads as stream bit 1. Returns a float32 array (stop − start,).
        """
        values = grid.reshape(-1)[self.order[start:stop]].astype(np.float32)
        flip = self.whitening[start:stop].astype(bool)
        values[flip] = -values[flip]
        return values
