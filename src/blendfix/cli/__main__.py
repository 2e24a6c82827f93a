"""``python -m blendfix.cli`` (also what ``torchrun -m blendfix.cli train ...`` runs)."""

from . import main

main()
