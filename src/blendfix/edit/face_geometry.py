"""Face geometry for the synthetic editor: named points and soft region masks from landmarks.

Built from MediaPipe face-mesh landmarks (``(478, 2)`` pixel ``(x, y)``) and the region index
lists of :mod:`blendfix.parsing.landmarks` (face_oval, brows, eyes, lips, nose). Paired features
(brows, eyes, mouth corners) are ordered by image x (left of the picture first), so nothing
depends on which side the mesh calls "left".
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

REQUIRED_REGIONS = ("face_oval", "left_brow", "right_brow", "left_eye", "right_eye", "lips_outer",
                    "lips_inner", "nose")


def gaussian(image: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of ``sigma`` pixels; wide blurs run on a downsampled copy (same result to the eye, faster)."""
    if sigma <= 3.0:
        return cv2.GaussianBlur(image, (0, 0), sigma)
    h, w = image.shape[:2]
    f = sigma / 2.0
    sw, sh = max(2, round(w / f)), max(2, round(h / f))
    small = cv2.resize(image, (sw, sh), interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (0, 0), float(np.sqrt(max(sigma**2 / f**2 - 0.25, 0.25))))
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def _hull(points: np.ndarray) -> np.ndarray:
    return cv2.convexHull(np.asarray(points, np.float32)).reshape(-1, 2)


@dataclass
class FaceGeometry:
    """Polygons (``float32 (N, 2)`` pixel x, y) of one face, and the image size ``(H, W)``."""

    size: tuple[int, int]
    oval: np.ndarray
    brows: tuple[np.ndarray, np.ndarray]
    eyes: tuple[np.ndarray, np.ndarray]
    lips_outer: np.ndarray
    lips_inner: np.ndarray
    nose: np.ndarray

    @classmethod
    def from_landmarks(cls, landmarks: np.ndarray, regions: dict[str, list[int]],
                       size: tuple[int, int]) -> FaceGeometry:
        """From ``(N, 2)`` landmarks and region index lists; ``size`` = image ``(H, W)``."""
        lm = np.asarray(landmarks, np.float32)
        if lm.ndim != 2 or lm.shape[1] != 2:
            raise ValueError(f"landmarks must be (N, 2) pixel (x, y); got {lm.shape}")
        missing = [r for r in REQUIRED_REGIONS if r not in regions]
        if missing:
            raise ValueError(f"landmark regions missing: {', '.join(missing)}")
        if not np.isfinite(lm).all():
            raise ValueError("landmarks contain NaN or infinite values")
        pick = {name: lm[np.asarray(regions[name])] for name in REQUIRED_REGIONS}
        brows = sorted((pick["left_brow"], pick["right_brow"]), key=lambda p: float(p[:, 0].mean()))
        eyes = sorted((pick["left_eye"], pick["right_eye"]), key=lambda p: float(p[:, 0].mean()))
        return cls(size=(int(size[0]), int(size[1])), oval=_hull(pick["face_oval"]),
                   brows=(brows[0], brows[1]), eyes=(eyes[0], eyes[1]), lips_outer=pick["lips_outer"],
                   lips_inner=pick["lips_inner"], nose=pick["nose"])

    def scaled(self, sx: float, sy: float, size: tuple[int, int]) -> FaceGeometry:
        """The same face in an image resized by ``(sx, sy)`` to ``size`` = ``(H, W)``."""
        f = np.float32([sx, sy])
        return FaceGeometry(size=size, oval=self.oval * f, brows=(self.brows[0] * f, self.brows[1] * f),
                            eyes=(self.eyes[0] * f, self.eyes[1] * f), lips_outer=self.lips_outer * f,
                            lips_inner=self.lips_inner * f, nose=self.nose * f)

    # --- named points -------------------------------------------------------------------------
    @property
    def centre(self) -> np.ndarray:
        return self.oval.mean(axis=0)

    @property
    def face_width(self) -> float:
        return float(np.ptp(self.oval[:, 0]))

    @property
    def face_height(self) -> float:
        return float(np.ptp(self.oval[:, 1]))

    @property
    def mouth_corners(self) -> np.ndarray:
        """``(2, 2)``: the left-most and right-most outer-lip points."""
        lo = self.lips_outer
        return np.stack([lo[np.argmin(lo[:, 0])], lo[np.argmax(lo[:, 0])]])

    @property
    def mouth_width(self) -> float:
        c = self.mouth_corners
        return float(np.linalg.norm(c[1] - c[0]))

    @property
    def mouth_centre(self) -> np.ndarray:
        return self.lips_outer.mean(axis=0)

    @property
    def eye_centres(self) -> np.ndarray:
        return np.stack([e.mean(axis=0) for e in self.eyes])

    @property
    def eye_outer_corners(self) -> np.ndarray:
        """``(2, 2)``: the picture-left eye's left-most point and the right eye's right-most point."""
        return np.stack([self.eyes[0][np.argmin(self.eyes[0][:, 0])], self.eyes[1][np.argmax(self.eyes[1][:, 0])]])

    @property
    def nose_bottom(self) -> np.ndarray:
        return self.nose[np.argmax(self.nose[:, 1])]

    @property
    def nose_wings(self) -> np.ndarray:
        """``(2, 2)``: the left-most and right-most nose points."""
        n = self.nose
        return np.stack([n[np.argmin(n[:, 0])], n[np.argmax(n[:, 0])]])

    @property
    def chin(self) -> np.ndarray:
        return self.oval[np.argmax(self.oval[:, 1])]

    @property
    def forehead_top(self) -> float:
        return float(self.oval[:, 1].min())

    # --- soft masks ---------------------------------------------------------------------------
    def fill(self, polygons: list[np.ndarray], feather: float = 0.0) -> np.ndarray:
        """Filled polygons as ``float32 (H, W)`` in ``[0, 1]``, blurred by ``feather`` pixels (sigma)."""
        m = np.zeros(self.size, np.float32)
        for p in polygons:
            cv2.fillPoly(m, [np.round(p).astype(np.int32).reshape(-1, 1, 2)], 1.0, lineType=cv2.LINE_AA)
        if feather > 0:
            m = gaussian(m, feather)
        return np.clip(m, 0.0, 1.0)

    def face_mask(self, feather_frac: float = 0.03) -> np.ndarray:
        """The face oval, feathered by ``feather_frac`` of the face width."""
        return self.fill([self.oval], feather_frac * self.face_width)

    def head_mask(self) -> np.ndarray:
        """Face, hair and ears: the oval widened and raised, feathered; ``float32 (H, W)``."""
        c = self.centre
        fh = self.face_height
        grown = (self.oval - c) * np.float32([1.6, 1.3]) + c - np.float32([0, 0.14 * fh])
        return self.fill([self.oval, grown], 0.08 * self.face_width)


