"""Inversion-like re-rendering: what a photo looks like after pSp/e4e inversion into StyleGAN2.

A GAN reconstruction I' = G(E(I)) is never the photo. Typical losses, each simulated here with a
strength (0 turns it off, 1 is a typical pSp-on-CelebA-HQ look):

* ``detail``: fine texture smoothed (pores, stubble, hair strands), edges kept — airbrushed skin;
  the encoder sees 256² so the re-rendering is rebuilt from a coarser image.
* ``texture``: the generator's own fine grain (noise inputs) instead of the photo's.
* ``colour``: global colour and tone drift (gain, gamma, saturation, contrast) plus a slow
  spatially varying cast.
* ``geometry``: small geometric drift: a similarity transform and a smooth random warp of a few
  pixels, so contours of I' do not lie on those of I (doubled contours once fused).
* ``background``: everything outside the head re-imagined: heavily smoothed, re-coloured, with
  invented blotches; hair and accessories beside the face partly lost.

Randomness comes only from the numpy Generator passed in, so results are reproducible.
"""

from __future__ import annotations

import cv2
import numpy as np

from .face_geometry import gaussian


def smooth_field(shape: tuple[int, int], cells: int, rng: np.random.Generator, channels: int = 1) -> np.ndarray:
    """A slowly varying random field: ``(H, W)`` or ``(H, W, channels)`` ``float32``, unit scale.

    Gaussian values on a ``cells``² grid upsampled bicubically (deterministic for the Generator).
    """
    h, w = shape
    grid = rng.normal(0.0, 1.0, (cells, cells, channels)).astype(np.float32)
    out = cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)
    if out.ndim == 2:
        out = out[..., None]
    return out[..., 0] if channels == 1 else out


def geometric_drift(image: np.ndarray, rng: np.random.Generator, strength: float = 1.0) -> np.ndarray:
    """Small similarity transform + smooth warp (about ``0.6 % * strength`` of the side in pixels)."""
    if strength <= 0:
        return image
    h, w = image.shape[:2]
    side = float(max(h, w))
    angle = rng.normal(0.0, 0.6) * strength
    scale = 1.0 + rng.normal(0.0, 0.008) * strength
    tx, ty = rng.normal(0.0, 0.004, 2) * side * strength
    affine = cv2.getRotationMatrix2D((w / 2, h / 2), angle, scale)
    affine[:, 2] += (tx, ty)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    inv = cv2.invertAffineTransform(affine)
    map_x = inv[0, 0] * xs + inv[0, 1] * ys + inv[0, 2]
    map_y = inv[1, 0] * xs + inv[1, 1] * ys + inv[1, 2]
    amp = 0.004 * side * strength
    map_x = map_x + amp * smooth_field((h, w), 5, rng)
    map_y = map_y + amp * smooth_field((h, w), 5, rng)
    return cv2.remap(image, map_x.astype(np.float32), map_y.astype(np.float32), cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_REFLECT)


def lose_detail(image: np.ndarray, strength: float = 1.0) -> np.ndarray:
    """Rebuild from a coarser image and re-sharpen edges (smooth surfaces, crisp contours); same shape."""
    if strength <= 0:
        return image
    h, w = image.shape[:2]
    # pSp sees 256² of a 1024² generator output: the loss scales with the rendering's size
    factor = 1.0 + 1.5 * strength * min(1.0, max(h, w) / 512.0)
    sh, sw = max(16, round(h / factor)), max(16, round(w / factor))
    small = cv2.resize(image, (sw, sh), interpolation=cv2.INTER_AREA)
    up = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
    # StyleGAN renders crisp edges on smooth surfaces: unsharp mask at the scale of the lost detail.
    blur = gaussian(up, 0.8 * factor)
    return np.clip(up + 0.5 * (up - blur), 0.0, 1.0)


def gan_grain(image: np.ndarray, rng: np.random.Generator, strength: float = 1.0) -> np.ndarray:
    """Add the generator's own fine grain: band-pass noise, stronger in textured areas."""
    if strength <= 0:
        return image
    h, w = image.shape[:2]
    noise = rng.normal(0.0, 1.0, (h, w)).astype(np.float32)
    band = gaussian(noise, 0.8) - gaussian(noise, 2.5)
    lum = image.mean(axis=2)
    local = np.sqrt(np.maximum(gaussian(lum * lum, 3) - gaussian(lum, 3) ** 2, 0))
    amp = (0.006 + 0.15 * local) * strength
    return np.clip(image + (amp * band)[..., None], 0.0, 1.0)


