"""Fréchet Inception Distance as pytorch-fid computes it (features, statistics, distance).

* Features: :class:`~blendfix.nets.inception.FIDInceptionV3` pool3 (2048-d) of ``(B, 3, H, W)``
  RGB images in ``[0, 1]``, resized to 299x299 inside the network (bilinear, no antialias).
* Statistics: mean and unbiased covariance (``np.cov``, N - 1) in float64.
* Distance: ``||mu1 - mu2||^2 + Tr(s1) + Tr(s2) - 2 Tr(sqrtm(s1 s2))`` with SciPy's ``sqrtm`` of the
  product; only if that square root has non-finite entries it is recomputed with ``eps`` added to
  both diagonals (the trace terms stay un-offset); a complex root with a diagonal imaginary part
  above 1e-3 raises ``ValueError``; the result is not clamped (identical sets give about -1e-14).

FID needs many images: below 2048 the covariance of 2048-d features is rank-deficient and the
value is biased upward, so :func:`fid_from_features` warns (:class:`SmallSampleWarning`).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable

import numpy as np
import scipy.linalg
import torch

from ..nets.inception import FIDInceptionV3, from_pytorch_fid
from ..registry import CheckpointEntry, ModelEntry, register_checkpoint, register_model
from .weights import load_state, resolve

FID_CHECKPOINT = "pt-inception-fid"
MIN_RECOMMENDED = 2048

register_model(ModelEntry("fid-inception", "blendfix.nets.inception:FIDInceptionV3",
                          "pytorch-fid Inception-v3 pool3 features for FID", (FID_CHECKPOINT,)))
register_checkpoint(CheckpointEntry(
    FID_CHECKPOINT, "pt_inception-2015-12-05-6726825d.pth",
    "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth",
    "raw state_dict in torchvision Inception3 naming (Conv2d_1a_3x3.* ... Mixed_7c.*, fc.* 1008 classes, unused); "
    "prefixes renamed to blocks.{b}.{j} (nets/inception.py CHECKPOINT_PREFIXES)",
    "Apache-2.0 (pytorch-fid; weights ported from TensorFlow's inception-2015-12-05 graph)",
    "fid-inception", None, "sha256 starts with 6726825d (pytorch-fid's file-name convention; checked on load)"))


class SmallSampleWarning(UserWarning):
    """FID computed on fewer images than the feature dimension (2048): biased, not comparable."""


def small_sample_message(n: int) -> str:
    return (f"FID on {n} images: fewer than {MIN_RECOMMENDED}, so the 2048-d feature covariance is "
            f"rank-deficient and FID is biased upward; compare it only with FIDs on the same number of images.")


def load_fid_inception(weights: str | os.PathLike | None = None, device: str | torch.device = "cpu") -> FIDInceptionV3:
    """The FID network with the published pytorch-fid weights (registry name or path), eval mode.

    Raises :class:`~blendfix.errors.MissingWeightsError` saying where to place the file.
    """
    source = weights or FID_CHECKPOINT
    (path,) = resolve([source])
    model = FIDInceptionV3()
    model.load_state_dict(from_pytorch_fid(load_state(source, path)), strict=True)
    return model.eval().to(device)


@torch.no_grad()
def extract_features(model: FIDInceptionV3, batches: Iterable[torch.Tensor],
                     device: str | torch.device = "cpu") -> np.ndarray:
    """pool3 features ``(N, 2048)`` float64 of ``(B, 3, H, W)`` batches in ``[0, 1]``."""
    feats = [model(b.to(device=device, dtype=torch.float32)).double().cpu().numpy() for b in batches]
    if not feats:
        raise ValueError("no images to compute FID features from")
    return np.concatenate(feats, axis=0)


def activation_statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(N, D)`` features -> mean ``(D,)`` and unbiased covariance ``(D, D)``, float64; needs N >= 2."""
    f = np.asarray(features, dtype=np.float64)
    if f.ndim != 2 or f.shape[0] < 2:
        raise ValueError(f"FID statistics need an (N, D) feature matrix with N >= 2 images, got {f.shape}")
    return f.mean(axis=0), np.cov(f, rowvar=False)


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray,
                     eps: float = 1e-6, always_offset: bool = False) -> float:
    """Fréchet distance of two Gaussians ``N(mu1, sigma1)``, ``N(mu2, sigma2)`` (pytorch-fid's rules), float64.

    ``mu``: ``(D,)``, ``sigma``: ``(D, D)``. The ``eps`` diagonal offset inside the square root is used only
    when the plain root is not finite, or always with ``always_offset=True`` (trace terms never offset).
    """
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    s1, s2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    if mu1.shape != mu2.shape or s1.shape != s2.shape or s1.shape != (mu1.size, mu1.size):
        raise ValueError(f"inconsistent shapes: mu {mu1.shape}/{mu2.shape}, sigma {s1.shape}/{s2.shape}")
    diff = mu1 - mu2
    covmean = None if always_offset else scipy.linalg.sqrtm(s1 @ s2)
    if covmean is None or not np.isfinite(covmean).all():
        if covmean is not None:
            warnings.warn(f"FID: singular covariance product; adding {eps} to the diagonals", RuntimeWarning,
                          stacklevel=2)
        offset = np.eye(s1.shape[0]) * eps
        covmean = scipy.linalg.sqrtm((s1 + offset) @ (s2 + offset))
    if np.iscomplexobj(covmean):
        imag = np.abs(np.diagonal(covmean).imag).max()
        if imag > 1e-3:
            raise ValueError(f"FID: the matrix square root has an imaginary component {imag:.3g} on its diagonal")
        covmean = covmean.real
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def frechet_distance_lowrank(features1: np.ndarray, features2: np.ndarray) -> float:
    """The Fréchet distance of two ``(N, D)`` feature sets through their ``N x N`` cross-Gram matrix, float64.

    With centred features ``X1``, ``X2`` and ``sigma = X^T X / (N - 1)``, the eigenvalues of ``sigma1 sigma2``
    are the squared singular values of ``X1 X2^T`` over ``(N1 - 1)(N2 - 1)``, so
    ``Tr sqrtm(sigma1 sigma2) = ||X1 X2^T||_* / sqrt((N1 - 1)(N2 - 1))`` exactly. For fewer samples than
    dimensions this avoids SciPy's ``sqrtm`` of a singular 2048 x 2048 product (tens of seconds, and
    inaccurate there: identical sets give about -1e-3 instead of 0).
    """
    f1, f2 = (np.asarray(f, dtype=np.float64) for f in (features1, features2))
    if f1.ndim != 2 or f2.ndim != 2 or f1.shape[1] != f2.shape[1] or min(len(f1), len(f2)) < 2:
        raise ValueError(f"need two (N, D) feature matrices with one D and N >= 2, got {f1.shape} and {f2.shape}")
    x1, x2 = f1 - f1.mean(axis=0), f2 - f2.mean(axis=0)
    c1, c2 = len(f1) - 1, len(f2) - 1
    diff = f1.mean(axis=0) - f2.mean(axis=0)
    tr_sqrt = np.linalg.svd(x1 @ x2.T, compute_uv=False).sum() / np.sqrt(c1 * c2)
    return float(diff @ diff + (x1 * x1).sum() / c1 + (x2 * x2).sum() / c2 - 2 * tr_sqrt)


def fid_from_features(features1: np.ndarray, features2: np.ndarray, warn: bool = True) -> float:
    """FID of two ``(N, 2048)`` feature sets; warns below 2048 images in either set.

    pytorch-fid's route (:func:`activation_statistics` + :func:`frechet_distance`) when both sets have
    at least as many images as dimensions; the exact low-rank identity (:func:`frechet_distance_lowrank`)
    otherwise, where the covariances are singular.
    """
    n, d = min(len(features1), len(features2)), np.shape(features1)[-1]
    if warn and n < MIN_RECOMMENDED:
        warnings.warn(small_sample_message(n), SmallSampleWarning, stacklevel=2)
    if n < d:
        return frechet_distance_lowrank(features1, features2)
    return frechet_distance(*activation_statistics(features1), *activation_statistics(features2))
