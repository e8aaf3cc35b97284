"""How fast the LDPC code of format 2 encodes and decodes a 1 MiB payload, on its own.

Readings are simulated: each stored bit's sign flipped by Gaussian noise so that a given
share of bits reads wrong, which is how the decoder's logits look to the code. Prints a
Markdown table of medians over ``--repeats`` runs, each exact or failing the script.

    python benchmarks/ldpc_speed.py --repeats 3
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from statistics import NormalDist

import numpy as np

from stegcli import ldpc

# (rate, raw bit error rate): the default model on a typical photo, the high-capacity model
# on a typical and on a hard one.
CASES = (((9, 10), 0.005), ((2, 3), 0.03), ((1, 2), 0.06))


def one_run(rate: tuple[int, int], bit_error_rate: float, payload_bytes: int, seed: int):
    rng = np.random.default_rng(seed)
    code = ldpc.RATES.index(rate)
    info = rng.integers(0, 2, 8 * payload_bytes, dtype=np.uint8)
    started = time.perf_counter()
    stored = ldpc.encode_stream(info, code)
    encode_seconds = time.perf_counter() - started
    sigma = 1 / NormalDist().inv_cdf(1 - bit_error_rate)
    noise = rng.standard_normal(len(stored)).astype(np.float32)
    readings = stored.astype(np.float32) * 2 - 1 + sigma * noise
    started = time.perf_counter()
    bits, ok, used = ldpc.decode_stream(readings, len(info), code)
    decode_seconds = time.perf_counter() - started
    if not (ok.all() and np.array_equal(bits, info)):
        raise SystemExit(f"rate {rate} at {bit_error_rate:.1%}: decoding failed")
    wrong = float(np.mean((readings > 0) != stored))
    return encode_seconds, decode_seconds, int(used.max()), wrong, len(stored)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--payload-bytes", type=int, default=1 << 20)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"{platform.machine()}, {os.cpu_count()} cores, numpy {np.__version__}\n")
    print("| rate | raw bits wrong | stored bits | encode s | decode s | most iterations |")
    print("|---|---|---|---|---|---|")
    for rate, bit_error_rate in CASES:
        runs = [
            one_run(rate, bit_error_rate, args.payload_bytes, seed) for seed in range(args.repeats)
        ]
        encode = statistics.median(r[0] for r in runs)
        decode = statistics.median(r[1] for r in runs)
        print(
            f"| {rate[0]}/{rate[1]} | {statistics.median(r[3] for r in runs):.2%} "
            f"| {runs[0][4]:,} | {encode:.2f} | {decode:.2f} | {max(r[2] for r in runs)} |"
        )


if __name__ == "__main__":
    main()