def scale_polygon(points: np.ndarray, sx: float, sy: float, centre: np.ndarray | None = None) -> np.ndarray:
    """Scale ``(N, 2)`` points about ``centre`` (default their mean)."""
    c = points.mean(axis=0) if centre is None else centre
    return (points - c) * np.float32([sx, sy]) + c


def rbf_warp(image: np.ndarray, src: np.ndarray, dst: np.ndarray, sigmas: np.ndarray) -> np.ndarray:
    """Move image content near each ``src[k]`` to ``dst[k]`` with a Gaussian-weighted smooth warp.

    ``src``, ``dst``: ``(K, 2)`` pixel (x, y); ``sigmas``: ``(K,)`` radii of influence in pixels.
    Backward mapping evaluated on a quarter-resolution grid, then upsampled (smooth field).
    Returns an array of ``image``'s shape; small moves (under ~sigma/2) keep the warp invertible.
    """
    h, w = image.shape[:2]
    step = 4
    gh, gw = (h + step - 1) // step, (w + step - 1) // step
    ys, xs = np.mgrid[0:gh, 0:gw].astype(np.float32) * step
    dx = np.zeros((gh, gw), np.float32)
    dy = np.zeros((gh, gw), np.float32)
    for (sx_, sy_), (tx, ty), sig in zip(src, dst, sigmas, strict=True):
        wgt = np.exp(-((xs - tx) ** 2 + (ys - ty) ** 2) / (2.0 * float(sig) ** 2))
        dx += wgt * (sx_ - tx)
        dy += wgt * (sy_ - ty)
    dx = cv2.resize(dx, (w, h), interpolation=cv2.INTER_LINEAR)
    dy = cv2.resize(dy, (w, h), interpolation=cv2.INTER_LINEAR)
    gy, gx = np.mgrid[0:h, 0:w].astype(np.float32)
    return cv2.remap(image, gx + dx, gy + dy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
