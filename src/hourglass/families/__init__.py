"""Model families: one object per kind of autoencoder, chosen by ``arch``.

==============  ============================================================
``arch``        family
==============  ============================================================
``"dense"``     :class:`~hourglass.families.dense.DenseFamily`
``"conv"``      :class:`~hourglass.families.conv.ConvFamily`
``"vae"``       :class:`~hourglass.families.variational.DenseVariationalFamily`
``"conv_vae"``  :class:`~hourglass.families.variational.ConvVariationalFamily`
``"sequence"``  :class:`~hourglass.families.sequence.SequenceFamily`
``"tabular"``   :class:`~hourglass.families.tabular.TabularFamily`
``"transformer"`` :class:`~hourglass.families.transformer.TransformerFamily`
==============  ============================================================

:func:`choose_family` resolves ``arch`` for training data, ``"auto"`` included;
:func:`get_family` finds a fitted model's family by name. Adding a family means
writing its class and listing it in :data:`FAMILIES`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from hourglass.data.stream import Stream
from hourglass.estimators._input import is_text
from hourglass.exceptions import UnsupportedByFamilyError
from hourglass.families._family import INPUT_KINDS, Family
from hourglass.families.conv import ConvFamily
from hourglass.families.dense import DenseFamily
from hourglass.families.sequence import SequenceFamily
from hourglass.families.tabular import TabularFamily, has_non_numeric_columns
from hourglass.families.transformer import TransformerFamily
from hourglass.families.variational import ConvVariationalFamily, DenseVariationalFamily
from hourglass.nn.noise import NOISE_KINDS

if TYPE_CHECKING:
    from hourglass.estimators._base import BaseAutoencoder

__all__ = [
    "ARCHITECTURES",
    "FAMILIES",
    "FAMILY_BEFORE_ARCH_WAS_SAVED",
    "INPUT_KINDS",
    "Family",
    "UnsupportedByFamilyError",
    "choose_family",
    "get_family",
    "takes_missing_values",
]

#: Every family, by its ``arch`` name.
FAMILIES: dict[str, Family] = {
    family.name: family
    for family in (
        DenseFamily(),
        ConvFamily(),
        DenseVariationalFamily(),
        ConvVariationalFamily(),
        SequenceFamily(),
        TabularFamily(),
        TransformerFamily(),
    )
}
#: The ``arch`` values besides ``"auto"``.
ARCHITECTURES: tuple[str, ...] = tuple(FAMILIES)
#: What ``arch="auto"`` trains on texts: of the two text families, the one whose codes
#: carry topic, which also flags foreign-language text better and trains faster
#: (``benchmarks/text.py``).
TEXT_DEFAULT = "transformer"
#: The family of models saved before ``arch_`` was recorded, when their ``arch`` was "auto".
FAMILY_BEFORE_ARCH_WAS_SAVED = "dense"


def takes_missing_values(arch: str) -> bool:
    """Whether a model of ``arch`` (``"auto"`` included) may read NaN as a missing value."""
    if arch == "auto":
        return any(family.takes_missing_values for family in FAMILIES.values())
    return arch in FAMILIES and FAMILIES[arch].takes_missing_values


def get_family(name: str) -> Family:
    """The family called ``name`` (an ``arch_`` value)."""
    try:
        return FAMILIES[name]
    except KeyError:
        raise ValueError(
            f"unknown model family {name!r}; expected one of {ARCHITECTURES}"
        ) from None


def _asks_for_dense(estimator: BaseAutoencoder) -> bool:
    """Whether options only the dense family has were set: denoising, a fixed output or loss."""
    return (
        estimator.noise in NOISE_KINDS
        or estimator.output_activation != "auto"
        or estimator.loss != "auto"
    )


def _is_table(estimator: BaseAutoencoder, X: Any) -> bool:
    """Whether ``arch="auto"`` trains the tabular family on ``X``.

    Tables with non-numeric columns always; DataFrames, table files and 2-D
    arrays of numbers too, unless options of the dense family were set.
    """
    if isinstance(X, Stream):
        if not X.is_numeric:
            return True
        rows = X.list_column is None and len(X.sample_shape) == 1
        return rows and not _asks_for_dense(estimator)
    if has_non_numeric_columns(X):
        return True
    if type(X).__module__.startswith("scipy.sparse"):
        return False  # refused with its own message
    try:
        two_dimensional = hasattr(X, "columns") or np.asarray(X).ndim == 2
    except (ValueError, TypeError):  # ragged nested lists: refused with their own message
        return False
    return two_dimensional and not _asks_for_dense(estimator)


def choose_family(estimator: BaseAutoencoder, X: Any) -> Family:
    """The family that trains on ``X``: ``estimator.arch``, or for ``"auto"`` the data's.

    ``"auto"`` picks the transformer family for texts (lists of str and ``.txt``
    streams), the tabular family for tables
    (DataFrames, table files, 2-D arrays) and the dense reference model for images
    and for rows when options of the dense family (noise, output, loss) are set.
    """
    if estimator.arch != "auto":
        return get_family(estimator.arch)
    if X.is_text if isinstance(X, Stream) else is_text(X):
        return FAMILIES[TEXT_DEFAULT]
    if _is_table(estimator, X):
        return FAMILIES["tabular"]
    return FAMILIES["dense"]
