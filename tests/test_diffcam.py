"""Diff-CAM: fixture equivalence (logits, layer4, Grad-CAM maps), tiny models, mask API, loader."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from blendfix.errors import BlendfixError, MissingWeightsError
from blendfix.nets.diffcam import (
    ATTRIBUTE_CLASSES,
    DiffCAM,
    class_index,
    diffcam_arch,
    diffcam_from_state,
    diffcam_mask,
    grad_cam,
    load_diffcam,
)

TINY = {"num_classes": 17, "layers": (1, 1, 2, 1), "width": 4, "split": 1}


def test_fixture_logits_and_cam(fixture):
    fx = fixture("diffcam")
    model = diffcam_from_state(fx.state_dict())  # strict load of the published layout
    assert list(model.state_dict()) == [e["key"] for e in fx.spec["entries"]]  # 626 published keys
    x = torch.from_numpy(fx.inputs["x"])
    out = fx.outputs
    with torch.no_grad():
        np.testing.assert_allclose(model(x).numpy(), out["logits"], atol=1e-5, rtol=1e-4)
    for t in (16, 12):
        g = grad_cam(model, x, t)
        np.testing.assert_allclose(g.logits.numpy(), out["logits"], atol=1e-5, rtol=1e-4)
        np.testing.assert_allclose(g.pooled.numpy(), out["pooled"], atol=1e-5, rtol=1e-4)
        np.testing.assert_allclose(g.activations.numpy(), out["layer4_out"], atol=5e-5)
        np.testing.assert_allclose(g.weights.numpy(), out[f"cam_weights_t{t}"], rtol=1e-5)
        np.testing.assert_allclose(g.raw.numpy(), out[f"cam_raw_t{t}"], atol=1e-6)
        np.testing.assert_allclose(g.heatmap.numpy(), out[f"heatmap_t{t}"], atol=1e-4)
    # the mask API on [0, 1] images at the fixture's side S gives the same map (t=16 is "aging"),
    # nearest-upsampled to 2S: every 2x2 block is one map value
    side = x.shape[-1]
    assert out["heatmap_t16"].shape[-2:] == (side, side)
    inv, edi = (x[:, :3] + 1) / 2, (x[:, 3:] + 1) / 2
    m = diffcam_mask(model, inv, edi, "aging", out_size=2 * side, input_size=side)
    assert m.shape == (1, 1, 2 * side, 2 * side)
    np.testing.assert_allclose(m[0, 0, ::2, ::2].numpy(), out["heatmap_t16"][0], atol=1e-4)
    assert torch.equal(m[..., ::2, ::2], m[..., 1::2, 1::2])  # exact 2x2 block replication


def test_published_architecture_facts():
    with torch.device("meta"):
        model = DiffCAM()
    sd = model.state_dict()
    assert sd["shared.6.downsample.0.weight"].shape == (1024, 512, 1, 1)
    assert "classifier.13.0.downsample.0.weight" in sd and sd["fc.weight"].shape == (17, 2048)
    assert diffcam_arch(sd) == {"num_classes": 17, "layers": (3, 4, 23, 3), "width": 64, "split": 10,
                                "in_channels": 3}
    assert {a: class_index(a) for a in ATTRIBUTE_CLASSES} == {"eyebrows": 6, "beard": 12, "aging": 16, "smile": 15}
    assert class_index("Bushy_Eyebrows") == 6 and class_index("old") == 16 and class_index(3) == 3
    with pytest.raises(ValueError):
        class_index(17)
    with pytest.raises(ValueError):
        class_index("hat")


def test_tiny_forward_is_difference_of_features():
    torch.manual_seed(0)
    model = DiffCAM(**TINY)
    a, b = torch.rand(2, 3, 64, 64) * 2 - 1, torch.rand(2, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        logits = model(torch.cat([a, b], 1))
        assert logits.shape == (2, 17)
        torch.testing.assert_close(logits, model.classify(model.features(b) - model.features(a)))
        assert model.features(a).shape == (2, 64, 4, 4)
    with pytest.raises(ValueError):
        model(torch.zeros(1, 3, 64, 64))


def test_mask_shape_range_and_zero_map():
    torch.manual_seed(1)
    model = DiffCAM(**TINY)
    inv = torch.rand(3, 3, 96, 80)
    edi = inv.clone()
    edi[:, :, 40:70, 20:60] = 1 - edi[:, :, 40:70, 20:60]
    m = diffcam_mask(model, inv, edi, "smile", input_size=64)
    assert m.shape == (3, 1, 96, 80)
    assert torch.isfinite(m).all() and m.min() >= 0 and m.max() <= 1
    hi, lo = m.amax(dim=(1, 2, 3)), m.amin(dim=(1, 2, 3))
    assert torch.equal(lo, torch.zeros(3))  # min-max per image: each map spans [0, 1] ...
    assert ((hi == 1) | (hi == 0)).all() and (hi == 1).any()  # ... or is all zero (class seen nowhere)
    with torch.no_grad():
        model.fc.weight[15] = 0  # no evidence for the class anywhere: zeros, not NaN
    assert torch.equal(diffcam_mask(model, inv, edi, "smile", out_size=(20, 30), input_size=64),
                       torch.zeros(3, 1, 20, 30))
    with pytest.raises(ValueError):
        diffcam_mask(model, inv, edi[:, :, :64], "smile")


def test_loader_roundtrip_and_errors(tmp_path, monkeypatch):
    torch.manual_seed(2)
    model = DiffCAM(**TINY)
    torch.save(model.state_dict(), tmp_path / "tiny.pt")
    loaded = load_diffcam(tmp_path / "tiny.pt")
    x = torch.rand(1, 6, 64, 64) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x))
    sd = model.state_dict()
    sd.pop("fc.bias")
    torch.save(sd, tmp_path / "broken.pt")
    with pytest.raises(BlendfixError, match="does not match"):
        load_diffcam(tmp_path / "broken.pt")
    monkeypatch.setenv("BLENDFIX_WEIGHTS", str(tmp_path / "none"))
    with pytest.raises(MissingWeightsError, match="diff_cam_weight.pt"):
        load_diffcam()
