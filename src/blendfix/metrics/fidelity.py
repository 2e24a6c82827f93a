"""Per-image PSNR, SSIM and MAE with the torchmetrics conventions the paper's tables use.

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


#: Most float64 values held at once per strip of an image (~128 MB for the SSIM statistics): every metric
#: here runs over horizontal strips, so its memory does not grow with the image (an 8000x8000 pair needed
#: more than 21 GB in one piece). Strip results equal the whole-image ones exactly (tested).
STRIP_ELEMENTS = 1 << 24


def _check_pair(pred: torch.Tensor, target: torch.Tensor, name: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Checked, detached inputs (their own dtype; strips are converted to float64 one at a time)."""
    if not isinstance(pred, torch.Tensor) or not isinstance(target, torch.Tensor):
        raise ValueError(f"{name}: pred and target must be torch tensors")
    if pred.ndim != 4 or pred.shape[1] != 3:
        raise ValueError(f"{name}: expected (B, 3, H, W) RGB tensors, got pred of shape {tuple(pred.shape)}")
    if pred.shape != target.shape:
        raise ValueError(f"{name}: pred {tuple(pred.shape)} and target {tuple(target.shape)} differ in shape")
    if not pred.is_floating_point() or not target.is_floating_point():
        raise ValueError(f"{name}: expected float tensors in [0, 1]; convert uint8 with x / 255 first")
    p, t = pred.detach(), target.detach()
    lo, hi = min(p.min().item(), t.min().item()), max(p.max().item(), t.max().item())
    if lo < -1e-6 or hi > 1 + 1e-6 or math.isnan(lo) or math.isnan(hi):
        raise ValueError(f"{name}: values must lie in [0, 1] (data_range 1); got min {lo:.4g}, max {hi:.4g}")
    return p, t


