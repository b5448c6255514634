"""Tests of the deterministic synthetic ImageNet / COCO generator (rethink.synth)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from rethink import synth

ROOT = Path(__file__).resolve().parents[1]

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
    inet = synth.generate_imagenet(base / "imagenet", SMALL, seed=7)
    coco = synth.generate_coco(base / "coco", SMALL, seed=7)
    return {"base": base, "imagenet": base / "imagenet", "coco": base / "coco",
            "inet_stats": inet, "coco_stats": coco}


# --------------------------------------------------------------------------- vocabulary
def test_vocabulary_prefix_covers_all_shapes_and_textures():
    voc = synth.class_vocabulary(16)
    assert len({c["name"] for c in voc}) == 16
    assert len({(c["shape"], c["texture"]) for c in voc}) == 16
    assert [c["wnid"] for c in voc] == sorted(c["wnid"] for c in voc)
    assert voc[0]["wnid"] == "n90000001"
    for n_det in (4, 8):
        det = voc[:n_det]
        assert {c["shape"] for c in det} == {c["shape"] for c in voc}
        assert {c["texture"] for c in det} == {c["texture"] for c in voc}
    assert [c["name"] for c in synth.class_vocabulary(4)] == [
        "solid_circle", "striped_triangle", "striped_circle", "solid_triangle"
    ]
    with pytest.raises(synth.ConfigError):
        synth.class_vocabulary(synth.MAX_CLASSES + 1)


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
    n_poly = n_rle = 0
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
            assert 1 <= len(anns) <= 5
            union = np.zeros((im["height"], im["width"]), np.int32)
            for a in anns:
                assert a["iscrowd"] == 0 and a["category_id"] in (1, 2)
                m = coco.annToMask(a)
                assert m.shape == (im["height"], im["width"])
                assert int(m.sum()) == a["area"] >= synth.MIN_VISIBLE_PIXELS
                ys, xs = np.nonzero(m)
                x0, y0 = xs.min(), ys.min()
                w, h = xs.max() - x0 + 1, ys.max() - y0 + 1
                assert np.allclose(a["bbox"], [x0, y0, w, h], atol=0.01), (a["id"], a["bbox"])
                union += m
                if isinstance(a["segmentation"], list):
                    n_poly += 1
                    assert len(a["segmentation"]) == 1 and len(a["segmentation"][0]) >= 6
                else:
                    n_rle += 1
                    assert a["segmentation"]["size"] == [im["height"], im["width"]]
                    assert isinstance(a["segmentation"]["counts"], str)
            # visible parts of different objects never overlap
            assert union.max() <= 1
    assert n_poly > 0 and n_rle > 0, (n_poly, n_rle)
    assert not image_ids["train"] & image_ids["val"]
    st = world["coco_stats"]
    assert st["train"]["polygon_annotations"] + st["train"]["rle_annotations"] == st["train"]["annotations"]


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
        assert t["masks"].flatten(1).sum(1).tolist() == [a["area"] for a in raw]
        xyxy = torch.tensor([[x, y, x + w, y + h] for x, y, w, h in (a["bbox"] for a in raw)])
        assert torch.allclose(t["boxes"].float(), xyxy.float(), atol=0.01)


def test_detection_categories_are_classification_classes(world):
    names = [ln.split("\t")[1] for ln in (world["imagenet"] / "classes.txt").read_text().splitlines()]
    doc = json.loads((world["coco"] / "annotations" / "instances_val2017.json").read_text())
    cat_names = [c["name"] for c in doc["categories"]]
    assert set(cat_names) <= set(names)
    assert cat_names == names[: SMALL["detection_classes"]]
    big = dict(SMALL, classes=16, detection_classes=8)
    assert {c["name"] for c in synth.coco_categories(big)} <= {
        c["name"] for c in synth.class_vocabulary(16)
    }


# --------------------------------------------------------------------------- determinism
def test_same_seed_identical_bytes_other_seed_differs(world, tmp_path):
    synth.generate_imagenet(tmp_path / "inet", SMALL, seed=7)
    synth.generate_coco(tmp_path / "coco", SMALL, seed=7)
    a_inet, a_coco = _files(world["imagenet"]), _files(world["coco"])
    assert _files(tmp_path / "inet") == a_inet
    assert _files(tmp_path / "coco") == a_coco

    synth.generate_imagenet(tmp_path / "inet8", SMALL, seed=8)
    synth.generate_coco(tmp_path / "coco8", SMALL, seed=8)
    b_inet, b_coco = _files(tmp_path / "inet8"), _files(tmp_path / "coco8")
    assert set(b_inet) == set(a_inet)  # same layout ...
    assert sum(b_inet[k] != a_inet[k] for k in a_inet if k.endswith(".JPEG")) == 28  # ... new pixels
    assert b_coco["annotations/instances_train2017.json"] != a_coco["annotations/instances_train2017.json"]


def test_regeneration_replaces_output_and_failure_keeps_old(tmp_path, monkeypatch):
    out = tmp_path / "coco"
    synth.generate_coco(out, SMALL, seed=1)
    (out / "stale.txt").write_text("old run")
    synth.generate_coco(out, SMALL, seed=1)
    assert not (out / "stale.txt").exists()
    before = _files(out)

    calls = {"n": 0}
    real = synth.render_detection_scene

    def flaky(*a, **k):
        calls["n"] += 1
        if calls["n"] > 3:
            raise KeyboardInterrupt("simulated interruption")
        return real(*a, **k)

    monkeypatch.setattr(synth, "render_detection_scene", flaky)
    with pytest.raises(KeyboardInterrupt):
        synth.generate_coco(out, SMALL, seed=2)
    with pytest.raises(KeyboardInterrupt):
        calls["n"] = 0
        synth.generate_coco(tmp_path / "fresh", SMALL, seed=2)
    assert _files(out) == before  # the complete old output is untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["coco"]  # no partial folders


# --------------------------------------------------------------------------- config
def test_config_validation_and_loading(tmp_path):
    bad = {k: v for k, v in SMALL.items() if k not in ("jpeg_quality", "det_max_objects")}
    with pytest.raises(synth.ConfigError, match="det_max_objects, jpeg_quality"):
        synth.validate_config(bad)
    with pytest.raises(synth.ConfigError, match="detection_classes"):
        synth.validate_config(dict(SMALL, detection_classes=5))
    with pytest.raises(synth.ConfigError, match="det_min_size"):
        synth.validate_config(dict(SMALL, det_min_size=100))
    with pytest.raises(synth.ConfigError, match="cls_image_size"):
        synth.validate_config(dict(SMALL, cls_image_size="32"))
    with pytest.raises(synth.ConfigError, match="missing required key"):
        synth.generate_imagenet(tmp_path / "x", bad, seed=0)
    assert not (tmp_path / "x").exists()

    (tmp_path / "c.json").write_text(json.dumps(SMALL))
    (tmp_path / "c.yaml").write_text("synth:\n" + "".join(f"  {k}: {v}\n" for k, v in SMALL.items()))
    assert synth.load_config(str(tmp_path / "c.json")) == {**SMALL, "clutter": 1.0}
    assert synth.load_config(str(tmp_path / "c.yaml")) == {**SMALL, "clutter": 1.0}
    assert synth.load_config(json.dumps(SMALL)) == {**SMALL, "clutter": 1.0}
    with pytest.raises(synth.ConfigError, match="inline JSON"):
        synth.load_config("{not json")


def _run_cli(*args):
    env = dict(os.environ, PYTHONPATH=str(ROOT / "workflow"))
    return subprocess.run(
        [sys.executable, "-m", "rethink.synth", *map(str, args)],
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
        return synth._background(rng, 96, 96) if clutter is None else synth._background(rng, 96, 96, clutter)

    assert np.array_equal(background(), background(1.0))
    clean, busy = background(0.0), background(1.0)
    # no blobs or lines: only the smooth gradient and noise, so neighbouring pixels agree more
    assert np.abs(np.diff(clean, axis=1)).mean() < np.abs(np.diff(busy, axis=1)).mean()
    cfg = {k: 4 for k in synth.REQUIRED_KEYS} | {"cls_image_size": 16, "det_min_size": 32, "det_max_size": 32,
                                                 "jpeg_quality": 90}
    assert synth.validate_config(cfg)["clutter"] == 1.0
    with pytest.raises(synth.ConfigError, match="clutter"):
        synth.validate_config(cfg | {"clutter": -1})
