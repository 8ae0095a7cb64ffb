"""Fixed-seed fits of every family, summarised as digests of weights and outputs.

The fixture ``tests/fixtures/family_digests.json`` holds what the hourglass before
the families refactor (commit e6936b5) computed, one record per CPU numerics (each
PyTorch CPU kernel set on each CPU recorded; see ``platform_records.py``);
``test_digests.py`` holds today's code to it. Add this CPU's records, or regenerate them
(only when a change of results is intended), with::

    for k in default avx2 avx512; do
      ATEN_CPU_CAPABILITY=$k python tests/families/family_digests.py --write
    done
"""

from __future__ import annotations

import hashlib
import json
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from helpers import bar_images, mixed_table
from hourglass import Autoencoder, AutoencoderOutlierDetector
from platform_records import cpu_description, kernel_fingerprint, put_record

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "family_digests.json"
#: Outputs kept as values (the first few), for CPUs whose kernels differ from ours.
KEPT_VALUES = 8
FAST: dict[str, Any] = {"epochs": 2, "batch_size": 32, "random_state": 0, "verbose": 0}


def _sha(values: Any) -> str:
    digest = hashlib.sha256()
    if isinstance(values, torch.nn.Module):
        for name, tensor in sorted(values.state_dict().items()):
            digest.update(name.encode())
            digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    elif isinstance(values, pd.DataFrame):
        digest.update(values.to_csv().encode())
    elif isinstance(values, list):
        digest.update(json.dumps(values).encode())
    else:
        digest.update(np.ascontiguousarray(np.asarray(values)).tobytes())
    return digest.hexdigest()


def _texts() -> list[str]:
    words = ["the cat sat", "on the mat", "a dog ran", "in the park", "birds sing"]
    return [" ".join(words[(i + j) % 5] for j in range(1 + i % 3)) for i in range(120)]


def cases() -> dict[str, tuple[Callable[[], Any], Any]]:
    """Name -> (a function fitting a model, the data it is fitted and scored on)."""
    images = bar_images(256, 0)
    reference = bar_images(128, 1, shape=(28, 28))
    table = np.random.default_rng(0).normal(size=(300, 6)).astype(np.float32)
    frame = mixed_table(300, 0)
    texts = _texts()
    return {
        "dense": (lambda: Autoencoder(arch="dense", latent_dim=4, **FAST).fit(images), images),
        "reference-784-64-784": (
            lambda: AutoencoderOutlierDetector(arch="dense", **FAST).fit(reference),
            reference,
        ),
        "conv": (lambda: Autoencoder(arch="conv", latent_dim=4, **FAST).fit(images), images),
        "vae": (lambda: Autoencoder(arch="vae", latent_dim=4, **FAST).fit(images), images),
        "conv_vae": (
            lambda: Autoencoder(arch="conv_vae", latent_dim=4, **FAST).fit(images),
            images,
        ),
        "dense-denoising": (
            lambda: Autoencoder(arch="dense", noise="gaussian", latent_dim=4, **FAST).fit(images),
            images,
        ),
        "dense-invariant": (
            lambda: Autoencoder(arch="dense", invariance=1.0, latent_dim=4, **FAST).fit(images),
            images,
        ),
        # score_type="error": the default before the distance score (identical otherwise).
        "tabular-array": (
            lambda: AutoencoderOutlierDetector(score_type="error", **FAST).fit(table),
            table,
        ),
        "tabular-frame": (
            lambda: AutoencoderOutlierDetector(score_type="error", **FAST).fit(frame),
            frame,
        ),
        "sequence": (
            lambda: AutoencoderOutlierDetector(arch="sequence", latent_dim=8, **FAST).fit(texts),
            texts,
        ),
    }


def summary(model: Any, X: Any) -> dict[str, Any]:
    """Digests of the weights and of every output, and the first few scores as values."""
    errors = model.reconstruction_error(X)
    out: dict[str, Any] = {
        "arch_": model.arch_,
        "weights": _sha(model.module_),
        "codes": _sha(model.transform(X)),
        "reconstruction": _sha(model.reconstruct(X)),
        "errors": _sha(errors),
        "first_errors": [float(e) for e in errors[:KEPT_VALUES]],
    }
    if hasattr(model, "threshold_"):
        out["outlier_scores"] = _sha(model.outlier_score(X))
        out["threshold"] = float(model.threshold_)
    if model.arch_ == "tabular":
        out["explain"] = _sha(model.explain(X).to_numpy())
    if model.arch_ in ("vae", "conv_vae"):
        out["sample"] = _sha(model.sample(5, random_state=1))
        out["negative_elbo"] = _sha(model.negative_elbo(X[:20]))
    with tempfile.TemporaryDirectory() as folder:
        loaded = type(model).load(model.save(Path(folder) / "model"))
        out["errors_after_load"] = _sha(loaded.reconstruction_error(X))
    return out


def compute() -> dict[str, dict[str, Any]]:
    results = {}
    for name, (fit, X) in cases().items():
        results[name] = summary(fit(), X)
    return results


if __name__ == "__main__":
    if "--write" in sys.argv:
        saved = json.loads(FIXTURE.read_text())
        put_record(saved, compute())
        FIXTURE.write_text(json.dumps(saved, indent=1, sort_keys=True) + "\n")
        print(f"wrote the record of {cpu_description()}, {kernel_fingerprint()} to {FIXTURE}")
    else:
        print(json.dumps(compute(), indent=1))
