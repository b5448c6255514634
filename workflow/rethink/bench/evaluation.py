"""COCO evaluation: faster-coco-eval against pycocotools on the same detections.

Ground truth: a synthetic val2017 written by rethink.synth (the study's generator, default
scene settings). Detections: the ground truth perturbed the way a detector errs: shifted and
resized boxes, shifted masks, duplicates, misses, wrong classes, and false positives, with
scores rounded to 5 decimals as rethink.evaluate writes them (so ties occur, as in real
results files). Both backends run `rethink.evaluate.evaluate_results`, the function the
evaluate rule calls, interleaved, with the evaluate rule's thread count.
"""
from __future__ import annotations

import contextlib
import io
import time
from pathlib import Path

import numpy as np
import torch

from .. import synth
from ..data import encode_mask, load_coco
from ..evaluate import BACKENDS, SUMMARY_KEYS, evaluate_results
from .common import median, rnd


def synthetic_val(root: Path, synth_cfg: dict, n_images: int, seed: int = 1):
    if not (root / "annotations" / "instances_val2017.json").exists():
        synth.generate_coco(root, {**synth_cfg, "det_train_images": 1, "det_val_images": n_images},
                            seed=seed)
    gt, _ = load_coco(root, "val")
    return gt


def perturbed_detections(gt, seed: int = 0):
    """bbox and segm results (same detections, same scores) from the ground truth."""
    rng = np.random.default_rng(seed)
    cats = sorted(gt.cats)
    bbox, segm = [], []

    def add(image_id, cat, score, box, mask):
        common = {"image_id": image_id, "category_id": cat, "score": round(float(score), 5)}
        bbox.append({**common, "bbox": [round(float(v), 2) for v in box]})
        segm.append({**common, "segmentation": encode_mask(mask)})

    for image_id in sorted(gt.imgs):
        img = gt.imgs[image_id]
        h, w = img["height"], img["width"]
        for a in gt.imgToAnns.get(image_id, []):
            mask = gt.annToMask(a)
            x, y, bw, bh = a["bbox"]
            for k in range(int(rng.choice([0, 1, 1, 1, 2, 3]))):  # misses and duplicates
                dx, dy = (int(v) for v in rng.integers(-3, 4, 2))
                shifted = np.roll(np.roll(mask, dy, 0), dx, 1)
                cat = a["category_id"] if rng.random() > 0.1 else int(rng.choice(cats))
                score = rng.uniform(0.3, 1.0) if k == 0 else rng.uniform(0.05, 0.7)
                box = [x + dx + rng.normal(0, 0.05 * bw), y + dy + rng.normal(0, 0.05 * bh),
                       bw * rng.uniform(0.85, 1.15), bh * rng.uniform(0.85, 1.15)]
                add(image_id, cat, score, box, shifted)
        for _ in range(int(rng.poisson(1.0))):  # false positives
            bw, bh = rng.uniform(8, w / 2), rng.uniform(8, h / 2)
            x0, y0 = rng.uniform(0, w - bw), rng.uniform(0, h - bh)
            mask = np.zeros((h, w), np.uint8)
            mask[int(y0):int(y0 + bh), int(x0):int(x0 + bw)] = 1
            add(image_id, int(rng.choice(cats)), rng.uniform(0.05, 0.6), [x0, y0, bw, bh], mask)
    return bbox, segm


def compare(root: Path, synth_cfg: dict, n_images: int, repeats: int, threads: int) -> dict:
    t0 = time.perf_counter()
    gt = synthetic_val(root, synth_cfg, n_images)
    bbox, segm = perturbed_detections(gt)
    setup_s = time.perf_counter() - t0
    torch.set_num_threads(threads)  # faster-coco-eval's IoU threads follow torch's
    times = {b: [] for b in BACKENDS}
    metrics = {}
    for rep in range(repeats):
        for backend in BACKENDS:
            t = time.perf_counter()
            with contextlib.redirect_stdout(io.StringIO()):
                metrics[backend] = evaluate_results(gt, bbox, segm, backend=backend)
            times[backend].append(time.perf_counter() - t)
            print(f"  [evaluation] repeat {rep + 1}/{repeats} {backend:>11}: "
                  f"{times[backend][-1]:.2f} s", flush=True)
    fast, ref = metrics["faster"], metrics["pycocotools"]
    diffs = [abs(fast[task][k] - ref[task][k]) for task in ("bbox", "segm") for k in SUMMARY_KEYS]
    cat_diffs = [abs(fast["per_category"][task][c] - ref["per_category"][task][c])
                 for task in ("bbox", "segm") for c in ref["per_category"][task]]
    ratios = [p / f for p, f in zip(times["pycocotools"], times["faster"])]
    return {
        "images": len(gt.imgs), "gt_annotations": len(gt.anns), "detections": len(bbox),
        "setup_s": rnd(setup_s, 2), "threads": threads, "repeats": repeats,
        "seconds": {b: rnd(median(ts), 3) for b, ts in times.items()},
        "seconds_runs": {b: [rnd(t, 3) for t in ts] for b, ts in times.items()},
        "speedup_faster_vs_pycocotools": rnd(median(ratios), 3),
        "max_abs_diff_12_stats": float(max(diffs)),
        "max_abs_diff_per_category_ap": float(max(cat_diffs)) if cat_diffs else 0.0,
        "stats": {b: {task: {k: rnd(m[task][k], 6) for k in SUMMARY_KEYS} for task in ("bbox", "segm")}
                  for b, m in metrics.items()},
        "goals": {"identical_to_1e-6": max(diffs) <= 1e-6, "speedup>=3": median(ratios) >= 3},
    }
