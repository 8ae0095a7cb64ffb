"""Benchmark: hourglass and PyOD's detectors side by side on ADBench data sets.

**Protocol** (``adbench_protocol.py``, ADBench's unsupervised one): for every ``.npz``
data set of ``--data`` (numeric ``X``, labels ``y`` with 1 = outlier) and every seed, a
stratified 70/30 split; each detector is fitted on the training part *without
labels* (so that part keeps the data set's contamination), inputs min-max scaled on
the training part; AUROC and AUPRC (average precision) of the test part's outlier
scores, outliers as positives. ``X`` is read as float64, ADBench's own dtype. Scores
that are not finite (PyOD's ``PCA`` divides by each component's explained variance,
which is exactly zero on data sets with constant training columns) are replaced by
their ranks, which AUROC and AUPRC depend on alone, and reported. The script prints
the per-data-set AUROC and AUPRC tables (means over seeds) and, per detector, mean
AUROC, mean AUPRC, average rank (by each data set's mean AUROC; 1 = best, ties share
the mean rank) and wall time (fit and scoring, summed over data sets and seeds), and
writes one CSV row per data set, seed and detector.

**Detectors** (``--detectors``; default: every one but the candidates):

- ``hourglass-dense``: ``AutoencoderOutlierDetector(arch="dense")``.
- ``hourglass-tabular``: ``AutoencoderOutlierDetector(arch="tabular")``, what the default
  (``arch="auto"``) trains on these tables: hourglass's
  default tabular detector.
- PyOD's ``IForest``, ``ECOD``, ``KNN``, ``LOF``, ``PCA``, ``AutoEncoder`` and ``VAE``
  with their defaults, seeded with ``random_state=seed`` where they take one, deep
  models with ``verbose=0``.
- ``hourglass-tabular-clean`` (a control that uses labels, never ranked): as
  ``hourglass-tabular``, but fitted on the *normal* rows of the training part only,
  so that its calibration split holds normal data, as the conformal guarantee assumes.
- ``cand-*``: candidate hourglass configurations for better defaults (built from
  public parameters only; measurements, not defaults), run when named or with
  ``--detectors all``. Each is ranked as if it alone joined the compared detectors.

Every hourglass detector gets ``random_state=seed, verbose=0`` and picks its torch
threads itself (``num_threads=None``). PyOD's deep detectors run with
``--pyod-threads`` torch threads (default 1: on a busy 2-core machine, two threads made
PyOD's AutoEncoder up to 30x slower per epoch).

**Thresholds.** hourglass's default threshold is split-conformal: 20% of the training
part is held out of training and the threshold is set so that at most ``fpr`` (1% by
default) of normal data is flagged. For every hourglass detector with a threshold the
script counts the *normal* test rows flagged at α = 1% and 5% and compares the
realised false-positive rate k/n (n normal test rows) with the central 95% binomial
interval of α, ``[F⁻¹(0.025), F⁻¹(0.975)] / n`` for F the Binomial(n, α) distribution
function. That interval treats the threshold as fixed; the calibrated threshold is
itself random, so the script also gives the exact spread the conformal guarantee
implies for exchangeable normal data: a threshold at the r-th smallest of m
calibration scores flags a Beta(m + 1 − r, r) fraction of normal data, so k is
beta-binomial (the "conformal interval", its central 95%). The CSV also holds each
realised rate's Clopper–Pearson 95% interval. The α = 1% flags equal the detector's
own ``predict`` (checked on every fit); the α = 5% ones use
``hourglass.scoring.conformal_threshold(calibration_scores_, 0.05)``, exactly the
threshold ``fpr=0.05`` sets for the same ``random_state`` (neither the model nor the
calibration split depends on ``fpr``). Where the calibration split is too small for α
(fewer than 1/α − 1 samples), hourglass warns and thresholds at the largest
calibration score instead; such cells are marked †.

**Install** (PyOD is a benchmark-only extra, not installed by ``make install``)::

    pip install -c constraints.txt -e ".[bench]"

**Run**::

    python benchmarks/adbench.py [--data DIR] [--seeds 0 1 2] [--detectors NAME ...]
        [--out benchmarks/results/adbench.csv] [--pyod-threads 1]

``--data`` defaults to ``$HOURGLASS_DATA/adbench-dev``; any folder of ``.npz`` files
with ``X`` and ``y`` works.
"""

