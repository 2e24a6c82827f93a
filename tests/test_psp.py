"""pSp GradualStyleEncoder: fixture equivalence (published layout), tiny encoders, checkpoint loader."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from blendfix.errors import BlendfixError, MissingWeightsError
from blendfix.nets.psp import GradualStyleEncoder, PSPEncoder, encoder_arch, load_psp_encoder, load_strict

TINY = {"widths": (8, 16, 24, 32), "units": (1, 2, 2, 1), "style_dim": 16, "input_size": 32}


def test_fixture_codes_and_features(fixture):
    fx = fixture("psp_encoder")
    with torch.device("meta"):
        enc = GradualStyleEncoder()
    load_strict(enc, fx.state_dict(), "fixture")  # strict: every published key, nothing else
    enc.eval()
    taps = {}
    for i in (6, 20, 23):
        enc.body[i].register_forward_hook(lambda m, a, out, i=i: taps.__setitem__(i, out))
    with torch.no_grad():
        codes = enc(torch.from_numpy(fx.inputs["x"])).numpy()
    out = fx.outputs
    assert codes.shape == (1, 18, 512)
    np.testing.assert_allclose(codes, out["codes"], atol=1e-5, rtol=1e-4)
    np.testing.assert_allclose(taps[6][:, :16].numpy(), out["c1_first16ch"], atol=5e-5, rtol=1e-4)
    np.testing.assert_allclose(taps[20][:, :32].numpy(), out["c2_first32ch"], atol=5e-5, rtol=1e-4)
    np.testing.assert_allclose(taps[23].numpy(), out["c3"], atol=5e-5, rtol=1e-4)


def test_published_layout_key_count(fixture):
    fx = fixture("psp_encoder")
    with torch.device("meta"):
        enc = GradualStyleEncoder()
    sd = enc.state_dict()
    assert list(sd) == [e["key"] for e in fx.spec["entries"]]  # 621 keys in the published order
    assert sum(p.numel() for p in enc.parameters()) == fx.parameter_count()
    assert encoder_arch(sd) == {"widths": (64, 128, 256, 512), "units": (3, 4, 14, 3), "style_dim": 512,
                                "input_size": 256}


@pytest.mark.parametrize("n_styles", [2, 5, 10])
def test_tiny_encoder_every_style_depends_on_input(n_styles):
    torch.manual_seed(0)
    enc = GradualStyleEncoder(n_styles=n_styles, **TINY).eval()
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    y = x.clone()
    y[:, :, :8, :8] += 0.5
    with torch.no_grad():
        a, b = enc(x), enc(y)
    assert a.shape == (2, n_styles, 16)
    assert torch.isfinite(a).all()
    assert ((a - b).abs().amax(dim=(0, 2)) > 0).all()  # each style row reacts to the image
    assert not torch.allclose(a[0], a[1])  # batch items are independent


def test_wrong_input_size_is_refused():
    enc = GradualStyleEncoder(n_styles=4, **TINY)
    with pytest.raises(ValueError, match="expects"):
        enc(torch.zeros(1, 3, 64, 64))
    with pytest.raises(ValueError):
        GradualStyleEncoder(input_size=100)


def _tiny_checkpoint(path, output_size=16, with_avg=True):
    torch.manual_seed(1)
    enc = GradualStyleEncoder(n_styles=2 * int(np.log2(output_size)) - 2, **TINY)
    state = {f"encoder.{k}": v for k, v in enc.state_dict().items()}
    state["decoder.style.1.weight"] = torch.zeros(4, 4)  # the decoder part is ignored by the encoder loader
    ckpt = {"state_dict": state, "opts": {"encoder_type": "GradualStyleEncoder", "input_nc": 3, "label_nc": 0,
                                          "output_size": output_size, "start_from_latent_avg": True,
                                          "dataset_type": "ffhq_encode"}}
    if with_avg:
        ckpt["latent_avg"] = torch.randn(1, 16).repeat(enc.n_styles, 1)
    torch.save(ckpt, path)
    return enc.eval(), ckpt


def test_loader_reads_opts_and_adds_latent_avg(tmp_path):
    ref, ckpt = _tiny_checkpoint(tmp_path / "tiny_psp.pt", output_size=16)
    model = load_psp_encoder(tmp_path / "tiny_psp.pt", "cpu")
    assert isinstance(model, PSPEncoder) and model.encoder.n_styles == 6 and not model.training
    img = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        w = model(img)
        expect = ref(img * 2 - 1) + ckpt["latent_avg"]
    torch.testing.assert_close(w, expect, atol=1e-5, rtol=1e-4)
    with torch.no_grad():  # other sizes are resized to the encoder's input size
        assert model(torch.rand(1, 3, 48, 40)).shape == (1, 6, 16)
    with pytest.raises(ValueError):
        model(torch.rand(1, 1, 32, 32))


def test_loader_errors(tmp_path, monkeypatch):
    monkeypatch.setenv("BLENDFIX_WEIGHTS", str(tmp_path / "empty"))
    with pytest.raises(MissingWeightsError, match="psp_ffhq_encode.pt") as e:
        load_psp_encoder("psp_ffhq_encode")
    assert "drive.google.com" in str(e.value)
    _tiny_checkpoint(tmp_path / "noavg.pt", with_avg=False)
    with pytest.raises(BlendfixError, match="latent_avg"):
        load_psp_encoder(tmp_path / "noavg.pt")
    ckpt = torch.load(tmp_path / "noavg.pt", weights_only=True)
    ckpt["opts"]["output_size"] = 32  # 8 styles declared, 6 stored: strict load must refuse
    ckpt["latent_avg"] = torch.zeros(8, 16)
    torch.save(ckpt, tmp_path / "mismatch.pt")
    with pytest.raises(BlendfixError, match="does not match"):
        load_psp_encoder(tmp_path / "mismatch.pt")
    torch.save({"weights": {}}, tmp_path / "other.pt")
    with pytest.raises(BlendfixError, match="not a pSp checkpoint"):
        load_psp_encoder(tmp_path / "other.pt")
