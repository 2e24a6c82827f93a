"""MAResU-Net: the released network's layout and function (fixture), tiny configs, the clean() wrapper."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from blendfix.nets import MAResUNet
from blendfix.nets.maresunet import count_parameters
from blendfix.nets.resnet34 import imagenet_encoder_state, load_imagenet_encoder

TINY = {"widths": (16, 16, 16, 32), "blocks": (1, 1, 1, 1), "head_width": 8}


@pytest.fixture(scope="module")
def released(fixture):
    fx = fixture("maresunet")
    torch.manual_seed(0)
    model = MAResUNet(in_channels=6, out_channels=3).eval()
    model.load_state_dict(fx.state_dict(), strict=True)
    return model, fx


def test_parameter_count_and_layout_are_the_released_networks(fixture):
    fx = fixture("maresunet")
    spec = fx.spec
    model = MAResUNet()
    assert count_parameters(model) == fx.parameter_count()  # 26,285,115 for the published release
    sd = model.state_dict()
    assert list(sd) == [e["key"] for e in spec["entries"]]
    assert all(list(sd[e["key"]].shape) == e["shape"] for e in spec["entries"])


def test_fixture_outputs_and_intermediates(released):
    model, fx = released
    x = torch.from_numpy(fx.inputs["x"])
    feats = {}
    hooks = [getattr(model, n).register_forward_hook(lambda m, i, o, n=n: feats.__setitem__(n, o))
             for n in ("encoder2", "encoder3", "encoder4", "attention4", "attention3", "attention2")]
    with torch.no_grad():
        out = model(x)
        for h in hooks:
            h.remove()
        out2 = model(torch.from_numpy(fx.inputs["x_batch2"]))
    np.testing.assert_allclose(out.numpy(), fx.outputs["out"], atol=2e-5, rtol=1e-4)
    np.testing.assert_allclose(out2.numpy(), fx.outputs["out_batch2"], atol=2e-5, rtol=1e-4)
    for name, key in [("encoder2", "e2"), ("encoder3", "e3"), ("encoder4", "e4"),
                      ("attention4", "a4"), ("attention3", "a3"), ("attention2", "a2")]:
        np.testing.assert_allclose(feats[name].numpy(), fx.outputs[key], atol=1e-4, rtol=1e-4, err_msg=key)


def test_input_order_matters(released):
    """[F, I] is the order the released network expects; swapping them changes the result noticeably."""
    model, fx = released
    x = torch.from_numpy(fx.inputs["x_batch2"])
    with torch.no_grad():
        swapped = model(torch.cat([x[:, 3:], x[:, :3]], 1))
    assert np.abs(swapped.numpy() - fx.outputs["out_batch2"]).max() > 1e-3


def test_rejects_sizes_the_network_cannot_take():
    model = MAResUNet(**TINY).eval()
    with pytest.raises(ValueError, match="multiple of 32"):
        model(torch.zeros(1, 6, 48, 48))
    with pytest.raises(ValueError, match="square"):
        model(torch.zeros(1, 6, 32, 64))
    with pytest.raises(ValueError, match=r"\(B, 6, S, S\)"):
        model(torch.zeros(1, 3, 32, 32))


def test_clean_takes_any_size_in_unit_range_and_matches_forward():
    torch.manual_seed(1)
    model = MAResUNet(**TINY).eval()
    fused, original = torch.rand(2, 3, 40, 50), torch.rand(2, 3, 40, 50)
    with torch.no_grad():
        out = model.clean(fused, original)
        assert out.shape == (2, 3, 40, 50) and out.min() >= 0 and out.max() <= 1
        f64, o64 = torch.rand(1, 3, 64, 64), torch.rand(1, 3, 64, 64)
        direct = ((model(torch.cat([f64, o64], 1) * 2 - 1) + 1) / 2).clamp(0, 1)
        torch.testing.assert_close(model.clean(f64, o64), direct)
    with pytest.raises(ValueError):
        model.clean(fused, original[:, :, :32])


def test_imagenet_encoder_mapping_fills_encoder_only(tmp_path):
    """A torchvision-layout ResNet-34 file initialises firstbn/encoder1..4; conv1 and fc are not used."""
    model = MAResUNet()
    enc = {k: v for k, v in model.state_dict().items() if k.startswith(("firstbn.", "encoder"))}
    tv = {("bn1." + k[8:] if k.startswith("firstbn.") else "layer" + k[7] + k[8:]): torch.randn_like(v.float())
          for k, v in enc.items() if v.is_floating_point()}
    tv["conv1.weight"] = torch.randn(64, 3, 7, 7)
    tv["fc.weight"], tv["fc.bias"] = torch.randn(1000, 512), torch.randn(1000)
    path = tmp_path / "resnet34-b627a593.pth"
    torch.save(tv, path)
    before = model.firstconv.weight.clone()
    keys = load_imagenet_encoder(model, path)
    assert "encoder3.5.conv2.weight" in keys and not any(k.startswith(("firstconv", "fc", "conv1")) for k in keys)
    torch.testing.assert_close(model.encoder3[5].conv2.weight, tv["layer3.5.conv2.weight"])
    torch.testing.assert_close(model.firstbn.running_var, tv["bn1.running_var"])
    assert torch.equal(model.firstconv.weight, before)
    with pytest.raises(ValueError, match="ResNet-34"):
        imagenet_encoder_state({k: v for k, v in tv.items() if not k.startswith("layer4")})
    with pytest.raises(ValueError, match="default MAResU-Net widths"):
        load_imagenet_encoder(MAResUNet(**TINY), path)


def test_widths_too_small_for_the_attention_are_refused():
    with pytest.raises(ValueError, match="at least 16"):
        MAResUNet(widths=(8, 16, 16, 32), blocks=(1, 1, 1, 1))


def test_residual_option_starts_from_the_fused_image_with_the_released_layout():
    torch.manual_seed(0)
    plain = MAResUNet(widths=(16, 16, 32, 32), blocks=(1, 1, 1, 1), head_width=8)
    res = MAResUNet(widths=(16, 16, 32, 32), blocks=(1, 1, 1, 1), head_width=8, residual=True)
    assert list(plain.state_dict()) == list(res.state_dict())  # same checkpoint layout
    x = torch.rand(2, 6, 64, 64) * 2 - 1
    with torch.no_grad():
        assert torch.equal(res.eval()(x), x[:, :3])  # untrained: returns F unchanged
    res.finalconv3.bias.data.fill_(0.1)
    from blendfix.train.export import _model_from

    again = _model_from(res.config, res.state_dict())
    with torch.no_grad():
        assert again.residual and torch.allclose(again(x), x[:, :3] + 0.1, atol=1e-6)


def test_input_skip_reaches_full_resolution_detail_and_keeps_the_other_keys():
    torch.manual_seed(0)
    kw = {"widths": (16, 16, 32, 32), "blocks": (1, 1, 1, 1), "head_width": 8}
    plain = MAResUNet(**kw)
    skip = MAResUNet(**kw, residual=True, input_skip=True)
    ps, ss = plain.state_dict(), skip.state_dict()
    assert list(ps) == list(ss)
    assert [k for k in ps if ps[k].shape != ss[k].shape] == ["finalconv2.weight"]
    assert ss["finalconv2.weight"].shape[1] == 8 + 6
    # a one-pixel change of I reaches the output at that pixel only through the full-resolution path:
    # give the head a path from I's first channel and check the response is local
    skip.finalconv3.weight.data.normal_(0, 0.1)
    x = torch.zeros(1, 6, 64, 64)
    y = x.clone()
    y[0, 3, 31, 31] = 1.0
    skip.eval()
    with torch.no_grad():
        d = (skip(y) - skip(x)).abs().sum(1)[0]
    assert d[31, 31] > 0 and d[29:34, 29:34].sum() > 0.5 * d.sum()
    from blendfix.train.export import _model_from

    again = _model_from(skip.config, skip.state_dict())
    assert again.input_skip and torch.equal(again.eval()(y), skip(y))
