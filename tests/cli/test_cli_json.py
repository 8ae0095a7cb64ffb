"""``--json`` prints machine-readable results on standard output."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from hourglass.cli import main


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("json")
    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(c, 0.05, (60, 6)) for c in (0.2, 0.8)]).astype(np.float32)
    np.save(folder / "x.npy", X)
    assert (
        main(
            [
                "train",
                str(folder / "x.npy"),
                "-o",
                str(folder / "m"),
                "--epochs",
                "5",
                "--latent-dim",
                "2",
                "--contamination",
                "0.1",
                "-q",
            ]
        )
        == 0
    )
    return folder


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> dict:
    capsys.readouterr()
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_score_json(files: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = _run(
        ["score", str(files / "m"), str(files / "x.npy"), "-o", str(files / "s.csv"), "--json"],
        capsys,
    )
    assert out["n_samples"] == 120
    assert out["score"] == "distance"  # rows of numbers: the tabular family's score
    assert len(out["results"]) == 120
    assert set(out["results"][0]) == {
        "index",
        "reconstruction_error",
        "outlier_score",
        "p_value",
        "is_outlier",
        "top_columns",
    }
    assert out["n_outliers"] == sum(r["is_outlier"] for r in out["results"])


def test_cluster_json(files: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = _run(
        [
            "cluster",
            str(files / "m"),
            str(files / "x.npy"),
            "-k",
            "2",
            "-o",
            str(files / "c.csv"),
            "--json",
        ],
        capsys,
    )
    assert out["n_clusters"] == 2
    assert sum(out["sizes"]) == 120
    assert out["partitioned_on"] in ("embedding", "features")
    assert {r["cluster"] for r in out["results"]} == {0, 1}


def test_neighbors_json(files: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = _run(
        [
            "neighbors",
            str(files / "m"),
            str(files / "x.npy"),
            "--reference",
            str(files / "x.npy"),
            "-k",
            "3",
            "--json",
        ],
        capsys,
    )
    assert out["n_queries"] == 120
    assert out["k"] == 3
    assert len(out["results"]) == 360
    assert set(out["results"][0]) == {"query", "rank", "reference_index", "similarity"}
