"""PASCAL VOC mAP (rethink.evaluation.voc_eval): hand-computed cases, and pycocotools' COCOeval at
IoU 0.5 as an independent computation on random cases."""
import contextlib
import io

import numpy as np
import pytest

from rethink.evaluation.voc_eval import voc_ap, voc_ap_11point, voc_map

CATEGORIES = [{"id": 1, "name": "cat"}, {"id": 2, "name": "dog"}]


def dataset(annotations, image_ids, categories=CATEGORIES):
    """A COCO-format gt dict; annotations are (image_id, category_id, bbox, difficult)."""
    return {"images": [{"id": i, "width": 400, "height": 400} for i in image_ids],
            "categories": categories,
            "annotations": [{"id": n + 1, "image_id": image, "category_id": category,
                             "bbox": list(bbox), "area": bbox[2] * bbox[3], "iscrowd": 0,
                             "difficult": int(difficult)}
                            for n, (image, category, bbox, difficult) in enumerate(annotations)]}


def det(image_id, category_id, bbox, score):
    return {"image_id": image_id, "category_id": category_id, "bbox": list(bbox),
            "score": score}


# Hand-built case. cat: A (image 1), B (image 2), C (image 3, missed), D (image 1, difficult).
# dog: E (image 2), F (image 3, missed).
HAND_GT = dataset([(1, 1, (0, 0, 10, 10), False),     # A
                   (1, 1, (20, 20, 10, 10), True),    # D, difficult
                   (2, 1, (0, 0, 10, 10), False),     # B
                   (2, 2, (50, 50, 20, 20), False),   # E
                   (3, 1, (5, 5, 10, 10), False),     # C
                   (3, 2, (0, 0, 20, 20), False)],    # F
                  [1, 2, 3])
HAND_DETECTIONS = [
    det(1, 1, (0, 0, 10, 10), 0.9),    # cat on A: TP
    det(1, 1, (1, 0, 10, 10), 0.8),    # cat on A again (IoU 90/110): duplicate, FP
    det(1, 1, (20, 20, 10, 10), 0.7),  # cat on difficult D: ignored
    det(2, 1, (30, 30, 10, 10), 0.6),  # cat on nothing: FP
    det(2, 1, (0, 0, 10, 10), 0.5),    # cat on B: TP
    det(1, 2, (0, 0, 10, 10), 0.99),   # dog on the cat A: another category's box, FP
    det(2, 2, (50, 50, 20, 20), 0.95), # dog on E: TP
]


def test_hand_built_case():
    # cat, 3 positives (A, B, C; D is difficult), detections by score with d3 ignored:
    #   TP, FP, FP, TP -> precision 1, 1/2, 1/3, 1/2; recall 1/3, 1/3, 1/3, 2/3.
    #   With sentinels r = 0, 1/3, 1/3, 1/3, 2/3, 1 and p = 0, 1, 1/2, 1/3, 1/2, 0;
    #   envelope (max from the right) = 1, 1, 1/2, 1/2, 1/2, 0.
    #   Recall steps: 0 -> 1/3 at envelope 1, 1/3 -> 2/3 at 1/2, 2/3 -> 1 at 0:
    #   AP = 1/3 * 1 + 1/3 * 1/2 + 1/3 * 0 = 1/2.
    # dog, 2 positives (E, F): FP, TP -> precision 0, 1/2; recall 0, 1/2.
    #   r = 0, 0, 1/2, 1 and p = 0, 0, 1/2, 0; envelope = 1/2, 1/2, 1/2, 0.
    #   Steps: 0 -> 1/2 at 1/2, 1/2 -> 1 at 0: AP = 1/4.
    # mAP = (1/2 + 1/4) / 2 = 3/8.
    result = voc_map(HAND_GT, HAND_DETECTIONS)
    assert result["per_category"] == {"cat": pytest.approx(0.5, abs=1e-12),
                                      "dog": pytest.approx(0.25, abs=1e-12)}
    assert result["mAP"] == pytest.approx(3 / 8, abs=1e-12)
    assert result["num_positives"] == {"cat": 3, "dog": 2}


