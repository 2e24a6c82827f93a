"""Where a verb writes each item's output: into its image set, one file, or a folder.

* input an image set and no ``-o``: the item's own ``role`` file (``items/<id>/<role>.png``), and the
  manifest gets the item's record again, listing the new role (:meth:`Destination.record`);
* ``-o`` ending in an image suffix and one item: that file;
* otherwise ``-o`` is a folder: ``<id><suffix>.<ext>``.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from ..io import IMAGE_SUFFIXES
from .imageset import ImageSet, Item, is_image_set

EXTENSIONS = ("png", "jpg", "webp")


class Destination:
    """The output path of every item of one run (see the module docstring)."""

    def __init__(self, source: Path, out: Path | None, role: str, *, count: int, ext: str = "png",
                 suffix: str = "", verb: str = "") -> None:
        if ext not in EXTENSIONS:
            raise ValueError(f"--ext {ext!r}: choose one of {', '.join(EXTENSIONS)}")
        self.role, self.ext, self.suffix = role, ext, suffix
        self.set = ImageSet(source) if out is None and is_image_set(source) else None
        self.file: Path | None = None
        if out is None and self.set is None:
            raise ValueError(f"{source} is not an image set, so give the output with -o "
                             f"(e.g. `blendfix {verb} -i {source} -o out/`)")
        if out is not None and out.suffix.lower() in IMAGE_SUFFIXES and not out.is_dir():
            if count != 1:
                raise ValueError(f"-o {out} names one image file but the input holds {count} items; "
                                 "give a folder instead")
            self.file = out
        self.out = out

    @property
    def folder(self) -> Path | None:
        """The folder outputs go to outside an image set (``-o`` itself, or the folder of ``-o FILE``)."""
        return None if self.set is not None else (self.file.parent if self.file is not None else self.out)

    def path(self, item: Item, role: str | None = None, tag: str = "") -> Path:
        """The file ``item``'s output (or its ``role`` output) goes to; ``tag`` names a side picture."""
        role = role or self.role
        if self.set is not None:
            p = self.set.path(item.id, role)
            return p.with_name(f"{p.stem}{tag}.png") if tag else p
        if self.file is not None and not tag:
            return self.file
        if self.file is not None:
            return self.file.with_name(f"{self.file.stem}{tag}.png")
        if tag:
            return self.out / f"{item.id}{tag}.png"
        return self.out / f"{item.id}{self.suffix}.{self.ext}"

    def record(self, items: Iterable[Item], roles: Iterable[str] | None = None) -> None:
        """In set mode, append the done items' records listing their new roles (one write)."""
        if self.set is None:
            return
        roles = tuple(roles or (self.role,))
        self.set.add(i.record.with_roles(roles) for i in items if i.record is not None)
