"""The study's variants and data subsets: config -> variants, seeds and subset files."""
import json
import subprocess
import sys

import pytest
import yaml
from snakemake.utils import update_config

from conftest import ROOT
from rethink.core import config as study_config
from rethink.core.study import subset_size
from rethink.data.subsets import choose, subset_annotations


def default_config(**extra):
    cfg = yaml.safe_load((ROOT / "config.yaml").read_text())
    update_config(cfg, extra)
    return cfg


def test_default_variants_are_main_norms_regimes_largest_first_then_pretrainings():
    variants = study_config.variants(default_config())
    assert list(variants) == ["main", "SyncBN", "10k", "3.5k", "1k", "pre6ep"]
    assert variants["SyncBN"].norm == "SyncBN" and variants["SyncBN"].fraction == 1.0
    assert [v.kind for v in variants.values()] == ["main", "norm", "regime", "regime", "regime", "pretraining"]
    assert variants["1k"].fraction == pytest.approx(1000 / 118287, rel=1e-3)
    assert study_config.pretrain_norm("SyncBN") == "BN" and study_config.pretrain_norm("GN") == "GN"


def test_overrides_apply_to_one_variant_and_both_inits_alike():
    cfg = default_config(study={"regimes": [{"name": "small", "fraction": 0.1, "base_lr": 0.01,
                                             "scales": [96, 128], "schedules": [3]}]})
    variants = study_config.variants(cfg)
    small, main = variants["small"], variants["main"]
    assert small.detection["base_lr"] == 0.01 and main.detection["base_lr"] == cfg["detection"]["base_lr"]
    assert [s.name for s in small.plan.schedules] == ["3x"]
    settings = study_config.train_settings(small, seed=7)
    assert settings["seed"] == 7 and settings["scales"] == [96, 128]
    # the init is not a training setting: scratch and pretrained get the same dict
    assert "init" not in settings


def test_an_lr_decay_override_reaches_that_variant_s_training_settings_only():
    cfg = default_config(study={"regimes": [{"name": "35k", "fraction": 0.3, "base_lr": 0.04, "lr_decay": 0.02,
                                             "schedules": [1]}]})
    study_config.check(cfg)
    variants = study_config.variants(cfg)
    assert study_config.train_settings(variants["35k"], 0)["lr_decay"] == 0.02
    # the default factor stays out of the settings: earlier runs keep their rerun triggers and lineage
    assert "lr_decay" not in study_config.train_settings(variants["main"], 0)
    assert "lr_decay" not in study_config.train_settings(variants["SyncBN"], 0)


def test_the_default_warm_up_ends_before_the_1x_drops_its_lr():
    cfg = default_config()
    main = study_config.variants(cfg)["main"]
    first_drop = min(s.drops[0] for s in main.plan.schedules)
    assert 0 < cfg["detection"]["warmup_iters"] <= first_drop / 2  # half the 1x's full-LR phase at least
    study_config.check(default_config(detection={"warmup_iters": first_drop - 1}))
    with pytest.raises(study_config.ConfigError, match=r"detection: warmup_iters \(20\) does not end before"):
        study_config.check(default_config(detection={"warmup_iters": first_drop}))


def test_seeds_count_from_the_detection_seed():
    assert study_config.seeds(default_config(study={"seeds": 3}, detection={"seed": 5})) == [5, 6, 7]


@pytest.mark.parametrize("study, key", [
    ({"regimes": [{"name": "main", "fraction": 0.5}]}, "study.regimes[main]"),
    ({"regimes": [{"name": "a", "fraction": 0.5}, {"name": "a", "fraction": 0.2}]}, "study.regimes[a]"),
    ({"norms": [{"norm": "GN"}]}, "study.norms[GN]"),
    ({"regimes": [{"name": "a", "fraction": 0.5, "warmup_iters": 10000}]}, "warmup_iters"),
    ({"regimes": [{"name": "a", "fraction": 0.5, "scales": [999]}]}, "scales"),
    # the 1x (60 iterations) drops its LR at 20: a 20-iteration warm-up never reaches full LR
    ({"regimes": [{"name": "a", "fraction": 0.5, "warmup_iters": 20}]},
     "study.regimes[a]: warmup_iters .20. does not end before schedule 1x's first LR drop .iteration 20."),
])
def test_inconsistent_study_config_names_the_entry(study, key):
    with pytest.raises(study_config.ConfigError, match=key.replace("[", r"\[").replace("]", r"\]")):
        study_config.check(default_config(study=study))


