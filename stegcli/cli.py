"""The ``stegcli`` command line: parse arguments, call the core, render the result.

Results go to stdout (a Rich table, or one JSON object with ``--json``); notes and errors go
to stderr. A :class:`StegcliError` from the core becomes one ``error: …`` line and exit
code 1. Tracebacks of unexpected errors never show local variables, which may hold secrets.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich import box
from rich.console import Console
from rich.table import Table
from typer.core import TyperGroup

from stegcli import __version__
from stegcli.errors import InputError, StegcliError
from stegcli.losscheck import TERMS, LossCheckReport, check_losses
from stegcli.losses import LossWeights
from stegcli.models import resolve_model
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


# What each figure of loss-check measures, in a few words.
_TERM_LABELS = {
    "decoder_loss": ("decoder loss", "bit cross-entropy of the payload"),
    "encoder_mse": ("encoder MSE", "change of the cover ([-1, 1] scale)"),
    "adversarial_loss": ("adversarial loss", "−critic score of stego"),
    "gradient_penalty": ("gradient penalty", "WGAN-GP, mean (‖∇‖ − 1)²"),
    "critic_loss": ("critic loss", "stego − cover score + λ·GP"),
    "total": ("total", "what encoder and decoder minimise"),
    "bit_accuracy": ("bit accuracy", "bits read back right, raw"),
    "psnr": ("PSNR (dB)", "stego versus cover"),
}


def _term_weights(weights: LossWeights) -> dict[str, str]:
    return {
        "decoder_loss": f"{weights.decoder:g}",
        "encoder_mse": f"{weights.mse:g}",
        "adversarial_loss": f"{weights.adversarial:g}",
        "gradient_penalty": f"λ={weights.gradient_penalty:g}",
    }


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
        typer.Option(help="Bits per pixel of a freshly initialised model (default 1)."),
    ] = None,
    mse_weight: Annotated[float, typer.Option(help="Weight of the encoder MSE.")] = (
        LossWeights.mse
    ),
    adversarial_weight: Annotated[
        float, typer.Option(help="Weight of the adversarial loss.")
    ] = LossWeights.adversarial,
    gp_weight: Annotated[
        float, typer.Option(help="λ, the weight of the gradient penalty in the critic loss.")
    ] = LossWeights.gradient_penalty,
    seed: Annotated[
        int, typer.Option(help="Seeds random bits, a fresh model and the penalty's mixing.")
    ] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Print every loss term and the gradient penalty for the given photos."""
    fresh_settings = ModelSettings(depth=depth if depth is not None else 1)
    chosen = resolve_model(model, fresh_settings, seed)
    if depth is not None and chosen.trained and depth != chosen.settings.depth:
        raise InputError(
            f"--depth {depth} only applies to a fresh model; {chosen.source} hides "
            f"{chosen.settings.depth} bits per pixel"
        )
    weights = LossWeights(
        mse=mse_weight, adversarial=adversarial_weight, gradient_penalty=gp_weight
    )
    report = check_losses(chosen, covers, stego, secret, weights, seed)

    if as_json:
        print(json.dumps(_report_json(report), indent=2))
        return
    _print_model_note(report)
    for image in report.images:
        for change in image.conversions:
            stderr.print(f"note: {change}", markup=False, highlight=False, soft_wrap=True)
    stdout.print(_report_table(report))


def _print_model_note(report: LossCheckReport) -> None:
    settings = report.model.settings
    described = f"{settings.architecture}, depth {settings.depth}, hidden {settings.hidden}"
    if report.model.trained:
        stderr.print(
            f"model: {report.model.source} ({described})",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )
    else:
        stderr.print(
            f"model: freshly initialised ({described}, seed {report.seed}); no trained model "
            "ships yet, so these are the losses at the start of training",
            highlight=False,
            soft_wrap=True,
        )
    stderr.print(f"payload: {report.payload}", highlight=False, markup=False, soft_wrap=True)


def _format(term: str, value: float) -> str:
    if term == "psnr":
        return "∞" if math.isinf(value) else f"{value:.2f}"
    if term == "bit_accuracy":
        return f"{value:.4f}"
    return f"{value:.5g}"


def _report_table(report: LossCheckReport) -> Table:
    table = Table(
        title="Loss terms (stego images rounded to 8-bit pixels)",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
    )
    several = len(report.images) > 1
    table.add_column("term", no_wrap=True)
    table.add_column("weight", justify="right", no_wrap=True)
    for image in report.images:
        name = Path(image.cover).name
        if several and len(name) > 10:
            name = name[:9] + "…"
        table.add_column(name, justify="right", no_wrap=True)
    if several:
        table.add_column("mean", justify="right", style="bold", no_wrap=True)
    # The descriptions fit beside one image's column, or in a wide terminal.
    described = not several or stdout.width >= 110
    if described:
        table.add_column("what it measures", style="dim")

    weights = _term_weights(report.weights)
    mean = report.mean()
    for term in TERMS:
        label, meaning = _TERM_LABELS[term]
        values = [_format(term, image.figures[term]) for image in report.images]
        if several:
            values.append(_format(term, mean[term]))
        style = "bold" if term == "total" else None
        table.add_row(
            label,
            weights.get(term, ""),
            *values,
            *([meaning] if described else []),
            style=style,
            end_section=term in ("critic_loss", "total"),
        )
    return table


