"""The ViT backbone (model.arch: vit) and ViTDet's simple feature pyramid under the
detector's heads (issue 35)."""
import pytest
import torch
import yaml

from conftest import ROOT
from rethink.core import config as study_config
from rethink.models import detector
from rethink.models.vit import STRIDES, SimpleFeaturePyramid, ViT

CONFIG = yaml.safe_load((ROOT / "config.yaml").read_text())
VIT = {**study_config.model_settings({**CONFIG, "model": {**CONFIG["model"], "arch": "vit"}}, False),
       "depth": 2, "width": 32}


def test_the_default_s_model_settings_have_no_vit_keys():
    """The ViT's keys reach a ViT's jobs alone: every other job's settings (rerun triggers,
    lineage) are those before the key existed."""
    assert "vit" not in study_config.model_settings(CONFIG, False)
    assert VIT["vit"] == CONFIG["model"]["vit"] and VIT["arch"] == "vit"


@pytest.mark.parametrize("patch", [4, 8, 16])
def test_the_simple_pyramid_gives_a_resnet_fpn_s_levels_from_one_map(patch):
    vit = ViT(depth=1, width=32, patch_size=patch, heads=2, pos_size=64)
    pyramid = SimpleFeaturePyramid(vit, 24, lambda c: torch.nn.GroupNorm(8, c))
    out = pyramid(torch.rand(1, 3, 128, 192))
    assert list(out) == ["0", "1", "2", "3", "pool"]
    for name, stride in zip(out, (*STRIDES, 64)):
        assert out[name].shape == (1, 24, 128 // stride, 192 // stride), (patch, name)


def test_position_embedding_is_the_learnt_one_on_its_grid_and_interpolated_elsewhere():
    vit = ViT(depth=1, width=16, patch_size=8, heads=2, pos_size=64)
    assert torch.equal(vit.position(8, 8), vit.pos_embed)
    wide = vit.position(16, 24)
    assert wide.shape == (1, 16 * 24, 16)
    assert not torch.allclose(wide[:, :64], vit.pos_embed)


def test_a_vit_mask_rcnn_trains_from_its_pre_trained_classifier_and_predicts():
    torch.manual_seed(0)
    classifier = detector.build_classifier(VIT, num_classes=5)
    assert classifier(torch.rand(2, 3, 64, 64)).shape == (2, 5)
    det = detector.build_mask_rcnn(VIT, num_classes=2)
    detector.load_backbone(det, detector.backbone_state(classifier))
    for name, value in detector.backbone_state(classifier).items():
        assert torch.equal(det.backbone.body.state_dict()[name], value), name
    img = torch.rand(3, 100, 140)
    mask = torch.zeros(1, 100, 140, dtype=torch.uint8)
    mask[0, 20:60, 30:90] = 1
    target = {"boxes": torch.tensor([[30.0, 20, 90, 60]]), "labels": torch.tensor([1]), "masks": mask}
    losses = det([img], [target])
    sum(losses.values()).backward()
    body = det.backbone.body
    for param in (body.patch_embed.weight, body.pos_embed, body.blocks[-1].fc2.weight):
        assert param.grad is not None and param.grad.abs().sum() > 0
    det.eval()
    with torch.no_grad():
        out = det([img])[0]
    assert out["masks"].shape[-2:] == (100, 140)


def test_a_resnet_backbone_does_not_load_into_a_vit_detector():
    resnet = detector.build_classifier(CONFIG["model"], num_classes=5)
    with pytest.raises(ValueError, match="does not fit model config"):
        detector.load_backbone(detector.build_mask_rcnn(VIT, num_classes=2), detector.backbone_state(resnet))


@pytest.mark.parametrize("model, message", [
    ({"arch": "vit", "depth": 2, "width": 30}, r"model.width: 30 is no multiple of model.vit.heads \(4\)"),
    ({"arch": "vit", "depth": 40, "width": 32}, r"model.depth: 40 is no depth of arch vit"),
    ({"arch": "vit", "depth": 2, "width": 32, "vit": {**CONFIG["model"]["vit"], "pos_size": 60}},
     r"model.vit.pos_size: 60 is no multiple of model.vit.patch_size \(8\)"),
])
def test_bad_vit_shapes_are_refused_naming_the_key(model, message):
    cfg = {**CONFIG, "model": {**CONFIG["model"], **model}}
    with pytest.raises(study_config.ConfigError, match=message):
        study_config.check(cfg)


def test_a_vit_model_variant_pre_trains_its_own_backbone():
    cfg = {**CONFIG, "study": {**CONFIG["study"], "models": [{"name": "vit", "arch": "vit", "depth": 2,
                                                               "width": 32, "schedules": [1, 6]}]}}
    study_config.check(cfg)
    v = study_config.variants(cfg)["vit"]
    assert v.model == {"arch": "vit", "depth": 2, "width": 32} and v.own_pretraining
    model = study_config.model_settings(cfg, False, variant=v)
    assert model["arch"] == "vit" and model["vit"] == CONFIG["model"]["vit"]
