"""`blendfix evaluate` / evaluate_dirs on tiny generated folders: tables, figure, skipped metrics, errors."""

from __future__ import annotations

import csv
import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import need
from PIL import Image

from blendfix.cli import main
from blendfix.io import write_image
from blendfix.metrics import evaluate_dirs
from blendfix.metrics.fid import SmallSampleWarning
from blendfix.metrics.lpips import LPIPS
from blendfix.tensors import image_to_tensor

ATTRS = ["eyebrows", "beard", "smile", "aging", "smile"]


@pytest.fixture()
def folders(tmp_path: Path) -> Path:
    """orig/, fused/ (strong noise), blendfix/ (weak noise, with runtime.json), manifest.jsonl; 64x64 images."""
    rng = np.random.default_rng(0)
    for d in ("orig", "fused", "blendfix"):
        (tmp_path / d).mkdir()
    yy, xx = np.mgrid[0:64, 0:64] / 63.0
    records = []
    for i, attr in enumerate(ATTRS):
        base = np.stack([yy, xx, 0.5 + 0.4 * np.sin(6 * (xx + yy) + i)], axis=2).astype(np.float32) * 0.9 + 0.05
        write_image(tmp_path / "orig" / f"img{i}.png", base)
        write_image(tmp_path / "fused" / f"img{i}.png", np.clip(base + rng.normal(0, 0.08, base.shape), 0, 1))
        write_image(tmp_path / "blendfix" / f"img{i}.png", np.clip(base + rng.normal(0, 0.02, base.shape), 0, 1))
        records.append({"id": f"item{i:03d}", "source": f"/photos/img{i}.jpg", "attribute": attr})
    (tmp_path / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    runtime = {"method": "maresunet", "seconds_per_image": 0.25, "images": 5, "parameters": 1234567,
               "device": "cpu", "precision": "float32"}  # as `blendfix clean` writes it
    (tmp_path / "blendfix" / "runtime.json").write_text(json.dumps(runtime))
    return tmp_path


def _methods(root: Path) -> dict[str, Path]:
    return {"fused": root / "fused", "blendfix": root / "blendfix"}


def test_report_files_have_the_tables_layout_and_skipped_metrics(folders, tmp_path, monkeypatch):
    monkeypatch.setenv("BLENDFIX_WEIGHTS", str(tmp_path / "no_weights"))
    out = tmp_path / "report"
    rc = main(["evaluate", "--originals", str(folders / "orig"), "--method", f"fused={folders / 'fused'}",
               "--method", f"blendfix={folders / 'blendfix'}", "--attributes-from", str(folders / "manifest.jsonl"),
               "-o", str(out)])
    assert rc == 0
    rep = json.loads((out / "report.json").read_text())
    assert rep["n_images"] == 5 and [m["name"] for m in rep["methods"]] == ["fused", "blendfix"]
    assert rep["attributes"] == ["eyebrows", "beard", "aging", "smile"]  # the paper's order
    assert set(rep["metrics"]["skipped"]) == {"lpips", "fid"}
    assert "alexnet-owt-7be5be79.pth" in rep["metrics"]["skipped"]["lpips"]
    assert "pt_inception-2015-12-05-6726825d.pth" in rep["metrics"]["skipped"]["fid"]
    overall = rep["tables"]["overall"]
    assert overall["blendfix"]["n"] == 5 and overall["blendfix"]["lpips"] is None and overall["blendfix"]["fid"] is None
    # The weakly perturbed method is closer to the originals on every computed metric.
    assert overall["blendfix"]["psnr"]["mean"] > overall["fused"]["psnr"]["mean"]
    assert overall["blendfix"]["ssim"]["mean"] > overall["fused"]["ssim"]["mean"]
    assert overall["blendfix"]["mae"]["mean"] < overall["fused"]["mae"]["mean"]
    assert rep["tables"]["per_attribute"]["smile"]["fused"]["psnr"]["n"] == 2
    assert rep["runtime"]["blendfix"] == {"seconds_per_image": 0.25, "parameters": 1234567, "device": "cpu",
                                          "precision": "float32"}
    assert rep["runtime"]["fused"] is None

    md = (out / "report.md").read_text()
    assert "## Per attribute" in md and "## Overall" in md and "## Metrics not computed" in md
    assert "| Attribute | Method | N | PSNR ↑ | SSIM ↑ | MAE ↓ | LPIPS ↓ | FID ↓ | s / image | Params |" in md
    assert "| 0.250 (cpu, float32) | 1.23 M |" in md

    rows = list(csv.DictReader((out / "metrics.csv").open()))
    assert len(rows) == 2 * (1 + 4)
    assert [(r["attribute"], r["method"]) for r in rows[:2]] == [("all", "fused"), ("all", "blendfix")]
    assert rows[1]["lpips_mean"] == "" and rows[1]["fid"] == "" and rows[1]["seconds_per_image"] == "0.25"
    assert abs(float(rows[1]["psnr_mean"]) - overall["blendfix"]["psnr"]["mean"]) < 1e-9
    per_image = list(csv.DictReader((out / "per_image.csv").open()))
    assert len(per_image) == 10 and {r["attribute"] for r in per_image} == set(ATTRS)

    fig = Image.open(out / "comparison.png")
    assert fig.format == "PNG" and fig.width > 3 * 150 and fig.height > 4 * 150  # 3 columns, 4 example rows


def test_per_image_values_are_the_metric_functions(folders):
    from blendfix.io import read_image
    from blendfix.metrics import mae, psnr, ssim
    rep = evaluate_dirs(folders / "orig", _methods(folders), lpips=False, fid=False, progress=False)
    row = next(r for r in rep["per_image"] if r["stem"] == "img3" and r["method"] == "fused")
    x = image_to_tensor(read_image(folders / "fused" / "img3.png"))
    y = image_to_tensor(read_image(folders / "orig" / "img3.png"))
    assert row["attribute"] == "all"
    assert row["psnr"] == pytest.approx(psnr(x, y).item()) and row["ssim"] == pytest.approx(ssim(x, y).item())
    assert row["mae"] == pytest.approx(mae(x, y).item())
    vals = [r["psnr"] for r in rep["per_image"] if r["method"] == "fused"]
    assert rep["tables"]["overall"]["fused"]["psnr"]["mean"] == pytest.approx(np.mean(vals))
    assert rep["tables"]["overall"]["fused"]["psnr"]["std"] == pytest.approx(np.std(vals))
    assert rep["metrics"]["skipped"]["lpips"].startswith("disabled")


@pytest.mark.slow
def test_lpips_and_fid_from_published_layout_files(folders, tmp_path, fixture, detweights, data_dir):
    """Fixture weights saved in the published layouts; a method identical to the originals scores LPIPS 0, FID ~0."""
    lin = need(data_dir / "weights" / "lpips_v0.1" / "alex.pth", "LPIPS v0.1 alex.pth")
    lp_sd = detweights.build_state_dict(fixture("lpips").path / "alex")
    trunk = {"features." + k.split(".", 2)[2]: v for k, v in lp_sd.items() if k.startswith("net.")}
    torch.save(trunk, tmp_path / "alexnet.pth")
    inc = fixture("inception_fid")
    sd = inc.state_dict()
    keymap = json.loads((inc.path / "checkpoint_keymap.json").read_text())
    torch.save({e["checkpoint_key"]: sd[e["module_key"]] if e["module_key"] else torch.zeros(e["shape"])
                for e in keymap}, tmp_path / "inception.pth")
    shutil.copytree(folders / "orig", folders / "same")
    methods = {**_methods(folders), "same": folders / "same"}
    with pytest.warns(SmallSampleWarning, match="fewer than 2048"):
        rep = evaluate_dirs(folders / "orig", methods, tmp_path / "rep", attributes_from=folders,
                            lpips_trunk=tmp_path / "alexnet.pth", lpips_lin=lin, fid_weights=tmp_path / "inception.pth",
                            progress=False)
    assert rep["metrics"]["skipped"] == {} and rep["metrics"]["computed"] == ["psnr", "ssim", "mae", "lpips", "fid"]
    overall = rep["tables"]["overall"]
    assert overall["same"]["lpips"]["mean"] == 0 and abs(overall["same"]["fid"]) < 1e-6 * overall["fused"]["fid"]
    assert overall["same"]["psnr"]["mean"] == float("inf")
    assert 0 < overall["blendfix"]["lpips"]["mean"] < overall["fused"]["lpips"]["mean"]
    assert overall["fused"]["fid"] > 0
    # LPIPS per image = the network on that pair.
    net = LPIPS("alex")
    net.load_state_dict({**lp_sd, **torch.load(lin, map_location="cpu", weights_only=True)}, strict=True)
    from blendfix.io import read_image
    x = image_to_tensor(read_image(folders / "fused" / "img0.png"))
    y = image_to_tensor(read_image(folders / "orig" / "img0.png"))
    row = next(r for r in rep["per_image"] if r["stem"] == "img0" and r["method"] == "fused")
    with torch.no_grad():
        assert row["lpips"] == pytest.approx(net(x, y).item(), rel=1e-5)
    # Per-attribute FID needs 2 images: only "smile" has them; the others are reported, not silently empty.
    per_attr = rep["tables"]["per_attribute"]
    assert per_attr["smile"]["fused"]["fid"] is not None and per_attr["beard"]["fused"]["fid"] is None
    assert any("'beard'" in w and "at least 2 images" in w for w in rep["warnings"])
    assert "inf" in (tmp_path / "rep" / "report.md").read_text()
    saved = json.loads((tmp_path / "rep" / "report.json").read_text())
    assert saved["tables"]["overall"]["same"]["psnr"]["mean"] == "inf"  # strict JSON, no Infinity literal


def test_unmatched_files_are_listed(folders):
    (folders / "fused" / "img1.png").unlink()
    write_image(folders / "fused" / "stray.png", np.zeros((64, 64, 3), np.float32))
    with pytest.raises(ValueError) as ei:
        evaluate_dirs(folders / "orig", _methods(folders), lpips=False, fid=False, progress=False)
    msg = str(ei.value)
    assert "img1" in msg and "stray.png" in msg and "'fused'" in msg


def test_attribute_lookup_by_source_stem_and_unknown_files(folders):
    records = [{"id": f"x{i}", "source": f"in/img{i}.png", "attribute": "bushy_eyebrows"} for i in range(5)]
    (folders / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    rep = evaluate_dirs(folders / "orig", _methods(folders), attributes_from=folders / "manifest.jsonl",
                        lpips=False, fid=False, progress=False)
    assert rep["attributes"] == ["eyebrows"]
    (folders / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records[:3]))
    with pytest.raises(ValueError, match="img3, img4"):
        evaluate_dirs(folders / "orig", _methods(folders), attributes_from=folders / "manifest.jsonl",
                      lpips=False, fid=False, progress=False)
    records[1]["attribute"] = "hat"
    (folders / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    with pytest.raises(ValueError, match=r"manifest.jsonl: item 'x1' .*'hat'"):
        evaluate_dirs(folders / "orig", _methods(folders), attributes_from=folders / "manifest.jsonl",
                      lpips=False, fid=False, progress=False)


def test_bad_output_is_reported_and_fails_the_run(folders, tmp_path, capsys):
    write_image(folders / "blendfix" / "img2.png", np.zeros((48, 64, 3), np.float32))
    (folders / "fused" / "img4.png").write_bytes(b"")
    out = tmp_path / "rep"
    rc = main(["evaluate", "--originals", str(folders / "orig"), "--method", f"fused={folders / 'fused'}",
               "--method", f"blendfix={folders / 'blendfix'}", "--no-lpips", "--no-fid", "-o", str(out)])
    assert rc == 1
    err = capsys.readouterr().err
    assert "img2.png" in err and "differs from the original" in err and "img4.png" in err and "empty" in err
    rep = json.loads((out / "report.json").read_text())
    assert rep["tables"]["overall"]["blendfix"]["n"] == 4 and rep["tables"]["overall"]["fused"]["n"] == 4
    assert len(rep["failures"]) == 2


def test_method_option_is_checked(folders, capsys):
    rc = main(["evaluate", "--originals", str(folders / "orig"), "--method", "nodir", "-o", str(folders / "r")])
    assert rc != 0 and "NAME=DIR" in capsys.readouterr().err
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match="at least one method"):
            evaluate_dirs(folders / "orig", {}, progress=False)
