"""Padding to a network's size rule and overlapped, seam-free tiling for images too large for memory.

MAResU-Net accepts square inputs whose side is a multiple of 32. :func:`pad_square` pads any
``(B, C, H, W)`` tensor to such a square (reflection, falling back to replication for small images)
and :func:`crop` cuts the result back to exactly ``(H, W)``.

:func:`tiled` runs a network on overlapping square tiles and blends them with weights that ramp
linearly across each overlap, so there is no visible seam; with a network whose receptive field is
smaller than the overlap, the result equals the untiled one.

:func:`run_padded` is what cleaning uses: one call of the network on the padded square when it fits
in a tile, else tiles of the *virtual* padded square, each cut from the image and padded on its own
(only tiles that touch the image are run). Memory scales with the tile and the image, never with the
square of the longer side (a 30000x32 image no longer becomes a 30016x30016 tensor); the result is
bit-identical to padding the whole image first and tiling that.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

#: ``blendfix clean``'s defaults: largest padded side run in one piece, and the overlap of tiles beyond it.
DEFAULT_TILE = 1024
DEFAULT_OVERLAP = 128


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
    return F.pad(x, (0, pw, 0, ph), mode=_pad_mode(h, w, side)), (h, w)


def _pad_mode(h: int, w: int, side: int) -> str:
    """:func:`pad_square`'s rule: reflection when each padding is shorter than the side it mirrors."""
    return "reflect" if side - h < h and side - w < w else "replicate"


def _source_index(start: int, length: int, n: int, mode: str, device: torch.device) -> torch.Tensor:
    """Indices into an axis of ``n`` samples for padded positions ``start .. start + length - 1``."""
    i = torch.arange(start, start + length, device=device)
    return torch.where(i < n, i, (2 * (n - 1) - i) if mode == "reflect" else torch.full_like(i, n - 1))


def padded_window(x: torch.Tensor, y0: int, x0: int, tile: int, side: int) -> torch.Tensor:
    """The ``tile``-square window at ``(y0, x0)`` of ``pad_square(x)`` (padded to ``side``), built
    from ``x`` alone: ``(B, C, H, W) -> (B, C, tile, tile)``, equal to slicing the padded image."""
    h, w = x.shape[-2:]
    mode = _pad_mode(h, w, side)
    rows = _source_index(y0, tile, h, mode, x.device)
    cols = _source_index(x0, tile, w, mode, x.device)
    return x.index_select(-2, rows).index_select(-1, cols)


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
    h, w = x.shape[-2:]
    if not 0 <= overlap < tile:
        raise ValueError(f"overlap must be in [0, tile), got overlap={overlap}, tile={tile}")
    if h < tile or w < tile:
        raise ValueError(f"image {h}x{w} is smaller than the tile {tile}; pad it first")
    return _blend_tiles(fn, lambda y0, x0: x[..., y0:y0 + tile, x0:x0 + tile], x, (h, w), tile, tile - overlap,
                        out_channels)


def _blend_tiles(fn: Callable[[torch.Tensor], torch.Tensor], window: Callable[[int, int], torch.Tensor],
                 like: torch.Tensor, extent: tuple[int, int], t: int, step: int, out_channels: int) -> torch.Tensor:
    """The tile loop shared by :func:`tiled` and :func:`run_padded`.

    Tiles of side ``t`` start every ``step`` over ``extent`` = ``(EH, EW)`` (the image, or the virtual
    padded square); ``window(y0, x0)`` gives the ``(B, C, t, t)`` input of a tile. Tiles starting outside
    the image ``like`` (``(B, C, H, W)``) are skipped, outputs are cropped to it and blended with linear
    ramps across each overlap. Returns ``(B, out_channels, H, W)``.
    """
    b, _, h, w = like.shape
    ys, xs = _starts(extent[0], t, step), _starts(extent[1], t, step)
    out = like.new_zeros(b, out_channels, h, w)
    norm = like.new_zeros(1, 1, h, w)
    for i, y0 in enumerate(ys):
        if y0 >= h:
            continue
        wy = _ramp(t, (ys[i - 1] + t - y0) if i > 0 else 0, (y0 + t - ys[i + 1]) if i + 1 < len(ys) else 0,
                   like.device)
        for j, x0 in enumerate(xs):
            if x0 >= w:
                continue
            wx = _ramp(t, (xs[j - 1] + t - x0) if j > 0 else 0, (x0 + t - xs[j + 1]) if j + 1 < len(xs) else 0,
                       like.device)
            wgt = (wy[:, None] * wx[None, :])[None, None]
            pred = fn(window(y0, x0)).to(out.dtype)
            hh, ww = min(t, h - y0), min(t, w - x0)
            out[..., y0:y0 + hh, x0:x0 + ww] += (pred * wgt)[..., :hh, :ww]
            norm[..., y0:y0 + hh, x0:x0 + ww] += wgt[..., :hh, :ww]
    return out / norm


def run_padded(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, tile: int, overlap: int,
               out_channels: int, multiple: int = 32) -> torch.Tensor:
    """Apply ``fn`` (square inputs, side a multiple of ``multiple``) to ``x`` of any size.

    ``x``: ``(B, C, H, W)``. When the padded square side (:func:`padded_side`) is at most ``tile``,
    ``fn`` runs once on :func:`pad_square` of ``x``. Otherwise ``fn`` runs on ``T``-square tiles
    (``T = padded_side(tile, tile)``) of that padded square, blended as :func:`tiled` does, but each
    tile is cut from ``x`` and padded on its own (:func:`padded_window`) and tiles lying wholly in the
    padding are skipped; no tensor larger than ``(B, C, T, T)`` besides ``x`` and the output is made.
    Returns ``(B, out_channels, H, W)``.
    """
    if x.ndim != 4:
        raise ValueError(f"run_padded expects (B, C, H, W), got {tuple(x.shape)}")
    h, w = x.shape[-2:]
    side = padded_side(h, w, multiple)
    if side <= tile:
        padded, size = pad_square(x, multiple)
        return crop(fn(padded), size)
    t = padded_side(tile, tile, multiple)
    overlap = min(overlap, t // 2)
    if not 0 <= overlap < t:
        raise ValueError(f"overlap must be in [0, tile), got overlap={overlap}, tile={t}")
    return _blend_tiles(fn, lambda y0, x0: padded_window(x, y0, x0, t, side), x, (side, side), t, t - overlap,
                        out_channels)
