"""`stegcli models` lists the shipped model files with their settings and figures."""

from __future__ import annotations

import json

from typer.testing import CliRunner

import stegcli.models
from stegcli.cli import app
from stegcli.models import StegoModel, save_model
from stegcli.networks import ModelSettings


def test_models_lists_shipped_files_with_their_figures(tmp_path, monkeypatch):
    monkeypatch.setattr(stegcli.models, "SHIPPED_DIR", tmp_path)
    figures = {"val_accuracy": 0.987, "val_psnr": 41.25, "val_ssim": 0.99, "val_rs_bpp": 0.974}
    save_model(
        StegoModel.fresh(ModelSettings(depth=1, hidden=8)),
        tmp_path / "default.safetensors",
        {"validation": figures, "commands": ["stegcli train --data photos"]},
    )
    save_model(StegoModel.fresh(ModelSettings("basic", 3, 8)), tmp_path / "wide.safetensors", {})

    result = CliRunner().invoke(app, ["models", "--json"])
    assert result.exit_code == 0, result.output
    rows = {row["name"]: row for row in json.loads(result.stdout)["models"]}
    assert rows["default"]["default"] and not rows["wide"]["default"]
    assert rows["default"]["validation"] == figures
    assert (rows["wide"]["architecture"], rows["wide"]["depth"]) == ("basic", 3)
    assert rows["wide"]["size_bytes"] == (tmp_path / "wide.safetensors").stat().st_size

    table = CliRunner().invoke(app, ["models"])
    assert table.exit_code == 0
    assert "default (default)" in table.stdout and "41.25" in table.stdout
    assert "wide" in table.stdout


def test_models_with_none_shipped_says_so(tmp_path, monkeypatch):
    monkeypatch.setattr(stegcli.models, "SHIPPED_DIR", tmp_path / "none")
    result = CliRunner().invoke(app, ["models"])
    assert result.exit_code == 0
    assert "no models ship" in result.stderr
    assert json.loads(CliRunner().invoke(app, ["models", "--json"]).stdout) == {"models": []}
