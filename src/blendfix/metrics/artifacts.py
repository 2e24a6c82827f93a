"""The artifact scores of ``blendfix evaluate``: vs truth, seam, edit kept (definitions: docs/metrics.md).

Per image and method (images ``float32 (H, W, 3)`` in ``[0, 1]``, masks ``(H, W)`` in ``[0, 1]``):

* ``psnr_truth``, ``ssim_truth``, ``mae_truth`` (and ``lpips_truth`` when LPIPS weights exist):
  the output against ``truth.png``, when the stem has a truth;
* ``seam``: :func:`~blendfix.metrics.seam.seam_score` against the truth (or the original when there
  is no truth), when the stem has an edit mask;
* ``edit_kept``: :func:`~blendfix.metrics.seam.edit_kept` with the truth (or F) as reference, when
  the stem has an edit mask and a truth or F.

Tables: mean ± std (ddof 0) over the images where the score is defined (``n`` counts them), per
attribute and per artifact kind (a manifest's ``kind`` field, else the attribute), plus ``all``.
These tables sit next to the paper's and never change them.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..io import atomic_write
from ..tensors import image_to_tensor
from .fidelity import mae, psnr, ssim
from .seam import edit_kept, seam_score

TRUTH_METRICS = ("psnr_truth", "ssim_truth", "mae_truth", "lpips_truth")
SCORES = (*TRUTH_METRICS, "seam", "edit_kept")
HEADERS = {"psnr_truth": "PSNR vs truth ↑", "ssim_truth": "SSIM vs truth ↑", "mae_truth": "MAE vs truth ↓",
           "lpips_truth": "LPIPS vs truth ↓", "seam": "Seam (1 = none)", "edit_kept": "Edit kept (1 = all)"}
DECIMALS = {"psnr_truth": 2, "ssim_truth": 4, "mae_truth": 4, "lpips_truth": 4, "seam": 3, "edit_kept": 3}
OVERALL = "all"


@torch.no_grad()
def score_image(out: np.ndarray, original: np.ndarray, *, truth: np.ndarray | None, mask: np.ndarray | None,
                fused: np.ndarray | None, lp_net: Any = None, device: torch.device | None = None
                ) -> dict[str, float]:
    """The artifact scores of one output that are defined for what is available (missing keys = n/a)."""
    scores: dict[str, float] = {}
    if truth is not None:
        x, y = image_to_tensor(out, torch.device("cpu")), image_to_tensor(truth, torch.device("cpu"))
        scores.update(psnr_truth=float(psnr(x, y)[0]), ssim_truth=float(ssim(x, y)[0]), mae_truth=float(mae(x, y)[0]))
        if lp_net is not None:
            dev = device or torch.device("cpu")
            scores["lpips_truth"] = float(lp_net(image_to_tensor(out, dev), image_to_tensor(truth, dev))[0])
    if mask is not None:
        scores["seam"] = seam_score(out, truth if truth is not None else original, mask, original=original)
        ref = truth if truth is not None else fused
        if ref is not None:
            scores["edit_kept"] = edit_kept(out, original, ref, mask)
    return scores


def score_outputs(outs: dict[str, np.ndarray], origs: dict[str, np.ndarray], aux: dict[str, dict[str, np.ndarray]],
                  fused_outputs: dict[str, np.ndarray], lp_net: Any, device: torch.device,
                  per_image: dict[str, dict[str, float]]) -> None:
    """:func:`score_image` of each scored output into ``per_image[stem]``. ``aux``: truth/mask/fused arrays
    by stem (:func:`~blendfix.metrics.evalset.read_aux`); ``fused_outputs``: the ``fused`` method's outputs,
    F for edit kept where the set has no fused image."""
    for s, out in outs.items():
        if s not in per_image:
            continue
        fused = aux["fused"].get(s, fused_outputs.get(s))
        per_image[s].update(score_image(out, origs[s], truth=aux["truth"].get(s), mask=aux["mask"].get(s),
                                        fused=fused, lp_net=lp_net, device=device))


def _summary(values: list[float]) -> dict[str, float | int]:
    arr = np.asarray([v for v in values if v is not None and not math.isnan(v)], np.float64)
    if arr.size == 0:
        return {"mean": math.nan, "std": math.nan, "n": 0}
    with np.errstate(invalid="ignore"):  # an identical image's +inf PSNR: mean inf, std nan
        return {"mean": float(arr.mean()), "std": float(arr.std()), "n": int(arr.size)}


def tables(per_image: dict[str, dict[str, dict[str, float]]], stems: list[str], groups: dict[str, dict[str, str]]
           ) -> dict[str, dict[str, dict[str, dict[str, Any]]]]:
    """``{grouping: {group: {method: {score: {mean, std, n}}}}}``; ``grouping`` = each key of ``groups``
    (``attribute``, ``kind``: stem -> group name), each with an ``all`` group first."""
    out: dict[str, dict[str, dict[str, dict[str, Any]]]] = {}
    for grouping, of in groups.items():
        names = [OVERALL] + sorted({of[s] for s in stems})
        block: dict[str, dict[str, dict[str, Any]]] = {}
        for g in names:
            members = stems if g == OVERALL else [s for s in stems if of[s] == g]
            block[g] = {m: {k: _summary([vals[s].get(k) for s in members if s in vals]) for k in SCORES}
                        for m, vals in per_image.items()}
        out[grouping] = block
    return out


def section(per_image: dict[str, dict[str, dict[str, float]]], stems: list[str], attributes: dict[str, str],
            kinds: dict[str, str], *, n_truth: int, n_mask: int) -> dict[str, Any]:
    """The report's ``artifact_scores``: counts, the computed columns and the per attribute / per kind tables."""
    t = tables(per_image, stems, {"attribute": attributes, "kind": kinds})
    return {"n_images": len(stems), "n_truth": n_truth, "n_mask": n_mask, "columns": columns(t),
            "definitions": "docs/metrics.md", "tables": t}


