"""The Snakemake workflow: planning, lint, config validation, an end-to-end smoke run of
the tiny config, and what reruns after edits."""
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml
from PIL import Image

from conftest import FIGURE_FILES, ROOT, SMOKE, SNAKEMAKE, copy_workflow, snakemake


def planned_jobs(*args, cwd=ROOT) -> dict:
    """{rule: count} of a dry run."""
    out = snakemake("-n", "--quiet", "rules", *args, cwd=cwd).stdout
    if "Nothing to be done" in out:
        return {}
    table = out.split("Job stats:")[1]
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M) if m[1] != "total"}


def test_dry_run_plans_every_stage(tmp_path):
    jobs = planned_jobs("--config", f"results={tmp_path}/results")
    assert set(jobs) == {"synthesize_imagenet", "synthesize_coco", "check_imagenet", "check_coco",
                         "pretrain", "subset", "study", "train", "evaluate", "collect_metrics",
                         "fig_ap_curves", "fig_final_ap", "fig_lead", "fig_less_data", "fig_norms", "compute_seen",
                         "world_stats", "fig_compute_seen", "fig_pretrain_curve", "claims", "table_final_metrics",
                         "table_job_costs", "share_scratch", "fig_pretrain_strength", "all"}
    cfg = yaml.safe_load((ROOT / "config.yaml").read_text())
    from rethink.core.config import seeds, variants
    branches = [(v, b) for v in variants(cfg).values() for b in ["trunk"] + [s.name for s in v.plan.schedules]]
    checkpoints = {v.name: sum(len(v.plan.checkpoints(b)) for u, b in branches if u is v) for v, _ in branches}
    inits = {v.name: 1 if v.shares_scratch else 2 for v, _ in branches}  # pre6ep: pretrained only
    n = len(seeds(cfg))
    # one training job per branch (detection.job_iters: null), one evaluate job per checkpoint
    assert jobs["train"] == n * sum(inits[v.name] for v, _ in branches)
    assert jobs["evaluate"] == n * sum(inits[v] * c for v, c in checkpoints.items()) > jobs["train"]
    assert jobs["share_scratch"] == n * checkpoints["pre6ep"]  # its scratch cells are main's
    assert jobs["subset"] == len(cfg["study"]["regimes"])
    assert jobs["pretrain"] == 3  # GN, BN for the SyncBN variant, GN_pre6ep for pre6ep


def test_curve_checkpoints_are_scored_on_the_first_val_images_and_schedule_ends_on_all(tmp_path):
    shell = snakemake("-n", "-p", "--config", f"results={tmp_path}/results").stdout
    jobs = [line for line in shell.splitlines() if "rethink.evaluation.job" in line]
    trunk = [j for j in jobs if "eval/main/seed0/scratch/trunk/iter_000020/metrics.json" in j]
    end = [j for j in jobs if "eval/main/seed0/scratch/6x/iter_000360/metrics.json" in j]
    assert len(trunk) == len(end) == 1
    assert "--val-images 100" in trunk[0] and "--val-images" not in end[0]


def test_a_model_variant_plans_its_pre_training_and_both_inits(tmp_path):
    override = tmp_path / "models.yaml"
    override.write_text("study: {models: [{name: R18, depth: 18, schedules: [1, 6]}]}\n")
    base = planned_jobs("--config", f"results={tmp_path}/results")
    jobs = planned_jobs("--config", f"results={tmp_path}/results", "--configfile", str(override))
    assert jobs["pretrain"] == base["pretrain"] + 1 and jobs["fig_models"] == 1
    seeds = yaml.safe_load((ROOT / "config.yaml").read_text())["study"]["seeds"]
    assert jobs["train"] == base["train"] + seeds * 2 * 3  # per init: trunk, 1x, 6x
    shell = snakemake("-n", "-p", "--config", f"results={tmp_path}/results", "--configfile", str(override)).stdout
    assert "results/pretrain/GN_R18/backbone.pt" in shell and '"depth":18' in shell
    # from a given backbone (a ResNet of model.*'s shape) the variant is left out, saying so
    ckpt = tmp_path / "r10.pt"
    ckpt.write_bytes(b"PK\x03\x04")
    given = snakemake("-n", "--config", f"results={tmp_path}/results", f"pretrain={{checkpoint: '{ckpt}'}}",
                      "--configfile", str(override))
    assert "study.models left out" in given.stderr and "GN_R18" not in given.stdout


