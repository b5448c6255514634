"""ImageNet-style pre-training: epoch states that a killed job resumes from bitwise, the
recipe's crop, val resize and LR schedules, and the per-epoch curve."""
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
from scipy.io import savemat
from torchvision import datasets

from conftest import ROOT
from rethink.data import imagenet as imagenet_layouts
from rethink.data import writers
from rethink.data.imagenet import check_imagenet
from rethink.data.layout import DatasetError
from rethink.engine import methods
from rethink.engine.methods import transforms
from rethink.engine.pretrain import lr_at
from rethink.models.detector import build_body, build_classifier, build_mask_rcnn, load_backbone
from tiny import agreement, tiny

PRETRAIN = {"image_size": 32, "epochs": 3, "batch_size": 8, "lr": 0.4, "warmup_epochs": 1,
            "momentum": 0.9, "weight_decay": 0.0001, "label_smoothing": 0.0, "seed": 0,
            "crop_scale": [0.08, 1.0], "val_resize": 1.142857, "lr_schedule": "step", "lr_steps": [2]}


@pytest.fixture(scope="module")
def imagenet(tmp_path_factory):
    root = tmp_path_factory.mktemp("data") / "imagenet"
    writers.generate_imagenet(root, tiny()[0], seed=0)  # 4 classes x 8 train images: 4 iterations an epoch
    return root


def run(imagenet, out, fault=None, pretrain=PRETRAIN, processes=1, model=None):
    env = {**os.environ, "PYTHONPATH": str(ROOT / "workflow")}
    env.pop("RETHINK_FAULT", None)
    if fault:
        env["RETHINK_FAULT"] = fault
    if model is None:
        model = {k: tiny()[1][k] for k in ("depth", "width", "norm", "gn_groups", "stride_in_1x1")}
    launcher = [sys.executable, "-m", "rethink.engine.pretrain"] if processes == 1 else [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node",
        str(processes), "-m", "rethink.engine.pretrain"]
    return subprocess.run([*launcher, "--imagenet", str(imagenet), "--device", "cpu",
                           "--model", json.dumps(model), "--pretrain", json.dumps(pretrain),
                           "--out", str(out), "--out-metrics", str(out.with_suffix(".json"))],
                          env=env, capture_output=True, text=True)


@pytest.mark.slow
def test_a_killed_pretraining_resumes_from_its_last_epoch_to_the_same_backbone(imagenet, tmp_path):
    straight = tmp_path / "straight" / "backbone.pt"
    assert run(imagenet, straight).returncode == 0
    killed = tmp_path / "killed" / "backbone.pt"
    proc = run(imagenet, killed, fault="pretrain:9")  # in epoch 3 (iterations 8-11)
    assert proc.returncode == -9 and not killed.exists()
    assert [p.name for p in (killed.parent / "backbone_state").iterdir()] == ["epoch_0002.pt"]
    proc = run(imagenet, killed)
    assert proc.returncode == 0, proc.stderr
    assert "resumed from" in proc.stdout and "at epoch 2" in proc.stdout
    a, b = (torch.load(p, weights_only=True) for p in (straight, killed))
    assert a["model"].keys() == b["model"].keys()
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])  # bitwise
    curve = json.loads(straight.with_suffix(".json").read_text())["curve"]
    assert [c["epoch"] for c in curve] == [1, 2, 3]
    assert curve == json.loads(killed.with_suffix(".json").read_text())["curve"]
    m = json.loads(straight.with_suffix(".json").read_text())  # epoch 3 of 3 is the last quarter
    assert m["last_quarter_gain"] == pytest.approx(100 * (curve[2]["top1"] - curve[1]["top1"]), abs=0.01)
    assert m["levelled_off"] == (m["last_quarter_gain"] < 1.0)
    assert ("levelled off:" if m["levelled_off"] else "has not levelled off") in proc.stdout
    assert not (killed.parent / "backbone_state").exists()  # finished: no state left


