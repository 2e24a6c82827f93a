"""The offline face mesh: 478 points on real faces, clear errors without a face, largest of two faces."""

from __future__ import annotations

import numpy as np
import pytest

from blendfix.errors import NoFaceError
from blendfix.io import read_image
from blendfix.parsing.landmarks import LANDMARK_REGIONS, NUM_LANDMARKS, detect_all_landmarks, detect_landmarks

# find_spec, not import: importing mediapipe itself runs its `solutions` layer, which this package bypasses
pytestmark = pytest.mark.requires_module(
    "mediapipe", "the offline face mesh needs mediapipe==0.10.14 (pip install --no-deps)")


def _region_centre(lm: np.ndarray, name: str) -> np.ndarray:
    return lm[LANDMARK_REGIONS[name]].mean(axis=0)


def test_landmarks_on_real_face_are_anatomically_ordered(data_dir):
    path = data_dir / "faces" / "celebamask_hq_512" / "0.jpg"
    image = read_image(path)
    lm = detect_landmarks(image, path)
    assert lm.shape == (NUM_LANDMARKS, 2) and lm.dtype == np.float32
    h, w = image.shape[:2]
    oval = lm[LANDMARK_REGIONS["face_oval"]]
    assert oval[:, 0].min() >= -0.05 * w and oval[:, 0].max() <= 1.05 * w
    # subject's left eye/brow are on the image's right; brows above eyes above nose above lips
    assert _region_centre(lm, "left_eye")[0] > _region_centre(lm, "right_eye")[0]
    assert _region_centre(lm, "left_brow")[1] < _region_centre(lm, "left_eye")[1]
    assert _region_centre(lm, "left_eye")[1] < _region_centre(lm, "nose")[1] < _region_centre(lm, "lips_outer")[1]
    # the face of an aligned 512x512 crop spans a large part of the frame
    assert oval[:, 0].max() - oval[:, 0].min() > 0.4 * w


def test_uint8_and_float_inputs_agree(data_dir):
    path = data_dir / "faces" / "celebamask_hq_512" / "1.jpg"
    image = read_image(path)
    a = detect_landmarks(image, path)
    b = detect_landmarks((image * 255 + 0.5).astype(np.uint8), path)
    assert np.abs(a - b).max() < 1.0


def test_regions_are_valid_mesh_indices():
    for name in ("face_oval", "left_brow", "right_brow", "left_eye", "right_eye", "lips_outer", "lips_inner", "nose"):
        idx = LANDMARK_REGIONS[name]
        assert len(idx) >= 4 and len(set(idx)) == len(idx)
        assert all(0 <= i < NUM_LANDMARKS for i in idx)


def test_no_face_raises_naming_the_file(data_dir):
    path = data_dir / "bad_inputs" / "no_face.png"
    with pytest.raises(NoFaceError, match="no_face.png"):
        detect_landmarks(read_image(path), path)


def test_two_faces_returns_the_largest(data_dir):
    path = data_dir / "bad_inputs" / "two_faces.png"
    image = read_image(path)
    faces = detect_all_landmarks(image, path)
    assert len(faces) == 2
    widths = [np.ptp(f[LANDMARK_REGIONS["face_oval"], 0]) for f in faces]
    assert widths[0] >= widths[1]
    np.testing.assert_array_equal(detect_landmarks(image, path), faces[0])


def test_bad_shape_is_a_value_error():
    with pytest.raises(ValueError, match="RGB"):
        detect_landmarks(np.zeros((64, 64), np.float32))


def test_worker_processes_get_their_own_model(data_dir):
    """'spawn' workers build their own graph; a fork after first use gets a clear error, not a crash."""
    import multiprocessing
    import os
    import sys

    from blendfix.errors import BlendfixError

    path = data_dir / "faces" / "celebamask_hq_512" / "0.jpg"
    image = read_image(path)
    expected = detect_landmarks(image, path)
    if sys.platform.startswith("linux"):
        pid = os.fork()
        if pid == 0:  # child: must refuse clearly
            try:
                detect_landmarks(image, path)
                code = 1
            except BlendfixError as e:
                code = 3 if "spawn" in str(e) else 2
            except BaseException:
                code = 4
            os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 3
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        got = pool.apply(detect_landmarks, (image, str(path)))
    np.testing.assert_allclose(got, expected, atol=1e-3)


def test_mediapipe_chatter_is_filtered_but_real_errors_pass(capfd):
    import os

    from blendfix.parsing.landmarks import _quiet_stderr

    with _quiet_stderr():
        os.write(2, b"W0000 00:00:1 feedback manager chatter\nINFO: Created TensorFlow Lite XNNPACK delegate\n"
                    b"E0000 a real error\n")
    err = capfd.readouterr().err
    assert "a real error" in err and "chatter" not in err and "XNNPACK" not in err
