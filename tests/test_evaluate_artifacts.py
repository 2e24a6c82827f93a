"""`blendfix evaluate` artifact scores (vs truth, seam, edit kept) on a constructed synth-layout set and folders."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from blendfix.cli import main
from blendfix.io import write_image, write_mask
from blendfix.metrics import evaluate_dirs

SIZE = 64
KINDS = ["gan:smile", "paste:rect", None]  # None: no kind field -> the attribute is the kind
ATTRS = ["smile", "beard", "aging"]


def _scene(i: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(i)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE] / (SIZE - 1.0)
    grain = cv2.GaussianBlur(rng.normal(0, 0.03, (SIZE, SIZE, 3)).astype(np.float32), (0, 0), 0.8)
    orig = np.clip(np.stack([0.5 + 0.2 * yy, 0.45 + 0.1 * xx, 0.4 + 0.0 * xx], 2) + grain, 0, 1).astype(np.float32)
    disk = ((np.mgrid[0:SIZE, 0:SIZE][0] - 32) ** 2 + (np.mgrid[0:SIZE, 0:SIZE][1] - 30) ** 2 <= 15**2)
    disk = disk.astype(np.float32)
    delta = np.array([0.25, 0.1, -0.15], np.float32)
    truth = np.clip(orig + delta * cv2.GaussianBlur(disk, (0, 0), 4.0)[..., None], 0, 1)
    fused = np.clip(orig + delta * disk[..., None], 0, 1)  # hard paste: a visible step
    return {"original": orig, "truth": truth, "fused": fused, "mask": disk}


@pytest.fixture()
def synth_set(tmp_path: Path) -> Path:
    """A set in the synth layout (3 items, truth.png + mask.png + fused.png) and method folders by item id."""
    root = tmp_path / "set"
    records = []
    for m in ("fused", "undo", "truth"):
        (tmp_path / m).mkdir()
    for i, (attr, kind) in enumerate(zip(ATTRS, KINDS, strict=True)):
        item = f"item{i}"
        d = root / "items" / item
        d.mkdir(parents=True)
        sc = _scene(i)
        for name in ("original", "truth", "fused"):
            write_image(d / f"{name}.png", sc[name])
        write_mask(d / "mask.png", sc["mask"])
        write_image(tmp_path / "fused" / f"{item}.png", sc["fused"])
        write_image(tmp_path / "undo" / f"{item}.png", sc["original"])
        write_image(tmp_path / "truth" / f"{item}.png", sc["truth"])
        rec = {"id": item, "source": f"/photos/p{i}.jpg", "attribute": attr}
        if kind:
            rec["kind"] = kind
        records.append(rec)
    (root / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return tmp_path


def _run(base: Path, **kw) -> dict:
    methods = {m: base / m for m in ("fused", "undo", "truth")}
    return evaluate_dirs(kw.pop("originals", base / "set"), methods, base / "report", lpips=False, fid=False,
                         figure_examples=0, progress=False, **kw)


def test_synth_set_scores_per_attribute_and_kind(synth_set: Path) -> None:
    rep = _run(synth_set)
    sec = rep["artifact_scores"]
    assert sec["n_truth"] == 3 and sec["n_mask"] == 3
    assert set(sec["tables"]) == {"attribute", "kind"}
    assert set(sec["tables"]["kind"]) == {"all", "gan:smile", "paste:rect", "aging"}
    assert set(sec["tables"]["attribute"]) == {"all", "smile", "beard", "aging"}
    overall = sec["tables"]["attribute"]["all"]
    # returning the truth: seam 1 and all of the edit kept; returning I: edit undone
    assert overall["truth"]["seam"]["mean"] == pytest.approx(1.0, abs=1e-9)
    assert overall["truth"]["edit_kept"]["mean"] == pytest.approx(1.0, abs=1e-9)
    assert math.isinf(overall["truth"]["psnr_truth"]["mean"])
    assert overall["undo"]["edit_kept"]["mean"] == 0.0
    assert overall["fused"]["seam"]["mean"] > 3.0  # the hard paste's step
    assert overall["fused"]["seam"]["n"] == 3
    # the paper's tables are unchanged: still against the originals, with the same keys
    assert math.isinf(rep["tables"]["overall"]["undo"]["psnr"]["mean"])
    assert set(rep["tables"]["per_attribute"]) == {"smile", "beard", "aging"}


def test_report_files_list_the_scores(synth_set: Path) -> None:
    _run(synth_set)
    md = (synth_set / "report" / "report.md").read_text()
    assert "## Artifact scores" in md and "### Per kind" in md and "paste:rect" in md
    rows = list(csv.DictReader((synth_set / "report" / "artifact_scores.csv").open()))
    row = next(r for r in rows if r["grouping"] == "kind" and r["group"] == "gan:smile" and r["method"] == "undo")
    assert float(row["edit_kept_mean"]) == 0.0 and row["edit_kept_n"] == "1"
    per_image = list(csv.DictReader((synth_set / "report" / "per_image.csv").open()))
    assert {"kind", "seam", "edit_kept", "psnr_truth"} <= set(per_image[0])
    metrics = (synth_set / "report" / "metrics.csv").read_text().splitlines()[0]
    assert "seam" not in metrics  # the paper's table file keeps its columns


def test_folders_with_truth_and_mask_dirs(synth_set: Path, tmp_path: Path) -> None:
    """A photo folder plus --truth/--mask matched by stem gives the same scores as the set."""
    for name in ("orig", "truth_dir", "mask_dir"):
        (tmp_path / name).mkdir()
    for i in range(3):
        d = synth_set / "set" / "items" / f"item{i}"
        (tmp_path / "orig" / f"item{i}.png").write_bytes((d / "original.png").read_bytes())
        (tmp_path / "truth_dir" / f"item{i}.png").write_bytes((d / "truth.png").read_bytes())
        (tmp_path / "mask_dir" / f"item{i}.png").write_bytes((d / "mask.png").read_bytes())
    a = _run(synth_set)["artifact_scores"]["tables"]["attribute"]["all"]
    b = _run(synth_set, originals=tmp_path / "orig", truth=tmp_path / "truth_dir",
             mask=tmp_path / "mask_dir")["artifact_scores"]["tables"]["attribute"]["all"]
    for m in ("fused", "undo", "truth"):
        for k in ("seam", "edit_kept", "mae_truth"):
            assert b[m][k]["mean"] == pytest.approx(a[m][k]["mean"], rel=1e-9)


def test_no_truth_uses_original_for_seam_and_fused_for_edit_kept(synth_set: Path) -> None:
    for i in range(3):
        (synth_set / "set" / "items" / f"item{i}" / "truth.png").unlink()
    sec = _run(synth_set)["artifact_scores"]
    overall = sec["tables"]["attribute"]["all"]
    assert sec["n_truth"] == 0
    assert overall["fused"]["edit_kept"]["mean"] == pytest.approx(1.0)  # F is the reference
    assert overall["undo"]["seam"]["mean"] == pytest.approx(1.0)  # I is the reference
    assert overall["fused"]["psnr_truth"]["n"] == 0
    assert "psnr_truth" not in sec["columns"]


def test_cli_prints_the_artifact_tables(synth_set: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["evaluate", "--originals", str(synth_set / "set"), "--method", f"fused={synth_set / 'fused'}",
               "--method", f"undo={synth_set / 'undo'}", "--no-lpips", "--no-fid", "--examples", "0",
               "-o", str(synth_set / "cli_report")])
    out = capsys.readouterr().out
    assert rc == 0
    assert "Artifact scores" in out and "Per kind" in out and "paste:rect" in out and "Edit kept" in out


def test_truth_dir_with_unknown_stem_is_an_error(synth_set: Path, tmp_path: Path) -> None:
    (tmp_path / "t").mkdir()
    write_image(tmp_path / "t" / "stranger.png", np.zeros((SIZE, SIZE, 3), np.float32))
    with pytest.raises(ValueError, match="stranger.png"):
        _run(synth_set, truth=tmp_path / "t")


def test_kinds_from_attributes_manifest_in_folder_mode(synth_set: Path, tmp_path: Path) -> None:
    """Photo folder + --mask + --attributes-from: kinds come from the manifest's 'kind', else the attribute."""
    for name in ("orig2", "mask2"):
        (tmp_path / name).mkdir()
    for i in range(3):
        d = synth_set / "set" / "items" / f"item{i}"
        (tmp_path / "orig2" / f"item{i}.png").write_bytes((d / "original.png").read_bytes())
        (tmp_path / "mask2" / f"item{i}.png").write_bytes((d / "mask.png").read_bytes())
    rep = _run(synth_set, originals=tmp_path / "orig2", mask=tmp_path / "mask2",
               attributes_from=synth_set / "set" / "manifest.jsonl")
    sec = rep["artifact_scores"]
    assert set(sec["tables"]["kind"]) == {"all", "gan:smile", "paste:rect", "aging"}
    assert sec["n_truth"] == 0 and sec["n_mask"] == 3
    # no truth and no fused image in the set: edit kept takes F from the method named "fused"
    assert sec["tables"]["kind"]["all"]["fused"]["edit_kept"]["mean"] == pytest.approx(1.0)
    assert sec["tables"]["kind"]["all"]["undo"]["edit_kept"]["mean"] == 0.0
