"""Real-COCO quirks that must work, and broken input that must fail with the file, the
record id and the problem.

Every case is one test item, parametrised over QUIRK_CASES / BROKEN_CASES below, so the
number of cases the suite covers is exactly len(QUIRK_CASES) + len(BROKEN_CASES). The
`data.corrupt_images: skip` mode has its own tests (test_skip_*) at the end.
"""
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from conftest import ROOT
from rethink.core.names import skipped_image_ids
from rethink.data import world, writers
from rethink.data.check import main as layout_main
from rethink.data.coco import (
    CocoInstances,
    eval_transforms,
    load_coco,
    train_transforms,
)
from rethink.data.layout import DatasetError, check_coco
from rethink.evaluation import evaluate
from rethink.evaluation.evaluate import coco_metrics, encode_masks, evaluate_results
from tiny import tiny

QUIRK_CASES = (
    "grayscale_jpeg",              # 1-channel JPEG (real COCO has a few hundred)
    "cmyk_jpeg",                   # CMYK JPEG (real COCO has a few)
    "image_without_annotations",   # ~1% of COCO train images have none
    "crowd_annotation",            # iscrowd=1, uncompressed RLE
    "file_name_in_subfolder",      # file_name "sub/x.jpg"
    "file_name_other_extension",   # record and disk disagree on .jpg/.jpeg/.JPG; a real .png
)
BROKEN_CASES = (
    "missing_dataset_folder",
    "truncated_annotation_json",
    "annotation_for_missing_image",  # image_id not in images
    "image_file_missing",            # image record whose file is not on disk
    "bbox_negative_width",
    "bbox_outside_image",
    "polygon_fewer_than_3_points",
    "polygon_odd_coordinate_count",
    "polygon_outside_image",
    "rle_size_not_the_image",
    "rle_counts_not_the_image",      # uncompressed counts that do not tile h x w
    "crowd_without_rle",             # iscrowd 1 with polygons
    "unknown_category_id",
    "corrupt_jpeg_fail",             # truncated JPEG, data.corrupt_images = fail
)
TRAIN_JSON = "instances_train2017.json"
VAL_JSON = "instances_val2017.json"


def mask_rle(binary):
    """One binary mask's COCO RLE, by evaluation's own encoder."""
    return encode_masks(binary[None])[0]


# --------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    root = tmp_path_factory.mktemp("pristine") / "coco"
    writers.generate_coco(root, tiny()[0], seed=0)  # 12 train + 6 val images
    return root


@pytest.fixture
def coco(pristine, tmp_path):
    return Path(shutil.copytree(pristine, tmp_path / "coco"))


def ann_path(root, split="train"):
    return root / "annotations" / f"instances_{split}2017.json"


def load_doc(root, split="train"):
    return json.loads(ann_path(root, split).read_text())


def save_doc(root, doc, split="train"):
    ann_path(root, split).write_text(json.dumps(doc))


def image_file(root, im, split="train"):
    return root / f"{split}2017" / im["file_name"]


def annotated_image(doc, k=0):
    """The k-th image record that has at least one annotation."""
    ids = sorted({a["image_id"] for a in doc["annotations"]})
    return next(im for im in doc["images"] if im["id"] == ids[k])


def item_of(ds, image_id, aug_seed=0):
    return ds[(ds.ids.index(image_id), aug_seed)]


def assert_valid_item(img, target, record, num_classes, n_objects=None):
    """A 3-channel float image of the record's size and a well-formed Mask R-CNN target."""
    H, W = record["height"], record["width"]
    assert img.shape == (3, H, W) and img.dtype == torch.float32
    assert 0.0 <= float(img.min()) and float(img.max()) <= 1.0 and float(img.std()) > 0.01
    n = len(target["labels"])
    if n_objects is not None:
        assert n == n_objects
    assert target["boxes"].shape == (n, 4) and target["masks"].shape == (n, H, W)
    assert target["labels"].dtype == torch.int64
    assert all(1 <= int(v) <= num_classes for v in target["labels"])
    b = target["boxes"]
    assert bool((b[:, 2] > b[:, 0]).all() and (b[:, 3] > b[:, 1]).all())
    assert target["image_id"] == record["id"]


