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


class _TransientBar:
    """A progress bar on stderr that disappears when done; shown only on a terminal, so
    logs stay clean. Use as a context manager."""

    def __init__(self, console: Console, *extra_columns) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        self.enabled = console.is_terminal
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            *extra_columns,
            console=console,
            transient=True,
        )

    def __enter__(self):
        if self.enabled:
            self.progress.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.enabled:
            self.progress.stop()


class StageProgress(_TransientBar):
    """A transient progress bar on stderr for the stages of encode and decode.

    Call it with (stage, done, total) as the core reports them.
    """

    def __init__(self, console: Console) -> None:
        super().__init__(console)
        self.tasks: dict[str, int] = {}

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


# ----- evaluate


class CountProgress(_TransientBar):
    """A transient progress bar on stderr over a known number of trials.

    Call it with (what runs now, trials finished since the last call), as
    :func:`stegcli.evaluation.evaluate` reports them.
    """

    def __init__(self, console: Console, total: int) -> None:
        from rich.progress import TimeRemainingColumn

        super().__init__(console, TimeRemainingColumn())
        self.task = self.progress.add_task("evaluating", total=total)

    def __call__(self, label: str, finished: int) -> None:
        if self.enabled:
            self.progress.update(self.task, advance=finished, description=label)


def finite(value: object) -> object:
    """``value`` with every infinite or NaN float inside it replaced by None, for JSON."""
    if isinstance(value, float) and (math.isinf(value) or math.isnan(value)):
        return None
    if isinstance(value, dict):
        return {key: finite(item) for key, item in value.items()}
    if isinstance(value, list):
        return [finite(item) for item in value]
    return value


def _cell(value: object, spec: str) -> str:
    return "–" if value is None else format(value, spec)


def evaluation_table(report, wide: bool) -> Table:
    """One row per photo: payload, exact trials and the medians of the exact trials.

    The share of capacity hidden is in the title with --fill, in a column with an exact size.
    wide: room for the encode and decode seconds too (the summary always has them).
    """
    amount = "" if report.fill is None else f", {report.fill:.0%} of capacity"
    trials = "one trial a photo"
    if report.trials > 1:
        trials = f"medians of the exact ones of {report.trials} trials a photo"
    table = Table(
        title=f"{report.model}{amount}: {trials}",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        padding=(0, 1, 0, 0),
        title_justify="left",
    )
    table.add_column("photo", overflow="fold", min_width=10)
    columns = ["bytes", "fill", "exact", "bit acc", "net bpp", "PSNR", "SSIM", "refine",
               "enc s", "dec s"]  # fmt: skip
    if report.fill is not None:
        columns.remove("fill")
    if not wide:
        columns = columns[:-2]
    for column in columns:
        table.add_column(column, justify="right", no_wrap=True)
    for photo in report.photos:
        cells = {"bytes": _cell(photo.payload_bytes, ",")}
        exact = sum(t.exact for t in photo.trials)
        cells["exact"] = f"{exact}/{report.trials}"
        if photo.attempted:
            m = photo.medians()
            cells.update(
                {
                    "fill": _cell(photo.payload_bytes / photo.capacity_bytes, ".0%")
                    if photo.capacity_bytes else "–",
                    "bit acc": _cell(m["bit_accuracy"], ".4f"),
                    "net bpp": _cell(photo.net_bpp, ".3f"),
                    "PSNR": _cell(m["psnr"], ".2f"),
                    "SSIM": _cell(m["ssim"], ".4f"),
                    "refine": _cell(m["refine_steps"], "g"),
                    "enc s": _cell(m["encode_seconds"], ".2f"),
                    "dec s": _cell(m["decode_seconds"], ".2f"),
                }
            )  # fmt: skip
        table.add_row(
            Path(photo.photo).name,
            *(cells.get(column, "–") for column in columns),
            style=None if exact == report.trials else "red",
        )
    return table


