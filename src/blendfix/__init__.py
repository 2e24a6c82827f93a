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

__version__ = "0.1.0"

__all__ = ["__version__"]
