"""Typed configs and the CLI frame."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass, field

import pytest

from blendfix.cli import main
from blendfix.config import from_dict, load_config, save_config


@dataclass
class Inner:
    lr: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.999)


@dataclass
class Outer:
    name: str = "run"
    steps: int = 10
    inner: Inner = field(default_factory=Inner)
    note: str | None = None


def test_overrides_are_typed_and_round_trip(tmp_path):
    cfg = load_config(Outer, overrides=["inner.lr=1e-3", "steps=20"])
    assert cfg.inner.lr == 1e-3 and isinstance(cfg.inner.lr, float) and cfg.steps == 20
    path = save_config(cfg, tmp_path / "config.yaml", extra={"version": "x"})
    again = load_config(Outer)
    assert again.steps == 10  # defaults untouched by the earlier load
    text = path.read_text()
    assert "lr: 0.001" in text and "version: x" in text


def test_unknown_keys_and_wrong_types_are_refused():
    with pytest.raises(ValueError, match="unknown keys"):
        from_dict(Outer, {"stepz": 3})
    with pytest.raises(ValueError, match="expected int"):
        from_dict(Outer, {"steps": "many"})


def test_cli_lists_verbs_and_reports_errors_without_traceback(capsys):
    assert main(["--help"]) == 0
    assert "clean" in capsys.readouterr().out
    assert main(["clean", "-i", "/nonexistent/x.png", "--fused", "/nonexistent", "-o", "/tmp/x"]) != 0
    err = capsys.readouterr().err
    assert "Traceback" not in err and "does not exist" in err


def test_console_entry_exits_non_zero_on_failure():
    r = subprocess.run([sys.executable, "-m", "blendfix.cli", "clean", "-i", "/nonexistent.png",
                        "--fused", "/nonexistent.png", "-o", "/tmp/x"], capture_output=True, text=True)
    assert r.returncode != 0 and "Traceback" not in r.stderr
