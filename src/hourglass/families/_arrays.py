"""What the families of numeric arrays share (dense, conv and their variational variants).

Images or rows of numbers, reconstructed through a sigmoid (data in [0, 1]) or
a linear output clipped to the training range, and scored by MAE, MSE or
binary cross-entropy.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any, ClassVar, cast

import numpy as np
import torch
from numpy.typing import NDArray

from hourglass import distributed
from hourglass.data.stream import Stream
from hourglass.estimators._input import UINT8_SCALE, PreparedInput, is_text, prepare_input
from hourglass.estimators._streaming import StreamInput, scan_stream
from hourglass.exceptions import InvalidInputError, InvalidParameterError
from hourglass.families._family import Family
from hourglass.nn.invariance import InvariantAutoencoder
from hourglass.nn.noise import NOISE_KINDS, Corruption
from hourglass.scoring import ERROR_METRICS, per_sample_error

if TYPE_CHECKING:
    from hourglass.estimators._base import BaseAutoencoder
    from hourglass.nn import ReconstructionModule
    from hourglass.training import CompiledBatches

__all__ = ["ArrayFamily", "clip_to_training_range", "input_corruption"]


def clip_to_training_range(estimator: BaseAutoencoder, output: torch.Tensor) -> torch.Tensor:
    """Clip a linear output back into the per-feature range seen in training."""
    if estimator.output_activation_ != "linear":
        return output
    low = torch.from_numpy(estimator.data_min_).to(output.device).view(output.shape[1:])
    high = torch.from_numpy(estimator.data_max_).to(output.device).view(output.shape[1:])
    return torch.maximum(torch.minimum(output, high), low)


def input_corruption(estimator: BaseAutoencoder, generator: torch.Generator) -> Corruption | None:
    """The training-time corruption of a denoising autoencoder (None without ``noise``)."""
    if estimator.noise is None:
        return None
    if estimator.noise not in NOISE_KINDS:
        raise InvalidParameterError(
            f"noise={estimator.noise!r} corrupts texts; arrays take noise in {list(NOISE_KINDS)}."
        )
    if estimator.noise != "gaussian" and estimator.noise_strength > 1:
        raise InvalidParameterError(
            f"The 'noise_strength' parameter of {type(estimator).__name__} is the fraction of "
            f"values hit by noise={estimator.noise!r}, so it must be in (0, 1]. Got "
            f"{estimator.noise_strength} instead."
        )
    if estimator.output_activation_ == "sigmoid":
        low, high = 0.0, 1.0
    else:
        low, high = float(estimator.data_min_.min()), float(estimator.data_max_.max())
    return Corruption(estimator.noise, float(estimator.noise_strength), generator, low, high)


def _range_message(estimator: BaseAutoencoder, low: float, high: float) -> str:
    return (
        f"{type(estimator).__name__} with a sigmoid output needs data in [0, 1], but the values "
        f"range from {low:.4g} to {high:.4g}. Scale the data "
        "to [0, 1] (divide pixel intensities by 255, or use "
        "sklearn.preprocessing.MinMaxScaler), or use output_activation='linear'."
    )


class ArrayFamily(Family):
    """Numeric arrays: rows of numbers or images, one value per input position."""

    takes_noise: ClassVar[bool] = True
    saved_outputs: ClassVar[tuple[str, ...]] = ("sigmoid", "linear")
    saved_losses: ClassVar[tuple[str, ...]] = ERROR_METRICS

    def prepare_training(self, estimator: BaseAutoencoder, X: Any) -> PreparedInput | StreamInput:
        if isinstance(X, Stream):
            return replace(scan_stream(estimator, X), family=self.name)
        if is_text(X):
            raise InvalidInputError(
                f"arch={estimator.arch!r} needs numeric arrays; got texts. Use arch='auto' "
                "(or 'transformer', 'sequence') for text."
            )
        return replace(prepare_input(estimator, X, reset=True), family=self.name)

    def prepare_later(self, estimator: BaseAutoencoder, X: Any) -> PreparedInput:
        return prepare_input(estimator, X, reset=False)

    def output_and_loss(
        self, estimator: BaseAutoencoder, prepared: PreparedInput | StreamInput
    ) -> tuple[str, str]:
        low, high = prepared.value_range()
        in_unit_range = low >= 0.0 and high <= 1.0
        output = estimator.output_activation
        if output == "auto":
            output = "sigmoid" if in_unit_range else "linear"
        if output == "sigmoid" and not in_unit_range:
            raise InvalidInputError(_range_message(estimator, low, high))
        loss = estimator.loss
        if loss == "auto":
            loss = "bce" if output == "sigmoid" else "mse"
        if loss == "bce" and output != "sigmoid":
            raise InvalidInputError(
                f"loss='bce' needs output_activation='sigmoid' and data in [0, 1]; got "
                f"output_activation={output!r}. Use loss='mse' or 'mae' for data outside [0, 1]."
            )
        return output, loss

    def corruption(
        self, estimator: BaseAutoencoder, generator: torch.Generator
    ) -> Corruption | None:
        return input_corruption(estimator, generator)

    def attach_generators(
        self, module: ReconstructionModule, generators: dict[str, torch.Generator]
    ) -> None:
        if isinstance(module, InvariantAutoencoder):
            module.augmentation_generator = generators["augmentation"]

    def objective(
        self,
        estimator: BaseAutoencoder,
        module: ReconstructionModule,
        x: torch.Tensor,
        target: torch.Tensor,
    ) -> dict[str, torch.Tensor]:
        if torch.is_grad_enabled() and isinstance(module, InvariantAutoencoder):
            return module.training_loss(x, target, estimator.loss_)
        # A training step; under DDP only autograd's gradients are synchronised.
        if (
            torch.is_grad_enabled()
            and module.has_fused_gradients
            and distributed.world_size() == 1
            and not torch.is_autocast_enabled(x.device.type)  # float32 only
        ):
            loss, mae = module.loss_and_gradients(x, target, estimator.loss_)
        else:
            loss, mae = module.reconstruction_loss(x, target, estimator.loss_)
        return {"loss": loss, "mae": mae}

    def compiled_batches(
        self,
        estimator: BaseAutoencoder,
        module: ReconstructionModule,
        corruption: Callable[[torch.Tensor], torch.Tensor] | None,
    ) -> CompiledBatches | None:
        # Where objective() takes the fused step, in one process; batches are scaled as
        # estimators' to_unit_float does, and corrupted as corruption() says (any other
        # corruption trains through the Python loop).
        if (
            isinstance(module, InvariantAutoencoder)
            or distributed.world_size() != 1
            or not (corruption is None or isinstance(corruption, Corruption))
        ):
            return None
        return module.compiled_batches(estimator.loss_, scale=UINT8_SCALE, corruption=corruption)

    def scores(
        self, estimator: BaseAutoencoder, values: NDArray[Any], metric: str
    ) -> NDArray[np.float64]:
        if metric not in ERROR_METRICS:
            raise InvalidParameterError(
                f"Unknown error metric {metric!r}; expected one of {list(ERROR_METRICS)}."
            )
        sigmoid = estimator.output_activation_ == "sigmoid"
        if metric == "bce" and sigmoid:
            low, high = float(np.min(values)), float(np.max(values))
            if values.dtype != np.uint8 and (low < 0.0 or high > 1.0):
                raise InvalidInputError(
                    f"metric='bce' needs data in [0, 1], but the values range from {low:.4g} to "
                    f"{high:.4g}. Use metric='mae' or 'mse', which score such values as badly "
                    "reconstructed, or scale the data to [0, 1] as for training."
                )
        if metric == "bce" and not sigmoid:
            raise InvalidParameterError(
                "metric='bce' needs a model with a sigmoid output (data in [0, 1]); this one "
                "has a linear output. Use metric='mae' or 'mse'."
            )

        def run(module: ReconstructionModule, x: torch.Tensor) -> torch.Tensor:
            logits = module(x)
            if sigmoid:
                return per_sample_error(logits, x, metric, from_logits=True)
            clipped = clip_to_training_range(estimator, logits)
            return per_sample_error(clipped, x, metric, from_logits=False)

        return estimator._map_batches(values, run).numpy().astype(np.float64)

    def reconstruct(self, estimator: BaseAutoencoder, values: NDArray[Any]) -> Any:
        def run(module: ReconstructionModule, x: torch.Tensor) -> torch.Tensor:
            return clip_to_training_range(estimator, module.reconstruct(x))

        out = estimator._map_batches(values, run).numpy().reshape(values.shape)
        return cast(NDArray[np.float32], out)
