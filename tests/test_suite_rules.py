"""Rules the test suite itself must keep (issue 16), and promises the README makes that had no test:
checkpoints with pickled code are refused without running it, and `blendfix weights` lists the registry."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import blendfix
from blendfix import registry
from blendfix.cli import main
from blendfix.errors import BlendfixError

ROOT = Path(__file__).resolve().parents[1]
SRC = Path(blendfix.__file__).resolve().parents[1]


def _pytest(prelude: str, *args: str, ci: bool) -> subprocess.CompletedProcess:
    """Run pytest on this project's tests in a fresh interpreter after ``prelude`` (which hides something)."""
    code = f"import sys; sys.path.insert(0, {str(SRC)!r}); {prelude}; import pytest; " \
           f"sys.exit(pytest.main({['-q', '-p', 'no:cacheprovider', '-rsf', *args]!r}))"
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    if ci:
        env["CI"] = "true"
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)


@pytest.mark.parametrize("test_file", ["tests/test_landmarks.py", "tests/test_parsing.py",
                                       "tests/test_synthetic_editor.py"])
def test_a_missing_mediapipe_skips_locally_but_fails_under_ci(test_file):
    hide = "sys.modules['mediapipe'] = None"  # importlib.util.find_spec('mediapipe') is None: as if not installed
    local = _pytest(hide, test_file, "-k", "not chatter", ci=False)
    assert local.returncode == 0 and "skipped" in local.stdout and "mediapipe" in local.stdout, local.stdout[-2000:]
    under_ci = _pytest(hide, test_file, "-x", ci=True)
    assert under_ci.returncode == 1, under_ci.stdout[-2000:]
    last = under_ci.stdout.strip().splitlines()[-1]  # a failure in set-up is counted as an "error"
    assert ("error" in last or "failed" in last) and "skipped" not in last, last
    assert "module mediapipe is not installed" in under_ci.stdout


def test_a_deleted_cli_verb_fails_its_tests_instead_of_skipping_them():
    hide = "sys.modules['blendfix.cli.mask'] = None"  # as if src/blendfix/cli/mask.py were deleted
    res = _pytest(hide, "tests/test_bad_inputs.py", "-k", "folder_mode_skips and mask", ci=False)
    assert res.returncode == 1, res.stdout[-2000:]
    assert "1 failed" in res.stdout and "`blendfix mask` is missing" in res.stdout and "skipped" not in res.stdout


# --------------------------------------------------------------------------- untrusted checkpoints


class _Payload:
    """Unpickling this runs ``open(marker, "w")``: a file appears if a loader executes pickled code."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def _loaders():
    from blendfix.checkpoints import load_file
    from blendfix.cleaning import load_network
    from blendfix.nets.diffcam import load_diffcam
    from blendfix.nets.psp import load_psp_encoder
    from blendfix.nets.stylegan2 import load_stylegan2
    from blendfix.train.export import load_cleaner
    from blendfix.train.runs import load_training_checkpoint

    return {"load_file": load_file, "load_diffcam": load_diffcam, "load_psp_encoder": load_psp_encoder,
            "load_stylegan2": load_stylegan2, "load_cleaner": load_cleaner,
            "load_training_checkpoint": load_training_checkpoint,
            "clean --weights": lambda p: load_network(str(p), torch.device("cpu"))}


@pytest.mark.parametrize("loader", list(_loaders()))
def test_a_checkpoint_with_pickled_code_is_refused_and_no_code_runs(tmp_path, loader):
    marker = tmp_path / "code_ran"
    evil = tmp_path / "evil.pt"
    torch.save({"model": {"w": torch.zeros(2)}, "step": 1, "payload": _Payload(marker)}, evil)
    torch.load(evil, weights_only=False)  # the file really carries code: an unsafe load runs it
    assert marker.exists()
    marker.unlink()
    with pytest.raises(BlendfixError, match="refused|pickled"):
        _loaders()[loader](evil)
    assert not marker.exists()


def test_clean_cli_refuses_pickled_code_in_weights(tmp_path, capsys):
    import numpy as np

    from blendfix.io import write_image

    marker = tmp_path / "code_ran"
    evil = tmp_path / "cleaner.pt"
    torch.save({"payload": _Payload(marker)}, evil)
    img = np.random.default_rng(0).random((64, 64, 3), dtype=np.float32)
    write_image(tmp_path / "o" / "a.png", img)
    write_image(tmp_path / "f" / "a.png", img)
    code = main(["clean", "-i", str(tmp_path / "o"), "--fused", str(tmp_path / "f"), "--method", "network",
                 "--weights", str(evil), "--device", "cpu", "-o", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 1 and str(evil) in err and "refused" in err
    assert not marker.exists()


# --------------------------------------------------------------------------- blendfix weights


def test_weights_command_lists_every_checkpoint_present_or_missing_with_its_source(tmp_path, monkeypatch, capsys):
    registry.load_all()
    entries = sorted(registry.CHECKPOINTS.items())
    assert entries
    folder = tmp_path / "weights"
    monkeypatch.setenv("BLENDFIX_WEIGHTS", str(folder))
    name, entry = entries[0]
    (folder / entry.filename).parent.mkdir(parents=True, exist_ok=True)
    (folder / entry.filename).write_bytes(b"placed by the user")
    assert main(["weights"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert str(folder) in lines[0] and "BLENDFIX_WEIGHTS" in lines[0]
    body = lines[1:]
    assert len(body) == 2 * len(entries)
    for (n, e), first, second in zip(entries, body[::2], body[1::2], strict=True):
        words = first.split()
        if e.bundled:  # shipped inside the package: present wherever blendfix is installed, path shown
            assert words[0] == n and words[1] == "present" and words[-1] == "(bundled)"
            assert words[-2] == str(registry.bundled_dir() / e.filename)
        else:
            assert words[0] == n and words[-1] == e.filename
            assert words[1] == ("present" if n == name else "missing")
        assert e.url in second and e.licence in second
