"""A convolutional autoencoder for images: strided convolutions down, transposed ones up."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from hourglass.nn.base import ReconstructionModule
from hourglass.nn.blocks import glorot_normal_, make_activation

__all__ = ["ConvAutoencoder", "ConvConfig"]

#: Activations computed value by value, whatever the memory layout of their input.
_ELEMENT_WISE = (
    nn.ReLU,
    nn.LeakyReLU,
    nn.ELU,
    nn.GELU,
    nn.SELU,
    nn.Tanh,
    nn.Sigmoid,
    nn.Identity,
)


def _computes_gradients(module: nn.Module, input: torch.Tensor) -> bool:
    """Whether autograd records ``module(input)``: a training step, not inference."""
    return torch.is_grad_enabled() and (
        input.requires_grad or any(p.requires_grad for p in module.parameters(recurse=False))
    )


#: Whether this build of torch has oneDNN's convolutions with a fused ReLU.
_ONEDNN_FUSES_RELU = bool(torch.backends.mkldnn.is_available()) and hasattr(  # type: ignore[no-untyped-call]
    torch.ops.mkldnn, "_convolution_pointwise"
)


def _fused_relu_applies(conv: nn.Module, input: torch.Tensor) -> bool:
    """Whether ``relu(conv(input))`` may run as one oneDNN call (:class:`FusingSequential`)."""
    return (
        type(conv) in (nn.Conv2d, nn.ConvTranspose2d)  # not a subclass with its own forward
        and conv.padding_mode == "zeros"
        and not isinstance(conv.padding, str)
        and input.dim() == 4
        and _ONEDNN_FUSES_RELU
        and _fast_inference(conv, input)
    )


def _fast_inference(module: nn.Module, input: torch.Tensor) -> bool:
    """Whether ``module(input)`` is CPU inference that may take a faster, equivalent path."""
    return (
        input.device.type == "cpu"
        and not _computes_gradients(module, input)
        and not torch.jit.is_tracing()  # type: ignore[attr-defined,no-untyped-call]
        and not torch.compiler.is_compiling()  # exports (ONNX) must see the plain layers
        and not torch.compiler.is_exporting()
    )


def _rows_in_channels_last_order(
    linear: nn.Linear, maps: tuple[int, int, int]
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``linear``'s weight and bias with their output features reordered channels last.

    With ``maps = (c, h, w)``, output feature ``k * h * w + y * w + x`` (channel
    ``k``, row ``y``, column ``x``) moves to ``(y * w + x) * c + k``. Reordered
    on every call (about 40 µs for the default model's 3136×64 weight), so that
    no copy can outlive a change of the weights, however they are changed.
    """
    channels, height, width = maps
    order = torch.arange(channels * height * width, device=linear.weight.device)
    order = order.view(channels, height, width).permute(1, 2, 0).reshape(-1)
    rows = linear.weight.detach().index_select(0, order)
    shifts = None if linear.bias is None else linear.bias.detach().index_select(0, order)
    return rows, shifts


def _linear_to_channels_last_maps(
    linear: nn.Linear, activation: nn.Module, maps: tuple[int, int, int], input: torch.Tensor
) -> torch.Tensor:
    """``unflatten(activation(linear(input)))`` to ``maps``, laid out channels last.

    The same values as the three layers: each output feature is the same dot
    product, only stored where a channels-last map keeps it, so the transposed
    convolution that follows reads it without the copy from the layers' row-major
    maps (0.3-0.5 ms of a 12-15 ms block of 128 images on one core).
    """
    rows, shifts = _rows_in_channels_last_order(linear, maps)
    out: torch.Tensor = activation(F.linear(input, rows, shifts))
    channels, height, width = maps
    return out.view(out.shape[0], height, width, channels).permute(0, 3, 1, 2)


def _conv_relu(conv: nn.Conv2d | nn.ConvTranspose2d, input: torch.Tensor) -> torch.Tensor:
    """``relu(conv(input))`` as one oneDNN convolution with a ReLU post-op.

    The same bits as the two steps (the ReLU applies to the rounded result either
    way), without a second pass over the feature map. Under autocast the
    operands are cast as autocast would cast them for the convolution.
    """
    weight, bias = conv.weight, conv.bias
    dtype = torch.get_autocast_dtype("cpu") if torch.is_autocast_enabled("cpu") else weight.dtype
    input = input.to(dtype).contiguous(memory_format=torch.channels_last)
    weight = weight.to(dtype)
    bias = None if bias is None else bias.to(dtype)
    padding, stride, dilation = list(conv.padding), list(conv.stride), list(conv.dilation)
    out: torch.Tensor
    if isinstance(conv, nn.ConvTranspose2d):
        out = torch.ops.mkldnn._convolution_transpose_pointwise(
            input,
            weight,
            bias,
            padding,
            list(conv.output_padding),
            stride,
            dilation,
            conv.groups,
            "relu",
            [],
            "",
        )
    else:
        out = torch.ops.mkldnn._convolution_pointwise(
            input, weight, bias, padding, stride, dilation, conv.groups, "relu", [], ""
        )
    return out


