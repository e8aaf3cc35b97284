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

from stegcli import container, ldpc
from stegcli.container import HEADER_SLOTS, Header, PayloadError
from stegcli.embedding import decode_tiled, encode_tiled, refine
from stegcli.errors import ImageError, InputError, StegcliError
from stegcli.files import atomic_write, exists_error, refuse_existing
from stegcli.imaging import LoadedImage, load_image, pixels_to_tensor, tensor_to_pixels
from stegcli.layout import Layout
from stegcli.metrics import psnr, ssim
from stegcli.models import StegoModel
from stegcli.strength import LEVELS, SAFE_ITERATIONS, WEAK_LOGIT, Strength, measure

MIN_SIDE = 16
REFINE_ROUNDS = 4
# encode asks every codeword to decode within this many iterations, its unreliable bits
# treated as unknown; decode allows ldpc.MAX_ITERATIONS.
CHECK_ITERATIONS = (SAFE_ITERATIONS + ldpc.MAX_ITERATIONS) // 2
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
    return Capacity(image.width, image.height, model.settings.depth, measure(model, image.tensor()))


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
    if strength.capacity_bytes == 0:
        raise HidingError(
            f"this {W}×{H} cover holds nothing with {model.source}: it is too small, or the "
            "decoder reads it back too unreliably even with the strongest code; use a larger "
            "cover or another model"
        )
    packed = container.pack(content, name)
    level = _strongest_level(packed.body_length(passphrase), D * H * W, strength)
    if level is None:
        squeezed = " even compressed" if packed.flags & container.FLAG_COMPRESSED else ""
        raise HidingError(
            f"the file is {len(content):,} bytes, too large{squeezed} for this {W}×{H} cover, "
            f"which holds {space.capacity_bytes:,} bytes with {model.source}; use a larger "
            "cover or a model that hides more bits per pixel"
        )
    code, copies = level
    header, body = container.seal_packed(
        packed, passphrase, lambda flags, length: Header.ldpc(flags, length, code, copies)
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


def _strongest_level(body_length: int, slots: int, strength: Strength) -> tuple[int, int] | None:
    """The strongest (code, copies) level, no weaker than the photo's safe one, that fits the
    body in the slots; None if none does. A small file thus gets stronger protection than
    the capacity needs, at no cost: unused slots carry filler anyway."""
    for code, copies in LEVELS[: strength.level + 1]:
        if HEADER_SLOTS + copies * ldpc.stored_bits(8 * body_length, code) <= slots:
            return code, copies
    return None


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
    """Whether the used stream bits read back well enough that decode surely recovers them:
    the header with at most 2 of its 8 correctable bytes doubtful, and every body codeword
    decoding within CHECK_ITERATIONS with its unreliable bits treated as unknown."""
    read = layout.gather(logits[0].numpy(), 0, used)
    expected = stream[:used].astype(bool)
    wrong = (read > 0) != expected
    doubtful = wrong | (np.abs(read) < WEAK_LOGIT)

    # Header: its copies are summed; up to 2 of its 8 correctable bytes may be doubtful.
    header_read = read[:HEADER_SLOTS].reshape(container.HEADER_REPEATS, -1).sum(axis=0)
    header_doubtful = ((header_read > 0) != expected[: header_read.size]) | (
        np.abs(header_read) < WEAK_LOGIT
    )
    header_ok = header_doubtful.reshape(-1, 8).any(axis=1).sum() <= 2

    # Bits read with little confidence count as unknown (their sign may differ on another
    # machine); the wrong ones stay as read, as decode will see them.
    body = container.combine_copies(read[HEADER_SLOTS:], header.repeat)
    body_read = np.where(np.abs(body) < WEAK_LOGIT, 0.0, body).astype(np.float32)
    _, ok, _ = ldpc.decode_stream(body_read, 8 * header.body_length, header.code, CHECK_ITERATIONS)
    safe = bool(header_ok and ok.all())

    # Pixels to refine: those holding a doubtful header copy, or a doubtful bit of a body
    # codeword that did not decode.
    codeword = ldpc.code_for(8 * header.body_length, header.code).n
    failed = ~ok[np.arange(len(body)) // codeword]
    header_failed = np.tile(header_doubtful, container.HEADER_REPEATS)
    flagged = np.concatenate([header_failed, np.tile(failed, header.repeat)]) & doubtful
    slots = layout.order[:used][flagged]
    plane = layout.height * layout.width
    mask = np.zeros(plane, dtype=bool)
    mask[slots % plane] = True
    return _Check(safe, int(wrong.sum()), torch.from_numpy(mask.reshape(layout.height, -1)))


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
