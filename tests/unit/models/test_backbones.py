"""Backbones users already have (rethink.models.backbones): torchvision and timm ResNets saved in
their own formats, Detectron .pkl blobs, their input conventions, and one-line errors for
files that do not fit.

Every bad-input case is one test item, parametrised over BACKBONE_CASES (counted in the
suite's summary line)."""
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import timm
import torch
import torchvision
import yaml
from safetensors.torch import save_file
from torchvision.transforms import v2

from conftest import ROOT
from rethink.core import conventions
from rethink.core.config import ConfigError, check
from rethink.core.conventions import DETECTRON_BGR, IMAGENET_RGB, BackboneError
from rethink.engine import checkpoint
from rethink.models import backbones
from rethink.models.backbones import convert
from rethink.models.detector import ResNet, build_mask_rcnn

BASE = {"depth": 18, "width": 64, "norm": "BN", "gn_groups": 32, "stride_in_1x1": False}


def cfg(**kw):
    return {**BASE, **kw}


def randomise_norms(model):
    """Non-trivial norm parameters and statistics, so a misplaced tensor shows."""
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, (torch.nn.BatchNorm2d, torch.nn.GroupNorm)):
            m.weight.data = 0.5 + torch.rand(m.weight.shape, generator=g)
            m.bias.data = 0.1 * torch.randn(m.bias.shape, generator=g)
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean = 0.1 * torch.randn(m.running_mean.shape, generator=g)
            m.running_var = 0.5 + torch.rand(m.running_var.shape, generator=g)
    return model.eval()


def ours_from(path, model_cfg):
    state, conventions, fmt = convert(path, model_cfg)
    net = ResNet(model_cfg["depth"], model_cfg["width"], model_cfg["norm"], model_cfg["gn_groups"],
                 stride_in_1x1=model_cfg["stride_in_1x1"])
    net.load_state_dict(state)  # strict: every key in place
    return net.eval(), conventions, fmt


def body_features(source, x):
    """Stage-4 features of a torchvision-layout ResNet (torchvision's or timm's)."""
    act = getattr(source, "act1", None) or source.relu
    x = source.maxpool(act(source.bn1(source.conv1(x))))
    return source.layer4(source.layer3(source.layer2(source.layer1(x))))


def detector_normalised(model_cfg, conventions, image):
    det = build_mask_rcnn({**small_detector(model_cfg), "input": conventions}, 2)
    return det.transform.normalize(image)


def small_detector(model_cfg):
    return {**model_cfg, "fpn_channels": 16, "box_head": {"convs": 0, "conv_channels": 16, "fc": 32},
            "mask_head": {"convs": 1, "channels": 16}, "min_size": 64, "max_size": 96,
            "rpn": {"pre_nms_train": 10, "post_nms_train": 10, "pre_nms_test": 10, "post_nms_test": 10,
                    "batch_per_image": 16}, "rois_per_image": 16}


def assert_same_features(got, expected):
    """Equal up to float32 rounding, relative to the features' scale (FrozenBN folds the
    statistics into one scale and bias: the same function, rounded differently)."""
    assert got.shape == expected.shape
    diff, scale = (got - expected).abs().max().item(), expected.abs().max().item()
    assert diff <= 1e-5 * scale, (diff, scale)


X = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
IMAGE = torch.rand(3, 40, 56, generator=torch.Generator().manual_seed(2))


@pytest.mark.parametrize("arch,depth,norm", [("resnet18", 18, "BN"), ("resnet50", 50, "BN"),
                                             ("resnet50", 50, "FrozenBN")])
def test_torchvision_resnet_pth_gives_the_source_models_features(tmp_path, arch, depth, norm):
    source = randomise_norms(getattr(torchvision.models, arch)(weights=None))
    path = tmp_path / f"{arch}.pth"
    torch.save(source.state_dict(), path)
    ours, conventions, fmt = ours_from(path, cfg(depth=depth, norm=norm))
    assert fmt == backbones.STATE_DICT
    with torch.no_grad():
        assert_same_features(ours(X), body_features(source, X))
    # torchvision's ImageNet weights expect ImageNet mean/std on RGB in [0, 1]
    normalise = v2.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])
    assert conventions == IMAGENET_RGB
    assert torch.equal(detector_normalised(cfg(depth=depth, norm=norm), conventions, IMAGE), normalise(IMAGE))


