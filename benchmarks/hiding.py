"""Hide and reveal on real photos: exact recovery, net bits per pixel and quality.

For every model and every photo: ask ``capacity`` what the photo holds, hide that many random
bytes (or ``--fills`` shares of it) with ``encode`` (in-process, the same code as the
command), decode the written PNG and compare bytes. Reports the exact-recovery rate, the
net payload in bits per pixel (payload bytes × 8 ÷ pixels), PSNR and SSIM of the stego
images, and encode and decode seconds, as medians over the photos.

    python benchmarks/hiding.py --photos ../shared/data/val --fills 1 0.5 0.25 \
        --json runs/hiding.json

``--speed`` also times a 512×512 crop and a 12-megapixel photo (a val photo upscaled to
4000×3000), each in a fresh process so that its peak memory is its own, ``--repeats`` times;
``--speed-only`` skips the round trips, to time on an otherwise idle machine.
``--smoke`` runs one small photo with the default model, for the test suite.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from stegcli.allocator import keep_freed_memory
from stegcli.data import find_images
from stegcli.evaluation import round_trip
from stegcli.hiding import cover_capacity, hide, reveal
from stegcli.models import resolve_model, shipped_models

ROOT = Path(__file__).resolve().parent.parent


def one_photo(path: Path, model, folder: Path, seed: int, room: int, fill: float = 1.0) -> dict:
    """Round trip of ``fill`` × the photo's capacity ``room``; never raises for a failure."""
    with Image.open(path) as image:
        width, height = image.size
    size = int(room * fill)
    payload = np.random.default_rng(seed).bytes(size)
    row = {"photo": path.name, "width": width, "height": height, "capacity_bytes": room}
    row.update(fill=fill, payload_bytes=size)
    # The round trip of stegcli evaluate: hide, then reveal the written PNG, errors as results.
    trial = round_trip(path, payload, model, folder)
    for key in ("encode_seconds", "decode_seconds"):
        if getattr(trial, key) is not None:
            row[key] = getattr(trial, key)
    if trial.decode_seconds is not None:  # both hide and reveal ran
        row.update(
            exact=trial.exact,
            psnr=trial.psnr,
            ssim=trial.ssim,
            refine_steps=trial.refine_steps,
            net_bpp=size * 8 / (width * height),
        )
    else:  # a failure is a result here, and is counted as one
        row.update(exact=False, error=trial.error)
    return row


def summarise(rows: list[dict], model: str, fill: float) -> dict:
    done = [r for r in rows if "psnr" in r]

    def median(key: str) -> float | None:
        values = [r[key] for r in done]
        return statistics.median(values) if values else None

    return {
        "model": model,
        "fill": fill,
        "photos": len(rows),
        "exact": sum(r["exact"] for r in rows),
        "median_capacity_bytes": statistics.median(r["capacity_bytes"] for r in rows),
        "median_net_bpp": median("net_bpp"),
        "min_net_bpp": min((r["net_bpp"] for r in done), default=None),
        "median_psnr": median("psnr"),
        "min_psnr": min((r["psnr"] for r in done), default=None),
        "median_ssim": median("ssim"),
        "median_encode_seconds": median("encode_seconds"),
        "median_decode_seconds": median("decode_seconds"),
        "photos_refined": sum(r.get("refine_steps", 0) > 0 for r in done),
    }


