"""`python -m blendfix.cli ...` runs the `blendfix` command."""

from . import main

main()
