"""What a model family is: the parts of an autoencoder that depend on its kind of data.

A family object is stateless. It reads the estimator's parameters and fitted
attributes, and the estimator delegates to it everything that differs between
families: preparing input, building the network, the training objective,
per-sample scores, decoding outputs, the fitted state it saves, and what it can
do. Fitted attributes stay on the estimator (scikit-learn's convention).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import torch
from numpy.typing import NDArray

from hourglass.estimators._blocks import BLOCK_ROW_MULTIPLE
from hourglass.exceptions import InvalidInputError, UnsupportedByFamilyError

if TYPE_CHECKING:
    from hourglass.estimators._base import BaseAutoencoder
    from hourglass.estimators._input import PreparedInput
    from hourglass.estimators._streaming import StreamInput
    from hourglass.nn import ReconstructionModule
    from hourglass.training import CompiledBatches

__all__ = ["INPUT_KINDS", "ClusteringRecipe", "Family", "unsupported"]

#: What a model takes, as the service, the exporter and reports describe it.
INPUT_KINDS = ("images", "vectors", "table", "texts")

#: Input values per forward pass at inference (the last block is padded): large
#: enough to amortise per-call overhead, small enough to keep memory bounded and a
#: single sample cheap. The rows per block follow from the model's input width, so
#: they are fixed for a model and a sample's outputs never depend on its batch.
#: ``epochs="auto"`` for families that do not choose otherwise.
AUTO_EPOCHS = 10
INFERENCE_BLOCK_VALUES = 2**18
#: The most rows per block: a sample scored alone costs a whole block. Tables of a few
#: columns would get 4,096-row blocks from INFERENCE_BLOCK_VALUES alone, which cut the
#: scoring service's single-row throughput from 1,152 to 193 requests/s (measured).
MAX_INFERENCE_BLOCK_ROWS = 512


@dataclass(frozen=True)
class ClusteringRecipe:
    """How :class:`~hourglass.AutoencoderClusterer` clusters a family's data by default.

    Attributes
    ----------
    autoencoder : dict or None
        Parameters of the :class:`~hourglass.Autoencoder` whose codes are
        clustered; ``None`` clusters the data's own columns
        (:class:`hourglass.tabular.ColumnFeatures`) without an autoencoder.
    n_neighbors : int
        Neighbours of each point in the manifold step (UMAP's ``n_neighbors``).
    """

    autoencoder: dict[str, Any] | None = field(default_factory=dict)
    n_neighbors: int = 30


def _next_power_of_two(n: int) -> int:
    return 1 << max(0, n - 1).bit_length()


class Family:
    """Base class of the model families (``arch`` values).

    Subclasses set :attr:`name` and the capability flags, and override the
    methods their kind of data needs. The defaults describe numeric arrays.
    """

    #: The ``arch`` value that selects this family.
    name: ClassVar[str] = ""
    #: Whether :meth:`prepare_training` accepts a Stream (data larger than memory).
    trains_from_streams: ClassVar[bool] = True
    #: Whether NaN in the input is read as a missing value (else refused).
    takes_missing_values: ClassVar[bool] = False
    #: Whether ``trim=`` (leaving the worst rows of each batch out of the loss) applies.
    takes_trim: ClassVar[bool] = False
    #: Whether ``noise=`` (denoising training) applies.
    takes_noise: ClassVar[bool] = False
    #: Whether ``invariance=`` (a contrastive term on deformed images) applies.
    takes_invariance: ClassVar[bool] = False
    #: Whether ``explain`` gives per-column contributions.
    explains: ClassVar[bool] = False
    #: Whether ``sample`` and ``negative_elbo`` exist (a variational model).
    samples: ClassVar[bool] = False
    #: Whether ``hourglass.export.to_onnx`` can express the model's score.
    exports_onnx: ClassVar[bool] = False
    #: Whether an outlier detector may score by :meth:`distance_scores` (``score_type``).
    distance_score: ClassVar[bool] = False
    #: The one score a model of this family has (``metric_``); None: the estimator's metric.
    own_metric: ClassVar[str | None] = None
    #: ``trim="auto"`` resolved for this family.
    auto_trim: ClassVar[float] = 0.0
    #: The ``output_activation_`` and ``loss_`` values a saved model may hold.
    saved_outputs: ClassVar[tuple[str, ...]] = ()
    saved_losses: ClassVar[tuple[str, ...]] = ()

    def __repr__(self) -> str:
        return f"<hourglass family {self.name!r}>"

    def slices_batches(self, estimator: BaseAutoencoder) -> bool:
        """Whether a batch's gradient may be computed slice by slice, the slices in parallel.

        True where the training objective is a mean over the samples and draws
        no random numbers (see :mod:`hourglass.sliced_gradients`). The default:
        False.
        """
        return False

    def auto_epochs(self, n_samples: int, batch_size: int) -> int:
        """``epochs="auto"`` for ``n_samples`` training samples (default: :data:`AUTO_EPOCHS`)."""
        return AUTO_EPOCHS

    def clustering_recipe(self, n_samples: int) -> ClusteringRecipe:
        """What clustering ``n_samples`` samples of this family's data uses by default.

        The default: the codes of this family's default autoencoder, 30 neighbours.
        """
        return ClusteringRecipe()

    # ----------------------------------------------------------------- input

    def prepare_training(self, estimator: BaseAutoencoder, X: Any) -> PreparedInput | StreamInput:
        """Validate the training data (in memory or a Stream) for this family."""
        raise NotImplementedError

    def prepare_later(self, estimator: BaseAutoencoder, X: Any) -> PreparedInput:
        """Validate data given after fit: validation data, or data to encode or score."""
        raise NotImplementedError

    def input_kind(self, input_shape: tuple[int, ...]) -> str:
        """What the model takes, one of :data:`INPUT_KINDS`."""
        return "images" if len(input_shape) in (2, 3) else "vectors"

    def n_features_in(self, estimator: BaseAutoencoder) -> int:
        """``n_features_in_``: values per sample (tables count their columns)."""
        return math.prod(estimator.input_shape_)

    def check_fit(self, estimator: BaseAutoencoder, prepared: PreparedInput | StreamInput) -> None:
        """Refuse options this family has no use for (after the input shape is known)."""
        trim = estimator.trim
        if not self.takes_trim and not isinstance(trim, str) and trim > 0:
            raise InvalidInputError(
                f"trim={trim} trims the training loss of tables; it needs arch='tabular' "
                "(or a table with arch='auto'). Set trim=0 or 'auto' for this data."
            )
        if estimator.noise is not None and not self.takes_noise:
            raise InvalidInputError(f"noise= does not apply to arch={self.name!r}. Remove it.")
        if estimator.invariance > 0 and not (
            self.takes_invariance and len(estimator.input_shape_) in (2, 3)
        ):
            raise InvalidInputError(
                "invariance= deforms images, so it needs arch='dense' or 'conv' and images: X of "
                f"shape (n, h, w) or (n, c, h, w). Got arch={self.name!r} and samples of shape "
                f"{estimator.input_shape_}; set invariance=0 or pass images."
            )

    def output_and_loss(
        self, estimator: BaseAutoencoder, prepared: PreparedInput | StreamInput
    ) -> tuple[str, str]:
        """``output_activation_`` and ``loss_`` for the training data."""
        raise NotImplementedError

    # -------------------------------------------------------------- training

    def build_module(
        self, estimator: BaseAutoencoder, generator: torch.Generator
    ) -> ReconstructionModule:
        """A freshly initialised network for the fitted input shape."""
        raise NotImplementedError

    def attach_generators(
        self, module: ReconstructionModule, generators: dict[str, torch.Generator]
    ) -> None:
        """Give the module the random streams it draws from while training (if any)."""

    def corruption(
        self, estimator: BaseAutoencoder, generator: torch.Generator
    ) -> Callable[[torch.Tensor], torch.Tensor] | None:
        """The corruption of training inputs (denoising), or None to train on them as they are."""
        return None

    def objective(
        self,
        estimator: BaseAutoencoder,
        module: ReconstructionModule,
        x: torch.Tensor,
        target: torch.Tensor,
    ) -> dict[str, torch.Tensor]:
        """The training loss (and metrics) of a batch; without gradients, validation."""
        raise NotImplementedError

    def compiled_batches(
        self,
        estimator: BaseAutoencoder,
        module: ReconstructionModule,
        corruption: Callable[[torch.Tensor], torch.Tensor] | None,
    ) -> CompiledBatches | None:
        """A compiled loop that trains like :meth:`objective`'s steps, or None (the default).

        ``corruption`` is what :meth:`corruption` returned; the loop corrupts its
        inputs alike. The training loop uses it in place of its own steps where it
        can (see :func:`hourglass.training.train`).
        """
        return None

    def after_fit(self, estimator: BaseAutoencoder, rows: NDArray[Any] | None) -> None:
        """Fit statistics of the trained model on (a sample of) the training rows."""

    # ------------------------------------------------------------- inference

    def inference_block_rows(self, input_shape: tuple[int, ...]) -> int:
        """Rows per forward pass at inference, fixed for a model (see ``_blocks``).

        About :data:`INFERENCE_BLOCK_VALUES` input values: narrow rows come in
        larger blocks, which amortise the per-operation overhead.
        """
        rows = INFERENCE_BLOCK_VALUES // math.prod(input_shape)
        return int(min(MAX_INFERENCE_BLOCK_ROWS, max(BLOCK_ROW_MULTIPLE, _next_power_of_two(rows))))

    def inference_groups(self, values: NDArray[Any]) -> list[tuple[NDArray[np.intp], Any]] | None:
        """Groups of samples computed apart (texts by length), or None for one group."""
        return None

    def scores(
        self, estimator: BaseAutoencoder, values: NDArray[Any], metric: str
    ) -> NDArray[np.float64]:
        """Per-sample reconstruction error of prepared ``values``."""
        raise NotImplementedError

    def reconstruct(self, estimator: BaseAutoencoder, values: NDArray[Any]) -> Any:
        """Encode then decode prepared ``values``, in the user's terms."""
        raise NotImplementedError

    def explained_scores(
        self, estimator: BaseAutoencoder, values: NDArray[Any]
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Per-column contributions and per-sample scores, from one pass (if :attr:`explains`).

        The scores are those of :meth:`scores`, bit for bit.
        """
        raise unsupported(estimator, "explain", "a tabular model (arch='tabular')")

    def fit_distance_score(self, estimator: BaseAutoencoder, rows: NDArray[Any]) -> None:
        """Fit the statistics of the distance score (families with :attr:`distance_score`)."""
        raise NotImplementedError

    def distance_scores(
        self, estimator: BaseAutoencoder, values: NDArray[Any]
    ) -> NDArray[np.float64]:
        """The distance score of prepared ``values`` (families with :attr:`distance_score`)."""
        raise NotImplementedError

    def distance_state(self, estimator: BaseAutoencoder) -> dict[str, NDArray[Any]]:
        """The distance score's fitted arrays, to save (families with :attr:`distance_score`)."""
        raise NotImplementedError

    def restore_distance_state(
        self, estimator: BaseAutoencoder, arrays: dict[str, NDArray[Any]]
    ) -> None:
        """Check and set the distance score's saved arrays (with :attr:`distance_score`)."""
        raise NotImplementedError

    # ----------------------------------------------------------- persistence

    def fitted_state(
        self, estimator: BaseAutoencoder
    ) -> tuple[dict[str, Any], dict[str, NDArray[Any]]]:
        """This family's own fitted attributes: JSON-able values and arrays."""
        return {}, {}

    def restore_fitted_state(
        self,
        estimator: BaseAutoencoder,
        state: dict[str, Any],
        arrays: dict[str, NDArray[Any]],
    ) -> None:
        """Set what :meth:`fitted_state` saved; raise ValueError on anything fit cannot make."""

    def onnx_refusal(self, estimator: BaseAutoencoder) -> str | None:
        """Why a model of a family that :attr:`exports_onnx` cannot be exported, or None."""
        return None

    def n_features_in_bounds(self, input_shape: tuple[int, ...]) -> tuple[int, int]:
        """The ``n_features_in_`` a saved model of this input shape may hold."""
        n = math.prod(input_shape)
        return n, n


def unsupported(estimator: BaseAutoencoder, method: str, families: str) -> UnsupportedByFamilyError:
    """The one error of a family-only method called on a model of another family."""
    return UnsupportedByFamilyError(
        f"{method} needs {families}; this model has arch={estimator.arch_!r}. "
        f"Fit a model of that family to use {method}."
    )
