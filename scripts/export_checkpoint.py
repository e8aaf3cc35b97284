"""Export a training checkpoint as a model file, validated on larger crops first.

A CPU training run is usually stopped with Ctrl-C, which saves a checkpoint but exports
nothing; this turns that checkpoint into the model file `--out` would have written, after
validating on centre crops of at most ``--val-crop`` pixels (default 512) of the --val
photos. This is how the shipped weights were exported:

    python scripts/export_checkpoint.py runs/d1ft/default.checkpoint.safetensors \\
        stegcli/weights/default.safetensors
"""

from __future__ import annotations

import argparse
from pathlib import Path

from stegcli.training import TrainConfig, Trainer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--data", type=Path, default=Path("../shared/data/train"))
    parser.add_argument("--val", type=Path, default=Path("../shared/data/val"))
    parser.add_argument("--val-crop", type=int, default=512)
    args = parser.parse_args()
    config = TrainConfig(
        data=args.data,
        val=args.val,
        resume=args.checkpoint,
        out=args.out,
        val_crop=args.val_crop,
        epochs=10_000,  # only has to exceed the checkpoint's epoch; nothing is trained
        device="cpu",
    )
    trainer = Trainer(config)
    trainer.commands = trainer.commands[:-1]  # this script is not a training command
    figures = trainer.validate()
    figures.update(epoch=trainer.epoch, val_crop=args.val_crop)
    trainer.history.append(figures)
    trainer.export()
    print(figures)


if __name__ == "__main__":
    main()