def test_hand_built_case_11point():
    # cat: envelope at recall >= t is 1 for t = 0, 0.1, 0.2, 0.3 (recall 1/3 reaches them),
    # 1/2 for t = 0.4, 0.5, 0.6 (only recall 2/3), 0 for t = 0.7 ... 1: (4 + 1.5) / 11.
    # dog: 1/2 for t = 0 ... 0.5 (six thresholds), 0 after: 3 / 11.
    result = voc_map(HAND_GT, HAND_DETECTIONS, interpolation="11point")
    assert result["per_category"]["cat"] == pytest.approx(5.5 / 11, abs=1e-12)
    assert result["per_category"]["dog"] == pytest.approx(3 / 11, abs=1e-12)


def test_perfect_detections_score_one_and_none_score_zero():
    gt = HAND_GT
    perfect = [det(a["image_id"], a["category_id"], a["bbox"], 1.0)
               for a in gt["annotations"] if not a["difficult"]]
    result = voc_map(gt, perfect)
    assert result["mAP"] == 1.0 and set(result["per_category"].values()) == {1.0}
    none = voc_map(gt, [])
    assert none["mAP"] == 0.0 and set(none["per_category"].values()) == {0.0}


def test_detections_on_difficult_objects_are_neither_tp_nor_fp():
    perfect = [det(a["image_id"], a["category_id"], a["bbox"], 0.5)
               for a in HAND_GT["annotations"] if not a["difficult"]]
    # Scored above every true positive: counted as false positives they would cost precision.
    on_difficult = [det(1, 1, (20, 20, 10, 10), 0.9), det(1, 1, (21, 20, 10, 10), 0.8)]
    assert voc_map(HAND_GT, perfect + on_difficult) == voc_map(HAND_GT, perfect)
    assert voc_map(HAND_GT, perfect + on_difficult)["mAP"] == 1.0
    assert voc_map(HAND_GT, on_difficult)["per_category"]["cat"] == 0.0


def test_an_iou_tie_goes_to_the_earlier_annotation():
    # Two gt boxes on the same spot, overlapped equally: the devkit's max takes the first.
    plain_first = dataset([(1, 1, (0, 0, 10, 10), False), (1, 1, (0, 0, 10, 10), True)], [1])
    difficult_first = dataset([(1, 1, (0, 0, 10, 10), True), (1, 1, (0, 0, 10, 10), False)], [1])
    found = [det(1, 1, (0, 0, 10, 10), 1.0)]
    assert voc_map(plain_first, found)["per_category"]["cat"] == 1.0  # a TP
    assert voc_map(difficult_first, found)["per_category"]["cat"] == 0.0  # ignored


def test_category_without_positives_is_left_out_of_the_mean():
    gt = dataset([(1, 1, (0, 0, 10, 10), False), (1, 2, (50, 50, 10, 10), True)], [1])
    result = voc_map(gt, [det(1, 1, (0, 0, 10, 10), 1.0), det(1, 2, (0, 0, 5, 5), 0.9)])
    assert result["per_category"] == {"cat": 1.0, "dog": -1.0}
    assert result["num_positives"] == {"cat": 1, "dog": 0}
    assert result["mAP"] == 1.0
    assert voc_map(dataset([], [1]), [])["mAP"] == -1.0


def test_voc_ap_on_hand_arrays():
    # r = 0, .2, .4, .4, .8, 1 and p = 0, 1, .5, .6, .4, 0 with sentinels;
    # envelope = 1, 1, .6, .6, .4, 0; steps: .2 * 1 + .2 * .6 + .4 * .4 + .2 * 0 = .48.
    assert voc_ap([0.2, 0.4, 0.4, 0.8], [1.0, 0.5, 0.6, 0.4]) == pytest.approx(0.48, abs=1e-12)
    assert voc_ap([], []) == 0.0
    assert voc_ap([1.0], [1.0]) == 1.0
    with pytest.raises(ValueError, match="one length"):
        voc_ap([0.5, 1.0], [1.0])


