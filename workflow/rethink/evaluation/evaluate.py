"""COCO evaluation (COCOeval, bbox and segm; and keypoints for a keypoint model) of a
detection checkpoint; VOC's mAP too on a VOC-converted val set; with test-time augmentation
too where the model config asks for it.

Writes the detections as COCO results files (bbox and segm, re-scorable by anyone) and a
metrics JSON with all 12 summary numbers per task and per-category AP. A model with a
keypoint head (model config `keypoints`, OKS sigmas in `oks_sigmas`) is scored on a
person_keypoints file (--val-annotations) and also writes its keypoint results and the 10
keypoint summary numbers. A box-only model (`masks: false`, a dataset variant's) writes no
segm results. A val file converted from a VOCdevkit (rethink.data.voc) is also scored with VOC's
mAP at IoU 0.5 (rethink.evaluation.voc_eval; block `voc`), and COCOeval treats its `difficult` objects
as crowd regions. With `tta` ({scales, flip}) in the model config the checkpoint is scored
again with test-time augmentation (rethink.evaluation.tta): blocks bbox_tta, segm_tta (voc_tta) beside
the plain ones.

    python -m rethink.evaluation.evaluate --coco DIR --model JSON --checkpoint ckpt.pt \
        --out-metrics m.json --out-bbox bbox.json [--out-segm segm.json] \
        [--out-keypoints kp.json] [--val-annotations FILE] \
        [--layout-stats checks/coco_layout.json] [--backend faster|pycocotools] [--workers N]

--backend faster (the default) scores with faster-coco-eval's COCOeval (C++ matching and
accumulation), pycocotools with the reference implementation; both give the same 12
numbers (tests/unit/evaluation/test_evaluate.py and `python -m rethink.bench.suite` check it).

With --layout-stats, the val images the layout check skipped as undecodable
(data.corrupt_images: skip) are left out of the dataset and of the evaluation.

The val set is read as images alone (COCOeval takes the ground truth from the annotation
file), on CPU each detection's mask is pasted straight into a binary one (`paste_binary`,
torchvision's arithmetic), and --workers loader processes may read the images: none of it
changes a number (`python -m rethink.bench.evaluation` measures it against the way before).

Training jobs evaluate the checkpoints they write in their own process
(`CheckpointEvaluator`, same code and numbers as this CLI); the evaluate rule adopts that
result when its settings match (`rethink.evaluation.job`).
"""
from __future__ import annotations

import contextlib
import io
from collections import OrderedDict
from functools import lru_cache, partial
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
from torchvision.models.detection.roi_heads import expand_boxes, expand_masks

from rethink.core.atomic import run_job, write_json
from rethink.core.config import json_arg
from rethink.core.conventions import check_conventions
from rethink.core.names import skipped_image_ids
from rethink.data.coco import CocoInstances, collate, eval_transforms
from rethink.engine import checkpoint
from rethink.engine.runtime import Progress, setup
from rethink.evaluation import outputs
from rethink.evaluation.outputs import BACKENDS
from rethink.models.detector import build_mask_rcnn

SUMMARY_KEYS = ["AP", "AP50", "AP75", "APs", "APm", "APl",
                "AR1", "AR10", "AR100", "ARs", "ARm", "ARl"]
# COCOeval's keypoint summary: no small objects (too small to hold keypoints), 20 detections
KEYPOINT_SUMMARY_KEYS = ["AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl"]


def encode_masks(masks) -> list[dict]:
    """COCO RLEs of binary masks (N x H x W), encoded in one pycocotools call (as encode_mask)."""
    if len(masks) == 0:
        return []
    return encode_binary(np.asfortranarray(masks.transpose(1, 2, 0).astype(np.uint8)))


def encode_binary(binary: np.ndarray) -> list[dict]:
    """COCO RLEs of binary masks given as one H x W x N uint8 array in Fortran order."""
    if binary.shape[2] == 0:
        return []
    return [{"size": [int(s) for s in r["size"]], "counts": r["counts"].decode("ascii")}
            for r in mask_utils.encode(binary)]


