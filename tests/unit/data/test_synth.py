"""Tests of the deterministic synthetic ImageNet / COCO generator (rethink.data.world)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import ROOT
from rethink.core import errors, synthetic
from rethink.data import world as rendering
from rethink.data import writers

# pycocotools 2.0.x under numpy 2 emits a harmless DeprecationWarning on every decode
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

SMALL = {
    "classes": 4,
    "detection_classes": 2,
    "cls_image_size": 32,
    "cls_train_per_class": 5,
    "cls_val_per_class": 2,
    "det_train_images": 14,
    "det_val_images": 6,
    "det_min_size": 64,
    "det_max_size": 96,
    "det_max_objects": 5,
    "jpeg_quality": 90,
}


def _files(root):
    root = Path(root)
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    base = tmp_path_factory.mktemp("world")
    inet = writers.generate_imagenet(base / "imagenet", SMALL, seed=7)
    coco = writers.generate_coco(base / "coco", SMALL, seed=7)
    return {"base": base, "imagenet": base / "imagenet", "coco": base / "coco",
            "inet_stats": inet, "coco_stats": coco}


# --------------------------------------------------------------------------- vocabulary
def test_vocabulary_prefix_covers_all_shapes_and_textures():
    voc = synthetic.class_vocabulary(16)
    assert len({c["name"] for c in voc}) == 16
    assert len({(c["shape"], c["texture"]) for c in voc}) == 16
    assert [c["wnid"] for c in voc] == sorted(c["wnid"] for c in voc)
    assert voc[0]["wnid"] == "n90000001"
    for n_det in (4, 8):
        det = voc[:n_det]
        assert {c["shape"] for c in det} == {c["shape"] for c in voc}
        assert {c["texture"] for c in det} == {c["texture"] for c in voc}
    assert [c["name"] for c in synthetic.class_vocabulary(4)] == [
        "solid_circle", "striped_triangle", "striped_circle", "solid_triangle"
    ]
    with pytest.raises(errors.ConfigError):
        synthetic.class_vocabulary(synthetic.MAX_CLASSES + 1)


# --------------------------------------------------------------------------- ImageNet part
def test_imagenet_layout_counts_and_imagefolder(world):
    from torchvision.datasets import ImageFolder

    root = world["imagenet"]
    lines = (root / "classes.txt").read_text().splitlines()
    wnids = [ln.split("\t")[0] for ln in lines]
    assert len(lines) == 4 and all(len(ln.split("\t")) == 2 for ln in lines)
    assert wnids == [f"n9000000{i}" for i in range(1, 5)]
    for split, n in (("train", 5), ("val", 2)):
        assert sorted(p.name for p in (root / split).iterdir()) == wnids
        for w in wnids:
            files = sorted(p.name for p in (root / split / w).iterdir())
            assert files == sorted(f"{w}_{k}.JPEG" for k in range(1, n + 1))
        ds = ImageFolder(str(root / split))
        assert ds.classes == wnids
        assert len(ds) == 4 * n
        img, label = ds[len(ds) - 1]
        assert img.size == (32, 32) and img.mode == "RGB" and label == 3
    with Image.open(root / "train" / wnids[0] / f"{wnids[0]}_1.JPEG") as im:
        assert im.format == "JPEG"
    st = world["inet_stats"]
    assert st["train_images"] == 20 and st["val_images"] == 8 and st["classes"] == 4
    # no temporary folders left next to the output
    assert sorted(p.name for p in world["base"].iterdir()) == ["coco", "imagenet"]


def test_classes_are_visually_distinct(world):
    """Images of one class differ (nuisances), and the object is not just background."""
    root = world["imagenet"] / "train" / "n90000001"
    arrs = [np.asarray(Image.open(p), dtype=np.float32) for p in sorted(root.iterdir())]
    assert all(a.std() > 10 for a in arrs)
    assert np.mean([np.abs(arrs[0] - a).mean() for a in arrs[1:]]) > 10


# --------------------------------------------------------------------------- COCO part
def test_coco_layout_and_pycocotools(world):
    from pycocotools.coco import COCO

    root = world["coco"]
    image_ids = {}
    for split, n in (("train", 14), ("val", 6)):
        ann_file = root / "annotations" / f"instances_{split}2017.json"
        doc = json.loads(ann_file.read_text())
        assert set(doc) >= {"info", "licenses", "images", "annotations", "categories"}
        assert doc["categories"] == [
            {"id": 1, "name": "solid_circle", "supercategory": "circle"},
            {"id": 2, "name": "striped_triangle", "supercategory": "triangle"},
        ]
        assert len(doc["images"]) == n
        image_ids[split] = {im["id"] for im in doc["images"]}
        coco = COCO(str(ann_file))
        assert len(coco.getAnnIds()) == len(doc["annotations"]) > 0
        for im in doc["images"]:
            assert im["file_name"] == f"{im['id']:012d}.jpg"
            assert 64 <= im["width"] <= 96 and 64 <= im["height"] <= 96
            with Image.open(root / f"{split}2017" / im["file_name"]) as pil:
                assert pil.size == (im["width"], im["height"]) and pil.format == "JPEG"
            anns = coco.loadAnns(coco.getAnnIds(imgIds=im["id"]))
            assert 1 <= len([a for a in anns if not a["iscrowd"]]) <= 5
            for a in anns:
                assert a["category_id"] in (1, 2)
                assert coco.annToMask(a).shape == (im["height"], im["width"])
    assert not image_ids["train"] & image_ids["val"]
    st = world["coco_stats"]
    assert st["train"]["annotations"] == len(json.loads(
        (root / "annotations" / "instances_train2017.json").read_text())["annotations"])


@pytest.fixture(scope="module")
def crowded_world(tmp_path_factory):
    """A world large enough to hold crowd regions and objects split by occluders."""
    root = tmp_path_factory.mktemp("crowded") / "coco"
    stats = writers.generate_coco(root, {**SMALL, "det_train_images": 160, "det_val_images": 60}, seed=3)
    return root, stats


def test_coco_annotations_follow_coco_conventions(crowded_world):
    """As COCO writes them: objects (iscrowd 0) as polygons of their visible parts, area the
    polygons' area and bbox the box around them; crowd regions (iscrowd 1) as uncompressed
    RLE of the image's size, with the RLE's pixel area and box."""
    from pycocotools import mask as mask_utils

    root, stats = crowded_world
    n = {"objects": 0, "crowd": 0, "split": 0}
    for split in ("train", "val"):
        doc = json.loads((root / "annotations" / f"instances_{split}2017.json").read_text())
        images = {im["id"]: im for im in doc["images"]}
        for a in doc["annotations"]:
            im = images[a["image_id"]]
            H, W = im["height"], im["width"]
            seg = a["segmentation"]
            if a["iscrowd"] == 0:
                n["objects"] += 1
                n["split"] += len(seg) > 1
                assert isinstance(seg, list) and seg, a["id"]
                for poly in seg:
                    assert len(poly) >= 6 and len(poly) % 2 == 0, a["id"]
                    xs, ys = poly[0::2], poly[1::2]
                    assert 0 <= min(xs) and max(xs) <= W and 0 <= min(ys) and max(ys) <= H
                area = sum(rendering._shoelace(p) for p in seg)
                assert a["area"] == pytest.approx(area, abs=1e-3), a["id"]
                xs = [v for p in seg for v in p[0::2]]
                ys = [v for p in seg for v in p[1::2]]
                assert a["bbox"] == pytest.approx(
                    [min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)], abs=0.011)
                rasterised = mask_utils.area(mask_utils.merge(mask_utils.frPyObjects(seg, H, W)))
                assert rasterised == pytest.approx(area, rel=0.25, abs=12), a["id"]
            else:
                assert a["iscrowd"] == 1
                n["crowd"] += 1
                assert set(seg) == {"size", "counts"} and seg["size"] == [H, W]
                assert isinstance(seg["counts"], list) and sum(seg["counts"]) == H * W
                rle = mask_utils.frPyObjects(seg, H, W)
                assert a["area"] == float(mask_utils.area(rle)) > 0
                assert a["bbox"] == pytest.approx(mask_utils.toBbox(rle).tolist())
    assert n["crowd"] == stats["train"]["crowd_annotations"] + stats["val"]["crowd_annotations"]
    assert n["split"] == stats["train"]["split_objects"] + stats["val"]["split_objects"] > 0
    assert 0.002 <= n["crowd"] / (n["crowd"] + n["objects"]) <= 0.03, n  # COCO: about 1%


def test_uncompressed_rle_round_trips():
    from pycocotools import mask as mask_utils

    rng = np.random.default_rng(0)
    for shape in ((5, 7), (1, 1), (9, 4)):
        for m in (rng.random(shape) < 0.4, np.ones(shape, bool), np.zeros(shape, bool)):
            rle = rendering.uncompressed_rle(m)
            assert sum(rle["counts"]) == m.size
            back = mask_utils.decode(mask_utils.frPyObjects(rle, *shape))
            assert (back.astype(bool) == m).all()


def _reference_masks(anns, H, W):
    """Masks as torchvision's detection references convert COCO targets: polygons through
    `frPyObjects` (merged per object), crowd RLE through its uncompressed-RLE path."""
    from pycocotools import mask as mask_utils

    masks = []
    for a in anns:
        seg = a["segmentation"]
        if isinstance(seg, list):
            rle = mask_utils.merge(mask_utils.frPyObjects(seg, H, W))
        else:
            rle = mask_utils.frPyObjects(seg, H, W)
        masks.append(mask_utils.decode(rle))
    return np.stack(masks)


def test_reference_style_loader_reads_every_image(crowded_world):
    from pycocotools.coco import COCO

    root, _ = crowded_world
    for split in ("train", "val"):
        coco = COCO(str(root / "annotations" / f"instances_{split}2017.json"))
        for iid in coco.getImgIds():
            im = coco.imgs[iid]
            anns = coco.loadAnns(coco.getAnnIds(imgIds=iid))
            masks = _reference_masks(anns, im["height"], im["width"])
            assert masks.shape == (len(anns), im["height"], im["width"])
            assert (masks.reshape(len(anns), -1).sum(1) > 0).all(), iid


def test_coco_torchvision_loaders(world):
    import torch
    from torchvision.datasets import CocoDetection, wrap_dataset_for_transforms_v2

    root = world["coco"]
    ann_file = root / "annotations" / "instances_train2017.json"
    doc = json.loads(ann_file.read_text())
    ds = CocoDetection(str(root / "train2017"), str(ann_file))
    assert len(ds) == 14
    img, target = ds[0]
    first = doc["images"][0]
    assert img.size == (first["width"], first["height"])
    assert target == [a for a in doc["annotations"] if a["image_id"] == first["id"]]

    wrapped = wrap_dataset_for_transforms_v2(ds, target_keys={"boxes", "masks", "labels", "image_id"})
    for i in range(len(ds)):
        _, raw = ds[i]
        img, t = wrapped[i]
        n = len(raw)
        assert t["boxes"].shape == (n, 4) and t["masks"].shape == (n, img.height, img.width)
        assert t["labels"].tolist() == [a["category_id"] for a in raw]
        H, W = img.height, img.width
        assert (t["masks"].numpy() == _reference_masks(raw, H, W)).all()
        xyxy = torch.tensor([[x, y, x + w, y + h] for x, y, w, h in (a["bbox"] for a in raw)])
        assert torch.allclose(t["boxes"].float(), xyxy.float(), atol=0.01)


def test_detection_categories_are_classification_classes(world):
    names = [ln.split("\t")[1] for ln in (world["imagenet"] / "classes.txt").read_text().splitlines()]
    doc = json.loads((world["coco"] / "annotations" / "instances_val2017.json").read_text())
    cat_names = [c["name"] for c in doc["categories"]]
    assert set(cat_names) <= set(names)
    assert cat_names == names[: SMALL["detection_classes"]]
    big = dict(SMALL, classes=16, detection_classes=8)
    assert {c["name"] for c in synthetic.coco_categories(big)} <= {
        c["name"] for c in synthetic.class_vocabulary(16)
    }


# --------------------------------------------------------------------------- determinism
def test_same_seed_identical_bytes_other_seed_differs(world, tmp_path):
    writers.generate_imagenet(tmp_path / "inet", SMALL, seed=7)
    writers.generate_coco(tmp_path / "coco", SMALL, seed=7)
    a_inet, a_coco = _files(world["imagenet"]), _files(world["coco"])
    assert _files(tmp_path / "inet") == a_inet
    assert _files(tmp_path / "coco") == a_coco

    writers.generate_imagenet(tmp_path / "inet8", SMALL, seed=8)
    writers.generate_coco(tmp_path / "coco8", SMALL, seed=8)
    b_inet, b_coco = _files(tmp_path / "inet8"), _files(tmp_path / "coco8")
    assert set(b_inet) == set(a_inet)  # same layout ...
    assert sum(b_inet[k] != a_inet[k] for k in a_inet if k.endswith(".JPEG")) == 28  # ... new pixels
    assert b_coco["annotations/instances_train2017.json"] != a_coco["annotations/instances_train2017.json"]


def test_regeneration_replaces_output_and_failure_keeps_old(tmp_path, monkeypatch):
    out = tmp_path / "coco"
    writers.generate_coco(out, SMALL, seed=1)
    (out / "stale.txt").write_text("old run")
    writers.generate_coco(out, SMALL, seed=1)
    assert not (out / "stale.txt").exists()
    before = _files(out)

    calls = {"n": 0}
    real = rendering.render_detection_scene

    def flaky(*a, **k):
        calls["n"] += 1
        if calls["n"] > 3:
            raise KeyboardInterrupt("simulated interruption")
        return real(*a, **k)

    monkeypatch.setattr(writers, "render_detection_scene", flaky)
    with pytest.raises(KeyboardInterrupt):
        writers.generate_coco(out, SMALL, seed=2)
    with pytest.raises(KeyboardInterrupt):
        calls["n"] = 0
        writers.generate_coco(tmp_path / "fresh", SMALL, seed=2)
    assert _files(out) == before  # the complete old output is untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["coco"]  # no partial folders


# --------------------------------------------------------------------------- config
def test_config_validation_and_loading(tmp_path):
    bad = {k: v for k, v in SMALL.items() if k not in ("jpeg_quality", "det_max_objects")}
    with pytest.raises(errors.ConfigError, match="det_max_objects, jpeg_quality"):
        synthetic.validate_config(bad)
    with pytest.raises(errors.ConfigError, match="detection_classes"):
        synthetic.validate_config(dict(SMALL, detection_classes=5))
    with pytest.raises(errors.ConfigError, match="det_min_size"):
        synthetic.validate_config(dict(SMALL, det_min_size=100))
    with pytest.raises(errors.ConfigError, match="cls_image_size"):
        synthetic.validate_config(dict(SMALL, cls_image_size="32"))
    with pytest.raises(errors.ConfigError, match="missing required key"):
        writers.generate_imagenet(tmp_path / "x", bad, seed=0)
    assert not (tmp_path / "x").exists()

    (tmp_path / "c.json").write_text(json.dumps(SMALL))
    (tmp_path / "c.yaml").write_text("synth:\n" + "".join(f"  {k}: {v}\n" for k, v in SMALL.items()))
    assert synthetic.load_config(str(tmp_path / "c.json")) == {**SMALL, "clutter": 1.0}
    assert synthetic.load_config(str(tmp_path / "c.yaml")) == {**SMALL, "clutter": 1.0}
    assert synthetic.load_config(json.dumps(SMALL)) == {**SMALL, "clutter": 1.0}
    with pytest.raises(errors.ConfigError, match="inline JSON"):
        synthetic.load_config("{not json")


def _run_cli(*args):
    env = dict(os.environ, PYTHONPATH=str(ROOT / "workflow"))
    return subprocess.run(
        [sys.executable, "-m", "rethink.data.writers", *map(str, args)],
        capture_output=True, text=True, env=env, timeout=60,
    )


def test_cli(tmp_path):
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps(SMALL))
    r = _run_cli("--imagenet", tmp_path / "data/inet", "--coco", tmp_path / "data/coco",
                 "--config", cfg, "--seed", 7, "--progress-every", 10)
    assert r.returncode == 0, r.stderr
    assert "[synth] imagenet: 10/28 images" in r.stdout
    assert "[synth] coco: 20/20 images" in r.stdout
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["coco", "inet"]
    assert (tmp_path / "data/coco/annotations/instances_val2017.json").is_file()
    assert len(list((tmp_path / "data/inet/val").rglob("*.JPEG"))) == 8

    bad = json.dumps({k: v for k, v in SMALL.items() if k != "classes"})
    r = _run_cli("--coco", tmp_path / "c2", "--config", bad, "--seed", 1)
    assert r.returncode == 2 and "classes" in r.stderr
    assert not (tmp_path / "c2").exists()


def test_clutter_scales_the_distractors_and_defaults_to_the_full_amount():
    def background(clutter=None):
        rng = np.random.default_rng(3)
        return rendering._background(rng, 96, 96) if clutter is None else rendering._background(rng, 96, 96, clutter)

    assert np.array_equal(background(), background(1.0))
    clean, busy = background(0.0), background(1.0)
    # no blobs or lines: only the smooth gradient and noise, so neighbouring pixels agree more
    assert np.abs(np.diff(clean, axis=1)).mean() < np.abs(np.diff(busy, axis=1)).mean()
    cfg = {k: 4 for k in synthetic.REQUIRED_KEYS} | {"cls_image_size": 16, "det_min_size": 32, "det_max_size": 32,
                                                 "jpeg_quality": 90}
    assert synthetic.validate_config(cfg)["clutter"] == 1.0
    with pytest.raises(errors.ConfigError, match="clutter"):
        synthetic.validate_config(cfg | {"clutter": -1})
