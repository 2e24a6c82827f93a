"""The offline default parser: a 19-class label map (BiSeNet order) drawn from the 478-point face mesh.

Classes it supports: ``skin``, ``l_brow``, ``r_brow``, ``l_eye``, ``r_eye``, ``nose``, ``mouth``,
``u_lip``, ``l_lip`` and an approximate ``neck``. Everything else (hair, ears, glasses, cloth, hat)
is ``background`` — use the BiSeNet parser when those matter. "l_"/"r_" are the subject's
left/right, as in CelebAMask-HQ (``l_eye`` is on the image's right in a frontal photo).

Geometry:

* ``skin``: the mesh's face oval, with the forehead raised towards the hairline (the mesh stops
  at mid-forehead; the forehead points are pushed up along the face's vertical axis by
  ``forehead`` times the brow-to-oval-top distance, default 0.35).
* brows, eyes (lid contours dilated by ``eye_margin`` of the eye width), nose outline, lips (outer
  minus inner contour, split into upper and lower), mouth (inner lip contour).
* ``neck``: below the jaw line, 0.8 x as wide as the jaw, down to 0.6 face heights below the chin.

Drawing order (later wins): neck, skin, nose, brows, eyes, lips, mouth.

Colour refinement (``refine=True``, the default): the mesh knows nothing of hair over the forehead
or cheeks, nor of the hairline. A skin-colour model (Gaussian in CIE Lab, fitted robustly to the
inner cheeks/nose/forehead) decides the face's outer zone: skin is kept where the colour matches
(Mahalanobis distance squared < ``skin_threshold``) inside the oval with the forehead raised to
``forehead_max``, while the inner face (the oval eroded by ``core_margin`` face heights) and the
brows, lips and mouth are always kept. Then a small opening/closing and the component holding the
nose tip. The defaults were chosen on the 15 CelebAMask-HQ reference maps in ``shared/data/parsing``
(see BENCHMARKS.md, "Face mask quality").
"""

from __future__ import annotations

import os

import cv2
import numpy as np

from .labels import LABEL
from .landmarks import LANDMARK_REGIONS, detect_all_landmarks, detect_landmarks

_UPPER_OUTER = [61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291]
_LOWER_OUTER = [291, 375, 321, 405, 314, 17, 84, 181, 91, 146, 61]
_UPPER_INNER = [78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308]
_LOWER_INNER = [308, 324, 318, 402, 317, 14, 87, 178, 88, 95, 78]
# face-oval points above the brows (raised for the forehead), and the jaw line from ear to ear
_FOREHEAD = [162, 21, 54, 103, 67, 109, 10, 338, 297, 332, 284, 251, 389]
_JAW = [234, 93, 132, 58, 172, 136, 150, 149, 176, 148, 152, 377, 400, 378, 379, 365, 397, 288, 361, 323, 454]
_BROW_TOP = 9  # mid-brow point of the mesh (between the eyebrows, on the midline)
_CHIN = 152


def _fill(label_map: np.ndarray, points: np.ndarray, value: int) -> None:
    # fixed-point rasterisation (4 fractional bits) keeps sub-pixel polygon accuracy
    pts = np.round(points * 16).astype(np.int32).reshape(-1, 1, 2)
    cv2.fillPoly(label_map, [pts], int(value), lineType=cv2.LINE_8, shift=4)


def _scaled(points: np.ndarray, factor: float) -> np.ndarray:
    centre = points.mean(axis=0, keepdims=True)
    return centre + (points - centre) * factor


def face_axes(lm: np.ndarray) -> tuple[np.ndarray, float]:
    """Unit 'up' vector of the face (chin -> mid-brow) and the chin-to-mid-brow distance in pixels."""
    up = lm[_BROW_TOP] - lm[_CHIN]
    length = float(np.linalg.norm(up))
    return up / max(length, 1e-6), length


def skin_polygon(lm: np.ndarray, forehead: float = 0.6) -> np.ndarray:
    """Face oval with the forehead points moved up by ``forehead`` x their height above the brows."""
    up, _ = face_axes(lm)
    oval = lm[LANDMARK_REGIONS["face_oval"]].astype(np.float64).copy()
    brow_level = float(lm[_BROW_TOP] @ up)
    for j, i in enumerate(LANDMARK_REGIONS["face_oval"]):
        if i in _FOREHEAD:
            height = float(lm[i] @ up) - brow_level
            if height > 0:
                oval[j] = lm[i] + up * height * forehead
    return oval


