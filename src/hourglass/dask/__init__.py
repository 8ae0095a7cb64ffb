"""Distributed scoring on Dask: a saved outlier detector applied to Dask collections.

:func:`score` turns a Dask array or DataFrame into the same results
``hourglass score`` writes — reconstruction error, outlier score, conformal
p-value, outlier flag and, for tables, the columns contributing most — as lazy
Dask collections, one task per chunk or partition. Nothing is computed until
you ask (``.compute()``, ``.to_parquet()``, ...).

The model travels to the workers as its path, not as an object: each worker
process loads it on its first task and keeps it for the next ones (see
:func:`cache_info`), so **the model directory must be readable at the same
path by the client and by every worker** (a shared or replicated file system).
The digest of its weights, read by the client, goes with every task: a worker
that finds another model at that path refuses to score with it.

The results are those of in-process scoring (``detector.outlier_score``,
``p_values``, ``predict``, ``explain``), bit for bit, whatever the chunk or
partition sizes: a sample's outputs never depend on the rows it is computed with
(see ``hourglass.estimators._blocks``).

:func:`read_data` opens a data file as a Dask collection, :func:`connect`
connects to a scheduler (or starts a local cluster). ``hourglass score
--dask-scheduler ADDRESS`` does all three from the command line.

Needs the ``dask`` extra (``dask[array,dataframe]`` and ``distributed``):
``pip install "hourglass-ae[dask]"``. This package imports them only when a
function that needs them is called.

Examples
--------
>>> import dask.array as da  # doctest: +SKIP
>>> import hourglass.dask
>>> with hourglass.dask.connect("local:2") as client:  # doctest: +SKIP
...     images = da.from_array(X, chunks=(65536, 28, 28))
...     results = hourglass.dask.score("model/", images)
...     flags = results["is_outlier"].compute()
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from hourglass.dask._worker import (
    RESULT_COLUMNS,
    CacheInfo,
    cache_info,
    cached_model,
    clear_cache,
)
from hourglass.exceptions import HourglassError, InvalidParameterError

if TYPE_CHECKING:
    import dask.array as da
    import dask.dataframe as dd
    from distributed import Client

__all__ = [
    "DEFAULT_PARTITION_ROWS",
    "INSTALL_HINT",
    "RESULT_COLUMNS",
    "CacheInfo",
    "cache_info",
    "cached_model",
    "clear_cache",
    "connect",
    "read_data",
    "require_dependencies",
    "score",
]

INSTALL_HINT = 'pip install "hourglass-ae[dask]"'
#: Rows per chunk or partition :func:`read_data` aims at.
DEFAULT_PARTITION_ROWS = 65536
# Dask's nannies start their workers with MALLOC_TRIM_THRESHOLD_=65536 (from this config
# key), which freezes glibc's mmap threshold: every large temporary array is then mapped
# and zeroed anew, and scoring runs at half speed (measured: 6.3 s instead of 3.4 s for
# 65,536 Fashion-MNIST images). The local clusters of connect() start without it.
_NANNY_ENVIRONMENT = "distributed.nanny.pre-spawn-environ"


def require_dependencies() -> None:
    """Raise :class:`~hourglass.exceptions.HourglassError` unless the ``dask`` extra is installed.

    Raises
    ------
    HourglassError
        Naming the missing package and the command that installs the extra.
    """
    try:
        import dask.array
        import dask.dataframe  # noqa: F401
        import distributed  # noqa: F401
    except ImportError as error:
        missing = error.name or "part of it"
        raise HourglassError(
            f"Distributed scoring needs the dask extra ({missing} is not installed): {INSTALL_HINT}"
        ) from None


def score(
    model_path: str | os.PathLike[str],
    data: da.Array | dd.DataFrame | dd.Series,
    *,
    columns: Sequence[str] | None = None,
    threshold: float | None = None,
    device: str | None = None,
) -> dd.DataFrame | dict[str, da.Array]:
    """Score a Dask collection with a saved outlier detector, lazily, chunk by chunk.

    Parameters
    ----------
    model_path : str or path-like
        A directory holding an :class:`~hourglass.AutoencoderOutlierDetector`
        (``save`` or ``hourglass train``), readable at this path by the client
        and every worker. Each worker process loads it once.
    data : dask.array.Array, dask.dataframe.DataFrame or dask.dataframe.Series
        Samples shaped like the training data, one per row. An array must be
        chunked along axis 0 only (``data.rechunk({1: -1, ...})`` otherwise);
        a table of a tabular model must be a DataFrame; texts of a text
        model a 1-D array or a Series of strings.
    columns : sequence of str, optional
        The results to compute, among :data:`RESULT_COLUMNS`:
        ``reconstruction_error`` (the higher, the more abnormal),
        ``outlier_score`` (the score that is thresholded: the
        complexity-corrected error or the distance score for models with
        ``score_type_`` ``"complexity"`` or ``"distance"``, else the
        reconstruction error; the higher, the more abnormal), ``p_value``
        (conformal, against the model's calibration scores; the smaller, the
        more abnormal), ``is_outlier`` (int8, 1 =
        outlier) and ``top_columns`` (tabular models, DataFrames only: the
        three columns contributing most to each flagged row, as
        ``"income (x20.1); age (x3.2); city (x1.0)"``, empty for the others).
        By default, the columns ``hourglass score`` writes for this model:
        ``outlier_score`` only when it differs from the error, ``p_value``
        when the model was calibrated, ``top_columns`` for tabular models.
    threshold : float, optional
        Flag outlier scores above this value; by default the model's
        ``threshold_``.
    device : str, optional
        Overrides the model's saved device on the workers (e.g. ``"cpu"``).

    Returns
    -------
    dask.dataframe.DataFrame or dict of str to dask.array.Array
        For a DataFrame or Series: a DataFrame with the same index and
        partitions and one column per result. For an array: one 1-D array
        per result, chunked like ``data``'s rows; they share their tasks, so
        ``dask.compute(*results.values())`` scores every chunk once.

    Raises
    ------
    HourglassError
        If the ``dask`` extra is missing.
    ModelFileError
        If ``model_path`` does not hold a valid outlier detector.
    InvalidInputError
        If ``data`` is not a Dask collection, is chunked across samples, or
        does not fit the model.
    InvalidParameterError
        If ``columns`` names unknown or repeated results, or one that does not
        apply to the model or the data; or ``threshold`` is not a finite number.

    Examples
    --------
    >>> import tempfile
    >>> import dask.array as da
    >>> import numpy as np
    >>> import hourglass.dask
    >>> from hourglass import AutoencoderOutlierDetector
    >>> X = np.random.default_rng(0).normal(size=(500, 8)).astype(np.float32)
    >>> folder = tempfile.TemporaryDirectory()
    >>> model = AutoencoderOutlierDetector(latent_dim=2, epochs=5, fpr=0.05, verbose=0,
    ...                                    random_state=0).fit(X)
    >>> path = model.save(f"{folder.name}/model")
    >>> data = da.from_array(np.array([[0.0] * 8, [9.0] * 8]), chunks=(1, 8))
    >>> results = hourglass.dask.score(path, data)
    >>> list(results)
    ['reconstruction_error', 'outlier_score', 'p_value', 'is_outlier']
    >>> results["is_outlier"].compute(scheduler="synchronous")  # or on a cluster
    array([0, 1], dtype=int8)
    >>> folder.cleanup()
    """
    require_dependencies()
    from hourglass.dask._graph import score as build

    return build(model_path, data, columns=columns, threshold=threshold, device=device)


def read_data(
    path: str | os.PathLike[str], *, partition_rows: int = DEFAULT_PARTITION_ROWS
) -> da.Array | dd.DataFrame:
    """Open a data file as a Dask collection of about ``partition_rows`` rows per partition.

    Parameters
    ----------
    path : str or path-like
        A file :func:`hourglass.data.read_data` reads, readable at this path
        by the workers too for ``.npy``, ``.csv`` and ``.parquet`` files:

        - ``.npy``: a Dask array whose chunks the workers read from the file,
          memory-mapped (the client reads only its header);
        - ``.parquet``: ``dask.dataframe.read_parquet``, split into more
          partitions when the file has fewer, larger row groups;
        - ``.csv``: ``dask.dataframe.read_csv`` in blocks of about
          ``partition_rows`` lines (integer columns are read as floats, since
          a block may hold missing values the first does not; ``.csv.gz`` is
          one partition);
        - any other format (``.npz``, IDX, ``.txt``) is read by the client and
          sent to the workers with the tasks.

    partition_rows : int, default=65536
        Rows per chunk or partition to aim at. The results do not depend on it.

    Returns
    -------
    dask.array.Array or dask.dataframe.DataFrame
        A DataFrame for tables, an array otherwise (1-D of strings for texts).

    Raises
    ------
    HourglassError
        If the ``dask`` extra is missing.
    DatasetError, InvalidInputError
        If the file is missing or cannot be read in its format.
    InvalidParameterError
        If ``partition_rows`` is not an int >= 1.
    """
    require_dependencies()
    from hourglass.dask._graph import read_data as read

    if (
        isinstance(partition_rows, bool)
        or not isinstance(partition_rows, int)
        or partition_rows < 1
    ):
        raise InvalidParameterError(
            f"partition_rows must be an integer >= 1; got {partition_rows!r}."
        )
    return read(path, partition_rows=partition_rows)


@contextlib.contextmanager
def connect(address: str, *, timeout: float = 10.0) -> Iterator[Client]:
    """Connect to a Dask scheduler, or start a local cluster, for the duration of a block.

    Parameters
    ----------
    address : str
        The address of a running ``distributed`` scheduler (``tcp://host:8786``),
        or ``local:N`` to start a :class:`distributed.LocalCluster` of N
        single-threaded worker processes on this machine, closed at the end
        of the block. Unlike Dask's default workers, these do not set
        ``MALLOC_TRIM_THRESHOLD_``, which halves PyTorch's and NumPy's speed
        on large arrays; for workers of your own, unset it in their Dask
        configuration (``MALLOC_TRIM_THRESHOLD_: null`` under
        ``distributed.nanny.pre-spawn-environ``).
    timeout : float, default=10.0
        Seconds to wait for the scheduler to answer.

    Yields
    ------
    distributed.Client
        The client, which is also Dask's default scheduler inside the block.

    Raises
    ------
    HourglassError
        If the ``dask`` extra is missing, or the scheduler does not answer within
        ``timeout`` seconds (one line saying what to check).
    InvalidParameterError
        If ``local:N`` does not name a positive number of workers.
    """
    require_dependencies()
    import dask
    from distributed import Client, LocalCluster

    if address.startswith("local:"):
        count = address.removeprefix("local:")
        if not count.isdecimal() or int(count) < 1:
            raise InvalidParameterError(
                f"{address!r} does not name a number of local workers; use local:N with N >= 1 "
                "(e.g. local:2), or the address of a running scheduler (tcp://host:8786)."
            )
        with (
            dask.config.set({f"{_NANNY_ENVIRONMENT}.MALLOC_TRIM_THRESHOLD_": None}),
            LocalCluster(
                n_workers=int(count),
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
                # Its HTTP server (health checks) on a free local port, not the default 8787.
                scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
                silence_logs=logging.ERROR,
            ) as cluster,
            Client(cluster) as client,
        ):
            yield client
        return
    try:
        client = Client(address, timeout=timeout)
    # Not only OSError and TimeoutError: a server that is not a Dask scheduler can make
    # the handshake fail in any way (a garbage frame length has raised MemoryError).
    except Exception as error:
        reason = " ".join(str(error).split()) or type(error).__name__
        raise HourglassError(
            f"Cannot reach a Dask scheduler at {address!r} within {timeout:g} s ({reason}). "
            "Check the address (e.g. tcp://127.0.0.1:8786) and that a scheduler runs there "
            "('dask scheduler'), or pass local:N to start N local workers."
        ) from None
    with client:
        yield client
