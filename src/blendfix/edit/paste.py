"""The paste editor: pairs like users bring, with the artifact-free truth known.

Paint tools, face restorers (GFPGAN/CodeFormer paste-back) and face swappers all make the same
kind of pair: a region of the photo is replaced by a modified copy and pasted back with a crude
mask. Each pair here is built from two parts, and only the first one is the *edit*:

* the **intended change** ``e`` inside a soft semantic region ``R`` (a face part, or the whole
  face): recolour, darken/lighten, skin smoothing (retouch) or sharpening (a restorer's look);
* the **nuisances** of the copy: a tone/white-balance shift, blur, noise or JPEG mismatch, and a
  few-pixel misalignment (the ghost) — things a careful artist would never leave in.

The copy ``C = nuisance(I + R * (e(I) - I))`` is pasted with the mask ``P`` (shape ``part``,
``ellipse``, ``rect``, ``stroke`` or ``facebox``; edge ``hard``, ``feathered`` or ``wrong-size``):
``F = C * P + I * (1 - P)``. The truth is the intended change alone, kept where the paste put
it and faded out smoothly where ``P`` cut through ``R``: ``truth = I + R * blur(P) * (e(I) - I)``.
So the truth keeps the edit's content and colour, and has no step, no ghost, no tone shift.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ..attributes import canonical
from .base import EditResult
from .face_geometry import FaceGeometry, gaussian, scale_polygon
from .synthetic import _as_image, _rng, detect, face_geometry

SHAPES = ("part", "ellipse", "rect", "stroke", "facebox")
EDGES = ("hard", "feathered", "wrong-size")
CHANGES = ("recolour", "tone", "smooth", "sharpen")
#: which face part each attribute's paste works on, and the Poisson teacher's mask rule it follows
PARTS = {"smile": "lips", "eyebrows": "brows", "beard": "lower", "aging": "face"}


@dataclass(frozen=True)
class PastePlan:
    """The random choices behind one pair (recorded in ``EditResult.info``)."""

    shape: str
    edge: str
    change: str
    part: str


def _part_region(part: str, g: FaceGeometry) -> np.ndarray:
    """Soft ``(H, W)`` region of a face part, in ``[0, 1]``."""
    fw = g.face_width
    if part == "lips":
        return g.fill([scale_polygon(g.lips_outer, 1.08, 1.15)], 0.02 * fw)
    if part == "brows":
        return g.fill([scale_polygon(b, 1.15, 1.8) for b in g.brows], 0.015 * fw)
    if part == "lower":
        h, w = g.size
        ys = np.arange(h, dtype=np.float32)[:, None] * np.ones((1, w), np.float32)
        below_nose = np.clip((ys - float(g.nose_bottom[1])) / (0.05 * g.face_height), 0.0, 1.0)
        return g.face_mask() * below_nose
    return g.face_mask()


def _change(img: np.ndarray, change: str, rng: np.random.Generator, s: float) -> np.ndarray:
    """The intended change applied to the whole image (used inside ``R`` only)."""
    if change == "recolour":
        hsv = cv2.cvtColor(img, cv2.COLOR_RGB2HSV)
        hsv[..., 0] = (hsv[..., 0] + rng.uniform(-25, 25) * s) % 360.0
        hsv[..., 1] = np.clip(hsv[..., 1] * (1.0 + rng.uniform(0.2, 0.6) * s), 0, 1)
        return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
    if change == "tone":
        gain = 1.0 + rng.choice([-1, 1]) * rng.uniform(0.12, 0.3) * s
        return np.clip(img * gain, 0, 1)
    side = min(img.shape[:2])
    blur = cv2.GaussianBlur(img, (0, 0), max(0.6, 0.006 * side))
    if change == "smooth":
        return cv2.bilateralFilter(img, 0, 0.08, max(1.0, 0.01 * side))
    return np.clip(img + (0.8 + 0.8 * s) * (img - blur), 0, 1)  # sharpen: a restorer's crisp look


def _nuisance(img: np.ndarray, rng: np.random.Generator, s: float) -> np.ndarray:
    """Tone/white-balance shift, blur or noise/JPEG, and a few-pixel shift: the copy's artifacts."""
    out = img * (1.0 + rng.normal(0, 0.04, 3).astype(np.float32) * s) + rng.normal(0, 0.02) * s
    kind = rng.integers(0, 3)
    side = min(img.shape[:2])
    if kind == 0:
        out = cv2.GaussianBlur(out.astype(np.float32), (0, 0), rng.uniform(0.4, 1.2) * side / 256)
    elif kind == 1:
        out = out + rng.normal(0, 0.015 * s, out.shape)
    else:
        u8 = np.clip(out * 255 + 0.5, 0, 255).astype(np.uint8)
        ok, buf = cv2.imencode(".jpg", u8, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(20, 45))])
        out = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED).astype(np.float32) / 255.0 if ok else out
    dx, dy = rng.uniform(-1, 1, 2) * (1.0 + 2.0 * s) * side / 256
    warp = np.float32([[1, 0, dx], [0, 1, dy]])
    out = cv2.warpAffine(np.asarray(out, np.float32), warp, (img.shape[1], img.shape[0]),
                         flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    return np.clip(out, 0, 1).astype(np.float32)


def _paste_mask(shape: str, edge: str, region: np.ndarray, g: FaceGeometry, rng: np.random.Generator) -> np.ndarray:
    """The paste mask ``P`` ``(H, W)`` in ``[0, 1]``: roughly covering ``region``, crude by design."""
    h, w = region.shape
    ys, xs = np.nonzero(region > 0.3)
    x0, x1, y0, y1 = xs.min(), xs.max(), ys.min(), ys.max()
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    if edge == "wrong-size":  # too small or far too large
        grow = rng.choice([rng.uniform(0.7, 0.85), rng.uniform(1.8, 2.3)])
    else:
        grow = rng.uniform(1.15, 1.5)
    rx, ry = max(3.0, (x1 - x0) / 2 * grow), max(3.0, (y1 - y0) / 2 * grow)
    p = np.zeros((h, w), np.float32)
    if shape == "rect":
        cv2.rectangle(p, (int(cx - rx), int(cy - ry)), (int(cx + rx), int(cy + ry)), 1.0, -1)
    elif shape == "ellipse":
        cv2.ellipse(p, (int(cx), int(cy)), (int(rx), int(ry)), float(rng.uniform(-10, 10)), 0, 360, 1.0, -1)
    elif shape == "facebox":
        fx0, fy0 = g.oval.min(0)
        fx1, fy1 = g.oval.max(0)
        m = 0.08 * g.face_width * grow
        cv2.rectangle(p, (int(fx0 - m), int(fy0 - 2 * m)), (int(fx1 + m), int(fy1 + m)), 1.0, -1)
    elif shape == "stroke":
        t = np.linspace(0, 1, 24)
        pts = np.stack([cx + rx * np.cos(2 * np.pi * t * 1.5), cy + ry * 0.6 * np.sin(2 * np.pi * t)], 1)
        pts += rng.normal(0, 0.1 * rx, pts.shape)
        cv2.polylines(p, [pts.astype(np.int32)], False, 1.0, max(2, int(0.9 * ry)))
        p = np.maximum(p, (region > 0.5).astype(np.float32))
    else:  # part: the part itself, thresholded (a lasso)
        p = (gaussian(region, 0.01 * w) > rng.uniform(0.1, 0.3)).astype(np.float32)
        if edge == "wrong-size":
            k = max(1, int(0.02 * w * grow))
            op = cv2.dilate if grow > 1 else cv2.erode
            p = op(p, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * k + 1, 2 * k + 1)))
    if edge == "feathered":
        p = cv2.GaussianBlur(p, (0, 0), rng.uniform(0.006, 0.015) * w)
    return np.clip(p, 0, 1).astype(np.float32)


