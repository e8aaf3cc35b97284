"""Hide a file in a photo and get it back: what ``encode``, ``decode`` and ``capacity`` do.

encode: load the cover, check capacity, seal the payload (:mod:`stegcli.container`), place
its bits (:mod:`stegcli.layout`), run the encoder in tiles, round to 8-bit pixels, decode
exactly those pixels, refine where bits read wrong, and write the PNG atomically only once
reading it back gives the exact payload.

decode: run the decoder on the image, find the header at the layout the model depth, image
size and passphrase give, correct errors, check the checksum or authentication tag, and
return the stored name and bytes.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from stegcli import container
from stegcli.container import HEADER_SLOTS, Header, PayloadError
from stegcli.embedding import decode_tiled, encode_tiled, refine
from stegcli.errors import ImageError, InputError, StegcliError
from stegcli.files import atomic_write, exists_error, refuse_existing
from stegcli.imaging import LoadedImage, load_image, pixels_to_tensor, tensor_to_pixels
from stegcli.layout import Layout
from stegcli.metrics import psnr, ssim
from stegcli.models import StegoModel
from stegcli.strength import WEAK_LOGIT, Strength, measure, safe_errors

MIN_SIDE = 16
REFINE_ROUNDS = 4
LOSSLESS_SUFFIXES = (".png",)

Progress = Callable[[str, int, int], None]  # (stage, done, total)


class HidingError(StegcliError):
    """The payload cannot be hidden in this cover, or the result cannot be written."""


@dataclass
class Capacity:
    width: int
    height: int
    depth: int
    strength: Strength

    @property
    def capacity_bytes(self) -> int:
        return self.strength.capacity_bytes


def cover_capacity(path: Path, model: StegoModel) -> Capacity:
    """What a cover holds with a model: the same trial and figures that encode uses."""
    image = load_image(path)
    _check_size(image)
    return Capacity(
        image.width, image.height, model.settings.depth, measure(model, image.tensor())
    )


def _check_size(image: LoadedImage) -> None:
    if min(image.width, image.height) < MIN_SIDE:
        raise ImageError(
            f"{str(image.path)!r} is only {image.width}×{image.height} pixels; "
            f"use a cover of at least {MIN_SIDE}×{MIN_SIDE}"
        )


@dataclass
class EncodeResult:
    output: Path
    payload_bytes: int
    capacity_bytes: int
    psnr: float
    ssim: float
    raw_bit_errors: int
    refine_steps: int
    seconds: float
    notes: list[str] = field(default_factory=list)


def check_output_name(output: Path) -> None:
    if output.suffix.lower() not in LOSSLESS_SUFFIXES:
        raise InputError(
            f"cannot write the stego image as {str(output)!r}: only PNG is lossless here, "
            "and a lossy format such as JPEG would destroy the payload; name it *.png"
        )


def hide(
    cover_path: Path,
    content: bytes,
    name: str,
    output: Path,
    model: StegoModel,
    passphrase: str | None = None,
    force: bool = False,
    progress: Progress | None = None,
) -> EncodeResult:
    """Hide ``content`` (stored under ``name``) in the cover, writing the stego PNG."""
    started = time.perf_counter()
    check_output_name(output)
    refuse_existing(output, force)
    image = load_image(cover_path)
    _check_size(image)
    model.eval()
    H, W, D = image.height, image.width, model.settings.depth
    cover = image.tensor()
    space = Capacity(W, H, D, measure(model, cover))
    strength = space.strength
    header, body = container.seal(
        content, name, strength.nsym, strength.repeat, passphrase, strength.erase_eighths
    )
    room = container.body_capacity(D * H * W, strength.nsym, strength.repeat)
    if header.body_length > room:
        squeezed = " even compressed" if header.compressed else ""
        raise HidingError(
            f"the file is {len(content):,} bytes, too large{squeezed} for this {W}×{H} cover, "
            f"which holds {space.capacity_bytes:,} bytes with {model.source}; use a larger "
            "cover or a model that hides more bits per pixel"
        )
    layout = Layout.derive(D, H, W, passphrase)
    stream = container.stream_bits(header, body, layout.slots)
    used = HEADER_SLOTS + header.body_slots
    bits = torch.from_numpy(layout.place(stream)).unsqueeze(0)

    stego = encode_tiled(model.encoder, cover, bits, progress=_stage(progress, "encoding"))
    refine_steps, care = 0, None
    for round_ in range(REFINE_ROUNDS + 1):
        # The decoder reads exactly the 8-bit pixels the PNG will hold, as decode will.
        pixels = tensor_to_pixels(stego)
        stego = pixels_to_tensor(pixels)
        logits = decode_tiled(model.decoder, stego, progress=_stage(progress, "checking"))
        check = _assess(logits, layout, stream, used, header)
        if check.safe:
            break
        if round_ == REFINE_ROUNDS:
            raise HidingError(
                "the decoder could not read this payload back reliably from this cover, even "
                f"after {REFINE_ROUNDS} rounds of refinement; hide less, or use a larger or "
                "more detailed cover"
            )
        refine_steps += 1
        if care is None:
            care = np.zeros(layout.slots, dtype=bool)
            care[layout.order[:used]] = True
            care = torch.from_numpy(care.reshape(1, D, H, W))
        stego = refine(
            model.decoder, cover, stego, bits, check.wrong_pixels, care,
            progress=_stage(progress, f"refining ({refine_steps})"),
        )  # fmt: skip

    # Decode exactly those pixels the way decode will, before anything is written.
    try:
        name_back, content_back, _ = _read_payload(logits[0].numpy(), layout, passphrase)
    except PayloadError:
        name_back, content_back = None, None
    if content_back != content or name_back != container.clean_name(name):
        raise HidingError(
            "the stego pixels did not decode to the payload, so nothing was written; hide "
            "less, or use a larger cover"
        )
    figures = (psnr(stego, cover), ssim(stego, cover))
    raw_bit_errors = check.wrong_bits
    del stego, cover, bits, logits, stream, layout, check, care  # free the big arrays early

    def write_and_verify(temporary: Path) -> None:
        _save_png(temporary, pixels, image)
        # Read the file back: it must hold exactly the pixels that were decoded above.
        written = load_image(temporary)
        if not np.array_equal(written.pixels, pixels) or (
            image.alpha is not None and not np.array_equal(written.alpha, image.alpha)
        ):
            raise HidingError(f"{str(output)!r} did not read back as written; nothing kept")

    try:
        atomic_write(output, write_and_verify, overwrite=force)
    except FileExistsError:  # appeared since the check above: never report it as written
        raise exists_error(output) from None
    except OSError as exc:
        raise HidingError(f"could not write {str(output)!r}: {exc.strerror or exc}") from None

    return EncodeResult(
        output=output,
        payload_bytes=len(content),
        capacity_bytes=strength.capacity_bytes,
        psnr=figures[0],
        ssim=figures[1],
        raw_bit_errors=raw_bit_errors,
        refine_steps=refine_steps,
        seconds=time.perf_counter() - started,
        notes=_cover_notes(image),
    )


def _stage(progress: Progress | None, stage: str):
    if progress is None:
        return None
    return lambda done, total: progress(stage, done, total)


@dataclass
class _Check:
    safe: bool
    wrong_bits: int
    wrong_pixels: torch.Tensor  # (H, W) bool: pixels holding a wrong or weak used bit


def _assess(logits: torch.Tensor, layout: Layout, stream: np.ndarray, used: int, header: Header):
    """Whether the used stream bits read back with errors that the code safely absorbs."""
    read = layout.gather(logits[0].numpy(), 0, used)
    expected = stream[:used].astype(bool)
    wrong = (read > 0) != expected

    def weak(summed: np.ndarray, truth: np.ndarray) -> np.ndarray:
        return ((summed > 0) != truth) | (np.abs(summed) < WEAK_LOGIT)

    # Header: its copies are summed; up to 2 of its 8 correctable bytes may be wrong.
    header_read = read[:HEADER_SLOTS].reshape(container.HEADER_REPEATS, -1).sum(axis=0)
    header_weak = weak(header_read, expected[: header_read.size])
    header_bytes = header_weak.reshape(-1, 8).any(axis=1).sum()

    body_read = container.combine_copies(read[HEADER_SLOTS:], header.repeat)
    body_weak = weak(body_read, expected[HEADER_SLOTS : HEADER_SLOTS + body_read.size])
    safe = header_bytes <= 2 and _codewords_safe(body_read, body_weak, header)

    # Pixels to refine: those holding any copy of a header or body bit read wrong or weakly.
    flagged = np.concatenate(
        [np.tile(header_weak, container.HEADER_REPEATS), np.tile(body_weak, header.repeat)]
    )
    slots = layout.order[:used][flagged | wrong]
    plane = layout.height * layout.width
    mask = np.zeros(plane, dtype=bool)
    mask[slots % plane] = True
    return _Check(bool(safe), int(wrong.sum()), torch.from_numpy(mask.reshape(layout.height, -1)))


def _codewords_safe(combined: np.ndarray, weak_bits: np.ndarray, header: Header) -> bool:
    """Whether every codeword decodes with the reserve kept, as decode will try it: with its
    unconfident bytes as erasures (2·errors + erasures ≤ nsym − 2·guard), or errors only."""
    nsym = header.nsym
    wrong = weak_bits.reshape(-1, 8).any(axis=1)
    confidence = np.abs(combined).reshape(-1, 8).min(axis=1)
    for bad, certainty in zip(
        container.codeword_views(wrong, nsym), container.codeword_views(confidence, nsym)
    ):
        erased = container.erasures(certainty, nsym, header.erase_threshold)
        load = 2 * (bad & ~erased).sum(axis=1) + erased.sum(axis=1)
        with_erasures = load <= nsym - 2 * container.guard(nsym)
        errors_only = bad.sum(axis=1) <= safe_errors(nsym)
        if not (with_erasures | errors_only).all():
            return False
    return True


def _save_png(path: Path, pixels: np.ndarray, cover: LoadedImage) -> None:
    """Write RGB pixels as PNG, with the cover's alpha channel and colour profile."""
    if cover.alpha is not None:
        image = Image.fromarray(np.dstack([pixels, cover.alpha]), mode="RGBA")
    else:
        image = Image.fromarray(pixels, mode="RGB")
    options = {"icc_profile": cover.icc_profile} if cover.icc_profile else {}
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", **options)
    with open(path, "wb") as handle:
        handle.write(buffer.getvalue())


