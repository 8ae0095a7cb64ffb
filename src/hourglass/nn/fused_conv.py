"""A convolutional autoencoder's training step as matrix products, with hand-written gradients.

Why: on a CPU, the layers of the image autoencoder are small and oddly shaped
for a convolution library. The first convolution reads one channel, the last
transposed convolution writes one, and the backward kernels of both ran at a
few GFLOP/s, a tenth of what the same arithmetic reaches as one matrix
product. Here every layer is one matrix product on images laid out channels
last, ``(batch, height, width, channels)``, where a pixel's channels are
contiguous:

* a 3×3 convolution with stride 2 gathers its patches with one strided copy
  (``as_strided``: each output pixel's 3×3×C inputs) and multiplies them by the
  weight, ``(batch·h·w, 9·C_in) @ (9·C_in, C_out)``;
* a 4×4 transposed convolution with stride 2 multiplies every input pixel by
  the weight, ``(batch·h·w, C_in) @ (C_in, 16·C_out)``, and adds the sixteen
  taps into the output, each a strided view of it;
* the backward pass swaps the two: a convolution's input gradient is added
  tap by tap, a transposed convolution's output gradient gathered in one copy.

The gradients are written into buffers reused from step to step (as in
:mod:`hourglass.nn.fused`); they equal autograd's up to rounding
(``tests/nn/test_fused_conv.py``). The module's parameters keep PyTorch's
layouts, so a model trained here is an ordinary ``ConvAutoencoder``.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from hourglass.nn.fused import (
    activate,
    activation_backward_,
    gradient_buffer,
    output_loss_and_gradient,
)
from hourglass.threads import num_threads

__all__ = [
    "SPLIT_BATCH",
    "THIN_CHANNELS",
    "ConvLayers",
    "conv_loss_and_gradients",
]

#: Layers with at most this many channels on the image side (a convolution's input, a
#: transposed convolution's output) run as matrix products; wider ones through
#: PyTorch's convolution kernels (oneDNN), which are faster there.
THIN_CHANNELS = 4
#: Batches of at least this many samples are computed in two halves (see
#: :func:`conv_loss_and_gradients`).
SPLIT_BATCH = 16


@dataclass(frozen=True)
class ConvLayers:
    """The layers of a convolutional autoencoder, in the order data flows through them."""

    convolutions: Sequence[nn.Conv2d]  # 3x3, stride 2, padding 1
    code: nn.Linear  # flattened feature map -> code
    expand: nn.Linear  # code -> flattened feature map
    transposed: Sequence[nn.ConvTranspose2d]  # 4x4, stride 2, padding 1
    bottleneck: tuple[int, int, int]  # (channels, height, width) of the smallest map

    def parameters(self) -> list[torch.Tensor]:
        """Every weight and bias, input side first, each layer's weight before its bias."""
        modules: list[nn.Conv2d | nn.Linear | nn.ConvTranspose2d] = [
            *self.convolutions,
            self.code,
            self.expand,
            *self.transposed,
        ]
        return [p for m in modules for p in (m.weight, m.bias) if p is not None]


def _patches(padded: torch.Tensor, size: int, out_h: int, out_w: int) -> torch.Tensor:
    """Strided view ``(b, out_h, out_w, size, size, c)`` of stride-2 patches of ``padded``."""
    batch, _, _, channels = padded.shape
    s_b, s_h, s_w, s_c = padded.stride()
    return padded.as_strided(
        (batch, out_h, out_w, size, size, channels), (s_b, 2 * s_h, 2 * s_w, s_h, s_w, s_c)
    )


_ATEN = torch.ops.aten
_STRIDE, _PADDING, _DILATION = [2, 2], [1, 1], [1, 1]


def _library(
    layer: nn.Conv2d | nn.ConvTranspose2d, images: torch.Tensor, *, transposed: bool
) -> torch.Tensor:
    """The layer through PyTorch's convolution kernels, on channels-last ``images``."""
    out = _ATEN.convolution(
        images.permute(0, 3, 1, 2),  # a channels-last (b, c, h, w) view
        layer.weight,
        layer.bias,
        _STRIDE,
        _PADDING,
        _DILATION,
        transposed,
        [0, 0],
        1,
    )
    channels_last: torch.Tensor = out.permute(0, 2, 3, 1).contiguous()  # no copy: CL already
    return channels_last  # (b, h, w, c)


Gradients = list[torch.Tensor]  # one per parameter, in ConvLayers.parameters() order


