"""Padding to the network's size rule and overlapped tiling."""

from __future__ import annotations

import pytest
import torch

from blendfix.tiling import crop, pad_square, padded_side, tiled


@pytest.mark.parametrize("h, w", [(511, 513), (64, 64), (20, 50), (100, 33)])
def test_pad_square_then_crop_restores_exact_size(h, w):
    x = torch.rand(2, 6, h, w)
    p, size = pad_square(x)
    assert p.shape[-1] == p.shape[-2] == padded_side(h, w) and p.shape[-1] % 32 == 0
    assert torch.equal(crop(p, size), x)


def _local_net() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(6, 8, 3, padding=1), torch.nn.ReLU(),
                               torch.nn.Conv2d(8, 8, 3, padding=1), torch.nn.ReLU(),
                               torch.nn.Conv2d(8, 3, 3, padding=1)).eval()


@pytest.mark.parametrize("h, w", [(160, 160), (200, 136)])
def test_tiling_equals_untiled_for_a_local_network(h, w):
    net = _local_net()
    x = torch.rand(1, 6, h, w)
    with torch.no_grad():
        full = net(x)
        tiles = tiled(net, x, tile=64, overlap=24, out_channels=3)
    # receptive radius 3 < the 6-pixel zero-weight margin: every counted output is exact
    assert torch.allclose(full, tiles, atol=1e-5)


def test_tiling_is_seam_free_for_a_global_network():
    class GlobalMean(torch.nn.Module):  # output depends on the whole tile: worst case for tiling
        def forward(self, t):
            return t[:, :3] + t.mean(dim=(2, 3), keepdim=True)[:, :3]

    x = torch.rand(1, 6, 192, 192)
    out = tiled(GlobalMean(), x, tile=64, overlap=32, out_channels=3)
    step = (out - x[:, :3]).diff(dim=-1).abs()
    assert step.max() < 0.05  # tile offsets are blended, no hard step at any tile border


def test_tiling_rejects_bad_arguments():
    with pytest.raises(ValueError, match="overlap"):
        tiled(torch.nn.Identity(), torch.rand(1, 3, 64, 64), tile=32, overlap=32, out_channels=3)
    with pytest.raises(ValueError, match="smaller than the tile"):
        tiled(torch.nn.Identity(), torch.rand(1, 3, 16, 64), tile=32, overlap=8, out_channels=3)
