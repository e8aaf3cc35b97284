"""Training speed on this machine: crops per second of `stegcli train` steps.

Times whole training steps (critic with gradient penalty, then encoder and decoder) on real
crops of the given photos, after warm-up steps, and prints the median and the spread.

    python benchmarks/train_speed.py --data ../shared/data/train --crop 128 --batch-size 16

``--smoke`` runs two tiny steps, for the test suite.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch

from stegcli.data import CropDataset
from stegcli.networks import ModelSettings
from stegcli.training import TrainConfig, Trainer


def measure(
    data: Path,
    crop: int,
    batch_size: int,
    depth: int,
    steps: int,
    warmup: int,
    channels_last: bool,
) -> dict:
    config = TrainConfig(
        data=data,
        settings=ModelSettings(depth=depth),
        crop=crop,
        batch_size=batch_size,
        device="cpu",
    )
    trainer = Trainer(config)
    if channels_last:
        for module in trainer.model.modules().values():
            module.to(memory_format=torch.channels_last)
    dataset = CropDataset(trainer.paths, crop, seed=0)
    batches = [
        torch.stack(
            [dataset[(step, (step * batch_size + i) % len(dataset))] for i in range(batch_size)]
        )
        for step in range(warmup + steps)
    ]
    if channels_last:
        batches = [b.contiguous(memory_format=torch.channels_last) for b in batches]

    seconds = []
    for index, covers in enumerate(batches):
        started = time.perf_counter()
        trainer.train_step(covers)
        if index >= warmup:
            seconds.append(time.perf_counter() - started)
    median = statistics.median(seconds)
    return {
        "crop": crop,
        "batch_size": batch_size,
        "depth": depth,
        "channels_last": channels_last,
        "steps": steps,
        "threads": torch.get_num_threads(),
        "median_step_seconds": round(median, 3),
        "min_step_seconds": round(min(seconds), 3),
        "max_step_seconds": round(max(seconds), 3),
        "crops_per_second": round(batch_size / median, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--crop", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--depth", type=int, default=1)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--smoke", action="store_true", help="two tiny steps, for tests")
    args = parser.parse_args()
    if args.smoke:
        args.crop, args.batch_size, args.steps, args.warmup = 16, 2, 2, 1

    results = [
        measure(args.data, args.crop, args.batch_size, args.depth, args.steps, args.warmup, cl)
        for cl in (False, True)
    ]
    print(
        json.dumps(
            {
                "machine": f"{platform.machine()}, {torch.get_num_threads()} threads, "
                f"torch {torch.__version__}",
                "results": results,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
