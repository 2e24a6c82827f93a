"""Conversions between the numpy API convention and the tensor convention.

numpy: ``(H, W, 3)`` float32 RGB in ``[0, 1]`` (or uint8), masks ``(H, W)``.
torch: ``(B, 3, H, W)`` float32 RGB in ``[0, 1]``, masks ``(B, 1, H, W)``.
"""

from __future__ import annotations

import numpy as np
import torch


def image_to_tensor(image: np.ndarray | list[np.ndarray], device: str | torch.device = "cpu") -> torch.Tensor:
    """``(H, W, 3)`` (or a list / ``(B, H, W, 3)`` stack) in ``[0, 1]`` or uint8 -> ``(B, 3, H, W)``."""
    arr = np.stack(image) if isinstance(image, list) else np.asarray(image)
    if arr.ndim == 3:
        arr = arr[None]
    if arr.ndim != 4 or arr.shape[-1] != 3:
        raise ValueError(f"expected (H, W, 3) or (B, H, W, 3) images, got shape {arr.shape}")
    t = torch.from_numpy(np.ascontiguousarray(arr))
    t = t.float() / 255.0 if arr.dtype == np.uint8 else t.float()
    return t.permute(0, 3, 1, 2).contiguous().to(device)


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
