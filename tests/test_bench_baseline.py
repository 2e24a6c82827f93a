"""bench/baseline_scores.py on a tiny real synth set: blend with the true mask, evaluate, the three-way table."""

from __future__ import annotations

import importlib.util
import sys

from conftest import ROOT, need

from blendfix.cli import main


def _bench():
    spec = importlib.util.spec_from_file_location("baseline_scores", ROOT / "bench" / "baseline_scores.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_baseline_table_scores_three_methods_per_attribute_and_kind(faces_dir, tmp_path, monkeypatch) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("0.jpg", "1.jpg"):
        (photos / name).symlink_to(need(faces_dir / "celebamask_hq_512" / name, name))
    dataset = tmp_path / "set"
    assert main(["synth", "-i", str(photos), "-o", str(dataset), "--resolution", "64"]) == 0
    monkeypatch.setenv("PYTHONPATH", str(ROOT / "src"))  # the CLI subprocesses run this checkout
    out = tmp_path / "baseline"
    assert _bench().main([str(dataset), "-o", str(out), "--blendfix", f"{sys.executable} -m blendfix.cli"]) == 0
    text = (out / "baseline.md").read_text()
    assert "### Per attribute" in text and "### Per kind" in text
    rows = [line for line in text.splitlines() if line.startswith("| all |") or line.startswith("|  |")]
    methods = [line.split("|")[2].strip() for line in rows[:3]]
    assert methods == ["fused", "poisson", "blend"]
    cells = [c.strip() for c in rows[0].split("|")]
    if not any(dataset.glob("items/*/truth.png")):
        assert cells[-2] == "1.000"  # without a truth, F is its own edit-kept reference
    assert all(c != "n/a" for c in cells[4:6] + cells[-3:-1])  # PSNR/SSIM vs I, seam, edit kept
    assert len(list((out / "blend").glob("*.png"))) == 2
    assert (out / "report" / "artifact_scores.csv").is_file()
