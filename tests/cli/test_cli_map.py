"""``hourglass map`` and the 2-D projection behind it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.image import imread

from hourglass.cli import main
from hourglass.exceptions import HourglassError
from hourglass.projection import project_2d


def test_pca_projection_and_clear_errors() -> None:
    codes = np.random.default_rng(0).normal(size=(50, 6))
    assert project_2d(codes).shape == (50, 2)
    assert project_2d(codes[:, :1]).shape == (50, 2)
    with pytest.raises(HourglassError, match="Unknown projection"):
        project_2d(codes, method="tsne")
    with pytest.raises(HourglassError, match="at least two codes"):
        project_2d(codes[:1])


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("map")
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(300, 5)), columns=list("abcde"))
    frame["kind"] = np.where(frame["a"] > 0, "high", "low")
    frame.to_csv(folder / "rows.csv", index=False)
    np.save(folder / "labels.npy", (frame["a"] > 0).astype(int).to_numpy())
    argv = [
        "train",
        str(folder / "rows.csv"),
        "-o",
        str(folder / "model"),
        "--drop-columns",
        "kind",
        "--epochs",
        "3",
        "--latent-dim",
        "3",
        "-q",
    ]
    assert main(argv) == 0
    return folder


@pytest.mark.parametrize(
    "extra",
    [["--labels", "kind"], ["--labels", "LABELS_FILE"], ["--clusters", "3"], []],
    ids=["column", "file", "clusters", "outlier-flags"],
)
def test_map_writes_a_picture(trained: Path, extra: list[str]) -> None:
    extra = [str(trained / "labels.npy") if e == "LABELS_FILE" else e for e in extra]
    drop = [] if extra[:2] == ["--labels", "kind"] else ["--drop-columns", "kind"]
    out = trained / f"map-{len(extra)}-{extra[-1] if extra else 'flags'}.png".replace("/", "_")
    argv = ["map", str(trained / "model"), str(trained / "rows.csv"), "-o", str(out), *drop, *extra]
    assert main(argv) == 0
    picture = imread(out)
    assert picture.ndim == 3
    assert picture.std() > 0


def test_map_errors_are_one_line(trained: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = ["map", str(trained / "model"), str(trained / "rows.csv"), "--drop-columns", "kind"]
    assert main([*base, "-o", str(trained / "m.jpg")]) == 2  # a bad option value
    assert main([*base, "-o", str(trained / "m.png"), "--labels", "nothere"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0].endswith("use a .png file name.")
    assert "neither a column of DATA nor an existing file" in err[1]
