"""Benchmark: StyleGAN2 generator / discriminator forward time on this machine, per image.

Random weights (speed does not depend on the values), W+ input with the stored noise maps, eval mode,
``torch.no_grad``. Our FIR filter (``upfirdn2d``) is one depthwise (grouped) convolution; the
baseline, measured in the same run at 256x256, filters every channel as a separate image through a
single-channel convolution (the layout the reference CPU formula uses). Each figure is the median of
``--repeats`` runs, ours and baseline interleaved.

    PYTHONPATH=src OMP_NUM_THREADS=1 python bench/stylegan2.py --threads 1 --append
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from pathlib import Path

import torch

from blendfix.nets import stylegan2_ops
from blendfix.nets.stylegan2 import Discriminator, Generator

OURS = stylegan2_ops.upfirdn2d


def per_channel_upfirdn2d(x: torch.Tensor, kernel: torch.Tensor, up: int = 1, down: int = 1,
                          pad: tuple[int, int] = (0, 0)) -> torch.Tensor:
    """Baseline: the same filter with channels folded into the batch and a (1, 1, kh, kw) kernel."""
    b, c, h, w = x.shape
    y = OURS(x.reshape(b * c, 1, h, w), kernel, up=up, down=down, pad=pad)
    return y.reshape(b, c, y.shape[-2], y.shape[-1])


def timed(fn, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def run(size: int, batch: int, repeats: int, baseline: bool) -> dict[str, float]:
    torch.manual_seed(0)
    g, d = Generator(size).eval(), Discriminator(size).eval()
    w = torch.randn(batch, g.n_latent, 512)
    img = torch.rand(batch, 3, size, size) * 2 - 1
    jobs = {"G": lambda: g([w], input_is_latent=True, randomize_noise=False),
            "D": lambda: d(img)}
    res: dict[str, float] = {}
    with torch.no_grad():
        for name, job in jobs.items():
            ours, base = [], []
            for _ in range(repeats):
                stylegan2_ops.upfirdn2d = OURS
                ours += timed(job, 1)
                if baseline:
                    stylegan2_ops.upfirdn2d = per_channel_upfirdn2d
                    base += timed(job, 1)
            stylegan2_ops.upfirdn2d = OURS
            res[name] = statistics.median(ours) / batch
            if baseline:
                res[name + "_base"] = statistics.median(base) / batch
    return res


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--append", action="store_true", help="append the table to BENCHMARKS.md")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    rows = ["| model | size | batch | ours s/img | per-channel FIR s/img | baseline/ours |",
            "|---|---|---|---|---|---|"]
    for size, batch, baseline in ((256, 1, True), (1024, 1, False)):
        r = run(size, batch, args.repeats, baseline)
        for m in ("G", "D"):
            base = f"{r[m + '_base']:.2f}" if baseline else "-"
            ratio = f"{r[m + '_base'] / r[m]:.2f}x" if baseline else "-"
            rows.append(f"| {m} | {size}² | {batch} | {r[m]:.2f} | {base} | {ratio} |")
            print(rows[-1], flush=True)
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    cpu = platform.processor() or platform.machine()
    text = (f"\n## StyleGAN2 forward (CPU)\n\n`PYTHONPATH=src OMP_NUM_THREADS={args.threads} python bench/stylegan2.py "
            f"--threads {args.threads} --repeats {args.repeats} --append` ({when}; torch {torch.__version__}; {cpu}; "
            f"{args.threads} thread(s); no GPU).\n\n" + "\n".join(rows)
            + "\n\nG = Generator(size) from W+ with stored noise; D = Discriminator(size). Seconds per image, "
            f"median of {args.repeats}. The machine is shared with other jobs (load average {load} at the end), so "
            "absolute times are noisy; the ratios come from the same run.\n")
    print(text)
    if args.append:
        with Path("BENCHMARKS.md").open("a") as fh:
            fh.write(text)


if __name__ == "__main__":
    main()
