"""The four attributes of the method and their names across the tools it builds on."""

from __future__ import annotations

#: Canonical attribute names, in the paper's order.
ATTRIBUTES: tuple[str, ...] = ("eyebrows", "beard", "aging", "smile")

#: Accepted aliases (CLI and manifests) -> canonical name.
ALIASES: dict[str, str] = {
    "eyebrows": "eyebrows", "bushy_eyebrows": "eyebrows", "bushy-eyebrows": "eyebrows", "brows": "eyebrows",
    "beard": "beard",
    "aging": "aging", "age": "aging", "old": "aging", "ageing": "aging",
    "smile": "smile", "smiling": "smile",
}


def canonical(name: str) -> str:
    """Canonical attribute name; ``ValueError`` listing the choices for anything else."""
    key = name.strip().lower()
    if key not in ALIASES:
        raise ValueError(f"unknown attribute {name!r}; choose one of {', '.join(ATTRIBUTES)}")
    return ALIASES[key]
