"""Evaluate folders of method outputs against the unedited originals (``blendfix evaluate``).

``ORIGINALS`` is an image set (:mod:`blendfix.data.imageset`; its items' original, truth, mask and fused
images are read, each item's attribute and kind come from its record, and without ``--method`` its
``fused`` and every ``cleaned/<method>`` are the methods), or a folder of photos: files are matched by
name stem, ``ORIGINALS/<stem>.*`` <-> ``METHOD_DIR/<stem>.*``, and the attribute of a stem comes from a
``manifest.jsonl`` (a stem matches a record's ``id`` or the stem of its ``source``), else it is ``"all"``.
PSNR, SSIM and MAE are always computed; LPIPS and FID only when their published
weights are present (otherwise the report names them as skipped, with the reason). A method folder
may hold ``runtime.json`` (``{"seconds_per_image": ..., "parameters": ...}``, written by
``blendfix clean``), which the overall table shows.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from .. import __version__
from ..attributes import ATTRIBUTES
from ..data.imageset import CLEANED, ITEMS, ImageSet, cleaned_role, list_images, match_by_stem, read_attributes
from ..device import resolve_device
from ..errors import BlendfixError, MissingWeightsError
from ..io import read_image
from ..tensors import image_to_tensor
from . import artifacts as art
from . import report as rep
from .evalset import read_aux, read_kinds, read_sources
from .fidelity import mae, psnr, ssim

RUNTIME_FILE = "runtime.json"
#: In an image set, ``runtime/<method>.json`` (written by ``blendfix clean -i SET``).
RUNTIME_DIR = "runtime"


def match_method(originals: dict[str, Path], folder: Path, name: str) -> dict[str, Path]:
    """The method's file for every original stem; ``ValueError`` listing unmatched files on either side."""
    return match_by_stem(list(originals), list_images(folder), f"method {name!r}", exact=True,
                         shown={s: p.name for s, p in originals.items()})


def set_methods(root: Path, stems: list[str]) -> dict[str, dict[str, Path]]:
    """An image set's methods: ``fused`` and each ``cleaned/<method>`` -> item id -> file.

    ``ValueError`` naming the items without a file when a cleaned method covers only some of them.
    """
    s = ImageSet(root)
    out: dict[str, dict[str, Path]] = {}
    cleaned = s.methods([r for r in s.records() if r.id in set(stems)])
    for name, role in [("fused", "fused")] + [(m, cleaned_role(m)) for m in cleaned]:
        files = {i: s.path(i, role) for i in stems}
        missing = [k for k, f in files.items() if not f.is_file()]
        if missing and name != "fused":
            raise ValueError(f"{root}: method {name!r} has no {role}.png for {len(missing)} item(s) (e.g. "
                             f"{missing[0]}); run `blendfix clean -i {root} --method {name}` again.")
        if not missing:
            out[name] = files
    return out


def read_runtime(folder: Path) -> tuple[dict[str, Any] | None, str | None]:
    """A method folder's ``runtime.json`` (or a runtime file itself) -> (record or None, warning or None).

    The record keeps ``seconds_per_image`` and ``parameters`` (numbers) and ``device``, ``precision``
    (strings) where present, as ``blendfix clean`` writes them.
    """
    path = Path(folder) / RUNTIME_FILE if Path(folder).is_dir() else Path(folder)
    if not path.is_file():
        return None, None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        out: dict[str, Any] = {k: float(data[k]) for k in ("seconds_per_image", "parameters")
                                 if data.get(k) is not None}
        if "parameters" in out and out["parameters"].is_integer():
            out["parameters"] = int(out["parameters"])
        out.update({k: str(data[k]) for k in ("device", "precision") if data.get(k)})
    except (json.JSONDecodeError, TypeError, ValueError, AttributeError) as e:
        return None, f"{path}: ignored, not a runtime record ({e})"
    return out or None, None


def _load_nets(lpips: bool, fid: bool, weights: Mapping[str, Any], device: torch.device
               ) -> tuple[Any, Any, dict[str, str]]:
    skipped: dict[str, str] = {}
    lp_net = fid_net = None
    if not lpips:
        skipped["lpips"] = "disabled by the caller (--no-lpips)"
    else:
        from .lpips import load_lpips
        try:
            lp_net = load_lpips("alex", weights.get("lpips_trunk"), weights.get("lpips_lin"), device)
        except MissingWeightsError as e:
            skipped["lpips"] = str(e)
    if not fid:
        skipped["fid"] = "disabled by the caller (--no-fid)"
    else:
        from .fid import load_fid_inception
        try:
            fid_net = load_fid_inception(weights.get("fid_weights"), device)
        except MissingWeightsError as e:
            skipped["fid"] = str(e)
    return lp_net, fid_net, skipped


