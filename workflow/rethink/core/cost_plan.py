"""What a study will cost, before it is launched: per stage the jobs, iterations, images
seen and GPU-hours, and the GPU-hours that forking the schedules saves.

GPU-hours come from per-image GPU-seconds: those `rethink.engine.gpu_check` measured on your GPU
(--throughput its JSON: the bf16 rows), else published anchors (ANCHORS, below), both for
R50-FPN; another backbone's are scaled by its FLOPs (model_flops). The counts are the
workflow's own (rethink.core.config's variants and plans, as study.json records them).

    python -m rethink.core.cost_plan --configfile workflow/presets/coco.yaml [--throughput gpu_check.json] \
        [--coco-train-images 118287] [--json plan.json]
"""
from __future__ import annotations

import argparse
import functools
import json
import sys
from pathlib import Path

import torch
import yaml
from torch.utils.flop_counter import FlopCounterMode

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
# The anchors' models, what model_flops compares every backbone to: R50-FPN GN Mask R-CNN
# (detectron2's, ours with main's heads) and the ResNet-50 classifier at 224
ANCHOR_MODEL = {"arch": "resnet", "depth": 50, "width": 64, "norm": "GN"}
ANCHOR_IMAGE_SIZE = 224
# RoIs per image the heads run on in training: the sampler's 512, and its positive share (25%)
# as the ceiling of the mask and keypoint heads'
BOX_ROIS, POSITIVE_ROIS = 512, 128
COCO_TRAIN, COCO_VAL, IMAGENET_TRAIN, IMAGENET_VAL = 118_287, 5_000, 1_281_167, 50_000
VOC_TRAIN, VOC_VAL = 5_011 + 5_717, 5_823  # trainval2007 + train2012, val2012 (the paper's VOC sets)
ROOT = Path(__file__).resolve().parents[3]  # the repository


@functools.cache
def _flops(model_json: str, detection: bool, side: int) -> float:
    from rethink.models.detector import build_body, build_mask_rcnn
    model_cfg, meta = json.loads(model_json), torch.device("meta")
    with meta:  # built on meta, run outside its (slow) function mode on meta inputs
        model = build_mask_rcnn(model_cfg, num_classes=81) if detection else build_body(model_cfg, 1000)
    with FlopCounterMode(display=False) as count:
        if not detection:  # the classifier pre-training trains
            model(torch.empty(1, 3, side, side, device=meta))
            return count.get_total_flops()
        # a COCO-shaped (4:3) image as the detector resizes it, padded to a multiple of 32
        h = model_cfg["min_size"]
        w = min(model_cfg["max_size"], round(h * 4 / 3))
        features = model.backbone(torch.empty(1, 3, -(-h // 32) * 32, -(-w // 32) * 32, device=meta))
        model.rpn.head(list(features.values()))
        heads, channels = model.roi_heads, model.backbone.out_channels
        heads.box_predictor(heads.box_head(torch.empty(BOX_ROIS, channels, *heads.box_roi_pool.output_size,
                                                       device=meta)))
        for name in ("mask", "keypoint"):
            if getattr(heads, f"{name}_head", None) is not None:
                pool = getattr(heads, f"{name}_roi_pool").output_size
                getattr(heads, f"{name}_predictor")(getattr(heads, f"{name}_head")(
                    torch.empty(POSITIVE_ROIS, channels, *pool, device=meta)))
    return count.get_total_flops()


def model_flops(model_cfg: dict, detection: bool, image_size: int = ANCHOR_IMAGE_SIZE) -> float:
    """Forward FLOPs per image (torch's FlopCounterMode on the meta device: no memory, no
    arithmetic): detection's backbone, pyramid and RPN head at the model's 4:3 size, with its
    RoI heads at the training sampler's RoI counts; else the classifier at `image_size`. The
    anchors' GPU-seconds scale by these, relative to their own model's (a GPU runs attention and
    convolutions at different efficiencies, which FLOPs do not see)."""
    # counted with frozen BN: the counter gives norms no FLOPs, and GroupNorm runs slowly on meta
    fast = {**model_cfg, "norm": "FrozenBN" if model_cfg["norm"] != "none" else "none"}
    return _flops(json.dumps(fast, sort_keys=True), detection, image_size)


def relative_cost(model_cfg: dict, detection: bool, image_size: int = ANCHOR_IMAGE_SIZE) -> float:
    """A model's per-image cost relative to the anchors' R50 (same input size for detection)."""
    anchor = {**model_cfg, **ANCHOR_MODEL, **({"min_size": 800, "max_size": 1333} if detection else {})}
    for key in ("vit", "keypoints", "masks"):  # the anchors' model: a ResNet with a mask head alone
        anchor.pop(key, None)
    return (model_flops(model_cfg, detection, image_size)
            / model_flops(anchor, detection, ANCHOR_IMAGE_SIZE))


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
        row["cost_vs_r50"] = round(relative_cost(study_config.model_settings(cfg, False, variant=v), True), 2)
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
        norms = [n for n in norms if n != study_config.pretrain_norm(cfg["model"]["norm"])] or norms[1:]
    # pretraining and model variants (and task or dataset ones with a backbone of their own)
    # pre-train their own backbones, each once
    own = sorted({study_config.pretraining_key(v) for v in variants.values() if v.own_pretraining})
    keys = norms + own if "pretrained" in inits else []
    pretrainings = []
    for key in keys:
        settings = {**pre, **study_config.pretrain_settings(cfg, key)}
        method = settings.get("method", "supervised")
        scale = relative_cost(study_config.pretrain_model_settings(cfg, key), False, settings["image_size"])
        pretrainings.append({"pretraining": key, "epochs": settings["epochs"], "method": method,
                             "cost_vs_r50": round(scale, 2), "gpu_hours": round(
                                 settings["epochs"] * imagenet_train * METHOD_COST[method] * scale
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
            f"{plan['total_gpu_hours']:,.1f} GPU-hours at published V100/P100 rates for R50, scaled by FLOPs "
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
    for r in plan["pretrainings"]:
        print(f"  pretrain/{r['pretraining']}: {r['epochs']} epochs, {r['method']}, {r['gpu_hours']:,.1f} GPU-hours "
              f"({r['cost_vs_r50']:.2f}x ResNet-50's FLOPs an image at 224)")
    for r in plan["variants"]:
        print(f"  {r['variant']}: {r['train_images']} images, {r['forked_iterations']:,} iterations per init "
              f"and seed forked (vs {r['separate_iterations']:,}), {r['jobs']} training jobs, "
              f"{r['evaluations']} evaluations, {r['gpu_hours']:,.1f} GPU-hours "
              f"({r['cost_vs_r50']:.2f}x R50-FPN's FLOPs an image)")
    if args.json:
        Path(args.json).write_text(json.dumps(plan, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
