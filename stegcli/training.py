"""Adversarial training of a model: the critic with WGAN-GP, then encoder and decoder.

One step on a batch of crops (B, 3, crop, crop) in [-1, 1] with fresh random bits:

1. critic (``critic_steps`` times): minimise score(stego) − score(cover) + λ·GP;
2. encoder and decoder: minimise the weighted total of decoder loss, encoder MSE and
   adversarial loss. The decoder reads the stego image rounded to 8-bit pixels (with a
   straight-through gradient), exactly what a written PNG holds.

After each epoch: validation on full photos, a metrics.jsonl line, a preview PNG and an
atomic checkpoint. Every random draw is keyed by (seed, epoch, step), so a resumed run and a
run split over several processes follow the same path as an uninterrupted one.

Distributed runs (``torchrun``) use DistributedDataParallel; only rank 0 validates, logs and
writes files.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from stegcli.allocator import keep_freed_memory
from stegcli.checkpoint import load_checkpoint, save_checkpoint
from stegcli.data import CropDataset, EpochSampler, find_images, keyed_generator, readable_images
from stegcli.errors import InputError
from stegcli.imaging import load_image, quantize
from stegcli.losses import LossWeights, bit_accuracy, critic_loss, generator_loss
from stegcli.metrics import psnr, rs_bits_per_pixel, ssim
from stegcli.models import StegoModel, load_model, save_model
from stegcli.networks import Critic, Decoder, Encoder, ModelSettings


@dataclass
class TrainConfig:
    """Everything a training run depends on (CLI options map one to one)."""

    data: Path
    val: Path | None = None
    epochs: int = 10
    settings: ModelSettings = field(default_factory=ModelSettings)
    crop: int = 64
    batch_size: int = 16
    lr: float = 1e-3
    critic_lr: float = 1e-4
    critic_steps: int = 1
    weights: LossWeights = field(default_factory=LossWeights)
    out: Path = Path("model.safetensors")
    checkpoint: Path | None = None
    resume: Path | None = None
    init: Path | None = None
    device: str = "auto"
    workers: int = 0
    seed: int = 0
    val_crop: int = 512
    previews: int = 3

    @property
    def checkpoint_path(self) -> Path:
        return self.checkpoint or self.out.with_name(self.out.stem + ".checkpoint.safetensors")

    @property
    def metrics_path(self) -> Path:
        return self.out.with_name(self.out.stem + ".metrics.jsonl")

    @property
    def previews_dir(self) -> Path:
        return self.out.with_name(self.out.stem + ".previews")

    def to_json(self) -> dict:
        fields = asdict(self)
        return {k: str(v) if isinstance(v, Path) else v for k, v in fields.items()}


class Reporter(Protocol):
    """What training tells the person watching it (the CLI renders it with Rich)."""

    def note(self, text: str) -> None: ...
    def epoch_started(self, epoch: int, epochs: int, steps: int) -> None: ...
    def step_done(self, figures: dict[str, float], crops_per_second: float) -> None: ...
    def epoch_done(self, record: dict) -> None: ...


class SilentReporter:
    """Reports nothing: for ranks other than 0, and for tests."""

    def note(self, text: str) -> None:
        pass

    def epoch_started(self, epoch: int, epochs: int, steps: int) -> None:
        pass

    def step_done(self, figures: dict[str, float], crops_per_second: float) -> None:
        pass

    def epoch_done(self, record: dict) -> None:
        pass


class TrainingInterrupted(Exception):
    """Ctrl-C during training; a checkpoint has been saved at ``path``."""

    def __init__(self, path: Path):
        super().__init__(f"interrupted; checkpoint saved to {path}")
        self.path = path


class _Coder(nn.Module):
    """Encoder and decoder as one module, so DistributedDataParallel syncs both at once."""

    def __init__(self, encoder: Encoder, decoder: Decoder):
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder

    def forward(self, cover: torch.Tensor, bits: torch.Tensor):
        stego = self.encoder(cover, bits)
        # Straight-through rounding: the decoder sees 8-bit pixels, the encoder the gradient.
        rounded = stego + (quantize(stego) - stego).detach()
        return stego, self.decoder(rounded)


class _CriticObjective(nn.Module):
    """The critic's loss as a module's forward, so DistributedDataParallel can wrap it."""

    def __init__(self, critic: Critic, gp_weight: float):
        super().__init__()
        self.critic = critic
        self.gp_weight = gp_weight

    def forward(self, cover, stego, generator):
        terms = critic_loss(self.critic, cover, stego, self.gp_weight, generator)
        return terms.critic_loss, terms.gradient_penalty


@dataclass
class _Distributed:
    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def _start_distributed(device: torch.device) -> _Distributed:
    """Join the process group when launched by torchrun (WORLD_SIZE > 1)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return _Distributed()
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return _Distributed(rank=dist.get_rank(), world=dist.get_world_size())


