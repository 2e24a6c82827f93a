"""The method's GAN front end: pSp inversion, latent edit, Diff-CAM mask (EOGI style).

For a photo I (an aligned face): ``w = pSp(I)`` (W+), ``I' = G(w)``, ``T = G(w + alpha * n)`` with
``n`` the attribute's unit-Frobenius-norm direction (alpha 20), and ``M`` = Diff-CAM's Grad-CAM map
of ``delta = E(T) - E(I')`` for the attribute's class. I' and T are decoded with the generator's
stored noise maps (pSp's inference setting), so an edit is deterministic.

Everything runs batched on the chosen device; results come back at each input's own size
(I', T resized bilinearly with antialiasing; M computed at the generator's size as EOGI does,
256 -> S with nearest, then resized bilinearly to the input size when that differs).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..attributes import ATTRIBUTES, canonical
from ..device import resolve_device, resolve_precision
from ..errors import MissingWeightsError
from ..nets.diffcam import INPUT_SIZE, DiffCAM, diffcam_mask, load_diffcam, released_cam_options
from ..nets.psp import PSPEncoder, load_psp_encoder
from ..nets.psp_full import PSPInversion, load_psp_full
from ..nets.stylegan2 import Generator, load_stylegan2
from ..registry import CHECKPOINTS, checkpoint_path, missing_message
from ..tensors import image_to_tensor, tensor_to_image, tensor_to_mask
from .base import EditResult
from .directions import ATTRIBUTE_DIRECTIONS, DEFAULT_ALPHA, load_direction, normalise_direction

Source = str | os.PathLike


def _resize(t: torch.Tensor, size: tuple[int, int], mode: str = "bilinear") -> torch.Tensor:
    if tuple(t.shape[-2:]) == tuple(size):
        return t
    if mode == "nearest":
        return F.interpolate(t, size=size, mode="nearest")
    return F.interpolate(t, size=size, mode="bilinear", align_corners=False, antialias=True)


def check_available(sources: Sequence[Source]) -> None:
    """Raise one MissingWeightsError listing every absent file among registered names / paths."""
    entries, other = [], []
    for src in sources:
        name = str(src)
        if name in CHECKPOINTS:
            try:
                checkpoint_path(name)
            except MissingWeightsError:
                entries.append(CHECKPOINTS[name])
        elif not Path(src).expanduser().is_file():
            other.append(f"{src}: no such file, and not a registered checkpoint name")
    if entries or other:
        raise MissingWeightsError("\n".join(([missing_message(entries)] if entries else []) + other))


class GanEditor:
    """``edit(image, attribute)`` -> :class:`EditResult` (I, I', T, M) with StyleGAN2 + pSp + Diff-CAM.

    Options (each model: a registered checkpoint name, a file path, or an already-built module):

    * ``encoder``: pSp checkpoint (default ``psp_ffhq_encode``), a :class:`PSPEncoder` or a :class:`PSPInversion`;
    * ``generator``: ``None`` = the decoder stored in the pSp file (the FFHQ generator), else a StyleGAN2
      checkpoint such as ``stylegan2-ffhq-config-f`` or a :class:`Generator`;
    * ``diffcam``: Diff-CAM checkpoint (default ``diff_cam_weight``) or a :class:`DiffCAM`;
    * ``directions``: attribute -> direction file / registered name / tensor ``(1 or n_latent, D)``;
      missing attributes use :func:`blendfix.edit.directions.load_direction`;
    * ``attributes``: direction files checked up front (default: none; each is loaded on first use);
    * ``alpha`` (20), ``device`` (``auto``), ``precision`` (``fp32``; ``auto``/``fp16``/``bf16`` run the encoder
      and generator under autocast), ``batch_size`` for :meth:`edit_batch`, ``diffcam_size`` (256, EOGI's);
    * ``cam_smoothing``: ``off`` (EOGI, the paper) or ``released`` (the released code's Diff-CAM: aug_smooth,
      and eigen_smooth except for aging; :func:`blendfix.nets.diffcam.released_cam_options`).

    Modules passed in are moved to the device, set to eval mode and frozen (``requires_grad_(False)``).
    Missing checkpoint files raise one MissingWeightsError naming every file and where to put it.
    """

    name = "gan"

    def __init__(self, generator: Source | Generator | None = None,
                 encoder: Source | PSPEncoder | PSPInversion = "psp_ffhq_encode",
                 diffcam: Source | DiffCAM = "diff_cam_weight",
                 directions: Mapping[str, Source | torch.Tensor] | None = None,
                 attributes: Sequence[str] = (), alpha: float = DEFAULT_ALPHA, device: str | torch.device = "auto",
                 precision: str = "fp32", batch_size: int = 4, diffcam_size: int = INPUT_SIZE,
                 cam_smoothing: str = "off") -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if cam_smoothing not in ("off", "released"):
            raise ValueError(f"cam_smoothing {cam_smoothing!r}: choose off or released")
        self.cam_smoothing = cam_smoothing
        self.device = resolve_device(device) if isinstance(device, str) else torch.device(device)
        self.dtype = resolve_precision(precision, self.device)
        self.alpha, self.batch_size, self.diffcam_size = float(alpha), batch_size, diffcam_size
        self.directions = {canonical(k): v for k, v in (directions or {}).items()}
        wanted = [canonical(a) for a in (ATTRIBUTES if attributes == "all" else attributes)]
        files = [m for m in (encoder, generator, diffcam) if isinstance(m, (str, os.PathLike))]
        files += [_direction_source(self.directions.get(a, a)) for a in wanted
                  if not isinstance(self.directions.get(a), torch.Tensor)]
        check_available(files)
        self.sources = {k: str(v) for k, v in (("encoder", encoder), ("generator", generator), ("diffcam", diffcam))
                        if isinstance(v, (str, os.PathLike))}
        self.encoder, self.generator = self._load_gan(encoder, generator)
        self.diffcam = diffcam if isinstance(diffcam, DiffCAM) else load_diffcam(diffcam, "cpu")
        for m in (self.encoder, self.generator, self.diffcam):
            m.to(self.device).eval().requires_grad_(False)
        n_enc, n_gen = self.encoder.encoder.n_styles, self.generator.n_latent
        if n_enc != n_gen:
            raise ValueError(f"the encoder gives {n_enc} styles but the generator takes {n_gen}")
        self._dirs: dict[str, torch.Tensor] = {}
        self._cache: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}

    def _load_gan(self, encoder: Any, generator: Any) -> tuple[PSPEncoder, Generator]:
        if isinstance(encoder, PSPInversion):
            enc, dec = PSPEncoder(encoder.encoder, encoder.latent_avg), encoder.decoder
        elif isinstance(encoder, PSPEncoder):
            enc, dec = encoder, None
        elif generator is None:  # read the pSp file once: encoder and its own decoder
            full = load_psp_full(encoder, "cpu")
            enc, dec = PSPEncoder(full.encoder, full.latent_avg), full.decoder
        else:
            enc, dec = load_psp_encoder(encoder, "cpu"), None
        if isinstance(generator, Generator):
            dec = generator
        elif generator is not None:
            dec = load_stylegan2(generator, "cpu")[0]
        if dec is None:
            raise ValueError("a PSPEncoder module needs a generator (a Generator, or a StyleGAN2 checkpoint)")
        return enc, dec

    def direction(self, attribute: str) -> torch.Tensor:
        """The attribute's unit-Frobenius-norm direction ``(n_latent, D)`` on the device (cached)."""
        attr = canonical(attribute)
        if attr not in self._dirs:
            n = self.generator.n_latent
            src = self.directions.get(attr, attr)
            d = (normalise_direction(src, n) if isinstance(src, torch.Tensor)
                 else load_direction(src, n, dim=self.generator.style_dim))
            if d.shape[-1] != self.generator.style_dim:
                raise ValueError(f"{attr}: direction width {d.shape[-1]} != generator style_dim "
                                 f"{self.generator.style_dim}")
            self._dirs[attr] = d.float().to(self.device)
        return self._dirs[attr]

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.dtype == torch.float32:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    def _synth(self, w: torch.Tensor) -> torch.Tensor:
        """W+ -> generator image in [0, 1] (stored noise, fp32 out)."""
        with torch.no_grad(), self._autocast():
            img = self.generator([w], input_is_latent=True, randomize_noise=False)[0]
        return ((img.float() + 1.0) / 2.0).clamp(0.0, 1.0)

    def _invert(self, batch: list[torch.Tensor], keys: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """(1, 3, H, W) [0, 1] tensors -> W+ (B, n, D) and I' (B, 3, S, S), reusing the last batch's results."""
        todo = [i for i, k in enumerate(keys) if k not in self._cache]
        if todo:
            size = self.encoder.encoder.input_size
            x = torch.cat([_resize(batch[i], (size, size)) for i in todo]).to(self.device)
            with torch.no_grad(), self._autocast():
                w = self.encoder(x).float()
            inv = self._synth(w)
            fresh = {keys[i]: (w[j], inv[j]) for j, i in enumerate(todo)}
        else:
            fresh = {}
        known = {**self._cache, **fresh}
        self._cache = {k: known[k] for k in keys}
        return torch.stack([known[k][0] for k in keys]), torch.stack([known[k][1] for k in keys])

    def edit(self, image: np.ndarray, attribute: str, *, seed: int = 0) -> EditResult:
        """One photo ``(H, W, 3)`` float in [0, 1] or uint8 -> :class:`EditResult` at ``(H, W)``."""
        return self.edit_batch([image], attribute, seed=seed)[0]

    def edit_batch(self, images: Sequence[np.ndarray], attribute: str, *, seed: int = 0) -> list[EditResult]:
        """Several photos (any sizes) -> results in order, ``batch_size`` at a time on the device.

        ``seed`` is recorded only: with stored noise maps the GAN edit is deterministic.
        """
        attr = canonical(attribute)
        n = self.direction(attr)
        out: list[EditResult] = []
        for start in range(0, len(images), self.batch_size):
            chunk = [_as_float_image(im) for im in images[start:start + self.batch_size]]
            tensors = [image_to_tensor(im) for im in chunk]
            w, inv = self._invert(tensors, [_key(im) for im in chunk])
            edited = self._synth(w + self.alpha * n)
            smooth = released_cam_options(attr) if self.cam_smoothing == "released" else {}
            mask = diffcam_mask(self.diffcam, inv, edited, attr, input_size=self.diffcam_size, **smooth)
            for i, im in enumerate(chunk):
                hw = im.shape[:2]
                out.append(EditResult(
                    original=im,
                    inverted=tensor_to_image(_resize(inv[i:i + 1], hw))[0].clip(0, 1),
                    edited=tensor_to_image(_resize(edited[i:i + 1], hw))[0].clip(0, 1),
                    mask=tensor_to_mask(_resize(mask[i:i + 1], hw))[0].clip(0, 1),
                    attribute=attr,
                    info={"editor": self.name, "seed": seed, "alpha": self.alpha, "attribute": attr,
                          "generator_size": self.generator.size, "noise": "stored",
                          "cam_smoothing": self.cam_smoothing, **self.sources},
                ))
        return out


def _direction_source(src: Source) -> Source:
    """A direction given as an attribute -> its registered file name; names and paths unchanged."""
    text = str(src)
    if text in CHECKPOINTS or Path(text).suffix:
        return src
    return ATTRIBUTE_DIRECTIONS[canonical(text)]


def _as_float_image(image: np.ndarray) -> np.ndarray:
    arr = np.asarray(image)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) RGB image, got shape {arr.shape}")
    arr = arr.astype(np.float32) / 255.0 if arr.dtype == np.uint8 else arr.astype(np.float32)
    return np.clip(arr, 0.0, 1.0)


def _key(image: np.ndarray) -> str:
    return f"{image.shape}:" + hashlib.sha1(np.ascontiguousarray(image).tobytes()).hexdigest()