def test_lr_schedules():
    cfg = {"lr_schedule": "step", "lr_steps": [30, 60, 80]}
    per_epoch, total = 10, 900
    assert lr_at(0, total, 0.1, 50, cfg, per_epoch) == pytest.approx(0.1 / 50)  # warm-up
    assert lr_at(299, total, 0.1, 50, cfg, per_epoch) == pytest.approx(0.1)
    assert lr_at(300, total, 0.1, 50, cfg, per_epoch) == pytest.approx(0.01)
    assert lr_at(899, total, 0.1, 50, cfg, per_epoch) == pytest.approx(0.0001)
    cosine = {"lr_schedule": "cosine"}
    assert lr_at(50, total, 0.1, 50, cosine, per_epoch) == pytest.approx(0.1)
    assert lr_at(475, total, 0.1, 50, cosine, per_epoch) == pytest.approx(0.05)


def test_val_resizes_to_256_of_224_then_centre_crops():
    image = torch.randint(0, 255, (3, 300, 400), dtype=torch.uint8)
    out = transforms(224, False, val_resize=256 / 224)(image)
    assert out.shape == (3, 224, 224)
    crop = transforms(224, True, crop_scale=(0.08, 1.0))(image)
    assert crop.shape == (3, 224, 224)


def flat_copy(imagenet, dst, labels):
    """`imagenet` with val/ as ImageNet ships it: one flat folder, labels in `labels` files."""
    shutil.copytree(imagenet / "train", dst / "train")
    (dst / "val").mkdir()
    wnids = sorted(p.name for p in (imagenet / "val").iterdir())
    truth = []
    for n, path in enumerate(sorted((imagenet / "val").glob("*/*")), start=1):
        shutil.copy(path, dst / "val" / f"ILSVRC2012_val_{n:08d}.JPEG")
        truth.append((f"ILSVRC2012_val_{n:08d}", path.parent.name))
    if labels == "devkit":  # ILSVRC2012_IDs in the devkit's own order, not sorted WNIDs
        order = wnids[::-1]
        data = dst / "ILSVRC2012_devkit_t12" / "data"
        data.mkdir(parents=True)
        synsets = np.array([(i + 1, w, w) for i, w in enumerate(order)],
                           dtype=[("ILSVRC2012_ID", "O"), ("WNID", "O"), ("words", "O")])
        savemat(data / "meta.mat", {"synsets": synsets})
        (data / imagenet_layouts.GROUND_TRUTH).write_text(
            "".join(f"{order.index(w) + 1}\n" for _, w in truth))
    else:
        (dst / imagenet_layouts.LOC_SOLUTION).write_text(
            "ImageId,PredictionString\n" + "".join(f"{i},{w} 1 2 30 31\n" for i, w in truth))
    return dst


@pytest.mark.parametrize("labels", ["devkit", "loc_csv"])
def test_flat_val_loads_to_the_same_labels_as_class_folders(imagenet, tmp_path, labels):
    flat = flat_copy(imagenet, tmp_path / "flat", labels)
    folders = datasets.ImageFolder(imagenet / "val")
    ours = imagenet_layouts.val_dataset(flat, folders.class_to_idx)
    assert [label for _, label in ours.samples] == [label for _, label in folders.samples]
    stats = check_imagenet(flat)
    assert stats["val"]["images"] == len(folders) and stats["val_labels"].endswith(
        imagenet_layouts.GROUND_TRUTH if labels == "devkit" else imagenet_layouts.LOC_SOLUTION)


def test_flat_val_without_labels_names_what_is_missing(imagenet, tmp_path):
    flat = flat_copy(imagenet, tmp_path / "flat", "loc_csv")
    (flat / imagenet_layouts.LOC_SOLUTION).unlink()
    with pytest.raises(DatasetError, match=r"val/ is a flat folder of images but no labels were found: "
                                           r"expected LOC_val_solution.csv, or ILSVRC2012_validation"):
        check_imagenet(flat)
    flat = flat_copy(imagenet, tmp_path / "flat2", "devkit")
    (flat / "ILSVRC2012_devkit_t12/data/meta.mat").unlink()
    with pytest.raises(DatasetError, match=r"needs the devkit's meta.mat"):
        check_imagenet(flat)


def update(path, seed):
    """The backbone's change from the init rethink.engine.pretrain draws (fc left out)."""
    _, model, _ = tiny()
    torch.manual_seed(seed)
    init = build_classifier(model, 4).state_dict()
    w = torch.load(path, weights_only=True)["model"]
    return torch.cat([(w[k] - init[k]).flatten().double() for k in w if w[k].is_floating_point()])


