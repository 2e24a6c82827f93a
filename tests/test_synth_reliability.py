"""synth under adversity: -o inside -i, a full disk, kill -9 of a run with workers, stale temporary
files, and photos that are not the ones a set was built from (issue 16)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from synth_fakes import fake_factory

import blendfix
from blendfix.data import layout
from blendfix.errors import BlendfixError
from blendfix.io import write_image
from blendfix.synth import manifest
from blendfix.synth.config import SynthConfig, item_id
from blendfix.synth.runner import SKIPPED, run_synth

TESTS = Path(__file__).resolve().parent
SRC = Path(blendfix.__file__).resolve().parents[1]  # the blendfix this test session imports
GOOD = ["a/one.png", "a/two.jpg", "b/three.png", "b/c/four.png", "five.png", "six.png", "seven.jpg", "eight.png"]


def make_photos(root: Path, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    for rel in [*GOOD, "noface.png"]:
        write_image(root / rel, rng.random((40, 40, 3), dtype=np.float32))
    (root / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    return root


@pytest.fixture()
def photos(tmp_path: Path) -> Path:
    return make_photos(tmp_path / "photos")


def run(photos: Path, out: Path, **kw):
    return run_synth(SynthConfig(input=str(photos), seed=3), out, factory=fake_factory, progress=False, **kw)


def tree(folder: Path, skip: tuple[str, ...] = (".lock",)) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name not in skip}


def script(photos: Path, out: Path, **kw: object) -> str:
    """A Python program running the fake synth (exit code: the run's; 1 on an OSError)."""
    args = "".join(f", {k}={v!r}" for k, v in kw.items())
    return textwrap.dedent(f"""
        import sys
        sys.path[:0] = [{str(SRC)!r}, {str(TESTS)!r}]
        from synth_fakes import fake_factory
        from blendfix.synth.config import SynthConfig
        from blendfix.synth.runner import run_synth
        try:
            s = run_synth(SynthConfig(input={str(photos)!r}, seed=3), {str(out)!r}, factory=fake_factory,
                          progress=False{args})
        except OSError as e:
            print("OSError", e, file=sys.stderr)
            sys.exit(1)
        sys.exit(s.exit_code())
    """)


# --------------------------------------------------------------------------- -o inside -i


@pytest.mark.parametrize("inside", [".", "dataset", "deeper/dataset"])
def test_an_output_inside_the_photo_folder_is_refused_before_any_work(photos, inside):
    before = tree(photos)
    out = photos / inside
    with pytest.raises(BlendfixError) as err:
        run(photos, out)
    msg = str(err.value)
    assert str(out) in msg and str(photos) in msg and "outside" in msg
    assert tree(photos) == before  # nothing written: a rerun cannot pick up its own items as photos


# --------------------------------------------------------------------------- a full disk


@pytest.mark.parametrize("workers", [1, 2])
def test_a_full_disk_fails_the_run_lists_no_photo_and_a_rerun_completes(photos, tmp_path, monkeypatch, workers):
    run(photos, tmp_path / "reference")
    out = tmp_path / "set"
    monkeypatch.setenv("FAKE_SYNTH_ENOSPC", "b/three.png")
    s = run(photos, out, workers=workers)
    assert s.exit_code() == 1
    assert [src for src, _ in s.io_errors] == [str(photos / "b/three.png")]
    assert "No space left" in s.io_errors[0][1] and "No space left" in s.stopped
    assert all("three" not in r["source"] for r in manifest.read(out / SKIPPED))  # not a property of the photo
    assert not [p for p in (out / layout.ITEMS).iterdir() if p.name.startswith(".")]
    monkeypatch.delenv("FAKE_SYNTH_ENOSPC")
    again = run(photos, out, workers=workers)
    assert again.exit_code() == 0 and item_id("b/three.png") in {r["id"] for r in manifest.read(out / layout.MANIFEST)}
    assert tree(out) == tree(tmp_path / "reference")


def _can_mount_tmpfs() -> str | None:
    if not sys.platform.startswith("linux") or shutil.which("unshare") is None:
        return "needs Linux and unshare(1)"
    probe = subprocess.run(["unshare", "--user", "--map-root-user", "--mount", "sh", "-c",
                            "d=$(mktemp -d) && mount -t tmpfs -o size=64k tmpfs $d && umount $d && rmdir $d"],
                           capture_output=True, text=True)
    return None if probe.returncode == 0 else f"cannot mount a tmpfs here ({probe.stderr.strip()[:120]})"


def test_a_really_full_tmpfs_fails_the_run_and_a_rerun_after_freeing_space_completes(photos, tmp_path):
    """A 100 kB tmpfs (in a user+mount namespace) holds about two fake items; then it is enlarged."""
    reason = _can_mount_tmpfs()
    if reason:
        pytest.skip(reason)
    run(photos, tmp_path / "reference")
    mnt, result = tmp_path / "mnt", tmp_path / "result.json"
    mnt.mkdir()
    out = mnt / "set"
    prog = tmp_path / "prog.py"
    prog.write_text(script(photos, out))
    inner = tmp_path / "inner.py"
    inner.write_text(textwrap.dedent(f"""
        import json, subprocess, sys
        from pathlib import Path
        env = {{"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"}}
        mnt, out = {str(mnt)!r}, Path({str(out)!r})
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=100k", "tmpfs", mnt], check=True)
        first = subprocess.run([sys.executable, {str(prog)!r}], env=env, capture_output=True, text=True)
        skipped_first = (out / "skipped.jsonl").read_text() if (out / "skipped.jsonl").exists() else ""
        made_first = len([p for p in (out / "items").iterdir() if not p.name.startswith(".")])
        subprocess.run(["mount", "-o", "remount,size=8m", mnt], check=True)
        second = subprocess.run([sys.executable, {str(prog)!r}], env=env, capture_output=True, text=True)
        files = {{p.relative_to(out).as_posix(): p.read_bytes().hex() for p in sorted(out.rglob("*"))
                 if p.is_file() and p.name != ".lock"}}
        json.dump({{"first": first.returncode, "first_err": first.stderr[-2000:], "skipped_first": skipped_first,
                   "made_first": made_first, "second": second.returncode, "second_err": second.stderr[-2000:],
                   "files": files}}, open({str(result)!r}, "w"))
    """))
    subprocess.run(["unshare", "--user", "--map-root-user", "--mount", sys.executable, str(inner)],
                   check=True, timeout=300)
    r = json.loads(result.read_text())
    assert r["first"] != 0, r["first_err"]  # a full disk is a failure of the run, never exit 0
    assert 0 < r["made_first"] < len(GOOD), r  # it did fill up part-way
    assert "invalid" not in r["skipped_first"] and "No space" not in r["skipped_first"]
    assert r["second"] == 0, r["second_err"]
    want = {k: v.hex() for k, v in tree(tmp_path / "reference").items()}
    assert r["files"] == want  # the rerun made exactly the set an undisturbed run makes


# --------------------------------------------------------------------------- kill -9 with workers


#: Runs the synth program, waits until both workers are inside a slow item, SIGKILLs it and reports
#: which workers are still alive 3 s later. It is a child subreaper, so the orphaned workers become its
#: children (and are seen, whatever the machine's init does with orphans); it reaps and ends them.
HARNESS = textwrap.dedent("""
    import ctypes, json, os, signal, subprocess, sys, time
    from pathlib import Path
    ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    program, log = sys.argv[1], Path(sys.argv[2])
    proc = subprocess.Popen([sys.executable, "-c", program], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    workers = set()
    while len(workers) < 2 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
        workers = {int(line.split()[0]) for line in (log.read_text().splitlines() if log.exists() else [])}
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    def gone(pid):
        try:
            return os.waitpid(pid, os.WNOHANG)[0] == pid  # our child now: reaped when it has ended
        except ChildProcessError:
            return not Path(f"/proc/{pid}").exists()
    end = time.monotonic() + 3
    while not all(gone(p) for p in workers) and time.monotonic() < end:
        time.sleep(0.1)
    alive = sorted(p for p in workers if Path(f"/proc/{p}").exists() and not gone(p))
    for p in alive:
        os.kill(p, signal.SIGKILL)
        os.waitpid(p, 0)
    print(json.dumps({"workers": sorted(workers), "alive": alive, "parent": proc.pid}))
""")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs Linux (prctl, /proc)")
def test_killing_the_parent_kills_its_workers_at_once(photos, tmp_path):
    out, log = tmp_path / "set", tmp_path / "calls.log"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "FAKE_SYNTH_LOG": str(log), "FAKE_SYNTH_SLOW": "6"}
    res = subprocess.run([sys.executable, "-c", HARNESS, script(photos, out, workers=2), str(log)], env=env,
                         capture_output=True, text=True, timeout=180)
    assert res.returncode == 0, res.stderr
    report = json.loads(res.stdout)
    assert len(report["workers"]) == 2 and report["parent"] not in report["workers"]
    assert report["alive"] == [], f"worker(s) {report['alive']} outlived the killed parent (kill -9)"
    assert [p.name for p in (out / layout.ITEMS).iterdir() if not p.name.startswith(".")] == []
    s = run(photos, out)  # the folder resumes normally; the killed run's temporary folders are gone
    assert s.made == len(GOOD) and not [p for p in (out / layout.ITEMS).iterdir() if p.name.startswith(".")]


