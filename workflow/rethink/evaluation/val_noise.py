"""How much of a claim's noise is the val set's: bootstrap over val images.

A claim's per-seed difference (pretrained - scratch) varies with the training seed and with
which images happen to be in the val set. This resamples the val images with replacement
(a duplicated image becomes a new image with its ground truth and detections copied) and
scores both checkpoints of a pair on each resample, so the spread of the paired difference
over resamples is the val-sampling standard error (SE) of that difference. Run it at several
val sizes (the first N images of a larger val set) to choose the smallest val set whose SE
is at most a quarter of the claims' margin.

    python -m rethink.evaluation.val_noise --gt instances_val2017.json \\
        --pair PRE_bbox_results.json SCR_bbox_results.json [--pair ...] \\
        [--iou-type bbox] [--sizes 100 500 1000] [--replicates 200] [--seed 0] --out noise.json

Each pair's results files are COCO results (what the evaluate rule writes as
``bbox_results.json``/``segm_results.json``), scored on the ``--gt`` file's images.
"""
from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

from rethink.core.atomic import write_text
from rethink.evaluation.evaluate import _faster, coco_metrics


def _by_image(items: list[dict]) -> dict[int, list[dict]]:
    out: dict[int, list[dict]] = {}
    for it in items:
        out.setdefault(int(it["image_id"]), []).append(it)
    return out


class Resampler:
    """Ground truth and detections regrouped by image, to build resampled val sets fast."""

    def __init__(self, gt: dict, results: list[list[dict]]):
        self.images = {int(im["id"]): im for im in gt["images"]}
        self.ids = sorted(self.images)
        self.categories = gt["categories"]
        self.gt = _by_image(gt["annotations"])
        self.results = [_by_image(r) for r in results]

    def sample(self, ids) -> tuple[dict, list[list[dict]]]:
        """The val set of these image ids (repeats allowed): image k of the sample gets id k + 1."""
        images, anns, dets = [], [], [[] for _ in self.results]
        for k, old in enumerate(ids, start=1):
            images.append({**self.images[old], "id": k})
            for a in self.gt.get(old, ()):
                anns.append({**a, "id": len(anns) + 1, "image_id": k})
            for out, by_image in zip(dets, self.results):
                out.extend({**d, "image_id": k} for d in by_image.get(old, ()))
        return {"images": images, "annotations": anns, "categories": self.categories}, dets


def score(dataset: dict, results: list[dict], iou_type: str) -> float:
    """COCO AP of one results list on one val set (faster-coco-eval, as the pipeline scores)."""
    gt = _faster().COCO(dataset)
    if not results:
        return 0.0
    return coco_metrics(gt, results, iou_type, backend="faster")["summary"]["AP"]


def bootstrap(sampler: Resampler, size: int, replicates: int, rng: np.random.Generator,
              iou_type: str) -> dict:
    """AP of each results list on the first `size` val images, and the bootstrap SE of each
    and of the paired difference results[0] - results[1]."""
    base = sampler.ids[:size]
    dataset, dets = sampler.sample(base)
    full = [score(dataset, d, iou_type) for d in dets]
    draws = []
    for _ in range(replicates):
        ids = rng.choice(base, size=len(base), replace=True)
        dataset, dets = sampler.sample(ids)
        draws.append([score(dataset, d, iou_type) for d in dets])
    draws = np.asarray(draws)
    out = {"images": len(base), "replicates": replicates, "ap": full,
           "se": draws.std(axis=0, ddof=1).tolist()}
    if draws.shape[1] == 2:
        out["difference"] = full[0] - full[1]
        out["difference_se"] = float((draws[:, 0] - draws[:, 1]).std(ddof=1))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m rethink.evaluation.val_noise", description=__doc__.split("\n\n")[0])
    ap.add_argument("--gt", required=True, help="the val annotation file (COCO instances JSON)")
    ap.add_argument("--pair", nargs=2, action="append", required=True, metavar=("PRETRAINED", "SCRATCH"),
                    help="two COCO results files of one seed and schedule (repeat for more pairs)")
    ap.add_argument("--iou-type", choices=("bbox", "segm"), default="bbox")
    ap.add_argument("--sizes", type=int, nargs="+", default=[100],
                    help="val sizes: the first N images (sorted ids) of --gt (default 100)")
    ap.add_argument("--replicates", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    try:
        with open(args.gt) as f:
            gt = json.load(f)
        pairs = []
        for pre, scr in args.pair:
            loaded = []
            for path in (pre, scr):
                with open(path) as f:
                    loaded.append(json.load(f))
            pairs.append(((pre, scr), loaded))
    except (OSError, json.JSONDecodeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    n_images = len(gt.get("images", []))
    bad = [s for s in args.sizes if not 0 < s <= n_images]
    if bad:
        print(f"error: --sizes {bad}: {args.gt} has {n_images} images", file=sys.stderr)
        return 2
    if args.replicates < 2:
        print("error: --replicates must be at least 2", file=sys.stderr)
        return 2
    rng = np.random.default_rng(args.seed)
    report = {"gt": args.gt, "iou_type": args.iou_type, "pairs": []}
    for (pre, scr), loaded in pairs:
        sampler = Resampler(gt, loaded)
        rows = []
        for size in args.sizes:
            t0 = time.perf_counter()
            row = bootstrap(sampler, size, args.replicates, rng, args.iou_type)
            row["seconds"] = round(time.perf_counter() - t0, 1)
            rows.append(row)
            print(f"{pre} - {scr}, {size} images: difference {100 * row['difference']:.2f} AP, "
                  f"val-sampling SE {100 * row['difference_se']:.2f} (each: "
                  f"{100 * row['se'][0]:.2f}, {100 * row['se'][1]:.2f}; {row['seconds']} s)", flush=True)
        report["pairs"].append({"pretrained": pre, "scratch": scr, "sizes": rows})
    summary = {}
    for size in args.sizes:
        ses = [r["difference_se"] for p in report["pairs"] for r in p["sizes"] if r["images"] == size]
        summary[str(size)] = {"difference_se_mean": float(np.mean(ses)), "pairs": len(ses)}
    report["summary"] = summary
    write_text(args.out, json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
