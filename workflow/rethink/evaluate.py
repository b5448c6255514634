"""COCO evaluation (COCOeval, bbox and segm) of a detection checkpoint.

Writes the detections as COCO results files (bbox and segm, re-scorable by anyone) and a
metrics JSON with all 12 summary numbers per task and per-category AP.

    python -m rethink.evaluate --coco DIR --model JSON --checkpoint ckpt.pt \
        --out-metrics m.json --out-bbox bbox.json --out-segm segm.json \
        [--layout-stats checks/coco_layout.json] [--backend faster|pycocotools]

--backend faster (the default) scores with faster-coco-eval's COCOeval (C++ matching and
accumulation), pycocotools with the reference implementation; both give the same 12
numbers (tests/test_evaluate.py and `python -m rethink.benchmark` check it).

With --layout-stats, the val images the layout check skipped as undecodable
(data.corrupt_images: skip) are left out of the dataset and of the evaluation.

Training jobs evaluate the checkpoints they write in their own process
(`CheckpointEvaluator`, same code and numbers as this CLI); the evaluate rule adopts that
result when its settings match (`rethink.evaluation_job`).
"""
from __future__ import annotations

import contextlib
import io
import sys
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from . import checkpoint, evaluation_job
from .atomic import run_job, write_json
from .backbones import check_conventions
from .data import CocoInstances, collate, eval_transforms, skipped_image_ids
from .models import build_mask_rcnn
from .runtime import Progress, json_arg, setup

SUMMARY_KEYS = ["AP", "AP50", "AP75", "APs", "APm", "APl",
                "AR1", "AR10", "AR100", "ARs", "ARm", "ARl"]
BACKENDS = evaluation_job.BACKENDS


def encode_masks(masks) -> list[dict]:
    """COCO RLEs of binary masks (N x H x W), encoded in one pycocotools call (as encode_mask)."""
    if len(masks) == 0:
        return []
    rles = mask_utils.encode(np.asfortranarray(masks.transpose(1, 2, 0).astype(np.uint8)))
    return [{"size": [int(s) for s in r["size"]], "counts": r["counts"].decode("ascii")} for r in rles]


@torch.inference_mode()  # no autograd bookkeeping at all: the same kernels, the same numbers
def predict(model, dataset, device, batch_size=4, log_every=50):
    """Run the model on every image; return (bbox results, segm results) in COCO format."""
    model.eval()
    cat_of = {label: cat for cat, label in dataset.label_of.items()}
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, collate_fn=collate)
    bbox_res, segm_res = [], []
    progress = Progress(len(dataset), log_every, "img")
    for images, targets in loader:
        outputs = model([im.to(device) for im in images])
        for target, out in zip(targets, outputs):
            boxes = out["boxes"].cpu().numpy()
            rles = encode_masks((out["masks"][:, 0] > 0.5).cpu().numpy())
            for box, score, label, rle in zip(boxes, out["scores"].tolist(),
                                              out["labels"].tolist(), rles):
                x0, y0, x1, y1 = (float(v) for v in box)
                common = {"image_id": target["image_id"], "category_id": cat_of[label],
                          "score": round(score, 5)}
                bbox_res.append({**common, "bbox": [round(x0, 2), round(y0, 2),
                                                    round(x1 - x0, 2), round(y1 - y0, 2)]})
                segm_res.append({**common, "segmentation": rle})
        line = progress.step(len(images))
        if line:
            print(f"eval {line}", flush=True)
    return bbox_res, segm_res


def load_results(gt: COCO, results: list) -> COCO:
    """COCO.loadRes, plus the empty case it cannot handle (no detections at all)."""
    if results:
        with contextlib.redirect_stdout(io.StringIO()):  # loadRes adds keys: give it copies
            return gt.loadRes([dict(r) for r in results])
    dt = COCO()
    dt.dataset = {"images": list(gt.dataset["images"]), "categories": list(gt.dataset["categories"]),
                  "annotations": []}
    with contextlib.redirect_stdout(io.StringIO()):
        dt.createIndex()
    return dt


@lru_cache(maxsize=1)
def _faster():
    import faster_coco_eval
    return faster_coco_eval


