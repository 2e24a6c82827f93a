"""PSNR / SSIM / MAE against the torchmetrics reference values of the shared fixture."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from blendfix.metrics.fidelity import mae, psnr, ssim

# README tolerances (float32 library values): PSNR 1e-4 dB, SSIM 5e-5, MAE 1e-6.
TOL = {"psnr": 1e-4, "ssim": 5e-5, "mae": 1e-6}
FUNCS = {"psnr": psnr, "ssim": ssim, "mae": mae}


@pytest.fixture(scope="module")
def fm(fixture):
    return fixture("fidelity_metrics")


def _per_pair(fm, fn, **kw) -> np.ndarray:
    parts = [fn(torch.from_numpy(fm.inputs[f"{g}_preds"]), torch.from_numpy(fm.inputs[f"{g}_target"]), **kw)
             for g in "AB"]
    return torch.cat(parts).numpy()


@pytest.mark.parametrize("name", ["psnr", "ssim", "mae"])
def test_per_image_values_match_torchmetrics(fm, name):
    got, ref = _per_pair(fm, FUNCS[name]), fm.outputs[name].astype(np.float64)
    assert got.shape == ref.shape
    assert np.array_equal(np.isinf(got), np.isinf(ref))
    finite = np.isfinite(ref)
    np.testing.assert_allclose(got[finite], ref[finite], rtol=0, atol=TOL[name])


def test_batch_reduction_none_matches(fm):
    for g in "AB":
        p, t = torch.from_numpy(fm.inputs[f"{g}_preds"]), torch.from_numpy(fm.inputs[f"{g}_target"])
        np.testing.assert_allclose(ssim(p, t).numpy(), fm.outputs[f"{g}_batch_ssim_none"], atol=TOL["ssim"])
        ref = fm.outputs[f"{g}_batch_psnr_dim123"]
        got = psnr(p, t).numpy()
        assert np.array_equal(np.isinf(got), np.isinf(ref))
        np.testing.assert_allclose(got[np.isfinite(ref)], ref[np.isfinite(ref)], atol=TOL["psnr"])
        # MAE of one same-size batch = mean of the per-image values.
        assert abs(mae(p, t).mean().item() - float(fm.outputs[f"{g}_batch_mae"])) < TOL["mae"]


def test_old_torchmetrics_border_crop(fm):
    got = _per_pair(fm, ssim, crop_border=True)
    np.testing.assert_allclose(got, fm.outputs["ssim_tm141_cropped"], atol=TOL["ssim"])


def test_mean_and_std_over_images_match_reference(fm):
    for name in ("psnr", "ssim", "mae"):
        vals = _per_pair(fm, FUNCS[name])[1:]  # pairs 1..4 (pair 0 is identical)
        assert abs(vals.mean() - fm.outputs[f"{name}_mean_nonidentical"]) < TOL[name]
        assert abs(vals.std() - fm.outputs[f"{name}_std0_nonidentical"]) < TOL[name]
        assert abs(vals.std(ddof=1) - fm.outputs[f"{name}_std1_nonidentical"]) < TOL[name]


def test_identical_images_give_inf_one_zero():
    x = torch.rand(2, 3, 40, 48, generator=torch.Generator().manual_seed(0))
    assert torch.isinf(psnr(x, x)).all() and (psnr(x, x) > 0).all()
    assert torch.allclose(ssim(x, x), torch.ones(2, dtype=torch.float64), atol=1e-12)
    assert (mae(x, x) == 0).all()


def test_metrics_respond_to_a_one_pixel_shift():
    x = torch.rand(1, 3, 48, 48, generator=torch.Generator().manual_seed(1))
    shifted = torch.roll(x, 1, dims=3)
    assert torch.isfinite(psnr(shifted, x)).all() and psnr(shifted, x).item() < 20
    assert ssim(shifted, x).item() < 0.5
    assert mae(shifted, x).item() > 0.1
    # A smaller perturbation scores better than a bigger one.
    slight = (x + 0.01).clamp(0, 1)
    assert psnr(slight, x).item() > psnr(shifted, x).item()
    assert ssim(slight, x).item() > ssim(shifted, x).item()


def test_bad_inputs_raise_clear_errors():
    x = torch.rand(1, 3, 32, 32)
    with pytest.raises(ValueError, match="differ in shape"):
        psnr(x, torch.rand(1, 3, 32, 31))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        ssim(x * 255, x)
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        mae(x[0], x[0])
