"""Same seed, same data: identical weights and scores, in one process and across processes."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import hourglass
from helpers import bar_images, mixed_table
from hourglass import AutoencoderOutlierDetector

# Every family, with the options that draw random numbers during training.
FAMILIES: dict[str, dict[str, Any]] = {
    "dense": {"arch": "dense"},
    "dense, denoising": {"arch": "dense", "noise": "mask", "validation_fraction": 0.2},
    "conv": {"arch": "conv"},
    "conv, invariance": {"arch": "conv", "invariance": 1.0},
    "vae": {"arch": "vae", "hidden_dims": (16, 8)},
    "conv_vae": {"arch": "conv_vae"},
    "tabular": {"arch": "tabular"},
    "sequence": {"arch": "sequence", "hidden_dims": (16,)},
    "transformer": {"arch": "transformer", "hidden_dims": (16,)},
    "transformer, denoising": {
        "arch": "transformer",
        "hidden_dims": (16,),
        "noise": "word_deletion",
    },
}


def family_data(family: str) -> Any:
    """Small training data for ``family``."""
    if family == "tabular":
        return mixed_table(120, 0)
    if family.startswith(("sequence", "transformer")):
        return ["the cat sat", "on the mat", "a dog ran", "far away"] * 10
    return bar_images(120, 0)


def fit_detector(family: str, data: Any, *, epochs: int, seed: int) -> AutoencoderOutlierDetector:
    """A tiny detector of ``family`` trained on ``data``."""
    return AutoencoderOutlierDetector(
        **FAMILIES[family],
        latent_dim=2,
        epochs=epochs,
        batch_size=16,
        fpr=0.2,
        verbose=0,
        random_state=seed,
    ).fit(data)


def fingerprint(family: str) -> dict[str, str]:
    """SHA-256 of the weights and of the scores of a model trained with seed 0."""
    data = family_data(family)
    model = fit_detector(family, data, epochs=2, seed=0)
    weights = hashlib.sha256()
    for name, tensor in sorted(model.module_.state_dict().items()):
        weights.update(name.encode())
        weights.update(tensor.cpu().numpy().tobytes())
    scores = model.score_samples(data)
    return {"weights": weights.hexdigest(), "scores": hashlib.sha256(scores.tobytes()).hexdigest()}


@pytest.mark.parametrize("family", FAMILIES)
def test_the_same_seed_gives_the_same_weights_and_scores(family: str) -> None:
    assert fingerprint(family) == fingerprint(family)


@pytest.mark.parametrize("family", FAMILIES)
def test_training_leaves_the_global_random_generators_alone(family: str) -> None:
    torch_state, numpy_state = torch.get_rng_state(), np.random.get_state()[1].copy()  # noqa: NPY002
    fingerprint(family)
    assert torch.equal(torch.get_rng_state(), torch_state)
    np.testing.assert_array_equal(np.random.get_state()[1], numpy_state)  # noqa: NPY002


@pytest.mark.parametrize("family", FAMILIES)
def test_scores_do_not_change_between_calls_or_across_save_and_load(
    family: str, tmp_path: Path
) -> None:
    data = family_data(family)
    model = fit_detector(family, data, epochs=1, seed=1)
    first = model.score_samples(data)
    np.testing.assert_array_equal(model.score_samples(data), first)
    np.testing.assert_array_equal(model.predict(data), model.predict(data))
    model.save(tmp_path / "model")
    loaded = hourglass.load(tmp_path / "model")
    np.testing.assert_array_equal(loaded.score_samples(data), first)
    np.testing.assert_array_equal(loaded.transform(data), model.transform(data))


def test_another_process_trains_bit_identical_models() -> None:
    """A fresh interpreter (own thread pool, own import order) gets the same bits."""
    script = textwrap.dedent(
        f"""
        import json, sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        sys.path.insert(0, {str(Path(__file__).parents[1])!r})
        from test_determinism import FAMILIES, fingerprint
        print(json.dumps({{family: fingerprint(family) for family in FAMILIES}}))
        """
    )
    env = {**os.environ, "PYTHONHASHSEED": "123"}
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300
    )
    assert result.returncode == 0, result.stderr
    other = json.loads(result.stdout.strip().splitlines()[-1])
    assert other == {family: fingerprint(family) for family in FAMILIES}


@pytest.mark.parametrize("family", FAMILIES)
def test_a_sample_scores_the_same_alone_or_in_a_batch(family: str) -> None:
    data = family_data(family)
    model = fit_detector(family, data, epochs=1, seed=1)
    together = model.score_samples(data[:5] if not hasattr(data, "iloc") else data.iloc[:5])
    for i in range(5):
        row = data[i : i + 1] if not hasattr(data, "iloc") else data.iloc[i : i + 1]
        assert model.score_samples(row)[0] == together[i]


def test_image_models_score_flat_rows_like_images() -> None:
    images = bar_images(60, 0)
    for arch in ("dense", "conv"):
        model = AutoencoderOutlierDetector(
            arch=arch, latent_dim=2, epochs=1, fpr=0.2, verbose=0, random_state=0
        ).fit(images)
        np.testing.assert_array_equal(
            model.score_samples(images.reshape(60, -1)), model.score_samples(images)
        )
