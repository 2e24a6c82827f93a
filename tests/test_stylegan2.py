"""StyleGAN2 generator / discriminator against the rosinality-layout fixtures, plus the checkpoint loader."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from blendfix.errors import BlendfixError, MissingWeightsError
from blendfix.nets.stylegan2 import Discriminator, Generator, infer_config, load_stylegan2

torch.set_num_threads(1)
IMG = {"atol": 2e-4, "rtol": 1e-4}  # README tolerances
LAT = {"atol": 2e-5, "rtol": 1e-5}
LOGIT = {"atol": 1e-5, "rtol": 1e-5}


def close(a: torch.Tensor, b: np.ndarray, tol: dict) -> None:
    np.testing.assert_allclose(a.detach().numpy(), b, **tol)


@pytest.fixture(scope="module")
def gen_fx(fixture):
    fx = fixture("stylegan2_generator")
    g = Generator(256, 512, 8, channel_multiplier=2).eval()
    g.load_state_dict(fx.state_dict(), strict=True)
    return g, {k: torch.from_numpy(v) for k, v in fx.inputs.items()}, fx.outputs


@pytest.fixture(scope="module")
def disc_fx(fixture):
    fx = fixture("stylegan2_discriminator")
    d = Discriminator(256, channel_multiplier=2).eval()
    d.load_state_dict(fx.state_dict(), strict=True)
    return d, torch.from_numpy(fx.inputs["images"].astype(np.float32)), fx.outputs


@torch.no_grad()
def test_mapping_and_mean_latent_match_fixture(gen_fx):
    g, x, out = gen_fx
    close(g.get_latent(x["z"]), out["w_z"], LAT)
    close(g.get_latent(x["z_mean"]).mean(0, keepdim=True), out["w_mean"], LAT)


@torch.no_grad()
def test_z_input_image_and_latents_match_fixture(gen_fx):
    g, x, out = gen_fx
    img, lat = g([x["z"]], return_latents=True, randomize_noise=False)
    assert img.shape == (2, 3, 256, 256)
    close(img, out["img_z"], IMG)
    close(lat, out["latent_z"], LAT)


@torch.no_grad()
def test_wplus_input_as_psp_calls_it(gen_fx):
    g, x, out = gen_fx
    img, lat = g([x["wplus"]], input_is_latent=True, return_latents=True, randomize_noise=False)
    close(img, out["img_wplus"], IMG)
    close(lat, out["latent_wplus"], LAT)
    img2, none = g([x["wplus"]], input_is_latent=True, randomize_noise=False)
    assert none is None
    close(img2, out["img_wplus"], IMG)


@torch.no_grad()
def test_truncation_and_style_mixing_match_fixture(gen_fx):
    g, x, out = gen_fx
    w_mean = torch.from_numpy(out["w_mean"])
    img, lat = g([x["z"][0:1]], truncation=0.7, truncation_latent=w_mean, return_latents=True, randomize_noise=False)
    close(img, out["img_trunc"], IMG)
    close(lat, out["latent_trunc"], LAT)
    img, lat = g([x["z"][0:1], x["z"][1:2]], inject_index=4, return_latents=True, randomize_noise=False)
    close(img, out["img_mix"], IMG)
    close(lat, out["latent_mix"], LAT)


@pytest.mark.slow
@torch.no_grad()
def test_discriminator_logits_and_features_match_fixture(disc_fx):
    d, x, out = disc_fx
    seen = []
    hook = d.convs.register_forward_hook(lambda mod, inp, outp: seen.append(outp))
    logits = d(x)  # all 8 in one batch: stddev groups of 4, interleaved
    hook.remove()
    assert logits.shape == (8, 1)
    close(logits, out["logits_batch8"], LOGIT)
    feats = seen[0]  # the trunk is per-sample, so slices of it serve the smaller batches
    close(feats[0:2], out["features_pair"], LOGIT)
    close(d.logits_from_features(feats[0:2]), out["logits_pair"], LOGIT)
    single = torch.cat([d.logits_from_features(feats[0:1]), d.logits_from_features(feats[1:2])])
    close(single, out["logits_single"], LOGIT)


@pytest.mark.parametrize("name, cls", [("stylegan2_generator", Generator), ("stylegan2_discriminator", Discriminator)])
def test_published_1024_config_f_layout_loads_strictly(fixture, name, cls):
    spec = json.loads((fixture(name).path / "spec_1024.json").read_text())
    state = {e["key"]: torch.zeros(e["shape"], dtype=getattr(torch, e["dtype"])) for e in spec["entries"]}
    model = cls(1024, channel_multiplier=2)
    model.load_state_dict(state, strict=True)
    assert sum(p.numel() for p in model.parameters()) == spec["n_parameters"]
    if cls is Generator:
        assert model.n_latent == 18
        assert infer_config(state) == {"size": 1024, "style_dim": 512, "n_mlp": 8, "channel_multiplier": 2,
                                       "max_channels": 512}


def tiny_generator(seed: int = 0) -> Generator:
    torch.manual_seed(seed)
    g = Generator(32, style_dim=16, n_mlp=2, channel_multiplier=1, max_channels=16).eval()
    for name, p in g.named_parameters():
        if name.endswith("noise.weight"):  # zero at init; give the noise an effect
            p.data.fill_(0.5)
    return g


@torch.no_grad()
def test_tiny_generator_noise_modes_and_wplus_shape():
    g = tiny_generator()
    assert g.n_latent == 8
    z = torch.randn(3, 16)
    fixed1, _ = g([z], randomize_noise=False)
    fixed2, lat = g([z], randomize_noise=False, return_latents=True)
    assert fixed1.shape == (3, 3, 32, 32) and lat.shape == (3, 8, 16)
    assert torch.equal(fixed1, fixed2)  # stored noise: deterministic
    rand, _ = g([z], randomize_noise=True)
    assert not torch.allclose(rand, fixed1)
    # a W+ code equal to the broadcast W reproduces the W image
    again, _ = g([lat], input_is_latent=True, randomize_noise=False)
    torch.testing.assert_close(again, fixed1)
    assert g.mean_latent(64).shape == (1, 16)


def test_bad_inputs_raise_value_errors_with_the_reason():
    g = tiny_generator()
    with pytest.raises(ValueError, match=r"\(B, 16\)"):
        g([torch.randn(2, 15)])
    with pytest.raises(ValueError, match="W\\+|style"):
        g([torch.randn(2, 7, 16)], input_is_latent=True)
    with pytest.raises(ValueError, match="truncation_latent"):
        g([torch.randn(2, 16)], truncation=0.5)
    with pytest.raises(ValueError, match="power of two"):
        Generator(48)
    d = Discriminator(32, channel_multiplier=1, max_channels=16)
    with pytest.raises(ValueError, match=r"\(B, 3, 32, 32\)"):
        d(torch.zeros(2, 3, 64, 64))


def test_discriminator_gradients_reach_the_input():
    d = Discriminator(32, channel_multiplier=1, max_channels=16)
    img = torch.rand(4, 3, 32, 32, requires_grad=True)
    d(img * 2 - 1).sum().backward()
    assert img.grad is not None and img.grad.abs().sum() > 0


def test_loader_reads_a_converted_checkpoint_and_infers_its_config(tmp_path):
    g = tiny_generator(1)
    d = Discriminator(32, channel_multiplier=1, max_channels=16)
    avg = torch.randn(16)
    path = tmp_path / "tiny.pt"
    torch.save({"g_ema": g.state_dict(), "d": d.state_dict(), "latent_avg": avg}, path)
    g2, d2, avg2 = load_stylegan2(path, "cpu")
    assert g2.size == 32 and g2.style_dim == 16 and d2 is not None
    torch.testing.assert_close(avg2, avg[None])
    z = torch.randn(1, 16)
    with torch.no_grad():
        torch.testing.assert_close(g2([z], randomize_noise=False)[0], g([z], randomize_noise=False)[0])
    torch.save({"g_ema": g.state_dict()}, path)
    _, d3, avg3 = load_stylegan2(path)
    assert d3 is None and avg3 is None
    torch.save({"state_dict": {}}, path)
    with pytest.raises(BlendfixError, match="g_ema"):
        load_stylegan2(path)


def test_missing_ffhq_checkpoint_says_what_to_place_where(tmp_path, monkeypatch):
    monkeypatch.setenv("BLENDFIX_WEIGHTS", str(tmp_path))
    with pytest.raises(MissingWeightsError) as ei:
        load_stylegan2("stylegan2-ffhq-config-f")
    msg = str(ei.value)
    assert str(tmp_path / "stylegan2-ffhq-config-f.pt") in msg
    assert "drive.google.com" in msg and "License-NC" in msg


@torch.no_grad()
def test_discriminator_batch_not_divisible_by_four_uses_the_largest_dividing_group():
    torch.manual_seed(0)
    d = Discriminator(32, channel_multiplier=1, max_channels=16).eval()
    x = torch.rand(6, 3, 32, 32) * 2 - 1
    logits = d(x)  # groups of 3: members (0, 2, 4) and (1, 3, 5)
    assert logits.shape == (6, 1) and torch.isfinite(logits).all()
    torch.testing.assert_close(logits[[0, 2, 4]], d(x[[0, 2, 4]]))  # a batch of 3 is one group
    assert not torch.allclose(logits[0], d(x[0:3])[0])  # contiguous grouping would differ
    with pytest.raises(ValueError, match=r"\(B, 3, 32, 32\)"):
        d(torch.zeros(5, 3, 64, 64))