def paste_binary(masks, boxes, height: int, width: int) -> np.ndarray:
    """torchvision's paste_masks_in_image (each M x M mask probability resized into its box,
    padded by one pixel, on an image of height x width) thresholded at 0.5, as COCO's results
    take them: an H x W x N uint8 array in Fortran order, ready for `encode_binary`.

    The same calls on the same values as torchvision's (expand_masks, expand_boxes, one
    bilinear F.interpolate per mask), so the same pixels, bit for bit; but each mask is
    thresholded inside its box only and written straight into the array RLE encoding
    reads, without a float image per detection."""
    out = np.zeros((height, width, len(masks)), dtype=np.uint8, order="F")
    if len(masks) == 0:
        return out
    masks, scale = expand_masks(masks, padding=1)
    boxes = expand_boxes(boxes, scale).to(dtype=torch.int64).tolist()
    for i, (mask, (x0, y0, x1, y1)) in enumerate(zip(masks, boxes)):
        w, h = max(x1 - x0 + 1, 1), max(y1 - y0 + 1, 1)
        resized = F.interpolate(mask[0].expand((1, 1, -1, -1)), size=(h, w), mode="bilinear",
                                align_corners=False)[0][0]
        xa, xb, ya, yb = max(x0, 0), min(x1 + 1, width), max(y0, 0), min(y1 + 1, height)
        out[ya:yb, xa:xb, i] = (resized[ya - y0:yb - y0, xa - x0:xb - x0] > 0.5).cpu().numpy()
    return out


def detect(model, images: list) -> list[dict]:
    """model(images) of an eval-mode torchvision Mask R-CNN (GeneralizedRCNN.forward's own
    calls, the same numbers), with each image's masks as `binary_masks` (`paste_binary`)
    instead of pasted float masks (read on the CPU: for a model there)."""
    sizes = [(int(im.shape[-2]), int(im.shape[-1])) for im in images]
    image_list, _ = model.transform(images)
    features = model.backbone(image_list.tensors)
    if isinstance(features, torch.Tensor):
        features = OrderedDict([("0", features)])
    proposals, _ = model.rpn(image_list, features)
    detections, _ = model.roi_heads(features, proposals, image_list.image_sizes)
    masks = [d.pop("masks", None) for d in detections]
    detections = model.transform.postprocess(detections, image_list.image_sizes, sizes)
    for det, mask, (h, w) in zip(detections, masks, sizes):
        if mask is not None:
            det["binary_masks"] = paste_binary(mask, det["boxes"], h, w)
    return detections


def mask_rles(out: dict) -> list[dict]:
    """The RLEs of one image's detections: `detect`'s binary masks, or model(images)'s
    pasted masks thresholded at 0.5."""
    if "binary_masks" in out:
        return encode_binary(out["binary_masks"])
    return encode_masks((out["masks"][:, 0] > 0.5).cpu().numpy())


@torch.inference_mode()  # no autograd bookkeeping at all: the same kernels, the same numbers
def predict(model, dataset, device, batch_size=4, log_every=50, tta=None, workers: int = 0,
            binary_paste: bool | None = None) -> dict:
    """Run the model on every image; return its results in COCO format per task:
    {"bbox": [...], "segm": [...]} ("segm" only for a model with a mask head), and
    "keypoints" for a model with a keypoint head (each detection's keypoints, scored with its
    box score as torchvision's references do). `tta` ({scales, flip}): with test-time
    augmentation (rethink.evaluation.tta). `workers`: data loader processes. `binary_paste`: masks
    pasted straight into binary ones (`detect`) rather than by model(images); default: on
    CPU, where both give the same results (on a GPU torchvision pastes there, in its own
    arithmetic). Neither changes the results."""
    model.eval()
    cat_of = {label: cat for cat, label in dataset.label_of.items()}
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, collate_fn=collate,
                                         num_workers=workers)
    results = {"bbox": [], **({"segm": []} if model.roi_heads.has_mask() else {})}
    if getattr(model.roi_heads, "keypoint_predictor", None) is not None:
        results["keypoints"] = []
    if binary_paste is None:
        binary_paste = torch.device(device).type == "cpu"
    infer = partial(detect, model) if binary_paste else model
    if tta is not None:
        from rethink.evaluation.tta import predict_tta

        def infer(images):
            return predict_tta(model, images, tta["scales"], tta["flip"])
    progress = Progress(len(dataset), log_every, "img")
    for images, targets in loader:
        detections = infer([im.to(device) for im in images])
        for target, out in zip(targets, detections):
            boxes = out["boxes"].cpu().numpy()
            rles = mask_rles(out) if "segm" in results else [None] * len(boxes)
            points = out["keypoints"].cpu().numpy() if "keypoints" in results else [None] * len(boxes)
            for box, score, label, rle, kp in zip(boxes, out["scores"].tolist(),
                                                  out["labels"].tolist(), rles, points):
                x0, y0, x1, y1 = (float(v) for v in box)
                common = {"image_id": target["image_id"], "category_id": cat_of[label],
                          "score": round(score, 5)}
                results["bbox"].append({**common, "bbox": [round(x0, 2), round(y0, 2),
                                                           round(x1 - x0, 2), round(y1 - y0, 2)]})
                if rle is not None:
                    results["segm"].append({**common, "segmentation": rle})
                if kp is not None:
                    results["keypoints"].append({**common, "keypoints": [round(float(v), 2) for v in kp.reshape(-1)]})
        line = progress.step(len(images))
        if line:
            print(f"eval {line}", flush=True)
    return results


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


