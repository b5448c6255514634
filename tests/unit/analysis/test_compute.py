"""rethink.analysis.compute: images/instances/pixels seen, checked against hand counts on a tiny
annotation file and against the training loop's own batch order."""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torchvision.models.detection.transform import GeneralizedRCNNTransform

from conftest import ROOT
from rethink.analysis.compute import compute, load_train_images, resized_pixels, times_seen
from rethink.core.order import batch_indices

WORKFLOW = ROOT / "workflow"


def times_seen_slow(iterations: int, batch_size: int, n: int, seed: int, groups=None) -> np.ndarray:
    """The oracle of `times_seen`: the training loop's own `batch_indices`, counted."""
    counts = np.zeros(n, dtype=np.int64)
    for it in range(iterations):
        for i in batch_indices(it, batch_size, n, seed, groups):
            counts[i] += 1
    return counts

# Sorted by id the images are 10, 20, 30 (indices 0, 1, 2).
# Instances training uses: id 10: 2 (its crowd one does not count), id 20: 1 (its 0.5-wide
# box does not count), id 30: 3; the annotation of unknown image 99 is ignored.
# Pixels, scales [50, 100], max_size 150 (factor = min(s / short, 150 / long), sides floored):
#   id 10,  50x50:  s=50 -> 1 -> 2500;  s=100 -> 2 -> 100x100 = 10000;  mean 6250
#   id 20, 300x100: s=50 -> min(0.5, 0.5) -> 150x50 = 7500;  s=100 -> 0.5 -> 7500;  mean 7500
#   id 30, 100x200: s=50 -> 0.5 -> 50x100 = 5000;  s=100 -> min(1, 0.75) -> 75x150 = 11250;  mean 8125
INSTANCES = [2, 1, 3]
PIXELS = [6250.0, 7500.0, 8125.0]


def box(image_id, w=10, h=10, crowd=0):
    return {"id": 0, "image_id": image_id, "category_id": 1, "bbox": [0, 0, w, h],
            "iscrowd": crowd, "area": w * h}


ANNOTATIONS = {
    "images": [{"id": 30, "height": 100, "width": 200, "file_name": "c.jpg"},
               {"id": 10, "height": 50, "width": 50, "file_name": "a.jpg"},
               {"id": 20, "height": 300, "width": 100, "file_name": "b.jpg"}],
    "annotations": [box(10), box(10), box(10, crowd=1), box(20), box(20, w=0.5),
                    box(30), box(30), box(30, w=1, h=1), box(99)],
    "categories": [{"id": 1, "name": "thing"}],
}


def variant(iters=(3, 4), batch=2, inits=("scratch", "pretrained"), train_images=3):
    return {"kind": "main", "norm": "GN", "regime": "full", "fraction": 1.0,
            "train_images": train_images, "batch_size": batch, "inits": list(inits),
            "one_x": iters[0], "min_size": 50, "max_size": 150, "train_scales": [50, 100],
            "schedules": [{"name": f"{k + 1}x", "multiple": float(k + 1), "iters": it,
                           "fork": 0} for k, it in enumerate(iters)]}


def study(pretrain=True, **kw):
    return {"inits": ["scratch", "pretrained"], "seeds": [5, 6], "main": "main",
            "variants": {"main": variant(**kw)},
            "pretrain": ({"images_seen": 1000, "pixels_seen": 4096000.0, "epochs": 10,
                          "train_images": 100, "image_size": 64} if pretrain else None)}


def write(d: Path, st=None, ann=ANNOTATIONS):
    d.mkdir(parents=True, exist_ok=True)
    (d / "study.json").write_text(json.dumps(st or study()))
    (d / "ann.json").write_text(json.dumps(ann))
    return d / "study.json", d / "ann.json"


def run(*args):
    env = dict(os.environ, PYTHONPATH=str(WORKFLOW))
    return subprocess.run([sys.executable, "-m", "rethink.analysis.compute", *map(str, args)], env=env,
                          capture_output=True, text=True, timeout=120)


def test_annotation_counts_by_hand(tmp_path):
    _, ann = write(tmp_path)
    im = load_train_images(ann)
    assert im["ids"].tolist() == [10, 20, 30]
    assert im["instances"].tolist() == INSTANCES
    assert resized_pixels(im["heights"], im["widths"], [50, 100], 150).tolist() == PIXELS
    skipped = load_train_images(ann, skip_ids={20})
    assert skipped["ids"].tolist() == [10, 30] and skipped["skipped"] == 1


