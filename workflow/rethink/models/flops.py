"""Forward FLOPs per image of a model config, and its cost relative to R50's: what the cost
plan (rethink.plan) scales the published R50 rates by for every other backbone.

Counted by torch's FlopCounterMode on the meta device (no memory, no arithmetic; a few seconds
a model): detection's backbone, pyramid and RPN head at the model's size for a 4:3 image, its
RoI heads at the training sampler's RoI counts; pre-training's classifier at its image size.
Matrix products, convolutions and attention count, norms and activations do not. A GPU runs
attention and convolutions at different efficiencies, which FLOPs do not see.
"""
from __future__ import annotations

import functools
import json

import torch
from torch.utils.flop_counter import FlopCounterMode

from rethink.models.detector import build_body, build_mask_rcnn

# The models of the published rates (rethink.core.cost_plan.ANCHORS), what every backbone is
# compared to: R50-FPN GN Mask R-CNN (detectron2's; ours with main's heads), ResNet-50 at 224
ANCHOR_MODEL = {"arch": "resnet", "depth": 50, "width": 64, "norm": "GN"}
ANCHOR_IMAGE_SIZE = 224
# RoIs per image the heads run on in training: the sampler's 512, and its positive share (25%)
# as the ceiling of the mask and keypoint heads'
BOX_ROIS, POSITIVE_ROIS = 512, 128


@functools.cache
def _flops(model_json: str, detection: bool, side: int) -> float:
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
    """Forward FLOPs per image: detection's (see above) at the model's own size, else the
    classifier's at `image_size`."""
    # counted with frozen BN: the counter gives norms no FLOPs, and GroupNorm runs slowly on meta
    fast = {**model_cfg, "norm": "FrozenBN" if model_cfg["norm"] != "none" else "none"}
    return _flops(json.dumps(fast, sort_keys=True), detection, image_size)


def relative_cost(model_cfg: dict, detection: bool, image_size: int = ANCHOR_IMAGE_SIZE) -> float:
    """A model's per-image cost relative to the anchors' R50: R50-FPN Mask R-CNN at 800x1333
    for detection (`image_size` unused), the ResNet-50 classifier at 224 for pre-training."""
    anchor = {**model_cfg, **ANCHOR_MODEL, **({"min_size": 800, "max_size": 1333} if detection else {})}
    for key in ("vit", "keypoints", "masks"):  # the anchors' model: a ResNet with a mask head alone
        anchor.pop(key, None)
    return (model_flops(model_cfg, detection, image_size)
            / model_flops(anchor, detection, ANCHOR_IMAGE_SIZE))
