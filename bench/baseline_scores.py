"""The baseline table a cleaner must beat: fused / Poisson teacher / `blend` with the true mask, scored three ways.

Given a synth set (``manifest.jsonl`` + ``items/``, with ``truth.png`` where the editor made one):

1. flat folders named by item id (symlinks into the items): ``originals/``, ``fused/`` (F),
   ``poisson/`` (``target.png``, the Poisson teacher over M_face) and ``masks/`` (the edit mask
   ``mask.png`` binarised as the scores do, ``M >= 0.5 max M``; ``--soft-mask`` keeps M's weights);
2. ``blendfix blend -i originals --edited fused --mask masks -o blend`` (Poisson clone of F into I over
   the true edit mask — what a user with their own mask would run);
3. ``blendfix evaluate --originals SET --method fused=... --method poisson=... --method blend=...``
   (paper's five against I, then vs truth, seam, edit kept per attribute and per kind);
4. ``baseline.md``: one table per grouping (attribute, kind) with, per method, PSNR/SSIM against I
   (the paper), PSNR/SSIM/MAE against the truth, the seam score and edit kept.

    PYTHONPATH=src python bench/baseline_scores.py DATASET [-o /tmp/baseline] [--soft-mask] [--lpips]
        [--blendfix "python -m blendfix.cli"] [--method NAME=DIR ...]

Extra ``--method NAME=DIR`` folders (e.g. a trained cleaner's outputs, named by item id) are added to
the evaluation and the table. FID is skipped (meaningless on tens of images); LPIPS only with --lpips.
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np

from blendfix.data import layout
from blendfix.io import read_mask, write_mask
from blendfix.metrics.evalset import is_synth_set
from blendfix.metrics.seam import edit_region
from blendfix.synth import manifest as jsonl

COLUMNS = [("paper", "psnr", "PSNR vs I", 2), ("paper", "ssim", "SSIM vs I", 4),
           ("art", "psnr_truth", "PSNR vs truth", 2), ("art", "ssim_truth", "SSIM vs truth", 4),
           ("art", "mae_truth", "MAE vs truth", 4), ("art", "seam", "Seam (1 = none)", 3),
           ("art", "edit_kept", "Edit kept (1 = all)", 3)]


def flatten(dataset: Path, out: Path, soft_mask: bool) -> list[str]:
    """Symlink each item's files into flat folders named by item id; write the binarised masks."""
    ids = [i for i in sorted(jsonl.latest_by_id(jsonl.read(dataset / layout.MANIFEST)))
           if (dataset / layout.ITEMS / i / layout.ORIGINAL).is_file()]
    for sub, name in (("originals", layout.ORIGINAL), ("fused", layout.FUSED), ("poisson", layout.TARGET)):
        (out / sub).mkdir(parents=True, exist_ok=True)
        for i in ids:
            link = out / sub / f"{i}.png"
            if not link.exists():
                link.symlink_to((dataset / layout.ITEMS / i / name).resolve())
    (out / "masks").mkdir(parents=True, exist_ok=True)
    for i in ids:
        m = read_mask(dataset / layout.ITEMS / i / layout.MASK)
        write_mask(out / "masks" / f"{i}.png", m if soft_mask else edit_region(m).astype(np.float32))
    return ids


def _cell(row: dict | None, decimals: int) -> str:
    if row is None or not row.get("n"):
        return "n/a"
    mean = row["mean"]
    if isinstance(mean, str) or math.isinf(mean):
        return str(mean)
    return f"{mean:.{decimals}f}"


def _paper_means(report: dict, grouping: str) -> dict[str, dict[str, dict[str, dict]]]:
    """group -> method -> {psnr, ssim} summaries against I, from the per-image rows (for any grouping)."""
    out: dict[str, dict[str, dict[str, dict]]] = {}
    for r in report["per_image"]:
        for g in ("all", r.get(grouping, r["attribute"])):
            cell = out.setdefault(g, {}).setdefault(r["method"], {"psnr": [], "ssim": []})
            for k in ("psnr", "ssim"):
                v = r.get(k)
                if isinstance(v, (int, float)) or v == "inf":
                    cell[k].append(float(v))
    return {g: {m: {k: ({"mean": float(np.mean(v)), "n": len(v)} if v else None) for k, v in cell.items()}
                for m, cell in by_m.items()} for g, by_m in out.items()}


