"""ResNet and VGG backbones and Mask R-CNN with FPN, built from config.

The ResNet reuses torchvision's BasicBlock/Bottleneck but takes its stem width from
config (torchvision's ResNet fixes it at 64), so the default study can run a narrow net
on a CPU. Normalisation is GroupNorm by default, in backbone, FPN and heads, as in the
paper's from-scratch models. `model.arch: vgg` is a plain VGG (conv stacks, ReLU, max
pooling, no residuals), which with `model.norm: none` has no normalisation anywhere, in
backbone, FPN or heads: the paper's VGG-16 experiment. A model config with `keypoints`
(the keypoint task) adds a keypoint head, normalised as the others, to the same Mask R-CNN:
the multi-task "keypoint & mask" model of the Mask R-CNN paper (its Table 4). One with
`masks: false` (a dataset of boxes only, VOC) has no mask head: the paper's Faster R-CNN.
`model.arch: vit` is a plain ViT with ViTDet's simple feature pyramid (rethink.models.vit)
under the same heads.
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torchvision.models.detection import MaskRCNN
from torchvision.models.detection._utils import BoxCoder
from torchvision.models.detection.backbone_utils import BackboneWithFPN
from torchvision.models.detection.faster_rcnn import FastRCNNConvFCHead, FastRCNNPredictor
from torchvision.models.detection.keypoint_rcnn import KeypointRCNNPredictor
from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor
from torchvision.models.detection.rpn import RegionProposalNetwork
from torchvision.models.detection.transform import GeneralizedRCNNTransform
from torchvision.models.resnet import BasicBlock, Bottleneck
from torchvision.ops import MultiScaleRoIAlign
from torchvision.ops import misc as misc_ops

from rethink.core.conventions import model_input
from rethink.models.roi_align import FastMultiScaleRoIAlign
from rethink.models.vit import SimpleFeaturePyramid, ViT, build_vit

DEPTHS = {
    10: (BasicBlock, [1, 1, 1, 1]),
    18: (BasicBlock, [2, 2, 2, 2]),
    34: (BasicBlock, [3, 4, 6, 3]),
    50: (Bottleneck, [3, 4, 6, 3]),
    101: (Bottleneck, [3, 4, 23, 3]),
}
# VGG: 3x3 convs per stage, each stage ending in a 2x2 max pool (VGG-11 is the paper's
# configuration A, VGG-16 its D); stages have width x (1, 2, 4, 8, 8) channels
VGG_DEPTHS = {11: [1, 1, 2, 2, 2], 16: [2, 2, 3, 3, 3]}
VIT_DEPTHS = tuple(range(1, 33))  # transformer blocks (ViT-B: 12)
ARCH_DEPTHS = {"resnet": DEPTHS, "vgg": VGG_DEPTHS, "vit": VIT_DEPTHS}
NORMS = ("GN", "BN", "SyncBN", "FrozenBN", "none")


def norm_factory(norm: str, gn_groups: int = 32):
    """A callable channels -> normalisation layer; None for `none` (no normalisation)."""
    if norm == "none":
        return None
    if norm == "GN":
        def group_norm(channels: int) -> nn.GroupNorm:
            groups = math.gcd(gn_groups, channels)
            return nn.GroupNorm(groups, channels)
        return group_norm
    if norm in ("BN", "SyncBN"):  # SyncBN is converted when running distributed
        return nn.BatchNorm2d
    if norm == "FrozenBN":
        return misc_ops.FrozenBatchNorm2d
    raise ValueError(f"model.norm must be one of {NORMS}, got {norm!r}")


class ResNet(nn.Module):
    """Stem + 4 stages named like torchvision's, so checkpoints use the usual keys."""

    def __init__(self, depth: int = 50, width: int = 64, norm: str = "GN", gn_groups: int = 32,
                 num_classes: int | None = None, stride_in_1x1: bool = False):
        super().__init__()
        if depth not in DEPTHS:
            raise ValueError(f"model.depth must be one of {sorted(DEPTHS)}, got {depth}")
        block, layers = DEPTHS[depth]
        norm_layer = norm_factory(norm, gn_groups)
        self.conv1 = nn.Conv2d(3, width, 7, 2, 3, bias=False)
        self.bn1 = norm_layer(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.inplanes = width
        self.layer1 = self._stage(block, width, layers[0], 1, norm_layer)
        self.layer2 = self._stage(block, width * 2, layers[1], 2, norm_layer)
        self.layer3 = self._stage(block, width * 4, layers[2], 2, norm_layer)
        self.layer4 = self._stage(block, width * 8, layers[3], 2, norm_layer)
        if stride_in_1x1 and block is Bottleneck:  # MSRA's original ResNet (Detectron's R-50.pkl)
            for stage in (self.layer2, self.layer3, self.layer4):
                stage[0].conv1.stride, stage[0].conv2.stride = (2, 2), (1, 1)
        self.stage_channels = [width * m * block.expansion for m in (1, 2, 4, 8)]
        self.fc = None
        if num_classes is not None:
            self.avgpool = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(self.stage_channels[-1], num_classes)
        for m in self.modules():  # He init, as for training from scratch
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        # Zero-init the last norm of each residual branch (Goyal et al.), helps scratch training.
        for m in self.modules():
            if isinstance(m, Bottleneck) and isinstance(m.bn3, (nn.BatchNorm2d, nn.GroupNorm)):
                nn.init.zeros_(m.bn3.weight)
            elif isinstance(m, BasicBlock) and isinstance(m.bn2, (nn.BatchNorm2d, nn.GroupNorm)):
                nn.init.zeros_(m.bn2.weight)

    def _stage(self, block, planes, blocks, stride, norm_layer):
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes * block.expansion, 1, stride, bias=False),
                norm_layer(planes * block.expansion),
            )
        layers = [block(self.inplanes, planes, stride, downsample, norm_layer=norm_layer)]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes, norm_layer=norm_layer) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        if self.fc is None:
            return x
        return self.fc(torch.flatten(self.avgpool(x), 1))


