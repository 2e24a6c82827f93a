"""LPIPS v0.1 (AlexNet and VGG16 trunks) against the shared architecture-equivalence fixture."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import need

from blendfix.errors import ChecksumError, MissingWeightsError
from blendfix.metrics.lpips import LPIPS, load_lpips
from blendfix.nets.alexnet import TRUNKS

ATOL, RTOL = 1e-5, 1e-4  # README tolerance


@pytest.fixture(scope="module")
def lp(fixture):
    return fixture("lpips")


def _model(lp, detweights, net: str) -> tuple[LPIPS, dict]:
    sd = detweights.build_state_dict(lp.path / net)
    m = LPIPS(net)
    m.load_state_dict(sd, strict=True)
    return m, sd


@pytest.mark.parametrize("net", ["alex", "vgg"])
@pytest.mark.parametrize("grp", ["small", "large"])
def test_distances_and_layer_terms_match(lp, detweights, net, grp):
    m, _ = _model(lp, detweights, net)
    x0, x1 = (torch.from_numpy(lp.inputs[f"{grp}_in{i}"]) for i in (0, 1))
    with torch.no_grad():
        layers = m.layers(x0, x1, normalize=False).numpy()
    np.testing.assert_allclose(layers, lp.outputs[f"{net}_{grp}_layers"], atol=ATOL, rtol=RTOL)
    np.testing.assert_allclose(layers.sum(1), lp.outputs[f"{net}_{grp}_dist"], atol=ATOL, rtol=RTOL)


@pytest.mark.parametrize("net", ["alex", "vgg"])
def test_zero_one_inputs_and_identical_pairs(lp, detweights, net):
    m, _ = _model(lp, detweights, net)
    x0, x1 = (torch.from_numpy(lp.inputs[f"small_in{i}"]) for i in (0, 1))
    with torch.no_grad():
        d01 = m((x0 + 1) / 2, (x1 + 1) / 2).numpy()  # blendfix convention: [0, 1] by default
        same = m(x0, x0, normalize=False).numpy()
    np.testing.assert_allclose(d01, lp.outputs[f"{net}_small_dist_normalize01"], atol=ATOL, rtol=RTOL)
    assert np.all(same == 0)


@pytest.mark.parametrize("net", ["alex", "vgg"])
def test_published_files_load_through_their_own_layouts(lp, detweights, data_dir, tmp_path, net):
    """Trunk in torchvision layout (features.{i}, plus classifier.*) + the real v0.1 lin file."""
    lin_file = need(data_dir / "weights" / "lpips_v0.1" / f"{net}.pth", f"LPIPS v0.1 {net}.pth")
    _, sd = _model(lp, detweights, net)
    # net.slice{s}.{i}.weight -> features.{i}.weight
    tv = {"features." + k.split(".", 2)[2]: v for k, v in sd.items() if k.startswith("net.")}
    tv["classifier.1.weight"] = torch.zeros(4, 9216)
    assert all(k.startswith(("features.", "classifier.")) for k in tv)
    assert {int(k.split(".")[1]) for k in tv if k.startswith("features.")} == {
        i for i, spec in enumerate(TRUNKS[net][0]) if spec[0] == "conv"}
    trunk = tmp_path / "trunk.pth"
    torch.save(tv, trunk)
    m = load_lpips(net, trunk=trunk, lin=lin_file)
    x0, x1 = (torch.from_numpy(lp.inputs[f"small_in{i}"]) for i in (0, 1))
    with torch.no_grad():
        d = m(x0, x1, normalize=False).numpy()
    np.testing.assert_allclose(d, lp.outputs[f"{net}_small_dist_reallin"], atol=ATOL, rtol=RTOL)


def test_missing_weights_name_both_files(tmp_path, monkeypatch):
    monkeypatch.setenv("BLENDFIX_WEIGHTS", str(tmp_path))
    with pytest.raises(MissingWeightsError) as ei:
        load_lpips("alex")
    msg = str(ei.value)
    assert "alexnet-owt-7be5be79.pth" in msg and "lpips_v0.1/alex.pth" in msg and str(tmp_path) in msg


def test_registered_trunk_with_wrong_hash_is_refused(tmp_path, monkeypatch, data_dir):
    lin = need(data_dir / "weights" / "lpips_v0.1" / "alex.pth", "LPIPS v0.1 alex.pth")
    monkeypatch.setenv("BLENDFIX_WEIGHTS", str(tmp_path))
    torch.save({"features.0.weight": torch.zeros(64, 3, 11, 11)}, tmp_path / "alexnet-owt-7be5be79.pth")
    with pytest.raises(ChecksumError, match="7be5be79"):
        load_lpips("alex", lin=lin)