# --------------------------------------------------------------------------- stale temporary files


def test_temporary_files_a_kill_left_in_the_set_are_deleted_on_the_next_start(photos, tmp_path):
    from blendfix.folders import partial_name

    out = tmp_path / "set"
    run(photos, out, limit=2)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    stale = [out / ".manifest.k3j2h1g0.jsonl.part",  # an older version's name (no writer recorded)
             out / (partial_name(out / "config.yaml").replace(f".{os.getpid()}-", f".{dead}-") + "abcd1234.yaml.part")]
    for p in stale:
        p.write_text("half")
    run(photos, out)
    assert [p.name for p in out.iterdir() if p.name.endswith(".part")] == []


# --------------------------------------------------------------------------- the photos' identity


def test_a_rerun_from_another_folder_with_the_same_names_is_refused(photos, tmp_path, monkeypatch):
    out = tmp_path / "set"
    run(photos, out)
    reference = tree(out, skip=(".lock", layout.CONFIG))
    other = make_photos(tmp_path / "other", seed=1)  # same names, other pictures
    with pytest.raises(BlendfixError) as err:
        run(other, out)
    msg = str(err.value)
    assert str(photos.resolve()) in msg and str(other) in msg and "-o" in msg
    with pytest.raises(BlendfixError):  # and again: the refused run did not adopt the other folder
        run(other, out)
    assert tree(out, skip=(".lock", layout.CONFIG)) == reference

    # the same photos in another place (moved, copied) are the same set: resumed, nothing redone
    copy = tmp_path / "copy"
    shutil.copytree(photos, copy)
    log = tmp_path / "calls.log"
    monkeypatch.setenv("FAKE_SYNTH_LOG", str(log))
    s = run(copy, out)
    assert (s.already_done, s.made) == (len(GOOD), 0)
    # only the photos the first folder's run skipped are retried: a skip was about that folder's files
    assert sorted(line.split()[1] for line in log.read_text().splitlines()) == ["broken.png", "noface.png"]
    assert sorted(r["source"] for r in manifest.read(out / SKIPPED)) == [str(copy / "broken.png"),
                                                                          str(copy / "noface.png")]
    assert tree(out, skip=(".lock", layout.CONFIG, SKIPPED)) == {k: v for k, v in reference.items() if k != SKIPPED}

    # a photo replaced in place by another picture of another size
    write_image(copy / "five.png", np.zeros((48, 48, 3), np.float32))
    with pytest.raises(BlendfixError, match="five.png"):
        run(copy, out)


def test_a_kill_before_the_first_item_leaves_a_folder_that_says_so_and_resumes(photos, tmp_path):
    from blendfix.data.dataset import BlendDataset

    out, log = tmp_path / "set", tmp_path / "calls.log"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "FAKE_SYNTH_LOG": str(log), "FAKE_SYNTH_SLOW": "60"}
    proc = subprocess.Popen([sys.executable, "-c", script(photos, out)], env=env, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not (log.exists() and log.read_text()) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        proc.kill()
        proc.wait()
    assert log.read_text()  # it was inside its first item
    visible = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if not p.name.startswith("."))
    assert visible == [layout.CONFIG, layout.ITEMS]  # no manifest, no skip list, no item: nothing to misread
    with pytest.raises(ValueError, match="no finished item yet.*synth"):
        BlendDataset(out)
    s = run(photos, out)
    assert s.made == len(GOOD) and not [p for p in out.rglob(".*") if p.name != ".lock"]
