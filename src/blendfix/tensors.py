"""The numpy API convention, its input checks, and conversions to the tensor convention.

numpy: ``(H, W, 3)`` float32 RGB in ``[0, 1]``, masks ``(H, W)`` in ``[0, 1]``. The public functions
(``blendfix.clean``, the editors' ``edit``, ``face_mask``) check their arrays with :func:`check_image`
and :func:`check_mask`: a uint8 array or values outside ``[0, 1]`` raise ``ValueError`` naming the shape,
dtype and range. (Internal conversions below also take uint8, scaled by 1/255.)
torch: ``(B, 3, H, W)`` float32 RGB in ``[0, 1]``, masks ``(B, 1, H, W)``.
"""

from __future__ import annotations

import math

import numpy as np
import torch

#: float rounding slack allowed outside [0, 1] (clipped away)
_SLACK = 1e-4


def _check_range(arr: np.ndarray, name: str, what: str) -> np.ndarray:
    if arr.dtype == np.uint8:
        raise ValueError(f"{name}: a uint8 array {arr.shape}; blendfix takes float {what} in [0, 1], e.g. "
                         f"{name}.astype(np.float32) / 255, or read files with blendfix.io.read_image.")
    if arr.dtype == bool:
        arr = arr.astype(np.float32)
    if not np.issubdtype(arr.dtype, np.floating) and not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"{name}: dtype {arr.dtype} {arr.shape}; expected float {what} in [0, 1].")
    given = arr
    arr = arr.astype(np.float32, copy=False)
    if not arr.size:
        return arr.copy()
    lo, hi = float(arr.min()), float(arr.max())  # NaN propagates into both: one pass each, no isfinite pass
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError(f"{name}: {arr.shape} holds NaN or infinite values; expected float {what} in [0, 1].")
    if lo < -_SLACK or hi > 1 + _SLACK:
        hint = " (0-255 values? divide by 255)" if hi > 1.5 else ""
        raise ValueError(f"{name}: values in [{lo:.4g}, {hi:.4g}] {arr.shape}; expected float {what} in [0, 1]{hint}.")
    if lo < 0 or hi > 1:
        return np.clip(arr, 0.0, 1.0)
    return arr.copy() if arr is given else arr  # always a new array: the caller's is never shared


def check_image(image: np.ndarray, name: str = "image", min_side: int = 1) -> np.ndarray:
    """``image`` as float32 ``(H, W, 3)`` in ``[0, 1]``; ``ValueError`` naming shape, dtype or range otherwise."""
    arr = np.asarray(image)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"{name}: shape {arr.shape}; expected an (H, W, 3) RGB image.")
    if min(arr.shape[:2]) < min_side:
        raise ValueError(f"{name}: {arr.shape[1]}x{arr.shape[0]} is too small; the minimum side is {min_side} pixels.")
    return _check_range(arr, name, "RGB (H, W, 3)")


def check_mask(mask: np.ndarray, name: str = "mask", size: tuple[int, int] | None = None) -> np.ndarray:
    """``mask`` as float32 ``(H, W)`` in ``[0, 1]`` (of ``size`` when given); ``ValueError`` otherwise."""
    arr = np.asarray(mask)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if arr.ndim != 2:
        raise ValueError(f"{name}: shape {arr.shape}; expected an (H, W) mask.")
    if size is not None and arr.shape != tuple(size):
        raise ValueError(f"{name}: {arr.shape[1]}x{arr.shape[0]} but the image is {size[1]}x{size[0]} (WxH).")
    return _check_range(arr, name, "masks (H, W)")


def image_to_tensor(image: np.ndarray | list[np.ndarray], device: str | torch.device = "cpu", *,
                    channels_last: bool = False) -> torch.Tensor:
    """``(H, W, 3)`` (or a list / ``(B, H, W, 3)`` stack) in ``[0, 1]`` or uint8 -> ``(B, 3, H, W)``.

    ``channels_last``: the tensor keeps numpy's pixel-interleaved memory (``torch.channels_last``), which
    saves two copies where the consumer wants that layout anyway (PyTorch on a CPU)."""
    arr = np.stack(image) if isinstance(image, list) else np.asarray(image)
    if arr.ndim == 3:
        arr = arr[None]
    if arr.ndim != 4 or arr.shape[-1] != 3:
        raise ValueError(f"expected (H, W, 3) or (B, H, W, 3) images, got shape {arr.shape}")
    t = torch.from_numpy(np.ascontiguousarray(arr))
    t = t.float() / 255.0 if arr.dtype == np.uint8 else t.float()
    t = t.permute(0, 3, 1, 2)
    return (t if channels_last else t.contiguous()).to(device)


def mask_to_tensor(mask: np.ndarray | list[np.ndarray], device: str | torch.device = "cpu") -> torch.Tensor:
    """``(H, W)`` (or ``(B, H, W)``) in ``[0, 1]`` or uint8 {0..255} -> ``(B, 1, H, W)`` float."""
    arr = np.stack(mask) if isinstance(mask, list) else np.asarray(mask)
    if arr.ndim == 3 and arr.shape[-1] in (1, 3) and arr.shape[0] not in (1, 3):
        arr = arr.mean(axis=-1) if arr.shape[-1] == 3 else arr[..., 0]
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3:
        raise ValueError(f"expected (H, W) or (B, H, W) masks, got shape {arr.shape}")
    t = torch.from_numpy(np.ascontiguousarray(arr))
    t = t.float() / 255.0 if arr.dtype == np.uint8 else t.float()
    return t[:, None].to(device)


def tensor_to_image(t: torch.Tensor) -> np.ndarray:
    """``(B, 3, H, W)`` or ``(3, H, W)`` -> float32 ``(B, H, W, 3)`` or ``(H, W, 3)`` numpy."""
    t = t.detach().float().cpu()
    if t.ndim == 3:
        return t.permute(1, 2, 0).numpy()
    return t.permute(0, 2, 3, 1).numpy()


def tensor_to_mask(t: torch.Tensor) -> np.ndarray:
    """``(B, 1, H, W)`` or ``(1, H, W)`` -> float32 ``(B, H, W)`` or ``(H, W)``."""
    t = t.detach().float().cpu()
    return t[:, 0].numpy() if t.ndim == 4 else t[0].numpy()
