"""`blendfix edit --editor gan` from the command line, with tiny random checkpoint files in the published layouts.

The pSp file has psp_ffhq_encode.pt's layout (``state_dict`` with ``encoder.*`` / ``decoder.*``, ``opts``,
``latent_avg``; its decoder is the generator), the Diff-CAM file diff_cam_weight.pt's (a raw state_dict,
architecture read off its keys), and the direction sits where the registry looks for EOGI's Smiling.npy.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tiny_gan import write_tiny_gan

from blendfix.cli import main
from blendfix.edit.gan import GanEditor
from blendfix.io import read_image, to_uint8, write_image

torch.set_num_threads(1)
OUTPUTS = ("original", "inverted", "edited", "mask", "fused", "strip")


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """(pSp file, Diff-CAM file, weights folder holding directions/eogi/Smiling.npy)."""
    return write_tiny_gan(tmp_path_factory.mktemp("ckpt"))


@pytest.fixture()
def photo(tmp_path):
    rng = np.random.default_rng(2)
    img = np.clip(np.cumsum(rng.normal(0, 0.02, (48, 40, 3)), axis=1) + 0.5, 0, 1).astype(np.float32)
    return write_image(tmp_path / "in" / "face one.png", img)


def run(capsys, *args) -> tuple[int, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err and "internal error" not in out + err
    return code, out + err


def test_gan_edit_runs_from_checkpoint_files(checkpoints, photo, tmp_path, capsys, monkeypatch):
    psp, cam, weights = checkpoints
    monkeypatch.setenv("BLENDFIX_WEIGHTS", str(weights))
    out = tmp_path / "out"
    code, text = run(capsys, "edit", "-i", photo, "--editor", "gan", "-a", "smile", "--encoder", psp,
                     "--diffcam", cam, "--device", "cpu", "-o", out)
    assert code == 0, text
    for k in OUTPUTS:
        assert (out / "items" / "face_one_smile" / f"{k}.png").is_file()
    got = {k: read_image(out / "items" / "face_one_smile" / f"{k}.png") for k in ("inverted", "edited", "fused")}
    for v in got.values():
        assert v.shape == (48, 40, 3)  # back at the photo's size
    # the CLI used these files: the same editor built in Python from them gives the same images
    ref = GanEditor(encoder=psp, diffcam=cam, device="cpu").edit(read_image(photo), "smile")
    for k in ("inverted", "edited", "fused"):
        assert np.abs(got[k] - to_uint8(getattr(ref, k)) / 255.0).max() <= 1 / 255 + 1e-6
    assert np.abs(got["edited"] - got["inverted"]).mean() > 0.005  # the direction moved the image


@pytest.mark.parametrize("explicit", [False, True])
def test_gan_edit_without_the_files_lists_every_missing_one(photo, tmp_path, capsys, monkeypatch, explicit):
    empty = tmp_path / "weights"
    monkeypatch.setenv("BLENDFIX_WEIGHTS", str(empty))
    given = ["--encoder", tmp_path / "psp_ffhq_encode.pt", "--diffcam", tmp_path / "diff_cam_weight.pt"]
    out = tmp_path / "out"
    code, text = run(capsys, "edit", "-i", photo, "--editor", "gan", "-a", "smile", *(given if explicit else []),
                     "--device", "cpu", "-o", out)
    assert code == 1 and text.startswith("error: ")
    assert f"put directions/eogi/Smiling.npy at {empty / 'directions' / 'eogi' / 'Smiling.npy'}" in text
    if explicit:
        assert f"{tmp_path / 'psp_ffhq_encode.pt'}: no such file" in text
        assert f"{tmp_path / 'diff_cam_weight.pt'}: no such file" in text
    else:
        assert f"put psp_ffhq_encode.pt at {empty / 'psp_ffhq_encode.pt'}" in text
        assert f"put diff_cam_weight.pt at {empty / 'diff_cam_weight.pt'}" in text
        assert "blendfix never downloads" in text
    assert not out.exists()  # refused before any photo was read