def neck_polygon(lm: np.ndarray, length: float = 0.6, width: float = 0.8) -> np.ndarray:
    """A neck estimate: a band as wide as ``width`` x the jaw, from mouth height (the face is drawn over
    its top, so it starts right under the jaw line) down to ``length`` face heights below the chin."""
    up, face_len = face_axes(lm)
    jaw = lm[_JAW].astype(np.float64)
    chin = lm[_CHIN].astype(np.float64)
    side = np.array([up[1], -up[0]])
    offsets = (jaw - chin) @ side
    left, right = offsets.min() * width, offsets.max() * width
    top = chin + up * face_len * 0.35
    bottom = chin - up * face_len * length
    return np.stack([top + side * left, bottom + side * left, bottom + side * right, top + side * right])


def labels_from_landmarks(lm: np.ndarray, shape: tuple[int, int], *, forehead: float = 0.6,
                          eye_margin: float = 0.0, neck: bool = True) -> np.ndarray:
    """Draw a BiSeNet-order label map of ``shape`` (H, W) from (478, 2) pixel landmarks.

    Returns int64 (H, W) with the classes listed in the module docstring.
    """
    lm = np.asarray(lm, dtype=np.float64)
    if lm.shape != (478, 2):
        raise ValueError(f"expected (478, 2) landmarks, got {lm.shape}")
    h, w = int(shape[0]), int(shape[1])
    out = np.zeros((h, w), dtype=np.uint8)
    if neck:
        # the neck sits behind the face: draw it first, then the jaw-bounded skin covers its top
        _fill(out, neck_polygon(lm), LABEL["neck"])
    _fill(out, skin_polygon(lm, forehead), LABEL["skin"])
    _fill(out, lm[LANDMARK_REGIONS["nose"]], LABEL["nose"])
    _fill(out, lm[LANDMARK_REGIONS["left_brow"]], LABEL["l_brow"])
    _fill(out, lm[LANDMARK_REGIONS["right_brow"]], LABEL["r_brow"])
    for region, name in (("left_eye", "l_eye"), ("right_eye", "r_eye")):
        _fill(out, _scaled(lm[LANDMARK_REGIONS[region]], 1.0 + 2.0 * eye_margin), LABEL[name])
    _fill(out, np.concatenate([lm[_UPPER_OUTER], lm[_UPPER_INNER[::-1]]]), LABEL["u_lip"])
    _fill(out, np.concatenate([lm[_LOWER_OUTER], lm[_LOWER_INNER[::-1]]]), LABEL["l_lip"])
    _fill(out, lm[LANDMARK_REGIONS["lips_inner"]], LABEL["mouth"])
    return out.astype(np.int64)


def _disk(radius: float) -> np.ndarray:
    r = max(1, int(round(radius)))
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))


def _erode(mask: np.ndarray, radius: float) -> np.ndarray:
    """Erosion by a disk of ``radius`` pixels (Euclidean distance transform: fast for large radii)."""
    return cv2.distanceTransform(mask.astype(np.uint8), cv2.DIST_L2, 3) > radius


def _dilate(mask: np.ndarray, radius: float) -> np.ndarray:
    """Dilation by a disk of ``radius`` pixels."""
    return cv2.distanceTransform((~mask.astype(bool)).astype(np.uint8), cv2.DIST_L2, 3) <= radius


def _skin_distance(image: np.ndarray, sample: np.ndarray, where: np.ndarray) -> np.ndarray:
    """Squared Mahalanobis distance (Lab) to the colour of the ``sample`` pixels, at the ``where`` pixels.

    The Gaussian is refitted on the 90% closest sample pixels, three times (robust to stray hair or
    shadow). Returns float64 (H, W), ``inf`` outside ``where``.
    """
    ys, xs = np.nonzero(where | sample)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    crop = np.ascontiguousarray(image[y0:y1, x0:x1], dtype=np.float32)
    lab = cv2.cvtColor(crop, cv2.COLOR_RGB2Lab).astype(np.float64)
    px = lab[sample[y0:y1, x0:x1]]
    for _ in range(3):
        mu = px.mean(axis=0)
        icov = np.linalg.inv(np.cov(px.T) + np.eye(3) * 1e-3)
        d = np.einsum("ij,jk,ik->i", px - mu, icov, px - mu)
        px = px[d <= np.quantile(d, 0.9)] if len(px) > 50 else px
    inside = where[y0:y1, x0:x1]
    diff = lab[inside] - mu
    out = np.full(where.shape, np.inf)
    out[y0:y1, x0:x1][inside] = np.einsum("ij,jk,ik->i", diff, icov, diff)
    return out


