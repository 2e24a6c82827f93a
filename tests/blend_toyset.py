"""A tiny training set in the blendfix layout, for the dataset / training / export tests."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from blendfix.data import layout
from blendfix.data.imageset import append_records
from blendfix.io import write_image


def make_toy_set(root: Path, n: int = 8, size: int = 64, seed: int = 0) -> Path:
    """``n`` items: smooth images; fused = original + a shifted ghost on the right half; target = original."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    for i in range(n):
        item = Path(root) / layout.ITEMS / f"item{i:03d}"
        item.mkdir(parents=True)
        phase = rng.uniform(0, 6, 3)
        base = np.stack([np.sin(xx * 6 + phase[0]), np.cos(yy * 5 + phase[1]), np.sin((xx + yy) * 4 + phase[2])], -1)
        original = (0.5 + 0.4 * base).astype(np.float32)
        ghost = np.roll(original, 4, axis=1) * (xx[..., None] > 0.5)
        fused = np.clip(0.7 * original + 0.3 * ghost + 0.3 * (1 - (xx[..., None] > 0.5)) * original, 0, 1)
        write_image(item / layout.ORIGINAL, original)
        write_image(item / layout.FUSED, fused.astype(np.float32))
        write_image(item / layout.TARGET, original)
        record = {"id": item.name, "attribute": ["smile", "beard"][i % 2]}
        (item / layout.META).write_text(json.dumps(record))
        append_records(Path(root) / layout.MANIFEST, [record])
    return Path(root)
