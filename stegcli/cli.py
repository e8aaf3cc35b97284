"""The ``stegcli`` command line: parse arguments, call the core, render the result.

Results go to stdout (a Rich table, or one JSON object with ``--json``); notes and errors go
to stderr. A :class:`StegcliError` from the core becomes one ``error: …`` line and exit
code 1. Tracebacks of unexpected errors never show local variables, which may hold secrets.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from typer.core import TyperGroup

from stegcli import __version__, render
from stegcli.errors import StegcliError
from stegcli.losscheck import check_losses
from stegcli.losses import LossWeights
from stegcli.models import resolve_model, shipped_model_summaries
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


def main() -> None:
    """Entry point of the ``stegcli`` console script."""
    app()
