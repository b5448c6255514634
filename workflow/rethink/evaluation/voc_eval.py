"""PASCAL VOC detection mAP (rethink.evaluation.voc_eval), on COCO-format ground truth and results.

What it computes: for each category, the detections of that category are sorted by
descending score (stable) and matched greedily, as the VOC devkit does, against the ground
truth of their own image and category. A detection takes the gt box it overlaps most (IoU);
if that IoU >= `iou_threshold` (0.5 in VOC):
  - the gt box is *difficult*: the detection is ignored, neither true nor false positive;
  - the gt box is not difficult and not yet matched: true positive, and the box is matched;
  - the gt box is already matched (a duplicate): false positive.
Below the threshold it is a false positive. Recall is divided by the number of
non-difficult gt boxes, so a missed difficult object costs nothing either.

Boxes are COCO's continuous [x, y, w, h] (VOC's 1-based inclusive pixel boxes already
converted as Detectron does, x = xmin - 1, w = xmax - xmin + 1), so IoU here has no "+1".

Interpolation: `interpolation="all"` (VOC 2010 and later) integrates the precision envelope
(precision made non-increasing from the right) over every recall step; `"11point"` (VOC2007)
averages the envelope's value at recall 0, 0.1, ..., 1.

How this differs from COCOeval at IoU 0.5 (its AP50):
  - COCO samples the envelope at 101 recall points, VOC at every point where recall changes
    (or at 11), so on the same matches the two differ, typically by under 0.01 per category;
  - COCO keeps only the `maxDets` (100) best detections per image and category; VOC keeps all;
  - COCO matches a detection to the best gt box *still unmatched*, so a duplicate can take a
    second, nearby box; VOC takes the best box overall and calls a duplicate a false positive;
  - COCO has `iscrowd` regions instead of difficult objects: a crowd region absorbs any
    number of detections and is matched by intersection over the *detection's* area; a
    difficult object is an ordinary box, matched by IoU, that only makes the detections
    whose best match it is not count.
"""
import numpy as np

INTERPOLATIONS = ("all", "11point")


def voc_ap(recall, precision) -> float:
    """All-point interpolated AP: the area under the precision envelope."""
    recall, precision = _curve(recall, precision)
    # Sentinels: the curve starts at recall 0 and runs to recall 1 at precision 0.
    r = np.concatenate(([0.0], recall, [1.0]))
    p = np.concatenate(([0.0], precision, [0.0]))
    envelope = np.maximum.accumulate(p[::-1])[::-1]
    steps = np.flatnonzero(r[1:] != r[:-1])
    return float(np.sum((r[steps + 1] - r[steps]) * envelope[steps + 1]))


def voc_ap_11point(recall, precision) -> float:
    """VOC2007's 11-point AP: mean of the best precision at recall >= 0, 0.1, ..., 1."""
    recall, precision = _curve(recall, precision)
    # i / 10 rather than arange(0, 1.1, 0.1), whose 0.30000000000000004 would miss a recall
    # of exactly 3/10.
    thresholds = np.arange(11) / 10
    best = [precision[recall >= t].max() if np.any(recall >= t) else 0.0 for t in thresholds]
    return float(np.mean(best))


