"""What a study will cost, before it is launched: per stage the jobs, iterations, images
seen and GPU-hours, and the GPU-hours that forking the schedules saves.

GPU-hours come from per-image GPU-seconds: those `rethink.engine.gpu_check` measured on your GPU
(--throughput its JSON: the bf16 rows), else published anchors (ANCHORS, below), both for
R50-FPN; another backbone's are scaled by `scale` (rethink.models.flops, by its FLOPs; torch,
so the Snakefile's one-line summary goes without). The counts are the workflow's own
(rethink.core.config's variants and plans, as study.json records them). Its command is
rethink.plan's.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import yaml

from rethink.core import config as study_config
from rethink.core.study import subset_size

# GPU-seconds per image, published: detectron2's scratch GN 3x Mask R-CNN R50-FPN trains at
# 0.338 s per 16-image iteration on 8 V100s; ResNet-50 ImageNet training, Goyal et al. 2017:
# 90 epochs of 1,281,167 images in about 29 hours on 8 P100s; inference: detectron2's model zoo
# lists about 0.043 s per image for R50-FPN Mask R-CNN on a V100.
ANCHORS = {"detection_train": 0.338 * 8 / 16, "pretrain": 8 * 29 * 3600 / (90 * 1_281_167),
           "inference": 0.043}
ANCHOR_SOURCES = {"detection_train": "detectron2 scratch GN 3x, 8 V100",
                  "pretrain": "Goyal et al. 2017, 8 P100", "inference": "detectron2 model zoo, V100"}
# a pre-training epoch's cost relative to a supervised one, per pretrain.method: SimSiam runs the
# encoder on two views of each image (its paper: about 2x a supervised epoch); MAE's encoder sees a
# quarter of the patches and its decoder is light (its paper: 3x or more faster than the encoder on all)
METHOD_COST = {"supervised": 1.0, "simsiam": 2.0, "mae": 1 / 3}
COCO_TRAIN, COCO_VAL, IMAGENET_TRAIN, IMAGENET_VAL = 118_287, 5_000, 1_281_167, 50_000
VOC_TRAIN, VOC_VAL = 5_011 + 5_717, 5_823  # trainval2007 + train2012, val2012 (the paper's VOC sets)
ROOT = Path(__file__).resolve().parents[3]  # the repository


def merged_config(configfiles: list[str]) -> dict:
    """config.yaml with each --configfile merged over it, as snakemake --configfile does."""
    from snakemake.utils import update_config
    cfg = yaml.safe_load((ROOT / "config.yaml").read_text())
    for path in configfiles:
        update_config(cfg, yaml.safe_load(Path(path).read_text()) or {})
    return cfg


def measured_seconds(path: str) -> dict:
    """GPU-seconds per image from a gpu_check JSON (its bf16 rows), per stage."""
    doc = json.loads(Path(path).read_text())
    out = {}
    rows = {r["mode"]: r for r in doc.get("results", [])}
    if "bf16" in rows and rows["bf16"].get("img_per_s"):
        out["detection_train"] = 1 / rows["bf16"]["img_per_s"]
    pre = {r["mode"]: r for r in doc.get("pretrain", [])}
    if "bf16" in pre and pre["bf16"].get("img_per_s"):
        out["pretrain"] = 1 / pre["bf16"]["img_per_s"]
    return out


# scale(model config, detection?, image size): a model's per-image cost relative to the anchors'
# R50 (rethink.models.flops.relative_cost); without one, every backbone costs R50's
Scale = Callable[[dict, bool, int], float]


def at_r50(model_cfg: dict, detection: bool, image_size: int) -> float:
    return 1.0


def cost_plan(cfg: dict, seconds: dict, coco_train: int, coco_val: int, imagenet_train: int,
              voc: tuple[int, int] = (VOC_TRAIN, VOC_VAL), scale: Scale = at_r50) -> dict:
    """`voc`: (train, val) images of a dataset variant's VOC sets."""
    variants = study_config.variants(cfg)
    seeds, inits = study_config.seeds(cfg), cfg["detection"]["inits"]
    job_iters = cfg["detection"]["job_iters"]
    rows, detection = [], {"jobs": 0, "evaluations": 0, "iterations": 0, "separate_iterations": 0, "images": 0,
                           "evaluation_images": 0, "gpu_seconds": 0.0, "evaluation_gpu_seconds": 0.0}
    for v in variants.values():
        cells = len(seeds) * (1 if v.shares_scratch else len(inits))  # shared scratch: main's runs
        branches = ["trunk"] + [s.name for s in v.plan.schedules]
        bs = v.detection["batch_size"]
        train, val = voc if v.dataset else (coco_train, coco_val)
        row = {"variant": v.name, "train_images": subset_size(train, v.fraction), "batch_size": bs,
               "forked_iterations": v.plan.total_iterations(), "separate_iterations": v.plan.separate_iterations(),
               "jobs": cells * sum(len(v.plan.jobs(b, job_iters)) for b in branches),
               "evaluations": cells * sum(len(v.plan.checkpoints(b)) for b in branches)}
        row["images_seen"] = cells * row["forked_iterations"] * bs
        row["cost_vs_r50"] = round(scale(study_config.model_settings(cfg, False, variant=v), True, 0), 2)
        per_image = seconds["detection_train"] * row["cost_vs_r50"]
        row["gpu_hours"] = round(row["images_seen"] * per_image / 3600, 1)
        row["gpu_hours_saved_by_forking"] = round(
            cells * (row["separate_iterations"] - row["forked_iterations"]) * bs * per_image / 3600, 1)
        rows.append(row)
        for k, key in (("jobs", "jobs"), ("evaluations", "evaluations"), ("iterations", "forked_iterations"),
                       ("separate_iterations", "separate_iterations"), ("images", "images_seen")):
            detection[k] += row[key] * (cells if k in ("iterations", "separate_iterations") else 1)
        # test-time augmentation scores each checkpoint again per scale and flip
        passes = 1 + (len(v.tta.get("scales") or [0]) * (2 if v.tta.get("flip") else 1) if v.tta else 0)
        detection["evaluation_images"] += row["evaluations"] * val * passes
        detection["gpu_seconds"] += row["images_seen"] * per_image
        detection["evaluation_gpu_seconds"] += row["evaluations"] * val * passes * seconds["inference"] * row["cost_vs_r50"]
    pre = cfg["pretrain"]
    norms = sorted({study_config.pretrain_norm(v.norm) for v in variants.values() if not v.own_pretraining})
    if pre["checkpoint"]:  # a given backbone stands in for main's norm's pre-training
        norms = [n for n in norms if n != study_config.pretrain_norm(cfg["model"]["norm"])]
    # pretraining and model variants (and task or dataset ones with a backbone of their own)
    # pre-train their own backbones, each once
    own = sorted({study_config.pretraining_key(v) for v in variants.values() if v.own_pretraining})
    keys = norms + own if "pretrained" in inits else []
    pretrainings = []
    for key in keys:
        settings = {**pre, **study_config.pretrain_settings(cfg, key)}
        method = settings.get("method", "supervised")
        rate = scale(study_config.pretrain_model_settings(cfg, key), False, settings["image_size"])
        pretrainings.append({"pretraining": key, "epochs": settings["epochs"], "method": method,
                             "cost_vs_r50": round(rate, 2), "gpu_hours": round(
                                 settings["epochs"] * imagenet_train * METHOD_COST[method] * rate
                                 * seconds["pretrain"] / 3600, 1)})
    pretrain_jobs = len(pretrainings)
    pretrain_images = sum(p["epochs"] for p in pretrainings) * imagenet_train
    evaluation_images = detection["evaluation_images"]
    stages = {
        "pretrain": {"jobs": pretrain_jobs, "epochs": pre["epochs"], "images_seen": pretrain_images,
                     "gpu_hours": round(sum(p["gpu_hours"] for p in pretrainings), 1)},
        "train": {"jobs": detection["jobs"], "iterations": detection["iterations"],
                  "images_seen": detection["images"],
                  "gpu_hours": round(detection["gpu_seconds"] / 3600, 1)},
        "evaluate": {"jobs": detection["evaluations"], "images": evaluation_images,
                     "gpu_hours": round(detection["evaluation_gpu_seconds"] / 3600, 1)},
    }
    saved = round(sum(r["gpu_hours_saved_by_forking"] for r in rows), 1)
    return {"stages": stages, "variants": rows, "pretrainings": pretrainings, "total_gpu_hours": round(sum(s["gpu_hours"] for s in stages.values()), 1),
            "gpu_hours_saved_by_forking": saved, "separate_iterations": detection["separate_iterations"],
            "seconds_per_image": seconds, "seeds": len(seeds), "inits": inits,
            "own_backbones": own_backbones(variants), "scaled": scale is not at_r50}


