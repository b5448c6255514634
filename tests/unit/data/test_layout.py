"""Tests of the ImageNet / COCO layout and annotation checks (rethink.data.layout, imagenet, keypoints; the CLI rethink.data.check)."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT
from rethink.data import writers
from rethink.data.check import main
from rethink.data.imagenet import check_imagenet
from rethink.data.layout import DatasetError, check_coco

TRAIN_JSON = "instances_train2017.json"

SMALL = {
    "classes": 4,
    "detection_classes": 2,
    "cls_image_size": 32,
    "cls_train_per_class": 3,
    "cls_val_per_class": 2,
    "det_train_images": 6,
    "det_val_images": 3,
    "det_min_size": 64,
    "det_max_size": 80,
    "det_max_objects": 3,
    "jpeg_quality": 90,
}


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    base = tmp_path_factory.mktemp("pristine")
    writers.generate_imagenet(base / "imagenet", SMALL, seed=3)
    coco_stats = writers.generate_coco(base / "coco", SMALL, seed=3)
    return base, coco_stats


@pytest.fixture
def inet(pristine, tmp_path):
    return Path(shutil.copytree(pristine[0] / "imagenet", tmp_path / "imagenet"))


@pytest.fixture
def coco(pristine, tmp_path):
    return Path(shutil.copytree(pristine[0] / "coco", tmp_path / "coco"))


def _edit(coco_root, fn, split="train"):
    p = coco_root / "annotations" / f"instances_{split}2017.json"
    doc = json.loads(p.read_text())
    fn(doc)
    p.write_text(json.dumps(doc))
    return doc


# --------------------------------------------------------------------------- passing
def test_generated_sets_pass(pristine):
    base, coco_stats = pristine
    s = check_imagenet(base / "imagenet")
    assert s["classes"] == 4 and s["train"]["images"] == 12 and s["val"]["images"] == 8
    assert s["class_names"][:2] == ["solid_circle", "striped_triangle"]
    for mode in ("none", "header", "full"):
        c = check_coco(base / "coco", verify_images=mode)
        for split in ("train", "val"):
            assert c[split]["images"] == coco_stats[split]["images"]
            assert c[split]["annotations"] == coco_stats[split]["annotations"]
            assert c[split]["categories"] == 2
            assert c[split]["crowd_annotations"] == 0
            assert c[split]["images_without_annotations"] == 0
    assert c["category_names"] == ["solid_circle", "striped_triangle"]
    assert c["shared_images"] == [] and s["shared_images"] == []  # the generator's splits are disjoint


def test_train_and_val_sharing_an_image_is_a_warning_naming_both(coco, inet, capsys):
    val = json.loads((coco / "annotations" / "instances_val2017.json").read_text())
    train = json.loads((coco / "annotations" / TRAIN_JSON).read_text())
    v, t = val["images"][1], train["images"][4]
    # the val image's bytes, copied over a train image of the same size (a leaked duplicate)
    (coco / "train2017" / t["file_name"]).write_bytes((coco / "val2017" / v["file_name"]).read_bytes())
    _edit(coco, lambda d: d["images"][4].update(width=v["width"], height=v["height"]))
    _edit(coco, lambda d: d["annotations"].__setitem__(
        slice(None), [a for a in d["annotations"] if a["image_id"] != t["id"]]))
    stats = check_coco(coco)
    assert stats["shared_images"] == [{"train_id": t["id"], "train_file": str(coco / "train2017" / t["file_name"]),
                                       "val_id": v["id"], "val_file": str(coco / "val2017" / v["file_name"])}]
    err = capsys.readouterr().err
    assert f"val image id {v['id']} ({v['file_name']}) = train image id {t['id']} ({t['file_name']})" in err
    assert "1 val image(s) have the same bytes as train images" in err
    # ImageNet alike: a val image copied into a train class folder under another name
    src = next(p for p in sorted((inet / "val").rglob("*")) if p.is_file())
    shutil.copy(src, inet / "train" / src.parent.name / "copy_of_val.JPEG")
    s = check_imagenet(inet)
    assert s["shared_images"] == [{"train": f"train/{src.parent.name}/copy_of_val.JPEG",
                                   "val": str(src.relative_to(inet))}]
    assert "copy_of_val.JPEG" in capsys.readouterr().err


def test_file_name_with_subfolder_or_other_extension_and_stats(coco):
    def fn(doc):
        doc["images"][0]["file_name"] = "train2017/" + doc["images"][0]["file_name"]
        doc["images"][1]["file_name"] = doc["images"][1]["file_name"].replace(".jpg", ".png")
        gone = doc["images"][2]["id"]
        doc["annotations"] = [a for a in doc["annotations"] if a["image_id"] != gone]
        a = doc["annotations"][0]
        h, w = next((im["height"], im["width"]) for im in doc["images"] if im["id"] == a["image_id"])
        a.update(iscrowd=1, segmentation={"size": [h, w], "counts": [h * w - 4, 4]})
    _edit(coco, fn)
    s = check_coco(coco, verify_images="header")
    assert s["train"]["images_without_annotations"] == 1
    assert s["train"]["crowd_annotations"] == 1


# --------------------------------------------------------------------------- ImageNet failures
def test_missing_dataset_folders(tmp_path):
    with pytest.raises(DatasetError, match="nowhere"):
        check_imagenet(tmp_path / "nowhere")
    with pytest.raises(DatasetError, match="nowhere"):
        check_coco(tmp_path / "nowhere")


def test_imagenet_missing_val_and_empty_train_listed_together(inet):
    shutil.rmtree(inet / "val")
    with pytest.raises(DatasetError) as e:
        check_imagenet(inet)
    assert str(inet) in str(e.value) and "missing val/" in str(e.value)
    for d in (inet / "train").iterdir():
        shutil.rmtree(d)
    with pytest.raises(DatasetError) as e:
        check_imagenet(inet)
    msg = str(e.value)
    assert "missing val/" in msg and "train/ has no class folders" in msg


def test_imagenet_class_mismatch_and_empty_class(inet):
    shutil.rmtree(inet / "val" / "n90000004")
    for p in (inet / "train" / "n90000002").iterdir():
        p.unlink()
    with pytest.raises(DatasetError) as e:
        check_imagenet(inet)
    msg = str(e.value)
    assert "n90000004" in msg and "train/n90000002/ has no image files" in msg


def test_imagenet_accepts_mixed_case_extensions(inet):
    d = inet / "val" / "n90000001"
    for i, p in enumerate(sorted(d.iterdir())):
        p.rename(p.with_suffix([".jpg", ".PNG"][i % 2]))
    assert check_imagenet(inet)["val"]["min_per_class"] == 2


# --------------------------------------------------------------------------- COCO failures
def test_coco_missing_parts_listed_together(coco):
    shutil.rmtree(coco / "val2017")
    (coco / "annotations" / "instances_val2017.json").unlink()
    with pytest.raises(DatasetError) as e:
        check_coco(coco)
    msg = str(e.value)
    assert "annotations/instances_val2017.json" in msg and "val2017/" in msg
    assert "train2017/" not in msg


def test_truncated_annotation_json(coco):
    p = coco / "annotations" / TRAIN_JSON
    p.write_bytes(p.read_bytes()[:300])
    with pytest.raises(DatasetError, match=r"instances_train2017\.json: malformed JSON at line 1 column"):
        check_coco(coco)


def test_annotation_file_without_required_lists(coco):
    _edit(coco, lambda d: d.pop("categories"))
    with pytest.raises(DatasetError, match=r"instances_train2017\.json.*categories"):
        check_coco(coco)


def test_image_file_missing(coco):
    doc = json.loads((coco / "annotations" / TRAIN_JSON).read_text())
    name = doc["images"][1]["file_name"]
    (coco / "train2017" / name).unlink()
    with pytest.raises(DatasetError) as e:
        check_coco(coco, verify_images="none")
    msg = str(e.value)
    assert TRAIN_JSON in msg and name in msg and f"image id {doc['images'][1]['id']}" in msg


def test_truncated_jpeg_needs_full_verification(coco):
    doc = json.loads((coco / "annotations" / TRAIN_JSON).read_text())
    name = doc["images"][0]["file_name"]
    p = coco / "train2017" / name
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])
    check_coco(coco, verify_images="none")  # the file exists
    with pytest.raises(DatasetError) as e:
        check_coco(coco, verify_images="full")
    assert name in str(e.value) and "unreadable image" in str(e.value)


def test_garbage_image_fails_header_check(coco):
    doc = json.loads((coco / "annotations" / "instances_val2017.json").read_text())
    name = doc["images"][0]["file_name"]
    (coco / "val2017" / name).write_bytes(b"this is not an image")
    with pytest.raises(DatasetError) as e:
        check_coco(coco, verify_images="header")
    assert "instances_val2017.json" in str(e.value) and name in str(e.value)


def _bad_annotation(coco, mutate, pattern):
    box = {}

    def fn(doc):
        a = doc["annotations"][0]
        box["id"] = a["id"]
        mutate(a)
    _edit(coco, fn)
    with pytest.raises(DatasetError) as e:
        check_coco(coco, verify_images="none")
    msg = str(e.value)
    assert TRAIN_JSON in msg and f"annotation id {box['id']}" in msg, msg
    assert pattern in msg, msg


def test_negative_bbox_width(coco):
    _bad_annotation(coco, lambda a: a["bbox"].__setitem__(2, -3.0), "negative width")


def test_bbox_outside_image(coco):
    _bad_annotation(coco, lambda a: a["bbox"].__setitem__(0, 500.0), "outside image")


def test_bbox_not_four_numbers(coco):
    _bad_annotation(coco, lambda a: a.__setitem__("bbox", [1, 2, 3]), "bbox must be 4 numbers")


def test_polygon_with_fewer_than_three_points(coco):
    _bad_annotation(
        coco, lambda a: a.__setitem__("segmentation", [[1.0, 2.0, 5.0, 6.0]]), "at least 6 (3 points)"
    )


def test_unknown_category_id(coco):
    _bad_annotation(coco, lambda a: a.__setitem__("category_id", 99), "category_id 99")


def test_unknown_image_id(coco):
    _bad_annotation(coco, lambda a: a.__setitem__("image_id", 424242), "image_id 424242")


def test_train_val_category_mismatch(coco):
    _edit(coco, lambda d: d["categories"][0].__setitem__("name", "renamed"), split="val")
    with pytest.raises(DatasetError, match="different categories"):
        check_coco(coco, verify_images="none")


def test_verify_mode_validated(coco):
    with pytest.raises(ValueError):
        check_coco(coco, verify_images="sometimes")


# --------------------------------------------------------------------------- CLI
def test_cli_in_process(pristine, tmp_path, capsys):
    base, _ = pristine
    out = tmp_path / "stats" / "layout.json"
    assert main(["--imagenet", str(base / "imagenet"), "--coco", str(base / "coco"),
                 "--verify-images", "full", "--out", str(out)]) == 0
    stats = json.loads(out.read_text())
    assert stats["imagenet"]["classes"] == 4 and stats["coco"]["val"]["images"] == 3
    assert sorted(p.name for p in out.parent.iterdir()) == ["layout.json"]  # no temp file left


def test_cli_failure_exit_code_and_no_output(coco, tmp_path):
    p = coco / "annotations" / TRAIN_JSON
    p.write_bytes(p.read_bytes()[:-10])
    out = tmp_path / "stats.json"
    env = dict(os.environ, PYTHONPATH=str(ROOT / "workflow"))
    r = subprocess.run(
        [sys.executable, "-m", "rethink.data.check", "--coco", str(coco), "--out", str(out)],
        capture_output=True, text=True, env=env, timeout=60,
    )
    assert r.returncode == 1
    assert TRAIN_JSON in r.stderr and "malformed JSON" in r.stderr
    assert not out.exists()
    assert not list(tmp_path.glob(".stats.json*"))
