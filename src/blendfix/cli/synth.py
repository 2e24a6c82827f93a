"""`blendfix synth`: build the training set (I, I', T, M, F, M_face, target per photo); merge shards."""

from __future__ import annotations

from pathlib import Path

import click
import yaml

from ..attributes import ATTRIBUTES
from ..config import from_dict, to_dict
from ..synth.config import (
    EDITOR_CHOICES,
    FUSION_CHOICES,
    NON_SQUARE_CHOICES,
    PARSER_CHOICES,
    POISSON_CHOICES,
    SynthConfig,
    parse_shard,
)
from ..synth.merge import merge_datasets
from ..synth.runner import SKIPPED, RunSummary, run_synth
from .common import device_options

_SHOWN_SKIPS = 20


@click.command("synth")
@click.argument("sources", nargs=-1, type=click.Path(file_okay=False, path_type=Path))
@click.option("-i", "--input", "input_", type=click.Path(exists=True, path_type=Path),
              help="Photo folder (searched recursively) or one photo.")
@click.option("-o", "--output", "output", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Dataset folder (created; a rerun resumes it).")
@click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A SynthConfig YAML (e.g. another set's config.yaml); options given here override it.")
@click.option("--editor", type=click.Choice(EDITOR_CHOICES),
              help="synthetic (offline, default), gan (the paper's, needs checkpoints), paste (user-like "
                   "pasted pairs, offline) or mixed (each item synthetic or paste).")
@click.option("--variants", type=click.IntRange(min=1),
              help="Items per photo, each with its own seed, attribute (and editor for mixed); default 1.")
@click.option("--attributes", help=f"Comma-separated subset of {','.join(ATTRIBUTES)} (default: all four).")
@click.option("--seed", type=click.IntRange(min=0), help="Global seed (default 0).")
@click.option("--resolution", type=click.IntRange(min=32), help="Square side photos are resized to (default 256).")
@click.option("--non-square", type=click.Choice(NON_SQUARE_CHOICES),
              help="Non-square photos: centre crop (default) or skip.")
@click.option("--poisson", type=click.Choice(POISSON_CHOICES),
              help="Seamless-clone backend: torch (default) or opencv; they agree within one 8-bit level.")
@click.option("--parser", type=click.Choice(PARSER_CHOICES),
              help="Face parser for M_face: landmarks (offline, default) or bisenet (needs its checkpoint).")
@click.option("--generator", help="GAN editor: StyleGAN2 generator checkpoint (name or path).")
@click.option("--encoder", help="GAN editor: pSp encoder checkpoint (name or path).")
@click.option("--diffcam", help="GAN editor: Diff-CAM classifier checkpoint (name or path).")
@click.option("--alpha", type=float, help="GAN editor: edit strength (default: the editor's).")
@click.option("--fusion", type=click.Choice(FUSION_CHOICES),
              help="paper (default): F = T*M + I*(1-M); released: as the released code, the mouth (parsed in "
                   "I or T) wholly from T for smile and aging.")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(min=1),
              help="Worker processes (synthetic editor). The GAN editor runs batched in this process.")
@click.option("--shard", help="i/n: make only shard i (from 0) of n, for several machines; merge after.")
@click.option("--limit", type=click.IntRange(min=1), help="Only the first N photos (by path) of the selection.")
@click.option("--retry-skipped", is_flag=True, help="Retry photos an earlier run listed in skipped.jsonl.")
@click.option("--strict", is_flag=True, help="Exit 1 if any photo is skipped, now or earlier (default: if all fail).")
@click.option("--merge", "merge", is_flag=True,
              help="Merge the synth folders given as arguments into -o instead of synthesising.")
@device_options
def cmd(sources: tuple[Path, ...], input_: Path | None, output: Path, config_file: Path | None, editor: str | None,
        variants: int | None, attributes: str | None, seed: int | None, resolution: int | None, non_square: str | None,
        poisson: str | None, parser: str | None, generator: str | None, encoder: str | None, diffcam: str | None,
        alpha: float | None, fusion: str | None, workers: int, shard: str | None, limit: int | None,
        retry_skipped: bool,
        strict: bool, merge: bool, device: str, batch_size: int, precision: str) -> int:
    """Synthesise a training set from aligned face photos, or merge synth folders.

    \b
    blendfix synth -i photos/ -o dataset/ --workers 4 --resolution 256
    blendfix synth -i photos/ -o part0/ --shard 0/2     (and part1/ --shard 1/2 elsewhere)
    blendfix synth --merge part0/ part1/ -o dataset/

    Per photo: I (resized), I', T, M, F = T*M + I*(1-M), M_face, target = seamless clone of F into I
    over M_face, in DATASET/items/<id>/, one manifest.jsonl line each (layout: blendfix.data.layout).
    A rerun resumes; photos that cannot be used are listed in skipped.jsonl and do not fail the run.
    """
    if merge:
        if not sources:
            raise click.UsageError("--merge needs the synth folders to merge as arguments")
        if input_ is not None:
            raise click.UsageError("--merge takes synth folders as arguments, not -i")
        s = merge_datasets(list(sources), output)
        click.echo(f"merged {s.sources} folder(s) into {output}: {s.items} items ({s.added} added, "
                   f"{s.duplicates} duplicate), {s.skipped} skipped photo(s) listed.", err=True)
        for d in s.incomplete:
            click.echo(f"  left out incomplete item folder {d}", err=True)
        return 0
    if sources:
        raise click.UsageError(f"unexpected arguments {' '.join(map(str, sources))} (photos go after -i)")
    if input_ is None:
        raise click.UsageError("give the photo folder with -i (or --merge FOLDERS)")
    given = {"input": str(input_), "editor": editor, "seed": seed, "resolution": resolution,
             "non_square": non_square, "poisson": poisson, "parser": parser, "generator": generator, "encoder": encoder,
             "diffcam": diffcam, "alpha": alpha, "variants": variants, "fusion": fusion,
             "attributes": [a for a in attributes.split(",") if a.strip()] if attributes else None}
    config = _config(config_file, {k: v for k, v in given.items() if v is not None})
    from ..synth.pipeline import checkpoint_hashes

    checkpoints = checkpoint_hashes(config)
    if config.editor == "gan" and workers > 1:
        click.echo("note: the GAN editor runs batched in this process; --workers ignored.", err=True)
        workers = 1
    summary = run_synth(config, output, workers=workers, shard=parse_shard(shard), limit=limit,
                        batch_size=batch_size, retry_skipped=retry_skipped, checkpoints=checkpoints,
                        options={"device": device, "precision": precision, "batch_size": batch_size})
    _report(summary, output)
    return summary.exit_code(strict)


def _config(path: Path | None, overrides: dict) -> SynthConfig:
    """Defaults, then a YAML file (a dataset's config.yaml works: its recorded facts are ignored),
    then the options given on the command line."""
    data = to_dict(SynthConfig())
    if path is not None:
        loaded = yaml.safe_load(path.read_text()) or {}
        if not isinstance(loaded, dict):
            raise ValueError(f"{path}: a config file must hold a mapping")
        data.update({k: v for k, v in loaded.items() if k in data})
    data.update(overrides)
    return from_dict(SynthConfig, data)


def _report(s: RunSummary, out: Path) -> None:
    total = s.already_done + s.rerecorded + s.made
    click.echo(f"{out}: {total} of {s.photos} photo(s) done ({s.made} made now, {s.already_done} earlier, "
               f"{s.rerecorded} re-recorded) in {s.seconds:.1f} s.", err=True)
    if s.made and s.timings:
        parts = ", ".join(f"{k} {v / s.made * 1000:.0f} ms" for k, v in sorted(s.timings.items()))
        click.echo(f"  time per photo: {parts}", err=True)
    if s.io_errors:
        click.echo(f"  error: {len(s.io_errors)} photo(s) failed on a file-system error (not listed as skipped; "
                   f"a rerun retries them):", err=True)
        for src, reason in s.io_errors[:_SHOWN_SKIPS]:
            click.echo(f"    {src}: {reason}", err=True)
    if s.stopped:
        click.echo(f"  stopped early: {s.stopped}. Free space (or make {out} writable) and rerun the same "
                   f"command: finished items are kept and the rest is made.", err=True)
    if s.skipped_before:
        click.echo(f"  {s.skipped_before} photo(s) skipped by an earlier run (see {SKIPPED}; "
                   f"--retry-skipped to retry).", err=True)
    if s.skipped:
        kinds: dict[str, int] = {}
        for _, kind, _ in s.skipped:
            kinds[kind] = kinds.get(kind, 0) + 1
        click.echo(f"  {len(s.skipped)} photo(s) skipped now (" + ", ".join(f"{k}: {n}" for k, n in
                   sorted(kinds.items())) + f"), listed in {out / SKIPPED}:", err=True)
        for src, kind, reason in sorted(s.skipped)[:_SHOWN_SKIPS]:
            first = reason.splitlines()[0] if reason else ""
            first = first[len(src) + 2:] if first.startswith(f"{src}: ") else first  # the path is shown once
            click.echo(f"    {src} [{kind}]: {first}", err=True)
        if len(s.skipped) > _SHOWN_SKIPS:
            click.echo(f"    ... and {len(s.skipped) - _SHOWN_SKIPS} more", err=True)
