"""Poisson ("seamless") cloning: the method's teacher, ``seamless_clone(edited -> original, mask)``.

Two backends compute OpenCV 5's ``seamlessClone(src, dst, mask, center, NORMAL_CLONE)``:

* ``"torch"`` (default): :mod:`blendfix.blend.poisson_torch`, batched, CPU/CUDA, differentiable
  before quantisation, always in place. Agrees with OpenCV to at most 1 level at a handful of values
  (OpenCV solves in float32 with its own FFT; values whose exact solution lies next to an integer can
  truncate either way).
* ``"opencv"``: ``cv2.seamlessClone`` itself, made safe:

  - the mask is copied (OpenCV 5.0 overwrites the caller's mask array);
  - ``center="bbox"``: the mask's 1-pixel image frame is zeroed *by us* before the call and the
    center is ``(x + w // 2, y + h // 2)`` of ``cv2.boundingRect`` of that zeroed mask. OpenCV then
    pastes in place. For masks that do not touch the image border this is exactly the plain
    call with the mask's own bounding rectangle; for border-touching masks the plain call pastes the
    clone shifted by up to 1 pixel, which this avoids (the frame pixels are excluded, as OpenCV
    excludes them anyway);
  - ``center="bbox_raw"``: the plain call, center from ``cv2.boundingRect`` of the mask as given,
    shift included; only for bit-exact comparison with other OpenCV pipelines;
  - ``center="paper"``: the center of the paper code (``blending.py``): ``(min + max) // 2`` of the
    non-zero rows/columns, which shifts the clone by -1 pixel along every axis whose extent is even.
    Offered only as an explicit compatibility option.

Guards (both backends): an all-zero mask returns ``dst`` unchanged with a warning; a mask whose
rectangle (after frame zeroing) is narrower or shorter than 3 pixels has no interior to solve and
returns ``dst`` unchanged with a warning (OpenCV itself crashes on such masks); a ``uint8`` mask whose
maximum is 1 triggers a warning (uint8 masks are weights ``v / 255``; a 0/1 mask clones almost nothing).

Soft masks follow OpenCV: weights = (mask eroded by a 7x7 square) / 255, so pixels within 3 pixels of
the mask edge take their gradients from ``dst``, and intermediate values mix the two gradients. Every
pixel of the bounding rectangle is re-solved, including those outside the mask.
"""

from __future__ import annotations

import warnings

import cv2
import numpy as np
import torch

from .poisson_torch import clone_levels

BACKENDS = ("torch", "opencv")
CENTERS = ("bbox", "bbox_raw", "paper")


def _gray_mask(mask: np.ndarray) -> np.ndarray:
    """numpy mask -> ``(H, W)`` uint8 in OpenCV's convention (3 channels -> gray, bool -> 255)."""
    m = np.asarray(mask)
    if m.dtype == bool:
        m = m.astype(np.uint8) * 255
    elif m.dtype != np.uint8:
        if m.min(initial=0) < 0 or m.max(initial=0) > 1:
            raise ValueError(f"seamless_clone: a float mask must lie in [0, 1]; got [{m.min()}, {m.max()}]")
        m = np.rint(m.astype(np.float64) * 255.0).astype(np.uint8)
    if m.ndim == 3 and m.shape[2] == 1:
        m = m[..., 0]
    elif m.ndim == 3 and m.shape[2] == 3:
        m = cv2.cvtColor(np.ascontiguousarray(m), cv2.COLOR_BGR2GRAY)
    if m.ndim != 2:
        raise ValueError(f"seamless_clone: mask must be (H, W) or (H, W, 3); got {m.shape}")
    return np.ascontiguousarray(m)


def _check_numpy(src: np.ndarray, dst: np.ndarray, mask: np.ndarray) -> np.ndarray:
    for name, a in (("src", src), ("dst", dst)):
        if not isinstance(a, np.ndarray) or a.dtype != np.uint8 or a.ndim != 3 or a.shape[2] != 3:
            got = f"{a.dtype} {a.shape}" if isinstance(a, np.ndarray) else type(a).__name__
            raise ValueError(f"seamless_clone: numpy {name} must be uint8 (H, W, 3); got {got} "
                             "(convert [0, 1] floats with blendfix.io.to_uint8)")
    if src.shape != dst.shape:
        raise ValueError(f"seamless_clone: src {src.shape[1]}x{src.shape[0]} and dst "
                         f"{dst.shape[1]}x{dst.shape[0]} (WxH) differ in size")
    m = _gray_mask(mask)
    if m.shape != dst.shape[:2]:
        raise ValueError(f"seamless_clone: mask {m.shape[1]}x{m.shape[0]} does not match the images "
                         f"{dst.shape[1]}x{dst.shape[0]} (WxH)")
    if m.max() == 1:
        warnings.warn("seamless_clone: the uint8 mask's maximum is 1; uint8 masks are weights v/255, so this "
                      "clones almost nothing (multiply a 0/1 mask by 255)", stacklevel=3)
    return m