def objects_of(doc, image_id):
    return [a for a in doc["annotations"] if a["image_id"] == image_id and not a.get("iscrowd")]


def check_and_load(root, record, split="train", n_objects=None, verify="full"):
    """Layout check passes and CocoInstances yields a valid item for `record`."""
    stats = check_coco(root, verify_images=verify)
    ds = CocoInstances(root, split, train_transforms(0.5))
    for seed in (0, 1, 2, 3):  # flipped and not flipped
        img, target = item_of(ds, record["id"], seed)
        assert_valid_item(img, target, record, ds.num_classes, n_objects)
    return stats, ds, img, target


uncompressed_rle = world.uncompressed_rle  # COCO's uncompressed RLE (counts a list, column-major)


# --------------------------------------------------------------------------- quirks
def quirk_grayscale_jpeg(root):
    doc = load_doc(root)
    rec = annotated_image(doc)
    p = image_file(root, rec)
    Image.open(p).convert("L").save(p, format="JPEG", quality=90)
    assert Image.open(p).mode == "L"
    check_and_load(root, rec, n_objects=len(objects_of(doc, rec["id"])))


def quirk_cmyk_jpeg(root):
    doc = load_doc(root)
    rec = annotated_image(doc)
    p = image_file(root, rec)
    original = np.asarray(Image.open(p).convert("RGB"), np.float32)
    Image.open(p).convert("CMYK").save(p, format="JPEG", quality=95)
    assert Image.open(p).mode == "CMYK"
    *_, img, _ = check_and_load(root, rec, n_objects=len(objects_of(doc, rec["id"])))
    ds = CocoInstances(root, "train", None)
    plain = item_of(ds, rec["id"])[0].permute(1, 2, 0).numpy().astype(np.float32)
    assert np.abs(plain - original).mean() < 10  # colours survive, not inverted


def quirk_image_without_annotations(root):
    doc = load_doc(root)
    rec = annotated_image(doc)
    doc["annotations"] = [a for a in doc["annotations"] if a["image_id"] != rec["id"]]
    save_doc(root, doc)
    stats, ds, img, target = check_and_load(root, rec, n_objects=0)
    assert stats["train"]["images_without_annotations"] == 1
    assert tuple(target["boxes"].shape) == (0, 4)
    assert tuple(target["masks"].shape) == (0, rec["height"], rec["width"])
    assert len(ds) == 12  # kept: an image without objects is a valid (negative) example


def quirk_crowd_annotation(root):
    from pycocotools import coco as coco_tools
    crowd = {}
    for split in ("train", "val"):
        doc = load_doc(root, split)
        gt = load_coco(root, split)[0]
        a = doc["annotations"][0]
        a["segmentation"] = uncompressed_rle(gt.annToMask(gt.anns[a["id"]]))
        a["iscrowd"] = 1
        crowd[split] = a
        save_doc(root, doc, split)
    doc = load_doc(root)
    rec = next(im for im in doc["images"] if im["id"] == crowd["train"]["image_id"])
    stats, ds, _, target = check_and_load(root, rec, n_objects=len(objects_of(doc, rec["id"])))
    assert stats["train"]["crowd_annotations"] == 1 and stats["val"]["crowd_annotations"] == 1
    # evaluation: perfect detections of the non-crowd objects score 1.0 (the crowd region is
    # no miss), and a confident detection on the crowd region is no false positive
    gt, _ = load_coco(root, "val")
    assert isinstance(gt, coco_tools.COCO)
    bbox = [{"image_id": a["image_id"], "category_id": a["category_id"], "bbox": a["bbox"],
             "score": 0.9} for a in gt.dataset["annotations"] if not a["iscrowd"]]
    c = crowd["val"]
    on_crowd = {"image_id": c["image_id"], "category_id": c["category_id"], "bbox": c["bbox"],
                "score": 0.99}
    for results in (bbox, bbox + [on_crowd]):
        m = coco_metrics(gt, results, "bbox")
        assert m["summary"]["AP"] == pytest.approx(1.0)
        assert m["summary"]["AR100"] == pytest.approx(1.0)
    segm = [{"image_id": a["image_id"], "category_id": a["category_id"], "score": 0.9,
             "segmentation": mask_rle(gt.annToMask(a))}
            for a in gt.dataset["annotations"] if not a["iscrowd"]]
    assert coco_metrics(gt, segm, "segm")["summary"]["AP"] == pytest.approx(1.0)


