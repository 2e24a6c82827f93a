"""What bf16 (and int8) cost in quality: a cleaner's scores against the known truth in fp32, bf16 and int8.

For every item of a synth test set with ``truth.png`` (``blendfix synth --editor mixed``), the cleaner
runs on (I, F) in

* ``fp32``: PyTorch, float32 (the reference);
* ``bf16``: PyTorch under bf16 autocast, as ``clean --precision bf16`` runs it (and ``--precision
  auto`` on a CPU with AMX-BF16);
* ``int8`` (``--int8``): onnxruntime static QDQ quantisation (uint8 activations, per-channel int8
  weights), calibrated on ``--calibration`` items (a *training* set: never the test set).

Each output is rounded to 8 bits as ``clean`` writes it, then scored as ``evaluate`` scores it
(:func:`blendfix.metrics.artifacts.score_image`: PSNR vs truth, seam, edit kept), plus its PSNR
against the fp32 output. Issue 14's rule for shipping a reduced precision: PSNR vs truth drops by
less than 0.1 dB and the seam score rises by less than 0.02.

    PYTHONPATH=src python bench/precision_quality.py TEST_SET [--weights W] [--int8 --calibration TRAIN_SET]
        [--items N] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

from blendfix.cleaning import DEFAULT_WEIGHTS, CleanConfig, Cleaner
from blendfix.data import layout
from blendfix.io import read_image, read_mask
from blendfix.metrics.artifacts import score_image
from blendfix.nets.maresunet import network_input, network_output
from blendfix.tensors import image_to_tensor, tensor_to_image

KEYS = ("psnr_truth", "seam", "edit_kept", "psnr_vs_fp32")


def items_of(folder: Path, n: int | None) -> list[Path]:
    items = sorted(p for p in (folder / layout.ITEMS).iterdir() if (p / layout.TRUTH).is_file())
    if not items:
        raise SystemExit(f"{folder}: no items with {layout.TRUTH}; make one with `blendfix synth --editor mixed`")
    return items[:n] if n else items


def int8_runner(weights: str, calibration: Path, n: int):
    """The cleaner's graph quantised (static QDQ) on ``n`` calibration items; returns ``(I, F) -> out``."""
    import onnxruntime as ort
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from blendfix.cleaning import load_network
    from blendfix.runtime import export_raw

    tmp = Path(tempfile.mkdtemp(prefix="blendfix-int8-"))
    (tmp / "fp32.onnx").write_bytes(export_raw(load_network(weights, torch.device("cpu"))))
    quant_pre_process(str(tmp / "fp32.onnx"), str(tmp / "pre.onnx"), skip_symbolic_shape=True)
    pool = items_of(calibration, None)
    cal = pool[:: max(1, len(pool) // n)][:n]

    def x_of(item: Path) -> np.ndarray:
        i, f = (image_to_tensor(read_image(item / name)) for name in (layout.ORIGINAL, layout.FUSED))
        return network_input(i, f).numpy()

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.todo = iter(cal)

        def get_next(self) -> dict | None:
            item = next(self.todo, None)
            return None if item is None else {"x": x_of(item)}

    quantize_static(str(tmp / "pre.onnx"), str(tmp / "int8.onnx"), Reader(), quant_format=QuantFormat.QDQ,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, per_channel=True)
    session = ort.InferenceSession(str(tmp / "int8.onnx"), providers=["CPUExecutionProvider"])

    def run(original: np.ndarray, fused: np.ndarray) -> np.ndarray:
        x = network_input(image_to_tensor(original), image_to_tensor(fused)).numpy()
        return tensor_to_image(network_output(torch.from_numpy(session.run(None, {"x": x})[0])))[0]

    return run


def summary(rows: dict[str, list[dict[str, float]]]) -> dict[str, dict[str, float]]:
    out = {}
    for mode, scores in rows.items():
        values = {k: [s[k] for s in scores if k in s and math.isfinite(s[k])] for k in KEYS}
        out[mode] = {k: float(np.mean(v)) if v else math.nan for k, v in values.items()}
        out[mode]["items"] = len(scores)
    return out


def table(means: dict[str, dict[str, float]]) -> str:
    ref = means["fp32"]
    lines = ["| precision | PSNR vs truth (dB) | Δ vs fp32 | seam | Δ vs fp32 | edit kept | PSNR vs fp32 output (dB) |",
             "|---|---|---|---|---|---|---|"]
    for mode, m in means.items():
        vs = "-" if mode == "fp32" else f"{m['psnr_vs_fp32']:.1f}"
        lines.append(f"| {mode} | {m['psnr_truth']:.3f} | {m['psnr_truth'] - ref['psnr_truth']:+.3f} | "
                     f"{m['seam']:.3f} | {m['seam'] - ref['seam']:+.3f} | {m['edit_kept']:.3f} | {vs} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("test_set", type=Path)
    ap.add_argument("--weights", default=DEFAULT_WEIGHTS)
    ap.add_argument("--items", type=int, default=None, help="the first N items only")
    ap.add_argument("--int8", action="store_true", help="also onnxruntime static int8 (needs --calibration)")
    ap.add_argument("--calibration", type=Path, default=None, help="a training synth set for int8 calibration")
    ap.add_argument("--calibration-items", type=int, default=24)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    if args.int8 and args.calibration is None:
        raise SystemExit("--int8 needs --calibration TRAIN_SET (never calibrate on the test set)")
    runners = {precision: Cleaner(CleanConfig(method="network", weights=args.weights, runtime="torch",
                                              precision=precision, batch_size=1))
               for precision in ("fp32", "bf16")}
    run = {k: (lambda o, f, c=c: c([o], [f])[0]) for k, c in runners.items()}
    if args.int8:
        run["int8"] = int8_runner(args.weights, args.calibration, args.calibration_items)
    rows: dict[str, list[dict[str, float]]] = {k: [] for k in run}
    items = items_of(args.test_set, args.items)
    for n, item in enumerate(items, 1):
        o, f, t = (read_image(item / name) for name in (layout.ORIGINAL, layout.FUSED, layout.TRUTH))
        m = read_mask(item / layout.MASK)
        ref = None
        for mode, fn in run.items():
            out = np.round(np.clip(fn(o, f), 0, 1) * 255) / 255  # as written
            ref = out if mode == "fp32" else ref
            s = score_image(out.astype(np.float32), o, truth=t, mask=m, fused=f)
            if mode != "fp32":
                mse = float(np.mean((out - ref) ** 2))
                s["psnr_vs_fp32"] = math.inf if mse == 0 else 10 * math.log10(1 / mse)
            rows[mode].append(s)
        print(f"\r{n}/{len(items)}", end="", file=sys.stderr)
    print(file=sys.stderr)
    means = summary(rows)
    print(f"{args.test_set} ({len(items)} items), weights {args.weights}:\n\n{table(means)}")
    if args.json:
        args.json.write_text(json.dumps({"test_set": str(args.test_set), "weights": args.weights, "means": means},
                                        indent=1))


if __name__ == "__main__":
    main()