@pytest.mark.slow
def test_two_processes_match_one_with_the_same_global_batch(imagenet, tmp_path):
    """As for detection (tests/unit/engine/test_distributed.py), with the randomness that is not about
    processes taken out (each rank draws its own crops and flips, as each detection rank its
    own RoI samples): whole-image crops, no flips. The shuffled global batches are the same,
    each rank trains its half, DDP averages: the update equals one process's up to rounding,
    and other data's is far off."""
    cfg = {**PRETRAIN, "epochs": 1, "warmup_epochs": 0, "lr_schedule": "cosine",
           "crop_scale": [1.0, 1.0], "flip_prob": 0.0}
    one, two, other = (tmp_path / n / "backbone.pt" for n in ("one", "two", "other"))
    assert run(imagenet, one, pretrain=cfg).returncode == 0
    proc = run(imagenet, two, pretrain=cfg, processes=2)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "global batch 8 = 2 x 4 images" in proc.stdout
    assert run(imagenet, other, pretrain={**cfg, "seed": 1}).returncode == 0
    same, rel, far = agreement(update(one, 0), update(two, 0), update(other, 1), "")
    assert same > 0.9999 and rel < 0.01  # detection's tolerance: > 0.95, < 0.30
    assert far < same - 0.1


def test_pretrain_curve_figure_draws_and_reports_the_last_quarters_gain(tmp_path):
    from rethink.figures import pretrain_curve
    curve = [{"epoch": e, "top1": t, "loss": 2 - t} for e, t in enumerate([0.2, 0.4, 0.5, 0.55], start=1)]
    metrics = tmp_path / "metrics.json"
    metrics.write_text(json.dumps({"curve": curve}))
    assert pretrain_curve.last_quarter_gain(curve) == pytest.approx(5.0)
    out = tmp_path / "c.png"
    assert pretrain_curve.main(["--metrics", f"GN={metrics}", "--out-png", str(out),
                                "--out-pdf", str(tmp_path / "c.pdf")]) == 0
    assert out.stat().st_size > 1000 and (tmp_path / "c.pdf").exists()
    assert pretrain_curve.run_cli(pretrain_curve.main, ["--metrics", f"GN={tmp_path}/none.json", "--out-png",
                                                        str(out), "--out-pdf", str(out)]) == 2


def test_simsiam_syncs_its_heads_batchnorm_across_gpus_and_keeps_the_backbones_group_norm():
    """The conversion alone (it needs no GPU; running SyncBatchNorm does)."""
    cfg = {k: v for k, v in tiny()[1].items() if k != "vit"}
    assert cfg["norm"] == "GN"

    def kinds(net):
        return [type(m).__name__ for m in net.modules() if "Norm" in type(m).__name__]

    before = kinds(methods.build("simsiam", cfg, 4)[0])
    on_gpus = kinds(methods.sync_batchnorm(methods.build("simsiam", cfg, 4)[0], cfg, "simsiam",
                                           torch.device("cuda")))
    assert "BatchNorm1d" in before and "SyncBatchNorm" not in before
    assert on_gpus == [k.replace("BatchNorm1d", "SyncBatchNorm") for k in before]
    assert on_gpus.count("GroupNorm") == before.count("GroupNorm") > 0
    on_cpus = methods.sync_batchnorm(methods.build("simsiam", cfg, 4)[0], cfg, "simsiam", torch.device("cpu"))
    assert kinds(on_cpus) == before
    supervised = methods.build("supervised", cfg, 4)[0]
    assert methods.sync_batchnorm(supervised, cfg, "supervised", torch.device("cuda")) is supervised
    synced = {**cfg, "norm": "SyncBN"}
    assert "SyncBatchNorm" in kinds(methods.sync_batchnorm(methods.build("supervised", synced, 4)[0], synced,
                                                           "supervised", torch.device("cuda")))


MAE_VIT = {**tiny()[1], "arch": "vit", "depth": 2, "width": 32, "vit": {**tiny()[1]["vit"], "pos_size": 32}}
MAE_PRETRAIN = {**PRETRAIN, "method": "mae", "optimizer": "adamw", "lr": 0.0015, "weight_decay": 0.05,
                "lr_schedule": "cosine", "lr_steps": None}


