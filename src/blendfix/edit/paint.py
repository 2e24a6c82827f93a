"""Painting helpers shared by the synthetic attribute edits: colours, blends, noise, hair strands."""

from __future__ import annotations

import cv2
import numpy as np

Pair = tuple[np.ndarray, np.ndarray]


def luminance(img: np.ndarray) -> np.ndarray:
    """Rec. 601 luma of ``(..., 3)`` RGB."""
    return img @ np.float32([0.299, 0.587, 0.114])


def dark_colour(img: np.ndarray, mask: np.ndarray, q: float = 15.0) -> np.ndarray:
    """Mean colour of the darkest ``q`` % of pixels where ``mask > 0.5``; ``(3,)``."""
    sel = img[mask > 0.5]
    if len(sel) == 0:
        return np.float32([0.2, 0.15, 0.12])
    lum = luminance(sel)
    return sel[lum <= np.percentile(lum, q)].mean(axis=0).astype(np.float32)


def lerp(a: np.ndarray, b: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """``a`` blended towards ``b`` by ``(H, W)`` weights ``alpha``."""
    return a + (b - a) * alpha[..., None]


def random_field(shape: tuple[int, int], cells: int, rng: np.random.Generator) -> np.ndarray:
    """Smooth Gaussian field ``(H, W)`` from a ``cells``² grid upsampled bicubically."""
    grid = rng.normal(0.0, 1.0, (cells, cells)).astype(np.float32)
    return cv2.resize(grid, (shape[1], shape[0]), interpolation=cv2.INTER_CUBIC)


def strands(shape: tuple[int, int], rng: np.random.Generator, angle_deg: float, length: float,
            density: float = 0.06) -> np.ndarray:
    """Hair-strand texture ``float32 (H, W)`` in ``[0, 1]``: sparse seeds smeared along ``angle_deg``.

    ``length`` in pixels; ``density`` is the fraction of seed pixels.
    """
    h, w = shape
    seeds = (rng.random((h, w)) < density).astype(np.float32) * rng.uniform(0.5, 1.0, (h, w)).astype(np.float32)
    n = max(3, int(round(length)) | 1)
    kernel = np.zeros((n, n), np.float32)
    c = n // 2
    t = np.deg2rad(angle_deg)
    for r in np.linspace(-c, c, 2 * n):
        kernel[int(round(c + r * np.sin(t))), int(round(c + r * np.cos(t)))] = 1.0
    out = cv2.filter2D(seeds, -1, kernel / kernel.sum(), borderType=cv2.BORDER_REFLECT)
    top = float(np.percentile(out, 99.0))
    return np.clip(out / top, 0.0, 1.0) if top > 0 else out