@pytest.mark.parametrize("suffix", [".safetensors", ".pth"])
def test_timm_resnet50_gn_gives_the_source_models_features(tmp_path, suffix):
    source = randomise_norms(timm.create_model("resnet50_gn", pretrained=False))
    path = tmp_path / f"resnet50_gn{suffix}"
    if suffix == ".safetensors":
        save_file(source.state_dict(), str(path))
    else:
        torch.save(source.state_dict(), path)
    ours, conventions, fmt = ours_from(path, cfg(depth=50, norm="GN"))
    assert fmt == (backbones.SAFETENSORS if suffix == ".safetensors" else backbones.STATE_DICT)
    with torch.no_grad():
        assert_same_features(ours(X), source.forward_features(X))
    data = timm.data.resolve_data_config({}, model=source)
    assert conventions == {"channels": "RGB", "range": 1, "mean": list(data["mean"]), "std": list(data["std"])}
    expected = v2.Normalize(mean=list(data["mean"]), std=list(data["std"]))(IMAGE)
    assert torch.equal(detector_normalised(cfg(depth=50, norm="GN"), conventions, IMAGE), expected)


def detectron_blobs(net, norm_suffix):
    """`net`'s weights under Detectron's blob names, written out name by name (independently
    of rethink.models.backbones' mapping), plus blobs a model-zoo file also holds."""
    sd = {k: v.numpy().copy() for k, v in net.state_dict().items()}
    stem_norm = "conv1_gn" if norm_suffix == "gn" else "res_conv1_bn"
    blobs = {"conv1_w": sd["conv1.weight"], f"{stem_norm}_s": sd["bn1.weight"], f"{stem_norm}_b": sd["bn1.bias"]}
    for stage in range(1, 5):
        for block in range(len(getattr(net, f"layer{stage}"))):
            ours, theirs = f"layer{stage}.{block}.", f"res{stage + 1}_{block}_"
            for n, letter in ((1, "a"), (2, "b"), (3, "c")):
                blobs[f"{theirs}branch2{letter}_w"] = sd[f"{ours}conv{n}.weight"]
                blobs[f"{theirs}branch2{letter}_{norm_suffix}_s"] = sd[f"{ours}bn{n}.weight"]
                blobs[f"{theirs}branch2{letter}_{norm_suffix}_b"] = sd[f"{ours}bn{n}.bias"]
            if f"{ours}downsample.0.weight" in sd:
                blobs[f"{theirs}branch1_w"] = sd[f"{ours}downsample.0.weight"]
                blobs[f"{theirs}branch1_{norm_suffix}_s"] = sd[f"{ours}downsample.1.weight"]
                blobs[f"{theirs}branch1_{norm_suffix}_b"] = sd[f"{ours}downsample.1.bias"]
    blobs["fc1000_w"] = np.zeros((1000, 2048), np.float32)
    blobs["conv1_w_momentum"] = np.zeros_like(blobs["conv1_w"])
    return blobs


def test_detectron_gn_pkl_lands_every_blob_in_its_place(tmp_path):
    net = randomise_norms(ResNet(50, 64, "GN", 32))
    path = tmp_path / "R-50-GN.pkl"
    path.write_bytes(pickle.dumps({"blobs": detectron_blobs(net, "gn")}, protocol=2))
    state, conventions, fmt = convert(path, cfg(depth=50, norm="GN"))
    assert fmt == backbones.DETECTRON
    assert conventions == DETECTRON_BGR
    expected = net.state_dict()
    assert set(state) == set(expected)
    for key, value in expected.items():
        assert torch.equal(state[key], value), key
    # Detectron's PIXEL_MEANS on BGR in 0-255, no std
    mean = torch.tensor([102.9801, 115.9465, 122.7717])[:, None, None]
    bgr255 = IMAGE.flip(0) * 255 - mean
    got = detector_normalised(cfg(depth=50, norm="GN"), conventions, IMAGE)
    assert torch.allclose(got, bgr255, atol=1e-4)


