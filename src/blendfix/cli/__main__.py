"""`python -m blendfix.cli ...` = `blendfix ...`."""

from . import main

main()
