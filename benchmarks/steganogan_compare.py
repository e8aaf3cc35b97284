"""stegcli against SteganoGAN 0.1.3 (the reference system), on the same photos in one run.

What is measured, per photo (default: 512×512 centre crops of the first 3 photos, sorted, of
``../shared/data/val`` that are at least 512 pixels on each side):

* SteganoGAN, its pretrained ``dense`` model, through its own API (``SteganoGAN.load``,
  ``.encode(cover, output, text)``, ``.decode(stego)``): for each payload size (default 128,
  256, 512 and 1024 bytes of random printable ASCII text) and each trial, encode to a PNG and
  decode it back. A trial succeeds only if decode returns exactly the text; a decode that
  raises or returns other text is a failure.
* stegcli, through its Python API (``hide`` and ``reveal``, the code the commands run): the
  same text as SteganoGAN's smallest payload size (128 bytes by default), and a random
  payload of exactly the capacity ``cover_capacity`` reports, each checked byte for byte.

Every trial records success, encode and decode seconds (``time.perf_counter`` around the
in-process call, file reading and writing included) and the PSNR of the written stego PNG
against the cover PNG (8-bit pixels, peak 255, the same function for both systems). The table
gives medians over photos × trials, never means; ``--json`` keeps every raw figure, the
machine and the command line.

Reproduce (SteganoGAN goes into its own folder, first on ``sys.path``, so that the project's
virtualenv keeps its own packages; its ``imageio`` and ``tqdm`` imports need those two too):

    .venv/bin/pip install --no-deps --target runs/steganogan-pkgs steganogan==0.1.3 \\
        reedsolo==0.3 imageio==2.38.1 tqdm==4.70.1
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/steganogan_compare.py \\
        --json runs/steganogan_compare.json

``--smoke`` runs one 128×128 photo, a 32-byte payload and one trial, and skips SteganoGAN
with a note when it cannot be imported, for the test suite.

Shims that SteganoGAN 0.1.3 (written for torch 1.0) needs on current torch, applied at run
time here; its installed files are never changed:

1. ``torch.load(..., weights_only=False)``. The ``.steg`` files are whole pickled
   ``SteganoGAN`` objects, and torch ≥ 2.6 defaults to ``weights_only=True``, which refuses
   to unpickle arbitrary classes. Patched only for the duration of ``SteganoGAN.load``.
2. ``Optimizer.defaults``. The pickle holds two Adam optimisers whose state has only
   ``state`` and ``param_groups``; current ``Optimizer.__setstate__`` calls
   ``self.defaults.setdefault(...)`` and fails with AttributeError. While loading, a missing
   ``defaults`` is filled in from the first parameter group's hyperparameters (the
   optimisers are never stepped here).
3. Integer bits in ``decode``. ``decode`` thresholds the decoder's output (``> 0``) and
   passes ``.tolist()`` to ``bits_to_bytearray``, which builds each byte with
   ``int(''.join(str(bit) ...), 2)``. On torch 1.0 the comparison gave uint8 (0/1); now it
   gives bool, so the join reads 'TrueFalse…' and raises ValueError. The name
   ``steganogan.models.bits_to_bytearray`` is wrapped to turn the bits into ints first.
4. Decode pixel scale (a bug in 0.1.3 itself, not a torch change; ``--steganogan-raw-scale``
   turns the fix off). ``encode`` feeds the networks ``pixels / 127.5 - 1`` (-1..1) but
   ``decode`` feeds the decoder ``pixels / 255`` (0..1). The decoder is wrapped so it sees
   ``2 x - 1``, the scale it was trained on. The loaded modules stay in training mode, as
   ``load`` leaves them (the pickle says so, as it did on torch 1.0), so batch norm uses each
   image's own statistics, which nearly cancels an affine change of input scale: on the
   three default crops the fix raised raw bit accuracy by only 0.1 to 0.4 points (to about
   76 to 79 %). It can only help SteganoGAN, so applying it cannot flatter stegcli.

Also needed: reedsolo 0.3, not the 1.7 the project's tests use. SteganoGAN's
``rs.decode(x)`` expects 0.3's return value (the message); 1.7 returns a tuple, whose
``zlib.decompress`` fails silently, so every decode would report "Failed to find message".
The loader below checks that steganogan and reedsolo both come from ``--steganogan-path``.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import math
import os
import platform
import random
import shlex
import statistics
import string
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import torch
from PIL import Image

from stegcli.data import find_images
from stegcli.hiding import cover_capacity, hide, reveal
from stegcli.models import StegoModel, resolve_model

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_STEGANOGAN_PATH = Path("runs/steganogan-pkgs")
STEGANOGAN_PACKAGES = "steganogan==0.1.3 reedsolo==0.3 imageio==2.38.1 tqdm==4.70.1"
# Printable ASCII, space included: what a user would type as a message.
TEXT_ALPHABET = string.ascii_letters + string.digits + string.punctuation + " "


def install_hint(path: Path) -> str:
    return f"{sys.executable} -m pip install --no-deps --target {path} {STEGANOGAN_PACKAGES}"


# --- SteganoGAN: import, load with shims, one trial ---------------------------------------


def import_steganogan(path: Path) -> ModuleType:
    """steganogan imported from ``path``, with its reedsolo 0.3; raises ImportError otherwise."""
    path = path.resolve()
    if not (path / "steganogan").is_dir():
        raise ImportError(f"no steganogan package in {path}")
    sys.path.insert(0, str(path))  # first, so its reedsolo 0.3 shadows the venv's 1.7
    for name in ("reedsolo", "imageio", "tqdm"):
        # An earlier import from elsewhere would be reused silently.
        where = getattr(sys.modules.get(name), "__file__", None)
        if where and path not in Path(where).resolve().parents:
            del sys.modules[name]
    module = importlib.import_module("steganogan")
    for name in ("steganogan", "reedsolo"):
        where = Path(sys.modules[name].__file__).resolve()
        if path not in where.parents:
            raise ImportError(f"{name} was imported from {where}, not from {path}")
    if module.__version__ != "0.1.3":
        raise ImportError(f"steganogan {module.__version__} found, 0.1.3 needed")
    return module


@contextlib.contextmanager
def legacy_pickle_shims() -> Iterator[None]:
    """Shims 1 and 2 of the module docstring, undone afterwards so stegcli never sees them."""
    original_load = torch.load
    original_setstate = torch.optim.Optimizer.__setstate__

    def load(*args: Any, **kwargs: Any) -> Any:
        kwargs["weights_only"] = False  # a whole pickled object, from a package we installed
        return original_load(*args, **kwargs)

    def setstate(self: torch.optim.Optimizer, state: dict) -> None:
        if "defaults" not in state:  # torch 1.0 pickled only state and param_groups
            groups = state.get("param_groups") or [{}]
            state["defaults"] = {k: v for k, v in groups[0].items() if k != "params"}
        original_setstate(self, state)

    torch.load = load
    torch.optim.Optimizer.__setstate__ = setstate
    try:
        with warnings.catch_warnings():
            # "source code of class … has changed": expected, torch 1.0 pickled the classes.
            warnings.simplefilter("ignore", torch.serialization.SourceChangeWarning)
            yield
    finally:
        torch.load = original_load
        torch.optim.Optimizer.__setstate__ = original_setstate


class _MinusOneToOne(torch.nn.Module):
    """Shim 4: gives the decoder 2 x - 1 for the 0..1 pixels ``decode`` passes it."""

    def __init__(self, decoder: torch.nn.Module) -> None:
        super().__init__()
        self.decoder = decoder

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.decoder(2 * image - 1)


def load_steganogan(module: ModuleType, fix_scale: bool) -> Any:
    models = importlib.import_module("steganogan.models")
    original = models.bits_to_bytearray
    if not getattr(original, "_int_bits_shim", False):
        # Shim 3: bool bits from current torch become the 0/1 ints the function expects.
        def bits_to_bytearray(bits: list) -> bytearray:
            return original([int(bit) for bit in bits])

        bits_to_bytearray._int_bits_shim = True  # type: ignore[attr-defined]
        models.bits_to_bytearray = bits_to_bytearray
    # imageio ≥ 2.16 warns on its v2 imread that SteganoGAN uses; the call itself still works.
    warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"steganogan\.")
    with legacy_pickle_shims():
        steganogan = module.SteganoGAN.load(architecture="dense", cuda=False, verbose=False)
    if fix_scale:
        steganogan.decoder = _MinusOneToOne(steganogan.decoder)
    return steganogan


def steganogan_trial(steganogan: Any, cover: Path, text: str, stego: Path) -> dict:
    """One encode and decode; a failure is a result here, never an exception."""
    row: dict[str, Any] = {}
    try:
        started = time.perf_counter()
        steganogan.encode(str(cover), str(stego), text)
        row["encode_seconds"] = time.perf_counter() - started
        row["psnr"] = png_psnr(cover, stego)
        started = time.perf_counter()
        try:
            decoded = steganogan.decode(str(stego))
        finally:
            row["decode_seconds"] = time.perf_counter() - started
        row["exact"] = decoded == text
        if not row["exact"]:
            row["error"] = f"decoded {len(decoded)} characters that differ from the text"
    except Exception as exc:  # noqa: BLE001 - "Failed to find message." is the usual one
        row.update(exact=False, error=f"{type(exc).__name__}: {exc}")
    finally:
        stego.unlink(missing_ok=True)
    return row


# --- stegcli: one trial -------------------------------------------------------------------


def stegcli_trial(model: StegoModel, cover: Path, content: bytes, name: str, stego: Path) -> dict:
    row: dict[str, Any] = {}
    try:
        started = time.perf_counter()
        result = hide(cover, content, name, stego, model, passphrase=None, force=True)
        row["encode_seconds"] = time.perf_counter() - started
        row.update(psnr=png_psnr(cover, stego), reported_psnr=result.psnr, ssim=result.ssim)
        started = time.perf_counter()
        try:
            name_back, content_back, _ = reveal(stego, model, None)
        finally:
            row["decode_seconds"] = time.perf_counter() - started
        row["exact"] = content_back == content and name_back == name
        if not row["exact"]:
            row["error"] = "revealed content differs from the payload"
    except Exception as exc:  # noqa: BLE001 - StegcliError or any other: a failed trial
        row.update(exact=False, error=f"{type(exc).__name__}: {exc}")
    finally:
        stego.unlink(missing_ok=True)
    return row


# --- shared helpers -----------------------------------------------------------------------


def png_psnr(cover: Path, stego: Path) -> float | None:
    """PSNR in dB of two 8-bit RGB images (peak 255); None when they are identical."""
    with Image.open(cover) as a, Image.open(stego) as b:
        x = np.asarray(a.convert("RGB"), dtype=np.float64)
        y = np.asarray(b.convert("RGB"), dtype=np.float64)
    if x.shape != y.shape:
        raise ValueError(
            f"stego image is {y.shape[1]}×{y.shape[0]}, cover {x.shape[1]}×{x.shape[0]}"
        )
    mse = float(np.mean((x - y) ** 2))
    return None if mse == 0 else 10 * math.log10(255.0**2 / mse)


def random_text(size: int, seed: tuple[int, ...]) -> str:
    rng = random.Random(repr(seed))  # str seeds are hashed deterministically (not hash())
    return "".join(rng.choice(TEXT_ALPHABET) for _ in range(size))


def prepare_photos(
    sources: list[Path], crop: int, count: int | None, folder: Path
) -> tuple[list[dict], list[str]]:
    """Centre crops (crop×crop, PNG) of the sources up to ``count``, and the ones skipped."""
    photos: list[dict] = []
    skipped: list[str] = []
    for source in sources:
        if count is not None and len(photos) == count:
            break
        with Image.open(source) as image:
            image = image.convert("RGB")
            if crop and min(image.size) < crop:  # a crop must hold real pixels only
                skipped.append(f"{source} ({image.width}×{image.height})")
                continue
            if crop:
                left, top = (image.width - crop) // 2, (image.height - crop) // 2
                image = image.crop((left, top, left + crop, top + crop))
            path = folder / f"{len(photos):02d}-{source.stem}.png"
            image.save(path)
            photos.append(
                {"source": str(source), "path": path, "width": image.width, "height": image.height}
            )
    return photos, skipped


def median(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def summarise(rows: list[dict]) -> list[dict]:
    """One summary per (system, payload kind, payload size), in first-seen order; capacity
    payloads per photo too (two photos may hold the same number of bytes)."""
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        photo = row["photo"] if row["payload"] == "capacity" else None
        key = (row["system"], row["payload"], row["payload_bytes"], photo)
        groups.setdefault(key, []).append(row)
    summaries = []
    for (system, payload, size, photo), group in groups.items():
        summary = {
            "system": system,
            "photo": photo,
            "payload": payload,
            "payload_bytes": size,
            "trials": len(group),
            "exact": sum(r["exact"] for r in group),
            "success_rate": sum(r["exact"] for r in group) / len(group),
            "median_encode_seconds": median([r.get("encode_seconds") for r in group]),
            "median_decode_seconds": median([r.get("decode_seconds") for r in group]),
            "median_psnr": median([r.get("psnr") for r in group]),
        }
        if system == "stegcli":
            summary["median_capacity_bytes"] = median([r["capacity_bytes"] for r in group])
            summary["median_net_bpp"] = median([r["net_bpp"] for r in group])
        summaries.append(summary)
    return summaries


def capacity_ratio(rows: list[dict], summaries: list[dict], photos: list[dict]) -> dict:
    """stegcli capacity ÷ the largest payload SteganoGAN recovered in every trial.

    Overall: median stegcli capacity over the largest size recovered in every trial on every
    photo. Per photo: that photo's capacity over its own largest always-recovered size.
    """
    sizes = [s for s in summaries if s["system"] == "steganogan"]
    always = [s["payload_bytes"] for s in sizes if s["exact"] == s["trials"]]
    capacity = [s for s in summaries if s["system"] == "stegcli" and s["payload"] == "capacity"]
    result: dict[str, Any] = {
        "steganogan_largest_always_recovered_bytes": max(always) if always else None,
        "median_stegcli_capacity_bytes": (
            capacity[0]["median_capacity_bytes"] if capacity else None
        ),
    }
    top = result["steganogan_largest_always_recovered_bytes"]
    room = result["median_stegcli_capacity_bytes"]
    result["ratio"] = room / top if top and room else None
    per_photo = []
    for photo in photos:
        mine = [r for r in rows if r["photo"] == photo["name"]]
        by_size: dict[int, list[bool]] = {}
        for r in mine:
            if r["system"] == "steganogan":
                by_size.setdefault(r["payload_bytes"], []).append(r["exact"])
        best = max((size for size, ok in by_size.items() if all(ok)), default=None)
        room_here = next((r["capacity_bytes"] for r in mine if r["system"] == "stegcli"), None)
        per_photo.append(
            {
                "photo": photo["name"],
                "steganogan_largest_always_recovered_bytes": best,
                "stegcli_capacity_bytes": room_here,
                "ratio": room_here / best if best and room_here else None,
            }
        )
    result["per_photo"] = per_photo
    return result


def fmt(value: float | None, spec: str) -> str:
    return "–" if value is None else format(value, spec)


def markdown(summaries: list[dict], ratio: dict | None, stegcli_name: str) -> str:
    lines = [
        (
            "| system | payload | recovered exactly | encode s | decode s | PSNR dB "
            "| capacity B | net bpp | capacity ÷ SteganoGAN's largest always recovered |"
        ),
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for s in summaries:
        system = "SteganoGAN 0.1.3 (dense)" if s["system"] == "steganogan" else stegcli_name
        if s["payload"] == "capacity":
            photo = s["photo"].split(":", 1)[-1]
            payload = f"capacity of {photo} ({fmt(s['median_capacity_bytes'], ',.0f')} B)"
        else:
            payload = f"{s['payload_bytes']:,} B text"
        extra = ["–", "–", "–"]
        if s["system"] == "stegcli":
            extra[:2] = [fmt(s["median_capacity_bytes"], ",.0f"), fmt(s["median_net_bpp"], ".3f")]
            if s["payload"] == "capacity" and ratio is not None:
                top = ratio["steganogan_largest_always_recovered_bytes"]
                extra[2] = (
                    f"{ratio['ratio']:.1f}× ({top:,} B)"
                    if ratio["ratio"] is not None
                    else "– (SteganoGAN recovered no tested size every time)"
                )
        lines.append(
            f"| {system} | {payload} | {s['exact']} of {s['trials']} "
            f"({100 * s['success_rate']:.0f} %) | {fmt(s['median_encode_seconds'], '.2f')} "
            f"| {fmt(s['median_decode_seconds'], '.2f')} | {fmt(s['median_psnr'], '.2f')} "
            f"| {' | '.join(extra)} |"
        )
    return "\n".join(lines)


# --- main ---------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=Path, nargs="*", default=None,
                        help="image files or folders (default: the first --count photos of "
                        "../shared/data/val at least --crop on each side)")  # fmt: skip
    parser.add_argument("--count", type=int, default=3, help="photos to take by default")
    parser.add_argument("--crop", type=int, default=512,
                        help="centre crop side in pixels; 0 keeps the photos whole")  # fmt: skip
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 256, 512, 1024],
                        help="SteganoGAN text payload sizes in bytes; stegcli hides the "
                        "smallest")  # fmt: skip
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--model", default=None, help="stegcli model (default: shipped default)")
    parser.add_argument("--steganogan-path", type=Path, default=DEFAULT_STEGANOGAN_PATH,
                        help="folder that pip --target installed SteganoGAN into")  # fmt: skip
    parser.add_argument("--steganogan-raw-scale", action="store_true",
                        help="leave decode's 0..1 pixel scale unfixed (shim 4 off)")  # fmt: skip
    parser.add_argument("--json", type=Path)
    parser.add_argument("--smoke", action="store_true",
                        help="one 128×128 photo, 32 bytes, one trial, for tests")  # fmt: skip
    args = parser.parse_args()
    if args.smoke:
        args.crop, args.sizes, args.trials, args.count = 128, [32], 1, 1
    return args


def main() -> None:
    args = parse_args()
    steganogan_path = args.steganogan_path
    if not steganogan_path.is_absolute():
        steganogan_path = ROOT / steganogan_path
    notes: list[str] = []
    try:
        module: ModuleType | None = import_steganogan(steganogan_path)
    except ImportError as exc:
        line = (
            f"steganogan 0.1.3 cannot be imported from {steganogan_path} ({exc}); "
            f"install it with: {install_hint(steganogan_path)}"
        )
        if not args.smoke:
            sys.exit(line)
        module = None
        notes.append(f"SteganoGAN side skipped: {line}")
        print(f"note: SteganoGAN side skipped: {line}")

    folder = Path(tempfile.mkdtemp(prefix="stegcli-vs-steganogan-"))
    if args.photos:
        sources = [p for g in args.photos for p in (find_images(g) if g.is_dir() else [g])]
        count = 1 if args.smoke else None
    elif args.smoke:  # a sample photo, so the test needs no data set
        sources, count = [ROOT / "samples" / "skimage_coffee.png"], 1
    else:
        sources, count = find_images(ROOT.parent / "shared" / "data" / "val"), args.count
    photos, skipped = prepare_photos(sources, args.crop, count, folder)
    if skipped:
        notes.append(f"skipped {len(skipped)} photos under {args.crop} on a side: {skipped}")
        print(f"skipped {len(skipped)} photos under {args.crop} pixels on a side", file=sys.stderr)
    if not photos:
        sys.exit(f"no photo of at least {args.crop}×{args.crop} among {len(sources)} given")
    for index, photo in enumerate(photos):
        photo["name"] = f"{index}:{Path(photo['source']).name}"

    steganogan, load_seconds = None, None
    if module is not None:
        started = time.perf_counter()
        steganogan = load_steganogan(module, fix_scale=not args.steganogan_raw_scale)
        load_seconds = time.perf_counter() - started
    model = resolve_model(args.model)
    stegcli_name = f"stegcli ({args.model or 'default'})"
    smallest = min(args.sizes)

    rows: list[dict] = []

    def record(row: dict) -> None:
        rows.append(row)
        shown = {k: round(v, 3) if isinstance(v, float) else v for k, v in row.items()}
        print(json.dumps(shown), file=sys.stderr, flush=True)  # progress for the log

    for index, photo in enumerate(photos):
        cover, pixels = photo["path"], photo["width"] * photo["height"]
        stego = folder / "stego.png"
        if steganogan is not None:
            for size in sorted(args.sizes):
                for trial in range(args.trials):
                    text = random_text(size, (index, size, trial))
                    row = steganogan_trial(steganogan, cover, text, stego)
                    record({"system": "steganogan", "photo": photo["name"], "payload": "text",
                            "payload_bytes": size, "trial": trial, **row})  # fmt: skip
        room = cover_capacity(cover, model).capacity_bytes
        common = {"system": "stegcli", "photo": photo["name"], "capacity_bytes": room,
                  "net_bpp": room * 8 / pixels}  # fmt: skip
        for trial in range(args.trials):
            # The very text SteganoGAN hid at its smallest size in this trial.
            text = random_text(smallest, (index, smallest, trial)).encode("ascii")
            row = stegcli_trial(model, cover, text, "message.txt", stego)
            record({**common, "payload": "text", "payload_bytes": smallest, "trial": trial,
                    **row})  # fmt: skip
        for trial in range(args.trials):
            content = np.random.default_rng((index, trial)).bytes(room)
            row = stegcli_trial(model, cover, content, "payload.bin", stego)
            record({**common, "payload": "capacity", "payload_bytes": room, "trial": trial,
                    **row})  # fmt: skip

    summaries = summarise(rows)
    ratio = capacity_ratio(rows, summaries, photos) if steganogan is not None else None
    report = {
        "command": shlex.join(["python", "benchmarks/steganogan_compare.py", *sys.argv[1:]]),
        "argv": sys.argv,
        "machine": {
            "platform_machine": platform.machine(),
            "torch_threads": torch.get_num_threads(),
            "cpu_count": os.cpu_count(),
            "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
            "python": platform.python_version(),
            "torch": torch.__version__,
        },
        "settings": {
            "sizes": sorted(args.sizes),
            "trials": args.trials,
            "crop": args.crop,
            "smoke": args.smoke,
            "stegcli_model": model.source,
            "stegcli_text_bytes": smallest,
            "steganogan_path": str(steganogan_path),
            "steganogan_decode_scale_fixed": steganogan is not None
            and not args.steganogan_raw_scale,
        },
        "steganogan": {
            "available": steganogan is not None,
            "version": getattr(module, "__version__", None),
            "architecture": "dense",
            "load_seconds": load_seconds,
        },
        "notes": notes,
        "photos": [
            {k: str(v) if isinstance(v, Path) else v for k, v in p.items()} for p in photos
        ],
        "summaries": summaries,
        "capacity_ratio": ratio,
        "trials": rows,
    }
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2))
    for photo in photos:
        photo["path"].unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        folder.rmdir()
    print(markdown(summaries, ratio, stegcli_name))


if __name__ == "__main__":
    main()