@pytest.mark.slow
def test_detectron_frozen_bn_pkl_puts_the_stride_on_the_1x1(tmp_path):
    """MSRA's R-50.pkl: AffineChannel norms (scale, bias) and the stride on the first 1x1."""
    net = randomise_norms(ResNet(50, 64, "FrozenBN", 32, stride_in_1x1=True))
    assert net.layer2[0].conv1.stride == (2, 2) and net.layer2[0].conv2.stride == (1, 1)
    path = tmp_path / "R-50.pkl"
    path.write_bytes(pickle.dumps(detectron_blobs(net, "bn"), protocol=2))
    model_cfg = cfg(depth=50, norm="FrozenBN", stride_in_1x1=True)
    ours, conventions, _ = ours_from(path, model_cfg)
    for name, m in ours.named_modules():  # FrozenBN computing exactly the affine scale and bias
        if isinstance(m, torchvision.ops.FrozenBatchNorm2d):
            scale = m.weight * (m.running_var + m.eps).rsqrt()
            assert torch.allclose(scale, m.weight, rtol=1e-6), name
            assert torch.equal(m.running_mean, torch.zeros_like(m.running_mean)), name
    with pytest.raises(BackboneError, match=r"stride on the first 1x1.*set model.stride_in_1x1: true"):
        convert(path, cfg(depth=50, norm="FrozenBN"))


def test_our_own_pt_converts_to_itself(tmp_path):
    net = randomise_norms(ResNet(18, 64, "GN", 16))
    path = tmp_path / "backbone.pt"
    checkpoint.save({"model": net.state_dict(), "meta": {"model": {"gn_groups": 16}, "input": IMAGENET_RGB}}, path)
    state, conventions, fmt = convert(path, cfg(norm="GN", gn_groups=16))
    assert fmt == backbones.OURS and conventions == IMAGENET_RGB
    assert all(torch.equal(state[k], v) for k, v in net.state_dict().items())


def test_a_scratch_branch_checks_the_given_backbone_first(tmp_path):
    path = tmp_path / "r18.pth"
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), path)
    given = {"checkpoint": str(path), "input": None, "norm": "BN"}
    backbones.check_given_for_scratch({**cfg(), "input": IMAGENET_RGB}, given)  # fits: no error
    with pytest.raises(SystemExit, match=r"r18.pth.*set model.depth: 18"):
        backbones.check_given_for_scratch({**cfg(depth=50), "input": IMAGENET_RGB}, given)
    with pytest.raises(SystemExit, match=r"r18.pth.*conflicting conventions"):
        backbones.check_given_for_scratch({**cfg(), "input": DETECTRON_BGR}, given)
    backbones.check_given_for_scratch(cfg(norm="GN", depth=50), given)  # a GN variant: not its backbone
    backbones.check_given_for_scratch(cfg(depth=50), None)  # no given backbone


def test_pretrain_input_without_a_given_backbone_is_a_config_error():
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    config["pretrain"]["input"] = dict(DETECTRON_BGR)
    with pytest.raises(ConfigError, match="pretrain.input .* pretrain.checkpoint, which is not set"):
        check(config)


class Payload:
    def __reduce__(self):
        return os.system, (f"touch {MARKER}",)


MARKER = Path("/tmp/rethink-test-pickle-payload-ran")


def test_malicious_pkl_is_refused_without_running_it(tmp_path):
    MARKER.unlink(missing_ok=True)
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"conv1_w": np.zeros((1,)), "x": Payload()}, protocol=2))
    with pytest.raises(BackboneError, match=r"evil.pkl.*refused to load (posix|os)\.system"):
        convert(path, cfg())
    assert not MARKER.exists()  # the callable never ran


def test_declared_input_reads_only_the_header(tmp_path):
    path = tmp_path / "b.pkl"
    path.write_bytes(pickle.dumps({"conv1_w": np.zeros(1)}, protocol=2))
    assert conventions.declared_input(path, None) == DETECTRON_BGR
    custom = {"channels": "RGB", "range": 255, "mean": [1, 2, 3], "std": [4, 5, 6]}
    assert conventions.declared_input(path, custom)["range"] == 255


