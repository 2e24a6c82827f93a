"""The fusion step of the method: F = T * M + I * (1 - M) with a soft mask."""

from __future__ import annotations

import numpy as np
import torch


def fuse(edited: torch.Tensor | np.ndarray, original: torch.Tensor | np.ndarray,
         mask: torch.Tensor | np.ndarray) -> torch.Tensor | np.ndarray:
    """Blend ``edited`` (T) into ``original`` (I) with weights ``mask`` (M) in ``[0, 1]``.

    Tensors: images ``(B, 3, H, W)``, mask ``(B, 1, H, W)`` (or broadcastable). numpy: images
    ``(H, W, 3)``, mask ``(H, W)`` or ``(H, W, 1)``; float in ``[0, 1]`` or uint8 (mask uint8 is
    read as ``v / 255``); returns float32 in the images' range. Differentiable for tensors.
    """
    if isinstance(edited, torch.Tensor):
        if not (isinstance(original, torch.Tensor) and isinstance(mask, torch.Tensor)):
            raise ValueError("fuse: pass all tensors or all numpy arrays")
        if edited.shape != original.shape:
            raise ValueError(f"fuse: edited {tuple(edited.shape)} and original {tuple(original.shape)} differ")
        if mask.ndim != edited.ndim or mask.shape[-2:] != edited.shape[-2:]:
            raise ValueError(f"fuse: mask {tuple(mask.shape)} does not match images {tuple(edited.shape)}")
        m = mask.to(edited.dtype)
        return edited * m + original * (1 - m)
    t = np.asarray(edited, np.float32)
    i = np.asarray(original, np.float32)
    m = np.asarray(mask)
    m = m.astype(np.float32) / 255.0 if m.dtype == np.uint8 else m.astype(np.float32)
    if t.shape != i.shape:
        raise ValueError(f"fuse: edited {t.shape} and original {i.shape} differ")
    if m.ndim == 2:
        m = m[..., None]
    if m.shape[:2] != t.shape[:2]:
        raise ValueError(f"fuse: mask {m.shape[:2]} does not match images {t.shape[:2]}")
    return t * m + i * (1.0 - m)
