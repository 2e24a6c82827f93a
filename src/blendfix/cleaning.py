"""`blendfix.clean(...)` (this module: `blendfix.cleaning`): turn (original, fused) pairs into seamless images.

Methods:

* ``network`` — the trained MAResU-Net: input ``[F, I]`` in ``[-1, 1]``, output the clean image.
  Any image size: padded to a square multiple of 32 and cropped back; images whose padded side
  exceeds ``tile`` are processed in overlapping tiles blended without seams, each tile padded on its
  own, so memory follows the tile size (:func:`blendfix.tiling.run_padded`).
* ``poisson`` — the method's teacher: seamless clone of F into I over the face mask M_face
  (needs face landmarks or a parser; the attribute picks the mask rule; every face found, or the
  largest only with ``largest_face``).
* ``fused`` — the no-op baseline: F itself.

Images are numpy ``float32 (H, W, 3)`` RGB in ``[0, 1]`` in and out.
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .blend.fuse import fuse
from .device import resolve_device, resolve_precision
from .io import check_same_size
from .nets.maresunet import network_input, network_output
from .runtime import to_input_layout
from .tensors import check_image, check_mask, image_to_tensor, tensor_to_image
from .tiling import DEFAULT_OVERLAP, DEFAULT_TILE, run_padded

METHODS = ("auto", "network", "poisson", "fused")
#: the registered checkpoint `network` uses when no weights are named
#: (blendfix's CPU cleaner, shipped inside the package; the paper's released network is
#: ``maresunet-diffcampp``, used with ``weights="maresunet-diffcampp"`` once its file is placed)
DEFAULT_WEIGHTS = "blendfix-cpu-cleaner"


@dataclass
class CleanConfig:
    method: str = "auto"  # auto = network when weights exist, else poisson (with a warning)
    weights: str | None = None  # registered name, run folder or weights file
    device: str = "auto"
    precision: str = "auto"  # auto = fp16 on CUDA; bf16 on an AMX CPU for weights loaded here; else fp32
    batch_size: int = 4
    tile: int = DEFAULT_TILE  # largest padded side run in one piece; larger images are tiled
    overlap: int = DEFAULT_OVERLAP
    attribute: str | None = None  # face-mask rule for `poisson` (default: the plain face region)
    backend: str = "torch"  # Poisson backend
    runtime: str = "auto"  # network runtime: auto = onnxruntime on a CPU in fp32, torch elsewhere
    threads: int | None = None  # onnxruntime threads (default: all cores); PyTorch's too when given
    largest_face: bool = False  # poisson: the largest face only (default: every face found)


def prepare_fused(original: np.ndarray, fused: np.ndarray | None = None, edited: np.ndarray | None = None,
                  mask: np.ndarray | None = None) -> np.ndarray:
    """F itself, or F = T * M + I * (1 - M) when given (edited, mask); sizes and value ranges are checked
    (float ``(H, W, 3)`` / ``(H, W)`` in ``[0, 1]``; a uint8 array raises ``ValueError``).

    An empty mask (all zero) gives F = I, the defined no-op, with a warning.
    """
    original = check_image(original, "original")
    if fused is not None:
        fused = check_image(fused, "fused")
        check_same_size({"original": original, "fused": fused})
        return fused
    if edited is None or mask is None:
        raise ValueError("give either the fused image, or the edited image and its mask")
    edited, mask = check_image(edited, "edited"), check_mask(mask, "mask")
    check_same_size({"original": original, "edited": edited, "mask": mask})
    if not np.any(np.asarray(mask)):
        warnings.warn("the mask is empty (all zero): the fused image is the original, unchanged", stacklevel=2)
    return np.asarray(fuse(edited, original, mask), np.float32)


def load_network(weights: str, device: torch.device) -> torch.nn.Module:
    """A trained cleaner (PyTorch) from a registered name, an exported file, a run folder or a checkpoint."""
    from .checkpoints import verify_sha256
    from .cleaner_weights import load_cleaner
    from .registry import CHECKPOINTS, checkpoint_path

    path = Path(weights).expanduser()
    if path.exists():
        return load_cleaner(path, device)
    resolved = checkpoint_path(weights)  # a registered name: its sha256 is checked before use
    verify_sha256(resolved, CHECKPOINTS[weights].sha256 if weights in CHECKPOINTS else None)
    return load_cleaner(resolved, device)


class Cleaner:
    """Loads what a method needs once, then cleans any number of pairs."""

    def __init__(self, config: CleanConfig | None = None, network: torch.nn.Module | None = None) -> None:
        self.config = cfg = config or CleanConfig()
        if cfg.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {cfg.method!r}")
        self.device = resolve_device(cfg.device)
        self.dtype = resolve_precision(cfg.precision, self.device)
        self.net = network
        self.method = self._choose_method()
        self.runtime_name = "none"
        if self.method == "network":
            from .runtime import build_network

            self.net, self.runtime_name, self.dtype = build_network(
                cfg.weights or DEFAULT_WEIGHTS, network, self.device, cfg.precision, cfg.runtime, cfg.threads,
                load_torch=lambda w, d: load_network(w, d))
        elif self.net is not None:
            self.net = self.net.to(self.device).eval()
        self.seconds = 0.0
        self.count = 0

    def _choose_method(self) -> str:
        cfg = self.config
        if cfg.method != "auto":
            return cfg.method
        if self.net is not None or cfg.weights is not None:
            return "network"
        from .registry import available

        if available(DEFAULT_WEIGHTS):
            return "network"
        warnings.warn(f"no cleaner weights ({DEFAULT_WEIGHTS}) found: using the Poisson teacher instead; "
                      "run `blendfix weights` to see where trained weights go", stacklevel=3)
        return "poisson"

    @property
    def parameters(self) -> int:
        if self.net is None:
            return 0
        if hasattr(self.net, "num_parameters"):  # an onnxruntime session, or a network prepared for inference
            return int(self.net.num_parameters)
        return sum(p.numel() for p in self.net.parameters())

    def __call__(self, originals: list[np.ndarray], fuseds: list[np.ndarray],
                 sources: Sequence[tuple[str | os.PathLike, str | os.PathLike]] | None = None,
                 attributes: Sequence[str | None] | None = None) -> list[np.ndarray]:
        """Clean a list of pairs (each pair one size); returns float32 ``(H, W, 3)`` images in [0, 1].

        ``sources``: the (original, fused) file of each pair, named in errors (e.g. no face found).
        ``attributes``: per-pair face-mask rule for ``poisson`` (None entries use ``config.attribute``).
        """
        if attributes is not None and len(attributes) != len(originals):
            raise ValueError(f"{len(originals)} pairs but {len(attributes)} attributes")
        if len(originals) != len(fuseds) or (sources is not None and len(sources) != len(originals)):
            raise ValueError(f"{len(originals)} originals but {len(fuseds)} fused images"
                             + (f" and {len(sources)} sources" if sources is not None else ""))
        names = list(sources) if sources is not None else [(f"original #{i}", f"fused #{i}")
                                                           for i in range(len(originals))]
        originals = [check_image(o, f"original {os.fspath(n[0])}") for o, n in zip(originals, names, strict=True)]
        fuseds = [check_image(f, f"fused {os.fspath(n[1])}") for f, n in zip(fuseds, names, strict=True)]
        for (o, f), (on, fn) in zip(zip(originals, fuseds, strict=True), names, strict=True):
            check_same_size({f"original {os.fspath(on)}": o, f"fused {os.fspath(fn)}": f})
        start = time.perf_counter()
        if self.method == "fused":
            out = [np.asarray(f, np.float32) for f in fuseds]
        elif self.method == "poisson":
            attrs = list(attributes) if attributes is not None else [None] * len(originals)
            out = [self._poisson(o, f, *(n if sources is not None else (None, None)), attribute=a)
                   for o, f, n, a in zip(originals, fuseds, names, attrs, strict=True)]
        else:
            out = self._network_all(originals, fuseds)
        self.seconds += time.perf_counter() - start
        self.count += len(out)
        return out

    def _poisson(self, original: np.ndarray, fused: np.ndarray, original_source: str | os.PathLike | None = None,
                 fused_source: str | os.PathLike | None = None, attribute: str | None = None) -> np.ndarray:
        from .blend import seamless_clone
        from .io import to_uint8
        from .parsing import face_mask, get_parser

        parser = get_parser("landmarks", largest_face=True) if self.config.largest_face else None
        m = face_mask(fused, original, attribute or self.config.attribute or "face", parser, fused_source=fused_source,
                      original_source=original_source)
        if not m.any():
            warnings.warn(f"{fused_source or 'fused image'}: empty face mask: returning the original unchanged",
                          stacklevel=2)
            return np.asarray(original, np.float32)
        out = seamless_clone(to_uint8(fused), to_uint8(original), (m > 0.5).astype(np.uint8) * 255,
                             backend=self.config.backend)
        return out.astype(np.float32) / 255.0

    def _network_all(self, originals: list[np.ndarray], fuseds: list[np.ndarray]) -> list[np.ndarray]:
        out: list[np.ndarray | None] = [None] * len(originals)
        groups: dict[tuple[int, int], list[int]] = {}
        for i, o in enumerate(originals):
            groups.setdefault(o.shape[:2], []).append(i)
        bs = self.config.batch_size
        layout = {"channels_last": self.runtime_name == "torch" and self.device.type == "cpu"}  # the net's own
        for idx in groups.values():
            for k in range(0, len(idx), bs):
                chunk = idx[k:k + bs]
                res = self.run_network(image_to_tensor([originals[i] for i in chunk], **layout),
                                       image_to_tensor([fuseds[i] for i in chunk], **layout))
                for i, r in zip(chunk, tensor_to_image(res), strict=True):
                    out[i] = r
        return out  # type: ignore[return-value]

    @torch.no_grad()
    def run_network(self, original: torch.Tensor, fused: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W)`` [0, 1] pair -> cleaned ``(B, 3, H, W)`` [0, 1] (any H, W)."""
        x = network_input(original.to(self.device), fused.to(self.device))
        autocast = self.runtime_name == "torch" and self.dtype != torch.float32  # fp16 on CUDA, bf16 on a CPU

        def net(t: torch.Tensor) -> torch.Tensor:
            with torch.autocast(self.device.type, dtype=self.dtype, enabled=autocast):
                return self.net(to_input_layout(t) if self.runtime_name == "torch" else t).float()

        y = run_padded(net, x, self.config.tile, self.config.overlap, out_channels=3)  # each tile padded alone
        return network_output(y).cpu()

    def runtime(self) -> dict[str, Any]:
        """Facts for reports: method, seconds per image, parameter count, device, precision."""
        return {"method": self.method, "seconds_per_image": self.seconds / max(self.count, 1),
                "images": self.count, "parameters": self.parameters, "device": str(self.device),
                "precision": str(self.dtype).replace("torch.", ""), "runtime": self.runtime_name}


def clean(original: np.ndarray, fused: np.ndarray | None = None, *, edited: np.ndarray | None = None,
          mask: np.ndarray | None = None, network: torch.nn.Module | None = None, **options: Any) -> np.ndarray:
    """Clean one pair: ``original`` I and ``fused`` F (or ``edited`` T and ``mask`` M, fused first).

    Arrays are float32 ``(H, W, 3)`` RGB in ``[0, 1]`` (mask ``(H, W)``); returns the same.
    ``options`` are :class:`CleanConfig` fields (method, weights, device, precision, tile, ...).
    """
    original = check_image(original, "original")
    f = prepare_fused(original, fused, edited, mask)
    return Cleaner(CleanConfig(**options), network=network)([original], [f])[0]
