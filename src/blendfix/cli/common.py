"""Options and helpers every verb shares: device/precision/batch options, folder runs, progress."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TypeVar

import click
from tqdm import tqdm

from ..attributes import ATTRIBUTES, canonical
from ..data.destination import EXTENSIONS
from ..errors import BlendfixError
from ..folders import refuse_output_inside_inputs, sweep_partials

T = TypeVar("T")


class AliasOption(click.Option):
    """An option whose old spellings (``aliases``) still work but are left out of ``--help``."""

    def __init__(self, *args, aliases: tuple[str, ...] = (), **kwargs) -> None:
        decls = list(args[0]) + list(aliases)
        super().__init__(decls, *args[1:], **kwargs)
        self.aliases = tuple(aliases)

    def get_help_record(self, ctx: click.Context) -> tuple[str, str] | None:
        shown = self.opts
        self.opts = [o for o in shown if o not in self.aliases]
        try:
            return super().get_help_record(ctx)
        finally:
            self.opts = shown


def option(*decls: str, aliases: tuple[str, ...] = (), **kwargs) -> Callable:
    """``click.option`` with hidden old spellings: ``option("-i", "--input", "src", aliases=("--data",))``."""
    return click.option(*decls, cls=AliasOption, aliases=aliases, **kwargs)


def input_option(help: str, aliases: tuple[str, ...] = (), dir_okay: bool = True) -> Callable:
    """``-i/--input``: a file, a folder of photos or an image set."""
    return option("-i", "--input", "source", aliases=aliases, required=True, help=help,
                  type=click.Path(exists=True, dir_okay=dir_okay, path_type=Path))


def output_option(help: str, required: bool = False, aliases: tuple[str, ...] = ()) -> Callable:
    """``-o/--output``: a file when one input and an image suffix, else a folder."""
    return option("-o", "--output", "out", aliases=aliases, required=required, help=help,
                  type=click.Path(path_type=Path), default=None)


def attribute_option(default: str | None, extra: tuple[str, ...] = (), help: str = "",
                     multiple: bool = False, aliases: tuple[str, ...] = ()) -> Callable:
    """``-a/--attribute`` with the choices listed (aliases such as ``smiling`` are accepted too)."""
    choices = (*extra, *ATTRIBUTES)
    return option("-a", "--attribute", "attribute", aliases=aliases, default=default, multiple=multiple,
                  show_default=True, metavar="[" + "|".join(choices) + "]",
                  help=f"{help} Choices: {', '.join(choices)}.".strip())


def checked_attribute(value: str | None, extra: tuple[str, ...] = ()) -> str | None:
    """The canonical attribute name of ``-a`` (``None`` stays ``None``); ``BadParameter`` listing the choices."""
    if value is None or value.strip().lower() in extra:
        return None if value is None else value.strip().lower()
    try:
        return canonical(value)
    except ValueError as e:
        raise click.BadParameter(f"{e}" + (f" or {', '.join(extra)}" if extra else ""), param_hint="-a") from e


def format_options(f: Callable) -> Callable:
    """``--ext png|jpg|webp`` and ``--suffix`` for outputs written into a folder."""
    f = click.option("--suffix", default="", show_default=True,
                     help="Appended to each output's name stem in an output folder, e.g. _clean.")(f)
    return click.option("--ext", default="png", show_default=True, type=click.Choice(EXTENSIONS),
                        help="File type of outputs written into an output folder.")(f)


PRECISION_HELP = "auto = fp16 on CUDA, fp32 elsewhere."


def device_options(f: Callable | None = None, *, precision_help: str = PRECISION_HELP) -> Callable:
    """``--device auto``, ``--batch-size``, ``--precision auto`` (fp16 only on CUDA); ``@device_options`` or
    ``@device_options(precision_help=...)`` where a verb's ``auto`` differs."""
    if f is None:
        return lambda g: device_options(g, precision_help=precision_help)
    f = click.option("--precision", default="auto", show_default=True,
                     type=click.Choice(["auto", "fp32", "fp16", "bf16"]), help=precision_help)(f)
    f = click.option("--batch-size", default=4, show_default=True, type=click.IntRange(min=1),
                     help="Images per network call.")(f)
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