from __future__ import annotations

import argparse
import csv
import importlib
import math
import os
import platform
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from scipy.stats import betabinom, binom, binomtest, rankdata
from sklearn.metrics import average_precision_score, roc_auc_score

from adbench_protocol import Split, data_sets, load_npz, split_and_scale
from hourglass import AutoencoderOutlierDetector
from hourglass.scoring import conformal_threshold

ALPHAS = (0.01, 0.05)  # target false-positive rates whose realised rates are reported
ENSEMBLE_MEMBERS = 5
SMALL_CALIBRATION = ".*calibration samples cannot guarantee"  # hourglass's warning
DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "adbench.csv"
INSTALL_HINT = 'PyOD is missing: pip install -c constraints.txt -e ".[bench]"'


@dataclass
class Outcome:
    """What one fitted detector says about one test part."""

    scores: np.ndarray  # outlier scores of the test rows: the higher, the more abnormal
    flags: dict[float, np.ndarray] = field(default_factory=dict)  # alpha -> flagged test rows
    n_calibration: int | None = None  # size of hourglass's calibration split


Fit = Callable[[Split, int], Outcome]  # (split, seed) -> outcome on split.test


@dataclass(frozen=True)
class Detector:
    """A named way to fit on a split's training part and score its test part."""

    name: str
    kind: str  # "hourglass" or "PyOD" (compared and ranked), "control" or "candidate"
    fit: Fit
    description: str


# --- hourglass ---------------------------------------------------------------------------


def hourglass_outcome(detector: AutoencoderOutlierDetector, test: np.ndarray) -> Outcome:
    """Scores and, at every alpha of ALPHAS, the rows a conformal threshold flags."""
    scores = detector.outlier_score(test)
    flags = {}
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=SMALL_CALIBRATION)
        for alpha in ALPHAS:
            threshold = conformal_threshold(detector.calibration_scores_, alpha)
            flags[alpha] = scores > threshold
    own = detector.predict(test) == -1  # the detector's own flags, at its default fpr of 1%
    if not np.array_equal(flags[0.01], own):
        raise RuntimeError("conformal_threshold disagrees with the detector's predict")
    return Outcome(scores, flags, detector.n_calibration_)


def fit_hourglass(
    train: np.ndarray, seed: int, params: dict[str, Any]
) -> AutoencoderOutlierDetector:
    """``AutoencoderOutlierDetector(**params)`` fitted quietly on ``train``."""
    detector = AutoencoderOutlierDetector(**params, random_state=seed, verbose=0)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=SMALL_CALIBRATION)
        detector.fit(train)
    return detector


def hourglass(normal_only: bool = False, **params: Any) -> Fit:
    """A hourglass detector; ``normal_only`` fits on the normal training rows (uses labels)."""

    def fit(split: Split, seed: int) -> Outcome:
        train = split.train[split.y_train == 0] if normal_only else split.train
        return hourglass_outcome(fit_hourglass(train, seed, params), split.test)

    return fit


def hourglass_ensemble(members: int, **params: Any) -> Fit:
    """Mean rank of the test scores of ``members`` detectors with different seeds."""

    def fit(split: Split, seed: int) -> Outcome:
        ranks = [
            rankdata(fit_hourglass(split.train, 1000 * seed + i, params).outlier_score(split.test))
            for i in range(members)
        ]
        return Outcome(np.mean(ranks, axis=0) / len(split.test))

    return fit


# --- PyOD ---------------------------------------------------------------------------------


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run the block with ``n`` torch threads, then restore the previous count."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def pyod(path: str, seeded: bool = False, deep: bool = False, threads: int = 1) -> Fit:
    """PyOD's ``path`` ("module.Class" under pyod.models) with its defaults."""
    module_name, class_name = path.rsplit(".", 1)

    def fit(split: Split, seed: int) -> Outcome:
        try:
            module = importlib.import_module(f"pyod.models.{module_name}")
        except ModuleNotFoundError as error:
            raise SystemExit(INSTALL_HINT) from error
        params: dict[str, Any] = {"random_state": seed} if seeded else {}
        if deep:
            params["verbose"] = 0
        with torch_threads(threads):
            model = getattr(module, class_name)(**params).fit(split.train)
            return Outcome(np.asarray(model.decision_function(split.test), dtype=np.float64))

    return fit


