"""The core of ``stegcli evaluate``: hide random payloads in photos and measure the round trip.

Each trial goes through exactly the code of ``encode`` and ``decode``: :func:`hide` writes a
stego PNG into a temporary folder, :func:`reveal` reads that file back, and the bytes are
compared. A trial that fails (an error from hide or reveal) is a result, with its reason,
never a crash; a photo whose capacity cannot be measured, or which cannot hold the size
asked for, is reported as not attempted, with the reason.

Payload bytes come from SHAKE-256 keyed by (seed, photo index, trial), never from a library
random state, so the same command hides the same payloads on any machine. The figures can
still differ a little between runs: encode fills the slots the payload leaves free with
fresh random bits (and a passphrase brings a fresh salt and nonce), as it does for real files.

Figures of one trial:

- ``exact``: reveal returned exactly the hidden bytes.
- ``raw_bit_errors``: stream bits (every copy of every header and body bit) that the decoder
  reads with the wrong sign from the final 8-bit stego pixels, after any refinement and
  before any error correction (``EncodeResult``'s figure).
- ``used_slots``: the stream bits the payload occupies, header and parity included
  (the rest of the image's depth × height × width slots hold filler).
- ``bit_accuracy``: 1 − raw_bit_errors ÷ used_slots.
- ``corrected_bytes``: body bytes the error correction repaired when decoding the written PNG.
- net bits per pixel (per photo): payload bytes × 8 ÷ pixels, the file's bytes only.
- ``psnr``, ``ssim``: stego against cover, on 8-bit pixels; ``refine_steps``: rounds of
  refinement encode needed; ``encode_seconds``, ``decode_seconds``: wall time of hide
  (which includes its own capacity trial and the checked write) and of reveal.
"""

from __future__ import annotations

import hashlib
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from stegcli.container import HEADER_SLOTS
from stegcli.data import find_images
from stegcli.errors import InputError, StegcliError
from stegcli.hiding import cover_capacity, hide, reveal
from stegcli.models import StegoModel

PAYLOAD_NAME = "payload.bin"
PLOT_FILLS = (0.25, 0.5, 0.75, 1.0)

Progress = Callable[[str, int], None]  # (what runs now, trials finished since the last call)

# The figures summarised over trials: the name, and whether a larger value is better.
FIGURES = {
    "bit_accuracy": True,
    "psnr": True,
    "ssim": True,
    "refine_steps": False,
    "encode_seconds": False,
    "decode_seconds": False,
}


@dataclass
class Trial:
    """One round trip: hide a payload, reveal it from the written PNG, compare."""

    trial: int
    exact: bool = False
    error: str | None = None
    raw_bit_errors: int | None = None
    used_slots: int | None = None
    bit_accuracy: float | None = None
    corrected_bytes: int | None = None
    psnr: float | None = None
    ssim: float | None = None
    refine_steps: int | None = None
    encode_seconds: float | None = None
    decode_seconds: float | None = None


@dataclass
class PhotoResult:
    """Every trial on one photo. ``attempted`` is False (with ``error``) when none could run."""

    photo: str
    width: int | None = None
    height: int | None = None
    capacity_bytes: int | None = None
    payload_bytes: int | None = None
    attempted: bool = True
    error: str | None = None
    trials: list[Trial] = field(default_factory=list)

    @property
    def net_bpp(self) -> float | None:
        if self.payload_bytes is None or not self.width or not self.height:
            return None
        return self.payload_bytes * 8 / (self.width * self.height)

    def medians(self) -> dict[str, float | None]:
        """The median of each figure over this photo's trials that were recovered exactly."""
        exact = [t for t in self.trials if t.exact]
        return {name: _median([getattr(t, name) for t in exact]) for name in FIGURES}

    def to_dict(self) -> dict:
        return {
            "photo": self.photo,
            "width": self.width,
            "height": self.height,
            "capacity_bytes": self.capacity_bytes,
            "payload_bytes": self.payload_bytes,
            "net_bpp": self.net_bpp,
            "attempted": self.attempted,
            "error": self.error,
            "exact": sum(t.exact for t in self.trials),
            "median": self.medians(),
            "trials": [asdict(t) for t in self.trials],
        }


