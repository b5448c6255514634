"""What a study will cost, before it is launched: per stage the jobs, iterations, images
seen and GPU-hours, and the GPU-hours that forking the schedules saves.

GPU-hours come from per-image GPU-seconds: those `rethink.engine.gpu_check` measured on your GPU
(--throughput its JSON: the bf16 rows), else published anchors (ANCHORS, below). The counts
are the workflow's own (rethink.core.config's variants and plans, as study.json records them).

    python -m rethink.core.cost_plan --configfile workflow/presets/coco.yaml [--throughput gpu_check.json] \
        [--coco-train-images 118287] [--json plan.json]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

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


def cost_plan(cfg: dict, seconds: dict, coco_train: int, coco_val: int, imagenet_train: int,
              voc: tuple[int, int] = (VOC_TRAIN, VOC_VAL)) -> dict:
    """`voc`: (train, val) images of a dataset variant's VOC sets."""
    variants = study_config.variants(cfg)
    seeds, inits = study_config.seeds(cfg), cfg["detection"]["inits"]
    job_iters = cfg["detection"]["job_iters"]
    rows, detection = [], {"jobs": 0, "evaluations": 0, "iterations": 0, "separate_iterations": 0, "images": 0,
                           "evaluation_images": 0}
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
        row["gpu_hours"] = round(row["images_seen"] * seconds["detection_train"] / 3600, 1)
        row["gpu_hours_saved_by_forking"] = round(
            cells * (row["separate_iterations"] - row["forked_iterations"]) * bs * seconds["detection_train"] / 3600, 1)
        rows.append(row)
        for k, key in (("jobs", "jobs"), ("evaluations", "evaluations"), ("iterations", "forked_iterations"),
                       ("separate_iterations", "separate_iterations"), ("images", "images_seen")):
            detection[k] += row[key] * (cells if k in ("iterations", "separate_iterations") else 1)
        # test-time augmentation scores each checkpoint again per scale and flip
        passes = 1 + (len(v.tta.get("scales") or [0]) * (2 if v.tta.get("flip") else 1) if v.tta else 0)
        detection["evaluation_images"] += row["evaluations"] * val * passes
    pre = cfg["pretrain"]
    norms = sorted({study_config.pretrain_norm(v.norm) for v in variants.values() if not v.own_pretraining})
    given = 1 if pre["checkpoint"] and "pretrained" in inits else 0
    epochs = [(pre["epochs"], pre.get("method", "supervised"))] * (len(norms) - given) if "pretrained" in inits else []
    # pretraining and model variants (and task or dataset ones with a backbone of their own)
    # pre-train their own backbones, each once (at the published R50 rate, like their detection
    # runs: a deeper, wider or VGG one costs more)
    own = sorted({study_config.pretraining_key(v) for v in variants.values() if v.own_pretraining})
    for key in own if "pretrained" in inits else []:
        settings = study_config.pretrain_settings(cfg, key)
        epochs.append((settings["epochs"], settings.get("method", "supervised")))
    pretrain_jobs = len(epochs)
    pretrain_images = sum(e for e, _ in epochs) * imagenet_train
    pretrain_cost = sum(e * METHOD_COST[m] for e, m in epochs) * imagenet_train  # supervised-image equivalents
    evaluation_images = detection["evaluation_images"]
    stages = {
        "pretrain": {"jobs": pretrain_jobs, "epochs": pre["epochs"], "images_seen": pretrain_images,
                     "gpu_hours": round(pretrain_cost * seconds["pretrain"] / 3600, 1)},
        "train": {"jobs": detection["jobs"], "iterations": detection["iterations"],
                  "images_seen": detection["images"],
                  "gpu_hours": round(detection["images"] * seconds["detection_train"] / 3600, 1)},
        "evaluate": {"jobs": detection["evaluations"], "images": evaluation_images,
                     "gpu_hours": round(evaluation_images * seconds["inference"] / 3600, 1)},
    }
    saved = round(sum(r["gpu_hours_saved_by_forking"] for r in rows), 1)
    return {"stages": stages, "variants": rows, "total_gpu_hours": round(sum(s["gpu_hours"] for s in stages.values()), 1),
            "gpu_hours_saved_by_forking": saved, "separate_iterations": detection["separate_iterations"],
            "seconds_per_image": seconds, "seeds": len(seeds), "inits": inits}


