"""Tests of the synthetic world's COCO person-keypoints files (rethink.data.world) and their
checks (rethink.data.keypoints.check_keypoints)."""
import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
from shapely.geometry import Point, Polygon
from shapely.ops import unary_union

from conftest import ROOT
from rethink.data import world as rendering
from rethink.data import writers
from rethink.data.keypoints import check_keypoints
from rethink.data.layout import DatasetError

K = len(rendering.KEYPOINT_NAMES)
TRAIN = "person_keypoints_train2017.json"

# pycocotools 2.0.x under numpy 2 emits a harmless DeprecationWarning on every decode
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

# enough scenes for occluded keypoints and a few crowd regions (seed 3: 1 train, 3 val)
CFG = {
    "classes": 4,
    "detection_classes": 2,
    "cls_image_size": 32,
    "cls_train_per_class": 1,
    "cls_val_per_class": 1,
    "det_train_images": 60,
    "det_val_images": 30,
    "det_min_size": 64,
    "det_max_size": 96,
    "det_max_objects": 5,
    "jpeg_quality": 90,
}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("kp") / "coco"
    stats = writers.generate_coco(root, CFG, seed=3)
    return root, stats


def _docs(root, kind="person_keypoints"):
    return {split: json.loads((root / "annotations" / f"{kind}_{split}2017.json").read_text())
            for split in ("train", "val")}


# --------------------------------------------------------------------------- the files
def test_keypoint_files_load_as_coco_person_keypoints(world):
    from pycocotools.coco import COCO
    from torchvision.datasets import CocoDetection

    root, stats = world
    n_crowd = 0
    for split, doc in _docs(root).items():
        ann_file = root / "annotations" / f"person_keypoints_{split}2017.json"
        coco = COCO(str(ann_file))
        assert len(coco.getAnnIds()) == len(doc["annotations"]) == stats[split]["annotations"]
        for c in doc["categories"]:
            assert c["keypoints"] == ["top", "right", "bottom", "left", "centre"]
            assert c["skeleton"] == [[5, 1], [5, 2], [5, 3], [5, 4]]
            assert isinstance(c["name"], str) and c["name"]
        labelled = visible = 0
        for a in doc["annotations"]:
            kp = a["keypoints"]
            assert len(kp) == 3 * K, a["id"]
            flags = kp[2::3]
            if a["iscrowd"]:
                n_crowd += 1
                assert kp == [0] * (3 * K) and a["num_keypoints"] == 0
            else:
                assert set(flags) <= {1, 2}, a["id"]
                assert a["num_keypoints"] == K
            labelled += sum(f > 0 for f in flags)
            visible += sum(f == 2 for f in flags)
        assert stats[split]["keypoints_labelled"] == labelled
        assert stats[split]["keypoints_visible"] == visible < labelled

        ds = CocoDetection(str(root / f"{split}2017"), str(ann_file))
        img, target = ds[len(ds) - 1]
        last = doc["images"][-1]
        assert img.size == (last["width"], last["height"])
        assert target == [a for a in doc["annotations"] if a["image_id"] == last["id"]]
        assert all(len(t["keypoints"]) == 3 * K for t in target)
    assert n_crowd > 0


def test_keypoints_are_extreme_points_centroid_and_occlusion(world):
    from pycocotools.coco import COCO

    root, _ = world
    n = {"unoccluded": 0, "hidden": 0, "visible": 0}
    for split in ("train", "val"):
        coco = COCO(str(root / "annotations" / f"person_keypoints_{split}2017.json"))
        for iid in coco.getImgIds():
            anns = sorted(coco.loadAnns(coco.getAnnIds(imgIds=iid)), key=lambda a: a["id"])
            for k, a in enumerate(anns):
                if a["iscrowd"]:
                    continue
                pts = np.asarray(a["keypoints"], float).reshape(K, 3)
                later = unary_union([Polygon(np.reshape(p, (-1, 2)))
                                     for b in anns[k + 1:] for p in b["segmentation"]])
                for x, y, v in pts:
                    if v == 1:  # hidden: a later-drawn object covers it
                        n["hidden"] += 1
                        assert later.buffer(0.05).covers(Point(x, y)), a["id"]
                    else:
                        n["visible"] += 1
                        assert not later.buffer(-0.05).covers(Point(x, y)), a["id"]
                poly = np.reshape(a["segmentation"][0], (-1, 2))
                if len(a["segmentation"]) > 1 or later.buffer(0.05).intersects(Polygon(poly)):
                    continue  # (maybe) occluded: its segmentation is not the full polygon
                n["unoccluded"] += 1
                (tx, ty, _), (rx, ry, _), (bx, by, _), (lx, ly, _), (cx, cy, _) = pts
                xs, ys = poly[:, 0], poly[:, 1]
                assert ty == ys.min() and by == ys.max(), a["id"]
                assert lx == xs.min() and rx == xs.max(), a["id"]
                near_top = xs[ys <= ys.min() + rendering.FLAT_EDGE_TOLERANCE]
                assert near_top.min() - 0.01 <= tx <= near_top.max() + 0.01
                mask = coco.annToMask(a)
                assert mask[int(cy), int(cx)] == 1, a["id"]
    assert n["unoccluded"] > 50 and n["hidden"] > 20 and n["visible"] > 200, n


