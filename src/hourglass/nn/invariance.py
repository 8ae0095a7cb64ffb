"""Codes that cluster by content: an autoencoder trained to ignore small deformations.

A plain autoencoder's code spends most of its variance on style — stroke
width, slant, position — so k-means on it groups images by style as much as by
content. :class:`InvariantAutoencoder` wraps a dense or convolutional image
autoencoder and adds a contrastive term to its training loss: every image of a
batch is deformed twice by a random small affine transform (shift, rotation,
rescaling); the two codes of the same image are pulled together and pushed
away from the codes of the other images of the batch (the normalised
temperature-scaled cross-entropy of Chen et al., ICML 2020, "SimCLR").
Reconstruction keeps the code informative (the model still has to redraw the
clean image from a deformed view). The codes are the body's code layer taken
before its activation (a ReLU would zero whole codes) and L2-normalised, so
they lie on the unit sphere where the contrastive term measures them.

Measured on MNIST (``benchmarks/clustering.py``): k-means on such codes
recovers the digit classes far better than on pixels, PCA or plain codes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from hourglass.nn.base import ReconstructionModule
from hourglass.nn.conv import ConvAutoencoder
from hourglass.nn.dense import DenseAutoencoder
from hourglass.nn.fused import reconstruction_loss_reference

__all__ = ["AffineJitter", "InvariantAutoencoder", "contrastive_loss", "random_affine"]


@dataclass(frozen=True)
class AffineJitter:
    """Ranges of the random affine transforms (uniform in ``[-max, max]``)."""

    max_shift: float = 0.15  # fraction of the image's width and height
    max_rotation: float = 0.3  # radians (about 17 degrees)
    max_scale: float = 0.15  # relative change of size


def random_affine(
    images: torch.Tensor,
    jitter: AffineJitter = AffineJitter(),
    *,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Apply an independent random affine transform to every image.

    Parameters
    ----------
    images : torch.Tensor of shape (batch, channels, height, width)
        The images; areas moved in from outside the frame are zero.
    jitter : AffineJitter
        Largest shift, rotation and rescaling.
    generator : torch.Generator, optional
        Source of randomness, for reproducible transforms.

    Returns
    -------
    torch.Tensor
        Transformed images, same shape (bilinear interpolation).
    """
    n = images.shape[0]

    def uniform(*shape: int) -> torch.Tensor:
        draws = torch.rand(shape, generator=generator, device=images.device, dtype=images.dtype)
        return draws * 2 - 1

    # affine_grid works in [-1, 1] coordinates: a shift of s image widths is 2 * s.
    shift = uniform(n, 2) * (2 * jitter.max_shift)
    angle = uniform(n) * jitter.max_rotation
    scale = 1 + uniform(n) * jitter.max_scale
    cos, sin = torch.cos(angle) * scale, torch.sin(angle) * scale
    theta = torch.stack(
        [torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1
    )
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, align_corners=False)


def contrastive_loss(
    codes_a: torch.Tensor, codes_b: torch.Tensor, temperature: float
) -> torch.Tensor:
    """Normalised temperature-scaled cross-entropy of two views' codes.

    Row ``i`` of ``codes_a`` and row ``i`` of ``codes_b`` are two views of the
    same sample (a positive pair); every other row of either is a negative.

    Parameters
    ----------
    codes_a, codes_b : torch.Tensor of shape (batch, dim)
        Unit-length codes.
    temperature : float
        Scale of the cosine similarities; smaller is sharper.

    Returns
    -------
    torch.Tensor
        The mean loss, a scalar.
    """
    n = codes_a.shape[0]
    codes = torch.cat([codes_a, codes_b])
    similarity = codes @ codes.T / temperature
    self_pairs = torch.eye(2 * n, dtype=torch.bool, device=codes.device)
    similarity = similarity.masked_fill(self_pairs, -math.inf)
    partner = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(codes.device)
    return F.cross_entropy(similarity, partner)


class InvariantAutoencoder(ReconstructionModule):
    """An image autoencoder whose unit-length codes ignore small deformations.

    Parameters
    ----------
    body : DenseAutoencoder or ConvAutoencoder
        The autoencoder for images of ``image_shape``.
    image_shape : tuple of int
        ``(channels, height, width)`` of one sample.
    weight : float
        Weight of the contrastive term next to the reconstruction loss.
    temperature : float, default=0.5
        Temperature of the contrastive term. On MNIST (``benchmarks/clustering.py``,
        60 epochs of 8,000 images) 0.5 and 0.3 reached 0.81–0.83 k-means accuracy
        over two seeds, 0.2 reached 0.79 and fell to 0.67 with longer training.
    jitter : AffineJitter, optional
        Ranges of the random deformations.
    """

    def __init__(
        self,
        body: DenseAutoencoder | ConvAutoencoder,
        image_shape: tuple[int, int, int],
        *,
        weight: float,
        temperature: float = 0.5,
        jitter: AffineJitter = AffineJitter(),
    ) -> None:
        super().__init__()
        self.body = body
        self.config = body.config
        self.image_shape = image_shape
        self.weight = weight
        self.temperature = temperature
        self.jitter = jitter
        self.augmentation_generator: torch.Generator | None = None

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Unit-length codes of ``x``."""
        return F.normalize(self.body.encode_preactivation(x), dim=1)

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        """The body's decoder."""
        return self.body.decode_logits(z)

    def _deform(self, x: torch.Tensor) -> torch.Tensor:
        images = x.reshape(x.shape[0], *self.image_shape)
        moved = random_affine(images, self.jitter, generator=self.augmentation_generator)
        return moved.reshape(x.shape)

    def training_loss(
        self, x: torch.Tensor, target: torch.Tensor, loss: str
    ) -> dict[str, torch.Tensor]:
        """Reconstruction plus ``weight`` times the contrastive term, for one batch.

        Both views are deformations of ``x``; the first view's code must also
        reconstruct ``target``.

        Returns
        -------
        dict
            ``"loss"`` (differentiable), ``"mae"`` and ``"contrastive"``.
        """
        codes_a = self.encode(self._deform(x))
        codes_b = self.encode(self._deform(x))
        reconstruction, mae = reconstruction_loss_reference(
            self.decode_logits(codes_a), target, self.config.output_activation, loss
        )
        contrast = contrastive_loss(codes_a, codes_b, self.temperature)
        return {
            "loss": reconstruction + self.weight * contrast,
            "mae": mae,
            "contrastive": contrast.detach(),
        }
