"""How detectable stegcli's stego images are, beside plain LSB embedding of the same payload.

For every photo (a centre crop, ``--crop`` pixels square) and every model: ask ``capacity``
what the crop holds, hide that many random bytes with ``encode`` (in-process, the same code
as the command), and embed the *same bytes* by classical LSB replacement into the same
cover: each payload bit replaces the least significant bit of one R, G or B value, at
pseudo-random positions (a seeded permutation of all H·W·3 values; no header, no ECC, so
it changes fewer values than an LSB tool with a container would). Each model thus has its
own LSB twin carrying exactly its byte count. An extra set, LSB at full capacity (every
LSB replaced by a random bit, 3 bits per pixel), checks that the detectors work at all.

Then every cover, stego and LSB image goes through:

* the chi-square attack of Westfeld and Pfitzmann (1999): the p-value that the pairs of
  values (2k, 2k+1) of each channel are equally frequent, as LSB replacement makes them;
* RS analysis of Fridrich, Goljan and Du (2001): the estimated message length, as a
  fraction of the LSBs, from regular and singular pixel groups;
* a small CNN steganalyser (fixed SRM-like high-pass filters, then four learned conv
  layers), one per model and one for the first model's LSB twin (``--cnn-lsb all``: every
  twin), trained on random crops of the even-numbered photos (cover
  and stego of a photo, same crop) and tested on the tiles of the odd-numbered ones.

The classical detectors' thresholds are the 95th percentile of their scores on the covers
(5 % false positives on these very covers); a set's detection rate is the share of its
images scoring above it. CNN accuracy is over cover and stego tiles of the test photos:
50 % is chance, i.e. undetected.

    python benchmarks/stealth.py --photos ../shared/data/val --json runs/stealth.json

``--smoke`` runs four 128×128 crops of the sample photos with the default model and one CNN
epoch, for the test suite.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from stegcli.data import find_images, keyed_generator
from stegcli.errors import StegcliError
from stegcli.hiding import cover_capacity, hide
from stegcli.imaging import load_image
from stegcli.models import resolve_model, shipped_models

ROOT = Path(__file__).resolve().parent.parent
FALSE_POSITIVES = 0.05
PAYLOAD_RETRIES = (1.0, 0.9, 0.75)  # full capacity first; less only if encode refuses


# ---------------------------------------------------------------------------------------
# Embedding


def centre_crop(pixels: np.ndarray, size: int) -> np.ndarray:
    """The centre ``size``×``size`` square (smaller where the photo is smaller)."""
    height, width = pixels.shape[:2]
    h, w = min(size, height), min(size, width)
    top, left = (height - h) // 2, (width - w) // 2
    return np.ascontiguousarray(pixels[top : top + h, left : left + w])


def lsb_embed(pixels: np.ndarray, payload: bytes, rng: np.random.Generator) -> np.ndarray:
    """LSB replacement: each payload bit overwrites the LSB of one R, G or B value, at
    positions drawn without replacement from a seeded permutation of all values. A payload
    larger than the LSBs (over 3 bits per pixel) goes on into the second-lowest bits, in the
    same order, as two-bit LSB tools do."""
    bits = np.unpackbits(np.frombuffer(payload, dtype=np.uint8))
    flat = pixels.reshape(-1).copy()
    if bits.size > 2 * flat.size:
        raise ValueError(f"{len(payload)} bytes do not fit in {2 * flat.size} low bits")
    order = rng.permutation(flat.size)
    for plane in range(2):
        part = bits[plane * flat.size : (plane + 1) * flat.size]
        where = order[: part.size]
        flat[where] = (flat[where] & ~np.uint8(1 << plane)) | (part << plane)
    return flat.reshape(pixels.shape)


def lsb_full(pixels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Every LSB replaced by a random bit (3 bits per pixel)."""
    bits = rng.integers(0, 2, size=pixels.shape, dtype=np.uint8)
    return (pixels & 0xFE) | bits


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return math.inf if mse == 0 else 10 * math.log10(255.0**2 / mse)


# ---------------------------------------------------------------------------------------
# Classical detectors


