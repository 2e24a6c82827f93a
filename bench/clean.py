"""Speed, peak memory and runtimes of `clean`: torch eager, torch fp32 and bf16 as `clean` runs them,
onnxruntime (+ int8), a folder run end to end, and EOGI's deghosting network (174.2 M) as the outside
baseline.

Runtimes: ``torch`` = eager PyTorch as a plain script runs the module (NCHW, fp32, BatchNorm
unfolded: the baseline); ``channels_last`` = `clean --runtime torch --precision fp32` (channels_last,
BatchNorm folded, ReLU in place); ``onnxruntime`` = fp32 onnxruntime; ``bf16`` = `clean --precision
bf16` (the channels_last network under bf16 autocast; AMX-BF16 makes it fast, and `--precision auto`
picks it on such CPUs).

Networks: the paper's MAResU-Net (26.3 M, random weights) and a small residual cleaner of the shipped
CPU width (configs/cpu_cleaner.yaml: widths 32/64/128/256, one block per stage, 2.5 M; random weights),
or, with ``--weights``, a trained cleaner in its place. Each (network, size, runtime) case runs in a
fresh subprocess so its peak memory is its own: peak resident memory (CPU) or
``torch.cuda.max_memory_allocated`` (GPU). Networks are timed through ``Cleaner.run_network``
(padding, [F, I] assembly, crop included); EOGI through its forward.

int8: onnxruntime's dynamic quantisation (ConvInteger) of the same graph, and static QDQ quantisation
calibrated on real pairs (small network only: calibrating the 26.3 M one costs minutes); speed, and
quality as the PSNR of the int8 output against the fp32 output on real photo pairs (with ``--weights``
and ``--test-set``: also PSNR against the known truth). Folder run: ``blendfix clean`` on N shared
photos resized to 512² (end to end, pipelined) against the network alone on the same pairs in memory.

    python bench/clean.py --sizes 256 512 1024 --threads 2 --repeats 2 --append
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("BLENDFIX_SHARED", ROOT.parent / "shared"))
SMALL = {"widths": (32, 64, 128, 256), "blocks": (1, 1, 1, 1), "head_width": 32, "residual": True}
RUNTIMES = ("torch", "channels_last", "onnxruntime", "bf16")


def build(net: str, weights: str | None = None) -> torch.nn.Module:
    from blendfix.nets.maresunet import MAResUNet

    torch.manual_seed(0)
    if net == "trained":
        from blendfix.train.export import load_cleaner

        return load_cleaner(weights)
    model = MAResUNet() if net == "paper" else MAResUNet(**SMALL)
    if net == "small":  # a residual net starts at the identity: give its head weights so it computes something
        torch.nn.init.normal_(model.finalconv3.weight, std=0.02)
    return model.eval()


def _peak_rss() -> int:
    """This process's peak resident memory in bytes: VmHWM, which starts afresh at exec (``ru_maxrss``
    does not on Linux: a child inherits the parent's peak, which hid every case smaller than the parent)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # not Linux


