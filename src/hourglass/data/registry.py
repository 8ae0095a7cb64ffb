"""The data sets hourglass can load by name: where they are looked for, and how they are fetched.

A split's files are looked for in these folders, in this order; the first
folder that holds *all* of the split's files wins:

1. ``data_dir``, when given, then its sub-folder named for the data set
   (``mnist/``, ``fashion-mnist/``);
2. ``$HOURGLASS_DATA/<name>/``;
3. the user cache, ``<cache>/<name>/``, where ``<cache>`` is ``$HOURGLASS_CACHE``,
   else ``$XDG_CACHE_HOME/hourglass``, else ``~/.cache/hourglass``;
4. the data set's system folders (:attr:`DatasetInfo.system_dirs`), such as
   ``/usr/share/datasets/fashion-mnist/`` where Debian's package installs it.

When none holds them and downloading is allowed, the missing files are
downloaded from the data set's mirrors, in order, into the cache, with
`pooch <https://www.fatiando.org/pooch/>`_ (as scikit-image and SciPy do). A
download is written to a temporary file beside its destination, its SHA-256
checked, and only then renamed into place: the cache never holds a partial or
unverified file. Files found locally are not checksummed (repackaged copies,
such as Debian's, are recompressed and differ byte for byte); their IDX
structure is validated when they are read instead.

Tests and offline installations can change :data:`DATASETS` (mirrors,
checksums, system folders) by replacing an entry with
:func:`dataclasses.replace`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import types
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt
from tqdm import tqdm

from hourglass._logging import quieted
from hourglass._version import __version__
from hourglass.data.idx import read_idx
from hourglass.exceptions import ChecksumError, DatasetError, InvalidInputError

__all__ = [
    "DATASETS",
    "DOWNLOAD_TIMEOUT",
    "DatasetInfo",
    "RemoteFile",
    "default_cache_dir",
    "download_file",
    "fetch_files",
    "find_files",
    "get_dataset",
    "list_datasets",
    "load_fashion_mnist",
    "load_mnist",
    "search_paths",
]

DATA_ENV = "HOURGLASS_DATA"
CACHE_ENV = "HOURGLASS_CACHE"
DOWNLOAD_TIMEOUT = 30.0
"""Seconds to wait for a mirror to connect or to send the next chunk."""

_CHUNK_SIZE = 1 << 16


@dataclass(frozen=True)
class RemoteFile:
    """One file of a data set, as its mirrors serve it.

    Parameters
    ----------
    filename : str
        The file's name, on the mirrors and on disk.
    sha256 : str
        The SHA-256 hex digest of the file the mirrors serve. Downloads that do
        not match are rejected.
    """

    filename: str
    sha256: str


@dataclass(frozen=True)
class DatasetInfo:
    """What hourglass knows about a named data set.

    Parameters
    ----------
    name : str
        The registry key, also the name of the data set's sub-folder in
        ``$HOURGLASS_DATA``, in the cache and in ``data_dir``.
    title : str
        The name to show people.
    mirrors : tuple of str
        Base URLs tried in order; a file's URL is the base URL followed by
        its file name.
    splits : mapping of str to tuple of RemoteFile
        The files of each split. Image data sets list the images file first,
        then the labels file.
    system_dirs : tuple of pathlib.Path, default=()
        Folders where system packages install the files, searched after the
        cache.
    homepage : str, default=""
        Where the data set is described.
    """

    name: str
    title: str
    mirrors: tuple[str, ...]
    splits: Mapping[str, tuple[RemoteFile, ...]]
    system_dirs: tuple[Path, ...] = ()
    homepage: str = ""


# SHA-256 digests of the files the official mirrors serve, as published in
# TensorFlow Datasets' url_checksums/mnist.txt and fashion_mnist.txt. The gzip
# *content* of the copies in Debian's dataset-fashion-mnist package and of
# other repackaged MNIST copies is identical, but their compressed bytes (and
# hence digests) differ, which is why local files are validated, not checksummed.
DATASETS: dict[str, DatasetInfo] = {
    "mnist": DatasetInfo(
        name="mnist",
        title="MNIST",
        mirrors=(
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "https://storage.googleapis.com/cvdf-datasets/mnist/",
        ),
        splits=types.MappingProxyType(
            {
                "train": (
                    RemoteFile(
                        "train-images-idx3-ubyte.gz",
                        "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
                    ),
                    RemoteFile(
                        "train-labels-idx1-ubyte.gz",
                        "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
                    ),
                ),
                "test": (
                    RemoteFile(
                        "t10k-images-idx3-ubyte.gz",
                        "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
                    ),
                    RemoteFile(
                        "t10k-labels-idx1-ubyte.gz",
                        "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
                    ),
                ),
            }
        ),
        homepage="http://yann.lecun.com/exdb/mnist/",
    ),
    "fashion-mnist": DatasetInfo(
        name="fashion-mnist",
        title="Fashion-MNIST",
        mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
        splits=types.MappingProxyType(
            {
                "train": (
                    RemoteFile(
                        "train-images-idx3-ubyte.gz",
                        "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
                    ),
                    RemoteFile(
                        "train-labels-idx1-ubyte.gz",
                        "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
                    ),
                ),
                "test": (
                    RemoteFile(
                        "t10k-images-idx3-ubyte.gz",
                        "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
                    ),
                    RemoteFile(
                        "t10k-labels-idx1-ubyte.gz",
                        "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
                    ),
                ),
            }
        ),
        system_dirs=(Path("/usr/share/datasets/fashion-mnist"),),
        homepage="https://github.com/zalandoresearch/fashion-mnist",
    ),
}


def list_datasets() -> list[str]:
    """Return the names of the data sets hourglass can load, sorted.

    Examples
    --------
    >>> from hourglass.data import list_datasets
    >>> list_datasets()
    ['fashion-mnist', 'mnist']
    """
    return sorted(DATASETS)


def get_dataset(name: str) -> DatasetInfo:
    """Look a data set up by name.

    Parameters
    ----------
    name : str
        The data set's name. Case and ``_`` versus ``-`` do not matter:
        ``"Fashion_MNIST"`` finds ``"fashion-mnist"``.

    Returns
    -------
    DatasetInfo
        Its mirrors, checksums and system folders.

    Raises
    ------
    DatasetError
        If no data set has that name; the message lists those that exist.
    """
    key = name.strip().lower().replace("_", "-")
    if key not in DATASETS:
        raise DatasetError(
            f"Unknown data set {name!r}. Expected one of {list_datasets()}; "
            "for other data, pass a file path instead."
        )
    return DATASETS[key]


def default_cache_dir() -> Path:
    """Return the folder downloads are cached in.

    ``$HOURGLASS_CACHE`` when set, else ``$XDG_CACHE_HOME/hourglass``, else
    ``~/.cache/hourglass``. Each data set has a sub-folder named after it.
    The environment is read at each call.
    """
    if explicit := os.environ.get(CACHE_ENV):
        return Path(explicit).expanduser()
    if xdg := os.environ.get("XDG_CACHE_HOME"):
        return Path(xdg).expanduser() / "hourglass"
    return Path.home() / ".cache" / "hourglass"


def _split_files(dataset: DatasetInfo, split: str) -> tuple[RemoteFile, ...]:
    if split not in dataset.splits:
        raise InvalidInputError(
            f"{dataset.title} has no split {split!r}. Expected one of {sorted(dataset.splits)}."
        )
    return dataset.splits[split]


def _places(
    dataset: DatasetInfo, data_dir: str | os.PathLike[str] | None
) -> list[tuple[str, Path]]:
    """The folders to search, in order, each with where it comes from."""
    places: list[tuple[str, Path]] = []
    if data_dir is not None:
        base = Path(data_dir).expanduser()
        places += [("data_dir", base), ("data_dir", base / dataset.name)]
    if env_data := os.environ.get(DATA_ENV):
        places.append((f"${DATA_ENV}", Path(env_data).expanduser() / dataset.name))
    places.append(("cache", default_cache_dir() / dataset.name))
    places += [("system folder", folder) for folder in dataset.system_dirs]
    return places


def search_paths(name: str, *, data_dir: str | os.PathLike[str] | None = None) -> list[Path]:
    """Return the folders searched for a data set's files, in the order they are searched.

    Parameters
    ----------
    name : str
        The data set's name, as for :func:`get_dataset`.
    data_dir : str, path-like or None, default=None
        A folder to search first, directly and in its sub-folder named for the
        data set.

    Returns
    -------
    list of pathlib.Path
        The candidate folders. They need not exist.
    """
    return [path for _, path in _places(get_dataset(name), data_dir)]


def _find(
    dataset: DatasetInfo, files: tuple[RemoteFile, ...], data_dir: str | os.PathLike[str] | None
) -> tuple[tuple[Path, ...] | None, list[str]]:
    """Return the files of the first folder that holds them all, and a report of the search."""
    report: list[str] = []
    if data_dir is None:
        report.append("data_dir: not given")
    if not os.environ.get(DATA_ENV):
        report.append(f"${DATA_ENV}: not set")
    for origin, folder in _places(dataset, data_dir):
        if not folder.is_dir():
            state = "does not exist" if not folder.exists() else "not a folder"
            report.append(f"{folder} ({origin}): {state}")
            continue
        paths = tuple(folder / file.filename for file in files)
        missing = [path.name for path in paths if not path.is_file()]
        if not missing:
            return paths, report
        report.append(f"{folder} ({origin}): missing {', '.join(missing)}")
    return None, report


def find_files(
    name: str, split: str, *, data_dir: str | os.PathLike[str] | None = None
) -> tuple[Path, ...] | None:
    """Find a split's files on this machine, without downloading anything.

    Parameters
    ----------
    name : str
        The data set's name, as for :func:`get_dataset`.
    split : str
        The split, such as ``"train"`` or ``"test"``.
    data_dir : str, path-like or None, default=None
        A folder to search first (see the module's documentation for the order).

    Returns
    -------
    tuple of pathlib.Path or None
        The split's files, all from the first folder that holds every one of
        them, in the order of :attr:`DatasetInfo.splits`; ``None`` when no
        folder holds them all.
    """
    dataset = get_dataset(name)
    paths, _ = _find(dataset, _split_files(dataset, split), data_dir)
    return paths


def _describe(exc: OSError, timeout: float) -> str:
    """Say in a few words why downloading from one URL failed."""
    import requests

    if isinstance(exc, requests.HTTPError) and exc.response is not None:
        return f"HTTP {exc.response.status_code} {exc.response.reason}"
    if isinstance(exc, requests.Timeout):
        return f"timed out (no answer within {timeout:g} s)"
    # requests wraps the socket's error in urllib3's: report the socket's own words,
    # such as "[Errno 111] Connection refused".
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, OSError) and cause.errno is not None:
            return str(cause)
        cause = cause.__cause__ or cause.__context__
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


class _ProgressBar(tqdm):  # type: ignore[misc]  # tqdm is untyped
    """A tqdm bar that pooch's downloader can drive.

    pooch tests the bar's truth before it sets its total, which a plain tqdm bar
    without a total refuses.
    """

    def __bool__(self) -> bool:
        return True


class _Downloader:
    """pooch's HTTP downloader, with hourglass's progress bar, time-out and User-Agent.

    It keeps the SHA-256 of the last file it received, so that a checksum error
    can name the digest each mirror served.
    """

    def __init__(self, description: str, *, progress: bool | None, timeout: float) -> None:
        self.description = description
        self.progress = progress
        self.timeout = timeout
        self.received: str | None = None

    def __call__(self, url: str, output_file: str, pooch: object, check_only: bool = False) -> None:
        from pooch import HTTPDownloader, file_hash

        with _ProgressBar(
            desc=self.description,
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            leave=False,
            # None: show the bar only when stderr is a terminal.
            disable=None if self.progress is None else not self.progress,
        ) as bar:
            http = HTTPDownloader(
                progressbar=bar,
                chunk_size=_CHUNK_SIZE,
                timeout=self.timeout,
                headers={"User-Agent": f"hourglass/{__version__}"},
            )
            http(url, output_file, pooch, check_only=check_only)
        self.received = file_hash(output_file, alg="sha256")


def _pooch_quiet() -> contextlib.AbstractContextManager[None]:
    """Keep pooch's "Downloading data from ..." log lines off standard error."""
    from pooch import get_logger

    return quieted([get_logger()], logging.WARNING)


def download_file(
    urls: Sequence[str],
    destination: str | os.PathLike[str],
    sha256: str,
    *,
    progress: bool | None = None,
    timeout: float = DOWNLOAD_TIMEOUT,
) -> Path:
    """Download a file with pooch, trying each URL in turn, and verify its SHA-256.

    The file is written to a temporary file beside ``destination``, checked,
    and renamed into place only if its digest matches; nothing else is left
    behind, whatever happens. A ``destination`` that already holds the
    expected file is kept as it is.

    Parameters
    ----------
    urls : sequence of str
        Where the file can be downloaded, tried in order until one succeeds.
    destination : str or path-like
        The final path. Missing parent folders are created.
    sha256 : str
        The expected SHA-256 hex digest.
    progress : bool or None, default=None
        Whether to show a progress bar; ``None`` shows it only when standard
        error is a terminal.
    timeout : float, default=DOWNLOAD_TIMEOUT
        Seconds to wait for a connection, and then for each chunk of data.

    Returns
    -------
    pathlib.Path
        ``destination``.

    Raises
    ------
    ChecksumError
        If a download succeeded but no URL served a file with the expected
        digest; the message names each URL with the digest it served.
    DatasetError
        If no URL could be downloaded; the message names each URL with the
        reason it failed.
    """
    import pooch

    target = Path(destination)
    expected = sha256.lower()
    mismatches: list[str] = []
    failures: list[str] = []
    for url in urls:
        downloader = _Downloader(target.name, progress=progress, timeout=timeout)
        try:
            with _pooch_quiet():
                pooch.retrieve(
                    url,
                    known_hash=f"sha256:{expected}",
                    fname=target.name,
                    path=target.parent,
                    downloader=downloader,
                )
        except ValueError:
            # pooch deleted the download: its digest did not match.
            if downloader.received is None or downloader.received == expected:
                raise
            mismatches.append(f"{url}: SHA-256 {downloader.received}, expected {expected}")
        except OSError as exc:  # requests' errors are OSErrors too
            failures.append(f"{url}: {_describe(exc, timeout)}")
        else:
            return target
    if not urls:
        raise DatasetError(f"Cannot download {target.name}: no URL to download it from.")
    tried = "\n".join(f"  - {line}" for line in mismatches + failures)
    if mismatches:
        raise ChecksumError(
            f"Downloaded {target.name}, but its SHA-256 digest does not match the expected "
            f"one, so it was deleted:\n{tried}\n"
            "The mirror may serve a different version of the file, or the download was "
            "altered on the way. Try again later, or get the file from a source you trust "
            "and place it in one of the folders searched."
        )
    raise DatasetError(f"Could not download {target.name}. Tried:\n{tried}")


def _hints(dataset: DatasetInfo) -> str:
    return (
        "To fix this, do one of:\n"
        f"  - pass data_dir=<folder> holding the files (directly or in its {dataset.name}/ "
        "sub-folder);\n"
        f"  - set {DATA_ENV}=<folder> and put the files in <folder>/{dataset.name}/;\n"
        "  - connect to the network and load with download=True (the default); the files are "
        f"then cached in {default_cache_dir() / dataset.name}."
    )


def fetch_files(
    name: str,
    split: str,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    download: bool = True,
    progress: bool | None = None,
    timeout: float = DOWNLOAD_TIMEOUT,
) -> tuple[Path, ...]:
    """Return the paths of a split's files, downloading them into the cache if needed.

    Parameters
    ----------
    name : str
        The data set's name, as for :func:`get_dataset`.
    split : str
        The split, such as ``"train"`` or ``"test"``.
    data_dir : str, path-like or None, default=None
        A folder to search first (see the module's documentation for the order).
    download : bool, default=True
        Whether to download the files when no folder holds them all. Files of
        the split already in the cache are not downloaded again.
    progress : bool or None, default=None
        Whether to show a download progress bar; ``None`` shows it only when
        standard error is a terminal.
    timeout : float, default=DOWNLOAD_TIMEOUT
        Seconds to wait for a mirror to connect or to send the next chunk.

    Returns
    -------
    tuple of pathlib.Path
        The split's files, in the order of :attr:`DatasetInfo.splits`.

    Raises
    ------
    DatasetError
        If the files are not found and cannot be downloaded. One message lists
        every folder searched, what each lacked, the download attempts, and
        how to fix it.
    ChecksumError
        If a download does not match its SHA-256 digest.
    InvalidInputError
        If the data set has no such split.
    """
    dataset = get_dataset(name)
    files = _split_files(dataset, split)
    found, report = _find(dataset, files, data_dir)
    if found is not None:
        return found
    header = (
        f"Could not find the {dataset.title} {split!r} split "
        f"({', '.join(file.filename for file in files)}). Looked in:\n"
        + "\n".join(f"  - {line}" for line in report)
    )
    if not download:
        raise DatasetError(
            f"{header}\nDownloading is turned off (download=False).\n{_hints(dataset)}"
        )
    cache = default_cache_dir() / dataset.name
    paths: list[Path] = []
    for file in files:
        path = cache / file.filename
        if not path.is_file():
            urls = [mirror.rstrip("/") + "/" + file.filename for mirror in dataset.mirrors]
            try:
                download_file(urls, path, file.sha256, progress=progress, timeout=timeout)
            except DatasetError as exc:
                raise type(exc)(f"{header}\n{exc}\n{_hints(dataset)}") from exc
        paths.append(path)
    return tuple(paths)


_MNIST_IMAGE_SHAPE = (28, 28)


def _read_checked(
    path: Path, dataset: DatasetInfo, kind: Literal["images", "labels"]
) -> npt.NDArray[np.uint8]:
    """Read one IDX file of an image data set and check it holds what it should."""
    try:
        array = read_idx(path)
    except InvalidInputError as exc:
        raise DatasetError(
            f"{exc} It should hold {dataset.title} {kind}; if it is in the cache, delete it "
            "and hourglass will download it again."
        ) from exc
    shape = (-1, *_MNIST_IMAGE_SHAPE) if kind == "images" else (-1,)
    if array.dtype != np.uint8 or array.shape[1:] != shape[1:] or array.ndim != len(shape):
        expected = "(n, " + ", ".join(map(str, shape[1:])) + ")" if kind == "images" else "(n,)"
        raise DatasetError(
            f"{path} does not hold {dataset.title} {kind}: expected a uint8 array of shape "
            f"{expected}, got a {array.dtype} array of shape {array.shape}. Replace it with "
            "the original file."
        )
    return array


def _load_image_split(
    name: str,
    split: str,
    data_dir: str | os.PathLike[str] | None,
    download: bool,
    progress: bool | None,
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8]]:
    dataset = get_dataset(name)
    image_path, label_path = fetch_files(
        name, split, data_dir=data_dir, download=download, progress=progress
    )
    images = _read_checked(image_path, dataset, "images")
    labels = _read_checked(label_path, dataset, "labels")
    if len(images) != len(labels):
        raise DatasetError(
            f"{image_path} holds {len(images)} images but {label_path} holds {len(labels)} "
            "labels; expected as many of each. The two files come from different copies of "
            f"{dataset.title}: replace them with a matching pair."
        )
    return images, labels