# --------------------------------------------------------------------------- bad input
def bad_unknown_format(tmp_path):
    path = tmp_path / "weights.bin"
    path.write_bytes(b"\x00\x01 not a checkpoint" * 10)
    return path, cfg(), r"weights.bin: not a backbone format"


def bad_truncated_pth(tmp_path):
    path = tmp_path / "r18.pth"
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return path, cfg(), r"r18.pth.*corrupt or truncated"


def bad_truncated_safetensors(tmp_path):
    path = tmp_path / "r18.safetensors"
    save_file(torchvision.models.resnet18(weights=None).state_dict(), str(path))
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return path, cfg(), r"r18.safetensors.*corrupt or truncated"


def bad_truncated_pkl(tmp_path):
    path = tmp_path / "R-50-GN.pkl"
    path.write_bytes(pickle.dumps(detectron_blobs(ResNet(50, 64, "GN"), "gn"), protocol=2)[:5000])
    return path, cfg(depth=50, norm="GN"), r"R-50-GN.pkl.*corrupt or truncated"


def bad_other_depth(tmp_path):
    path = tmp_path / "r18.pth"
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), path)
    return path, cfg(depth=50), (r"r18.pth.*first key of another shape: layer1.0.conv1.weight.*"
                                 r"the file is depth 18, width 64, norm BN.*set model.depth: 18$")


def bad_other_width(tmp_path):
    path = tmp_path / "r18.pth"
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), path)
    return path, cfg(width=32), r"r18.pth.*first key of another shape: conv1.weight.*set model.width: 64$"


def bad_gn_file_for_bn_model(tmp_path):
    path = tmp_path / "gn.safetensors"
    save_file(timm.create_model("resnet50_gn", pretrained=False).state_dict(), str(path))
    return path, cfg(depth=50, norm="BN"), r"gn.safetensors.*norms are GN.*set model.norm to GN"


def bad_bn_file_for_gn_model(tmp_path):
    path = tmp_path / "r18.pth"
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), path)
    return path, cfg(norm="GN"), r"r18.pth.*norms are BN.*set model.norm to BN, SyncBN or FrozenBN"


def bad_gn_group_count(tmp_path):
    path = tmp_path / "ours.pt"
    net = ResNet(18, 64, "GN", 16)
    checkpoint.save({"model": net.state_dict(), "meta": {"model": {"gn_groups": 16}, "input": IMAGENET_RGB}}, path)
    return path, cfg(norm="GN"), r"ours.pt.*GroupNorm with 16 groups but model.gn_groups is 32"


def bad_conflicting_conventions(tmp_path):
    path = tmp_path / "ours.pt"
    net = ResNet(18, 64, "BN")
    checkpoint.save({"model": net.state_dict(), "meta": {"model": {}, "input": IMAGENET_RGB}}, path)
    return path, cfg(), r"ours.pt.*conflicting conventions", DETECTRON_BGR


def bad_deep_stem(tmp_path):
    path = tmp_path / "r50d.pth"
    torch.save(timm.create_model("resnet50d", pretrained=False).state_dict(), path)
    return path, cfg(depth=50), r"r50d.pth.*first key missing from the file: conv1.weight \(the file has a deep stem"


BACKBONE_CASES = ("unknown_format", "truncated_pth", "truncated_safetensors", "truncated_pkl",
                  "other_depth", "other_width", "gn_file_for_bn_model", "bn_file_for_gn_model",
                  "gn_group_count", "conflicting_conventions", "deep_stem")


@pytest.mark.parametrize("case", BACKBONE_CASES)
def test_bad_backbone_is_one_clear_line(case, tmp_path):
    path, model_cfg, message, *override = globals()[f"bad_{case}"](tmp_path)
    with pytest.raises(BackboneError, match=message) as e:
        convert(path, model_cfg, override[0] if override else None)
    text = str(e.value)
    assert "\n" not in text and str(path) in text, text


