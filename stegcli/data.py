"""Training photos: finding them, and cutting reproducible random crops from them.

Every random choice of training (which photos form a batch, where a crop falls, whether
it is flipped) is drawn from a generator seeded by (seed, epoch, position), never from a
global random state. So a run resumed from a checkpoint, or split over several processes,
sees exactly the crops an uninterrupted run would have seen.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
import torchvision.transforms.functional as TF
from PIL import Image
from torch.utils.data import Dataset, Sampler

from stegcli.errors import InputError

# Mixes (seed, epoch, position) into one generator seed; any fixed odd constants will do.
_MIX = (1_000_003, 10_007)


def keyed_generator(*key: int) -> torch.Generator:
    """A torch generator seeded from a tuple of integers (seed, epoch, step, …)."""
    value = 0
    for part in key:
        value = (value * _MIX[0] + part * _MIX[1] + 1) % (2**63 - 1)
    return torch.Generator().manual_seed(value)


def find_images(folder: Path) -> list[Path]:
    """Every file under ``folder`` (recursively) whose extension Pillow can read, sorted."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"image folder {str(folder)!r} does not exist or is not a folder")
    extensions = {ext.lower() for ext in Image.registered_extensions()}
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in extensions)


def readable_images(paths: list[Path]) -> tuple[list[Path], list[Path]]:
    """Split paths into images whose header Pillow can read, and the rest."""
    good, bad = [], []
    for path in paths:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                with Image.open(path) as image:
                    image.verify()
            good.append(path)
        except Exception:  # noqa: BLE001 - any failure means "skip this file"
            bad.append(path)
    return good, bad


class CropDataset(Dataset):
    """Random crops of training photos, as (3, crop, crop) float tensors in [-1, 1].

    Items are indexed by (epoch, index) pairs through :class:`EpochSampler`, so that each
    crop's position and flip come from a generator keyed by (seed, epoch, index). Photos
    smaller than the crop are padded by reflection first.
    """

    def __init__(self, paths: list[Path], crop: int, seed: int):
        self.paths = paths
        self.crop = crop
        self.seed = seed

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, key: tuple[int, int]) -> torch.Tensor:
        epoch, index = key
        generator = keyed_generator(self.seed, epoch, index)
        image = self._read(index)  # (3, H, W) uint8
        image = _pad_to(image, self.crop)
        _, H, W = image.shape
        top = int(torch.randint(0, H - self.crop + 1, (1,), generator=generator))
        left = int(torch.randint(0, W - self.crop + 1, (1,), generator=generator))
        image = TF.crop(image, top, left, self.crop, self.crop)
        if torch.rand(1, generator=generator).item() < 0.5:
            image = TF.hflip(image)
        return image.float() / 127.5 - 1.0

    def _read(self, index: int) -> torch.Tensor:
        """The photo at ``index`` as (3, H, W) uint8, or the next readable one.

        The header scan cannot see every defect (a JPEG cut short decodes only when read),
        so a photo that fails here is replaced by the next one rather than ending the run.
        """
        for offset in range(len(self.paths)):
            path = self.paths[(index + offset) % len(self.paths)]
            try:
                with Image.open(path) as image:
                    return TF.pil_to_tensor(image.convert("RGB"))
            except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
                continue
        raise InputError("none of the training photos could be decoded")


def _pad_to(image: torch.Tensor, size: int) -> torch.Tensor:
    """Reflect-pad a (3, H, W) image so both sides are at least ``size``."""
    _, H, W = image.shape
    pad_h, pad_w = max(0, size - H), max(0, size - W)
    if pad_h == 0 and pad_w == 0:
        return image
    # Reflection needs a pad smaller than the side; tiny images fall back to edge padding.
    mode = "reflect" if pad_h < H and pad_w < W else "edge"
    return TF.pad(
        image, [pad_w // 2, pad_h // 2, pad_w - pad_w // 2, pad_h - pad_h // 2], padding_mode=mode
    )


class EpochSampler(Sampler):
    """Yields (epoch, index) keys: a seeded permutation of the photos for each epoch.

    With several processes, each rank takes every ``world``-th entry of the same
    permutation (the permutation is padded by wrapping so all ranks get equally many).
    ``start`` skips the first entries of this rank, to resume inside an epoch.
    """

    def __init__(self, size: int, seed: int, rank: int = 0, world: int = 1):
        self.size = size
        self.seed = seed
        self.rank = rank
        self.world = world
        self.epoch = 0
        self.start = 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        self.epoch = epoch
        self.start = start

    def per_rank(self) -> int:
        return -(-self.size // self.world)

    def __len__(self) -> int:
        return max(0, self.per_rank() - self.start)

    def __iter__(self):
        order = torch.randperm(self.size, generator=keyed_generator(self.seed, self.epoch, -1))
        total = self.per_rank() * self.world
        order = torch.cat([order] * (-(-total // self.size)))[:total]
        mine = order[self.rank :: self.world][self.start :]
        return iter([(self.epoch, int(index)) for index in mine])