def test_a_dataset_variant_on_a_model_variant_s_backbone_shares_its_pre_training(tmp_path):
    """The paper's VOC study on its R101: a dataset variant that sets a model variant's
    backbone starts from that variant's pre-training, planned once."""
    models = "{models: [{name: R18, depth: 18, schedules: [1]}]"
    alone, both = tmp_path / "alone.yaml", tmp_path / "both.yaml"
    alone.write_text(f"study: {models}}}\n")
    both.write_text(f"study: {models}, datasets: [{{name: voc, dataset: voc, depth: 18, schedules: [1]}}]}}\n")
    results = f"results={tmp_path}/results"
    jobs, base = (planned_jobs("--config", results, "--configfile", str(f)) for f in (both, alone))
    assert jobs["pretrain"] == base["pretrain"] and jobs["convert_voc"] == 1
    shell = snakemake("-n", "-p", "--config", results, "--configfile", str(both)).stdout
    trunks = [job for job in shell.split("\n\n") if re.search(r"--out \S*/detection/voc/seed0/pretrained/trunk/", job)]
    assert len(trunks) == 1 and "--backbone" in trunks[0] and "pretrain/GN_R18/backbone.pt" in trunks[0]
    assert '"depth":18' in trunks[0] and '"masks":false' in trunks[0]
    assert "GN_voc" not in shell


def test_given_backbone_checkpoint_skips_pretraining(tmp_path):
    ckpt = tmp_path / "my backbone.pt"
    ckpt.write_bytes(b"PK\x03\x04")  # a torch.save zip, as far as the DAG's format sniffing reads
    given = ("--config", f"results={tmp_path}/results", f"pretrain={{checkpoint: '{ckpt}'}}")
    # it replaces the GN pre-training; the SyncBN variant's BN backbone is still pre-trained,
    # and study.pretrainings (variations of our own GN pre-training) are left out, saying so
    jobs = planned_jobs(*given)
    assert jobs["pretrain"] == 1 and "train" in jobs and "share_scratch" not in jobs
    assert "study.pretrainings left out" in snakemake("-n", *given).stderr
    main_only = tmp_path / "main_only.yaml"
    main_only.write_text("study: {seeds: 1, norms: [], regimes: []}\n")
    jobs = planned_jobs(*given, "--configfile", str(main_only))
    assert "pretrain" not in jobs and "synthesize_imagenet" not in jobs and "check_imagenet" not in jobs
    assert "train" in jobs and jobs["import_backbone"] == 1  # checked and converted before training