def _faster_eval(gt, results: list, iou_type: str, oks_sigmas=None):
    fce = _faster()
    gt = faster_gt(gt)
    lines = []
    dt = gt.loadRes([dict(r) for r in results])  # loadRes adds keys: give it copies
    ev = fce.COCOeval_faster(gt, dt, iou_type, print_function=lines.append,
                             rle_iou_max_workers=max(1, torch.get_num_threads()),
                             kpt_oks_sigmas=list(oks_sigmas) if oks_sigmas is not None else None)
    return ev, lambda: "\n".join(lines)


def coco_metrics(gt: COCO, results: list, iou_type: str, image_ids=None,
                 backend: str = BACKENDS[0], oks_sigmas=None) -> dict:
    """The COCOeval summary numbers (12 for bbox and segm, 10 for keypoints) and
    per-category AP (IoU or OKS .50:.95, all areas).

    `image_ids`: evaluate on these images only (default: every image of `gt`);
    ground truth and detections on other images do not count. `backend`: "faster"
    (faster-coco-eval) or "pycocotools"; `gt` may be either library's COCO object.
    `oks_sigmas`: the per-keypoint OKS sigmas (iou_type "keypoints"; one per keypoint).
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if iou_type == "keypoints" and oks_sigmas is None:
        raise ValueError("keypoint evaluation needs oks_sigmas (config: keypoints.sigmas)")
    text = io.StringIO()
    if backend == "faster":
        ev, log = _faster_eval(gt, results, iou_type, oks_sigmas)
    else:
        ev, log = COCOeval(gt, load_results(gt, results), iou_type), text.getvalue
        if oks_sigmas is not None:
            ev.params.kpt_oks_sigmas = np.asarray(oks_sigmas, dtype=np.float64)
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
    keys = KEYPOINT_SUMMARY_KEYS if iou_type == "keypoints" else SUMMARY_KEYS
    summary = {k: float(v) for k, v in zip(keys, ev.stats[:len(keys)])}
    precision = ev.eval["precision"][:, :, :, 0, -1]  # T x R x K, area all, last (largest) maxDets
    per_cat = {}
    for k, cat_id in enumerate(ev.params.catIds):
        p = precision[:, :, k]
        p = p[p > -1]
        per_cat[gt.cats[cat_id]["name"]] = float(p.mean()) if p.size else -1.0
    return {"summary": summary, "per_category": per_cat, "text": log()}


def is_voc(gt: COCO) -> bool:
    """Whether the annotations were converted from a VOCdevkit (rethink.data.voc): then scored with
    VOC's mAP too, and its `difficult` objects are ignored as VOC ignores them."""
    return any("voc_set" in im for im in gt.dataset.get("images", [])[:1])


def difficult_as_crowd(gt: COCO) -> COCO:
    """The ground truth with VOC's difficult objects as crowd regions, so that COCOeval ignores
    detections on them (by intersection over the detection's area, near VOC's ignore rule)."""
    anns = [{**a, "iscrowd": 1} if a.get("difficult") else a for a in gt.dataset["annotations"]]
    out = COCO()
    out.dataset = {**gt.dataset, "annotations": anns}
    with contextlib.redirect_stdout(io.StringIO()):
        out.createIndex()
    return out


