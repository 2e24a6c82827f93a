"""The layer picture: inference code (everything but train/ and cli/) never imports training code."""

from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "src" / "blendfix"


def _imports(path: Path) -> set[str]:
    """Absolute module names a file imports (relative imports resolved against its package)."""
    parts = list(path.relative_to(PKG.parent).with_suffix("").parts)
    package = parts[:-1] if parts[-1] != "__init__" else parts[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            mod = ".".join(base + ([node.module] if node.module else []))
            found.add(mod)
            found.update(f"{mod}.{a.name}" for a in node.names)
    return found


def test_no_upward_import_from_inference_to_training():
    offenders = []
    for path in sorted(PKG.rglob("*.py")):
        rel = path.relative_to(PKG)
        if rel.parts[0] in ("train", "cli"):
            continue
        bad = sorted(m for m in _imports(path) if m == "blendfix.train" or m.startswith("blendfix.train."))
        if bad:
            offenders.append(f"{rel}: {', '.join(bad)}")
    assert not offenders, "inference code imports training code:\n" + "\n".join(offenders)


def test_the_check_sees_relative_imports():
    assert "blendfix.cleaner_weights.load_cleaner" in _imports(PKG / "cleaning.py")
