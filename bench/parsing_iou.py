"""Face-mask quality of the offline (landmark) parser against reference CelebAMask-HQ label maps.

For every ``faces/celebamask_hq_*/N.jpg`` with a reference ``parsing/celebamask_hq_*/N.png``
(CelebAMask-HQ label order, 512x512; upsampled nearest for 1024 faces), compare the region
skin + brows + nose + mouth + lips (eyes and glasses excluded) of our label map with the reference's
same region: IoU per image, mean and worst. Also per-class IoU of the classes the parser draws.

    PYTHONPATH=src OMP_NUM_THREADS=1 python bench/parsing_iou.py [--data ../shared/data] [--append]
"""

from __future__ import annotations

import argparse
import datetime
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from blendfix.io import read_image  # noqa: E402
from blendfix.parsing.labels import celebamask_to_bisenet, region  # noqa: E402
from blendfix.parsing.landmark_parser import LandmarkParser  # noqa: E402

FACE_REGION = ("skin", "l_brow", "r_brow", "nose", "mouth", "u_lip", "l_lip")
PER_CLASS = {"skin": ("skin",), "brows": ("l_brow", "r_brow"), "eyes": ("l_eye", "r_eye"), "nose": ("nose",),
             "mouth+lips": ("mouth", "u_lip", "l_lip"), "neck": ("neck",)}


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0


def pairs(data: Path) -> list[tuple[Path, Path]]:
    out = []
    for face in sorted(data.glob("faces/celebamask_hq_*/*.jpg")):
        ref = data / "parsing" / face.parent.name / (face.stem + ".png")
        if ref.is_file():
            out.append((face, ref))
    return out


def evaluate(parser: LandmarkParser, items: list[tuple[Path, np.ndarray, np.ndarray]]):
    """IoU of the face region per image, per-class IoUs, and seconds per image (parsing only)."""
    rows, per_class, seconds = [], {k: [] for k in PER_CLASS}, 0.0
    for face, image, ref in items:
        t0 = time.perf_counter()
        ours = parser.parse(image, face)
        seconds += time.perf_counter() - t0
        rows.append((f"{face.parent.name}/{face.name}", iou(region(ours, FACE_REGION), region(ref, FACE_REGION))))
        for k, names in PER_CLASS.items():
            if region(ref, names).any():
                per_class[k].append(iou(region(ours, names), region(ref, names)))
    return rows, per_class, seconds / max(len(items), 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--append", action="store_true", help="append the tables to BENCHMARKS.md")
    args = ap.parse_args()
    items = []
    for face, ref_path in pairs(args.data):
        image = read_image(face)
        ref = celebamask_to_bisenet(cv2.imread(str(ref_path), cv2.IMREAD_GRAYSCALE))
        if ref.shape != image.shape[:2]:
            ref = cv2.resize(ref.astype(np.uint8), image.shape[1::-1], interpolation=cv2.INTER_NEAREST)
        items.append((face, image, ref))
    if not items:
        sys.exit(f"no celebamask_hq faces with reference maps under {args.data}")
    LandmarkParser().parse(items[0][1])  # warm-up: model start-up is not timed
    variants = {"landmarks (default: mesh + skin-colour refinement)": LandmarkParser(),
                "mesh geometry only (refine=False)": LandmarkParser(refine=False)}
    results = {name: evaluate(p, items) for name, p in variants.items()}
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [f"`PYTHONPATH=src OMP_NUM_THREADS=1 python bench/parsing_iou.py` ({stamp}; {len(items)} CelebAMask-HQ "
             "faces with reference maps, 512² and 1024²; shared 2-core CPU, other jobs running).", "",
             "| parser | mean IoU | median IoU | worst IoU (image) | ms/image |", "|---|---|---|---|---|"]
    for name, (rows, _, sec) in results.items():
        values = np.array([r[1] for r in rows])
        worst = rows[int(values.argmin())]
        lines.append(f"| {name} | {values.mean():.4f} | {np.median(values):.4f} | {worst[1]:.4f} ({worst[0]}) "
                     f"| {sec * 1000:.0f} |")
    lines += ["", "| class: per-class IoU, mean over images that have it | " + " | ".join(
        n.split(" (")[0] for n in results) + " | n |", "|---|" + "---|" * (len(results) + 1)]
    for k in PER_CLASS:
        vals = [results[n][1][k] for n in results]
        if vals[0]:
            lines.append(f"| {k} | " + " | ".join(f"{np.mean(v):.4f}" for v in vals) + f" | {len(vals[0])} |")
    first = next(iter(results.values()))[0]
    lines += ["", "Per image (default parser): " + ", ".join(f"{n} {v:.3f}" for n, v in first) + "."]
    text = "\n".join(lines)
    print(text)
    if args.append:
        with open(ROOT / "BENCHMARKS.md", "a", encoding="utf-8") as fh:
            fh.write("\n## Face mask quality\n\n" + text + "\n")


if __name__ == "__main__":
    main()
