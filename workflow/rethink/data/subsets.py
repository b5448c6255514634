"""The paper's less-data regimes: a fraction of the COCO train set, written as a COCO
annotation file, deterministic by seed.

Subsets are prefixes of one seeded permutation of the train image ids, so a smaller
regime's images are a subset of every larger one's (1k in 3.5k in 10k), as when one
samples once and truncates.

    python -m rethink.data.subsets --coco DIR --fraction 0.0297 --seed 0 --out subset.json
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from rethink.core.atomic import write_json
from rethink.core.names import SPLITS, skipped_image_ids
from rethink.core.order import mix_seed
from rethink.core.study import subset_size


def choose(image_ids, fraction: float, seed: int) -> list[int]:
    """The subset's image ids, sorted: a prefix of a seeded permutation of the sorted ids."""
    ids = sorted(int(i) for i in image_ids)
    order = np.random.default_rng(mix_seed(seed, 5)).permutation(len(ids))
    return sorted(ids[i] for i in order[:subset_size(len(ids), fraction)])


def subset_annotations(doc: dict, keep: set[int]) -> dict:
    """A COCO annotation document restricted to the images in `keep`."""
    out = {k: v for k, v in doc.items() if k not in ("images", "annotations")}
    out["images"] = [im for im in doc["images"] if im["id"] in keep]
    out["annotations"] = [a for a in doc.get("annotations", []) if a["image_id"] in keep]
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--coco", required=True, help="COCO root (annotations/instances_train2017.json)")
    p.add_argument("--fraction", type=float, required=True, help="fraction of the train images, in (0, 1]")
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--layout-stats", help="the layout check's JSON: images it skipped are never chosen")
    p.add_argument("--out", required=True, help="subset annotation file to write")
    args = p.parse_args(argv)
    if not 0 < args.fraction <= 1:
        p.error(f"--fraction must be in (0, 1], got {args.fraction}")
    ann_file = Path(args.coco) / "annotations" / SPLITS["train"][0]
    try:
        doc = json.loads(ann_file.read_text())
    except (OSError, ValueError) as e:
        raise SystemExit(f"cannot read {ann_file}: {e}")
    skip = skipped_image_ids(args.layout_stats, "train")
    ids = [im["id"] for im in doc.get("images", []) if im["id"] not in skip]
    if not ids:
        raise SystemExit(f"{ann_file}: no train images to take a subset of")
    keep = set(choose(ids, args.fraction, args.seed))
    out = subset_annotations(doc, keep)
    write_json(args.out, out)
    print(f"wrote {args.out}: {len(out['images'])} of {len(ids)} train images "
          f"({args.fraction:.4g}), {len(out['annotations'])} annotations")


if __name__ == "__main__":
    sys.exit(main())
