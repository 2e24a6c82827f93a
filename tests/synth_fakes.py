"""A small, real item maker for testing the synth runner without the editor/parser/Poisson stack.

It reads the photo (so corrupt files are really unreadable), shrinks it, mixes in noise drawn from
the item seed and writes every layout image. Environment hooks: ``FAKE_SYNTH_LOG`` (a file each call
appends ``pid rel`` to), ``FAKE_SYNTH_DIE`` (a photo's rel path: the process exits mid-item),
``FAKE_SYNTH_ENOSPC`` (comma-separated rel paths: writing their item fails with ``OSError(ENOSPC)``,
as on a full disk) and ``FAKE_SYNTH_SLOW`` (seconds each item takes).
"""

from __future__ import annotations

import errno
import os
import time
from pathlib import Path

import cv2
import numpy as np

from blendfix.data import layout
from blendfix.errors import NoFaceError
from blendfix.io import read_image, write_image

SIZE = 16


class FakeMaker:
    def __init__(self, config) -> None:
        self.config = config

    def __call__(self, task, tmp_dir: Path):
        log = os.environ.get("FAKE_SYNTH_LOG")
        if log:
            with open(log, "a") as fh:
                fh.write(f"{os.getpid()} {task.rel}\n")
        if "noface" in task.rel:
            raise NoFaceError(f"{task.source}: no face found")
        if os.environ.get("FAKE_SYNTH_SLOW"):
            time.sleep(float(os.environ["FAKE_SYNTH_SLOW"]))
        small = cv2.resize(read_image(task.path), (SIZE, SIZE), interpolation=cv2.INTER_AREA)
        rng = np.random.default_rng(task.seed)
        names = [f for f in layout.ITEM_FILES if f != layout.META]
        for i, name in enumerate(names):
            if os.environ.get("FAKE_SYNTH_DIE") == task.rel and i == 3:
                os._exit(7)
            if task.rel in os.environ.get("FAKE_SYNTH_ENOSPC", "").split(",") and i == 2:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp_dir / name))
            write_image(tmp_dir / name, 0.5 * small + 0.5 * rng.random(small.shape, dtype=np.float32))
        return {"fake_mean": round(float(small.mean()), 6)}, {"fake": 0.001}

    def make_batch(self, tasks, tmp_dirs):
        out = []
        for t, d in zip(tasks, tmp_dirs, strict=True):
            try:
                out.append(self(t, d))
            except Exception as e:  # noqa: BLE001 - per-task failures are returned, as the protocol says
                out.append(e)
        return out


def fake_factory(config, options):
    return FakeMaker(config)
