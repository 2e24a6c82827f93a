"""The synthetic "smile" edit: corners out and up, cheeks raised, mouth opened on teeth, deeper folds."""

from __future__ import annotations

import cv2
import numpy as np

from .face_geometry import FaceGeometry, gaussian, rbf_warp, scale_polygon
from .paint import Pair, lerp


def _lens_edges(t: np.ndarray, c0: np.ndarray, c1: np.ndarray, up: float, down: float) -> tuple[np.ndarray, np.ndarray]:
    """Upper and lower y of the mouth opening at parameter ``t`` in ``[0, 1]`` between the corners."""
    base = (1 - t) * c0[1] + t * c1[1]
    bulge = np.clip(np.sin(np.pi * t), 0, 1)
    return base - up * bulge**0.7, base + down * bulge**0.8


def _lens(c0: np.ndarray, c1: np.ndarray, up: float, down: float, n: int = 24) -> np.ndarray:
    """Mouth opening between corners ``c0``, ``c1``: upper edge raised by ``up``, lower by ``down``."""
    t = np.linspace(0, 1, n)
    xs = (1 - t) * c0[0] + t * c1[0]
    upper, lower = _lens_edges(t, c0, c1, up, down)
    return np.concatenate([np.stack([xs, upper], 1), np.stack([xs, lower], 1)[::-1]]).astype(np.float32)


def _teeth(g: FaceGeometry, c0: np.ndarray, c1: np.ndarray, up: float, down: float, mw: float,
           rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Upper and lower teeth on a curved arch inside the opening, dark cavity between; ``(colour, alpha)``."""
    h, w = g.size
    alpha = g.fill([_lens(c0, c1, up, down)], 0.01 * mw + 0.5)
    xs = np.arange(w, dtype=np.float32)[None, :]
    ys = np.arange(h, dtype=np.float32)[:, None]
    t = np.clip((xs - c0[0]) / max(c1[0] - c0[0], 1.0), 0, 1)
    upper, lower = _lens_edges(t, c0, c1, up, down)
    depth = ys - upper  # pixels below the upper lip
    arch = np.arcsin(np.clip(2 * t - 1, -1, 1)) * (2 / np.pi) * 5.0  # ~5 teeth per side, narrower outwards
    frac = arch - np.round(arch)
    seams = np.exp(-(frac**2) / (2 * 0.06**2))
    span = np.maximum(lower - upper, 1.0)
    upper_len = np.minimum(0.62 * span, 0.16 * mw) * (1.0 + 0.06 * np.cos(np.pi * frac))  # rounded edges
    lower_len = np.minimum(0.2 * span, 0.045 * mw)
    up_row = (depth < upper_len).astype(np.float32)
    low_row = (ys > lower - lower_len).astype(np.float32) * (1 - up_row)
    shade = 0.55 + 0.45 * np.clip(np.sin(np.pi * t), 0, 1) ** 0.5  # darker towards the corners
    gum = 1.0 - 0.2 * np.exp(-np.maximum(depth, 0) / (0.02 * mw + 1))
    tooth = shade * gum * (1.0 - 0.12 * seams)
    colour = np.float32([0.97, 0.94, 0.87]) * np.float32(rng.uniform(0.9, 1.0))
    cavity = np.float32([0.26, 0.09, 0.09]) * (shade * (1.0 + 0.5 * np.clip(depth / span, 0, 1)))[..., None]
    teeth = ((up_row * tooth)[..., None] * colour + (low_row * 0.85 * tooth)[..., None] * colour
             + (1 - up_row - low_row)[..., None] * cavity)
    return gaussian(np.clip(teeth, 0, 1), 0.008 * mw + 0.5), alpha


def smile(img: np.ndarray, g: FaceGeometry, rng: np.random.Generator, s: float) -> Pair:
    """Corners out and up, mouth opened on teeth, cheeks up, deeper folds; region = mouth + cheeks."""
    mw = g.mouth_width
    fw = g.face_width
    corners = g.mouth_corners
    out_up = np.float32([[-0.10 * mw, -0.08 * mw], [0.10 * mw, -0.08 * mw]]) * s
    inner = g.lips_inner
    inner_top = inner[np.argmin(inner[:, 1])]
    inner_bot = inner[np.argmax(inner[:, 1])]
    lip_bot = g.lips_outer[np.argmax(g.lips_outer[:, 1])]
    # a mouth that already smiles open changes less (the latent step saturates)
    so = s * float(np.clip(1.0 - (inner_bot[1] - inner_top[1]) / (0.3 * mw), 0.25, 1.0))
    cheeks = np.stack([corners[0] + np.float32([-0.15 * mw, -0.45 * mw]),
                       corners[1] + np.float32([0.15 * mw, -0.45 * mw])])
    src = np.concatenate([corners, [lip_bot, inner_bot], cheeks])
    dst = src + np.concatenate([out_up, np.float32([[0, 0.10 * mw], [0, 0.09 * mw]]) * so,
                                np.float32([[-0.02 * mw, -0.06 * mw], [0.02 * mw, -0.06 * mw]]) * s])
    sig = np.float32([0.28, 0.28, 0.3, 0.25, 0.4, 0.4]) * mw
    out = rbf_warp(img, src, dst, sig)
    c0, c1 = dst[0] + np.float32([0.08 * mw, 0.01 * mw]), dst[1] + np.float32([-0.08 * mw, 0.01 * mw])
    # the opening covers the photo's own open mouth (if any), moved as the warp moved it
    base_mid = (c0[1] + c1[1]) / 2
    up = max(base_mid - (inner_top[1] - 0.02 * mw * so), 0.015 * mw)
    down = max(inner_bot[1] + 0.09 * mw * so - base_mid, 0.04 * mw)
    teeth, alpha = _teeth(g, c0, c1, up, down, mw, rng)
    out = lerp(out, teeth, alpha * min(1.0, s))
    # nasolabial folds and raised cheek highlights
    h, w = img.shape[:2]
    canvas = np.zeros((h, w), np.float32)
    for k in range(2):
        sign = -1.0 if k == 0 else 1.0
        wing, end = g.nose_wings[k], dst[k] + np.float32([sign * 0.08 * mw, 0.04 * mw])
        mid = (wing + end) / 2 + np.float32([sign * 0.1 * mw, 0])
        t = np.linspace(0, 1, 16)[:, None]
        pts = (1 - t) ** 2 * wing + 2 * t * (1 - t) * mid + t**2 * end
        cv2.polylines(canvas, [np.round(pts).astype(np.int32).reshape(-1, 1, 2)], False, 1.0,
                      max(1, int(0.03 * mw)), cv2.LINE_AA)
    fold = gaussian(canvas, 0.04 * mw)
    glow = g.fill([scale_polygon(np.concatenate([dst[4:6], g.nose_wings]), 1.0, 1.0)], 0.15 * mw)
    out = out * (1.0 - 0.22 * s * fold)[..., None] * (1.0 + 0.04 * s * glow)[..., None]
    region_poly = np.concatenate([scale_polygon(g.lips_outer, 1.5, 1.9), cheeks, g.nose_wings])
    region = g.fill([cv2.convexHull(region_poly.astype(np.float32)).reshape(-1, 2)], 0.04 * fw)
    return np.clip(out, 0, 1).astype(np.float32), region
