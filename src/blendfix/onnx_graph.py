"""The one ONNX exporter: torch network -> ONNX graph for onnxruntime, checked against PyTorch.

Used by ``blendfix export --format onnx`` (:mod:`blendfix.train.export`) and by the CPU runtime's
graph cache (:mod:`blendfix.runtime`). Before export, every transposed convolution whose output is
exactly ``stride`` times its input (MAResU-Net's decoders and its final 2x upsampling) is rewritten
as one ordinary convolution followed by a pixel shuffle (:class:`SubPixelConvTranspose2d`): the
same function, but onnxruntime's ``ConvTranspose`` on CPU builds a column buffer of
``C_out * k * k * H * W`` floats (537 MB for the final layer at 1024²) and ran 2-3x slower than the
whole rest of the network there. The rewrite is exact up to float rounding (about 1e-7).
"""

from __future__ import annotations

import copy
import io
import os
import warnings
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

#: Opset of every graph blendfix writes.
OPSET = 17


class SubPixelConvTranspose2d(nn.Module):
    """A ``ConvTranspose2d`` (stride s, output side s * input side) as a convolution + pixel shuffle.

    Output phase ``(ry, rx)`` (pixels ``(s*i + ry, s*j + rx)``) is a correlation of the input with
    the taps ``t`` of the transposed kernel for which ``(r + padding - t)`` is a multiple of s; all
    phases share one window, so one ``Conv`` with ``s*s*C_out`` outputs computes them and
    ``pixel_shuffle`` interleaves them. ``(B, C_in, H, W) -> (B, C_out, s*H, s*W)``.
    """

    def __init__(self, deconv: nn.ConvTranspose2d) -> None:
        super().__init__()
        if not supports_subpixel(deconv):
            raise ValueError(f"{deconv} is not a square, ungrouped transposed convolution with output = stride x input")
        s, k, p = deconv.stride[0], deconv.kernel_size[0], deconv.padding[0]
        w = deconv.weight.detach().float()  # (C_in, C_out, k, k)
        c_in, c_out = w.shape[:2]
        taps = {r: [(t, (r + p - t) // s) for t in range(k) if (r + p - t) % s == 0] for r in range(s)}
        offsets = [d for r in taps for _, d in taps[r]]
        self.lo, self.hi, self.stride = min(offsets), max(offsets), s
        size = self.hi - self.lo + 1
        kernel = torch.zeros(c_out, s, s, c_in, size, size)
        for ry in range(s):
            for rx in range(s):
                for ty, dy in taps[ry]:
                    for tx, dx in taps[rx]:
                        kernel[:, ry, rx, :, dy - self.lo, dx - self.lo] = w[:, :, ty, tx].t()
        bias = deconv.bias.detach().float() if deconv.bias is not None else torch.zeros(c_out)
        dtype = deconv.weight.dtype
        self.register_buffer("weight", kernel.reshape(c_out * s * s, c_in, size, size).to(dtype))
        self.register_buffer("bias", bias.repeat_interleave(s * s).to(dtype))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.lo == -self.hi:  # a centred window: the convolution pads by itself
            y = F.conv2d(x, self.weight, self.bias, padding=self.hi)
        else:
            y = F.conv2d(F.pad(x, (-self.lo, self.hi, -self.lo, self.hi)), self.weight, self.bias)
        return F.pixel_shuffle(y, self.stride)


def supports_subpixel(m: nn.ConvTranspose2d) -> bool:
    """Whether ``m`` maps an ``n``-sided input to exactly ``stride * n`` (square, no groups/dilation)."""
    (s, s2), (k, k2), (p, p2), (op, op2) = m.stride, m.kernel_size, m.padding, m.output_padding
    return (s == s2 and k == k2 and p == p2 and op == op2 and m.groups == 1 and m.dilation == (1, 1)
            and m.padding_mode == "zeros" and k + op - 2 * p == s)


def fast_deconvs(module: nn.Module) -> nn.Module:
    """A copy of ``module`` (eval mode) with every eligible ``ConvTranspose2d`` made a sub-pixel convolution."""
    module = copy.deepcopy(module).eval()
    for parent in list(module.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.ConvTranspose2d) and supports_subpixel(child):
                setattr(parent, name, SubPixelConvTranspose2d(child))
    return module


def export_graph(module: nn.Module, example: Sequence[torch.Tensor], input_names: Sequence[str],
                 output_names: Sequence[str], dynamic_axes: dict[str, dict[int, str]],
                 metadata: dict[str, object] | None = None, opset: int = OPSET) -> bytes:
    """The ONNX graph (bytes) of ``module`` traced on ``example`` (CPU), transposed convolutions rewritten.

    ``dynamic_axes`` names the free dimensions per input/output; ``metadata`` is stored in the
    model's ``metadata_props``. The module itself is not modified.
    """
    import onnx

    net = fast_deconvs(module).cpu()
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)  # input checks become constants; fine
        # the TorchScript exporter: the dynamo one needs onnxscript, which is not a dependency
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", UserWarning)  # exporter notes (constant folding of slices), not the user's
        torch.onnx.export(net, tuple(example), buf, input_names=list(input_names), output_names=list(output_names),
                          dynamic_axes=dynamic_axes, opset_version=opset, dynamo=False)
    model = onnx.load_from_string(buf.getvalue())
    if metadata:
        onnx.helper.set_model_props(model, {k: str(v) for k, v in metadata.items()})
    return model.SerializeToString()


def graph_difference(graph: bytes | str | os.PathLike, module: nn.Module, inputs: dict[str, torch.Tensor]) -> float:
    """Max abs difference between onnxruntime (CPU) running ``graph`` and ``module(*inputs.values())``."""
    import onnxruntime as ort

    source = graph if isinstance(graph, bytes) else str(graph)
    sess = ort.InferenceSession(source, providers=["CPUExecutionProvider"])
    got = sess.run(None, {k: v.numpy() for k, v in inputs.items()})[0]
    module.eval()
    with torch.no_grad():
        ref = module(*inputs.values()).float().numpy()
    return float(abs(got - ref).max())
