"""Speed and peak memory of `clean` (MAResU-Net, 26.3 M) vs EOGI's deghosting network (174.2 M).

Each (network, size, precision) case runs in a fresh subprocess so its peak memory is its own:
peak resident memory (CPU) or ``torch.cuda.max_memory_allocated`` (GPU). Both networks carry
random weights — speed does not depend on the values. blendfix is timed through
``Cleaner.run_network`` (padding, [F, I] assembly, crop included); EOGI through its forward,
which area-downsamples the fused image to 128 and re-synthesises it with StyleGAN2.

    python bench/clean.py --sizes 256 512 1024 --threads 2 --repeats 3 --append
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def run_case(net_name: str, size: int, precision: str, device: str, repeats: int, threads: int) -> dict:
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    dev = torch.device(device)
    dtype = {"fp32": torch.float32, "fp16": torch.float16}[precision]
    if net_name == "blendfix":
        from blendfix.cleaning import CleanConfig, Cleaner
        from blendfix.nets.maresunet import MAResUNet

        cleaner = Cleaner(CleanConfig(device=device, precision=precision, tile=4096), network=MAResUNet())
        model = cleaner.net
        orig, fused = torch.rand(1, 3, size, size), torch.rand(1, 3, size, size)

        def step() -> None:
            cleaner.run_network(orig, fused)
    else:
        sys.path.insert(0, str(ROOT / "bench"))
        from eogi_deghosting import EOGIDeghosting

        model = EOGIDeghosting(128, size).to(dev).eval()
        x = torch.rand(1, 3, size, size, device=dev) * 2 - 1

        @torch.no_grad()
        def step() -> None:
            with torch.autocast(dev.type, dtype=dtype, enabled=dtype != torch.float32):
                model(x).float().cpu()
    params = sum(p.numel() for p in model.parameters())
    step()  # warm-up
    if dev.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        step()
        if dev.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    times.sort()
    peak = (torch.cuda.max_memory_allocated() if dev.type == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    return {"net": net_name, "size": size, "precision": precision, "device": device, "params": params,
            "seconds": times[len(times) // 2], "peak_bytes": peak}


def _sub(args: argparse.Namespace, net: str, size: int, precision: str, device: str) -> dict:
    cmd = [sys.executable, __file__, "--case", net, str(size), precision, device,
           "--repeats", str(args.repeats), "--threads", str(args.threads)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def table(rows: list[dict]) -> str:
    lines = ["| size | device | precision | blendfix img/s | EOGI img/s | EOGI/blendfix time | "
             "blendfix peak MiB | EOGI peak MiB |", "|---|---|---|---|---|---|---|---|"]
    keyed = {(r["net"], r["size"], r["device"], r["precision"]): r for r in rows}
    for (net, size, device, precision), r in keyed.items():
        if net != "blendfix":
            continue
        e = keyed[("eogi", size, device, precision)]
        lines.append(f"| {size}² | {device} | {precision} | {1 / r['seconds']:.3f} | {1 / e['seconds']:.3f} | "
                     f"{e['seconds'] / r['seconds']:.2f}x | {r['peak_bytes'] / 2**20:.0f} | "
                     f"{e['peak_bytes'] / 2**20:.0f} |")
    b = next(r for r in rows if r["net"] == "blendfix")
    e = max((r for r in rows if r["net"] == "eogi"), key=lambda r: r["size"])
    lines.append(f"\nParameters: blendfix MAResU-Net {b['params']:,}; EOGI deghosting at {e['size']}² "
                 f"{e['params']:,} (encoder + decoder + frozen StyleGAN2).")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[256, 512, 1024])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--append", action="store_true", help="append the table to BENCHMARKS.md")
    ap.add_argument("--case", nargs=4, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.case:
        net, size, precision, device = args.case
        print(json.dumps(run_case(net, int(size), precision, device, args.repeats, args.threads)))
        return
    configs = [("cpu", "fp32")]
    if torch.cuda.is_available():
        configs += [("cuda", "fp32"), ("cuda", "fp16")]
    rows = []
    for device, precision in configs:
        for size in args.sizes:
            for net in ("blendfix", "eogi"):
                rows.append(_sub(args, net, size, precision, device))
                print(f"{net} {size} {device} {precision}: {rows[-1]['seconds']:.3f} s", file=sys.stderr)
    text = table(rows)
    print(text)
    if args.append:
        stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        cmd = "python bench/clean.py " + " ".join(sys.argv[1:])
        section = (f"\n## Clean: blendfix vs EOGI deghosting\n\n`{cmd}` ({stamp}; torch {torch.__version__}; "
                   f"{platform.machine()}; {args.threads} thread(s); median of {args.repeats}; batch 1)\n\n{text}\n\n"
                   "Peak memory: resident set of the case's own process on CPU (includes Python and torch), "
                   "`max_memory_allocated` on CUDA. Random weights; EOGI is rebuilt from public facts "
                   "(bench/eogi_deghosting.py) for timing only. The machine was shared with other jobs.\n")
        with open(ROOT / "BENCHMARKS.md", "a") as fh:
            fh.write(section)


if __name__ == "__main__":
    main()
