import pytest
import torch
import yaml
from torch import nn

from conftest import ROOT
from rethink.models import detector

CFG = yaml.safe_load((ROOT / "config.yaml").read_text())["model"]


def norm_types(module):
    return {type(m).__name__ for m in module.modules()
            if isinstance(m, (nn.GroupNorm, nn.modules.batchnorm._NormBase))
            or "BatchNorm" in type(m).__name__}


def test_gn_detector_has_groupnorm_everywhere_and_no_batchnorm():
    det = detector.build_mask_rcnn(CFG, num_classes=8)
    assert norm_types(det) == {"GroupNorm"}
    # GN in backbone, FPN and the mask head (the paper's from-scratch recipe).
    for part in (det.backbone.body, det.backbone.fpn, det.roi_heads.mask_head):
        assert any(isinstance(m, nn.GroupNorm) for m in part.modules()), part
    # Nothing is frozen.
    assert all(p.requires_grad for p in det.parameters())


def test_bn_option_gives_batchnorm():
    det = detector.build_mask_rcnn({**CFG, "norm": "BN"}, num_classes=3)
    assert "BatchNorm2d" in norm_types(det) and "GroupNorm" not in norm_types(det)


def test_pretrained_classifier_weights_load_into_detector_backbone():
    clf = detector.build_classifier(CFG, num_classes=5)
    for p in clf.parameters():
        nn.init.normal_(p)
    det = detector.build_mask_rcnn(CFG, num_classes=3)
    detector.load_backbone(det, detector.backbone_state(clf))
    body = det.backbone.body.state_dict()
    for k, v in detector.backbone_state(clf).items():
        assert torch.equal(body[k], v), k


def test_backbone_of_another_depth_is_rejected():
    clf = detector.build_classifier({**CFG, "depth": 18}, num_classes=5)
    det = detector.build_mask_rcnn(CFG, num_classes=3)
    try:
        detector.load_backbone(det, detector.backbone_state(clf))
    except ValueError as e:
        assert "does not fit" in str(e)
    else:
        raise AssertionError("mismatched backbone loaded")


def test_detector_trains_and_predicts_on_a_tiny_batch():
    torch.manual_seed(0)
    det = detector.build_mask_rcnn(CFG, num_classes=2)
    img = torch.rand(3, 100, 140)
    mask = torch.zeros(1, 100, 140, dtype=torch.uint8)
    mask[0, 20:60, 30:90] = 1
    target = {"boxes": torch.tensor([[30.0, 20, 90, 60]]), "labels": torch.tensor([1]), "masks": mask}
    losses = det([img], [target])
    assert set(losses) == {"loss_classifier", "loss_box_reg", "loss_mask", "loss_objectness",
                           "loss_rpn_box_reg"}
    sum(losses.values()).backward()
    det.eval()
    with torch.no_grad():
        out = det([img])[0]
    assert out["masks"].shape[-2:] == (100, 140)


def test_a_keypoint_model_adds_a_normalised_keypoint_head_and_trains_and_predicts_keypoints():
    torch.manual_seed(0)
    det = detector.build_mask_rcnn({**CFG, "keypoints": {"num": 5, "head": {"convs": 2, "channels": 32}}}, num_classes=2)
    head = det.roi_heads.keypoint_head
    assert det.roi_heads.has_keypoint() and norm_types(head) == {"GroupNorm"} and norm_types(det) == {"GroupNorm"}
    assert sum(isinstance(m, nn.Conv2d) for m in head.modules()) == 2
    img = torch.rand(3, 100, 140)
    mask = torch.zeros(1, 100, 140, dtype=torch.uint8)
    mask[0, 20:60, 30:90] = 1
    kp = torch.tensor([[[60.0, 20, 2], [90, 40, 2], [60, 60, 1], [30, 40, 2], [60, 40, 2]]])
    target = {"boxes": torch.tensor([[30.0, 20, 90, 60]]), "labels": torch.tensor([1]), "masks": mask,
              "keypoints": kp}
    losses = det([img], [target])
    assert "loss_keypoint" in losses and "loss_mask" in losses
    sum(losses.values()).backward()
    assert all(p.grad is not None for p in head.parameters())
    det.eval()
    with torch.no_grad():
        out = det([img])[0]
    assert out["keypoints"].shape[1:] == (5, 3) and len(out["keypoints"]) == len(out["boxes"])
    # without the key, no keypoint head (main's model is unchanged)
    assert not detector.build_mask_rcnn(CFG, num_classes=2).roi_heads.has_keypoint()


