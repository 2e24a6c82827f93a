"""Synthesis throughput: photos per second at several resolutions and where the time goes.

    PYTHONPATH=src OMP_NUM_THREADS=1 python bench/synth.py --faces ../shared/data/faces \
        --sizes 256 512 1024 --photos 8 --poisson opencv torch --workers 2

For each size, the synthetic-editor pipeline (``blendfix.synth.pipeline.PhotoPipeline``) makes
``--photos`` items in this process (one warm-up photo first, not counted) and the seconds per stage
(read, landmarks, edit, parsing, poisson, write) are summed. Then ``blendfix synth`` is run in a
fresh process at the first size on ``--worker-photos`` photos with 1 and with ``--workers``
processes, timed whole (start-up included) and in steady state, as ratios (same run, same machine).
Prints Markdown. Photos are the 1024² ones in the folder (sorted by path), so every size is a
downscale.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

from blendfix.io import read_image  # noqa: E402
from blendfix.synth.config import SynthConfig, item_id, item_seed  # noqa: E402
from blendfix.synth.pipeline import PhotoPipeline  # noqa: E402
from blendfix.synth.runner import Task, discover  # noqa: E402

STAGES = ("read", "landmarks", "edit", "parsing", "poisson", "write")


def pick_photos(faces: Path, count: int, side: int = 1024) -> list[tuple[Path, str]]:
    out = []
    for path, rel in discover(faces):
        if read_image(path).shape[:2] == (side, side):
            out.append((path, rel))
        if len(out) == count + 1:
            break
    if len(out) < count + 1:
        sys.exit(f"need {count + 1} photos of {side}x{side} under {faces}, found {len(out)}")
    return out


def bench_size(photos: list[tuple[Path, str]], size: int, poisson: str) -> dict[str, float]:
    cfg = SynthConfig(resolution=size, poisson=poisson)
    pipe = PhotoPipeline(cfg, {})
    totals = dict.fromkeys(STAGES, 0.0)
    made, wall = 0, 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for n, (path, rel) in enumerate(photos):
            task = Task(str(path), rel, str(path), item_id(rel), item_seed(0, rel), "smile")
            folder = Path(tmp) / f"{n}"
            folder.mkdir()
            start = time.perf_counter()
            try:
                _, t = pipe(task, folder)
            except ValueError as e:  # a photo without a face at this size: reported, not counted
                print(f"  {rel} at {size}: skipped ({e})", file=sys.stderr)
                continue
            if n == 0:
                continue  # warm-up
            wall += time.perf_counter() - start
            made += 1
            for k in STAGES:
                totals[k] += t.get(k, 0.0)
    return {"photos": made, "wall": wall, **totals}


def bench_workers(photos: list[tuple[Path, str]], size: int, workers: int,
                  poisson: str) -> dict[int, tuple[float, float]]:
    """``blendfix synth`` in a fresh process with 1 and ``workers`` workers on the same photos:
    (photos/s over the whole command, start-up included; steady photos/s between the first and the
    last finished item, from the item folders' modification times)."""
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "photos"
        src.mkdir()
        for path, rel in photos:
            (src / rel.replace("/", "_")).symlink_to(path.resolve())
        rates = {}
        for w in (1, workers):
            out = Path(tmp) / f"out{w}"
            cmd = [sys.executable, "-m", "blendfix.cli", "synth", "-i", str(src), "-o", str(out),
                   "--resolution", str(size), "--poisson", poisson, "--workers", str(w)]
            start = time.perf_counter()
            subprocess.run(cmd, check=True, capture_output=True)
            whole = len(photos) / (time.perf_counter() - start)
            done = sorted(p.stat().st_mtime for p in (out / "items").iterdir())
            steady = (len(done) - 1) / (done[-1] - done[0]) if len(done) > 1 and done[-1] > done[0] else 0.0
            rates[w] = (whole, steady)
    return rates


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--faces", type=Path, default=Path(os.environ.get("BLENDFIX_SHARED", "../shared")) / "data/faces")
    ap.add_argument("--sizes", type=int, nargs="+", default=[256, 512, 1024])
    ap.add_argument("--photos", type=int, default=8)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--worker-photos", type=int, default=16, help="photos for the 1-vs-N worker comparison")
    ap.add_argument("--poisson", nargs="+", default=["opencv", "torch"], choices=["opencv", "torch"],
                    help="seamless-clone backends to time (rows per backend; the worker comparison uses the first)")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    photos = pick_photos(args.faces, max(args.photos, args.worker_photos))
    sized, photos_all = photos[:args.photos + 1], photos
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch "
          f"{torch.__version__} at 1 thread; {args.photos} photos per row "
          f"(1024² sources) after 1 warm-up\n")
    print("| size | poisson | photos/s | s/photo | " + " | ".join(STAGES) + " |")
    print("|---|---|---|---|" + "---|" * len(STAGES))
    for size in args.sizes:
        for backend in args.poisson:
            r = bench_size(sized, size, backend)
            per = r["wall"] / max(r["photos"], 1)
            split = " | ".join(f"{r[k] / r['wall'] * 100:.0f}% ({r[k] / max(r['photos'], 1) * 1000:.0f} ms)"
                               for k in STAGES)
            print(f"| {size}² | {backend} | {r['photos'] / r['wall']:.2f} | {per:.2f} | {split} |", flush=True)
    if args.workers > 1:
        rates = bench_workers(photos_all, args.sizes[0], args.workers, args.poisson[0])
        (w1, s1), (wn, sn) = rates[1], rates[args.workers]
        print(f"\n`blendfix synth` at {args.sizes[0]}² on {len(photos_all)} photos, fresh process: whole command "
              f"1 worker {w1:.2f} photos/s, {args.workers} workers {wn:.2f} photos/s (x{wn / w1:.2f}); steady "
              f"state (first to last item) 1 worker {s1:.2f}, {args.workers} workers {sn:.2f} photos/s "
              f"(x{sn / s1:.2f})")


if __name__ == "__main__":
    main()
