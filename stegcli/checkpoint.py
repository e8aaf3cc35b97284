"""Training checkpoints: everything needed to continue a run exactly, with no pickle.

A checkpoint is a safetensors file. Its tensors are the three networks' weights
(``model.encoder.*``, ``model.decoder.*``, ``model.critic.*``) and the optimisers' state
tensors (``optim.<name>.<param index>.<key>``). Its metadata key ``checkpoint`` holds JSON:
the model settings, the training settings, the epoch and step reached, the history of
validation figures, and the optimisers' non-tensor state (hyper-parameters, step counts).

Checkpoints are for resuming training; users hide data with exported model files
(:mod:`stegcli.models`), which hold weights and settings only.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from stegcli.errors import InputError
from stegcli.files import atomic_write

CHECKPOINT_FORMAT = "stegcli-checkpoint"
CHECKPOINT_VERSION = 1


def _split_optimizer(name: str, state: dict) -> tuple[dict[str, torch.Tensor], dict]:
    """An optimiser state dict as (tensors, JSON-able rest)."""
    tensors, plain = {}, {}
    for index, values in state["state"].items():
        plain[str(index)] = {}
        for key, value in values.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optim.{name}.{index}.{key}"] = value.detach().cpu().contiguous()
            else:
                plain[str(index)][key] = value
    return tensors, {"state": plain, "param_groups": state["param_groups"]}


def _join_optimizer(name: str, tensors: dict[str, torch.Tensor], plain: dict) -> dict:
    state = {}
    for index, values in plain["state"].items():
        entry = dict(values)
        prefix = f"optim.{name}.{index}."
        entry.update({k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)})
        state[int(index)] = entry
    return {"state": state, "param_groups": plain["param_groups"]}


def save_checkpoint(
    path: Path,
    model_tensors: dict[str, torch.Tensor],
    optimizers: dict[str, dict],
    info: dict,
) -> None:
    """Write a checkpoint atomically.

    model_tensors: the model's flat state (``StegoModel.state_tensors()``).
    optimizers: optimiser state dicts by name.
    info: JSON-able progress and settings (epoch, step, history, settings, config).
    """
    tensors = {f"model.{key}": value for key, value in model_tensors.items()}
    plain_optimizers = {}
    for name, state in optimizers.items():
        optimizer_tensors, plain_optimizers[name] = _split_optimizer(name, state)
        tensors.update(optimizer_tensors)
    metadata = {
        "format": CHECKPOINT_FORMAT,
        "format_version": str(CHECKPOINT_VERSION),
        "checkpoint": json.dumps({**info, "optimizers": plain_optimizers}),
    }
    atomic_write(path, lambda temporary: save_file(tensors, str(temporary), metadata=metadata))


def load_checkpoint(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, dict], dict]:
    """Read a checkpoint: (model tensors, optimiser state dicts, info)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"checkpoint {str(path)!r} does not exist")
    try:
        with safe_open(str(path), framework="pt") as reader:
            metadata = reader.metadata() or {}
            if metadata.get("format") != CHECKPOINT_FORMAT:
                raise InputError(f"{str(path)!r} is not a stegcli training checkpoint")
            if metadata.get("format_version") != str(CHECKPOINT_VERSION):
                raise InputError(
                    f"{str(path)!r} is checkpoint version {metadata.get('format_version')!r}; "
                    f"this stegcli resumes version {CHECKPOINT_VERSION}"
                )
            tensors = {key: reader.get_tensor(key) for key in reader.keys()}
        info = json.loads(metadata["checkpoint"])
    except (SafetensorError, OSError, KeyError, json.JSONDecodeError) as exc:
        raise InputError(f"could not read checkpoint {str(path)!r} ({exc})") from None

    model_tensors = {k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")}
    optimizers = {
        name: _join_optimizer(name, tensors, plain)
        for name, plain in info.pop("optimizers").items()
    }
    return model_tensors, optimizers, info