def test_a_pretraining_variant_is_main_from_another_pre_training_and_shares_its_scratch():
    cfg = default_config()
    variants = study_config.variants(cfg)
    pre, main = variants["pre6ep"], variants["main"]
    assert pre.shares_scratch and not main.shares_scratch and pre.norm == main.norm
    assert pre.pretrain == {"epochs": 6} and [s.name for s in pre.plan.schedules] == ["1x", "2x", "6x"]
    # the same detection settings as main, and each of its checkpoints one of main's
    assert study_config.train_settings(pre, 0) == study_config.train_settings(main, 0)
    for branch in ["trunk", "1x", "2x", "6x"]:
        assert set(pre.plan.checkpoints(branch)) <= set(main.plan.checkpoints(branch))
    # its own pre-training: main's keys with its overrides, in pretrain/GN_pre6ep
    assert study_config.pretraining_key(pre) == "GN_pre6ep" and study_config.pretraining_key(main) == "GN"
    own, base = study_config.pretrain_settings(cfg, "GN_pre6ep"), study_config.pretrain_settings(cfg, "GN")
    assert own == {**base, "epochs": 6} and base["epochs"] == cfg["pretrain"]["epochs"]
    # nothing to vary with a given backbone or without a pretrained init
    for extra in ({"pretrain": {"checkpoint": "/x/r50.pth"}}, {"detection": {"inits": ["scratch"]}}):
        assert "pre6ep" not in study_config.variants(default_config(**extra))


@pytest.mark.parametrize("entry, message", [
    ({"name": "p", "epochs": 6, "schedules": [1, 7]}, r"study.pretrainings\[p\].schedules: \[7.0\] not in detection.schedules"),
    ({"name": "p", "epochs": 6, "base_lr": 0.1}, r"study.pretrainings\[p\]: unknown key\(s\) \['base_lr'\]"),
    ({"name": "p", "schedules": [1]}, r"study.pretrainings\[p\]: sets no pretrain key"),
    ({"name": "1k", "epochs": 6}, r"study.pretrainings\[1k\]: variant names must be unique"),
])
def test_bad_pretraining_variants_name_the_entry(entry, message):
    with pytest.raises(study_config.ConfigError, match=message):
        study_config.variants(default_config(study={"pretrainings": [entry]}))


VIT_MODEL = {"name": "vit", "arch": "vit", "depth": 4, "width": 64, "schedules": [1, 2, 6],
             "pretrain": {"optimizer": "adamw", "lr": 0.004, "weight_decay": 0.05}}


def test_a_self_supervised_pretraining_of_a_model_variant_shares_that_variant_s_scratch():
    """Issue 35: `base: vit` repeats the ViT model variant's pretrained runs from an MAE
    pre-training of the same ViT (its pretrain keys under the entry's); its scratch runs are
    the ViT's. The default's pre-training settings carry no method or optimizer key, so no
    job of a study from before them reruns."""
    cfg = default_config(study={"models": [VIT_MODEL], "pretrainings": [
        {"name": "vit_mae", "base": "vit", "method": "mae", "schedules": [1, 6]}]})
    variants = study_config.variants(cfg)
    mae, vit = variants["vit_mae"], variants["vit"]
    assert list(variants)[-2:] == ["vit_mae", "vit"]  # display order: pretrainings, then models
    assert mae.shares_scratch and mae.base == "vit" and mae.model == vit.model and mae.norm == vit.norm
    assert study_config.train_settings(mae, 0) == study_config.train_settings(vit, 0)
    assert study_config.model_settings(cfg, False, variant=mae) == study_config.model_settings(cfg, False, variant=vit)
    assert study_config.pretraining_key(mae) == "GN_vit_mae"
    assert study_config.pretrain_model_settings(cfg, "GN_vit_mae")["arch"] == "vit"
    own = study_config.pretrain_settings(cfg, "GN_vit_mae")
    assert own == {**study_config.pretrain_settings(cfg, "GN_vit"), "method": "mae"} and own["optimizer"] == "adamw"
    assert not {"method", "optimizer"} & set(study_config.pretrain_settings(cfg, "GN"))
    for branch in ["trunk", "1x", "6x"]:
        assert set(mae.plan.checkpoints(branch)) <= set(vit.plan.checkpoints(branch))


