"""Write the synthetic editor's evidence strips: 8 shared faces x 4 attributes -> docs/strips/.

One JPEG per face (quality 85): a row per attribute (eyebrows, beard, aging, smile), each row
I | I' | T | M | F with panels 256 px high. Run from the project root:

    PYTHONPATH=src python docs/make_strips.py            # faces from ../shared/data/faces
    PYTHONPATH=src python docs/make_strips.py --faces DIR --out docs/strips --seed 0

The faces are read from the shared folder and never copied into the project; the strips show
them edited, reduced to 256 px panels, for research documentation only.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from blendfix.attributes import ATTRIBUTES  # noqa: E402
from blendfix.cli.edit import strip_image  # noqa: E402
from blendfix.edit.synthetic import SyntheticEditor, detect  # noqa: E402
from blendfix.io import read_image  # noqa: E402

#: Eight varied faces: white and busy backgrounds, earrings, a hand, three-quarter pose, dark and
#: light skin, a child, an old photo, 256 / 512 / 1024 px, and one unaligned non-square photo.
FACES = (
    "celebamask_hq_512/3.jpg",
    "gpen_ffhq_1024/00001.png",
    "stargan_v2_celeba_hq/src/male/005735.jpg",
    "stargan_v2_celeba_hq/src/female/039913.jpg",
    "gfpgan_cropped_512/Adele_crop.png",
    "hfgi_celeba_hq_256/00044.jpg",
    "stargan_v2_celeba_hq/ref/male/012712.jpg",
    "celebamask_hq_512/unaligned_sample.jpg",
)


def main(argv: list[str] | None = None) -> int:
    default_faces = Path(os.environ.get("BLENDFIX_SHARED", ROOT.parent / "shared")) / "data" / "faces"
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--faces", type=Path, default=default_faces)
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "strips")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--panel", type=int, default=256)
    args = p.parse_args(argv)
    editor = SyntheticEditor()
    args.out.mkdir(parents=True, exist_ok=True)
    total = 0
    for rel in FACES:
        path = args.faces / rel
        image = read_image(path)
        landmarks = detect(image, str(path))
        rows = [strip_image(editor.edit(image, a, seed=args.seed, landmarks=landmarks), args.panel)
                for a in ATTRIBUTES]
        sheet = np.concatenate(rows, axis=0)
        name = rel.replace("/", "_").rsplit(".", 1)[0] + ".jpg"
        Image.fromarray(sheet).save(args.out / name, quality=85)
        total += (args.out / name).stat().st_size
        print(f"{args.out / name}  ({', '.join(ATTRIBUTES)})")
    print(f"{len(FACES)} sheets, {total / 1e6:.2f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
