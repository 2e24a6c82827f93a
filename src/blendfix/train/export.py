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
from typing import Any

import torch
from torch import nn

from ..checkpoints import load_file
from ..errors import BlendfixError
from ..folders import PART_SUFFIX, partial_name, sweep_partials
from ..io import atomic_write
from ..nets.maresunet import MAResUNet, count_parameters
from ..onnx_graph import OPSET, export_graph, graph_difference
from .cleaner_check import build_checked, expected_state, model_kwargs, read_cleaner_json
from .runs import latest_checkpoint, load_training_checkpoint, resolve_run

WEIGHTS_NAME = "cleaner.safetensors"
CONFIG_NAME = "cleaner.json"


def _stem(fp16: bool) -> str:
    return "cleaner_fp16" if fp16 else "cleaner"
#: Max abs difference (in [0, 1] image units) accepted between onnxruntime and PyTorch.
ONNX_TOLERANCE = {"fp32": 1e-4, "fp16": 2e-2}


def _model_from(config: dict[str, Any], state: dict[str, torch.Tensor], where: str | os.PathLike = "weights"
                ) -> MAResUNet:
    """The declared network with ``state`` loaded, after the checks of :mod:`.cleaner_check` (``where``
    names the file in errors)."""
    return build_checked(config, state, where)


def _from_run(run: str | os.PathLike) -> tuple[MAResUNet, dict[str, Any]]:
    path = Path(run)
    ckpt = path if path.is_file() else latest_checkpoint(resolve_run(path))
    if ckpt is None:
        raise FileNotFoundError(f"{run}: no checkpoint in this run")
    state = load_training_checkpoint(ckpt)
    if "model_config" not in state:
        raise BlendfixError(f"{ckpt}: a training checkpoint without 'model_config'; it was not written by "
                            f"`blendfix train`")
    val = state.get("val") if isinstance(state.get("val"), dict) else {}
    val = {k: float(v) for k, v in val.items() if isinstance(v, int | float)}
    info = {"source_checkpoint": str(ckpt), "step": int(state["step"]), "validation": val,
            "below_identity": bool(val) and val.get("psnr", 0.0) < val.get("psnr_input", float("-inf"))}
    if info["below_identity"]:
        warnings.warn(f"{ckpt}: at its last validation this network scored {val['psnr']:.2f} dB against the target, "
                      f"below its own input ({val['psnr_input']:.2f} dB): it makes photos worse. The export records "
                      f"below_identity=true and `blendfix clean` warns when it is used.", stacklevel=2)
    return _model_from(state["model_config"], state["model"], ckpt), info


def resolve_cleaner_file(source: str | os.PathLike) -> Path:
    """The one file that defines the cleaner ``source`` names (see :func:`load_cleaner`).

    An export folder gives its ``cleaner.safetensors`` (else ``cleaner_fp16.safetensors``, else
    ``cleaner.onnx``); a run folder or a folder of numbered runs gives the newest checkpoint; a file
    is itself. Raises ``FileNotFoundError`` naming ``source`` when there is none.
    """
    path = Path(source)
    if path.is_dir():
        for name in (WEIGHTS_NAME, f"{_stem(True)}.safetensors", "cleaner.onnx"):
            if (path / name).is_file():
                return path / name
        ckpt = latest_checkpoint(resolve_run(path))
        if ckpt is None:
            raise FileNotFoundError(f"{source}: no checkpoint in this run")
        return ckpt
    if not path.is_file():
        raise FileNotFoundError(f"{source}: no such cleaner weights, run folder or checkpoint")
    return path


def safetensors_config(path: Path) -> Path:
    """The model config (``cleaner.json``) that belongs to an exported ``.safetensors`` file."""
    cfg_path = path.with_suffix(".json") if path.with_suffix(".json").is_file() else path.with_name(CONFIG_NAME)
    if not cfg_path.is_file():
        raise FileNotFoundError(f"{path}: its model config {path.with_suffix('.json').name} is missing beside it "
                                f"(written by `blendfix export`)")
    return cfg_path


def export_meta(path: Path) -> dict[str, Any]:
    """The checked ``cleaner.json`` of an exported ``.safetensors`` file; warns when it records ``below_identity``."""
    cfg_path = safetensors_config(path)
    meta = read_cleaner_json(cfg_path)  # checked before the (possibly large) tensors are read
    expected_state(model_kwargs(meta["model"], str(cfg_path)), str(cfg_path))  # declared size, on meta
    if meta.get("below_identity"):
        warnings.warn(f"{path}: this cleaner scored below its own input at validation ({cfg_path.name}: "
                      f"below_identity=true); its output may be worse than the fused image.", stacklevel=3)
    return meta


def load_cleaner(source: str | os.PathLike, device: str | torch.device = "cpu") -> MAResUNet:
    """A trained MAResU-Net in eval mode on ``device`` (float32); call ``.clean(fused, original)``.

    ``source``: an exported ``cleaner.safetensors`` (``cleaner.json`` beside it) or its folder; a
    training run folder, a folder of numbered runs (newest) or a training checkpoint file; or the
    released raw state_dict (e.g. ``iter_200000``, default architecture).
    """
    path = resolve_cleaner_file(source)
    if path.suffix == ".onnx":
        raise ValueError(f"{path}: an ONNX graph runs in onnxruntime, not PyTorch; use --runtime onnxruntime "
                         "(or auto on a CPU), or give the .safetensors export instead")
    if path.suffix == ".safetensors":
        meta = export_meta(path)
        return _model_from(meta["model"], load_file(path), path).to(device)
    state = load_file(path)
    if isinstance(state, dict) and "model" in state and "step" in state:
        return _from_run(path)[0].to(device)
    return _model_from({}, state, path).to(device)


def export_safetensors(run: str | os.PathLike, out_dir: str | os.PathLike, fp16: bool = False) -> Path:
    """Write ``cleaner.safetensors`` (+ ``cleaner.json``) from a run's newest checkpoint."""
    from safetensors.torch import save

    model, info = _from_run(run)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    sweep_partials(out)  # temporary files of a killed earlier export
    dtype = torch.float16 if fp16 else torch.float32
    state = {k: (v.to(dtype) if v.is_floating_point() else v).contiguous() for k, v in model.state_dict().items()}
    path = out / f"{_stem(fp16)}.safetensors"
    blob = save(state, metadata={"format": "pt", "architecture": "maresunet"})
    atomic_write(path, lambda: blob)
    meta = {"architecture": "maresunet", "model": model.config, "dtype": "fp16" if fp16 else "fp32",
            "input": "MAResUNet.clean(fused, original): (B,3,H,W) RGB in [0,1] -> (B,3,H,W) in [0,1]; "
                     "raw forward: cat([F, I]) in [-1,1], square side multiple of 32", **info}
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
        x = (torch.cat([fused, original], 1) * 2 - 1).to(self.dtype)
        return ((self.net(x).float() + 1) / 2).clamp(0, 1)


def export_onnx(run: str | os.PathLike, out_dir: str | os.PathLike, fp16: bool = False, check_size: int = 64,
                opset: int = OPSET) -> tuple[Path, float]:
    """Write ``cleaner.onnx`` and check it in onnxruntime; returns the path and the max abs difference.

    Raises ``ValueError`` when onnxruntime and PyTorch differ by more than :data:`ONNX_TOLERANCE`.
    """
    model, info = _from_run(run)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    sweep_partials(out)  # temporary graphs of a killed earlier export
    path = out / f"{_stem(fp16)}.onnx"
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
        diff = graph_difference(graph, OnnxCleaner(_from_run(run)[0]), {"fused": check[0], "original": check[1]})
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
