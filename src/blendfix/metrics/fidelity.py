"""Per-image PSNR, SSIM and MAE with the torchmetrics conventions the paper's tables use.

PSNR and MAE are torchmetrics' own functions (1.9); SSIM is computed here, in float64: torchmetrics'
float32 SSIM differs from the float64 value by up to 7e-5 on real faces and is no faster (see
BENCHMARKS.md, "PSNR / SSIM / MAE: ours vs torchmetrics").

All three take ``pred`` and ``target`` as ``(B, 3, H, W)`` float tensors holding RGB values in
``[0, 1]`` (``data_range = 1``) and return **one value per image**, shape ``(B,)``, float64. A
paper-style "mean ± std over test images" is the mean and std of these per-image values
(see :mod:`blendfix.metrics.report`); it is *not* the pooled PSNR of a whole batch.

* PSNR: ``10 log10(1 / MSE)`` per image; identical images give ``+inf`` (no epsilon), as
  torchmetrics ``PeakSignalNoiseRatio(data_range=1.0, dim=(1, 2, 3), reduction='none')``.
* SSIM: torchmetrics ``StructuralSimilarityIndexMeasure(data_range=1.0)`` (>= 1.4.2): an 11-tap
  Gaussian window (sigma 1.5) per channel on reflect-padded images (5 pixels, edge not repeated),
  K1 = 0.01, K2 = 0.03, mean of the full-size map over channels and pixels.
  ``crop_border=True`` reproduces torchmetrics <= 1.4.1, which dropped a 5-pixel border.
* MAE: mean ``|pred - target|`` over the image's channels and pixels (``F.l1_loss`` per image).

Values are computed in float64 so that they match the float32 library values to well within
their tolerances; inputs are not clamped (out-of-range values are a caller error and raise).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

SSIM_SIGMA = 1.5
SSIM_K1 = 0.01
SSIM_K2 = 0.03


def _check_pair(pred: torch.Tensor, target: torch.Tensor, name: str) -> tuple[torch.Tensor, torch.Tensor]:
    if not isinstance(pred, torch.Tensor) or not isinstance(target, torch.Tensor):
        raise ValueError(f"{name}: pred and target must be torch tensors")
    if pred.ndim != 4 or pred.shape[1] != 3:
        raise ValueError(f"{name}: expected (B, 3, H, W) RGB tensors, got pred of shape {tuple(pred.shape)}")
    if pred.shape != target.shape:
        raise ValueError(f"{name}: pred {tuple(pred.shape)} and target {tuple(target.shape)} differ in shape")
    if not pred.is_floating_point() or not target.is_floating_point():
        raise ValueError(f"{name}: expected float tensors in [0, 1]; convert uint8 with x / 255 first")
    p, t = pred.detach().double(), target.detach().double()
    lo, hi = min(p.min().item(), t.min().item()), max(p.max().item(), t.max().item())
    if lo < -1e-6 or hi > 1 + 1e-6 or math.isnan(lo) or math.isnan(hi):
        raise ValueError(f"{name}: values must lie in [0, 1] (data_range 1); got min {lo:.4g}, max {hi:.4g}")
    return p, t


def psnr(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-image PSNR in dB of ``(B, 3, H, W)`` images in ``[0, 1]`` -> ``(B,)`` float64.

    ``+inf`` where an image equals its target exactly.
    """
    from torchmetrics.functional.image import peak_signal_noise_ratio

    p, t = _check_pair(pred, target, "psnr")
    # an exact match: log10(0) = -inf -> +inf dB (torchmetrics adds no epsilon)
    return peak_signal_noise_ratio(p, t, data_range=1.0, dim=(1, 2, 3), reduction="none")


def mae(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-image mean absolute error of ``(B, 3, H, W)`` images in ``[0, 1]`` -> ``(B,)`` float64."""
    from torchmetrics.functional import mean_absolute_error

    p, t = _check_pair(pred, target, "mae")
    return torch.stack([mean_absolute_error(a, b) for a, b in zip(p, t, strict=True)])


def mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-image mean squared error of ``(B, 3, H, W)`` images in ``[0, 1]`` -> ``(B,)`` float64."""
    p, t = _check_pair(pred, target, "mse")
    return (p - t).pow(2).flatten(1).mean(dim=1)


def gaussian_taps(sigma: float = SSIM_SIGMA, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """The normalised 1-D Gaussian taps of the SSIM window, size ``2 * int(3.5 sigma + 0.5) + 1`` (11)."""
    radius = int(3.5 * sigma + 0.5)
    x = torch.arange(-radius, radius + 1, dtype=dtype)
    g = torch.exp(-(x**2) / (2 * sigma**2))
    return g / g.sum()


def _filter_1d(x: torch.Tensor, taps: torch.Tensor, dim: int) -> torch.Tensor:
    """Valid 1-D correlation along ``dim`` as a weighted sum of shifted slices (fast in float64 on CPU)."""
    n = x.shape[dim] - taps.numel() + 1
    out = taps[0] * x.narrow(dim, 0, n)
    for k in range(1, taps.numel()):
        out = out.add_(x.narrow(dim, k, n), alpha=taps[k].item())
    return out


def ssim_map(pred: torch.Tensor, target: torch.Tensor, sigma: float = SSIM_SIGMA) -> torch.Tensor:
    """The SSIM map ``(B, 3, H, W)`` float64 of images in ``[0, 1]`` (same size as the input).

    The 2-D window is the outer product of the 1-D taps, applied as two 1-D passes (same result).
    """
    p, t = _check_pair(pred, target, "ssim")
    g = gaussian_taps(sigma).to(p.device)
    pad = g.numel() // 2
    if min(p.shape[-2:]) <= pad:
        raise ValueError(f"ssim: images must be larger than {pad} pixels per side; got {tuple(p.shape[-2:])}")
    b = p.shape[0]
    stack = torch.cat([p, t, p * p, t * t, p * t])  # (5B, C, H, W): all five filtered in one pass
    stack = F.pad(stack, (pad, pad, pad, pad), mode="reflect")
    stack = _filter_1d(_filter_1d(stack, g, dim=2), g, dim=3)
    mu_x, mu_y, xx, yy, xy = stack.split(b)
    var_x = (xx - mu_x**2).clamp_min(0)
    var_y = (yy - mu_y**2).clamp_min(0)
    cov = xy - mu_x * mu_y
    c1, c2 = SSIM_K1**2, SSIM_K2**2
    return ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))


def ssim(pred: torch.Tensor, target: torch.Tensor, crop_border: bool = False) -> torch.Tensor:
    """Per-image SSIM of ``(B, 3, H, W)`` images in ``[0, 1]`` -> ``(B,)`` float64 (1.0 when identical).

    ``crop_border=True`` averages only the interior (5-pixel border dropped), as torchmetrics <= 1.4.1.
    """
    m = ssim_map(pred, target)
    if crop_border:
        b = int(3.5 * SSIM_SIGMA + 0.5)
        m = m[..., b:-b, b:-b]
    return m.flatten(1).mean(dim=1)
