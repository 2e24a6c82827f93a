"""Latent editing directions for the StyleGAN2 FFHQ generator: files, normalisation, application.

The method edits a W+ code as ``w' = w + alpha * n / ||n||_F`` with ``alpha = 20`` (EOGI's
``image_process.py``): the direction is scaled to unit Frobenius norm over the whole ``(18, 512)``
array. Two file kinds are read:

- EOGI W+ directions, ``.npy`` ``float64 (18, 512)`` (Bushy_Eyebrows, Beard, Old, Smiling, ...);
- InterFaceGAN W directions as published by encoder4editing, ``.pt`` tensors ``(1, 512)`` (age, smile)
  or ``(1, 18, 512)`` (pose). A W direction is repeated over the 18 style rows *before* the
  Frobenius normalisation, so ``alpha`` has the same meaning for both kinds (each row moves by
  ``alpha / sqrt(18)``, about 4.7 for alpha 20, within e4e's usual InterFaceGAN range).

Files are never downloaded: the four attributes map to registered files under
``<weights folder>/directions/`` and a missing one raises the offline "place X at Y" error.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from ..attributes import ATTRIBUTES, canonical
from ..checkpoints import load_file
from ..errors import BlendfixError, MissingWeightsError
from ..registry import (
    CHECKPOINTS,
    CheckpointEntry,
    ModelEntry,
    checkpoint_path,
    missing_message,
    register_checkpoint,
    register_model,
)

DEFAULT_ALPHA = 20.0
N_STYLES = 18
W_DIM = 512

_EOGI = "https://github.com/HaoruiSong622/Editing-Out-of-Domain/blob/HEAD/directions/"
_E4E = "https://github.com/omertov/encoder4editing/blob/main/editings/interfacegan_directions/"

#: registered direction name -> (file under the weights folder, source URL)
_FILES = {
    "eogi_bushy_eyebrows": ("directions/eogi/Bushy_Eyebrows.npy", _EOGI + "Bushy_Eyebrows.npy"),
    "eogi_beard": ("directions/eogi/Beard.npy", _EOGI + "Beard.npy"),
    "eogi_old": ("directions/eogi/Old.npy", _EOGI + "Old.npy"),
    "eogi_smiling": ("directions/eogi/Smiling.npy", _EOGI + "Smiling.npy"),
    "eogi_eyeglasses": ("directions/eogi/Eyeglasses.npy", _EOGI + "Eyeglasses.npy"),
    "eogi_mouth_open": ("directions/eogi/Mouth_Open.npy", _EOGI + "Mouth_Open.npy"),
    "eogi_narrow_eyes": ("directions/eogi/Narrow_Eyes.npy", _EOGI + "Narrow_Eyes.npy"),
    "interfacegan_age": ("directions/e4e/age.pt", _E4E + "age.pt"),
    "interfacegan_smile": ("directions/e4e/smile.pt", _E4E + "smile.pt"),
}

#: the method's direction for each attribute (EOGI's W+ files), and the InterFaceGAN alternatives.
ATTRIBUTE_DIRECTIONS: dict[str, str] = {
    "eyebrows": "eogi_bushy_eyebrows", "beard": "eogi_beard", "aging": "eogi_old", "smile": "eogi_smiling",
}
ALTERNATIVE_DIRECTIONS: dict[str, tuple[str, ...]] = {"aging": ("interfacegan_age",), "smile": ("interfacegan_smile",)}

for _name, (_file, _url) in _FILES.items():
    _eogi = _name.startswith("eogi_")
    register_checkpoint(CheckpointEntry(
        name=_name, filename=_file, url=_url,
        layout=("numpy .npy float64 (18, 512) W+ direction" if _eogi
                else "torch.save tensor float32 (1, 512) W direction (InterFaceGAN)"),
        licence=("no licence file (HaoruiSong622/Editing-Out-of-Domain); research use" if _eogi
                 else "MIT (omertov/encoder4editing)"),
        model="latent_direction",
        notes="StyleGAN2 FFHQ (config-f) latent space; used as w + alpha * n / ||n||_F, alpha 20.",
    ))

register_model(ModelEntry(
    name="latent_direction", builder="blendfix.edit.directions:load_direction",
    description="StyleGAN2 FFHQ editing direction -> unit-Frobenius-norm (18, 512) W+ tensor",
    checkpoints=tuple(_FILES),
))


def read_direction_file(path: str | os.PathLike, dim: int | None = W_DIM) -> torch.Tensor:
    """Raw direction from a ``.npy`` (no pickles) or ``.pt`` (weights only) file -> float64 ``(rows, dim)``.

    Accepted shapes: ``(dim,)``, ``(1, dim)``, ``(rows, dim)``, ``(1, rows, dim)``; ``dim=None`` accepts
    any width (small test generators).
    """
    path = Path(path)
    if path.suffix == ".npy":
        try:
            arr = torch.from_numpy(np.load(path, allow_pickle=False).astype(np.float64))
        except (ValueError, OSError) as e:
            raise BlendfixError(f"{path}: not a readable numpy direction file ({e})") from e
    elif path.suffix in (".pt", ".pth"):
        obj = load_file(path)
        if not isinstance(obj, torch.Tensor):
            raise BlendfixError(f"{path}: expected a saved tensor (a latent direction), got {type(obj).__name__}")
        arr = obj.detach().to("cpu", torch.float64)
    else:
        raise ValueError(f"{path}: direction files are .npy (W+, 18x512) or .pt (W, 1x512); got {path.suffix!r}")
    if arr.ndim == 3 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim == 1:
        arr = arr[None]
    if arr.ndim != 2 or (dim is not None and arr.shape[-1] != dim):
        raise ValueError(f"{path}: a direction must be ({dim},), (1, {dim}), (18, {dim}) or (1, 18, {dim}); "
                         f"got {tuple(arr.shape)}")
    if not torch.isfinite(arr).all():
        raise ValueError(f"{path}: the direction holds NaN or infinite values")
    return arr


def normalise_direction(direction: torch.Tensor, n_styles: int = N_STYLES) -> torch.Tensor:
    """``(rows, D)`` (rows 1 or ``n_styles``) or a batch ``(B, rows, D)`` -> unit Frobenius norm per item.

    A single-row (W) direction is repeated over the ``n_styles`` rows first. Float64 in, float64 out.
    """
    d = direction.to(torch.float64)
    batched = d.ndim == 3
    if not batched:
        d = d[None]
    if d.ndim != 3 or d.shape[1] not in (1, n_styles):
        raise ValueError(f"direction must be (1 or {n_styles}, D) or (B, 1 or {n_styles}, D), "
                         f"got {tuple(direction.shape)}")
    d = d.expand(-1, n_styles, -1)
    norm = d.flatten(1).norm(dim=1)
    if (norm == 0).any():
        raise ValueError("a direction of zero norm cannot be normalised")
    d = d / norm[:, None, None]
    return d if batched else d[0]


def apply_direction(w: torch.Tensor, direction: torch.Tensor,
                    alpha: float | torch.Tensor = DEFAULT_ALPHA) -> torch.Tensor:
    """``w + alpha * n / ||n||_F``: the method's edit of W+ codes.

    ``w``: ``(B, n_styles, D)`` or ``(n_styles, D)``; ``direction``: ``(1 or n_styles, D)`` for all items,
    or ``(B, 1 or n_styles, D)`` per item; ``alpha``: a number or a ``(B,)`` tensor. Same shape and
    dtype as ``w``.
    """
    if w.ndim not in (2, 3):
        raise ValueError(f"w must be (n_styles, D) or (B, n_styles, D), got {tuple(w.shape)}")
    if direction.shape[-1] != w.shape[-1]:
        raise ValueError(f"direction width {direction.shape[-1]} does not match w width {w.shape[-1]}")
    n = normalise_direction(direction, n_styles=w.shape[-2]).to(w.device, w.dtype)
    a = torch.as_tensor(alpha, dtype=w.dtype, device=w.device)
    if a.ndim == 1:
        a = a[:, None, None]
    return w + a * n


def direction_path(name_or_path: str | os.PathLike) -> Path:
    """A file path, an attribute (``eyebrows``/``beard``/``aging``/``smile`` or an alias) or a
    registered direction name -> the file; offline error listing what to place where when absent."""
    p = Path(name_or_path).expanduser()
    if p.suffix in (".npy", ".pt", ".pth"):
        if p.is_file():
            return p
        raise MissingWeightsError(f"{p}: direction file not found")
    name = str(name_or_path)
    alternatives: tuple[str, ...] = ()
    if name not in _FILES:
        try:
            attr = canonical(name)
        except ValueError:
            raise ValueError(f"unknown direction {name!r}: give a .npy/.pt file, an attribute "
                             f"({', '.join(ATTRIBUTES)}) or one of {', '.join(_FILES)}") from None
        name, alternatives = ATTRIBUTE_DIRECTIONS[attr], ALTERNATIVE_DIRECTIONS.get(attr, ())
    try:
        return checkpoint_path(name)
    except MissingWeightsError:
        msg = missing_message([CHECKPOINTS[name]])
        if alternatives:
            msg += ("\nalternatively (InterFaceGAN W direction): "
                    + "; ".join(f"{a} -> {CHECKPOINTS[a].filename} from {CHECKPOINTS[a].url}" for a in alternatives))
        raise MissingWeightsError(msg) from None


def load_direction(attribute_or_path: str | os.PathLike, n_styles: int = N_STYLES,
                   dim: int | None = W_DIM) -> torch.Tensor:
    """The normalised direction ``float32 (n_styles, dim)`` with unit Frobenius norm (scale it by alpha)."""
    return normalise_direction(read_direction_file(direction_path(attribute_or_path), dim), n_styles).float()
