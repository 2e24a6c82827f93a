"""`python -m blendfix.cli`."""

from . import main

main()
