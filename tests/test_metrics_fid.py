"""FID Inception (pytorch-fid layout) and the Fréchet distance against the shared fixtures."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch

from blendfix.errors import MissingWeightsError
from blendfix.metrics.fid import (
    SmallSampleWarning,
    activation_statistics,
    fid_from_features,
    frechet_distance,
    frechet_distance_lowrank,
    load_fid_inception,
)
from blendfix.nets.inception import FIDInceptionV3, from_pytorch_fid

CASES = ["regular", "near_singular", "rank_deficient", "identical"]


@pytest.fixture(scope="module")
def fr(fixture):
    return fixture("frechet")


@pytest.fixture(scope="module")
def inc(fixture):
    return fixture("inception_fid")


@pytest.fixture(scope="module")
def inception(inc):
    m = FIDInceptionV3()
    m.load_state_dict(inc.state_dict(), strict=True)
    return m


@pytest.mark.parametrize("case", CASES)
def test_statistics_and_distance_match_pytorch_fid(fr, case):
    mu1, s1 = activation_statistics(fr.inputs[f"{case}_feats1"])
    mu2, s2 = activation_statistics(fr.inputs[f"{case}_feats2"])
    for got, key in [(mu1, "mu1"), (s1, "sigma1"), (mu2, "mu2"), (s2, "sigma2")]:
        np.testing.assert_allclose(got, fr.outputs[f"{case}_{key}"], atol=1e-12, rtol=0)
    assert abs(frechet_distance(mu1, s1, mu2, s2) - float(fr.outputs[f"{case}_fd"])) < 1e-5
    forced = frechet_distance(mu1, s1, mu2, s2, always_offset=True)
    assert abs(forced - float(fr.outputs[f"{case}_fd_offset_forced"])) < 1e-5


@pytest.mark.parametrize("case", CASES)
def test_low_rank_identity_agrees_with_sqrtm(fr, case):
    """README: eigenvalue formulations agree with SciPy's sqrtm to ~3e-7; tolerance 1e-5."""
    got = frechet_distance_lowrank(fr.inputs[f"{case}_feats1"], fr.inputs[f"{case}_feats2"])
    assert abs(got - float(fr.outputs[f"{case}_fd"])) < 1e-5


def test_fid_from_features_uses_the_route_that_fits(fr):
    big1, big2 = fr.inputs["regular_feats1"], fr.inputs["regular_feats2"]  # 64 samples x 16 dims: sqrtm route
    small1, small2 = fr.inputs["rank_deficient_feats1"], fr.inputs["rank_deficient_feats2"]  # 10 x 16: low rank
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SmallSampleWarning)
        assert abs(fid_from_features(big1, big2) - float(fr.outputs["regular_fd"])) < 1e-9
        assert abs(fid_from_features(small1, small2) - float(fr.outputs["rank_deficient_fd"])) < 1e-5


def test_identical_sets_are_not_clamped(fr):
    f = fr.inputs["identical_feats1"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SmallSampleWarning)
        assert abs(fid_from_features(f, f)) < 1e-9


def test_complex_square_root_raises():
    with pytest.raises(ValueError, match="imaginary"):
        frechet_distance(np.zeros(2), np.eye(2), np.zeros(2), np.diag([-1.0, 1.0]))


def test_small_sets_warn_and_single_images_are_refused():
    rng = np.random.default_rng(0)
    a, b = rng.random((5, 8)), rng.random((5, 8))
    with pytest.warns(SmallSampleWarning, match="fewer than 2048"):
        fid_from_features(a, b)
    with pytest.raises(ValueError, match="N >= 2"):
        activation_statistics(a[:1])


@pytest.mark.parametrize("grp", ["small", "large"])
def test_pool3_and_block_means_match(inc, inception, grp):
    x = torch.from_numpy(inc.inputs[grp])
    with torch.no_grad():
        outs = inception.block_outputs(x)
        prepared = inception.prepare(x)
    np.testing.assert_allclose(outs[-1].flatten(1).numpy(), inc.outputs[f"{grp}_pool3"], atol=2e-3, rtol=2e-4)
    for b in range(3):
        np.testing.assert_allclose(outs[b].mean(dim=(2, 3)).numpy(), inc.outputs[f"{grp}_block{b}_mean"],
                                   atol=2e-4, rtol=1e-3)
    np.testing.assert_allclose(prepared[:, :, 140:172, 140:172].numpy(), inc.outputs[f"{grp}_resized_input_crop"],
                               atol=1e-6)
    np.testing.assert_allclose(prepared.mean(dim=(2, 3)).numpy(), inc.outputs[f"{grp}_resized_input_mean"], atol=1e-6)


def test_keymap_matches_the_published_checkpoint_layout(inc, inception):
    keymap = json.loads((inc.path / "checkpoint_keymap.json").read_text())
    ckpt = {e["checkpoint_key"]: torch.zeros(e["shape"]) for e in keymap}
    mapped = from_pytorch_fid(ckpt)
    expected = {e["checkpoint_key"]: e["module_key"] for e in keymap if e["module_key"]}
    assert set(mapped) == set(inception.state_dict())
    assert set(expected.values()) == set(mapped)


@pytest.mark.parametrize("with_counters", [True, False])
def test_published_layout_file_loads(inc, tmp_path, with_counters):
    sd = inc.state_dict()
    keymap = json.loads((inc.path / "checkpoint_keymap.json").read_text())
    ckpt = {}
    for e in keymap:
        if e["module_key"] is None:
            ckpt[e["checkpoint_key"]] = torch.zeros(e["shape"])
        elif with_counters or not e["module_key"].endswith("num_batches_tracked"):
            ckpt[e["checkpoint_key"]] = sd[e["module_key"]]
    path = tmp_path / "pt_inception.pth"
    torch.save(ckpt, path)
    loaded = load_fid_inception(path).state_dict()
    for k, v in sd.items():
        if not k.endswith("num_batches_tracked"):
            assert torch.equal(loaded[k], v), k


def test_missing_inception_weights_say_where_to_put_them(tmp_path, monkeypatch):
    monkeypatch.setenv("BLENDFIX_WEIGHTS", str(tmp_path))
    with pytest.raises(MissingWeightsError, match="pt_inception-2015-12-05-6726825d.pth"):
        load_fid_inception()


def test_metric_checkpoints_are_registered():
    from blendfix import registry
    registry.load_all()
    for name, filename in [("pt-inception-fid", "pt_inception-2015-12-05-6726825d.pth"),
                           ("torchvision-alexnet", "alexnet-owt-7be5be79.pth"),
                           ("lpips-alex-v0.1", "lpips_v0.1/alex.pth")]:
        entry = registry.CHECKPOINTS[name]
        assert entry.filename == filename and entry.url.startswith("https://") and entry.licence