def estimate(cfg: dict, throughput=None, coco_train=None, imagenet_train=None, scale: Scale = at_r50) -> dict:
    """The cost plan of a (checked) config: real data counted as COCO 2017 and ImageNet-1k
    unless told otherwise, the synthetic sets as configured."""
    syn = cfg["data"]["synthetic"]
    coco_train = coco_train or (COCO_TRAIN if cfg["data"]["coco"] else syn["det_train_images"])
    coco_val = COCO_VAL if cfg["data"]["coco"] else syn["det_val_images"]
    imagenet = imagenet_train or (
        IMAGENET_TRAIN if cfg["data"]["imagenet"] else syn["classes"] * syn["cls_train_per_class"])
    seconds = {**ANCHORS, **(measured_seconds(throughput) if throughput else {})}
    voc = (VOC_TRAIN, VOC_VAL) if cfg["data"].get("voc") else (syn.get("voc_train_images", 0), syn.get("voc_val_images", 0))
    return cost_plan(cfg, seconds, coco_train, coco_val, imagenet, voc, scale)


def own_backbones(variants: dict) -> list[str]:
    """The variants whose backbone is not main's (another arch, depth or width)."""
    shape = {"arch", "depth", "width", "vit"}
    return [v.name for v in variants.values() if v.model and set(v.model) & shape]


def summary(plan: dict) -> str:
    """One line for the workflow's log (unscaled there: the Snakefile loads no torch)."""
    priced = (f"; {', '.join(plan['own_backbones'])} priced as R50 here"
              if plan["own_backbones"] and not plan["scaled"] else "")
    return (f"cost plan: {plan['stages']['train']['iterations']:,} training iterations, about "
            f"{plan['total_gpu_hours']:,.1f} GPU-hours at published V100/P100 rates for R50{priced} "
            f"(python -m rethink.plan for the breakdown, each backbone priced by its FLOPs)")