VGG = {**CFG, "arch": "vgg", "depth": 11, "width": 16, "norm": "none"}


def test_vgg_without_norm_has_no_normalisation_layer_and_every_parameter_trains():
    """The paper's VGG-16 run: no BN or GN anywhere (backbone, FPN, heads), MSRA init."""
    torch.manual_seed(0)
    det = detector.build_mask_rcnn(VGG, num_classes=2)
    assert norm_types(det) == set() and "stem" in dict(det.backbone.body.named_children())
    assert not any(isinstance(m, (nn.Identity,)) for m in det.backbone.body.modules())
    convs = [m for m in det.backbone.body.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 8 and all(m.bias is not None for m in convs)  # VGG-11's 8 conv layers
    # MSRA (He, fan-out) init: weight std sqrt(2 / (k * k * out)), biases zero
    last = convs[-1]
    assert abs(last.weight.std().item() - (2 / (9 * last.out_channels)) ** 0.5) < 0.1 * (2 / (9 * last.out_channels)) ** 0.5
    assert all(float(m.bias.abs().max()) == 0 for m in convs)
    img = torch.rand(3, 100, 140)
    mask = torch.zeros(1, 100, 140, dtype=torch.uint8)
    mask[0, 20:60, 30:90] = 1
    target = {"boxes": torch.tensor([[30.0, 20, 90, 60]]), "labels": torch.tensor([1]), "masks": mask}
    sum(det([img], [target]).values()).backward()
    untrained = [n for n, p in det.named_parameters() if p.grad is None or not p.requires_grad]
    assert untrained == []
    # its classifier's weights are the detector's backbone (pre-training feeds detection)
    classifier = detector.build_classifier(VGG, num_classes=16)
    assert classifier(torch.rand(2, 3, 64, 64)).shape == (2, 16)
    detector.load_backbone(det, detector.backbone_state(classifier))


def test_vgg_depths_and_norm_none_are_checked():
    import pytest
    with pytest.raises(ValueError, match="model.depth must be one of \\[11, 16\\] for model.arch: vgg"):
        detector.build_body({**VGG, "depth": 18})
    with pytest.raises(ValueError, match="model.norm: none needs model.arch: vgg"):
        detector.build_body({**CFG, "norm": "none"})
    deep = [m for m in detector.build_body({**VGG, "depth": 16}).modules() if isinstance(m, nn.Conv2d)]
    assert len(deep) == 13  # VGG-16's 13 conv layers


@pytest.mark.slow
def test_proposals_and_boxes_are_fp32_under_bf16_autocast():
    from torchvision.models.detection.rpn import RegionProposalNetwork

    from rethink.models.detector import Fp32ProposalRPN
    torch.manual_seed(0)
    model = detector.build_mask_rcnn(CFG, num_classes=2).eval()
    images = [torch.rand(3, 128, 192), torch.rand(3, 192, 128)]
    caught = []
    model.rpn.register_forward_hook(lambda mod, inp, out: caught.append(out[0]))
    with torch.no_grad():
        plain = model(images)
        model.rpn.__class__ = RegionProposalNetwork  # torchvision's own: the same numbers in fp32
        theirs = model(images)
        model.rpn.__class__ = Fp32ProposalRPN
        assert all(torch.equal(a, b) for a, b in zip(caught[0], caught[1]))
        assert all(torch.equal(a["boxes"], b["boxes"]) for a, b in zip(plain, theirs))
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = model(images)
    proposals = caught[-1]
    assert all(p.dtype == torch.float32 for p in proposals)
    assert all(o["boxes"].dtype == torch.float32 for o in out)
    # decoded in fp32: coordinates not rounded to bf16's grid (8 bits of mantissa)
    coords = torch.cat(proposals).flatten()
    assert (coords != coords.bfloat16().float()).float().mean() > 0.5