def test_voc_ap_11point_on_hand_arrays():
    # Best precision at recall >= t: 1 for t = 0, .1, .2; .8 for .3, .4, .5; .6 for .6, .7;
    # 0 for .8, .9, 1: (3 + 2.4 + 1.2) / 11 = .6.
    assert voc_ap_11point([0.25, 0.5, 0.75], [1.0, 0.8, 0.6]) == pytest.approx(0.6, abs=1e-12)
    # A recall of exactly 3/10 reaches the threshold 0.3: t = 0, .1, .2, .3.
    assert voc_ap_11point([3 / 10], [1.0]) == pytest.approx(4 / 11, abs=1e-12)


def test_image_ids_restrict_gt_and_detections():
    restricted = voc_map(HAND_GT, HAND_DETECTIONS, image_ids=[1, 2])
    without_3 = dataset([(a["image_id"], a["category_id"], a["bbox"], a["difficult"])
                         for a in HAND_GT["annotations"] if a["image_id"] != 3], [1, 2])
    assert restricted == voc_map(without_3, HAND_DETECTIONS)
    assert restricted["num_positives"] == {"cat": 2, "dog": 1}
    # Image 3's gt (C, F) no longer counts: cat TP, FP, FP, TP over 2 positives reaches recall 1.
    assert restricted["per_category"]["cat"] == pytest.approx(0.5 * 1 + 0.5 * 0.5, abs=1e-12)
    # Detections on images left out do not count either.
    assert voc_map(HAND_GT, HAND_DETECTIONS + [det(3, 1, (0, 0, 9, 9), 1.0)],
                   image_ids=[1, 2]) == restricted


@pytest.mark.parametrize("bad, message", [
    (det(99, 1, (0, 0, 10, 10), 1.0), "99"),
    (det(1, 42, (0, 0, 10, 10), 1.0), "42"),
])
def test_unknown_ids_raise(bad, message):
    with pytest.raises(ValueError, match=message):
        voc_map(HAND_GT, HAND_DETECTIONS + [bad])


def test_unknown_image_in_image_ids_raises():
    with pytest.raises(ValueError, match="77"):
        voc_map(HAND_GT, HAND_DETECTIONS, image_ids=[1, 77])


