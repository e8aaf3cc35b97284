"""A model is an encoder, a decoder and a critic built from one :class:`ModelSettings`.

Weights are stored as safetensors: plain tensors, with the settings as JSON in the file's
metadata, so a model is rebuilt from that file alone and no pickle is ever loaded. The
tensor names are ``encoder.*``, ``decoder.*`` and ``critic.*`` (the modules' state dicts).

Shipped models live in ``stegcli/weights/<name>.safetensors``; a model is named either by
that name or by a path to a file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from stegcli.errors import ModelError
from stegcli.files import atomic_write
from stegcli.networks import Critic, Decoder, Encoder, ModelSettings

FORMAT_NAME = "stegcli-model"
FORMAT_VERSION = 1
SHIPPED_DIR = Path(__file__).parent / "weights"
DEFAULT_MODEL_NAME = "default"


@dataclass
class StegoModel:
    """The three networks of one model, and where they came from.

    source: a short description for people ("file …", "shipped model …", "fresh, untrained").
    info: free-form metadata stored with the weights (validation figures, training command).
    """

    settings: ModelSettings
    encoder: Encoder
    decoder: Decoder
    critic: Critic
    source: str = "fresh, untrained"
    info: dict[str, object] = field(default_factory=dict)

    @classmethod
    def fresh(cls, settings: ModelSettings, seed: int | None = None) -> StegoModel:
        """Freshly initialised networks; the same seed gives the same weights."""
        with torch.random.fork_rng(devices=[]):
            if seed is not None:
                torch.manual_seed(seed)
            return cls(settings, Encoder(settings), Decoder(settings), Critic(settings))

    @property
    def trained(self) -> bool:
        return self.source != "fresh, untrained"

    def modules(self) -> dict[str, torch.nn.Module]:
        return {"encoder": self.encoder, "decoder": self.decoder, "critic": self.critic}

    def eval(self) -> StegoModel:
        """Inference mode: BatchNorm uses its running statistics."""
        return self.train(False)

    def train(self, mode: bool = True) -> StegoModel:
        """Training mode for all three networks (or inference mode with False)."""
        for module in self.modules().values():
            module.train(mode)
        return self

    def state_tensors(self) -> dict[str, torch.Tensor]:
        """All weights and buffers as one flat dict of contiguous CPU tensors."""
        return {
            f"{name}.{key}": value.detach().cpu().contiguous()
            for name, module in self.modules().items()
            for key, value in module.state_dict().items()
        }

    def load_state_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        """Load weights from a flat dict as :meth:`state_tensors` makes it."""
        for name, module in self.modules().items():
            prefix = name + "."
            module.load_state_dict(
                {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
            )


def save_model(model: StegoModel, path: str | Path, info: dict[str, object] | None = None) -> None:
    """Write the model's weights and settings to a safetensors file.

    info: extra JSON-serialisable metadata (validation figures, how it was trained).
    """
    metadata = {
        "format": FORMAT_NAME,
        "format_version": str(FORMAT_VERSION),
        "settings": json.dumps(model.settings.to_dict()),
        "info": json.dumps(info if info is not None else model.info),
    }
    tensors = model.state_tensors()
    atomic_write(
        Path(path), lambda temporary: save_file(tensors, str(temporary), metadata=metadata)
    )


def load_model(path: str | Path, source: str | None = None) -> StegoModel:
    """Rebuild a model from a safetensors file written by :func:`save_model`.

    The settings and every tensor's name and shape are checked against the networks the
    settings describe before any weight is read, so a wrong or hostile file fails with a
    clear :class:`ModelError` instead of a crash or a huge allocation.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"model file {str(path)!r} does not exist")
    try:
        with safe_open(str(path), framework="pt") as reader:
            metadata = reader.metadata() or {}
            settings = _settings_from_metadata(metadata, path)
            model = StegoModel.fresh(settings)
            expected = {k: v.shape for k, v in model.state_tensors().items()}
            found = {key: tuple(reader.get_slice(key).get_shape()) for key in reader.keys()}
            _check_tensor_shapes(expected, found, path)
            floating = {k for k, v in model.state_tensors().items() if v.is_floating_point()}
            _check_tensor_kinds(floating, {k: reader.get_slice(k).get_dtype() for k in found}, path)
            tensors = {key: reader.get_tensor(key) for key in expected}
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelError(
            f"{str(path)!r} is not a readable stegcli model (safetensors) file: {exc}"
        ) from None

    model.load_state_tensors(tensors)
    model.source = source or f"file {path}"
    model.info = _info_from_metadata(metadata)
    return model.eval()


