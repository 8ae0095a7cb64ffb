"""Ready-made data sets, found on this machine or downloaded and cached on first use.

>>> from hourglass.datasets import load_mnist
>>> images, labels = load_mnist("test")  # doctest: +SKIP

Where files are looked for, in order: the ``data_dir`` argument (directly or
in its sub-folder named for the data set), ``$HOURGLASS_DATA/<name>/``, the
cache (``$HOURGLASS_CACHE``, else ``$XDG_CACHE_HOME/hourglass``, else
``~/.cache/hourglass``; see :func:`default_cache_dir`) and system folders
such as ``/usr/share/datasets/fashion-mnist/``. Downloads are verified against
published SHA-256 digests before they enter the cache.
"""

from __future__ import annotations

from hourglass.data.registry import (
    default_cache_dir,
    fetch_files,
    list_datasets,
    load_fashion_mnist,
    load_mnist,
)

__all__ = [
    "default_cache_dir",
    "fetch_files",
    "list_datasets",
    "load_fashion_mnist",
    "load_mnist",
]
