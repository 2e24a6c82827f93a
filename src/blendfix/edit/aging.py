"""The synthetic "aging" edit: wrinkles, older skin, age spots, slight sag and greyed hair."""

from __future__ import annotations

import cv2
import numpy as np

from .face_geometry import FaceGeometry, gaussian, rbf_warp, scale_polygon
from .paint import Pair, lerp, luminance


def _wrinkle_canvas(g: FaceGeometry, rng: np.random.Generator) -> np.ndarray:
    """Wrinkle lines drawn from landmarks: ``float32 (H, W)`` in ``[0, 1]``."""
    h, w = g.size
    fw, fh = g.face_width, g.face_height
    scale = 8  # sub-pixel precision for cv2 drawing
    canvas = np.zeros((h, w), np.uint8)
    thick = max(1, int(round(fh / 260)))

    def line(points: np.ndarray) -> None:
        pts = np.round(np.asarray(points) * scale).astype(np.int32).reshape(-1, 1, 2)
        cv2.polylines(canvas, [pts], False, 255, thick, cv2.LINE_AA, shift=3)

    brow_top = float(min(b[:, 1].min() for b in g.brows))
    cx = float(g.centre[0])
    for frac in (0.22, 0.42, 0.62):
        y0 = brow_top - frac * (brow_top - g.forehead_top)
        xs = np.linspace(cx - 0.28 * fw, cx + 0.28 * fw, 24) + rng.normal(0, 0.01 * fw)
        ys = y0 + 0.006 * fh * np.sin(xs / (0.12 * fw) + rng.uniform(0, 6.3)) + rng.normal(0, 0.003 * fh)
        line(np.stack([xs, ys], 1))
    for k, corner in enumerate(g.eye_outer_corners):
        sign = -1.0 if k == 0 else 1.0
        for ang in (-28.0, 0.0, 26.0):
            t = np.deg2rad(ang + rng.normal(0, 4))
            start = corner + np.float32([sign * 0.02 * fw, 0])
            end = start + 0.07 * fw * np.float32([sign * np.cos(t), np.sin(t)])
            line(np.stack([start, end]))
        eye = g.eyes[k]
        ec, ew = eye.mean(axis=0), float(np.ptp(eye[:, 0]))
        arc = np.stack([ec[0] + np.linspace(-0.45, 0.45, 12) * ew,
                        ec[1] + 0.04 * fh + 0.02 * fh * np.cos(np.linspace(-1.2, 1.2, 12))], 1)
        line(arc)
    for k in range(2):
        sign = -1.0 if k == 0 else 1.0
        wing, corner = g.nose_wings[k], g.mouth_corners[k]
        mid = (wing + corner) / 2 + np.float32([sign * 0.05 * fw, 0])
        end = corner + np.float32([sign * 0.03 * fw, 0.03 * fh])
        t = np.linspace(0, 1, 16)[:, None]
        line((1 - t) ** 2 * wing + 2 * t * (1 - t) * mid + t**2 * end)
        line(np.stack([corner + np.float32([sign * 0.01 * fw, 0.01 * fh]),
                       corner + np.float32([sign * 0.015 * fw, 0.09 * fh])]))
    out = canvas.astype(np.float32) / 255.0
    return gaussian(out, max(0.6, fh / 400))