def quirk_file_name_in_subfolder(root):
    doc = load_doc(root)
    rec = annotated_image(doc)
    (root / "train2017" / "sub").mkdir()
    shutil.move(image_file(root, rec), root / "train2017" / "sub" / rec["file_name"])
    rec["file_name"] = "sub/" + rec["file_name"]
    rec2 = annotated_image(doc, 1)  # relative to the dataset root, as some exports write it
    rec2["file_name"] = "train2017/" + rec2["file_name"]
    save_doc(root, doc)
    for r in (rec, rec2):
        _, ds, _, _ = check_and_load(root, r, n_objects=len(objects_of(doc, r["id"])))
    assert ds.image_path(rec["id"]) == root / "train2017" / rec["file_name"]


def quirk_file_name_other_extension(root):
    doc = load_doc(root)
    recs = [annotated_image(doc, k) for k in range(3)]
    jpg = image_file(root, recs[0])          # disk .jpeg, record .jpg
    jpg.rename(jpg.with_suffix(".jpeg"))
    upper = image_file(root, recs[1])        # disk .JPG, record .jpg
    upper.rename(upper.with_suffix(".JPG"))
    png = image_file(root, recs[2])          # a real PNG, record .png
    Image.open(png).save(png.with_suffix(".png"), format="PNG")
    png.unlink()
    recs[2]["file_name"] = Path(recs[2]["file_name"]).with_suffix(".png").name
    recs.append(annotated_image(doc, 3))     # record .jpeg, disk .jpg
    recs[3]["file_name"] = Path(recs[3]["file_name"]).with_suffix(".jpeg").name
    save_doc(root, doc)
    for r in recs:
        check_and_load(root, r, n_objects=len(objects_of(doc, r["id"])))


QUIRKS = {name: globals()[f"quirk_{name}"] for name in QUIRK_CASES}


@pytest.mark.parametrize("case", QUIRK_CASES)
def test_quirk_works(case, coco):
    QUIRKS[case](coco)


# --------------------------------------------------------------------------- broken input
def expect_dataset_error(root, *parts, verify="none", **kw):
    """check_coco raises DatasetError whose message holds every part (str or regex)."""
    with pytest.raises(DatasetError) as e:
        check_coco(root, verify_images=verify, **kw)
    msg = str(e.value)
    for part in parts:
        ok = part.search(msg) if isinstance(part, re.Pattern) else part in msg
        assert ok, f"{part!r} not in: {msg}"
    return msg


def bad_annotation(root, mutate, problem):
    doc = load_doc(root)
    a = doc["annotations"][0]
    mutate(a)
    save_doc(root, doc)
    expect_dataset_error(root, str(ann_path(root)), f"annotation id {a['id']}:", problem)


def broken_missing_dataset_folder(root, capsys):
    gone = root.parent / "no_such_coco"
    expect_dataset_error(gone, f"COCO folder {gone}", "does not exist")
    # the CLI also names the config key that pointed there and the layout expected
    assert layout_main(["--coco", str(gone), "--config-key", "data.coco",
                        "--out", str(root.parent / "stats.json")]) == 1
    err = capsys.readouterr().err
    assert str(gone) in err and "data.coco" in err and "annotations/instances_train2017.json" in err
    assert not (root.parent / "stats.json").exists()
    shutil.rmtree(root / "val2017")
    expect_dataset_error(root, f"COCO folder {root}", "missing val2017/")


def broken_truncated_annotation_json(root, capsys):
    p = ann_path(root)
    p.write_bytes(p.read_bytes()[:400])
    expect_dataset_error(root, f"{p}: malformed JSON", re.compile(r"at line \d+ column \d+"))


