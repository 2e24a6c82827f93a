"""pytorch-fid's FID Inception-v3 feature extractor (pool3, 2048-d), layer for layer.

Same function as ``pytorch_fid.inception.InceptionV3(output_blocks=[3], resize_input=True,
normalize_input=True, use_fid_inception=True)``: the TF ``inception-2015-12-05`` graph whose
Mixed blocks differ from torchvision's (count_include_pad=False average pools, a max pool in
Mixed_7c's pool branch). State_dict keys ``blocks.{b}.{j}.*`` as that class; the published
checkpoint ``pt_inception-2015-12-05-6726825d.pth`` (torchvision ``Inception3`` naming) maps onto
it with :func:`from_pytorch_fid`.

Input ``(B, 3, H, W)`` RGB in ``[0, 1]``; always resized to 299x299 (bilinear, align_corners=False,
no antialias), then scaled to ``[-1, 1]``. Output ``(B, 2048)`` float (global average pool).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

#: Published checkpoint prefix -> module prefix (``fc.*`` is not used and dropped).
CHECKPOINT_PREFIXES = {
    "Conv2d_1a_3x3": "blocks.0.0", "Conv2d_2a_3x3": "blocks.0.1", "Conv2d_2b_3x3": "blocks.0.2",
    "Conv2d_3b_1x1": "blocks.1.0", "Conv2d_4a_3x3": "blocks.1.1",
    "Mixed_5b": "blocks.2.0", "Mixed_5c": "blocks.2.1", "Mixed_5d": "blocks.2.2", "Mixed_6a": "blocks.2.3",
    "Mixed_6b": "blocks.2.4", "Mixed_6c": "blocks.2.5", "Mixed_6d": "blocks.2.6", "Mixed_6e": "blocks.2.7",
    "Mixed_7a": "blocks.3.0", "Mixed_7b": "blocks.3.1", "Mixed_7c": "blocks.3.2",
}
INPUT_SIZE = 299
FEATURE_DIM = 2048


class BasicConv2d(nn.Module):
    """Conv without bias -> BatchNorm (eps 0.001) -> ReLU; stride-1 kernels > 1 get "same" padding."""

    def __init__(self, c_in: int, c_out: int, kernel: int | tuple[int, int], stride: int = 1,
                 padding: int | tuple[int, int] | None = None) -> None:
        super().__init__()
        k = (kernel, kernel) if isinstance(kernel, int) else kernel
        if padding is None:
            padding = (k[0] // 2, k[1] // 2) if stride == 1 else 0
        self.conv = nn.Conv2d(c_in, c_out, k, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(c_out, eps=0.001)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


def _avg3(x: torch.Tensor) -> torch.Tensor:
    return F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)


class InceptionA(nn.Module):
    def __init__(self, c_in: int, pool_features: int) -> None:
        super().__init__()
        self.branch1x1 = BasicConv2d(c_in, 64, 1)
        self.branch5x5_1 = BasicConv2d(c_in, 48, 1)
        self.branch5x5_2 = BasicConv2d(48, 64, 5)
        self.branch3x3dbl_1 = BasicConv2d(c_in, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3)
        self.branch_pool = BasicConv2d(c_in, pool_features, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b5 = self.branch5x5_2(self.branch5x5_1(x))
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([self.branch1x1(x), b5, b3, self.branch_pool(_avg3(x))], 1)


class InceptionB(nn.Module):
    def __init__(self, c_in: int) -> None:
        super().__init__()
        self.branch3x3 = BasicConv2d(c_in, 384, 3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(c_in, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([self.branch3x3(x), b3, F.max_pool2d(x, 3, stride=2)], 1)


class InceptionC(nn.Module):
    def __init__(self, c_in: int, c7: int) -> None:
        super().__init__()
        self.branch1x1 = BasicConv2d(c_in, 192, 1)
        self.branch7x7_1 = BasicConv2d(c_in, c7, 1)
        self.branch7x7_2 = BasicConv2d(c7, c7, (1, 7))
        self.branch7x7_3 = BasicConv2d(c7, 192, (7, 1))
        self.branch7x7dbl_1 = BasicConv2d(c_in, c7, 1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, (7, 1))
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, (1, 7))
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, (7, 1))
        self.branch7x7dbl_5 = BasicConv2d(c7, 192, (1, 7))
        self.branch_pool = BasicConv2d(c_in, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        d = x
        for i in range(1, 6):
            d = getattr(self, f"branch7x7dbl_{i}")(d)
        return torch.cat([self.branch1x1(x), b7, d, self.branch_pool(_avg3(x))], 1)


class InceptionD(nn.Module):
    def __init__(self, c_in: int) -> None:
        super().__init__()
        self.branch3x3_1 = BasicConv2d(c_in, 192, 1)
        self.branch3x3_2 = BasicConv2d(192, 320, 3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(c_in, 192, 1)
        self.branch7x7x3_2 = BasicConv2d(192, 192, (1, 7))
        self.branch7x7x3_3 = BasicConv2d(192, 192, (7, 1))
        self.branch7x7x3_4 = BasicConv2d(192, 192, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b3 = self.branch3x3_2(self.branch3x3_1(x))
        b7 = x
        for i in range(1, 5):
            b7 = getattr(self, f"branch7x7x3_{i}")(b7)
        return torch.cat([b3, b7, F.max_pool2d(x, 3, stride=2)], 1)


class InceptionE(nn.Module):
    """``max_pool=True`` for Mixed_7c (the TF graph's max pool), average pool otherwise."""

    def __init__(self, c_in: int, max_pool: bool) -> None:
        super().__init__()
        self.max_pool = max_pool
        self.branch1x1 = BasicConv2d(c_in, 320, 1)
        self.branch3x3_1 = BasicConv2d(c_in, 384, 1)
        self.branch3x3_2a = BasicConv2d(384, 384, (1, 3))
        self.branch3x3_2b = BasicConv2d(384, 384, (3, 1))
        self.branch3x3dbl_1 = BasicConv2d(c_in, 448, 1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, 3)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, (1, 3))
        self.branch3x3dbl_3b = BasicConv2d(384, 384, (3, 1))
        self.branch_pool = BasicConv2d(c_in, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b3 = self.branch3x3_1(x)
        d = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        pooled = F.max_pool2d(x, 3, stride=1, padding=1) if self.max_pool else _avg3(x)
        return torch.cat([self.branch1x1(x), self.branch3x3_2a(b3), self.branch3x3_2b(b3),
                          self.branch3x3dbl_3a(d), self.branch3x3dbl_3b(d), self.branch_pool(pooled)], 1)


class FIDInceptionV3(nn.Module):
    """pool3 features of pytorch-fid's Inception: ``(B, 3, H, W)`` in ``[0, 1]`` -> ``(B, 2048)``."""

    def __init__(self) -> None:
        super().__init__()
        self.blocks = nn.ModuleList([
            nn.Sequential(BasicConv2d(3, 32, 3, stride=2), BasicConv2d(32, 32, 3, padding=0),
                          BasicConv2d(32, 64, 3), nn.MaxPool2d(3, stride=2)),
            nn.Sequential(BasicConv2d(64, 80, 1), BasicConv2d(80, 192, 3, padding=0), nn.MaxPool2d(3, stride=2)),
            nn.Sequential(InceptionA(192, 32), InceptionA(256, 64), InceptionA(288, 64), InceptionB(288),
                          InceptionC(768, 128), InceptionC(768, 160), InceptionC(768, 160), InceptionC(768, 192)),
            nn.Sequential(InceptionD(768), InceptionE(1280, max_pool=False), InceptionE(2048, max_pool=True),
                          nn.AdaptiveAvgPool2d(1)),
        ])
        self.eval()

    @staticmethod
    def prepare(x: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W)`` in ``[0, 1]`` -> resized to 299x299 (bilinear, no antialias) and scaled to ``[-1, 1]``."""
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"FID Inception expects (B, 3, H, W) RGB in [0, 1], got {tuple(x.shape)}")
        x = F.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False, antialias=False)
        return 2 * x - 1

    def block_outputs(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The four block outputs for ``[0, 1]`` input; the last is ``(B, 2048, 1, 1)``."""
        x = self.prepare(x)
        outs = []
        for block in self.blocks:
            x = block(x)
            outs.append(x)
        return outs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block_outputs(x)[-1].flatten(1)


def from_pytorch_fid(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Published ``pt_inception-2015-12-05-6726825d.pth`` keys -> module keys.

    ``fc.*`` is dropped; absent ``bn.num_batches_tracked`` entries (old BatchNorm format) are filled
    with zeros (unused at evaluation). Raises ``ValueError`` on keys outside the layout.
    """
    out: dict[str, torch.Tensor] = {}
    unknown = []
    for key, value in state.items():
        head, _, rest = key.partition(".")
        if head == "fc":
            continue
        if head not in CHECKPOINT_PREFIXES:
            unknown.append(key)
            continue
        out[f"{CHECKPOINT_PREFIXES[head]}.{rest}"] = value
    if unknown:
        raise ValueError(f"not a pytorch-fid Inception checkpoint: unexpected keys {unknown[:5]}"
                         + (f" (+{len(unknown) - 5} more)" if len(unknown) > 5 else ""))
    for key in [k for k in out if k.endswith("bn.running_mean")]:
        out.setdefault(key.replace("running_mean", "num_batches_tracked"), torch.zeros((), dtype=torch.int64))
    return out
