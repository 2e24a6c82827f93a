"""MAResU-Net artifact-suppression network: ``(F, I) -> clean image``.

State_dict layout of the network released with DiffCAM++ (``model/deghosting/MAResUNet.py``,
371 entries, 26,285,115 parameters): a ResNet-34 encoder (``firstconv`` 6->64 with bias,
``firstbn``, ``encoder1..4``), one attention layer per scale (``attention1..4``: linear-kernel
position attention ``PAM`` + channel attention ``CAM``), additive skips, ``decoder1..4`` and the
head ``finaldeconv1`` / ``finalconv2`` / ``finalconv3``.

:class:`MAResUNet` is the raw network: input ``(B, 6, S, S)`` = channels ``[F, I]`` in ``[-1, 1]``,
``S`` a multiple of 32; output ``(B, 3, S, S)``, no activation, read as RGB in ``[-1, 1]``.
:meth:`MAResUNet.clean` is the package-convention wrapper: fused and original ``(B, 3, H, W)`` in
``[0, 1]`` (any size) -> cleaned ``(B, 3, H, W)`` in ``[0, 1]``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..registry import CheckpointEntry, ModelEntry, register_checkpoint, register_model
from ..tiling import DEFAULT_OVERLAP, DEFAULT_TILE, run_padded
from .resnet import make_stage
from .resnet34 import RESNET34_BLOCKS, RESNET34_WIDTHS, init_resnet_weights

register_model(ModelEntry(
    name="maresunet",
    builder="blendfix.nets.maresunet:MAResUNet",
    description="MAResU-Net artifact suppression: [fused, original] in [-1,1] -> clean RGB in [-1,1]",
    checkpoints=("maresunet-diffcampp",),
))

register_checkpoint(CheckpointEntry(
    name="maresunet-diffcampp",
    filename="iter_200000",
    url="https://github.com/ch0n9waiu/face-attribute-editing-diffcampp (README: Yandex Disk link to the trained "
        "deghosting weights, deghosting_checkpoint2/iter_200000)",
    layout="raw MAResUNet state_dict, 371 entries, no 'module.' prefix: firstconv, firstbn, encoder1..4, "
           "attention1..4, decoder1..4, finaldeconv1, finalconv2, finalconv3",
    licence="no licence file in the repository; research use only",
    model="maresunet",
    notes="saved with torch.save without a file extension after 200,000 training steps at 1024x1024",
))

#: Multiple that the input side must have (the encoder downsamples by 32).
SIZE_MULTIPLE = 32


class PAM(nn.Module):
    """Linear-kernel position attention: ``x_n + gamma * sum_m (1 + q_n.k_m) v_m / sum_m (1 + q_n.k_m)``.

    q and k are L2-normalised over channels (no epsilon); ``(B, C, S, S) -> (B, C, S, S)``.
    Computed in float32 even under autocast: the denominator ``N + q.sum_m k_m`` nearly cancels (its
    terms reach ``+-N``, N = H*W), which bf16 rounds to 0 and fp16 overflows at N > 65504.
    """

    def __init__(self, channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.zeros(1))
        self.query_conv = nn.Conv2d(channels, channels // 8, 1)
        self.key_conv = nn.Conv2d(channels, channels // 8, 1)
        self.value_conv = nn.Conv2d(channels, channels, 1)
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.autocast(x.device.type, enabled=False):
            return self._attend(x.float()).to(x.dtype)

    def _attend(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        q, k, v = (F.conv2d(x, conv.weight.float(), conv.bias.float()).flatten(2)  # float32 even in a half model
                   for conv in (self.query_conv, self.key_conv, self.value_conv))
        q = q / q.norm(dim=1, keepdim=True)
        k = k / k.norm(dim=1, keepdim=True)
        numerator = v.sum(-1, keepdim=True) + torch.bmm(torch.bmm(v, k.transpose(1, 2)), q)
        n = torch.ones_like(k[:, :1]).sum(-1)  # (B, 1) = H*W, as a tensor so exported graphs keep it dynamic
        denominator = n + torch.einsum("bcn,bc->bn", q, k.sum(-1) + self.eps)
        out = numerator / denominator.unsqueeze(1)
        return x + self.gamma.float() * out.view(b, c, h, w)


class CAM(nn.Module):
    """DANet channel attention with the softmax of ``rowmax(E) - E``, ``E = X X^T``; shape-preserving.

    Computed in float32 even under autocast (E sums H*W products; reduced precision shifts the softmax)."""

    def __init__(self) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.autocast(x.device.type, enabled=False):
            return self._attend(x.float()).to(x.dtype)

    def _attend(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        flat = x.flatten(2)
        energy = torch.bmm(flat, flat.transpose(1, 2))
        attn = torch.softmax(energy.amax(-1, keepdim=True) - energy, dim=-1)
        return x + self.gamma.float() * torch.bmm(attn, flat).view(b, c, h, w)


def _conv_relu(in_ch: int, out_ch: int, k: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_ch, out_ch, k, padding=k // 2), nn.ReLU())


class AttentionLayer(nn.Module):
    """``conv3(conv2P(PAM(f)) + conv2C(CAM(f)))`` with ``f = ReLU(conv3x3(x))``; ``(B, C, S, S)`` in and out."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = _conv_relu(channels, channels, 3)
        self.PAM = PAM(channels)
        self.CAM = CAM()
        self.conv2P = nn.Sequential(nn.Dropout2d(0.1), _conv_relu(channels, channels, 1))
        self.conv2C = nn.Sequential(nn.Dropout2d(0.1), _conv_relu(channels, channels, 1))
        self.conv3 = nn.Sequential(nn.Dropout2d(0.1), _conv_relu(channels, channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.conv1(x)
        return self.conv3(self.conv2P(self.PAM(f)) + self.conv2C(self.CAM(f)))


class DecoderBlock(nn.Module):
    """1x1 reduce (in -> in/4), 3x3 transposed conv x2 upsampling, 1x1 expand (-> out), each + BN + ReLU."""

    CONV_BN = (("conv1", "norm1"), ("deconv2", "norm2"), ("conv3", "norm3"))  # foldable (blendfix.nets.fold)

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        mid = max(in_ch // 4, 1)
        self.conv1 = nn.Conv2d(in_ch, mid, 1)
        self.norm1 = nn.BatchNorm2d(mid)
        self.deconv2 = nn.ConvTranspose2d(mid, mid, 3, stride=2, padding=1, output_padding=1)
        self.norm2 = nn.BatchNorm2d(mid)
        self.conv3 = nn.Conv2d(mid, out_ch, 1)
        self.norm3 = nn.BatchNorm2d(out_ch)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.norm1(self.conv1(x)))
        x = self.relu(self.norm2(self.deconv2(x)))
        return self.relu(self.norm3(self.conv3(x)))


class MAResUNet(nn.Module):
    """The artifact-suppression network (defaults = the released network, 26,285,115 parameters).

    Args:
        in_channels: input channels (6 = fused RGB then original RGB).
        out_channels: output channels (3 = RGB).
        widths: encoder stage widths (ResNet-34: 64, 128, 256, 512); smaller ones (>= 16) give tiny nets.
        blocks: BasicBlocks per encoder stage (ResNet-34: 3, 4, 6, 3).
        head_width: channels of the final upsampling head (32).
        residual: blendfix option, off in the released network: the output is F + the head's output, and
            the last convolution starts at zero, so an untrained network returns F unchanged and training
            only learns the correction. The state_dict layout is the same either way.
        input_skip: blendfix option, off in the released network: the full-resolution input (F and I)
            is concatenated to the head's features before ``finalconv2`` (whose ``in_channels`` grow
            by ``in_channels``). The paper's network reaches full resolution only through a stride-4
            encoder, so it cannot copy the photo's fine texture; with this path it can (a
            full-resolution gate between F and I). Changes ``finalconv2.weight``'s shape only.
    """

    CONV_BN = (("firstconv", "firstbn"),)  # foldable pairs (blendfix.nets.fold)

    def __init__(self, in_channels: int = 6, out_channels: int = 3,
                 widths: tuple[int, int, int, int] = RESNET34_WIDTHS,
                 blocks: tuple[int, int, int, int] = RESNET34_BLOCKS, head_width: int = 32,
                 residual: bool = False, input_skip: bool = False) -> None:
        super().__init__()
        if len(widths) != 4 or len(blocks) != 4 or min(blocks) < 1 or head_width < 1:
            raise ValueError(f"MAResUNet needs 4 widths and 4 positive block counts, got {widths}, {blocks}")
        if min(widths) < 16:
            # PAM projects to C/8 channels and normalises them: a single channel makes q.k = -1 possible
            # for every position, and the attention 0/0.
            raise ValueError(f"MAResUNet widths must be at least 16 (the attention needs >= 2 query channels), "
                             f"got {widths}")
        self.config = {"in_channels": in_channels, "out_channels": out_channels, "widths": list(widths),
                       "blocks": list(blocks), "head_width": head_width, "residual": residual,
                       "input_skip": input_skip}
        if residual and out_channels > in_channels:
            raise ValueError("residual=True adds the fused image to the output: out_channels <= in_channels")
        self.residual, self.input_skip = residual, input_skip
        w1, w2, w3, w4 = widths
        self.firstconv = nn.Conv2d(in_channels, w1, 7, stride=2, padding=3)
        self.firstbn = nn.BatchNorm2d(w1)
        self.firstrelu = nn.ReLU()
        self.firstmaxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.encoder1 = make_stage(w1, w1, blocks[0], 1)
        self.encoder2 = make_stage(w1, w2, blocks[1], 2)
        self.encoder3 = make_stage(w2, w3, blocks[2], 2)
        self.encoder4 = make_stage(w3, w4, blocks[3], 2)
        self.attention4 = AttentionLayer(w4)
        self.attention3 = AttentionLayer(w3)
        self.attention2 = AttentionLayer(w2)
        self.attention1 = AttentionLayer(w1)
        self.decoder4 = DecoderBlock(w4, w3)
        self.decoder3 = DecoderBlock(w3, w2)
        self.decoder2 = DecoderBlock(w2, w1)
        self.decoder1 = DecoderBlock(w1, w1)
        self.finaldeconv1 = nn.ConvTranspose2d(w1, head_width, 4, stride=2, padding=1)
        self.finalrelu1 = nn.ReLU()
        self.finalconv2 = nn.Conv2d(head_width + (in_channels if input_skip else 0), head_width, 3, padding=1)
        self.finalrelu2 = nn.ReLU()
        self.finalconv3 = nn.Conv2d(head_width, out_channels, 3, padding=1)
        if self.firstconv.weight.is_meta:  # built to receive a state_dict (assign=True): nothing to initialise
            return
        init_resnet_weights(nn.ModuleList([self.firstbn, self.encoder1, self.encoder2, self.encoder3,
                                           self.encoder4]))
        if residual:
            nn.init.zeros_(self.finalconv3.weight)
            nn.init.zeros_(self.finalconv3.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, in_channels, S, S)`` in ``[-1, 1]``, S a multiple of 32 -> ``(B, out_channels, S, S)`` raw
        (with ``residual``: F, the first ``out_channels`` input channels, plus the head's output)."""
        if x.ndim != 4 or x.shape[1] != self.firstconv.in_channels:
            raise ValueError(f"MAResUNet expects (B, {self.firstconv.in_channels}, S, S), got {tuple(x.shape)}")
        if x.shape[2] != x.shape[3] or x.shape[2] % SIZE_MULTIPLE:
            raise ValueError(f"MAResUNet needs square inputs with a side that is a multiple of {SIZE_MULTIPLE}, "
                             f"got {x.shape[2]}x{x.shape[3]}; MAResUNet.clean pads any size")
        x_in = x
        x = self.firstmaxpool(self.firstrelu(self.firstbn(self.firstconv(x))))
        e1 = self.encoder1(x)
        e2 = self.encoder2(e1)
        e3 = self.encoder3(e2)
        e4 = self.encoder4(e3)
        d4 = self.decoder4(self.attention4(e4)) + self.attention3(e3)
        d3 = self.decoder3(d4) + self.attention2(e2)
        d2 = self.decoder2(d3) + self.attention1(e1)
        d1 = self.decoder1(d2)
        y = self.finalrelu1(self.finaldeconv1(d1))
        if self.input_skip:  # x_in in y's dtype: under autocast the conv casts it anyway, and a mixed cat is 3x slower
            y = torch.cat([y, x_in.to(y.dtype)], 1)
        y = self.finalrelu2(self.finalconv2(y))
        y = self.finalconv3(y)
        return y + x_in[:, : y.shape[1]] if self.residual else y

    def for_inference(self) -> MAResUNet:
        """A copy for inference only (eval mode): BatchNorms folded into their convolutions and ReLUs in
        place (no ReLU input is used twice here). Same function within float rounding; 1.13x faster in
        eager bf16 on a CPU at 1024² (BENCHMARKS.md). Not trainable: its BatchNorms are gone."""
        from .fold import fold_batchnorm

        net = fold_batchnorm(self)
        for m in net.modules():
            if isinstance(m, nn.ReLU):
                m.inplace = True
        return net

    def clean(self, original: torch.Tensor, fused: torch.Tensor, tile: int = DEFAULT_TILE,
              overlap: int = DEFAULT_OVERLAP) -> torch.Tensor:
        """Original and fused ``(B, 3, H, W)`` in ``[0, 1]`` -> cleaned ``(B, 3, H, W)`` in ``[0, 1]``.

        Any size, exactly as ``blendfix clean`` runs it (:func:`blendfix.tiling.run_padded`): padded to a
        square side that is a multiple of 32 and cropped back; beyond ``tile`` in overlapping tiles,
        each padded on its own, so memory follows the tile, not the image.
        """
        if fused.shape != original.shape or fused.ndim != 4 or fused.shape[1] != 3:
            raise ValueError(f"original and fused must both be (B, 3, H, W), got {tuple(original.shape)} "
                             f"and {tuple(fused.shape)}")
        out = run_padded(self, network_input(original, fused), tile, overlap, self.finalconv3.out_channels,
                         SIZE_MULTIPLE)
        return network_output(out)


def to_signed(x: torch.Tensor) -> torch.Tensor:
    """``[0, 1]`` images -> ``[-1, 1]`` (the network's value range, also of its training targets)."""
    return x * 2 - 1


def network_input(original: torch.Tensor, fused: torch.Tensor) -> torch.Tensor:
    """The one place the network's input is made: ``(original I, fused F)`` ``(B, 3, H, W)`` in ``[0, 1]``
    -> ``cat([F, I])`` ``(B, 6, H, W)`` in ``[-1, 1]`` (F first, as the released code)."""
    return torch.cat([fused, original], 1).mul_(2).sub_(1)  # to_signed, in place on the new tensor


def network_output(y: torch.Tensor) -> torch.Tensor:
    """The network's ``[-1, 1]`` output -> an image in ``[0, 1]`` (clamped)."""
    return ((y + 1) / 2).clamp(0, 1)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