def pick_device(choice: str) -> torch.device:
    if choice == "auto":
        choice = "cuda" if torch.cuda.is_available() else "cpu"
    if choice == "cuda":
        if not torch.cuda.is_available():
            raise InputError("--device cuda was asked for, but no CUDA GPU is available")
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local_rank)
        return torch.device("cuda", local_rank)
    if choice != "cpu":
        raise InputError(f"unknown device {choice!r}; use auto, cpu or cuda")
    return torch.device("cpu")


class Trainer:
    """Owns the networks, optimisers and progress of one training run."""

    def __init__(self, config: TrainConfig, reporter: Reporter | None = None):
        self.config = config
        self.device = pick_device(config.device)
        if self.device.type == "cpu":
            keep_freed_memory()
        self.dist = _start_distributed(self.device)
        self.reporter = reporter if reporter and self.dist.main else SilentReporter()
        self.epoch = 0  # epochs completed
        self.step_in_epoch = 0  # steps completed inside the current epoch (after Ctrl-C)
        self.history: list[dict] = []
        self.seconds = 0.0
        self.stop_requested = False
        # The command lines that made this model, oldest first (resumed runs add theirs).
        self.commands = [" ".join(["stegcli", *sys.argv[1:]])]

        self._validate_config()
        if self.dist.main:
            config.out.parent.mkdir(parents=True, exist_ok=True)
        self.paths = self._training_images()
        self.val_paths = find_images(config.val) if config.val else []
        self.model, optimizer_states = self._build_model()
        self._build_optimizers(optimizer_states)

    # ----- set-up

    def _validate_config(self) -> None:
        c = self.config
        for name, value, low in [
            ("--epochs", c.epochs, 1),
            ("--crop", c.crop, 8),
            ("--batch-size", c.batch_size, 1),
            ("--critic-steps", c.critic_steps, 0),
            ("--workers", c.workers, 0),
        ]:
            if value < low:
                raise InputError(f"{name} must be at least {low}, got {value}")
        if c.lr <= 0 or c.critic_lr <= 0:
            raise InputError("learning rates must be positive")
        if c.resume and c.init:
            raise InputError(
                "give --resume (continue a run) or --init (start from weights), not both"
            )
        if c.out.suffix != ".safetensors":
            raise InputError(f"--out must end in .safetensors, got {str(c.out)!r}")

    def _training_images(self) -> list[Path]:
        found = find_images(self.config.data)
        good, bad = readable_images(found)
        if bad:
            self.reporter.note(
                f"warning: skipped {len(bad)} unreadable image file(s) in {self.config.data}"
            )
        if not good:
            raise InputError(
                f"no readable images under {str(self.config.data)!r}; "
                "give a folder of photos (PNG, JPEG, …)"
            )
        return good

    def _build_model(self) -> tuple[StegoModel, dict]:
        c = self.config
        if c.resume:
            tensors, optimizer_states, info = load_checkpoint(c.resume)
            self._restore_config(info["config"])
            model = StegoModel.fresh(ModelSettings(**info["settings"]))
            model.load_state_tensors(tensors)
            self.epoch = info["epoch"]
            self.step_in_epoch = info["step_in_epoch"]
            self.history = info["history"]
            self.commands = info.get("commands", []) + self.commands
            self.seconds = info["seconds"]
            self.reporter.note(
                f"resuming {c.resume} after epoch {self.epoch}, step {self.step_in_epoch}"
            )
            return model, optimizer_states
        if c.init:
            model = load_model(c.init)
            # Provenance carries over: what made the starting weights, and how long it took.
            commands = model.info.get("commands", [])
            seconds = model.info.get("training_seconds", 0.0)
            self.commands = [str(c) for c in commands if isinstance(commands, list)] + self.commands
            self.seconds = float(seconds) if isinstance(seconds, (int, float)) else 0.0
            if model.settings != c.settings:
                self.reporter.note(f"settings come from {c.init}: {model.settings}")
            return model, {}
        return StegoModel.fresh(c.settings, seed=c.seed), {}

    def _restore_config(self, stored: dict) -> None:
        """On resume, training settings come from the checkpoint, so the run continues as it
        began; only where to read and write, the device and the epoch count come from the
        command line."""
        c = self.config
        c.settings = ModelSettings(**stored["settings"])
        c.weights = LossWeights(**stored["weights"])
        for name in ("crop", "batch_size", "lr", "critic_lr", "critic_steps", "seed"):
            setattr(c, name, stored[name])
        self.reporter.note(
            f"training settings restored from the checkpoint: {c.settings}, crop {c.crop}, "
            f"batch {c.batch_size}, lr {c.lr:g}, {c.weights}"
        )

    def _build_optimizers(self, states: dict) -> None:
        model, c = self.model, self.config
        for module in model.modules().values():
            module.to(self.device)
            if self.device.type == "cuda":
                module.to(memory_format=torch.channels_last)
        self.coder = _Coder(model.encoder, model.decoder)
        self.critic_objective = _CriticObjective(model.critic, c.weights.gradient_penalty)
        if self.dist.world > 1:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.coder = DistributedDataParallel(self.coder, device_ids=ids)
            self.critic_objective = DistributedDataParallel(self.critic_objective, device_ids=ids)
        self.coder_optimizer = torch.optim.Adam(
            list(model.encoder.parameters()) + list(model.decoder.parameters()), lr=c.lr
        )
        self.critic_optimizer = torch.optim.Adam(
            model.critic.parameters(), lr=c.critic_lr, betas=(0.5, 0.9)
        )
        if states:
            self.coder_optimizer.load_state_dict(states["coder"])
            self.critic_optimizer.load_state_dict(states["critic"])

    # ----- the loop

    def train(self) -> StegoModel:
        """Run the remaining epochs, then export the model (rank 0). Returns the model."""
        c = self.config
        dataset = CropDataset(self.paths, c.crop, c.seed)
        sampler = EpochSampler(len(dataset), c.seed, self.dist.rank, self.dist.world)
        loader = DataLoader(
            dataset,
            batch_size=c.batch_size,
            sampler=sampler,
            num_workers=c.workers,
            persistent_workers=c.workers > 0,
            pin_memory=self.device.type == "cuda",
        )
        with self._ctrl_c_finishes_the_step():
            while self.epoch < c.epochs and not self.stop_requested:
                sampler.set_epoch(self.epoch, start=self.step_in_epoch * c.batch_size)
                self._train_epoch(loader, sampler)
                if self.stop_requested:
                    break
                self.epoch += 1
                self.step_in_epoch = 0
                if self.dist.main:
                    self._end_epoch()
        if self.stop_requested:
            if self.dist.main:
                self.save_checkpoint()
            raise TrainingInterrupted(c.checkpoint_path)
        if self.dist.main:
            self.export()
        return self.model

    @contextmanager
    def _ctrl_c_finishes_the_step(self):
        """While training, Ctrl-C (SIGINT) asks to stop after the current step, so that the
        checkpoint holds a whole number of steps; a second Ctrl-C stops at once."""

        def request_stop(signum, frame):
            self.stop_requested = True
            signal.signal(signal.SIGINT, signal.default_int_handler)

        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = signal.signal(signal.SIGINT, request_stop)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)

    def _all_ranks_stop(self) -> bool:
        """Whether any rank was asked to stop; every rank stops after the same step."""
        if self.dist.world == 1:
            return self.stop_requested
        flag = torch.tensor([float(self.stop_requested)], device=self.device)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        return bool(flag.item())

    def _train_epoch(self, loader: DataLoader, sampler: EpochSampler) -> None:
        c = self.config
        self.model.train()
        steps = -(-len(sampler) // c.batch_size)
        self.reporter.epoch_started(self.epoch + 1, c.epochs, steps)
        started = time.perf_counter()
        for cover in loader:
            tick = time.perf_counter()
            figures = self.train_step(cover.to(self.device, non_blocking=True))
            self.step_in_epoch += 1
            crops_per_second = cover.shape[0] * self.dist.world / (time.perf_counter() - tick)
            self.reporter.step_done(figures, crops_per_second)
            self.stop_requested = self._all_ranks_stop()
            if self.stop_requested:
                break
        self.seconds += time.perf_counter() - started

    def train_step(self, cover: torch.Tensor) -> dict[str, float]:
        """One step on covers (B, 3, crop, crop) in [-1, 1]; returns the loss terms."""
        c = self.config
        B, _, H, W = cover.shape
        if self.device.type == "cuda":
            cover = cover.contiguous(memory_format=torch.channels_last)
        key = (c.seed, self.epoch, self.step_in_epoch, self.dist.rank)
        bits = (
            torch.randint(
                0, 2, (B, self.model.settings.depth, H, W), generator=keyed_generator(*key, 1)
            )
            .float()
            .to(self.device)
        )
        alpha_generator = keyed_generator(*key, 2)
        if self.device.type == "cuda":
            alpha_generator = torch.Generator(self.device).manual_seed(
                alpha_generator.initial_seed()
            )
        autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.device.type == "cuda")

        # critic: tell covers from stego images, kept near 1-Lipschitz by the penalty
        for _ in range(c.critic_steps):
            with torch.no_grad(), autocast:
                stego = self.model.encoder(cover, bits)
            critic_value, penalty = self.critic_objective(cover, stego.float(), alpha_generator)
            self.critic_optimizer.zero_grad(set_to_none=True)
            critic_value.backward()
            self.critic_optimizer.step()

        # encoder and decoder: hide the bits, keep the image, fool the critic. The critic is
        # frozen here, so no gradient (and no distributed sync) reaches its weights.
        with autocast:
            stego, logits = self.coder(cover, bits)
        self.model.critic.requires_grad_(False)
        terms = generator_loss(
            self.model.critic, cover, stego.float(), logits.float(), bits, c.weights
        )
        self.coder_optimizer.zero_grad(set_to_none=True)
        terms.total.backward()
        self.coder_optimizer.step()
        self.model.critic.requires_grad_(True)

        figures = {
            "total": terms.total.item(),
            "decoder": terms.decoder_loss.item(),
            "mse": terms.encoder_mse.item(),
            "adversarial": terms.adversarial_loss.item(),
            "accuracy": bit_accuracy(logits, bits),
        }
        if c.critic_steps:
            figures["critic"] = critic_value.item()
            figures["gp"] = penalty.item()
        return figures

    # ----- after each epoch

    def _end_epoch(self) -> None:
        record = {"epoch": self.epoch, "seconds": round(self.seconds, 1)}
        if self.val_paths:
            record.update(self.validate())
        self.history.append(record)
        with open(self.config.metrics_path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")
        self.save_checkpoint()
        self.reporter.epoch_done(record)

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        """Figures on the validation photos, stego images rounded to 8-bit pixels.

        Each photo is used at full size, or as a centre crop of at most ``val_crop`` pixels
        a side, with the same bits every epoch so that epochs compare fairly.
        """
        c = self.config
        model = self.model.eval()
        accuracies, psnrs, ssims, previews = [], [], [], []
        for index, path in enumerate(self.val_paths):
            cover = _centre_crop(load_image(path).tensor(), c.val_crop).to(self.device)
            B, _, H, W = cover.shape
            bits = torch.randint(
                0, 2, (B, model.settings.depth, H, W), generator=keyed_generator(c.seed, index, 3)
            ).float()
            bits = bits.to(self.device)
            stego = quantize(model.encoder(cover, bits))
            logits = model.decoder(stego)
            accuracies.append(bit_accuracy(logits, bits))
            psnrs.append(psnr(stego, cover))
            ssims.append(ssim(stego, cover))
            if index < c.previews:
                previews.append((cover.cpu(), stego.cpu()))
        model.train()
        if previews:
            _write_preview(self.config.previews_dir / f"epoch-{self.epoch:03d}.png", previews)
        accuracy = sum(accuracies) / len(accuracies)
        return {
            "val_accuracy": accuracy,
            "val_worst_accuracy": min(accuracies),
            "val_psnr": sum(psnrs) / len(psnrs),
            "val_worst_psnr": min(psnrs),
            "val_ssim": sum(ssims) / len(ssims),
            "val_rs_bpp": rs_bits_per_pixel(model.settings.depth, accuracy),
        }

    def save_checkpoint(self) -> None:
        info = {
            "settings": self.model.settings.to_dict(),
            "config": self.config.to_json(),
            "epoch": self.epoch,
            "step_in_epoch": self.step_in_epoch,
            "history": self.history,
            "seconds": self.seconds,
            "commands": self.commands,
        }
        optimizers = {
            "coder": self.coder_optimizer.state_dict(),
            "critic": self.critic_optimizer.state_dict(),
        }
        save_checkpoint(self.config.checkpoint_path, self.model.state_tensors(), optimizers, info)

    def export(self) -> None:
        """Write the model with its settings, final validation figures and how it was made."""
        info = {
            "validation": self.history[-1] if self.history else {},
            "epochs": self.epoch,
            "training_seconds": round(self.seconds, 3),
            "training_images": len(self.paths),
            "crop": self.config.crop,
            "batch_size": self.config.batch_size,
            "weights": self.config.weights.to_dict(),
            "commands": self.commands,
        }
        save_model(self.model, self.config.out, info)


def _centre_crop(image: torch.Tensor, size: int) -> torch.Tensor:
    """The central at most size×size part of a (B, C, H, W) tensor."""
    H, W = image.shape[-2:]
    top, left = max(0, (H - size) // 2), max(0, (W - size) // 2)
    return image[..., top : top + min(H, size), left : left + min(W, size)]


def _write_preview(path: Path, pairs: list[tuple[torch.Tensor, torch.Tensor]]) -> None:
    """A PNG with one row per photo: cover, stego, and their difference amplified 10×."""
    from torchvision.utils import save_image

    rows = []
    for cover, stego in pairs:
        cover, stego = _centre_crop(cover, 192), _centre_crop(stego, 192)
        difference = ((stego - cover) * 10).clamp(-1, 1)
        rows.extend([cover[0], stego[0], difference[0]])
    size = max(max(t.shape[-2] for t in rows), max(t.shape[-1] for t in rows))
    padded = [
        torch.nn.functional.pad(t, (0, size - t.shape[-1], 0, size - t.shape[-2]), value=-1)
        for t in rows
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    save_image(torch.stack(padded), str(path), nrow=3, normalize=True, value_range=(-1, 1))
