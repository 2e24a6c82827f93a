"""The synthetic editor: realistic (I', T, M) triples from any face photo, with no GAN checkpoint.

It is a stand-in for pSp inversion + StyleGAN2 latent editing + Diff-CAM, named "synthetic"
everywhere (``EditResult.info["editor"] == "synthetic"``): it imitates what those networks do to
a photo so that the rest of the pipeline sees the artifacts the method removes.

* I' (:mod:`.degrade`): the photo re-rendered with inversion losses: smoothed detail, generator
  grain, colour/tone drift, small geometric drift, re-imagined background, lost accessories.
* T (:mod:`.attribute_ops`): I' with a landmark-guided attribute change, plus a little
  entanglement (a GAN edit also moves other things slightly).
* M (:mod:`.cam`): a coarse, blobby CAM-like map of the edit, imperfect by design.

Larger photos are re-rendered at ``render_size`` (longer side) and upsampled, as a generator
working below the photo's resolution would. Deterministic for a seed: I' depends on the seed
only (shared by the four attributes, as G(w) is), T and M on ``(seed, attribute)``.
"""

from __future__ import annotations

import dataclasses
import zlib
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from ..attributes import canonical
from ..config import from_dict, to_dict
from .attribute_ops import apply_attribute
from .base import EditResult
from .cam import UPSAMPLE_MODES, cam_like_mask
from .degrade import colour_drift, geometric_drift, rerender
from .face_geometry import FaceGeometry

_STRENGTHS = ("detail", "texture", "colour", "geometry", "background", "strength", "entangle",
              "cam_spill", "cam_holes", "cam_shift")


@dataclass
class SyntheticConfig:
    """Strengths of each simulated effect (0 = off, 1 = typical); all are ``>= 0``."""

    render_size: int = 512      # the simulated generator's resolution (longer side); larger inputs are upsampled
    detail: float = 1.0         # fine detail and texture smoothed away
    texture: float = 1.0        # generator grain added
    colour: float = 1.0         # colour and tone drift
    geometry: float = 1.0       # small geometric drift (similarity + smooth warp)
    background: float = 1.0     # background re-imagined, hair/accessories smoothed
    strength: float = 1.0       # attribute edit strength (1 ~ StyleGAN2 alpha 20)
    entangle: float = 0.3       # extra global change between I' and T (entangled latent edit)
    cam_grid: int = 8           # CAM grid (Diff-CAM: ResNet layer4 on 256² = 8x8)
    cam_spill: float = 1.0      # blobs spilling onto neighbouring areas
    cam_holes: float = 1.0      # parts of the edit missed
    cam_shift: float = 1.0      # map misplaced by up to half a cell
    cam_upsample: str = "bilinear"  # "bilinear", or "nearest256" (EOGI: bilinear to 256 then nearest)
    fold: bool = False          # EOGI folded map: m -> 1 - m where m > 0.5, so M <= 0.5

    def __post_init__(self) -> None:
        for name in _STRENGTHS:
            if not float(getattr(self, name)) >= 0:
                raise ValueError(f"SyntheticConfig.{name} must be >= 0; got {getattr(self, name)}")
        if self.render_size < 64:
            raise ValueError(f"SyntheticConfig.render_size must be >= 64; got {self.render_size}")
        if self.cam_grid < 2:
            raise ValueError(f"SyntheticConfig.cam_grid must be >= 2; got {self.cam_grid}")
        if self.cam_upsample not in UPSAMPLE_MODES:
            raise ValueError(f"SyntheticConfig.cam_upsample must be one of {UPSAMPLE_MODES}; got {self.cam_upsample!r}")


#: how the truth's weight map comes from M (recorded in every result's ``info``)
TRUTH_RULE = "w = blur(smoothstep(0.1, 0.5, M), sigma = 1.5% of the side); truth = I + w * (edit(I) - I)"


def truth_weight(mask: np.ndarray, low: float = 0.1, high: float = 0.5, sigma_frac: float = 0.015) -> np.ndarray:
    """Where the truth carries the edit: ``float32 (H, W)`` in ``[0, 1]`` from the soft mask ``M``.

    The edit is kept fully where ``M >= high`` (F visibly carries it), dropped where ``M <= low``
    (the CAM missed it, F does not show it: never invented), with a smoothstep between; a Gaussian
    blur of ``sigma_frac`` times the shorter side then removes any step, so the truth has no seam.
    """
    m = np.asarray(mask, np.float32)
    if m.ndim != 2:
        raise ValueError(f"truth_weight: mask must be (H, W); got {m.shape}")
    x = np.clip((m - low) / (high - low), 0.0, 1.0)
    w = x * x * (3.0 - 2.0 * x)
    sigma = max(0.5, sigma_frac * min(m.shape))
    return np.clip(cv2.GaussianBlur(w, (0, 0), sigma), 0.0, 1.0).astype(np.float32)


def _rng(seed: int, tag: str) -> np.random.Generator:
    """A Generator from ``(seed, tag)``; stable across processes (crc32, not ``hash``)."""
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, zlib.crc32(tag.encode())])


