"""blendfix: remove blending artifacts from edited face photos.

Conventions used everywhere in the package:

* Images as tensors: ``float32`` of shape ``(B, 3, H, W)``, RGB, values in ``[0, 1]``.
* Masks as tensors: ``float32`` of shape ``(B, 1, H, W)``, values in ``[0, 1]`` (soft masks allowed).
* Images as numpy arrays (Python API, file I/O): ``float32`` ``(H, W, 3)`` RGB in ``[0, 1]``,
  or ``uint8`` ``(H, W, 3)`` where a function says so. Masks: ``(H, W)``.

Networks that expect another range (``[-1, 1]`` for StyleGAN2, ImageNet normalisation for
classifiers) convert inside their wrappers, never in the caller.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = ["__version__", "clean"]


def clean(original: Any, fused: Any = None, **options: Any) -> Any:
    """Clean one (original, fused) pair -> float32 ``(H, W, 3)`` in ``[0, 1]``.

    ``original`` and ``fused`` are ``(H, W, 3)`` RGB arrays in ``[0, 1]`` (or pass ``edited=`` and
    ``mask=`` instead of ``fused``). Options: ``method`` (auto | network | poisson | fused),
    ``weights``, ``device``, ``precision``, ``tile``, ``attribute`` ... — see
    :func:`blendfix.cleaning.clean` and :class:`blendfix.cleaning.CleanConfig`.
    """
    from .cleaning import clean as _clean

    return _clean(original, fused, **options)