def _hair_and_skin(img: np.ndarray, g: FaceGeometry, head: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Soft ``(hair, skin)`` maps in the head zone from colour distances to background and skin."""
    small = cv2.resize(img, (64, 64), interpolation=cv2.INTER_AREA)
    border = np.concatenate([small[:4].reshape(-1, 3), small[:, :4].reshape(-1, 3), small[:, -4:].reshape(-1, 3)])
    bg = np.median(border, axis=0)
    core = g.fill([scale_polygon(g.oval, 0.7, 0.6)], 0.0) - g.fill([*g.eyes, *g.brows, g.lips_outer], 0.0)
    skin_px = img[core > 0.5]
    skin = np.median(skin_px, axis=0) if len(skin_px) else np.float32([0.8, 0.6, 0.5])
    d_bg = np.linalg.norm(img - bg, axis=2)
    d_skin = np.linalg.norm(img - skin, axis=2)
    skin_like = np.clip(1.0 - (d_skin - 0.12) / 0.15, 0, 1)
    hair_like = np.clip((d_bg - 0.08) / 0.12, 0, 1) * (1.0 - skin_like)
    # outside the raised oval anything hair-like; on the forehead band only what is darker than skin
    bottom = float(g.oval[:, 1].max())
    raised = g.oval.copy()
    raised[:, 1] = bottom - (bottom - raised[:, 1]) * 1.18
    raised_m = g.fill([raised], 0.0)
    protected = g.fill([scale_polygon(g.oval, 1.0, 0.85) + np.float32([0, 0.075 * g.face_height])], 0.0)
    darker = np.clip((0.75 - luminance(img) / max(float(luminance(skin[None])[0]), 1e-3)) / 0.2, 0, 1)
    zone = np.clip(head - raised_m, 0.0, 1.0) + np.clip(raised_m - protected, 0.0, 1.0) * darker
    sigma = 0.006 * g.face_width + 0.5
    k = max(3, int(0.03 * g.face_width) | 1)
    # opening removes thin outlines (jaw against the background) that are neither skin nor background
    hair = cv2.morphologyEx((hair_like * zone).astype(np.float32), cv2.MORPH_OPEN, np.ones((k, k), np.uint8))
    ys = np.arange(img.shape[0], dtype=np.float32)[:, None]
    eye_y, chin_y = float(g.eye_centres[:, 1].mean()), float(g.chin[1])
    hair = hair * np.clip(1.0 - 0.7 * (ys - eye_y) / max(chin_y - eye_y, 1.0), 0.3, 1.0)
    hair = gaussian(hair, sigma)
    skin_area = np.maximum(g.face_mask(0.05), head * skin_like) * (1.0 - hair)
    return hair, gaussian(skin_area, sigma)


def aging(img: np.ndarray, g: FaceGeometry, rng: np.random.Generator, s: float) -> Pair:
    """Older skin and greyer hair; region = face and hair."""
    h, w = img.shape[:2]
    fw, fh = g.face_width, g.face_height
    head = g.head_mask()
    hair, face = _hair_and_skin(img, g, head)
    # sag: jowls and mouth corners drop a little
    jaw = g.oval[g.oval[:, 1] > g.mouth_centre[1]]
    src = np.concatenate([jaw, g.mouth_corners])
    out = rbf_warp(img, src, src + np.float32([0, 0.012 * fh * s]), np.full(len(src), 0.08 * fh))
    # skin: local contrast, roughness, desaturation, yellowing
    detail = np.clip(out - gaussian(out, 0.012 * fw), -0.04, 0.04)  # clipped: no halos at the face contour
    out = out + (0.6 * s * face)[..., None] * detail
    noise = rng.normal(0, 1, (h, w)).astype(np.float32)
    rough = gaussian(noise, 1.5) - gaussian(noise, 4.0)
    out = out * (1.0 + (0.06 * s * face * rough))[..., None]
    grey = luminance(out)[..., None]
    out = lerp(out, grey + (out - grey) * (1 - 0.2 * s) + np.float32([0.01, 0.004, -0.012]) * s, face)
    # wrinkles with a light rim above each line (relief)
    wr = _wrinkle_canvas(g, rng) * face
    rim = np.roll(wr, -max(1, int(fh / 250)), axis=0)
    out = out * (1.0 - 0.22 * s * wr)[..., None] + (0.05 * s * np.clip(rim - wr, 0, 1))[..., None]
    # age spots
    spots = np.zeros((h, w), np.float32)
    for _ in range(int(rng.integers(4, 9))):
        p = g.centre + rng.normal(0, 1, 2) * np.float32([0.22 * fw, 0.25 * fh])
        cv2.circle(spots, (int(p[0]), int(p[1])), max(1, int(rng.uniform(0.006, 0.014) * fw)), 1.0, -1)
    spots = gaussian(spots, 0.006 * fw + 0.5) * face
    out = out * (1.0 - 0.12 * s * spots[..., None] * np.float32([0.6, 0.9, 1.3]))
    # hair greying
    hl = luminance(out)
    silver = np.clip(0.5 + 0.55 * (hl - hl[hair > 0.5].mean() if (hair > 0.5).any() else 0), 0.3, 0.9)
    silver = np.repeat(silver[..., None], 3, axis=2) * np.float32([0.98, 0.98, 1.0])
    out = lerp(out, silver, np.clip(0.75 * s, 0, 1) * hair)
    region = np.clip(np.maximum(face, 0.8 * hair), 0, 1)
    return np.clip(out, 0, 1).astype(np.float32), region