class FusingSequential(nn.Sequential):
    """A :class:`torch.nn.Sequential` that fuses each convolution with its ReLU at inference.

    A convolution (or transposed convolution) followed by a ReLU, possibly with
    an ``nn.Flatten`` between them, runs as one oneDNN call on a CPU when no
    gradient is recorded: the same values, a block of 128 images of the
    default model 0.1-0.2 ms faster per layer. Training, other devices, tracing
    (ONNX export) and builds without oneDNN run the layers one by one. The
    layers, their names and the state dict are those of a plain ``Sequential``.
    """

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        layers = list(self)
        i = 0
        while i < len(layers):
            layer = layers[i]
            maps = _maps_for_a_convolution(layers[i : i + 4], input)
            if maps is not None:  # Linear, activation, Unflatten, convolution
                input = _linear_to_channels_last_maps(layer, layers[i + 1], maps, input)  # type: ignore[arg-type]
                i += 3
                continue
            flatten = i + 1 < len(layers) and isinstance(layers[i + 1], nn.Flatten)
            after = i + 2 if flatten else i + 1  # where the ReLU would be
            relu = layers[after] if after < len(layers) else None
            if isinstance(relu, nn.ReLU) and _fused_relu_applies(layer, input):
                input = _conv_relu(layer, input)  # type: ignore[arg-type]
                if flatten:
                    input = layers[i + 1](input)  # flattening commutes with the ReLU
                i = after + 1
                continue
            input = layer(input)
            i += 1
        return input


def _maps_for_a_convolution(
    layers: list[nn.Module], input: torch.Tensor
) -> tuple[int, int, int] | None:
    """The map shape where ``layers`` are Linear, activation, Unflatten, convolution.

    At CPU inference only; ``None`` otherwise (the layers then run one by one).
    """
    if len(layers) < 4:
        return None
    linear, activation, unflatten, conv = layers
    if not (
        type(linear) is nn.Linear
        and isinstance(activation, _ELEMENT_WISE)
        and isinstance(unflatten, nn.Unflatten)
        and unflatten.dim == 1
        and len(unflatten.unflattened_size) == 3
        and input.dim() == 2
        and isinstance(conv, nn.Conv2d | nn.ConvTranspose2d)  # reads channels last best
        and _fast_inference(linear, input)
    ):
        return None
    channels, height, width = (int(size) for size in unflatten.unflattened_size)
    return channels, height, width


