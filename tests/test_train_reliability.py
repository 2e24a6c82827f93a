"""Reliability of `blendfix train`: one process per run, resume by rerunning the same command, settings
fixed by the checkpoint, no leftovers from kills or a full disk, seeded Python/numpy RNG states."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
import torch
import yaml
from blend_toyset import make_toy_set

from blendfix.cli import main
from blendfix.locks import try_lock
from blendfix.train.runs import checkpoints, numbered_runs, rng_state
from blendfix.train.trainer import Trainer

TINY = {"model": {"widths": [16, 16, 16, 16], "blocks": [1, 1, 1, 1], "head_width": 8, "imagenet_init": "off"},
        "data": {"crop": 32, "workers": 0, "val_fraction": 0.25, "val_max": 2},
        "optim": {"iterations": 8, "batch_size": 2}, "loss": {"adversarial": 0, "perceptual": 0},
        "threads": 1, "device": "cpu", "log_every": 1, "val_every": 2, "ckpt_every": 2}


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    return make_toy_set(tmp_path_factory.mktemp("toy"), n=8, size=48)


@pytest.fixture
def cmd(toy, tmp_path):
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(TINY))
    return ["train", "--data", str(toy), "--out", str(tmp_path / "runs"), "--config", str(tmp_path / "tiny.yaml")]


def _resume(cmd):
    """The resume command without --config (the run's own config.yaml is used)."""
    return [*cmd[:5], "--resume", "auto"]


def _steps(run, split):
    return [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()
            if json.loads(line)["split"] == split]


def test_rerunning_the_identical_command_resumes(cmd, tmp_path):
    assert main([*cmd, "--resume", "auto", "--steps", "2"]) == 0  # no checkpoint yet: a new run
    assert main([*cmd, "--resume", "auto", "--steps", "2"]) == 0  # the same command again: resumes it
    (run,) = numbered_runs(tmp_path / "runs")
    assert [p.name for p in checkpoints(run)][-1] == "step_00000004.pt"
    assert _steps(run, "train") == [1, 2, 3, 4]


def test_settings_the_checkpoint_fixes_are_refused_on_resume(cmd, tmp_path, capsys):
    assert main([*cmd, "--steps", "2"]) == 0
    (run,) = numbered_runs(tmp_path / "runs")
    before = (run / "config.yaml").read_text()
    for change in ("optim.lr=0.002", "optim.iterations=400"):
        assert main([*_resume(cmd), "--set", change]) == 2
        err = capsys.readouterr().err
        assert change.split("=")[0] in err and "Start a new run" in err
        assert (run / "config.yaml").read_text() == before  # nothing recorded that would not be applied
        assert [p.name for p in checkpoints(run)] == ["step_00000002.pt"]
    # run-time settings may change on resume, and are recorded
    assert main([*_resume(cmd), "--set", "log_every=2", "--steps", "2"]) == 0
    assert yaml.safe_load((run / "config.yaml").read_text())["log_every"] == 2


def test_a_second_trainer_of_the_same_run_is_refused(cmd, tmp_path, capsys):
    assert main([*cmd, "--steps", "2"]) == 0
    (run,) = numbered_runs(tmp_path / "runs")
    holder = try_lock(run)  # what a live `train --resume auto` on this run holds
    try:
        assert main([*_resume(cmd)]) == 1
        assert "another blendfix train process is training this run" in capsys.readouterr().err
        assert [p.name for p in checkpoints(run)] == ["step_00000002.pt"]
        # a fresh run meanwhile gets its own folder, not the busy one
        assert main([*cmd, "--steps", "1"]) == 0
        assert [r.name for r in numbered_runs(tmp_path / "runs")] == ["run-001", "run-002"]
    finally:
        holder.close()


def test_a_run_killed_before_its_first_checkpoint_leaves_no_empty_folder(cmd, toy, tmp_path, monkeypatch):
    def killed(self, batch):  # the process dies during the first step, after the step-0 validation
        raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(Trainer, "train_step", killed)
        assert main([*cmd, "--steps", "2"]) == 130
    (run,) = numbered_runs(tmp_path / "runs")
    assert not checkpoints(run) and _steps(run, "val") == [0]
    assert main([*cmd, "--steps", "2"]) == 0  # the next run reuses the folder instead of run-002
    assert [r.name for r in numbered_runs(tmp_path / "runs")] == ["run-001"]
    assert _steps(run, "val") == [0, 2] and [p.name for p in checkpoints(run)] == ["step_00000002.pt"]


def test_metrics_of_steps_after_the_last_checkpoint_are_not_repeated(cmd, tmp_path, monkeypatch):
    real_save = Trainer.save

    def kill_at_4(self):  # steps 3 and 4 are logged, then the process dies before checkpoint 4
        if self.step == 4:
            raise KeyboardInterrupt
        return real_save(self)

    with monkeypatch.context() as m:
        m.setattr(Trainer, "save", kill_at_4)
        assert main([*cmd, "--steps", "6"]) == 130
    (run,) = numbered_runs(tmp_path / "runs")
    assert _steps(run, "train") == [1, 2, 3, 4] and (run / "val" / "step_00000004.png").is_file()
    assert main([*_resume(cmd), "--steps", "4"]) == 0
    assert _steps(run, "train") == [1, 2, 3, 4, 5, 6]
    assert _steps(run, "val") == [0, 2, 4, 6]
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run / "tb"))
    acc.Reload()
    assert [e.step for e in acc.Scalars("train/loss_g")] == [1, 2, 3, 4, 5, 6]


