"""Benchmark: data-parallel training (``hourglass train --nproc N``) against one process.

Trains the CLI's dense detector (``--score-type error``, 10% of the
training rows held out for the validation loss) with the same seed and global
batch, as ``hourglass train`` in one process and as ``hourglass train --nproc N``
(torchrun, gloo, DistributedDataParallel), and prints the final validation loss,
the fit time reported by the command and the wall time of the whole command
(process start-up included). Data: MNIST, the 8,000 test images
``numpy.random.default_rng(0).permutation(10000)[:8000]`` (the shared data's
protocol: its training split is not in ``$HOURGLASS_DATA``), or the 60,000
Fashion-MNIST training images (``--dataset fashion-mnist``). ``--threads T`` adds
runs with T torch threads per process, to compare with the default of the
machine's cores shared out (``hourglass.distributed.threads_per_process``).

Run: ``HOURGLASS_DATA=... python benchmarks/distributed_training.py [--dataset mnist]
[--epochs 10] [--nproc 2] [--threads 2]``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from hourglass.data import load_fashion_mnist, load_mnist
from hourglass.threads import available_cores


def train(
    data: Path, out: Path, epochs: int, extra: list[str]
) -> tuple[float, float, float, float]:
    """(final validation loss, median epoch s, fit s, wall s) of one ``hourglass train`` run."""
    command = [sys.executable, "-m", "hourglass", "train", str(data), "-o", str(out)]
    command += ["--epochs", str(epochs), "--validation-fraction", "0.1", "--seed", "0"]
    command += ["--arch", "dense", "--score-type", "error", "-q", *extra]
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stderr}")
    val = re.search(r"validation loss ([0-9]+\.[0-9]+)", result.stdout)
    fit = re.search(r"epochs in ([0-9.]+) s", result.stdout)
    if val is None or fit is None:
        raise SystemExit(f"unexpected output:\n{result.stdout}")
    epoch_times = json.loads((out / "config.json").read_text())["state"]["history_"]["epoch_time"]
    return float(val.group(1)), float(np.median(epoch_times)), float(fit.group(1)), wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=["mnist", "fashion-mnist"], default="mnist")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--nproc", type=int, default=2)
    parser.add_argument("--threads", type=int, nargs="*", default=[])
    args = parser.parse_args()
    if args.dataset == "mnist":
        images, _ = load_mnist("test")
        images = images[np.random.default_rng(0).permutation(len(images))[:8000]]
    else:
        images, _ = load_fashion_mnist("train")
    print(
        f"{args.dataset} {images.shape}, {args.epochs} epochs, batch 64 (global); "
        f"{platform.processor() or platform.machine()}, {available_cores()} cores, "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    runs = [("1 process", []), (f"{args.nproc} processes", ["--nproc", str(args.nproc)])]
    runs += [
        (f"{args.nproc} processes x {t} threads", ["--nproc", str(args.nproc), "--threads", str(t)])
        for t in args.threads
    ]
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "mnist.npy"
        np.save(data, images)
        print("| run | val loss | vs 1 process | epoch s | fit s | wall s |")
        print("|---|---|---|---|---|---|")
        reference = None
        for i, (name, extra) in enumerate(runs):
            val, epoch, fit, wall = train(data, Path(tmp) / f"model{i}", args.epochs, extra)
            reference = reference or val
            change = f"{100 * (val - reference) / reference:+.2f}%"
            print(
                f"| {name} | {val:.4f} | {change} | {epoch:.2f} | {fit:.1f} | {wall:.1f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
