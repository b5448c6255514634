"""pycocotools evaluation on hand-made detections."""
import contextlib
import io

import numpy as np
import pytest
from pycocotools.coco import COCO

from rethink.evaluation.evaluate import KEYPOINT_SUMMARY_KEYS, SUMMARY_KEYS, encode_masks, evaluate_results

H, W = 64, 80


def mask_rle(binary):
    """One binary mask's COCO RLE, by evaluation's own encoder."""
    return encode_masks(binary[None])[0]


def square(x, y, s):
    m = np.zeros((H, W), np.uint8)
    m[y:y + s, x:x + s] = 1
    return m


def ground_truth():
    objects = [(1, 1, square(5, 5, 20)), (1, 2, square(40, 10, 30)), (2, 1, square(10, 30, 25)),
               (2, 2, square(50, 40, 12))]
    anns = []
    for i, (img, cat, m) in enumerate(objects, start=1):
        ys, xs = np.nonzero(m)
        bbox = [float(xs.min()), float(ys.min()), float(np.ptp(xs) + 1), float(np.ptp(ys) + 1)]
        anns.append({"id": i, "image_id": img, "category_id": cat, "bbox": bbox,
                     "area": float(m.sum()), "iscrowd": 0, "segmentation": mask_rle(m)})
    gt = COCO()
    gt.dataset = {"images": [{"id": i, "width": W, "height": H, "file_name": f"{i}.jpg"} for i in (1, 2)],
                  "categories": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}],
                  "annotations": anns}
    with contextlib.redirect_stdout(io.StringIO()):
        gt.createIndex()
    return gt


def as_detections(gt, score=0.9):
    bbox, segm = [], []
    for a in gt.dataset["annotations"]:
        common = {"image_id": a["image_id"], "category_id": a["category_id"], "score": score}
        bbox.append({**common, "bbox": a["bbox"]})
        segm.append({**common, "segmentation": a["segmentation"]})
    return bbox, segm


def test_perfect_detections_score_one():
    gt = ground_truth()
    m = evaluate_results(gt, *as_detections(gt))
    for task in ("bbox", "segm"):
        assert set(m[task]) == set(SUMMARY_KEYS)
        assert m[task]["AP"] == pytest.approx(1.0)
        assert m[task]["AP50"] == pytest.approx(1.0)
        assert m[task]["AR100"] == pytest.approx(1.0)
        assert m["per_category"][task] == {"a": pytest.approx(1.0), "b": pytest.approx(1.0)}


def test_no_detections_score_zero():
    gt = ground_truth()
    m = evaluate_results(gt, [], [])
    for task in ("bbox", "segm"):
        assert m[task]["AP"] == 0.0 and m[task]["AR100"] == 0.0
        assert m["per_category"][task] == {"a": 0.0, "b": 0.0}


def test_wrong_category_and_shifted_boxes_score_in_between():
    gt = ground_truth()
    bbox, segm = as_detections(gt)
    bbox[0]["category_id"] = 2           # one false positive + one miss
    segm[0]["category_id"] = 2
    bbox[1]["bbox"] = [b + 3 for b in bbox[1]["bbox"][:2]] + bbox[1]["bbox"][2:]  # IoU .68
    m = evaluate_results(gt, bbox, segm)
    assert 0.0 < m["bbox"]["AP"] < 1.0
    assert m["bbox"]["AP50"] > m["bbox"]["AP75"]
    assert m["per_category"]["bbox"]["a"] < 1.0


def noisy_detections(gt, seed=0):
    """Perturbed ground truth: shifted boxes and masks, duplicates, misses, wrong classes."""
    rng = np.random.default_rng(seed)
    bbox, segm = [], []
    for a in gt.dataset["annotations"]:
        m = gt.annToMask(a)
        for _ in range(int(rng.integers(0, 3))):
            dx, dy = (int(v) for v in rng.integers(-4, 5, 2))
            shifted = np.roll(np.roll(m, dy, 0), dx, 1)
            cat = a["category_id"] if rng.random() < 0.8 else 3 - a["category_id"]
            common = {"image_id": a["image_id"], "category_id": cat,
                      "score": round(float(rng.random()), 3)}
            x, y, w, h = a["bbox"]
            bbox.append({**common, "bbox": [x + dx, y + dy, w * rng.uniform(0.8, 1.2), h]})
            segm.append({**common, "segmentation": mask_rle(shifted)})
    return bbox, segm


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_backends_give_the_same_numbers(seed):
    """faster-coco-eval (the default) against pycocotools, the reference: all 12 numbers
    and per-category AP, for bbox and segm, on every image and on a subset."""
    gt = ground_truth()
    bbox, segm = noisy_detections(gt, seed)
    aps = []
    for image_ids in (None, [2]):
        faster = evaluate_results(gt, bbox, segm, image_ids=image_ids, backend="faster")
        reference = evaluate_results(gt, bbox, segm, image_ids=image_ids, backend="pycocotools")
        aps.append(reference["segm"]["AP"])
        for task in ("bbox", "segm"):
            assert list(faster[task]) == SUMMARY_KEYS
            for k in SUMMARY_KEYS:
                assert faster[task][k] == pytest.approx(reference[task][k], abs=1e-6), (task, k)
            assert faster["per_category"][task] == pytest.approx(reference["per_category"][task],
                                                                 abs=1e-6)
    assert 0.0 < aps[0] < 1.0  # a case with something to get wrong


