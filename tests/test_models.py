"""Saving, loading and choosing models."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file

from stegcli import models
from stegcli.errors import ModelError
from stegcli.models import (
    FORMAT_NAME,
    FORMAT_VERSION,
    StegoModel,
    load_model,
    resolve_model,
    save_model,
)
from stegcli.networks import ModelSettings


def _same_weights(first: StegoModel, second: StegoModel) -> bool:
    a, b = first.state_tensors(), second.state_tensors()
    return a.keys() == b.keys() and all(torch.equal(a[key], b[key]) for key in a)


def _metadata(model_settings: ModelSettings, **changes: str) -> dict[str, str]:
    metadata = {
        "format": FORMAT_NAME,
        "format_version": str(FORMAT_VERSION),
        "settings": json.dumps(model_settings.to_dict()),
    }
    metadata.update(changes)
    return metadata


@pytest.fixture
def trained_like(small_model: StegoModel) -> StegoModel:
    """The small model after one training-mode pass, so BatchNorm buffers are not defaults."""
    generator = torch.Generator().manual_seed(0)
    cover = torch.rand((2, 3, 6, 5), generator=generator) * 2 - 1
    bits = torch.randint(0, 2, (2, 2, 6, 5), generator=generator).float()
    with torch.no_grad():
        small_model.decoder(small_model.encoder(cover, bits))
    return small_model.eval()


def test_round_trip_gives_identical_tensors_and_outputs(trained_like, tmp_path):
    path = tmp_path / "model.safetensors"
    save_model(trained_like, path)
    loaded = load_model(path)

    assert _same_weights(loaded, trained_like)
    assert loaded.settings == trained_like.settings
    generator = torch.Generator().manual_seed(1)
    cover = torch.rand((1, 3, 7, 9), generator=generator) * 2 - 1
    bits = torch.randint(0, 2, (1, 2, 7, 9), generator=generator).float()
    with torch.no_grad():
        for model in (loaded, trained_like):
            assert not model.encoder.training and not model.decoder.training
        assert torch.equal(loaded.encoder(cover, bits), trained_like.encoder(cover, bits))
        assert torch.equal(loaded.decoder(cover), trained_like.decoder(cover))
        assert torch.equal(loaded.critic(cover), trained_like.critic(cover))


@pytest.mark.parametrize("architecture", ["basic", "residual", "dense"])
def test_settings_are_rebuilt_from_the_file_alone(architecture, tmp_path):
    settings = ModelSettings(architecture, depth=3, hidden=5)
    path = tmp_path / "model.safetensors"
    save_model(StegoModel.fresh(settings, seed=2), path)
    loaded = load_model(path)
    assert loaded.settings == settings
    assert loaded.source == f"file {path}"
    assert loaded.trained
    assert load_model(path, source="mine").source == "mine"


def test_info_round_trips(small_model, tmp_path):
    info = {"psnr": 41.5, "command": "stegcli train x", "steps": [1, 2, {"a": None}]}
    path = tmp_path / "model.safetensors"
    save_model(small_model, path, info=info)
    assert load_model(path).info == info

    # Without an explicit info the model's own info is stored.
    small_model.info = {"note": "from the model"}
    save_model(small_model, path)
    assert load_model(path).info == {"note": "from the model"}


def test_missing_file(tmp_path):
    with pytest.raises(ModelError, match="does not exist"):
        load_model(tmp_path / "nothing.safetensors")


@pytest.mark.parametrize(
    "content", [b"", b"abc", b"this is plain text and not a safetensors file\n" * 4]
)
def test_non_safetensors_file(tmp_path, content):
    path = tmp_path / "model.safetensors"
    path.write_bytes(content)
    with pytest.raises(ModelError):
        load_model(path)


def test_truncated_file(small_model, tmp_path):
    path = tmp_path / "model.safetensors"
    save_model(small_model, path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelError):
        load_model(path)


def test_safetensors_file_without_metadata(small_model, tmp_path):
    path = tmp_path / "plain.safetensors"
    save_file(small_model.state_tensors(), str(path))
    with pytest.raises(ModelError, match="not a stegcli model"):
        load_model(path)


@pytest.mark.parametrize(
    "changes",
    [
        {"format": "something-else"},
        {"format_version": "2"},
        {"format_version": "0"},
        {"settings": "{not json"},
        {"settings": "[1, 2]"},
        {"settings": json.dumps({"architecture": "dense", "depth": 2})},
        {"settings": json.dumps({"architecture": "dense", "depth": 99, "hidden": 8})},
        {"settings": json.dumps({"architecture": "gan", "depth": 2, "hidden": 8})},
    ],
)
def test_bad_metadata(small_model, tmp_path, changes):
    path = tmp_path / "model.safetensors"
    save_file(small_model.state_tensors(), str(path), _metadata(small_model.settings, **changes))
    with pytest.raises(ModelError):
        load_model(path)


def test_metadata_without_settings(small_model, tmp_path):
    metadata = _metadata(small_model.settings)
    del metadata["settings"]
    path = tmp_path / "model.safetensors"
    save_file(small_model.state_tensors(), str(path), metadata)
    with pytest.raises(ModelError):
        load_model(path)


def test_hand_written_file_with_right_metadata_loads(small_model, tmp_path):
    # The control for the tests below: the same construction, unmodified, is accepted.
    path = tmp_path / "model.safetensors"
    save_file(small_model.state_tensors(), str(path), _metadata(small_model.settings))
    assert _same_weights(load_model(path), small_model)
    assert load_model(path).info == {}


def _tensors_changed(model: StegoModel, how: str) -> dict[str, torch.Tensor]:
    tensors = dict(model.state_tensors())
    if how == "wrong shape":
        tensors["encoder.output.weight"] = torch.zeros(3, 8, 3, 3)
    elif how == "missing":
        del tensors["critic.image_layers.0.bias"]
    elif how == "unexpected":
        tensors["critic.extra"] = torch.zeros(1)
    elif how == "renamed":
        tensors["decoder.renamed"] = tensors.pop("decoder.output.weight")
    elif how == "integer weights":
        tensors["encoder.output.weight"] = tensors["encoder.output.weight"].to(torch.int8)
    elif how == "float counter":
        counter = next(k for k in tensors if k.endswith("num_batches_tracked"))
        tensors[counter] = tensors[counter].float()
    return tensors


@pytest.mark.parametrize(
    "how", ["wrong shape", "missing", "unexpected", "renamed", "integer weights", "float counter"]
)
def test_tensors_that_do_not_match_the_settings(small_model, tmp_path, how):
    path = tmp_path / "model.safetensors"
    save_file(_tensors_changed(small_model, how), str(path), _metadata(small_model.settings))
    with pytest.raises(ModelError, match="does not match"):
        load_model(path)


def test_half_precision_weights_load(small_model, tmp_path):
    tensors = {
        k: v.half() if v.is_floating_point() else v for k, v in small_model.state_tensors().items()
    }
    path = tmp_path / "model.safetensors"
    save_file(tensors, str(path), _metadata(small_model.settings))
    assert load_model(path).settings == small_model.settings


def test_settings_that_do_not_match_the_tensors(small_model, tmp_path):
    path = tmp_path / "model.safetensors"
    other = ModelSettings(depth=1, hidden=8)
    save_file(small_model.state_tensors(), str(path), _metadata(other))
    with pytest.raises(ModelError, match="does not match"):
        load_model(path)


def test_fresh_models_follow_their_seed():
    settings = ModelSettings(depth=2, hidden=8)
    assert _same_weights(StegoModel.fresh(settings, seed=3), StegoModel.fresh(settings, seed=3))
    assert not _same_weights(StegoModel.fresh(settings, seed=3), StegoModel.fresh(settings, 4))
    fresh = StegoModel.fresh(settings, seed=3)
    assert not fresh.trained and fresh.settings == settings


def test_fresh_model_leaves_the_global_random_state_alone():
    torch.manual_seed(123)
    expected = torch.rand(4)
    torch.manual_seed(123)
    StegoModel.fresh(ModelSettings(hidden=4), seed=9)
    assert torch.equal(torch.rand(4), expected)


def test_resolve_unknown_name():
    with pytest.raises(ModelError, match="no-such-model"):
        resolve_model("no-such-model")


def test_resolve_missing_safetensors_path(tmp_path):
    with pytest.raises(ModelError, match="does not exist"):
        resolve_model(str(tmp_path / "gone.safetensors"))


def test_resolve_a_path_loads_the_file(small_model, tmp_path):
    path = tmp_path / "model.bin"  # any file name, as long as the file exists
    save_model(small_model, path)
    resolved = resolve_model(str(path), seed=1)
    assert resolved.settings == small_model.settings
    assert _same_weights(resolved, small_model)
    assert str(path) in resolved.source
    # A depth that matches the file is accepted; another one is an error.
    assert resolve_model(str(path), fresh_depth=2).settings.depth == 2
    with pytest.raises(ModelError, match="hides 2 bits per pixel, not 3"):
        resolve_model(str(path), fresh_depth=3)


def test_resolve_none_gives_a_fresh_model_without_a_shipped_default(tmp_path, monkeypatch):
    monkeypatch.setattr(models, "SHIPPED_DIR", tmp_path / "absent")
    resolved = resolve_model(None, fresh_depth=2, seed=5)
    settings = ModelSettings(depth=2)
    assert resolved.settings == settings
    assert not resolved.trained
    assert _same_weights(resolved, StegoModel.fresh(settings, seed=5))
    assert not _same_weights(resolved, StegoModel.fresh(settings, seed=6))
    assert not resolved.encoder.training
    assert resolve_model(None).settings == ModelSettings(depth=1)


def test_resolve_shipped_models(small_model, tmp_path, monkeypatch):
    shipped = tmp_path / "weights"
    shipped.mkdir()
    save_model(small_model, shipped / f"{models.DEFAULT_MODEL_NAME}.safetensors")
    other = StegoModel.fresh(ModelSettings("basic", depth=1, hidden=4), seed=1)
    save_model(other, shipped / "tiny.safetensors")
    monkeypatch.setattr(models, "SHIPPED_DIR", shipped)

    assert sorted(models.shipped_models()) == ["default", "tiny"]
    default = resolve_model(None)
    assert _same_weights(default, small_model)
    assert default.source == "shipped model 'default'"
    tiny = resolve_model("tiny")
    assert tiny.settings == other.settings
    assert tiny.source == "shipped model 'tiny'"
    with pytest.raises(ModelError, match="default, tiny"):
        resolve_model("huge")
    # Asking for a depth asks for a fresh model, even when a default ships.
    fresh = resolve_model(None, fresh_depth=3, seed=0)
    assert not fresh.trained and fresh.settings.depth == 3


def test_no_shipped_models_when_the_folder_is_missing(tmp_path, monkeypatch):
    monkeypatch.setattr(models, "SHIPPED_DIR", tmp_path / "absent")
    assert models.shipped_models() == {}
    assert not resolve_model(None).trained


def test_saved_file_is_plain_safetensors_with_the_model_metadata(small_model, tmp_path):
    from safetensors import safe_open

    path = tmp_path / "model.safetensors"
    save_model(small_model, path, info={"a": 1})
    with safe_open(str(path), framework="pt") as reader:
        metadata = reader.metadata()
        keys = set(reader.keys())
    assert metadata["format"] == FORMAT_NAME
    assert json.loads(metadata["settings"]) == small_model.settings.to_dict()
    assert json.loads(metadata["info"]) == {"a": 1}
    assert {key.split(".")[0] for key in keys} == {"encoder", "decoder", "critic"}
