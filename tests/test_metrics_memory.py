"""Fidelity metrics of any image size run strip by strip in bounded memory, with the whole-image values."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import blendfix.metrics.fidelity as fid
from blendfix.io import read_image
from blendfix.tensors import image_to_tensor


@pytest.fixture(scope="module")
def pair(faces_dir):
    """A real face photo cropped to an awkward size, and a degraded copy (blur + noise) as the prediction."""
    photo = sorted((faces_dir / "celebamask_hq_512").iterdir())[0]
    target = image_to_tensor([read_image(photo)[:203, :157]])
    blurred = F.avg_pool2d(F.pad(target, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
    noise = torch.rand(target.shape, generator=torch.Generator().manual_seed(0)) * 0.05
    return (blurred + noise).clamp(0, 1), target


def _whole_image_map(p, t):
    """The former one-piece computation: pad the whole image, filter it in one go."""
    p, t = p.double(), t.double()
    g = fid.gaussian_taps()
    stack = F.pad(torch.cat([p, t, p * p, t * t, p * t]), (5, 5, 5, 5), mode="reflect")
    mu_x, mu_y, xx, yy, xy = fid._filter_1d(fid._filter_1d(stack, g, dim=2), g, dim=3).split(1)
    c1, c2 = fid.SSIM_K1**2, fid.SSIM_K2**2
    return ((2 * mu_x * mu_y + c1) * (2 * (xy - mu_x * mu_y) + c2)) / (
        (mu_x**2 + mu_y**2 + c1) * ((xx - mu_x**2).clamp_min(0) + (yy - mu_y**2).clamp_min(0) + c2))


def test_ssim_in_strips_equals_the_whole_image_value_exactly(pair):
    p, t = pair
    whole = _whole_image_map(p, t)
    for rows in (1, 7, 64, 203):
        assert torch.equal(fid.ssim_map(p, t, rows=rows), whole)  # every pixel, bit for bit
    values = {float(fid.ssim(p, t, rows=rows)) for rows in (1, 7, 64, 203)}
    cropped = {float(fid.ssim(p, t, crop_border=True, rows=rows)) for rows in (1, 3, 100, 203)}
    assert len(values) == 1 and len(cropped) == 1  # the same number whatever the strip size
    assert values.pop() == pytest.approx(float(whole.mean()), rel=1e-15, abs=0)
    assert cropped.pop() == pytest.approx(float(whole[..., 5:-5, 5:-5].mean()), rel=1e-15, abs=0)
    assert 0.5 < float(fid.ssim(p, t)) < 0.999


def test_psnr_and_mae_in_strips_equal_the_one_piece_values(pair, monkeypatch):
    p, t = pair
    d = p.double() - t.double()
    ref_psnr, ref_mae = float(-10 * torch.log10(d.pow(2).mean())), float(d.abs().mean())
    for limit in (fid.STRIP_ELEMENTS, 3 * 3 * 157 * 5):  # one strip, or strips of 5 rows
        monkeypatch.setattr(fid, "STRIP_ELEMENTS", limit)
        assert float(fid.psnr(p, t)) == pytest.approx(ref_psnr, rel=1e-14)
        assert float(fid.mae(p, t)) == pytest.approx(ref_mae, rel=1e-14)


def test_ssim_memory_is_bounded_by_the_strip_not_the_image(monkeypatch):
    """A 1200x900 pair with a 1 M-value budget: no filtered tensor exceeds the budget plus the window's
    reach (the one-piece stack would hold 5 x 3 x 1210 x 910 = 16.5 M float64 values)."""
    monkeypatch.setattr(fid, "STRIP_ELEMENTS", 1 << 20)
    sizes = []
    real = fid._filter_1d

    def recording(x, taps, dim):
        sizes.append(x.numel())
        return real(x, taps, dim)

    monkeypatch.setattr(fid, "_filter_1d", recording)
    rng = np.random.default_rng(0)
    p, t = (torch.from_numpy(rng.random((1, 3, 1200, 900), dtype=np.float32)) for _ in range(2))
    value = float(fid.ssim(p, t))
    assert 0 <= value < 0.1  # unrelated noise images
    per_row = 5 * 3 * 910
    assert max(sizes) <= (1 << 20) + 10 * per_row < 5 * 3 * 1210 * 910 // 8
