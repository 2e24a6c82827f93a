"""Editing directions: the real EOGI / e4e files, normalisation as the method does, registry lookup."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from blendfix.edit.directions import (
    ATTRIBUTE_DIRECTIONS,
    apply_direction,
    direction_path,
    load_direction,
    normalise_direction,
    read_direction_file,
)
from blendfix.errors import MissingWeightsError
from blendfix.registry import CHECKPOINTS

EOGI = ("Beard", "Bushy_Eyebrows", "Eyeglasses", "Mouth_Open", "Narrow_Eyes", "Old", "Smiling")


@pytest.fixture
def dirs(data_dir):
    from conftest import need
    return need(data_dir / "directions", "shared directions")


@pytest.mark.parametrize("stem", EOGI)
def test_eogi_files_unit_frobenius(dirs, stem):
    path = dirs / "eogi_wplus_stylegan2_ffhq" / f"{stem}.npy"
    raw = np.load(path)
    d = load_direction(path)
    assert d.shape == (18, 512) and d.dtype == torch.float32
    assert abs(float(d.double().norm()) - 1.0) < 1e-6
    np.testing.assert_allclose(d.numpy(), raw / np.sqrt((raw * raw).sum()), atol=1e-7)


def test_e4e_w_direction_repeated_over_rows(dirs):
    raw = read_direction_file(dirs / "e4e_interfacegan_stylegan2_ffhq" / "age.pt")
    assert raw.shape == (1, 512)
    d = load_direction(dirs / "e4e_interfacegan_stylegan2_ffhq" / "age.pt")
    assert d.shape == (18, 512) and torch.allclose(d, d[:1].expand(18, -1))
    assert abs(float(d.norm()) - 1.0) < 1e-5
    pose = load_direction(dirs / "e4e_interfacegan_stylegan2_ffhq" / "pose.pt")  # saved on CUDA, (1, 18, 512)
    assert pose.shape == (18, 512) and abs(float(pose.norm()) - 1.0) < 1e-5


def test_attributes_resolve_through_registry(dirs, tmp_path, monkeypatch):
    monkeypatch.setenv("BLENDFIX_WEIGHTS", str(tmp_path))
    for name in ATTRIBUTE_DIRECTIONS.values():
        target = tmp_path / CHECKPOINTS[name].filename
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to(dirs / "eogi_wplus_stylegan2_ffhq" / target.name)
    expect = {"eyebrows": "Bushy_Eyebrows", "beard": "Beard", "aging": "Old", "smile": "Smiling"}
    for attr, stem in expect.items():
        assert direction_path(attr).name == f"{stem}.npy"
        torch.testing.assert_close(load_direction(attr), load_direction(dirs / "eogi_wplus_stylegan2_ffhq" /
                                                                        f"{stem}.npy"))
    assert direction_path("Old").name == "Old.npy"  # aliases of the attribute names work too


def test_missing_direction_says_what_to_place_where(tmp_path, monkeypatch):
    monkeypatch.setenv("BLENDFIX_WEIGHTS", str(tmp_path))
    with pytest.raises(MissingWeightsError) as e:
        load_direction("aging")
    msg = str(e.value)
    assert str(tmp_path / "directions" / "eogi" / "Old.npy") in msg
    assert "Editing-Out-of-Domain" in msg and "age.pt" in msg
    with pytest.raises(MissingWeightsError, match="nope.npy"):
        load_direction(tmp_path / "nope.npy")
    with pytest.raises(ValueError, match="unknown direction"):
        load_direction("hat")


def test_apply_direction_moves_by_alpha():
    torch.manual_seed(0)
    w = torch.randn(3, 18, 512)
    n = torch.randn(18, 512, dtype=torch.float64) * 7
    out = apply_direction(w, n)  # alpha defaults to the method's 20
    assert out.shape == w.shape and out.dtype == w.dtype
    assert torch.allclose((out - w).flatten(1).norm(dim=1), torch.full((3,), 20.0), atol=1e-3)
    torch.testing.assert_close(out - w, (20 * n / n.norm()).float().expand(3, -1, -1), atol=1e-5, rtol=1e-5)
    alphas = torch.tensor([0.0, 5.0, -10.0])
    per = torch.randn(3, 1, 512)
    out2 = apply_direction(w, per, alphas)
    assert torch.allclose((out2 - w).flatten(1).norm(dim=1), alphas.abs(), atol=1e-4)
    step = out2[1] - w[1]
    assert torch.allclose(step, step[:1].expand(18, -1), atol=1e-5)  # a W direction moves every row alike
    assert apply_direction(w[0], n, 1.0).shape == (18, 512)


def test_bad_directions_are_refused(tmp_path):
    np.save(tmp_path / "wide.npy", np.ones((18, 256)))
    with pytest.raises(ValueError, match="must be"):
        read_direction_file(tmp_path / "wide.npy")
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(Exception, match="obj.npy"):
        read_direction_file(tmp_path / "obj.npy")
    with pytest.raises(ValueError, match="zero norm"):
        normalise_direction(torch.zeros(18, 512))
    with pytest.raises(ValueError):
        normalise_direction(torch.ones(5, 512))
    with pytest.raises(ValueError, match=".txt"):
        read_direction_file(tmp_path / "x.txt")
