"""Aggregating per-image metric values into the paper's tables, and writing them (md, JSON, CSV, PNG).

Tables follow the layout of the paper's Tables 1–2: one block per attribute (eyebrows, beard,
aging, smile) plus an overall block, one row per method side by side, columns PSNR ↑, SSIM ↑,
MAE ↓, LPIPS ↓ (each "mean ± std" over images, std with ddof 0 like ``np.std``) and FID ↓ (one
number per set), plus runtime and parameter count in the overall table where a method folder had
a ``runtime.json``. Every file is written atomically (temporary file + rename).
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ..io import atomic_write, to_uint8

PER_IMAGE_METRICS = ("psnr", "ssim", "mae", "lpips")
ALL_METRICS = (*PER_IMAGE_METRICS, "fid")
HEADERS = {"psnr": "PSNR ↑", "ssim": "SSIM ↑", "mae": "MAE ↓", "lpips": "LPIPS ↓", "fid": "FID ↓"}
DECIMALS = {"psnr": 2, "ssim": 4, "mae": 4, "lpips": 4, "fid": 2}
OVERALL = "all"


def summarize(values: list[float]) -> dict[str, float | int]:
    """``mean``, ``std`` (ddof 0) and ``n`` of per-image values; a +inf PSNR gives mean inf and std nan."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.size == 0:
        return {"mean": math.nan, "std": math.nan, "n": 0}
    with np.errstate(invalid="ignore"):
        return {"mean": float(arr.mean()), "std": float(arr.std()), "n": int(arr.size)}


def table_row(per_image: dict[str, dict[str, float]], stems: list[str], metrics: list[str]) -> dict[str, Any]:
    """One table cell set: for each per-image metric its summary over ``stems``; ``n`` images."""
    row: dict[str, Any] = {"n": sum(1 for s in stems if s in per_image)}
    for m in metrics:
        if m in PER_IMAGE_METRICS:
            row[m] = summarize([per_image[s][m] for s in stems if s in per_image])
    return row


def _num(x: float | None, decimals: int) -> str:
    if x is None:
        return "—"
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return f"{x:.{decimals}f}"


def format_cell(row: dict[str, Any], metric: str) -> str:
    """Markdown text of one cell: ``mean ± std`` (``—`` when the metric was skipped)."""
    value = row.get(metric)
    if value is None:
        return "—"
    if metric == "fid":
        return _num(value, DECIMALS["fid"])
    d = DECIMALS[metric]
    if value["n"] == 0:
        return "—"
    if math.isinf(value["mean"]):
        return _num(value["mean"], d)
    return f"{_num(value['mean'], d)} ± {_num(value['std'], d)}"


def _params(n: float | None) -> str:
    if n is None:
        return "—"
    return f"{n / 1e6:.2f} M" if n >= 1e5 else f"{int(n)}"


def _json_safe(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return "nan" if math.isnan(obj) else ("inf" if obj > 0 else "-inf")
    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_json_safe(v) for v in obj]
    return obj


def write_json(path: Path, report: dict) -> Path:
    """The whole report as strict JSON (non-finite floats written as the strings "inf"/"nan")."""
    text = json.dumps(_json_safe(report), indent=2, ensure_ascii=False, allow_nan=False)
    return atomic_write(Path(path), lambda: (text + "\n").encode())


def _md_table(report: dict, blocks: list[tuple[str, dict]], with_runtime: bool) -> list[str]:
    metrics = report["metrics"]["columns"]
    head = ["Attribute", "Method", "N"] + [HEADERS[m] for m in metrics]
    if with_runtime:
        head += ["s / image", "Params"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for attr, by_method in blocks:
        for i, (method, row) in enumerate(by_method.items()):
            cells = [attr if i == 0 else "", method, str(row["n"])] + [format_cell(row, m) for m in metrics]
            if with_runtime:
                rt = report["runtime"].get(method) or {}
                where = ", ".join(rt[k] for k in ("device", "precision") if rt.get(k))
                seconds = _num(rt.get("seconds_per_image"), 3) + (f" ({where})" if where else "")
                cells += [seconds, _params(rt.get("parameters"))]
            lines.append("| " + " | ".join(cells) + " |")
    return lines


def write_markdown(path: Path, report: dict) -> Path:
    """Tables 1–2 style markdown: per-attribute block, overall block, skipped metrics, warnings, failures."""
    tables = report["tables"]
    lines = ["# blendfix evaluation", "",
             f"Originals: `{report['originals']}` ({report['n_images']} images). Each method's outputs are compared "
             "with the unedited originals: PSNR, SSIM, MAE, LPIPS per image, then mean ± std over images "
             "(population std); FID between the set of outputs and the set of originals.", ""]
    if report["attributes"] != [OVERALL]:
        lines += ["## Per attribute", ""]
        lines += _md_table(report, [(a, tables["per_attribute"][a]) for a in report["attributes"]], False)
        lines.append("")
    lines += ["## Overall", ""]
    lines += _md_table(report, [(OVERALL, tables["overall"])], True)
    lines.append("")
    if report.get("artifact_scores"):
        from .artifacts import markdown

        lines += markdown(report["artifact_scores"])
    skipped = report["metrics"]["skipped"]
    if skipped:
        lines += ["## Metrics not computed", ""]
        lines += [f"- {HEADERS[m].split()[0]}: {reason}" for m, reason in skipped.items()]
        lines.append("")
    for title, items in (("Warnings", report["warnings"]),
                         ("Failures", [f"`{f['file']}`: {f['reason']}" for f in report["failures"]])):
        if items:
            lines += [f"## {title}", ""] + [f"- {w}" for w in items] + [""]
    if report.get("figure"):
        lines += ["## Examples", "", f"![comparison]({report['figure']})", ""]
    text = "\n".join(lines)
    return atomic_write(Path(path), lambda: text.encode())


def _csv_bytes(header: list[str], rows: list[list[Any]]) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue().encode()


def _csv_value(x: Any) -> Any:
    if x is None:
        return ""
    if isinstance(x, float) and not math.isfinite(x):
        return "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")
    return x