class VGG(nn.Module):
    """A plain VGG: five stages of 3x3 conv (+ norm) + ReLU, each ending in a 2x2 max pool,
    so stages 2-5 (`layer1`..`layer4`, strides 4-32) feed the FPN as a ResNet's do. MSRA
    (He) init, biases zero; with norm `none` nothing normalises the activations."""

    def __init__(self, depth: int = 16, width: int = 64, norm: str = "none", gn_groups: int = 32,
                 num_classes: int | None = None):
        super().__init__()
        if depth not in VGG_DEPTHS:
            raise ValueError(f"model.depth must be one of {sorted(VGG_DEPTHS)} for model.arch: vgg, got {depth}")
        norm_layer = norm_factory(norm, gn_groups)
        widths = [width * m for m in (1, 2, 4, 8, 8)]
        stages, inplanes = [], 3
        for convs, planes in zip(VGG_DEPTHS[depth], widths):
            layers = []
            for _ in range(convs):
                layers.append(nn.Conv2d(inplanes, planes, 3, 1, 1, bias=norm_layer is None))
                layers += [norm_layer(planes)] if norm_layer is not None else []
                layers.append(nn.ReLU(inplace=True))
                inplanes = planes
            stages.append(nn.Sequential(*layers, nn.MaxPool2d(2, 2)))
        self.stem, self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.stage_channels = widths[1:]
        self.fc = None
        if num_classes is not None:
            self.avgpool = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(self.stage_channels[-1], num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x):
        x = self.layer4(self.layer3(self.layer2(self.layer1(self.stem(x)))))
        if self.fc is None:
            return x
        return self.fc(torch.flatten(self.avgpool(x), 1))


def build_body(model_cfg: dict, num_classes: int | None = None) -> nn.Module:
    """The backbone of `model_cfg` (model.arch: resnet, the default, vgg or vit), with a
    classifier head when `num_classes` is given."""
    arch = model_cfg.get("arch", "resnet")
    if arch == "vit":
        return build_vit(model_cfg, num_classes)
    if arch == "vgg":
        return VGG(model_cfg["depth"], model_cfg["width"], model_cfg["norm"], model_cfg["gn_groups"],
                   num_classes=num_classes)
    if arch != "resnet":
        raise ValueError(f"model.arch must be one of {list(ARCH_DEPTHS)}, got {arch!r}")
    if model_cfg["norm"] == "none":
        raise ValueError("model.norm: none needs model.arch: vgg (a ResNet here always normalises)")
    return ResNet(model_cfg["depth"], model_cfg["width"], model_cfg["norm"], model_cfg["gn_groups"],
                  num_classes=num_classes, stride_in_1x1=model_cfg.get("stride_in_1x1", False))


