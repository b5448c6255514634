"""Data loaders at the paper's image sizes: images per second one loader worker (one core)
delivers, and so how many workers per GPU keep the GPU goals fed.

- COCO: synthetic COCO-sized JPEGs (480-640 px, about 640x480), decoded with their instance
  masks and flipped, as rethink.data.coco's training items are; and the same plus the resize to
  800x1333 on the CPU (images and masks), for a pipeline that resizes in the loader rather
  than in the detector's transform (on the GPU), as ours does.
- ImageNet: synthetic 448x448 JPEGs (about ImageNet's 500x375 in pixels) to 224 random
  resized crops, flipped and normalised, as rethink.engine.pretrain's training items are.
"""
from __future__ import annotations

import math
import time
from pathlib import Path

import torch
from torchvision import datasets
from torchvision.transforms import v2

from rethink.bench.common import rnd
from rethink.data import writers
from rethink.data.coco import CocoInstances, train_transforms
from rethink.engine.methods import transforms as pretrain_transforms

# Per-GPU rates the loaders must sustain: the detection goal of the GPU check (bf16 Mask
# R-CNN at 800x1333 on one H200) and an ImageNet ResNet-50 rate of a current GPU in bf16
# (an assumption: several thousand images per second; set yours from rethink.engine.gpu_check).
GOALS = {"coco_img_per_s_per_gpu": 30.0, "imagenet_img_per_s_per_gpu": 3000.0}


def _rate(items, repeats: int) -> float:
    """Best-of-repeats items per second of calling each of `items` once (one core)."""
    best = math.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        for item in items:
            item()
        best = min(best, time.perf_counter() - t0)
    return len(items) / best


def run(work: Path, synth_cfg: dict, images: int, repeats: int) -> dict:
    torch.set_num_threads(1)  # one worker, one core
    coco_root = work / "loader_coco"
    if not (coco_root / "annotations").exists():
        writers.generate_coco(coco_root, {**synth_cfg, "det_train_images": images, "det_val_images": 1,
                                        "det_min_size": 480, "det_max_size": 640}, seed=0)
    coco = CocoInstances(coco_root, "train", train_transforms(0.5))
    resize = v2.Resize(800, max_size=1333, antialias=True)
    coco_items = [lambda i=i: coco[(i, i)] for i in range(len(coco))]
    resized_items = [lambda i=i: resize(*coco[(i, i)]) for i in range(len(coco))]
    imagenet_root = work / "loader_imagenet"
    if not (imagenet_root / "train").exists():
        per_class = max(1, images // 4)
        writers.generate_imagenet(imagenet_root, {**synth_cfg, "classes": 4, "cls_image_size": 448,
                                                "cls_train_per_class": per_class, "cls_val_per_class": 1}, seed=0)
    imagenet = datasets.ImageFolder(imagenet_root / "train", pretrain_transforms(224, True, (0.08, 1.0)))
    imagenet_items = [lambda i=i: imagenet[i] for i in range(len(imagenet))]
    rates = {"coco_decode_masks_flip": _rate(coco_items, repeats),
             "coco_plus_cpu_resize_800x1333": _rate(resized_items, repeats),
             "imagenet_decode_crop224_flip_normalise": _rate(imagenet_items, repeats)}
    coco_w = math.ceil(GOALS["coco_img_per_s_per_gpu"] / rates["coco_decode_masks_flip"])
    imagenet_w = math.ceil(GOALS["imagenet_img_per_s_per_gpu"] / rates["imagenet_decode_crop224_flip_normalise"])
    return {"img_per_s_per_worker": {k: rnd(v, 1) for k, v in rates.items()}, "images": len(coco),
            "repeats": repeats, "goals": GOALS,
            "workers_per_gpu": {"detection": coco_w, "pretrain": imagenet_w},
            "coco_image_size": [480, 640], "imagenet_image_size": 448}