def test_backends_agree_without_detections():
    gt = ground_truth()
    assert evaluate_results(gt, [], [], backend="faster") == \
        evaluate_results(gt, [], [], backend="pycocotools")


def test_unknown_backend_is_refused():
    with pytest.raises(ValueError, match="backend"):
        evaluate_results(ground_truth(), [], [], backend="detectron")


# ----------------------------------------------------------------------------- keypoints
SIGMAS = [0.07] * 5


def keypoint_ground_truth():
    """ground_truth() with each square's 4 edge midpoints and centre as keypoints (one hidden)."""
    gt = ground_truth()
    for a in gt.dataset["annotations"]:
        x, y, w, h = a["bbox"]
        pts = [(x + w / 2, y), (x + w, y + h / 2), (x + w / 2, y + h), (x, y + h / 2), (x + w / 2, y + h / 2)]
        a["keypoints"] = [v for i, (px, py) in enumerate(pts) for v in (px, py, 1 if i == 2 else 2)]
        a["num_keypoints"] = 5
    for c in gt.dataset["categories"]:
        c.update(keypoints=["top", "right", "bottom", "left", "centre"], skeleton=[[5, 1], [5, 2]])
    with contextlib.redirect_stdout(io.StringIO()):
        gt.createIndex()
    return gt


def keypoint_detections(gt, shift=0.0, score=0.9):
    return [{"image_id": a["image_id"], "category_id": a["category_id"], "score": score,
             "keypoints": [v + (shift if k % 3 == 0 else 0) if k % 3 < 2 else 1
                           for k, v in enumerate(a["keypoints"])]}
            for a in gt.dataset["annotations"]]


@pytest.mark.parametrize("backend", ["faster", "pycocotools"])
def test_keypoints_score_one_when_perfect_and_zero_when_absent(backend):
    gt = keypoint_ground_truth()
    bbox, segm = as_detections(gt)
    m = evaluate_results(gt, bbox, segm, backend=backend, keypoint_res=keypoint_detections(gt),
                         oks_sigmas=SIGMAS)
    assert list(m["keypoints"]) == KEYPOINT_SUMMARY_KEYS
    assert m["keypoints"]["AP"] == pytest.approx(1.0) and m["keypoints"]["AR"] == pytest.approx(1.0)
    assert m["per_category"]["keypoints"] == {"a": pytest.approx(1.0), "b": pytest.approx(1.0)}
    assert m["bbox"]["AP"] == pytest.approx(1.0)  # the other tasks as before
    none = evaluate_results(gt, bbox, segm, backend=backend, keypoint_res=[], oks_sigmas=SIGMAS)
    assert none["keypoints"]["AP"] == 0.0 and none["keypoints"]["AR"] == 0.0
    assert "keypoints" not in evaluate_results(gt, bbox, segm, backend=backend)


def test_keypoint_backends_agree_and_oks_falls_with_distance_and_sigma():
    gt = keypoint_ground_truth()
    bbox, segm = as_detections(gt)
    aps = {}
    for shift in (1.0, 2.5):
        for sigmas in (SIGMAS, [0.035] * 5):
            res = keypoint_detections(gt, shift)
            faster = evaluate_results(gt, bbox, segm, backend="faster", keypoint_res=res, oks_sigmas=sigmas)
            ref = evaluate_results(gt, bbox, segm, backend="pycocotools", keypoint_res=res, oks_sigmas=sigmas)
            for k in KEYPOINT_SUMMARY_KEYS:
                assert faster["keypoints"][k] == pytest.approx(ref["keypoints"][k], abs=1e-6), (shift, k)
            aps[shift, sigmas[0]] = ref["keypoints"]["AP"]
    assert 0.0 < aps[2.5, 0.07] < aps[1.0, 0.07] < 1.0  # farther is worse
    assert aps[1.0, 0.035] < aps[1.0, 0.07]  # a tighter sigma is stricter


