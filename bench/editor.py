"""Time the synthetic editor per 512² image, and run it on every shared face.

    PYTHONPATH=src OMP_NUM_THREADS=1 python bench/editor.py [--faces DIR] [--repeats 3] [--all]

Per 512² face (the 512² files of ../shared/data/faces): landmark detection once, then one edit
per attribute with the landmarks passed in; the median over repeats is reported. Baseline
measured in the same run: reading the JPEG/PNG and writing the four result PNGs (what the CLI
adds around each edit). ``--all`` edits every face in the folder (recursively) with all four
attributes and lists any failure.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from blendfix.attributes import ATTRIBUTES  # noqa: E402
from blendfix.edit.synthetic import SyntheticEditor, detect  # noqa: E402
from blendfix.io import IMAGE_SUFFIXES, read_image, write_image, write_mask  # noqa: E402


def _median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def bench_512(faces: list[Path], repeats: int) -> None:
    editor = SyntheticEditor()
    rows: dict[str, list[float]] = {k: [] for k in ("read+write", "landmarks", *ATTRIBUTES)}
    with tempfile.TemporaryDirectory() as tmp:
        for path in faces:
            image = read_image(path)
            lm = detect(image, str(path))
            res = editor.edit(image, "smile", landmarks=lm)

            def io_round(path=path, res=res) -> None:
                read_image(path)
                write_image(Path(tmp) / "a.png", res.inverted)
                write_image(Path(tmp) / "b.png", res.edited)
                write_mask(Path(tmp) / "c.png", res.mask)
                write_image(Path(tmp) / "d.png", res.fused)

            rows["read+write"].append(_median_time(io_round, repeats))
            rows["landmarks"].append(_median_time(lambda image=image, path=path: detect(image, str(path)), repeats))
            for a in ATTRIBUTES:
                rows[a].append(_median_time(lambda a=a, image=image, lm=lm: editor.edit(image, a, landmarks=lm),
                                            repeats))
    base = statistics.mean(rows["read+write"])
    print(f"{len(faces)} faces of 512x512, median of {repeats} runs each, mean over faces:")
    print(f"{'step':12s} {'ms':>8s} {'x read+write':>13s}")
    for k, v in rows.items():
        m = statistics.mean(v)
        print(f"{k:12s} {1000 * m:8.1f} {m / base:13.2f}")
    edit = statistics.mean(statistics.mean(rows[a]) for a in ATTRIBUTES)
    print(f"one edit incl. landmarks: {1000 * (edit + statistics.mean(rows['landmarks'])):.1f} ms")


def run_all(folder: Path) -> int:
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    editor = SyntheticEditor()
    failures = []
    t0 = time.perf_counter()
    for path in files:
        try:
            image = read_image(path)
            lm = detect(image, str(path))
            for a in ATTRIBUTES:
                r = editor.edit(image, a, landmarks=lm)
                if r.edited.shape != image.shape or not (r.mask.max() > 0):
                    raise ValueError(f"{a}: bad result shape {r.edited.shape} or empty mask")
        except Exception as e:  # noqa: BLE001 - the point is to list every failure
            failures.append(f"{path.relative_to(folder)}: {e}")
    dt = time.perf_counter() - t0
    print(f"--all: {len(files)} faces x {len(ATTRIBUTES)} attributes in {dt:.1f} s, {len(failures)} failed")
    for f in failures:
        print("  " + f)
    return 1 if failures else 0


def main() -> int:
    default = Path(os.environ.get("BLENDFIX_SHARED", ROOT.parent / "shared")) / "data" / "faces"
    p = argparse.ArgumentParser(description="synthetic editor benchmark")
    p.add_argument("--faces", type=Path, default=default)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--all", action="store_true", help="also edit every face in the folder")
    args = p.parse_args()
    faces_512 = sorted(f for f in (args.faces / "celebamask_hq_512").glob("*.jpg") if f.stem.isdigit())[:6]
    bench_512(faces_512, args.repeats)
    return run_all(args.faces) if args.all else 0


if __name__ == "__main__":
    raise SystemExit(main())
