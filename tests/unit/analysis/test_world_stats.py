"""The data-statistics table: this study's numbers counted from its files, next to the paper's."""
import json

import pytest

from rethink.analysis import world_stats
from tiny import tiny

COMPUTE = {
    "main": "main",
    "pretrain": {"images_seen": 12_800, "pixels_seen": 12_800 * 64 * 64, "train_images": 100},
    "variants": {"main": {"train_images": 50, "instances_per_epoch": 200, "pixels_per_epoch": 50 * 16_384.0}},
    "rows": [
        {"variant": "main", "schedule": "1x", "multiple": 1, "iterations": 25, "epochs": 4.0,
         "finetune_images": 200, "finetune_pixels": 200 * 16_384.0},
        {"variant": "main", "schedule": "2x", "multiple": 2, "iterations": 50, "epochs": 8.0,
         "finetune_images": 400, "finetune_pixels": 400 * 16_384.0},
        {"variant": "10k", "schedule": "9x", "multiple": 9, "iterations": 999, "epochs": 1.0,
         "finetune_images": 9, "finetune_pixels": 9.0},
    ],
}
COCO = {"coco": {"train": {"categories": 4}, "category_names": ["a", "b", "c", "person"]}}
IMAGENET = {"imagenet": {"classes": 8, "class_names": ["a", "b", "c", "d", "e", "f", "g", "h"]}}


def test_paper_column_is_imagenet_and_coco():
    p = world_stats.paper_rows()
    assert p["instances_per_image"] == pytest.approx(7.27, abs=0.01)
    assert p["epochs_1x"] == pytest.approx(12.17, abs=0.01)  # 90k x 16 / 118,287
    assert p["pretrain_over_longest_images"] == pytest.approx(13.3, abs=0.05)
    assert p["parameters_per_instance"] == pytest.approx(51.6, abs=0.1)


def test_study_column_counts_the_main_variant():
    s = world_stats.study_rows(COMPUTE, COCO, IMAGENET, parameters=10_000)
    assert s["instances_per_image"] == 4.0 and s["instances_per_category"] == 50.0
    assert s["epochs_1x"] == 4.0 and s["epochs_longest"] == 8.0 and s["longest"] == "2x"
    assert s["pretrain_over_longest_images"] == 32.0  # 12,800 / 400
    assert s["pretrain_over_longest_pixels"] == pytest.approx(12_800 * 4096 / (400 * 16_384))
    assert s["pretrain_pixels_per_image"] == 4096 and s["parameters_per_instance"] == 50.0
    assert s["shared_categories"] == "3 of 4 (by name)"  # 'person' is no pre-training class
    given = world_stats.study_rows({**COMPUTE, "pretrain": None}, COCO, None, parameters=10_000)
    assert given["pretrain_images_seen"] is None and given["shared_categories"] is None


def test_cli_writes_both_tables(tmp_path):
    _, model, _ = tiny()
    model.pop("score_thresh"), model.pop("detections_per_img")
    paths = {}
    for name, doc in (("compute", COMPUTE), ("coco", COCO), ("imagenet", IMAGENET)):
        paths[name] = tmp_path / f"{name}.json"
        paths[name].write_text(json.dumps(doc))
    rc = world_stats.main(["--compute", str(paths["compute"]), "--coco-layout", str(paths["coco"]),
                           "--imagenet-layout", str(paths["imagenet"]), "--model", json.dumps(model),
                           "--out-csv", str(tmp_path / "w.csv"), "--out-md", str(tmp_path / "w.md")])
    assert rc == 0
    md = (tmp_path / "w.md").read_text()
    assert "| instances per train image | 7.27 | 4 |" in md and "| longest schedule | 6x | 2x |" in md
    assert (tmp_path / "w.csv").read_text().splitlines()[0] == "statistic,paper,this_study,note"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"main": "main", "variants": {}}))
    assert world_stats.main(["--compute", str(bad), "--coco-layout", str(paths["coco"]), "--model",
                             json.dumps(model), "--out-csv", str(tmp_path / "x.csv"),
                             "--out-md", str(tmp_path / "x.md")]) == 2
    assert not (tmp_path / "x.md").exists()