def test_a_failed_checkpoint_write_leaves_nothing_partial(cmd, tmp_path, monkeypatch, capsys):
    """Fault injection: the disk fills while the checkpoint is written (torch reports a RuntimeError)."""
    assert main([*cmd, "--steps", "2"]) == 0
    (run,) = numbered_runs(tmp_path / "runs")

    def disk_full(obj, f, *args, **kwargs):
        f.write(b"\0" * 65536)  # part of the file is written, then the write fails
        raise RuntimeError("[enforce fail at inline_container.cc:626] . unexpected pos 65536 vs 65600")

    with monkeypatch.context() as m:
        m.setattr(torch, "save", disk_full)
        assert main([*_resume(cmd), "--steps", "2"]) == 1
    err = capsys.readouterr().err
    assert "step_00000004.pt: could not write the checkpoint" in err and "internal error" not in err
    assert "--resume auto to continue from step_00000002.pt" in err
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step_00000002.pt"]
    assert main([*_resume(cmd), "--steps", "2"]) == 0  # after freeing space, the same command resumes
    assert [p.name for p in checkpoints(run)][-1] == "step_00000004.pt"


def test_python_and_numpy_rng_states_are_seeded_from_the_config(toy, tmp_path):
    from blendfix.config import from_dict
    from blendfix.train.config import TrainConfig

    states = []
    for i, seed in enumerate((3, 3, 4)):
        random.seed(100 + i)  # whatever ran before in the process must not matter
        np.random.seed(100 + i)
        Trainer(from_dict(TrainConfig, {**TINY, "seed": seed}), toy, tmp_path / f"r{i}")
        st = rng_state()
        states.append((st["python"], st["numpy"]["keys"].clone(), st["numpy"]["pos"]))
    assert states[0][0] == states[1][0] and torch.equal(states[0][1], states[1][1]) and states[0][2] == states[1][2]
    assert states[0][0] != states[2][0] and not torch.equal(states[0][1], states[2][1])
    # and a resumed trainer continues from the saved states
    tr = Trainer(from_dict(TrainConfig, {**TINY, "seed": 3}), toy, tmp_path / "s")
    tr.fit(2)
    saved = rng_state()
    random.seed(7)
    np.random.seed(7)
    Trainer(from_dict(TrainConfig, {**TINY, "seed": 3}), toy, tmp_path / "s", resume=checkpoints(tmp_path / "s")[-1])
    assert random.getstate() == saved["python"] and np.random.get_state()[2] == saved["numpy"]["pos"]
