"""StyleGAN2 building blocks in plain PyTorch (no custom CUDA extension).

Layer names and parameter shapes follow the widely used PyTorch port of StyleGAN2
(rosinality/stylegan2-pytorch), so converted checkpoints load with ``strict=True``:

* equalised learning rate: weights are stored unscaled and multiplied by ``1/sqrt(fan_in)``
  (times ``lr_mul``) at run time;
* fused leaky ReLU: ``leaky_relu(x + bias, 0.2) * sqrt(2)``, the bias living in the activation;
* ``upfirdn2d``: zero-insertion upsampling, padding, FIR filtering, decimation;
* modulated convolution with demodulation, as a per-sample grouped convolution.

All tensors are ``(B, C, H, W)`` feature maps unless stated; no layer here clamps its output.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

SQRT2 = math.sqrt(2.0)


def fused_leaky_relu(x: torch.Tensor, bias: torch.Tensor, slope: float = 0.2, scale: float = SQRT2) -> torch.Tensor:
    """``leaky_relu(x + bias, slope) * scale``; ``bias`` (C,) is broadcast over dim 1 of ``x``."""
    shape = [1, -1] + [1] * (x.ndim - 2)
    return F.leaky_relu(x + bias.view(shape).to(x.dtype), slope) * scale


def make_kernel(taps: Sequence[float]) -> torch.Tensor:
    """Separable 1-D taps -> normalised 2-D FIR kernel (sums to 1), e.g. [1,3,3,1] -> 4x4."""
    k = torch.tensor(taps, dtype=torch.float32)
    k = k[None, :] * k[:, None] if k.ndim == 1 else k
    return k / k.sum()


def upfirdn2d(x: torch.Tensor, kernel: torch.Tensor, up: int = 1, down: int = 1,
              pad: tuple[int, int] = (0, 0)) -> torch.Tensor:
    """Upsample by zero insertion, pad ``pad=(before, after)`` on both axes, filter, decimate.

    ``x`` (B, C, H, W), ``kernel`` (kh, kw). The filter is a true convolution (kernel flipped),
    applied per channel. Output side: ``(H * up + before + after - kh + 1) // down`` (ceil).
    Negative pads crop.
    """
    b, c, h, w = x.shape
    if up > 1:
        z = x.new_zeros(b, c, h * up, w * up)
        z[:, :, ::up, ::up] = x
        x = z
    p0, p1 = pad
    x = F.pad(x, [p0, p1, p0, p1])
    kh, kw = kernel.shape
    weight = torch.flip(kernel, [0, 1]).to(x.dtype).view(1, 1, kh, kw).expand(c, 1, kh, kw)
    x = F.conv2d(x, weight, groups=c)
    return x[:, :, ::down, ::down] if down > 1 else x


class PixelNorm(nn.Module):
    """Normalise each feature vector (B, D) to unit root-mean-square over D."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(dim=1, keepdim=True) + 1e-8)