class PasteEditor:
    """Offline editor of user-like pasted pairs (``--editor paste``); see the module docstring.

    ``edit(image, attribute, seed=..., landmarks=None)``: ``attribute`` picks the face part
    (:data:`PARTS`); shape, edge, change and nuisances are drawn from ``seed``. ``strength`` scales
    the change and the nuisances (1 = typical).
    """

    name = "paste"

    def __init__(self, strength: float = 1.0, shapes: tuple[str, ...] = SHAPES) -> None:
        if not strength >= 0:
            raise ValueError(f"PasteEditor: strength must be >= 0; got {strength}")
        bad = [s for s in shapes if s not in SHAPES]
        if bad or not shapes:
            raise ValueError(f"PasteEditor: shapes {bad or shapes} unknown; choose from {', '.join(SHAPES)}")
        self.strength, self.shapes = float(strength), tuple(shapes)

    def plan(self, attribute: str, seed: int) -> PastePlan:
        """The shape, edge and change this ``(attribute, seed)`` gets (deterministic)."""
        rng = _rng(seed, "paste:plan")
        part = PARTS[canonical(attribute)]
        shapes = [s for s in self.shapes if part != "face" or s != "stroke"]
        # a whole face or jaw recoloured is not an edit anyone makes: large parts get tone/retouch/restore
        changes = CHANGES if part in ("lips", "brows") else CHANGES[1:]
        return PastePlan(shape=str(rng.choice(shapes)), edge=str(rng.choice(EDGES)),
                         change=str(rng.choice(changes)), part=part)

    def edit(self, image: np.ndarray, attribute: str, *, seed: int = 0, landmarks: np.ndarray | None = None,
             source: str | None = None) -> EditResult:
        """A pasted pair from ``image`` (``(H, W, 3)`` float in ``[0, 1]``) and its truth."""
        img = _as_image(image)
        h, w = img.shape[:2]
        lm = detect(img, source) if landmarks is None else np.asarray(landmarks, np.float32)
        g = face_geometry(lm, (h, w))
        plan = self.plan(attribute, seed)
        rng = _rng(seed, "paste:pair")
        region = _part_region(plan.part, g)
        changed = _change(img, plan.change, rng, self.strength)
        edited_clean = img + region[..., None] * (changed - img)
        copy = _nuisance(edited_clean, rng, self.strength)
        paste = _paste_mask(plan.shape, plan.edge, region, g, rng)
        keep = cv2.GaussianBlur(paste, (0, 0), max(0.5, 0.015 * min(h, w)))
        truth = np.clip(img + (region * keep)[..., None] * (changed - img), 0, 1).astype(np.float32)
        attr = canonical(attribute)
        info = {"editor": "paste", "seed": int(seed), "attribute": attr, "shape": plan.shape, "edge": plan.edge,
                "change": plan.change, "part": plan.part, "strength": self.strength}
        return EditResult(original=img, inverted=img.copy(), edited=copy, mask=paste, attribute=attr, info=info,
                          truth=truth, kind=f"paste:{plan.shape}")