def test_keypoint_evaluation_needs_sigmas():
    gt = keypoint_ground_truth()
    with pytest.raises(ValueError, match="keypoints.sigmas"):
        evaluate_results(gt, [], [], keypoint_res=[])


# ----------------------------------------------------------------------------- issue 31: speed
@pytest.fixture(scope="module")
def tiny_coco(tmp_path_factory):
    from rethink.data import writers
    from tiny import tiny
    root = tmp_path_factory.mktemp("data") / "coco"
    writers.generate_coco(root, tiny()[0], seed=3)  # 6 val images
    return root


def test_dataset_without_targets_gives_the_same_images(tiny_coco):
    """Evaluation's val set (targets skipped: no boxes, no masks) holds the training path's
    images, bit for bit, and each item's image id."""
    import torch

    from rethink.data.coco import CocoInstances, eval_transforms
    full = CocoInstances(tiny_coco, "val", eval_transforms())
    bare = CocoInstances(tiny_coco, "val", eval_transforms(), targets=False)
    assert len(full) == len(bare) == 6
    for i in range(len(full)):
        (img, target), (bare_img, bare_target) = full[i], bare[i]
        assert type(bare_img) is type(img) and bare_img.dtype == img.dtype == torch.float32
        assert torch.equal(bare_img, img)
        assert bare_target == {"image_id": target["image_id"]} and "masks" in target


def test_paste_binary_is_torchvision_paste_thresholded():
    """`paste_binary` against torchvision's paste_masks_in_image then > 0.5, as evaluation
    thresholded before: boxes inside, across the border, tiny and degenerate (detections'
    boxes are clipped to the image); the RLEs of both are the same."""
    import torch
    from torchvision.models.detection.roi_heads import paste_masks_in_image

    from rethink.evaluation.evaluate import encode_binary, encode_masks, paste_binary
    gen = torch.Generator().manual_seed(0)
    h, w = 37, 53
    boxes = torch.tensor([[3.2, 4.7, 30.1, 25.9], [-6.0, -3.5, 12.2, 9.0], [40.5, 20.0, 60.0, 45.0],
                          [10.0, 10.0, 10.4, 10.2], [0.0, 0.0, 53.0, 37.0], [20.0, 30.0, 19.0, 29.0],
                          [51.9, 35.2, 52.9, 36.9]])
    corner = torch.rand(24, 2, generator=gen) * torch.tensor([w, h])
    boxes = torch.cat([boxes, torch.cat([corner, corner + torch.rand(24, 2, generator=gen) * 20], 1)])
    masks = torch.rand(len(boxes), 1, 28, 28, generator=gen)
    masks[::3] = masks[::3].round()  # many probabilities at 0 and 1, some at 0.5 after resizing
    ref = (paste_masks_in_image(masks, boxes, (h, w))[:, 0] > 0.5).numpy()
    got = paste_binary(masks, boxes, h, w)
    assert got.shape == (h, w, len(boxes)) and got.flags.f_contiguous
    assert np.array_equal(got, ref.transpose(1, 2, 0).astype(np.uint8))
    assert ref.any() and encode_binary(got) == encode_masks(ref)
    assert paste_binary(masks[:0], boxes[:0], h, w).shape == (h, w, 0) and encode_binary(
        paste_binary(masks[:0], boxes[:0], h, w)) == []


def test_predict_is_the_same_with_binary_paste_and_a_loader_worker(tiny_coco):
    """The evaluation now (images alone, masks pasted into binary ones, with or without a
    loader worker) against before (targets with masks, torchvision's paste, no worker): the
    same results files and the same 12 bbox and segm numbers, bit for bit."""
    import contextlib
    import io

    import torch

    from rethink.data.coco import CocoInstances, eval_transforms
    from rethink.evaluation.evaluate import predict, val_dataset
    from rethink.models.detector import build_mask_rcnn
    from tiny import tiny
    _, model_cfg, _ = tiny()
    model_cfg = {**model_cfg, "score_thresh": 0.0}  # an untrained model: keep its detections
    torch.manual_seed(0)
    model = build_mask_rcnn(model_cfg, 2).eval()
    cpu = torch.device("cpu")
    with contextlib.redirect_stdout(io.StringIO()):
        before = predict(model, CocoInstances(tiny_coco, "val", eval_transforms()), cpu, 2,
                         binary_paste=False)
        now = {w: predict(model, val_dataset(tiny_coco, model_cfg, ()), cpu, 2, workers=w) for w in (0, 1)}
        gt = val_dataset(tiny_coco, model_cfg, ()).coco
        scores = [evaluate_results(gt, r["bbox"], r["segm"]) for r in (before, now[0], now[1])]
    assert len(before["segm"]) > 20
    assert now[0] == before and now[1] == before
    assert scores[1] == scores[0] and scores[2] == scores[0]