def _strips(height: int, values_per_row: int, rows: int | None = None) -> list[tuple[int, int]]:
    """Row ranges ``[r0, r1)`` covering ``height`` rows, each holding at most :data:`STRIP_ELEMENTS` values."""
    n = rows or max(1, STRIP_ELEMENTS // max(values_per_row, 1))
    return [(r, min(r + n, height)) for r in range(0, height, n)]


def _mean_of_rows(row_sums: list[torch.Tensor], count: int) -> torch.Tensor:
    """Per-image mean from ``(B, C, rows)`` row sums: an exactly rounded sum (``math.fsum``), so the result
    does not depend on how the rows were split into strips."""
    rows = torch.cat(row_sums, dim=2).flatten(1)
    return torch.tensor([math.fsum(r.tolist()) / count for r in rows], dtype=torch.float64)


def _pixel_mean(pred: torch.Tensor, target: torch.Tensor, name: str, square: bool) -> torch.Tensor:
    p, t = _check_pair(pred, target, name)
    b, c, h, w = p.shape
    sums = []
    for r0, r1 in _strips(h, 3 * b * c * w):
        d = p[:, :, r0:r1].double() - t[:, :, r0:r1].double()
        sums.append((d.pow(2) if square else d.abs()).sum(dim=-1))
    return _mean_of_rows(sums, c * h * w)


def psnr(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-image PSNR in dB of ``(B, 3, H, W)`` images in ``[0, 1]`` -> ``(B,)`` float64.

    ``+inf`` where an image equals its target exactly.
    """
    err = _pixel_mean(pred, target, "psnr", square=True)
    return -10.0 * torch.log10(err)  # an exact match: log10(0) = -inf -> +inf dB, as torchmetrics


def mae(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-image mean absolute error of ``(B, 3, H, W)`` images in ``[0, 1]`` -> ``(B,)`` float64."""
    return _pixel_mean(pred, target, "mae", square=False)


def mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-image mean squared error of ``(B, 3, H, W)`` images in ``[0, 1]`` -> ``(B,)`` float64."""
    return _pixel_mean(pred, target, "mse", square=True)


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


def _ssim_rows(p: torch.Tensor, t: torch.Tensor, g: torch.Tensor, r0: int, r1: int) -> torch.Tensor:
    """Rows ``[r0, r1)`` of the SSIM map ``(B, 3, r1 - r0, W)`` float64, from the rows they need (the
    window's reach, reflected at the image edges exactly as padding the whole image would)."""
    pad, h = g.numel() // 2, p.shape[2]
    i = torch.arange(r0 - pad, r1 + pad, device=p.device)
    i = torch.where(i < 0, -i, torch.where(i >= h, 2 * (h - 1) - i, i))
    x, y = p.index_select(2, i).double(), t.index_select(2, i).double()
    b = p.shape[0]
    stack = torch.cat([x, y, x * x, y * y, x * y])  # (5B, C, rows, W): all five filtered in one pass
    stack = F.pad(stack, (pad, pad, 0, 0), mode="reflect")
    stack = _filter_1d(_filter_1d(stack, g, dim=2), g, dim=3)
    mu_x, mu_y, xx, yy, xy = stack.split(b)
    var_x = (xx - mu_x**2).clamp_min(0)
    var_y = (yy - mu_y**2).clamp_min(0)
    cov = xy - mu_x * mu_y
    c1, c2 = SSIM_K1**2, SSIM_K2**2
    return ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))


def _ssim_strips(pred: torch.Tensor, target: torch.Tensor, sigma: float, rows: int | None
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, list[tuple[int, int]]]:
    p, t = _check_pair(pred, target, "ssim")
    g = gaussian_taps(sigma).to(p.device)
    pad = g.numel() // 2
    if min(p.shape[-2:]) <= pad:
        raise ValueError(f"ssim: images must be larger than {pad} pixels per side; got {tuple(p.shape[-2:])}")
    b, c, h, w = p.shape
    return p, t, g, _strips(h, 5 * b * c * (w + 2 * pad), rows)


def ssim_map(pred: torch.Tensor, target: torch.Tensor, sigma: float = SSIM_SIGMA, rows: int | None = None
             ) -> torch.Tensor:
    """The SSIM map ``(B, 3, H, W)`` float64 of images in ``[0, 1]`` (same size as the input).

    The 2-D window is the outer product of the 1-D taps, applied as two 1-D passes (same result), over
    strips of ``rows`` rows (default: as many as :data:`STRIP_ELEMENTS` allows); every strip size gives
    the same map, bit for bit.
    """
    p, t, g, strips = _ssim_strips(pred, target, sigma, rows)
    return torch.cat([_ssim_rows(p, t, g, r0, r1) for r0, r1 in strips], dim=2)


def ssim(pred: torch.Tensor, target: torch.Tensor, crop_border: bool = False, rows: int | None = None
         ) -> torch.Tensor:
    """Per-image SSIM of ``(B, 3, H, W)`` images in ``[0, 1]`` -> ``(B,)`` float64 (1.0 when identical).

    ``crop_border=True`` averages only the interior (5-pixel border dropped), as torchmetrics <= 1.4.1.
    Computed strip by strip (``rows`` rows each; default from :data:`STRIP_ELEMENTS`) with memory
    independent of the image height; the value does not depend on the strip size.
    """
    p, t, g, strips = _ssim_strips(pred, target, SSIM_SIGMA, rows)
    h, w = p.shape[-2:]
    cut = int(3.5 * SSIM_SIGMA + 0.5) if crop_border else 0
    sums = []
    for r0, r1 in strips:
        lo, hi = max(r0, cut), min(r1, h - cut)
        if lo < hi:
            m = _ssim_rows(p, t, g, lo, hi)
            sums.append((m[..., cut:w - cut] if cut else m).sum(dim=-1))
    return _mean_of_rows(sums, p.shape[1] * (h - 2 * cut) * (w - 2 * cut))