def test_resize_matches_torchvision():
    sizes = [(333, 500), (480, 640), (427, 640), (7, 13), (640, 481), (20, 900)]
    for scale, max_size in [(100, 150), (800, 1333), (128, 192)]:
        t = GeneralizedRCNNTransform(min_size=scale, max_size=max_size, image_mean=[0] * 3,
                                     image_std=[1] * 3).eval()
        out, _ = t([torch.zeros(3, h, w) for h, w in sizes])
        expect = [h * w for h, w in out.image_sizes]
        got = resized_pixels([h for h, _ in sizes], [w for _, w in sizes], [scale], max_size)
        assert got.tolist() == expect


@pytest.mark.parametrize("iters,batch,n,seed", [(4, 2, 3, 0), (7, 3, 5, 1), (0, 2, 3, 0),
                                                 (10, 4, 7, 3), (3, 8, 20, 2), (50, 6, 11, 9)])
def test_times_seen_is_the_training_order(iters, batch, n, seed):
    assert times_seen(iters, batch, n, seed).tolist() == times_seen_slow(iters, batch, n, seed).tolist()


@pytest.mark.parametrize("iters,batch,n,seed", [(10, 4, 21, 3), (50, 6, 40, 9), (7, 8, 100, 1)])
def test_times_seen_follows_grouped_batches(iters, batch, n, seed):
    groups = np.arange(n) % 3  # three padded shapes
    fast, slow = times_seen(iters, batch, n, seed, groups), times_seen_slow(iters, batch, n, seed, groups)
    assert fast.tolist() == slow.tolist() and fast.sum() == iters * batch


def test_exact_counts_three_images_batch_two(tmp_path):
    st, ann = write(tmp_path)
    out = compute(json.loads(st.read_text()), {"main": ann})
    rows = {(r["schedule"], r["init"]): r for r in out["rows"]}
    assert out["seed"] == 5 and len(out["rows"]) == 4
    # 1x: 3 iterations x batch 2 = 6 = two whole epochs of 3 images: every image twice
    r = rows["1x", "scratch"]
    assert (r["finetune_images"], r["finetune_instances"], r["finetune_pixels"]) == (6, 12, 43750.0)
    assert (r["pretrain_images"], r["total_images"], r["total_pixels"]) == (0, 6, 43750.0)
    assert r["epochs"] == 2.0
    # 2x: 4 iterations = 8: two epochs, then the last batch (iteration 3) opens the third
    extra = batch_indices(3, 2, 3, 5)
    r = rows["2x", "pretrained"]
    assert r["finetune_images"] == 8
    assert r["finetune_instances"] == 12 + sum(INSTANCES[i] for i in extra)
    assert r["finetune_pixels"] == 43750.0 + sum(PIXELS[i] for i in extra)
    assert (r["pretrain_images"], r["pretrain_instances"], r["pretrain_pixels"]) == (1000, 1000, 4096000.0)
    assert r["total_images"] == 1008
    assert r["total_pixels"] == 4096000.0 + r["finetune_pixels"]
    assert out["variants"]["main"]["instances_per_epoch"] == 6
    assert out["variants"]["main"]["pixels_per_epoch"] == 21875.0


def test_cli_writes_csv_and_json(tmp_path):
    st, ann = write(tmp_path)
    r = run("--study", st, "--annotations", f"main={ann}", "--out-csv", tmp_path / "c.csv",
            "--out-json", tmp_path / "c.json")
    assert r.returncode == 0, r.stderr
    rows = list(csv.DictReader(open(tmp_path / "c.csv")))
    assert [(x["schedule"], x["init"]) for x in rows] == [
        ("1x", "scratch"), ("1x", "pretrained"), ("2x", "scratch"), ("2x", "pretrained")]
    assert rows[0]["finetune_instances"] == "12" and rows[1]["total_images"] == "1006"
    doc = json.loads((tmp_path / "c.json").read_text())
    assert doc["rows"][0]["finetune_pixels"] == 43750.0 and "order" in doc["note"]


def test_no_pretraining_leaves_pretrained_totals_empty(tmp_path):
    st, ann = write(tmp_path, study(pretrain=False))
    r = run("--study", st, "--annotations", f"main={ann}", "--out-csv", tmp_path / "c.csv",
            "--out-json", tmp_path / "c.json")
    assert r.returncode == 0, r.stderr
    rows = list(csv.DictReader(open(tmp_path / "c.csv")))
    pre = [x for x in rows if x["init"] == "pretrained"][0]
    assert pre["pretrain_images"] == "" and pre["total_images"] == "" and pre["finetune_images"] == "6"


def test_layout_stats_skip_corrupt_images(tmp_path):
    st, ann = write(tmp_path)
    stats = tmp_path / "layout.json"
    stats.write_text(json.dumps({"coco": {"skipped_images": {"train": [
        {"id": 20, "file": "b.jpg", "error": "truncated"}]}}}))
    r = run("--study", st, "--annotations", f"main={ann}", "--layout-stats", stats,
            "--out-csv", tmp_path / "c.csv", "--out-json", tmp_path / "c.json")
    assert r.returncode == 0, r.stderr
    rows = list(csv.DictReader(open(tmp_path / "c.csv")))
    assert rows[0]["train_images"] == "2" and rows[0]["epochs"] == "3.0"
    assert rows[0]["finetune_instances"] == str(3 * (2 + 3))


