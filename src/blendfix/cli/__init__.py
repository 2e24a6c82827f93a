"""`blendfix <verb> -i FILE_OR_DIR -o DIR ...`: one command, one module per verb, loaded lazily."""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys

import click

from .. import __version__
from ..errors import BlendfixError

# verb -> module under blendfix.cli that defines `cmd`; a verb appears once its module exists.
VERBS = {
    "blend": "blend",
    "mask": "mask",
    "edit": "edit",
    "synth": "synth",
    "train": "train",
    "train-diffcam": "train_diffcam",
    "export": "export",
    "clean": "clean",
    "evaluate": "evaluate",
    "weights": "weights",
    "demo": "demo",
    "serve": "serve",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return [v for v, m in VERBS.items() if importlib.util.find_spec(f"{__name__}.{m}") is not None]

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in VERBS or name not in self.list_commands(ctx):
            return None
        return importlib.import_module(f"{__name__}.{VERBS[name]}").cmd


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="blendfix")
def cli() -> None:
    """Remove blending artifacts (ghosting, seams) from edited face photos."""


def main(argv: list[str] | None = None) -> int:
    """Entry point: user errors print one clear line (no traceback) and exit non-zero.

    Called with ``argv=None`` (the console script) it exits the process; with a list it returns the code.
    """
    code = _run(argv)
    if argv is None:
        sys.exit(code)
    return code


def _run(argv: list[str] | None) -> int:
    try:
        rv = cli.main(args=argv, prog_name="blendfix", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 130
    except click.exceptions.Exit as e:
        return e.exit_code
    except click.ClickException as e:
        e.show()
        return e.exit_code
    except (BlendfixError, ValueError, FileNotFoundError) as e:
        click.echo(f"error: {e}", err=True)
        return 1
    except OSError as e:  # the file system said no (an output path that is a file, no permission, disk full)
        click.echo(f"error: {e}; check the paths given and that the output folder is writable.", err=True)
        return 1
    except Exception as e:  # a bug, not a user error: one line unless BLENDFIX_DEBUG=1 asks for the traceback
        if os.environ.get("BLENDFIX_DEBUG"):
            raise
        click.echo(f"internal error: {type(e).__name__}: {e} (rerun with BLENDFIX_DEBUG=1 for the traceback "
                   "and please report it)", err=True)
        return 2
    return rv if isinstance(rv, int) else 0
