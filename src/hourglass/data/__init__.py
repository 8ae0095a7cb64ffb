"""Loading data: files in any supported format, and named data sets fetched on demand.

- :func:`read_data` reads ``.npy``, ``.npz``, ``.csv``, ``.parquet`` and IDX files.
- :class:`Stream` reads ``.npy``, Parquet, CSV and text files (or folders of them) larger
  than memory, piece by piece; estimators take one wherever they take an array.
- :func:`read_idx` and :func:`write_idx` read and write IDX arrays, raw or gzipped.
- :func:`load_mnist` and :func:`load_fashion_mnist` find the data sets on this
  machine or download them, verified, into a cache; the registry functions
  (:func:`get_dataset`, :func:`fetch_files`, ...) expose how.
"""

from __future__ import annotations

from hourglass.data.files import SUPPORTED_FORMATS, read_data
from hourglass.data.idx import read_idx, write_idx
from hourglass.data.registry import (
    DATASETS,
    DatasetInfo,
    RemoteFile,
    default_cache_dir,
    download_file,
    fetch_files,
    find_files,
    get_dataset,
    list_datasets,
    load_fashion_mnist,
    load_mnist,
    search_paths,
)
from hourglass.data.stream import Stream

__all__ = [
    "DATASETS",
    "SUPPORTED_FORMATS",
    "DatasetInfo",
    "RemoteFile",
    "Stream",
    "default_cache_dir",
    "download_file",
    "fetch_files",
    "find_files",
    "get_dataset",
    "list_datasets",
    "load_fashion_mnist",
    "load_mnist",
    "read_data",
    "read_idx",
    "search_paths",
    "write_idx",
]
