"""Train the seed's model in PyTorch on the same data, split and recipe as ``minires train``.

    python benchmarks/train_torch.py --data DIR [--val-split 0.1] [--epochs 10] [--seed 0]
                                     [--out results/torch-cifar10.json]

The data goes through minires' own loaders and ``stratified_split`` with the same seed, so
both frameworks see the same 45,000 training and 5,000 validation images; pixels are scaled
by 1/255 as in the seed; no augmentation. See minires/frameworks/torch_resnet.py for the model and recipe.
Like ``minires train`` on a CPU backend, the process keeps freed memory for reuse
(``minires.memory``), which PyTorch gains from as much as minires.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from minires import memory
from minires.cli import load_source
from minires.data.split import stratified_split
from minires.data.transforms import scale_pixels
from minires.frameworks.torch_resnet import train


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--val-split", type=float, default=0.1)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="benchmarks/results/torch-cifar10.json")
    args = parser.parse_args()
    reuse = memory.reuse_freed_memory()

    x, y, names, description = load_source(None, args.data, "train")
    train_index, val_index = stratified_split(y, args.val_split, seed=args.seed)
    x = scale_pixels(x)
    print(f"{description}: {len(train_index)} train, {len(val_index)} val; torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads")
    started = time.perf_counter()
    history = train(x[train_index], y[train_index], x[val_index], y[val_index],
                    epochs=args.epochs, batch_size=args.batch_size, seed=args.seed)
    result = {"data": description, "val_split": args.val_split, "seed": args.seed,
              "torch": torch.__version__, "threads": torch.get_num_threads(), "reuse_freed_memory": reuse,
              "total_seconds": time.perf_counter() - started, "history": history}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"written {args.out}")


if __name__ == "__main__":
    main()