def colour_drift(image: np.ndarray, rng: np.random.Generator, strength: float = 1.0) -> np.ndarray:
    """Global tone/colour drift plus a slow colour cast; ``float32 (H, W, 3)`` in ``[0, 1]``."""
    if strength <= 0:
        return image
    s = strength
    gain = 1.0 + rng.normal(0.0, 0.035, 3) * s
    offset = rng.normal(0.0, 0.015, 3) * s
    bend = np.clip(rng.normal(0.0, 0.12, 3) * s, -0.5, 0.5).astype(np.float32)  # tone curve, like a gamma
    sat = 1.0 + rng.normal(-0.05, 0.08) * s
    contrast = 1.0 - abs(rng.normal(0.04, 0.03)) * s
    x = np.clip(image, 0.0, 1.0)
    x = x + bend * x * (1.0 - x)
    x = x * gain.astype(np.float32) + offset.astype(np.float32)
    grey = x.mean(axis=2, keepdims=True)
    x = grey + (x - grey) * sat
    x = x.mean() + (x - x.mean()) * contrast
    cast = smooth_field(image.shape[:2], 3, rng, channels=3) * (0.018 * s)
    return np.clip(x + cast, 0.0, 1.0).astype(np.float32)


def reimagine_background(image: np.ndarray, head: np.ndarray, face: np.ndarray, rng: np.random.Generator,
                         strength: float = 1.0) -> np.ndarray:
    """Outside the head: heavy smoothing, re-colouring, invented blotches; hair/ears: partly smoothed.

    ``head`` and ``face``: soft ``(H, W)`` weights in ``[0, 1]`` (1 inside). Accessories beside
    the face (earrings, hat brims, hands) fall in the smoothed zones and are mostly lost.
    """
    if strength <= 0:
        return image
    h, w = image.shape[:2]
    side = max(h, w)
    heavy = gaussian(image, side / 110.0 * strength + 0.5)
    tint = 1.0 + rng.normal(0.0, 0.05, 3) * strength
    lum_blotch = smooth_field((h, w), 6, rng)[..., None] * (0.05 * strength)
    hue_blotch = smooth_field((h, w), 4, rng, channels=3) * (0.015 * strength)
    bg = np.clip(heavy * tint * (1.0 + lum_blotch) + hue_blotch, 0.0, 1.0)
    medium = cv2.bilateralFilter(image, d=7, sigmaColor=0.1, sigmaSpace=side / 120.0 + 1)
    beside = np.clip(head - face, 0.0, 1.0)
    # beside the lower half of the face (ears, earrings, collars, hands) the generator invents more
    ys = np.arange(h, dtype=np.float32)[:, None]
    cy = float((face.sum(axis=1) * ys[:, 0]).sum() / max(float(face.sum()), 1e-6))
    lower = np.clip((ys - cy) / (0.1 * h), 0.0, 1.0) * beside * 0.7 * min(strength, 1.0)
    bgw = (1.0 - head)[..., None]
    hairw = ((beside * min(strength, 1.0)) - lower)[..., None]
    out = image * (1.0 - bgw - hairw - lower[..., None]) + bg * bgw + medium * hairw + heavy * lower[..., None]
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def rerender(image: np.ndarray, head: np.ndarray, face: np.ndarray, rng: np.random.Generator, *,
             detail: float = 1.0, texture: float = 1.0, colour: float = 1.0, geometry: float = 1.0,
             background: float = 1.0) -> np.ndarray:
    """The simulated inversion I' of ``image`` (``float32 (H, W, 3)`` in ``[0, 1]``), same shape.

    ``head``/``face``: soft ``(H, W)`` masks of the head (face, hair, ears) and the face oval.
    """
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"rerender: image must be (H, W, 3); got {image.shape}")
    if head.shape != image.shape[:2] or face.shape != image.shape[:2]:
        raise ValueError(f"rerender: masks {head.shape}/{face.shape} do not match image {image.shape[:2]}")
    x = np.asarray(image, np.float32)
    x = reimagine_background(x, head, face, rng, background)
    x = lose_detail(x, detail)
    x = geometric_drift(x, rng, geometry)
    x = colour_drift(x, rng, colour)
    x = gan_grain(x, rng, texture)
    return np.clip(x, 0.0, 1.0).astype(np.float32)
