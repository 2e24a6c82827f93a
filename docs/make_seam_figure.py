"""Write docs/seam_band.jpg: where the seam score and the edit-kept score look, on one shared face.

One row per fusion of the synthetic editor's smile on ``celebamask_hq_512/0.jpg`` at 256²:
I | F | M | F with the band of M (red) and the eroded region (blue) | a 3x zoom on the mouth with the
band of the mouth region R (red); a last row shows the editor's truth, the scores' reference. Run from the project root:

    PYTHONPATH=src python docs/make_seam_figure.py [--faces ../shared/data/faces] [--out docs/seam_band.jpg]

The face is read from the shared folder and never copied into the project; the figure shows it
edited, at 256 px, for research documentation only.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from blendfix.edit.fusion import apply_fusion, mouth_region  # noqa: E402
from blendfix.edit.synthetic import SyntheticEditor  # noqa: E402
from blendfix.metrics.report import write_figure  # noqa: E402
from blendfix.metrics.seam import band_overlay, seam_score  # noqa: E402
from blendfix.synth.config import item_seed  # noqa: E402
from blendfix.synth.pipeline import load_photo  # noqa: E402

PHOTO = "celebamask_hq_512/0.jpg"


def zoom(image: np.ndarray, region: np.ndarray, factor: int = 3) -> np.ndarray:
    """The square around ``region``'s bounding box (a third of the image wide), enlarged ``factor`` x."""
    h, w = region.shape
    ys, xs = np.nonzero(region > 0.5)
    cy, cx, half = int(ys.mean()), int(xs.mean()), w // (2 * factor)
    y0, x0 = min(max(0, cy - half), h - 2 * half), min(max(0, cx - half), w - 2 * half)
    crop = image[y0:y0 + 2 * half, x0:x0 + 2 * half]
    return cv2.resize(crop, (w, h), interpolation=cv2.INTER_NEAREST)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--faces", type=Path, default=ROOT.parent / "shared" / "data" / "faces")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "seam_band.jpg")
    args = ap.parse_args(argv)
    image, _ = load_photo(args.faces / PHOTO, 256, source=PHOTO)
    res = SyntheticEditor().edit(image, "smile", seed=item_seed(0, PHOTO), source=PHOTO)
    mouth = mouth_region(res.original, res.edited, source=PHOTO)
    ref = res.truth if res.truth is not None else res.original
    rows = []
    for fusion in ("paper", "released"):
        r = apply_fusion(res, fusion, source=PHOTO)
        f = r.fused
        label = (f"{fusion}\nseam {seam_score(f, ref, res.mask):.2f}\n"
                 f"mouth seam {seam_score(f, ref, mouth):.2f}")
        mask3 = np.repeat(r.mask[..., None], 3, axis=2)
        rows.append((label, [res.original, f, mask3, band_overlay(f, res.mask),
                             zoom(band_overlay(f, mouth), mouth)]))
    if res.truth is not None:
        rows.append(("truth\n(the reference)", [res.original, ref, np.repeat(res.mask[..., None], 3, axis=2),
                                                 band_overlay(ref, res.mask), zoom(band_overlay(ref, mouth), mouth)]))
    with tempfile.TemporaryDirectory() as tmp:
        png = Path(tmp) / "figure.png"
        write_figure(png, ["I", "F", "M (fusion weight)", "band of M, core", "mouth band (3x)"], rows,
                     tile_height=256)
        Image.open(png).convert("RGB").save(args.out, quality=88)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