def load_mnist(
    split: Literal["train", "test"] = "train",
    *,
    data_dir: str | os.PathLike[str] | None = None,
    download: bool = True,
    progress: bool | None = None,
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8]]:
    """Load the MNIST handwritten digits: 60,000 training and 10,000 test images.

    The four IDX files are looked for in ``data_dir``, ``$HOURGLASS_DATA/mnist/``
    and the cache, in that order (see :mod:`hourglass.data.registry`), and
    downloaded from the official mirrors, with SHA-256 verification, when none
    of these holds them.

    Parameters
    ----------
    split : {"train", "test"}, default="train"
        Which split to load.
    data_dir : str, path-like or None, default=None
        A folder holding the files, directly or in its ``mnist/`` sub-folder.
        It is searched first.
    download : bool, default=True
        Whether to download the files into the cache when they are not found.
    progress : bool or None, default=None
        Whether to show a download progress bar; ``None`` shows it only when
        standard error is a terminal.

    Returns
    -------
    images : numpy.ndarray of shape (n, 28, 28), dtype uint8
        Grey levels, 0 (background) to 255 (ink).
    labels : numpy.ndarray of shape (n,), dtype uint8
        The digits, 0 to 9.

    Raises
    ------
    DatasetError
        If the files are not found and cannot be downloaded (the message lists
        every folder searched and how to fix it), or a file is damaged.
    ChecksumError
        If a downloaded file does not match its published SHA-256 digest.
    InvalidInputError
        If ``split`` is neither ``"train"`` nor ``"test"``.

    Examples
    --------
    >>> from hourglass.datasets import load_mnist
    >>> images, labels = load_mnist("test")  # doctest: +SKIP
    >>> images.shape, labels.shape  # doctest: +SKIP
    ((10000, 28, 28), (10000,))
    """
    return _load_image_split("mnist", split, data_dir, download, progress)