def speed_run(photo: Path, model: str, payload_bytes: int) -> dict:
    """Encode then decode in this process; prints one JSON line (for --speed children)."""
    keep_freed_memory()
    chosen = resolve_model(model)
    folder = Path(tempfile.mkdtemp())
    payload = np.random.default_rng(0).bytes(payload_bytes)
    started = time.perf_counter()
    hide(photo, payload, "p.bin", folder / "s.png", chosen, force=True)
    encode_seconds = time.perf_counter() - started
    started = time.perf_counter()
    _, content, _ = reveal(folder / "s.png", chosen)
    decode_seconds = time.perf_counter() - started
    (folder / "s.png").unlink()
    return {
        "encode_seconds": encode_seconds,
        "decode_seconds": decode_seconds,
        "exact": content == payload,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def speed(photos: list[Path], model: str, repeats: int, folder: Path) -> list[dict]:
    source = max(photos, key=lambda p: Image.open(p).size[0] * Image.open(p).size[1])
    with Image.open(source) as image:
        image = image.convert("RGB")
        left, top = (image.width - 512) // 2, (image.height - 512) // 2
        image.crop((left, top, left + 512, top + 512)).save(folder / "512.png")
        image.resize((4000, 3000), Image.BICUBIC).save(folder / "12mp.png")
    results = []
    for name, payload in (("512×512", 1024), ("4000×3000 (12 MP)", 1 << 20)):
        path = folder / ("512.png" if name.startswith("512") else "12mp.png")
        runs = []
        for _ in range(repeats):
            completed = subprocess.run(
                [sys.executable, __file__, "--speed-child", str(path), "--model", model,
                 "--payload", str(payload)],
                capture_output=True, text=True, check=True,
            )  # fmt: skip
            runs.append(json.loads(completed.stdout.strip().splitlines()[-1]))
        results.append(
            {
                "image": name,
                "model": model,
                "payload_bytes": payload,
                "runs": runs,
                "median_encode_seconds": statistics.median(r["encode_seconds"] for r in runs),
                "median_decode_seconds": statistics.median(r["decode_seconds"] for r in runs),
                "max_peak_rss_mib": max(r["peak_rss_mib"] for r in runs),
                "all_exact": all(r["exact"] for r in runs),
            }
        )
    return results


def markdown(summaries: dict[str, dict], speeds: list[dict]) -> str:
    lines = [
        "| model | payload (share of capacity) | photos recovered exactly | net bpp, median (min) "
        "| PSNR dB, median (min) | SSIM | encode s | decode s | photos refined |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for s in summaries.values():
        head = f"| {s['model']} | {s['fill']:.0%} | {s['exact']} of {s['photos']}"
        if s["median_psnr"] is None:
            lines.append(f"{head} | – | – | – | – | – | – |")
            continue
        lines.append(
            f"{head} | {s['median_net_bpp']:.3f} "
            f"({s['min_net_bpp']:.3f}) | {s['median_psnr']:.2f} ({s['min_psnr']:.2f}) "
            f"| {s['median_ssim']:.4f} | {s['median_encode_seconds']:.2f} "
            f"| {s['median_decode_seconds']:.2f} | {s['photos_refined']} |"
        )
    if not summaries:  # --speed-only: the speed table alone
        lines = []
    if speeds:
        lines += [
            "" if lines else None,
            "| image | model | payload | encode s (median) | decode s (median) | peak memory |",
            "|---|---|---|---|---|---|",
        ]
        for s in speeds:
            lines.append(
                f"| {s['image']} | {s['model']} | {s['payload_bytes']:,} B "
                f"| {s['median_encode_seconds']:.1f} | {s['median_decode_seconds']:.1f} "
                f"| {s['max_peak_rss_mib']:.0f} MiB |"
            )
    return "\n".join(line for line in lines if line is not None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=Path, default=ROOT.parent / "shared" / "data" / "val")
    parser.add_argument("--models", nargs="*", default=None, help="default: every shipped model")
    parser.add_argument("--limit", type=int, default=None, help="use only the first N photos")
    parser.add_argument("--fills", type=float, nargs="+", default=[1.0],
                        help="shares of each photo's capacity to hide (default: 1)")
    parser.add_argument("--speed", action="store_true")
    parser.add_argument("--speed-only", action="store_true", help="--speed, no round trips")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--speed-child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--model", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--payload", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.speed_child:
        print(json.dumps(speed_run(args.speed_child, args.model, args.payload)))
        return
    keep_freed_memory()
    folder = Path(tempfile.mkdtemp(prefix="stegcli-bench-"))
    if args.smoke:
        with Image.open(ROOT / "samples" / "skimage_coffee.png") as image:
            image.convert("RGB").crop((300, 120, 461, 239)).save(folder / "smoke.png")
        photos, names = [folder / "smoke.png"], ["default"]
    else:
        photos = find_images(args.photos)[: args.limit]
        names = args.models or list(shipped_models())
    summaries, rows = {}, {}
    for name in [] if args.speed_only else names:
        model = resolve_model(name)
        rooms = [cover_capacity(p, model).capacity_bytes for p in photos]
        for fill in args.fills:
            key = f"{name} {fill:.0%}"
            rows[key] = [
                one_photo(p, model, folder, seed=i, room=room, fill=fill)
                for i, (p, room) in enumerate(zip(photos, rooms))
            ]
            summaries[key] = summarise(rows[key], name, fill)
            print(f"{key}: {json.dumps(summaries[key])}", file=sys.stderr, flush=True)
    timed = args.speed or args.speed_only
    speeds = speed(photos, names[0], args.repeats, folder) if timed else []
    report = {
        "command": " ".join(["python", "benchmarks/hiding.py", *sys.argv[1:]]),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
        f"{torch.get_num_threads()} torch threads, torch {torch.__version__}",
        "summaries": summaries,
        "photos": rows,
        "speed": speeds,
    }
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2))
    print(markdown(summaries, speeds))


if __name__ == "__main__":
    main()