def chi_square_attack(pixels: np.ndarray, min_expected: float = 5.0) -> dict:
    """Chi-square attack of Westfeld & Pfitzmann, "Attacks on Steganographic Systems"
    (Information Hiding 1999, LNCS 1768, pp. 61-76).

    LSB replacement with random bits drives the counts of each pair of values (2k, 2k+1)
    towards their mean. With n_2k, n_2k+1 the counts in one channel, the expected count
    is n*_k = (n_2k + n_2k+1) / 2 and χ² = Σ (n_2k − n*_k)² / n*_k over the pairs of all
    three channels with n*_k ≥ ``min_expected`` (fewer counts make the χ² approximation
    unreliable), with K − 1 degrees of freedom for K pairs. The score is
    p = 1 − F_χ²(χ²; K − 1), the probability of embedding: near 1 for equalised pairs,
    near 0 for a natural image. As published, only the even value of each pair is the
    observed cell, so under full embedding χ² is about half a χ²(K − 1) variable and p
    sits near 1, as in Westfeld's plots. Applied here to the whole image: it is strong on
    sequential or near-full embedding and weak on sparse random embedding (Westfeld plots
    it over growing prefixes to find sequential messages).

    log10_p is computed exactly while p is representable, and by the Wilson-Hilferty
    normal approximation once p underflows, so that covers are still ranked.
    """
    counts = np.stack(
        [np.bincount(pixels[..., c].ravel(), minlength=256) for c in range(pixels.shape[-1])]
    ).astype(np.float64)
    even, odd = counts[:, 0::2], counts[:, 1::2]
    expected = (even + odd) / 2
    keep = expected >= min_expected
    pairs = int(keep.sum())
    if pairs < 2:
        return {"chi2": 0.0, "dof": 0, "p": 1.0, "log10_p": 0.0}
    chi2 = float(((even[keep] - expected[keep]) ** 2 / expected[keep]).sum())
    dof = pairs - 1
    p = float(
        torch.special.gammaincc(
            torch.tensor(dof / 2, dtype=torch.float64), torch.tensor(chi2 / 2, dtype=torch.float64)
        )
    )
    if p > 1e-300:
        log10_p = math.log10(p)
    else:
        spread = 2 / (9 * dof)
        z = ((chi2 / dof) ** (1 / 3) - (1 - spread)) / math.sqrt(spread)
        log10_p = float(torch.special.log_ndtr(torch.tensor(-z, dtype=torch.float64))) / math.log(
            10
        )
    return {"chi2": chi2, "dof": dof, "p": p, "log10_p": log10_p}


_RS_MASK = np.array([0, 1, 1, 0])