@pytest.mark.parametrize("case,expect", [
    ("missing_study", "nope.json: study file not found"),
    ("missing_annotations", "gone.json: annotation file not found"),
    ("unknown_variant", "unknown variant(s) ['10k']"),
    ("missing_variant", "no annotation file for variant(s) ['main']"),
    ("bad_pair", "expected VARIANT=PATH"),
    ("wrong_count", "variants.main.train_images is 7"),
    ("study_key", "variants.main is missing key 'batch_size'"),
    ("no_size", "images[0] (id 30) needs positive 'height' and 'width'"),
])
def test_bad_input_exits_2_naming_it(tmp_path, case, expect):
    st, ann = write(tmp_path)
    args = {"study": st, "ann": [f"main={ann}"]}
    if case == "missing_study":
        args["study"] = tmp_path / "nope.json"
    elif case == "missing_annotations":
        args["ann"] = [f"main={tmp_path / 'gone.json'}"]
    elif case == "unknown_variant":
        args["ann"].append(f"10k={ann}")
    elif case == "missing_variant":
        args["ann"] = [f"other={ann}"]
        expect = "unknown variant(s) ['other']"
    elif case == "bad_pair":
        args["ann"] = [str(ann)]
    elif case == "wrong_count":
        write(tmp_path, study(train_images=7))
    elif case == "study_key":
        s = study()
        del s["variants"]["main"]["batch_size"]
        write(tmp_path, s)
    elif case == "no_size":
        bad = json.loads(json.dumps(ANNOTATIONS))
        del bad["images"][0]["height"]
        write(tmp_path, ann=bad)
    r = run("--study", args["study"], "--annotations", *args["ann"],
            "--out-csv", tmp_path / "c.csv", "--out-json", tmp_path / "c.json")
    assert r.returncode == 2, r.stdout + r.stderr
    assert expect in r.stderr, r.stderr
    assert "Traceback" not in r.stderr and not (tmp_path / "c.csv").exists()


def test_every_variant_needs_an_annotation_file(tmp_path):
    s = study()
    s["variants"]["10k"] = dict(variant(), kind="regime", train_images=3)
    with pytest.raises(ValueError, match=r"no annotation file for variant\(s\) \['10k'\]"):
        compute(s, {"main": write(tmp_path)[1]})


# --------------------------------------------------------------------------
# the figure
# --------------------------------------------------------------------------
def figure(*args):
    env = dict(os.environ, PYTHONPATH=str(WORKFLOW), MPLBACKEND="Agg")
    return subprocess.run([sys.executable, "-m", "rethink.figures.compute_seen",
                           *map(str, args)], env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.slow
@pytest.mark.parametrize("pretrain", [True, False])
def test_figure_draws_png_and_pdf(tmp_path, pretrain):
    st, ann = write(tmp_path, study(pretrain=pretrain))
    r = run("--study", st, "--annotations", f"main={ann}", "--out-csv", tmp_path / "c.csv",
            "--out-json", tmp_path / "c.json")
    assert r.returncode == 0, r.stderr
    r = figure("--compute", tmp_path / "c.csv", "--out-png", tmp_path / "f.png",
               "--out-pdf", tmp_path / "f.pdf", "--dpi", 60)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "f.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "f.pdf").read_bytes()[:4] == b"%PDF"


@pytest.mark.parametrize("case,expect", [
    ("missing", "gone.csv: compute CSV not found"),
    ("variant", "no rows for variant '1k'"),
    ("columns", "missing column(s) finetune_pixels"),
])
@pytest.mark.slow
def test_figure_bad_input_exits_2(tmp_path, case, expect):
    st, ann = write(tmp_path)
    assert run("--study", st, "--annotations", f"main={ann}", "--out-csv", tmp_path / "c.csv",
               "--out-json", tmp_path / "c.json").returncode == 0
    csv_path, extra = tmp_path / "c.csv", []
    if case == "missing":
        csv_path = tmp_path / "gone.csv"
    elif case == "variant":
        extra = ["--variant", "1k"]
    elif case == "columns":
        text = csv_path.read_text().replace("finetune_pixels", "finetune_pix")
        csv_path.write_text(text)
    r = figure("--compute", csv_path, "--out-png", tmp_path / "f.png",
               "--out-pdf", tmp_path / "f.pdf", *extra)
    assert r.returncode == 2 and expect in r.stderr, r.stderr
    assert not (tmp_path / "f.png").exists()