_SUMMARY_LABELS = {
    "net_bpp": ("net bits per pixel", ".3f"),
    "bit_accuracy": ("raw bit accuracy", ".4f"),
    "psnr": ("PSNR (dB)", ".2f"),
    "ssim": ("SSIM", ".4f"),
    "refine_steps": ("refinement rounds", "g"),
    "encode_seconds": ("encode seconds", ".2f"),
    "decode_seconds": ("decode seconds", ".2f"),
}


def evaluation_summary(summary: dict) -> Table:
    """Median and worst of each figure over the exact trials, under the exact share."""
    share = summary["exact_share"]
    title = (
        f"{summary['exact']} of {summary['trials']} trials recovered exactly ({share:.0%})"
        if share is not None
        else "no trials"
    )
    table = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False, title_justify="left")
    for column in ("over the exact trials", "median", "worst"):
        table.add_column(column, justify="left" if column.startswith("over") else "right")
    for name, (label, spec) in _SUMMARY_LABELS.items():
        figure = summary[name]
        table.add_row(label, _cell(figure["median"], spec), _cell(figure["worst"], spec))
    return table


def evaluation_failures(report) -> Table | None:
    """The photos not attempted and the trials not recovered, with the reason; None if none."""
    rows = []
    for photo in report.photos:
        name = Path(photo.photo).name
        if not photo.attempted:
            rows.append((name, "–", photo.error or ""))
        rows += [(name, str(t.trial), t.error or "") for t in photo.trials if not t.exact]
    if not rows:
        return None
    table = Table(title="not recovered", box=box.SIMPLE_HEAD, pad_edge=False, title_justify="left")
    table.add_column("photo", no_wrap=True)
    table.add_column("trial", justify="right")
    table.add_column("reason", overflow="fold")
    for row in rows:
        table.add_row(*row)
    return table


PLOT_HINT = "pip install 'stegcli[plot]'"


def require_matplotlib() -> None:
    """Raise an InputError saying how to install matplotlib when it is missing."""
    from stegcli.errors import InputError

    try:
        import matplotlib  # noqa: F401
        from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: F401
    except ImportError:
        raise InputError(f"--plot needs matplotlib, which is not installed: {PLOT_HINT}") from None


def quality_plot(curves: list[dict], photos: int, path: Path, overwrite: bool) -> None:
    """Net bits per pixel (x) against PSNR (y), one curve per model, written atomically as PNG.

    curves: from :func:`stegcli.evaluation.quality_curve`. A hollow marker is a payload
    size at which some trial was not recovered exactly.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from stegcli.files import atomic_write

    figure = Figure(figsize=(6.4, 4.8), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    for curve in curves:
        points = [p for p in curve["points"] if p["net_bpp"] is not None and p["psnr"] is not None]
        if not points:
            continue
        xs, ys = [p["net_bpp"] for p in points], [p["psnr"] for p in points]
        (line,) = axes.plot(xs, ys, marker="o", label=f"{curve['name']} (depth {curve['depth']})")
        for p in points:
            if p["exact_share"] < 1:
                axes.plot(p["net_bpp"], p["psnr"], marker="o", markerfacecolor="white",
                          color=line.get_color())  # fmt: skip
            axes.annotate(f"{p['fill']:.0%}", (p["net_bpp"], p["psnr"]), fontsize=8,
                          textcoords="offset points", xytext=(4, 4))  # fmt: skip
    axes.set_xlabel("net bits per pixel (payload bytes × 8 ÷ pixels)")
    axes.set_ylabel("PSNR (dB), median")
    axes.set_title(
        f"Payload against quality, median over {photos} photo{'s' * (photos != 1)}"
        " (labels: share of capacity)",
        fontsize=10,
    )
    axes.margins(x=0.1, y=0.15)
    axes.grid(True, alpha=0.3)
    if axes.get_legend_handles_labels()[0]:
        axes.legend()
    figure.tight_layout()
    atomic_write(path, lambda temporary: figure.savefig(temporary, format="png"), overwrite)