def detectors(pyod_threads: int) -> dict[str, Detector]:
    """Every detector the script knows, in table order."""
    tabular: dict[str, Any] = {"arch": "tabular"}
    listed = [
        Detector(
            "hourglass-dense",
            "hourglass",
            hourglass(arch="dense"),
            'AutoencoderOutlierDetector(arch="dense")',
        ),
        Detector(
            "hourglass-tabular",
            "hourglass",
            hourglass(**tabular),
            'AutoencoderOutlierDetector(arch="tabular")',
        ),
        Detector("IForest", "PyOD", pyod("iforest.IForest", seeded=True), "IForest()"),
        Detector("ECOD", "PyOD", pyod("ecod.ECOD"), "ECOD()"),
        Detector("KNN", "PyOD", pyod("knn.KNN"), "KNN()"),
        Detector("LOF", "PyOD", pyod("lof.LOF"), "LOF()"),
        Detector("PCA", "PyOD", pyod("pca.PCA", seeded=True), "PCA()"),
        Detector(
            "AutoEncoder",
            "PyOD",
            pyod("auto_encoder.AutoEncoder", seeded=True, deep=True, threads=pyod_threads),
            "AutoEncoder()",
        ),
        Detector(
            "VAE",
            "PyOD",
            pyod("vae.VAE", seeded=True, deep=True, threads=pyod_threads),
            "VAE()",
        ),
        Detector(
            "hourglass-tabular-clean",
            "control",
            hourglass(normal_only=True, **tabular),
            'AutoencoderOutlierDetector(arch="tabular") fitted on the normal training rows',
        ),
        Detector(
            "cand-tabular-e30",
            "candidate",
            hourglass(arch="tabular", epochs=30),
            'arch="tabular", epochs=30',
        ),
        Detector(
            "cand-tabular-h128-e30",
            "candidate",
            hourglass(arch="tabular", hidden_dims=(128,), epochs=30),
            'arch="tabular", hidden_dims=(128,), epochs=30',
        ),
        Detector(
            "cand-tabular-untrimmed",
            "candidate",
            hourglass(arch="tabular", trim=0.0),
            'arch="tabular", trim=0 (every training row in the loss: the default before trim)',
        ),
        *(
            Detector(
                f"cand-tabular-trim{round(100 * trim)}",
                "candidate",
                hourglass(arch="tabular", trim=trim),
                f'arch="tabular", trim={trim}',
            )
            for trim in (0.05, 0.1, 0.3)
        ),
        Detector(
            f"cand-tabular-x{ENSEMBLE_MEMBERS}",
            "candidate",
            hourglass_ensemble(ENSEMBLE_MEMBERS, **tabular),
            f'{ENSEMBLE_MEMBERS} x arch="tabular" (random_state 1000*seed+i), mean rank of '
            "test scores",
        ),
        Detector(
            f"cand-tabular-h128-e30-x{ENSEMBLE_MEMBERS}",
            "candidate",
            hourglass_ensemble(ENSEMBLE_MEMBERS, arch="tabular", hidden_dims=(128,), epochs=30),
            f'{ENSEMBLE_MEMBERS} x arch="tabular", hidden_dims=(128,), epochs=30, mean rank of '
            "test scores",
        ),
    ]
    return {detector.name: detector for detector in listed}


# --- measuring ----------------------------------------------------------------------------


