"""The ``stegcli`` command line: parse arguments, call the core, render the result.

Results go to stdout (a Rich table, or one JSON object with ``--json``); notes and errors go
to stderr. A :class:`StegcliError` from the core becomes one ``error: …`` line and exit
code 1. Tracebacks of unexpected errors never show local variables, which may hold secrets.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from typer.core import TyperGroup

from stegcli import __version__, render
from stegcli.allocator import keep_freed_memory
from stegcli.errors import InputError, ModelError, StegcliError
from stegcli.files import exists_error, refuse_existing
from stegcli.losscheck import check_losses
from stegcli.losses import LossWeights
from stegcli.models import (
    DEFAULT_MODEL_NAME,
    resolve_model,
    shipped_model_summaries,
    shipped_models,
)
from stegcli.networks import ModelSettings

stdout = Console()
stderr = Console(stderr=True)


class _ReportingGroup(TyperGroup):
    """Turns a StegcliError raised by any command into one error line and exit code 1."""

    def invoke(self, ctx: typer.Context):
        try:
            return super().invoke(ctx)
        except StegcliError as exc:
            stderr.print(f"error: {exc}", markup=False, highlight=False, soft_wrap=True)
            raise typer.Exit(1) from None


app = typer.Typer(
    cls=_ReportingGroup,
    help="Hide any file inside an ordinary photo, and get it back bit for bit.",
    pretty_exceptions_show_locals=False,
    no_args_is_help=True,
    add_completion=False,
)


def _show_version(value: bool) -> None:
    if value:
        stdout.print(f"stegcli {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_show_version, is_eager=True, help="Show the version."),
    ] = False,
) -> None:
    """Hide any file inside an ordinary photo, and get it back bit for bit."""


# Loss weight options, shared by loss-check and train.
MseWeight = Annotated[float, typer.Option(help="Weight of the encoder MSE in the total.")]
AdversarialWeight = Annotated[
    float, typer.Option(help="Weight of the adversarial loss in the total.")
]
GpWeight = Annotated[
    float, typer.Option(help="λ, the weight of the gradient penalty in the critic loss.")
]


@app.command("loss-check")
def loss_check(
    covers: Annotated[
        list[Path],
        typer.Argument(help="Cover photos, any size and colour mode.", show_default=False),
    ],
    stego: Annotated[
        Optional[list[Path]],
        typer.Option(help="A stego image per cover, in the same order, instead of encoding."),
    ] = None,
    secret: Annotated[
        Optional[Path],
        typer.Option(help="File whose bits are hidden, repeated to fill the image."),
    ] = None,
    model: Annotated[
        Optional[str], typer.Option(help="Shipped model name or path to a .safetensors model.")
    ] = None,
    depth: Annotated[
        Optional[int],
        typer.Option(help="Use a freshly initialised model hiding D bits per pixel."),
    ] = None,
    mse_weight: MseWeight = LossWeights.mse,
    adversarial_weight: AdversarialWeight = LossWeights.adversarial,
    gp_weight: GpWeight = LossWeights.gradient_penalty,
    seed: Annotated[
        int, typer.Option(help="Seeds random bits, a fresh model and the penalty's mixing.")
    ] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Print every loss term and the gradient penalty for the given photos."""
    chosen = resolve_model(model, fresh_depth=depth, seed=seed)
    weights = LossWeights(
        mse=mse_weight, adversarial=adversarial_weight, gradient_penalty=gp_weight
    )
    report = check_losses(chosen, covers, stego, secret, weights, seed)

    if as_json:
        print(json.dumps(render.loss_json(report), indent=2))
        return
    render.print_model_note(report, stderr)
    for image in report.images:
        for change in image.conversions:
            stderr.print(f"note: {change}", markup=False, highlight=False, soft_wrap=True)
    stdout.print(render.loss_table(report, wide=stdout.width >= 110))


