"""GanEditor end to end on CPU with tiny random generator + pSp encoder + Diff-CAM, and its offline errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from blendfix.edit import get_editor
from blendfix.edit.gan import GanEditor
from blendfix.errors import MissingWeightsError
from blendfix.nets.diffcam import DiffCAM, diffcam_mask
from blendfix.nets.psp import GradualStyleEncoder, PSPEncoder
from blendfix.nets.stylegan2 import Generator

torch.set_num_threads(1)
ENC = {"widths": (8, 16, 24, 32), "units": (1, 1, 1, 1), "style_dim": 16, "input_size": 32}
CAM = {"num_classes": 17, "layers": (1, 1, 2, 1), "width": 4, "split": 1}


@pytest.fixture(scope="module")
def parts():
    torch.manual_seed(0)
    g = Generator(32, style_dim=16, n_mlp=2, channel_multiplier=1, max_channels=16).eval()
    for name, p in g.named_parameters():
        if name.endswith("noise.weight"):
            p.data.fill_(0.3)
    enc = PSPEncoder(GradualStyleEncoder(n_styles=g.n_latent, **ENC), torch.randn(g.n_latent, 16) * 0.5).eval()
    cam = DiffCAM(**CAM).eval()
    dirs = {"smile": torch.randn(g.n_latent, 16), "beard": torch.randn(1, 16)}
    return g, enc, cam, dirs


def make_editor(parts, **kw) -> GanEditor:
    g, enc, cam, dirs = parts
    return GanEditor(generator=g, encoder=enc, diffcam=cam, directions=dirs, device="cpu", diffcam_size=64, **kw)


def face(h: int, w: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).random((h, w, 3), dtype=np.float32)


def test_edit_follows_the_method_and_returns_input_resolution(parts):
    g, enc, cam, dirs = parts
    editor = make_editor(parts, alpha=20.0)
    image = face(40, 56, 1)
    res = editor.edit(image, "smiling", seed=5)
    assert res.attribute == "smile" and res.info["alpha"] == 20.0 and res.info["seed"] == 5
    for arr in (res.inverted, res.edited, res.fused):
        assert arr.shape == (40, 56, 3) and arr.dtype == np.float32 and arr.min() >= 0 and arr.max() <= 1
    assert res.mask.shape == (40, 56) and res.mask.min() >= 0 and res.mask.max() <= 1
    assert res.mask.max() > res.mask.min()  # the mask locates something
    np.testing.assert_array_equal(res.original, image)
    # recompute I' = G(w), T = G(w + alpha * n / ||n||_F), M = Diff-CAM(I', T) by hand
    with torch.no_grad():
        x = torch.nn.functional.interpolate(torch.from_numpy(image).permute(2, 0, 1)[None], size=(32, 32),
                                            mode="bilinear", antialias=True)
        w = enc(x)
        n = dirs["smile"] / dirs["smile"].norm()
        inv = ((g([w], input_is_latent=True, randomize_noise=False)[0] + 1) / 2).clamp(0, 1)
        edi = ((g([w + 20.0 * n], input_is_latent=True, randomize_noise=False)[0] + 1) / 2).clamp(0, 1)
    m = diffcam_mask(cam, inv, edi, "smile", input_size=64)
    back = torch.nn.functional.interpolate(edi, size=(40, 56), mode="bilinear", antialias=True)
    np.testing.assert_allclose(res.edited, back[0].permute(1, 2, 0).numpy(), atol=1e-5)
    assert np.abs(res.edited - res.inverted).mean() > 0.01  # the edit changed the image
    mback = torch.nn.functional.interpolate(m, size=(40, 56), mode="bilinear", antialias=True)
    np.testing.assert_allclose(res.mask, mback[0, 0].numpy(), atol=1e-5)
    # F = T*M + I*(1-M) against the original photo
    np.testing.assert_allclose(res.fused, res.edited * res.mask[..., None] + image * (1 - res.mask[..., None]),
                               atol=1e-6)


def test_batch_matches_single_edits_and_inversion_is_shared_across_attributes(parts):
    editor = make_editor(parts, batch_size=2)
    images = [face(32, 32, 2), (face(48, 40, 3) * 255).astype(np.uint8), face(36, 36, 4)]
    batch = editor.edit_batch(images, "beard")
    for im, r in zip(images, batch, strict=True):
        single = make_editor(parts).edit(im, "beard")
        assert r.edited.shape[:2] == im.shape[:2]
        np.testing.assert_allclose(r.edited, single.edited, atol=1e-5)
        # CPU kernels sum in another order at another batch size; the min-max normalised CAM amplifies
        # that rounding (1e-5 seen), so the mask agrees to 1e-4 (a 40th of an 8-bit level)
        np.testing.assert_allclose(r.mask, single.mask, atol=1e-4)
    other = editor.edit(images[2], "smile")
    np.testing.assert_allclose(other.inverted, batch[2].inverted, atol=1e-6)
    assert not np.allclose(other.edited, batch[2].edited)  # different direction, different T


def test_get_editor_builds_it_and_bf16_autocast_runs(parts):
    g, enc, cam, dirs = parts
    editor = get_editor("gan", generator=g, encoder=enc, diffcam=cam, directions=dirs, device="cpu",
                        alpha=10.0, precision="bf16", diffcam_size=64)
    assert isinstance(editor, GanEditor) and editor.alpha == 10.0
    res = editor.edit(face(32, 32, 6), "smile")
    ref = make_editor(parts, alpha=10.0).edit(face(32, 32, 6), "smile")
    assert np.isfinite(res.edited).all() and np.abs(res.edited - ref.edited).mean() < 0.05


def test_loads_models_from_files(parts, tmp_path):
    g, enc, cam, dirs = parts
    state = {f"encoder.{k}": v for k, v in enc.encoder.state_dict().items()}
    state.update({f"decoder.{k}": v for k, v in g.state_dict().items()})
    torch.save({"state_dict": state, "latent_avg": enc.latent_avg,
                "opts": {"encoder_type": "GradualStyleEncoder", "output_size": 32, "start_from_latent_avg": True}},
               tmp_path / "psp.pt")
    torch.save(cam.state_dict(), tmp_path / "cam.pt")
    from_files = GanEditor(encoder=tmp_path / "psp.pt", diffcam=tmp_path / "cam.pt", directions=dirs, device="cpu",
                           diffcam_size=64)
    image = face(32, 32, 7)
    np.testing.assert_allclose(from_files.edit(image, "smile").edited, make_editor(parts).edit(image, "smile").edited,
                               atol=1e-5)


def test_missing_checkpoints_are_listed_with_where_to_put_them(tmp_path, monkeypatch):
    monkeypatch.setenv("BLENDFIX_WEIGHTS", str(tmp_path))
    with pytest.raises(MissingWeightsError) as ei:
        GanEditor(device="cpu", generator="stylegan2-ffhq-config-f", attributes=("smile", "aging"))
    msg = str(ei.value)
    expected = ["psp_ffhq_encode.pt", "stylegan2-ffhq-config-f.pt", "diff_cam_weight.pt",
                "directions/eogi/Smiling.npy", "directions/eogi/Old.npy"]
    for name in expected:
        assert f"put {name} at {tmp_path / name}" in msg
    assert msg.count("  - ") == len(expected)  # exactly these, nothing else
    with pytest.raises(MissingWeightsError, match="nowhere.pt"):
        GanEditor(encoder=tmp_path / "nowhere.pt", diffcam=tmp_path / "x.pt", device="cpu")


def test_mismatched_parts_are_refused(parts):
    g, _, cam, dirs = parts
    enc6 = PSPEncoder(GradualStyleEncoder(n_styles=6, **ENC))
    with pytest.raises(ValueError, match="styles"):
        GanEditor(generator=g, encoder=enc6, diffcam=cam, directions=dirs, device="cpu")
    with pytest.raises(ValueError, match="generator"):
        GanEditor(encoder=enc6, diffcam=cam, device="cpu")
    editor = make_editor(parts)
    with pytest.raises(ValueError, match="H, W, 3"):
        editor.edit(np.zeros((32, 32)), "smile")
    with pytest.raises(ValueError, match="attribute"):
        editor.edit(face(32, 32, 0), "hat")
