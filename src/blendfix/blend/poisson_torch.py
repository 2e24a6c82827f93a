"""Batched Poisson (seamless) cloning in torch, reproducing OpenCV's ``NORMAL_CLONE`` in place.

Everything here works in 8-bit *levels* (values ``0..255`` as floats), like OpenCV. Per image:

1. the mask's outermost 1-pixel image frame is set to 0; ``rect`` = bounding rectangle of the
   remaining support (pixels whose mask is non-zero at 8-bit precision, ``mask >= 0.5 / 255``);
2. weights ``M`` = the mask eroded by a 7x7 square (three 3x3 erosions), zero outside ``rect``;
3. guidance ``v = M * grad(P) + (1 - M) * grad(D)`` with forward differences, where ``P`` is the
   source with its out-of-mask pixels set to 0 and ``D`` the destination, both cropped to ``rect``;
4. the 5-point Poisson equation ``lap(u) = div(v)`` is solved on every interior pixel of ``rect``
   with ``u = D`` on the rectangle's 1-pixel frame, by a discrete sine transform (DST-I, through
   ``torch.fft.rfft``) and a division by the Laplacian's eigenvalues. The eigenvalues are rounded
   to float32 exactly as OpenCV rounds them: that rounding (not the FFT) is what decides most of the
   +-1 truncation differences against OpenCV, so matching it makes the outputs agree almost bit for bit.

Unlike OpenCV, the solution is always written back in place (no 1-pixel shift for masks that touch
the image border), and images of a batch may have different masks and rectangles: rectangles of
the same size are solved together in one batched transform.
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F

#: Mask values below this (in ``[0, 1]`` units) count as outside the mask (0 at 8-bit precision).
SUPPORT_THRESHOLD = 0.5 / 255.0
#: Half-size of the erosion window (7x7 = three 3x3 erosions, as OpenCV does).
ERODE_RADIUS = 3

Rect = tuple[int, int, int, int]  # (x, y, w, h)


def mask_support(mask: torch.Tensor) -> torch.Tensor:
    """``(B, 1, H, W)`` weights in ``[0, 1]`` -> bool support with the outer 1-pixel frame cleared."""
    support = mask >= SUPPORT_THRESHOLD
    support[..., 0, :] = False
    support[..., -1, :] = False
    support[..., :, 0] = False
    support[..., :, -1] = False
    return support


def bounding_rects(support: torch.Tensor) -> list[Rect | None]:
    """Bounding rectangle ``(x, y, w, h)`` of each image's support (``None`` when empty)."""
    rows = support.any(dim=-1)[:, 0]  # (B, H)
    cols = support.any(dim=-2)[:, 0]  # (B, W)
    H, W = rows.shape[1], cols.shape[1]
    r_idx = torch.arange(H, device=support.device)
    c_idx = torch.arange(W, device=support.device)
    big = max(H, W) + 1
    stats = torch.stack([
        torch.where(cols, c_idx, big).amin(dim=1), torch.where(cols, c_idx, -1).amax(dim=1),
        torch.where(rows, r_idx, big).amin(dim=1), torch.where(rows, r_idx, -1).amax(dim=1),
    ], dim=1).tolist()
    return [None if x1 < 0 else (x0, y0, x1 - x0 + 1, y1 - y0 + 1) for x0, x1, y0, y1 in stats]


def erode7(weights: torch.Tensor) -> torch.Tensor:
    """7x7 square erosion (minimum) of ``(G, 1, h, w)`` weights, with zeros outside the crop."""
    r = ERODE_RADIUS
    padded = F.pad(weights, (r, r, r, r))
    neg = F.max_pool2d(-padded, (1, 2 * r + 1), stride=1)
    return -F.max_pool2d(neg, (2 * r + 1, 1), stride=1)


@functools.lru_cache(maxsize=64)
def _inverse_eigenvalues_cpu(h: int, w: int) -> torch.Tensor:
    """``(h-2, w-2)`` float64: scale / (2cos(pi k/(w-1)) + 2cos(pi l/(h-1)) - 4), OpenCV's float32 rounding."""
    kx = torch.arange(1, w - 1, dtype=torch.float64)
    ky = torch.arange(1, h - 1, dtype=torch.float64)
    fx = (2.0 * torch.cos(kx * (math.pi / (w - 1)))).to(torch.float32)
    fy = (2.0 * torch.cos(ky * (math.pi / (h - 1)))).to(torch.float32)
    den = (fy[:, None] + fx[None, :]) - 4.0  # float32 arithmetic, as in OpenCV's solver
    # the DST-I is its own inverse up to 2/(n+1) per axis; fold both axes' factors in here
    scale = 4.0 / ((h - 1) * (w - 1))
    return scale / den.to(torch.float64)