def evaluate_results(gt: COCO, bbox_res: list, segm_res: list | None, image_ids=None,
                     backend: str = BACKENDS[0], keypoint_res: list | None = None,
                     oks_sigmas=None, voc: bool = False) -> dict:
    """bbox metrics, segm ones unless `segm_res` is None (a box-only model), keypoint ones
    given `keypoint_res`; with `voc` also VOC's mAP at IoU 0.5 (rethink.evaluation.voc_eval), and
    COCOeval treats VOC's difficult objects as crowd regions. `image_ids` restricts all to
    those images (see coco_metrics)."""
    out = {"bbox": {}, "per_category": {}}
    if voc:
        from rethink.evaluation.voc_eval import voc_map
        m = voc_map(gt, bbox_res, image_ids=image_ids)
        out["voc"] = {"mAP": m["mAP"]}
        out["per_category"]["voc"] = m["per_category"]
        print(f"voc: mAP@0.5 {m['mAP']:.4f}", flush=True)
        gt = difficult_as_crowd(gt)
    if backend == "faster":
        gt = faster_gt(gt)  # converted once for every task
    tasks = [("bbox", bbox_res)] + ([("segm", segm_res)] if segm_res is not None else [])
    tasks += [("keypoints", keypoint_res)] if keypoint_res is not None else []
    for task, res in tasks:
        m = coco_metrics(gt, res, task, image_ids, backend=backend,
                         oks_sigmas=oks_sigmas if task == "keypoints" else None)
        out[task] = m["summary"]
        out["per_category"][task] = m["per_category"]
        print(f"{task}:\n{m['text']}", flush=True)
    return {k: out[k] for k in ("bbox", "segm", "keypoints", "voc", "per_category") if k in out}


def score_checkpoint(model, dataset, device, batch_size: int, backend: str, skip, record: dict,
                     settings: dict, log_every: int = 50, workers: int = 0) -> tuple[dict, dict]:
    """(metrics, results per task) of `model` on `dataset`; `record` (variant, seed, init,
    branch, iteration, checkpoint) and `settings` are written into the metrics. A keypoint
    model's OKS sigmas are settings["model"]["oks_sigmas"]. With settings["model"]["tta"]
    ({scales, flip}) the model is also scored with test-time augmentation: its numbers are
    the blocks bbox_tta (and segm_tta) beside the plain ones, from the same checkpoint.
    `workers`: data loader processes (the numbers do not depend on them)."""
    results = predict(model, dataset, device, batch_size, log_every, workers=workers)
    tta = settings["model"].get("tta")
    if tta:
        print(f"test-time augmentation: scales {tta['scales']}, flip {tta['flip']}", flush=True)
        tta_results = predict(model, dataset, device, batch_size, log_every, tta=tta, workers=workers)
    gt = dataset.coco  # loaded after the loader workers are gone: none of them copies it
    voc = is_voc(gt)
    image_ids = dataset.ids if skip or len(dataset.ids) < len(gt.getImgIds()) else None

    def scored(results):
        return evaluate_results(gt, results["bbox"], results.get("segm"), image_ids=image_ids,
                                backend=backend, keypoint_res=results.get("keypoints"),
                                oks_sigmas=settings["model"].get("oks_sigmas"), voc=voc)

    metrics = {**{k: record[k] for k in ("variant", "seed", "init", "branch", "iteration")}, **scored(results)}
    if tta:
        augmented = scored(tta_results)
        for task in ("bbox", "segm", "voc"):
            if task in augmented:
                metrics[f"{task}_tta"] = augmented[task]
                metrics["per_category"][f"{task}_tta"] = augmented["per_category"][task]
    metrics.update({"num_images": len(dataset), "num_skipped_images": dataset.skipped,
                    "num_detections": len(results["bbox"]),
                    "checkpoint": str(record["checkpoint"]), "evaluation": settings})
    return metrics, results


