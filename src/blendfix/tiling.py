"""Padding to a network's size rule and overlapped, seam-free tiling for images too large for memory.

MAResU-Net accepts square inputs whose side is a multiple of 32. :func:`pad_square` pads any
``(B, C, H, W)`` tensor to such a square (reflection, falling back to replication for small images)
and :func:`crop` cuts the result back to exactly ``(H, W)``.

:func:`tiled` runs a network on overlapping square tiles and blends them with weights that ramp
linearly across each overlap, so there is no visible seam; with a network whose receptive field is
smaller than the overlap, the result equals the untiled one.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F


def padded_side(h: int, w: int, multiple: int = 32) -> int:
    """The side of the smallest square, multiple of ``multiple``, that holds an ``h x w`` image."""
    return -(-max(h, w) // multiple) * multiple


def pad_square(x: torch.Tensor, multiple: int = 32) -> tuple[torch.Tensor, tuple[int, int]]:
    """Pad ``(B, C, H, W)`` at the right/bottom to a square side multiple of ``multiple``.

    Returns the padded tensor and the original ``(H, W)`` for :func:`crop`.
    """
    if x.ndim != 4:
        raise ValueError(f"pad_square expects (B, C, H, W), got {tuple(x.shape)}")
    h, w = x.shape[-2:]
    side = padded_side(h, w, multiple)
    ph, pw = side - h, side - w
    if ph == 0 and pw == 0:
        return x, (h, w)
    mode = "reflect" if ph < h and pw < w else "replicate"
    return F.pad(x, (0, pw, 0, ph), mode=mode), (h, w)


def crop(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Undo :func:`pad_square`: keep the top-left ``size = (H, W)``."""
    return x[..., : size[0], : size[1]]


def _starts(length: int, tile: int, step: int) -> list[int]:
    if length <= tile:
        return [0]
    starts = list(range(0, length - tile, step))
    starts.append(length - tile)
    return starts


def _edge(k: int, device: torch.device) -> torch.Tensor:
    """Weights over ``k`` overlap samples rising from 0 to 1; the first quarter stays at 0 so the
    outputs nearest a tile's cut edge (where its padding distorts them) never count."""
    r = torch.zeros(k, device=device)
    m = k // 4
    r[m:] = torch.linspace(0.0, 1.0, k - m + 2, device=device)[1:-1]
    return r


def _ramp(n: int, lead: int, trail: int, device: torch.device) -> torch.Tensor:
    """1-D blending weights of a tile of ``n`` samples overlapping ``lead``/``trail`` samples."""
    w = torch.ones(n, device=device)
    if lead:
        w[:lead] = _edge(lead, device)
    if trail:
        w[n - trail:] = torch.minimum(w[n - trail:], _edge(trail, device).flip(0))
    return w


def tiled(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, tile: int, overlap: int,
          out_channels: int) -> torch.Tensor:
    """Apply ``fn`` (``(B, C, t, t) -> (B, out_channels, t, t)``) on overlapping ``tile``-square tiles.

    ``x`` is ``(B, C, H, W)`` with ``H, W >= tile`` (pad first); ``tile`` must satisfy ``fn``'s size
    rule; ``0 <= overlap < tile``. Returns ``(B, out_channels, H, W)``.
    """
    b, _, h, w = x.shape
    if not 0 <= overlap < tile:
        raise ValueError(f"overlap must be in [0, tile), got overlap={overlap}, tile={tile}")
    if h < tile or w < tile:
        raise ValueError(f"image {h}x{w} is smaller than the tile {tile}; pad it first")
    step = tile - overlap
    ys, xs = _starts(h, tile, step), _starts(w, tile, step)
    out = x.new_zeros(b, out_channels, h, w)
    norm = x.new_zeros(1, 1, h, w)
    for i, y0 in enumerate(ys):
        lead_y = (ys[i - 1] + tile - y0) if i > 0 else 0
        trail_y = (y0 + tile - ys[i + 1]) if i + 1 < len(ys) else 0
        wy = _ramp(tile, lead_y, trail_y, x.device)
        for j, x0 in enumerate(xs):
            lead_x = (xs[j - 1] + tile - x0) if j > 0 else 0
            trail_x = (x0 + tile - xs[j + 1]) if j + 1 < len(xs) else 0
            wgt = (wy[:, None] * _ramp(tile, lead_x, trail_x, x.device)[None, :])[None, None]
            pred = fn(x[..., y0:y0 + tile, x0:x0 + tile]).to(out.dtype)
            out[..., y0:y0 + tile, x0:x0 + tile] += pred * wgt
            norm[..., y0:y0 + tile, x0:x0 + tile] += wgt
    return out / norm