def test_extreme_points_on_flat_edges_and_separate_tips():
    # an axis-aligned square: its top edge is extreme, the keypoint is that edge's midpoint
    square = np.array([[10, 10], [30, 10.3], [30, 30], [10, 30]], float)
    assert rendering._extreme(square, 1, -1) == [20.0, 10.0]
    assert rendering._extreme(square, 0, 1) == [30.0, 20.15]
    # a cross at 45 degrees has two tips as high as each other: one of them, not the notch
    u = rendering._UNIT["cross"]
    c = s = np.sqrt(0.5)
    cross = 20 * np.stack([c * u[:, 0] - s * u[:, 1], s * u[:, 0] + c * u[:, 1]], 1) + 50
    top = rendering._extreme(cross, 1, -1)
    assert Polygon(cross).buffer(1e-6).covers(Point(top))


def test_keypoints_only_writer_is_byte_identical_and_instances_untouched(world, tmp_path):
    root, stats = world
    out = tmp_path / "kp"
    kst = writers.generate_coco_keypoints(out, CFG, seed=3)
    assert sorted(p.name for p in out.iterdir()) == [TRAIN, "person_keypoints_val2017.json"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kp"]  # no temporary folder left
    for split in ("train", "val"):
        name = f"person_keypoints_{split}2017.json"
        assert (out / name).read_bytes() == (root / "annotations" / name).read_bytes()
        assert kst[split] == stats[split]
    kp, inst = _docs(root), _docs(root, "instances")
    for split in ("train", "val"):
        assert not any(set(a) & {"keypoints", "num_keypoints"} for a in inst[split]["annotations"])
        assert not any(set(c) & {"keypoints", "skeleton"} for c in inst[split]["categories"])
        assert [{k: v for k, v in a.items() if k not in rendering.KEYPOINT_FIELDS}
                for a in kp[split]["annotations"]] == inst[split]["annotations"]
        for key in ("info", "licenses", "images"):
            assert kp[split][key] == inst[split][key]
    r = _cli("rethink.data.writers", "--keypoints", tmp_path / "kp2", "--config", json.dumps(CFG),
             "--seed", 3, "--progress-every", 0)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "kp2" / TRAIN).read_bytes() == (out / TRAIN).read_bytes()


# --------------------------------------------------------------------------- the checks
def test_check_keypoints_passes_on_the_synthetic_world(world):
    root, stats = world
    s = check_keypoints(root / "annotations", root, num_keypoints=K)
    assert s["keypoint_names"] == list(rendering.KEYPOINT_NAMES)
    assert s["skeleton"] == rendering.KEYPOINT_SKELETON
    for split in ("train", "val"):
        st = stats[split]
        assert s[split] == {
            "images": st["images"], "annotations": st["annotations"],
            "annotations_with_keypoints": st["annotations"] - st["crowd_annotations"],
            "keypoints_labelled": st["keypoints_labelled"], "keypoints_visible": st["keypoints_visible"],
        }


@pytest.fixture
def kp_dir(world, tmp_path):
    """A copy of the keypoint files alone (the images stay in the world)."""
    d = tmp_path / "ann"
    d.mkdir()
    for split in ("train", "val"):
        shutil.copy(world[0] / "annotations" / f"person_keypoints_{split}2017.json", d)
    return d


def _first_object(doc):
    return next(a for a in doc["annotations"] if not a["iscrowd"])