@dataclass
class Evaluation:
    """The results of one evaluate run, and what produced them."""

    model: str
    depth: int
    fill: float | None  # the share of capacity hidden, or None with an exact payload size
    payload_bytes: int | None
    trials: int
    seed: int
    encrypted: bool
    photos: list[PhotoResult] = field(default_factory=list)

    def summary(self) -> dict:
        return summarise(self.photos, self.trials)

    def to_dict(self) -> dict:
        return {
            "model": self.model,
            "depth": self.depth,
            "fill": self.fill,
            "payload_bytes": self.payload_bytes,
            "trials": self.trials,
            "seed": self.seed,
            "encrypted": self.encrypted,
            "photos": [photo.to_dict() for photo in self.photos],
            "summary": self.summary(),
        }


def _median(values: list) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def payload_bytes(seed: int, photo_index: int, trial: int, size: int) -> bytes:
    """``size`` pseudo-random bytes keyed by (seed, photo index, trial): the same everywhere."""
    key = b"stegcli-evaluate\0%d\0%d\0%d" % (seed, photo_index, trial)
    return hashlib.shake_256(key).digest(size)


def collect_photos(inputs: list[Path]) -> list[Path]:
    """The photos named, and those found in the folders named (recursively), in order."""
    photos: list[Path] = []
    for given in inputs:
        path = Path(given)
        if path.is_dir():
            photos.extend(find_images(path))
        elif path.is_file():
            photos.append(path)
        else:
            raise InputError(f"{str(path)!r} does not exist; give photos or folders of photos")
    unique = list(dict.fromkeys(photos))
    if not unique:
        shown = ", ".join(repr(str(p)) for p in inputs)
        raise InputError(f"no images found in {shown}; give photos or folders that hold some")
    return unique


def check_amount(fill: float | None, size: int | None, trials: int) -> None:
    """Refuse a --fill outside (0, 1], a negative --payload-bytes, both, or no trials."""
    if fill is not None and size is not None:
        raise InputError("give --fill or --payload-bytes, not both")
    if fill is not None and not 0 < fill <= 1:
        raise InputError(f"--fill must be above 0 and at most 1, got {fill:g}")
    if size is not None and size < 0:
        raise InputError(f"--payload-bytes must be 0 or more, got {size}")
    if trials < 1:
        raise InputError(f"--trials must be at least 1, got {trials}")


def round_trip(
    cover: Path,
    payload: bytes,
    model: StegoModel,
    folder: Path,
    passphrase: str | None = None,
    trial: int = 0,
) -> Trial:
    """Hide ``payload`` in ``cover`` with encode's code, reveal it from the written PNG.

    Never raises for a failed trial: the reason is in ``Trial.error``.
    """
    result = Trial(trial)
    stego = folder / f"{cover.stem}.stego.png"
    try:
        started = time.perf_counter()
        encoded = hide(cover, payload, PAYLOAD_NAME, stego, model, passphrase, force=True)
        result.encode_seconds = time.perf_counter() - started
        result.raw_bit_errors = encoded.raw_bit_errors
        result.refine_steps = encoded.refine_steps
        result.psnr, result.ssim = encoded.psnr, encoded.ssim
        started = time.perf_counter()
        _, content, figures = reveal(stego, model, passphrase)
        result.decode_seconds = time.perf_counter() - started
        result.corrected_bytes = figures["corrected_bytes"]
        result.used_slots = HEADER_SLOTS + figures["header"].body_slots
        result.bit_accuracy = 1 - result.raw_bit_errors / result.used_slots
        result.exact = content == payload
        if not result.exact:
            result.error = "decode returned different bytes"
    except Exception as exc:  # noqa: BLE001 - a failure is a result here, and counted as one
        result.error = str(exc) if isinstance(exc, StegcliError) else f"{type(exc).__name__}: {exc}"
    finally:
        stego.unlink(missing_ok=True)
    return result


