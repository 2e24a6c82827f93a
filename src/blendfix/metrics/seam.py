"""Artifact scores: the seam score and the edit-kept score (docs/metrics.md defines them exactly).

Inputs everywhere: images ``float32 (H, W, 3)`` RGB in ``[0, 1]`` (uint8 is read as ``v / 255``),
masks ``(H, W)`` in ``[0, 1]`` (uint8 read as ``v / 255``), all the same height and width.

* :func:`edit_region` — the binarised edit mask ``B``: ``M >= 0.5 * max(M)``.
* :func:`seam_band` — pixels within ``r`` of ``B``'s boundary (``r = band_radius(H, W)``, 3 px at 256²).
* :func:`seam_score` — gradient energy of the output in the band divided by that of the reference
  (the truth, or the original when no truth exists); ``1.0`` = no visible step, ``> 1`` = a step or
  ghost edge, ``< 1`` = the band was smoothed more than the reference.
* :func:`edit_kept` — ``mean|out - I|`` over the eroded region divided by ``mean|ref - I|`` there
  (``ref`` = the truth, or F): ``1`` = the whole edit kept, ``0`` = undone.

Both return ``nan`` when undefined (empty mask, nothing edited); callers report those as "n/a".
"""

from __future__ import annotations

import math

import cv2
import numpy as np

#: band radius as a fraction of the shorter image side: 3 px at 256², 6 at 512², 12 at 1024².
BAND_FRACTION = 0.012
#: threshold of the binarised mask, as a fraction of the mask's maximum.
MASK_THRESHOLD = 0.5
#: added to both energies of the seam ratio (per-pixel squared gradient, RGB summed): about one
#: 8-bit level of step in one channel, so flat bands (sky, cheeks) do not blow the ratio up.
SEAM_EPS = (1.0 / 255.0) ** 2
#: below this reference change (mean absolute, [0, 1] units) there is no edit to keep: edit kept is nan.
KEPT_MIN_CHANGE = 1.0 / 255.0


def _image(x: np.ndarray, name: str) -> np.ndarray:
    a = np.asarray(x)
    if a.ndim != 3 or a.shape[2] != 3:
        raise ValueError(f"{name}: expected an (H, W, 3) RGB image, got shape {a.shape}")
    a = a.astype(np.float32) / 255.0 if a.dtype == np.uint8 else a.astype(np.float32)
    if not np.isfinite(a).all():
        raise ValueError(f"{name}: image has NaN or infinite values")
    return a


def _mask(m: np.ndarray, shape: tuple[int, ...], name: str = "mask") -> np.ndarray:
    a = np.asarray(m)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[..., 0]
    if a.ndim != 2 or a.shape != tuple(shape[:2]):
        raise ValueError(f"{name}: expected an (H, W) mask of size {tuple(shape[:2])}, got shape {a.shape}")
    a = a.astype(np.float32) / 255.0 if a.dtype == np.uint8 else a.astype(np.float32)
    if not np.isfinite(a).all() or a.min() < -1e-3 or a.max() > 1 + 1e-3:
        raise ValueError(f"{name}: mask values must be in [0, 1] (or uint8)")
    return a


def _same(images: dict[str, np.ndarray]) -> None:
    shapes = {k: v.shape for k, v in images.items()}
    if len(set(shapes.values())) > 1:
        raise ValueError("images differ in size: " + ", ".join(f"{k} {s[1]}x{s[0]}" for k, s in shapes.items()))


def band_radius(height: int, width: int) -> int:
    """Band half-width ``r`` in pixels: ``max(1, round(0.012 * min(H, W)))`` (3 at 256², 12 at 1024²)."""
    return max(1, round(BAND_FRACTION * min(height, width)))


def _disk(r: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))


def edit_region(mask: np.ndarray) -> np.ndarray:
    """Binarised edit mask ``B`` (bool ``(H, W)``): ``M >= 0.5 * max(M)``; all False when ``max(M) == 0``.

    Relative to the maximum so a folded EOGI mask (``M <= 0.5``) still has a region.
    """
    m = np.asarray(mask, np.float32)
    peak = float(m.max()) if m.size else 0.0
    if peak <= 0:
        return np.zeros(m.shape, bool)
    return m >= MASK_THRESHOLD * peak