def run_case(spec: dict, repeats: int, threads: int) -> dict:
    torch.set_num_threads(threads)
    dev = torch.device(spec["device"])
    size = spec["size"]
    if spec["net"] == "eogi":
        sys.path.insert(0, str(ROOT / "bench"))
        from eogi_deghosting import EOGIDeghosting

        dtype = {"fp32": torch.float32, "fp16": torch.float16}[spec["precision"]]
        model = EOGIDeghosting(128, size).to(dev).eval()
        params = sum(p.numel() for p in model.parameters())
        x = torch.rand(1, 3, size, size, device=dev) * 2 - 1

        @torch.no_grad()
        def step() -> None:
            with torch.autocast(dev.type, dtype=dtype, enabled=dtype != torch.float32):
                model(x).float().cpu()
    else:
        from blendfix.cleaning import CleanConfig, Cleaner

        cfg = {"device": spec["device"], "precision": spec["precision"], "tile": 4096, "threads": threads}
        orig, fused = torch.rand(1, 3, size, size), torch.rand(1, 3, size, size)
        if spec["runtime"] == "torch" and dev.type == "cpu":  # the baseline: the module as a script runs it
            from blendfix.nets.maresunet import network_input, network_output

            model = build(spec["net"], spec.get("weights")).to(dev)
            params = sum(p.numel() for p in model.parameters())

            @torch.no_grad()
            def step() -> None:
                network_output(model(network_input(orig.to(dev), fused.to(dev)))).cpu()
        else:
            if spec["runtime"] in ("torch", "channels_last", "bf16"):  # torch on CUDA: fp32 or fp16 autocast
                cfg.update(runtime="torch", precision="bf16" if spec["runtime"] == "bf16" else spec["precision"])
                cleaner = Cleaner(CleanConfig(**cfg), network=build(spec["net"], spec.get("weights")))
            else:  # an .onnx file: fp32 or quantised
                cleaner = Cleaner(CleanConfig(method="network", weights=spec["onnx"], **cfg))
            params = cleaner.parameters

            def step() -> None:
                cleaner.run_network(orig, fused)
    step()  # warm-up
    if dev.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    times, cpu = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        step()
        if dev.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    times.sort()
    cpu.sort()
    peak = torch.cuda.max_memory_allocated() if dev.type == "cuda" else _peak_rss()
    return {**spec, "params": params, "seconds": times[len(times) // 2], "cpu_seconds": cpu[len(cpu) // 2],
            "peak_bytes": peak}


PARTIAL: dict[str, list] = {"runtime": [], "quant": [], "folder": []}


def _keep(args: argparse.Namespace, part: str, row: dict) -> None:
    """Record a finished row at once (``--rows-out``), so a run stopped half-way still leaves its numbers."""
    PARTIAL[part].append(row)
    if args.rows_out:
        Path(args.rows_out).write_text(json.dumps({**PARTIAL, "load": os.getloadavg()}, indent=1))


def _sub(args: argparse.Namespace, spec: dict) -> dict:
    cmd = [sys.executable, __file__, "--case", json.dumps(spec), "--repeats", str(args.repeats),
           "--threads", str(args.threads)]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode:
        raise RuntimeError(f"case {spec} failed:\n{out.stderr[-3000:]}")
    row = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"{row['net']} {row['size']} {row.get('runtime', '')} {row['device']}: {row['seconds']:.3f} s",
          file=sys.stderr)
    return row


# ----- real pairs: shared photos with a pasted, recoloured region (a visible blending seam) -------------

