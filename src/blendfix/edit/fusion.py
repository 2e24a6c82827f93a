"""``--fusion paper|released`` for an edit: the released code's whole-mouth rule applied to an EditResult.

The released code of the 2025 method (docs/evaluation.md, "Paper fusion vs released fusion")
parses I and T with BiSeNet and, for its Smiling and Old directions, takes every pixel labelled
mouth, upper lip or lower lip in *either* parse wholly from T:
``F = T·(H·M2 + (1 − M2)) + I·M2·(1 − H)``, ``M2 = 0`` on that union. Here the same rule runs with
any blendfix parser (the offline landmark parser by default, BiSeNet when its checkpoint is placed).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import numpy as np

from ..blend.fuse import FUSIONS, WHOLE_MOUTH_ATTRIBUTES, fusion_weight
from .base import EditResult

MOUTH_CLASSES = ("mouth", "u_lip", "l_lip")


def mouth_region(original: np.ndarray, edited: np.ndarray, parser: Any = None, *,
                 source: str | os.PathLike | None = None) -> np.ndarray:
    """``float32 (H, W)`` in {0, 1}: mouth or lips in the parse of I or of T (images ``(H, W, 3)`` in [0, 1]).

    ``parser``: None (offline landmark parser), a name for :func:`blendfix.parsing.get_parser`, or an
    object with ``parse(image, source) -> (H, W)`` BiSeNet-order labels.
    """
    from ..parsing import get_parser, region

    if parser is None or isinstance(parser, str):
        parser = get_parser(parser or "landmarks")
    name = str(source) if source is not None else "image"
    labels_i = parser.parse(original, name)
    labels_t = parser.parse(edited, f"T of {name}")
    return (region(labels_i, MOUTH_CLASSES) | region(labels_t, MOUTH_CLASSES)).astype(np.float32)


def apply_fusion(result: EditResult, fusion: str, parser: Any = None, *,
                 source: str | os.PathLike | None = None) -> EditResult:
    """The result with ``mask`` = the fusion weight of ``fusion`` (so ``result.fused`` is that fusion's F).

    ``paper``: unchanged. ``released``: for smile and aging, ``mask`` becomes ``H·(1 − R) + R`` with R
    the :func:`mouth_region` (other attributes unchanged, as in the released code; pasted pairs of the
    paste editor, whose mask is the paste itself, too). ``info`` records ``fusion`` and, when the rule
    applied, ``mouth_fraction`` (share of the image taken wholly from T). ``truth`` is kept as the
    editor made it (from the CAM map M, not from the new weight).
    """
    if fusion not in FUSIONS:
        raise ValueError(f"fusion {fusion!r}: choose one of {', '.join(FUSIONS)}")
    info = {**result.info, "fusion": fusion}
    if fusion == "paper" or result.attribute not in WHOLE_MOUTH_ATTRIBUTES or result.info.get("editor") == "paste":
        return dataclasses.replace(result, info=info)
    mouth = mouth_region(result.original, result.edited, parser, source=source)
    info["mouth_fraction"] = round(float(mouth.mean()), 6)
    return dataclasses.replace(result, mask=fusion_weight(result.mask, mouth), info=info)