def random_case(rng, num_images=25, num_categories=3):
    """Random gt and noisy detections, each box inside its own cell of a 4 x 4 grid of
    100 px cells, so a detection overlaps at most one gt box: COCOeval (best *unmatched*
    gt) and VOC (best gt) then make the same matches and only the interpolation differs."""
    annotations, detections = [], []
    for image in range(1, num_images + 1):
        cells = rng.permutation(16)[:rng.integers(1, 7)]
        for cell in cells:
            cx, cy = 100 * (cell % 4), 100 * (cell // 4)
            w, h = rng.uniform(30, 70, size=2)
            x, y = cx + rng.uniform(5, 95 - w), cy + rng.uniform(5, 95 - h)
            category = int(rng.integers(1, num_categories + 1))
            if rng.random() < 0.7:  # an object, found 0, 1 or 2 times
                annotations.append((image, category, (x, y, w, h), False))
                for _ in range(rng.choice(3, p=[0.2, 0.6, 0.2])):
                    jitter = rng.normal(0, 0.12, size=4) * [w, h, w, h]
                    found = (x + jitter[0], y + jitter[1], w + jitter[2], h + jitter[3])
                    wrong = rng.random() < 0.1
                    label = int(rng.integers(1, num_categories + 1)) if wrong else category
                    detections.append(det(image, label, found, float(rng.random())))
            else:  # background only: a false detection
                detections.append(det(image, category, (x, y, w, h), float(rng.random())))
    categories = [{"id": c, "name": f"c{c}"} for c in range(1, num_categories + 1)]
    return dataset(annotations, range(1, num_images + 1), categories), detections


def coco_ap50(gt, detections):
    """Per-category AP at IoU 0.5 from COCOeval's precision array, without summarize()."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints its progress
        coco_gt = COCO()
        coco_gt.dataset = gt
        coco_gt.createIndex()
        ev = COCOeval(coco_gt, coco_gt.loadRes(detections), "bbox")
        ev.params.iouThrs = np.array([0.5])
        ev.params.maxDets = [1000]  # never cuts: a few detections per image
        ev.evaluate()
        ev.accumulate()
    precision = ev.eval["precision"][0, :, :, 0, 0]  # [recall point, category], area "all"
    return {f"c{c}": float(precision[precision[:, k] > -1, k].mean())
            for k, c in enumerate(ev.params.catIds)}


@pytest.mark.parametrize("seed", range(5))
def test_agrees_with_cocoeval_at_iou_half(seed):
    # No difficult objects here: COCOeval knows none (it overwrites a gt's `ignore` with its
    # `iscrowd`, and matches crowd regions by intersection over the detection's area), so
    # difficult objects have no COCO counterpart to compare against.
    from pycocotools.coco import COCO
    gt, detections = random_case(np.random.default_rng(seed))
    coco = COCO()
    coco.dataset = gt
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    ours = voc_map(coco, detections)  # a COCO object works as well as its dict
    theirs = coco_ap50(gt, detections)
    # COCO samples 101 recall points, VOC every recall step: close, not equal.
    assert ours["per_category"] == pytest.approx(theirs, abs=0.02)
    assert ours["mAP"] == pytest.approx(np.mean(list(theirs.values())), abs=0.02)
    eleven = voc_map(gt, detections, interpolation="11point")
    for name, ap in eleven["per_category"].items():
        assert 0.0 <= ap <= 1.0
        assert ap == pytest.approx(ours["per_category"][name], abs=0.05)


def loop_ap(gt, detections, category_id, iou_threshold=0.5):
    """The devkit's rule written as a plain loop, one detection at a time: the reference for
    what the vectorised voc_map must match on cases COCOeval cannot check (difficult objects,
    overlapping gt boxes, duplicates)."""
    def iou(a, b):
        w = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
        h = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
        inter = max(w, 0) * max(h, 0)
        return inter / (a[2] * a[3] + b[2] * b[3] - inter)
    boxes = [a for a in gt["annotations"] if a["category_id"] == category_id]
    positives = sum(not a["difficult"] for a in boxes)
    matched, tp, fp = set(), [], []
    mine = [d for d in detections if d["category_id"] == category_id]
    for d in sorted(mine, key=lambda d: -d["score"]):
        candidates = [a for a in boxes if a["image_id"] == d["image_id"]]
        overlaps = [iou(d["bbox"], a["bbox"]) for a in candidates]
        best = candidates[int(np.argmax(overlaps))] if candidates else None
        if best is not None and max(overlaps) >= iou_threshold:
            if best["difficult"]:
                continue
            if best["id"] not in matched:
                matched.add(best["id"])
                tp.append(1), fp.append(0)
                continue
        tp.append(0), fp.append(1)
    tp, fp = np.cumsum(tp), np.cumsum(fp)
    return voc_ap(tp / positives, tp / np.maximum(tp + fp, 1)) if positives else -1.0


@pytest.mark.parametrize("seed", range(3))
def test_matches_a_plain_loop_with_difficult_and_overlapping_objects(seed):
    rng = np.random.default_rng(100 + seed)
    annotations, detections = [], []

    def box():
        return (*rng.uniform(0, 60, size=2), *rng.uniform(20, 40, size=2))

    for image in range(1, 11):
        # Crowded: boxes overlap, so duplicates and neighbours compete for the same gt.
        objects = [(image, int(rng.integers(1, 3)), box(), rng.random() < 0.3)
                   for _ in range(rng.integers(0, 6))]
        annotations += objects
        found = [(category, np.add(bbox, rng.normal(0, 3, size=4)))
                 for _, category, bbox, _ in objects for _ in range(rng.integers(0, 3))]
        found += [(int(rng.integers(1, 3)), box()) for _ in range(rng.integers(0, 3))]
        # Scores on a coarse grid: ties, which both sides break by input order.
        detections += [det(image, category, bbox, float(rng.integers(0, 5)) / 4)
                       for category, bbox in found]
    gt = dataset(annotations, range(1, 11))
    result = voc_map(gt, detections)
    for category in CATEGORIES:
        assert result["per_category"][category["name"]] == pytest.approx(
            loop_ap(gt, detections, category["id"]), abs=1e-12)
