"""Landmark label maps, the M_face rule per attribute, face_mask and the `blendfix mask` CLI."""

from __future__ import annotations

import shutil

import cv2
import numpy as np
import pytest

from blendfix.cli import main
from blendfix.errors import NoFaceError, SizeMismatchError
from blendfix.io import read_image, read_mask
from blendfix.parsing import LABEL, celebamask_to_bisenet, face_mask, get_parser, mask_from_labels, region
from blendfix.parsing.landmark_parser import labels_from_landmarks
from blendfix.parsing.landmarks import detect_landmarks

needs_mesh = pytest.mark.requires_module(
    "mediapipe", "the offline face mesh needs mediapipe==0.10.14 (pip install --no-deps)")
FACE_REGION = ("skin", "l_brow", "r_brow", "nose", "mouth", "u_lip", "l_lip")


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / (a | b).sum())


def _labels(rows: dict[str, slice], shape=(10, 10)) -> np.ndarray:
    out = np.zeros(shape, np.int64)
    for name, rs in rows.items():
        out[rs] = LABEL[name]
    return out


# -- the mask rule on hand-made label maps ------------------------------------------------------------

ORIGINAL = _labels({"skin": slice(0, 6), "l_eye": slice(1, 2), "u_lip": slice(5, 6), "neck": slice(8, 10)})
FUSED = _labels({"skin": slice(0, 5), "l_eye": slice(2, 3), "mouth": slice(5, 7), "neck": slice(8, 10)})


def test_eyes_excluded_from_either_parse():
    m = mask_from_labels(FUSED, ORIGINAL, "eyebrows")
    assert m.dtype == np.float32 and set(np.unique(m)) <= {0.0, 1.0}
    assert not m[1].any() and not m[2].any()  # eye in the original / in the fused parse
    assert m[0].all() and m[3:5].all()


def test_smile_and_aging_take_the_edited_mouth():
    for attribute in ("smile", "aging"):
        m = mask_from_labels(FUSED, ORIGINAL, attribute)
        assert m[5:7].all(), attribute  # edited mouth rows, though the original has lip/background there
    for attribute in ("eyebrows", "beard"):
        m = mask_from_labels(FUSED, ORIGINAL, attribute)
        assert m[5].all() and not m[6].any(), attribute  # lips in both parses only


def test_neck_only_for_beard_and_aging():
    for attribute, has_neck in (("beard", True), ("aging", True), ("smile", False), ("eyebrows", False),
                                ("face", False)):
        assert mask_from_labels(FUSED, ORIGINAL, attribute)[8:10].all() == has_neck, attribute


def test_unknown_attribute_and_size_mismatch():
    with pytest.raises(ValueError, match="attribute"):
        mask_from_labels(FUSED, ORIGINAL, "hairstyle")
    with pytest.raises(SizeMismatchError):
        face_mask(np.zeros((32, 32, 3), np.float32), np.zeros((32, 40, 3), np.float32), "smile",
                  parser=type("P", (), {"parse": lambda self, im, src=None: np.zeros(im.shape[:2], np.int64)})())


def test_custom_parser_object_is_used():
    class Fake:
        def parse(self, image, source=None):
            return ORIGINAL if image.mean() < 0.5 else FUSED

    m = face_mask(np.ones((10, 10, 3), np.float32), np.zeros((10, 10, 3), np.float32), "smile", parser=Fake())
    np.testing.assert_array_equal(m, mask_from_labels(FUSED, ORIGINAL, "smile"))


# -- the landmark parser on real faces ----------------------------------------------------------------

