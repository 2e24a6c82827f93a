"""PSNR / SSIM / MAE: blendfix.metrics.fidelity vs torchmetrics 1.9 functional, agreement and speed.

Real faces (``faces/celebamask_hq_512`` and ``celebamask_hq_1024``) against a degraded copy (JPEG
quality 30, then a 3x3 box blur on the right half), per image, batch 1. Agreement: the largest
absolute per-image difference over all faces. Speed: median wall time of interleaved repeats, per
metric and size; both take the same float32 ``(1, 3, H, W)`` tensors (ours computes in float64).

    PYTHONPATH=src OMP_NUM_THREADS=1 python bench/torchmetrics_fidelity.py --threads 1 --repeats 5 [--append]
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import statistics
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageFilter

from blendfix.io import read_image
from blendfix.metrics.fidelity import mae, psnr, ssim
from blendfix.tensors import image_to_tensor

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("BLENDFIX_SHARED", ROOT.parent / "shared"))


def degraded(image: np.ndarray) -> np.ndarray:
    """JPEG q30, then a box blur on the right half: a realistic, non-trivial pair."""
    buf = io.BytesIO()
    Image.fromarray((image * 255 + 0.5).astype(np.uint8)).save(buf, format="JPEG", quality=30)
    img = Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
    w, h = img.size
    img.paste(img.crop((w // 2, 0, w, h)).filter(ImageFilter.BoxBlur(1)), (w // 2, 0))
    return np.asarray(img, np.float32) / 255.0


def theirs() -> dict:
    from torchmetrics.functional import mean_absolute_error
    from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure

    return {
        "psnr": lambda p, t: peak_signal_noise_ratio(p, t, data_range=1.0, dim=(1, 2, 3), reduction="none"),
        "ssim": lambda p, t: structural_similarity_index_measure(p, t, data_range=1.0, reduction="none"),
        "mae": lambda p, t: mean_absolute_error(p, t).reshape(1),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--append", action="store_true", help="append the table to BENCHMARKS.md")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    import torchmetrics

    ours = {"psnr": psnr, "ssim": ssim, "mae": mae}
    tm = theirs()
    faces = sorted((SHARED / "data" / "faces" / "celebamask_hq_512").glob("*.jpg")) + \
        sorted((SHARED / "data" / "faces" / "celebamask_hq_1024").glob("*.jpg"))
    diffs = dict.fromkeys(ours, 0.0)
    pairs: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
    for f in faces:
        img = read_image(f)
        t, p = image_to_tensor(img), image_to_tensor(degraded(img))
        pairs.setdefault(img.shape[0], (p, t))
        for k in ours:
            a, b = ours[k](p, t).double(), tm[k](p, t).double()
            diffs[k] = max(diffs[k], float((a - b).abs().max()))
    rows = []
    for size in sorted(pairs):
        p, t = pairs[size]
        times: dict[str, list[float]] = {f"{w}-{k}": [] for w in ("ours", "tm") for k in ours}
        for _ in range(args.repeats):
            for k in ours:
                for who, fn in (("ours", ours[k]), ("tm", tm[k])):
                    start = time.perf_counter()
                    fn(p, t)
                    times[f"{who}-{k}"].append(time.perf_counter() - start)
        med = {k: statistics.median(v) * 1000 for k, v in times.items()}
        rows.append((size, med))
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [f"`PYTHONPATH=src OMP_NUM_THREADS=1 python bench/torchmetrics_fidelity.py --threads {args.threads} "
             f"--repeats {args.repeats}` ({stamp}; torch {torch.__version__}, torchmetrics {torchmetrics.__version__}; "
             f"{platform.machine()}; {args.threads} thread(s); load average "
             f"{', '.join(f'{x:.1f}' for x in os.getloadavg())}).", "",
             "| image | PSNR ours ms | PSNR torchmetrics ms | SSIM ours ms | SSIM torchmetrics ms | MAE ours ms | "
             "MAE torchmetrics ms |", "|---|---|---|---|---|---|---|"]
    for size, med in rows:
        cells = " | ".join(f"{med[f'{w}-{k}']:.1f}" for k in ours for w in ("ours", "tm"))
        lines.append(f"| {size}² | {cells} |")
    lines += ["", f"Largest per-image difference over {len(faces)} real faces (512² and 1024², JPEG q30 + blur): "
              + ", ".join(f"{k.upper()} {v:.2g}" for k, v in diffs.items()) + "."]
    text = "\n".join(lines)
    print(text)
    if args.append:
        with open(ROOT / "BENCHMARKS.md", "a", encoding="utf-8") as fh:
            fh.write("\n## PSNR / SSIM / MAE: ours vs torchmetrics\n\n" + text + "\n")


if __name__ == "__main__":
    main()