def _as_image(image: np.ndarray) -> np.ndarray:
    arr = np.asarray(image)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"image must be (H, W, 3) RGB; got shape {arr.shape}")
    if min(arr.shape[:2]) < 32:
        raise ValueError(f"image {arr.shape[1]}x{arr.shape[0]} is too small; the minimum side is 32 pixels")
    if arr.dtype == np.uint8:
        return arr.astype(np.float32) / 255.0
    arr = arr.astype(np.float32)
    if not np.isfinite(arr).all() or arr.min() < -1e-3 or arr.max() > 1 + 1e-3:
        raise ValueError("image must be float in [0, 1] (or uint8)")
    return np.clip(arr, 0.0, 1.0)


def detect(image: np.ndarray, source: str | None = None) -> np.ndarray:
    """Face-mesh landmarks ``(478, 2)`` pixel (x, y); raises NoFaceError naming ``source``."""
    from ..parsing.landmarks import detect_landmarks

    return detect_landmarks(image, source=source)


def face_geometry(landmarks: np.ndarray, size: tuple[int, int]) -> FaceGeometry:
    """:class:`FaceGeometry` of an image of ``size`` = ``(H, W)`` from its face-mesh landmarks."""
    from ..parsing.landmarks import LANDMARK_REGIONS

    return FaceGeometry.from_landmarks(landmarks, LANDMARK_REGIONS, size)


class SyntheticEditor:
    """Offline editor implementing :class:`blendfix.edit.base.Editor` without any checkpoint.

    ``SyntheticEditor(config=None, **overrides)``: overrides are :class:`SyntheticConfig` fields
    (``SyntheticEditor(strength=1.5, fold=True)``), type-checked.
    """

    name = "synthetic"

    def __init__(self, config: SyntheticConfig | None = None, **overrides: Any) -> None:
        base = config if config is not None else SyntheticConfig()
        if overrides:
            base = from_dict(SyntheticConfig, {**to_dict(base), **overrides}, "SyntheticEditor")
        self.config = base

    def edit(self, image: np.ndarray, attribute: str, *, seed: int = 0, landmarks: np.ndarray | None = None,
             source: str | None = None) -> EditResult:
        """Edit ``image`` (``(H, W, 3)`` float in ``[0, 1]`` or uint8) for ``attribute``.

        ``landmarks``: precomputed ``(478, 2)`` pixel (x, y) face-mesh points of ``image`` (skips
        detection). ``source`` names the image in a NoFaceError. Returns an :class:`EditResult`
        at the input size with ``info`` = editor, seed, attribute, config.
        """
        attr = canonical(attribute)
        img = _as_image(image)
        h, w = img.shape[:2]
        lm = detect(img, source) if landmarks is None else np.asarray(landmarks, np.float32)
        geo = face_geometry(lm, (h, w))
        cfg = self.config
        k = min(1.0, cfg.render_size / max(h, w))
        rh, rw = max(32, round(h * k)), max(32, round(w * k))
        work = img if (rh, rw) == (h, w) else cv2.resize(img, (rw, rh), interpolation=cv2.INTER_AREA)
        wgeo = geo.scaled(rw / w, rh / h, (rh, rw))
        inv_rng = _rng(seed, "inversion")
        inverted = rerender(work, wgeo.head_mask(), wgeo.face_mask(), inv_rng, detail=cfg.detail,
                            texture=cfg.texture, colour=cfg.colour, geometry=cfg.geometry,
                            background=cfg.background)
        edit_rng = _rng(seed, attr)
        edited, region = apply_attribute(attr, inverted, wgeo, edit_rng, cfg.strength)
        if cfg.entangle > 0:
            edited = colour_drift(geometric_drift(edited, edit_rng, 0.3 * cfg.entangle), edit_rng, cfg.entangle)
        mask = cam_like_mask(region, edit_rng, size=(h, w), grid=cfg.cam_grid, spill=cfg.cam_spill,
                             holes=cfg.cam_holes, shift=cfg.cam_shift, upsample=cfg.cam_upsample, fold=cfg.fold)
        # the truth: the same change (fresh generator, same draws) applied to I itself, no entanglement
        true_edit, _ = apply_attribute(attr, work, wgeo, _rng(seed, attr), cfg.strength)
        delta = true_edit - work
        if (rh, rw) != (h, w):
            inverted = cv2.resize(inverted, (w, h), interpolation=cv2.INTER_CUBIC)
            edited = cv2.resize(edited, (w, h), interpolation=cv2.INTER_CUBIC)
            delta = cv2.resize(delta, (w, h), interpolation=cv2.INTER_CUBIC)
        truth = np.clip(img + truth_weight(mask)[..., None] * delta, 0, 1).astype(np.float32)
        info = {"editor": "synthetic", "seed": int(seed), "attribute": attr, "config": dataclasses.asdict(cfg),
                "render_size": [rh, rw], "truth_rule": TRUTH_RULE}
        return EditResult(original=img, inverted=np.clip(inverted, 0, 1).astype(np.float32),
                          edited=np.clip(edited, 0, 1).astype(np.float32), mask=mask, attribute=attr, info=info,
                          truth=truth, kind=f"synthetic:{attr}")