@needs_mesh
def test_landmark_parser_matches_reference_face_region(data_dir):
    face = data_dir / "faces" / "celebamask_hq_512" / "5.jpg"
    ref = celebamask_to_bisenet(cv2.imread(str(data_dir / "parsing" / "celebamask_hq_512" / "5.png"), 0))
    image = read_image(face)
    labels = get_parser("landmarks").parse(image, face)
    assert labels.shape == image.shape[:2] and labels.dtype == np.int64
    assert _iou(region(labels, FACE_REGION), region(ref, FACE_REGION)) > 0.85
    for cls in ("l_eye", "r_eye", "nose", "u_lip", "l_brow"):
        # each part lands on the reference's part (left/right as in CelebAMask-HQ)
        ours, theirs = region(labels, [cls]), region(ref, [cls])
        assert (ours & theirs).sum() > 0.4 * ours.sum(), cls


@needs_mesh
def test_geometry_only_labels_draw_every_supported_class(data_dir):
    image = read_image(data_dir / "faces" / "celebamask_hq_512" / "1.jpg")
    lm = detect_landmarks(image)
    labels = labels_from_landmarks(lm, image.shape[:2])
    for name in ("skin", "l_brow", "r_brow", "l_eye", "r_eye", "nose", "u_lip", "l_lip", "neck"):
        assert (labels == LABEL[name]).sum() > 20, name
    assert not np.isin(labels, [LABEL[n] for n in ("hair", "cloth", "eye_g", "hat")]).any()


@needs_mesh
def test_face_mask_no_face_names_the_file(data_dir):
    face = read_image(data_dir / "faces" / "celebamask_hq_512" / "0.jpg")
    blank_path = data_dir / "bad_inputs" / "no_face.png"
    blank = cv2.resize(read_image(blank_path), face.shape[1::-1])
    with pytest.raises(NoFaceError, match="no_face.png"):
        face_mask(blank, face, "smile", fused_source=blank_path)


# -- CLI ----------------------------------------------------------------------------------------------

@needs_mesh
def test_cli_folder_skips_and_lists_faceless_files(data_dir, tmp_path, capsys):
    src = tmp_path / "in"
    src.mkdir()
    shutil.copy(data_dir / "faces" / "celebamask_hq_512" / "2.jpg", src / "2.jpg")
    shutil.copy(data_dir / "bad_inputs" / "no_face.png", src / "no_face.png")
    shutil.copy(data_dir / "bad_inputs" / "two_faces.png", src / "two_faces.png")
    rc = main(["mask", "-i", str(src), "--attribute", "beard", "-o", str(tmp_path / "out")])
    assert rc == 1
    err = capsys.readouterr().err
    assert "no_face.png" in err and "no face found" in err and "1 file(s) failed" in err
    m = read_mask(tmp_path / "out" / "2_mask.png")
    assert m.shape == (512, 512) and 0.1 < m.mean() < 0.6
    assert (tmp_path / "out" / "2_overlay.png").is_file()
    # documented choice: the largest face only (in two_faces.png the right-hand one)
    two = read_mask(tmp_path / "out" / "two_faces_mask.png")
    assert two[:, two.shape[1] // 2:].sum() > 500 and two[:, : two.shape[1] // 2].sum() == 0
    assert not (tmp_path / "out" / "no_face_mask.png").exists()


@needs_mesh
def test_cli_pair_smile(data_dir, tmp_path):
    face = data_dir / "faces" / "celebamask_hq_512" / "3.jpg"
    rc = main(["mask", "-i", str(face), "--fused", str(face), "--attribute", "smile", "-o", str(tmp_path)])
    assert rc == 0
    m = read_mask(tmp_path / "3_mask.png")
    ref = celebamask_to_bisenet(cv2.imread(str(data_dir / "parsing" / "celebamask_hq_512" / "3.png"), 0))
    assert _iou(m > 0.5, region(ref, FACE_REGION)) > 0.8


def test_cli_size_mismatch_is_reported(data_dir, tmp_path, capsys):
    rc = main(["mask", "-i", str(data_dir / "bad_inputs" / "mismatch_original.png"), "--fused",
               str(data_dir / "bad_inputs" / "mismatch_fused.png"), "-o", str(tmp_path)])
    assert rc == 1
    assert "differ in size" in capsys.readouterr().err