# --------------------------------------------------------------------------- ViT (issue 35)
VIT_MODEL = {**yaml.safe_load((ROOT / "config.yaml").read_text())["model"], "arch": "vit", "depth": 2,
             "width": 32, "vit": {"patch_size": 8, "heads": 2, "mlp_ratio": 2.0, "pos_size": 32}}


def timm_vit(**kwargs):
    from timm.models.vision_transformer import VisionTransformer
    torch.manual_seed(0)
    model = VisionTransformer(img_size=32, patch_size=8, embed_dim=32, depth=2, num_heads=2, mlp_ratio=2.0,
                              num_classes=10, **kwargs)
    for p in model.parameters():  # random, and far from timm's init so that nothing cancels
        torch.nn.init.normal_(p, std=0.2)
    return model.eval()


@pytest.mark.parametrize("suffix", [".safetensors", ".pth"])
def test_timm_vit_gives_the_source_models_features(tmp_path, suffix):
    """A timm VisionTransformer without a class token (ViTDet's detector has none), random
    weights saved in timm's own formats: this pipeline's ViT gives its features."""
    from rethink.models.vit import build_vit
    source = timm_vit(class_token=False, global_pool="avg", fc_norm=False)
    path = tmp_path / f"vit{suffix}"
    save_file(source.state_dict(), str(path)) if suffix == ".safetensors" else torch.save(source.state_dict(), path)
    state, conv, _ = convert(path, VIT_MODEL)
    assert conv == IMAGENET_RGB
    ours = build_vit(VIT_MODEL).eval()
    ours.load_state_dict(state)
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        expected = source.forward_features(x)
        got = ours(x).flatten(2).transpose(1, 2)
    assert torch.allclose(got, expected, atol=1e-5), (got - expected).abs().max()


def test_a_timm_vit_with_a_class_token_loads_without_it_into_the_detector(tmp_path):
    """MAE's and supervised timm ViTs have a class token: it and its position are dropped,
    the grid's positions kept in order, and the detector starts from the rest."""
    source = timm_vit()
    path = tmp_path / "mae.pth"
    torch.save({"model": source.state_dict()}, path)  # MAE's own checkpoints wrap it so
    state, _, _ = convert(path, VIT_MODEL)
    assert "cls_token" not in state and torch.equal(state["pos_embed"], source.pos_embed[:, 1:])
    det = build_mask_rcnn(VIT_MODEL, num_classes=2)
    det.backbone.body.load_state_dict(state)


@pytest.mark.parametrize("change, message", [
    ({"depth": 3}, r"the file is a ViT of depth 2, width 32, patch 8, .*: set model.depth: 2"),
    ({"vit": {"patch_size": 4, "heads": 2, "mlp_ratio": 2.0, "pos_size": 32}}, r"set model.vit.patch_size: 8"),
    ({"vit": {"patch_size": 8, "heads": 2, "mlp_ratio": 2.0, "pos_size": 64}},
     r"its position embedding has 17 positions \(a 4x4 grid: images of 32 px\).*set model.vit.pos_size: 32"),
    ({"vit": {"patch_size": 8, "heads": 2, "mlp_ratio": 4.0, "pos_size": 32}},
     r"blocks.0.fc1.weight is \(64, 32\) in the file, \(128, 32\) in the model \(model.vit.mlp_ratio"),
    ({"arch": "resnet", "depth": 10}, r"a ViT backbone, but model.arch is resnet: set model.arch: vit"),
])
def test_a_vit_file_that_does_not_fit_is_one_line_naming_the_file_and_the_key(tmp_path, change, message):
    path = tmp_path / "vit.pth"
    torch.save(timm_vit().state_dict(), path)
    with pytest.raises(BackboneError, match=message) as err:
        convert(path, {**VIT_MODEL, **change})
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_a_vit_with_layer_scale_is_refused_naming_the_key(tmp_path):
    path = tmp_path / "ls.pth"
    torch.save(timm_vit(init_values=1e-5).state_dict(), path)
    with pytest.raises(BackboneError, match=r"first key the model lacks: blocks.0.ls1.gamma"):
        convert(path, VIT_MODEL)
