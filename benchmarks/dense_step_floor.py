"""How fast can one training step of the dense reference model be on this CPU?

Times a training step of the 784 -> 64 -> 784 model (batch 64, binary cross-entropy,
Adam) without the training loop around it, on one thread, over the 60,000 rows of a
Fashion-MNIST-sized epoch of random data, at three levels:

- ``products``: the five matrix products, the ReLU and its backward, the sigmoid and
  the bias sums, and nothing else — the least a step computes;
- ``fused step``: hourglass's hand-written step
  (:func:`hourglass.nn.fused.loss_and_gradients`), which adds the loss and the mean
  absolute error that training reports;
- ``+ adam``: and the optimiser's update (:class:`hourglass.training.FusedAdamW`);
- ``compiled + adam``: the same with hourglass's compiled step (:mod:`hourglass.nn.native`,
  built first if it can be; the same bits, less time between the operations).

It prints each level's epoch time and images/s. hourglass's own epoch
(``benchmarks/training_speed.py``) adds the batch sampling and the loop. That
benchmark's target, 5x Keras's training rate, was about 104,000 images/s (0.62 ms a step)
on the machine the docs were measured on.

Run: ``python benchmarks/dense_step_floor.py [--rounds 3] [--threads 1]``. Levels alternate
within each round, so that they see the same load on a shared machine.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

import torch
from torch import nn

from hourglass._subnormals import flushing_subnormals
from hourglass.exceptions import NativeBuildError
from hourglass.nn import native
from hourglass.nn.fused import gradient_buffer, loss_and_gradients
from hourglass.training import FusedAdamW

ROWS, FEATURES, CODE, BATCH = 60_000, 784, 64, 64


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    data = torch.rand(ROWS, FEATURES)
    layers = [nn.Linear(FEATURES, CODE), nn.Linear(CODE, FEATURES)]
    for layer in layers:
        layer.requires_grad_(False)
    (encoder, decoder) = layers
    optimizer = FusedAdamW([p for layer in layers for p in layer.parameters()], lr=1e-3)

    def products(x: torch.Tensor) -> None:
        hidden = torch.relu(torch.addmm(encoder.bias, x, encoder.weight.t()))
        diff = torch.sigmoid(torch.addmm(decoder.bias, hidden, decoder.weight.t())) - x
        diff.mul_(1.0 / diff.numel())
        torch.mm(diff.t(), hidden, out=gradient_buffer(decoder.weight))
        torch.sum(diff, 0, out=gradient_buffer(decoder.bias))
        back = torch.ops.aten.threshold_backward(diff.mm(decoder.weight), hidden, 0.0)
        torch.mm(back.t(), x, out=gradient_buffer(encoder.weight))
        torch.sum(back, 0, out=gradient_buffer(encoder.bias))

    def fused_step(x: torch.Tensor) -> None:
        loss_and_gradients(x, x, layers, activation="relu", output_activation="sigmoid", loss="bce")

    def fused_step_and_adam(x: torch.Tensor) -> None:
        fused_step(x)
        # As hourglass's training loop updates: Adam's moments that shrink into the
        # subnormal range are flushed to zero, where they would take slow microcode.
        with flushing_subnormals():
            optimizer.step()

    levels: dict[str, Callable[[torch.Tensor], None]] = {
        "products": products,
        "fused step": fused_step,
        "+ adam": fused_step_and_adam,
    }
    try:
        native.build()
        levels["compiled + adam"] = fused_step_and_adam
    except NativeBuildError as error:
        print(f"(no compiled level: {error})")
    order = torch.randperm(ROWS)
    times: dict[str, list[float]] = {name: [] for name in levels}
    for _ in range(args.rounds):
        for name, step in levels.items():
            os.environ[native.ENABLE_VARIABLE] = "1" if name.startswith("compiled") else "0"
            start = time.perf_counter()
            for first in range(0, ROWS - BATCH + 1, BATCH):
                step(data.index_select(0, order[first : first + BATCH]))
            times[name].append(time.perf_counter() - start)
    print(
        f"dense 784-64-784 training step, batch {BATCH}, {args.threads} thread(s); "
        f"medians of {args.rounds}"
    )
    for name, values in times.items():
        epoch = statistics.median(values)
        print(
            f"  {name:10s} epoch {epoch:.3f} s  {ROWS / epoch:9,.0f} img/s  "
            f"{epoch / (ROWS // BATCH) * 1e3:.3f} ms/step"
        )


if __name__ == "__main__":
    main()
