"""The COCO preset (workflow/presets/coco.yaml) planned against a fake dataset folder in the
real ImageNet and COCO layouts: the jobs it would run and their iteration counts."""
import json
import re

import pytest
import yaml
from PIL import Image

from conftest import ROOT, snakemake

PRESET = ROOT / "workflow/presets/coco.yaml"


def fake_datasets(root):
    """Real on-disk layouts with a few tiny images: nothing in a dry run reads more."""
    imagenet, coco = root / "imagenet", root / "coco"
    for split in ("train", "val"):
        folder = imagenet / split / "n01440764"
        folder.mkdir(parents=True)
        Image.new("RGB", (32, 32)).save(folder / f"n01440764_{split}.JPEG")
    (coco / "annotations").mkdir(parents=True)
    for split in ("train2017", "val2017"):
        (coco / split).mkdir()
        images = []
        for i in range(1, 4):
            Image.new("RGB", (64, 48)).save(coco / split / f"{i:012d}.jpg")
            images.append({"id": i, "file_name": f"{i:012d}.jpg", "width": 64, "height": 48})
        anns = [{"id": i, "image_id": i, "category_id": 1, "bbox": [4, 4, 20, 20], "area": 400,
                 "iscrowd": 0, "segmentation": [[4, 4, 24, 4, 24, 24, 4, 24]]} for i in range(1, 4)]
        doc = {"images": images, "annotations": anns, "categories": [{"id": 1, "name": "thing"}]}
        (coco / "annotations" / f"instances_{split}.json").write_text(json.dumps(doc))
        people = {**doc, "categories": [{"id": 1, "name": "person", "keypoints": [f"k{k}" for k in range(17)],
                                         "skeleton": [[1, 2]]}],
                  "annotations": [{**a, "keypoints": [10, 10, 2] * 17, "num_keypoints": 17} for a in anns]}
        (coco / "annotations" / f"person_keypoints_{split}.json").write_text(json.dumps(people))
    return imagenet, coco


