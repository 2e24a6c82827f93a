"""`blendfix blend` on a tiny folder and on the shared awkward masks."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from blendfix.blend import seamless_clone
from blendfix.cli import main
from blendfix.io import read_image, to_uint8, write_image, write_mask


def _smooth(rng, h=64, w=80):
    img = cv2.GaussianBlur(rng.normal(size=(h, w, 3)).astype(np.float32), (0, 0), 3)
    return (img - img.min()) / (img.max() - img.min())


def _ellipse(h=64, w=80, cx=40, cy=32):
    m = np.zeros((h, w), np.float32)
    cv2.ellipse(m, (cx, cy), (20, 24), 0, 0, 360, 1.0, -1)
    return m


@pytest.fixture()
def folders(tmp_path):
    rng = np.random.default_rng(0)
    for sub in ("orig", "edit", "mask"):
        (tmp_path / sub).mkdir()
    for stem in ("a", "b"):
        write_image(tmp_path / "orig" / f"{stem}.png", _smooth(rng))
        write_image(tmp_path / "edit" / f"{stem}.png", _smooth(rng))
        m = _ellipse(cx=44)
        if stem == "a":  # an even-sized box: the paper's center shifts it by one pixel
            m = np.zeros_like(m)
            m[10:50, 20:60] = 1.0
        write_mask(tmp_path / "mask" / f"{stem}.png", m)
    return tmp_path


def _run(*args):
    return main(["blend", *map(str, args)])


def test_folder_mode_matches_the_python_api(folders):
    out = folders / "out"
    assert _run("-i", folders / "orig", "--edited", folders / "edit", "--mask", folders / "mask", "-o", out,
                "--device", "cpu") == 0
    for stem in ("a", "b"):
        dst = to_uint8(read_image(folders / "orig" / f"{stem}.png"))
        src = to_uint8(read_image(folders / "edit" / f"{stem}.png"))
        m = cv2.imread(str(folders / "mask" / f"{stem}.png"), cv2.IMREAD_GRAYSCALE)
        expected = seamless_clone(src, dst, m)
        got = to_uint8(read_image(out / f"{stem}.png"))
        assert np.array_equal(got, expected)
        assert not np.array_equal(got, dst)


def test_opencv_backend_and_single_mask_for_a_folder(folders):
    out = folders / "out"
    assert _run("-i", folders / "orig", "--edited", folders / "edit", "--mask", folders / "mask" / "a.png",
                "-o", out, "--backend", "opencv", "--center", "paper") == 0
    torch_out = folders / "out_t"
    assert _run("-i", folders / "orig", "--edited", folders / "edit", "--mask", folders / "mask" / "a.png",
                "-o", torch_out) == 0
    for stem in ("a", "b"):
        a, b = (to_uint8(read_image(d / f"{stem}.png")).astype(int) for d in (out, torch_out))
        assert np.abs(a - b).max() > 1  # paper center shifts this even-sized mask by one pixel


def test_folder_continues_past_a_bad_file_and_exits_nonzero(folders, capsys):
    (folders / "edit" / "b.png").write_bytes(b"not an image")
    out = folders / "out"
    assert _run("-i", folders / "orig", "--edited", folders / "edit", "--mask", folders / "mask", "-o", out) == 1
    assert (out / "a.png").is_file() and not (out / "b.png").exists()
    err = capsys.readouterr().err
    assert "1 file(s) failed" in err and "b.png" in err


def test_unmatched_names_and_center_backend_clash(folders, capsys):
    (folders / "mask" / "b.png").unlink()
    assert _run("-i", folders / "orig", "--edited", folders / "edit", "--mask", folders / "mask",
                "-o", folders / "out") == 1
    err = capsys.readouterr().err
    assert "no mask file with the same name stem or <stem>_face_mask or <stem>_mask in" in err and "b.png" in err
    assert _run("-i", folders / "orig", "--edited", folders / "edit", "--mask", folders / "mask" / "a.png",
                "-o", folders / "out", "--center", "paper") != 0


@pytest.fixture(scope="module")
def bad(data_dir):
    from conftest import need
    return need(data_dir / "bad_inputs", "bad_inputs")


def _blend_bad(bad, tmp_path, mask, original="лицо 1.png", edited="gray_8bit.png"):
    out = tmp_path / "out"
    code = _run("-i", bad / original, "--edited", bad / edited, "--mask", bad / mask, "-o", out)
    return code, out / f"{(bad / original).stem}.png"


def test_all_zero_mask_returns_the_original_with_a_warning(bad, tmp_path, capsys):
    code, out = _blend_bad(bad, tmp_path, "mask_all_zero.png")
    assert code == 0
    assert np.array_equal(to_uint8(read_image(out)), to_uint8(read_image(bad / "лицо 1.png")))
    assert "warning" in capsys.readouterr().err


@pytest.mark.parametrize("mask", ["mask_all_one.png", "mask_soft.png", "mask_3ch.png"])
def test_awkward_masks_work(bad, tmp_path, mask):
    code, out = _blend_bad(bad, tmp_path, mask)
    assert code == 0
    got = to_uint8(read_image(out)).astype(int)
    orig = to_uint8(read_image(bad / "лицо 1.png")).astype(int)
    assert got.shape == orig.shape and np.abs(got - orig).max() > 10
    assert np.array_equal(got[0], orig[0])  # the image frame is never re-solved


def test_wrong_size_mask_and_mismatched_pair_get_clear_errors(bad, tmp_path, capsys):
    code, out = _blend_bad(bad, tmp_path, "mask_wrong_size.png")
    assert code == 1 and not out.exists()
    err = capsys.readouterr().err
    assert "mask_wrong_size.png" in err and "128x128" in err and "256x256" in err
    code, out = _blend_bad(bad, tmp_path, "mask_all_one.png", original="mismatch_original.png",
                           edited="mismatch_fused.png")
    assert code == 1 and not out.exists()
    err = capsys.readouterr().err
    assert "mismatch_original.png: 256x256" in err and "mismatch_fused.png: 128x128" in err
