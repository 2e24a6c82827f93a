"""Pictures for people to look at: the edit strip (I, I', T, M, F) and the mask overlay.

Inputs follow the package convention: float32 ``(H, W, 3)`` RGB in ``[0, 1]`` and ``(H, W)`` masks.
The comparison figure of ``blendfix evaluate`` is :func:`blendfix.metrics.report.write_figure`.
"""

from __future__ import annotations

import cv2
import numpy as np

from .edit.base import EditResult
from .io import to_uint8


def overlay(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(H, W, 3) float image and (H, W) mask -> float image tinted green in the mask, outlined in red."""
    out = image.astype(np.float32).copy()
    m = mask > 0.5
    out[m] = out[m] * 0.6 + np.array([0.0, 1.0, 0.0], np.float32) * 0.4
    edge = m.astype(np.uint8) - cv2.erode(m.astype(np.uint8), np.ones((3, 3), np.uint8))
    thick = max(1, round(min(mask.shape) / 256))
    if thick > 1:
        edge = cv2.dilate(edge, np.ones((thick, thick), np.uint8))
    out[edge > 0] = (1.0, 0.0, 0.0)
    return out


PANELS = ("I", "I'", "T", "M", "F")


def strip_image(result: EditResult, panel: int = 256, labels: tuple[str, ...] = PANELS) -> np.ndarray:
    """I, I', T, M, F side by side, each ``panel`` px high, with a label bar; ``uint8 (h, w, 3)``.

    I', T and M are labelled with the editor that made them (e.g. "T (synthetic)").
    """
    h, w = result.original.shape[:2]
    pw = max(1, round(w * panel / h))
    mask3 = np.repeat(result.mask[..., None], 3, axis=2)
    images = dict(zip(PANELS, (result.original, result.inverted, result.edited, mask3, result.fused), strict=True))
    tiles = []
    editor = result.info.get("editor")
    for name in labels:
        tile = to_uint8(cv2.resize(images[name], (pw, panel), interpolation=cv2.INTER_AREA))
        bar = np.full((22, pw, 3), 255, np.uint8)
        text = f"{name} ({editor})" if editor and name in ("I'", "T", "M") else name
        cv2.putText(bar, text, (6, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 0), 1, cv2.LINE_AA)
        tiles.append(np.concatenate([bar, tile], axis=0))
        tiles.append(np.full((panel + 22, 2, 3), 255, np.uint8))
    return np.concatenate(tiles[:-1], axis=1)
