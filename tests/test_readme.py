"""The README's recipes, extracted from README.md and run verbatim on tiny inputs, so they cannot drift.

Every ```bash block runs with ``bash -e`` in one working folder holding a few shared face photos
(``photos/``), plain folders of pairs (``originals/``, ``fused/``, ``edited/``, made by the synthetic
editor), ``configs/`` and tiny random GAN-editor checkpoints in the published layouts; ``blendfix``
on PATH is this checkout's CLI. The blocks run in README order, so a later
recipe uses what an earlier one made (``runs/run-001``). The ```python block runs on ``photo.png``.
Left out, with the reason: the set-up block (``make demo`` / ``make test`` build .venv and run this
suite itself).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from tiny_gan import write_tiny_gan

from blendfix.io import read_image, write_image

ROOT = Path(__file__).resolve().parents[1]
NOT_RUN = {"make demo": "builds .venv and runs the whole test suite, this test included"}


def blocks(language: str) -> list[str]:
    """The README's fenced blocks of ``language``, verbatim."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return re.findall(rf"^```{language}\n(.*?)^```", text, flags=re.S | re.M)


def test_every_bash_block_is_run_or_named_as_not_run():
    found = blocks("bash")
    skipped = [b for b in found if any(k in b for k in NOT_RUN)]
    assert len(skipped) == 1 and len(found) >= 4
    assert all("blendfix " in b for b in found if b not in skipped)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory, faces_dir) -> tuple[Path, dict[str, str]]:
    from blendfix.edit import get_editor

    work = tmp_path_factory.mktemp("readme")
    (work / "photos").mkdir()
    for name in ("00044.jpg", "00051.jpg", "00085.jpg", "00247.jpg"):
        shutil.copy(faces_dir / "hfgi_celeba_hq_256" / name, work / "photos" / name)
    editor = get_editor("synthetic")
    for stem, name in (("face", "00051.jpg"), ("other", "00085.jpg")):
        image = read_image(work / "photos" / name)
        res = editor.edit(image, "smile", seed=0)
        write_image(work / "originals" / f"{stem}.png", image)
        write_image(work / "fused" / f"{stem}.png", res.fused)
        write_image(work / "edited" / f"{stem}.png", res.edited)
    shutil.copy(faces_dir / "hfgi_celeba_hq_256" / "00418.jpg", work / "photo.png")
    shutil.copytree(ROOT / "configs", work / "configs")
    weights = work / "weights"
    write_tiny_gan(work, weights)  # psp_ffhq_encode.pt, diff_cam_weight.pt here; the direction in weights/
    bin_dir = work / "bin"
    bin_dir.mkdir()
    shim = bin_dir / "blendfix"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m blendfix.cli "$@"\n')
    shim.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "BLENDFIX_WEIGHTS": str(weights),
           "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1"}
    return work, env


def test_readme_recipes_run_verbatim(workdir):
    work, env = workdir
    ran = 0
    for block in blocks("bash"):
        if any(k in block for k in NOT_RUN):
            continue
        proc = subprocess.run(["bash", "-e", "-c", block], cwd=work, env=env, capture_output=True, text=True,
                              timeout=600)
        assert proc.returncode == 0, f"README recipe failed:\n{block}\n--- stderr ---\n{proc.stderr[-3000:]}"
        assert "Traceback" not in proc.stderr, proc.stderr
        _assert_quiet(proc.stderr, block)
        ran += 1
    assert ran == len(blocks("bash")) - 1
    # what the recipes promise is there
    assert (work / "report" / "report.md").is_file() and (work / "pairs_report" / "report.md").is_file()
    assert (work / "edits" / "items" / "00044_beard" / "cleaned" / "poisson.png").is_file()
    assert (work / "face_clean.png").is_file() and (work / "cleaned" / "face_clean.jpg").is_file()
    assert (work / "gan_edits" / "items" / "00044_smile" / "fused.png").is_file()
    assert list((work / "dataset" / "items").glob("*/cleaned/network.png"))
    assert (work / "dataset_report" / "report.md").is_file()


#: library chatter that must not reach the user: absl / mediapipe / TF-Lite logging, raw Python warnings
#: (file:line: UserWarning), setuptools' pkg_resources notice
CHATTER = re.compile(r"^(?:[IWE]\d{4} |INFO: |WARNING: All log messages before absl)|UserWarning|pkg_resources"
                     r"|DeprecationWarning", re.M)


def _assert_quiet(stderr: str, block: str) -> None:
    """No chatter; each warning line once; the missing-weights explanation at most once per command."""
    assert not CHATTER.search(stderr), f"library chatter in the output of\n{block}\n{stderr[-2000:]}"
    commands = block.count("blendfix ")
    assert stderr.count("blendfix never downloads") <= commands, stderr
    warns = [line for line in stderr.splitlines() if line.startswith("warning: ")]
    assert len(warns) <= len(set(warns)) + commands, stderr  # a warning repeats only across commands


def test_readme_python_api_runs(workdir):
    work, env = workdir
    (code,) = blocks("python")
    proc = subprocess.run([sys.executable, "-c", code], cwd=work, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert read_image(work / "out.png").shape == read_image(work / "photo.png").shape