def estimate(cfg: dict, throughput=None, coco_train=None, imagenet_train=None) -> dict:
    """The cost plan of a (checked) config: real data counted as COCO 2017 and ImageNet-1k
    unless told otherwise, the synthetic sets as configured."""
    syn = cfg["data"]["synthetic"]
    coco_train = coco_train or (COCO_TRAIN if cfg["data"]["coco"] else syn["det_train_images"])
    coco_val = COCO_VAL if cfg["data"]["coco"] else syn["det_val_images"]
    imagenet = imagenet_train or (
        IMAGENET_TRAIN if cfg["data"]["imagenet"] else syn["classes"] * syn["cls_train_per_class"])
    seconds = {**ANCHORS, **(measured_seconds(throughput) if throughput else {})}
    voc = (VOC_TRAIN, VOC_VAL) if cfg["data"].get("voc") else (syn.get("voc_train_images", 0), syn.get("voc_val_images", 0))
    return cost_plan(cfg, seconds, coco_train, coco_val, imagenet, voc)


def summary(plan: dict) -> str:
    """One line for the workflow's log."""
    return (f"cost plan: {plan['stages']['train']['iterations']:,} training iterations, about "
            f"{plan['total_gpu_hours']:,.1f} GPU-hours at published V100/P100 rates "
            f"(python -m rethink.core.cost_plan for the breakdown)")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--configfile", nargs="*", default=[], help="merged over config.yaml, in order")
    p.add_argument("--throughput", help="rethink.engine.gpu_check's JSON: your GPU's measured bf16 img/s")
    p.add_argument("--coco-train-images", type=int, help=f"default: {COCO_TRAIN} for a real data.coco, "
                   f"else the synthetic count")
    p.add_argument("--imagenet-train-images", type=int)
    p.add_argument("--json", help="also write the plan here")
    args = p.parse_args(argv)
    cfg = merged_config(args.configfile)
    try:
        study_config.check(cfg)
    except study_config.ConfigError as e:
        raise SystemExit(f"config: {e}")
    plan = estimate(cfg, args.throughput, args.coco_train_images, args.imagenet_train_images)
    seconds = plan["seconds_per_image"]
    src = {k: ("measured" if args.throughput and k in measured_seconds(args.throughput) else ANCHOR_SOURCES[k])
           for k in ANCHORS}
    print(f"{plan['seeds']} seed(s) x {len(plan['inits'])} inits; GPU-seconds per image: "
          + ", ".join(f"{k} {v:.4g} ({src[k]})" for k, v in seconds.items()))
    print(f"{'stage':<10} {'jobs':>6} {'iterations':>12} {'images':>14} {'GPU-hours':>10}")
    for name, s in plan["stages"].items():
        its = s.get("iterations", s.get("epochs", ""))
        print(f"{name:<10} {s['jobs']:>6} {its:>12} {s.get('images_seen', s.get('images')):>14,} {s['gpu_hours']:>10,.1f}")
    print(f"total: {plan['total_gpu_hours']:,.1f} GPU-hours; forking the schedules saves "
          f"{plan['gpu_hours_saved_by_forking']:,.1f} GPU-hours of training "
          f"({plan['stages']['train']['iterations']:,} iterations instead of {plan['separate_iterations']:,})")
    for r in plan["variants"]:
        print(f"  {r['variant']}: {r['train_images']} images, {r['forked_iterations']:,} iterations per init "
              f"and seed forked (vs {r['separate_iterations']:,}), {r['jobs']} training jobs, "
              f"{r['evaluations']} evaluations, {r['gpu_hours']:,.1f} GPU-hours")
    shapes = [v.name for v in study_config.variants(cfg).values() if v.model is not None]
    if shapes:
        print(f"  note: {', '.join(shapes)} (backbones of their own) priced at model.*'s per-image rates: a deeper, "
              f"wider or VGG backbone costs more than this says")
    if args.json:
        Path(args.json).write_text(json.dumps(plan, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