def broken_annotation_for_missing_image(root, capsys):
    bad_annotation(root, lambda a: a.__setitem__("image_id", 424242), "image_id 424242 is not in images")


def broken_image_file_missing(root, capsys):
    doc = load_doc(root, "val")
    rec = doc["images"][2]
    image_file(root, rec, "val").unlink()
    expect_dataset_error(root, str(ann_path(root, "val")), f"image id {rec['id']}:",
                         f"file {rec['file_name']!r} not found under {root / 'val2017'}")


def broken_bbox_negative_width(root, capsys):
    bad_annotation(root, lambda a: a["bbox"].__setitem__(2, -3.0), "negative width or height")


def broken_bbox_outside_image(root, capsys):
    bad_annotation(root, lambda a: a["bbox"].__setitem__(0, 500.0), "lies outside image id")


def broken_polygon_fewer_than_3_points(root, capsys):
    bad_annotation(root, lambda a: a.__setitem__("segmentation", [[1.0, 2.0, 5.0, 6.0]]),
                   "polygon 0 has 4 coordinates; needs an even count of at least 6 (3 points)")


def broken_polygon_odd_coordinate_count(root, capsys):
    # the odd polygon is the second of a split object, not the first
    bad_annotation(root, lambda a: a.__setitem__(
        "segmentation", [[1.0, 1.0, 9.0, 1.0, 9.0, 9.0], [20.0, 20.0, 30.0, 20.0, 30.0, 30.0, 20.0]]),
        "polygon 1 has 7 coordinates; needs an even count of at least 6 (3 points)")


def broken_polygon_outside_image(root, capsys):
    bad_annotation(root, lambda a: a.__setitem__("segmentation", [[1.0, 1.0, 900.0, 1.0, 9.0, 9.0]]),
                   re.compile(r"polygon 0 spans x 1\.\.900, y 1\.\.9: outside image id \d+ \(\d+x\d+\)"))


def broken_rle_size_not_the_image(root, capsys):
    bad_annotation(root, lambda a: a.__setitem__("segmentation", uncompressed_rle(np.ones((5, 7)))),
                   re.compile(r"RLE size \[5, 7\] does not match image id \d+ \[\d+, \d+\]"))


def broken_rle_counts_not_the_image(root, capsys):
    doc = load_doc(root)
    im = next(i for i in doc["images"] if i["id"] == doc["annotations"][0]["image_id"])
    h, w = im["height"], im["width"]

    def mutate(a):
        a["segmentation"] = {"size": [h, w], "counts": [10, 5, h * w]}
        a["iscrowd"] = 1
    bad_annotation(root, mutate,
                   f"RLE counts cover {h * w + 15} pixels, the image has {h} x {w} = {h * w}")


def broken_crowd_without_rle(root, capsys):
    bad_annotation(root, lambda a: a.__setitem__("iscrowd", 1),
                   "iscrowd 1 needs an RLE segmentation")


def broken_unknown_category_id(root, capsys):
    bad_annotation(root, lambda a: a.__setitem__("category_id", 99),
                   "category_id 99 is not in categories")


def broken_corrupt_jpeg_fail(root, capsys):
    doc = load_doc(root)
    rec = doc["images"][3]
    p = image_file(root, rec)
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])
    expect_dataset_error(root, str(ann_path(root)), f"image id {rec['id']} ({p})",
                         "unreadable image", verify="full", corrupt_images="fail")
    # and the data loader, should it meet one unchecked, names the file and the id too
    ds = CocoInstances(root, "train", train_transforms(0.5))
    with pytest.raises(RuntimeError) as e:
        item_of(ds, rec["id"])
    assert str(p) in str(e.value) and f"image id {rec['id']}" in str(e.value)


BROKEN = {name: globals()[f"broken_{name}"] for name in BROKEN_CASES}


@pytest.mark.parametrize("case", BROKEN_CASES)
def test_broken_fails_clearly(case, coco, capsys):
    BROKEN[case](coco, capsys)