def summary_line(metrics: dict) -> str:
    """The headline numbers of an evaluation, one line."""
    names = {"bbox": "bbox AP", "segm": "mask AP", "keypoints": "keypoint AP", "voc": "VOC mAP@0.5",
             "bbox_tta": "bbox AP (TTA)", "segm_tta": "mask AP (TTA)", "voc_tta": "VOC mAP@0.5 (TTA)"}
    return "  ".join(f"{name} {metrics[k]['mAP' if k.startswith('voc') else 'AP']:.4f}"
                     for k, name in names.items() if k in metrics)


def write_outputs(paths: dict, metrics: dict, results: dict) -> None:
    """The result files ({file name: path}: TASK_results.json per task, metrics.json);
    metrics last: its presence means all is written."""
    for task, res in results.items():
        write_json(paths[f"{task}_results.json"], res)
    write_json(paths["metrics.json"], metrics)


class DecodedDataset(torch.utils.data.Dataset):
    """A dataset's items decoded once and kept in memory (small val sets: a training job
    evaluates every checkpoint it writes on the same images; images alone, `val_dataset`)."""

    def __init__(self, dataset):
        self.base, self.ids, self.skipped = dataset, dataset.ids, dataset.skipped
        self.keypoint_names = dataset.keypoint_names
        self.label_of, self.num_classes = dataset.label_of, dataset.num_classes
        self.items = [dataset[i] for i in range(len(dataset))]

    @property
    def coco(self):
        return self.base.coco  # loaded when asked, as CocoInstances.coco

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return self.items[i]


CACHE_MAX_PIXELS = 200_000_000  # decode the val set once if it holds at most this many pixels


class CheckpointEvaluator:
    """Evaluates checkpoints in the process that trains them, as `rethink.evaluation.evaluate` would.

    The eval model and the val set are built once; each call copies the weights in, scores
    them with the same code as the CLI (non-deterministic kernels allowed, as there), and
    writes the results to `<eval dir>/from_training/`, stamped with the settings and the
    checkpoint file, for the evaluate job to adopt (`rethink.evaluation.job`).
    """

    def __init__(self, coco_root, model_cfg: dict, batch_size: int, backend: str, device_arg: str,
                 device, layout_stats=None, val_annotations=None, curve_images: int | None = None,
                 workers: int = 0):
        """`workers`: loader processes for a val set too large to keep decoded (none for one
        in memory); the numbers do not depend on them."""
        skip = skipped_image_ids(layout_stats, "val")
        dataset = val_dataset(coco_root, model_cfg, skip, val_annotations)
        pixels = sum(h * w for h, w in zip(*dataset.sizes()))
        decoded = pixels <= CACHE_MAX_PIXELS
        self.dataset = DecodedDataset(dataset) if decoded else dataset
        self.workers = 0 if decoded else workers
        # curve checkpoints are scored on the first `curve_images` of the same images
        self.curve = first_images(self.dataset, curve_images) if curve_images else self.dataset
        self.curve_images = curve_images
        self.model = build_mask_rcnn(model_cfg, dataset.num_classes).to(device)
        self.device, self.batch_size, self.backend, self.skip = device, batch_size, backend, skip
        self.settings = {n: outputs.settings(model_cfg, batch_size, backend, device_arg, skip, n)
                         for n in {None, curve_images}}

    def __call__(self, state_dict, ckpt_path, eval_dir, record: dict, end: bool = True) -> dict:
        """`end`: a schedule's end, which the claims use (the whole val set); otherwise a
        curve point (the first `curve_images`)."""
        self.model.load_state_dict(state_dict)
        deterministic = torch.are_deterministic_algorithms_enabled()
        torch.use_deterministic_algorithms(False)  # as the CLI runs: same kernels, same numbers
        images = None if end else self.curve_images
        try:
            metrics, results = score_checkpoint(
                self.model, self.dataset if images is None else self.curve, self.device, self.batch_size,
                self.backend, self.skip, {**record, "checkpoint": str(ckpt_path)}, self.settings[images],
                log_every=10**9, workers=self.workers)
        finally:
            torch.use_deterministic_algorithms(deterministic)
        metrics = {**metrics, "checkpoint_identity": outputs.checkpoint_identity(ckpt_path)}
        out = Path(eval_dir) / outputs.FROM_TRAINING
        write_outputs({name: out / name for name in outputs.files(results)}, metrics, results)
        return metrics