def write_csv(path: Path, report: dict) -> Path:
    """One row per (attribute, method): n, ``{metric}_mean``/``_std``, fid, runtime; "all" rows = overall."""
    metrics = report["metrics"]["columns"]
    header = ["attribute", "method", "n"]
    for m in metrics:
        header += ["fid"] if m == "fid" else [f"{m}_mean", f"{m}_std"]
    header += ["seconds_per_image", "parameters", "device", "precision"]
    blocks = [(OVERALL, report["tables"]["overall"])]
    if report["attributes"] != [OVERALL]:
        blocks += [(a, report["tables"]["per_attribute"][a]) for a in report["attributes"]]
    rows = []
    for attr, by_method in blocks:
        for method, row in by_method.items():
            out: list[Any] = [attr, method, row["n"]]
            for m in metrics:
                v = row.get(m)
                out += [_csv_value(v)] if m == "fid" else [_csv_value(v and v["mean"]), _csv_value(v and v["std"])]
            rt = (report["runtime"].get(method) or {}) if attr == OVERALL else {}
            out += [_csv_value(rt.get(k)) for k in ("seconds_per_image", "parameters", "device", "precision")]
            rows.append(out)
    return atomic_write(Path(path), lambda: _csv_bytes(header, rows))


def write_per_image_csv(path: Path, report: dict) -> Path:
    """Every per-image value: stem, attribute, method, psnr, ssim, mae, lpips (empty when skipped), then
    kind and the artifact scores when the report has them (empty where undefined)."""
    metrics = [m for m in report["metrics"]["columns"] if m in PER_IMAGE_METRICS]
    extra: list[str] = []
    if report.get("artifact_scores"):
        from .artifacts import SCORES

        extra = ["kind", *SCORES]
    rows = [[r["stem"], r["attribute"], r["method"]] + [_csv_value(r.get(m)) for m in metrics + extra]
            for r in report["per_image"]]
    return atomic_write(Path(path), lambda: _csv_bytes(["stem", "attribute", "method", *metrics, *extra], rows))


def _font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


def write_figure(path: Path, columns: list[str], rows: list[tuple[str, list[np.ndarray]]],
                 tile_height: int = 160) -> Path:
    """Comparison grid PNG: a header of column titles, one row per example, a label column on the left.

    ``rows``: ``(label, images)`` with one ``(H, W, 3)`` float ``[0, 1]`` image per column; tiles are
    scaled to ``tile_height`` keeping the aspect ratio of the first image of the row.
    """
    if not rows or any(len(images) != len(columns) for _, images in rows):
        raise ValueError("write_figure: every row needs one image per column")
    font = _font(14)
    widths = [max(1, round(imgs[0].shape[1] * tile_height / imgs[0].shape[0])) for _, imgs in rows]
    tile_w, label_w, head_h, gap = max(widths), 150, 28, 4
    width = label_w + len(columns) * (tile_w + gap)
    height = head_h + len(rows) * (tile_height + gap)
    canvas = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(canvas)
    for j, title in enumerate(columns):
        draw.text((label_w + j * (tile_w + gap) + 4, 6), title, fill="black", font=font)
    for i, (label, images) in enumerate(rows):
        y = head_h + i * (tile_height + gap)
        draw.multiline_text((4, y + 4), label, fill="black", font=font)
        for j, img in enumerate(images):
            tile = Image.fromarray(to_uint8(img)).resize((widths[i], tile_height), Image.Resampling.BICUBIC)
            canvas.paste(tile, (label_w + j * (tile_w + gap), y))

    def encode() -> bytes:
        buf = io.BytesIO()
        canvas.save(buf, format="PNG")
        return buf.getvalue()

    return atomic_write(Path(path), encode)
