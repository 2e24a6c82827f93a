"""Label sets: BiSeNet's 19 classes, the CelebAMask-HQ order, and conversion between them."""

from __future__ import annotations

import numpy as np

#: face-parsing.PyTorch (BiSeNet) class order; every label map in blendfix uses it.
BISENET_CLASSES: tuple[str, ...] = (
    "background", "skin", "l_brow", "r_brow", "l_eye", "r_eye", "eye_g", "l_ear", "r_ear", "ear_r",
    "nose", "mouth", "u_lip", "l_lip", "neck", "neck_l", "cloth", "hair", "hat",
)
#: CelebAMask-HQ's own class order (used by its reference label maps), for conversion only.
CELEBAMASK_CLASSES: tuple[str, ...] = (
    "background", "skin", "nose", "eye_g", "l_eye", "r_eye", "l_brow", "r_brow", "l_ear", "r_ear",
    "mouth", "u_lip", "l_lip", "hair", "hat", "ear_r", "neck_l", "neck", "cloth",
)
LABEL = {name: i for i, name in enumerate(BISENET_CLASSES)}

_CELEBAMASK_TO_BISENET = np.array([LABEL[n] for n in CELEBAMASK_CLASSES], dtype=np.int64)


def celebamask_to_bisenet(labels: np.ndarray) -> np.ndarray:
    """A label map in CelebAMask-HQ order -> the same map in BiSeNet order (int64)."""
    labels = np.asarray(labels)
    if labels.min(initial=0) < 0 or labels.max(initial=0) >= len(CELEBAMASK_CLASSES):
        raise ValueError(f"CelebAMask-HQ labels must be in 0..{len(CELEBAMASK_CLASSES) - 1}")
    return _CELEBAMASK_TO_BISENET[labels.astype(np.int64)]


def class_ids(names: tuple[str, ...] | list[str] | set[str]) -> list[int]:
    """Class names -> BiSeNet indices (ValueError naming an unknown class)."""
    unknown = [n for n in names if n not in LABEL]
    if unknown:
        raise ValueError(f"unknown class name(s) {unknown}; known: {', '.join(BISENET_CLASSES)}")
    return sorted(LABEL[n] for n in names)


def region(labels: np.ndarray, names: tuple[str, ...] | list[str] | set[str]) -> np.ndarray:
    """Boolean (H, W): pixels whose BiSeNet label is one of ``names``."""
    return np.isin(labels, class_ids(names))
