"""EOGI's deghosting network, rebuilt from public facts with random weights — for timing only.

"Editing Out-of-domain GAN Inversion via Differential Activations" (EOGI) cleans the fused image
with a GLEAN-style network: the fused image, area-downsampled to ``in_size`` (128), goes through an
RRDB trunk (23 blocks, 64 channels) and a strided encoder down to 4x4 whose last layer predicts a
W+ code; a frozen StyleGAN2 generator (FFHQ config-f) runs on that code while encoder features
are fused into its low-resolution layers; a decoder upsamples by pixel shuffle, taking the
generator's high-resolution features, to ``out_size``. Facts used: the public repository's layer
list (channel table, 23 RRDBs, growth 32, fusion convolutions, decoder) and the paper's size
(174.2 M parameters at out_size 1024). Nothing here is used by blendfix itself.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from blendfix.nets.stylegan2 import Generator

CHANNELS = {4: 512, 8: 512, 16: 512, 32: 512, 64: 512, 128: 256, 256: 128, 512: 64, 1024: 32}


def _lrelu() -> nn.Module:
    return nn.LeakyReLU(0.2, inplace=True)


class DenseBlock(nn.Module):
    def __init__(self, ch: int = 64, grow: int = 32) -> None:
        super().__init__()
        self.convs = nn.ModuleList(nn.Conv2d(ch + i * grow, ch if i == 4 else grow, 3, 1, 1) for i in range(5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = [x]
        for i, conv in enumerate(self.convs):
            y = conv(torch.cat(feats, 1))
            if i < 4:
                feats.append(F.leaky_relu(y, 0.2))
        return x + 0.2 * y


class RRDB(nn.Module):
    def __init__(self, ch: int = 64) -> None:
        super().__init__()
        self.blocks = nn.Sequential(DenseBlock(ch), DenseBlock(ch), DenseBlock(ch))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + 0.2 * self.blocks(x)


class Trunk(nn.Module):
    def __init__(self, out_ch: int, ch: int = 64, n_blocks: int = 23) -> None:
        super().__init__()
        self.first = nn.Conv2d(3, ch, 3, 1, 1)
        self.body = nn.Sequential(*[RRDB(ch) for _ in range(n_blocks)])
        self.body_conv = nn.Conv2d(ch, ch, 3, 1, 1)
        self.up = nn.Conv2d(ch, out_ch, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.first(x)
        return F.leaky_relu(self.up(f + self.body_conv(self.body(f))), 0.2)


class EOGIDeghosting(nn.Module):
    """fused (B, 3, out_size, out_size) in [-1, 1] -> cleaned (B, 3, out_size, out_size)."""

    def __init__(self, in_size: int = 128, out_size: int = 1024) -> None:
        super().__init__()
        self.in_size, self.out_size = in_size, out_size
        n_latent = int(math.log2(out_size)) * 2 - 2
        self.encoder = nn.ModuleList([Trunk(CHANNELS[in_size])])
        c = in_size
        while c >= 4:
            if c > 4:
                self.encoder.append(nn.Sequential(nn.Conv2d(CHANNELS[c], CHANNELS[c // 2], 3, 2, 1), _lrelu(),
                                                  nn.Conv2d(CHANNELS[c // 2], CHANNELS[c // 2], 3, 1, 1), _lrelu()))
            else:
                self.encoder.append(nn.Sequential(nn.Conv2d(CHANNELS[4], CHANNELS[4], 3, 1, 1), _lrelu(),
                                                  nn.Flatten(), nn.Linear(16 * CHANNELS[4], n_latent * 512)))
            c //= 2
        sizes = [2 ** i for i in range(2, int(math.log2(in_size)) + 1)]
        self.fuse_out = nn.ModuleList(nn.Conv2d(2 * CHANNELS[s], CHANNELS[s], 3, 1, 1) for s in sizes)
        self.fuse_skip = nn.ModuleList(nn.Conv2d(CHANNELS[s] + 3, 3, 3, 1, 1) for s in sizes)
        self.decoder = nn.ModuleList()
        s = in_size
        while s <= out_size:
            cin = CHANNELS[s] * (1 if s == in_size else 2)
            if s < out_size:
                self.decoder.append(nn.Sequential(nn.Conv2d(cin, CHANNELS[2 * s] * 4, 3, 1, 1), nn.PixelShuffle(2)))
            else:
                self.decoder.append(nn.Sequential(nn.Conv2d(cin, 64, 3, 1, 1), _lrelu(), nn.Conv2d(64, 3, 3, 1, 1)))
            s *= 2
        self.generator = Generator(out_size).requires_grad_(False)

    def forward(self, fused: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(fused, (self.in_size, self.in_size), mode="area")
        feats = []
        for block in self.encoder:
            x = block(x)
            feats.append(x)
        feats = feats[::-1]
        latent = feats[0].view(fused.shape[0], -1, 512)
        enc = feats[1:]
        g = self.generator
        out = g.conv1(g.input(latent.shape[0]), latent[:, 0])
        skip = g.to_rgb1(out, latent[:, 1])
        gen_feats, i = [], 1
        for k, to_rgb in enumerate(g.to_rgbs):
            if out.shape[-1] <= self.in_size:
                f = enc[k]
                out = self.fuse_out[k](torch.cat([out, f], 1))
                skip = self.fuse_skip[k](torch.cat([skip, f], 1))
            out = g.convs[2 * k](out, latent[:, i])
            out = g.convs[2 * k + 1](out, latent[:, i + 1])
            skip = to_rgb(out, latent[:, i + 2], skip)
            if out.shape[-1] > self.in_size:
                gen_feats.append(out)
            i += 2
        hr = enc[-1]
        for j, block in enumerate(self.decoder):
            if j > 0:
                hr = torch.cat([hr, gen_feats[j - 1]], 1)
            hr = block(hr)
        return hr


if __name__ == "__main__":
    for size in (256, 512, 1024):
        net = EOGIDeghosting(128, size)
        print(size, f"{sum(p.numel() for p in net.parameters()) / 1e6:.1f} M parameters")