def evaluate(
    inputs: list[Path],
    model: StegoModel,
    *,
    fill: float | None = None,
    size: int | None = None,
    trials: int = 1,
    seed: int = 0,
    passphrase: str | None = None,
    progress: Progress | None = None,
    label: str = "",
) -> Evaluation:
    """Round trips on every photo: ``fill`` of its capacity (1 by default) or ``size`` bytes.

    inputs: photos and folders (see :func:`collect_photos`). A photo that cannot be read (or
    is too small) is reported as not attempted; when none can be read, its error is raised.
    """
    check_amount(fill, size, trials)
    if fill is None and size is None:
        fill = 1.0
    photos = collect_photos(inputs)
    report = Evaluation(
        model=model.source,
        depth=model.settings.depth,
        fill=fill,
        payload_bytes=size,
        trials=trials,
        seed=seed,
        encrypted=passphrase is not None,
    )
    unreadable: list[StegcliError] = []
    with tempfile.TemporaryDirectory(prefix="stegcli-evaluate-") as folder:
        for index, path in enumerate(photos):
            if progress:
                progress(f"{label}{path.name}", 0)
            photo = PhotoResult(str(path))
            report.photos.append(photo)
            try:
                space = cover_capacity(path, model)
            except StegcliError as exc:
                unreadable.append(exc)
                if len(unreadable) == len(photos):  # nothing to evaluate: bad input
                    raise unreadable[0] from None
                photo.attempted, photo.error = False, f"not attempted: {exc}"
                if progress:
                    progress(f"{label}{path.name}", trials)
                continue
            photo.width, photo.height = space.width, space.height
            photo.capacity_bytes = space.capacity_bytes
            photo.payload_bytes = size if size is not None else int(fill * space.capacity_bytes)
            if photo.payload_bytes > space.capacity_bytes:
                photo.attempted = False
                photo.error = (
                    f"not attempted: {photo.payload_bytes:,} bytes is more than this "
                    f"{space.width}×{space.height} photo holds ({space.capacity_bytes:,} bytes "
                    f"with {model.source})"
                )
                if progress:
                    progress(f"{label}{path.name}", trials)
                continue
            for trial in range(trials):
                payload = payload_bytes(seed, index, trial, photo.payload_bytes)
                photo.trials.append(
                    round_trip(path, payload, model, Path(folder), passphrase, trial)
                )
                if progress:
                    progress(f"{label}{path.name}", 1)
    return report


def summarise(photos: list[PhotoResult], trials: int) -> dict:
    """Counts, and the median and worst of each figure over the trials recovered exactly.

    A photo not attempted counts ``trials`` trials, none of them exact.
    """
    exact = [(photo, t) for photo in photos for t in photo.trials if t.exact]
    planned = len(photos) * trials
    summary: dict = {
        "photos": len(photos),
        "photos_not_attempted": sum(not photo.attempted for photo in photos),
        "trials": planned,
        "attempted": sum(len(photo.trials) for photo in photos),
        "exact": len(exact),
        "exact_share": len(exact) / planned if planned else None,
    }
    columns = {"net_bpp": ([photo.net_bpp for photo, _ in exact], True)}
    for name, higher_is_better in FIGURES.items():
        columns[name] = ([getattr(t, name) for _, t in exact], higher_is_better)
    for name, (values, higher_is_better) in columns.items():
        values = [v for v in values if v is not None]
        worst = (min if higher_is_better else max)(values) if values else None
        summary[name] = {"median": _median(values), "worst": worst}
    return summary


def quality_curve(
    inputs: list[Path],
    model: StegoModel,
    fills: tuple[float, ...] = PLOT_FILLS,
    *,
    trials: int = 1,
    seed: int = 0,
    passphrase: str | None = None,
    progress: Progress | None = None,
    name: str | None = None,
) -> dict:
    """Median net bits per pixel and PSNR over the photos, at each share of capacity.

    A point's medians are over the trials recovered exactly; ``exact_share`` says how many.
    name: what to call the model (default: its source).
    """
    name = name or model.source
    points = []
    for fill in fills:
        run = evaluate(
            inputs, model, fill=fill, trials=trials, seed=seed, passphrase=passphrase,
            progress=progress, label=f"{name}, fill {fill:g}: ",
        )  # fmt: skip
        summary = run.summary()
        points.append(
            {
                "fill": fill,
                "net_bpp": summary["net_bpp"]["median"],
                "psnr": summary["psnr"]["median"],
                "ssim": summary["ssim"]["median"],
                "exact_share": summary["exact_share"],
            }
        )
    return {"name": name, "model": model.source, "depth": model.settings.depth, "points": points}


__all__ = [
    "Evaluation",
    "PhotoResult",
    "Trial",
    "collect_photos",
    "evaluate",
    "payload_bytes",
    "quality_curve",
    "round_trip",
    "summarise",
]