def _rs_groups(pixels: np.ndarray) -> np.ndarray:
    """Disjoint groups of 4 neighbours, (N, 4) int32: horizontal and vertical runs of
    every channel."""
    x = pixels.astype(np.int32)
    height, width, _ = x.shape
    rows = x[:, : width // 4 * 4].transpose(2, 0, 1).reshape(-1, 4)
    columns = x[: height // 4 * 4].transpose(2, 1, 0).reshape(-1, 4)
    return np.concatenate([rows, columns])


def _flip(x: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Fridrich's flipping: F1 (0↔1, 2↔3, …) where the mask is 1, the shifted F−1
    (−1↔0, 1↔2, …; F−1(x) = F1(x + 1) − 1) where it is −1, nothing where it is 0."""
    positive = x ^ 1
    negative = ((x + 1) ^ 1) - 1
    return np.where(mask == 1, positive, np.where(mask == -1, negative, x))


def _regular_singular(groups: np.ndarray, mask: np.ndarray) -> tuple[float, float]:
    """Fractions of regular and singular groups under a mask, with the discrimination
    function f(x1..x4) = Σ |x_i+1 − x_i| (smoothness)."""
    before = np.abs(np.diff(groups, axis=1)).sum(axis=1)
    after = np.abs(np.diff(_flip(groups, mask), axis=1)).sum(axis=1)
    return float((after > before).mean()), float((after < before).mean())


def rs_analysis(pixels: np.ndarray) -> dict:
    """RS steganalysis of Fridrich, Goljan & Du, "Reliable Detection of LSB Steganography
    in Color and Grayscale Images" (ACM Multimedia & Security Workshop 2001, pp. 27-30).

    Groups of 4 adjacent values (horizontal and vertical runs in each channel, pooled) are
    regular or singular as flipping them by the mask M = [0 1 1 0] (or −M) makes them less
    or more smooth. Natural images have R_M ≈ R_−M > S_M ≈ S_−M; LSB replacement of a
    fraction p of the values pulls R_M and S_M together while R_−M and S_−M drift apart.
    The same counts on the image with every LSB flipped give the curve's other end, and
    with d0 = R_M − S_M, d1 = the same after flipping, d−0 and d−1 likewise for −M, the
    root x of smaller magnitude of

        2 (d1 + d0) x² + (d−0 − d−1 − d1 − 3 d0) x + d0 − d−0 = 0

    gives the message length p = x / (x − 1/2) as a fraction of the LSBs (≈ 0 for a cover,
    ≈ 1 at full LSB capacity; p / 2 of the LSBs actually change).
    """
    groups = _rs_groups(pixels)
    flipped = groups ^ 1
    r_m, s_m = _regular_singular(groups, _RS_MASK)
    r_n, s_n = _regular_singular(groups, -_RS_MASK)
    r_m1, s_m1 = _regular_singular(flipped, _RS_MASK)
    r_n1, s_n1 = _regular_singular(flipped, -_RS_MASK)
    d0, d1, dn0, dn1 = r_m - s_m, r_m1 - s_m1, r_n - s_n, r_n1 - s_n1
    a, b, c = 2 * (d1 + d0), dn0 - dn1 - d1 - 3 * d0, d0 - dn0
    if abs(a) < 1e-12:
        x = -c / b if abs(b) > 1e-12 else 0.0
    else:
        disc = b * b - 4 * a * c
        if disc < 0:  # no real root: take the vertex, the nearest the curves come
            x = -b / (2 * a)
        else:
            roots = ((-b + math.sqrt(disc)) / (2 * a), (-b - math.sqrt(disc)) / (2 * a))
            x = min(roots, key=abs)
    estimate = x / (x - 0.5) if abs(x - 0.5) > 1e-12 else math.inf
    return {
        "estimate": float(estimate),
        "R_M": r_m, "S_M": s_m, "R_-M": r_n, "S_-M": s_n,
    }  # fmt: skip


def threshold_at(cover_scores: list[float], false_positives: float = FALSE_POSITIVES) -> float:
    """The score that (1 − false_positives) of the covers do not exceed."""
    return float(np.quantile(np.asarray(cover_scores, dtype=np.float64), 1 - false_positives))


def auc(cover_scores: list[float], stego_scores: list[float]) -> float:
    """P(stego score > cover score), ties counted half (Mann-Whitney)."""
    covers = np.asarray(cover_scores, dtype=np.float64)[:, None]
    stegos = np.asarray(stego_scores, dtype=np.float64)[None, :]
    return float((stegos > covers).mean() + 0.5 * (stegos == covers).mean())


# ---------------------------------------------------------------------------------------
# CNN steganalyser


def _srm_kernels() -> torch.Tensor:
    """Fixed high-pass residual filters of the spatial rich model (Fridrich & Kodovský,
    IEEE TIFS 2012), each 5×5: KV, 3×3 'square', and first- and second-order differences
    horizontally and vertically."""
    kv = np.array(
        [[-1, 2, -2, 2, -1], [2, -6, 8, -6, 2], [-2, 8, -12, 8, -2], [2, -6, 8, -6, 2],
         [-1, 2, -2, 2, -1]], dtype=np.float32,
    ) / 12  # fmt: skip
    kernels = [kv]
    square = np.zeros((5, 5), np.float32)
    square[1:4, 1:4] = np.array([[-1, 2, -1], [2, -4, 2], [-1, 2, -1]]) / 4
    kernels.append(square)
    for row in ([0, 0, -1, 1, 0], [0, 0.5, -1, 0.5, 0]):
        horizontal = np.zeros((5, 5), np.float32)
        horizontal[2] = row
        kernels += [horizontal, horizontal.T.copy()]
    return torch.from_numpy(np.stack(kernels))  # (6, 5, 5)


class Steganalyser(nn.Module):
    """SRM-like fixed high-pass layer on each colour channel, a truncation at ±3 (Ye, Ni &
    Yi, IEEE TIFS 2017), then four 3×3 conv layers with batch norm, two average pools,
    global average pooling and one logit (stego vs cover). Input: pixels 0..255."""

    def __init__(self, generator: torch.Generator, width: int = 16):
        super().__init__()
        kernels = _srm_kernels()
        self.register_buffer("srm", kernels.repeat(3, 1, 1).unsqueeze(1))  # (18, 1, 5, 5)
        maps = kernels.shape[0] * 3

        def block(inputs: int, outputs: int) -> list[nn.Module]:
            return [
                nn.Conv2d(inputs, outputs, 3, padding=1, bias=False),
                nn.BatchNorm2d(outputs),
                nn.ReLU(),
            ]

        self.body = nn.Sequential(
            *block(maps, width),
            *block(width, width),
            nn.AvgPool2d(2),
            *block(width, 2 * width),
            nn.AvgPool2d(2),
            *block(2 * width, 4 * width),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(4 * width, 1),
        )
        for module in self.body:
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_uniform_(module.weight, nonlinearity="relu", generator=generator)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        residuals = nn.functional.conv2d(pixels, self.srm, padding=2, groups=3)
        return self.body(residuals.clamp(-3, 3)).squeeze(1)


def _to_tensor(pixels: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(pixels)).permute(2, 0, 1).float()


def _dihedral(batch: torch.Tensor, code: int) -> torch.Tensor:
    """One of the 8 flips and quarter turns of (N, C, H, W) crops."""
    if code & 4:
        batch = batch.flip(-1)
    return torch.rot90(batch, code & 3, dims=(-2, -1))


def _tiles(pixels: np.ndarray, size: int) -> list[np.ndarray]:
    """Disjoint ``size`` squares covering the image from the top left (the rest dropped)."""
    height, width = pixels.shape[:2]
    return [
        pixels[top : top + size, left : left + size]
        for top in range(0, height - size + 1, size)
        for left in range(0, width - size + 1, size)
    ]


def train_cnn(
    train_pairs: list[tuple[np.ndarray, np.ndarray]],
    test_pairs: list[tuple[np.ndarray, np.ndarray]],
    epochs: int,
    crop: int,
    crops_per_photo: int,
    batch_pairs: int,
    seed: int,
) -> dict:
    """Train a fresh steganalyser on (cover, stego) pairs and test it on others.

    An epoch is ``crops_per_photo`` random crops of every training photo, cover and stego
    cut at the same place and given the same random flip or turn, in shuffled batches of
    ``batch_pairs`` pairs. Every random choice comes from a seeded torch.Generator.
    """
    model = Steganalyser(keyed_generator(seed, 0))
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.BCEWithLogitsLoss()
    covers = [_to_tensor(c) for c, _ in train_pairs]
    stegos = [_to_tensor(s) for _, s in train_pairs]
    epoch_seconds, history = [], []
    for epoch in range(epochs):
        started = time.perf_counter()
        generator = keyed_generator(seed, 1, epoch)
        jobs = [i for i in range(len(covers)) for _ in range(crops_per_photo)]
        order = torch.randperm(len(jobs), generator=generator).tolist()
        model.train()
        losses, correct, seen = [], 0, 0
        for start in range(0, len(order), batch_pairs):
            pieces_c, pieces_s = [], []
            for job in order[start : start + batch_pairs]:
                index = jobs[job]
                _, height, width = covers[index].shape
                size = min(crop, height, width)
                top = int(torch.randint(0, height - size + 1, (1,), generator=generator))
                left = int(torch.randint(0, width - size + 1, (1,), generator=generator))
                code = int(torch.randint(0, 8, (1,), generator=generator))
                window = (slice(None), slice(top, top + size), slice(left, left + size))
                pieces_c.append(_dihedral(covers[index][window], code))
                pieces_s.append(_dihedral(stegos[index][window], code))
            batch = torch.stack(pieces_c + pieces_s)
            labels = torch.cat([torch.zeros(len(pieces_c)), torch.ones(len(pieces_s))])
            logits = model(batch)
            loss = loss_fn(logits, labels)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            losses.append(loss.item())
            correct += int(((logits > 0).float() == labels).sum())
            seen += len(labels)
        epoch_seconds.append(time.perf_counter() - started)
        history.append({"loss": statistics.fmean(losses), "train_accuracy": correct / seen})

    model.eval()
    tile_correct = tile_count = image_correct = 0
    with torch.no_grad():
        for cover, stego in test_pairs:
            for label, pixels in ((0, cover), (1, stego)):
                tiles = _tiles(pixels, min(crop, *pixels.shape[:2]))
                logits = model(torch.stack([_to_tensor(t) for t in tiles]))
                tile_correct += int(((logits > 0).long() == label).sum())
                tile_count += len(tiles)
                image_correct += int((float(logits.mean()) > 0) == bool(label))
    return {
        "train_photos": len(train_pairs),
        "test_photos": len(test_pairs),
        "test_tiles": tile_count,
        "test_accuracy": tile_correct / tile_count if tile_count else None,
        "test_image_accuracy": image_correct / (2 * len(test_pairs)) if test_pairs else None,
        "epochs": history,
        "median_epoch_seconds": statistics.median(epoch_seconds) if epoch_seconds else None,
    }


# ---------------------------------------------------------------------------------------
# The benchmark


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def smoke_photos(folder: Path) -> list[Path]:
    """Four small photos: two sample photos and their mirror images (photo, mirror, …, so
    that the train and test halves hold different photos); --crop cuts their centres."""
    paths = []
    for name in ("skimage_chelsea.png", "skimage_coffee.png"):
        with Image.open(ROOT / "samples" / name) as photo:
            piece = photo.convert("RGB")
        for mirrored in (False, True):
            path = folder / f"{Path(name).stem}{'-mirror' if mirrored else ''}.png"
            (piece.transpose(Image.FLIP_LEFT_RIGHT) if mirrored else piece).save(path)
            paths.append(path)
    return paths


def hide_full(cover_png: Path, model, folder: Path, seed: tuple[int, ...]) -> dict:
    """Hide random bytes at the crop's full capacity; a little less only if encode refuses."""
    room = cover_capacity(cover_png, model).capacity_bytes
    if room == 0:
        return {"capacity_bytes": 0, "payload": None, "pixels": None, "errors": ["no room"]}
    stego_png = folder / f"{cover_png.stem}.stego.png"
    errors = []
    for share in PAYLOAD_RETRIES:
        payload = np.random.default_rng(list(seed)).bytes(int(room * share))
        try:
            started = time.perf_counter()
            hide(cover_png, payload, "payload.bin", stego_png, model, force=True)
            seconds = time.perf_counter() - started
        except StegcliError as exc:
            errors.append(str(exc))
            continue
        pixels = load_image(stego_png).pixels
        stego_png.unlink()
        return {
            "capacity_bytes": room, "payload": payload, "pixels": pixels,
            "encode_seconds": seconds, "errors": errors,
        }  # fmt: skip
    return {"capacity_bytes": room, "payload": None, "pixels": None, "errors": errors}


def score(pixels: np.ndarray, cover: np.ndarray, bits: int) -> dict:
    chi = chi_square_attack(pixels)
    rs = rs_analysis(pixels)
    return {
        "payload_bits": bits,
        "bpp": bits / (pixels.shape[0] * pixels.shape[1]),
        "psnr": psnr(pixels, cover),
        "changed_values": float((pixels != cover).mean()),
        "chi2_p": chi["p"],
        "chi2_log10_p": chi["log10_p"],
        "chi2": chi["chi2"],
        "chi2_dof": chi["dof"],
        "rs_estimate": rs["estimate"],
        "rs": {k: v for k, v in rs.items() if k != "estimate"},
    }


def summarise(rows: list[dict], cover_rows: list[dict]) -> dict:
    """Medians, and detection against thresholds set on all covers."""
    detectors = {"chi2": "chi2_log10_p", "rs": "rs_estimate"}
    summary = {"images": len(rows)}
    if not rows:
        return summary
    finite = [r["psnr"] for r in rows if math.isfinite(r["psnr"])]
    summary.update(
        median_bpp=statistics.median(r["bpp"] for r in rows),
        median_psnr=statistics.median(finite) if finite else None,
        median_changed_values=statistics.median(r["changed_values"] for r in rows),
        median_chi2_p=statistics.median(r["chi2_p"] for r in rows),
    )
    for name, key in detectors.items():
        covers = [r[key] for r in cover_rows]
        values = [r[key] for r in rows]
        cut = threshold_at(covers)
        summary[f"median_{key}"] = statistics.median(values)
        summary[f"{name}_threshold"] = cut
        summary[f"{name}_detected"] = sum(v > cut for v in values)
        summary[f"{name}_detection_rate"] = summary[f"{name}_detected"] / len(values)
        summary[f"{name}_auc"] = auc(covers, values)
    return summary


def markdown(sets: dict[str, dict], labels: dict[str, str], cnn: dict[str, dict]) -> str:
    lines = [
        (
            "| set | payload bpp | PSNR dB | χ² p, median | χ² detected at 5 % FPR "
            "| RS length, median | RS detected at 5 % FPR | RS AUC | CNN test accuracy |"
        ),
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for key, s in sets.items():
        if not s.get("images"):
            lines.append(f"| {labels[key]} | – | – | – | – | – | – | – | – |")
            continue
        psnr_text = "∞" if s["median_psnr"] is None else f"{s['median_psnr']:.1f}"
        if key == "cover":
            psnr_text = "–"
        network = cnn.get(key, {}).get("test_accuracy")
        auc_text = "–" if key == "cover" else f"{s['rs_auc']:.2f}"
        lines.append(
            f"| {labels[key]} | {s['median_bpp']:.3f} | {psnr_text} | {s['median_chi2_p']:.2g} "
            f"| {s['chi2_detected']} of {s['images']} ({100 * s['chi2_detection_rate']:.0f} %) "
            f"| {s['median_rs_estimate']:+.3f} "
            f"| {s['rs_detected']} of {s['images']} ({100 * s['rs_detection_rate']:.0f} %) "
            f"| {auc_text} | {'–' if network is None else f'{100 * network:.1f} %'} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=Path, default=ROOT.parent / "shared" / "data" / "val")
    parser.add_argument("--models", nargs="*", default=None, help="default: every shipped model")
    parser.add_argument("--limit", type=int, default=None, help="use only the first N photos")
    parser.add_argument("--crop", type=int, default=256, help="centre crop side, pixels")
    parser.add_argument("--cnn-epochs", type=int, default=20)
    parser.add_argument("--cnn-crop", type=int, default=128, help="CNN crop and test tile side")
    parser.add_argument("--cnn-crops", type=int, default=8, help="crops per photo per epoch")
    parser.add_argument("--cnn-batch", type=int, default=16, help="(cover, stego) pairs a batch")
    parser.add_argument(
        "--cnn-lsb", choices=("first", "all"), default="first",
        help="train a CNN on the LSB twin of the first model only (sanity check), or of all",
    )  # fmt: skip
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="torch threads")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    folder = Path(tempfile.mkdtemp(prefix="stegcli-stealth-"))
    if args.smoke:
        photos, names = smoke_photos(folder), ["default"]
        args.crop, args.cnn_epochs, args.cnn_crop, args.cnn_crops = 128, 1, 64, 2
    else:
        photos = find_images(args.photos)[: args.limit]
        names = args.models or list(shipped_models())
    started_all = time.perf_counter()

    # Covers: centre crops, saved as PNG for encode.
    covers, cover_pngs = [], []
    for index, path in enumerate(photos):
        pixels = centre_crop(load_image(path).pixels, args.crop)
        cover_png = folder / f"{index:03d}.png"
        Image.fromarray(pixels).save(cover_png)
        covers.append(pixels)
        cover_pngs.append(cover_png)

    labels = {"cover": "cover"}
    images: dict[str, dict[int, np.ndarray]] = {"cover": dict(enumerate(covers))}
    per_photo = [
        {"photo": str(p.name), "width": c.shape[1], "height": c.shape[0], "sets": {}}
        for p, c in zip(photos, covers)
    ]
    hide_seconds = []
    for m, name in enumerate(names):
        model = resolve_model(name)
        stego_key, lsb_key = f"stegcli:{name}", f"lsb:{name}"
        labels[stego_key], labels[lsb_key] = f"stegcli {name}", f"LSB, {name}'s payload"
        images[stego_key], images[lsb_key] = {}, {}
        for i, cover_png in enumerate(cover_pngs):
            made = hide_full(cover_png, model, folder, (args.seed, i, m))
            row = per_photo[i]["sets"]
            row[stego_key] = {"capacity_bytes": made["capacity_bytes"], "errors": made["errors"]}
            if made["payload"] is None:
                continue
            hide_seconds.append(made["encode_seconds"])
            lsb = lsb_embed(
                covers[i], made["payload"], np.random.default_rng([args.seed, i, m, 1])
            )
            images[stego_key][i], images[lsb_key][i] = made["pixels"], lsb
            row[stego_key]["payload_bytes"] = len(made["payload"])
            row[lsb_key] = {"payload_bytes": len(made["payload"])}
        print(f"{name}: {len(images[stego_key])} of {len(covers)} hidden", file=sys.stderr)
    labels["lsb:full"] = "LSB, full capacity (3 bpp)"
    images["lsb:full"] = {
        i: lsb_full(c, np.random.default_rng([args.seed, i, 99])) for i, c in enumerate(covers)
    }
    encode_done = time.perf_counter()

    rows: dict[str, list[dict]] = {}
    for key, chosen in images.items():
        rows[key] = []
        for i, pixels in chosen.items():
            payload = per_photo[i]["sets"].get(key, {}).get("payload_bytes")
            bits = 0 if key == "cover" else (pixels.size if key == "lsb:full" else 8 * payload)
            figures = score(pixels, covers[i], bits)
            per_photo[i]["sets"].setdefault(key, {}).update(figures)
            rows[key].append(figures)
    sets = {key: summarise(rows[key], rows["cover"]) for key in images}
    detect_done = time.perf_counter()

    # CNN: even-numbered photos train, odd-numbered ones test (the datasets interleave).
    cnn_sets = [f"stegcli:{n}" for n in names]
    cnn_sets += [f"lsb:{n}" for n in (names if args.cnn_lsb == "all" else names[:1])]
    cnn = {}
    for k, key in enumerate(cnn_sets):
        pairs = images[key]
        train = [(covers[i], pairs[i]) for i in sorted(pairs) if i % 2 == 0]
        test = [(covers[i], pairs[i]) for i in sorted(pairs) if i % 2 == 1]
        cnn[key] = train_cnn(
            train, test, args.cnn_epochs, args.cnn_crop, args.cnn_crops, args.cnn_batch,
            seed=args.seed * 1000 + k,
        )  # fmt: skip
        print(f"CNN {key}: {json.dumps({k: v for k, v in cnn[key].items() if k != 'epochs'})}",
              file=sys.stderr)  # fmt: skip
        sets[key]["cnn_test_accuracy"] = cnn[key]["test_accuracy"]
    finished = time.perf_counter()

    report = {
        "command": " ".join(["python", "benchmarks/stealth.py", *sys.argv[1:]]),
        "machine": f"{platform.machine()}, {cpu_name()}, "
        f"{os.cpu_count()} cores, {torch.get_num_threads()} torch threads, "
        f"torch {torch.__version__}, numpy {np.__version__}, Python {platform.python_version()}",
        "settings": {
            "photos": len(photos),
            "models": names,
            "crop": args.crop,
            "lsb": "replacement at pseudo-random positions (seeded permutation of R, G, B values)",
            "false_positive_target": FALSE_POSITIVES,
            "cnn": {
                "epochs": args.cnn_epochs,
                "crop": args.cnn_crop,
                "crops_per_photo": args.cnn_crops,
                "batch_pairs": args.cnn_batch,
                "split": "even photo index trains, odd tests",
            },
            "seed": args.seed,
            "smoke": args.smoke,
        },
        "labels": labels,
        "sets": sets,
        "cnn": cnn,
        "photos": per_photo,
        "seconds": {
            "encode_and_embed": encode_done - started_all,
            "median_encode": statistics.median(hide_seconds) if hide_seconds else None,
            "detectors": detect_done - encode_done,
            "cnn": finished - detect_done,
            "total": finished - started_all,
        },
    }
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2))
    shutil.rmtree(folder, ignore_errors=True)
    print(markdown(sets, labels, cnn))


if __name__ == "__main__":
    main()
