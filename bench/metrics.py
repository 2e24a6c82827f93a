"""Benchmark the per-image metrics on the CPU: SSIM (ours vs a direct 2-D window baseline), LPIPS, FID features.

SSIM baseline = the same formula with the 11x11 Gaussian window applied as one depthwise 2-D float64
convolution per statistic (the textbook form); ours = two 1-D passes over one stacked tensor. Both
are checked to agree before timing. LPIPS (AlexNet) and the FID Inception run with random weights
(timing does not depend on the values). Runs are interleaved; medians are reported.

    PYTHONPATH=src OMP_NUM_THREADS=1 python bench/metrics.py --threads 1 --repeats 3 [--append]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from datetime import datetime, timezone
from pathlib import Path

import torch
import torch.nn.functional as F

from blendfix.metrics.fidelity import SSIM_K1, SSIM_K2, gaussian_taps, ssim
from blendfix.metrics.lpips import LPIPS
from blendfix.nets.inception import FIDInceptionV3


def ssim_direct_2d(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Baseline: 2-D window as a depthwise float64 convolution, one call per statistic."""
    x, y = x.double(), y.double()
    g = gaussian_taps()
    win = torch.outer(g, g).expand(3, 1, 11, 11).contiguous()

    def filt(a: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.pad(a, (5, 5, 5, 5), mode="reflect"), win, groups=3)

    mx, my = filt(x), filt(y)
    vx, vy = (filt(x * x) - mx**2).clamp_min(0), (filt(y * y) - my**2).clamp_min(0)
    cov = filt(x * y) - mx * my
    c1, c2 = SSIM_K1**2, SSIM_K2**2
    m = ((2 * mx * my + c1) * (2 * cov + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
    return m.flatten(1).mean(1)


def timed(fn, *args) -> tuple[float, float]:
    w, c = time.perf_counter(), time.process_time()
    with torch.no_grad():
        fn(*args)
    return time.perf_counter() - w, time.process_time() - c


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--append", action="store_true", help="append the section to BENCHMARKS.md")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    gen = torch.Generator().manual_seed(0)
    lines = ["| image | SSIM 2-D baseline ms | SSIM ours ms | baseline/ours (wall) | baseline/ours (CPU time) "
             "| LPIPS-alex ms | FID features ms |", "|---|---|---|---|---|---|---|"]
    lp, inc = LPIPS("alex").eval(), FIDInceptionV3().eval()
    for size in (256, 512, 1024):
        x = torch.rand(1, 3, size, size, generator=gen)
        y = (x + 0.05 * torch.rand(1, 3, size, size, generator=gen)).clamp(0, 1)
        assert torch.allclose(ssim(x, y), ssim_direct_2d(x, y), atol=1e-12)
        runs = {"base": [], "ours": [], "lpips": [], "fid": []}
        for _ in range(args.repeats):  # interleaved
            runs["base"].append(timed(ssim_direct_2d, x, y))
            runs["ours"].append(timed(ssim, x, y))
            runs["lpips"].append(timed(lp, x, y))
            runs["fid"].append(timed(inc, x))
        med = {k: (statistics.median(r[0] for r in v) * 1e3, statistics.median(r[1] for r in v) * 1e3)
               for k, v in runs.items()}
        (bw, bc), (ow, oc) = med["base"], med["ours"]
        lines.append(f"| {size}² | {bw:.0f} | {ow:.0f} | {bw / ow:.1f}x | {bc / oc:.1f}x "
                     f"| {med['lpips'][0]:.0f} | {med['fid'][0]:.0f} |")
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    section = "\n".join([
        "", "## Metrics: SSIM, LPIPS, FID features (CPU)", "",
        f"`PYTHONPATH=src OMP_NUM_THREADS={args.threads} python bench/metrics.py --threads {args.threads} "
        f"--repeats {args.repeats} --append` ({stamp}; torch {torch.__version__}; {platform.machine()}; "
        f"{args.threads} thread(s); no GPU).", "", *lines, "",
        f"Milliseconds per image (batch 1), median of {args.repeats} interleaved runs; SSIM in float64 (both agree "
        f"to 1e-12); LPIPS and FID columns are ours only (random weights; the FID network resizes to 299² first). "
        f"The machine is shared with other jobs (load average {load} at the end), so absolute times are noisy; "
        "the ratios come from the same run.", ""])
    print(section)
    if args.append:
        with open(Path(__file__).resolve().parents[1] / "BENCHMARKS.md", "a", encoding="utf-8") as fh:
            fh.write(section)


if __name__ == "__main__":
    main()
