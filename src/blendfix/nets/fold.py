"""Inference copies of networks: BatchNorm folded into the convolution before it (eval statistics).

A module class lists its ``(conv, batchnorm)`` attribute pairs in ``CONV_BN``; ``nn.Sequential``
children ``[..., Conv, BatchNorm, ...]`` are found by themselves. Folding is exact up to float
rounding (about 1e-7 relative) and removes one full pass over every folded activation — what eager
PyTorch pays for each BatchNorm, which onnxruntime folds by itself.
"""

from __future__ import annotations

import copy

from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

_CONVS = (nn.Conv2d, nn.ConvTranspose2d)


def _fold_pair(parent: nn.Module, conv_name: str, bn_name: str) -> None:
    conv, bn = getattr(parent, conv_name), getattr(parent, bn_name)
    if not isinstance(conv, _CONVS) or not isinstance(bn, nn.BatchNorm2d):
        raise ValueError(f"{type(parent).__name__}.CONV_BN names ({conv_name}, {bn_name}), which are "
                         f"{type(conv).__name__} and {type(bn).__name__}, not a convolution and a BatchNorm2d")
    setattr(parent, conv_name, fuse_conv_bn_eval(conv, bn, transpose=isinstance(conv, nn.ConvTranspose2d)))
    setattr(parent, bn_name, nn.Identity())


def fold_batchnorm(module: nn.Module) -> nn.Module:
    """A copy of ``module`` in eval mode with every declared or sequential conv -> BatchNorm pair folded.

    Same function (within float rounding), fewer passes; the original is left untouched (its
    BatchNorms keep training).
    """
    module = copy.deepcopy(module).eval()
    for parent in list(module.modules()):
        for conv_name, bn_name in getattr(type(parent), "CONV_BN", ()):
            _fold_pair(parent, conv_name, bn_name)
        if isinstance(parent, nn.Sequential):
            children = list(parent.named_children())
            for (a, conv), (b, bn) in zip(children, children[1:], strict=False):
                if isinstance(conv, _CONVS) and isinstance(bn, nn.BatchNorm2d):
                    _fold_pair(parent, a, b)
    return module
