"""Benchmark: a sequence autoencoder trained on English flags German.

Protocol: ``en.txt`` and ``de.txt`` (one text per line) from the data folder's
``text/`` sub-folder; a fixed permutation of the English lines
(``default_rng(0)``) gives 80% for training and 20% held out. The model,
``Autoencoder(arch="sequence")`` with the given epochs and learning rate, is
scored by the mean negative log-likelihood per byte of each text; held-out
English is the normal class and German the outliers. Printed: AUROC, average
precision, training time, and the nearest neighbours of a few held-out
sentences among the other held-out sentences (cosine similarity of codes).

Goal: AUROC ≥ 0.95.

Run: ``python benchmarks/text.py [--data-dir DIR] [--epochs 4] [--learning-rate 3e-3]``
(``--data-dir`` defaults to ``$HOURGLASS_DATA``).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score

from hourglass import Autoencoder
from hourglass.data import read_data


def main() -> None:
    """Train, score, print."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default=os.environ.get("HOURGLASS_DATA"))
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--learning-rate", type=float, default=3e-3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if not args.data_dir:
        parser.error("pass --data-dir or set HOURGLASS_DATA (the folder holding text/)")
    folder = Path(args.data_dir) / "text"
    english = list(read_data(folder / "en.txt"))
    german = list(read_data(folder / "de.txt"))
    order = np.random.default_rng(0).permutation(len(english))
    cut = int(0.8 * len(english))
    train = [english[i] for i in order[:cut]]
    held_out = [english[i] for i in order[cut:]]

    started = time.perf_counter()
    model = Autoencoder(
        arch="sequence",
        epochs=args.epochs,
        learning_rate=args.learning_rate,
        random_state=args.seed,
        verbose=0,
    ).fit(train)
    fit_seconds = time.perf_counter() - started
    started = time.perf_counter()
    normal = model.reconstruction_error(held_out)
    outliers = model.reconstruction_error(german)
    score_seconds = time.perf_counter() - started
    y = np.r_[np.zeros(normal.size), np.ones(outliers.size)]
    scores = np.r_[normal, outliers]
    auroc = roc_auc_score(y, scores)

    print(
        f"train {len(train):,} English texts, {args.epochs} epochs: {fit_seconds:.0f} s "
        f"(loss per epoch: {', '.join(f'{v:.3f}' for v in model.history_['loss'])})"
    )
    print(
        f"score {len(held_out):,} held-out English + {len(german):,} German texts: "
        f"{score_seconds:.1f} s"
    )
    print(f"mean NLL per byte: English {normal.mean():.3f}, German {outliers.mean():.3f}")
    print(f"AUROC {auroc:.4f}, average precision {average_precision_score(y, scores):.4f}")
    print(f"{'PASS' if auroc >= 0.95 else 'FAIL'}: AUROC >= 0.95")
    print("\nNearest held-out neighbours (cosine similarity of codes):")
    for query, neighbours in zip(
        held_out[:3], model.most_similar(held_out[:3], held_out, k=3), strict=True
    ):
        print(f"  {query[:70]!r}")
        for _, similarity, text in neighbours[1:]:
            print(f"    {similarity:.3f}  {text[:70]!r}")


if __name__ == "__main__":
    main()
