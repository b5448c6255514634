"""PASCAL VOC on disk: the hand-written devkit fixture, its conversion to COCO format
(rethink.data.voc), the synthetic VOC world (rethink.data.writers.generate_voc) and bad input."""
import json
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from conftest import ROOT
from rethink.core import errors, synthetic
from rethink.data import voc, writers
from tiny import tiny

FIXTURE = ROOT / "tests" / "fixtures" / "VOCdevkit"

# pycocotools 2.0.x under numpy 2 emits a harmless DeprecationWarning on every decode
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


def _cat(name):
    return voc.VOC_CLASSES.index(name) + 1


def _ann(id, image_id, name, bbox, difficult=0, truncated=0):
    return {"id": id, "image_id": image_id, "category_id": _cat(name), "bbox": bbox,
            "area": bbox[2] * bbox[3], "iscrowd": 0, "difficult": difficult, "truncated": truncated}


def _image(id, year, name, width, height, image_set):
    return {"id": id, "file_name": f"{year}/JPEGImages/{name}.jpg", "width": width,
            "height": height, "voc_set": image_set, "voc_name": name}


# Worked out by hand from the fixture's XML: x = xmin - 1, w = xmax - xmin + 1.
EXPECTED = {
    "images": [
        _image(2007000005, "VOC2007", "000005", 40, 30, "VOC2007/trainval"),
        _image(2007000007, "VOC2007", "000007", 40, 30, "VOC2007/trainval"),
        _image(2007000009, "VOC2007", "000009", 40, 30, "VOC2007/trainval"),  # no objects
        _image(2008000008, "VOC2012", "2008_000008", 40, 30, "VOC2012/trainval"),
        _image(2008000015, "VOC2012", "2008_000015", 32, 24, "VOC2012/trainval"),
    ],
    "annotations": [
        _ann(1, 2007000005, "chair", [2, 3, 18, 22]),  # 3,4 .. 20,25
        _ann(2, 2007000005, "person", [20, 1, 20, 29], difficult=1),  # 21,2 .. 40,30
        _ann(3, 2007000007, "car", [0, 9, 15, 21], truncated=1),  # 1,10 .. 15,30; no <difficult>
        _ann(4, 2008000008, "horse", [1, 2, 8, 8]),  # 2,3 .. 9,10
        _ann(5, 2008000008, "person", [11, 4, 19, 24]),  # "12.0","5.0" .. "30.0","28.0"; head part ignored
        _ann(6, 2008000015, "dog", [4, 5, 28, 19]),  # 5,6 .. 32,24
    ],
    "categories": [{"id": k + 1, "name": n, "supercategory": "voc"} for k, n in enumerate(voc.VOC_CLASSES)],
}


def _devkit(tmp_path) -> Path:
    return Path(shutil.copytree(FIXTURE, tmp_path / "VOCdevkit"))


def _edit(path: Path, old: str, new: str, count=1):
    text = path.read_text()
    assert text.count(old) >= 1, (path, old)
    path.write_text(text.replace(old, new, count))


# --------------------------------------------------------------------------- the fixture
def test_fixture_converts_to_the_expected_coco_dict():
    doc = voc.read_voc(FIXTURE, ["VOC2007/trainval", "VOC2012/trainval"], verify_images="full")
    assert doc == EXPECTED
    assert json.loads(json.dumps(doc)) == doc  # plain JSON types
    s = voc.stats(doc)
    assert (s["images"], s["annotations"], s["difficult"]) == (5, 6, 1)
    assert s["instances_per_image"] == 1.2 and s["categories_per_image"] == 1.2  # 6 / 5 both
    doc["annotations"][0]["category_id"] = _cat("person")  # 000005: two persons, one category
    assert voc.stats(doc)["categories_per_image"] == 1.0
    assert s["annotations_per_category"]["person"] == 2 and s["annotations_per_category"]["cow"] == 0


def test_fixture_with_own_classes_numbers_them_in_order():
    doc = voc.read_voc(FIXTURE, ["VOC2012/val"], classes=["dog", "cat"], verify_images="none")
    assert [c["name"] for c in doc["categories"]] == ["dog", "cat"]
    assert [a["category_id"] for a in doc["annotations"]] == [1]