def _library_backward(
    layer: nn.Conv2d | nn.ConvTranspose2d,
    grad: torch.Tensor,
    images: torch.Tensor,
    gradients: Gradients,
    *,
    transposed: bool,
    needs_input_grad: bool,
) -> torch.Tensor | None:
    """Append the gradients of a layer run by :func:`_library`; return its input's gradient."""
    assert layer.bias is not None
    input_grad, weight_grad, bias_grad = _ATEN.convolution_backward(
        grad.permute(0, 3, 1, 2),
        images.permute(0, 3, 1, 2),
        layer.weight,
        [layer.bias.shape[0]],
        _STRIDE,
        _PADDING,
        _DILATION,
        transposed,
        [0, 0],
        1,
        [needs_input_grad, True, True],
    )
    gradients += [bias_grad, weight_grad]
    return None if input_grad is None else input_grad.permute(0, 2, 3, 1)


def _conv_forward(layer: nn.Conv2d, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """A 3×3 stride-2 convolution of channels-last ``images`` (even height and width).

    Returns the output ``(b, h/2, w/2, c_out)`` and the patches it was computed
    from, ``(b·h/2·w/2, 9·c_in)``, which the backward pass needs.
    """
    batch, height, width, channels = images.shape
    out_h, out_w = height // 2, width // 2
    # Output pixel i reads input rows 2i-1, 2i, 2i+1: with padding=1, only the top row
    # and left column of padding are ever read.
    padded = F.pad(images, (0, 0, 1, 0, 1, 0))  # (b, h+1, w+1, c)
    patches = _patches(padded, 3, out_h, out_w).reshape(batch * out_h * out_w, 9 * channels)
    # (c_out, c_in, 3, 3) -> (c_out, 3·3·c_in), the patches' order.
    weight = layer.weight.permute(0, 2, 3, 1).reshape(layer.out_channels, -1)
    assert layer.bias is not None
    out = torch.addmm(layer.bias, patches, weight.t())  # (b·h/2·w/2, c_out)
    return out.view(batch, out_h, out_w, -1), patches


def _conv_backward(
    layer: nn.Conv2d,
    grad: torch.Tensor,
    patches: torch.Tensor,
    input_shape: torch.Size,
    gradients: Gradients,
    *,
    needs_input_grad: bool,
) -> torch.Tensor | None:
    """Append the gradients of ``layer``; return the gradient of its input (if needed)."""
    c_out, c_in = layer.out_channels, layer.in_channels
    flat = grad.reshape(-1, c_out)  # (b·h·w, c_out)
    weight_grad = flat.t().mm(patches)  # (c_out, 3·3·c_in)
    gradients += [flat.sum(dim=0), weight_grad.view(c_out, 3, 3, c_in).permute(0, 3, 1, 2)]
    if not needs_input_grad:
        return None
    weight = layer.weight.permute(0, 2, 3, 1).reshape(c_out, -1)
    batch, height, width, _ = input_shape
    out_h, out_w = height // 2, width // 2
    patch_grads = flat.mm(weight).view(batch, out_h, out_w, 3, 3, c_in)
    padded = grad.new_zeros(batch, height + 1, width + 1, c_in)
    for dy in range(3):  # taps overlap, so they are added one by one
        for dx in range(3):
            padded[:, dy : dy + 2 * out_h : 2, dx : dx + 2 * out_w : 2] += patch_grads[
                :, :, :, dy, dx
            ]
    return padded[:, 1:, 1:]


def _transposed_forward(layer: nn.ConvTranspose2d, images: torch.Tensor) -> torch.Tensor:
    """A 4×4 stride-2 transposed convolution (padding 1) of channels-last ``images``."""
    batch, height, width, c_in = images.shape
    c_out = layer.out_channels
    # (c_in, c_out, 4, 4) -> (c_in, 4·4·c_out): every tap of every output channel.
    weight = layer.weight.permute(0, 2, 3, 1).reshape(c_in, -1)
    taps = images.reshape(-1, c_in).mm(weight).view(batch, height, width, 4, 4, c_out)
    # Input pixel i reaches output rows 2i-1 .. 2i+2; the full output has a border of
    # one pixel that padding=1 crops away.
    full = images.new_zeros(batch, 2 * height + 2, 2 * width + 2, c_out)
    for dy in range(4):
        for dx in range(4):
            full[:, dy : dy + 2 * height : 2, dx : dx + 2 * width : 2] += taps[:, :, :, dy, dx]
    assert layer.bias is not None
    return full[:, 1:-1, 1:-1].add(layer.bias)  # (b, 2h, 2w, c_out), contiguous


def _transposed_backward(
    layer: nn.ConvTranspose2d, grad: torch.Tensor, images: torch.Tensor, gradients: Gradients
) -> torch.Tensor:
    """Append the gradients of ``layer``; return the gradient of its input ``images``."""
    batch, height, width, c_in = images.shape
    c_out = layer.out_channels
    padded = F.pad(grad, (0, 0, 1, 1, 1, 1))  # (b, 2h+2, 2w+2, c_out): the uncropped output
    tap_grads = _patches(padded, 4, height, width).reshape(batch * height * width, 16 * c_out)
    weight_grad = images.reshape(-1, c_in).t().mm(tap_grads)  # (c_in, 4·4·c_out)
    gradients += [
        grad.reshape(-1, c_out).sum(dim=0),
        weight_grad.view(c_in, 4, 4, c_out).permute(0, 3, 1, 2),
    ]
    weight = layer.weight.permute(0, 2, 3, 1).reshape(c_in, -1)
    return tap_grads.mm(weight.t()).view(batch, height, width, c_in)


@dataclass
class _Activations:
    """What the forward pass keeps for the backward pass (channels last)."""

    convolutions: list[tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]]
    flat: torch.Tensor  # the encoder's last feature map, flattened (b, h·w·c)
    code_weight: torch.Tensor  # (latent, h·w·c), in the feature map's order
    code: torch.Tensor
    expand_weight: torch.Tensor  # (h·w·c, latent)
    expanded: torch.Tensor
    decoder_inputs: list[torch.Tensor]
    logits: torch.Tensor  # (b, padded h, padded w, c)