def faster_gt(gt):
    """The ground truth as a faster-coco-eval COCO (from a pycocotools one, or as is).

    Annotations are copied one level deep: faster-coco-eval adds keys (ignore, rle) to them.
    """
    fce = _faster()
    if isinstance(gt, fce.COCO):
        return gt
    dataset = {**gt.dataset, "annotations": [dict(a) for a in gt.dataset.get("annotations", [])]}
    return fce.COCO(dataset)


def _faster_eval(gt, results: list, iou_type: str):
    fce = _faster()
    gt = faster_gt(gt)
    lines = []
    dt = gt.loadRes([dict(r) for r in results])  # loadRes adds keys: give it copies
    ev = fce.COCOeval_faster(gt, dt, iou_type, print_function=lines.append,
                             rle_iou_max_workers=max(1, torch.get_num_threads()))
    return ev, lambda: "\n".join(lines)


def coco_metrics(gt: COCO, results: list, iou_type: str, image_ids=None,
                 backend: str = BACKENDS[0]) -> dict:
    """The 12 COCOeval summary numbers and per-category AP (IoU .50:.95, all areas).

    `image_ids`: evaluate on these images only (default: every image of `gt`);
    ground truth and detections on other images do not count. `backend`: "faster"
    (faster-coco-eval) or "pycocotools"; `gt` may be either library's COCO object.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    text = io.StringIO()
    if backend == "faster":
        ev, log = _faster_eval(gt, results, iou_type)
    else:
        ev, log = COCOeval(gt, load_results(gt, results), iou_type), text.getvalue
    if image_ids is not None:
        ids = sorted({int(i) for i in image_ids})
        unknown = [i for i in ids if i not in gt.imgs]
        if unknown:
            raise ValueError(f"image_ids not in the ground truth: {unknown[:10]}")
        ev.params.imgIds = ids
    with contextlib.redirect_stdout(text):
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    summary = {k: float(v) for k, v in zip(SUMMARY_KEYS, ev.stats[:len(SUMMARY_KEYS)])}
    precision = ev.eval["precision"][:, :, :, 0, -1]  # T x R x K, area all, maxDets 100
    per_cat = {}
    for k, cat_id in enumerate(ev.params.catIds):
        p = precision[:, :, k]
        p = p[p > -1]
        per_cat[gt.cats[cat_id]["name"]] = float(p.mean()) if p.size else -1.0
    return {"summary": summary, "per_category": per_cat, "text": log()}


def evaluate_results(gt: COCO, bbox_res: list, segm_res: list, image_ids=None,
                     backend: str = BACKENDS[0]) -> dict:
    """bbox and segm metrics; `image_ids` restricts both to those images (see coco_metrics)."""
    if backend == "faster":
        gt = faster_gt(gt)  # converted once for both tasks
    out = {"bbox": {}, "segm": {}, "per_category": {}}
    for task, res in (("bbox", bbox_res), ("segm", segm_res)):
        m = coco_metrics(gt, res, task, image_ids, backend=backend)
        out[task] = m["summary"]
        out["per_category"][task] = m["per_category"]
        print(f"{task}:\n{m['text']}", flush=True)
    return out


def score_checkpoint(model, dataset, device, batch_size: int, backend: str, skip, record: dict,
                     settings: dict, log_every: int = 50) -> tuple[dict, list, list]:
    """(metrics, bbox results, segm results) of `model` on `dataset`; `record` (variant,
    seed, init, branch, iteration, checkpoint) and `settings` are written into the metrics."""
    bbox_res, segm_res = predict(model, dataset, device, batch_size, log_every)
    metrics = {**{k: record[k] for k in ("variant", "seed", "init", "branch", "iteration")},
               **evaluate_results(dataset.coco, bbox_res, segm_res,
                                  image_ids=dataset.ids if skip else None, backend=backend),
               "num_images": len(dataset), "num_skipped_images": dataset.skipped,
               "num_detections": len(bbox_res),
               "checkpoint": str(record["checkpoint"]), "evaluation": settings}
    return metrics, bbox_res, segm_res


def write_outputs(paths: dict, metrics: dict, bbox_res: list, segm_res: list) -> None:
    """The three result files ({file name: path}); metrics last: its presence means all is written."""
    write_json(paths["bbox_results.json"], bbox_res)
    write_json(paths["segm_results.json"], segm_res)
    write_json(paths["metrics.json"], metrics)


class DecodedDataset(torch.utils.data.Dataset):
    """A dataset's items decoded once and kept in memory (small val sets: a training job
    evaluates every checkpoint it writes on the same images)."""

    def __init__(self, dataset):
        self.coco, self.ids, self.skipped = dataset.coco, dataset.ids, dataset.skipped
        self.label_of, self.num_classes = dataset.label_of, dataset.num_classes
        self.items = [dataset[i] for i in range(len(dataset))]

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return self.items[i]


CACHE_MAX_PIXELS = 200_000_000  # decode the val set once if it holds at most this many pixels


class CheckpointEvaluator:
    """Evaluates checkpoints in the process that trains them, as `rethink.evaluate` would.

    The eval model and the val set are built once; each call copies the weights in, scores
    them with the same code as the CLI (non-deterministic kernels allowed, as there), and
    writes the results to `<eval dir>/from_training/`, stamped with the settings and the
    checkpoint file, for the evaluate job to adopt (`rethink.evaluation_job`).
    """

    def __init__(self, coco_root, model_cfg: dict, batch_size: int, backend: str, device_arg: str,
                 device, layout_stats=None):
        skip = skipped_image_ids(layout_stats, "val")
        dataset = CocoInstances(coco_root, "val", eval_transforms(), skip_ids=skip)
        pixels = sum(im["height"] * im["width"] for im in dataset.coco.loadImgs(dataset.ids))
        self.dataset = DecodedDataset(dataset) if pixels <= CACHE_MAX_PIXELS else dataset
        self.model = build_mask_rcnn(model_cfg, dataset.num_classes).to(device)
        self.device, self.batch_size, self.backend, self.skip = device, batch_size, backend, skip
        self.settings = evaluation_job.settings(model_cfg, batch_size, backend, device_arg, skip)

    def __call__(self, state_dict, ckpt_path, eval_dir, record: dict) -> dict:
        self.model.load_state_dict(state_dict)
        deterministic = torch.are_deterministic_algorithms_enabled()
        torch.use_deterministic_algorithms(False)  # as the CLI runs: same kernels, same numbers
        try:
            metrics, bbox_res, segm_res = score_checkpoint(
                self.model, self.dataset, self.device, self.batch_size, self.backend, self.skip,
                {**record, "checkpoint": str(ckpt_path)}, self.settings, log_every=10**9)
        finally:
            torch.use_deterministic_algorithms(deterministic)
        metrics = {**metrics, "checkpoint_identity": evaluation_job.checkpoint_identity(ckpt_path)}
        out = Path(eval_dir) / evaluation_job.FROM_TRAINING
        write_outputs({name: out / name for name in evaluation_job.FILES}, metrics, bbox_res, segm_res)
        return metrics


def main(argv=None):
    p = evaluation_job.parser(__doc__.split("\n\n")[0])
    args = p.parse_args(argv)
    device = setup(args.threads, args.device, deterministic=False)
    skip = skipped_image_ids(args.layout_stats, "val")
    dataset = CocoInstances(args.coco, "val", eval_transforms(), skip_ids=skip)
    if skip:
        print(f"leaving out {len(skip)} val images the layout check skipped: {sorted(skip)}",
              flush=True)
    model_cfg = json_arg(args.model, "model")
    model = build_mask_rcnn(model_cfg, dataset.num_classes)
    state = checkpoint.load(args.checkpoint, required=("model",))
    check_conventions(state.get("meta", {}), model_cfg, f"checkpoint {args.checkpoint}")
    model.load_state_dict(state["model"])
    model.to(device)
    print(f"evaluating {args.checkpoint} on {len(dataset)} val images ({device}, "
          f"COCOeval: {args.backend})", flush=True)
    record = {"variant": args.variant, "seed": args.seed, "init": args.init, "branch": args.branch,
              "iteration": args.iteration, "checkpoint": args.checkpoint}
    settings = evaluation_job.settings(model_cfg, args.batch_size, args.backend, args.device, skip)
    metrics, bbox_res, segm_res = score_checkpoint(model, dataset, device, args.batch_size,
                                                   args.backend, skip, record, settings)
    write_outputs({"metrics.json": args.out_metrics, "bbox_results.json": args.out_bbox,
                   "segm_results.json": args.out_segm}, metrics, bbox_res, segm_res)
    print(f"bbox AP {metrics['bbox']['AP']:.4f}  mask AP {metrics['segm']['AP']:.4f}", flush=True)


if __name__ == "__main__":
    run_job(main)
