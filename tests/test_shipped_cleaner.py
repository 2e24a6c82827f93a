"""The cleaner shipped inside blendfix: found without configuration, verified, and better than its input.

The margins are read from the committed benchmark (docs/results/test256_scores.json, written by
`bench/baseline_scores.py` on the 62 CelebA-HQ test photos, see docs/evaluation.md), not typed in.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from blendfix import clean
from blendfix.checkpoints import sha256_file
from blendfix.cleaning import DEFAULT_WEIGHTS, CleanConfig, Cleaner
from blendfix.io import read_image
from blendfix.metrics.seam import seam_score
from blendfix.registry import CHECKPOINTS, checkpoint_path, load_all

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "docs" / "results" / "test256_scores.json"
#: a few photos of the test split (celebamask_hq_* folders): never trained on
PHOTOS = ("celebamask_hq_512/0.jpg", "celebamask_hq_512/7.jpg", "celebamask_hq_1024/2.jpg")


def _table() -> dict:
    return json.loads(RESULTS.read_text())["attribute"]["all"]


def test_the_default_cleaner_is_bundled_registered_and_verified():
    load_all()
    entry = CHECKPOINTS[DEFAULT_WEIGHTS]
    path = checkpoint_path(DEFAULT_WEIGHTS)
    assert entry.bundled and path.is_file() and path.suffix == ".safetensors"
    assert path.stat().st_size <= 25 * 2**20
    assert entry.sha256 and sha256_file(path) == entry.sha256
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["below_identity"] is False and meta["model"]["residual"] and meta["model"]["input_skip"]
    assert "research use" in entry.licence
    from blendfix.cli import cli

    out = CliRunner().invoke(cli, ["weights"]).output
    line = next(x for x in out.splitlines() if x.startswith(DEFAULT_WEIGHTS))
    assert "present" in line.split() and "(bundled)" in line


def test_auto_uses_the_shipped_cleaner_and_a_corrupt_copy_is_refused(tmp_path, monkeypatch):
    assert Cleaner(CleanConfig(method="auto")).method == "network"
    # a file of the same name in BLENDFIX_WEIGHTS takes precedence, and its sha256 is checked
    bad = tmp_path / CHECKPOINTS[DEFAULT_WEIGHTS].filename
    data = bytearray(checkpoint_path(DEFAULT_WEIGHTS).read_bytes())
    data[-1] ^= 0xFF
    bad.write_bytes(bytes(data))
    monkeypatch.setenv("BLENDFIX_WEIGHTS", str(tmp_path))
    with pytest.raises(Exception, match="sha256"):
        Cleaner(CleanConfig(method="network"))


@pytest.fixture(scope="module")
def pairs(faces_dir):
    """Synthetic and pasted pairs with their truth, at 256², from test-split photos."""
    from blendfix.edit import get_editor
    from blendfix.parsing.landmarks import detect_landmarks

    out = []
    for k, rel in enumerate(PHOTOS):
        img = cv2.resize(read_image(faces_dir / rel), (256, 256), interpolation=cv2.INTER_AREA)
        lm = detect_landmarks(img, source=rel)
        for j, editor in enumerate(("synthetic", "paste")):
            attr = ("smile", "beard", "aging", "eyebrows")[(k + 2 * j) % 4]
            out.append(get_editor(editor).edit(img, attr, seed=100 + k, landmarks=lm))
    return out


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    return 10 * math.log10(1.0 / float(np.mean((a.astype(np.float64) - b) ** 2)))


def test_the_shipped_cleaner_beats_its_input_on_test_photos(pairs):
    """PSNR against the truth up by at least half the benchmark's mean gain; the seam score lower."""
    table = _table()
    gain = table["network"]["psnr_truth"]["mean"] - table["fused"]["psnr_truth"]["mean"]
    assert gain > 0, "the committed benchmark says the cleaner does not beat its input"
    torch.manual_seed(0)
    psnr_in, psnr_out, seam_in, seam_out = [], [], [], []
    for r in pairs:
        out = clean(r.original, r.fused, method="network", device="cpu")
        psnr_in.append(_psnr(r.fused, r.truth))
        psnr_out.append(_psnr(out, r.truth))
        seam_in.append(seam_score(r.fused, r.truth, r.mask, original=r.original))
        seam_out.append(seam_score(out, r.truth, r.mask, original=r.original))
    assert np.mean(psnr_out) - np.mean(psnr_in) >= 0.5 * gain
    assert np.nanmean(seam_out) < np.nanmean(seam_in)
