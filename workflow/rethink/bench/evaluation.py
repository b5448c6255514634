"""COCO evaluation: faster-coco-eval against pycocotools on the same detections (`compare`),
and the evaluation of one checkpoint before and after issue 31 (`checkpoint`).

`compare`: ground truth, a synthetic val2017 written by rethink.data.writers (the study's generator,
default scene settings). Detections: the ground truth perturbed the way a detector errs:
shifted and resized boxes, shifted masks, duplicates, misses, wrong classes, and false
positives, with scores rounded to 5 decimals as rethink.evaluation.evaluate writes them (so ties occur,
as in real results files). Both backends run `rethink.evaluation.evaluate.evaluate_results`, the
function the evaluate rule calls, interleaved, with the evaluate rule's thread count.

`checkpoint`: a checkpoint scored on a val set as the evaluate job scores it (val dataset,
`rethink.evaluation.evaluate.predict`, `evaluate_results`), the way before issue 31 (items with their
ground-truth targets and masks, model(images)'s float masks pasted by torchvision, no
loader worker) against now (images alone, masks pasted straight into binary ones, and each
given loader worker count), interleaved, at the evaluate rule's thread count; the 12 bbox
and segm numbers, per-category AP and the results files must be equal, bit for bit:

    PYTHONPATH=workflow python -m rethink.bench.evaluation --coco DIR --checkpoint ckpt.pt \
        [--model JSON] [--repeats 3] [--threads 1] [--workers 0,1] [--out result.json]
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import time
from pathlib import Path

import numpy as np
import torch

from rethink.bench.common import load_config, median, rnd
from rethink.data import writers
from rethink.data.coco import CocoInstances, eval_transforms, load_coco
from rethink.evaluation.evaluate import SUMMARY_KEYS, encode_masks, evaluate_results, predict, val_dataset
from rethink.evaluation.outputs import BACKENDS


def synthetic_val(root: Path, synth_cfg: dict, n_images: int, seed: int = 1):
    if not (root / "annotations" / "instances_val2017.json").exists():
        writers.generate_coco(root, {**synth_cfg, "det_train_images": 1, "det_val_images": n_images},
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
        segm.append({**common, "segmentation": encode_masks(mask[None])[0]})

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


def _score(model, dataset, batch_size: int, backend: str, workers: int, binary_paste: bool):
    with contextlib.redirect_stdout(io.StringIO()):
        results = predict(model, dataset, torch.device("cpu"), batch_size, log_every=10**9,
                          workers=workers, binary_paste=binary_paste)
        metrics = evaluate_results(dataset.coco, results["bbox"], results.get("segm"), backend=backend)
    return metrics, results


def checkpoint(coco_root, model_cfg: dict, state: dict | None, batch_size: int = 4,
               backend: str = BACKENDS[0], threads: int = 1, repeats: int = 3,
               workers=(0, 1), seed: int = 0) -> dict:
    """Evaluation of one checkpoint (`state`, a model state dict; None: a seeded random
    init) on the val set of `coco_root`: the way before issue 31 against now with each of
    `workers` loader processes, interleaved (A B A B), `threads` torch threads. Each arm
    builds its val dataset, predicts and scores (COCOeval), as an evaluate job does after
    loading the model. Ratios are paired per repeat (before / now), then the median."""
    from rethink.models.detector import build_mask_rcnn
    torch.set_num_threads(threads)
    val = val_dataset(coco_root, model_cfg, ())
    torch.manual_seed(seed)
    model = build_mask_rcnn(model_cfg, val.num_classes)
    if state is not None:
        model.load_state_dict(state)
    model.eval()

    def before():  # rethink.evaluation.evaluate before issue 31: targets with masks, torchvision's paste
        dataset = CocoInstances(coco_root, "val", eval_transforms(), masks=model_cfg.get("masks", True))
        return _score(model, dataset, batch_size, backend, 0, False)

    def now(n_workers):
        return lambda: _score(model, val_dataset(coco_root, model_cfg, ()), batch_size, backend,
                              n_workers, True)

    arms = {"before": before, **{f"workers={w}": now(w) for w in workers}}
    times = {name: [] for name in arms}
    out = {}
    for rep in range(repeats):
        for name, arm in arms.items():
            t = time.perf_counter()
            out[name] = arm()
            times[name].append(time.perf_counter() - t)
            print(f"  [checkpoint evaluation] repeat {rep + 1}/{repeats} {name:>10}: "
                  f"{times[name][-1]:.2f} s", flush=True)
    ref_metrics, ref_results = out["before"]
    identical = {name: {"stats": all(m[t] == ref_metrics[t] for t in ("bbox", "segm") if t in ref_metrics),
                        "per_category": m["per_category"] == ref_metrics["per_category"],
                        "results": r == ref_results}
                 for name, (m, r) in out.items() if name != "before"}
    ratios = {name: rnd(median([b / a for b, a in zip(times["before"], times[name])]), 3)
              for name in arms if name != "before"}
    best = max(ratios, key=ratios.get)
    tasks = [t for t in ("bbox", "segm") if t in ref_metrics]
    return {
        "images": len(val), "threads": threads,
        "repeats": repeats, "batch_size": batch_size, "backend": backend,
        "detections": len(ref_results["bbox"]), "random_init": state is None,
        "seconds": {name: rnd(median(ts), 3) for name, ts in times.items()},
        "seconds_runs": {name: [rnd(t, 3) for t in ts] for name, ts in times.items()},
        "ratio_before_vs_now": ratios, "identical": identical,
        "stats": {t: {k: ref_metrics[t][k] for k in SUMMARY_KEYS} for t in tasks},
        "goals": {"identical": all(all(v.values()) for v in identical.values()),
                  f"ratio>=1.5 ({best})": ratios[best] >= 1.5},
    }


def main(argv=None):
    from rethink.engine import checkpoint as ckpt_io
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--coco", required=True, help="a COCO root with annotations/instances_val2017.json")
    p.add_argument("--checkpoint", help="a detection checkpoint (default: a seeded random init)")
    p.add_argument("--model", help="model config as JSON (default: config.yaml's model section)")
    p.add_argument("--batch-size", type=int, default=None, help="default: config.yaml's evaluate.batch_size")
    p.add_argument("--backend", choices=BACKENDS, default=BACKENDS[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--workers", default="0,1", help="loader worker counts of the arms after, comma-separated")
    p.add_argument("--out", help="write the result as JSON here")
    args = p.parse_args(argv)
    config = load_config()
    model_cfg = json.loads(args.model) if args.model else config["model"]
    state = ckpt_io.load(args.checkpoint, required=("model",))["model"] if args.checkpoint else None
    result = checkpoint(args.coco, model_cfg, state, args.batch_size or config["evaluate"]["batch_size"],
                        args.backend, args.threads, args.repeats,
                        [int(w) for w in args.workers.split(",") if w != ""])
    text = json.dumps(result, indent=1)
    if args.out:
        Path(args.out).write_text(text + "\n")
    print(text)
    for name, ratio in result["ratio_before_vs_now"].items():
        print(f"evaluation of one checkpoint, before / now ({name}): {ratio:.3f}x, identical: "
              f"{all(result['identical'][name].values())}")


if __name__ == "__main__":
    main()
