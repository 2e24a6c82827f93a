"""The paper's five metrics (PSNR, SSIM, MAE, LPIPS, FID) and folder evaluation.

Every metric compares a method's outputs with the *unedited originals*; image tensors are
``(B, 3, H, W)`` RGB in ``[0, 1]``. Heavy parts (LPIPS, Inception) are imported lazily.
"""

from __future__ import annotations

from typing import Any

from .fidelity import mae, psnr, ssim

__all__ = ["evaluate_dirs", "mae", "psnr", "ssim"]


def evaluate_dirs(*args: Any, **kwargs: Any) -> dict:
    """See :func:`blendfix.metrics.evaluate.evaluate_dirs`."""
    from .evaluate import evaluate_dirs as _evaluate_dirs

    return _evaluate_dirs(*args, **kwargs)
