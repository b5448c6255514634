"""Tiny configurations shared by tests that train."""
import copy
import json

import yaml

from conftest import ROOT

DEFAULT = yaml.safe_load((ROOT / "config.yaml").read_text())

TINY_SYNTH = {**DEFAULT["data"]["synthetic"], "classes": 4, "detection_classes": 2,
              "cls_image_size": 32, "cls_train_per_class": 8, "cls_val_per_class": 4,
              "det_train_images": 12, "det_val_images": 6, "det_min_size": 64, "det_max_size": 96,
              "det_max_objects": 3, "clutter": 1.0}

TINY_MODEL = {**DEFAULT["model"], "width": 16, "fpn_channels": 16,
              "box_head": {"convs": 1, "conv_channels": 16, "fc": 32},
              "mask_head": {"convs": 1, "channels": 16},
              "rpn": {"pre_nms_train": 100, "post_nms_train": 50, "pre_nms_test": 100,
                      "post_nms_test": 50, "batch_per_image": 64},
              "rois_per_image": 32, "min_size": 64, "max_size": 96}

TINY_TRAIN = {k: DEFAULT["detection"][k] for k in
              ("batch_size", "base_lr", "reference_batch", "momentum", "weight_decay",
               "warmup_iters", "warmup_factor", "flip_prob", "seed", "group_by_aspect")}
TINY_TRAIN.update(one_x=9, batch_size=2, warmup_iters=3)


def tiny():
    return copy.deepcopy(TINY_SYNTH), copy.deepcopy(TINY_MODEL), copy.deepcopy(TINY_TRAIN)


def eval_settings(extra, batch_size=4, curve_images=None, backend="faster") -> list[str]:
    """train's --eval-settings arguments, as the train rule passes them
    (rethink.core.config.training_eval_settings)."""
    return ["--eval-settings", json.dumps({"in_training": True, "extra": extra, "extra_by_variant": {},
                                           "batch_size": batch_size, "backend": backend,
                                           "curve_images": curve_images})]


def agreement(one, two, other, label: str) -> tuple[float, float, float]:
    """How two processes' weight update `two` agrees with one process's `one`: (cosine,
    relative difference, cosine of one with `other`, a run on other data), printed."""
    import torch
    cos = torch.nn.functional.cosine_similarity
    same, rel, far = float(cos(one, two, dim=0)), float((two - one).norm() / one.norm()), float(cos(one, other, dim=0))
    print(f"\n{label}2 vs 1 process: cosine {same:.4f}, relative difference {rel:.3f}; other data: cosine {far:.4f}")
    return same, rel, far
