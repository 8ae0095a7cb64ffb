"""Benchmark: training and scoring a Parquet file larger than memory should allow.

Builds a Parquet file of ``--size-gb`` GB on disk (default 5) from Fashion-MNIST (train
and test images, as float32 in [0, 1]) repeated with fresh Gaussian noise
(σ = 0.05, clipped to [0, 1]) on every copy, one sample per row in a single
fixed-size-list column of 784 values, row groups of 16,384 rows, snappy-compressed
(about 2.7 KB a row, so 5 GB hold about 1.9M rows). Then, each in
a fresh process through the command line (which streams files over 1 GiB by
itself):

- ``hourglass train FILE -o MODEL --epochs 1`` (the default dense detector:
  a validating pass, one training epoch through the shuffle buffer, and the
  scoring of the calibration rows);
- ``hourglass score MODEL FILE -o scores.parquet`` (written as it goes).

It prints, for each, the wall time, rows per second and the process's peak
resident memory (goal: under 2 GB). The data file is deleted at the end unless
``--keep`` is given.

Run: ``python benchmarks/out_of_core.py [--size-gb 5] [--work-dir DIR] [--keep]``
(the Fashion-MNIST files are found as ``hourglass.data.load_fashion_mnist``
finds them, e.g. under ``$HOURGLASS_DATA``).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROW_GROUP_ROWS = 16_384
NOISE = 0.05
# Runs the command line in this process, then reports the process's peak memory.
CHILD = """
import resource, sys
from hourglass.cli import main
code = main(sys.argv[1:])
print(f"PEAK_RSS_KB={resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}", file=sys.stderr)
sys.exit(code)
"""


def write_parquet(path: Path, size_bytes: int, seed: int = 0) -> int:
    """Write noisy copies of Fashion-MNIST to ``path`` until it is ``size_bytes`` on disk.

    Returns the number of rows written.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    from hourglass.data import load_fashion_mnist

    images = np.concatenate(
        [load_fashion_mnist(split=split)[0] for split in ("train", "test")]
    ).reshape(-1, 784)
    rng = np.random.default_rng(seed)
    kind = pa.list_(pa.float32(), 784)
    schema = pa.schema([pa.field("pixels", kind)])
    written = 0
    with pq.ParquetWriter(path, schema, compression="snappy") as writer:
        while path.stat().st_size < size_bytes:  # row groups reach the disk as written
            count = ROW_GROUP_ROWS
            rows = images[rng.integers(0, len(images), count)].astype(np.float32) / 255.0
            rows += rng.normal(0.0, NOISE, rows.shape).astype(np.float32)
            np.clip(rows, 0.0, 1.0, out=rows)
            values = pa.array(rows.reshape(-1), type=pa.float32())
            column = pa.FixedSizeListArray.from_arrays(values, 784)
            writer.write_table(pa.table([column], schema=schema), row_group_size=ROW_GROUP_ROWS)
            written += count
    return written


def run_cli(arguments: list[str]) -> tuple[float, float, str]:
    """Run ``hourglass ARGUMENTS`` in a fresh process; (seconds, peak RSS in GB, output)."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", CHILD, *arguments], capture_output=True, text=True, check=False
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"hourglass {' '.join(arguments)} failed:\n{done.stderr}")
    match = re.search(r"PEAK_RSS_KB=(\d+)", done.stderr)
    peak = int(match.group(1)) * 1024 / 1e9 if match else float("nan")
    return seconds, peak, done.stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-gb", type=float, default=5.0)
    parser.add_argument("--work-dir", type=Path, default=None, help="default: a temporary one")
    parser.add_argument("--keep", action="store_true", help="keep the data file")
    args = parser.parse_args()
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="hourglass-ooc-"))
    work.mkdir(parents=True, exist_ok=True)
    data = work / "fashion-noisy.parquet"
    try:
        started = time.perf_counter()
        n_rows = write_parquet(data, int(args.size_gb * 1e9))
        size = data.stat().st_size
        print(
            f"Wrote {data}: {n_rows:,} rows x 784 float32, {size / 1e9:.2f} GB on disk, in "
            f"{time.perf_counter() - started:.0f} s."
        )
        print(f"Machine: {os.cpu_count()} cores; peak RSS is the process's maximum.")
        # Files over 1 GiB stream by themselves; smaller trial runs ask for it.
        stream = ["--stream", "always" if size < 2**30 else "auto"]
        train_s, train_peak, train_out = run_cli(
            ["train", str(data), "-o", str(work / "model"), "--epochs", "1", "--quiet", *stream]
        )
        score_s, score_peak, score_out = run_cli(
            ["score", str(work / "model"), str(data), "-o", str(work / "scores.parquet"), *stream]
        )
        print(train_out, score_out, sep="\n")
        print()
        print(f"{'step':<26}{'wall s':>9}{'rows/s':>11}{'peak RSS GB':>13}")
        print(
            f"{'train (1 epoch, all in)':<26}{train_s:>9.0f}{n_rows / train_s:>11,.0f}"
            f"{train_peak:>13.2f}"
        )
        print(
            f"{'score (written as it goes)':<26}{score_s:>9.0f}{n_rows / score_s:>11,.0f}"
            f"{score_peak:>13.2f}"
        )
        verdict = "met" if max(train_peak, score_peak) < 2.0 else "NOT met"
        print(f"Goal peak RSS < 2 GB: {verdict}.")
    finally:
        if not args.keep:
            data.unlink(missing_ok=True)
            if args.work_dir is None:
                shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
