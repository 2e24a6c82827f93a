"""The four landmark-guided attribute edits of the synthetic editor (applied to the re-rendering I').

Each op takes I' (``float32 (H, W, 3)`` in ``[0, 1]``), the face's :class:`FaceGeometry` at that
size, a numpy Generator and a strength (1 = a typical StyleGAN2 edit at alpha 20), and returns
``(T, region)``: the edited image and a soft ``(H, W)`` map of where the edit acts (the evidence a
Diff-CAM would pick up).

* eyebrows: brows thickened (mostly across their axis), darkened, with strand texture.
* beard: hair texture over jaw, chin, upper lip and under the jaw line, denser towards the chin.
* aging: wrinkles (forehead, crow's feet, folds, under-eye), rougher higher-contrast skin, age
  spots, slight sag, yellowed/desaturated skin and greyed hair.
* smile: mouth corners pulled out and up, mouth opened on a row of teeth, cheeks raised,
  nasolabial folds deepened.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .aging import aging
from .face_geometry import FaceGeometry, gaussian, scale_polygon
from .paint import Pair, dark_colour, lerp, random_field, strands
from .smile import smile

Op = Callable[[np.ndarray, FaceGeometry, np.random.Generator, float], Pair]


# --- eyebrows --------------------------------------------------------------------------------
def bushy_eyebrows(img: np.ndarray, g: FaceGeometry, rng: np.random.Generator, s: float) -> Pair:
    """Thicker, darker brows with strand texture; region = the thickened brows, widened."""
    h, w = img.shape[:2]
    out = img.copy()
    region = np.zeros((h, w), np.float32)
    for side, brow in enumerate(g.brows):
        th = max(float(np.ptp(brow[:, 1])), 2.0)
        length = max(float(np.ptp(brow[:, 0])), 4.0)
        orig = g.fill([brow], 0.5)
        colour = dark_colour(img, orig, 10.0) * np.float32(rng.uniform(0.55, 0.75))
        thick = scale_polygon(brow, 1.0 + 0.12 * s, 1.0 + 0.9 * s) - np.float32([0, 0.2 * th * s])
        dens = g.fill([thick], 0.15 * th)
        # brow hairs point away from the nose and slightly up
        angle = (-20.0 if side == 1 else 200.0) + rng.normal(0, 6)
        hair = strands((h, w), rng, angle, 0.12 * length, density=0.10)
        hair = np.maximum(hair, strands((h, w), rng, angle - 25.0, 0.08 * length, density=0.06))
        alpha = np.clip(dens * (0.2 + 0.8 * hair) * min(1.0, s), 0.0, 1.0)
        tint = colour[None, None, :] * (1.2 - 0.4 * hair[..., None])
        out = lerp(out, tint, alpha)
        region = np.maximum(region, g.fill([scale_polygon(thick, 1.25, 1.6)], 0.3 * th))
    return np.clip(out, 0, 1), region


# --- beard -----------------------------------------------------------------------------------
def beard(img: np.ndarray, g: FaceGeometry, rng: np.random.Generator, s: float) -> Pair:
    """Hair over jaw, chin, upper lip and under the jaw line; lips left clear."""
    h, w = img.shape[:2]
    fh, fw = g.face_height, g.face_width
    ys = np.arange(h, dtype=np.float32)[:, None]
    # upper edge: just under the nose at the moustache, lower over the cheeks, up again at the sideburns
    xs = np.abs(np.arange(w, dtype=np.float32)[None, :] - float(g.centre[0]))
    top = float(g.nose_bottom[1]) - 0.02 * fh + 0.1 * fh * np.exp(-(((xs - 0.24 * fw) / (0.1 * fw)) ** 2))
    top = top - 0.12 * fh * np.clip((xs - 0.38 * fw) / (0.12 * fw), 0.0, 1.0)
    ramp = np.clip((ys - top) / (0.15 * fh), 0.0, 1.0)
    face = g.fill([g.oval], 0.0)
    below = g.fill([g.oval + np.float32([0, 0.06 * fh])], 0.0)  # hangs under the jaw line
    lower = np.maximum(face, below * (ys > g.chin[1] - 0.25 * fh))
    lower = gaussian(lower, 0.03 * fw) * ramp
    lips = g.fill([scale_polygon(g.lips_outer, 1.05, 1.1)], 0.015 * fw)
    dens = np.clip(lower * (0.55 + 0.45 * ramp) - 0.95 * lips, 0.0, 1.0)
    clump = np.clip(0.8 + 0.3 * random_field((h, w), 12, rng), 0.3, 1.2)
    cx = float(g.centre[0])
    side = np.clip((np.arange(w, dtype=np.float32)[None, :] - cx) / (0.1 * fw) + 0.5, 0.0, 1.0)

    def layer(length: float, density: float) -> np.ndarray:
        left = strands((h, w), rng, 90 + 25 + rng.normal(0, 5), length, density=density)
        right = strands((h, w), rng, 90 - 25 + rng.normal(0, 5), length, density=density)
        return gaussian(left * (1 - side) + right * side, 0.5)

    dark = layer(0.045 * fh, 0.03)   # strands darker than the beard mass, thinning out at the edges
    light = layer(0.03 * fh, 0.015)  # lit strands on top
    base = 0.35 * dark_colour(img, g.fill(list(g.brows), 0.5)) + 0.65 * np.float32([0.11, 0.085, 0.07])
    base = base * np.float32(rng.uniform(0.8, 1.15))
    mass = np.clip(dens * clump * min(1.0, 0.9 * s), 0.0, 1.0)
    alpha = np.clip(mass * (0.55 + 0.45 * dark) + 0.35 * np.clip(4 * dens, 0, 1) * dark * min(1.0, s), 0.0, 1.0)
    tint = base[None, None, :] * (0.75 - 0.3 * dark[..., None] + 1.6 * light[..., None])
    out = lerp(img, tint, alpha)
    region = gaussian(np.maximum(dens, 0.7 * lips), 0.03 * fw)
    return np.clip(out, 0, 1), region


OPS: dict[str, Op] = {"eyebrows": bushy_eyebrows, "beard": beard, "aging": aging, "smile": smile}


def apply_attribute(attribute: str, image: np.ndarray, geometry: FaceGeometry, rng: np.random.Generator,
                    strength: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """``(T, region)`` for a canonical ``attribute``; ``strength`` >= 0 (0 returns ``image`` unchanged)."""
    if attribute not in OPS:
        raise ValueError(f"no synthetic edit for attribute {attribute!r}; choose one of {', '.join(OPS)}")
    if strength < 0:
        raise ValueError(f"strength must be >= 0; got {strength}")
    if image.shape[:2] != geometry.size:
        raise ValueError(f"image {image.shape[:2]} and face geometry {geometry.size} differ in size")
    if strength == 0:
        return image.copy(), np.zeros(image.shape[:2], np.float32)
    t, region = OPS[attribute](image, geometry, rng, float(strength))
    return t.astype(np.float32), np.clip(region, 0, 1).astype(np.float32)