@pytest.mark.parametrize("entries, message", [
    ([{"name": "p", "base": "R18", "method": "simsiam"}],
     r"study.pretrainings\[p\].base: 'R18' is neither 'main' nor a study.models entry \(those here: \['vit'\]\)"),
    ([{"name": "p", "method": "mae"}], r"study.pretrainings\[p\].method: mae \(masked autoencoding\) pre-trains a ViT, "
                                       r"but this backbone's arch is resnet"),
    ([{"name": "p", "base": "vit", "method": "mae", "schedules": [3]}],
     r"study.pretrainings\[p\].schedules: \[3.0\] not in study.models\[vit\]'s schedules \[1, 2, 6\]"),
])
def test_bad_self_supervised_pretrainings_name_the_entry_and_key(entries, message):
    with pytest.raises(study_config.ConfigError, match=message):
        study_config.check(default_config(study={"models": [VIT_MODEL], "pretrainings": entries}))


def test_a_model_variant_trains_both_inits_of_its_own_backbone_from_its_own_pre_training():
    cfg = default_config(study={"models": [{"name": "R18", "depth": 18, "schedules": [1, 6]}]})
    variants = study_config.variants(cfg)
    deep, main = variants["R18"], variants["main"]
    assert list(variants)[-1] == "R18" and deep.kind == "model" and deep.model == {"depth": 18}
    assert deep.own_pretraining and not deep.shares_scratch and deep.pretrain is None
    # both inits see the deeper model, nothing else differs from main's
    model, base = study_config.model_settings(cfg, False, variant=deep), study_config.model_settings(cfg, False, variant=main)
    assert model == {**base, "depth": 18} and base["depth"] == cfg["model"]["depth"]
    assert study_config.train_settings(deep, 0) == study_config.train_settings(main, 0)
    # its pre-training: the deeper backbone with main's pretrain keys, in pretrain/GN_R18
    assert study_config.pretraining_key(deep) == "GN_R18"
    assert study_config.pretrain_model_settings(cfg, "GN_R18") == model
    assert study_config.pretrain_model_settings(cfg, "GN") == base
    assert study_config.pretrain_settings(cfg, "GN_R18") == study_config.pretrain_settings(cfg, "GN")
    # a given backbone has main's shape: no deeper one to start from, so the variant is left out
    given = default_config(study=cfg["study"], pretrain={"checkpoint": "/x/r50.pth"})
    assert "R18" not in study_config.variants(given)
    scratch_only = default_config(study=cfg["study"], detection={"inits": ["scratch"]})
    assert "R18" in study_config.variants(scratch_only)


def test_a_model_variant_may_change_arch_and_norm_for_both_inits_and_its_pre_training():
    cfg = default_config(study={"models": [{"name": "VGG", "arch": "vgg", "depth": 11, "norm": "none"}]})
    study_config.check(cfg)
    vgg = study_config.variants(cfg)["VGG"]
    assert vgg.norm == "none" and study_config.pretraining_key(vgg) == "none_VGG"
    model = study_config.model_settings(cfg, False, variant=vgg)
    assert (model["arch"], model["depth"], model["norm"]) == ("vgg", 11, "none")
    assert study_config.pretrain_model_settings(cfg, "none_VGG") == model
    # main's arch is the default, left out of the jobs' settings (their rerun triggers and lineage)
    assert "arch" not in study_config.model_settings(cfg, False, variant=study_config.variants(cfg)["main"])