def threshold_columns(outcome: Outcome, y_test: np.ndarray) -> dict[str, Any]:
    """Realised false-positive rates on the normal test rows, with their intervals."""
    if not outcome.flags:
        return {}
    normal = y_test == 0
    n = int(normal.sum())
    m = outcome.n_calibration or 0
    columns: dict[str, Any] = {"n_normal_test": n, "n_calibration": m}
    for alpha in ALPHAS:
        k = int(outcome.flags[alpha][normal].sum())
        low, high = binom.ppf(0.025, n, alpha) / n, binom.ppf(0.975, n, alpha) / n
        clopper_pearson = binomtest(k, n).proportion_ci(confidence_level=0.95)
        # With exchangeable normal data, a threshold at the r-th smallest of m calibration
        # scores flags a fraction Beta(m + 1 - r, r) of normal data, so the number of
        # flagged normal test rows is beta-binomial: the exact spread of the guarantee.
        r = conformal_rank(m, alpha)
        spread = betabinom(n, m + 1 - r, r)
        conformal_low, conformal_high = spread.ppf(0.025) / n, spread.ppf(0.975) / n
        columns |= {
            f"flagged_normal_{alpha}": k,
            f"fpr_{alpha}": k / n,
            f"alpha_interval_low_{alpha}": low,
            f"alpha_interval_high_{alpha}": high,
            f"inside_{alpha}": bool(low <= k / n <= high),
            f"clopper_pearson_low_{alpha}": clopper_pearson.low,
            f"clopper_pearson_high_{alpha}": clopper_pearson.high,
            f"conformal_mean_{alpha}": (m + 1 - r) / (m + 1),
            f"conformal_interval_low_{alpha}": conformal_low,
            f"conformal_interval_high_{alpha}": conformal_high,
            f"inside_conformal_{alpha}": bool(conformal_low <= k / n <= conformal_high),
            # fewer than 1/alpha - 1 calibration scores: thresholded at their maximum
            f"calibration_too_small_{alpha}": m < math.ceil(1 / alpha) - 1,
        }
    return columns


def conformal_rank(m: int, alpha: float) -> int:
    """The 1-based rank among ``m`` calibration scores that ``conformal_threshold`` uses."""
    return min(m, math.ceil((1 - alpha) * (m + 1) - 1e-9))


def run(paths: list[Path], seeds: list[int], chosen: list[Detector], out: Path) -> pd.DataFrame:
    """Fit and score every detector on every data set and seed; write the CSV as it grows."""
    rows: list[dict[str, Any]] = []
    for path in paths:
        X, y = load_npz(path, dtype=np.float64)  # ADBench's own dtype, as PyOD gets it there
        for seed in seeds:
            split = split_and_scale(X, y, seed)
            for detector in chosen:
                started = time.perf_counter()
                outcome = detector.fit(split, seed)
                seconds = time.perf_counter() - started
                # AUROC and AUPRC depend on the order of the scores only; ranks keep it and
                # let infinite scores (PyOD's PCA divides by zero-variance components) tie
                # at the ends instead of stopping the run.
                nonfinite = int(np.count_nonzero(~np.isfinite(outcome.scores)))
                scores = rankdata(outcome.scores) if nonfinite else outcome.scores
                rows.append(
                    {
                        "data": path.stem,
                        "n": len(y),
                        "d": X.shape[1],
                        "outlier_fraction": float(y.mean()),
                        "seed": seed,
                        "n_test": len(split.y_test),
                        "detector": detector.name,
                        "kind": detector.kind,
                        "auroc": roc_auc_score(split.y_test, scores),
                        "auprc": average_precision_score(split.y_test, scores),
                        "seconds": seconds,
                        "nonfinite_scores": nonfinite,
                        **threshold_columns(outcome, split.y_test),
                    }
                )
        frame = pd.DataFrame(rows)
        write_csv(frame, out)
        done = frame[frame["data"] == path.stem].groupby("detector", sort=False)
        summary = ", ".join(f"{name} {value:.3f}" for name, value in done["auroc"].mean().items())
        print(f"done {path.stem} (AUROC: {summary})", flush=True)
    return pd.DataFrame(rows)


