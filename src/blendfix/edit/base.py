"""What every editor returns, and the protocol editors follow.

An editor turns a photo I into the method's triple: I' (its reconstruction of I), T (I' with the
attribute changed) and M (a soft mask locating the change, like a Diff-CAM map). The fused image
F = T * M + I * (1 - M) is what the artifact-suppression network learns to clean.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from ..blend.fuse import fuse


@dataclass
class EditResult:
    """One edit. Images ``float32 (H, W, 3)`` RGB in ``[0, 1]``; mask ``float32 (H, W)`` in ``[0, 1]``."""

    original: np.ndarray
    inverted: np.ndarray
    edited: np.ndarray
    mask: np.ndarray
    attribute: str
    info: dict[str, Any] = field(default_factory=dict)  # editor name, seed, alpha, checkpoint hashes...
    #: the artifact-free result, when the editor knows it: the same change applied to I itself,
    #: composited without ghost, seam or colour step (``float32 (H, W, 3)`` in ``[0, 1]``); ``None``
    #: for editors that cannot know it (the GAN editor).
    truth: np.ndarray | None = None
    #: what made the pair, for per-kind scores: ``gan:<attribute>``, ``synthetic:<attribute>``,
    #: ``paste:<shape>``; empty = unknown.
    kind: str = ""

    @property
    def fused(self) -> np.ndarray:
        """F = T * M + I * (1 - M), ``float32 (H, W, 3)`` in ``[0, 1]``."""
        return fuse(self.edited, self.original, self.mask).astype(np.float32)


class Editor(Protocol):
    """``edit(image, attribute, seed=...)`` -> :class:`EditResult` of the same size as ``image``."""

    name: str

    def edit(self, image: np.ndarray, attribute: str, *, seed: int = 0) -> EditResult: ...
