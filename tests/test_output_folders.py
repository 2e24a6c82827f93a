"""Output folders (issue 16): never inside a scanned input folder, no stale temporary files after a
kill, and the decompression-bomb guard stays on however many threads read images."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import blendfix
import blendfix.io as bio
from blendfix.cli import main

SRC = Path(blendfix.__file__).resolve().parents[1]  # the blendfix this test session imports


@pytest.fixture()
def folders(tmp_path: Path) -> dict[str, Path]:
    """``in/`` with two photos, ``other/`` with same-named images, a mask file."""
    rng = np.random.default_rng(0)
    paths = {"in": tmp_path / "in", "other": tmp_path / "other"}
    for name in ("a.png", "b.png"):
        bio.write_image(paths["in"] / name, rng.random((48, 48, 3), dtype=np.float32))
        bio.write_image(paths["other"] / name, rng.random((48, 48, 3), dtype=np.float32))
    paths["mask"] = bio.write_mask(tmp_path / "m.png", np.ones((48, 48), np.float32))
    return paths


def _args(verb: str, f: dict[str, Path], out: Path) -> list[str]:
    i, other = str(f["in"]), str(f["other"])
    return {
        "edit": ["edit", "-i", i, "-a", "smile", "-o", str(out)],
        "mask": ["mask", "-i", i, "-o", str(out)],
        "blend": ["blend", "-i", i, "--edited", other, "--mask", str(f["mask"]), "--device", "cpu", "-o", str(out)],
        "clean": ["clean", "-i", other, "--fused", i, "--method", "fused", "--device", "cpu", "-o", str(out)],
        "evaluate": ["evaluate", "--originals", i, "--method", f"x={other}", "--no-lpips", "--no-fid",
                     "--device", "cpu", "-o", str(out)],
        "synth": ["synth", "-i", i, "--resolution", "64", "-o", str(out)],
    }[verb]


def _snapshot(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*"))


@pytest.mark.parametrize("where", ["equal", "inside", "link"])
@pytest.mark.parametrize("verb", ["edit", "mask", "blend", "clean", "evaluate", "synth"])
def test_every_folder_verb_refuses_an_output_inside_its_input_folder(folders, capsys, verb, where):
    inp = folders["in"]
    if where == "equal":
        out = inp
    elif where == "inside":
        out = inp / "results" / "run1"
    else:  # a link elsewhere that points into the input folder
        (inp / "real").mkdir()
        out = inp.parent / "link"
        out.symlink_to(inp / "real", target_is_directory=True)
    before = _snapshot(inp)
    code = main(_args(verb, folders, out))
    err = capsys.readouterr().err
    assert code == 1
    if where == "equal" and verb in ("blend", "clean"):  # outputs named like the inputs: that is said first
        assert "would overwrite this input file" in err and "-o" in err, err
    else:
        assert str(out) in err and str(inp) in err and "outside" in err, err  # both paths and the fix
    assert _snapshot(inp) == before  # refused before any work: nothing written


def test_the_check_is_on_resolved_paths_and_only_for_folders(tmp_path):
    from blendfix.errors import BlendfixError
    from blendfix.folders import refuse_output_inside_inputs

    (tmp_path / "photos").mkdir()
    (tmp_path / "photo.png").write_bytes(b"x")
    refuse_output_inside_inputs(tmp_path / "photos_out", {"-i": tmp_path / "photos"})  # a sibling is fine
    refuse_output_inside_inputs(tmp_path / "out", {"-i": tmp_path / "photo.png", "--mask": None})
    with pytest.raises(BlendfixError, match="lies inside"):
        refuse_output_inside_inputs(tmp_path / "photos" / ".." / "photos" / "x", {"-i": tmp_path / "photos"})


# --------------------------------------------------------------------------- temporary files of killed runs

WRITER = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, sys.argv[1])
    from pathlib import Path
    from blendfix.io import atomic_write
    def encode():
        print("writing", flush=True)
        time.sleep(60)
        return b"never"
    atomic_write(Path(sys.argv[2]), encode)
""")


def _killed_writer(target: Path) -> Path:
    """Start a process writing ``target`` atomically, SIGKILL it mid-write; return its temporary file."""
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(SRC), str(target)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "writing"
        (part,) = [p for p in target.parent.iterdir() if p.name.endswith(".part")]
        from blendfix.folders import stale_partials

        assert stale_partials(target.parent) == []  # its writer is alive: not stale
    finally:
        proc.kill()
        proc.wait()
    return part


def test_a_killed_write_leaves_a_hidden_file_the_next_run_deletes(tmp_path, folders, capsys):
    from blendfix.folders import partial_name, stale_partials

    out = tmp_path / "cleaned"
    part = _killed_writer(out / "a.png")
    assert part.name.startswith(".a.") and str(os.getpid()) not in part.name
    assert stale_partials(out) == [part]
    live = out / f"{partial_name(out / 'b.png')}zzzzzzzz.png.part"  # a writer still at work (this process)
    live.write_bytes(b"busy")
    code = main(_args("clean", folders, out))
    assert code == 0, capsys.readouterr().err
    assert not part.exists() and live.exists()
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == ["a.png", "b.png", "runtime.json"]


def test_a_failed_onnx_export_leaves_nothing_and_clears_a_killed_ones_file(tmp_path, monkeypatch):
    pytest.importorskip("onnxruntime")
    import torch

    from blendfix.folders import partial_name
    from blendfix.nets.maresunet import MAResUNet
    from blendfix.train import export

    tiny = MAResUNet(widths=(16, 16, 16, 32), blocks=(1, 1, 1, 1), head_width=8)
    monkeypatch.setattr(export, "from_run", lambda run: (tiny.eval(), {}))
    out = tmp_path / "export"
    out.mkdir()
    stale = out / f"{partial_name(out / 'cleaner.onnx')}abcdefgh.onnx.part".replace(f".{os.getpid()}-", ".999999999-")
    stale.write_bytes(b"half a graph")

    def full_disk(model, args, f, **kw):
        if hasattr(f, "write"):  # the exporter writes into memory first
            f.write(b"\0" * 1000)
        else:
            Path(f).write_bytes(b"\0" * 1000)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), f)

    real = torch.onnx.export
    monkeypatch.setattr(torch.onnx, "export", full_disk)
    with pytest.raises(OSError, match="No space"):
        export.export_onnx("run", out, check_size=32)
    assert sorted(p.name for p in out.iterdir()) == []  # neither the killed run's file nor this one's
    monkeypatch.setattr(torch.onnx, "export", real)
    path, diff = export.export_onnx("run", out, check_size=32)
    assert path.is_file() and diff < 1e-3 and not [p for p in out.iterdir() if p.name.startswith(".")]


# --------------------------------------------------------------------------- PIL's bomb guard and threads


def test_concurrent_reads_never_leave_pils_bomb_guard_off(tmp_path):
    path = bio.write_image(tmp_path / "a.png", np.random.default_rng(0).random((40, 40, 3), dtype=np.float32))
    before = Image.MAX_IMAGE_PIXELS
    assert before is not None
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible, to hit the interleavings
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(200):
                bio.read_image(path)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    try:
        threads = [threading.Thread(target=work) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(interval)
    assert not errors
    assert Image.MAX_IMAGE_PIXELS == before  # PIL's process-wide guard is as it was, not None
    bomb = tmp_path / "bomb.png"
    Image.new("L", (12000, 12000)).save(bomb)  # 144 MP, over PIL's own warning limit and blendfix's 64 MP
    with pytest.raises(bio.ImageReadError, match="decompression-bomb"):
        bio.read_image(bomb)