def seam_band(region: np.ndarray, radius: int) -> np.ndarray:
    """Pixels within ``radius`` of the region's boundary: ``dilate(B, D) & ~erode(B, D)``, ``D`` a disk of
    diameter ``2 * radius + 1`` (bool ``(H, W)``). Image borders do not count as boundary."""
    if radius < 1:
        raise ValueError(f"band radius must be >= 1 pixel, got {radius}")
    b = np.asarray(region, bool).astype(np.uint8)
    k = _disk(radius)
    grown = cv2.dilate(b, k, borderType=cv2.BORDER_REPLICATE)
    shrunk = cv2.erode(b, k, borderType=cv2.BORDER_REPLICATE)
    return (grown > 0) & ~(shrunk > 0)


def eroded_region(region: np.ndarray, radius: int) -> np.ndarray:
    """``erode(B, D)`` with the band's disk: the edit region minus the band (bool ``(H, W)``)."""
    b = np.asarray(region, bool).astype(np.uint8)
    return cv2.erode(b, _disk(radius), borderType=cv2.BORDER_REPLICATE) > 0


def gradient_energy(image: np.ndarray) -> np.ndarray:
    """Per-pixel ``sum_c (dx_c^2 + dy_c^2)`` with forward differences (last row/column repeat, so 0 there);
    ``float64 (H, W)``. A step of height ``d`` in one channel puts ``d^2`` on one pixel row."""
    a = np.asarray(image, np.float64)
    dx = np.zeros_like(a)
    dy = np.zeros_like(a)
    dx[:, :-1] = a[:, 1:] - a[:, :-1]
    dy[:-1] = a[1:] - a[:-1]
    return (dx * dx + dy * dy).sum(axis=2)


def seam_score(output: np.ndarray, reference: np.ndarray, mask: np.ndarray, *, radius: int | None = None,
               within: np.ndarray | None = None, original: np.ndarray | None = None) -> float:
    """``(mean_band E(out) + eps) / (mean_band E(ref) + eps)``; ``nan`` when the band is empty.

    With ``original`` (I, what ``evaluate`` passes): the *change field* version, ``E`` taken on
    ``low_pass(out - I)`` and ``low_pass(ref - I)`` (Gaussian, sigma = :func:`seam_sigma`): a seam is
    a step of the change across the boundary, which the photo's own edges (hair, eyes) no longer
    mask. With the truth as reference, 1 = the change crosses the boundary as smoothly as the
    truth's; with I as reference (no truth) the denominator is ``eps`` and the score is the band's
    step energy in units of a one-level step, + 1: compare methods with each other.

    ``output``, ``reference`` (the truth, or the original I when there is none): ``(H, W, 3)`` in
    ``[0, 1]``; ``mask``: the edit mask ``(H, W)`` in ``[0, 1]``; ``radius``: band half-width
    (default :func:`band_radius`); ``within``: optional ``(H, W)`` bool/[0, 1] area the band is
    restricted to (e.g. the mouth, to score one part of the boundary).
    """
    out, ref = _image(output, "output"), _image(reference, "reference")
    _same({"output": out, "reference": ref})
    m = _mask(mask, out.shape)
    r = band_radius(*out.shape[:2]) if radius is None else int(radius)
    band = seam_band(edit_region(m), r)
    if within is not None:
        band &= _mask(np.asarray(within, np.float32), out.shape, "within") > 0.5
    if not band.any():
        return math.nan
    if original is not None:
        orig = _image(original, "original")
        _same({"output": out, "original": orig})
        out, ref = low_pass(out - orig, seam_sigma(r)), low_pass(ref - orig, seam_sigma(r))
    e_out = float(gradient_energy(out)[band].mean())
    e_ref = float(gradient_energy(ref)[band].mean())
    return (e_out + SEAM_EPS) / (e_ref + SEAM_EPS)


