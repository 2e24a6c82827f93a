"""Checks on cleaner weights before anything is built from them: they are untrusted input.

A cleaner file (``cleaner.safetensors`` + ``cleaner.json``, a training checkpoint or the released
raw state_dict) is checked in this order, and each problem is one :class:`BlendfixError` naming
the file and the fix:

1. the architecture it declares (``cleaner.json``'s ``model`` or a checkpoint's ``model_config``):
   known keys with the right types, 6 input and 3 output channels, every size within
   :data:`LIMITS`, and at most :data:`MAX_PARAMETERS` parameters — counted on the ``meta`` device,
   so a 3 MB file declaring a huge network allocates nothing;
2. the tensors: a mapping of names to tensors, exactly the architecture's keys, each with its shape,
   a floating dtype where the network holds floats (an int32/uint8 file is refused, never cast), and
   finite values.

Only then is the real network built and the weights loaded (``strict=True``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

from .errors import BlendfixError
from .nets.maresunet import MAResUNet

#: Inclusive bounds on the declared architecture (the released network: widths 64..512, blocks 3..6).
LIMITS = {"widths": (16, 2048), "blocks": (1, 64), "head_width": (1, 1024)}
#: Largest network accepted: 8x the released MAResU-Net (26,285,115 parameters).
MAX_PARAMETERS = 8 * 26_285_115
_FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
_FIX = "re-export it with `blendfix export`, or point --weights at the run folder it came from"


def read_cleaner_json(path: Path) -> dict[str, Any]:
    """A ``cleaner.json`` written by ``blendfix export``, checked to hold a ``model`` mapping."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise BlendfixError(f"{path}: not a readable cleaner config ({e}); {_FIX}") from e
    if not isinstance(data, dict) or not isinstance(data.get("model"), dict):
        raise BlendfixError(f"{path}: no 'model' section with the network's architecture; {_FIX}")
    return data


def _ints(value: Any, n: int | None, key: str, where: str) -> tuple[int, ...]:
    items = value if isinstance(value, list | tuple) else [value]
    if (n is not None and len(items) != n) or not all(isinstance(v, int) and not isinstance(v, bool) for v in items):
        want = f"a list of {n} integers" if n else "an integer"
        raise BlendfixError(f"{where}: model.{key} must be {want}, got {value!r}; {_FIX}")
    lo, hi = LIMITS[key]
    if not all(lo <= v <= hi for v in items):
        raise BlendfixError(f"{where}: model.{key} = {value!r} is outside [{lo}, {hi}]; {_FIX}")
    return tuple(items)


def model_kwargs(config: Any, where: str) -> dict[str, Any]:
    """:class:`MAResUNet` keyword arguments from a declared architecture, checked (see the module doc)."""
    if not isinstance(config, dict):
        raise BlendfixError(f"{where}: the model architecture must be a mapping, got {type(config).__name__}; {_FIX}")
    kw: dict[str, Any] = {}
    for key in ("in_channels", "out_channels"):
        if key in config and config[key] != {"in_channels": 6, "out_channels": 3}[key]:
            raise BlendfixError(f"{where}: model.{key} = {config[key]!r}, but a cleaner takes 6 channels "
                                f"([fused, original]) and returns 3; {_FIX}")
    for key, n in (("widths", 4), ("blocks", 4), ("head_width", None)):
        if key in config:
            v = _ints(config[key], n, key, where)
            kw[key] = v if n else v[0]
    for key in ("residual", "input_skip"):
        if key in config:
            if not isinstance(config[key], bool):
                raise BlendfixError(f"{where}: model.{key} must be true or false, got {config[key]!r}; {_FIX}")
            kw[key] = config[key]
    return kw


def expected_state(kwargs: dict[str, Any], where: str) -> dict[str, tuple[tuple[int, ...], torch.dtype]]:
    """Name -> (shape, dtype) of the declared network's state_dict, built on ``meta`` (no memory)."""
    with torch.device("meta"):
        net = MAResUNet(**kwargs)
    n = sum(p.numel() for p in net.parameters())
    if n > MAX_PARAMETERS:
        raise BlendfixError(f"{where}: the declared network has {n:,} parameters, more than the {MAX_PARAMETERS:,} "
                            f"accepted (the released MAResU-Net has 26,285,115); {_FIX}")
    return {k: (tuple(v.shape), v.dtype) for k, v in net.state_dict().items()}


def check_state(state: Any, expected: dict[str, tuple[tuple[int, ...], torch.dtype]], where: str) -> None:
    """Refuse anything but exactly the expected tensors (names, shapes, float dtypes, finite values)."""
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise BlendfixError(f"{where}: not a MAResU-Net state_dict (a mapping of names to tensors), got "
                            f"{type(state).__name__}; {_FIX}")
    missing, extra = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
    if missing or extra:
        shown = ", ".join([f"missing {k}" for k in missing[:3]] + [f"unexpected {k}" for k in extra[:3]])
        raise BlendfixError(f"{where}: {len(missing)} missing and {len(extra)} unexpected tensors for the declared "
                            f"architecture ({shown}); {_FIX}")
    for key, (shape, dtype) in expected.items():
        t = state[key]
        if tuple(t.shape) != shape:
            raise BlendfixError(f"{where}: {key} has shape {tuple(t.shape)}, the declared architecture needs "
                                f"{shape}; {_FIX}")
        if dtype.is_floating_point and t.dtype not in _FLOAT_DTYPES:
            raise BlendfixError(f"{where}: {key} is {str(t.dtype).replace('torch.', '')}; network weights must be "
                                f"float16, bfloat16 or float32 (integer weights would be garbage); {_FIX}")
        if not dtype.is_floating_point and (t.dtype.is_floating_point or t.dtype.is_complex):
            raise BlendfixError(f"{where}: {key} must be an integer counter, got {t.dtype}; {_FIX}")
        if t.dtype.is_floating_point and not bool(torch.isfinite(t).all()):
            raise BlendfixError(f"{where}: {key} holds NaN or infinite values (a diverged run?); use an earlier "
                                f"checkpoint")


def build_checked(config: Any, state: Any, where: str | os.PathLike) -> MAResUNet:
    """The network ``config`` declares, loaded with ``state``, after every check above (eval mode, float32)."""
    where = os.fspath(where)
    kwargs = model_kwargs(config, where)
    check_state(state, expected_state(kwargs, where), where)
    with torch.device("meta"):  # no random initialisation to overwrite (it took 1 s of every `clean` start)
        model = MAResUNet(**kwargs)
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()}, strict=True,
                          assign=True)
    return model.eval()