def _cover_notes(image: LoadedImage) -> list[str]:
    notes = []
    for change in image.conversions:
        if "alpha" in change:
            notes.append("alpha channel kept unchanged beside the hidden RGB")
        else:
            notes.append(f"cover {change}; the stego image is 8-bit RGB")
    return notes


def reveal(
    stego_path: Path,
    models: StegoModel | list[StegoModel],
    passphrase: str | None = None,
    progress: Progress | None = None,
) -> tuple[str, bytes, dict]:
    """(stored name, file bytes, figures) of the payload hidden in a stego image.

    With several models (decode without --model tries every shipped one), the first whose
    layout holds a valid header is used; figures["model"] names it.
    """
    image = load_image(stego_path)
    _check_size(image)
    pixels = pixels_to_tensor(image.pixels)
    for model in models if isinstance(models, list) else [models]:  # noqa: B020
        model.eval()
        logits = decode_tiled(model.decoder, pixels, progress=_stage(progress, "decoding"))
        layout = Layout.derive(model.settings.depth, image.height, image.width, passphrase)
        try:
            name, content, figures = _read_payload(logits[0].numpy(), layout, passphrase)
        except _NoHeader:
            continue
        return name, content, {**figures, "model": model}
    raise PayloadError(container.NOT_FOUND)


class _NoHeader(PayloadError):
    """No valid header at this layout: another model, or no payload at all."""


def _read_payload(grid: np.ndarray, layout: Layout, passphrase: str | None):
    """(name, content, figures) from decoder logits (D, H, W) read through a layout."""
    try:
        header = container.read_header(layout.gather(grid, 0, HEADER_SLOTS))
    except PayloadError as exc:
        if str(exc) == container.NOT_FOUND:
            raise _NoHeader(container.NOT_FOUND) from None
        raise
    if HEADER_SLOTS + header.body_slots > layout.slots:
        raise PayloadError(f"{container.NOT_FOUND} (the header claims more than fits)")
    body_logits = layout.gather(grid, HEADER_SLOTS, HEADER_SLOTS + header.body_slots)
    body, corrected = container.read_body(body_logits, header)
    name, content = container.open_sealed(header, body, passphrase)
    return name, content, {"corrected_bytes": corrected, "header": header}


__all__ = ["Capacity", "EncodeResult", "Header", "HidingError", "cover_capacity", "hide", "reveal"]
