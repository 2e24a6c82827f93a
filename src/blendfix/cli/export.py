"""`blendfix export -i RUN_DIR --format safetensors|onnx [--fp16] [-o OUT_DIR]`."""

from __future__ import annotations

from pathlib import Path

import click

from .common import option


@click.command("export")
@option("-i", "--input", "run", aliases=("--run",), required=True, type=click.Path(exists=True, path_type=Path),
        help="A run folder, a folder of numbered runs (newest is used) or a checkpoint file.")
@click.option("--format", "fmt", required=True, type=click.Choice(["safetensors", "onnx"]),
              help="safetensors: weights + JSON for `clean --weights`; onnx: a graph checked with onnxruntime.")
@click.option("--fp16", is_flag=True, help="Half-precision weights (ONNX: a float16 graph with float32 I/O).")
@option("-o", "--output", "out", aliases=("--out",), type=click.Path(file_okay=False, path_type=Path), default=None,
        help="Output folder (default: RUN/export).")
@click.option("--check-size", type=click.IntRange(min=32), default=64, show_default=True,
              help="ONNX: side of the traced example (multiple of 32); the check also runs at twice this side.")
def cmd(run: Path, fmt: str, fp16: bool, out: Path | None, check_size: int) -> int:
    """Export the trained cleaner's newest checkpoint for inference (`blendfix clean --weights ...`)."""
    from ..train.export import export_onnx, export_safetensors
    from ..train.runs import resolve_run

    if check_size % 32:
        raise click.BadParameter(f"{check_size} is not a multiple of 32", param_hint="--check-size")
    out = out or ((run.parent.parent if run.is_file() else resolve_run(run)) / "export")
    if fmt == "safetensors":
        path = export_safetensors(run, out, fp16=fp16)
        click.echo(f"wrote {path} and {path.with_suffix('.json')}", err=True)
    else:
        path, diff = export_onnx(run, out, fp16=fp16, check_size=check_size)
        click.echo(f"wrote {path}; onnxruntime vs PyTorch (float32) max abs diff {diff:.3g}", err=True)
    return 0