def test_case_lists_complete():
    assert len(QUIRK_CASES) >= 6 and len(BROKEN_CASES) >= 9
    assert len(set(QUIRK_CASES + BROKEN_CASES)) == len(QUIRK_CASES) + len(BROKEN_CASES)
    defined = {n for n in globals() if n.startswith(("quirk_", "broken_"))}
    assert defined == {f"quirk_{n}" for n in QUIRK_CASES} | {f"broken_{n}" for n in BROKEN_CASES}


# --------------------------------------------------------------------------- corrupt_images: skip
def corrupt(root, split, k):
    doc = load_doc(root, split)
    rec = doc["images"][k]
    p = image_file(root, rec, split)
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])  # truncated: header ok, decode fails
    return rec, p


def perfect_detections(gt, image_ids):
    bbox, segm = [], []
    for a in gt.dataset["annotations"]:
        if a["image_id"] in image_ids:
            common = {"image_id": a["image_id"], "category_id": a["category_id"], "score": 0.9}
            bbox.append({**common, "bbox": a["bbox"]})
            segm.append({**common, "segmentation": mask_rle(gt.annToMask(a))})
    return bbox, segm


def test_skip_corrupt_images_listed_counted_and_left_out(coco, tmp_path, capsys):
    bad = {split: corrupt(coco, split, k) for split, k in (("train", 4), ("val", 1))}
    with pytest.raises(DatasetError):  # the default still fails
        check_coco(coco, verify_images="full")
    stats = check_coco(coco, verify_images="full", corrupt_images="skip")
    err = capsys.readouterr().err
    for split, (rec, p) in bad.items():
        entry, = stats["skipped_images"][split]
        assert entry["id"] == rec["id"] and entry["file"] == str(p)
        assert "unreadable image" in entry["error"]
        assert stats[split]["images_skipped"] == 1
        assert re.search(rf"warning: skipping image id {rec['id']} \({re.escape(str(p))}\)", err)
    # the CLI writes the same into the stats file that the train and evaluate jobs read
    out = tmp_path / "checks" / "coco_layout.json"
    assert layout_main(["--coco", str(coco), "--verify-images", "full",
                        "--corrupt-images", "skip", "--out", str(out)]) == 0
    assert "2 undecodable COCO images skipped" in capsys.readouterr().out
    for split, (rec, _) in bad.items():
        assert skipped_image_ids(out, split) == {rec["id"]}
    # training data: one image fewer, and every remaining one loads
    train = CocoInstances(coco, "train", train_transforms(0.5),
                          skip_ids=skipped_image_ids(out, "train"))
    assert len(CocoInstances(coco, "train")) == 12 and len(train) == 11
    assert bad["train"][0]["id"] not in train.ids
    for i in range(len(train)):
        train[(i, i)]
    # evaluation on the kept val images: perfect detections score 1.0 ...
    val = CocoInstances(coco, "val", eval_transforms(), skip_ids=skipped_image_ids(out, "val"))
    assert len(val) == 5
    m = evaluate_results(val.coco, *perfect_detections(val.coco, set(val.ids)), image_ids=val.ids)
    for task in ("bbox", "segm"):
        assert m[task]["AP"] == pytest.approx(1.0) and m[task]["AR100"] == pytest.approx(1.0)
    # ... which they would not if the skipped image's objects counted as misses
    m_all = evaluate_results(val.coco, *perfect_detections(val.coco, set(val.ids)))
    assert m_all["bbox"]["AR100"] < 1.0