@pytest.mark.slow
def test_a_killed_mae_pretraining_resumes_its_mask_stream_to_the_same_encoder(imagenet, tmp_path):
    straight, killed = tmp_path / "straight" / "backbone.pt", tmp_path / "killed" / "backbone.pt"
    assert run(imagenet, straight, pretrain=MAE_PRETRAIN, model=MAE_VIT).returncode == 0
    assert run(imagenet, killed, fault="pretrain:9", pretrain=MAE_PRETRAIN, model=MAE_VIT).returncode == -9
    proc = run(imagenet, killed, pretrain=MAE_PRETRAIN, model=MAE_VIT)
    assert proc.returncode == 0 and "at epoch 2" in proc.stdout, proc.stderr
    a, b = (torch.load(p, weights_only=True)["model"] for p in (straight, killed))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)  # bitwise


def mae_update(path, seed, model):
    """The ViT's change from the init an MAE pre-training job draws."""
    torch.manual_seed(seed)
    init = methods.build("mae", model, 4)[1].state_dict()
    w = torch.load(path, weights_only=True)["model"]
    return torch.cat([(w[k] - init[k]).flatten().double() for k in w if w[k].is_floating_point()])


@pytest.mark.slow
def test_mae_in_two_processes_masks_as_one_process_does(imagenet, tmp_path):
    """MAE's masks come from a stream of their own: two processes, each keeping its rows of
    the global batch's masks, train as one process does (with whole-image crops and no flips,
    as above), where ranks drawing one stream each would mask both halves alike."""
    model = MAE_VIT
    cfg = {**MAE_PRETRAIN, "epochs": 1, "warmup_epochs": 0, "crop_scale": [1.0, 1.0], "flip_prob": 0.0}
    one, two, other = (tmp_path / n / "backbone.pt" for n in ("one", "two", "other"))
    assert run(imagenet, one, pretrain=cfg, model=model).returncode == 0
    proc = run(imagenet, two, pretrain=cfg, processes=2, model=model)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "global batch 8 = 2 x 4 images" in proc.stdout
    assert run(imagenet, other, pretrain={**cfg, "seed": 1}, model=model).returncode == 0
    same, rel, far = agreement(mae_update(one, 0, model), mae_update(two, 0, model),
                               mae_update(other, 1, model), "MAE ")
    assert same > 0.9999 and rel < 0.01
    assert far < same - 0.1


@pytest.mark.parametrize("method", ["simsiam", "mae"])
def test_self_supervised_pretraining_writes_a_backbone_the_detector_loads(imagenet, tmp_path, method):
    """pretrain.method: simsiam on the ResNet, mae on a ViT (with AdamW, as MAE trains): the
    job monitors each epoch by a kNN classifier on the frozen features, and writes the
    encoder's weights alone (no decoder, projector or predictor), which the detector loads."""
    model = tiny()[1]
    if method == "mae":
        model = {**model, "arch": "vit", "depth": 2, "width": 32, "vit": {**model["vit"], "pos_size": 32}}
    else:
        model.pop("vit")
    pretrain = {**PRETRAIN, "method": method, "epochs": 2, "lr_schedule": "cosine", "lr_steps": None,
                "crop_scale": [0.2, 1.0], **({"optimizer": "adamw", "lr": 0.0015, "weight_decay": 0.05}
                                             if method == "mae" else {"lr": 0.05})}
    out = tmp_path / "backbone.pt"
    proc = run(imagenet, out, pretrain=pretrain, model=model)
    assert proc.returncode == 0, proc.stderr
    assert "kNN top-1=" in proc.stdout
    metrics = json.loads(out.with_suffix(".json").read_text())
    assert metrics["method"] == method and metrics["monitor"] == "kNN top-1"
    assert [c["epoch"] for c in metrics["curve"]] == [1, 2]
    assert all(0.0 <= c["top1"] <= 1.0 and np.isfinite(c["loss"]) for c in metrics["curve"])
    state = torch.load(out, weights_only=True)["model"]
    assert set(state) == set(build_body(model).state_dict())  # the encoder alone
    detector = build_mask_rcnn(model, num_classes=3)
    load_backbone(detector, state)
    assert torch.equal(detector.backbone.body.state_dict()[next(iter(state))], state[next(iter(state))])
