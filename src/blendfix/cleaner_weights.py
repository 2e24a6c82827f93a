"""Loading a trained cleaner for inference: exported files, training runs, the released state_dict.

``cleaner.safetensors`` holds the MAResU-Net state_dict; ``cleaner.json`` beside it holds the
architecture config and provenance (written by ``blendfix export``, :mod:`blendfix.train.export`).
Inference code imports this module, never :mod:`blendfix.train`.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import torch

from .checkpoints import load_file
from .cleaner_check import build_checked, expected_state, model_kwargs, read_cleaner_json
from .errors import BlendfixError
from .nets.maresunet import MAResUNet
from .runlayout import latest_checkpoint, load_training_checkpoint, resolve_run

WEIGHTS_NAME = "cleaner.safetensors"
CONFIG_NAME = "cleaner.json"


def file_stem(fp16: bool) -> str:
    return "cleaner_fp16" if fp16 else "cleaner"


def model_from(config: dict[str, Any], state: dict[str, torch.Tensor], where: str | os.PathLike = "weights"
                ) -> MAResUNet:
    """The declared network with ``state`` loaded, after the checks of :mod:`blendfix.cleaner_check` (``where``
    names the file in errors)."""
    return build_checked(config, state, where)


def from_run(run: str | os.PathLike) -> tuple[MAResUNet, dict[str, Any]]:
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
    return model_from(state["model_config"], state["model"], ckpt), info


def resolve_cleaner_file(source: str | os.PathLike) -> Path:
    """The one file that defines the cleaner ``source`` names (see :func:`load_cleaner`).

    An export folder gives its ``cleaner.safetensors`` (else ``cleaner_fp16.safetensors``, else
    ``cleaner.onnx``); a run folder or a folder of numbered runs gives the newest checkpoint; a file
    is itself. Raises ``FileNotFoundError`` naming ``source`` when there is none.
    """
    path = Path(source)
    if path.is_dir():
        for name in (WEIGHTS_NAME, f"{file_stem(True)}.safetensors", "cleaner.onnx"):
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
    """A trained MAResU-Net in eval mode on ``device`` (float32); call ``.clean(original, fused)``.

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
        return model_from(meta["model"], load_file(path), path).to(device)
    state = load_file(path)
    if isinstance(state, dict) and "model" in state and "step" in state:
        return from_run(path)[0].to(device)
    return model_from({}, state, path).to(device)
