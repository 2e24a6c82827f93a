"""Pictures and tables of the page: the edit region of a pasted pair, a zoom on its boundary, the scores.

Images are numpy ``float32 (H, W, 3)`` RGB in ``[0, 1]``; masks ``(H, W)`` in ``[0, 1]``. The scores
themselves come from :mod:`blendfix.metrics.seam` (seam score vs the original, edit kept vs F).
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from ..metrics.seam import band_radius, edit_kept, edit_region, seam_band, seam_score, strongest_step_box

#: a pixel counts as edited when some channel of F differs from I by more than this ([0, 1] units):
#: above JPEG re-encoding noise, below any visible paste
CHANGE_THRESHOLD = 6.0 / 255.0
#: side of each zoomed tile in the boundary figure, pixels
ZOOM_TILE = 224


def estimate_edit_mask(original: np.ndarray, fused: np.ndarray) -> np.ndarray:
    """Where F differs from I: ``float32 (H, W)`` in {0, 1}, specks removed and small holes closed.

    Used for the scores and the zoom when no mask was uploaded (a pasted pair is I outside the paste).
    """
    diff = np.abs(np.asarray(fused, np.float32) - np.asarray(original, np.float32)).max(axis=2)
    changed = (cv2.blur(diff, (3, 3)) > CHANGE_THRESHOLD).astype(np.uint8)
    k = max(3, 2 * (min(diff.shape) // 128) + 1)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))
    changed = cv2.morphologyEx(changed, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3)))
    return cv2.morphologyEx(changed, cv2.MORPH_CLOSE, kernel).astype(np.float32)


def _zoom_window(original: np.ndarray, fused: np.ndarray, mask: np.ndarray) -> tuple[int, int, int]:
    """(top, left, side) of a square window where F's change steps most along the edit boundary
    (:func:`blendfix.metrics.seam.strongest_step_box`); the centre when the region has no boundary."""
    h, w = original.shape[:2]
    side = min(max(32, min(h, w) // 4), h, w)
    if seam_band(edit_region(mask), band_radius(h, w)).any():
        top, left = strongest_step_box(fused, original, mask, side)
        return top, left, side
    return (h - side) // 2, (w - side) // 2, side


#: height of the name strip under each zoomed tile, pixels
LABEL_HEIGHT = 22


def _label(tile: np.ndarray, text: str) -> np.ndarray:
    strip = np.full((LABEL_HEIGHT, tile.shape[1], 3), 255, np.uint8)
    cv2.putText(strip, text, (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    return np.vstack([tile, strip])


def boundary_zoom(original: np.ndarray, fused: np.ndarray, mask: np.ndarray,
                  outputs: dict[str, np.ndarray]) -> np.ndarray:
    """Crops of one window on the edit boundary — I, F, then each output — enlarged with nearest-neighbour
    (pixels stay visible), named underneath, :func:`zoom_columns` per row: ``uint8 (rows * (ZOOM_TILE +
    LABEL_HEIGHT), columns * ZOOM_TILE, 3)``."""
    top, left, side = _zoom_window(original, fused, mask)
    tiles = []
    for name, img in {"original I": original, "pasted F": fused, **outputs}.items():
        crop = np.asarray(img, np.float32)[top:top + side, left:left + side]
        big = cv2.resize(crop, (ZOOM_TILE, ZOOM_TILE), interpolation=cv2.INTER_NEAREST)
        tiles.append(_label(np.clip(np.rint(big * 255), 0, 255).astype(np.uint8), name))
    cols = zoom_columns(len(tiles))
    tiles += [np.full_like(tiles[0], 255)] * (-len(tiles) % cols)
    return np.vstack([np.hstack(tiles[i:i + cols]) for i in range(0, len(tiles), cols)])


def zoom_columns(n_tiles: int) -> int:
    """Tiles per row of the boundary zoom: 2 up to four tiles, else 3 (keeps the figure roughly square)."""
    return 2 if n_tiles <= 4 else 3


def _fmt(x: float) -> str:
    return "n/a" if math.isnan(x) else f"{x:.2f}"


def scores_table(original: np.ndarray, fused: np.ndarray, mask: np.ndarray, outputs: dict[str, np.ndarray],
                 estimated: bool) -> str:
    """Markdown table: seam score (1.0 = no visible step at the edit boundary, vs the original) and
    edit kept (1 = the whole change of F kept, 0 = undone) per method."""
    rows = ["| method | seam score (1 = no step) | edit kept (1 = all) |", "|---|---|---|"]
    for name, out in outputs.items():
        rows.append(f"| {name} | {_fmt(seam_score(out, original, mask))} | "
                    f"{_fmt(edit_kept(out, original, fused, mask))} |")
    where = ("The edit region is where F differs from I (no mask uploaded)" if estimated
             else "The edit region is the uploaded mask")
    return "\n".join(rows) + (
        "\n\n*Seam score*: gradient energy in a thin band around the edit region's boundary, relative to the "
        "original there (1.0 = no visible step, higher = a seam or ghost edge). *Edit kept*: how much of the "
        f"change from I to F survives inside the region (1 = all of it, 0 = undone). {where}; "
        "scores from `blendfix.metrics.seam`.")
