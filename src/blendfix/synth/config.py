"""The settings that define a synthesised training set, and how items get their seed and attribute.

Only settings that change what an item contains live in :class:`SynthConfig`; how a run is carried
out (worker count, shard, batch size, device) does not, so a set built with 1 or 8 workers, in one
go or in shards, has the same ``config.yaml`` and the same item files.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from ..attributes import ATTRIBUTES, canonical

EDITOR_CHOICES = ("synthetic", "gan", "paste", "mixed")
#: editors an item of a ``mixed`` set is drawn from (by a hash of seed and path)
MIXED_EDITORS = ("synthetic", "paste")
NON_SQUARE_CHOICES = ("crop", "skip")
POISSON_CHOICES = ("torch", "opencv")
PARSER_CHOICES = ("landmarks", "bisenet")
FUSION_CHOICES = ("paper", "released")  # = blendfix.blend.fuse.FUSIONS (not imported: keeps torch out)

#: Item seeds lie in ``[0, 2**31)`` so every editor can feed them to numpy or torch generators.
SEED_RANGE = 2**31


@dataclass
class SynthConfig:
    """What a training set is built from; saved as ``config.yaml`` in the dataset folder.

    * ``input``: the photo folder as given (recorded only; items are keyed by their path inside it).
    * ``editor``: ``synthetic`` (offline, no weights), ``gan`` (StyleGAN2 + pSp + Diff-CAM),
      ``paste`` (user-like pasted pairs, offline) or ``mixed`` (each item synthetic or paste).
    * ``variants``: items per photo (each its own seed, attribute and, for ``mixed``, editor);
      variant 0 is the item a one-variant set has, so sets grow without changing old items.
    * ``attributes``: each photo gets one of these, drawn from its item seed.
    * ``seed``: the global seed; an item's seed is derived from it and the photo's relative path.
    * ``resolution``: photos are centre-cropped to a square (see ``non_square``) and resized to
      ``resolution`` x ``resolution`` with ``INTER_AREA`` (``INTER_CUBIC`` when enlarging).
    * ``non_square``: ``crop`` = centre crop to the largest square, ``skip`` = list the photo as
      skipped (use ``skip`` when non-square photos mean unaligned ones you would rather leave out).
    * ``poisson``: backend of the seamless clone that makes the target: ``torch`` (default, faster on
      large images in ``bench/synth.py``) or ``opencv`` (``cv2.seamlessClone``; within one 8-bit level).
    * ``parser``: face parser for M_face: ``landmarks`` (offline, from the face mesh) or ``bisenet``
      (the paper's BiSeNet; needs its checkpoint).
    * ``generator`` / ``encoder`` / ``diffcam`` / ``alpha``: GAN editor checkpoints (registered names
      or paths) and edit strength (``None`` = the editor's default); unused by ``synthetic``.
    * ``fusion``: ``paper`` (F = T*M + I*(1-M)) or ``released`` (the released code: for smile and aging
      the mouth, parsed in I or T with ``parser``, is taken wholly from T; ``mask.png`` is then that
      fusion's weight). See :mod:`blendfix.edit.fusion`.
    """

    input: str = ""
    editor: str = "synthetic"
    attributes: tuple[str, ...] = ATTRIBUTES
    seed: int = 0
    resolution: int = 256
    non_square: str = "crop"
    poisson: str = "torch"
    parser: str = "landmarks"
    generator: str | None = None
    encoder: str | None = None
    diffcam: str | None = None
    alpha: float | None = None
    variants: int = 1
    fusion: str = "paper"

    def __post_init__(self) -> None:
        if self.editor not in EDITOR_CHOICES:
            raise ValueError(f"editor {self.editor!r}: choose one of {', '.join(EDITOR_CHOICES)}")
        if not self.attributes:
            raise ValueError("attributes: give at least one of " + ", ".join(ATTRIBUTES))
        attrs = tuple(dict.fromkeys(canonical(a) for a in self.attributes))
        self.attributes = attrs
        if self.resolution < 32:
            raise ValueError(f"resolution {self.resolution}: must be at least 32 pixels")
        if self.non_square not in NON_SQUARE_CHOICES:
            raise ValueError(f"non_square {self.non_square!r}: choose one of {', '.join(NON_SQUARE_CHOICES)}")
        if self.poisson not in POISSON_CHOICES:
            raise ValueError(f"poisson {self.poisson!r}: choose one of {', '.join(POISSON_CHOICES)}")
        if self.parser not in PARSER_CHOICES:
            raise ValueError(f"parser {self.parser!r}: choose one of {', '.join(PARSER_CHOICES)}")
        if self.variants < 1:
            raise ValueError(f"variants {self.variants}: must be at least 1")
        if self.editor == "gan" and self.variants > 1:
            raise ValueError("variants > 1 needs an offline editor (synthetic, paste, mixed)")
        if self.seed < 0:
            raise ValueError(f"seed {self.seed}: must be >= 0")
        if self.fusion not in FUSION_CHOICES:
            raise ValueError(f"fusion {self.fusion!r}: choose one of {', '.join(FUSION_CHOICES)}")


#: Fields that must agree between runs writing into one dataset folder, and between merged shards.
DEFINING_FIELDS = ("editor", "attributes", "seed", "resolution", "non_square", "poisson", "parser", "alpha", "variants",
                   "fusion")


def variant_rel(rel: str, variant: int) -> str:
    """The identity of variant ``variant`` of photo ``rel``: ``rel`` itself for 0, ``rel#k`` after."""
    if variant < 0:
        raise ValueError(f"variant {variant}: must be >= 0")
    return rel if variant == 0 else f"{rel}#{variant}"


def choose_editor(editor: str, global_seed: int, vrel: str) -> str:
    """The editor of one item: ``editor`` itself, or for ``mixed`` one of :data:`MIXED_EDITORS`."""
    if editor != "mixed":
        return editor
    return MIXED_EDITORS[int.from_bytes(_digest("editor", global_seed, vrel)[:8], "big") % len(MIXED_EDITORS)]


def _digest(*parts: object) -> bytes:
    return hashlib.sha256("\x1f".join(str(p) for p in parts).encode("utf-8")).digest()


def item_seed(global_seed: int, rel: str) -> int:
    """The seed of one item, from the global seed and the photo's path relative to the input folder.

    Independent of worker count, processing order and sharding. In ``[0, 2**31)``.
    """
    return int.from_bytes(_digest("seed", global_seed, rel)[:8], "big") % SEED_RANGE


def choose_attribute(global_seed: int, rel: str, attributes: tuple[str, ...]) -> str:
    """The attribute of one item, drawn uniformly from ``attributes`` by a hash of (seed, path)."""
    if not attributes:
        raise ValueError("attributes must not be empty")
    return attributes[int.from_bytes(_digest("attribute", global_seed, rel)[:8], "big") % len(attributes)]


_UNSAFE = re.compile(r"[^\w.-]+")  # letters of any script are kept


def item_id(rel: str) -> str:
    """A folder-safe, unique item id: the readable path without suffix plus 10 hex of its hash.

    ``celebamask_hq_512/0.jpg`` -> ``celebamask_hq_512_0-<hash>``; two photos that differ only in
    suffix or in unsafe characters still get different ids.
    """
    stem = rel.rsplit(".", 1)[0] if "." in rel.rsplit("/", 1)[-1] else rel
    readable = _UNSAFE.sub("_", stem.replace("/", "_")).strip("._-")[:60] or "photo"
    return f"{readable}-{hashlib.sha1(rel.encode('utf-8')).hexdigest()[:10]}"


def shard_of(rel: str, count: int) -> int:
    """The shard (``0 .. count-1``) a photo belongs to: a hash of its relative path, so shards stay
    balanced and a photo keeps its shard when others are added to the folder."""
    return int.from_bytes(_digest("shard", rel)[:8], "big") % count


def parse_shard(text: str | None) -> tuple[int, int] | None:
    """``"2/8"`` -> ``(2, 8)`` (shard index from 0); ``None`` -> ``None``."""
    if text is None:
        return None
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if not m:
        raise ValueError(f"--shard {text!r}: write it as i/n, e.g. 0/4 (i from 0 to n-1)")
    i, n = int(m.group(1)), int(m.group(2))
    if n < 1 or not 0 <= i < n:
        raise ValueError(f"--shard {text!r}: need n >= 1 and 0 <= i < n")
    return i, n