class FewChannelConvTranspose2d(nn.ConvTranspose2d):
    """A transposed convolution to a few channels (an image's), as one matrix product.

    The same parameters and function as :class:`torch.nn.ConvTranspose2d`
    (layers with dilation, groups, string padding or an explicit ``output_size``
    take torch's own kernel). oneDNN's kernel handles one or three output
    channels poorly. Here every input position's contribution is one column of a
    matrix product with the flattened kernel, which reads a channels-last input
    without copying it, and the overlapping contributions are added up:

    * at inference, when the kernel is a multiple of the stride (the 4×4,
      stride-2 layers of :class:`ConvAutoencoder`), by *phases*: the output
      pixels of one phase (row and column modulo the stride) take one kernel tap
      from each of a few neighbouring inputs, so the contributions add up in a
      handful of shifted, whole-plane additions;
    * otherwise with ``F.fold``, whose backward pass is the faster one: a training
      step of the default model took 26 ms with it, 27-28 ms by phases.

    On one core, the 32-to-1-channel layer of the default model predicts a block
    of 128 images in 1.1 ms by phases, 1.6 ms with ``F.fold`` and 4.8 ms with
    oneDNN.
    """

    def forward(self, input: torch.Tensor, output_size: list[int] | None = None) -> torch.Tensor:
        padding = self.padding
        if (
            output_size is not None
            or isinstance(padding, str)
            or self.groups != 1
            or self.dilation != (1, 1)
        ):
            return super().forward(input, output_size)
        divisible = all(k % s == 0 for k, s in zip(self.kernel_size, self.stride, strict=True))
        training = _computes_gradients(self, input)
        if (
            divisible
            and not training
            and all(o <= p for o, p in zip(self.output_padding, padding, strict=True))
        ):
            return self._by_phases(input)
        return self._by_fold(input)

    def _output_size(self, height: int, width: int) -> tuple[int, int]:
        pads = [int(pad) for pad in self.padding]  # not a string here
        sizes = [
            (size - 1) * stride - 2 * pad + kernel + extra
            for size, stride, pad, kernel, extra in zip(
                (height, width),
                self.stride,
                pads,
                self.kernel_size,
                self.output_padding,
                strict=True,
            )
        ]
        return sizes[0], sizes[1]

    def _by_phases(self, input: torch.Tensor) -> torch.Tensor:
        batch, channels, height, width = input.shape
        c_out = self.out_channels
        (stride_h, stride_w), (kernel_h, kernel_w) = self.stride, self.kernel_size
        # A kernel row is tap * stride + phase (columns alike).
        taps_h, taps_w = kernel_h // stride_h, kernel_w // stride_w
        rows = input.permute(0, 2, 3, 1).reshape(batch * height * width, channels)
        kernel = self.weight.view(channels, c_out, taps_h, stride_h, taps_w, stride_w)
        kernel = kernel.permute(2, 4, 3, 5, 1, 0).reshape(-1, channels)
        planes = torch.mm(kernel, rows.t()).view(
            taps_h, taps_w, stride_h, stride_w, c_out, batch, height, width
        )
        # Per phase, per output channel, per image: a plane of the un-padded output.
        shape = (stride_h, stride_w, c_out, batch, height + taps_h - 1, width + taps_w - 1)
        if self.bias is None:
            sums = torch.zeros(shape, dtype=torch.promote_types(planes.dtype, torch.float32))
        else:
            sums = self.bias.view(1, 1, c_out, 1, 1, 1).expand(shape).contiguous()
        for tap_h in range(taps_h):
            for tap_w in range(taps_w):
                sums[..., tap_h : tap_h + height, tap_w : tap_w + width] += planes[tap_h, tap_w]
        # Interleave the phases into the cropped output: one strided copy per phase, and
        # a contiguous result (a sigmoid on a cropped view took 7x as long).
        out_h, out_w = self._output_size(height, width)
        pad_h, pad_w = (int(pad) for pad in self.padding)  # not a string here
        out = sums.new_empty((batch, c_out, out_h, out_w))
        for phase_h, phase_w in itertools.product(range(stride_h), range(stride_w)):
            # Output row y is row y + pad of the un-cropped output: phase (y + pad) % stride,
            # plane row (y + pad) // stride. The first row of this phase, and its plane row:
            first_h, first_w = (phase_h - pad_h) % stride_h, (phase_w - pad_w) % stride_w
            n_h, n_w = len(range(first_h, out_h, stride_h)), len(range(first_w, out_w, stride_w))
            top, left = (first_h + pad_h) // stride_h, (first_w + pad_w) // stride_w
            plane = sums[phase_h, phase_w, :, :, top : top + n_h, left : left + n_w]
            out[:, :, first_h::stride_h, first_w::stride_w] = plane.transpose(0, 1)
        return out

    def _by_fold(self, input: torch.Tensor) -> torch.Tensor:
        batch, channels, height, width = input.shape
        rows = input.permute(0, 2, 3, 1).reshape(batch, height * width, channels)
        columns = rows @ self.weight.reshape(channels, -1)  # (batch, positions, c_out * kh * kw)
        out = F.fold(
            columns.transpose(1, 2),
            self._output_size(height, width),
            self.kernel_size,
            padding=self.padding,  # type: ignore[arg-type]  # not a string here
            stride=self.stride,
        )
        return out if self.bias is None else out + self.bias.view(1, -1, 1, 1)


@dataclass(frozen=True)
class ConvConfig:
    """Architecture of a :class:`ConvAutoencoder`.

    The defaults suit 28×28 grey images: 1→32→64 channels at 14×14 and 7×7,
    a 64-dimensional code.
    """

    input_shape: tuple[int, ...] = (28, 28)  # (h, w) or (c, h, w), without the batch axis
    latent_dim: int = 64
    channels: tuple[int, ...] = (32, 64)  # one stride-2 convolution per entry
    activation: str = "relu"
    output_activation: str = "sigmoid"

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """``(channels, height, width)`` of one input image."""
        if len(self.input_shape) == 2:
            return (1, self.input_shape[0], self.input_shape[1])
        if len(self.input_shape) == 3:
            return (self.input_shape[0], self.input_shape[1], self.input_shape[2])
        raise ValueError(
            f"A convolutional autoencoder needs images of shape (h, w) or (c, h, w); got "
            f"samples of shape {self.input_shape}."
        )

    @property
    def padded_size(self) -> tuple[int, int]:
        """Height and width padded up to a multiple of ``2 ** len(channels)``."""
        factor = 2 ** len(self.channels)
        _, height, width = self.image_shape
        return (math.ceil(height / factor) * factor, math.ceil(width / factor) * factor)


