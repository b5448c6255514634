"""rethink.evaluation.val_noise: the bootstrap over val images scores a resample as pycocotools would score
those images, and its SE of a paired difference is 0 when both checkpoints agree."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT
from rethink.evaluation.evaluate import _faster, coco_metrics
from rethink.evaluation.val_noise import Resampler, bootstrap, score

WORKFLOW = ROOT / "workflow"


def world(n=6):
    """n images with two boxes each; `good` finds both, `poor` one of them, offset."""
    images = [{"id": i, "width": 100, "height": 100, "file_name": f"{i}.jpg"} for i in range(1, n + 1)]
    anns, good, poor = [], [], []
    for i in range(1, n + 1):
        for j, box in enumerate(([10, 10, 30, 30], [50, 50, 40, 20])):
            anns.append({"id": len(anns) + 1, "image_id": i, "category_id": 1 + j, "bbox": box,
                         "area": box[2] * box[3], "iscrowd": 0})
            good.append({"image_id": i, "category_id": 1 + j, "bbox": box, "score": 0.9})
        poor.append({"image_id": i, "category_id": 1, "bbox": [12 + i % 3, 10, 30, 30], "score": 0.5 + 0.05 * i})
    gt = {"images": images, "annotations": anns, "categories": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}]}
    return gt, good, poor


def test_an_identity_sample_scores_as_the_original_val_set():
    gt, good, poor = world()
    s = Resampler(gt, [good, poor])
    dataset, dets = s.sample(s.ids)
    want = coco_metrics(_faster().COCO(json.loads(json.dumps(gt))), poor, "bbox", backend="faster")
    assert score(dataset, dets[1], "bbox") == pytest.approx(want["summary"]["AP"])
    # an image repeated is scored as that image: the same precision-recall curve
    one = Resampler(gt, [poor])
    d1, r1 = one.sample([3])
    d3, r3 = one.sample([3, 3, 3])
    assert score(d3, r3[0], "bbox") == pytest.approx(score(d1, r1[0], "bbox"))
    assert [im["id"] for im in d3["images"]] == [1, 2, 3] and len(d3["annotations"]) == 6


def test_the_paired_difference_of_identical_results_has_no_sampling_noise():
    gt, good, poor = world()
    rng = np.random.default_rng(0)
    same = bootstrap(Resampler(gt, [poor, poor]), 6, 10, rng, "bbox")
    assert same["difference"] == 0 and same["difference_se"] == 0
    diff = bootstrap(Resampler(gt, [good, poor]), 6, 10, rng, "bbox")
    assert diff["difference"] > 0 and diff["difference_se"] > 0 and diff["se"][0] == 0  # good is perfect everywhere


@pytest.mark.slow
def test_cli_writes_one_row_per_size_and_rejects_a_size_beyond_the_val_set(tmp_path):
    gt, good, poor = world()
    for name, doc in (("gt.json", gt), ("good.json", good), ("poor.json", poor)):
        (tmp_path / name).write_text(json.dumps(doc))
    env = dict(os.environ, PYTHONPATH=str(WORKFLOW))
    base = [sys.executable, "-m", "rethink.evaluation.val_noise", "--gt", str(tmp_path / "gt.json"),
            "--pair", str(tmp_path / "good.json"), str(tmp_path / "poor.json"), "--replicates", "5",
            "--out", str(tmp_path / "noise.json")]
    r = subprocess.run(base + ["--sizes", "3", "6"], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    doc = json.loads((tmp_path / "noise.json").read_text())
    assert [row["images"] for row in doc["pairs"][0]["sizes"]] == [3, 6] and set(doc["summary"]) == {"3", "6"}
    r = subprocess.run(base + ["--sizes", "7"], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "gt.json has 6 images" in r.stderr
