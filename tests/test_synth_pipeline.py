"""`blendfix synth` end to end on real shared faces at small sizes: the items, resume, determinism."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import need

from blendfix.cli import main
from blendfix.data import layout
from blendfix.io import read_image, read_mask, write_image
from blendfix.synth import manifest
from blendfix.synth.pipeline import load_photo
from blendfix.synth.runner import SKIPPED, SkipItem

PICKS = ["hfgi_celeba_hq_256/00044.jpg", "celebamask_hq_512/0.jpg", "gpen_ffhq_1024/00000.png",
         "celebamask_hq_512/unaligned_sample.jpg"]


def tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != ".lock"}


@pytest.fixture()
def photos(faces_dir, data_dir, tmp_path) -> Path:
    """A few shared faces (one non-square) and a face-less image, linked into one folder."""
    root = tmp_path / "photos"
    for rel in PICKS:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).symlink_to(need(faces_dir / rel, rel))
    (root / "no_face.png").symlink_to(need(data_dir / "bad_inputs" / "no_face.png", "bad_inputs/no_face.png"))
    return root


def test_load_photo_crops_to_the_centre_square_resizes_and_rounds_to_8_bits(faces_dir, tmp_path):
    path = need(faces_dir / "celebamask_hq_512/unaligned_sample.jpg", "unaligned sample")
    image, facts = load_photo(path, 96)
    assert image.shape == (96, 96, 3) and image.dtype == np.float32
    assert np.allclose(image * 255, np.round(image * 255), atol=1e-4)
    h, w = read_image(path).shape[:2]
    side = min(h, w)
    assert facts == {"original_size": [h, w], "crop": [(w - side) // 2, (h - side) // 2, side]}
    with pytest.raises(SkipItem) as e:
        load_photo(path, 96, non_square="skip")
    assert e.value.kind == "non_square" and "unaligned_sample.jpg" in str(e.value)
    grid = np.zeros((64, 64, 3), np.float32)
    grid[::2] = 1.0
    write_image(tmp_path / "stripes.png", grid)
    small, _ = load_photo(tmp_path / "stripes.png", 32)
    assert np.allclose(small, 0.5, atol=1 / 255)  # INTER_AREA averages, nearest/linear would alias


def test_synth_builds_resumes_and_is_identical_for_two_worker_counts(photos, tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    args = ["synth", "-i", str(photos), "--resolution", "128", "--seed", "7"]
    assert main([*args, "-o", str(one)]) == 0
    records = manifest.read(one / layout.MANIFEST)
    assert {r["rel"] for r in records} == set(PICKS)
    skipped = manifest.read(one / SKIPPED)
    assert [(s["source"].rsplit("/", 1)[1], s["kind"]) for s in skipped] == [("no_face.png", "no_face")]
    for r in records:
        d = one / layout.ITEMS / r["id"]
        assert json.loads((d / layout.META).read_text()) == r
        assert r["attribute"] in ("eyebrows", "beard", "aging", "smile") and r["resolution"] == 128
        img = {n: read_image(d / n) for n in (layout.ORIGINAL, layout.EDITED, layout.FUSED, layout.TARGET)}
        assert all(a.shape == (128, 128, 3) for a in img.values())
        m, face = read_mask(d / layout.MASK), read_mask(d / layout.FACE_MASK)
        assert set(np.unique(face)) <= {0.0, 1.0} and 0 < face.mean() < 1
        fused = img[layout.EDITED] * m[..., None] + img[layout.ORIGINAL] * (1 - m[..., None])
        assert np.abs(fused - img[layout.FUSED]).max() <= 3 / 255  # F = T*M + I*(1-M), 8-bit files
        ys, xs = np.nonzero(face)
        outside = np.ones_like(face, bool)
        outside[ys.min():ys.max() + 1, xs.min():xs.max() + 1] = False
        assert np.array_equal(img[layout.TARGET][outside], img[layout.ORIGINAL][outside])  # target = I off M_face
        inside = face > 0
        assert np.abs(img[layout.TARGET][inside] - img[layout.ORIGINAL][inside]).mean() > 1 / 255
    unaligned = next(r for r in records if r["rel"].endswith("unaligned_sample.jpg"))
    assert unaligned["crop"][2] == min(unaligned["original_size"])

    before = tree(one)
    assert main([*args, "-o", str(one)]) == 0  # resume: nothing redone, nothing changed
    assert tree(one) == before
    assert main([*args, "-o", str(two), "--workers", "2"]) == 0
    assert tree(two) == before

    from blendfix.data.dataset import BlendDataset  # the training side reads the set as written

    data = BlendDataset(one, split="all", crop=96, flip=True)
    assert len(data) == len(records)
    sample = data[(0, 5)]
    assert sample["fused"].shape == sample["original"].shape == sample["target"].shape == (3, 96, 96)
    assert sample["attribute"] == next(r["attribute"] for r in records if r["id"] == sample["id"])


def test_every_bad_input_is_skipped_with_a_reason_never_a_crash(data_dir, tmp_path, capsys):
    bad = need(data_dir / "bad_inputs", "bad_inputs")
    out = tmp_path / "set"
    code = main(["synth", "-i", str(bad), "-o", str(out), "--resolution", "64"])
    skipped = {Path(s["source"]).name: s["kind"] for s in manifest.read(out / SKIPPED)}
    assert "error" not in skipped.values(), skipped
    for name in ("truncated.png", "truncated.jpg", "zero_bytes.png", "not_an_image.png", "bomb.png",
                 "tiny_8x8.png"):
        assert skipped[name] == "unreadable"
    assert skipped["no_face.png"] == "no_face"
    made = manifest.read(out / layout.MANIFEST)
    assert code == (0 if made else 1)
    assert "skipped" in capsys.readouterr().err
    assert main(["synth", "-i", str(bad), "-o", str(out), "--resolution", "64", "--strict"]) == 1


def test_gan_editor_batched_in_process_gives_the_same_items_as_one_by_one(photos, tmp_path):
    """A tiny random StyleGAN2 + pSp + Diff-CAM (CPU): batching changes nothing in the items."""
    import torch

    from blendfix.edit.gan import GanEditor
    from blendfix.nets.diffcam import DiffCAM
    from blendfix.nets.psp import GradualStyleEncoder, PSPEncoder
    from blendfix.nets.stylegan2 import Generator
    from blendfix.synth.config import SynthConfig
    from blendfix.synth.runner import run_synth

    torch.manual_seed(0)
    g = Generator(32, style_dim=16, n_mlp=2, channel_multiplier=1, max_channels=16).eval()
    enc = PSPEncoder(GradualStyleEncoder(n_styles=g.n_latent, widths=(8, 16, 24, 32), units=(1, 1, 1, 1),
                                         style_dim=16, input_size=32), torch.randn(g.n_latent, 16) * 0.1).eval()
    cam = DiffCAM(num_classes=17, layers=(1, 1, 2, 1), width=4, split=1).eval()
    dirs = {a: torch.randn(g.n_latent, 16) for a in ("eyebrows", "beard", "aging", "smile")}
    editor = GanEditor(generator=g, encoder=enc, diffcam=cam, directions=dirs, device="cpu", diffcam_size=64,
                       alpha=2.0, batch_size=4)
    cfg = SynthConfig(input=str(photos), editor="gan", resolution=96, seed=1)
    one = run_synth(cfg, tmp_path / "one", options={"editor": editor}, progress=False)
    many = run_synth(cfg, tmp_path / "many", options={"editor": editor}, batch_size=3, progress=False)
    assert one.made == many.made > 0 and not one.errors and not many.errors
    # batched GAN kernels round differently from one-image ones (see docs/synth.md): the same files,
    # images within one 8-bit level, records equal up to the rounding of their mask means
    one_tree, many_tree = tree(tmp_path / "one"), tree(tmp_path / "many")
    assert sorted(one_tree) == sorted(many_tree)
    for name, data in one_tree.items():
        if name.endswith(".png"):
            a = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED).astype(int)
            b = cv2.imdecode(np.frombuffer(many_tree[name], np.uint8), cv2.IMREAD_UNCHANGED).astype(int)
            assert np.abs(a - b).max() <= 1, name
        elif name.endswith((".jsonl", ".json")):
            for x, y in zip(data.decode().splitlines(), many_tree[name].decode().splitlines(), strict=True):
                rx, ry = json.loads(x), json.loads(y)
                for k in ("mask_mean", "face_mask_mean"):
                    assert rx.pop(k, 0) == pytest.approx(ry.pop(k, 0), abs=1e-3), name
                assert rx == ry, name
        else:
            assert data == many_tree[name], name
    rec = manifest.read(tmp_path / "many" / layout.MANIFEST)[0]
    assert rec["editor"] == "gan" and rec["editor_info"]["alpha"] == 2.0 and rec["editor_info"]["seed"] == rec["seed"]


@pytest.mark.parametrize("option", [["--editor", "gan"], ["--parser", "bisenet"]])
def test_missing_weights_stop_before_anything_is_written(photos, tmp_path, monkeypatch, capsys, option):
    monkeypatch.setenv("BLENDFIX_WEIGHTS", str(tmp_path / "no_weights"))
    out = tmp_path / "set"
    assert main(["synth", "-i", str(photos), "-o", str(out), *option]) == 1
    err = capsys.readouterr().err
    assert "missing pretrained weights" in err and str(tmp_path / "no_weights") in err
    assert not out.exists()
