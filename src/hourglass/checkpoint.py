"""Training checkpoints: everything needed to continue an interrupted fit exactly.

A checkpoint is one file, ``checkpoint.safetensors``, in the directory the
user names. Its tensors are the module's weights, the optimiser's moments and
step counts, the states of every random generator training draws from, and
(with early stopping) the best weights so far; its header metadata holds the
rest as JSON (epochs completed, history, early-stopping counters) and a
*fingerprint* of the data and settings it belongs to. It is written to a
temporary file and renamed over the previous one, so a crash at any moment
leaves the last complete checkpoint, never a partial one.

Resuming reloads all of it; because every source of randomness is restored,
the resumed run ends with the same weights as one that was never
interrupted (on CPU, with the same seed).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from hourglass._atomic import atomic_file
from hourglass.exceptions import InvalidInputError, ModelFileError

__all__ = [
    "CHECKPOINT_NAME",
    "Checkpoint",
    "TrainingState",
    "epochs_done",
    "load_state",
    "save_state",
]

CHECKPOINT_NAME = "checkpoint.safetensors"
CHECKPOINT_FORMAT = "hourglass-checkpoint"
CHECKPOINT_VERSION = 1


@dataclass
class TrainingState:
    """The state of :func:`hourglass.training.train` after a completed epoch."""

    epochs_done: int
    module: dict[str, torch.Tensor]
    optimizer: dict[str, torch.Tensor]
    generators: dict[str, torch.Tensor]
    history: dict[str, list[float]]
    best_epoch: int | None = None
    best_value: float = float("inf")
    epochs_without_improvement: int = 0
    best_module: dict[str, torch.Tensor] | None = None
    stopped_early: bool = False


@dataclass
class Checkpoint:
    """Where and whether :func:`~hourglass.training.train` checkpoints.

    Parameters
    ----------
    directory : path
        Folder of ``checkpoint.safetensors``; created when missing.
    fingerprint : str
        Identifies the data and settings; a checkpoint with another
        fingerprint is never resumed from.
    resume : bool, default=False
        Continue from the checkpoint in ``directory`` when there is one
        (starting afresh when there is none).
    """

    directory: str | os.PathLike[str]
    fingerprint: str
    resume: bool = False

    @property
    def path(self) -> Path:
        """The checkpoint file."""
        return Path(self.directory) / CHECKPOINT_NAME


def _flatten(prefix: str, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    # safetensors refuses tensors that share memory or are not contiguous: copy.
    return {f"{prefix}{name}": t.detach().cpu().contiguous().clone() for name, t in tensors.items()}


def _section(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}


def save_state(checkpoint: Checkpoint, state: TrainingState) -> Path:
    """Write ``state`` atomically to ``checkpoint.path``; return the path."""
    tensors = {
        **_flatten("module.", state.module),
        **_flatten("optimizer.", state.optimizer),
        **_flatten("generator.", state.generators),
        **_flatten("best.", state.best_module or {}),
    }
    metadata = {
        "format": CHECKPOINT_FORMAT,
        "format_version": str(CHECKPOINT_VERSION),
        "fingerprint": checkpoint.fingerprint,
        "state": json.dumps(
            {
                "epochs_done": state.epochs_done,
                "history": state.history,
                "best_epoch": state.best_epoch,
                "best_value": state.best_value if state.best_value != float("inf") else None,
                "epochs_without_improvement": state.epochs_without_improvement,
                "has_best": state.best_module is not None,
                "stopped_early": state.stopped_early,
            }
        ),
    }
    with atomic_file(checkpoint.path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)
    return checkpoint.path


def _read_metadata(path: Path) -> dict[str, str]:
    with open(path, "rb") as handle:
        size_bytes = handle.read(8)
        if len(size_bytes) < 8:
            raise ModelFileError(f"{path} is not a checkpoint (too short).")
        size = int.from_bytes(size_bytes, "little")
        if size > 2**26:
            raise ModelFileError(f"{path} is not a checkpoint (header of {size} bytes).")
        header: Any = json.loads(handle.read(size))
    metadata = header.get("__metadata__") if isinstance(header, dict) else None
    if not isinstance(metadata, dict):
        raise ModelFileError(f"{path} is not an hourglass checkpoint (no metadata).")
    return {str(k): str(v) for k, v in metadata.items()}


def epochs_done(directory: str | os.PathLike[str]) -> int | None:
    """How many epochs the checkpoint in ``directory`` holds (None without one)."""
    path = Path(directory) / CHECKPOINT_NAME
    if not path.is_file():
        return None
    try:
        return int(json.loads(_read_metadata(path)["state"])["epochs_done"])
    except (OSError, ValueError, KeyError) as error:
        raise ModelFileError(
            f"Cannot read the checkpoint {path} ({error}); delete it to start afresh."
        ) from error


def load_state(checkpoint: Checkpoint) -> TrainingState | None:
    """The saved state to resume from, or None when there is no checkpoint.

    Raises
    ------
    InvalidInputError
        If the checkpoint belongs to other data or settings.
    ModelFileError
        If the file is not a readable hourglass checkpoint.
    """
    path = checkpoint.path
    if not path.is_file():
        return None
    try:
        metadata = _read_metadata(path)
        if metadata.get("format") != CHECKPOINT_FORMAT:
            raise ModelFileError(f"{path} is not an hourglass checkpoint.")
        if metadata.get("format_version") != str(CHECKPOINT_VERSION):
            raise ModelFileError(
                f"{path} was written by another version of hourglass (checkpoint format "
                f"{metadata.get('format_version')}); delete it to start afresh."
            )
        info = json.loads(metadata["state"])
        tensors = load_file(str(path))
    except (OSError, ValueError, KeyError, SafetensorError) as error:
        raise ModelFileError(
            f"Cannot read the checkpoint {path} ({error}); delete it to start afresh."
        ) from error
    if metadata.get("fingerprint") != checkpoint.fingerprint:
        raise InvalidInputError(
            f"The checkpoint in {checkpoint.directory} was written for other data or "
            "settings, so it cannot be resumed. Use the same data and parameters, another "
            "checkpoint directory, or delete it to start afresh."
        )
    best_value = info["best_value"]
    return TrainingState(
        epochs_done=int(info["epochs_done"]),
        module=_section(tensors, "module."),
        optimizer=_section(tensors, "optimizer."),
        generators=_section(tensors, "generator."),
        history={str(k): [float(v) for v in vs] for k, vs in info["history"].items()},
        best_epoch=info["best_epoch"],
        best_value=float("inf") if best_value is None else float(best_value),
        epochs_without_improvement=int(info["epochs_without_improvement"]),
        best_module=_section(tensors, "best.") if info["has_best"] else None,
        stopped_early=bool(info["stopped_early"]),
    )
