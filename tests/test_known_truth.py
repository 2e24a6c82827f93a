"""Known truth: the synthetic and paste editors' artifact-free results, in synth items and as targets."""

from __future__ import annotations

import hashlib
import importlib.util
import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from blendfix.data import layout
from blendfix.data.dataset import BlendDataset
from blendfix.edit import get_editor
from blendfix.edit.paste import EDGES, SHAPES, PasteEditor
from blendfix.edit.synthetic import truth_weight
from blendfix.io import read_image

needs_mesh = pytest.mark.skipif(importlib.util.find_spec("mediapipe") is None and os.environ.get("CI") != "true",
                                reason="face landmarks need mediapipe==0.10.14 (installed by `make venv`)")
FACE = "celebamask_hq_512/3.jpg"


@pytest.fixture(scope="module")
def face(faces_dir):
    """One real face at 256² with its landmarks."""
    from blendfix.parsing.landmarks import detect_landmarks

    img = cv2.resize(read_image(faces_dir / FACE), (256, 256), interpolation=cv2.INTER_AREA)
    return img, detect_landmarks(img, source=FACE)


def _sha(a: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()


def test_truth_weight_keeps_strong_mask_drops_weak_and_has_no_step():
    m = np.zeros((128, 128), np.float32)
    m[:, 64:] = 1.0          # a hard step in M
    m[:20, :20] = 0.08       # a faint CAM spill: the edit must not be invented there
    w = truth_weight(m)
    assert w[64, 120] > 0.99 and w[10, 10] < 0.01
    assert np.abs(np.diff(w, axis=1)).max() < 0.25  # a hard step (1.0) spread over several pixels
    with pytest.raises(ValueError, match=r"\(H, W\)"):
        truth_weight(np.zeros((4, 4, 3)))


@needs_mesh
@pytest.mark.parametrize("editor", ["synthetic", "paste"])
def test_truth_is_deterministic_and_keeps_the_edit_without_the_artifacts(face, editor):
    img, lm = face
    ed = get_editor(editor)
    for attribute in ("smile", "beard", "aging", "eyebrows"):
        a = ed.edit(img, attribute, seed=5, landmarks=lm)
        b = ed.edit(img, attribute, seed=5, landmarks=lm)
        assert a.truth is not None and _sha(a.truth) == _sha(b.truth)
        assert a.kind.startswith(f"{editor}:")
        assert a.truth.shape == img.shape and a.truth.dtype == np.float32
        assert 0.0 <= a.truth.min() and a.truth.max() <= 1.0
        changed = np.abs(a.truth - img).max(-1) > 0.02
        # a paste's intended change may be subtle (a retouch), a synthetic edit never is
        assert changed.mean() > (0.002 if editor == "synthetic" else 0.0), f"{editor}/{attribute}: edit lost"
        # no edit where the fused image shows none (far from the mask)
        far = cv2.GaussianBlur(a.mask, (0, 0), 8) < 1e-3
        assert np.abs(a.truth - img)[far].max() < 1e-4
    other = ed.edit(img, "smile", seed=6, landmarks=lm)
    assert _sha(other.truth) != _sha(ed.edit(img, "smile", seed=5, landmarks=lm).truth)


@needs_mesh
def test_paste_pairs_cover_every_shape_and_edge_and_the_truth_has_no_step(face):
    img, lm = face
    ed = PasteEditor()
    plans = {ed.plan("smile", s) for s in range(40)}
    assert {p.shape for p in plans} == set(SHAPES) and {p.edge for p in plans} == set(EDGES)
    for seed in range(6):
        r = ed.edit(img, "smile", seed=seed, landmarks=lm)
        hard = r.info["edge"] == "hard"
        band = (cv2.dilate((r.mask > 0.5).astype(np.uint8), np.ones((3, 3))) -
                cv2.erode((r.mask > 0.5).astype(np.uint8), np.ones((3, 3)))).astype(bool)
        step_f = np.abs(np.gradient(r.fused.mean(-1))[1])[band].mean()
        step_t = np.abs(np.gradient(r.truth.mean(-1))[1])[band].mean()
        if hard:  # the fused pair has a visible seam along the paste boundary; the truth does not
            assert step_f > step_t
    with pytest.raises(ValueError, match="strength"):
        PasteEditor(strength=-1)


@needs_mesh
def test_synth_items_have_truth_and_kind_and_workers_do_not_change_a_byte(faces_dir, tmp_path):
    from blendfix.synth.config import SynthConfig
    from blendfix.synth.runner import run_synth

    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("3.jpg", "5.jpg"):
        (photos / name).symlink_to(faces_dir / "celebamask_hq_512" / name)
    cfg = SynthConfig(input=str(photos), editor="mixed", variants=3, resolution=64)
    one = run_synth(cfg, tmp_path / "one", workers=1, progress=False)
    two = run_synth(cfg, tmp_path / "two", workers=2, progress=False)
    assert one.made == two.made == 6 and not one.skipped

    def tree(d: Path) -> dict[str, bytes]:
        return {p.relative_to(d).as_posix(): p.read_bytes() for p in sorted(d.rglob("*"))
                if p.is_file() and p.name != ".lock"}

    assert tree(tmp_path / "one") == tree(tmp_path / "two")
    records = [__import__("json").loads(x) for x in (tmp_path / "one" / layout.MANIFEST).read_text().splitlines()]
    assert {r["editor"] for r in records} == {"synthetic", "paste"}
    for r in records:
        assert r["layout"] == layout.LAYOUT_VERSION and r["has_truth"] and r["kind"].split(":")[0] == r["editor"]
        assert (tmp_path / "one" / layout.ITEMS / r["id"] / layout.TRUTH).is_file()
    # the truth is a training target; an old set (no truth.png) refuses data.target=truth clearly
    ds = BlendDataset(tmp_path / "one", "all", target="truth")
    s = ds[0]
    assert np.allclose(s["target"].permute(1, 2, 0).numpy(),
                       read_image(ds.items[0] / layout.TRUTH), atol=1 / 255)
    for item in (tmp_path / "two" / layout.ITEMS).iterdir():
        (item / layout.TRUTH).unlink()
    with pytest.raises(ValueError, match="no item has truth.png"):
        BlendDataset(tmp_path / "two", "all", target="truth")
    mixed = BlendDataset(tmp_path / "two", "all", target="mix")  # falls back to the Poisson target
    assert mixed._target_file(mixed.items[0], 123) == layout.TARGET