def _report_json(report: LossCheckReport) -> dict[str, object]:
    """Means of every figure at the top level, then the weights, the model and each image."""

    def finite(value: float) -> float | None:
        return None if math.isinf(value) or math.isnan(value) else value

    return {
        **{term: finite(value) for term, value in report.mean().items()},
        "weights": report.weights.to_dict(),
        "model": {
            **report.model.settings.to_dict(),
            "source": report.model.source,
            "trained": report.model.trained,
        },
        "seed": report.seed,
        "payload": report.payload,
        "images": [
            {
                "cover": image.cover,
                "stego": image.stego,
                "width": image.width,
                "height": image.height,
                "conversions": image.conversions,
                **{term: finite(value) for term, value in image.figures.items()},
            }
            for image in report.images
        ],
    }


@app.command()
def models(
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """List the models that ship with stegcli, with their validation figures."""
    from stegcli.models import DEFAULT_MODEL_NAME, load_model, shipped_models

    rows = []
    for name, path in shipped_models().items():
        model = load_model(path, f"shipped model {name!r}")
        validation = model.info.get("validation", {})
        rows.append(
            {
                "name": name,
                "default": name == DEFAULT_MODEL_NAME,
                **model.settings.to_dict(),
                "size_bytes": path.stat().st_size,
                "validation": validation,
            }
        )
    if as_json:
        print(json.dumps({"models": rows}, indent=2))
        return
    if not rows:
        stderr.print("no models ship with this version yet")
        return
    table = Table(
        title="Shipped models (validation: 8-bit rounded stego images)",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
    )
    for column in ("name", "architecture", "depth", "bit accuracy", "PSNR", "SSIM", "RS bpp"):
        table.add_column(column, justify="left" if column in ("name", "architecture") else "right")
    for row in rows:
        v = row["validation"]
        table.add_row(
            row["name"] + (" (default)" if row["default"] else ""),
            row["architecture"],
            str(row["depth"]),
            _figure(v.get("val_accuracy"), ".4f"),
            _figure(v.get("val_psnr"), ".2f"),
            _figure(v.get("val_ssim"), ".4f"),
            _figure(v.get("val_rs_bpp"), ".2f"),
        )
    stdout.print(table)


def _figure(value: object, spec: str) -> str:
    return format(value, spec) if isinstance(value, (int, float)) else "–"


class _RichTrainingReporter:
    """Renders training progress: a live bar with the loss terms, a table per epoch."""

    def __init__(self) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        self.progress = Progress(
            TextColumn("epoch {task.fields[epoch]}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.fields[figures]}"),
            console=stderr,
            transient=True,
        )
        self.task = None

    def note(self, text: str) -> None:
        stderr.print(text, markup=False, highlight=False)

    def epoch_started(self, epoch: int, epochs: int, steps: int) -> None:
        self.progress.start()
        self.task = self.progress.add_task(
            "train", total=steps, epoch=f"{epoch}/{epochs}", figures=""
        )
        self.steps, self.done = steps, 0

    def step_done(self, figures: dict[str, float], crops_per_second: float) -> None:
        shown = " ".join(f"{k} {v:.4g}" for k, v in figures.items())
        shown = f"{shown} | {crops_per_second:.1f} crops/s"
        self.progress.update(self.task, advance=1, figures=shown)
        self.done += 1
        # A log file gets no live bar: write a plain line about ten times an epoch instead.
        if not stderr.is_terminal and self.done % max(1, self.steps // 10) == 0:
            stderr.print(
                f"step {self.done}/{self.steps} {shown}",
                markup=False,
                highlight=False,
                soft_wrap=True,
            )

    def epoch_done(self, record: dict) -> None:
        self.progress.remove_task(self.task)
        self.progress.stop()
        table = Table(title=f"epoch {record['epoch']}", box=box.SIMPLE_HEAD, pad_edge=False)
        for key in record:
            table.add_column(key.removeprefix("val_"), justify="right")
        table.add_row(*(f"{v:.4g}" if isinstance(v, float) else str(v) for v in record.values()))
        stderr.print(table)


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
    gp_weight: Annotated[float, typer.Option(help="λ of the gradient penalty.")] = (
        LossWeights.gradient_penalty
    ),
    mse_weight: Annotated[
        float, typer.Option(help="Weight of the encoder MSE.")
    ] = LossWeights.mse,
    adversarial_weight: Annotated[
        float, typer.Option(help="Weight of the adversarial loss.")
    ] = LossWeights.adversarial,
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
    trainer = Trainer(config, _RichTrainingReporter())
    try:
        trainer.train()
    except TrainingInterrupted as exc:
        stderr.print(f"{exc}; continue with --resume {exc.path}", markup=False, highlight=False)
        raise typer.Exit(130) from None
    if trainer.dist.main:
        stderr.print(f"model written to {config.out}", markup=False, highlight=False)


def main() -> None:
    """Entry point of the ``stegcli`` console script."""
    app()
