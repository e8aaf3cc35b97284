"""Rich tables, JSON objects and progress displays for the command line.

Everything here only formats results the core computed; nothing here computes them.
"""

from __future__ import annotations

import math
from pathlib import Path

from rich import box
from rich.console import Console
from rich.table import Table

from stegcli.losscheck import TERMS, LossCheckReport
from stegcli.losses import LossWeights

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


def print_model_note(report: LossCheckReport, console: Console) -> None:
    """Which model and payload produced the figures (for stderr)."""
    settings = report.model.settings
    described = f"{settings.architecture}, depth {settings.depth}, hidden {settings.hidden}"
    if report.model.trained:
        console.print(
            f"model: {report.model.source} ({described})",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )
    else:
        console.print(
            f"model: freshly initialised ({described}, seed {report.seed}); no trained model "
            "ships yet, so these are the losses at the start of training",
            highlight=False,
            soft_wrap=True,
        )
    console.print(f"payload: {report.payload}", highlight=False, markup=False, soft_wrap=True)


def _format(term: str, value: float) -> str:
    if term == "psnr":
        return "∞" if math.isinf(value) else f"{value:.2f}"
    if term == "bit_accuracy":
        return f"{value:.4f}"
    return f"{value:.5g}"


def loss_table(report: LossCheckReport, wide: bool) -> Table:
    """One row per term; one column per image, and one for the mean when there are several.

    wide: room for a column that says what each term measures, beside several images.
    """
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
    described = not several or wide
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


def loss_json(report: LossCheckReport) -> dict[str, object]:
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


def models_table(rows: list[dict]) -> Table:
    """The shipped models with their validation figures (rows from shipped_model_summaries)."""
    table = Table(
        title="Shipped models (validation: 8-bit rounded stego images)",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
    )
    for column in ("name", "architecture", "depth", "bit accuracy", "PSNR", "SSIM", "RS bpp"):
        text = column in ("name", "architecture")
        table.add_column(column, justify="left" if text else "right", no_wrap=text)
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
    return table


def _figure(value: object, spec: str) -> str:
    return format(value, spec) if isinstance(value, (int, float)) else "–"


class RichTrainingReporter:
    """Renders training progress: a live bar with the loss terms, a table per epoch."""

    def __init__(self, console: Console) -> None:
        self.console = console
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
            console=console,
            transient=True,
        )
        self.task = None

    def note(self, text: str) -> None:
        self.console.print(text, markup=False, highlight=False)

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
        if not self.console.is_terminal and self.done % max(1, self.steps // 10) == 0:
            self.console.print(
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
        self.console.print(table)


class StageProgress:
    """A transient progress bar on stderr for the stages of encode and decode.

    Use as a context manager; call it with (stage, done, total) as the core reports them.
    Nothing is shown when stderr is not a terminal, so logs stay clean.
    """

    def __init__(self, console: Console) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        self.enabled = console.is_terminal
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            console=console,
            transient=True,
        )
        self.tasks: dict[str, int] = {}

    def __enter__(self) -> StageProgress:
        if self.enabled:
            self.progress.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.enabled:
            self.progress.stop()

    def __call__(self, stage: str, done: int, total: int) -> None:
        if not self.enabled:
            return
        if stage not in self.tasks:
            self.tasks[stage] = self.progress.add_task(stage, total=total)
        self.progress.update(self.tasks[stage], completed=done, total=total)


def summary_table(title: str, rows: list[tuple[str, str]]) -> Table:
    """A two-column table of figures, for the summaries of encode, decode and capacity."""
    table = Table(title=title, box=box.SIMPLE, show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column(justify="right")
    for label, value in rows:
        table.add_row(label, value)
    return table


def byte_size(count: int) -> str:
    """A byte count for people: 1,234 bytes (1.2 KiB)."""
    if count < 1024:
        return f"{count:,} bytes"
    for unit, scale in (("MiB", 1024**2), ("KiB", 1024)):
        if count >= scale:
            return f"{count:,} bytes ({count / scale:.1f} {unit})"
    return f"{count:,} bytes"
