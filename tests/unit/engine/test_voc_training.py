"""A VOC dataset end to end on the hand-written devkit fixture: converted, a box-only model
trained a few iterations and scored (VOC mAP and COCO's box numbers); and test-time
augmentation through the evaluation (the same checkpoint with and without it)."""
import json

import pytest
import torch

from conftest import ROOT
from rethink.analysis import results
from rethink.data import voc
from rethink.data.coco import CocoInstances, eval_transforms, load_coco
from rethink.engine.runtime import setup
from rethink.engine.train import train_segment
from rethink.evaluation import evaluate
from rethink.models.detector import build_mask_rcnn
from tiny import tiny

FIXTURE = ROOT / "tests" / "fixtures" / "VOCdevkit"
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    """The fixture converted as the workflow's convert_voc rule does: train on VOC2007's and
    VOC2012's train lists, score on their val lists."""
    out = tmp_path_factory.mktemp("voc")
    voc.convert(FIXTURE, ["VOC2007/train", "VOC2012/train"], ["VOC2007/val", "VOC2012/val"],
                out / "coco", out / "report.json")
    return out / "coco"


def box_model():
    _, model, train = tiny()
    return {**model, "masks": False}, train


def test_a_box_only_model_has_no_mask_head_and_trains_without_masks(converted):
    model_cfg, _ = box_model()
    model = build_mask_rcnn(model_cfg, 20)
    assert not model.roi_heads.has_mask() and not any("mask" in k for k in model.state_dict())
    data = CocoInstances(FIXTURE, "train", eval_transforms(), ann_file=converted / "instances_train.json",
                         masks=False)
    _, target = data[0]
    assert "masks" not in target
    # VOC's difficult objects are no training targets (as crowd regions): 000005's person is one
    gt = json.loads((converted / "instances_train.json").read_text())
    difficult = [a for a in gt["annotations"] if a["difficult"]]
    image = data.ids.index(difficult[0]["image_id"])
    assert len(data[image][1]["boxes"]) == sum(1 for a in gt["annotations"]
                                               if a["image_id"] == difficult[0]["image_id"] and not a["difficult"])
    model.train()
    losses = model([data[0][0]], [data[0][1]])
    assert "loss_mask" not in losses and set(losses) >= {"loss_classifier", "loss_box_reg", "loss_objectness"}


def test_the_fixture_trains_a_few_iterations_and_is_scored_with_voc_map(converted, tmp_path):
    model_cfg, train = box_model()
    setup(threads=1)
    ckpt = tmp_path / "iter_000004.pt"
    train_segment(FIXTURE, model_cfg, {**train, "warmup_iters": 1}, "scratch", 0, 4, None, ckpt,
                  train_annotations=converted / "instances_train.json", log_every=100)
    out = tmp_path / "eval"
    model_json = json.dumps({**model_cfg, "score_thresh": 0.0})
    evaluate.main(["--coco", str(FIXTURE), "--model", model_json, "--checkpoint", str(ckpt),
                   "--val-annotations", str(converted / "instances_val.json"),
                   "--out-metrics", str(out / "metrics.json"), "--out-bbox", str(out / "bbox.json"),
                   "--variant", "voc", "--init", "scratch", "--branch", "trunk", "--iteration", "4"])
    metrics = json.loads((out / "metrics.json").read_text())
    assert "segm" not in metrics and 0 <= metrics["voc"]["mAP"] <= 1
    assert set(metrics["per_category"]["voc"]) == set(voc.VOC_CLASSES)
    assert sorted(p.name for p in out.iterdir()) == ["bbox.json", "metrics.json"]
    # the tidy table reads a box-only file: bbox and voc rows, no segm
    rows = results.load_metrics([out / "metrics.json"])
    assert set(rows["task"]) == {"bbox", "voc"} and len(rows) == 12 + 1


def test_voc_map_of_perfect_detections_is_one_and_of_none_zero(converted):
    gt, _ = load_coco(FIXTURE, "val", converted / "instances_val.json")
    perfect = [{"image_id": a["image_id"], "category_id": a["category_id"], "bbox": a["bbox"], "score": 1.0}
               for a in gt.dataset["annotations"] if not a["difficult"]]
    scored = evaluate.evaluate_results(gt, perfect, None, voc=True)
    assert scored["voc"]["mAP"] == 1.0 and scored["bbox"]["AP50"] == pytest.approx(1.0)
    assert "segm" not in scored
    assert evaluate.evaluate_results(gt, [], None, voc=True)["voc"]["mAP"] == 0.0


def test_tta_with_one_scale_and_no_flip_is_the_plain_evaluation_and_flip_changes_it(tmp_path):
    """The same checkpoint scored with and without test-time augmentation: as one scale (the
    model's) without flip it gives the plain numbers exactly; with flip, others, both kept."""
    from rethink.data import writers
    synth_cfg, model_cfg, _ = tiny()
    coco = tmp_path / "coco"
    writers.generate_coco(coco, synth_cfg, seed=0)
    setup(threads=1, deterministic=False)
    torch.manual_seed(0)
    model_cfg = {**model_cfg, "score_thresh": 0.0}
    dataset = evaluate.val_dataset(coco, model_cfg, set())
    model = build_mask_rcnn(model_cfg, dataset.num_classes).eval()
    record = {"variant": "main", "seed": 0, "init": "scratch", "branch": "trunk", "iteration": 0, "checkpoint": "x"}

    def score(tta):
        cfg = {**model_cfg, **({"tta": tta} if tta else {})}
        return evaluate.score_checkpoint(model, dataset, torch.device("cpu"), 2, "faster", set(), record,
                                         {"model": cfg}, log_every=10**9)[0]

    plain = score(None)
    same = score({"scales": [model_cfg["min_size"]], "flip": False})
    assert same["bbox_tta"] == same["bbox"] == plain["bbox"] and same["segm_tta"] == plain["segm"]
    flipped = score({"scales": [model_cfg["min_size"]], "flip": True})
    assert flipped["bbox"] == plain["bbox"] and flipped["bbox_tta"] != plain["bbox"]
    path = tmp_path / "metrics.json"
    path.write_text(json.dumps(flipped))
    tidy = results.load_metrics([path])
    assert set(tidy["task"]) == {"bbox", "segm", "bbox_tta", "segm_tta"}
    fin = tidy[(tidy["task"] == "bbox_tta") & (tidy["metric"] == "AP")]["value"].item()
    assert fin == pytest.approx(flipped["bbox_tta"]["AP"])