def refine_with_colour(image: np.ndarray, labels: np.ndarray, lm: np.ndarray, *, forehead_max: float = 1.0,
                       core_margin: float = 0.1, skin_threshold: float = 50.0, reach: float = 0.02) -> np.ndarray:
    """Adjust the skin of a landmark label map to the photo's skin colour (see the module docstring).

    Args:
        image: float32 (H, W, 3) RGB in [0, 1] (uint8 accepted).
        labels: int64 (H, W) label map from :func:`labels_from_landmarks`.
        lm: (478, 2) pixel landmarks of the same face.

    Returns:
        A new int64 (H, W) label map: skin added where the colour matches in the outer zone, skin and
        nose outside the refined face turned to background. Eyes, brows, lips, mouth are unchanged.
    """
    image = np.asarray(image)
    if image.dtype == np.uint8:
        image = image.astype(np.float32) / 255.0
    h, w = labels.shape
    _, face_len = face_axes(lm)
    parts = np.isin(labels, [LABEL[n] for n in ("l_brow", "r_brow", "l_eye", "r_eye", "u_lip", "l_lip", "mouth")])
    face = np.isin(labels, [LABEL["skin"], LABEL["nose"]])
    zone = np.zeros((h, w), np.uint8)
    _fill(zone, skin_polygon(lm, forehead_max), 1)
    zone = _dilate(zone, reach * face_len)
    oval = np.zeros((h, w), np.uint8)
    _fill(oval, skin_polygon(lm, 0.0), 1)
    core = _erode(oval, core_margin * face_len)
    sample = _erode(oval, 0.08 * face_len) & ~_dilate(parts, 0.04 * face_len)
    if sample.sum() < 50:  # face too small to model its colour: keep the geometry
        return labels
    skin = _skin_distance(image, sample, zone) < skin_threshold
    keep = ((zone & skin) | (core & face) | parts).astype(np.uint8)
    keep = cv2.morphologyEx(keep, cv2.MORPH_OPEN, _disk(0.01 * face_len))
    keep = cv2.morphologyEx(keep, cv2.MORPH_CLOSE, _disk(0.02 * face_len))
    _, comp = cv2.connectedComponents(keep)
    tip = np.clip(np.round(lm[4]).astype(int), 0, [w - 1, h - 1])
    if comp[tip[1], tip[0]]:
        keep = (comp == comp[tip[1], tip[0]]).astype(np.uint8)
    keep = keep.astype(bool)
    out = labels.copy()
    out[keep & np.isin(labels, [LABEL["background"], LABEL["neck"]])] = LABEL["skin"]
    out[~keep & face] = LABEL["background"]
    return out


class LandmarkParser:
    """Offline parser: ``parse(image) -> (H, W) int64`` BiSeNet-order label map of every face found
    (up to four; where faces overlap the larger one wins), or of the largest only with ``largest_face``.

    No external weights: the face mesh comes from the mediapipe wheel. Raises
    :class:`~blendfix.errors.NoFaceError` naming ``source`` when no face is found.
    """

    name = "landmarks"
    #: classes this parser can produce (others never appear in its maps)
    classes = ("background", "skin", "l_brow", "r_brow", "l_eye", "r_eye", "nose", "mouth", "u_lip", "l_lip",
               "neck")

    def __init__(self, forehead: float = 0.6, eye_margin: float = 0.0, neck: bool = True, refine: bool = True,
                 skin_threshold: float = 50.0, largest_face: bool = False) -> None:
        if not 0.0 <= forehead <= 2.0:
            raise ValueError(f"forehead must be in [0, 2], got {forehead}")
        if not 0.0 <= eye_margin <= 1.0:
            raise ValueError(f"eye_margin must be in [0, 1], got {eye_margin}")
        if skin_threshold <= 0:
            raise ValueError(f"skin_threshold must be positive, got {skin_threshold}")
        self.forehead, self.eye_margin, self.neck = forehead, eye_margin, neck
        self.refine, self.skin_threshold, self.largest_face = refine, skin_threshold, largest_face

    def parse(self, image: np.ndarray, source: str | os.PathLike | None = None) -> np.ndarray:
        """(H, W, 3) float RGB in [0, 1] (or uint8) -> (H, W) int64 label map (BiSeNet order)."""
        faces = detect_all_landmarks(image, source) or [detect_landmarks(image, source)]  # none: NoFaceError
        labels = None
        for lm in reversed(faces[:1] if self.largest_face else faces):  # the largest last: it wins overlaps
            one = labels_from_landmarks(lm, image.shape[:2], forehead=self.forehead, eye_margin=self.eye_margin,
                                        neck=self.neck)
            if self.refine:
                one = refine_with_colour(image, one, lm, skin_threshold=self.skin_threshold)
            labels = one if labels is None else np.where(one > 0, one, labels)
        return labels