def _forward(images: torch.Tensor, layers: ConvLayers, activation: str) -> _Activations:
    """The forward pass of channels-last ``images`` ``(b, h, w, c)``."""
    batch = images.shape[0]
    x = images
    # Encoder: (input, patches or None, output after the activation) of every convolution.
    convolutions: list[tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]] = []
    for conv in layers.convolutions:
        if conv.in_channels <= THIN_CHANNELS:
            out, patches = _conv_forward(conv, x)
        else:
            out, patches = _library(conv, x, transposed=False), None
        convolutions.append((x, patches, activate(activation, out)))
        x = convolutions[-1][2]
    channels, height, width = layers.bottleneck
    flat = x.reshape(batch, -1)  # (b, h·w·c)
    # The Linear layers' weights see the feature map in PyTorch's (c, h, w) order.
    code_weight = layers.code.weight.view(-1, channels, height, width).permute(0, 2, 3, 1)
    code_weight = code_weight.reshape(layers.code.out_features, -1)  # (latent, h·w·c)
    code = activate(activation, torch.addmm(layers.code.bias, flat, code_weight.t()))
    expand_weight = layers.expand.weight.view(channels, height, width, -1).permute(1, 2, 0, 3)
    expand_weight = expand_weight.reshape(-1, layers.expand.in_features)  # (h·w·c, latent)
    expand_bias = layers.expand.bias.view(channels, height, width).permute(1, 2, 0).reshape(-1)
    expanded = activate(activation, torch.addmm(expand_bias, code, expand_weight.t()))
    # Decoder: the input of every transposed convolution.
    x = expanded.view(batch, height, width, channels)
    decoder_inputs = []
    for i, layer in enumerate(layers.transposed):
        decoder_inputs.append(x)
        if layer.out_channels <= THIN_CHANNELS:
            x = _transposed_forward(layer, x)
        else:
            x = _library(layer, x, transposed=True)
        if i < len(layers.transposed) - 1:
            x = activate(activation, x)
    return _Activations(
        convolutions, flat, code_weight, code, expand_weight, expanded, decoder_inputs, x
    )


