"""Test-time augmentation for Mask R-CNN, as Detectron does it.

Each augmentation (a short side, optionally a horizontal flip) runs torchvision's own
inference path, step by step, in its own resized frame. Boxes merge by Detectron's UNION
heuristic: every augmentation's candidates before NMS, mapped into the first augmentation's
frame, go through one per-class NMS and the top-k cut. Masks merge by its SOFT_AVG: each
final box is mapped back into every augmentation, its mask predicted there, and the 28x28
probabilities averaged before pasting into the image.

With one augmentation (the model's min_size, no flip) every mapping is the identity on the
same tensors, so the result equals `model(images)` exactly.

    from rethink.evaluation.tta import predict_tta
    detections = predict_tta(model, images, scales=[640, 800, 1000], flip=True)
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor
from torchvision.models.detection.roi_heads import maskrcnn_inference, paste_masks_in_image
from torchvision.models.detection.transform import resize_boxes
from torchvision.ops import boxes as box_ops


@dataclass
class Augmentation:
    """One pass of the model: its features and frames, and its candidate detections
    (per image, in its own resized frame, before NMS)."""
    flipped: bool
    features: dict[str, Tensor]
    image_sizes: list[tuple[int, int]]
    boxes: list[Tensor]
    scores: list[Tensor]
    labels: list[Tensor]


def flip_boxes(boxes: Tensor, width: int) -> Tensor:
    """Mirror XYXY boxes in a frame `width` wide (x -> width - x, so x0 and x1 swap)."""
    x0, y0, x1, y1 = boxes.unbind(1)
    return torch.stack((width - x1, y0, width - x0, y1), dim=1)


def candidates(heads, class_logits: Tensor, box_regression: Tensor, proposals: list[Tensor],
               image_sizes: list[tuple[int, int]]):
    """RoIHeads.postprocess_detections up to, not including, its NMS: the same calls in the
    same order, so one augmentation's merge reproduces it exactly."""
    num_classes = class_logits.shape[-1]
    per_image = [len(p) for p in proposals]
    all_boxes = heads.box_coder.decode(box_regression, proposals).split(per_image, 0)
    all_scores = F.softmax(class_logits, -1).split(per_image, 0)
    out_boxes, out_scores, out_labels = [], [], []
    for boxes, scores, size in zip(all_boxes, all_scores, image_sizes):
        boxes = box_ops.clip_boxes_to_image(boxes, size)
        labels = torch.arange(num_classes, device=boxes.device).view(1, -1).expand_as(scores)
        # every (proposal, foreground class) pair is one candidate
        boxes, scores, labels = boxes[:, 1:].reshape(-1, 4), scores[:, 1:].reshape(-1), labels[:, 1:].reshape(-1)
        keep = torch.where(scores > heads.score_thresh)[0]
        boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
        keep = box_ops.remove_small_boxes(boxes, min_size=1e-2)
        out_boxes.append(boxes[keep])
        out_scores.append(scores[keep])
        out_labels.append(labels[keep])
    return out_boxes, out_scores, out_labels


def run_augmentation(model, images: list[Tensor], scale: int, flipped: bool) -> Augmentation:
    """GeneralizedRCNN.forward and RoIHeads.forward (eval mode) as far as the candidates,
    with the transform's short side set to `scale`; keeps the features for the masks."""
    model.transform.min_size = (scale,)
    inputs = [image.flip(-1) for image in images] if flipped else images
    image_list, _ = model.transform(inputs)
    features = model.backbone(image_list.tensors)
    if isinstance(features, Tensor):
        features = OrderedDict([("0", features)])
    proposals, _ = model.rpn(image_list, features)
    heads = model.roi_heads
    box_features = heads.box_head(heads.box_roi_pool(features, proposals, image_list.image_sizes))
    class_logits, box_regression = heads.box_predictor(box_features)
    boxes, scores, labels = candidates(heads, class_logits, box_regression, proposals, image_list.image_sizes)
    return Augmentation(flipped, features, image_list.image_sizes, boxes, scores, labels)


