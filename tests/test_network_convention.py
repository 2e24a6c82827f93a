"""One argument order, (original, fused), and one [0, 1] <-> [-1, 1] conversion everywhere the network runs.

The two inputs have the same shape, so a swap would be silent; a tiny random MAResU-Net is not symmetric
in its two inputs, so every entry point is compared with the network's own raw forward on cat([F, I]).
"""

from __future__ import annotations

import numpy as np
import torch

import blendfix
from blendfix.cleaning import CleanConfig, Cleaner
from blendfix.nets.maresunet import MAResUNet, network_input, network_output
from blendfix.tensors import image_to_tensor, tensor_to_image
from blendfix.train.export import OnnxCleaner

TINY = {"widths": (16, 16, 32, 32), "blocks": (1, 1, 1, 1), "head_width": 16, "residual": True}  # F + correction


def _pair():
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[0:64, 0:64] / 63.0
    original = np.stack([yy, xx, 0.5 * (xx + yy)], axis=2).astype(np.float32)
    fused = np.clip(original + rng.normal(0, 0.2, original.shape), 0, 1).astype(np.float32)
    return original, fused


def test_every_entry_point_feeds_the_network_f_then_i():
    torch.manual_seed(0)
    net = MAResUNet(**TINY).eval()
    original, fused = _pair()
    o, f = image_to_tensor(original), image_to_tensor(fused)
    with torch.no_grad():
        raw = network_output(net(torch.cat([f, o], 1) * 2 - 1))  # the released convention, written out once
        swapped = network_output(net(torch.cat([o, f], 1) * 2 - 1))
        assert (raw - swapped).abs().max() > 1e-3  # the test can tell a swap
        torch.testing.assert_close(network_input(o, f), torch.cat([f, o], 1) * 2 - 1)
        torch.testing.assert_close(net.clean(o, f), raw)
        torch.testing.assert_close(Cleaner(CleanConfig(method="network", device="cpu"), network=net)
                                   .run_network(o, f), raw)
        torch.testing.assert_close(OnnxCleaner(net)(f, o), raw)  # the ONNX graph's inputs: fused, original
    api = blendfix.clean(original, fused, method="network", network=net, device="cpu")
    np.testing.assert_allclose(api, tensor_to_image(raw)[0], atol=1e-6)
