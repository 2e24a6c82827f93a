"""`blendfix synth`: build the training set (layout in :mod:`blendfix.data.layout`, rules in docs/synth.md).

* :class:`SynthConfig` — what a set is made from (saved as ``config.yaml``).
* :func:`run_synth` — build or resume a set (workers, shards, skips, progress).
* :func:`merge_datasets` — merge shard folders into one set.

The per-photo pipeline (editor -> face mask -> Poisson target) is :mod:`blendfix.synth.pipeline`;
it is imported lazily, so the runner can be used without the editor stack.
"""

from __future__ import annotations

from .config import SynthConfig, choose_attribute, item_id, item_seed, parse_shard, shard_of
from .merge import MergeSummary, merge_datasets
from .runner import RunSummary, SkipItem, Task, run_synth

__all__ = ["MergeSummary", "RunSummary", "SkipItem", "SynthConfig", "Task", "choose_attribute", "item_id",
           "item_seed", "merge_datasets", "parse_shard", "run_synth", "shard_of"]
