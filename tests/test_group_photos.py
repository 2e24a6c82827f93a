"""Group photos: edit, mask and Poisson clean handle every face found; --largest-face keeps only the largest.

two_faces.png (shared bad inputs) holds two faces side by side; the right-hand one is the larger.
"""

from __future__ import annotations

import numpy as np
import pytest

from blendfix.cli import main
from blendfix.data.imageset import ImageSet
from blendfix.io import read_image, read_mask


@pytest.fixture(scope="module")
def two_faces(data_dir):
    return data_dir / "bad_inputs" / "two_faces.png"


def _halves(a: np.ndarray) -> tuple[float, float]:
    a = np.abs(a) if a.ndim == 2 else np.abs(a).mean(axis=2)
    half = a.shape[1] // 2
    return float(a[:, :half].sum()), float(a[:, half:].sum())


@pytest.mark.parametrize("largest", [False, True])
def test_edit_and_clean_every_face_or_the_largest(two_faces, tmp_path, largest):
    flag = ["--largest-face"] if largest else []
    out = tmp_path / "set"
    assert main(["edit", "-i", str(two_faces), "-a", "smile", *flag, "-o", str(out)]) == 0
    s = ImageSet(out)
    (item,) = [r.id for r in s.records()]
    left, right = _halves(read_mask(s.path(item, "mask")))
    assert right > 0.05 * (left + right)
    assert (left > 0.05 * (left + right)) != largest  # the left face is edited unless --largest-face
    assert main(["clean", "-i", str(out), "--method", "poisson", *flag]) == 0
    original = read_image(s.path(item, "original"))
    left, right = _halves(read_image(s.path(item, "cleaned/poisson")) - original)
    assert right > 0
    assert (left > 0.05 * (left + right)) != largest  # the cleaned left face carries its edit too