def test_lint_passes():
    proc = snakemake("--lint", check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


CONFIG_CASES = [  # (override, the key the error must name)
    ("detectionn={batch_size: 2}", "detectionn"),            # a typo in a key
    ("detection={batch_size: eight}", "batch_size"),         # a wrong type
    ("model={depth: 12}", "depth"),                          # a value out of its set
    ("detection={base_lr: -0.1}", "base_lr"),                # a negative LR
    ("detection={warmup_iters: 500}", "warmup_iters"),       # a schedule shorter than its warm-up
    ("data={corrupt_images: skip, verify_images: none}", "verify_images"),
    ("pretrain={input: {channels: BGRA}}", "input"),          # conventions that are none
    ("pretrain={checkpoint: README.md}", "not a backbone format"),  # a file that is no backbone
]


@pytest.mark.parametrize("override, key", CONFIG_CASES)
def test_bad_config_fails_before_anything_runs_naming_the_key(tmp_path, override, key):
    proc = snakemake("-n", "--config", f"results={tmp_path}/results", override, check=False)
    assert proc.returncode != 0
    assert key in proc.stdout + proc.stderr
    assert not (tmp_path / "results").exists()


def test_smoke_run_produces_every_figure_and_table(smoke):
    results = smoke / "results"
    for name in FIGURE_FILES:
        path = results / name
        assert path.is_file() and path.stat().st_size > 0, name
    with Image.open(results / "figures/ap_curves.png") as im:
        assert im.size[0] > 300 and im.size[1] > 200
    assert (results / "figures/final_ap.pdf").read_bytes().startswith(b"%PDF")
    table = (results / "tables/final_metrics.md").read_text()
    assert "1x" in table and "2x" in table and "scratch" in table
    costs = (results / "tables/job_costs.md").read_text()
    assert all(stage in costs for stage in ("pretrain", "train", "evaluate"))
    tidy = pd.read_csv(results / "metrics/all_metrics.csv")  # one line, as documented
    assert set(tidy.columns) == {"variant", "seed", "init", "branch", "iteration", "task", "metric", "value"}
    assert set(tidy["variant"]) == {"main", "SyncBN", "half", "short", "plain", "kp", "voc", "enh"}
    assert set(tidy["seed"]) == {0, 1}
    # checkpoints (main: 4 per init, SyncBN, half, short, plain, kp, enh and voc: 2) x inits x seeds
    # x tasks x COCO numbers (box-only voc: 1 task; enh: 2 more, with test-time augmentation), kp's
    # 10 keypoint numbers and voc's VOC mAP
    assert len(tidy) == (4 + 2 + 2 + 2 + 2 + 2 + 2 * 2) * 2 * 2 * 2 * 12 + 2 * 2 * 2 * 12 + 2 * 2 * 2 * (10 + 1)
    pre = json.loads((results / "pretrain/GN/metrics.json").read_text())
    assert 0 <= pre["top1"] <= 1 and pre["images_seen"] > 0


def test_a_model_variants_checkpoints_are_of_its_own_model_for_both_inits(smoke):
    """The smoke study's `plain` variant (a VGG-11 without any normalisation, where main is a
    GN ResNet-10): its own pre-training, and every checkpoint of either init of that model."""
    import torch
    results = smoke / "results"
    backbone = torch.load(results / "pretrain/none_plain/backbone.pt", weights_only=False)
    assert {k: backbone["meta"]["model"][k] for k in ("arch", "depth", "norm")} == {"arch": "vgg", "depth": 11, "norm": "none"}
    assert json.loads((results / "pretrain/none_plain/metrics.json").read_text())["epochs"] == \
        json.loads((results / "pretrain/GN/metrics.json").read_text())["epochs"]  # main's recipe
    for init in ("scratch", "pretrained"):
        plain = torch.load(results / f"detection/plain/seed0/{init}/1x/iter_000006.pt", weights_only=False)["model"]
        main = torch.load(results / f"detection/main/seed0/{init}/1x/iter_000006.pt", weights_only=False)["model"]
        assert any(k.startswith("backbone.body.layer4.") for k in plain) and "backbone.body.stem.0.bias" in plain
        assert not any(k.startswith("backbone.body.stem.") for k in main)
        # no norm anywhere: no GroupNorm (or BN) weights in backbone, FPN or heads; main has them
        norms = lambda state: [k for k, v in state.items() if k.endswith("running_mean") or
                               (k.endswith(".weight") and v.dim() == 1)]
        assert norms(plain) == [] and norms(main), init
    study = json.loads((results / "detection/study.json").read_text())["variants"]["plain"]
    assert study["kind"] == "model" and study["norm"] == "none"
    assert study["backbone"] == {"arch": "vgg", "depth": 11, "width": 16, "norm": "none"}
    assert study["pretrain"]["epochs"] == 2 and "scratch_from" not in study
    claims = pd.read_csv(results / "tables/claims.csv")
    assert list(claims[claims["variant"] == "plain"]["claim"]) == [1, 1, 2, 2, 3, 3]  # box and mask
    assert "By model (`study.models`)" in (results / "tables/claims.md").read_text()


def test_a_vit_model_variant_pre_trains_trains_and_scores_both_inits(tmp_path):
    """A `study.models` entry with arch: vit (issue 35): its own classification pre-training,
    then both inits of a ViT Mask R-CNN (ViTDet's simple feature pyramid) trained and scored
    as any model variant's, through the rules alone."""
    import torch
    work = copy_workflow(tmp_path / "vit")
    override = work / "vit.yaml"
    override.write_text(yaml.safe_dump({
        "model": {"vit": {"patch_size": 8, "heads": 2, "mlp_ratio": 2.0, "pos_size": 32}},
        "study": {"seeds": 1, "norms": [], "regimes": [], "pretrainings": [], "tasks": [], "datasets": [],
                  "recipes": [], "models": [{"name": "vit", "arch": "vit", "depth": 2, "width": 32,
                                             "schedules": [1]}]}}))
    targets = [f"results/eval/vit/seed0/{init}/1x/iter_000006/metrics.json" for init in ("scratch", "pretrained")]
    snakemake("--cores", "2", *targets, "--configfile", str(SMOKE), str(override), cwd=work)
    backbone = torch.load(work / "results/pretrain/GN_vit/backbone.pt", weights_only=False)
    assert backbone["meta"]["model"]["arch"] == "vit" and "pos_embed" in backbone["model"]
    for init in ("scratch", "pretrained"):
        state = torch.load(work / f"results/detection/vit/seed0/{init}/1x/iter_000006.pt", weights_only=False)["model"]
        assert "backbone.body.pos_embed" in state and "backbone.levels.0.0.weight" in state
        metrics = json.loads((work / f"results/eval/vit/seed0/{init}/1x/iter_000006/metrics.json").read_text())
        assert metrics["evaluation"]["model"]["arch"] == "vit" and 0 <= metrics["bbox"]["AP"] <= 1


def test_self_supervised_pretrainings_are_a_third_init_of_main_and_of_a_vit(tmp_path):
    """Issue 35: `study.pretrainings` entries with `method: simsiam` (on main's ResNet) and
    `method: mae` with `base: vit` (on a study.models ViT): each pre-trains without labels, its
    pretrained runs train from that backbone, its scratch runs are its base's (shared, not
    trained again), and the claims table asks claim 9 (ahead of supervised) of each beside
    claims 1-3; the pre-training figure draws a row per base."""
    work = copy_workflow(tmp_path / "ssl")
    override = work / "ssl.yaml"
    override.write_text(yaml.safe_dump({
        "model": {"vit": {"patch_size": 8, "heads": 2, "mlp_ratio": 2.0, "pos_size": 32}},
        "study": {"seeds": 2, "norms": [], "regimes": [], "tasks": [], "datasets": [], "recipes": [],
                  "models": [{"name": "vit", "arch": "vit", "depth": 2, "width": 32,
                              "pretrain": {"optimizer": "adamw", "lr": 0.004, "weight_decay": 0.05}}],
                  "pretrainings": [{"name": "simsiam", "method": "simsiam", "lr": 0.05, "crop_scale": [0.2, 1.0]},
                                   {"name": "vit_mae", "base": "vit", "method": "mae", "crop_scale": [0.2, 1.0]}]}}))
    snakemake("--cores", "2", "results/tables/claims.csv", "results/figures/pretrain_strength.png",
              "--configfile", str(SMOKE), str(override), cwd=work)
    results = work / "results"
    for key, method in (("GN_simsiam", "simsiam"), ("GN_vit_mae", "mae"), ("GN_vit", "supervised")):
        m = json.loads((results / f"pretrain/{key}/metrics.json").read_text())
        assert m["method"] == method and m["monitor"] == ("val top-1" if method == "supervised" else "kNN top-1")
    study = json.loads((results / "detection/study.json").read_text())
    assert study["variants"]["vit_mae"]["scratch_from"] == "vit"
    assert study["variants"]["vit_mae"]["pretrain_overrides"] == {"optimizer": "adamw", "lr": 0.004,
                                                                   "weight_decay": 0.05, "method": "mae",
                                                                   "crop_scale": [0.2, 1.0]}
    shared = json.loads((results / "eval/vit_mae/seed1/scratch/2x/iter_000012/metrics.json").read_text())
    assert shared["shared_from"] == "vit" and shared["evaluation"]["model"]["arch"] == "vit"
    assert not (results / "detection/vit_mae/seed0/scratch").exists()  # not trained again
    mae_run = json.loads((results / "eval/vit_mae/seed0/pretrained/2x/iter_000012/metrics.json").read_text())
    assert mae_run["evaluation"]["model"]["arch"] == "vit"
    claims = pd.read_csv(results / "tables/claims.csv")
    for name, label in (("simsiam", "SimSiam"), ("vit_mae", "MAE")):
        rows = claims[claims["variant"] == name]
        assert list(rows["claim"]) == [1, 1, 2, 2, 3, 3, 9, 9]
        nine = rows[rows["claim"] == 9]
        assert set(nine["verdict"]) <= {"holds", "refuted", "inconclusive"}
        assert all(f"{label} " in t and "vs supervised" in t for t in nine["this_run"]), list(nine["this_run"])
    assert 9 not in set(claims[claims["variant"] == "vit"]["claim"])  # supervised: no claim 9
    assert "claim 9" in (results / "tables/claims.md").read_text()


def test_a_keypoint_variant_trains_and_scores_keypoints_for_both_inits(smoke, tmp_path):
    """The smoke study's `kp` task variant: main's model plus a keypoint head, trained on the
    synthetic world's person_keypoints files and scored with COCOeval's keypoint AP."""
    import torch

    from rethink.data.coco import load_coco
    from rethink.evaluation.evaluate import KEYPOINT_SUMMARY_KEYS, coco_metrics
    results = smoke / "results"
    layout = json.loads((results / "checks/keypoints_layout.json").read_text())["keypoints"]
    assert layout["keypoint_names"] == ["top", "right", "bottom", "left", "centre"]
    for init in ("scratch", "pretrained"):
        kp = torch.load(results / f"detection/kp/seed0/{init}/1x/iter_000006.pt", weights_only=False)["model"]
        main = torch.load(results / f"detection/main/seed0/{init}/1x/iter_000006.pt", weights_only=False)["model"]
        head = {k for k in kp if k.startswith("roi_heads.keypoint_")}
        assert head and set(kp) - head == set(main)  # main's model plus the head
    gt, _ = load_coco(results / "data/coco", "val", results / "data/keypoints/person_keypoints_val2017.json")
    final = results / "eval/kp/seed1/pretrained/1x/iter_000006"
    metrics = json.loads((final / "metrics.json").read_text())
    assert list(metrics["keypoints"]) == KEYPOINT_SUMMARY_KEYS
    sigmas = metrics["evaluation"]["model"]["oks_sigmas"]
    rescored = coco_metrics(gt, json.loads((final / "keypoints_results.json").read_text()), "keypoints",
                            backend="pycocotools", oks_sigmas=sigmas)["summary"]
    assert rescored == pytest.approx(metrics["keypoints"], abs=1e-9)
    study = json.loads((results / "detection/study.json").read_text())["variants"]["kp"]
    assert study["kind"] == "task" and study["task"] == "keypoints"
    claims = pd.read_csv(results / "tables/claims.csv")
    assert list(claims[claims["variant"] == "kp"]["claim"]) == [6]
    assert "By task (`study.tasks`)" in (results / "tables/claims.md").read_text()
    # the OKS sigmas only score: editing them re-scores the keypoint checkpoints, trains nothing
    override = tmp_path / "sigmas.yaml"
    override.write_text("keypoints: {sigmas: [0.05, 0.05, 0.05, 0.05, 0.05]}\n")
    jobs = planned_jobs("--configfile", str(SMOKE), str(override), cwd=smoke)
    assert "train" not in jobs and jobs["evaluate"] == 8  # the keypoint variant's 8 alone


def test_a_dataset_variant_trains_a_box_only_model_on_its_voc_sets_for_both_inits(smoke, tmp_path):
    """The smoke study's `voc` dataset variant: the synthetic world's VOC-layout scenes,
    checked and converted once, main's model without its mask head, scored with VOC mAP."""
    import torch

    from rethink.evaluation.voc_eval import voc_map
    results = smoke / "results"
    report = json.loads((results / "checks/voc_layout.json").read_text())
    assert report["train"]["images"] == 12 and report["val"]["images"] == 6
    for init in ("scratch", "pretrained"):
        voc = torch.load(results / f"detection/voc/seed0/{init}/1x/iter_000006.pt", weights_only=False)["model"]
        main = torch.load(results / f"detection/main/seed0/{init}/1x/iter_000006.pt", weights_only=False)["model"]
        assert not any(k.startswith("roi_heads.mask_") for k in voc)  # boxes only
        assert set(voc) == {k for k in main if not k.startswith("roi_heads.mask_")}
    final = results / "eval/voc/seed1/pretrained/1x/iter_000006"
    metrics = json.loads((final / "metrics.json").read_text())
    assert "segm" not in metrics and set(metrics["voc"]) == {"mAP"} and not (final / "segm_results.json").exists()
    gt = json.loads((results / "data/voc/instances_val.json").read_text())
    rescored = voc_map(gt, json.loads((final / "bbox_results.json").read_text()))
    assert rescored["mAP"] == pytest.approx(metrics["voc"]["mAP"], abs=1e-12)
    study = json.loads((results / "detection/study.json").read_text())["variants"]["voc"]
    assert study["kind"] == "dataset" and study["dataset"] == "voc" and study["train_images"] == 12
    claims = pd.read_csv(results / "tables/claims.csv")
    assert list(claims[claims["variant"] == "voc"]["claim"]) == [7]
    assert "By dataset (`study.datasets`)" in (results / "tables/claims.md").read_text()


def test_a_recipe_variant_is_scored_with_and_without_test_time_augmentation(smoke, tmp_path):
    """The smoke study's `enh` recipe: scale augmentation for both inits, every checkpoint
    scored plainly and with test-time augmentation (both in metrics.json and the tidy CSV);
    test-time augmentation is an evaluation key: editing it re-scores, trains nothing."""
    results = smoke / "results"
    metrics = json.loads((results / "eval/enh/seed0/scratch/2x/iter_000012/metrics.json").read_text())
    assert metrics["evaluation"]["model"]["tta"] == {"scales": [56, 64], "flip": True}
    assert set(metrics["bbox_tta"]) == set(metrics["bbox"]) and set(metrics["segm_tta"]) == set(metrics["segm"])
    main = json.loads((results / "eval/main/seed0/scratch/2x/iter_000012/metrics.json").read_text())
    assert "bbox_tta" not in main and "tta" not in main["evaluation"]["model"]
    tidy = pd.read_csv(results / "metrics/all_metrics.csv")
    assert set(tidy[tidy["variant"] == "enh"]["task"]) == {"bbox", "segm", "bbox_tta", "segm_tta"}
    claims = pd.read_csv(results / "tables/claims.csv")
    assert list(claims[claims["variant"] == "enh"]["claim"]) == [2, 2, 8]  # box, mask; box with TTA
    override = tmp_path / "tta.yaml"
    override.write_text(SMOKE.read_text().replace("tta: {scales: [56, 64], flip: true}", "tta: {scales: [64], flip: true}"))
    jobs = planned_jobs("--configfile", str(override), cwd=smoke)
    assert "train" not in jobs and jobs["evaluate"] == 8  # the recipe's 8 alone


def test_smoke_metrics_are_rescorable_with_pycocotools(smoke):
    from rethink.data.coco import load_coco
    from rethink.evaluation.evaluate import SUMMARY_KEYS, coco_metrics
    gt, _ = load_coco(smoke / "results/data/coco", "val")
    final = smoke / "results/eval/main/seed1/pretrained/2x/iter_000012"
    metrics = json.loads((final / "metrics.json").read_text())
    assert set(metrics["bbox"]) == set(metrics["segm"]) == set(SUMMARY_KEYS)
    assert set(metrics["per_category"]["bbox"]) == {c["name"] for c in gt.dataset["categories"]}
    for task in ("bbox", "segm"):
        results = json.loads((final / f"{task}_results.json").read_text())
        assert len(results) == metrics["num_detections"]
        rescored = coco_metrics(gt, results, task)["summary"]
        assert rescored == pytest.approx(metrics[task], abs=1e-9)


def test_second_run_has_nothing_to_do(smoke):
    t0 = time.perf_counter()
    jobs = planned_jobs("--configfile", str(SMOKE), cwd=smoke)
    print(f"\nno-op dry run: {time.perf_counter() - t0:.2f} s")
    assert jobs == {}


def test_the_first_seed_pass_of_make_run_is_part_of_the_full_run(smoke):
    """`make run` runs the study at one seed first (workflow/presets/first_seed.yaml), then at
    all: the seed count must not be a rerun trigger of any data, training or evaluation job,
    or the second pass would redo the first (here the other way round: after the full run,
    the one-seed pass has only the study file, tables and figures to redo)."""
    first_seed = ROOT / "workflow/presets/first_seed.yaml"
    jobs = planned_jobs("--configfile", str(SMOKE), str(first_seed), cwd=smoke)
    assert jobs and "claims" in jobs
    assert not {"train", "evaluate", "pretrain", "subset", "synthesize_coco", "check_coco"} & set(jobs), jobs


def test_figure_only_config_key_reruns_only_figures(smoke, tmp_path):
    override = tmp_path / "dpi.yaml"
    override.write_text("figures: {dpi: 72}\n")
    jobs = planned_jobs("--configfile", str(SMOKE), str(override), cwd=smoke)
    assert set(jobs) == {"fig_ap_curves", "fig_final_ap", "fig_lead", "fig_less_data", "fig_norms",
                         "fig_compute_seen", "fig_pretrain_curve", "fig_pretrain_strength", "fig_models",
                         "fig_keypoints", "fig_datasets", "fig_recipes", "all"}
    override.write_text("claims: {margin: 0.5}\n")  # the claims, and the figure that draws the margin
    assert set(planned_jobs("--configfile", str(SMOKE), str(override), cwd=smoke)) == {"claims", "fig_lead", "all"}


@pytest.mark.parametrize("override", ["evaluate: {batch_size: 2, backend: pycocotools}",
                                      "model: {score_thresh: 0.2}"])
def test_evaluation_only_key_plans_no_training_job(smoke, tmp_path, override):
    path = tmp_path / "eval.yaml"
    path.write_text(override + "\n")
    jobs = planned_jobs("--configfile", str(SMOKE), str(path), cwd=smoke)
    assert "train" not in jobs and "pretrain" not in jobs
    # every checkpoint, re-scored: 48, and 4 of the pretraining variant's (its scratch is main's);
    # and the keypoint and the dataset variant's 8 each, on their own val files
    assert jobs["evaluate"] == 52 + 8 + 8
    assert "collect_metrics" in jobs


def test_editing_a_figure_script_reruns_only_that_figure(smoke):
    results = smoke / "results"
    before = {name: (results / name).stat().st_mtime_ns for name in FIGURE_FILES}
    script = smoke / "workflow/rethink/figures/final_ap.py"
    script.write_text(script.read_text() + "\n# edited\n")
    assert set(planned_jobs("--configfile", str(SMOKE), cwd=smoke)) == {"fig_final_ap", "all"}
    snakemake("--cores", "2", "--configfile", str(SMOKE), cwd=smoke)
    after = {name: (results / name).stat().st_mtime_ns for name in FIGURE_FILES}
    changed = {name for name in FIGURE_FILES if after[name] != before[name]}
    assert changed == {"figures/final_ap.png", "figures/final_ap.pdf"}
    assert planned_jobs("--configfile", str(SMOKE), cwd=smoke) == {}


def test_missing_real_dataset_folder_fails_naming_it(tmp_path):
    missing = tmp_path / "no such coco"
    results = tmp_path / "results"
    proc = snakemake("--cores", "1", f"{results}/checks/coco_layout.json", "--config",
                     f"results={results}", f"data={{coco: '{missing}'}}", check=False)
    assert proc.returncode != 0
    assert str(missing) in proc.stderr and "does not exist" in proc.stderr
    assert "config key data.coco" in proc.stderr and "instances_val2017.json" in proc.stderr
    assert not (results / "checks/coco_layout.json").exists()


def test_corrupt_image_in_real_coco_fails_naming_the_file(tmp_path):
    from rethink.data import writers
    from tiny import tiny
    coco = tmp_path / "coco"
    writers.generate_coco(coco, tiny()[0], seed=1)
    victim = sorted((coco / "val2017").iterdir())[2]
    victim.write_bytes(victim.read_bytes()[:200])  # truncated JPEG
    results = tmp_path / "results"
    proc = snakemake("--cores", "1", f"{results}/checks/coco_layout.json", "--config",
                     f"results={results}", f"data={{coco: '{coco}'}}", check=False)
    assert proc.returncode != 0
    assert victim.name in proc.stderr
    assert not (results / "checks/coco_layout.json").exists()


def test_use_conda_without_conda_explains_the_pip_route(tmp_path):
    env_path = os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep)
                               if not (Path(p) / "conda").exists())
    proc = subprocess.run([*SNAKEMAKE, "-n", "--use-conda", "--config", f"results={tmp_path}"],
                          cwd=ROOT, capture_output=True, text=True, env={**os.environ, "PATH": env_path})
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    assert "neither conda nor mamba" in out and "make setup" in out


