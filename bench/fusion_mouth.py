"""Paper fusion vs released fusion on the mouth, for smile: seam score and how much of T's mouth is kept.

For every square photo of the shared ``celebamask_hq_*`` folders (62; the unaligned sample is left
out), at ``--resolution`` (256): I = the photo, the synthetic editor's smile (seed = synth's item
seed for the photo's path, global seed 0), the mouth R = mouth/lips parsed (landmark parser) in I
or T, then

* ``F_paper = T*M + I*(1-M)`` and ``F_released`` = the released code's fusion (R wholly from T);
* mouth seam = :func:`blendfix.metrics.seam.seam_score` with R as the edit mask (the band around
  the mouth's boundary, 3 px each side at 256²), reference = the truth when the editor gives one
  (``EditResult.truth``), else I;
* CAM seam = the same with the CAM mask M (the band around ``M >= 0.5 max M``), for both fusions;
* mouth kept = ``mean|F - I| / mean|T - I|`` over R eroded by the band radius (1 = T's mouth).

    PYTHONPATH=src OMP_NUM_THREADS=1 python bench/fusion_mouth.py [--faces ../shared/data/faces] [--csv out.csv]
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
from pathlib import Path

import numpy as np

from blendfix.edit.fusion import apply_fusion, mouth_region
from blendfix.edit.synthetic import SyntheticEditor
from blendfix.metrics.seam import band_radius, eroded_region, seam_score
from blendfix.synth.config import item_seed
from blendfix.synth.pipeline import load_photo
from blendfix.synth.runner import SkipItem


def photos(faces: Path) -> list[tuple[str, Path]]:
    out = []
    for folder in sorted(faces.glob("celebamask_hq_*")):
        for p in sorted(folder.iterdir()):
            if p.is_file() and not p.name.startswith("."):
                out.append((p.relative_to(faces).as_posix(), p))
    return out


def measure(rel: str, path: Path, resolution: int, editor: SyntheticEditor) -> dict[str, float | str]:
    image, _ = load_photo(path, resolution, non_square="skip", source=rel)
    res = editor.edit(image, "smile", seed=item_seed(0, rel), source=rel)
    truth = getattr(res, "truth", None)
    ref = truth if truth is not None else res.original
    mouth = mouth_region(res.original, res.edited, source=rel)
    released = apply_fusion(res, "released", source=rel)
    inner = eroded_region(mouth > 0.5, band_radius(*mouth.shape))
    want = float(np.abs(res.edited - res.original)[inner].mean()) if inner.any() else math.nan
    row: dict[str, float | str] = {"photo": rel, "reference": "truth" if truth is not None else "original",
                                   "mouth_fraction": float(mouth.mean())}
    for name, fused in (("paper", res.fused), ("released", released.fused)):
        row[f"mouth_seam_{name}"] = seam_score(fused, ref, mouth)
        row[f"cam_seam_{name}"] = seam_score(fused, ref, res.mask)
        row[f"mouth_kept_{name}"] = float(np.abs(fused - res.original)[inner].mean()) / want if want > 0 else math.nan
    return row


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--faces", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data" / "faces")
    ap.add_argument("--resolution", type=int, default=256)
    ap.add_argument("--csv", type=Path, help="Also write the per-photo rows here.")
    args = ap.parse_args(argv)
    editor = SyntheticEditor()
    rows, skipped = [], []
    for rel, path in photos(args.faces):
        try:
            rows.append(measure(rel, path, args.resolution, editor))
        except SkipItem as e:
            skipped.append(f"{rel}: {e}")
        except Exception as e:  # noqa: BLE001 - a photo without a face is listed, not fatal
            skipped.append(f"{rel}: {type(e).__name__}: {e}")
    if not rows:
        print("no photo measured", file=sys.stderr)
        return 1
    keys = [k for k in rows[0] if k not in ("photo", "reference")]
    print(f"{len(rows)} photos at {args.resolution}², smile, synthetic editor, reference = {rows[0]['reference']}"
          f"; skipped {len(skipped)}")
    print("| score | paper | released |\n|---|---|---|")
    for base in ("mouth_seam", "cam_seam", "mouth_kept"):
        cells = []
        for f in ("paper", "released"):
            v = np.array([r[f"{base}_{f}"] for r in rows], float)
            v = v[np.isfinite(v)]
            cells.append(f"{np.mean(v):.3f} (median {np.median(v):.3f}, n {v.size})")
        print(f"| {base} | {cells[0]} | {cells[1]} |")
    worse = sum(float(r["mouth_seam_released"]) > float(r["mouth_seam_paper"]) for r in rows)
    print(f"mouth seam higher with released fusion on {worse} of {len(rows)} photos; "
          f"mean mouth fraction {np.mean([r['mouth_fraction'] for r in rows]):.4f}")
    for s in skipped:
        print(f"skipped {s}", file=sys.stderr)
    if args.csv:
        with args.csv.open("w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=["photo", "reference", *keys])
            w.writeheader()
            w.writerows(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
