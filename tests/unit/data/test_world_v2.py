"""World v2 (workflow/presets/world_v2.yaml): a synthetic ImageNet and COCO that differ as
the real ones do. Its statistics are asserted on generated files at smoke size: density,
categories per image, COCO's size-class shares, the category overlap with pre-training and
the pre-training objects' larger scale; its keys' checks; and the first world unchanged."""
import json
import math

import numpy as np
import pytest
import yaml
from pycocotools.coco import COCO

from conftest import ROOT
from rethink.core import config, errors, synthetic
from rethink.data import layout, writers
from rethink.data import world as rendering

PRESET = yaml.safe_load((ROOT / "workflow/presets/world_v2.yaml").read_text())["data"]["synthetic"]
DEFAULT = yaml.safe_load((ROOT / "config.yaml").read_text())["data"]["synthetic"]
# the preset's world at smoke size: its per-scene statistics need ~100 scenes, not 1,000
V2 = {**DEFAULT, **PRESET, "cls_train_per_class": 2, "cls_val_per_class": 1,
      "det_train_images": 120, "det_val_images": 4}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    base = tmp_path_factory.mktemp("v2")
    writers.generate_imagenet(base / "imagenet", V2, seed=0)
    writers.generate_coco(base / "coco", V2, seed=0)
    stats = layout.check_coco(base / "coco", verify_images="none")
    return base, stats


def test_scenes_have_cocos_density_and_sizes(world):
    train = world[1]["train"]
    assert 6.3 <= train["instances_per_image"] <= 8.3          # COCO train2017: 7.3
    assert train["categories"] >= 8
    assert 2.0 <= train["categories_per_image"] <= 3.5         # COCO 2014 train: 3.5
    shares = train["size_shares"]                              # COCO: 41% / 34% / 24%
    for name, coco in (("small", 0.41), ("medium", 0.34), ("large", 0.24)):
        assert abs(shares[name] - coco) < 0.1, shares


def test_some_detection_categories_are_no_pretraining_class(world):
    base, _ = world
    classes = [line.split("\t")[1] for line in (base / "imagenet/classes.txt").read_text().splitlines()]
    cats = [c["name"] for c in json.loads((base / "coco/annotations/instances_train2017.json").read_text())["categories"]]
    assert len(classes) == PRESET["classes"] and len(cats) == PRESET["detection_classes"]
    shared = [c for c in cats if c in classes]
    assert len(shared) == PRESET["detection_shared"] < len(cats)     # absent ones, as 'person'
    assert len(cats) <= len(classes) / 2                             # a minority of the classes
    # the absent categories are annotated like the others (ids need not be contiguous)
    coco = COCO(str(base / "coco/annotations/instances_train2017.json"))
    absent = [c["id"] for c in coco.loadCats(coco.getCatIds()) if c["name"] not in classes]
    assert all(len(coco.getAnnIds(catIds=[i])) > 0 for i in absent)


def test_pretraining_objects_are_larger_than_the_scenes(world):
    """ImageNet's framing: an object fills much of its image; COCO's are mostly small."""
    base, _ = world
    coco = COCO(str(base / "coco/annotations/instances_train2017.json"))
    rel = sorted(math.sqrt(a["area"] / (coco.imgs[a["image_id"]]["width"] * coco.imgs[a["image_id"]]["height"]))
                 for a in coco.dataset["annotations"] if not a["iscrowd"])
    median_scene = rel[len(rel) // 2]
    # the smallest pre-training object: diameter cls_object_scale[0] of the side, of the
    # least filling shape (a star's area is 0.47 of its circumscribed circle's ... and more)
    smallest_area = min(rendering._UNIT_AREA.values()) * (PRESET["cls_object_scale"][0] / 2) ** 2
    assert median_scene < 0.5 * math.sqrt(smallest_area)


def test_centre_jitter_pulls_the_object_to_the_centre(monkeypatch):
    placed = []
    sample = rendering._sample_object
    monkeypatch.setattr(rendering, "_sample_object", lambda rng, *a: placed.append(a[2:4]) or sample(rng, *a))
    for jitter in (1.0, 0.25, 0.0):
        rendering.render_classification_image(np.random.default_rng(3), 64, "square", "solid", 0.0,
                                          scale=(0.3, 0.3), centre_jitter=jitter)
    (x1, y1), (xq, yq), (x0, y0) = placed
    assert (x0, y0) == (32.0, 32.0)
    assert xq - 32 == pytest.approx(0.25 * (x1 - 32)) and yq - 32 == pytest.approx(0.25 * (y1 - 32))
    assert abs(x1 - 32) > 2  # (the seed's draw is off-centre: the test can tell)


def test_world_keys_default_to_the_first_world():
    assert synthetic.world_options(synthetic.validate_config(DEFAULT)) == synthetic.WORLD_DEFAULTS
    pre, det = synthetic.world_vocabulary(synthetic.validate_config(DEFAULT))
    assert det == pre[:DEFAULT["detection_classes"]]


@pytest.mark.parametrize("change, message", [
    ({"detection_shared": 9}, r"detection_shared must be in \[0, min\(detection_classes, classes\)\] = \[0, 8\], got 9"),
    ({"classes": 35}, r"classes \+ detection_classes - detection_shared = 37"),
    ({"det_size_shares": [0.5, 0.5, 0.5]}, r"det_size_shares must be 3 non-negative shares"),
    ({"det_object_scale": [0.1, 0.15]}, r"det_size_shares gives small, large objects a share"),
    ({"det_object_scale": None}, r"det_size_shares needs det_object_scale"),
    ({"cls_object_scale": [0.9, 0.5]}, r"cls_object_scale must be \[lo, hi\]"),
    ({"cls_centre_jitter": 2}, r"cls_centre_jitter must be a number in \[0, 1\]"),
    ({"det_categories_per_scene": 9}, r"det_categories_per_scene must be in \[1, detection_classes\]"),
])
def test_bad_world_keys_name_the_key(change, message):
    cfg = {**V2, **change}
    with pytest.raises(errors.ConfigError, match=message):
        synthetic.validate_config(cfg)
    full = yaml.safe_load((ROOT / "config.yaml").read_text())
    full["data"]["synthetic"] = cfg
    with pytest.raises(config.ConfigError, match="data.synthetic." + message.split(" ")[0].lstrip("(")):
        config.check(full)
