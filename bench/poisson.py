"""Benchmark: blendfix's torch Poisson clone vs OpenCV's seamlessClone (NORMAL_CLONE), per image.

Face-shaped (elliptical) masks, slightly different per image (so a batch holds different rectangle
sizes, as real face masks do); smooth random images. OpenCV is timed as one cv2.seamlessClone call per
image (mask copied, bbox center); torch as one ``seamless_clone`` call on the (B, 3, S, S) float batch
(``torch.no_grad``). Both use the same thread count. Each measurement is the median of ``--repeats``
runs, OpenCV and torch interleaved so that load changes hit both.

    PYTHONPATH=src python bench/poisson.py --threads 1 --append
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from blendfix.blend import seamless_clone


def make_inputs(size: int, batch: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    imgs = []
    for _ in range(2 * batch):
        noise = rng.normal(size=(size // 8, size // 8, 3)).astype(np.float32)
        img = cv2.resize(noise, (size, size), interpolation=cv2.INTER_CUBIC)
        imgs.append(np.clip((img - img.min()) / (img.max() - img.min()) * 255, 0, 255).astype(np.uint8))
    masks = []
    for _ in range(batch):
        j = rng.uniform(-0.02, 0.02, 4) * size
        m = np.zeros((size, size), np.uint8)
        cv2.ellipse(m, (int(size / 2 + j[0]), int(0.55 * size + j[1])),
                    (int(0.3 * size + j[2]), int(0.4 * size + j[3])), 0, 0, 360, 255, -1)
        masks.append(m)
    return np.stack(imgs[:batch]), np.stack(imgs[batch:]), np.stack(masks)


def time_opencv(src: np.ndarray, dst: np.ndarray, masks: np.ndarray) -> tuple[float, float]:
    """(wall, process CPU) seconds per image."""
    t0, c0 = time.perf_counter(), time.process_time()
    for s, d, m in zip(src, dst, masks, strict=True):
        x, y, w, h = cv2.boundingRect(m)
        cv2.seamlessClone(s, d, m.copy(), (x + w // 2, y + h // 2), cv2.NORMAL_CLONE)
    return (time.perf_counter() - t0) / len(src), (time.process_time() - c0) / len(src)


def time_torch(src: torch.Tensor, dst: torch.Tensor, mask: torch.Tensor) -> tuple[float, float]:
    """(wall, process CPU) seconds per image."""
    sync = torch.cuda.synchronize if src.is_cuda else (lambda: None)
    sync()
    t0, c0 = time.perf_counter(), time.process_time()
    with torch.no_grad():
        seamless_clone(src, dst, mask)
    sync()
    return (time.perf_counter() - t0) / src.shape[0], (time.process_time() - c0) / src.shape[0]


def to_tensors(src: np.ndarray, dst: np.ndarray, masks: np.ndarray, device: str):
    t = lambda a: torch.from_numpy(a).permute(0, 3, 1, 2).float().div(255).to(device)  # noqa: E731
    return t(src), t(dst), torch.from_numpy(masks)[:, None].float().div(255).to(device)


def run(sizes: list[int], batches: list[int], repeats: int, cuda: bool) -> list[dict]:
    rows = []
    for size in sizes:
        for batch in batches:
            src, dst, masks = make_inputs(size, batch)
            cpu = to_tensors(src, dst, masks, "cpu")
            gpu = to_tensors(src, dst, masks, "cuda") if cuda else None
            time_opencv(src[:1], dst[:1], masks[:1])  # warm-up (allocations, plans, caches)
            time_torch(*cpu)
            if gpu:
                time_torch(*gpu)
            t_cv, t_cpu, t_gpu = [], [], []
            for _ in range(repeats):
                t_cv.append(time_opencv(src, dst, masks))
                t_cpu.append(time_torch(*cpu))
                if gpu:
                    t_gpu.append(time_torch(*gpu))
            x, y, w, h = cv2.boundingRect(masks[0])
            med = lambda ts, i: 1000 * statistics.median(t[i] for t in ts)  # noqa: E731
            row = {"size": size, "batch": batch, "rect": f"{w}x{h}",
                   "opencv_ms": med(t_cv, 0), "torch_ms": med(t_cpu, 0),
                   "opencv_cpu_ms": med(t_cv, 1), "torch_cpu_ms": med(t_cpu, 1)}
            if gpu:
                row["cuda_ms"] = med(t_gpu, 0)
            rows.append(row)
            print(row, flush=True)
    return rows


def table(rows: list[dict]) -> str:
    cuda = "cuda_ms" in rows[0]
    head = ("| image | batch | rect (1st) | OpenCV ms/img | torch CPU ms/img | OpenCV/torch CPU "
            "| OpenCV/torch, process CPU time |")
    sep = "|---|---|---|---|---|---|---|"
    if cuda:
        head += " torch CUDA ms/img | OpenCV/torch CUDA |"
        sep += "---|---|"
    lines = [head, sep]
    for r in rows:
        line = (f"| {r['size']}² | {r['batch']} | {r['rect']} | {r['opencv_ms']:.1f} | {r['torch_ms']:.1f} | "
                f"{r['opencv_ms'] / r['torch_ms']:.2f}x | {r['opencv_cpu_ms'] / r['torch_cpu_ms']:.2f}x "
                f"({r['opencv_cpu_ms']:.1f} / {r['torch_cpu_ms']:.1f} ms) |")
        if cuda:
            line += f" {r['cuda_ms']:.2f} | {r['opencv_ms'] / r['cuda_ms']:.0f}x |"
        lines.append(line)
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[256, 512, 1024])
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 16])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--append", action="store_true", help="append the table to BENCHMARKS.md")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    cuda = torch.cuda.is_available()
    rows = run(args.sizes, args.batches, args.repeats, cuda)
    md = table(rows)
    print(md)
    if args.append:
        cpu = platform.processor() or platform.machine()
        model = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                      if ln.startswith("model name")), cpu) if Path("/proc/cpuinfo").exists() else cpu
        load = " / ".join(f"{v:.1f}" for v in __import__("os").getloadavg())
        cmd = (f"PYTHONPATH=src OMP_NUM_THREADS={args.threads} python bench/poisson.py --threads {args.threads} "
               f"--repeats {args.repeats} --append")
        section = (
            f"\n## Poisson blending\n\n"
            f"`{cmd}` ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; torch {torch.__version__}, "
            f"OpenCV {cv2.__version__}; {model}; torch and OpenCV both at {args.threads} thread(s); "
            f"{'CUDA: ' + torch.cuda.get_device_name() if cuda else 'no GPU on this machine'}).\n\n"
            f"{md}\n\n"
            f"Per-image wall-clock milliseconds (and, last column, process CPU time, less sensitive to other "
            f"jobs), median of {args.repeats} interleaved runs; torch = "
            f"`seamless_clone` on the whole (B, 3, S, S) batch divided by B, OpenCV = one `cv2.seamlessClone` "
            f"per image. The machine is shared with other jobs (load average {load} at the end of the run), "
            f"so absolute times are noisy; the ratios come from the same run. Times depend on the rectangle "
            f"size (FFT lengths with large prime factors are slower, for both libraries); a batch's images are "
            f"grouped by rectangle size, here all sizes differ, so the batch-16 rows solve one image at a time.\n"
        )
        with open("BENCHMARKS.md", "a", encoding="utf-8") as fh:
            fh.write(section)


if __name__ == "__main__":
    main()