@app.command()
def models(
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """List the models that ship with stegcli, with their validation figures."""
    rows = shipped_model_summaries()
    if as_json:
        print(json.dumps({"models": rows}, indent=2))
    elif rows:
        stdout.print(render.models_table(rows))
    else:
        stderr.print("no models ship with this version yet")


@app.command()
def train(
    data: Annotated[Path, typer.Option(help="Folder of training photos, searched recursively.")],
    val: Annotated[
        Optional[Path], typer.Option(help="Folder of validation photos, used at full size.")
    ] = None,
    epochs: Annotated[int, typer.Option(help="Epochs to train (one crop per photo each).")] = 10,
    arch: Annotated[str, typer.Option(help="Encoder: dense, residual or basic.")] = "dense",
    depth: Annotated[int, typer.Option(help="Bits hidden per pixel.")] = 1,
    hidden: Annotated[int, typer.Option(help="Width of the hidden layers.")] = 32,
    crop: Annotated[int, typer.Option(help="Side of the square training crops, in pixels.")] = 64,
    batch_size: Annotated[int, typer.Option(help="Crops per step.")] = 16,
    lr: Annotated[float, typer.Option(help="Learning rate of encoder and decoder.")] = 1e-3,
    critic_lr: Annotated[float, typer.Option(help="Learning rate of the critic.")] = 1e-4,
    critic_steps: Annotated[int, typer.Option(help="Critic updates per step.")] = 1,
    gp_weight: GpWeight = LossWeights.gradient_penalty,
    mse_weight: MseWeight = LossWeights.mse,
    adversarial_weight: AdversarialWeight = LossWeights.adversarial,
    out: Annotated[Path, typer.Option(help="Exported model file.")] = Path("model.safetensors"),
    checkpoint: Annotated[
        Optional[Path], typer.Option(help="Checkpoint file (default: beside --out).")
    ] = None,
    resume: Annotated[Optional[Path], typer.Option(help="Continue from this checkpoint.")] = None,
    init: Annotated[
        Optional[Path], typer.Option(help="Start from these exported weights (fine-tune).")
    ] = None,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    workers: Annotated[int, typer.Option(help="Data loading processes.")] = 0,
    seed: Annotated[int, typer.Option(help="Seeds weights, crops and bits.")] = 0,
    val_crop: Annotated[
        int, typer.Option(help="Validate on centre crops of at most this side.")
    ] = 512,
) -> None:
    """Train a model on a folder of photos, adversarially with a WGAN-GP critic."""
    from stegcli.training import TrainConfig, Trainer, TrainingInterrupted

    config = TrainConfig(
        data=data,
        val=val,
        epochs=epochs,
        settings=ModelSettings(architecture=arch, depth=depth, hidden=hidden),
        crop=crop,
        batch_size=batch_size,
        lr=lr,
        critic_lr=critic_lr,
        critic_steps=critic_steps,
        weights=LossWeights(
            mse=mse_weight, adversarial=adversarial_weight, gradient_penalty=gp_weight
        ),
        out=out,
        checkpoint=checkpoint,
        resume=resume,
        init=init,
        device=device,
        workers=workers,
        seed=seed,
        val_crop=val_crop,
    )
    trainer = Trainer(config, render.RichTrainingReporter(stderr))
    try:
        trainer.train()
    except TrainingInterrupted as exc:
        stderr.print(f"{exc}; continue with --resume {exc.path}", markup=False, highlight=False)
        raise typer.Exit(130) from None
    if trainer.dist.main:
        stderr.print(f"model written to {config.out}", markup=False, highlight=False)


# ----- hiding and revealing files

PASSPHRASE_ENV = "STEGCLI_PASSPHRASE"
ModelOption = Annotated[
    Optional[str],
    typer.Option(help="Shipped model name or path to a .safetensors model (default: default)."),
]
PassphraseOption = Annotated[
    Optional[str],
    typer.Option(
        help=f"Encrypt with this passphrase (or set {PASSPHRASE_ENV}).", show_default=False
    ),
]
AskOption = Annotated[
    bool, typer.Option("--ask-passphrase", help="Ask for the passphrase without echoing it.")
]
ForceOption = Annotated[bool, typer.Option("--force", help="Replace an existing output file.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]


def _passphrase(given: Optional[str], ask: bool, confirm: bool) -> Optional[str]:
    """The passphrase from --passphrase, a hidden prompt, or the environment; None if none."""
    if given is None and ask:
        given = typer.prompt("passphrase", hide_input=True, confirmation_prompt=confirm, err=True)
    if given is None:
        given = os.environ.get(PASSPHRASE_ENV)
    return given or None


def _hiding_model(spec: Optional[str]):
    model = resolve_model(spec)
    if not model.trained:
        raise ModelError(
            "no trained model ships with this installation; give --model with a trained "
            ".safetensors file (stegcli train makes one)"
        )
    return model


def _shipped_for_decoding() -> list:
    names = sorted(shipped_models(), key=lambda name: name != DEFAULT_MODEL_NAME)
    if not names:
        return [_hiding_model(None)]
    return [resolve_model(name) for name in names]


def _note(text: str) -> None:
    stderr.print(text, markup=False, highlight=False, soft_wrap=True)


@app.command()
def encode(
    cover: Annotated[Path, typer.Argument(help="The cover photo.", show_default=False)],
    secret: Annotated[
        str, typer.Argument(help="The file to hide, or - for standard input.", show_default=False)
    ],
    output: Annotated[
        Optional[Path],
        typer.Option("-o", "--output", help="Stego PNG to write (default: <cover>.stego.png)."),
    ] = None,
    model: ModelOption = None,
    passphrase: PassphraseOption = None,
    ask_passphrase: AskOption = False,
    force: ForceOption = False,
    as_json: JsonOption = False,
) -> None:
    """Hide a file in a photo, writing a PNG that decodes to exactly that file."""
    from stegcli.hiding import check_output_name, hide

    keep_freed_memory()
    output = output or Path(f"{cover.stem}.stego.png")
    check_output_name(output)
    refuse_existing(output, force)
    content, name = _read_secret(secret)
    key = _passphrase(passphrase, ask_passphrase, confirm=True)
    chosen = _hiding_model(model)
    with render.StageProgress(stderr) as progress:
        result = hide(cover, content, name, output, chosen, key, force, progress)
    if as_json:
        fields = ("payload_bytes", "capacity_bytes", "raw_bit_errors", "refine_steps")
        figures = {name: getattr(result, name) for name in fields}
        print(
            json.dumps(
                {
                    "output": str(result.output),
                    **figures,
                    "psnr": round(result.psnr, 3),
                    "ssim": round(result.ssim, 5),
                    "seconds": round(result.seconds, 3),
                    "encrypted": key is not None,
                    "model": chosen.source,
                },
                indent=2,
            )
        )
        return
    for text in result.notes:
        _note(f"note: {text}")
    rows = [
        ("hidden", render.byte_size(result.payload_bytes)),
        ("capacity", render.byte_size(result.capacity_bytes)),
        ("encrypted", "yes (AES-256-GCM)" if key else "no"),
        ("PSNR", f"{result.psnr:.2f} dB"),
        ("SSIM", f"{result.ssim:.4f}"),
        ("raw bit errors", f"{result.raw_bit_errors:,} (within what decode corrects)"),
        ("refinement", f"{result.refine_steps} round{'' if result.refine_steps == 1 else 's'}"),
        ("model", chosen.source),
        ("time", f"{result.seconds:.1f} s"),
    ]
    stderr.print(render.summary_table(f"wrote {result.output}", rows))


def _read_secret(secret: str) -> tuple[bytes, str]:
    """The bytes to hide and the name to store with them."""
    if secret == "-":
        return sys.stdin.buffer.read(), ""
    path = Path(secret)
    if not path.is_file():
        raise InputError(f"secret file {secret!r} does not exist or is not a file")
    try:
        return path.read_bytes(), path.name
    except OSError as exc:
        raise InputError(f"could not read {secret!r}: {exc.strerror or exc}") from None


@app.command()
def decode(
    stego: Annotated[Path, typer.Argument(help="The stego image.", show_default=False)],
    output: Annotated[
        Optional[str],
        typer.Option(
            "-o",
            "--output",
            help="Where to write the file, or - for standard output (default: its stored name).",
        ),
    ] = None,
    model: ModelOption = None,
    passphrase: PassphraseOption = None,
    ask_passphrase: AskOption = False,
    force: ForceOption = False,
    as_json: JsonOption = False,
) -> None:
    """Get a hidden file back, exactly, from a stego image."""
    import time

    from stegcli.files import atomic_write
    from stegcli.hiding import reveal

    keep_freed_memory()
    if output not in (None, "-"):
        refuse_existing(output, force)
    key = _passphrase(passphrase, ask_passphrase, confirm=False)
    # Without --model, every shipped model is tried, the default first: an image decodes
    # without its maker having to remember which model wrote it.
    candidates = [_hiding_model(model)] if model else _shipped_for_decoding()
    started = time.perf_counter()
    with render.StageProgress(stderr) as progress:
        name, content, figures = reveal(stego, candidates, key, progress)
    chosen = figures["model"]
    if output == "-":
        sys.stdout.buffer.write(content)
        sys.stdout.buffer.flush()
        target = "-"
    else:
        target = output or name or f"{stego.stem}.bin"
        try:
            atomic_write(Path(target), lambda path: path.write_bytes(content), overwrite=force)
        except FileExistsError:
            raise exists_error(target) from None
        except OSError as exc:
            raise InputError(f"could not write {target!r}: {exc.strerror or exc}") from None
    seconds = time.perf_counter() - started
    summary = {"output": target, "payload_bytes": len(content), "seconds": round(seconds, 3)}
    if as_json and output != "-":
        print(json.dumps({**summary, "stored_name": name, "model": chosen.source}, indent=2))
        return
    if as_json:  # stdout carries the file itself, so the JSON goes to stderr
        stderr.print_json(json.dumps(summary))
        return
    rows = [
        ("recovered", render.byte_size(len(content))),
        ("stored name", name or "(none)"),
        ("bytes corrected", f"{figures['corrected_bytes']:,}"),
        ("encrypted", "yes" if figures["header"].encrypted else "no"),
        ("time", f"{seconds:.1f} s"),
    ]
    stderr.print(render.summary_table(f"wrote {target}", rows))


@app.command()
def capacity(
    cover: Annotated[Path, typer.Argument(help="The cover photo.", show_default=False)],
    model: ModelOption = None,
    as_json: JsonOption = False,
) -> None:
    """How many bytes a photo can hold, whatever the file's name and with or without passphrase."""
    from stegcli.hiding import cover_capacity

    chosen = _hiding_model(model)
    space = cover_capacity(cover, chosen)
    if as_json:
        fields = {
            "capacity_bytes": space.capacity_bytes,
            "model": chosen.source,
            "width": space.width,
            "height": space.height,
            "depth": space.depth,
            "code_rate": space.strength.rate,
            "trial_bit_error_rate": round(space.strength.bit_error_rate, 6),
            "bits_per_pixel": round(space.capacity_bytes * 8 / (space.width * space.height), 4),
        }
        print(json.dumps(fields, indent=2))
        return
    stdout.print(
        render.summary_table(
            f"{cover}",
            [
                ("capacity", render.byte_size(space.capacity_bytes)),
                ("size", f"{space.width}×{space.height} pixels"),
                (
                    "net bits per pixel",
                    f"{space.capacity_bytes * 8 / (space.width * space.height):.3f}",
                ),
                ("model", f"{chosen.source}, {space.depth} bits per pixel"),
                (
                    "error correction",
                    f"LDPC, rate {space.strength.rate} at full capacity",
                ),
                ("trial bit errors", f"{space.strength.bit_error_rate:.2%}"),
            ],
        )
    )


@app.command()
def evaluate(
    inputs: Annotated[
        list[Path],
        typer.Argument(
            metavar="IMAGE_OR_FOLDER",
            help="Photos, or folders searched recursively for photos.",
            show_default=False,
        ),
    ],
    model: ModelOption = None,
    fill: Annotated[
        Optional[float],
        typer.Option(
            help="Hide this share of each photo's capacity, in (0, 1] (default: 1).",
            show_default=False,
        ),
    ] = None,
    payload_bytes: Annotated[
        Optional[int],
        typer.Option(help="Hide exactly this many bytes in every photo.", show_default=False),
    ] = None,
    trials: Annotated[int, typer.Option(help="Round trips per photo, each with fresh bytes.")] = 1,
    passphrase: Annotated[
        Optional[str], typer.Option(help="Encrypt the payloads with this passphrase.")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seeds the payload bytes.")] = 0,
    as_json: JsonOption = False,
    plot: Annotated[
        Optional[Path],
        typer.Option(
            help="Also draw net bits per pixel against PSNR at 25, 50, 75 and 100% of capacity "
            "to this PNG: one curve for --model, or one per shipped model without it.",
            show_default=False,
        ),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Replace an existing --plot file.")
    ] = False,
) -> None:
    """Hide random payloads in photos and read them back: recovery, bits per pixel, quality.

    Each trial runs encode's and decode's code on a PNG in a temporary folder and reports
    exact recovery, raw bit accuracy, net bits per pixel, PSNR, SSIM, refinement and time.
    """
    from stegcli import evaluation

    keep_freed_memory()
    evaluation.check_amount(fill, payload_bytes, trials)
    passphrase = passphrase or None
    if plot is not None:
        render.require_matplotlib()
        if plot.suffix.lower() != ".png":
            raise InputError(f"--plot writes a PNG; name it *.png, not {str(plot)!r}")
        refuse_existing(plot, force)
    photos = evaluation.collect_photos(inputs)
    chosen = _hiding_model(model)
    if plot is None:
        plotted = []
    elif model:
        plotted = [(model if model in shipped_models() else Path(model).stem, chosen)]
    else:
        names = sorted(shipped_models(), key=lambda name: name != DEFAULT_MODEL_NAME)
        plotted = [(name, resolve_model(name)) for name in names] or [("default", chosen)]
    fills = evaluation.PLOT_FILLS
    total = len(photos) * trials * (1 + len(fills) * len(plotted))
    with render.CountProgress(stderr, total) as progress:
        report = evaluation.evaluate(
            photos, chosen, fill=fill, size=payload_bytes, trials=trials, seed=seed,
            passphrase=passphrase, progress=progress,
        )  # fmt: skip
        curves = [
            evaluation.quality_curve(
                photos,
                plotted_model,
                fills,
                trials=trials,
                seed=seed,
                passphrase=passphrase,
                progress=progress,
                name=name,
            )
            for name, plotted_model in plotted
        ]
    if plot is not None:
        try:
            render.quality_plot(curves, len(photos), plot, overwrite=force)
        except FileExistsError:
            raise exists_error(plot) from None
        except OSError as exc:
            raise InputError(f"could not write {str(plot)!r}: {exc.strerror or exc}") from None

    if as_json:
        result = report.to_dict()
        if plot is not None:
            result["plot"] = {"output": str(plot), "curves": curves}
        print(json.dumps(render.finite(result), indent=2))
        return
    stdout.print(render.evaluation_table(report, wide=stdout.width >= 100))
    failures = render.evaluation_failures(report)
    if failures is not None:
        stdout.print(failures)
    stdout.print(render.evaluation_summary(report.summary()))
    if plot is not None:
        _note(f"plot written to {plot}")


def main() -> None:
    """Entry point of the ``stegcli`` console script."""
    app()