def backbone_state(classifier: nn.Module) -> dict:
    """The classifier's weights without its fc head: what detection loads."""
    return {k: v for k, v in classifier.state_dict().items() if not k.startswith(("fc.", "avgpool."))}


def build_classifier(model_cfg: dict, num_classes: int) -> nn.Module:
    return build_body(model_cfg, num_classes)


class ConventionTransform(GeneralizedRCNNTransform):
    """torchvision's detection transform, normalising as the backbone was trained: images
    arrive RGB in [0, 1]; a BGR backbone gets its channels reversed, a 0-255 one its values
    scaled, then (x - mean) / std in its own units (rethink.models.backbones: input conventions)."""

    def __init__(self, min_size, max_size, conventions: dict):
        super().__init__(min_size, max_size, conventions["mean"], conventions["std"])
        self.bgr, self.value_range = conventions["channels"] == "BGR", conventions["range"]

    def normalize(self, image):
        if self.bgr:
            image = image.flip(-3)
        if self.value_range != 1:
            image = image * self.value_range
        return super().normalize(image)


class Fp32BoxCoder(BoxCoder):
    """torchvision's BoxCoder, decoding in fp32 whatever the deltas' dtype (detectron2 does
    so). Under bf16 autocast the heads output bf16, and torchvision's decoding would cast
    the anchors and proposals to it: coordinates rounded to 1-8 px at COCO sizes. A no-op
    in fp32."""

    def decode_single(self, rel_codes, boxes):
        return super().decode_single(rel_codes.float(), boxes.float())


class Fp32ProposalRPN(RegionProposalNetwork):
    """torchvision's RPN, its proposals scored and suppressed in fp32: batched NMS offsets
    each level's boxes by up to (levels x image size) px, which bf16 would round to 8-32 px."""

    def filter_proposals(self, proposals, objectness, image_shapes, num_anchors_per_level):
        return super().filter_proposals(proposals.float(), objectness.float(), image_shapes,
                                        num_anchors_per_level)

    @classmethod
    def like(cls, rpn: RegionProposalNetwork) -> "Fp32ProposalRPN":
        """The same RPN (same head and anchors, same settings) with fp32 proposals."""
        out = cls(rpn.anchor_generator, rpn.head, rpn.proposal_matcher.high_threshold,
                  rpn.proposal_matcher.low_threshold, rpn.fg_bg_sampler.batch_size_per_image,
                  rpn.fg_bg_sampler.positive_fraction, rpn._pre_nms_top_n, rpn._post_nms_top_n,
                  rpn.nms_thresh, rpn.score_thresh)
        out.box_coder = Fp32BoxCoder(rpn.box_coder.weights, rpn.box_coder.bbox_xform_clip)
        return out


class KeypointHead(nn.Sequential):
    """The keypoint head: 3x3 convs on the 14x14 RoI features, each with the model's
    normalisation (torchvision's KeypointRCNNHeads has none; the paper's models are GN
    throughout) and ReLU; MSRA init, as torchvision's."""

    def __init__(self, in_channels: int, layers: list[int], norm_layer=None):
        modules, channels = [], in_channels
        for out in layers:
            modules.append(nn.Conv2d(channels, out, 3, 1, 1, bias=norm_layer is None))
            modules += [norm_layer(out)] if norm_layer is not None else []
            modules.append(nn.ReLU(inplace=True))
            channels = out
        super().__init__(*modules)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)