def _frame_zeroed(m: np.ndarray) -> np.ndarray:
    z = m.copy()
    z[0, :] = 0
    z[-1, :] = 0
    z[:, 0] = 0
    z[:, -1] = 0
    return z


def _guard(rect: tuple[int, int, int, int], what: str) -> bool:
    """True when there is something to solve; warns (and the caller returns dst) otherwise."""
    _, _, w, h = rect
    if w == 0 or h == 0:
        warnings.warn(f"seamless_clone: {what} is empty (after clearing its 1-pixel image frame); "
                      "returning dst unchanged", stacklevel=4)
        return False
    if w < 3 or h < 3:
        warnings.warn(f"seamless_clone: {what} spans {w}x{h} pixels (after clearing its 1-pixel image frame); "
                      "at least 3x3 is needed, returning dst unchanged", stacklevel=4)
        return False
    return True


def paper_center(mask: np.ndarray) -> tuple[int, int]:
    """The center ``blending.py`` computes: ``((min(cols) + max(cols)) // 2, (min(rows) + max(rows)) // 2)``."""
    rows, cols = np.nonzero(mask)
    return (int(cols.min() + cols.max()) // 2, int(rows.min() + rows.max()) // 2)


def _opencv_one(src: np.ndarray, dst: np.ndarray, m: np.ndarray, center: str) -> np.ndarray:
    zeroed = _frame_zeroed(m)
    xs, ys, ws, hs = cv2.boundingRect(zeroed)
    if not _guard((xs, ys, ws, hs), "the mask"):
        return dst.copy()
    if center == "bbox":
        call_mask, c = zeroed, (xs + ws // 2, ys + hs // 2)
    elif center == "bbox_raw":
        x, y, w, h = cv2.boundingRect(m)
        call_mask, c = m.copy(), (x + w // 2, y + h // 2)
    else:
        call_mask, c = m.copy(), paper_center(m)
    xd, yd = c[0] - ws // 2, c[1] - hs // 2
    H, W = dst.shape[:2]
    if xd < 0 or yd < 0 or xd + ws > W or yd + hs > H:
        raise ValueError(f"seamless_clone: center {c} puts the {ws}x{hs} clone outside the {W}x{H} image")
    return cv2.seamlessClone(np.ascontiguousarray(src), np.ascontiguousarray(dst), call_mask, c, cv2.NORMAL_CLONE)


def _torch_numpy(src: np.ndarray, dst: np.ndarray, m: np.ndarray,
                 device: str | torch.device | None) -> np.ndarray:
    dev = torch.device(device or "cpu")
    s = torch.from_numpy(np.ascontiguousarray(src)).permute(2, 0, 1)[None].to(dev, torch.float32)
    d = torch.from_numpy(np.ascontiguousarray(dst)).permute(2, 0, 1)[None].to(dev, torch.float32)
    w = torch.from_numpy(m)[None, None].to(dev, torch.float32) / 255.0
    _, _, ws, hs = cv2.boundingRect(_frame_zeroed(m))
    if not _guard((0, 0, ws, hs), "the mask"):
        return dst.copy()
    with torch.no_grad():
        out, _ = clone_levels(s, d, w, quantize=True)
    return out[0].permute(1, 2, 0).to("cpu", torch.uint8).numpy()


def _check_tensors(src: torch.Tensor, dst: torch.Tensor, mask: torch.Tensor) -> None:
    if not (isinstance(dst, torch.Tensor) and isinstance(mask, torch.Tensor)):
        raise ValueError("seamless_clone: pass src, dst and mask all as tensors or all as numpy arrays")
    if src.ndim != 4 or src.shape[1] != 3 or src.shape != dst.shape:
        raise ValueError(f"seamless_clone: src and dst must be (B, 3, H, W) of one shape; got "
                         f"{tuple(src.shape)} and {tuple(dst.shape)}")
    if mask.shape != (src.shape[0], 1, *src.shape[2:]):
        raise ValueError(f"seamless_clone: mask must be (B, 1, H, W) = {(src.shape[0], 1, *src.shape[2:])}; "
                         f"got {tuple(mask.shape)}")


def _seamless_tensor(src: torch.Tensor, dst: torch.Tensor, mask: torch.Tensor, backend: str,
                     center: str, quantize: bool) -> torch.Tensor:
    _check_tensors(src, dst, mask)
    if backend == "opencv":
        if not quantize:
            raise ValueError("seamless_clone: backend='opencv' always quantises; use backend='torch' for "
                             "quantize=False")
        outs = []
        for b in range(src.shape[0]):
            s, d = (np.clip(np.rint(t[b].detach().permute(1, 2, 0).float().cpu().numpy() * 255), 0, 255)
                    .astype(np.uint8) for t in (src, dst))
            m = np.rint(mask[b, 0].detach().float().cpu().clamp(0, 1).numpy() * 255).astype(np.uint8)
            outs.append(torch.from_numpy(_opencv_one(s, d, m, center)).permute(2, 0, 1))
        return torch.stack(outs).to(device=dst.device, dtype=dst.dtype) / 255.0
    compute = dst.dtype if dst.dtype in (torch.float32, torch.float64) else torch.float32
    out, rects = clone_levels(src.to(compute), dst.to(compute), mask.to(compute), scale=255.0, quantize=quantize)
    for b, r in enumerate(rects):
        _guard(r or (0, 0, 0, 0), f"mask {b} of the batch")
    return out.to(dst.dtype)


def seamless_clone(src: np.ndarray | torch.Tensor, dst: np.ndarray | torch.Tensor, mask: np.ndarray | torch.Tensor,
                   *, backend: str = "torch", center: str = "bbox", quantize: bool = True,
                   device: str | torch.device | None = None) -> np.ndarray | torch.Tensor:
    """Poisson-clone ``src`` into ``dst`` over ``mask`` (OpenCV ``NORMAL_CLONE`` semantics).

    numpy: ``src``, ``dst`` uint8 ``(H, W, 3)`` (any channel order; channels are independent), ``mask``
    uint8 ``(H, W)`` or ``(H, W, 3)`` with values in ``{0, 255}`` (other values are weights ``v / 255``;
    bool and ``[0, 1]`` float masks are converted) -> uint8 ``(H, W, 3)``. ``device`` picks where the
    torch backend runs (default CPU).

    tensors: ``src``, ``dst`` ``(B, 3, H, W)`` float in ``[0, 1]``, ``mask`` ``(B, 1, H, W)`` in ``[0, 1]``
    -> ``(B, 3, H, W)`` on ``dst``'s device. With ``quantize=True`` the solved pixels are truncated
    to 8-bit levels (``floor(v * 255) / 255``, clipped to ``[0, 1]``) as OpenCV does; with
    ``quantize=False`` (torch backend) the raw solution is returned, not clipped (it may leave
    ``[0, 1]`` slightly), differentiable w.r.t. ``src``, ``dst`` and ``mask``.

    Outside each image's solved rectangle the output equals ``dst`` exactly (for tensors with
    ``backend="opencv"``: up to the 8-bit round trip the whole image goes through). ``backend`` is
    ``"torch"`` or ``"opencv"``; ``center`` is ``"bbox"`` (in place), or for ``backend="opencv"``
    only ``"bbox_raw"`` / ``"paper"`` (see the module docstring).
    """
    if backend not in BACKENDS:
        raise ValueError(f"seamless_clone: backend must be one of {BACKENDS}; got {backend!r}")
    if center not in CENTERS:
        raise ValueError(f"seamless_clone: center must be one of {CENTERS}; got {center!r}")
    if backend == "torch" and center != "bbox":
        raise ValueError(f"seamless_clone: center={center!r} reproduces OpenCV's shifted placement and needs "
                         "backend='opencv'; the torch backend always clones in place (center='bbox')")
    if isinstance(src, torch.Tensor):
        return _seamless_tensor(src, dst, mask, backend, center, quantize)
    m = _check_numpy(src, dst, mask)
    if backend == "opencv":
        return _opencv_one(src, dst, m, center)
    if not quantize:
        raise ValueError("seamless_clone: quantize=False needs tensor inputs (numpy input returns uint8)")
    return _torch_numpy(src, dst, m, device)