class FusedLeakyReLU(nn.Module):
    """Bias + leaky ReLU(0.2) + gain sqrt(2); holds the ``bias`` (C,) of the layer before it."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return fused_leaky_relu(x, self.bias)


class Blur(nn.Module):
    """FIR filter with padding ``pad``; the buffer ``kernel`` is scaled by ``upsample_factor**2``."""

    def __init__(self, taps: Sequence[float], pad: tuple[int, int], upsample_factor: int = 1) -> None:
        super().__init__()
        self.register_buffer("kernel", make_kernel(taps) * upsample_factor ** 2)
        self.pad = pad

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return upfirdn2d(x, self.kernel, pad=self.pad)


class Upsample(nn.Module):
    """2x FIR upsampling (B, C, H, W) -> (B, C, 2H, 2W), used on the ToRGB skip path."""

    def __init__(self, taps: Sequence[float], factor: int = 2) -> None:
        super().__init__()
        self.register_buffer("kernel", make_kernel(taps) * factor ** 2)
        self.factor = factor
        p = len(taps) - factor
        self.pad = ((p + 1) // 2 + factor - 1, p // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return upfirdn2d(x, self.kernel, up=self.factor, pad=self.pad)


class EqualConv2d(nn.Module):
    """Conv with equalised learning rate: ``weight`` (out, in, k, k) scaled by ``1/sqrt(in*k*k)``."""

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int, stride: int = 1, padding: int = 0,
                 bias: bool = True) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_ch, in_ch, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_ch)) if bias else None
        self.scale = 1.0 / math.sqrt(in_ch * kernel_size ** 2)
        self.stride, self.padding = stride, padding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.scale, self.bias, stride=self.stride, padding=self.padding)


class EqualLinear(nn.Module):
    """Linear with equalised learning rate; ``weight`` * lr_mul/sqrt(in), ``bias`` * lr_mul.

    With ``activation=True`` the bias is added inside a fused leaky ReLU.
    """

    def __init__(self, in_dim: int, out_dim: int, bias_init: float = 0.0, lr_mul: float = 1.0,
                 activation: bool = False) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_dim, in_dim) / lr_mul)
        self.bias = nn.Parameter(torch.full((out_dim,), float(bias_init)))
        self.scale = lr_mul / math.sqrt(in_dim)
        self.lr_mul, self.activation = lr_mul, activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.activation:
            return fused_leaky_relu(F.linear(x, self.weight * self.scale), self.bias * self.lr_mul)
        return F.linear(x, self.weight * self.scale, self.bias * self.lr_mul)


class ModulatedConv2d(nn.Module):
    """Style-modulated conv; ``weight`` (1, out, in, k, k), ``modulation`` maps style (B, D) -> (B, in).

    ``upsample=True`` doubles the resolution (transposed conv stride 2, then a 4x4 FIR blur).
    """

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int, style_dim: int, demodulate: bool = True,
                 upsample: bool = False, blur_kernel: Sequence[float] = (1, 3, 3, 1)) -> None:
        super().__init__()
        self.in_ch, self.out_ch, self.k = in_ch, out_ch, kernel_size
        self.weight = nn.Parameter(torch.randn(1, out_ch, in_ch, kernel_size, kernel_size))
        self.modulation = EqualLinear(style_dim, in_ch, bias_init=1.0)
        self.scale = 1.0 / math.sqrt(in_ch * kernel_size ** 2)
        self.demodulate, self.upsample = demodulate, upsample
        if upsample:
            p = (len(blur_kernel) - 2) - (kernel_size - 1)
            self.blur = Blur(blur_kernel, pad=((p + 1) // 2 + 1, p // 2 + 1), upsample_factor=2)

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        s = self.modulation(style).view(b, 1, c, 1, 1)
        weight = self.weight * self.scale * s  # (B, out, in, k, k)
        if self.demodulate:
            weight = weight * torch.rsqrt(weight.pow(2).sum(dim=(2, 3, 4), keepdim=True) + 1e-8)
        x = x.reshape(1, b * c, h, w)
        k = self.k
        if self.upsample:
            weight = weight.transpose(1, 2).reshape(b * c, self.out_ch, k, k)
            out = F.conv_transpose2d(x, weight.to(x.dtype), stride=2, padding=0, groups=b)
            return self.blur(out.view(b, self.out_ch, out.shape[-2], out.shape[-1]))
        out = F.conv2d(x, weight.reshape(b * self.out_ch, c, k, k).to(x.dtype), padding=k // 2, groups=b)
        return out.view(b, self.out_ch, h, w)


class NoiseInjection(nn.Module):
    """``x + weight * noise``; ``noise`` (B or 1, 1, H, W), fresh N(0,1) per sample when None."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        if noise is None:
            noise = x.new_empty(x.shape[0], 1, x.shape[2], x.shape[3]).normal_()
        return x + self.weight.to(x.dtype) * noise.to(x.dtype)


class StyledConv(nn.Module):
    """Modulated conv -> noise -> fused bias + leaky ReLU."""

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int, style_dim: int, upsample: bool = False,
                 blur_kernel: Sequence[float] = (1, 3, 3, 1)) -> None:
        super().__init__()
        self.conv = ModulatedConv2d(in_ch, out_ch, kernel_size, style_dim, upsample=upsample,
                                    blur_kernel=blur_kernel)
        self.noise = NoiseInjection()
        self.activate = FusedLeakyReLU(out_ch)

    def forward(self, x: torch.Tensor, style: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        return self.activate(self.noise(self.conv(x, style), noise))


class ToRGB(nn.Module):
    """1x1 modulated conv (no demodulation) to RGB + bias, plus the upsampled previous RGB skip."""

    def __init__(self, in_ch: int, style_dim: int, upsample: bool = True,
                 blur_kernel: Sequence[float] = (1, 3, 3, 1)) -> None:
        super().__init__()
        if upsample:
            self.upsample = Upsample(blur_kernel)
        self.conv = ModulatedConv2d(in_ch, 3, 1, style_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(1, 3, 1, 1))

    def forward(self, x: torch.Tensor, style: torch.Tensor, skip: torch.Tensor | None = None) -> torch.Tensor:
        out = self.conv(x, style) + self.bias.to(x.dtype)
        return out if skip is None else out + self.upsample(skip)


class ConstantInput(nn.Module):
    """The learned constant (1, C, 4, 4), repeated over the batch."""

    def __init__(self, channels: int, size: int = 4) -> None:
        super().__init__()
        self.input = nn.Parameter(torch.randn(1, channels, size, size))

    def forward(self, batch: int) -> torch.Tensor:
        return self.input.repeat(batch, 1, 1, 1)


def conv_layer(in_ch: int, out_ch: int, kernel_size: int, downsample: bool = False,
               blur_kernel: Sequence[float] = (1, 3, 3, 1), bias: bool = True, activate: bool = True) -> nn.Sequential:
    """[Blur] -> EqualConv2d (stride 2 when downsampling) -> [FusedLeakyReLU], as an indexed Sequential."""
    layers: list[nn.Module] = []
    if downsample:
        p = (len(blur_kernel) - 2) + (kernel_size - 1)
        layers.append(Blur(blur_kernel, pad=((p + 1) // 2, p // 2)))
        stride, padding = 2, 0
    else:
        stride, padding = 1, kernel_size // 2
    layers.append(EqualConv2d(in_ch, out_ch, kernel_size, stride=stride, padding=padding,
                              bias=bias and not activate))
    if activate:
        layers.append(FusedLeakyReLU(out_ch))
    return nn.Sequential(*layers)
