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
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..cleaner_weights import (  # noqa: F401  (re-exported: loading lives outside train/)
    CONFIG_NAME,
    WEIGHTS_NAME,
    export_meta,
    file_stem,
    from_run,
    load_cleaner,
    model_from,
    resolve_cleaner_file,
    safetensors_config,
)
from ..folders import PART_SUFFIX, partial_name, sweep_partials
from ..io import atomic_write
from ..nets.maresunet import MAResUNet, count_parameters, network_input, network_output
from ..onnx_graph import OPSET, export_graph, graph_difference

#: Max abs difference (in [0, 1] image units) accepted between onnxruntime and PyTorch.
ONNX_TOLERANCE = {"fp32": 1e-4, "fp16": 2e-2}


def export_safetensors(run: str | os.PathLike, out_dir: str | os.PathLike, fp16: bool = False) -> Path:
    """Write ``cleaner.safetensors`` (+ ``cleaner.json``) from a run's newest checkpoint."""
    model, info = from_run(run)
    return save_cleaner(model, out_dir, fp16, info)


def save_cleaner(model: MAResUNet, out_dir: str | os.PathLike, fp16: bool = False,
                 info: dict[str, Any] | None = None) -> Path:
    """Write ``model`` as ``cleaner.safetensors`` + ``cleaner.json`` in ``out_dir`` (atomically), the files
    ``clean --weights OUT_DIR`` loads; ``info`` (source checkpoint, validation, ...) goes into the json."""
    from safetensors.torch import save

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
                     "raw forward: cat([F, I]) in [-1,1], square side multiple of 32", **(info or {})}
    atomic_write(path.with_suffix(".json"), json.dumps(meta, indent=1).encode)
    return path


class OnnxCleaner(nn.Module):
    """``(fused, original)`` in ``[0, 1]`` -> cleaned image in ``[0, 1]`` (square, side multiple of 32)."""

    def __init__(self, net: MAResUNet, dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        self.net = net.to(dtype)
        self.dtype = dtype
        self.eval()  # the exporter restores the wrapper's own mode on the whole tree afterwards

    def forward(self, fused: torch.Tensor, original: torch.Tensor) -> torch.Tensor:
        return network_output(self.net(network_input(original, fused).to(self.dtype)).float())


def export_onnx(run: str | os.PathLike, out_dir: str | os.PathLike, fp16: bool = False, check_size: int = 64,
                opset: int = OPSET) -> tuple[Path, float]:
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
        graph = export_graph(wrapper, example, ["fused", "original"], ["clean"],
                             {"fused": axes, "original": axes, "clean": axes},
                             metadata={"blendfix_interface": "pair", "parameters": count_parameters(model)},
                             opset=opset)
        part.write_bytes(graph)
        diff = graph_difference(graph, OnnxCleaner(from_run(run)[0]), {"fused": check[0], "original": check[1]})
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
    return graph_difference(path, module, {"fused": inputs[0], "original": inputs[1]})
