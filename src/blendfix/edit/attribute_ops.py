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

import cv2
import numpy as np

from .face_geometry import FaceGeometry, gaussian, rbf_warp, scale_polygon, strands

Pair = tuple[np.ndarray, np.ndarray]
Op = Callable[[np.ndarray, FaceGeometry, np.random.Generator, float], Pair]


def _lum(img: np.ndarray) -> np.ndarray:
    return img @ np.float32([0.299, 0.587, 0.114])


def _dark_colour(img: np.ndarray, mask: np.ndarray, q: float = 15.0) -> np.ndarray:
    """Mean colour of the darkest ``q`` % of pixels where ``mask > 0.5``; ``(3,)``."""
    sel = img[mask > 0.5]
    if len(sel) == 0:
        return np.float32([0.2, 0.15, 0.12])
    lum = _lum(sel)
    return sel[lum <= np.percentile(lum, q)].mean(axis=0).astype(np.float32)


def _lerp(a: np.ndarray, b: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    return a + (b - a) * alpha[..., None]


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
        colour = _dark_colour(img, orig) * np.float32(rng.uniform(0.7, 0.85))
        thick = scale_polygon(brow, 1.0 + 0.12 * s, 1.0 + 0.9 * s) - np.float32([0, 0.2 * th * s])
        dens = g.fill([thick], 0.15 * th)
        # brow hairs point away from the nose and slightly up
        angle = (-20.0 if side == 1 else 200.0) + rng.normal(0, 6)
        hair = strands((h, w), rng, angle, 0.12 * length, density=0.10)
        hair = np.maximum(hair, strands((h, w), rng, angle - 25.0, 0.08 * length, density=0.06))
        alpha = np.clip(dens * (0.45 + 0.55 * hair) * min(1.0, 0.9 * s), 0.0, 1.0)
        tint = colour[None, None, :] * (0.8 + 0.45 * hair[..., None])
        out = _lerp(out, tint, alpha)
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
    clump = np.clip(0.8 + 0.3 * _field((h, w), 12, rng), 0.3, 1.2)
    cx = float(g.centre[0])
    side = np.clip((np.arange(w, dtype=np.float32)[None, :] - cx) / (0.1 * fw) + 0.5, 0.0, 1.0)

    def layer(length: float, density: float) -> np.ndarray:
        left = strands((h, w), rng, 90 + 25 + rng.normal(0, 5), length, density=density)
        right = strands((h, w), rng, 90 - 25 + rng.normal(0, 5), length, density=density)
        return gaussian(left * (1 - side) + right * side, 0.5)

    dark = layer(0.045 * fh, 0.03)   # strands darker than the beard mass, thinning out at the edges
    light = layer(0.03 * fh, 0.015)  # lit strands on top
    base = 0.35 * _dark_colour(img, g.fill(list(g.brows), 0.5)) + 0.65 * np.float32([0.11, 0.085, 0.07])
    base = base * np.float32(rng.uniform(0.8, 1.15))
    mass = np.clip(dens * clump * min(1.0, 0.9 * s), 0.0, 1.0)
    alpha = np.clip(mass * (0.55 + 0.45 * dark) + 0.35 * np.clip(4 * dens, 0, 1) * dark * min(1.0, s), 0.0, 1.0)
    tint = base[None, None, :] * (0.75 - 0.3 * dark[..., None] + 1.6 * light[..., None])
    out = _lerp(img, tint, alpha)
    region = gaussian(np.maximum(dens, 0.7 * lips), 0.03 * fw)
    return np.clip(out, 0, 1), region


# --- aging -----------------------------------------------------------------------------------
def _field(shape: tuple[int, int], cells: int, rng: np.random.Generator) -> np.ndarray:
    grid = rng.normal(0.0, 1.0, (cells, cells)).astype(np.float32)
    return cv2.resize(grid, (shape[1], shape[0]), interpolation=cv2.INTER_CUBIC)


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
    darker = np.clip((0.75 - _lum(img) / max(float(_lum(skin[None])[0]), 1e-3)) / 0.2, 0, 1)
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
    blur = gaussian(out, 0.02 * fw)
    out = out + (0.45 * s * face)[..., None] * (out - blur)
    noise = rng.normal(0, 1, (h, w)).astype(np.float32)
    rough = gaussian(noise, 1.5) - gaussian(noise, 4.0)
    out = out * (1.0 + (0.06 * s * face * rough))[..., None]
    grey = _lum(out)[..., None]
    out = _lerp(out, grey + (out - grey) * (1 - 0.2 * s) + np.float32([0.01, 0.004, -0.012]) * s, face)
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
    hl = _lum(out)
    silver = np.clip(0.5 + 0.55 * (hl - hl[hair > 0.5].mean() if (hair > 0.5).any() else 0), 0.3, 0.9)
    silver = np.repeat(silver[..., None], 3, axis=2) * np.float32([0.98, 0.98, 1.0])
    out = _lerp(out, silver, np.clip(0.75 * s, 0, 1) * hair)
    region = np.clip(np.maximum(face, 0.8 * hair), 0, 1)
    return np.clip(out, 0, 1).astype(np.float32), region


# --- smile -----------------------------------------------------------------------------------
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


def _teeth(g: FaceGeometry, c0: np.ndarray, c1: np.ndarray, up: float, down: float,
           rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Upper teeth on a curved arch inside the opening, dark cavity below; ``(colour, alpha)``."""
    h, w = g.size
    alpha = g.fill([_lens(c0, c1, up, down)], 0.7)
    xs = np.arange(w, dtype=np.float32)[None, :]
    ys = np.arange(h, dtype=np.float32)[:, None]
    t = np.clip((xs - c0[0]) / max(c1[0] - c0[0], 1.0), 0, 1)
    upper, lower = _lens_edges(t, c0, c1, up, down)
    v = np.clip((ys - upper) / np.maximum(lower - upper, 1.0), 0, 1)  # 0 at the upper lip, 1 at the lower
    arch = np.arcsin(np.clip(2 * t - 1, -1, 1)) * (2 / np.pi) * 5.0  # ~5 teeth per side, narrower outwards
    seams = np.exp(-((arch - np.round(arch)) ** 2) / (2 * 0.05**2))
    row_end = 0.62 + 0.06 * np.cos(np.pi * (arch - np.round(arch)))  # rounded incisal edges
    upper_teeth = (v < row_end).astype(np.float32)
    shade = 0.35 + 0.65 * np.clip(np.sin(np.pi * t), 0, 1) ** 0.7  # darker towards the corners
    gum = 1.0 - 0.35 * np.exp(-v / 0.08)
    value = upper_teeth * shade * gum * (1.0 - 0.18 * seams) + (1 - upper_teeth) * 0.25 * shade
    colour = np.float32([0.92, 0.88, 0.80]) * np.float32(rng.uniform(0.88, 1.0))
    cavity = np.float32([0.45, 0.18, 0.16])
    teeth = value[..., None] * (upper_teeth[..., None] * colour + (1 - upper_teeth[..., None]) * cavity)
    return gaussian(np.clip(teeth, 0, 1), 0.8), alpha


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
    cheeks = np.stack([corners[0] + np.float32([-0.15 * mw, -0.45 * mw]),
                       corners[1] + np.float32([0.15 * mw, -0.45 * mw])])
    src = np.concatenate([corners, [lip_bot, inner_bot], cheeks])
    dst = src + np.concatenate([out_up, np.float32([[0, 0.10 * mw], [0, 0.09 * mw]]) * s,
                                np.float32([[-0.02 * mw, -0.06 * mw], [0.02 * mw, -0.06 * mw]]) * s])
    sig = np.float32([0.28, 0.28, 0.3, 0.25, 0.4, 0.4]) * mw
    out = rbf_warp(img, src, dst, sig)
    c0, c1 = dst[0] + np.float32([0.08 * mw, 0.01 * mw]), dst[1] + np.float32([-0.08 * mw, 0.01 * mw])
    mid_line = (inner_top[1] + inner_bot[1]) / 2
    base_mid = (c0[1] + c1[1]) / 2
    up = max(base_mid - (mid_line - 0.02 * mw * s), 0.015 * mw)
    down = max(mid_line + 0.09 * mw * s - base_mid, 0.04 * mw)
    teeth, alpha = _teeth(g, c0, c1, up, down, rng)
    out = _lerp(out, teeth, alpha * min(1.0, s))
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