def columns(report_tables: dict) -> list[str]:
    """The scores with at least one defined value anywhere (the others are left out of the tables)."""
    seen = set()
    for block in report_tables.values():
        for by_method in block.values():
            for row in by_method.values():
                seen.update(k for k, v in row.items() if v["n"] > 0)
    return [k for k in SCORES if k in seen]


def _cell(v: dict[str, Any], key: str) -> str:
    if v["n"] == 0:
        return "n/a"
    d = DECIMALS[key]
    if math.isinf(v["mean"]):
        return "inf"
    return f"{v['mean']:.{d}f} ± {v['std']:.{d}f}"


def markdown(section: dict[str, Any]) -> list[str]:
    """Markdown lines of the artifact-score tables (one per grouping)."""
    cols = section["columns"]
    if not cols:
        return ["## Artifact scores", "", "Not computed: no stem has a truth or an edit mask "
                "(give --truth / --mask, or a synth dataset folder as --originals).", ""]
    lines = ["## Artifact scores", "",
             f"Against the truth where a stem has one ({section['n_truth']} of {section['n_images']} images), "
             f"else the original; seam and edit kept need the edit mask ({section['n_mask']} images). "
             "Definitions: docs/metrics.md. Mean ± std over the images where a score is defined.", ""]
    for grouping, block in section["tables"].items():
        head = [grouping.capitalize(), "Method"] + [HEADERS[c] for c in cols] + ["N"]
        lines += [f"### Per {grouping}", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for g, by_method in block.items():
            for i, (method, row) in enumerate(by_method.items()):
                n = max(row[c]["n"] for c in cols)
                lines.append("| " + " | ".join([g if i == 0 else "", method] + [_cell(row[c], c) for c in cols]
                                               + [str(n)]) + " |")
        lines.append("")
    return lines


def write_csv(path: Path, section: dict[str, Any]) -> Path:
    """``artifact_scores.csv``: grouping, group, method, then ``{score}_mean``, ``_std``, ``_n`` per score."""
    header = ["grouping", "group", "method"] + [f"{k}_{p}" for k in SCORES for p in ("mean", "std", "n")]
    rows = []
    for grouping, block in section["tables"].items():
        for g, by_method in block.items():
            for method, row in by_method.items():
                vals: list[Any] = [grouping, g, method]
                for k in SCORES:
                    v = row[k]
                    vals += ["" if v["n"] == 0 else v["mean"], "" if v["n"] == 0 else v["std"], v["n"]]
                rows.append(vals)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return atomic_write(Path(path), lambda: buf.getvalue().encode())
