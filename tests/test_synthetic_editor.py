"""The synthetic editor: reproducible, localised edits with CAM-like masks, on real shared faces."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import pytest

from blendfix.attributes import ATTRIBUTES
from blendfix.edit import get_editor
from blendfix.edit.cam import cam_like_mask, fold_mask
from blendfix.edit.synthetic import SyntheticConfig, SyntheticEditor
from blendfix.io import read_image

# find_spec, not import: the face mesh uses mediapipe's graph runner, not its `solutions` layer
needs_mesh = pytest.mark.requires_module(
    "mediapipe", "face landmarks need mediapipe==0.10.14 (installed by `make venv`)")

FACES = ("celebamask_hq_512/3.jpg", "gfpgan_cropped_512/Adele_crop.png")
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def faces(faces_dir):
    """Two real 512² faces with their landmarks (detected once)."""
    from blendfix.parsing.landmarks import detect_landmarks

    out = []
    for rel in FACES:
        img = read_image(faces_dir / rel)
        out.append((img, detect_landmarks(img, source=rel)))
    return out


def _digest(r) -> str:
    h = hashlib.sha256()
    for a in (r.inverted, r.edited, r.mask):
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


@needs_mesh
def test_same_seed_same_result_across_threads_and_processes(faces, faces_dir):
    img, lm = faces[0]
    ed = SyntheticEditor()
    first = ed.edit(img, "smile", seed=7, landmarks=lm)
    with ThreadPoolExecutor(2) as pool:
        again = list(pool.map(lambda _: ed.edit(img, "smile", seed=7, landmarks=lm), range(2)))
    assert all(_digest(r) == _digest(first) for r in again)
    code = (
        "import sys; import numpy as np, hashlib\n"
        "from blendfix.io import read_image\nfrom blendfix.edit.synthetic import SyntheticEditor\n"
        f"img = read_image({str(faces_dir / FACES[0])!r}); lm = np.load(sys.argv[1])\n"
        "r = SyntheticEditor().edit(img, 'smile', seed=7, landmarks=lm)\n"
        "h = hashlib.sha256()\n"
        "[h.update(np.ascontiguousarray(a).tobytes()) for a in (r.inverted, r.edited, r.mask)]\n"
        "print(h.hexdigest())\n"
    )
    lm_file = ROOT / ".pytest_lm.npy"
    try:
        np.save(lm_file, lm)
        env = {**os.environ, "OMP_NUM_THREADS": "2",
               "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
        out = subprocess.run([sys.executable, "-c", code, str(lm_file)], capture_output=True, text=True, env=env,
                             check=True)
    finally:
        lm_file.unlink(missing_ok=True)
    assert out.stdout.strip().splitlines()[-1] == _digest(first)


@needs_mesh
def test_different_seeds_differ(faces):
    img, lm = faces[0]
    ed = SyntheticEditor()
    a, b = ed.edit(img, "beard", seed=0, landmarks=lm), ed.edit(img, "beard", seed=1, landmarks=lm)
    assert np.abs(a.inverted - b.inverted).mean() > 1e-3
    assert np.abs(a.mask - b.mask).max() > 0.05


@needs_mesh
def test_inversion_shared_by_attributes_of_one_seed(faces):
    img, lm = faces[0]
    ed = SyntheticEditor()
    a, b = ed.edit(img, "smile", seed=3, landmarks=lm), ed.edit(img, "aging", seed=3, landmarks=lm)
    np.testing.assert_array_equal(a.inverted, b.inverted)  # I' = G(w) does not depend on the edit


@needs_mesh
def test_fused_equals_original_outside_mask_and_differs_inside(faces):
    img, lm = faces[1]
    r = SyntheticEditor().edit(img, "smile", seed=0, landmarks=lm)
    f, m = r.fused, r.mask
    outside, inside = m == 0, m > 0.5
    assert outside.mean() > 0.2 and inside.mean() > 0.01
    np.testing.assert_array_equal(f[outside], img[outside])
    assert np.abs(f[inside] - img[inside]).mean() > 0.02


@needs_mesh
def test_mask_soft_coarse_and_in_range(faces):
    img, lm = faces[0]
    m = SyntheticEditor().edit(img, "eyebrows", seed=2, landmarks=lm).mask
    assert m.dtype == np.float32 and m.shape == img.shape[:2]
    assert m.min() >= 0 and m.max() <= 1 and m.max() > 0.9
    assert len(np.unique(m)) > 200  # soft, not a binary cut-out
    # coarse: a 16x16 summary reproduces it (no fine detail, as a CAM upsampled from a small grid)
    small = cv2.resize(m, (16, 16), interpolation=cv2.INTER_AREA)
    back = cv2.resize(small, m.shape[::-1], interpolation=cv2.INTER_LINEAR)
    assert np.abs(back - m).mean() < 0.02


@needs_mesh
def test_folded_mask_stays_at_most_half(faces):
    img, lm = faces[0]
    r = SyntheticEditor(fold=True).edit(img, "smile", seed=0, landmarks=lm)
    assert r.mask.max() <= 0.5 and r.mask.max() > 0.3
    np.testing.assert_allclose(fold_mask(np.float32([0.2, 0.5, 0.8, 1.0])), [0.2, 0.5, 0.2, 0.0], atol=1e-6)


def test_nearest256_mask_is_blocky_on_large_images():
    rng = np.random.default_rng(0)
    region = np.zeros((1024, 1024), np.float32)
    region[600:800, 300:700] = 1
    m = cam_like_mask(region, rng, upsample="nearest256")
    assert m.shape == (1024, 1024)
    blocks = m.reshape(256, 4, 256, 4)
    assert np.all(blocks == blocks[:, :1, :, :1])  # 4x4 constant blocks
    assert np.all(cam_like_mask(np.zeros((64, 64), np.float32), rng) == 0)


@needs_mesh
@pytest.mark.parametrize("index", [0, 1])
def test_all_attributes_on_real_faces(faces, index):
    img, lm = faces[index]
    ed = get_editor("synthetic")
    for attr in ATTRIBUTES:
        r = ed.edit(img, attr, seed=0, landmarks=lm)
        assert r.inverted.shape == r.edited.shape == img.shape and r.mask.shape == img.shape[:2]
        assert r.info["editor"] == "synthetic" and r.info["seed"] == 0 and r.attribute == attr
        assert r.info["config"]["strength"] == 1.0
        change = np.abs(r.edited - r.inverted).mean(axis=2)
        # the attribute change is where the mask points, not spread evenly
        assert change[r.mask > 0.5].mean() > 2 * change[r.mask == 0].mean(), attr
        # I' is a re-rendering, not the photo: it drifted but stays recognisable
        assert 0.01 < np.abs(r.inverted - img).mean() < 0.15


@needs_mesh
def test_large_input_kept_at_its_size(faces_dir):
    img = read_image(faces_dir / "celebamask_hq_1024/0.jpg")
    r = SyntheticEditor(render_size=256).edit(img, "aging", seed=0)
    assert r.edited.shape == img.shape and r.mask.shape == img.shape[:2]
    assert r.info["render_size"] == [256, 256]


def test_config_checks():
    with pytest.raises(ValueError, match="detail"):
        SyntheticConfig(detail=-1)
    with pytest.raises(ValueError, match="unknown keys"):
        SyntheticEditor(not_a_field=1)
    with pytest.raises(ValueError, match="cam_upsample"):
        SyntheticEditor(cam_upsample="cubic")
    with pytest.raises(ValueError, match="attribute"):
        SyntheticEditor().edit(np.zeros((64, 64, 3), np.float32), "glasses")


@needs_mesh
def test_no_face_raises_naming_the_source(data_dir):
    from blendfix.errors import NoFaceError

    img = read_image(data_dir / "bad_inputs/no_face.png")
    with pytest.raises(NoFaceError, match="no_face"):
        SyntheticEditor().edit(img, "smile", source="no_face.png")


@needs_mesh
def test_cli_folder_lists_failed_file(tmp_path, faces_dir, data_dir, capsys):
    from blendfix.cli import main

    src = tmp_path / "in"
    src.mkdir()
    shutil.copy(faces_dir / "hfgi_celeba_hq_256/00044.jpg", src / "face.jpg")
    shutil.copy(data_dir / "bad_inputs/no_face.png", src / "no_face.png")
    (src / "broken.png").write_bytes(b"not an image")
    out = tmp_path / "out"
    code = main(["edit", "-i", str(src), "-a", "smile", "-o", str(out), "--seed", "1"])
    err = capsys.readouterr().err
    assert code == 1
    assert "no_face.png" in err and "broken.png" in err and "2 file(s) failed, 1 done" in err
    for kind in ("inverted", "edited", "mask", "fused", "strip"):
        assert (out / f"face_{kind}.png").is_file()
    assert not list(out.glob("no_face*"))
    strip = read_image(out / "face_strip.png")
    assert strip.shape[1] > 4 * strip.shape[0]  # five panels side by side


def test_cli_gan_editor_gets_alpha_device_and_checkpoints(tmp_path, monkeypatch):
    """`--editor gan` forwards its options to get_editor("gan", ...) and needs no landmarks."""
    import blendfix.cli.edit as cli_edit
    from blendfix.cli import main
    from blendfix.edit.base import EditResult
    from blendfix.io import write_image

    seen: dict = {}

    class Recorder:
        name = "gan"

        def edit(self, image, attribute, *, seed=0):
            seen.setdefault("calls", []).append((attribute, seed))
            mask = np.zeros(image.shape[:2], np.float32)
            mask[:16] = 1.0
            return EditResult(image, image, 1.0 - image, mask, attribute, {"editor": "gan"})

    def fake_get_editor(name, **options):
        seen["name"], seen["options"] = name, options
        return Recorder()

    monkeypatch.setattr(cli_edit, "get_editor", fake_get_editor)
    photo = tmp_path / "p.png"
    write_image(photo, np.full((48, 64, 3), 0.25, np.float32))
    out = tmp_path / "out"
    code = main(["edit", "-i", str(photo), "-a", "beard", "-a", "smile", "--editor", "gan", "--alpha", "10",
                 "--device", "cpu", "--generator", "g.pt", "--encoder", "psp.pt", "--seed", "4", "-o", str(out)])
    assert code == 0
    assert seen["name"] == "gan"
    opts = seen["options"]
    assert opts["alpha"] == 10 and opts["device"] == "cpu"
    assert opts["generator"] == "g.pt" and opts["encoder"] == "psp.pt" and "diffcam" not in opts
    assert seen["calls"] == [("beard", 4), ("smile", 4)]
    fused = read_image(out / "p_smile_fused.png")
    assert np.allclose(fused[:16], 0.75, atol=1 / 255) and np.allclose(fused[16:], 0.25, atol=1 / 255)


@needs_mesh
def test_strengths_switch_effects_off(faces):
    """Every degradation is a parameter: all at 0 give I' == I; no edit and no entanglement give T == I'."""
    img, lm = faces[1]
    off = SyntheticEditor(detail=0, texture=0, colour=0, geometry=0, background=0, strength=0, entangle=0)
    r = off.edit(img, "aging", seed=5, landmarks=lm)
    np.testing.assert_array_equal(r.inverted, img)
    np.testing.assert_array_equal(r.edited, r.inverted)
    assert r.mask.max() == 0
    stronger = SyntheticEditor(colour=3.0).edit(img, "aging", seed=5, landmarks=lm)
    default = SyntheticEditor().edit(img, "aging", seed=5, landmarks=lm)
    assert np.abs(stronger.inverted - img).mean() > np.abs(default.inverted - img).mean()