def test_a_model_variant_may_carry_the_pretrain_keys_its_backbone_needs():
    """A VGG without normalisation does not learn at main's pre-training LR (docs/results.md): its own
    pre-training may set pretrain.* keys; its detection runs keep main's, for both inits."""
    entry = {"name": "VGG", "arch": "vgg", "depth": 11, "norm": "none", "pretrain": {"lr": 0.04}}
    cfg = default_config(study={"models": [entry]})
    vgg, main = study_config.variants(cfg)["VGG"], study_config.variants(cfg)["main"]
    assert vgg.pretrain == {"lr": 0.04} and not vgg.shares_scratch
    assert study_config.pretrain_settings(cfg, "none_VGG") == {**study_config.pretrain_settings(cfg, "GN"), "lr": 0.04}
    assert study_config.train_settings(vgg, 0) == study_config.train_settings(main, 0)
    with pytest.raises(study_config.ConfigError, match=r"study.models\[VGG\].pretrain: unknown key\(s\) \['image_size'\]"):
        study_config.variants(default_config(study={"models": [{**entry, "pretrain": {"image_size": 32}}]}))


def test_the_configs_depths_per_arch_are_the_models():
    from rethink.models import detector
    assert {a: tuple(sorted(d)) for a, d in detector.ARCH_DEPTHS.items()} == study_config.ARCH_DEPTHS


@pytest.mark.parametrize("study, message", [
    ({"models": [{"name": "v", "arch": "vgg"}]}, r"study.models\[v\].depth: 10 is no depth of arch vgg \(one of \[11, 16\]\)"),
    ({"models": [{"name": "r", "norm": "none"}]}, r"study.models\[r\].norm: none needs arch: vgg"),
    ({"norms": [{"norm": "none"}]}, r"study.norms\[none\].norm: none needs arch: vgg"),
])
def test_a_backbone_the_models_cannot_build_names_the_entry(study, message):
    with pytest.raises(study_config.ConfigError, match=message):
        study_config.check(default_config(study=study))


def test_a_given_backbone_must_be_a_resnet_or_a_vit():
    cfg = default_config(model={"arch": "vgg", "depth": 11, "norm": "none"}, pretrain={"checkpoint": "/x/r50.pth"})
    with pytest.raises(study_config.ConfigError, match="pretrain.checkpoint: given backbones are ResNets or ViTs"):
        study_config.check(cfg)


@pytest.mark.parametrize("entry, message", [
    ({"name": "m", "schedules": [1]}, r"study.models\[m\]: sets no model key \(arch, depth, width, norm\)"),
    ({"name": "m", "depth": 10}, r"study.models\[m\]: sets no model key"),  # main's own depth
    ({"name": "m", "depth": 18, "fraction": 0.5}, r"study.models\[m\]: unknown key\(s\) \['fraction'\]"),
    ({"name": "m", "depth": 18, "epochs": 6}, r"unknown key\(s\) \['epochs'\]; allowed: .*'arch', 'depth', 'width', 'norm', 'pretrain'"),
    ({"name": "pre6ep", "depth": 18}, r"study.models\[pre6ep\]: variant names must be unique"),
])
def test_bad_model_variants_name_the_entry(entry, message):
    with pytest.raises(study_config.ConfigError, match=message):
        study_config.variants(default_config(study={"models": [entry]}))


def test_a_task_variant_trains_main_s_model_plus_the_task_head_from_main_s_pre_training():
    cfg = default_config(study={"tasks": [{"name": "kp", "task": "keypoints", "schedules": [1, 2]}]})
    study_config.check(cfg)
    variants = study_config.variants(cfg)
    kp, main = variants["kp"], variants["main"]
    assert list(variants)[-1] == "kp" and kp.kind == "task" and kp.task == "keypoints"
    assert not kp.own_pretraining and study_config.pretraining_key(kp) == "GN"  # main's backbone
    assert study_config.train_settings(kp, 0) == study_config.train_settings(main, 0)
    model, base = study_config.model_settings(cfg, False, variant=kp), study_config.model_settings(cfg, False, variant=main)
    k = len(cfg["keypoints"]["sigmas"])
    assert model == {**base, "keypoints": {"num": k, "head": cfg["keypoints"]["head"]}}
    # the OKS sigmas only score the model: an evaluation setting, not a training one
    assert study_config.model_settings(cfg, True, variant=kp)["oks_sigmas"] == cfg["keypoints"]["sigmas"]
    assert "oks_sigmas" in study_config.eval_only_model_settings(cfg)
    assert "oks_sigmas" not in study_config.eval_only_model_settings(default_config())
    assert "keypoints" not in study_config.model_settings(cfg, True, variant=main)


