"""`blendfix serve` without a browser: the page's actions on real uploads, bad uploads, the temp folder.

The browser drives the same functions in tests/test_serve_browser.py.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, need

import blendfix
from blendfix.cleaning import DEFAULT_WEIGHTS
from blendfix.cli import main
from blendfix.io import read_image, write_image, write_mask
from blendfix.registry import available
from blendfix.serve.pipeline import EXAMPLE, Models, UploadError, Workspace, clean_pair, try_edit, user_message
from blendfix.serve.views import LABEL_HEIGHT, ZOOM_TILE

needs_mesh = pytest.mark.requires_module(
    "mediapipe", "face crops and the Poisson face mask need mediapipe==0.10.14 (pip install --no-deps)")
needs_gradio = pytest.mark.requires_module("gradio", "the page needs the `serve` extra: pip install 'blendfix[serve]'")
#: the network is offered whenever the default cleaner (shipped inside the package) is present
NETWORK = {"network"} if available(DEFAULT_WEIGHTS) else set()

#: What libraries leave in TMPDIR on their own, whatever blendfix does: onnxruntime's telemetry SDK writes
#: `.ses` when it is imported (the CPU cleaner runs in onnxruntime), torch keeps a `torchinductor_<user>` cache.
THIRD_PARTY_TMP = re.compile(r"^(\.ses|torchinductor_.*)$")


def _ours(folder) -> list:
    """The entries of ``folder`` that blendfix would have left (third-party caches ignored)."""
    return [p for p in folder.iterdir() if not THIRD_PARTY_TMP.match(p.name)]


def pasted_pair(photo: Path, folder: Path) -> tuple[Path, Path, np.ndarray]:
    """A shared face and the same photo with a recoloured rectangle pasted back over the cheek/eye area.

    Returns the two PNG files and the rectangle's mask ``(H, W)`` in {0, 1}.
    """
    img = read_image(photo)
    h, w = img.shape[:2]
    box = np.zeros((h, w), np.float32)
    box[int(0.40 * h):int(0.62 * h), int(0.28 * w):int(0.72 * w)] = 1
    edited = img.copy()
    edited[box > 0] = np.clip(edited[box > 0] * np.array([1.15, 0.9, 0.85], np.float32) + 0.03, 0, 1)
    return write_image(folder / "original.png", img), write_image(folder / "pasted.png", edited), box


@pytest.fixture(scope="module")
def models() -> Models:
    return Models(device="cpu")


@pytest.fixture()
def ws(tmp_path) -> Workspace:
    return Workspace(tmp_path / "results")


@pytest.fixture(scope="module")
def face(faces_dir) -> Path:
    return need(faces_dir / "celebamask_hq_512" / "0.jpg", "shared face celebamask_hq_512/0.jpg")


@pytest.fixture(scope="module")
def bad(data_dir) -> Path:
    return need(data_dir / "bad_inputs", "shared bad_inputs")


@needs_mesh
def test_clean_pair_equals_blendfix_clean_cli_for_every_method(models, ws, face, tmp_path):
    orig, pasted, _ = pasted_pair(face, tmp_path)
    res = clean_pair(models, ws.new(), orig, pasted)
    assert set(res.cleaned) == NETWORK | {"poisson", "fused"}  # the network whenever the shipped cleaner is there
    for method in ("network", "poisson") if NETWORK else ("poisson",):
        assert main(["clean", "-i", str(orig), "--fused", str(pasted), "-o", str(tmp_path / method),
                     "--method", method, "--device", "cpu"]) == 0
        cli = read_image(tmp_path / method / "original.png")
        assert np.array_equal(read_image(res.cleaned[method]), cli), method
    main_method = "network" if NETWORK else "poisson"
    assert res.download.name == f"original_blendfix_{main_method}.png"
    assert np.array_equal(read_image(res.download), read_image(res.cleaned[main_method]))
    page = read_image(res.cleaned["poisson"])
    assert np.array_equal(read_image(res.before), read_image(pasted))
    assert not np.array_equal(page, read_image(pasted))  # cleaning changed something
    assert "| poisson |" in res.scores and "| fused |" in res.scores and "n/a" not in res.scores
    zoom = read_image(res.zoom)
    n = 2 + len(res.cleaned)  # I, F, then every method
    cols = 2 if n <= 4 else 3
    assert zoom.shape == (-(-n // cols) * (ZOOM_TILE + LABEL_HEIGHT), cols * ZOOM_TILE, 3)
    tile_i, tile_f = zoom[:ZOOM_TILE, :ZOOM_TILE], zoom[:ZOOM_TILE, ZOOM_TILE:2 * ZOOM_TILE]
    changed = np.abs(tile_f - tile_i).max(axis=2) > 0.02
    assert 0.05 < changed.mean() < 0.95  # the window straddles the edit boundary


@needs_mesh
def test_clean_pair_with_edited_and_mask_fuses_first_like_the_cli(models, ws, face, tmp_path):
    orig, pasted, box = pasted_pair(face, tmp_path)
    mask = write_mask(tmp_path / "mask.png", box)
    res = clean_pair(models, ws.new(), orig, pasted, mask)
    want = blendfix.clean(read_image(orig), edited=read_image(pasted), mask=box, method="poisson", device="cpu")
    assert np.abs(read_image(res.cleaned["poisson"]) - want).max() <= 0.5 / 255 + 1e-6
    assert "uploaded mask" in res.scores


@needs_mesh
def test_try_edit_example_gives_i_t_m_f_and_poisson(models, ws):
    res = try_edit(models, ws.new(), None, True, "smile", 1.0)
    imgs = {k: read_image(p) for k, p in res.images.items()}
    assert imgs["I"].shape == (models.edit_size, models.edit_size, 3)
    assert np.abs(imgs["F"] - imgs["I"]).max() > 0.1  # the edit changed the photo
    assert set(res.cleaned) == NETWORK | {"poisson"}
    stronger = try_edit(models, ws.new(), None, True, "smile", 2.0)
    d1 = np.abs(imgs["T"] - imgs["I"]).mean()
    d2 = np.abs(read_image(stronger.images["T"]) - imgs["I"]).mean()
    assert d2 > d1  # strength is passed to the editor
    pasted = try_edit(models, ws.new(), None, True, "smile", 1.0, "paste", seed=3)
    f, i = read_image(pasted.images["F"]), read_image(pasted.images["I"])
    assert np.array_equal(i, imgs["I"]) and np.abs(f - i).max() > 0.05 and set(pasted.cleaned) == NETWORK | {"poisson"}


@pytest.mark.parametrize("name, role, needle", [
    ("not_an_image.png", "original", "original 'not_an_image.png'"),
    ("truncated.png", "original", "corrupt or truncated"),
    ("zero_bytes.png", "edited image", "empty"),
])
def test_bad_image_upload_message_names_the_upload_not_the_temp_path(models, ws, face, bad, name, role, needle):
    args = {"original": face, "edited image": face, role: bad / name}
    with pytest.raises(ValueError) as e:
        clean_pair(models, ws.new(), args["original"], args["edited image"])
    msg = user_message(e.value, {"original": args["original"], "edited image": args["edited image"]})
    assert needle in msg and str(bad) not in msg


def test_mismatched_sizes_and_missing_uploads(models, ws, bad, face):
    with pytest.raises(ValueError, match="differ in size"):
        clean_pair(models, ws.new(), bad / "mismatch_original.png", bad / "mismatch_fused.png")
    with pytest.raises(UploadError, match="no edited image uploaded"):
        clean_pair(models, ws.new(), face, None)
    with pytest.raises(UploadError, match="no photo uploaded"):
        try_edit(models, ws.new(), None, False, "smile")
    with pytest.raises(ValueError, match="mask is"):
        clean_pair(models, ws.new(), face, face, bad / "mask_wrong_size.png")


def test_hundred_megapixel_upload_is_refused_before_decoding(models, ws, face, tmp_path):
    from PIL import Image

    huge = tmp_path / "huge.png"
    Image.new("1", (10_000, 10_000)).save(huge)  # 100 MP, a few kB on disk
    with pytest.raises(ValueError, match="exceeds the limit") as e:
        clean_pair(models, ws.new(), huge, face)
    assert "huge.png" in user_message(e.value, {"original": huge})


@needs_mesh
def test_no_face_hides_poisson_in_clean_and_refuses_try_edit(models, ws, bad):
    nf = bad / "no_face.png"
    res = clean_pair(models, ws.new(), nf, nf)
    assert set(res.cleaned) == NETWORK | {"fused"}  # the network needs no face
    assert any("poisson not shown" in n and "no face found" in n for n in res.notes)
    with pytest.raises(ValueError, match="no face found"):
        try_edit(models, ws.new(), nf, False, "smile")


def test_try_edit_refuses_bad_choices(models, ws):
    with pytest.raises(UploadError, match="strength"):
        try_edit(models, ws.new(), None, True, "smile", 9.0)
    with pytest.raises(UploadError, match="editor 'gan' is not available"):
        try_edit(models, ws.new(), None, True, "smile", editor="gan")
    with pytest.raises(ValueError, match="unknown attribute"):
        try_edit(models, ws.new(), None, True, "hat")


def test_workspace_keeps_only_the_newest_request_folders(tmp_path):
    ws = Workspace(tmp_path / "r", keep=3)
    made = [ws.new() for _ in range(5)]
    assert sorted(p.name for p in (tmp_path / "r").iterdir()) == [p.name for p in made[-3:]]


def test_serve_is_a_verb_and_refuses_a_bad_port(capsys):
    assert main(["serve", "--help"]) == 0
    assert "--port" in capsys.readouterr().out
    assert main(["serve", "--port", "0"]) == 2
    assert EXAMPLE.startswith("astronaut")


@needs_gradio
def test_page_actions_turn_errors_into_one_message_never_a_traceback(tmp_path):
    from blendfix.serve.app import _guard

    upload = tmp_path / "gradio" / "abc123" / "my photo.png"

    def user_fault(*_):
        raise ValueError(f"{upload}: corrupt or truncated image")

    def bug(*_):
        raise KeyError("oops")

    out = _guard(user_fault, 3, lambda *_: {"original": upload})(None)
    assert out[1:] == [None, None]
    assert out[0].startswith("**Could not do that:**") and "original 'my photo.png'" in out[0]
    assert str(upload.parent) not in out[0]
    out = _guard(bug, 2, lambda *_: {})(None)
    assert out[0].startswith("**Internal error:** KeyError") and "Traceback" not in out[0] and out[1] is None


@needs_mesh
def test_network_is_offered_with_weights_and_matches_blendfix_clean(face, tmp_path):
    """A tiny random MAResU-Net exported like `blendfix export` does: the page shows and downloads its result."""
    import json

    import torch
    from safetensors.torch import save_file

    from blendfix.nets.maresunet import MAResUNet

    cfg = {"widths": [16, 16, 16, 32], "blocks": [1, 1, 1, 1], "head_width": 8}
    torch.manual_seed(0)
    net = MAResUNet(widths=tuple(cfg["widths"]), blocks=tuple(cfg["blocks"]), head_width=cfg["head_width"])
    weights = tmp_path / "tiny.safetensors"
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, weights)
    (tmp_path / "tiny.json").write_text(json.dumps({"model": cfg}))
    models = Models(device="cpu", weights=str(weights))
    assert models.methods == ["network", "poisson", "fused"]
    orig, pasted, _ = pasted_pair(face, tmp_path)
    res = clean_pair(models, Workspace(tmp_path / "r").new(), orig, pasted)
    assert main(["clean", "-i", str(orig), "--fused", str(pasted), "-o", str(tmp_path / "cli"),
                 "--method", "network", "--weights", str(weights), "--device", "cpu"]) == 0
    cli = read_image(tmp_path / "cli" / "original.png")
    assert np.array_equal(read_image(res.cleaned["network"]), cli)
    assert res.download.name == "original_blendfix_network.png" and np.array_equal(read_image(res.download), cli)


@needs_gradio
def test_both_page_actions_share_one_queue_slot(tmp_path):
    """Two visitors never run the models at once: every action is in concurrency group `models`, limit 1."""
    from blendfix.serve.app import build_app

    demo = build_app(Models(device="cpu"), Workspace(tmp_path / "r"))
    fns = list(demo.fns.values())
    assert len(fns) == 2 and {(f.concurrency_id, f.concurrency_limit) for f in fns} == {("models", 1)}


def test_without_gradio_serve_says_which_extra_to_install(monkeypatch, capsys):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "gradio" else real(name, *a))
    assert main(["serve", "--port", "7999"]) == 1
    assert "pip install 'blendfix[serve]'" in capsys.readouterr().err


@needs_gradio
def test_a_port_in_use_is_one_clear_error_and_leaves_no_temp_folder(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        env = {**os.environ, "TMPDIR": str(tmp_path), "PYTHONPATH": os.pathsep.join(
            [str(ROOT / "src"), *filter(None, [os.environ.get("PYTHONPATH")])])}
        r = subprocess.run([sys.executable, "-m", "blendfix.cli", "serve", "--port", str(port), "--device", "cpu"],
                           capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert r.returncode == 1, r.stderr
    assert f"cannot listen on 127.0.0.1:{port}" in r.stderr and "--port" in r.stderr
    assert "Traceback" not in r.stderr and _ours(tmp_path) == []
