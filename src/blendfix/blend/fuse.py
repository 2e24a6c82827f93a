"""The fusion step of the method: F = T * M + I * (1 - M) with a soft mask.

Two fusions (``FUSIONS``):

* ``paper`` — ``F = T·M + I·(1 − M)``, ``M`` the Diff-CAM map (the paper's equation).
* ``released`` — what the 2025 method's released code does: ``F = T·(H·M2 + (1 − M2)) + I·M2·(1 − H)``
  with ``H`` the Diff-CAM map and ``M2`` = 0 on the mouth (mouth, upper and lower lip parsed in I
  *or* T), 1 elsewhere, for smile and aging only (the teeth limitation: the mouth is taken wholly
  from T). That is the paper's fusion with the weight :func:`fusion_weight` ``= H·(1 − R) + R``,
  ``R = 1 − M2`` the region taken from T. See docs/evaluation.md for the source and a measurement.
"""

from __future__ import annotations

import numpy as np
import torch

FUSIONS = ("paper", "released")
#: attributes whose mouth the released code takes wholly from T (its Smiling and Old directions).
WHOLE_MOUTH_ATTRIBUTES = ("smile", "aging")


def _np_mask(mask: np.ndarray) -> np.ndarray:
    m = np.asarray(mask)
    return m.astype(np.float32) / 255.0 if m.dtype == np.uint8 else m.astype(np.float32)


def fusion_weight(mask: torch.Tensor | np.ndarray, from_edited: torch.Tensor | np.ndarray | None = None
                  ) -> torch.Tensor | np.ndarray:
    """The per-pixel weight of T: ``M·(1 − R) + R`` (``M`` where ``R = 0``, 1 where ``R = 1``).

    ``mask`` (M, the Diff-CAM map) and ``from_edited`` (R, the region taken wholly from T; None = none):
    numpy ``(H, W)`` (uint8 read as ``v / 255``) or tensors of the same shape, values in ``[0, 1]``.
    Returns float32 numpy, or a tensor (differentiable), of ``mask``'s shape.
    """
    if isinstance(mask, torch.Tensor):
        if from_edited is None:
            return mask
        if not isinstance(from_edited, torch.Tensor) or from_edited.shape != mask.shape:
            raise ValueError(f"fusion_weight: from_edited must be a tensor of the mask's shape {tuple(mask.shape)}")
        r = from_edited.to(mask.dtype)
        return mask * (1 - r) + r
    m = _np_mask(mask)
    if from_edited is None:
        return m
    r = _np_mask(from_edited)
    if r.shape != m.shape:
        raise ValueError(f"fusion_weight: from_edited {r.shape} does not match the mask {m.shape}")
    if r.min(initial=0) < 0 or r.max(initial=0) > 1:
        raise ValueError("fusion_weight: from_edited must be in [0, 1]")
    return (m * (1.0 - r) + r).astype(np.float32)


def fuse(edited: torch.Tensor | np.ndarray, original: torch.Tensor | np.ndarray,
         mask: torch.Tensor | np.ndarray, from_edited: torch.Tensor | np.ndarray | None = None
         ) -> torch.Tensor | np.ndarray:
    """Blend ``edited`` (T) into ``original`` (I) with weights ``mask`` (M) in ``[0, 1]``.

    Tensors: images ``(B, 3, H, W)``, mask ``(B, 1, H, W)`` (or broadcastable). numpy: images
    ``(H, W, 3)``, mask ``(H, W)`` or ``(H, W, 1)``; float in ``[0, 1]`` or uint8 (mask uint8 is
    read as ``v / 255``); returns float32 in the images' range. Differentiable for tensors.
    ``from_edited`` (same shape as ``mask``): a region taken wholly from T, the released code's
    mouth (``1 − M2``); the weight is then :func:`fusion_weight`. None = the paper's fusion.
    """
    if isinstance(edited, torch.Tensor):
        if not (isinstance(original, torch.Tensor) and isinstance(mask, torch.Tensor)):
            raise ValueError("fuse: pass all tensors or all numpy arrays")
        if edited.shape != original.shape:
            raise ValueError(f"fuse: edited {tuple(edited.shape)} and original {tuple(original.shape)} differ")
        if mask.ndim != edited.ndim or mask.shape[-2:] != edited.shape[-2:]:
            raise ValueError(f"fuse: mask {tuple(mask.shape)} does not match images {tuple(edited.shape)}")
        m = fusion_weight(mask, from_edited).to(edited.dtype)
        return edited * m + original * (1 - m)
    t = np.asarray(edited, np.float32)
    i = np.asarray(original, np.float32)
    if t.shape != i.shape:
        raise ValueError(f"fuse: edited {t.shape} and original {i.shape} differ")
    m = _np_mask(mask)
    if m.ndim == 3 and m.shape[2] == 1:
        m = m[..., 0]
    if m.shape[:2] != t.shape[:2]:
        raise ValueError(f"fuse: mask {m.shape[:2]} does not match images {t.shape[:2]}")
    if from_edited is not None:
        r = _np_mask(from_edited)
        m = fusion_weight(m, r[..., 0] if r.ndim == 3 else r)
    return t * m[..., None] + i * (1.0 - m[..., None])
