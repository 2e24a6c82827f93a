"""A torch Dataset over a blendfix training set (layout in :mod:`blendfix.data.layout`).

Each sample is a dict: ``original``, ``fused``, ``target`` as ``(3, H, W)`` float32 RGB in
``[0, 1]``, plus ``attribute`` and ``id`` strings. Augmentations (random crop, horizontal flip) are
applied identically to the three images so they stay aligned.

The train/val split is deterministic and stable as a set grows: an item goes to validation when
a hash of its id (and the split seed) falls below ``val_fraction``.

Randomness never comes from global state: index a dataset with ``(i, aug_seed)`` (what
:class:`InfiniteSampler` yields) and the augmentation is a pure function of that seed, so a
resumed run sees exactly the samples it would have seen.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset, Sampler

from ..attributes import canonical
from ..io import read_image
from ..tensors import image_to_tensor
from . import layout
from .imageset import ImageSet, read_records

#: The images a sample holds, by key, and their file in an item folder.
SAMPLE_FILES = {"original": layout.ORIGINAL, "fused": layout.FUSED, "target": layout.TARGET}
SPLITS = ("train", "val", "all")
#: what ``sample["target"]`` is: the paper's Poisson teacher (``target.png``), the editor's known
#: truth (``truth.png``), or per sample one of them (``mix``: truth with probability ``truth_share``
#: when the item has one, drawn from the augmentation seed; validation always takes the truth).
TARGETS = ("poisson", "truth", "mix")


def list_items(root: str | os.PathLike) -> list[Path]:
    """Complete item folders of a training set, sorted by id.

    Items come from ``manifest.jsonl`` when the set has one (a folder not yet recorded there
    belongs to an unfinished synth run); otherwise every folder under ``items/`` not starting with
    ``.``. Either way an item needs its original, fused and target images.
    """
    return _complete(root, SAMPLE_FILES.values())


def _complete(root: str | os.PathLike, needed: Iterable[str]) -> list[Path]:
    needed = tuple(needed)
    root = Path(root)
    items_dir = root / layout.ITEMS
    if not items_dir.is_dir():
        raise FileNotFoundError(f"{root}: not a blendfix training set (no {layout.ITEMS}/ folder); "
                                f"create one with `blendfix synth`")
    manifest = root / layout.MANIFEST
    ids = [r["id"] for r in read_records(manifest)] if manifest.is_file() else None
    if ids is None:
        candidates = [p for p in items_dir.iterdir() if p.is_dir() and not p.name.startswith(".")]
    else:
        candidates = [items_dir / i for i in dict.fromkeys(ids)]
    return sorted((p for p in candidates if all((p / f).is_file() for f in needed)),
                  key=lambda p: p.name)


def in_validation(item_id: str, val_fraction: float, seed: int = 0) -> bool:
    """Whether ``item_id`` belongs to the validation split (hash-based, independent of the other items)."""
    digest = hashlib.sha256(f"{seed}:{item_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < val_fraction


def _attribute(raw: str | None) -> str:
    try:
        return canonical(raw) if raw else ""
    except ValueError:
        return ""


class BlendDataset(Dataset):
    """Samples of a training set.

    Args:
        root: the training-set folder (holds ``items/``).
        split: ``train``, ``val`` or ``all``.
        crop: side of a random square crop (``None``: whole images); must not exceed the image size.
        flip: random horizontal flips.
        val_fraction: share of items in the validation split.
        split_seed: changes which items are held out.
        target: one of :data:`TARGETS` (``truth`` keeps only items with ``truth.png``).
        truth_share: with ``target="mix"``, the share of training samples whose target is the truth.
    """

    def __init__(self, root: str | os.PathLike, split: str = "train", crop: int | None = None, flip: bool = False,
                 val_fraction: float = 0.1, split_seed: int = 0, target: str = "poisson",
                 truth_share: float = 0.5) -> None:
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        if target not in TARGETS:
            raise ValueError(f"target must be one of {TARGETS}, got {target!r}")
        if not 0 <= truth_share <= 1:
            raise ValueError(f"truth_share must be in [0, 1], got {truth_share}")
        if not 0 <= val_fraction < 1:
            raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
        if crop is not None and crop < 1:
            raise ValueError(f"crop must be positive, got {crop}")
        self.root = Path(root)
        items = list_items(root)
        if not items:  # e.g. a synth run stopped (killed, disk full) before its first item
            raise ValueError(f"{root}: the training set holds no finished item yet; run `blendfix synth` again "
                             f"with the same -i and -o to resume it (finished items are kept).")
        if target == "truth":
            with_truth = set(_complete(root, (layout.TRUTH,)))
            if not with_truth:
                raise ValueError(f"{root}: no item has {layout.TRUTH} (a set made before layout 2, or by the GAN "
                                 f"editor); use data.target=poisson, or synthesise with --editor synthetic/paste/mixed")
            items = [p for p in items if p in with_truth]
        if split != "all":
            want_val = split == "val"
            items = [p for p in items if in_validation(p.name, val_fraction, split_seed) == want_val]
        if not items:
            raise ValueError(f"{root}: no complete items in the {split!r} split "
                             f"(val_fraction={val_fraction}); the set may be too small")
        self.items = items
        self.attributes = {r.id: _attribute(r.attribute) for r in ImageSet(root).records()}
        self.split, self.crop, self.flip = split, crop, flip
        self.target, self.truth_share = target, truth_share

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, Any]:
        index, aug_seed = key if isinstance(key, tuple) else (key, None)
        item = self.items[index]
        files = {**SAMPLE_FILES, "target": self._target_file(item, aug_seed)}
        images = {name: image_to_tensor(read_image(item / fname))[0] for name, fname in files.items()}
        sizes = {tuple(t.shape[-2:]) for t in images.values()}
        if len(sizes) != 1:
            raise ValueError(f"{item}: original, fused and target differ in size {sorted(sizes)}")
        images = self._augment(images, aug_seed, item)
        return {**images, "attribute": self.attributes.get(item.name, ""), "id": item.name}

    def _target_file(self, item: Path, aug_seed: int | None) -> str:
        """``target.png`` or ``truth.png`` for this sample (see :data:`TARGETS`)."""
        if self.target == "poisson" or not (item / layout.TRUTH).is_file():
            return layout.TARGET
        if self.target == "truth" or aug_seed is None:
            return layout.TRUTH
        draw = int.from_bytes(hashlib.sha256(f"target:{aug_seed}".encode()).digest()[:8], "big") / 2**64
        return layout.TRUTH if draw < self.truth_share else layout.TARGET

    def _augment(self, images: dict[str, torch.Tensor], aug_seed: int | None, item: Path) -> dict[str, torch.Tensor]:
        h, w = next(iter(images.values())).shape[-2:]
        gen = torch.Generator().manual_seed(aug_seed if aug_seed is not None else 0)
        if self.crop is not None:
            if self.crop > min(h, w):
                raise ValueError(f"{item}: crop {self.crop} is larger than the images ({h}x{w})")
            if aug_seed is None:  # no seed (e.g. validation): centre crop
                top, left = (h - self.crop) // 2, (w - self.crop) // 2
            else:
                top = int(torch.randint(0, h - self.crop + 1, (1,), generator=gen))
                left = int(torch.randint(0, w - self.crop + 1, (1,), generator=gen))
            images = {k: v[:, top:top + self.crop, left:left + self.crop] for k, v in images.items()}
        if self.flip and aug_seed is not None and bool(torch.rand(1, generator=gen) < 0.5):
            images = {k: v.flip(-1) for k, v in images.items()}
        return {k: v.contiguous() for k, v in images.items()}


class InfiniteSampler(Sampler):
    """Endless ``(index, aug_seed)`` keys; the k-th key is a pure function of ``(seed, k)``.

    Epoch ``e`` visits a seeded permutation of the items. For ``world`` processes, process
    ``rank`` takes keys ``k = (s * world + rank) * batch + j`` of global step ``s``, so a run that
    resumes at step ``start_step`` continues the exact sequence.
    """

    def __init__(self, n: int, batch_size: int, seed: int = 0, start_step: int = 0, rank: int = 0,
                 world: int = 1) -> None:
        if n < 1 or batch_size < 1 or not 0 <= rank < world:
            raise ValueError(f"bad sampler settings: n={n}, batch={batch_size}, rank={rank}, world={world}")
        self.n, self.batch, self.seed = n, batch_size, seed
        self.start_step, self.rank, self.world = start_step, rank, world
        self._perm_epoch, self._perm = -1, torch.arange(n)

    def key(self, k: int) -> tuple[int, int]:
        epoch, pos = divmod(k, self.n)
        if epoch != self._perm_epoch:
            gen = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._perm, self._perm_epoch = torch.randperm(self.n, generator=gen), epoch
        aug = int.from_bytes(hashlib.sha256(f"{self.seed}:{k}".encode()).digest()[:7], "big")
        return int(self._perm[pos]), aug

    def __iter__(self) -> Iterator[tuple[int, int]]:
        step = self.start_step
        while True:
            base = (step * self.world + self.rank) * self.batch
            for j in range(self.batch):
                yield self.key(base + j)
            step += 1


def collate(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """Stack image tensors to ``(B, 3, H, W)``; strings become lists."""
    out: dict[str, Any] = {}
    for k in samples[0]:
        vals = [s[k] for s in samples]
        out[k] = torch.stack(vals) if isinstance(vals[0], torch.Tensor) else vals
    return out
