"""Data-parallel training: sharded batches, DDP in 2 CPU processes (gloo), the ``--nproc`` CLI.

One ``torch.multiprocessing.spawn`` run of 2 processes (the library API) and one
``hourglass train --nproc 2`` run (torchrun, as a user starts it) are shared by the
tests of their kind; each is compared with the same fit in this process.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from numpy.typing import NDArray

import hourglass
from hourglass import Autoencoder, AutoencoderOutlierDetector, distributed
from hourglass.cli import main
from hourglass.data.stream import Stream
from hourglass.exceptions import InvalidInputError
from hourglass.training import TensorSource

# 1002 rows: 201 held out for calibration, 160 for validation, 641 to train on, so the
# last batch of 64 has 1 row and rank 1 runs it with a padding row of weight 0.
N_ROWS, N_FEATURES = 1002, 20
DETECTOR = {
    "arch": "dense",
    "latent_dim": 3,
    "epochs": 5,
    "batch_size": 64,
    "validation_fraction": 0.2,
    "early_stopping": True,
    "patience": 2,
    "fpr": 0.05,
    "random_state": 0,
    "verbose": 0,
    "device": "cpu",  # also on machines with a GPU: the reference fit runs on the CPU
}


def _data(n: int = N_ROWS, seed: int = 0) -> NDArray[np.float32]:
    """Rows in [0, 1] near a 3-dimensional manifold: something a small model learns."""
    rng = np.random.default_rng(seed)
    codes = rng.normal(size=(n, 3))
    mixing = rng.normal(size=(3, N_FEATURES))
    return (1 / (1 + np.exp(-(codes @ mixing)))).astype(np.float32)


def _run_cli(argv: Sequence[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


# ----------------------------------------------------------------- sharding, in process


@pytest.mark.parametrize("n_rows", [37, 33])
def test_the_shares_of_all_ranks_make_up_each_batch(n_rows: int) -> None:
    source = TensorSource(torch.arange(n_rows).unsqueeze(1))
    world = 3

    def epoch() -> list[torch.Tensor]:
        batches = source.epoch(8, shuffle=True, generator=torch.Generator().manual_seed(0))
        return [x for x, _ in batches]

    shares = [
        list(distributed.shard_batches(((x, None) for x in epoch()), rank, world))
        for rank in range(world)
    ]
    for index, batch in enumerate(epoch()):
        rows = [shares[rank][index] for rank in range(world)]
        assert all(total == batch.shape[0] for _, _, _, total in rows)
        assert sum(count for _, _, count, _ in rows) == batch.shape[0]
        counted = torch.cat([x[:count] for x, _, count, _ in rows])
        assert sorted(counted.flatten().tolist()) == sorted(batch.flatten().tolist())
        # Full batches split evenly: batch_size / world_size rows for every rank.
        if batch.shape[0] == 8:
            assert [count for _, _, count, _ in rows] == [3, 3, 2]
    if n_rows == 33:  # a last batch of 1 row: ranks 1 and 2 pad with it, counting 0
        last = [shares[rank][-1] for rank in range(world)]
        assert [count for _, _, count, _ in last] == [1, 0, 0]
        assert all(x.shape[0] == 1 for x, _, _, _ in last)


def test_a_single_process_is_left_alone() -> None:
    assert distributed.world_size() == 1
    assert distributed.rank() == 0
    assert distributed.is_main_process()
    assert distributed.broadcast_seed(123) == 123
    assert distributed.rank_seed(123) == 123
    assert distributed.process_device(torch.device("cpu")) == torch.device("cpu")
    with distributed.process_group("cpu") as parallel:  # WORLD_SIZE is not set here
        assert not parallel
    assert not dist.is_initialized()


def test_a_batch_size_that_does_not_split_evenly_is_refused() -> None:
    with pytest.raises(InvalidInputError, match=r"multiple of 3\. Use batch_size=99 or 102\."):
        distributed.check_batch_size(100, 3)
    with pytest.raises(InvalidInputError, match=r"Use batch_size=4\.$"):
        distributed.check_batch_size(2, 4)
    distributed.check_batch_size(96, 3)


def test_cli_refuses_bad_nproc_settings_before_starting_processes(tmp_path: Path) -> None:
    data = tmp_path / "data.npy"
    np.save(data, _data(50))
    model = tmp_path / "model"
    code, _, err = _run_cli(["train", str(data), "-o", str(model), "--nproc", "3"])
    assert code == 1
    assert "batch_size=64 is the global batch" in err
    assert "must be a multiple of 3. Use batch_size=63 or 66." in err
    code, _, err = _run_cli(["train", str(data), "-o", str(model), "--nproc", "0"])
    assert code == 1
    assert "--nproc must be at least 1; got 0." in err
    assert not model.exists()


# ------------------------------------------------ the library API in 2 processes (spawn)


def _worker(rank: int, world_size: int, store: str, out: str) -> None:
    """One process: join the group, fit, report what it learned and what it wrote."""
    dist.init_process_group(
        "gloo",
        init_method=f"file://{store}",
        rank=rank,
        world_size=world_size,
        timeout=timedelta(seconds=60),  # a hang becomes an error, not a stuck test
    )
    report: dict[str, Any] = {}
    try:
        # Errors first: they are raised before any step, the same on every rank.
        for name, fit in [
            ("indivisible", lambda: Autoencoder(batch_size=63, epochs=1, verbose=0).fit(_data())),
            ("mismatch", lambda: Autoencoder(epochs=1, verbose=0).fit(_data(100 + rank))),
        ]:
            try:
                fit()
            except InvalidInputError as error:
                report[name] = str(error)

        # A resumed fit ends as an uninterrupted one, though each process's noise differs.
        noisy = {"latent_dim": 2, "noise": "gaussian", "random_state": 0, "verbose": 0}
        uninterrupted = Autoencoder(epochs=3, **noisy).fit(_data(300))
        checkpoint = Path(out) / "resumed"
        Autoencoder(epochs=2, **noisy).fit(_data(300), checkpoint_dir=checkpoint)
        resumed = Autoencoder(epochs=3, **noisy).fit(
            _data(300), checkpoint_dir=checkpoint, resume=True
        )
        report["resumed_exactly"] = all(
            torch.equal(a, b)
            for a, b in zip(
                uninterrupted.module_.parameters(), resumed.module_.parameters(), strict=True
            )
        )
        dist.barrier()  # every process has read the checkpoint
        if distributed.is_main_process():
            shutil.rmtree(checkpoint)

        saved_states: list[int] = []
        save_state = hourglass.training.save_state

        def counting_save_state(*args: Any, **kwargs: Any) -> Any:
            saved_states.append(1)
            return save_state(*args, **kwargs)

        hourglass.training.save_state = counting_save_state  # type: ignore[attr-defined]
        detector = AutoencoderOutlierDetector(**DETECTOR)
        detector.fit(_data(), checkpoint_dir=Path(out) / "checkpoint")
        if distributed.is_main_process():
            detector.save(Path(out) / "model")
        report.update(
            history=detector.history_,
            best_epoch=detector.best_epoch_,
            n_epochs=detector.n_epochs_,
            data_min=detector.data_min_.tolist(),
            data_max=detector.data_max_.tolist(),
            threshold=detector.threshold_,
            calibration_scores=detector.calibration_scores_.tolist(),
            scores=detector.score_samples(_data(200, seed=1)).tolist(),
            weights=[p.detach().double().sum().item() for p in detector.module_.parameters()],
            checkpoint_writes=len(saved_states),
            threads=torch.get_num_threads(),
        )
        report["stream"] = _fit_stream_in_process_group(Path(out) / "rows.parquet")
    finally:
        dist.destroy_process_group()
    (Path(out) / f"rank{rank}.json").write_text(json.dumps(report))


def _fit_counting_reads(path: Path) -> tuple[AutoencoderOutlierDetector, dict[str, int]]:
    """Fit on a Parquet stream; the detector, and its row-group reads in and out of training."""
    import hourglass.estimators._fitting as fitting

    reads = {"training": 0, "other": 0}  # other: the checking pass and calibration
    phase = ["other"]
    raw_pieces, train = Stream._raw_pieces, fitting.train

    def counting(stream: Stream, block_index: int) -> Any:
        reads[phase[0]] += 1
        return raw_pieces(stream, block_index)

    def training(*args: Any, **kwargs: Any) -> Any:
        phase[0] = "training"
        try:
            return train(*args, **kwargs)
        finally:
            phase[0] = "other"

    Stream._raw_pieces = counting  # type: ignore[method-assign]
    fitting.train = training  # type: ignore[assignment]
    try:
        return AutoencoderOutlierDetector(**DETECTOR).fit(Stream.open(path)), reads
    finally:
        Stream._raw_pieces = raw_pieces  # type: ignore[method-assign]
        fitting.train = train


def _fit_stream_in_process_group(path: Path) -> dict[str, Any]:
    """Fit on a Parquet stream; report what was learned and how much was read."""
    detector, reads = _fit_counting_reads(path)
    return {
        "reads": reads,
        "val_loss": detector.history_["val_loss"],
        "data_min": detector.data_min_.tolist(),
        "data_max": detector.data_max_.tolist(),
        "n_calibration": detector.n_calibration_,
        "calibration_scores": detector.calibration_scores_.tolist(),
        "threshold": detector.threshold_,
    }


@pytest.fixture(scope="module")
def spawned(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[dict[str, Any]], Path]:
    """What the 2 processes reported, and the folder they wrote to (reports aside)."""
    out = tmp_path_factory.mktemp("spawned")
    _write_parquet(out / "rows.parquet")
    store = tmp_path_factory.mktemp("store") / "rendezvous"
    mp.spawn(_worker, args=(2, str(store), str(out)), nprocs=2, join=True)
    reports = [json.loads((out / f"rank{rank}.json").read_text()) for rank in range(2)]
    for rank in range(2):
        (out / f"rank{rank}.json").unlink()
    (out / "rows.parquet").unlink()
    return reports, out


def _write_parquet(path: Path) -> None:
    """The rows of ``_data()`` as a Parquet file of 11 row groups."""
    columns = {f"f{j}": column for j, column in enumerate(_data().T)}
    pq.write_table(pa.table(columns), path, row_group_size=100)


@pytest.fixture(scope="module")
def single() -> AutoencoderOutlierDetector:
    """The same fit in one process."""
    return AutoencoderOutlierDetector(**DETECTOR).fit(_data())


def test_two_processes_train_like_one(
    spawned: tuple[list[dict[str, Any]], Path], single: AutoencoderOutlierDetector
) -> None:
    reports, _ = spawned
    val_loss = reports[0]["history"]["val_loss"][-1]
    reference = single.history_["val_loss"][-1]
    assert val_loss < single.history_["val_loss"][0]  # it learned
    assert abs(val_loss - reference) <= 0.05 * reference
    # The same gradients up to rounding (union of the shares = the single-process batch).
    assert abs(val_loss - reference) <= 1e-4 * reference
    assert reports[0]["history"]["loss"] == pytest.approx(single.history_["loss"], rel=1e-4)


def test_every_rank_learns_the_same_model_and_statistics(
    spawned: tuple[list[dict[str, Any]], Path], single: AutoencoderOutlierDetector
) -> None:
    rank0, rank1 = spawned[0]
    for key in ("weights", "data_min", "data_max", "threshold", "calibration_scores", "scores"):
        assert rank0[key] == rank1[key], key
    for key in ("loss", "val_loss"):
        assert rank0["history"][key] == rank1["history"][key], key
    # Early stopping decides the same everywhere, and as in one process.
    assert rank0["best_epoch"] == rank1["best_epoch"] == single.best_epoch_
    assert rank0["n_epochs"] == rank1["n_epochs"] == single.n_epochs_
    # Statistics of the data are exactly a single-process fit's.
    assert rank0["data_min"] == single.data_min_.tolist()
    assert rank0["data_max"] == single.data_max_.tolist()
    assert rank0["threshold"] == pytest.approx(single.threshold_, rel=1e-3)
    assert rank0["threads"] == rank1["threads"]


def test_streams_are_read_by_row_group_shares_and_learn_alike(
    spawned: tuple[list[dict[str, Any]], Path], tmp_path: Path
) -> None:
    first, second = (report["stream"] for report in spawned[0])
    for key in ("val_loss", "data_min", "data_max", "calibration_scores", "threshold"):
        assert first[key] == second[key]
    _write_parquet(tmp_path / "rows.parquet")
    alone, reads = _fit_counting_reads(tmp_path / "rows.parquet")
    # Each process read its share of the row groups (6 or 5 of 11), plus at most a few
    # reads of the first group for a padding row or the feature names: in training (every
    # epoch's batches and validation) and out of it (the checking pass, calibration).
    for phase in ("training", "other"):
        shares = [first["reads"][phase], second["reads"][phase]]
        assert sum(shares) <= reads[phase] + 4, (phase, shares, reads)
        assert max(shares) <= 0.6 * reads[phase], (phase, shares, reads)
    np.testing.assert_array_equal(first["data_min"], alone.data_min_)
    np.testing.assert_array_equal(first["data_max"], alone.data_max_)
    assert first["n_calibration"] == alone.n_calibration_
    assert first["val_loss"][-1] == pytest.approx(alone.history_["val_loss"][-1], rel=0.05)


def test_only_rank_zero_writes(spawned: tuple[list[dict[str, Any]], Path]) -> None:
    reports, out = spawned
    assert [r["checkpoint_writes"] for r in reports] == [DETECTOR["epochs"], 0]
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint", "model"]


def test_the_saved_model_loads_and_scores_like_any_other(
    spawned: tuple[list[dict[str, Any]], Path], single: AutoencoderOutlierDetector
) -> None:
    reports, out = spawned
    loaded = hourglass.load(out / "model")
    assert isinstance(loaded, AutoencoderOutlierDetector)
    probe = _data(200, seed=1)
    np.testing.assert_array_equal(loaded.score_samples(probe), reports[0]["scores"])
    np.testing.assert_allclose(loaded.score_samples(probe), single.score_samples(probe), rtol=1e-3)
    assert loaded.threshold_ == reports[0]["threshold"]


def test_a_resumed_fit_ends_as_an_uninterrupted_one(
    spawned: tuple[list[dict[str, Any]], Path],
) -> None:
    assert [report["resumed_exactly"] for report in spawned[0]] == [True, True]


def test_processes_report_errors_instead_of_hanging(
    spawned: tuple[list[dict[str, Any]], Path],
) -> None:
    for report in spawned[0]:
        assert (
            "batch_size=63 is the global batch, split evenly over the 2 processes"
            in (report["indivisible"])
        )
        assert "Use batch_size=62 or 64." in report["indivisible"]
        assert "disagree on the number of samples" in report["mismatch"]
        assert "rank 0: {'samples': 100" in report["mismatch"]


# ----------------------------------------------------- hourglass train --nproc 2 (torchrun)


def _val_loss(stdout: str) -> float:
    match = re.search(r"validation loss ([0-9]+\.[0-9]+)", stdout)
    assert match, stdout
    return float(match.group(1))


def test_cli_trains_in_two_processes_through_torchrun(tmp_path: Path) -> None:
    data = tmp_path / "data.npy"
    np.save(data, _data())
    options = ["--latent-dim", "3", "--epochs", "5", "--validation-fraction", "0.2"]
    options += ["--fpr", "0.05", "--device", "cpu", "-q", "--arch", "dense"]
    code, out_single, err = _run_cli(["train", str(data), "-o", str(tmp_path / "one"), *options])
    assert code == 0, err

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    command = [sys.executable, "-m", "hourglass", "train", str(data), "-o", "model", *options]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    result = subprocess.run(
        [*command, "--nproc", "2", "--checkpoint-dir", "checkpoint"],
        cwd=run_dir,
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("Model saved to model/") == 1  # rank 0 reports and writes
    assert sorted(p.name for p in run_dir.iterdir()) == ["checkpoint", "model"]
    reference = _val_loss(out_single)
    assert abs(_val_loss(result.stdout) - reference) <= 0.05 * reference

    loaded = hourglass.load(run_dir / "model")
    one = hourglass.load(tmp_path / "one")
    probe = _data(200, seed=1)
    np.testing.assert_allclose(loaded.score_samples(probe), one.score_samples(probe), rtol=1e-3)