def _same_shape_runs(images: list[np.ndarray]) -> list[list[int]]:
    runs: list[list[int]] = []
    for i, img in enumerate(images):
        if runs and images[runs[-1][0]].shape == img.shape:
            runs[-1].append(i)
        else:
            runs.append([i])
    return runs


@torch.no_grad()
def _batched(net: Any, images: list[np.ndarray], device: torch.device, others: list[np.ndarray] | None = None
             ) -> np.ndarray:
    """Run ``net`` on runs of same-size images (``net(x)`` or ``net(x, y)``), results in input order."""
    out: list[np.ndarray | None] = [None] * len(images)
    for run in _same_shape_runs(images):
        x = image_to_tensor([images[i] for i in run], device)
        y = net(x) if others is None else net(x, image_to_tensor([others[i] for i in run], device))
        for i, v in zip(run, y.double().cpu().numpy(), strict=True):
            out[i] = v
    return np.stack(out)


def _fidelity(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``(B, 3)`` PSNR, SSIM, MAE, one image at a time (float64 SSIM of a 1024² image needs ~0.2 GB)."""
    rows = [torch.cat([psnr(a, b), ssim(a, b), mae(a, b)]) for a, b in zip(x.split(1), y.split(1), strict=True)]
    return torch.stack(rows)


class _NoTF32:
    """Full float32 matmuls/convolutions on CUDA while metrics run (TF32 shifts LPIPS/FID values)."""

    def __enter__(self) -> None:
        self.saved = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False

    def __exit__(self, *exc: object) -> None:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = self.saved


def _examples(stems: list[str], attributes: dict[str, str], n: int) -> list[str]:
    """Up to ``n`` stems, taking the attributes in turn so every attribute is shown."""
    groups = [[s for s in stems if attributes[s] == a] for a in dict.fromkeys(attributes[s] for s in stems)]
    picked: list[str] = []
    while len(picked) < n and any(groups):
        for g in groups:
            if g and len(picked) < n:
                picked.append(g.pop(0))
    return picked


def _read_outputs(files: dict[str, Path], origs: dict[str, np.ndarray], stems: list[str],
                  failures: list[dict[str, str]]) -> dict[str, np.ndarray]:
    """A method's outputs for ``stems``; unreadable or resized files go to ``failures``."""
    from .evalset import read_matching

    outs: dict[str, np.ndarray] = {}
    for s in stems:
        img = read_matching(files[s], origs[s], "the output", failures)
        if img is not None:
            outs[s] = img
    return outs


def _score(outs: dict[str, np.ndarray], origs: dict[str, np.ndarray], lp_net: Any, fid_net: Any,
           device: torch.device, per_image: dict[str, dict[str, float]], feats: dict[str, np.ndarray]) -> None:
    """Per-image PSNR/SSIM/MAE (+ LPIPS) into ``per_image`` and Inception features into ``feats``."""
    good = list(outs)
    if not good:
        return
    pred, target = [outs[s] for s in good], [origs[s] for s in good]
    vals = _batched(_fidelity, pred, torch.device("cpu"), target)
    lp = _batched(lp_net, pred, device, target) if lp_net is not None else None
    for i, s in enumerate(good):
        per_image[s] = dict(zip(("psnr", "ssim", "mae"), map(float, vals[i]), strict=True))
        if lp is not None:
            per_image[s]["lpips"] = float(lp[i])
    if fid_net is not None:
        feats.update(zip(good, _batched(fid_net, pred, device), strict=True))


def evaluate_dirs(originals: str | os.PathLike, methods: Mapping[str, str | os.PathLike] | None = None,
                  out_dir: str | os.PathLike | None = None, *, attributes_from: str | os.PathLike | None = None,
                  truth: str | os.PathLike | None = None, mask: str | os.PathLike | None = None,
                  lpips: bool = True, fid: bool = True, lpips_trunk: str | os.PathLike | None = None,
                  lpips_lin: str | os.PathLike | None = None, fid_weights: str | os.PathLike | None = None,
                  device: str = "auto", batch_size: int = 8, figure_examples: int = 4,
                  progress: bool = True) -> dict[str, Any]:
    """Compare each method's outputs with the originals; return the report dict (and write it to ``out_dir``).

    ``methods``: name -> folder of outputs named like the originals (e.g. ``{"fused": ..., "blendfix": ...}``).
    ``originals``: a photo folder, or a synth dataset folder (its items' original/truth/mask/fused are
    used; outputs are then named by item id). ``truth`` / ``mask``: folders of truths and edit masks
    matched by stem (:mod:`.evalset`). With a truth or a mask the report also has ``artifact_scores``
    (vs truth, seam, edit kept per attribute and per artifact kind; :mod:`.artifacts`).
    ``lpips_trunk`` / ``lpips_lin`` / ``fid_weights``: registered names or paths overriding the registry
    defaults. Report keys: ``tables`` (``overall`` and ``per_attribute``: method -> ``n``, per-image
    metrics as ``{"mean", "std", "n"}``, ``fid``), ``per_image``, ``metrics`` (``computed``,
    ``skipped``: metric -> reason), ``runtime``, ``warnings``, ``failures``, ``figure``.
    Files written: ``report.md``, ``report.json``, ``metrics.csv``, ``per_image.csv``, ``comparison.png``.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    orig_dir = Path(originals)
    sources = read_sources(orig_dir, truth, mask)
    by_stem = sources.originals
    stems = sorted(by_stem)
    methods = dict(methods or {})
    files = {name: match_method(by_stem, Path(d), name) for name, d in methods.items()}
    runtimes = {name: Path(d) for name, d in methods.items()}
    if not methods and sources.dataset is not None:  # an image set's own fused and cleaned images
        files = set_methods(orig_dir, stems)
        methods = {n: orig_dir / ITEMS / "*" / ("fused.png" if n == "fused" else f"{CLEANED}/{n}.png")
                   for n in files}
        runtimes = {n: orig_dir / RUNTIME_DIR / f"{n}.json" for n in files}
    if not methods:
        raise ValueError("give at least one method to evaluate (--method NAME=DIR, or an image set with fused "
                         "images)")
    if attributes_from:
        attributes = read_attributes(Path(attributes_from), stems)
        kinds = read_kinds(Path(attributes_from), stems, attributes)
    elif sources.attributes is not None:
        attributes, kinds = sources.attributes, sources.kinds or dict(sources.attributes)
    else:
        attributes = dict.fromkeys(stems, "all")
        kinds = dict(attributes)
    dev = resolve_device(device)
    weights = {"lpips_trunk": lpips_trunk, "lpips_lin": lpips_lin, "fid_weights": fid_weights}
    lp_net, fid_net, skipped = _load_nets(lpips, fid, weights, dev)
    warns: list[str] = []
    runtime: dict[str, dict | None] = {}
    for name in methods:
        runtime[name], w = read_runtime(runtimes[name])
        if w:
            warns.append(w)
    per_image: dict[str, dict[str, dict[str, float]]] = {name: {} for name in methods}
    feats: dict[str, dict[str, np.ndarray]] = {"": {}, **{name: {} for name in methods}}
    failures: list[dict[str, str]] = []
    bar = tqdm(total=len(stems) * len(methods), desc="evaluate", unit="img", disable=None if progress else True)
    with _NoTF32():
        for start in range(0, len(stems), batch_size):
            chunk = stems[start:start + batch_size]
            origs: dict[str, np.ndarray] = {}
            for s in chunk:
                try:
                    origs[s] = read_image(by_stem[s])
                except (BlendfixError, ValueError) as e:
                    failures.append({"file": str(by_stem[s]), "reason": str(e)})
            ok = [s for s in chunk if s in origs]
            if fid_net is not None and ok:
                feats[""].update(zip(ok, _batched(fid_net, [origs[s] for s in ok], dev), strict=True))
            aux = read_aux(sources, origs, ok, failures)
            outputs = {name: _read_outputs(files[name], origs, ok, failures) for name in methods}
            for name in methods:
                _score(outputs[name], origs, lp_net, fid_net, dev, per_image[name], feats[name])
                art.score_outputs(outputs[name], origs, aux, outputs.get("fused", {}), lp_net, dev, per_image[name])
                bar.update(len(chunk))
    bar.close()
    report = _assemble(orig_dir, methods, stems, attributes, per_image, feats, fid_net is not None, skipped,
                       runtime, warns, failures)
    report["artifact_scores"] = None
    if sources.truth or sources.mask:
        report["artifact_scores"] = art.section(per_image, stems, attributes, kinds, n_truth=len(sources.truth),
                                                n_mask=len(sources.mask))
        for row in report["per_image"]:
            row["kind"] = kinds[row["stem"]]
    if out_dir is not None:
        write_report(report, Path(out_dir), files, by_stem, figure_examples)
    return report


def _assemble(orig_dir: Path, methods: Mapping[str, Any], stems: list[str], attributes: dict[str, str],
              per_image: dict, feats: dict, with_fid: bool, skipped: dict[str, str], runtime: dict,
              warns: list[str], failures: list[dict[str, str]]) -> dict[str, Any]:
    from .fid import SmallSampleWarning, fid_from_features, small_sample_message

    order = [a for a in (*ATTRIBUTES, "all") if a in set(attributes.values())]
    scopes = [(rep.OVERALL, stems)] + [(a, [s for s in stems if attributes[s] == a]) for a in order if a != "all"]
    computed = [m for m in rep.ALL_METRICS if m not in skipped]
    tables: dict[str, Any] = {"overall": {}, "per_attribute": {a: {} for a, _ in scopes[1:]}}
    for scope, scope_stems in scopes:
        for name in methods:
            row = rep.table_row(per_image[name], scope_stems, [m for m in computed if m != "fid"])
            for m in rep.PER_IMAGE_METRICS:
                row.setdefault(m, None)
            row["fid"] = None
            if with_fid:
                common = [s for s in scope_stems if s in feats[name] and s in feats[""]]
                if len(common) >= 2:
                    row["fid"] = fid_from_features(np.stack([feats[""][s] for s in common]),
                                                   np.stack([feats[name][s] for s in common]), warn=False)
                else:
                    warns.append(f"FID not computed for {name!r} on {scope!r}: needs at least 2 images, "
                                 f"has {len(common)}")
            (tables["overall"] if scope == rep.OVERALL else tables["per_attribute"][scope])[name] = row
    if with_fid and len(stems) < 2048:
        msg = small_sample_message(len(stems)) + (" Per-attribute FIDs use fewer still." if len(scopes) > 1 else "")
        warns.insert(0, msg)
        warnings.warn(msg, SmallSampleWarning, stacklevel=3)
    rows = [{"stem": s, "attribute": attributes[s], "method": name, **per_image[name][s]}
            for name in methods for s in stems if s in per_image[name]]
    return {
        "blendfix_version": __version__, "originals": str(orig_dir), "n_images": len(stems),
        "methods": [{"name": n, "dir": str(d)} for n, d in methods.items()],
        "attributes": [a for a, _ in scopes[1:]] or [rep.OVERALL],
        "metrics": {"columns": list(rep.ALL_METRICS), "computed": computed, "skipped": skipped,
                    "std": "population std over images (ddof 0)"},
        "tables": tables, "runtime": runtime, "per_image": rows, "warnings": warns, "failures": failures,
        "figure": None,
    }


def write_report(report: dict[str, Any], out_dir: Path, files: dict[str, dict[str, Path]],
                 originals: dict[str, Path], figure_examples: int = 4) -> None:
    """Write report.md/.json, metrics.csv, per_image.csv and (if examples) comparison.png into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    names = list(files)
    columns = ["original"] + (["fused"] if "fused" in files else []) + [n for n in names if n != "fused"]
    attrs = {r["stem"]: r["attribute"] for r in report["per_image"]}
    scored = {(r["stem"], r["method"]) for r in report["per_image"]}
    done = [s for s in sorted(attrs) if all((s, n) in scored for n in names)]
    examples = _examples(done, attrs, figure_examples)
    if examples:
        rows = []
        for s in examples:
            images = [read_image(originals[s])] + [read_image(files[c][s]) for c in columns[1:]]
            rows.append((f"{s}\n{attrs[s]}", images))
        rep.write_figure(out_dir / "comparison.png", columns, rows)
        report["figure"] = "comparison.png"
    rep.write_json(out_dir / "report.json", report)
    rep.write_markdown(out_dir / "report.md", report)
    rep.write_csv(out_dir / "metrics.csv", report)
    rep.write_per_image_csv(out_dir / "per_image.csv", report)
    if report.get("artifact_scores"):
        art.write_csv(out_dir / "artifact_scores.csv", report["artifact_scores"])