def load_fashion_mnist(
    split: Literal["train", "test"] = "train",
    *,
    data_dir: str | os.PathLike[str] | None = None,
    download: bool = True,
    progress: bool | None = None,
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8]]:
    """Load Fashion-MNIST, Zalando's clothing images: 60,000 training and 10,000 test images.

    The four IDX files are looked for in ``data_dir``,
    ``$HOURGLASS_DATA/fashion-mnist/``, the cache and
    ``/usr/share/datasets/fashion-mnist/`` (Debian's ``dataset-fashion-mnist``
    package), in that order (see :mod:`hourglass.data.registry`), and
    downloaded from the official mirror, with SHA-256 verification, when none
    of these holds them.

    Parameters
    ----------
    split : {"train", "test"}, default="train"
        Which split to load.
    data_dir : str, path-like or None, default=None
        A folder holding the files, directly or in its ``fashion-mnist/``
        sub-folder. It is searched first.
    download : bool, default=True
        Whether to download the files into the cache when they are not found.
    progress : bool or None, default=None
        Whether to show a download progress bar; ``None`` shows it only when
        standard error is a terminal.

    Returns
    -------
    images : numpy.ndarray of shape (n, 28, 28), dtype uint8
        Grey levels, 0 (background) to 255.
    labels : numpy.ndarray of shape (n,), dtype uint8
        The classes, 0 to 9: T-shirt/top, trouser, pullover, dress, coat,
        sandal, shirt, sneaker, bag, ankle boot.

    Raises
    ------
    DatasetError
        If the files are not found and cannot be downloaded (the message lists
        every folder searched and how to fix it), or a file is damaged.
    ChecksumError
        If a downloaded file does not match its published SHA-256 digest.
    InvalidInputError
        If ``split`` is neither ``"train"`` nor ``"test"``.

    Examples
    --------
    >>> from hourglass.datasets import load_fashion_mnist
    >>> images, labels = load_fashion_mnist("test")  # doctest: +SKIP
    >>> images.shape, labels.shape  # doctest: +SKIP
    ((10000, 28, 28), (10000,))
    """
    return _load_image_split("fashion-mnist", split, data_dir, download, progress)
