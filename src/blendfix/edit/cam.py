"""A CAM-like mask generator: soft, blobby, coarse heat maps that locate an edit imperfectly.

Diff-CAM (EOGI) computes Grad-CAM on the last ResNet stage of a classifier fed (I', T) at 256²,
so its map lives on an 8×8 grid, is clamped at zero, min-max normalised, bilinearly upsampled to
256² and then nearest-upsampled to the image size. The result is soft, blob-shaped, spills onto
neighbouring areas and misses parts of the edit. :func:`cam_like_mask` reproduces those traits
from a region that says where the edit really is, with randomness drawn from a numpy Generator.

``fold_mask`` is EOGI's data-generation trick: values above 0.5 are mirrored (``m -> 1 - m``) so
the mask never exceeds 0.5.
"""

from __future__ import annotations

import cv2
import numpy as np

UPSAMPLE_MODES = ("bilinear", "nearest256")


def fold_mask(mask: np.ndarray) -> np.ndarray:
    """EOGI's folded map: ``m`` where ``m <= 0.5`` else ``1 - m``; ``float32`` in ``[0, 0.5]``."""
    m = np.asarray(mask, np.float32)
    return np.where(m > 0.5, 1.0 - m, m).astype(np.float32)


def _random_blobs(grid: int, centre: np.ndarray, spread: float, count: int, rng: np.random.Generator) -> np.ndarray:
    """Sum of ``count`` Gaussian blobs on a ``grid``² map, centres scattered around ``centre`` (x, y)."""
    ys, xs = np.mgrid[0:grid, 0:grid].astype(np.float32)
    out = np.zeros((grid, grid), np.float32)
    for _ in range(count):
        cx, cy = centre + rng.normal(0.0, spread, 2)
        sigma = rng.uniform(0.6, 1.4)
        amp = rng.uniform(0.15, 0.5)
        out += amp * np.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / (2 * sigma**2))
    return out


def coarse_heat(region: np.ndarray, rng: np.random.Generator, *, grid: int = 8, spill: float = 1.0,
                holes: float = 1.0, shift: float = 1.0) -> np.ndarray:
    """The CAM on its native grid: ``float32 (grid, grid)`` in ``[0, 1]`` (max exactly 1 unless empty).

    ``region``: ``(H, W)`` in ``[0, 1]``, where the edit really is. ``spill`` adds blobs around
    it, ``holes`` attenuates random cells (missed parts), ``shift`` misplaces the map by up to
    about half a cell. All strengths are ``>= 0``; 0 turns the effect off.
    """
    if region.ndim != 2:
        raise ValueError(f"coarse_heat: region must be (H, W); got {region.shape}")
    if grid < 2:
        raise ValueError(f"coarse_heat: grid must be >= 2; got {grid}")
    cover = cv2.resize(np.asarray(region, np.float32), (grid, grid), interpolation=cv2.INTER_AREA)
    if cover.max() <= 0:
        return np.zeros((grid, grid), np.float32)
    cover = cover / cover.max()
    heat = np.where(cover > 0.04, cover, 0.0) ** 0.6  # CAMs saturate: small edits light up whole cells
    if holes > 0:
        atten = rng.uniform(1.0 - 0.4 * min(holes, 2.0), 1.0, (grid, grid)).astype(np.float32)
        heat = heat * atten
    if spill > 0:
        ys, xs = np.nonzero(cover > 0.3)
        centre = np.array([xs.mean(), ys.mean()], np.float32) if len(xs) else np.full(2, grid / 2, np.float32)
        spread = 0.15 * grid
        heat = heat + spill * _random_blobs(grid, centre, spread, int(rng.integers(1, 4)), rng)
    if shift > 0:
        dx, dy = rng.uniform(-0.5, 0.5, 2) * shift
        warp = np.float32([[1, 0, dx], [0, 1, dy]])
        heat = cv2.warpAffine(heat, warp, (grid, grid), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    heat = cv2.GaussianBlur(heat, (0, 0), 0.5)
    # Grad-CAM clamps negative evidence at zero: subtract a floor so weak cells drop out.
    floor = rng.uniform(0.15, 0.3) * float(heat.max())
    heat = np.maximum(heat - floor, 0.0)
    peak = float(heat.max())
    return (heat / peak).astype(np.float32) if peak > 0 else heat.astype(np.float32)


def upsample_heat(heat: np.ndarray, size: tuple[int, int], mode: str = "bilinear") -> np.ndarray:
    """Coarse heat ``(g, g)`` to ``size`` = ``(H, W)``: ``float32`` in ``[0, 1]``.

    ``bilinear``: straight to the image size (smooth blobs). ``nearest256``: as EOGI, bilinear to
    256² then nearest to the image size (blocky steps of ``H / 256`` pixels on large images).
    """
    if mode not in UPSAMPLE_MODES:
        raise ValueError(f"upsample mode {mode!r}; choose one of {', '.join(UPSAMPLE_MODES)}")
    h, w = size
    if mode == "bilinear":
        out = cv2.resize(heat, (w, h), interpolation=cv2.INTER_LINEAR)
    else:
        mid = cv2.resize(heat, (256, 256), interpolation=cv2.INTER_LINEAR)
        out = cv2.resize(mid, (w, h), interpolation=cv2.INTER_NEAREST)
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def cam_like_mask(region: np.ndarray, rng: np.random.Generator, *, size: tuple[int, int] | None = None,
                  grid: int = 8, spill: float = 1.0, holes: float = 1.0, shift: float = 1.0,
                  upsample: str = "bilinear", fold: bool = False) -> np.ndarray:
    """A Diff-CAM-like soft mask for an edit located by ``region``.

    ``region``: ``(H, W)`` in ``[0, 1]`` (any resolution). Returns ``float32 (H, W)`` (or ``size``)
    in ``[0, 1]``, or in ``[0, 0.5]`` with ``fold=True``. Zero far from the region.
    """
    region = np.asarray(region, np.float32)
    size = region.shape if size is None else size
    heat = coarse_heat(region, rng, grid=grid, spill=spill, holes=holes, shift=shift)
    mask = upsample_heat(heat, size, upsample)
    return fold_mask(mask) if fold else mask
