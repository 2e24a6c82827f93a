"""Options and helpers every verb shares: device/precision/batch options, folder runs, progress."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TypeVar

import click
from tqdm import tqdm

from ..errors import BlendfixError
from ..folders import refuse_output_inside_inputs, sweep_partials

T = TypeVar("T")


def device_options(f: Callable) -> Callable:
    """``--device auto``, ``--batch-size``, ``--precision auto`` (fp16 only on CUDA)."""
    f = click.option("--precision", default="auto", show_default=True,
                     type=click.Choice(["auto", "fp32", "fp16", "bf16"]),
                     help="auto = fp16 on CUDA, fp32 elsewhere.")(f)
    f = click.option("--batch-size", default=4, show_default=True, type=click.IntRange(min=1))(f)
    f = click.option("--device", default="auto", show_default=True,
                     help="auto, cpu, cuda, cuda:N or mps.")(f)
    return f


def progress(items: Iterable[T], desc: str, total: int | None = None) -> Iterable[T]:
    """A tqdm bar on stderr (hidden when stderr is not a terminal and the run is short)."""
    return tqdm(items, desc=desc, total=total, unit="img", file=sys.stderr, dynamic_ncols=True,
                disable=None)


def progress_bar(total: int, desc: str) -> tqdm:
    """A tqdm bar on stderr for work that finishes out of order (``.update(n)``), rate always in img/s."""
    return tqdm(total=total, desc=desc, unit="img", file=sys.stderr, dynamic_ncols=True, disable=None,
                bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}, {rate_noinv_fmt}]")


def run_each(items: list[T], fn: Callable[[T], None], desc: str,
             name: Callable[[T], str] = str) -> list[tuple[str, str]]:
    """Apply ``fn`` to every item with a progress bar; user errors are collected, not fatal.

    Returns the ``(item name, reason)`` failures; the caller reports them and exits non-zero.
    """
    failures: list[tuple[str, str]] = []
    for item in progress(items, desc, total=len(items)):
        try:
            fn(item)
        except (BlendfixError, ValueError, FileNotFoundError) as e:
            failures.append((name(item), str(e)))
    return failures


def report_failures(failures: list[tuple[str, str]], done: int, what: str = "file") -> int:
    """Print a summary; return the exit code (1 if anything failed)."""
    if failures:
        click.echo(f"{len(failures)} {what}(s) failed, {done - len(failures)} done:", err=True)
        for n, reason in failures:
            click.echo(f"  {n}: {reason}", err=True)
        return 1
    click.echo(f"{done} {what}(s) done.", err=True)
    return 0


def refuse_overwriting_inputs(outputs: Iterable[Path], inputs: Iterable[Path]) -> None:
    """Raise before any work when an output file would replace an input file (``-o`` = an input folder),
    or when two outputs would be the same file (inputs ``a.jpg`` and ``a.png`` both give ``a.png``)."""
    outputs = list(outputs)
    seen: dict[Path, Path] = {}
    for o in outputs:
        r = Path(o).resolve()
        if r in seen:
            raise BlendfixError(f"{o}: two inputs would write this same output file (outputs are named after "
                                "the inputs' name stems); rename one of the files that share the stem.")
        seen[r] = Path(o)
    given = {Path(p).resolve() for p in inputs}
    clash = sorted({Path(o) for o in outputs if Path(o).resolve() in given})
    if clash:
        more = f" (and {len(clash) - 1} more)" if len(clash) > 1 else ""
        raise BlendfixError(f"{clash[0]}: the output would overwrite this input file{more}; inputs are never "
                            "modified, so choose another output folder with -o.")


def prepare_output(out_dir: Path, inputs: dict[str, Path | None]) -> None:
    """Before any work: refuse an output folder that is, or lies inside, a scanned input folder (option
    name -> path given; files and ``None`` ignored), and delete temporary files a killed earlier run
    left in it (only those whose writing process is gone)."""
    refuse_output_inside_inputs(out_dir, inputs)
    sweep_partials(out_dir)


def out_path(out_dir: Path, src: Path, suffix: str = ".png", tag: str = "") -> Path:
    """Output file for ``src`` in ``out_dir``: same stem (unicode kept), optional tag, given suffix."""
    return Path(out_dir) / f"{src.stem}{tag}{suffix}"
