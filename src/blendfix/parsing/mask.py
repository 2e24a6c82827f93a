"""The face mask M_face of the method: which parsed classes of the edited and original photos count.

Both the fused/edited image F and the original I are parsed; a pixel is in M_face when it belongs
to the attribute's classes in *both* parses (intersection), except that for ``smile`` and ``aging``
the mouth and lips come from the edited image alone (the edit moves the mouth). Eyes and eyeglasses
are always excluded (in either parse). Class sets (BiSeNet names):

============  ======================================  ==================================
attribute     in both parses (intersection)          from the edited parse only (union)
============  ======================================  ==================================
eyebrows      skin, l_brow, r_brow, nose, mouth,      -
              u_lip, l_lip
beard         skin, l_brow, r_brow, nose, mouth,      -
              u_lip, l_lip, neck
aging         skin, l_brow, r_brow, nose, neck        mouth, u_lip, l_lip
smile         skin, l_brow, r_brow, nose              mouth, u_lip, l_lip
face          skin, l_brow, r_brow, nose, mouth,      -
              u_lip, l_lip
============  ======================================  ==================================

``face`` is not an edit attribute: it is the plain face region (the CLI's default when no
attribute is given). Excluded always: l_eye, r_eye, eye_g.
"""

from __future__ import annotations

import os

import numpy as np

from ..attributes import canonical
from ..io import check_same_size
from ..tensors import check_image
from .labels import region

FACE = ("skin", "l_brow", "r_brow", "nose")
MOUTH = ("mouth", "u_lip", "l_lip")
EXCLUDED = ("l_eye", "r_eye", "eye_g")

#: attribute -> (classes required in both parses, classes taken from the edited parse alone)
MASK_CLASSES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "eyebrows": (FACE + MOUTH, ()),
    "beard": (FACE + MOUTH + ("neck",), ()),
    "aging": (FACE + ("neck",), MOUTH),
    "smile": (FACE, MOUTH),
    "face": (FACE + MOUTH, ()),
}


def _rule(attribute: str) -> str:
    return "face" if attribute.strip().lower() == "face" else canonical(attribute)


def mask_from_labels(fused_labels: np.ndarray, original_labels: np.ndarray, attribute: str) -> np.ndarray:
    """Apply the M_face rule to two (H, W) BiSeNet-order label maps -> float32 (H, W) in {0, 1}."""
    if fused_labels.shape != original_labels.shape:
        raise ValueError(f"label maps differ in size: {fused_labels.shape} vs {original_labels.shape}")
    both, edited_only = MASK_CLASSES[_rule(attribute)]
    m = region(fused_labels, both) & region(original_labels, both)
    if edited_only:
        m |= region(fused_labels, edited_only)
    m &= ~(region(fused_labels, EXCLUDED) | region(original_labels, EXCLUDED))
    return m.astype(np.float32)


def face_mask(fused: np.ndarray, original: np.ndarray, attribute: str, parser=None, *,
              fused_source: str | os.PathLike | None = None,
              original_source: str | os.PathLike | None = None) -> np.ndarray:
    """M_face for one (fused/edited, original) pair.

    Args:
        fused: float32 (H, W, 3) RGB in [0, 1]: the fused or edited image (uint8 or values above 1
            raise ValueError).
        original: the original photo, same size.
        attribute: eyebrows, beard, aging or smile (aliases accepted), or ``face`` for the plain face region.
        parser: None (the offline landmark parser), a name for :func:`get_parser`, or any object with
            ``parse(image, source) -> (H, W) int64`` BiSeNet-order labels.
        fused_source, original_source: file names used in errors (e.g. no face found).

    Returns:
        float32 (H, W) mask in {0, 1}.
    """
    from . import get_parser

    _rule(attribute)  # fail early on a bad attribute
    same = fused is original
    fused = check_image(fused, f"fused {fused_source or ''}".strip())
    original = fused if same else check_image(original, f"original {original_source or ''}".strip())
    check_same_size({f"fused {fused_source or ''}".strip(): np.asarray(fused),
                     f"original {original_source or ''}".strip(): np.asarray(original)})
    if parser is None or isinstance(parser, str):
        parser = get_parser(parser or "landmarks")
    fused_labels = parser.parse(fused, fused_source)
    original_labels = fused_labels if fused is original else parser.parse(original, original_source)
    return mask_from_labels(fused_labels, original_labels, attribute)