def test_paths_with_spaces_and_shell_metacharacters_work_and_inject_nothing(tmp_path):
    nasty = "dir with spaces; $(touch PWNED) `touch PWNED2` & 'quote' \"dq\""
    work = copy_workflow(tmp_path / nasty / "workflow copy")
    results = tmp_path / nasty / "res ults"
    override = tmp_path / "results.yaml"
    # every variant kind and rule (their shell lines are what is tested), one seed
    override.write_text(yaml.safe_dump({"results": str(results), "study": {"seeds": 1}}))
    snakemake("--cores", "2", "--configfile", str(SMOKE), str(override), cwd=work)
    for name in FIGURE_FILES:
        assert (results / name).is_file(), name
    injected = [p for p in tmp_path.rglob("PWNED*")] + [p for p in Path.cwd().glob("PWNED*")]
    assert not injected, injected


def test_jobs_run_with_the_python_that_runs_snakemake(tmp_path):
    """Snakemake started by path (as `.venv/bin/snakemake` is, with no environment activated
    and another `python` first on PATH): its jobs still get its interpreter and packages."""
    work = copy_workflow(tmp_path / "interp")
    decoy = tmp_path / "decoy"
    decoy.mkdir()
    (decoy / "python").write_text("#!/bin/sh\necho 'decoy python: not the environment' >&2\nexit 3\n")
    (decoy / "python").chmod(0o755)
    env = {**os.environ, "PATH": f"{decoy}:/usr/bin:/bin"}
    env.pop("PYTHONPATH", None)
    script = Path(sys.executable).parent / "snakemake"
    started = [str(script)] if script.exists() else SNAKEMAKE
    proc = subprocess.run([*started, "results/checks/coco_layout.json", "--cores", "1",
                           "--configfile", str(SMOKE)], cwd=work, env=env,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert json.loads((work / "results/checks/coco_layout.json").read_text())["coco"]["train"]["images"] == 24
