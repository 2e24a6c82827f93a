"""`blendfix demo -o DIR`: the offline pipeline on a packaged photo (or -i PHOTO)."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("demo")
@click.option("-i", "--input", "photo", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="A photo with a face (default: scikit-image's astronaut).")
@click.option("-o", "--output", "out_dir", required=True, type=click.Path(path_type=Path),
              help="Folder for the edits, the cleaned images of every method and the report.")
@click.option("--resolution", default=512, show_default=True, type=click.IntRange(64, 2048),
              help="Side the photo is resized to before editing.")
@click.option("--seed", default=0, show_default=True, help="Seed of the synthetic editor.")
@click.option("--weights", default=None, help="Trained cleaner (run folder, exported file or registered name).")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:N or mps (the network).")
def cmd(photo: Path | None, out_dir: Path, resolution: int, seed: int, weights: str | None, device: str) -> int:
    """Edit (synthetic editor) -> fuse -> clean by every available method -> metrics and figure."""
    from ..demo import run_demo

    click.echo(f"blendfix demo: {photo or 'astronaut (scikit-image)'} -> {out_dir}", err=True)
    report = run_demo(out_dir, photo, resolution, seed, weights, device)
    md = (out_dir / "report" / "report.md").read_text()
    click.echo(md)
    for note in report.get("demo_notes", []):
        click.echo(f"note: {note}", err=True)
    click.echo(f"figures: {out_dir / 'report' / 'comparison.png'}, {out_dir / 'report' / 'demo.png'} "
               f"(I, T, M and every method, with 3x zooms on the edit boundary)", err=True)
    return 0
