"""Batched Poisson (seamless) cloning in torch, reproducing OpenCV's ``NORMAL_CLONE`` in place.

The solver works in 8-bit *levels* (values ``0..255`` as floats), like OpenCV; :func:`clone_levels`
scales ``[0, 1]`` inputs to levels after cropping. Per image:

1. the mask's outermost 1-pixel image frame is set to 0; ``rect`` = bounding rectangle of the
   remaining support (pixels whose mask is non-zero at 8-bit precision, ``mask >= 0.5 / 255``);
2. weights ``M`` = the mask eroded by a 7x7 square (three 3x3 erosions), zero outside ``rect``;
3. guidance ``v = M * grad(P) + (1 - M) * grad(D)`` with forward differences, ``P`` the source and
   ``D`` the destination cropped to ``rect`` (OpenCV zeroes ``P`` outside the mask first; that changes
   nothing, because ``M > 0`` only where the whole 7x7 neighbourhood lies inside the mask);
4. the 5-point Poisson equation ``lap(u) = div(v)`` is solved on every interior pixel of ``rect``
   with ``u = D`` on the rectangle's 1-pixel frame, exactly: a 2-D discrete sine transform (DST-I,
   each axis one real FFT of length N+1), a division by the Laplacian's eigenvalues, and the inverse
   transform. The eigenvalues are rounded to float32 as OpenCV rounds them: that rounding (not the FFT)
   decides most of the +-1 truncation differences against OpenCV, so matching it makes the outputs
   agree almost bit for bit;
5. quantisation (optional) truncates like OpenCV: < 0 -> 0, > 255 -> 255, otherwise floor.

Unlike OpenCV, the solution is always written back in place (no 1-pixel shift for masks that touch
the image border), and images of a batch may have different masks and rectangles: rectangles of
the same size are solved together in one batched transform, the others one by one (padding them to
a common size would change the Dirichlet boundary, hence the result).
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


def _min_run(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Minimum over windows of 7 along ``dim`` (valid part only): 2 -> 4 -> 7 by shifted minima."""
    n = t.shape[dim]
    t = torch.minimum(t.narrow(dim, 0, n - 1), t.narrow(dim, 1, n - 1))
    t = torch.minimum(t.narrow(dim, 0, n - 3), t.narrow(dim, 2, n - 3))
    return torch.minimum(t.narrow(dim, 0, n - 6), t.narrow(dim, 3, n - 6))


def erode7(weights: torch.Tensor) -> torch.Tensor:
    """7x7 square erosion (minimum) of ``(G, 1, h, w)`` weights, with zeros outside the crop."""
    r = ERODE_RADIUS
    return _min_run(_min_run(F.pad(weights, (r, r, r, r)), -1), -2)


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


_DEVICE_CACHE: dict[tuple, torch.Tensor] = {}


def _cached(key: tuple, make) -> torch.Tensor:
    if key not in _DEVICE_CACHE:
        if len(_DEVICE_CACHE) > 256:
            _DEVICE_CACHE.clear()
        _DEVICE_CACHE[key] = make()
    return _DEVICE_CACHE[key]


def inverse_eigenvalues(h: int, w: int, dtype: torch.dtype, device: torch.device,
                        transposed: bool = False) -> torch.Tensor:
    """Cached scaled inverse eigenvalues of the Dirichlet 5-point Laplacian on an ``h x w`` rectangle."""
    def make() -> torch.Tensor:
        inv = _inverse_eigenvalues_cpu(h, w)
        return (inv.T if transposed else inv).contiguous().to(device=device, dtype=dtype)
    return _cached(("inv", h, w, dtype, str(device), transposed), make)