@pytest.fixture(scope="module")
def preset_dry_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("preset")
    imagenet, coco = fake_datasets(tmp)
    override = tmp / "paths.yaml"
    override.write_text(yaml.safe_dump({"results": str(tmp / "results"),
                                        "data": {"imagenet": str(imagenet), "coco": str(coco)}}))
    out = snakemake("-n", "--quiet", "rules", "--configfile", str(PRESET), str(override)).stdout
    counts = {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", out.split("Job stats:")[1], re.M)}
    shell = snakemake("-n", "-p", "--configfile", str(PRESET), str(override)).stdout
    return counts, shell, tmp / "results"


def test_preset_is_the_papers_setup():
    cfg = yaml.safe_load(PRESET.read_text())
    assert cfg["model"]["depth"] == 50 and cfg["model"]["norm"] == "GN"
    assert (cfg["model"]["min_size"], cfg["model"]["max_size"]) == (800, 1333)
    det = cfg["detection"]
    assert (det["batch_size"], det["base_lr"], det["one_x"]) == (16, 0.02, 90000)
    assert det["schedules"] == [2, 3, 4, 5, 6] and det["warmup_iters"] > 0
    fractions = {r["name"]: r["fraction"] for r in cfg["study"]["regimes"]}
    for name, images in (("35k", 35000), ("10k", 10000), ("3.5k", 3500), ("1k", 1000)):
        assert fractions[name] * 118287 == pytest.approx(images, rel=1e-3)
    ref = cfg["figures"]["reference"]
    assert ref["schedules"]["scratch"]["6x"] == 41.3 and ref["regimes"]["3.5k"]["pretrained"] == 16.0


def test_preset_plans_every_variant_with_the_papers_iteration_counts(preset_dry_run):
    counts, shell, results = preset_dry_run
    # GN for main and regimes, BN for SyncBN, GN_R101, none_VGG16, GN_vitb, GN_vitb_mae
    assert counts["pretrain"] == 6
    assert counts["subset"] == 4
    # main: trunk to 6x - (60/90)x = 480k, checkpoints every 10k plus the forks at
    # 2x..6x - 60k; tails of 60k each with checkpoints at +10k..: per init and seed
    trunk = sorted(set(range(10000, 480001, 10000)) | {120000, 210000, 300000, 390000, 480000})
    tails = 5 * 6
    main = len(trunk) + tails
    syncbn = len(sorted(set(range(10000, 210001, 10000)) | {120000, 210000})) + 2 * 6
    per_init = main + syncbn + main  # R101: main's schedules, its own runs for both inits
    jobs_per_init = per_init  # checkpoints 10k apart, job_iters 10k: one checkpoint per job
    from rethink.core.schedule import make_plan
    for one_x, schedules, every in ((90000, [6], 10000), (30000, [2, 4, 7], 10000), (15000, [1, 2, 3], 5000),
                                    (6000, [1, 2, 3], 2000), (90000, [9, 11], 10000)):  # regimes, VGG16
        plan = make_plan(one_x, schedules, every)
        branches = ["trunk"] + [s.name for s in plan.schedules]
        per_init += sum(len(plan.checkpoints(b)) for b in branches)
        jobs_per_init += sum(len(plan.jobs(b, 10000)) for b in branches)  # 5k, 2k apart: 2, 5 a job
    keypoints = make_plan(90000, [2, 3], 10000)  # Mask R-CNN keypoints at 2x and 3x
    kp_branches = ["trunk"] + [s.name for s in keypoints.schedules]
    kp_evals = sum(len(keypoints.checkpoints(b)) for b in kp_branches)
    kp_jobs = sum(len(keypoints.jobs(b, 10000)) for b in kp_branches)
    # the enhanced baselines: main's data at 6x and 9x, scored with and without TTA
    enhanced = make_plan(90000, [6, 9], 10000)
    en_branches = ["trunk"] + [s.name for s in enhanced.schedules]
    per_init += sum(len(enhanced.checkpoints(b)) for b in en_branches)
    jobs_per_init += sum(len(enhanced.jobs(b, 10000)) for b in en_branches)
    # ViT-B/16 at 2x, 4x, 6x for both inits; its MAE pre-training's runs: the pretrained init alone
    vit = make_plan(90000, [2, 4, 6], 10000)
    vit_branches = ["trunk"] + [s.name for s in vit.schedules]
    vit_evals = sum(len(vit.checkpoints(b)) for b in vit_branches)
    vit_jobs = sum(len(vit.jobs(b, 10000)) for b in vit_branches)
    assert counts["evaluate"] == 2 * (per_init + kp_evals + vit_evals) + vit_evals
    assert counts["train"] == 2 * (jobs_per_init + kp_jobs + vit_jobs) + vit_jobs < counts["evaluate"]
    assert counts["share_scratch"] == vit_evals  # vitb_mae's scratch cells are vitb's
    # the paper's longest runs end where they should, with its LR and batch
    for init in ("scratch", "pretrained"):
        assert f"detection/main/seed0/{init}/6x/iter_540000.pt" in shell
        assert f"detection/10k/seed0/{init}/7x/iter_210000.pt" in shell
        assert f"detection/R101/seed0/{init}/6x/iter_540000.pt" in shell
        assert f"detection/VGG16/seed0/{init}/11x/iter_990000.pt" in shell
        assert f"detection/keypoints/seed0/{init}/3x/iter_270000.pt" in shell
        assert f"detection/enhanced/seed0/{init}/9x/iter_810000.pt" in shell
    assert "--end-iter 540000 --schedule-iters 540000" in shell
    assert '"base_lr":0.02' in shell and '"batch_size":16' in shell and '"min_size":800' in shell
    assert "--nproc-per-node 8" in shell
    # the 35k regime's re-tuned recipe, for both inits: LR 0.04, x0.02 at each drop, scales 512-800
    for init in ("scratch", "pretrained"):
        assert f"detection/35k/seed0/{init}/6x/iter_540000.pt" in shell
    assert '"base_lr":0.04' in shell and '"lr_decay":0.02' in shell and '"scales":[512,544' in shell


def test_preset_runs_r101_from_its_own_pre_training_against_the_papers_numbers(preset_dry_run):
    _, shell, _ = preset_dry_run
    assert "pretrain/GN_R101/backbone.pt" in shell and '"depth":101' in shell
    assert "pretrain/none_VGG16/backbone.pt" in shell and '"arch":"vgg","depth":16' in shell
    assert "pretrain/GN_vitb_mae/backbone.pt" in shell and '"method":"mae"' in shell
    assert '"arch":"vit","depth":12' in shell and '"patch_size":16' in shell
    ref = yaml.safe_load(PRESET.read_text())["figures"]["reference"]["variants"]["R101"]
    assert ref["scratch"]["6x"] == 42.7 and ref["pretrained"]["2x"] == 41.8


def test_preset_trains_keypoints_on_coco_s_person_keypoints_with_its_17_sigmas(preset_dry_run):
    _, shell, _ = preset_dry_run
    cfg = yaml.safe_load(PRESET.read_text())
    assert len(cfg["keypoints"]["sigmas"]) == 17 and cfg["keypoints"]["head"] == {"convs": 8, "channels": 512}
    assert "annotations/person_keypoints_train2017.json" in shell
    assert "--val-annotations" in shell and '"keypoints":{"num":17,"head":{"convs":8,"channels":512}}' in shell
    assert "rethink.data.check --keypoints" in shell
    ref = cfg["figures"]["reference"]["variants"]["keypoints"]
    assert ref["metric"] == "keypoints_AP" and (ref["scratch"]["2x"], ref["pretrained"]["2x"]) == (65.6, 65.5)


def test_paper_miniature_adds_the_model_task_dataset_and_recipe_variants_to_the_default(tmp_path):
    """Over the default: only the other backbones' pre-trainings and runs, the keypoint
    task's, the VOC dataset's, the enhanced recipe's and the 35k regime's runs are added."""
    miniature = ROOT / "workflow/presets/paper_miniature.yaml"
    results = ("--config", f"results={tmp_path}/results")
    def counts(*extra):
        out = snakemake("-n", "--quiet", "rules", *results, *extra).stdout
        return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", out.split("Job stats:")[1], re.M)}
    default, paper = counts(), counts("--configfile", str(miniature))
    models = yaml.safe_load(miniature.read_text())["study"]["models"]
    seeds = yaml.safe_load((ROOT / "config.yaml").read_text())["study"]["seeds"]
    assert {m["name"] for m in models} == {"R18", "wide", "VGG", "vit"}
    ssl = [p for p in yaml.safe_load(miniature.read_text())["study"]["pretrainings"] if p.get("method")]
    assert [(p["name"], p["method"], p.get("base", "main")) for p in ssl] == [("simsiam", "simsiam", "main"),
                                                                               ("vit_mae", "mae", "vit")]
    assert paper["pretrain"] == default["pretrain"] + len(models) + len(ssl) and paper["fig_models"] == 1
    # per model (and the keypoint task), seed and init: the trunk and the 1x, 2x and 6x tails
    tasks = yaml.safe_load(miniature.read_text())["study"]["tasks"]
    assert [t["task"] for t in tasks] == ["keypoints"] and paper["fig_keypoints"] == 1
    datasets, recipes = (yaml.safe_load(miniature.read_text())["study"][k] for k in ("datasets", "recipes"))
    assert [d["dataset"] for d in datasets] == ["voc"] and paper["fig_datasets"] == paper["fig_recipes"] == 1
    # the enhanced recipe at 6x and 9x: its trunk and two tails per seed and init; the 35k
    # regime (1x, 2x, 6x, its recipe re-tuned) and the paper's-epochs regime ep12 (1x, 2x, 4x,
    # 6x: a trunk and four tails) beside the default's three, two more subsets
    regimes = {r["name"]: r for r in yaml.safe_load(miniature.read_text())["study"]["regimes"]}
    assert list(regimes) == ["35k", "ep12", "10k", "3.5k", "1k"] and regimes["35k"]["base_lr"] == 0.04
    assert regimes["ep12"]["one_x"] * 8 / 200 == 12  # 1x = 12 epochs of its 200 images at batch 8
    assert paper["subset"] == default["subset"] + 2
    assert paper["train"] == (default["train"] + (len(models) + 1 + len(datasets) + 1) * seeds * 2 * 4
                              + seeds * 2 * 3 + seeds * 2 * 5 + len(ssl) * seeds * 4)  # SSL: pretrained alone
    assert paper["convert_voc"] == paper["synthesize_voc"] == 1 and "convert_voc" not in default
    assert paper["synthesize_keypoints"] == paper["check_keypoints"] == 1 and "check_keypoints" not in default


def test_voc_preset_runs_the_papers_r101_from_the_r101_pre_training_the_coco_preset_trains():
    """workflow/presets/voc.yaml over coco.yaml: the VOC study on an R101 (as the paper's),
    whose pretrained init is the R101 model variant's pre-training, trained once."""
    from rethink.core import config as study_config
    from rethink.core.cost_plan import estimate, merged_config
    cfg = merged_config([str(PRESET), str(ROOT / "workflow/presets/voc.yaml")])
    study_config.check(cfg)
    variants = study_config.variants(cfg)
    voc = variants["voc"]
    assert voc.dataset == "voc" and voc.model == {"depth": 101} and voc.shares_pretraining_of == "R101"
    assert study_config.pretraining_key(voc) == study_config.pretraining_key(variants["R101"]) == "GN_R101"
    # R50-GN, R50-BN (SyncBN), R101-GN, VGG-16, ViT-B and its MAE: six pre-trainings with VOC as without it
    with_voc, without = estimate(cfg)["stages"]["pretrain"], estimate(merged_config([str(PRESET)]))["stages"]["pretrain"]
    assert with_voc["jobs"] == without["jobs"] == 6 and with_voc["images_seen"] == without["images_seen"]
