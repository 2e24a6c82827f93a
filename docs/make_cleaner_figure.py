"""docs/cleaner_comparison.jpg: the shipped cleaner next to the baselines, with zoomed boundary crops.

    PYTHONPATH=src python docs/make_cleaner_figure.py SET BASELINE_ROOT NETWORK_DIR [-o docs/cleaner_comparison.jpg]

SET is a synth set with truth (e.g. the 62 test photos x 4 variants at 256²), BASELINE_ROOT the output
folder of ``bench/baseline_scores.py`` (``poisson/``, ``blend/``), NETWORK_DIR the shipped cleaner's
outputs named by item id. Per row (one item per artifact kind): I, F, Poisson teacher, blend with the
true mask, blendfix, truth; under each a 3x zoom on the part of the edit boundary where F's change steps
most (the strongest low-passed gradient of F - I on the seam band).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np

from blendfix.data import layout
from blendfix.io import read_image, read_mask
from blendfix.metrics.seam import strongest_step_box

COLUMNS = ("original", "fused", "poisson", "blend", "blendfix", "truth")


def _label(tile: np.ndarray, text: str) -> np.ndarray:
    out = np.ascontiguousarray((np.clip(tile, 0, 1) * 255 + 0.5).astype(np.uint8))
    cv2.rectangle(out, (0, 0), (out.shape[1], 16), (0, 0, 0), -1)
    cv2.putText(out, text, (3, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1, cv2.LINE_AA)
    return out.astype(np.float32) / 255.0


def row(item: Path, images: dict[str, np.ndarray], kind: str) -> np.ndarray:
    mask = read_mask(item / layout.MASK)
    h, w = mask.shape
    side = h // 3
    y0, x0 = strongest_step_box(images["fused"], images["original"], mask, side)
    tops, zooms = [], []
    for name in COLUMNS:
        img = images[name]
        framed = img.copy()
        cv2.rectangle(framed, (x0, y0), (x0 + side - 1, y0 + side - 1), (1.0, 0.85, 0.0), 1)
        tops.append(_label(framed, f"{name}" + (f"  {kind}" if name == "original" else "")))
        crop = img[y0:y0 + side, x0:x0 + side]
        zooms.append(cv2.resize(crop, (w, h), interpolation=cv2.INTER_NEAREST))
    return np.concatenate([np.concatenate(tops, 1), np.concatenate(zooms, 1)], 0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dataset", type=Path)
    ap.add_argument("baseline", type=Path)
    ap.add_argument("network", type=Path)
    ap.add_argument("-o", "--out", type=Path, default=Path(__file__).with_name("cleaner_comparison.jpg"))
    ap.add_argument("--kinds", default="synthetic:smile,synthetic:aging,paste:rect,paste:facebox")
    args = ap.parse_args()
    records = [json.loads(x) for x in (args.dataset / layout.MANIFEST).read_text().splitlines() if x.strip()]
    rows = []
    for kind in args.kinds.split(","):
        rec = next(r for r in sorted(records, key=lambda r: r["id"]) if r.get("kind") == kind)
        item = args.dataset / layout.ITEMS / rec["id"]
        images = {"original": read_image(item / layout.ORIGINAL), "fused": read_image(item / layout.FUSED),
                  "poisson": read_image(item / layout.TARGET),
                  "blend": read_image(args.baseline / "blend" / f"{rec['id']}.png"),
                  "blendfix": read_image(args.network / f"{rec['id']}.png"), "truth": read_image(item / layout.TRUTH)}
        rows.append(row(item, images, kind))
    figure = np.concatenate(rows, 0)
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor((figure * 255 + 0.5).astype(np.uint8), cv2.COLOR_RGB2BGR),
                           [cv2.IMWRITE_JPEG_QUALITY, 88])
    if not ok:
        raise SystemExit("could not encode the figure")
    args.out.write_bytes(buf.tobytes())
    print(f"wrote {args.out} ({figure.shape[1]}x{figure.shape[0]})")


if __name__ == "__main__":
    main()