def _sine_weights(n: int, dtype: torch.dtype, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """``sin(pi j / (n+1)) +- 1/2`` for ``j = 1..n``, the pre-twiddle of the half-length DST-I."""
    def make() -> torch.Tensor:
        s = torch.sin(torch.arange(1, n + 1, dtype=torch.float64) * (math.pi / (n + 1)))
        return torch.stack([s + 0.5, s - 0.5]).to(device=device, dtype=dtype)
    w = _cached(("sin", n, dtype, str(device)), make)
    return w[0], w[1]


def dst_last(x: torch.Tensor) -> torch.Tensor:
    """Unnormalised DST-I along the last dim: X_k = sum_n x_n sin(pi k n / (N+1)), k, n = 1..N.

    Uses one real FFT of length N+1 (not 2N+2): with f_0 = 0 and f_j = x_j,
    y_j = (sin(pi j/(N+1)) + 1/2) f_j + (sin(pi j/(N+1)) - 1/2) f_{N+1-j} and Y = rfft(y), the
    even outputs are X_2k = -Im Y_k and the odd ones X_2k+1 = sum_{i<=k} Re Y_i - Re Y_0 / 2.
    """
    n = x.shape[-1]
    a, b = _sine_weights(n, x.dtype, x.device)
    y = F.pad(torch.addcmul(x * a, x.flip(-1), b), (1, 0))
    Y = torch.fft.rfft(y, dim=-1)
    re = Y.real
    odd = torch.cumsum(re, dim=-1) - 0.5 * re[..., :1]
    # interleave X_0 (= 0), X_1, X_2, ... as the (real, imag) pairs of one complex tensor: one pass
    out = torch.view_as_real(torch.complex(-Y.imag, odd)).flatten(-2)
    return out[..., 1:n + 1]


def _t(x: torch.Tensor) -> torch.Tensor:
    return x.transpose(-1, -2).contiguous()


def poisson_rhs(P: torch.Tensor, D: torch.Tensor, M: torch.Tensor) -> torch.Tensor:
    """Right-hand side on the interior: div(v) minus the Dirichlet frame's contribution.

    ``P``, ``D``: ``(G, C, h, w)`` source and destination crops (levels); ``M``: ``(G, 1, h, w)``
    eroded weights in ``[0, 1]``. ``v = grad(D) + M * grad(P - D)`` = OpenCV's
    ``M * grad(P) + (1 - M) * grad(D)``; since ``M > 0`` only 3+ pixels inside the mask, ``P`` need
    not be zeroed outside it. Returns ``(G, C, h-2, w-2)``.
    """
    G = P - D
    vx = torch.addcmul(D[..., 1:] - D[..., :-1], M[..., :-1], G[..., 1:] - G[..., :-1])
    vy = torch.addcmul(D[..., 1:, :] - D[..., :-1, :], M[..., :-1, :], G[..., 1:, :] - G[..., :-1, :])
    rhs = (vx[..., 1:-1, 1:] - vx[..., 1:-1, :-1]) + (vy[..., 1:, 1:-1] - vy[..., :-1, 1:-1])
    rhs[..., 0, :] -= D[..., 0, 1:-1]  # in place on a fresh tensor: fine for autograd
    rhs[..., -1, :] -= D[..., -1, 1:-1]
    rhs[..., :, 0] -= D[..., 1:-1, 0]
    rhs[..., :, -1] -= D[..., 1:-1, -1]
    return rhs


def _frame_sum(D: torch.Tensor) -> torch.Tensor:
    """Sum of each interior pixel's neighbours on the rectangle's frame, ``(G, C, h-2, w-2)``."""
    frame = torch.zeros_like(D[..., 1:-1, 1:-1])
    frame[..., 0, :] += D[..., 0, 1:-1]
    frame[..., -1, :] += D[..., -1, 1:-1]
    frame[..., :, 0] += D[..., 1:-1, 0]
    frame[..., :, -1] += D[..., 1:-1, -1]
    return frame


def solve_dirichlet(rhs: torch.Tensor) -> torch.Tensor:
    """Solve lap(u) = rhs on ``(G, C, n, m)`` interiors with u = 0 outside (exact, via DST-I).

    Forward transform, division by the eigenvalues, inverse transform; the middle steps stay in the
    transposed layout so only two transposes are needed.
    """
    n, m = rhs.shape[-2:]
    inv_t = inverse_eigenvalues(n + 2, m + 2, rhs.dtype, rhs.device, transposed=True)
    coef_t = dst_last(_t(dst_last(rhs))) * inv_t  # (G, C, m, n)
    return dst_last(_t(dst_last(coef_t)))


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


def clone_levels(src: torch.Tensor, dst: torch.Tensor, mask: torch.Tensor, *, scale: float = 1.0,
                 quantize: bool = True) -> tuple[torch.Tensor, list[Rect | None]]:
    """Seamless clone of ``src`` into ``dst`` over ``mask``, in place, batched.

    ``src``, ``dst``: ``(B, C, H, W)`` float; ``src * scale`` and ``dst * scale`` are 8-bit levels
    (``scale=255`` for ``[0, 1]`` images, ``1`` for values already in ``[0, 255]``). ``mask``:
    ``(B, 1, H, W)`` weights in ``[0, 1]`` (OpenCV's ``mask / 255``). Returns ``(out, rects)`` in the
    input's units: ``out`` is ``dst`` itself (bit for bit) outside each rectangle's interior and the
    Poisson solution inside it, truncated to integer levels when ``quantize``. ``rects[b]`` is ``None`` or
    the solved rectangle ``(x, y, w, h)``; rectangles smaller than 3x3 have no interior and leave ``dst``
    unchanged. Differentiable (w.r.t. ``src``, ``dst`` and ``mask``) when ``quantize`` is False.
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
        pairs = list(zip(idx, crops, strict=True))
        wc = torch.stack([weights[b, :, ys, xs] for b, (ys, xs) in pairs])
        sc = torch.stack([src[b, :, ys, xs] for b, (ys, xs) in pairs])
        dc = torch.stack([dst[b, :, ys, xs] for b, (ys, xs) in pairs])
        if scale != 1.0:
            sc, dc = sc * scale, dc * scale
        u = solve_dirichlet(poisson_rhs(sc, dc, erode7(wc)))
        if quantize:
            u = truncate_levels(u)
        if scale != 1.0:
            u = u / scale
        for i, (b, (ys, xs)) in enumerate(pairs):
            out[b, :, ys.start + 1:ys.stop - 1, xs.start + 1:xs.stop - 1] = u[i]
    return out, rects
