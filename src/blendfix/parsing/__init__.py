"""Face parsing: landmarks, 19-class label maps (BiSeNet order) and the face mask M_face.

* :mod:`.landmarks` — offline 478-point face mesh (MediaPipe models shipped in its wheel).
* :mod:`.landmark_parser` — the default parser: label maps drawn from the mesh, refined by skin colour.
* :mod:`.bisenet_parser` — BiSeNet with the published ``79999_iter.pth`` (placed by the user).
* :mod:`.mask` — :func:`face_mask`, the method's M_face rule per attribute.

Every label map is int64 (H, W) in BiSeNet's 19-class order (:data:`BISENET_CLASSES`).
"""

from __future__ import annotations

import threading

from .labels import BISENET_CLASSES, LABEL, celebamask_to_bisenet, region
from .landmarks import LANDMARK_REGIONS, detect_all_landmarks, detect_landmarks
from .mask import MASK_CLASSES, face_mask, mask_from_labels

PARSERS = ("landmarks", "bisenet")
_default_lock = threading.Lock()
_default_landmark_parser = None

__all__ = ["BISENET_CLASSES", "LABEL", "LANDMARK_REGIONS", "MASK_CLASSES", "PARSERS", "celebamask_to_bisenet",
           "detect_all_landmarks", "detect_landmarks", "face_mask", "get_parser", "mask_from_labels", "region"]


def get_parser(name: str = "landmarks", **kw):
    """A parser by name: ``landmarks`` (offline default) or ``bisenet`` (needs ``79999_iter.pth``).

    Keyword arguments go to :class:`~.landmark_parser.LandmarkParser` or
    :class:`~.bisenet_parser.BiSeNetParser`. The object has ``parse(image, source=None) -> (H, W)`` int64.
    ``get_parser("landmarks")`` without arguments returns one shared instance.
    """
    global _default_landmark_parser
    if name == "landmarks":
        from .landmark_parser import LandmarkParser

        if kw:
            return LandmarkParser(**kw)
        with _default_lock:
            if _default_landmark_parser is None:
                _default_landmark_parser = LandmarkParser()
            return _default_landmark_parser
    if name == "bisenet":
        from .bisenet_parser import BiSeNetParser

        return BiSeNetParser(**kw)
    raise ValueError(f"unknown parser {name!r}; choose one of {', '.join(PARSERS)}")