@pytest.mark.parametrize("entry, message", [
    ({"name": "kp", "task": "poses"}, r"study.tasks\[kp\].task: must be one of \['keypoints'\], got 'poses'"),
    ({"name": "kp", "task": "keypoints", "one_y": 18},
     r"study.tasks\[kp\]: unknown key\(s\) \['one_y'\]; allowed: .*'lr_decay', 'arch', .*'pretrain', 'task'"),
    ({"name": "kp", "task": "keypoints", "pretrain": {"epochs": 3}},
     r"study.tasks\[kp\].pretrain: only with a backbone of its own .* a study.pretrainings entry"),
    ({"name": "main", "task": "keypoints"}, r"study.tasks\[main\]: variant names must be unique"),
])
def test_bad_task_variants_name_the_entry(entry, message):
    with pytest.raises(study_config.ConfigError, match=message):
        study_config.variants(default_config(study={"tasks": [entry]}))


def test_a_dataset_variant_trains_main_s_model_without_masks_from_main_s_pre_training():
    cfg = default_config(study={"datasets": [{"name": "voc", "dataset": "voc", "schedules": [1, 2]}]})
    study_config.check(cfg)
    variants = study_config.variants(cfg)
    voc, main = variants["voc"], variants["main"]
    assert list(variants)[-1] == "voc" and voc.kind == "dataset" and voc.dataset == "voc"
    assert not voc.own_pretraining and study_config.pretraining_key(voc) == "GN"  # main's backbone
    assert study_config.train_settings(voc, 0) == study_config.train_settings(main, 0)
    model, base = study_config.model_settings(cfg, False, variant=voc), study_config.model_settings(cfg, False, variant=main)
    assert model == {**base, "masks": False}  # boxes only, the rest main's


def test_a_dataset_variant_with_a_backbone_of_its_own_shares_an_identical_pre_training():
    # the paper's VOC study ran on an R101: a dataset variant may set the backbone keys, and
    # starts from the pre-training a model variant of the same backbone already trains
    cfg = default_config(study={"models": [{"name": "R18", "depth": 18}],
                                "datasets": [{"name": "voc", "dataset": "voc", "depth": 18, "schedules": [1, 2]},
                                             {"name": "voc_w", "dataset": "voc", "width": 48, "schedules": [1]}]})
    study_config.check(cfg)
    variants = study_config.variants(cfg)
    voc, wide, r18 = variants["voc"], variants["voc_w"], variants["R18"]
    assert voc.own_pretraining and voc.model == {"depth": 18} and voc.shares_pretraining_of == "R18"
    assert study_config.pretraining_key(voc) == study_config.pretraining_key(r18) == "GN_R18"
    assert wide.shares_pretraining_of is None and study_config.pretraining_key(wide) == "GN_voc_w"
    model = study_config.model_settings(cfg, False, variant=voc)
    assert model == {**study_config.model_settings(cfg, False, variant=r18), "masks": False}
    assert study_config.pretrain_model_settings(cfg, "GN_voc_w")["width"] == 48
    # the same backbone written differently (main's norm spelt out) is the same pre-training;
    # a key at main's value alone keeps main's backbone
    cfg["study"]["models"][0]["norm"] = "GN"
    assert study_config.pretraining_key(study_config.variants(cfg)["voc"]) == "GN_R18"
    cfg["study"]["datasets"][1]["width"] = cfg["model"]["width"]
    assert study_config.pretraining_key(study_config.variants(cfg)["voc_w"]) == "GN"
    # a different pre-training of the same backbone is not shared
    cfg["study"]["datasets"][0]["pretrain"] = {"epochs": 3}
    assert study_config.pretraining_key(study_config.variants(cfg)["voc"]) == "GN_voc"