def write_csv(frame: pd.DataFrame, out: Path) -> None:
    """All rows so far (one per data set, seed and detector)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(out, index=False, quoting=csv.QUOTE_MINIMAL, float_format="%.6g")


def average_ranks(table: pd.DataFrame, chosen: list[Detector]) -> dict[str, float]:
    """Mean rank over data sets of each detector's mean AUROC (1 = best).

    Hourglass and PyOD detectors are ranked among themselves; a control or a candidate
    gets the rank it would have had, had it alone joined them.
    """
    compared = [d.name for d in chosen if d.kind in ("hourglass", "PyOD")]
    ranks: dict[str, float] = {}
    for detector in chosen:
        names = compared if detector.name in compared else [*compared, detector.name]
        per_data = table[names].apply(lambda row: rankdata(-row.to_numpy()), axis=1)
        position = names.index(detector.name)
        ranks[detector.name] = float(np.mean([r[position] for r in per_data]))
    return ranks


# --- printing -----------------------------------------------------------------------------


def markdown(header: list[str], body: list[list[str]]) -> str:
    """A markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(cells) + " |" for cells in body])


def per_data_table(results: pd.DataFrame, metric: str, chosen: list[Detector]) -> pd.DataFrame:
    """Rows: data sets; columns: detectors; cells: ``metric`` averaged over seeds."""
    names = [d.name for d in chosen]
    table = results.pivot_table(index="data", columns="detector", values=metric, aggfunc="mean")
    order = results.drop_duplicates("data")["data"]
    return table.loc[order, names]


def print_tables(results: pd.DataFrame, chosen: list[Detector], seeds: list[int]) -> None:
    """Per-data-set AUROC and AUPRC, the summary, and the realised false-positive rates."""
    names = [d.name for d in chosen]
    sizes = results.drop_duplicates("data").set_index("data")[["n", "d", "outlier_fraction"]]
    seed_text = ", ".join(map(str, seeds))
    tables = {metric: per_data_table(results, metric, chosen) for metric in ("auroc", "auprc")}
    for metric, table in tables.items():
        print(f"\n{metric.upper()} per data set (mean over seeds {seed_text}):\n")
        body = [
            [data, f"{sizes.n[data]:,}", str(sizes.d[data]), f"{sizes.outlier_fraction[data]:.1%}"]
            + [f"{table.loc[data, name]:.3f}" for name in names]
            for data in table.index
        ]
        print(markdown(["data", "n", "d", "outliers", *names], body))

    ranks = average_ranks(tables["auroc"], chosen)
    seconds = results.groupby("detector")["seconds"].sum()
    summary = sorted(chosen, key=lambda d: -tables["auroc"][d.name].mean())
    body = [
        [
            d.name,
            d.kind,
            f"{tables['auroc'][d.name].mean():.3f}",
            f"{tables['auprc'][d.name].mean():.3f}",
            f"{ranks[d.name]:.2f}",
            f"{seconds[d.name]:.0f}",
        ]
        for d in summary
    ]
    print(f"\nSummary over {len(tables['auroc'])} data sets, seeds {seed_text}:\n")
    print(markdown(["detector", "kind", "mean AUROC", "mean AUPRC", "avg rank", "wall s"], body))
    print("\n" + "\n".join(f"- {d.name}: {d.description}" for d in chosen))
    broken = results[results["nonfinite_scores"] > 0]
    for (detector, data), group in broken.groupby(["detector", "data"], sort=False):
        print(
            f"- note: {detector} gave non-finite scores on {data} (seeds "
            f"{', '.join(map(str, group['seed']))}; up to {group['nonfinite_scores'].max()} of "
            f"{group['n_test'].iloc[0]} test rows), ranked as tied"
        )

    for detector in chosen:
        rows = results[results["detector"] == detector.name]
        if "fpr_0.01" in rows and rows["fpr_0.01"].notna().any():
            print_fpr_table(rows, detector.name, sizes)


