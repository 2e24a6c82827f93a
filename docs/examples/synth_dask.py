"""Build a blendfix training set on a Dask cluster: one task per shard, then one merge.

    pip install "dask[distributed]"            # (+ dask-jobqueue for SLURMCluster / PBSCluster)
    python docs/examples/synth_dask.py --photos /data/ffhq --out /scratch/ffhq_set --shards 64
    python docs/examples/synth_dask.py ... --scheduler tcp://head:8786   # an existing cluster

Each task runs ``run_synth`` for one ``--shard i/n`` into ``OUT.parts/part-i`` (resumable, so a
retried or rerun task continues where it stopped) and the client merges the parts into OUT.
All machines must see the photo folder and the output folder at the same paths (shared FS).
"""

from __future__ import annotations

import argparse
from pathlib import Path


def synth_shard(photos: str, parts: str, index: int, count: int, seed: int, resolution: int,
                workers: int) -> tuple[int, int, int, int]:
    """One shard on one Dask worker: ``(index, made, already done, skipped)``."""
    from blendfix.synth.config import SynthConfig
    from blendfix.synth.runner import run_synth

    cfg = SynthConfig(input=photos, seed=seed, resolution=resolution)
    s = run_synth(cfg, Path(parts) / f"part-{index:04d}", shard=(index, count), workers=workers,
                  progress=False)
    return index, s.made, s.already_done + s.rerecorded, len(s.skipped) + s.skipped_before


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--photos", required=True)
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--shards", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--resolution", type=int, default=256)
    ap.add_argument("--workers-per-task", type=int, default=1, help="synth processes inside each task")
    ap.add_argument("--scheduler", help="address of a running Dask scheduler (default: a local cluster)")
    args = ap.parse_args()

    from dask.distributed import Client, LocalCluster, as_completed

    from blendfix.synth.merge import merge_datasets

    cluster = None if args.scheduler else LocalCluster(n_workers=2, threads_per_worker=1, processes=True)
    client = Client(args.scheduler or cluster)
    parts = Path(f"{args.out}.parts")
    futures = [client.submit(synth_shard, args.photos, str(parts), i, args.shards, args.seed, args.resolution,
                             args.workers_per_task, pure=False, retries=2, key=f"synth-shard-{i}")
               for i in range(args.shards)]
    for fut in as_completed(futures):
        i, made, done, skipped = fut.result()
        print(f"shard {i}/{args.shards}: {made} made, {done} already done, {skipped} skipped", flush=True)
    summary = merge_datasets(sorted(parts.iterdir()), args.out)
    print(f"merged into {args.out}: {summary.items} items, {summary.skipped} skipped photos")
    client.close()
    if cluster is not None:
        cluster.close()


if __name__ == "__main__":
    main()