def test_a_dataset_variant_s_own_backbone_cannot_start_from_main_s_given_checkpoint():
    cfg = default_config(study={"datasets": [{"name": "voc", "dataset": "voc", "depth": 18}]})
    cfg["pretrain"]["checkpoint"] = "/data/r10.pt"
    with pytest.raises(study_config.ConfigError,
                       match=r"study.datasets\[voc\]: sets \['depth'\], a backbone of its own.*pretrain.checkpoint"):
        study_config.variants(cfg)


def test_a_recipe_variant_changes_training_keys_and_tta_only_scores():
    tta = {"scales": [112, 128], "flip": True}
    cfg = default_config(study={"recipes": [{"name": "enh", "scales": [104, 128], "schedules": [6, 9], "tta": tta}]})
    study_config.check(cfg)
    enh, main = study_config.variants(cfg)["enh"], study_config.variants(cfg)["main"]
    assert enh.kind == "recipe" and enh.tta == tta and main.tta is None
    assert study_config.train_settings(enh, 0) == {**study_config.train_settings(main, 0), "scales": [104, 128]}
    # test-time augmentation is an evaluation setting of that variant alone, never a training one
    assert study_config.model_settings(cfg, False, variant=enh) == study_config.model_settings(cfg, False, variant=main)
    assert study_config.model_settings(cfg, True, variant=enh)["tta"] == tta
    assert "tta" not in study_config.model_settings(cfg, True, variant=main)
    assert study_config.eval_extra_by_variant(cfg) == {"enh": {"tta": tta}}
    # evaluate.tta: every variant's, with model.min_size when no scales are given
    everywhere = default_config(evaluate={"tta": {"scales": None, "flip": True}})
    assert {n: v["tta"] for n, v in study_config.eval_extra_by_variant(everywhere).items()} == {
        n: {"scales": [everywhere["model"]["min_size"]], "flip": True} for n in study_config.variants(everywhere)}


@pytest.mark.parametrize("study, message", [
    ({"datasets": [{"name": "v", "dataset": "pascal"}]}, r"study.datasets\[v\].dataset: must be one of \['voc'\]"),
    ({"datasets": [{"name": "v", "dataset": "voc", "fraction": 0.5}]}, r"study.datasets\[v\]: unknown key\(s\) \['fraction'\]"),
    ({"recipes": [{"name": "r", "depth": 18}]}, r"study.recipes\[r\]: unknown key\(s\) \['depth'\]"),
    ({"recipes": [{"name": "r"}]}, r"study.recipes\[r\]: sets no training key"),
    ({"recipes": [{"name": "r", "tta": {"flip": True}}]}, r"study.recipes\[r\]: sets no training key"),
    ({"tasks": [{"name": "kp", "task": "keypoints", "tta": {"flip": True}}]},
     r"study.tasks\[kp\]: test-time augmentation .* not supported for task variants"),
])
def test_bad_dataset_and_recipe_variants_name_the_entry(study, message):
    with pytest.raises(study_config.ConfigError, match=message):
        study_config.variants(default_config(study=study))


def test_subsets_are_deterministic_nested_and_never_empty():
    ids = list(range(1, 1001))
    small, large = choose(ids, 0.03, seed=0), choose(ids, 0.1, seed=0)
    assert small == choose(ids, 0.03, seed=0) and small != choose(ids, 0.03, seed=1)
    assert len(small) == 30 and len(large) == 100 and set(small) <= set(large)
    assert subset_size(5, 0.001) == 1
    with pytest.raises(ValueError):
        subset_size(10, 0)


