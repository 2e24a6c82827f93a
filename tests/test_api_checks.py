"""The Python API refuses arrays outside its convention (float (H, W, 3) in [0, 1]) with a clear ValueError.

Before, a uint8 photo gave "no face found" (it was scaled by 255 again) or a white output.
"""

from __future__ import annotations

import numpy as np
import pytest

from blendfix import clean
from blendfix.edit import get_editor
from blendfix.parsing import face_mask
from blendfix.tensors import check_image, check_mask

RNG = np.random.default_rng(0)
IMAGE = RNG.uniform(0, 1, (64, 48, 3)).astype(np.float32)


@pytest.mark.parametrize("bad, message", [
    ((IMAGE * 255).astype(np.uint8), r"original: a uint8 array \(64, 48, 3\); blendfix takes float RGB"),
    (IMAGE * 255, r"original: values in \[0\.\d+, 25\d(\.\d+)?\] \(64, 48, 3\); expected float .* \(0-255 values\? "
                  r"divide by 255\)"),
    (IMAGE[..., 0], r"original: shape \(64, 48\); expected an \(H, W, 3\) RGB image"),
    (np.full((64, 48, 3), np.nan, np.float32), "NaN"),
])
def test_clean_names_the_shape_dtype_and_range(bad, message):
    with pytest.raises(ValueError, match=message):
        clean(bad, IMAGE, method="fused")


def test_fused_edited_and_mask_are_checked_too():
    with pytest.raises(ValueError, match=r"fused: a uint8 array"):
        clean(IMAGE, (IMAGE * 255).astype(np.uint8), method="fused")
    with pytest.raises(ValueError, match=r"mask: values in \[255, 255\] \(64, 48\)"):
        clean(IMAGE, edited=IMAGE, mask=np.full((64, 48), 255.0, np.float32), method="fused")
    out = clean(IMAGE, edited=1 - IMAGE, mask=np.ones((64, 48), np.float32), method="fused")
    np.testing.assert_allclose(out, 1 - IMAGE, atol=1e-6)  # in-range input still works


@pytest.mark.parametrize("editor", ["synthetic", "paste"])
def test_editors_refuse_uint8_before_looking_for_a_face(editor):
    with pytest.raises(ValueError, match=r"image: a uint8 array \(64, 48, 3\)") as ei:
        get_editor(editor).edit((IMAGE * 255).astype(np.uint8), "smile")
    assert "no face" not in str(ei.value)


def test_face_mask_refuses_0_255_floats():
    with pytest.raises(ValueError, match=r"fused f\.png: values in .*divide by 255"):
        face_mask(IMAGE * 255, IMAGE, "smile", fused_source="f.png")


def test_check_helpers_keep_good_arrays_and_clip_rounding_slack():
    a = IMAGE.copy()
    a[0, 0, 0] = 1 + 5e-5
    assert check_image(a).max() == 1.0 and check_image(a).dtype == np.float32
    assert check_mask(np.zeros((4, 4, 1), bool)).shape == (4, 4)
    with pytest.raises(ValueError, match=r"mask: 4x4 but the image is 5x4"):
        check_mask(np.zeros((4, 4)), size=(4, 5))