def print_fpr_table(rows: pd.DataFrame, name: str, sizes: pd.DataFrame) -> None:
    """Realised false-positive rates per data set and seed against alpha's intervals."""
    header = ["data", "train contamination", "normal test n", "calibration m"]
    for alpha in ALPHAS:
        a = f"{alpha:.0%}"
        header += [f"{a}: binomial interval", f"{a}: conformal interval", f"{a}: realised"]
        header += [f"{a}: inside (binomial, conformal)"]
    body = []
    for data, group in rows.groupby("data", sort=False):
        cells = [
            str(data),
            f"{sizes.outlier_fraction[data]:.1%}",
            f"{int(group['n_normal_test'].iloc[0]):,}",
            "/".join(str(int(m)) for m in group["n_calibration"].unique()),
        ]
        for alpha in ALPHAS:
            first = group.iloc[0]  # n and m, hence both intervals, are the same for all seeds
            dagger = "†" if group[f"calibration_too_small_{alpha}"].any() else ""
            cells += [
                f"[{first[f'alpha_interval_low_{alpha}']:.1%}, "
                f"{first[f'alpha_interval_high_{alpha}']:.1%}]",
                f"[{first[f'conformal_interval_low_{alpha}']:.1%}, "
                f"{first[f'conformal_interval_high_{alpha}']:.1%}]{dagger}",
                " / ".join(f"{v:.1%}" for v in group[f"fpr_{alpha}"]),
                f"{int(group[f'inside_{alpha}'].sum())}/{len(group)}, "
                f"{int(group[f'inside_conformal_{alpha}'].sum())}/{len(group)}",
            ]
        body.append(cells)
    print(f"\nRealised false-positive rate on the normal test rows (per seed), {name}:\n")
    print(markdown(header, body))
    for alpha in ALPHAS:
        fpr = rows[f"fpr_{alpha}"]
        low, high = rows[f"alpha_interval_low_{alpha}"], rows[f"alpha_interval_high_{alpha}"]
        conformal_low = rows[f"conformal_interval_low_{alpha}"]
        conformal_high = rows[f"conformal_interval_high_{alpha}"]
        in_cp = (rows[f"clopper_pearson_low_{alpha}"] <= alpha) & (
            alpha <= rows[f"clopper_pearson_high_{alpha}"]
        )
        print(
            f"alpha = {alpha:.0%}, {len(rows)} data set x seed cells: mean realised "
            f"{fpr.mean():.2%}; binomial interval of alpha: {int(rows[f'inside_{alpha}'].sum())} "
            f"inside, {int((fpr < low).sum())} below, {int((fpr > high).sum())} above; "
            f"conformal interval: {int(rows[f'inside_conformal_{alpha}'].sum())} inside, "
            f"{int((fpr < conformal_low).sum())} below, {int((fpr > conformal_high).sum())} "
            f"above; alpha inside the realised rate's Clopper-Pearson interval: {int(in_cp.sum())}"
        )


def main() -> None:
    """Parse the arguments, run every detector, print the tables."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    default_data = os.environ.get("HOURGLASS_DATA")
    parser.add_argument(
        "--data",
        default=str(Path(default_data) / "adbench-dev") if default_data else None,
        help="a folder of .npz files with X and y (default: $HOURGLASS_DATA/adbench-dev)",
    )
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    known = detectors(pyod_threads=1)
    parser.add_argument(
        "--detectors",
        nargs="+",
        default=[name for name, d in known.items() if d.kind != "candidate"],
        help=f"any of {', '.join(known)}, or 'all' (default: all but the cand-* ones)",
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="the CSV to write")
    parser.add_argument(
        "--pyod-threads", type=int, default=1, help="torch threads for PyOD's deep detectors"
    )
    args = parser.parse_args()
    if not args.data:
        parser.error("pass --data DIR or set HOURGLASS_DATA")
    known = detectors(args.pyod_threads)
    names = list(known) if args.detectors == ["all"] else args.detectors
    unknown = [name for name in names if name not in known]
    if unknown:
        parser.error(f"unknown detector(s) {', '.join(unknown)}; choose from {', '.join(known)}")
    if any(known[name].kind == "PyOD" for name in names):
        try:
            pyod_version = importlib.import_module("pyod").__version__
        except ModuleNotFoundError:
            parser.error(INSTALL_HINT)
    else:
        pyod_version = "not used"
    chosen = [known[name] for name in names]
    paths = data_sets(Path(args.data))
    print(
        f"{len(paths)} data sets from {args.data}; seeds {args.seeds}; PyOD {pyod_version}, "
        f"torch {torch.__version__}, {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs",
        flush=True,
    )
    started = time.perf_counter()
    results = run(paths, args.seeds, chosen, args.out)
    print_tables(results, chosen, args.seeds)
    print(f"\nTotal wall time {time.perf_counter() - started:.0f} s; rows in {args.out}")


if __name__ == "__main__":
    main()