def test_subset_cli_writes_a_coco_file_without_skipped_images(tmp_path):
    ann = tmp_path / "coco/annotations"
    ann.mkdir(parents=True)
    doc = {"images": [{"id": i, "file_name": f"{i}.jpg", "width": 8, "height": 8} for i in range(1, 21)],
           "annotations": [{"id": i, "image_id": i, "category_id": 1, "bbox": [0, 0, 2, 2]} for i in range(1, 21)],
           "categories": [{"id": 1, "name": "x"}], "info": {"v": 1}}
    (ann / "instances_train2017.json").write_text(json.dumps(doc))
    stats = tmp_path / "stats.json"
    stats.write_text(json.dumps({"coco": {"skipped_images": {"train": [{"id": i, "file": "", "error": ""}
                                                                       for i in range(1, 11)]}}}))
    out = tmp_path / "sub/instances_train2017.json"
    proc = subprocess.run([sys.executable, "-m", "rethink.data.subsets", "--coco", str(tmp_path / "coco"),
                           "--fraction", "0.5", "--seed", "0", "--layout-stats", str(stats), "--out", str(out)],
                          cwd=ROOT / "workflow", capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    sub = json.loads(out.read_text())
    kept = {im["id"] for im in sub["images"]}
    assert len(kept) == 5 and kept <= set(range(11, 21))
    assert {a["image_id"] for a in sub["annotations"]} == kept and sub["info"] == {"v": 1}
    assert subset_annotations(doc, kept)["images"] == sub["images"]


def test_cost_plan_counts_match_the_smoke_studys_plan_and_jobs(smoke):
    from conftest import SMOKE
    from rethink.core import cost_plan
    cfg = cost_plan.merged_config([str(SMOKE)])
    estimate = cost_plan.estimate(cfg)
    study = json.loads((smoke / "results/detection/study.json").read_text())
    for row in estimate["variants"]:
        v = study["variants"][row["variant"]]
        assert (row["forked_iterations"], row["separate_iterations"], row["train_images"]) == (
            v["forked_iterations"], v["separate_iterations"], v["train_images"])
    results = smoke / "results"
    assert estimate["stages"]["train"]["jobs"] == len(list(results.glob("benchmarks/train/**/*.tsv")))
    # evaluate jobs (a pretraining variant's scratch cells are main's, shared, not evaluated again)
    assert estimate["stages"]["evaluate"]["jobs"] == len(list(results.glob("benchmarks/evaluate/**/*.tsv")))
    shared = list(results.glob("eval/short/*/scratch/*/iter_*/metrics.json"))
    assert len(shared) == 4  # 2 seeds x (trunk end, 2x end)
    for path in shared:
        record, of_main = json.loads(path.read_text()), json.loads(
            (results / "eval/main" / path.relative_to(results / "eval/short")).read_text())
        assert record["shared_from"] == "main" and record["variant"] == "short"
        assert record["bbox"] == of_main["bbox"] and record["segm"] == of_main["segm"]
    assert estimate["stages"]["pretrain"]["jobs"] == len(list(results.glob("pretrain/*/backbone.pt")))
    assert estimate["separate_iterations"] > estimate["stages"]["train"]["iterations"]  # forking saves


def test_cost_plan_cli_prints_the_presets_gpu_hours(capsys):
    from conftest import ROOT
    from rethink import plan
    assert plan.main(["--configfile", str(ROOT / "workflow/presets/coco.yaml")]) == 0
    out = capsys.readouterr().out
    assert "pretrain" in out and "GPU-hours" in out and "forking the schedules saves" in out
    assert "pretrain/GN_vitb: 300 epochs, supervised" in out and "x R50-FPN's FLOPs an image" in out


def test_shared_runs_refuses_a_record_that_is_no_scratch_run(tmp_path):
    from rethink.analysis import shared_runs
    src, out = tmp_path / "metrics.json", tmp_path / "shared" / "metrics.json"
    src.write_text(json.dumps({"variant": "main", "init": "pretrained", "bbox": {}}))
    with pytest.raises(SystemExit, match=r"metrics.json: not the metrics of a scratch checkpoint \(init 'pretrained'\)"):
        shared_runs.main(["--metrics", str(src), "--variant", "pre6ep", "--out", str(out)])
    with pytest.raises(SystemExit, match="cannot read"):
        shared_runs.main(["--metrics", str(tmp_path / "gone.json"), "--variant", "pre6ep", "--out", str(out)])
    assert not out.exists()
    src.write_text(json.dumps({"variant": "main", "init": "scratch", "bbox": {"AP": 0.1}}))
    assert shared_runs.main(["--metrics", str(src), "--variant", "pre6ep", "--out", str(out)]) == 0
    assert json.loads(out.read_text()) == {"variant": "pre6ep", "init": "scratch", "bbox": {"AP": 0.1},
                                           "shared_from": "main"}


def test_cost_plan_prices_a_self_supervised_pre_training_by_its_method():
    """SimSiam's two views cost two supervised epochs; MAE's quarter of the patches a third."""
    from rethink.core import cost_plan
    from rethink.models.flops import relative_cost
    images, hours = 10**9, {}  # ImageNet-scale counts, so the tiny model's hours read in tenths
    for method in ("supervised", "simsiam"):
        cfg = default_config(study={"pretrainings": [{"name": "p", "method": method, "seed": 1}]})
        hours[method] = cost_plan.estimate(cfg, imagenet_train=images, scale=relative_cost)["stages"]["pretrain"]
    key = study_config.pretraining_key(study_config.variants(cfg)["p"])
    scale = relative_cost(study_config.pretrain_model_settings(cfg, key), False, cfg["pretrain"]["image_size"])
    extra = cost_plan.ANCHORS["pretrain"] * cfg["pretrain"]["epochs"] * images * scale / 3600  # one more supervised
    assert hours["simsiam"]["images_seen"] == hours["supervised"]["images_seen"]
    assert extra > 10 and hours["simsiam"]["gpu_hours"] - hours["supervised"]["gpu_hours"] == pytest.approx(extra, abs=0.2)


def test_cost_plan_prices_each_backbone_by_its_flops():
    """Counted FLOPs match the published ones (ResNet-50 at 224: 4.1 GMACs; ViT-B/16: 17.6,
    with a class token ours lacks); the COCO preset's R50 runs cost the anchors' rate, its
    R101, VGG-16 and ViT-B runs more in that order, each row's hours its images times the rate.
    Unscaled (the Snakefile's summary, which loads no torch) it names what it priced as R50."""
    from rethink.core import cost_plan
    from rethink.models.flops import model_flops, relative_cost
    cfg = cost_plan.merged_config([str(ROOT / "workflow/presets/coco.yaml")])
    r50 = study_config.model_settings(cfg, False)
    vitb = study_config.model_settings(cfg, False, variant=study_config.variants(cfg)["vitb"])
    assert model_flops(r50, False) / 2 == pytest.approx(4.1e9, rel=0.02)  # 2 FLOPs a multiply-add
    assert model_flops(vitb, False) / 2 == pytest.approx(17.6e9, rel=0.02)
    plan = cost_plan.estimate(cfg, scale=relative_cost)
    rows = {r["variant"]: r for r in plan["variants"]}
    assert rows["main"]["cost_vs_r50"] == rows["35k"]["cost_vs_r50"] == 1.0
    assert 1.0 < rows["R101"]["cost_vs_r50"] < rows["VGG16"]["cost_vs_r50"] < rows["vitb"]["cost_vs_r50"]
    assert rows["vitb_mae"]["cost_vs_r50"] == rows["vitb"]["cost_vs_r50"]  # the same detector
    for r in rows.values():
        rate = cost_plan.ANCHORS["detection_train"] * r["cost_vs_r50"]
        assert r["gpu_hours"] == pytest.approx(r["images_seen"] * rate / 3600, abs=0.1)
    assert plan["stages"]["train"]["gpu_hours"] == pytest.approx(sum(r["gpu_hours"] for r in rows.values()), abs=1)
    unscaled = cost_plan.estimate(cfg)
    assert {r["cost_vs_r50"] for r in unscaled["variants"]} == {1.0}
    assert unscaled["total_gpu_hours"] < plan["total_gpu_hours"]
    assert "vitb, keypoints" not in cost_plan.summary(unscaled)  # a head is no backbone of its own
    assert "R101, VGG16, vitb priced as R50 here" in cost_plan.summary(unscaled)
    assert "priced as R50 here" not in cost_plan.summary(plan)
