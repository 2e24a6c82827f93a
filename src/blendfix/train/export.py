"""Export a trained cleaner (safetensors or ONNX) and load one back for inference.

``cleaner.safetensors`` holds the MAResU-Net state_dict; ``cleaner.json`` beside it holds the
architecture config and provenance. The ONNX graph takes ``fused`` and ``original``
``(B, 3, S, S)`` RGB in ``[0, 1]`` (S a multiple of 32; batch and S are dynamic) and returns
``clean`` ``(B, 3, S, S)`` in ``[0, 1]``; every export is run in onnxruntime and compared with
PyTorch before it is kept.
"""

from __future__ import annotations

import json
import os
import tempfile
import warnings
from pathlib import Path

import torch
from torch import nn

from ..cleaner_weights import CONFIG_NAME, WEIGHTS_NAME, file_stem, from_run, load_cleaner, model_from  # noqa: F401
from ..folders import PART_SUFFIX, partial_name, sweep_partials
from ..io import atomic_write
from ..nets.maresunet import MAResUNet, network_input, network_output

#: Max abs difference (in [0, 1] image units) accepted between onnxruntime and PyTorch.
ONNX_TOLERANCE = {"fp32": 1e-4, "fp16": 2e-2}


def export_safetensors(run: str | os.PathLike, out_dir: str | os.PathLike, fp16: bool = False) -> Path:
    """Write ``cleaner.safetensors`` (+ ``cleaner.json``) from a run's newest checkpoint."""
    from safetensors.torch import save

    model, info = from_run(run)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    sweep_partials(out)  # temporary files of a killed earlier export
    dtype = torch.float16 if fp16 else torch.float32
    state = {k: (v.to(dtype) if v.is_floating_point() else v).contiguous() for k, v in model.state_dict().items()}
    path = out / f"{file_stem(fp16)}.safetensors"
    blob = save(state, metadata={"format": "pt", "architecture": "maresunet"})
    atomic_write(path, lambda: blob)
    meta = {"architecture": "maresunet", "model": model.config, "dtype": "fp16" if fp16 else "fp32",
            "input": "MAResUNet.clean(original, fused): (B,3,H,W) RGB in [0,1] -> (B,3,H,W) in [0,1]; "
                     "raw forward: cat([F, I]) in [-1,1], square side multiple of 32", **info}
    atomic_write(path.with_suffix(".json"), json.dumps(meta, indent=1).encode)
    return path


class OnnxCleaner(nn.Module):
    """``(fused, original)`` in ``[0, 1]`` -> cleaned image in ``[0, 1]`` (square, side multiple of 32).

    The graph's inputs keep the names and order ``fused, original`` of the published ONNX files; the
    conversion itself is :func:`~blendfix.nets.maresunet.network_input` / ``network_output``."""

    def __init__(self, net: MAResUNet, dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        self.net = net.to(dtype)
        self.dtype = dtype
        self.eval()  # the exporter restores the wrapper's own mode on the whole tree afterwards

    def forward(self, fused: torch.Tensor, original: torch.Tensor) -> torch.Tensor:
        return network_output(self.net(network_input(original, fused).to(self.dtype)).float())


def export_onnx(run: str | os.PathLike, out_dir: str | os.PathLike, fp16: bool = False, check_size: int = 64,
                opset: int = 17) -> tuple[Path, float]:
    """Write ``cleaner.onnx`` and check it in onnxruntime; returns the path and the max abs difference.

    Raises ``ValueError`` when onnxruntime and PyTorch differ by more than :data:`ONNX_TOLERANCE`.
    """
    model, info = from_run(run)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    sweep_partials(out)  # temporary graphs of a killed earlier export
    path = out / f"{file_stem(fp16)}.onnx"
    # checked before it takes the final name; hidden, named after this process, removed on any failure
    fd, part_name = tempfile.mkstemp(prefix=partial_name(path), suffix=f"{path.suffix}{PART_SUFFIX}", dir=out)
    os.close(fd)
    part = Path(part_name)
    wrapper = OnnxCleaner(model, torch.float16 if fp16 else torch.float32)
    gen = torch.Generator().manual_seed(0)
    example = (torch.rand(1, 3, check_size, check_size, generator=gen),
               torch.rand(1, 3, check_size, check_size, generator=gen))
    axes = {0: "batch", 2: "size", 3: "size"}
    # another batch size and side than the traced example, against the float32 PyTorch model
    check = (torch.rand(2, 3, check_size * 2, check_size * 2, generator=gen),
             torch.rand(2, 3, check_size * 2, check_size * 2, generator=gen))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", torch.jit.TracerWarning)  # input checks become constants; fine
            # the TorchScript exporter: the dynamo one needs onnxscript, which is not a dependency
            warnings.simplefilter("ignore", DeprecationWarning)
            torch.onnx.export(wrapper, example, str(part), input_names=["fused", "original"],
                              output_names=["clean"], dynamic_axes={"fused": axes, "original": axes, "clean": axes},
                              opset_version=opset, dynamo=False)
        diff = onnx_difference(part, OnnxCleaner(from_run(run)[0]), check)
        tol = ONNX_TOLERANCE["fp16" if fp16 else "fp32"]
        if not diff <= tol:
            raise ValueError(f"{path}: onnxruntime differs from PyTorch by {diff:.3g} (> {tol}); export rejected")
        os.replace(part, path)  # only a checked graph takes the final name
    finally:
        part.unlink(missing_ok=True)
    meta = {"architecture": "maresunet", "model": model.config, "dtype": "fp16" if fp16 else "fp32",
            "onnx_max_abs_diff": diff, "inputs": "fused, original: (B,3,S,S) float32 RGB in [0,1], S multiple of 32",
            "output": "clean: (B,3,S,S) float32 in [0,1]", **info}
    atomic_write(path.with_name(f"{path.stem}_onnx.json"), json.dumps(meta, indent=1).encode)
    return path, diff


def onnx_difference(path: str | os.PathLike, module: nn.Module, inputs: tuple[torch.Tensor, torch.Tensor]) -> float:
    """Max abs difference between onnxruntime (CPU) and ``module`` on ``(fused, original)``."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = sess.run(None, {"fused": inputs[0].numpy(), "original": inputs[1].numpy()})[0]
    module.eval()
    with torch.no_grad():
        ref = module(*inputs).numpy()
    return float(abs(got - ref).max())