class ConvAutoencoder(ReconstructionModule):
    """Convolutional encoder to a code vector, transposed-convolution decoder back up.

    Encoder: zero-pad the image to a multiple of ``2 ** len(channels)``, then one
    3×3 convolution with stride 2 and the activation per entry of ``channels``,
    then a Linear layer (and the activation) to ``latent_dim``. Decoder: a
    Linear layer back to the smallest feature map, then per level a 4×4
    transposed convolution with stride 2 (doubling the size), the last one to
    the image's channels without activation; the padding is cropped away, so
    the output has the input's shape. Weights are Glorot-normal, biases zero.

    Parameters
    ----------
    config : ConvConfig
        The architecture.
    generator : torch.Generator, optional
        Source of randomness for the initial weights.
    """

    def __init__(self, config: ConvConfig, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.config = config
        in_channels, _, _ = config.image_shape
        padded_h, padded_w = config.padded_size
        factor = 2 ** len(config.channels)
        self._bottleneck = (config.channels[-1], padded_h // factor, padded_w // factor)
        bottleneck_size = math.prod(self._bottleneck)

        down: list[nn.Module] = []
        for c_in, c_out in zip((in_channels, *config.channels[:-1]), config.channels, strict=True):
            down += [
                nn.Conv2d(c_in, c_out, 3, stride=2, padding=1),
                make_activation(config.activation, inplace=True),
            ]
        # The last map is flattened before its activation: the same values, but the
        # activation's backward pass then reads a gradient and an output of the same
        # memory layout (Flatten copies the channels-last map into rows), where the
        # mixed pair took 16x longer; a training step 14% less time.
        down[-2:] = [down[-2], nn.Flatten(), down[-1]]
        self.encoder = FusingSequential(
            *down,
            nn.Linear(bottleneck_size, config.latent_dim),
            make_activation(config.activation, inplace=True),
        )
        up: list[nn.Module] = []
        widths = (*config.channels[::-1], in_channels)  # e.g. 64 -> 32 -> 1
        for i, (c_in, c_out) in enumerate(itertools.pairwise(widths)):
            # A 4x4 transposed convolution with stride 2 doubles the size exactly; it
            # trained 3.7x and predicted 5x faster than upsampling + 3x3 convolution.
            transposed = FewChannelConvTranspose2d if c_out <= 4 else nn.ConvTranspose2d
            up.append(transposed(c_in, c_out, 4, stride=2, padding=1))
            if i < len(widths) - 2:  # no activation after the last layer: logits
                up.append(make_activation(config.activation, inplace=True))
        self.decoder = FusingSequential(
            nn.Linear(config.latent_dim, bottleneck_size),
            make_activation(config.activation, inplace=True),
            nn.Unflatten(1, self._bottleneck),
            *up,
        )
        for module in self.modules():
            if isinstance(module, nn.Linear | nn.Conv2d | nn.ConvTranspose2d) and (
                module.bias is not None
            ):
                glorot_normal_(module.weight, generator)
                nn.init.zeros_(module.bias)
        # Channels-last weights make oneDNN compute every feature map channels last,
        # which suits these few-channel images: inference 1.2x faster in float32 and in
        # bfloat16 (mixed_precision), bfloat16 training 1.2x; float32 training alike.
        self.to(memory_format=torch.channels_last)  # type: ignore[call-overload]

    def _as_images(self, x: torch.Tensor) -> torch.Tensor:
        channels, height, width = self.config.image_shape
        images = x.reshape(x.shape[0], channels, height, width)
        padded_h, padded_w = self.config.padded_size
        if (padded_h, padded_w) == (height, width):
            return images  # F.pad would copy them
        return F.pad(images, (0, padded_w - width, 0, padded_h - height))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Map images ``(batch, *input_shape)`` to codes ``(batch, latent_dim)``."""
        codes: torch.Tensor = self.encoder(self._as_images(x))
        return codes

    def encode_preactivation(self, x: torch.Tensor) -> torch.Tensor:
        """The codes before the code layer's activation (signed, never all zero)."""
        codes: torch.Tensor = self.encoder[:-1](self._as_images(x))
        return codes

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        """Map codes to pre-activation images of shape ``(batch, *input_shape)``."""
        _, height, width = self.config.image_shape
        padded: torch.Tensor = self.decoder(z)  # (batch, c, padded_h, padded_w)
        cropped = padded[:, :, :height, :width]
        return cropped.reshape(z.shape[0], *self.config.input_shape)