def build_mask_rcnn(model_cfg: dict, num_classes: int, fast_roi_align: bool = True) -> MaskRCNN:
    """Mask R-CNN, FPN on the config's ResNet (or VGG; a ViT: its simple feature pyramid);
    num_classes excludes background.
    With `keypoints` ({"num": K, "head": {"convs", "channels"}}) it also predicts K keypoints
    per detection (56x56 heatmaps from 14x14 RoI features, as Keypoint R-CNN).

    The box and mask heads pool with torchvision's MultiScaleRoIAlign settings (output 7 and
    14, sampling ratio 2). With `fast_roi_align` (the default) they use
    rethink.models.roi_align.FastMultiScaleRoIAlign: the same forward, and on CPU a backward pass
    about 2x faster than torchvision's (equal up to float rounding); no weights, so
    checkpoints do not depend on it.
    """
    norm_layer = norm_factory(model_cfg["norm"], model_cfg["gn_groups"])
    body = build_body(model_cfg)
    fpn_ch = model_cfg["fpn_channels"]
    if isinstance(body, ViT):  # one map: ViTDet's simple pyramid instead of an FPN
        backbone = SimpleFeaturePyramid(body, fpn_ch, norm_layer)
    else:
        backbone = BackboneWithFPN(
            body,
            return_layers={"layer1": "0", "layer2": "1", "layer3": "2", "layer4": "3"},
            in_channels_list=body.stage_channels,
            out_channels=fpn_ch,
            norm_layer=norm_layer,
        )
    box = model_cfg["box_head"]
    box_head = FastRCNNConvFCHead((fpn_ch, 7, 7), [box["conv_channels"]] * box["convs"],
                                  [box["fc"]], norm_layer=norm_layer)
    mask = model_cfg["mask_head"]
    mask_head = MaskRCNNHeads(fpn_ch, [mask["channels"]] * mask["convs"], 1, norm_layer=norm_layer)
    rpn = model_cfg["rpn"]
    pool = FastMultiScaleRoIAlign if fast_roi_align else MultiScaleRoIAlign
    detector = MaskRCNN(
        backbone,
        num_classes=None,
        min_size=model_cfg["min_size"],
        max_size=model_cfg["max_size"],
        rpn_pre_nms_top_n_train=rpn["pre_nms_train"],
        rpn_post_nms_top_n_train=rpn["post_nms_train"],
        rpn_pre_nms_top_n_test=rpn["pre_nms_test"],
        rpn_post_nms_top_n_test=rpn["post_nms_test"],
        rpn_batch_size_per_image=rpn["batch_per_image"],
        box_batch_size_per_image=model_cfg["rois_per_image"],
        box_roi_pool=pool(["0", "1", "2", "3"], output_size=7, sampling_ratio=2),
        box_head=box_head,
        box_predictor=FastRCNNPredictor(box["fc"], num_classes + 1),
        box_score_thresh=model_cfg.get("score_thresh", 0.05),  # inference-only keys:
        box_detections_per_img=model_cfg.get("detections_per_img", 100),  # training omits them
        mask_roi_pool=pool(["0", "1", "2", "3"], output_size=14, sampling_ratio=2),
        mask_head=mask_head,
        mask_predictor=MaskRCNNPredictor(mask["channels"], mask["channels"], num_classes + 1),
    )
    if model_cfg.get("masks", True) is False:  # boxes only: torchvision's RoIHeads then skips masks
        heads = detector.roi_heads
        heads.mask_roi_pool = heads.mask_head = heads.mask_predictor = None
    keypoints = model_cfg.get("keypoints")
    if keypoints:  # the keypoint task: torchvision's RoIHeads trains and predicts it beside masks
        head = keypoints["head"]
        heads = detector.roi_heads
        heads.keypoint_roi_pool = pool(["0", "1", "2", "3"], output_size=14, sampling_ratio=2)
        heads.keypoint_head = KeypointHead(fpn_ch, [head["channels"]] * head["convs"], norm_layer)
        heads.keypoint_predictor = KeypointRCNNPredictor(head["channels"], keypoints["num"])
    # Boxes decoded and proposals filtered in fp32 under autocast too (no weights: checkpoints
    # are unchanged, and fp32 runs compute exactly what torchvision's modules compute)
    detector.rpn = Fp32ProposalRPN.like(detector.rpn)
    coder = detector.roi_heads.box_coder
    detector.roi_heads.box_coder = Fp32BoxCoder(coder.weights, coder.bbox_xform_clip)
    # Input conventions of the backbone (the same for both inits); no weights, so checkpoints
    # do not depend on it. RGB in [0, 1] normalises exactly as torchvision's own transform.
    detector.transform = ConventionTransform(detector.transform.min_size, model_cfg["max_size"],
                                             model_input(model_cfg))
    return detector


def load_backbone(detector: MaskRCNN, state: dict) -> None:
    """Put pre-trained ResNet weights into the detector's backbone; every key must match."""
    body = detector.backbone.body
    missing, unexpected = body.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ValueError(f"backbone checkpoint does not fit model config: missing {missing[:5]}, "
                         f"unexpected {unexpected[:5]}")