def table(report: dict) -> str:
    """Markdown: per grouping, group x method rows, the paper's PSNR/SSIM vs I then the artifact scores."""
    art = report.get("artifact_scores") or {"tables": {}}
    lines = [f"{report['n_images']} images; truth for {art.get('n_truth', 0)}, edit mask for "
             f"{art.get('n_mask', 0)}. Scores: docs/metrics.md.", ""]
    for grouping, block in art["tables"].items():
        paper = _paper_means(report, grouping)
        lines += [f"### Per {grouping}", "",
                  "| " + " | ".join([grouping.capitalize(), "Method", "N"] + [c[2] for c in COLUMNS]) + " |",
                  "|" + "---|" * (3 + len(COLUMNS))]
        for group, by_method in block.items():
            for k, (method, scores) in enumerate(by_method.items()):
                prow = paper.get(group, {}).get(method, {})
                cells = [_cell(prow.get(key), d) if src == "paper" else _cell(scores[key], d)
                         for src, key, _, d in COLUMNS]
                n = max(v["n"] for v in scores.values())
                lines.append("| " + " | ".join([group if k == 0 else "", method, str(n), *cells]) + " |")
        lines.append("")
    return "\n".join(lines)


def compact(report: dict) -> dict:
    """Means only, ``grouping -> group -> method -> score -> mean`` (+ ``n``), plus the paper's PSNR/SSIM vs I."""
    out: dict = {}
    for grouping, groups in report["artifact_scores"]["tables"].items():
        for group, methods in groups.items():
            for method, scores in methods.items():
                cell = out.setdefault(grouping, {}).setdefault(group, {}).setdefault(method, {})
                for score, stats in scores.items():
                    if isinstance(stats, dict) and stats.get("n"):
                        cell[score] = {"mean": round(float(stats["mean"]), 5), "n": int(stats["n"])}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dataset", type=Path)
    ap.add_argument("-o", "--out", type=Path, default=Path("/tmp/baseline"))
    ap.add_argument("--soft-mask", action="store_true", help="blend with M's weights instead of B = M >= 0.5 max M")
    ap.add_argument("--lpips", action="store_true", help="also LPIPS (needs its weights)")
    ap.add_argument("--blendfix", default=f"{shlex.quote(sys.executable)} -m blendfix.cli",
                    help="command that runs the CLI")
    ap.add_argument("--method", action="append", default=[], metavar="NAME=DIR", help="an extra method folder")
    ap.add_argument("--json", type=Path, help="also write the means as grouping -> group -> method -> score "
                    "(e.g. docs/results/test256_scores.json, which tests read their margins from)")
    args = ap.parse_args(argv)
    if not is_synth_set(args.dataset):
        ap.error(f"{args.dataset}: not a synth set (needs {layout.MANIFEST} and {layout.ITEMS}/)")
    out = args.out.resolve()
    ids = flatten(args.dataset, out, args.soft_mask)
    bf = shlex.split(args.blendfix)
    subprocess.run([*bf, "blend", "-i", str(out / "originals"), "--edited", str(out / "fused"), "--mask",
                    str(out / "masks"), "-o", str(out / "blend")], check=True)
    methods = [f"fused={out / 'fused'}", f"poisson={out / 'poisson'}", f"blend={out / 'blend'}", *args.method]
    cmd = [*bf, "evaluate", "--originals", str(args.dataset), "--no-fid", "--examples", "4", "-o", str(out / "report")]
    for m in methods:
        cmd += ["--method", m]
    if not args.lpips:
        cmd.append("--no-lpips")
    subprocess.run(cmd, check=True)
    report = json.loads((out / "report" / "report.json").read_text(encoding="utf-8"))
    text = (f"# Baseline: fused / Poisson teacher / blend with the true mask ({len(ids)} items of "
            f"{args.dataset})\n\n" + table(report))
    (out / "baseline.md").write_text(text + "\n", encoding="utf-8")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(compact(report), indent=1, sort_keys=True) + "\n", encoding="utf-8")
    print(text)
    print(f"written {out / 'baseline.md'} and {out / 'report'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
