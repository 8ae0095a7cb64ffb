"""How close a training or inference rate comes to what the CPU can compute at all.

A rate in images per second means little on its own: a model that trains at 4,000 images/s
may be slow or at the limit of the machine. This script puts rates on one scale, the
multiply-adds of their products and convolutions:

* the work per image: the floating-point operations of the model's matrix products and
  convolutions, counted by ``torch.utils.flop_counter`` for one training step (forward and
  backward) and for one forward pass, on the hourglass models of ``training_speed.py``
  (``--arch dense``: 784 -> 64 -> 784; ``--arch conv``: ``Autoencoder(arch="conv")``'s default
  network). Element-wise work (activations, the loss, the optimiser) is not counted, so the
  figures are a lower bound on the work and an upper bound on any rate;
* the machine's peak: the best of several large matrix products (``--size``, default 1024)
  on ``--threads`` threads (default: every available core), in float32 and, where the CPU
  computes it natively, in bfloat16;
* for each rate given, its GFLOP/s and that figure as a share of the peak. A rate whose
  share of the float32 peak is above 100% cannot be reached in float32 by any
  implementation of the same model on this machine.

Example::

    python benchmarks/hardware_bound.py --arch conv --rate "keras training=4340" \\
        --rate "2x keras=8680" --inference-rate "3x keras predict=43400"

``benchmarks/training_speed.py`` prints the same table for its measured medians and for the
rates its goals ask for.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch.utils.flop_counter import FlopCounterMode

#: Images per counted batch: enough that per-batch terms do not matter.
_BATCH = 64


@dataclass(frozen=True)
class Work:
    """Floating-point operations of products and convolutions per image."""

    training: float  # one training step: forward and backward
    inference: float  # one forward pass


@dataclass(frozen=True)
class Peak:
    """The best matrix-product rates measured on this machine, in FLOP/s."""

    float32: float
    bfloat16: float | None  # None where the CPU has no native bfloat16 products
    threads: int


def _model(arch: str) -> torch.nn.Module:
    if arch == "conv":
        from hourglass.nn.conv import ConvAutoencoder, ConvConfig

        return ConvAutoencoder(ConvConfig(), generator=torch.Generator().manual_seed(0))
    from hourglass.nn.dense import DenseAutoencoder, DenseConfig

    return DenseAutoencoder(DenseConfig(), generator=torch.Generator().manual_seed(0))


def work_per_image(arch: str) -> Work:
    """Count the products' and convolutions' operations of one image of ``arch``."""
    model = _model(arch)
    model.train()
    images = torch.rand(_BATCH, 28, 28)
    counter = FlopCounterMode(display=False)
    with counter:
        loss, _ = model.reconstruction_loss(images, images, "bce")  # type: ignore[operator]
        loss.backward()
    training = counter.get_total_flops() / _BATCH
    counter = FlopCounterMode(display=False)
    # With gradients recorded, every layer runs as itself (inference may fuse some).
    with counter, torch.enable_grad():
        model(images)
    return Work(training=training, inference=counter.get_total_flops() / _BATCH)


def _product_rate(dtype: torch.dtype, size: int, seconds: float) -> float:
    a = torch.randn(size, size).to(dtype)
    b = torch.randn(size, size).to(dtype)
    for _ in range(3):  # warm-up
        torch.mm(a, b)
    best = float("inf")
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        started = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - started)
    return 2 * size**3 / best


def measure_peak(threads: int | None = None, size: int = 1024, seconds: float = 1.0) -> Peak:
    """The fastest ``size``-square matrix product on ``threads`` threads (all cores by default)."""
    from hourglass.threads import available_cores, num_threads
    from hourglass.training import bfloat16_is_native

    threads = available_cores() if threads is None else threads
    native = bfloat16_is_native(torch.device("cpu"))
    with num_threads(threads):
        float32 = _product_rate(torch.float32, size, seconds)
        bfloat16 = _product_rate(torch.bfloat16, size, seconds) if native else None
    return Peak(float32=float32, bfloat16=bfloat16, threads=threads)


def _share(rate: float, per_image: float, peak: float | None) -> str:
    return "n/a" if peak is None else f"{rate * per_image / peak:.0%}"


def print_bound(
    arch: str,
    work: Work,
    peak: Peak,
    training: Sequence[tuple[str, float]] = (),
    inference: Sequence[tuple[str, float]] = (),
) -> None:
    """Print each named rate (images/s) as GFLOP/s and as a share of the peaks."""
    bf16 = "n/a" if peak.bfloat16 is None else f"{peak.bfloat16 / 1e9:,.0f}"
    print(
        f"\nHardware bound ({arch}): {work.training / 1e6:.2f} MFLOP per training image, "
        f"{work.inference / 1e6:.2f} per inference image (products and convolutions); "
        f"peak of a {peak.threads}-thread matrix product: float32 "
        f"{peak.float32 / 1e9:,.0f} GFLOP/s, bfloat16 {bf16}"
    )
    rows = [("training", name, rate, work.training) for name, rate in training]
    rows += [("inference", name, rate, work.inference) for name, rate in inference]
    if not rows:
        return
    headers = ("phase", "rate", "img/s", "GFLOP/s", "of float32 peak", "of bfloat16 peak")
    body = [
        (
            phase,
            name,
            f"{rate:,.0f}",
            f"{rate * per_image / 1e9:,.0f}",
            _share(rate, per_image, peak.float32),
            _share(rate, per_image, peak.bfloat16),
        )
        for phase, name, rate, per_image in rows
    ]
    widths = [max(len(cell) for cell in column) for column in zip(headers, *body, strict=True)]
    for line in (headers, *body):
        print("  " + "  ".join(cell.rjust(w) for cell, w in zip(line, widths, strict=True)))


def _named_rate(text: str) -> tuple[str, float]:
    name, sep, value = text.rpartition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=IMAGES_PER_S, got {text!r}")
    try:
        return name, float(value.replace(",", ""))
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"not a rate: {value!r} in {text!r}") from error


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--arch", choices=["dense", "conv"], default="conv")
    parser.add_argument(
        "--rate",
        type=_named_rate,
        action="append",
        default=[],
        metavar="NAME=IMG_PER_S",
        help="a training rate to place (repeatable)",
    )
    parser.add_argument(
        "--inference-rate",
        type=_named_rate,
        action="append",
        default=[],
        metavar="NAME=IMG_PER_S",
        help="an inference rate to place (repeatable)",
    )
    parser.add_argument("--threads", type=int, default=None, help="default: every core")
    parser.add_argument("--size", type=int, default=1024, help="matrix side for the peak")
    args = parser.parse_args(argv)
    peak = measure_peak(args.threads, args.size)
    print_bound(args.arch, work_per_image(args.arch), peak, args.rate, args.inference_rate)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
