"""Training: it learns, it checkpoints and resumes exactly, it exports, it fails clearly."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import crop_sample
from typer.testing import CliRunner

from stegcli.cli import app
from stegcli.errors import InputError
from stegcli.models import load_model
from stegcli.networks import ModelSettings
from stegcli.training import TrainConfig, Trainer, TrainingInterrupted

TINY = ModelSettings(depth=1, hidden=8)


@pytest.fixture
def photo_folder(tmp_path: Path) -> Path:
    """Six small crops of the sample photos, in two subfolders (searched recursively)."""
    folder = tmp_path / "photos"
    (folder / "a").mkdir(parents=True)
    (folder / "b").mkdir()
    for index in range(3):
        left = 40 * index
        crop_sample(
            "skimage_chelsea.png", (left, 60, left + 36, 88), folder / "a" / f"{index}.png"
        )
        crop_sample(
            "skimage_coffee.png", (left, 90, left + 30, 130), folder / "b" / f"{index}.png"
        )
    return folder


def tiny_config(photos: Path, out: Path, **changes) -> TrainConfig:
    settings = dict(
        data=photos,
        epochs=2,
        settings=TINY,
        crop=16,
        batch_size=2,
        out=out,
        device="cpu",
        val_crop=24,
        previews=1,
    )
    settings.update(changes)
    return TrainConfig(**settings)


def same_tensors(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_a_few_steps_on_tiny_crops_lower_the_loss(photo_folder, tmp_path):
    trainer = Trainer(tiny_config(photo_folder, tmp_path / "m.safetensors", lr=3e-3))
    covers = torch.stack([trainer_crop for trainer_crop in _crops(trainer, 4)])

    totals = [trainer.train_step(covers)["total"] for _ in range(40)]

    assert sum(totals[-5:]) / 5 < 0.7 * sum(totals[:5]) / 5


def _crops(trainer: Trainer, count: int) -> list[torch.Tensor]:
    from stegcli.data import CropDataset

    dataset = CropDataset(trainer.paths, trainer.config.crop, seed=0)
    return [dataset[(0, index)] for index in range(count)]


def test_training_writes_metrics_previews_checkpoint_and_export(photo_folder, tmp_path):
    config = tiny_config(photo_folder, tmp_path / "run" / "m.safetensors", val=photo_folder)
    model = Trainer(config).train()

    records = [json.loads(line) for line in config.metrics_path.read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2]
    for key in ("val_accuracy", "val_psnr", "val_ssim", "val_rs_bpp", "val_worst_accuracy"):
        assert key in records[-1]
    assert 0 <= records[-1]["val_accuracy"] <= 1
    assert sorted(p.name for p in config.previews_dir.iterdir()) == [
        "epoch-001.png",
        "epoch-002.png",
    ]
    assert config.checkpoint_path.is_file()

    exported = load_model(config.out)
    assert exported.settings == TINY
    assert same_tensors(exported.state_tensors(), model.state_tensors())
    assert exported.info["validation"] == records[-1]
    assert exported.info["epochs"] == 2


def test_resume_continues_exactly_where_training_stopped(photo_folder, tmp_path):
    straight = Trainer(tiny_config(photo_folder, tmp_path / "straight.safetensors")).train()

    first = tiny_config(photo_folder, tmp_path / "split.safetensors", epochs=1)
    Trainer(first).train()
    # Settings that differ on the command line are restored from the checkpoint.
    resumed = tiny_config(
        photo_folder,
        tmp_path / "split.safetensors",
        epochs=2,
        lr=0.5,
        crop=32,
        resume=first.checkpoint_path,
    )
    trainer = Trainer(resumed)
    assert (trainer.config.lr, trainer.config.crop, trainer.epoch) == (1e-3, 16, 1)
    continued = trainer.train()

    assert same_tensors(straight.state_tensors(), continued.state_tensors())
    # The export records every command line that contributed: the first run and the resume.
    assert len(load_model(resumed.out).info["commands"]) == 2


def test_ctrl_c_saves_a_checkpoint_and_resume_matches_an_uninterrupted_run(
    photo_folder, tmp_path, monkeypatch
):
    straight = Trainer(tiny_config(photo_folder, tmp_path / "straight.safetensors")).train()

    config = tiny_config(photo_folder, tmp_path / "stopped.safetensors")
    trainer = Trainer(config)
    real_step = trainer.train_step
    calls = []

    def step_then_interrupt(cover):
        calls.append(1)
        if len(calls) == 4:  # a real Ctrl-C in the middle of the second epoch's first step
            os.kill(os.getpid(), signal.SIGINT)
        return real_step(cover)

    monkeypatch.setattr(trainer, "train_step", step_then_interrupt)
    with pytest.raises(TrainingInterrupted):
        trainer.train()
    assert not config.out.exists()

    resumed = Trainer(tiny_config(photo_folder, config.out, resume=config.checkpoint_path))
    assert (resumed.epoch, resumed.step_in_epoch) == (1, 1)
    continued = resumed.train()
    assert same_tensors(straight.state_tensors(), continued.state_tensors())


def test_init_starts_from_exported_weights(photo_folder, tmp_path):
    first = tiny_config(photo_folder, tmp_path / "first.safetensors", epochs=1)
    Trainer(first).train()

    tuned = Trainer(tiny_config(photo_folder, tmp_path / "tuned.safetensors", init=first.out))

    assert same_tensors(tuned.model.state_tensors(), load_model(first.out).state_tensors())
    # The fine-tuned export keeps the provenance of its starting weights.
    assert tuned.seconds == load_model(first.out).info["training_seconds"] > 0
    assert len(tuned.commands) == 2


def test_unreadable_files_are_skipped_and_counted(photo_folder, tmp_path):
    (photo_folder / "broken.png").write_bytes(b"not a png at all")
    notes = []

    class Notes:
        def note(self, text):
            notes.append(text)

        def epoch_started(self, *args):
            pass

        def step_done(self, *args):
            pass

        def epoch_done(self, record):
            pass

    trainer = Trainer(tiny_config(photo_folder, tmp_path / "m.safetensors"), Notes())
    assert len(trainer.paths) == 6
    assert any("skipped 1 unreadable" in note for note in notes)


@pytest.mark.parametrize(
    "changes, message",
    [
        (dict(epochs=0), "--epochs"),
        (dict(crop=4), "--crop"),
        (dict(batch_size=0), "--batch-size"),
        (dict(lr=0.0), "learning rates"),
        (dict(out=Path("model.pt")), ".safetensors"),
        (dict(init=Path("a.safetensors"), resume=Path("b.safetensors")), "not both"),
    ],
)
def test_bad_arguments_raise_clear_errors(photo_folder, tmp_path, changes, message):
    out = changes.pop("out", tmp_path / "m.safetensors")
    with pytest.raises(InputError, match=message.replace(".", r"\.")):
        Trainer(tiny_config(photo_folder, out, **changes))


def test_empty_and_missing_folders_are_errors(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("no photos here")
    with pytest.raises(InputError, match="no readable images"):
        Trainer(tiny_config(empty, tmp_path / "m.safetensors"))
    with pytest.raises(InputError, match="does not exist"):
        Trainer(tiny_config(tmp_path / "missing", tmp_path / "m.safetensors"))


def tiny_train_args(photos: Path, out: Path, epochs: int, batch_size: int) -> list[str]:
    """Command-line arguments of `stegcli train` for a tiny, fast run."""
    return [
        "train", "--data", str(photos), "--val", str(photos), "--epochs", str(epochs),
        "--crop", "16", "--batch-size", str(batch_size), "--hidden", "8", "--val-crop", "24",
        "--out", str(out), "--device", "cpu",
    ]  # fmt: skip


def test_train_command_trains_and_reports(photo_folder, tmp_path):
    out = tmp_path / "cli.safetensors"
    result = CliRunner().invoke(app, tiny_train_args(photo_folder, out, epochs=1, batch_size=3))
    assert result.exit_code == 0, result.output
    assert load_model(out).settings == TINY
    assert "model written to" in result.stderr


def test_train_command_on_an_empty_folder_prints_one_error_line(tmp_path):
    result = CliRunner().invoke(
        app,
        [
            "train",
            "--data",
            str(tmp_path),
            "--device",
            "cpu",
            "--out",
            str(tmp_path / "m.safetensors"),
        ],
    )
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: no readable images")
    assert "Traceback" not in result.output


def test_distributed_training_with_two_cpu_processes(photo_folder, tmp_path):
    out = tmp_path / "ddp.safetensors"
    torchrun = Path(sys.executable).with_name("torchrun")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    completed = subprocess.run(
        [str(torchrun), "--standalone", "--nproc_per_node=2", "-m", "stegcli"]
        + tiny_train_args(photo_folder, out, epochs=2, batch_size=2),
        capture_output=True,
        text=True,
        env=env,
        timeout=240,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert load_model(out).settings == TINY
    # Only rank 0 validates and logs: one metrics line and one summary per epoch.
    metrics = out.with_name("ddp.metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in metrics] == [1, 2]
    assert completed.stderr.count("model written to") == 1


def test_a_photo_that_fails_to_decode_is_replaced_by_the_next(photo_folder):
    from stegcli.data import CropDataset, readable_images

    good, bad = readable_images(sorted(photo_folder.rglob("*.png")))
    assert len(good) == 6 and not bad
    position = 2
    good[position].write_bytes(b"")  # spoiled after the scan, while training runs

    dataset = CropDataset(good, crop=16, seed=0)
    with_next = list(good)
    with_next[position] = good[position + 1]
    expected = CropDataset(with_next, crop=16, seed=0)[(0, position)]
    assert torch.equal(dataset[(0, position)], expected)