def photo_pairs(n: int, size: int) -> list[tuple[np.ndarray, np.ndarray]]:
    import cv2

    from blendfix.data.imageset import list_images
    from blendfix.io import read_image

    faces = SHARED / "data" / "faces"
    files = [f for d in sorted(faces.iterdir()) if d.is_dir() for f in sorted(list_images(d))][:n]
    if len(files) < n:
        raise SystemExit(f"{faces}: {len(files)} photos, {n} needed")
    rng = np.random.default_rng(0)
    pairs = []
    yy, xx = np.mgrid[0:size, 0:size] / size
    for f in files:
        img = cv2.resize(read_image(f), (size, size), interpolation=cv2.INTER_AREA).astype(np.float32)
        cy, cx, r = rng.uniform(0.55, 0.75), rng.uniform(0.35, 0.65), rng.uniform(0.12, 0.2)
        m = (((yy - cy) ** 2 + (xx - cx) ** 2) < r * r).astype(np.float32)[..., None]
        edit = np.clip(img * rng.uniform(0.7, 1.2, 3).astype(np.float32) + 0.05, 0, 1)
        pairs.append((img, (edit * m + img * (1 - m)).astype(np.float32)))
    return pairs


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((np.clip(a, 0, 1) - np.clip(b, 0, 1)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(1 / mse)


def quantise(src: Path, pairs: list, static: bool) -> Path:
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_dynamic,
        quantize_static,
    )

    out = src.with_name(src.stem + ("_int8_static" if static else "_int8_dynamic") + ".onnx")
    if not static:
        quantize_dynamic(str(src), str(out), weight_type=QuantType.QInt8)
        return out

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.it = iter([{"x": (np.concatenate([f, o], 2).transpose(2, 0, 1)[None] * 2 - 1).astype(np.float32)}
                            for o, f in pairs])

        def get_next(self) -> dict | None:
            return next(self.it, None)

    quantize_static(str(src), str(out), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    return out


def clean_all(weights: str, pairs: list, threads: int) -> list[np.ndarray]:
    from blendfix.cleaning import CleanConfig, Cleaner

    cleaner = Cleaner(CleanConfig(method="network", weights=weights, threads=threads, batch_size=1))
    return [cleaner([o], [f])[0] for o, f in pairs]


def truth_items(test_set: Path, n: int) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    from blendfix.io import read_image

    items = sorted(p for p in (test_set / "items").iterdir() if (p / "truth.png").is_file())[:n]
    return [(read_image(p / "original.png"), read_image(p / "fused.png"), read_image(p / "truth.png")) for p in items]


def quant_study(args: argparse.Namespace, onnx: dict[str, Path], tmp: Path) -> tuple[list[dict], list[str]]:
    rows, notes = [], []
    pairs = photo_pairs(args.quant_pairs, args.quant_size)
    calib = photo_pairs(4, 256)
    for net, src in onnx.items():
        variants = {"onnxruntime": src, "ort int8 dynamic": quantise(src, calib, static=False)}
        if net != "paper":
            variants["ort int8 static (QDQ)"] = quantise(src, calib, static=True)
        ref = clean_all(str(src), pairs, args.threads)
        truth = truth_items(Path(args.test_set), args.truth_items) if args.test_set and net == "trained" else []
        ref_truth = clean_all(str(src), [(o, f) for o, f, _ in truth], args.threads) if truth else []
        for label, path in variants.items():
            row = _sub(args, {"net": net, "size": args.quant_size, "runtime": label, "device": "cpu",
                              "precision": "fp32", "onnx": str(path)})
            if path != src:
                outs = clean_all(str(path), pairs, args.threads)
                row["psnr_vs_fp32"] = float(np.mean([psnr(a, b) for a, b in zip(outs, ref, strict=True)]))
                if truth:
                    got = clean_all(str(path), [(o, f) for o, f, _ in truth], args.threads)
                    row["truth_fp32"] = float(np.mean([psnr(a, t) for a, (_, _, t) in zip(ref_truth, truth,
                                                                                            strict=True)]))
                    row["truth_int8"] = float(np.mean([psnr(a, t) for a, (_, _, t) in zip(got, truth, strict=True)]))
            rows.append(row)
            _keep(args, "quant", row)
    return rows, notes


def export_folder(net: str, weights: str | None, tmp: Path) -> Path:
    """The network as `blendfix export` writes it (cleaner.safetensors + cleaner.json), for `clean --weights`."""
    from blendfix.train.export import save_cleaner

    return save_cleaner(build(net, weights), tmp / f"export_{net}").parent


def folder_run(args: argparse.Namespace, sources: dict[str, Path], tmp: Path) -> list[dict]:
    """`blendfix clean` on a folder (default runtime and precision: what a user gets) against the same
    Cleaner on the same pairs in memory; both include their batching, the first only its I/O and setup."""
    from blendfix.cleaning import CleanConfig, Cleaner
    from blendfix.cli import main
    from blendfix.io import write_image

    pairs = photo_pairs(args.folder_photos, 512)
    for d in ("o", "f"):
        (tmp / d).mkdir(exist_ok=True)
    for i, (o, f) in enumerate(pairs):
        write_image(tmp / "o" / f"{i:03d}.png", o)
        write_image(tmp / "f" / f"{i:03d}.png", f)
    rows = []
    for net, src in sources.items():
        for precision in args.folder_precisions:
            cleaner = Cleaner(CleanConfig(method="network", weights=str(src), threads=args.threads,
                                          batch_size=args.batch_size, precision=precision))
            e2e, net_only = [], []
            for rep in range(args.folder_repeats):  # alternating, so a slow spell of the machine hits both
                out = tmp / f"out_{net}_{precision}_{rep}"
                t0 = time.perf_counter()
                code = main(["clean", "-i", str(tmp / "o"), "--fused", str(tmp / "f"), "-o", str(out), "--weights",
                             str(src), "--threads", str(args.threads), "--batch-size", str(args.batch_size),
                             "--precision", precision])
                e2e.append(time.perf_counter() - t0)
                assert code == 0, f"clean failed on the folder run ({net}, {precision})"
                t0 = time.perf_counter()
                for k in range(0, len(pairs), args.batch_size):
                    chunk = pairs[k:k + args.batch_size]
                    cleaner([o for o, _ in chunk], [f for _, f in chunk])
                net_only.append(time.perf_counter() - t0)
            rows.append({"net": net, "images": len(pairs), "e2e": float(np.median(e2e)),
                         "network": float(np.median(net_only)), "e2e_all": e2e, "network_all": net_only,
                         "runtime": cleaner.runtime_name, "precision": str(cleaner.dtype).replace("torch.", "")})
            _keep(args, "folder", rows[-1])
            print(f"folder {net} {precision}: end to end {e2e} s, network only {net_only} s", file=sys.stderr)
    return rows


# ----- tables -------------------------------------------------------------------------------------------

def runtime_table(rows: list[dict]) -> str:
    lines = ["| network | size | device | runtime | s/img | img/s | × torch eager | CPU s/img | × torch eager (CPU) | "
             "EOGI time / this (wall / CPU) | peak MiB |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    eogi = {(r["size"], r["device"], r["precision"]): r for r in rows if r["net"] == "eogi"}
    eager = {(r["net"], r["size"], r["device"], r["precision"]): r for r in rows if r.get("runtime") == "torch"}
    for r in rows:
        if r["net"] == "eogi":
            continue
        k = (r["size"], r["device"], r["precision"])
        base = eager.get((r["net"], *k))
        e = eogi.get(k)
        speed = f"{base['seconds'] / r['seconds']:.2f}x" if base else "-"
        cpu_speed = f"{base['cpu_seconds'] / r['cpu_seconds']:.2f}x" if base else "-"
        vs_eogi = f"{e['seconds'] / r['seconds']:.1f}x / {e['cpu_seconds'] / r['cpu_seconds']:.1f}x" if e else "-"
        lines.append(f"| {r['net']} | {r['size']}² | {r['device']} {r['precision']} | {r['runtime']} | "
                     f"{r['seconds']:.3f} | {1 / r['seconds']:.2f} | {speed} | {r['cpu_seconds']:.3f} | {cpu_speed} | "
                     f"{vs_eogi} | {r['peak_bytes'] / 2**20:.0f} |")
    for k, e in eogi.items():
        lines.append(f"| EOGI deghosting | {k[0]}² | {k[1]} {k[2]} | torch | {e['seconds']:.3f} | "
                     f"{1 / e['seconds']:.2f} | - | {e['cpu_seconds']:.3f} | - | 1.0x | "
                     f"{e['peak_bytes'] / 2**20:.0f} |")
    params = {r["net"]: r["params"] for r in rows}
    lines.append("\nParameters: " + "; ".join(f"{n} {p:,}" for n, p in params.items()) + ".")
    return "\n".join(lines)


def quant_table(rows: list[dict]) -> str:
    lines = ["| network | size | runtime | s/img | × fp32 onnxruntime | CPU s/img | × fp32 (CPU) | "
             "PSNR vs fp32 output (dB) | PSNR vs truth fp32 → int8 (dB) | peak MiB |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    fp32 = {r["net"]: r for r in rows if r["runtime"] == "onnxruntime"}
    for r in rows:
        base = fp32[r["net"]]
        truth = f"{r['truth_fp32']:.2f} → {r['truth_int8']:.2f}" if "truth_int8" in r else "-"
        q = f"{r['psnr_vs_fp32']:.1f}" if "psnr_vs_fp32" in r else "-"
        lines.append(f"| {r['net']} | {r['size']}² | {r['runtime']} | {r['seconds']:.3f} | "
                     f"{base['seconds'] / r['seconds']:.2f}x | {r['cpu_seconds']:.3f} | "
                     f"{base['cpu_seconds'] / r['cpu_seconds']:.2f}x | {q} | {truth} | {r['peak_bytes'] / 2**20:.0f} |")
    return "\n".join(lines)


def folder_table(rows: list[dict]) -> str:
    lines = ["| network | runtime | images (512²) | end to end img/s | network only img/s | "
             "end-to-end / network time |", "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['net']} | {r.get('runtime', 'onnxruntime')} {r.get('precision', 'float32')} | "
                     f"{r['images']} | {r['images'] / r['e2e']:.2f} | "
                     f"{r['images'] / r['network']:.2f} | {r['e2e'] / r['network']:.2f} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[256, 512, 1024])
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--weights", default=None, help="a trained cleaner (run folder, export, checkpoint) instead "
                                                    "of the random small one")
    ap.add_argument("--test-set", default=None, help="with --weights: a synth set with truth.png, for PSNR vs truth")
    ap.add_argument("--truth-items", type=int, default=48)
    ap.add_argument("--quant-size", type=int, default=512)
    ap.add_argument("--quant-pairs", type=int, default=8)
    ap.add_argument("--folder-photos", type=int, default=100)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--folder-repeats", type=int, default=3, help="folder runs (and network-only passes): medians")
    ap.add_argument("--folder-precisions", nargs="+", default=["auto", "fp32"],
                    help="folder runs with these --precision values (auto = what a user gets)")
    ap.add_argument("--no-eogi", action="store_true")
    ap.add_argument("--eogi-sizes", type=int, nargs="+", default=None, help="EOGI only at these sizes")
    ap.add_argument("--folder-nets", nargs="+", default=None, help="folder run only for these networks")
    ap.add_argument("--no-paper", action="store_true", help="skip the 26.3 M network (a quick check of the script)")
    ap.add_argument("--append", action="store_true", help="append the tables to BENCHMARKS.md")
    ap.add_argument("--rows-out", default=None, help="keep every finished row in this JSON file as the run goes")
    ap.add_argument("--case", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.case:
        print(json.dumps(run_case(json.loads(args.case), args.repeats, args.threads)))
        return
    from blendfix.runtime import export_raw

    load_start = os.getloadavg()
    started = time.perf_counter()
    nets = ([] if args.no_paper else ["paper"]) + ["trained" if args.weights else "small"]
    tmp = Path(tempfile.mkdtemp(prefix="blendfix-bench-"))
    os.environ["BLENDFIX_WEIGHTS"] = str(tmp / "weights")  # graph cache of the folder runs stays here
    onnx = {}
    for net in nets:
        onnx[net] = tmp / f"{net}.onnx"
        onnx[net].write_bytes(export_raw(build(net, args.weights), net))
    configs = [("cpu", "fp32")] + ([("cuda", "fp32"), ("cuda", "fp16")] if torch.cuda.is_available() else [])
    rows = []
    for device, precision in configs:
        for size in args.sizes:
            for net in nets:
                for runtime in RUNTIMES if device == "cpu" else ("torch",):
                    rows.append(_sub(args, {"net": net, "size": size, "runtime": runtime, "device": device,
                                            "precision": precision, "weights": args.weights,
                                            "onnx": str(onnx[net])}))
                    _keep(args, "runtime", rows[-1])
            if not args.no_eogi and (args.eogi_sizes is None or size in args.eogi_sizes):
                rows.append(_sub(args, {"net": "eogi", "size": size, "device": device, "precision": precision}))
                _keep(args, "runtime", rows[-1])
    folder_nets = [n for n in nets if args.folder_nets is None or n in args.folder_nets]
    frows = folder_run(args, {n: export_folder(n, args.weights, tmp) for n in folder_nets}, tmp)
    qrows = quant_study(args, onnx, tmp)[0] if args.quant_pairs > 0 else []
    load_end = os.getloadavg()
    cmd = "python bench/clean.py " + " ".join(sys.argv[1:])
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    head = (f"`{cmd}` ({stamp}; torch {torch.__version__}; onnxruntime {__import__('onnxruntime').__version__}; "
            f"{platform.machine()}; {args.threads} thread(s); median of {args.repeats} after a warm-up; batch 1; "
            f"load average {load_start[0]:.1f} / {load_start[1]:.1f} at the start, {load_end[0]:.1f} / "
            f"{load_end[1]:.1f} at the end (1 / 5 min); {time.perf_counter() - started:.0f} s in all)")
    from blendfix.device import cpu_bf16_native

    quant = (f"int8 quantisation ({args.quant_pairs} shared photo pairs at {args.quant_size}², calibration on 4 "
             f"others at 256²):\n\n{quant_table(qrows)}\n\n") if qrows else ""
    text = (f"{head}; AMX-BF16: {'yes' if cpu_bf16_native() else 'no'}\n\n{runtime_table(rows)}\n\n{quant}"
            f"Folder run (`blendfix clean --precision {'/'.join(args.folder_precisions)}`, batch {args.batch_size}, "
            f"{args.threads} threads; medians of {args.folder_repeats} alternating runs):\n\n{folder_table(frows)}\n")
    print(text)
    (tmp / "rows.json").write_text(json.dumps({"runtime": rows, "quant": qrows, "folder": frows}, indent=1))
    print(f"raw rows: {tmp / 'rows.json'}", file=sys.stderr)
    if args.append:
        with open(ROOT / "BENCHMARKS.md", "a") as fh:
            title = "Clean: runtimes (torch, channels_last, onnxruntime, bf16, int8), folder run, EOGI"
            fh.write(f"\n## {title}\n\n{text}")


if __name__ == "__main__":
    main()
