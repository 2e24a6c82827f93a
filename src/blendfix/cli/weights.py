"""`blendfix weights`: list registered checkpoints, whether each is present, and where it goes."""

from __future__ import annotations

import click

from .. import registry


@click.command("weights")
def cmd() -> int:
    """List every registered checkpoint: file, present or missing, source URL and licence."""
    registry.load_all()
    folder = registry.weights_dir()
    click.echo(f"weights folder: {folder} (set BLENDFIX_WEIGHTS to change it)")
    for name, e in sorted(registry.CHECKPOINTS.items()):
        path = registry.entry_path(e)
        state = "present" if path.is_file() else "missing"
        where = f"{path} (bundled)" if e.bundled and path.parent == registry.bundled_dir() else e.filename
        click.echo(f"{name:32s} {state:8s} {where}")
        click.echo(f"{'':32s} {e.url}  [{e.licence}]  model={e.model}")
    return 0