def _set(a, key, fn):
    a[key] = fn(a[key])


BAD = {
    "wrong length": (lambda d: _set(_first_object(d), "keypoints", lambda kp: kp[:12]),
                     "annotation id 1: keypoints has 12 values, needs 3 x 5 = 15"),
    "no keypoints": (lambda d: _first_object(d).pop("keypoints"), "annotation id 1: needs keypoints"),
    "visibility 3": (lambda d: _first_object(d)["keypoints"].__setitem__(2, 3),
                     "annotation id 1: keypoint 1 (top) has visibility 3"),
    "outside the image": (lambda d: _first_object(d)["keypoints"].__setitem__(3, 500.0),
                          "annotation id 1: keypoint 2 (right) at (500, "),
    "skeleton": (lambda d: d["categories"][0].__setitem__("skeleton", [[5, 1], [3, 9]]),
                 "category id 1: skeleton [3, 9] names keypoint 9, the category has 5"),
    "repeated name": (lambda d: d["categories"][1]["keypoints"].__setitem__(4, "top"),
                      "category id 2: keypoint names repeat: top"),
    "categories disagree": (lambda d: d["categories"][1]["keypoints"].append("tail"),
                            "different numbers of keypoints: id 1 has 5, id 2 has 6"),
    "num_keypoints": (lambda d: _first_object(d).__setitem__("num_keypoints", 4),
                      "annotation id 1: num_keypoints is 4 but 5 keypoints are labelled"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_keypoints_name_file_and_record(world, kp_dir, case):
    mutate, message = BAD[case]
    doc = json.loads((kp_dir / TRAIN).read_text())
    mutate(doc)
    (kp_dir / TRAIN).write_text(json.dumps(doc))
    with pytest.raises(DatasetError, match=re.escape(f"{kp_dir / TRAIN}: ")) as e:
        check_keypoints(kp_dir, world[0], num_keypoints=K)
    assert message in str(e.value)


def test_keypoint_count_must_match_the_config_and_train_val_agree(world, kp_dir):
    with pytest.raises(DatasetError) as e:
        check_keypoints(kp_dir, world[0], num_keypoints=17, config_key="keypoints.sigmas")
    assert str(e.value).startswith(
        f"keypoints.sigmas has 17 values but {kp_dir / TRAIN} names 5 keypoints per category "
        "(top, right, bottom, left, centre)")

    val = kp_dir / "person_keypoints_val2017.json"
    doc = json.loads(val.read_text())
    for c in doc["categories"]:
        c["keypoints"][4] = "center"
    val.write_text(json.dumps(doc))
    with pytest.raises(DatasetError, match="name different keypoints .*centre.* vs .*center"):
        check_keypoints(kp_dir, world[0], num_keypoints=K)

    val.unlink()
    with pytest.raises(DatasetError,
                       match=f"keypoints folder {re.escape(str(kp_dir))}: missing person_keypoints_val2017"):
        check_keypoints(kp_dir, world[0], num_keypoints=K)


def _cli(module, *args):
    env = dict(os.environ, PYTHONPATH=str(ROOT / "workflow"))
    return subprocess.run([sys.executable, "-m", module, *map(str, args)],
                          capture_output=True, text=True, env=env, timeout=120)


def test_layout_cli_keypoints(world, kp_dir, tmp_path):
    root, stats = world
    out = tmp_path / "stats.json"
    args = ("--keypoints", kp_dir, "--images", root, "--num-keypoints", K,
            "--config-key", "keypoints.sigmas", "--out", out)
    r = _cli("rethink.data.check", *args)
    assert r.returncode == 0, r.stderr
    s = json.loads(out.read_text())["keypoints"]
    assert s["keypoint_names"] == list(rendering.KEYPOINT_NAMES)
    assert s["train"]["keypoints_labelled"] == stats["train"]["keypoints_labelled"]

    out.unlink()
    doc = json.loads((kp_dir / TRAIN).read_text())
    doc["annotations"][0]["keypoints"][2] = 3
    (kp_dir / TRAIN).write_text(json.dumps(doc))
    r = _cli("rethink.data.check", *args)
    assert r.returncode == 1 and not out.exists()
    assert f"DatasetError: {kp_dir / TRAIN}: annotation id 1: keypoint 1 (top) has visibility 3" in r.stderr