def _part(
    images: torch.Tensor,
    target: torch.Tensor,
    layers: ConvLayers,
    activation: str,
    output_activation: str,
    loss: str,
    n: int,
) -> tuple[torch.Tensor, torch.Tensor, Gradients]:
    """Loss and MAE (sums over elements divided by ``n``) and gradients of some samples.

    The gradients come in the reverse of :meth:`ConvLayers.parameters`' order.
    """
    batch = images.shape[0]
    saved = _forward(images.permute(0, 2, 3, 1).contiguous(), layers, activation)
    convolutions, flat, code = saved.convolutions, saved.flat, saved.code
    code_weight, expand_weight = saved.code_weight, saved.expand_weight
    expanded, decoder_inputs, x = saved.expanded, saved.decoder_inputs, saved.logits
    channels, height, width = layers.bottleneck
    # x: logits (b, padded h, padded w, c); the loss counts the target's region only.
    out_h, out_w = target.shape[2], target.shape[3]
    logits = x[:, :out_h, :out_w]
    value, mae, grad = output_loss_and_gradient(
        logits, target.permute(0, 2, 3, 1), output_activation, loss, n
    )
    if (out_h, out_w) != x.shape[1:3]:
        grad = F.pad(grad, (0, 0, 0, x.shape[2] - out_w, 0, x.shape[1] - out_h))

    gradients: Gradients = []
    for i in reversed(range(len(layers.transposed))):
        layer = layers.transposed[i]
        if layer.out_channels <= THIN_CHANNELS:
            grad = _transposed_backward(layer, grad.contiguous(), decoder_inputs[i], gradients)
        else:
            input_grad = _library_backward(
                layer, grad, decoder_inputs[i], gradients, transposed=True, needs_input_grad=True
            )
            assert input_grad is not None
            grad = input_grad
        if i > 0:
            grad = activation_backward_(activation, grad, decoder_inputs[i])
    grad = activation_backward_(activation, grad.reshape(batch, -1), expanded)
    expand_grad = grad.t().mm(code)  # (h·w·c, latent), rows in the feature map's order
    gradients += [
        grad.sum(dim=0).view(height, width, channels).permute(2, 0, 1).reshape(-1),
        expand_grad.view(height, width, channels, -1)
        .permute(2, 0, 1, 3)
        .reshape(-1, code.shape[1]),
    ]
    grad = activation_backward_(activation, grad.mm(expand_weight), code)
    code_grad = grad.t().mm(flat)  # (latent, h·w·c)
    gradients += [
        grad.sum(dim=0),
        code_grad.view(-1, height, width, channels).permute(0, 3, 1, 2).reshape(-1, flat.shape[1]),
    ]
    grad = grad.mm(code_weight).view(batch, height, width, channels)

    for i in reversed(range(len(layers.convolutions))):
        conv_input, patches, output = convolutions[i]
        grad = activation_backward_(activation, grad.contiguous(), output)
        if patches is not None:
            input_grad = _conv_backward(
                layers.convolutions[i],
                grad,
                patches,
                conv_input.shape,
                gradients,
                needs_input_grad=i > 0,
            )
        else:
            input_grad = _library_backward(
                layers.convolutions[i],
                grad,
                conv_input,
                gradients,
                transposed=False,
                needs_input_grad=i > 0,
            )
        if input_grad is not None:
            grad = input_grad
    return value, mae, gradients


def _single_threaded_worker() -> None:
    torch.set_num_threads(1)  # this thread's own setting (OpenMP's is per thread)


_WORKER: ThreadPoolExecutor | None = None


def _worker() -> ThreadPoolExecutor:
    """The thread that computes the second part of a batch, created on first use."""
    global _WORKER
    if _WORKER is None:
        _WORKER = ThreadPoolExecutor(
            max_workers=1,
            thread_name_prefix="hourglass-conv",
            initializer=_single_threaded_worker,
        )
    return _WORKER


@torch.no_grad()
def conv_loss_and_gradients(
    images: torch.Tensor,
    target: torch.Tensor,
    layers: ConvLayers,
    *,
    activation: str,
    output_activation: str,
    loss: str,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Forward pass, mean ``loss`` and the gradients of every parameter.

    The batch is computed in two halves (from :data:`SPLIT_BATCH` samples on),
    whose gradients are added: with several torch threads, the second half runs
    on a thread of its own while this one computes the first, each half on one
    thread. The results are therefore the same, bit for bit, whatever the
    thread count, which lets training use both cores of a 2-core CPU (see
    :mod:`hourglass.threads`) where a convolution library's multi-threaded
    kernels would change the rounding.

    Parameters
    ----------
    images, target : torch.Tensor of shape (batch, channels, height, width)
        Input and reconstruction target. ``images`` is zero-padded to the
        network's size (height and width multiples of
        ``2 ** len(layers.convolutions)``); ``target`` is not, and only its
        elements count in the loss.
    layers : ConvLayers
        The network.
    activation : str
        One of :data:`hourglass.nn.fused.FUSED_ACTIVATIONS`, after every layer
        but the last.
    output_activation : {"sigmoid", "linear"}
        Output non-linearity.
    loss : {"bce", "mse", "mae"}
        Mean binary cross-entropy (from logits), squared error or absolute error.

    Returns
    -------
    loss, mae : torch.Tensor
        Scalars without gradient; the gradients are written into each
        parameter's ``.grad``.
    """
    n = target.numel()
    batch = images.shape[0]
    args = (layers, activation, output_activation, loss, n)
    if batch < SPLIT_BATCH:
        value, mae, gradients = _part(images, target, *args)
        for parameter, gradient in zip(reversed(layers.parameters()), gradients, strict=True):
            gradient_buffer(parameter).copy_(gradient)
        return value, mae
    half = (batch + 1) // 2
    if torch.get_num_threads() > 1:
        second = _worker().submit(_part, images[half:], target[half:], *args)
        with num_threads(1):
            first = _part(images[:half], target[:half], *args)
        parts = (first, second.result())
    else:
        parts = (
            _part(images[:half], target[:half], *args),
            _part(images[half:], target[half:], *args),
        )
    (value_a, mae_a, grads_a), (value_b, mae_b, grads_b) = parts
    for parameter, a, b in zip(reversed(layers.parameters()), grads_a, grads_b, strict=True):
        torch.add(a, b, out=gradient_buffer(parameter))
    return value_a + value_b, mae_a + mae_b
