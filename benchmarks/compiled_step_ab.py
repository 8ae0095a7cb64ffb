"""Whole epochs with and without hourglass's compiled training loop, in alternating pairs.

Fits the dense reference model (784 -> 64 -> 784, batch 64, one epoch on the 60,000
Fashion-MNIST training images, default threads) ``--pairs`` times with the compiled loop
(:mod:`hourglass.nn.native`, built first) and as many times without it
(``HOURGLASS_NATIVE=0``), alternating which goes first, in one process, so that both see
the same load on a shared machine. Prints each pair's training images/s, the medians and
the median of the pairs' ratios. Both sides train the same weights (checked).
``--noise gaussian|salt_pepper|mask`` trains a denoising model (``noise_strength=0.2``).

Run: ``python benchmarks/compiled_step_ab.py [--pairs 10] [--noise KIND]``.
"""

from __future__ import annotations

import argparse
import os
import statistics

import numpy as np
import torch

from hourglass import Autoencoder
from hourglass.datasets import load_fashion_mnist
from hourglass.nn import native


def _fit(
    images: np.ndarray, compiled: bool, noise: str | None
) -> tuple[float, dict[str, torch.Tensor]]:
    os.environ[native.ENABLE_VARIABLE] = "1" if compiled else "0"
    assert (native.module() is not None) == compiled
    settings = {"latent_dim": 64, "epochs": 1, "batch_size": 64, "random_state": 0}
    model = Autoencoder(arch="dense", verbose=0, noise=noise, noise_strength=0.2, **settings)
    model.fit(images)
    rate = len(images) / model.history_["epoch_time"][0]
    return rate, model.module_.state_dict()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=10)
    parser.add_argument("--data-dir", default=os.environ.get("HOURGLASS_DATA"))
    parser.add_argument("--noise", choices=("gaussian", "salt_pepper", "mask"), default=None)
    args = parser.parse_args()
    print(f"compiled loop: {native.build()}")
    images, _ = load_fashion_mnist("train", data_dir=args.data_dir)
    images = np.asarray(images)
    rates: dict[bool, list[float]] = {True: [], False: []}
    ratios = []
    for pair in range(args.pairs):
        order = (True, False) if pair % 2 == 0 else (False, True)
        results = {compiled: _fit(images, compiled, args.noise) for compiled in order}
        weights = [results[c][1] for c in (True, False)]
        assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
        for compiled in order:
            rates[compiled].append(results[compiled][0])
        ratios.append(results[True][0] / results[False][0])
        print(
            f"pair {pair + 1}: compiled {results[True][0]:,.0f}  python "
            f"{results[False][0]:,.0f} images/s  ({ratios[-1]:.3f}x)",
            flush=True,
        )
    print(
        f"medians: compiled {statistics.median(rates[True]):,.0f}, python "
        f"{statistics.median(rates[False]):,.0f} images/s; median ratio "
        f"{statistics.median(ratios):.3f}x; compiled faster in "
        f"{sum(r > 1 for r in ratios)} of {len(ratios)} pairs"
    )


if __name__ == "__main__":
    main()
