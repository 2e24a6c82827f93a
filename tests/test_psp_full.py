"""Whole pSp inversion (encoder + 1024 StyleGAN2 decoder) against the psp_full fixture, and its loader."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from blendfix.errors import BlendfixError, MissingWeightsError
from blendfix.nets.psp import GradualStyleEncoder
from blendfix.nets.psp_full import PSPInversion, load_psp_full
from blendfix.nets.stylegan2 import Generator

torch.set_num_threads(1)
TINY_ENC = {"widths": (8, 16, 24, 32), "units": (1, 1, 1, 1), "style_dim": 16, "input_size": 32}


@pytest.mark.slow
def test_fixture_full_forward_matches_psp(fixture):
    fx = fixture("psp_full")
    with torch.device("meta"):
        model = PSPInversion(GradualStyleEncoder(), Generator(1024), torch.zeros(18, 512, device="cpu"))
    model.load_state_dict(fx.state_dict(), strict=True, assign=True)  # the 792 keys of psp_ffhq_encode.pt
    model.latent_avg = torch.from_numpy(fx.inputs["latent_avg"])
    model.eval()
    crop = {}
    model.decoder.register_forward_hook(lambda m, a, out: crop.update(img=out[0][:, :, 448:576, 448:576]))
    with torch.no_grad():
        images, codes = model(torch.from_numpy(fx.inputs["x"]), resize=True, randomize_noise=False,
                              return_latents=True)
    out = fx.outputs
    np.testing.assert_allclose(codes.numpy(), out["codes"], atol=1e-5, rtol=1e-4)
    np.testing.assert_allclose((codes - model.latent_avg).numpy(), out["codes_raw"], atol=1e-5, rtol=1e-4)
    assert images.shape == (1, 3, 256, 256)
    np.testing.assert_allclose(images.numpy(), out["image_256"], atol=2e-4, rtol=1e-4)
    np.testing.assert_allclose(crop["img"].numpy(), out["image_1024_crop"], atol=2e-4, rtol=1e-4)


def _tiny_psp_file(path, with_avg=True):
    torch.manual_seed(3)
    dec = Generator(32, style_dim=16, n_mlp=2, channel_multiplier=1, max_channels=16)
    enc = GradualStyleEncoder(n_styles=dec.n_latent, **TINY_ENC)
    state = {f"encoder.{k}": v for k, v in enc.state_dict().items()}
    state.update({f"decoder.{k}": v for k, v in dec.state_dict().items()})
    ckpt = {"state_dict": state, "opts": {"encoder_type": "GradualStyleEncoder", "input_nc": 3, "output_size": 32,
                                          "start_from_latent_avg": True, "dataset_type": "ffhq_encode"}}
    if with_avg:
        ckpt["latent_avg"] = torch.randn(1, 16).repeat(dec.n_latent, 1)
    torch.save(ckpt, path)
    return enc.eval(), dec.eval(), ckpt


def test_loader_reads_encoder_decoder_and_latent_avg_from_one_file(tmp_path):
    enc, dec, ckpt = _tiny_psp_file(tmp_path / "tiny.pt")
    model = load_psp_full(tmp_path / "tiny.pt")
    assert model.decoder.size == 32 and model.encoder.n_styles == 8 and not model.training
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        w = model.invert(x)
        torch.testing.assert_close(w, enc(x * 2 - 1) + ckpt["latent_avg"], atol=1e-5, rtol=1e-4)
        img, _ = model(x * 2 - 1, resize=False)
        ref = dec([w], input_is_latent=True, randomize_noise=False)[0]
        torch.testing.assert_close(img, ref, atol=1e-5, rtol=1e-4)
        assert model.invert(torch.rand(1, 3, 50, 64)).shape == (1, 8, 16)  # any size is resized


def test_loader_errors(tmp_path, monkeypatch):
    monkeypatch.setenv("BLENDFIX_WEIGHTS", str(tmp_path / "empty"))
    with pytest.raises(MissingWeightsError) as ei:
        load_psp_full("psp_ffhq_encode")
    assert str(tmp_path / "empty" / "psp_ffhq_encode.pt") in str(ei.value)
    _tiny_psp_file(tmp_path / "noavg.pt", with_avg=False)
    with pytest.raises(BlendfixError, match="latent_avg"):
        load_psp_full(tmp_path / "noavg.pt")
    ckpt = torch.load(tmp_path / "noavg.pt", weights_only=True)
    ckpt["state_dict"] = {k: v for k, v in ckpt["state_dict"].items() if k.startswith("encoder.")}
    torch.save(ckpt, tmp_path / "nodec.pt")
    with pytest.raises(BlendfixError, match="decoder"):
        load_psp_full(tmp_path / "nodec.pt")
    with pytest.raises(ValueError, match="styles"):
        PSPInversion(GradualStyleEncoder(n_styles=4, **TINY_ENC), Generator(32, 16, 2, max_channels=16), None)
