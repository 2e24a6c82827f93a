"""`blendfix evaluate --originals DIR --method NAME=DIR ... -o REPORT_DIR`: the paper's tables for your outputs."""

from __future__ import annotations

import warnings
from pathlib import Path

import click

from ..metrics.evaluate import evaluate_dirs
from ..metrics.fid import SmallSampleWarning
from .common import prepare_output


def parse_methods(specs: tuple[str, ...]) -> dict[str, Path]:
    """``("fused=out/fused", "blendfix=out/clean")`` -> ordered name -> folder; ``BadParameter`` when malformed."""
    methods: dict[str, Path] = {}
    for spec in specs:
        name, sep, folder = spec.partition("=")
        name = name.strip()
        if not sep or not name or not folder:
            raise click.BadParameter(f"{spec!r}: expected NAME=DIR, e.g. blendfix=outputs/clean", param_hint="--method")
        if name in methods:
            raise click.BadParameter(f"method name {name!r} given twice", param_hint="--method")
        path = Path(folder).expanduser()
        if not path.is_dir():
            raise click.BadParameter(f"{spec!r}: {path} is not a folder", param_hint="--method")
        methods[name] = path
    return methods


@click.command("evaluate")
@click.option("--originals", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Folder of the unedited photos, or a synth dataset folder (manifest.jsonl + items/: each "
                   "item's original, truth, edit mask and fused image are read from it; outputs named by item id).")
@click.option("--truth", "truth_dir", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Folder of artifact-free truths named like the originals: adds PSNR/SSIM/MAE/LPIPS vs truth.")
@click.option("--mask", "mask_dir", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Folder of edit masks named like the originals: adds the seam and edit-kept scores.")
@click.option("--method", "method_specs", multiple=True, required=True, metavar="NAME=DIR",
              help="A method's outputs, named like the originals (repeat: fused=..., poisson=..., blendfix=...).")
@click.option("--attributes-from", type=click.Path(exists=True, path_type=Path),
              help="manifest.jsonl (or a training-set folder) giving each file's attribute (and artifact 'kind'); "
                   "else 'all'.")
@click.option("-o", "--output", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Report folder: report.md, report.json, metrics.csv, per_image.csv, comparison.png.")
@click.option("--no-lpips", is_flag=True, help="Skip LPIPS (reported as skipped).")
@click.option("--no-fid", is_flag=True, help="Skip FID (reported as skipped).")
@click.option("--lpips-trunk", default=None, help="AlexNet trunk file or registry name (default torchvision-alexnet).")
@click.option("--lpips-lin", default=None, help="LPIPS v0.1 alex.pth file or registry name (default lpips-alex-v0.1).")
@click.option("--fid-weights", default=None,
              help="pytorch-fid Inception file or registry name (default pt-inception-fid).")
@click.option("--examples", default=4, show_default=True, type=click.IntRange(min=0),
              help="Rows of the comparison figure (0: no figure).")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:N or mps.")
@click.option("--batch-size", default=8, show_default=True, type=click.IntRange(min=1))
def cmd(originals: Path, truth_dir: Path | None, mask_dir: Path | None, method_specs: tuple[str, ...],
        attributes_from: Path | None, out_dir: Path, no_lpips: bool,
        no_fid: bool, lpips_trunk: str | None, lpips_lin: str | None, fid_weights: str | None, examples: int,
        device: str, batch_size: int) -> int:
    """PSNR, SSIM, MAE, LPIPS and FID of each method against the originals, per attribute and overall.

    With truths and edit masks (--truth/--mask, or a synth dataset as --originals) also the artifact
    scores: vs truth, seam and edit kept, per attribute and per artifact kind (docs/metrics.md).
    """
    methods = parse_methods(method_specs)
    prepare_output(out_dir, {"--originals": originals, **{f"--method {k}": v for k, v in methods.items()}})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SmallSampleWarning)  # it is in the report's warnings, printed below
        report = evaluate_dirs(originals, methods, out_dir, attributes_from=attributes_from, truth=truth_dir,
                               mask=mask_dir, lpips=not no_lpips,
                               fid=not no_fid, lpips_trunk=lpips_trunk, lpips_lin=lpips_lin, fid_weights=fid_weights,
                               device=device, batch_size=batch_size, figure_examples=examples)
    md = (out_dir / "report.md").read_text(encoding="utf-8")
    click.echo(md.split("## Overall", 1)[1].split("\n## ", 1)[0].strip())
    if report.get("artifact_scores"):
        click.echo("\n## Artifact scores" + md.split("## Artifact scores", 1)[1].split("\n## ", 1)[0].rstrip())
    for metric, reason in report["metrics"]["skipped"].items():
        click.echo(f"skipped {metric.upper()}: {reason}", err=True)
    for w in report["warnings"]:
        click.echo(f"warning: {w}", err=True)
    click.echo(f"report written to {out_dir} (report.md, report.json, metrics.csv, per_image.csv"
               + (", artifact_scores.csv" if report.get("artifact_scores") else "")
               + (", comparison.png)" if report["figure"] else ")"), err=True)
    if report["failures"]:
        click.echo(f"{len(report['failures'])} file(s) failed and were left out:", err=True)
        for f in report["failures"]:
            click.echo(f"  {f['file']}: {f['reason']}", err=True)
        return 1
    return 0
