"""`blendfix demo`: the offline pipeline on the packaged astronaut photo."""

from __future__ import annotations

import json

from blendfix.attributes import ATTRIBUTES
from blendfix.cli import main


def test_demo_runs_end_to_end_and_the_teacher_beats_the_raw_fusion(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "-o", str(out), "--resolution", "256", "--device", "cpu"]) == 0
    printed = capsys.readouterr()
    # the bundled cleaner is the network column: no "network skipped" note
    assert "| Attribute | Method |" in printed.out and "network skipped" not in printed.err
    for attr in ATTRIBUTES:
        for sub in ("originals", "fused", "poisson", "network"):
            assert (out / sub / f"{attr}.png").is_file()
        assert (out / "edits" / f"{attr}_mask.png").is_file()
    assert (out / "report" / "comparison.png").stat().st_size > 10_000
    assert (out / "report" / "demo.png").stat().st_size > 10_000  # I, T, M, every method, boundary zooms
    report = json.loads((out / "report" / "report.json").read_text())
    overall = report["tables"]["overall"]
    # outside the face mask the Poisson teacher restores the original exactly, so it is closer to I than F is
    assert overall["poisson"]["mae"]["mean"] < overall["fused"]["mae"]["mean"]
    assert set(report["tables"]["per_attribute"]) == set(ATTRIBUTES)
