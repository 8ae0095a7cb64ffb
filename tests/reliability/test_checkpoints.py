"""Interrupted training loses nothing: checkpoints, resume, and a SIGKILL mid-epoch."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import hourglass
from helpers import bar_images, mixed_table
from hourglass import Autoencoder, AutoencoderOutlierDetector
from hourglass.checkpoint import CHECKPOINT_NAME, epochs_done
from hourglass.exceptions import InvalidInputError, ModelFileError


def _weights(model: Autoencoder) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.module_.state_dict().items()}


def _assert_same_weights(a: Autoencoder, b: Autoencoder) -> None:
    wa, wb = _weights(a), _weights(b)
    assert wa.keys() == wb.keys()
    for name in wa:
        assert torch.equal(wa[name], wb[name]), name


FAMILIES: dict[str, tuple[dict[str, Any], Any]] = {
    "dense": ({"arch": "dense", "latent_dim": 4}, bar_images(120, 0)),
    "dense, noise, validation": (
        {"arch": "dense", "latent_dim": 4, "noise": "gaussian", "validation_fraction": 0.2},
        bar_images(120, 0),
    ),
    "conv, invariance": ({"arch": "conv", "latent_dim": 4, "invariance": 1.0}, bar_images(80, 0)),
    "vae": ({"arch": "vae", "latent_dim": 2, "hidden_dims": (16, 8)}, bar_images(120, 0)),
    "tabular": ({"arch": "tabular", "latent_dim": 3}, mixed_table(120, 0)),
    "sequence": ({"arch": "sequence", "latent_dim": 4, "hidden_dims": (16,)}, ["ab", "abc"] * 20),
    "transformer, typos": (
        {"arch": "transformer", "latent_dim": 4, "hidden_dims": (16,), "noise": "typos"},
        ["a cat", "the dog sat"] * 20,
    ),
}


@pytest.mark.parametrize("family", FAMILIES)
def test_resuming_ends_with_the_weights_of_an_uninterrupted_run(family: str, tmp_path) -> None:
    params, data = FAMILIES[family]
    settings = {**params, "batch_size": 16, "verbose": 0, "random_state": 7}
    uninterrupted = Autoencoder(**settings, epochs=4).fit(data)

    Autoencoder(**settings, epochs=2).fit(data, checkpoint_dir=tmp_path)
    assert epochs_done(tmp_path) == 2
    resumed = Autoencoder(**settings, epochs=4).fit(data, checkpoint_dir=tmp_path, resume=True)

    assert epochs_done(tmp_path) == 4
    _assert_same_weights(uninterrupted, resumed)
    assert resumed.history_.keys() == uninterrupted.history_.keys()
    for key in ("loss", "val_loss"):
        assert resumed.history_.get(key) == uninterrupted.history_.get(key)


def test_early_stopping_state_survives_a_resume(tmp_path) -> None:
    data = bar_images(150, 1)
    settings = {
        "latent_dim": 4,
        "early_stopping": True,
        "patience": 2,
        "learning_rate": 0.05,
        "verbose": 0,
        "random_state": 3,
    }
    uninterrupted = Autoencoder(**settings, epochs=12).fit(data)
    Autoencoder(**settings, epochs=5).fit(data, checkpoint_dir=tmp_path)
    resumed = Autoencoder(**settings, epochs=12).fit(data, checkpoint_dir=tmp_path, resume=True)
    _assert_same_weights(uninterrupted, resumed)
    assert resumed.best_epoch_ == uninterrupted.best_epoch_
    assert resumed.n_epochs_ == uninterrupted.n_epochs_


def test_the_outlier_detector_resumes_to_the_same_threshold(tmp_path) -> None:
    data = bar_images(300, 2)
    settings = {"latent_dim": 4, "fpr": 0.05, "verbose": 0, "random_state": 0}
    uninterrupted = AutoencoderOutlierDetector(**settings, epochs=3).fit(data)
    AutoencoderOutlierDetector(**settings, epochs=1).fit(data, checkpoint_dir=tmp_path)
    resumed = AutoencoderOutlierDetector(**settings, epochs=3).fit(
        data, checkpoint_dir=tmp_path, resume=True
    )
    assert resumed.threshold_ == uninterrupted.threshold_
    np.testing.assert_array_equal(resumed.score_samples(data), uninterrupted.score_samples(data))


def test_resume_without_a_checkpoint_starts_afresh(tmp_path) -> None:
    data = bar_images(60, 0)
    settings = {"latent_dim": 4, "epochs": 2, "verbose": 0, "random_state": 0}
    fresh = Autoencoder(**settings).fit(data)
    resumed = Autoencoder(**settings).fit(data, checkpoint_dir=tmp_path / "new", resume=True)
    _assert_same_weights(fresh, resumed)
    assert (tmp_path / "new" / CHECKPOINT_NAME).is_file()


def test_a_checkpoint_of_other_data_or_settings_is_refused(tmp_path) -> None:
    settings = {"latent_dim": 4, "epochs": 1, "verbose": 0, "random_state": 0}
    Autoencoder(**settings).fit(bar_images(60, 0), checkpoint_dir=tmp_path)
    with pytest.raises(InvalidInputError, match="other data or settings"):
        Autoencoder(**settings).fit(bar_images(60, 1), checkpoint_dir=tmp_path, resume=True)
    with pytest.raises(InvalidInputError, match="other data or settings"):
        Autoencoder(**settings, learning_rate=0.1).fit(
            bar_images(60, 0), checkpoint_dir=tmp_path, resume=True
        )


def test_a_damaged_checkpoint_is_a_clear_error(tmp_path) -> None:
    settings = {"latent_dim": 4, "epochs": 1, "verbose": 0, "random_state": 0}
    Autoencoder(**settings).fit(bar_images(60, 0), checkpoint_dir=tmp_path)
    path = tmp_path / CHECKPOINT_NAME
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(ModelFileError, match="delete it to start afresh"):
        Autoencoder(**settings).fit(bar_images(60, 0), checkpoint_dir=tmp_path, resume=True)


def test_a_crash_while_writing_keeps_the_previous_checkpoint(tmp_path, monkeypatch) -> None:
    settings = {"latent_dim": 4, "verbose": 0, "random_state": 0}
    data = bar_images(60, 0)
    Autoencoder(**settings, epochs=1).fit(data, checkpoint_dir=tmp_path)
    before = (tmp_path / CHECKPOINT_NAME).read_bytes()

    import hourglass.checkpoint as checkpoint_module

    def crash_midway(tensors: dict[str, torch.Tensor], filename: str, metadata: Any) -> None:
        Path(filename).write_bytes(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(checkpoint_module, "save_file", crash_midway)
    with pytest.raises(OSError, match="disk full"):
        Autoencoder(**settings, epochs=3).fit(data, checkpoint_dir=tmp_path, resume=True)
    assert (tmp_path / CHECKPOINT_NAME).read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [CHECKPOINT_NAME]


TRAINING_SCRIPT = textwrap.dedent(
    """
    import sys
    import numpy as np
    from hourglass import Autoencoder

    data = np.random.default_rng(0).random((12000, 32), dtype=np.float32)
    Autoencoder(latent_dim=8, hidden_dims=(64,), epochs=int(sys.argv[2]), batch_size=4,
                verbose=0, random_state=0).fit(data, checkpoint_dir=sys.argv[1], resume=True)
    """
)


def test_a_run_killed_mid_epoch_resumes_to_the_uninterrupted_weights(tmp_path) -> None:
    epochs = 4
    script = tmp_path / "train.py"
    script.write_text(TRAINING_SCRIPT)
    checkpoint = tmp_path / "checkpoints" / CHECKPOINT_NAME
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(
        [sys.executable, str(script), str(checkpoint.parent), str(epochs)], env=env
    )
    try:
        deadline = time.monotonic() + 120
        while not checkpoint.exists():  # the first epoch is done
            assert process.poll() is None, "training ended before writing a checkpoint"
            assert time.monotonic() < deadline, "no checkpoint within two minutes"
            time.sleep(0.01)
        first = checkpoint.stat().st_mtime_ns
        while checkpoint.stat().st_mtime_ns == first:  # the second epoch is done
            assert process.poll() is None, "training ended too early to be interrupted"
            time.sleep(0.01)
        second = time.monotonic()
        os.kill(process.pid, signal.SIGKILL)  # at once: the third epoch (3,000 batches) has begun
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == -signal.SIGKILL
    assert time.monotonic() - second < 5  # killed during the third epoch, not after it
    assert epochs_done(checkpoint.parent) == 2  # the last complete epoch, readable

    data = np.random.default_rng(0).random((12000, 32), dtype=np.float32)
    settings = {
        "latent_dim": 8,
        "hidden_dims": (64,),
        "epochs": epochs,
        "batch_size": 4,
        "verbose": 0,
        "random_state": 0,
    }
    resumed = Autoencoder(**settings).fit(data, checkpoint_dir=checkpoint.parent, resume=True)
    uninterrupted = Autoencoder(**settings).fit(data)
    _assert_same_weights(uninterrupted, resumed)
    assert resumed.history_["loss"] == uninterrupted.history_["loss"]
    assert sorted(p.name for p in checkpoint.parent.iterdir()) == [CHECKPOINT_NAME]


def test_hourglass_train_checkpoints_and_resumes(tmp_path) -> None:
    from hourglass.cli import main

    np.save(tmp_path / "train.npy", bar_images(200, 0))
    common = ["train", str(tmp_path / "train.npy"), "--latent-dim", "4", "--seed", "0", "-q"]
    checkpoints = tmp_path / "checkpoints"
    assert main([*common, "-o", str(tmp_path / "a"), "--epochs", "3"]) == 0
    argv = [*common, "--checkpoint-dir", str(checkpoints), "--resume"]
    assert main([*argv, "-o", str(tmp_path / "b"), "--epochs", "1"]) == 0
    assert epochs_done(checkpoints) == 1
    assert main([*argv, "-o", str(tmp_path / "b"), "--epochs", "3"]) == 0
    assert epochs_done(checkpoints) == 3
    X = bar_images(20, 1)
    np.testing.assert_array_equal(
        hourglass.load(tmp_path / "a").score_samples(X),
        hourglass.load(tmp_path / "b").score_samples(X),
    )


def test_hourglass_train_resume_needs_a_checkpoint_dir(tmp_path, capsys) -> None:
    from hourglass.cli import main

    np.save(tmp_path / "train.npy", bar_images(50, 0))
    code = main(["train", str(tmp_path / "train.npy"), "-o", str(tmp_path / "m"), "--resume"])
    assert code != 0
    assert "--resume needs --checkpoint-dir" in capsys.readouterr().err
