"""Issue 34, loader memory: CocoInstances holds its annotations as numpy arrays, gives the
targets pycocotools' COCO object gave, bit for bit, and its loader workers do not copy it."""
import json
import random

import numpy as np
import pytest
import torch
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from rethink.bench.loader_memory import PycocotoolsTargets
from rethink.data import world, writers
from rethink.data.coco import CocoInstances
from tiny import tiny


@pytest.fixture(scope="module")
def odd_coco(tmp_path_factory):
    """The tiny synthetic world, its train files given every kind of annotation COCO has: a
    crowd region, objects in several polygons, non-crowd RLEs (compressed and not), a
    triangle, integer coordinates, a box under a pixel wide, a difficult object, an object
    without keypoints, an image without objects; images and annotations out of order."""
    root = tmp_path_factory.mktemp("loader") / "coco"
    writers.generate_coco(root, {**tiny()[0], "det_train_images": 16}, seed=5)
    gt = COCO(str(root / "annotations" / "instances_train2017.json"))
    for kind in ("instances", "person_keypoints"):
        path = root / "annotations" / f"{kind}_train2017.json"
        doc = json.loads(path.read_text())
        anns = [a for a in doc["annotations"] if not a["iscrowd"]]
        mask = [gt.annToMask(gt.anns[a["id"]]) for a in anns[:4]]
        anns[0].update(iscrowd=1, segmentation=world.uncompressed_rle(mask[0]))
        anns[1]["segmentation"] = anns[1]["segmentation"] + [[v + 3 for v in anns[1]["segmentation"][0]]]
        rle = mask_utils.encode(np.asfortranarray(mask[2]))
        anns[2]["segmentation"] = {"size": rle["size"], "counts": rle["counts"].decode()}
        anns[3]["segmentation"] = world.uncompressed_rle(mask[3])
        x, y, w, h = anns[4]["bbox"]
        anns[4]["segmentation"] = [[x, y, x + w, y + h, x, y + h]]
        anns[5]["segmentation"] = [[int(v) for v in anns[5]["segmentation"][0]]]
        anns[6]["bbox"][2] = 0.5
        anns[7]["difficult"] = 1
        anns[8].pop("keypoints", None)
        empty = doc["images"][-1]["id"]
        doc["annotations"] = [a for a in doc["annotations"] if a["image_id"] != empty]
        random.Random(0).shuffle(doc["images"])
        random.Random(1).shuffle(doc["annotations"])
        path.write_text(json.dumps(doc))
    return root


def assert_same_target(new: dict, old: dict):
    assert new.keys() == old.keys() and new["image_id"] == old["image_id"]
    for key in new.keys() - {"image_id"}:
        a, b = new[key], old[key]
        assert type(a) is type(b) and a.dtype == b.dtype and a.shape == b.shape, key
        assert torch.equal(a, b), key
    assert new["boxes"].canvas_size == old["boxes"].canvas_size


@pytest.mark.parametrize("masks,keypoints", [(True, False), (False, False), (True, True)])
def test_targets_are_pycocotools_bit_for_bit(odd_coco, masks, keypoints):
    kind = "person_keypoints" if keypoints else "instances"
    ann_file = odd_coco / "annotations" / f"{kind}_train2017.json"
    new = CocoInstances(odd_coco, "train", ann_file=ann_file, masks=masks, keypoints=keypoints)
    old = PycocotoolsTargets(ann_file, masks=masks, keypoints=keypoints)
    assert new.ids == old.ids and new.sizes() == old.sizes()
    assert new.keypoint_names == old.keypoint_names
    seen = 0
    for image_id, h, w in zip(new.ids, *new.sizes()):
        target = new.target(image_id, h, w)
        assert_same_target(target, old.target(image_id, h, w))
        seen += len(target["labels"])
    assert 0 < seen < len(old.coco.anns)  # the crowd, the thin and the difficult one left out
    # the index is arrays: nothing per annotation a worker would touch as a Python object
    assert all(isinstance(v, np.ndarray) for v in vars(new.ann_index).values())
    assert not any(isinstance(v, COCO) for v in vars(new).values())


def test_items_subsets_and_the_coco_property(odd_coco):
    ds = CocoInstances(odd_coco, "train")
    old = PycocotoolsTargets(odd_coco / "annotations" / "instances_train2017.json")
    some = old.ids[::2][::-1]
    sub = CocoInstances(odd_coco, "train", image_ids=some, skip_ids=[some[0]])
    assert sub.ids == some[1:] and sub.skipped == 1 and len(sub) == len(some) - 1
    img, target = sub[0]
    h, w = img.shape[-2:]
    assert_same_target(target, old.target(some[1], h, w))
    assert sub.image_path(some[1]) == odd_coco / "train2017" / old.coco.imgs[some[1]]["file_name"]
    with pytest.raises(KeyError):
        ds.target(10**9, 8, 8)
    gt = ds.coco  # evaluation's ground truth: the file's, loaded when asked
    assert isinstance(gt, COCO) and gt.dataset == old.coco.dataset and gt is not ds.coco


@pytest.mark.slow
def test_workers_do_not_copy_the_index(tmp_path):
    """The benchmark part, --quick: loader workers that build every target of ~20k objects.
    With the arrays a worker's private memory grows a little; with pycocotools' COCO object
    (measured beside it) it copies the objects it touches, many times more."""
    from rethink.bench import suite
    results = suite.run(["loader_memory"], True, tmp_path, tmp_path / "suite.json", {})
    e = results["parts"]["loader_memory"]
    assert e["status"] == "ok", e.get("traceback")
    arrays, coco = e["kinds"]["arrays"], e["kinds"]["pycocotools"]
    assert [w["objects"] for w in arrays["workers"]] == [w["objects"] for w in coco["workers"]]
    assert len(arrays["workers"]) == 2 and arrays["workers"][0]["objects"] > 19_000
    assert coco["touch_growth_mb"] > 10, coco  # the measurement sees a copied index
    for w in arrays["workers"]:
        assert w["touch_growth_mb"] < 0.25 * coco["touch_growth_mb"], e
    assert e["ratio_uss_pycocotools_vs_arrays"] > 1
    frozen = e["kinds"]["arrays_frozen"]  # the parent's objects frozen before the fork: a
    for w in frozen["workers"]:           # collection in the worker copies none of them
        assert w["collection_growth_mb"] < 0.5 * arrays["collection_growth_mb"], e
    assert e["command"].endswith("--only loader_memory --out " + str(tmp_path / "suite.json"))
    assert "| pycocotools |" in suite.markdown(results)
