"""How fast can one training step of the dense reference model be on this CPU?

Times the bare tensor operations of a training step of the 784 -> 64 -> 784 model
(batch 64, binary cross-entropy, Adam), without the training loop around them, on
one thread, over the 60,000 rows of a Fashion-MNIST-sized epoch of random data:

- ``products``: the five matrix products, the ReLU and its backward, the sigmoid and
  the bias sums — the least a step computes;
- ``+ adam``: and the fused Adam update of the 4 parameter tensors;
- ``+ loss``: and the loss value (binary cross-entropy) that training reports;
- ``+ mae``: and the mean absolute error, also reported.

It prints each level's epoch time and images/s. hourglass's own epoch
(``benchmarks/training_speed.py``) adds the batch sampling and the loop. Goal of
issue 18: 5x Keras's training rate, about 104,000 images/s (0.62 ms a step) on the
machine the docs were measured on.

Run: ``python benchmarks/dense_step_floor.py [--rounds 3]``.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

ROWS, FEATURES, CODE, BATCH = 60_000, 784, 64, 64


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    # Random data makes tiny gradients whose squares Adam keeps as slow subnormal floats;
    # images do not (flushing them changed nothing in hourglass's own training).
    torch.set_flush_denormal(True)
    generator = torch.Generator().manual_seed(0)
    data = torch.rand(ROWS, FEATURES, generator=generator)
    w1 = torch.randn(CODE, FEATURES, generator=generator) * 0.05
    w2 = torch.randn(FEATURES, CODE, generator=generator) * 0.05
    params = [w1, torch.zeros(CODE), w2, torch.zeros(FEATURES)]
    grads = [torch.empty_like(p) for p in params]
    averages = [torch.zeros_like(p) for p in params]
    squares = [torch.zeros_like(p) for p in params]
    no_tensors: list[torch.Tensor] = []
    steps = [torch.zeros(()) for _ in params]

    def step(x: torch.Tensor, adam: bool, loss: bool, mae: bool) -> None:
        hidden = torch.relu(torch.addmm(params[1], x, params[0].t()))
        logits = torch.addmm(params[3], hidden, params[2].t())
        diff = torch.sigmoid(logits) - x
        if mae:
            diff.abs().sum()
        if loss:
            torch.nn.functional.binary_cross_entropy_with_logits(logits, x)
        diff.mul_(1.0 / diff.numel())
        torch.mm(diff.t(), hidden, out=grads[2])
        torch.sum(diff, 0, out=grads[3])
        back = torch.ops.aten.threshold_backward(diff.mm(params[2]), hidden, 0.0)
        torch.mm(back.t(), x, out=grads[0])
        torch.sum(back, 0, out=grads[1])
        if adam:
            torch._foreach_add_(steps, 1)
            torch._fused_adamw_(
                params, grads, averages, squares, no_tensors, steps,
                lr=1e-3, beta1=0.9, beta2=0.999, weight_decay=0.0, eps=1e-7,
                amsgrad=False, maximize=False,
            )  # fmt: skip

    levels = {
        "products": (False, False, False),
        "+ adam": (True, False, False),
        "+ loss": (True, True, False),
        "+ mae": (True, True, True),
    }
    order = torch.randperm(ROWS, generator=generator)
    times: dict[str, list[float]] = {name: [] for name in levels}
    for _ in range(args.rounds):
        for name, flags in levels.items():
            start = time.perf_counter()
            for first in range(0, ROWS - BATCH + 1, BATCH):
                step(data.index_select(0, order[first : first + BATCH]), *flags)
            times[name].append(time.perf_counter() - start)
    print(f"dense 784-64-784 training step, batch {BATCH}, one thread; medians of {args.rounds}")
    for name, values in times.items():
        epoch = statistics.median(values)
        steps_per_epoch = ROWS // BATCH
        print(
            f"  {name:9s} epoch {epoch:.3f} s  {ROWS / epoch:9,.0f} img/s  "
            f"{epoch / steps_per_epoch * 1e3:.3f} ms/step"
        )


if __name__ == "__main__":
    main()