def test_cli_writes_both_files_and_the_report(tmp_path):
    out, report = tmp_path / "coco", tmp_path / "report.json"
    env = dict(os.environ, PYTHONPATH=str(ROOT / "workflow"))
    r = subprocess.run([sys.executable, "-m", "rethink.data.voc", "--devkit", FIXTURE,
                        "--train", "VOC2007/train", "VOC2012/train", "--val", "VOC2007/val", "VOC2012/val",
                        "--out-dir", out, "--report", report],
                       capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "[voc] train 3 images / 5 objects (1 difficult), val 2 / 1" in r.stdout
    train = json.loads((out / "instances_train.json").read_text())
    val = json.loads((out / "instances_val.json").read_text())
    assert [im["voc_name"] for im in train["images"]] == ["000005", "000007", "2008_000008"]
    assert [im["voc_name"] for im in val["images"]] == ["000009", "2008_000015"]
    assert val["annotations"] == [_ann(1, 2008000015, "dog", [4, 5, 28, 19])]
    rep = json.loads(report.read_text())
    assert rep["devkit"] == str(FIXTURE) and rep["classes"] == list(voc.VOC_CLASSES)
    assert rep["train"]["images_per_set"] == {"VOC2007/train": 2, "VOC2012/train": 1}
    assert rep["val"] == voc.stats(val)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["coco", "report.json"]  # no temp files


# --------------------------------------------------------------------------- bad input
def _break_parse(d):
    (d / "VOC2007/Annotations/000005.xml").write_text("<annotation><size><width>40</width>")


def _missing(rel):
    return lambda d: (d / rel).unlink()


BAD = {
    "xml does not parse": (_break_parse, ["000005.xml", "does not parse", "line 1"]),
    "box outside the image": (
        lambda d: _edit(d / "VOC2007/Annotations/000005.xml", "<xmax>20</xmax>", "<xmax>41</xmax>"),
        ["000005.xml", "object 1 (chair)", "xmax 41 > width 40"]),
    "box starts at pixel 0": (
        lambda d: _edit(d / "VOC2012/Annotations/2008_000008.xml", "<ymin>3</ymin>", "<ymin>0</ymin>"),
        ["2008_000008.xml", "object 1 (horse)", "ymin 0 < 1"]),
    "class not in the list": (
        lambda d: _edit(d / "VOC2007/Annotations/000007.xml", "<name>car</name>", "<name>lorry</name>"),
        ["000007.xml", "object 1 (lorry)", "not in the class list", "aeroplane, bicycle", "20 in all"]),
    "annotation missing": (_missing("VOC2007/Annotations/000007.xml"),
                           ["000007.xml", "not found", "listed in ImageSets"]),
    "image missing": (_missing("VOC2012/JPEGImages/2008_000015.jpg"),
                      ["2008_000015.jpg", "not found", "trainval.txt"]),
    "xmin > xmax": (
        lambda d: _edit(d / "VOC2007/Annotations/000005.xml", "<xmax>40</xmax>", "<xmax>19</xmax>"),
        ["000005.xml", "object 2 (person)", "xmin 21 > xmax 19"]),
    "coordinate not a number": (
        lambda d: _edit(d / "VOC2012/Annotations/2008_000008.xml", "<xmin>12.0</xmin>", "<xmin>12,0</xmin>"),
        ["2008_000008.xml", "object 2 (person)", "<xmin> is not a number: '12,0'"]),
    "coordinate missing": (
        lambda d: _edit(d / "VOC2007/Annotations/000007.xml", "<ymax>30</ymax>", ""),
        ["000007.xml", "object 1 (car)", "no <ymax>"]),
    "no size": (
        lambda d: _edit(d / "VOC2007/Annotations/000009.xml", "<width>40</width>", ""),
        ["000009.xml", "no <width>"]),
    "header size disagrees": (
        lambda d: _edit(d / "VOC2012/Annotations/2008_000015.xml", "<width>32</width>", "<width>33</width>"),
        ["2008_000015.jpg", "is 32x24", "2008_000015.xml says 33x24"]),
    "name gives no id": (
        lambda d: _edit(d / "VOC2012/ImageSets/Main/trainval.txt", "2008_000015", "2008_000015\nimg_a"),
        ["VOC2012/ImageSets/Main/trainval.txt", "'img_a'", "YYYY_NNNNNN"]),
    "two images share an id": (
        lambda d: [shutil.copy(d / f"VOC2007/{sub}/000005.{ext}", d / f"VOC2012/{sub}/2007_000005.{ext}")
                   for sub, ext in (("Annotations", "xml"), ("JPEGImages", "jpg"))]
        + [_edit(d / "VOC2012/ImageSets/Main/trainval.txt", "2008_000015", "2008_000015\n2007_000005")],
        ["VOC2007/Annotations/000005.xml and", "VOC2012/Annotations/2007_000005.xml", "2007000005"]),
    "year folder missing": (lambda d: shutil.rmtree(d / "VOC2012"), ["VOC2012", "year folder", "not found"]),
    "image set file missing": (_missing("VOC2012/ImageSets/Main/trainval.txt"),
                               ["VOC2012/ImageSets/Main/trainval.txt", "not found"]),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_names_the_file_and_object(tmp_path, case):
    damage, expected = BAD[case]
    devkit = _devkit(tmp_path)
    damage(devkit)
    with pytest.raises(voc.VocError) as err:
        voc.read_voc(devkit, ["VOC2007/trainval", "VOC2012/trainval"])
    for part in expected:
        assert part in str(err.value), (case, str(err.value))


def test_an_image_in_two_sets_and_a_missing_devkit_are_errors(tmp_path):
    with pytest.raises(voc.VocError, match="VOC2007/000005 is listed in both VOC2007/trainval and VOC2007/train"):
        voc.read_voc(FIXTURE, ["VOC2007/trainval", "VOC2007/train"])
    with pytest.raises(voc.VocError, match="devkit folder not found"):
        voc.read_voc(tmp_path / "nowhere", ["VOC2007/trainval"])
    with pytest.raises(voc.VocError, match="expected YEAR_FOLDER/SET"):
        voc.read_voc(FIXTURE, ["trainval"])


def test_corrupt_jpeg_fails_full_verification_only(tmp_path):
    devkit = _devkit(tmp_path)
    jpeg = devkit / "VOC2007/JPEGImages/000007.jpg"
    jpeg.write_bytes(jpeg.read_bytes()[:-150])  # header intact, scan data cut short
    assert len(voc.read_voc(devkit, ["VOC2007/trainval"], verify_images="header")["images"]) == 3
    with pytest.raises(voc.VocError, match=r"000007\.jpg: image cannot be read"):
        voc.read_voc(devkit, ["VOC2007/trainval"], verify_images="full")
    jpeg.write_bytes(b"not a jpeg")
    with pytest.raises(voc.VocError, match=r"000007\.jpg: image cannot be read"):
        voc.read_voc(devkit, ["VOC2007/trainval"], verify_images="header")


def test_cli_refuses_an_image_in_train_and_val_and_writes_nothing(tmp_path, capsys):
    out, report = tmp_path / "coco", tmp_path / "report.json"
    code = voc.main(["--devkit", str(FIXTURE), "--train", "VOC2007/trainval", "--val", "VOC2007/val",
                     "--out-dir", str(out), "--report", str(report)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error: ") and "VOC2007/JPEGImages/000009.jpg is in both train" in err
    assert not out.exists() and not report.exists()

    devkit = _devkit(tmp_path)  # any check failing: exit 2, nothing written
    _break_parse(devkit)
    assert voc.main(["--devkit", str(devkit), "--train", "VOC2007/train", "--val", "VOC2012/val",
                     "--out-dir", str(out), "--report", str(report)]) == 2
    assert "000005.xml: XML does not parse" in capsys.readouterr().err
    assert not out.exists() and not report.exists()


# --------------------------------------------------------------------------- the synthetic VOC world
def _voc_cfg():
    cfg = tiny()[0]  # detection_classes 2, det_max_objects 3
    cfg.update(voc_train_images=6, voc_val_images=3, voc_max_objects=2, voc_classes=1)
    return cfg


@pytest.fixture(scope="module")
def voc_world(tmp_path_factory):
    base = tmp_path_factory.mktemp("voc_world")
    stats = writers.generate_voc(base / "VOCdevkit", _voc_cfg(), seed=5)
    return base / "VOCdevkit", stats


def test_synthetic_voc_has_the_layout_counts_and_classes(voc_world):
    devkit, st = voc_world
    cfg = _voc_cfg()
    names = synthetic.voc_categories(cfg)
    assert names == [synthetic.coco_categories(synthetic.validate_config(cfg))[0]["name"]]
    assert st["sets"] == {"VOC2007/trainval": 3, "VOC2012/train": 3, "VOC2012/val": 3,
                          "VOC2012/trainval": 6}  # round(6 * 5011 / 10728) = 3 in VOC2007
    lists = {p.relative_to(devkit).as_posix(): p.read_text().split()
             for p in devkit.rglob("ImageSets/Main/*.txt")}
    assert lists == {"VOC2007/ImageSets/Main/trainval.txt": ["000001", "000002", "000003"],
                     "VOC2012/ImageSets/Main/train.txt": ["2008_000001", "2008_000002", "2008_000003"],
                     "VOC2012/ImageSets/Main/val.txt": ["2008_000004", "2008_000005", "2008_000006"],
                     "VOC2012/ImageSets/Main/trainval.txt": [f"2008_{k:06d}" for k in range(1, 7)]}
    root = ET.parse(devkit / "VOC2007/Annotations/000001.xml").getroot()
    assert [e.tag for e in root][:5] == ["folder", "filename", "source", "size", "segmented"]
    assert root.findtext("folder") == "VOC2007" and root.findtext("filename") == "000001.jpg"
    assert root.find("size/depth").text == "3"
    assert [e.tag for e in root.find("object")] == ["name", "pose", "truncated", "difficult", "bndbox"]

    train = voc.read_voc(devkit, ["VOC2007/trainval", "VOC2012/train"], classes=names, verify_images="full")
    val = voc.read_voc(devkit, ["VOC2012/val"], classes=names, verify_images="full")
    assert (len(train["images"]), len(val["images"])) == (6, 3)
    assert voc.stats(train)["annotations"] == st["train"]["annotations"]
    assert voc.stats(val)["difficult"] == st["val"]["difficult"]
    for doc in (train, val):
        size = {im["id"]: (im["width"], im["height"]) for im in doc["images"]}
        per_image = {i: 0 for i in size}
        for a in doc["annotations"]:
            per_image[a["image_id"]] += 1
            x, y, w, h = a["bbox"]
            assert a["category_id"] == 1 and a["truncated"] == 0
            assert x >= 0 and y >= 0 and x + w <= size[a["image_id"]][0] and y + h <= size[a["image_id"]][1]
            if min(w, h) < writers.VOC_DIFFICULT_SIDE:
                assert a["difficult"] == 1
        assert 1 <= min(per_image.values()) and max(per_image.values()) <= 2


def test_synthetic_voc_is_deterministic_and_the_cli_writes_it(voc_world, tmp_path):
    devkit, _ = voc_world
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps(_voc_cfg()))
    env = dict(os.environ, PYTHONPATH=str(ROOT / "workflow"))
    r = subprocess.run([sys.executable, "-m", "rethink.data.writers", "--voc", tmp_path / "again",
                        "--config", cfg, "--seed", "5"], capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "[synth] voc done: 6 train / 3 val images" in r.stdout
    for rel in ("VOC2007/Annotations/000002.xml", "VOC2012/JPEGImages/2008_000005.jpg",
                "VOC2012/ImageSets/Main/trainval.txt"):
        assert (tmp_path / "again" / rel).read_bytes() == (devkit / rel).read_bytes(), rel
    files = sorted(p.relative_to(devkit) for p in devkit.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(tmp_path / "again") for p in (tmp_path / "again").rglob("*") if p.is_file())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["again", "cfg.json"]  # no temp folder


def test_voc_config_keys_are_optional_and_checked():
    cfg = {k: v for k, v in tiny()[0].items() if k not in synthetic.VOC_DEFAULTS}  # an older config
    assert synthetic.voc_settings(cfg) == synthetic.VOC_DEFAULTS  # detection_classes 2: voc_classes 2
    assert "voc_classes" not in synthetic.validate_config(cfg)  # older configs validate as before
    assert synthetic.voc_settings(cfg | {"detection_classes": 1})["voc_classes"] == 1
    with pytest.raises(errors.ConfigError, match=r"voc_classes \(3\) must be <= detection_classes \(2\)"):
        synthetic.validate_config(cfg | {"voc_classes": 3})
    with pytest.raises(errors.ConfigError, match="voc_train_images must be >= 1"):
        synthetic.validate_config(cfg | {"voc_train_images": 0})
    with pytest.raises(errors.ConfigError, match="voc_max_objects must be an integer"):
        synthetic.validate_config(cfg | {"voc_max_objects": "2"})