def _settings_from_metadata(metadata: dict[str, str], path: Path) -> ModelSettings:
    if metadata.get("format") != FORMAT_NAME:
        raise ModelError(f"{str(path)!r} is a safetensors file, but not a stegcli model")
    if metadata.get("format_version") != str(FORMAT_VERSION):
        raise ModelError(
            f"{str(path)!r} uses model format version {metadata.get('format_version')!r}; "
            f"this stegcli reads version {FORMAT_VERSION}; upgrade stegcli to load it"
        )
    try:
        fields = json.loads(metadata["settings"])
        return ModelSettings(
            architecture=fields["architecture"], depth=fields["depth"], hidden=fields["hidden"]
        )
    except (KeyError, TypeError, json.JSONDecodeError) as exc:
        raise ModelError(f"{str(path)!r} has unreadable model settings ({exc})") from None
    except ModelError as exc:  # out of range: say which file, before anything is allocated
        raise ModelError(f"{str(path)!r} has unusable model settings: {exc}") from None


def _info_from_metadata(metadata: dict[str, str]) -> dict[str, object]:
    try:
        info = json.loads(metadata.get("info", "{}"))
    except json.JSONDecodeError:
        return {}
    return info if isinstance(info, dict) else {}


def _check_tensor_shapes(
    expected: dict[str, torch.Size], found: dict[str, tuple[int, ...]], path: Path
) -> None:
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    if missing or unexpected:
        raise ModelError(
            f"{str(path)!r} does not match its settings: "
            f"{len(missing)} tensors missing, {len(unexpected)} unexpected"
        )
    for key, shape in expected.items():
        if tuple(shape) != found[key]:
            raise ModelError(
                f"{str(path)!r} does not match its settings: tensor {key} has shape "
                f"{list(found[key])}, expected {list(shape)}"
            )


FLOAT_DTYPES = {"F16", "BF16", "F32", "F64"}  # safetensors names; halves are legitimate


def _check_tensor_kinds(floating: set[str], dtypes: dict[str, str], path: Path) -> None:
    """Weights must be stored as floats and counters as integers, never the other way."""
    for key, dtype in dtypes.items():
        if (key in floating) != (dtype in FLOAT_DTYPES):
            raise ModelError(
                f"{str(path)!r} does not match its settings: tensor {key} is stored as "
                f"{dtype}, expected {'a float type' if key in floating else 'an integer type'}"
            )


def shipped_models() -> dict[str, Path]:
    """The models that ship inside the package, by name."""
    if not SHIPPED_DIR.is_dir():
        return {}
    return {path.stem: path for path in sorted(SHIPPED_DIR.glob("*.safetensors"))}


def shipped_model_summaries() -> list[dict[str, object]]:
    """Name, settings, file size and validation figures of every shipped model."""
    summaries = []
    for name, path in shipped_models().items():
        model = load_model(path, f"shipped model {name!r}")
        summaries.append(
            {
                "name": name,
                "default": name == DEFAULT_MODEL_NAME,
                **model.settings.to_dict(),
                "size_bytes": path.stat().st_size,
                "validation": model.info.get("validation", {}),
                "training_seconds": model.info.get("training_seconds"),
                "commands": model.info.get("commands", []),
            }
        )
    return summaries


def resolve_model(spec: str | None, fresh_depth: int | None = None, seed: int = 0) -> StegoModel:
    """The model a command should use.

    spec: a shipped model's name or a path to a model file.
    fresh_depth: asks for a freshly initialised dense model of that depth instead (built
        with ``seed``), to see where training starts; with ``spec`` it must match the
        model's depth.
    With neither, the shipped default model is used, or, while none ships, a fresh model
    of depth 1.
    """
    if spec is None:
        available = shipped_models()
        if fresh_depth is None and DEFAULT_MODEL_NAME in available:
            return load_model(
                available[DEFAULT_MODEL_NAME], f"shipped model {DEFAULT_MODEL_NAME!r}"
            )
        return StegoModel.fresh(ModelSettings(depth=fresh_depth or 1), seed).eval()

    model = _named_model(spec)
    if fresh_depth is not None and fresh_depth != model.settings.depth:
        raise ModelError(
            f"{model.source} hides {model.settings.depth} bits per pixel, not {fresh_depth}; "
            "leave out --depth, or leave out --model for a fresh model of that depth"
        )
    return model


def _named_model(spec: str) -> StegoModel:
    available = shipped_models()
    if spec in available:
        return load_model(available[spec], f"shipped model {spec!r}")
    if Path(spec).exists() or spec.endswith(".safetensors"):
        return load_model(spec)
    names = ", ".join(available) or "none ship with this version"
    raise ModelError(
        f"unknown model {spec!r}: give a path to a .safetensors model file "
        f"or a shipped model name ({names})"
    )