def test_skip_evaluate_cli_reads_layout_stats(coco, tmp_path, monkeypatch, capsys):
    rec, _ = corrupt(coco, "val", 1)
    stats = tmp_path / "coco_layout.json"
    assert layout_main(["--coco", str(coco), "--verify-images", "full",
                        "--corrupt-images", "skip", "--out", str(stats)]) == 0
    seen = {}

    def fake_predict(model, dataset, device, batch_size=4, log_every=50, **kwargs):
        seen["ids"] = list(dataset.ids)
        for i in range(len(dataset)):
            dataset[i]  # every image the evaluation keeps decodes
        return dict(zip(("bbox", "segm"), perfect_detections(dataset.coco, set(dataset.ids))))

    monkeypatch.setattr(evaluate, "predict", fake_predict)
    monkeypatch.setattr(evaluate, "build_mask_rcnn", lambda cfg, n: torch.nn.Module())
    monkeypatch.setattr(evaluate.checkpoint, "load", lambda path, required=(): {"model": {}})
    out = {k: tmp_path / f"{k}.json" for k in ("metrics", "bbox", "segm")}
    evaluate.main(["--coco", str(coco), "--model", "{}", "--checkpoint", "unused.pt",
                   "--layout-stats", str(stats), "--device", "cpu",
                   *[a for k, p in out.items() for a in (f"--out-{k}", str(p))]])
    metrics = json.loads(out["metrics"].read_text())
    assert rec["id"] not in seen["ids"] and len(seen["ids"]) == 5
    assert metrics["num_images"] == 5 and metrics["num_skipped_images"] == 1
    assert metrics["bbox"]["AP"] == pytest.approx(1.0) and metrics["segm"]["AP"] == pytest.approx(1.0)
    assert "leaving out 1 val images" in capsys.readouterr().out


def test_skip_still_fails_on_everything_but_decoding(coco, capsys):
    corrupt(coco, "train", 0)
    doc = load_doc(coco)
    doc["annotations"][0]["category_id"] = 99         # annotation errors always fail
    save_doc(coco, doc)
    expect_dataset_error(coco, "category_id 99", verify="full", corrupt_images="skip")
    doc["annotations"][0]["category_id"] = 1
    doc["images"][5]["width"] += 7                    # so does a size that disagrees with the record
    save_doc(coco, doc)
    expect_dataset_error(coco, f"image id {doc['images'][5]['id']}", "but the record says",
                         verify="full", corrupt_images="skip")
    doc["images"][5]["width"] -= 7
    save_doc(coco, doc)
    image_file(coco, doc["images"][6]).unlink()      # and a missing file
    expect_dataset_error(coco, f"image id {doc['images'][6]['id']}", "not found",
                         verify="full", corrupt_images="skip")


def test_skip_with_every_image_undecodable_fails(coco, capsys):
    for k in range(6):
        corrupt(coco, "val", k)
    expect_dataset_error(coco, str(ann_path(coco, "val")), "all 6 images were skipped",
                         verify="full", corrupt_images="skip")


def test_skip_needs_verify_images(coco, tmp_path, capsys):
    with pytest.raises(ValueError, match="data.verify_images"):
        check_coco(coco, verify_images="none", corrupt_images="skip")
    with pytest.raises(ValueError, match="corrupt_images"):
        check_coco(coco, verify_images="full", corrupt_images="ignore")
    out = tmp_path / "stats.json"
    assert layout_main(["--coco", str(coco), "--verify-images", "none",
                        "--corrupt-images", "skip", "--out", str(out)]) == 1
    assert "data.verify_images" in capsys.readouterr().err and not out.exists()


def test_skipped_image_ids_reads_stats_files(tmp_path):
    p = tmp_path / "s.json"
    p.write_text(json.dumps({"coco": {"skipped_images": {"val": [{"id": 7, "file": "x", "error": "e"}]}}}))
    assert skipped_image_ids(p, "val") == {7} and skipped_image_ids(p, "train") == set()
    p.write_text(json.dumps({"train": {"images": 3}}))  # stats from before the key existed
    assert skipped_image_ids(p, "train") == set()
    assert skipped_image_ids(None, "val") == set()


def test_corrupt_images_config_key():
    cfg = yaml.safe_load((ROOT / "config.yaml").read_text())
    assert cfg["data"]["corrupt_images"] == "fail"
    schema = yaml.safe_load((ROOT / "workflow" / "schemas" / "config.schema.yaml").read_text())
    data = schema["properties"]["data"]
    assert "corrupt_images" in data["required"]
    assert data["properties"]["corrupt_images"]["enum"] == ["fail", "skip"]
    rule = (ROOT / "workflow" / "rules" / "data.smk").read_text()
    assert 'corrupt=config["data"]["corrupt_images"]' in rule
    assert "--corrupt-images {params.corrupt}" in rule
