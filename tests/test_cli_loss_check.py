"""``stegcli loss-check`` end to end, through the command line."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import crop_sample
from typer.testing import CliRunner

import stegcli.models
from stegcli import __version__
from stegcli.cli import app
from stegcli.losscheck import payload_bits
from stegcli.metrics import psnr_from_mse
from stegcli.models import StegoModel, save_model
from stegcli.networks import ModelSettings

TERMS = (
    "decoder_loss",
    "encoder_mse",
    "adversarial_loss",
    "gradient_penalty",
    "critic_loss",
    "total",
    "bit_accuracy",
    "psnr",
)
TABLE_LABELS = (
    "decoder loss",
    "encoder MSE",
    "adversarial loss",
    "gradient penalty",
    "critic loss",
    "total",
    "bit accuracy",
    "PSNR",
)

runner = CliRunner()


@pytest.fixture(autouse=True)
def no_shipped_models(tmp_path, monkeypatch):
    """These tests describe loss-check before a default model ships: a fresh model.

    What changes once one ships is tested at the end of this file.
    """
    monkeypatch.setattr(stegcli.models, "SHIPPED_DIR", tmp_path / "no-shipped-models")


@pytest.fixture(scope="module")
def covers(tmp_path_factory) -> dict[str, Path]:
    """Small crops of two sample photos (40×30 and 37×29), plus a grayscale one."""
    folder = tmp_path_factory.mktemp("covers")
    return {
        "cat": crop_sample("skimage_chelsea.png", (200, 100, 240, 130), folder / "cat.png"),
        "cup": crop_sample("skimage_coffee.png", (250, 150, 287, 179), folder / "cup.png"),
        "gray": crop_sample(
            "skimage_rocket.jpg", (300, 200, 333, 225), folder / "gray.png", mode="L"
        ),
    }


def invoke(*args: object):
    return runner.invoke(app, ["loss-check", *map(str, args)])


def run_json(*args: object) -> dict:
    result = invoke(*args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def figures(report: dict) -> dict:
    return {term: report[term] for term in TERMS}


def assert_one_error_line(result) -> str:
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert isinstance(result.exception, SystemExit)  # a clean exit, not a crash
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


def test_table_shows_every_term(covers):
    result = invoke(covers["cat"])
    assert result.exit_code == 0, result.output
    for label in TABLE_LABELS:
        assert label in result.stdout
    assert "cat.png" in result.stdout
    assert "freshly initialised" in result.stderr
    assert "random bits, seed 0" in result.stderr

    # The table shows the same numbers as the JSON report.
    report = run_json(covers["cat"])
    rows = {line.split("  ")[0].strip(): line for line in result.stdout.splitlines()}
    assert f"{report['decoder_loss']:.5g}" in rows["decoder loss"]
    assert f"{report['critic_loss']:.5g}" in rows["critic loss"]
    assert f"{report['bit_accuracy']:.4f}" in rows["bit accuracy"]


def test_table_of_two_covers_has_a_mean_column(covers):
    result = invoke(covers["cat"], covers["cup"])
    assert result.exit_code == 0, result.output
    assert "mean" in result.stdout
    assert "cat.png" in result.stdout and "cup.png" in result.stdout


def test_json_report(covers):
    report = run_json(covers["cat"])
    for term in TERMS:
        assert isinstance(report[term], float), term
    assert set(report["weights"]) >= {"mse", "adversarial", "gradient_penalty"}
    assert report["weights"]["mse"] == 100.0
    assert report["model"]["trained"] is False
    assert report["seed"] == 0
    [image] = report["images"]
    assert (image["width"], image["height"]) == (40, 30)
    assert image["cover"] == str(covers["cat"])
    assert image["stego"] is None
    assert image["conversions"] == []
    assert figures(image) == figures(report)
    assert 0 <= image["bit_accuracy"] <= 1
    assert image["psnr"] == pytest.approx(psnr_from_mse(image["encoder_mse"]))
    # Everything the optimiser sees is combined as the documented weighted sums.
    expected_total = (
        image["decoder_loss"] + 100 * image["encoder_mse"] + 0.1 * image["adversarial_loss"]
    )
    assert image["total"] == pytest.approx(expected_total, rel=1e-5)


def test_same_seed_repeats_and_another_seed_differs(covers):
    first = run_json(covers["cat"], "--seed", 3)
    assert run_json(covers["cat"], "--seed", 3) == first
    other = run_json(covers["cat"], "--seed", 4)
    assert other["seed"] == 4
    for term in ("decoder_loss", "encoder_mse", "adversarial_loss", "critic_loss"):
        assert other[term] != first[term], term


def test_two_covers_report_two_images_and_their_means(covers):
    report = run_json(covers["cat"], covers["cup"])
    assert [image["cover"] for image in report["images"]] == [
        str(covers["cat"]),
        str(covers["cup"]),
    ]
    assert [(image["width"], image["height"]) for image in report["images"]] == [
        (40, 30),
        (37, 29),
    ]
    for term in TERMS:
        values = [image[term] for image in report["images"]]
        assert report[term] == pytest.approx(sum(values) / 2, rel=1e-12), term
    assert report["images"][0]["decoder_loss"] != report["images"][1]["decoder_loss"]


def test_cover_as_its_own_stego(covers):
    report = run_json(covers["cat"], "--stego", covers["cat"], "--gp-weight", 4)
    [image] = report["images"]
    assert image["stego"] == str(covers["cat"])
    assert image["encoder_mse"] == 0.0
    assert image["psnr"] is None and report["psnr"] is None
    # Equal images score equally, so the critic loss is the weighted penalty alone.
    assert image["critic_loss"] == pytest.approx(4 * image["gradient_penalty"], rel=1e-5)


def test_stego_of_the_wrong_size(covers):
    line = assert_one_error_line(invoke(covers["cat"], "--stego", covers["cup"]))
    assert "37×29" in line and "40×30" in line


def test_one_stego_per_cover(covers):
    result = invoke(covers["cat"], "--stego", covers["cat"], "--stego", covers["cat"])
    assert "2 stego" in assert_one_error_line(result)


def test_missing_cover(tmp_path):
    line = assert_one_error_line(invoke(tmp_path / "absent.png"))
    assert "absent.png" in line
    assert invoke(tmp_path / "absent.png").stdout == ""


def test_empty_secret(covers, tmp_path):
    secret = tmp_path / "secret.bin"
    secret.write_bytes(b"")
    assert "empty" in assert_one_error_line(invoke(covers["cat"], "--secret", secret))


def test_missing_secret(covers, tmp_path):
    assert_one_error_line(invoke(covers["cat"], "--secret", tmp_path / "absent.bin"))


def test_secret_file_sets_the_bits(covers, tmp_path):
    random_bits = run_json(covers["cat"])
    secret = tmp_path / "secret.bin"
    secret.write_bytes(b"attack at dawn")
    with_secret = run_json(covers["cat"], "--secret", secret)
    assert str(secret) in with_secret["payload"]
    assert with_secret["decoder_loss"] != random_bits["decoder_loss"]
    assert with_secret["encoder_mse"] != random_bits["encoder_mse"]

    # Only the bits matter: the same content elsewhere gives the same figures, whatever
    # the seed of the random bits; other content gives others.
    copy = tmp_path / "copy.bin"
    copy.write_bytes(b"attack at dawn")
    assert figures(run_json(covers["cat"], "--secret", copy)) == figures(with_secret)
    changed = tmp_path / "changed.bin"
    changed.write_bytes(b"retreat at six")
    assert (
        run_json(covers["cat"], "--secret", changed)["decoder_loss"]
        != (with_secret["decoder_loss"])
    )


def test_depth_option(covers):
    report = run_json(covers["cat"], "--depth", 3)
    assert report["model"]["depth"] == 3
    assert report["model"]["architecture"] == "dense"
    assert report["model"]["trained"] is False
    assert report["decoder_loss"] != run_json(covers["cat"])["decoder_loss"]


def test_bad_depth(covers):
    assert_one_error_line(invoke(covers["cat"], "--depth", 9))


def test_unknown_model_name(covers):
    line = assert_one_error_line(invoke(covers["cat"], "--model", "no-such-model"))
    assert "no-such-model" in line


@pytest.fixture
def model_file(tmp_path) -> Path:
    path = tmp_path / "small.safetensors"
    save_model(StegoModel.fresh(ModelSettings("residual", depth=2, hidden=8), seed=1), path)
    return path


def test_model_file(covers, model_file):
    report = run_json(covers["cat"], "--model", model_file)
    assert str(model_file) in report["model"]["source"]
    assert report["model"]["trained"] is True
    assert (report["model"]["architecture"], report["model"]["depth"]) == ("residual", 2)
    assert report["model"]["hidden"] == 8

    table = invoke(covers["cat"], "--model", model_file)
    assert table.exit_code == 0, table.output
    assert str(model_file) in "".join(table.stderr.split())


def test_seed_draws_the_bits_and_the_penalty_mixing(covers, model_file):
    # With the model fixed by a file, the seed still changes the random payload bits and
    # the gradient penalty's α, and repeats them exactly.
    first = run_json(covers["cat"], "--model", model_file, "--seed", 3)
    assert run_json(covers["cat"], "--model", model_file, "--seed", 3) == first
    other = run_json(covers["cat"], "--model", model_file, "--seed", 4)
    assert other["decoder_loss"] != first["decoder_loss"]
    assert other["gradient_penalty"] != first["gradient_penalty"]


def test_depth_conflicts_with_a_model_file(covers, model_file):
    assert_one_error_line(invoke(covers["cat"], "--model", model_file, "--depth", 3))
    # The model's own depth is accepted.
    assert run_json(covers["cat"], "--model", model_file, "--depth", 2)["model"]["depth"] == 2


def test_weights_options(covers):
    report = run_json(
        covers["cat"], "--mse-weight", 2, "--adversarial-weight", 0.5, "--gp-weight", 3
    )
    assert report["weights"] == {
        "decoder": 1.0,
        "mse": 2.0,
        "adversarial": 0.5,
        "gradient_penalty": 3.0,
    }
    [image] = report["images"]
    expected = image["decoder_loss"] + 2 * image["encoder_mse"] + 0.5 * image["adversarial_loss"]
    assert image["total"] == pytest.approx(expected, rel=1e-5)
    default = run_json(covers["cat"])
    assert image["decoder_loss"] == default["decoder_loss"]
    assert image["total"] != default["total"]
    # The scores are unchanged, so the critic losses differ by the change of λ times the GP.
    difference = image["critic_loss"] - default["critic_loss"]
    assert difference == pytest.approx((3 - 10) * image["gradient_penalty"], rel=1e-4)


def test_grayscale_cover_is_reported_and_used(covers):
    result = invoke(covers["gray"])
    assert result.exit_code == 0, result.output
    stderr = " ".join(result.stderr.split())
    assert "note:" in stderr and "grayscale" in stderr
    assert "decoder loss" in result.stdout

    [image] = run_json(covers["gray"])["images"]
    assert (image["width"], image["height"]) == (33, 25)
    assert any("grayscale" in change for change in image["conversions"])


def test_version():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert __version__ in result.stdout


def test_payload_bits_from_a_secret_are_msb_first_and_repeated():
    generator = torch.Generator()
    bits = payload_bits((1, 1, 2, 5), b"\xa1", generator)
    assert bits.dtype == torch.float32
    assert bits.flatten().tolist() == [1, 0, 1, 0, 0, 0, 0, 1, 1, 0]


def test_random_payload_bits_follow_the_generator():
    first = payload_bits((2, 3, 4, 5), None, torch.Generator().manual_seed(1))
    again = payload_bits((2, 3, 4, 5), None, torch.Generator().manual_seed(1))
    assert first.shape == (2, 3, 4, 5)
    assert torch.equal(first, again)
    assert set(first.unique().tolist()) == {0.0, 1.0}


def test_psnr_from_mse():
    assert psnr_from_mse(0.0) == math.inf
    assert psnr_from_mse(4e-4) == pytest.approx(40.0)
    assert psnr_from_mse(4.0) == pytest.approx(0.0, abs=1e-12)
    # 1 grey level on every pixel: MSE (1/127.5)² on the [-1, 1] scale, 20·log10(255) dB.
    assert psnr_from_mse((1 / 127.5) ** 2) == pytest.approx(20 * np.log10(255), rel=1e-12)


def _run_module(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "stegcli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
    )


def test_python_dash_m(tmp_path):
    shown = _run_module("--help", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert "loss-check" in shown.stdout

    failed = _run_module("loss-check", "/nonexistent.png", cwd=tmp_path)
    assert failed.returncode == 1
    assert failed.stdout == ""
    lines = failed.stderr.strip().splitlines()
    assert len(lines) == 1, failed.stderr
    assert lines[0].startswith("error: ")
    assert "/nonexistent.png" in lines[0]


def test_a_shipped_default_is_used_unless_a_depth_asks_for_a_fresh_model(
    covers, tmp_path, monkeypatch
):
    shipped = tmp_path / "weights"
    shipped.mkdir()
    save_model(
        StegoModel.fresh(ModelSettings("basic", 2, 8), seed=3), shipped / "default.safetensors"
    )
    monkeypatch.setattr(stegcli.models, "SHIPPED_DIR", shipped)

    report = run_json(covers["cat"])
    assert report["model"]["source"] == "shipped model 'default'"
    assert (report["model"]["architecture"], report["model"]["depth"]) == ("basic", 2)
    assert "shipped model 'default'" in invoke(covers["cat"]).stderr

    fresh = run_json(covers["cat"], "--depth", 1)
    assert fresh["model"]["trained"] is False and fresh["model"]["depth"] == 1