def to_common(boxes: Tensor, aug: Augmentation, common: Augmentation, i: int) -> Tensor:
    """Image i's boxes from `aug`'s frame into `common`'s (un-flip, then rescale)."""
    if aug.flipped:
        boxes = flip_boxes(boxes, aug.image_sizes[i][1])
    boxes = resize_boxes(boxes, aug.image_sizes[i], common.image_sizes[i])
    # per-axis ratios of rounded sizes can push a clipped box a hair past the border
    return box_ops.clip_boxes_to_image(boxes, common.image_sizes[i])


def from_common(boxes: Tensor, aug: Augmentation, common: Augmentation, i: int) -> Tensor:
    """Image i's boxes from `common`'s frame into `aug`'s (rescale, then flip)."""
    boxes = resize_boxes(boxes, common.image_sizes[i], aug.image_sizes[i])
    return flip_boxes(boxes, aug.image_sizes[i][1]) if aug.flipped else boxes


def mask_probabilities(heads, aug: Augmentation, boxes: list[Tensor], labels: list[Tensor]) -> list[Tensor]:
    """RoIHeads.forward's mask branch in `aug` for boxes already in its frame: per image
    [N, 1, 28, 28] probabilities of each box's label, un-flipped for a flipped aug."""
    mask_features = heads.mask_head(heads.mask_roi_pool(aug.features, boxes, aug.image_sizes))
    probs = maskrcnn_inference(heads.mask_predictor(mask_features), labels)
    return [p.flip(-1) for p in probs] if aug.flipped else list(probs)


@torch.inference_mode()
def predict_tta(model, images: list[Tensor], scales: list[int], flip: bool) -> list[dict[str, Tensor]]:
    """Detections of `model` (eval mode) on `images` (float RGB [C, H, W] in [0, 1]) merged
    over augmentations: for each short side in `scales`, the image, then (with `flip`) its
    mirror. Returns what `model(images)` returns: per image `boxes` (XYXY, original image
    coordinates), `labels`, `scores` and, for a model with a mask head, `masks` [N, 1, H, W]."""
    heads = model.roi_heads
    if heads.keypoint_predictor is not None:
        raise ValueError("test-time augmentation is not supported for keypoint models")
    if model.training:
        raise ValueError("test-time augmentation needs the model in eval mode")
    if not scales:
        raise ValueError("test-time augmentation needs at least one scale")
    original_sizes = [(int(image.shape[-2]), int(image.shape[-1])) for image in images]
    saved_min_size = model.transform.min_size
    try:
        augs = [run_augmentation(model, images, scale, flipped)
                for scale in scales for flipped in ([False, True] if flip else [False])]
    finally:
        model.transform.min_size = saved_min_size
    common = augs[0]

    # UNION: all augmentations' candidates, one NMS per class, top k (postprocess_detections)
    final_boxes, final_scores, final_labels = [], [], []
    for i in range(len(images)):
        boxes = torch.cat([to_common(aug.boxes[i], aug, common, i) for aug in augs])
        scores = torch.cat([aug.scores[i] for aug in augs])
        labels = torch.cat([aug.labels[i] for aug in augs])
        keep = box_ops.batched_nms(boxes, scores, labels, heads.nms_thresh)[: heads.detections_per_img]
        final_boxes.append(boxes[keep])
        final_scores.append(scores[keep])
        final_labels.append(labels[keep])

    results = [{"boxes": resize_boxes(boxes, common.image_sizes[i], original_sizes[i]),
                "labels": labels, "scores": scores}
               for i, (boxes, labels, scores) in enumerate(zip(final_boxes, final_labels, final_scores))]
    if heads.has_mask():
        # SOFT_AVG: every augmentation's mask of the final boxes, averaged at 28x28
        per_aug = []
        for aug in augs:
            boxes_there = [from_common(boxes, aug, common, i) for i, boxes in enumerate(final_boxes)]
            per_aug.append(mask_probabilities(heads, aug, boxes_there, final_labels))
        for i, result in enumerate(results):
            probs = torch.stack([masks[i] for masks in per_aug]).mean(0)
            # transform.postprocess's paste, with the boxes it would have
            result["masks"] = paste_masks_in_image(probs, result["boxes"], original_sizes[i])
    return results