def voc_map(gt, detections, iou_threshold=0.5, image_ids=None, interpolation="all") -> dict:
    """VOC mAP of COCO results `detections` against COCO-format `gt` (a dict or a `COCO`).

    `image_ids` restricts both sides to those images. Returns {"mAP", "per_category":
    {name: AP}, "num_positives": {name: non-difficult gt count}}; a category without
    non-difficult gt gets AP -1 and is left out of the mean (its AP is undefined: no recall).
    """
    if interpolation not in INTERPOLATIONS:
        raise ValueError(f"interpolation must be one of {INTERPOLATIONS}, not {interpolation!r}")
    if not 0.0 < iou_threshold <= 1.0:
        raise ValueError(f"iou_threshold must be in (0, 1], not {iou_threshold}")
    dataset = getattr(gt, "dataset", gt)
    names = {c["id"]: c["name"] for c in dataset["categories"]}
    if len(set(names.values())) != len(names):
        raise ValueError("gt categories must have distinct names: results are keyed by name")
    known_images = {im["id"] for im in dataset["images"]}
    selected = known_images if image_ids is None else set(image_ids)
    _reject_unknown("image_ids", selected - known_images, "images")
    _reject_unknown("detections", {d["image_id"] for d in detections} - known_images, "images")
    _reject_unknown("detections", {d["category_id"] for d in detections} - names.keys(),
                    "category ids")
    _reject_unknown("gt annotations", {a["category_id"] for a in dataset["annotations"]}
                    - names.keys(), "category ids")

    # Images and categories as dense indices: integer arrays sort and compare fast.
    category_index = {category: i for i, category in enumerate(names)}
    image_index = {image: i for i, image in enumerate(selected)}
    annotations = [a for a in dataset["annotations"] if a["image_id"] in selected]
    gt_image = np.array([image_index[a["image_id"]] for a in annotations], int)
    gt_category = np.array([category_index[a["category_id"]] for a in annotations], int)
    gt_boxes = _xyxy([a["bbox"] for a in annotations])
    gt_difficult = np.array([bool(a.get("difficult", 0)) for a in annotations], bool)
    detections = [d for d in detections if d["image_id"] in selected]
    det_image = np.array([image_index[d["image_id"]] for d in detections], int)
    det_category = np.array([category_index[d["category_id"]] for d in detections], int)
    det_boxes = _xyxy([d["bbox"] for d in detections])
    by_score = np.argsort(-np.array([d["score"] for d in detections], float), kind="stable")
    score_rank = np.empty(len(detections), int)
    score_rank[by_score] = np.arange(len(detections))

    # Every (detection, gt box) pair of one image and category, built flat instead of looping
    # over images: with the gt sorted by (image, category), each detection takes its run.
    gt_key = gt_image * len(names) + gt_category
    gt_order = np.argsort(gt_key, kind="stable")  # stable: annotation order within a run
    gt_key = gt_key[gt_order]
    det_key = det_image * len(names) + det_category
    run_start = np.searchsorted(gt_key, det_key, "left")
    run_length = np.searchsorted(gt_key, det_key, "right") - run_start
    pair_det = np.repeat(np.arange(len(detections)), run_length)
    pair_gt = gt_order[np.arange(run_length.sum())
                       + np.repeat(run_start - np.cumsum(run_length) + run_length, run_length)]
    iou = _paired_iou(det_boxes[pair_det], gt_boxes[pair_gt])

    # Each detection's best gt box: the highest IoU, the earliest annotation on a tie.
    by_overlap = np.lexsort((pair_gt, -iou, pair_det))
    overlap_det = pair_det[by_overlap]
    best_pair = by_overlap[np.r_[True, overlap_det[1:] != overlap_det[:-1]][:len(by_overlap)]]
    matched_det, best_gt = pair_det[best_pair], pair_gt[best_pair]
    hit = iou[best_pair] >= iou_threshold
    ignored = np.zeros(len(detections), bool)
    ignored[matched_det[hit & gt_difficult[best_gt]]] = True
    claim = hit & ~gt_difficult[best_gt]
    claim_det, claim_gt = matched_det[claim], best_gt[claim]
    # The best-scored claim on a gt box takes it; later claims are duplicates (FP).
    claims_by_score = np.argsort(score_rank[claim_det], kind="stable")
    _, first_claims = np.unique(claim_gt[claims_by_score], return_index=True)
    true_positive = np.zeros(len(detections), bool)
    true_positive[claim_det[claims_by_score[first_claims]]] = True

    ap_of_curve = voc_ap if interpolation == "all" else voc_ap_11point
    positives = np.bincount(gt_category[~gt_difficult], minlength=len(names))
    num_positives = {name: int(n) for name, n in zip(names.values(), positives)}
    per_category = {}
    for category, name in enumerate(names.values()):
        if num_positives[name] == 0:
            per_category[name] = -1.0
            continue
        rows = by_score[det_category[by_score] == category]
        tp = true_positive[rows][~ignored[rows]]
        tp_cumsum = np.cumsum(tp)
        fp_cumsum = np.cumsum(~tp)
        per_category[name] = ap_of_curve(tp_cumsum / num_positives[name],
                                         tp_cumsum / (tp_cumsum + fp_cumsum))
    scored = [ap for ap in per_category.values() if ap != -1.0]
    mean = float(np.mean(scored)) if scored else -1.0
    return {"mAP": mean, "per_category": per_category, "num_positives": num_positives}


def _curve(recall, precision):
    recall, precision = np.asarray(recall, float), np.asarray(precision, float)
    if recall.ndim != 1 or recall.shape != precision.shape:
        raise ValueError(f"recall and precision must be 1-D of one length, not "
                         f"{recall.shape} and {precision.shape}")
    return recall, precision


def _reject_unknown(where, unknown, what):
    if unknown:
        shown = sorted(unknown, key=str)
        raise ValueError(f"{where} name {len(shown)} {what} not in the ground truth: "
                         f"{shown[:10]}{' ...' if len(shown) > 10 else ''}")


def _xyxy(xywh):
    boxes = np.array(xywh, float).reshape(-1, 4)
    return np.concatenate([boxes[:, :2], boxes[:, :2] + boxes[:, 2:]], axis=1)


def _paired_iou(a, b):
    """IoU of a[i] and b[i] for every i, both [x1, y1, x2, y2] continuous."""
    size = np.clip(np.minimum(a[:, 2:], b[:, 2:]) - np.maximum(a[:, :2], b[:, :2]), 0, None)
    intersection = size[:, 0] * size[:, 1]
    union = (np.prod(a[:, 2:] - a[:, :2], axis=1) + np.prod(b[:, 2:] - b[:, :2], axis=1)
             - intersection)
    return np.divide(intersection, union, out=np.zeros_like(union), where=union > 0)