def seam_sigma(radius: int) -> float:
    """Sigma (pixels) of the low-pass on the change field: a third of the band radius (1 px at 256²)."""
    return max(0.5, radius / 3.0)


def low_pass(image: np.ndarray, sigma: float) -> np.ndarray:
    """``image`` (``(H, W, C)``, any range) blurred by a Gaussian of ``sigma`` px, borders replicated."""
    import cv2

    return cv2.GaussianBlur(np.asarray(image, np.float64), (0, 0), sigma, borderType=cv2.BORDER_REPLICATE)


def edit_kept(output: np.ndarray, original: np.ndarray, reference: np.ndarray, mask: np.ndarray, *,
              radius: int | None = None) -> float:
    """The share of the reference's change that ``output`` carries over ``erode(B, D)``; ``nan`` when undefined.

    ``kept = sum (out - I) . (ref - I) / sum (ref - I) . (ref - I)`` over the region's pixels and
    channels: the projection of the output's change on the wanted one, so 1 = all of it, 0 = undone
    (out = I), 0.5 = half of it, and a change the reference does not have (a colour step, a ghost, a
    tint) is not counted as the edit. ``reference``: the truth, or the fused image F when there is
    none. The eroded region falls back to ``B`` itself when the erosion empties it (a thin edit).
    ``nan`` when ``B`` is empty or ``mean|ref - I| < 1/255`` there (nothing was edited). Not clipped.
    """
    out, orig, ref = _image(output, "output"), _image(original, "original"), _image(reference, "reference")
    _same({"output": out, "original": orig, "reference": ref})
    m = _mask(mask, out.shape)
    r = band_radius(*out.shape[:2]) if radius is None else int(radius)
    region = edit_region(m)
    inner = eroded_region(region, r)
    if not inner.any():
        inner = region
    if not inner.any():
        return math.nan
    wanted = (ref - orig)[inner].astype(np.float64)
    if float(np.abs(wanted).mean()) < KEPT_MIN_CHANGE:
        return math.nan
    got = (out - orig)[inner].astype(np.float64)
    return float((got * wanted).sum() / (wanted * wanted).sum())


def band_overlay(image: np.ndarray, mask: np.ndarray, radius: int | None = None) -> np.ndarray:
    """``image`` with the region's eroded core tinted blue and the seam band red (for figures);
    ``float32 (H, W, 3)`` in ``[0, 1]``."""
    img = _image(image, "image")
    m = _mask(mask, img.shape)
    r = band_radius(*img.shape[:2]) if radius is None else int(radius)
    region = edit_region(m)
    out = img.copy()
    core = eroded_region(region, r)
    out[core] = 0.6 * out[core] + 0.4 * np.array([0.1, 0.3, 1.0], np.float32)
    band = seam_band(region, r)
    out[band] = 0.3 * out[band] + 0.7 * np.array([1.0, 0.1, 0.1], np.float32)
    return out


def strongest_step_box(fused: np.ndarray, original: np.ndarray, mask: np.ndarray, side: int) -> tuple[int, int]:
    """Top-left ``(y, x)`` of the ``side``-square centred where F's change steps most along the edit
    boundary (the largest low-passed gradient energy of ``F - I`` on the seam band), clamped inside
    the image: where to zoom to show a seam. Images ``(H, W, 3)`` in ``[0, 1]``, mask ``(H, W)``."""
    f, o = _image(fused, "fused"), _image(original, "original")
    m = _mask(mask, f.shape)
    h, w = m.shape
    if not 0 < side <= min(h, w):
        raise ValueError(f"side {side} must be in (0, {min(h, w)}]")
    r = band_radius(h, w)
    energy = gradient_energy(low_pass(f - o, seam_sigma(r))) * seam_band(edit_region(m), r)
    y, x = np.unravel_index(int(np.argmax(energy)), energy.shape)
    return int(np.clip(y - side // 2, 0, h - side)), int(np.clip(x - side // 2, 0, w - side))
