"""Multi-process (DDP, gloo on CPU) training keeps the replicas identical; rank 0 alone writes the run."""

from __future__ import annotations

import os
import socket

import pytest
import torch
import torch.multiprocessing as mp
from blend_toyset import make_toy_set

from blendfix.config import from_dict
from blendfix.train.config import TrainConfig

CFG = {"model": {"widths": [16, 16, 16, 16], "blocks": [1, 1, 1, 1], "head_width": 8, "imagenet_init": "off"},
       "disc": {"channel_multiplier": 1, "options": {"max_channels": 16}},
       "loss": {"adversarial": 0.1, "perceptual": 0}, "data": {"crop": 32, "workers": 0, "val_fraction": 0},
       "optim": {"iterations": 2, "batch_size": 2}, "device": "cpu", "threads": 1}


def _worker(rank: int, world: int, port: int, data: str, out: str) -> None:
    import torch.distributed as dist

    from blendfix.train.trainer import Trainer

    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    trainer = Trainer(from_dict(TrainConfig, CFG), data, out)
    trainer.fit()
    torch.save({"g": trainer.model.state_dict(), "d": trainer.disc.state_dict()}, f"{out}/rank{rank}.pt")
    dist.barrier()
    dist.destroy_process_group()


@pytest.mark.slow
def test_ddp_replicas_stay_in_sync(tmp_path):
    data = make_toy_set(tmp_path / "toy", n=8, size=32)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_worker, args=(2, port, str(data), str(tmp_path)), nprocs=2, join=True)
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    for part in ("g", "d"):
        params = [k for k in r0[part] if "running" not in k and "num_batches" not in k]
        assert all(torch.equal(r0[part][k], r1[part][k]) for k in params), part
    assert [p.name for p in (tmp_path / "checkpoints").iterdir()] == ["step_00000002.pt"]
