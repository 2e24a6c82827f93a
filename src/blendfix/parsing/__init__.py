"""Face parsing: landmarks, 19-class label maps (BiSeNet order) and the face mask M_face.

* :mod:`.landmarks` — offline 478-point face mesh (MediaPipe models shipped in its wheel).
"""

from __future__ import annotations

from .landmarks import LANDMARK_REGIONS, detect_all_landmarks, detect_landmarks

__all__ = ["LANDMARK_REGIONS", "detect_all_landmarks", "detect_landmarks"]
