"""Text through the CLI: train on a .txt file, then score, encode and denoise."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from hourglass import load
from hourglass.cli import main


def write_training_texts(path: Path, seed: int) -> None:
    """200 lines of five words drawn from eight, one text per line."""
    rng = np.random.default_rng(seed)
    words = ["the", "cat", "sat", "on", "a", "mat", "dog", "ran"]
    lines = [" ".join(rng.choice(words, size=5)) for _ in range(200)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_train_score_and_encode_a_text_file(tmp_path: Path) -> None:
    write_training_texts(tmp_path / "train.txt", 0)
    (tmp_path / "new.txt").write_text("the cat sat\nÄÖÜ ßßß 12345\n\n", encoding="utf-8")
    model = tmp_path / "model"
    argv = [
        "train",
        str(tmp_path / "train.txt"),
        "-o",
        str(model),
        "--arch",
        "sequence",
        "--epochs",
        "2",
        "--latent-dim",
        "8",
        "--hidden-dims",
        "16",
        "-q",
    ]
    assert main(argv) == 0
    assert load(model).arch_ == "sequence"

    scores = tmp_path / "scores.csv"
    assert main(["score", str(model), str(tmp_path / "new.txt"), "-o", str(scores)]) == 0
    table = pd.read_csv(scores)
    assert len(table) == 3  # one row per line, the empty one included
    assert table["reconstruction_error"].iloc[1] > table["reconstruction_error"].iloc[0]

    codes = tmp_path / "codes.npy"
    assert main(["encode", str(model), str(tmp_path / "new.txt"), "-o", str(codes)]) == 0
    assert np.load(codes).shape == (3, 8)


def test_train_a_denoising_text_model_and_denoise_a_text_file(tmp_path: Path) -> None:
    write_training_texts(tmp_path / "train.txt", 1)
    (tmp_path / "noisy.txt").write_text("teh cat sat\nthe dgo ran on a mat\n", encoding="utf-8")
    model = tmp_path / "model"
    argv = ["train", str(tmp_path / "train.txt"), "-o", str(model), "--noise", "typos"]
    assert (
        main([*argv, "--noise-strength", "0.1", "--epochs", "2", "--hidden-dims", "16", "-q"]) == 0
    )
    assert load(model).arch_ == "transformer"
    assert load(model).noise == "typos"

    cleaned = tmp_path / "clean.txt"
    assert main(["denoise", str(model), str(tmp_path / "noisy.txt"), "-o", str(cleaned)]) == 0
    assert len(cleaned.read_text(encoding="utf-8").splitlines()) == 2
    streamed = tmp_path / "streamed.txt"
    noisy = str(tmp_path / "noisy.txt")
    assert main(["denoise", str(model), noisy, "-o", str(streamed), "--stream", "always"]) == 0
    assert streamed.read_text(encoding="utf-8") == cleaned.read_text(encoding="utf-8")