def inverse_eigenvalues(h: int, w: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """Cached scaled inverse eigenvalues of the Dirichlet 5-point Laplacian on an ``h x w`` rectangle."""
    return _inverse_eigenvalues_cpu(h, w).to(device=device, dtype=dtype)


def _dst_last(x: torch.Tensor) -> torch.Tensor:
    """Unnormalised DST-I along the last dim: X_k = sum_n x_n sin(pi k n / (N+1)), k, n = 1..N."""
    n = x.shape[-1]
    z = F.pad(x, (1, n + 1))
    return -torch.fft.rfft(z, dim=-1).imag[..., 1:n + 1]


def dst2(x: torch.Tensor) -> torch.Tensor:
    """Unnormalised 2-D DST-I over the last two dims (applying it twice scales by (N+1)(M+1)/4)."""
    return _dst_last(_dst_last(x).transpose(-1, -2)).transpose(-1, -2)


def poisson_rhs(P: torch.Tensor, D: torch.Tensor, M: torch.Tensor) -> torch.Tensor:
    """Right-hand side on the interior: div(v) minus the Dirichlet frame's contribution.

    ``P``, ``D``: ``(G, C, h, w)`` source patch and destination crop (levels); ``M``: ``(G, 1, h, w)``
    eroded weights in ``[0, 1]``. Returns ``(G, C, h-2, w-2)``.
    """
    gx_p, gx_d = P[..., 1:] - P[..., :-1], D[..., 1:] - D[..., :-1]
    gy_p, gy_d = P[..., 1:, :] - P[..., :-1, :], D[..., 1:, :] - D[..., :-1, :]
    mx, my = M[..., :-1], M[..., :-1, :]
    vx = mx * gx_p + (1.0 - mx) * gx_d
    vy = my * gy_p + (1.0 - my) * gy_d
    div = vx[..., 1:-1, 1:] - vx[..., 1:-1, :-1] + vy[..., 1:, 1:-1] - vy[..., :-1, 1:-1]
    return div - _frame_sum(D)


def _frame_sum(D: torch.Tensor) -> torch.Tensor:
    """Sum of each interior pixel's neighbours on the rectangle's frame, ``(G, C, h-2, w-2)``."""
    frame = torch.zeros_like(D[..., 1:-1, 1:-1])
    frame[..., 0, :] += D[..., 0, 1:-1]
    frame[..., -1, :] += D[..., -1, 1:-1]
    frame[..., :, 0] += D[..., 1:-1, 0]
    frame[..., :, -1] += D[..., 1:-1, -1]
    return frame


def solve_dirichlet(rhs: torch.Tensor) -> torch.Tensor:
    """Solve lap(u) = rhs on ``(G, C, n, m)`` interiors with u = 0 outside (exact, via DST-I)."""
    n, m = rhs.shape[-2:]
    inv = inverse_eigenvalues(n + 2, m + 2, rhs.dtype, rhs.device)
    return dst2(dst2(rhs) * inv)


def laplacian_residual(u: torch.Tensor, P: torch.Tensor, D: torch.Tensor, M: torch.Tensor) -> torch.Tensor:
    """``lap(u) - div(v)`` on the interior, for ``u`` of shape ``(G, C, h-2, w-2)`` inside ``D``'s frame.

    A check of the solver: the 5-point Laplacian of the solution must equal the guidance divergence.
    """
    full = D.clone()
    full[..., 1:-1, 1:-1] = u
    lap = (full[..., :-2, 1:-1] + full[..., 2:, 1:-1] + full[..., 1:-1, :-2] + full[..., 1:-1, 2:]
           - 4.0 * full[..., 1:-1, 1:-1])
    return lap - (poisson_rhs(P, D, M) + _frame_sum(D))


def truncate_levels(u: torch.Tensor) -> torch.Tensor:
    """OpenCV's quantisation: < 0 -> 0, > 255 -> 255, otherwise truncate (floor) to an integer level."""
    return torch.floor(u.clamp(0.0, 255.0))


def clone_levels(src: torch.Tensor, dst: torch.Tensor, mask: torch.Tensor, *,
                 quantize: bool = True) -> tuple[torch.Tensor, list[Rect | None]]:
    """Seamless clone of ``src`` into ``dst`` over ``mask``, in place, batched.

    ``src``, ``dst``: ``(B, C, H, W)`` float in levels ``[0, 255]``; ``mask``: ``(B, 1, H, W)``
    weights in ``[0, 1]`` (OpenCV's ``mask / 255``). Returns ``(out, rects)``: ``out`` equals ``dst``
    (the same values) outside each rectangle's interior; inside it holds the Poisson solution, truncated
    to integer levels when ``quantize``. ``rects[b]`` is ``None`` or the solved rectangle ``(x, y, w, h)``;
    rectangles smaller than 3x3 have no interior and leave ``dst`` unchanged. Differentiable
    (w.r.t. ``src``, ``dst`` and ``mask``) when ``quantize`` is False.
    """
    support = mask_support(mask)
    rects = bounding_rects(support)
    weights = torch.where(support, mask, torch.zeros((), dtype=mask.dtype, device=mask.device))
    groups: dict[tuple[int, int], list[int]] = {}
    for b, r in enumerate(rects):
        if r is not None and r[2] >= 3 and r[3] >= 3:
            groups.setdefault((r[3], r[2]), []).append(b)
    out = dst.clone()
    for (h, w), idx in groups.items():
        crops = [(slice(rects[b][1], rects[b][1] + h), slice(rects[b][0], rects[b][0] + w)) for b in idx]
        wc = torch.stack([weights[b, :, ys, xs] for b, (ys, xs) in zip(idx, crops, strict=True)])
        sc = torch.stack([src[b, :, ys, xs] for b, (ys, xs) in zip(idx, crops, strict=True)])
        dc = torch.stack([dst[b, :, ys, xs] for b, (ys, xs) in zip(idx, crops, strict=True)])
        patch = sc * (wc > 0).to(sc.dtype)
        u = solve_dirichlet(poisson_rhs(patch, dc, erode7(wc)))
        if quantize:
            u = truncate_levels(u)
        for i, (b, (ys, xs)) in enumerate(zip(idx, crops, strict=True)):
            out[b, :, ys.start + 1:ys.stop - 1, xs.start + 1:xs.stop - 1] = u[i]
    return out, rects
