"""`blendfix evaluate -i SET -o REPORT_DIR` (or `-i ORIGINALS --method NAME=DIR ...`): the paper's tables."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import click

from ..metrics import artifacts as art
from ..metrics.evaluate import evaluate_dirs
from ..metrics.fid import SmallSampleWarning
from ..metrics.report import overall_table
from ..registry import weights_dir
from .common import option, prepare_output


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
@option("-i", "--input", "originals", aliases=("--originals",), required=True,
        type=click.Path(exists=True, file_okay=False, path_type=Path),
        help="An image set (its items' original, truth, mask and fused images; without --method its fused and "
             "cleaned/<method> images are the methods, per attribute), or a folder of the unedited photos.")
@option("--truth", "truth_dir", type=click.Path(exists=True, file_okay=False, path_type=Path),
        help="Folder of artifact-free truths named like the originals: adds PSNR/SSIM/MAE/LPIPS vs truth.")
@option("--mask", "mask_dir", type=click.Path(exists=True, file_okay=False, path_type=Path),
        help="Folder of edit masks named like the originals: adds the seam and edit-kept scores.")
@option("--method", "method_specs", multiple=True, metavar="NAME=DIR",
        help="A method's outputs, named like the originals (repeat: fused=..., poisson=..., blendfix=...); "
             "needed with a folder of photos.")
@option("--attributes-from", type=click.Path(exists=True, path_type=Path),
        help="manifest.jsonl (or an image set) giving each file's attribute (and artifact 'kind'); else the "
             "set's own, or 'all'.")
@option("-o", "--output", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
        help="Report folder: report.md, report.json, metrics.csv, per_image.csv, comparison.png.")
@click.option("--no-lpips", is_flag=True, help="Skip LPIPS (reported as skipped).")
@click.option("--no-fid", is_flag=True, help="Skip FID (reported as skipped).")
@click.option("--lpips-trunk", default=None, help="AlexNet trunk file or registry name (default torchvision-alexnet).")
@click.option("--lpips-lin", default=None, help="LPIPS v0.1 alex.pth file or registry name (default lpips-alex-v0.1).")
@click.option("--fid-weights", default=None,
              help="pytorch-fid Inception file or registry name (default pt-inception-fid).")
@click.option("--examples", default=4, show_default=True, type=click.IntRange(min=0),
              help="Rows of the comparison figure (0: no figure).")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:N or mps (LPIPS, FID).")
@click.option("--precision", default="fp32", show_default=True, type=click.Choice(["fp32"]),
              help="Metrics always run in full float32 (TF32 off), so numbers do not depend on the GPU.")
@click.option("--batch-size", default=8, show_default=True, type=click.IntRange(min=1),
              help="Images per LPIPS / FID network call.")
def cmd(originals: Path, truth_dir: Path | None, mask_dir: Path | None, method_specs: tuple[str, ...],
        attributes_from: Path | None, out_dir: Path, no_lpips: bool, no_fid: bool, lpips_trunk: str | None,
        lpips_lin: str | None, fid_weights: str | None, examples: int, device: str, precision: str,
        batch_size: int) -> int:
    """PSNR, SSIM, MAE, LPIPS and FID of each method against the originals, per attribute and overall.

    With truths and edit masks (--truth/--mask, or an image set holding them) also the artifact
    scores: vs truth, seam and edit kept, per attribute and per artifact kind (docs/metrics.md).
    """
    methods = parse_methods(method_specs)
    prepare_output(out_dir, {"-i": originals, **{f"--method {k}": v for k, v in methods.items()}})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SmallSampleWarning)  # it is in the report's warnings, printed below
        report = evaluate_dirs(originals, methods, out_dir, attributes_from=attributes_from, truth=truth_dir,
                               mask=mask_dir, lpips=not no_lpips,
                               fid=not no_fid, lpips_trunk=lpips_trunk, lpips_lin=lpips_lin, fid_weights=fid_weights,
                               device=device, batch_size=batch_size, figure_examples=examples)
    click.echo(overall_table(report))
    if report.get("artifact_scores"):
        click.echo("\n" + "\n".join(art.markdown(report["artifact_scores"])).rstrip())
    missing_weights = False
    for metric, reason in report["metrics"]["skipped"].items():
        files = re.findall(r"put (\S+) at ", reason)  # a missing-weights reason: name the files only
        missing_weights |= bool(files)
        click.echo(f"skipped {metric.upper()}: " + (f"no {', '.join(files)}" if files else reason), err=True)
    if missing_weights:
        click.echo(f"  (blendfix never downloads: put the files in {weights_dir()} or set BLENDFIX_WEIGHTS; "
                   "`blendfix weights` lists each with its URL and licence; report.md has the details)", err=True)
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