class FirstImages(torch.utils.data.Dataset):
    """The first `n` items of a val dataset (its ids are sorted): a curve checkpoint's images."""

    def __init__(self, dataset, n: int):
        self.base, self.skipped = dataset, dataset.skipped
        self.ids = list(dataset.ids[:n])
        self.keypoint_names = dataset.keypoint_names
        self.label_of, self.num_classes = dataset.label_of, dataset.num_classes

    @property
    def coco(self):
        return self.base.coco

    def __len__(self):
        return len(self.ids)

    def __getitem__(self, i):
        return self.base[i]


def first_images(dataset, n: int | None):
    """`dataset` restricted to its first `n` images (all of them when n is None or larger)."""
    if n is not None and n < 1:
        raise SystemExit(f"--val-images must be at least 1, got {n}")
    return dataset if n is None or n >= len(dataset) else FirstImages(dataset, n)


def val_dataset(coco_root, model_cfg: dict, skip, val_annotations=None) -> CocoInstances:
    """The val set a model is scored on: instances_val2017.json, or for a keypoint model its
    person_keypoints file (`val_annotations`), whose keypoint count must be the model's. Its
    items are images without targets (COCOeval reads the ground truth from the file)."""
    keypoints = model_cfg.get("keypoints")
    if keypoints and not val_annotations:
        raise SystemExit("a keypoint model is scored on a person_keypoints file: give --val-annotations")
    dataset = CocoInstances(coco_root, "val", eval_transforms(), skip_ids=skip,
                            ann_file=val_annotations, keypoints=bool(keypoints),
                            masks=model_cfg.get("masks", True), targets=False)
    if keypoints and len(dataset.keypoint_names) != keypoints["num"]:
        raise SystemExit(f"{val_annotations} names {len(dataset.keypoint_names)} keypoints, "
                         f"the model predicts {keypoints['num']}")
    if keypoints and len(model_cfg.get("oks_sigmas") or []) != keypoints["num"]:
        raise SystemExit(f"keypoints.sigmas: {len(model_cfg.get('oks_sigmas') or [])} OKS sigmas for "
                         f"{keypoints['num']} keypoints")
    return dataset


def main(argv=None):
    p = outputs.parser(__doc__.split("\n\n")[0])
    args = p.parse_args(argv)
    device = setup(args.threads, args.device, deterministic=False, gpus=args.gpus,
                   resource_key="resources.evaluate.gpu")
    skip = skipped_image_ids(args.layout_stats, "val")
    model_cfg = json_arg(args.model, "model")
    dataset = first_images(val_dataset(args.coco, model_cfg, skip, args.val_annotations), args.val_images)
    if skip:
        print(f"leaving out {len(skip)} val images the layout check skipped: {sorted(skip)}",
              flush=True)
    model = build_mask_rcnn(model_cfg, dataset.num_classes)
    state = checkpoint.load(args.checkpoint, required=("model",))
    check_conventions(state.get("meta", {}), model_cfg, f"checkpoint {args.checkpoint}")
    model.load_state_dict(state["model"])
    model.to(device)
    print(f"evaluating {args.checkpoint} on {len(dataset)} val images ({device}, "
          f"COCOeval: {args.backend})", flush=True)
    record = {"variant": args.variant, "seed": args.seed, "init": args.init, "branch": args.branch,
              "iteration": args.iteration, "checkpoint": args.checkpoint}
    settings = outputs.settings(model_cfg, args.batch_size, args.backend, args.device, skip,
                                       args.val_images)
    metrics, results = score_checkpoint(model, dataset, device, args.batch_size,
                                        args.backend, skip, record, settings, workers=args.workers)
    if "segm" in results and not args.out_segm:
        raise SystemExit("a model with a mask head writes its mask results too: give --out-segm")
    if "keypoints" in results and not args.out_keypoints:
        raise SystemExit("a keypoint model writes its keypoint results too: give --out-keypoints")
    write_outputs(outputs.output_paths(args), metrics, results)
    print(summary_line(metrics), flush=True)


if __name__ == "__main__":
    run_job(main)
