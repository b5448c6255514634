"""Backbones that already exist: this project's `.pt`, torchvision and timm ResNet state
dicts (`.pth`, `.safetensors`), Detectron's (Caffe2) `.pkl`, and timm's VisionTransformer
state dicts (supervised or MAE; `model.arch: vit`), read without running code from the file,
checked against `model.*` and converted to this project's `.pt`.

Every backbone carries the input conventions it was trained with (channel order, value
range, pixel mean and std), and the detector normalises its input that way
(`rethink.models.detector.build_mask_rcnn`, `model.input`), for both initialisations alike. The
conventions follow from the file's format, so the workflow knows them before anything is
read (`declared_input`, no torch); `pretrain.input` overrides them for a state dict of
another origin, and a file that records conventions of its own must agree with it.

    python -m rethink.models.backbones --checkpoint R-50-GN.pkl --model JSON --input JSON \
        --out backbone.pt
"""
from __future__ import annotations

import argparse
import json
import math
import pickle
import re
import sys
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from rethink.core.atomic import disk_full_exits, sha1_file
from rethink.core.config import json_arg, pretrain_norm
from rethink.core.conventions import BackboneError, check_input, declared_input, sniff
from rethink.engine import checkpoint
from rethink.models.detector import DEPTHS, ResNet
from rethink.models.vit import build_vit

OURS = "this project's .pt"
STATE_DICT = "torchvision- or timm-layout state dict"
SAFETENSORS = "safetensors state dict (timm)"
DETECTRON = "Detectron (Caffe2) .pkl"
GN_GROUPS_IF_UNRECORDED = 32  # timm's resnet*_gn and Detectron's GN models: 32 groups
PICKLE_SAFE = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
               ("numpy", "ndarray"), ("numpy", "dtype"), ("collections", "OrderedDict"),
               ("_codecs", "encode")}  # how Python 3 pickles bytes at protocol 2


def check_given_for_scratch(model_cfg: dict, given: dict | None) -> None:
    """A scratch branch's first job: stop, as import_backbone would, when the study's given
    backbone (`given`: rethink.core.config.given_backbone_settings, a file the workflow writes)
    does not fit, so that no training starts on a bad file. Skipped for norms it does not serve."""
    if not given or pretrain_norm(model_cfg["norm"]) != given["norm"]:
        return
    try:
        convert(given["checkpoint"], model_cfg, given["input"])
    except BackboneError as e:
        raise SystemExit(f"error: {e}") from e


class _BlobUnpickler(pickle.Unpickler):
    """Admits numpy arrays, numbers, strings and plain containers; refuses anything else by
    name, before it is called (a pickle can name any callable)."""

    def find_class(self, module, name):
        if (module, name) in PICKLE_SAFE:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refused to load {module}.{name}: a Detectron .pkl holds only "
                                     f"arrays, numbers, strings and containers")


def _read_pickle(path: Path) -> dict:
    try:
        with path.open("rb") as f:
            doc = _BlobUnpickler(f, encoding="latin1").load()  # latin1: Python 2 pickles
    except pickle.UnpicklingError as e:
        if "refused" in str(e):
            raise BackboneError(f"pretrain.checkpoint {path}: {e}; not loaded") from e
        raise BackboneError(f"pretrain.checkpoint {path}: corrupt or truncated pickle: {e}") from e
    except (EOFError, ValueError, TypeError, AttributeError, IndexError) as e:
        raise BackboneError(f"pretrain.checkpoint {path}: corrupt or truncated pickle: {e}") from e
    if isinstance(doc, dict) and isinstance(doc.get("blobs"), dict):  # model-zoo detection models
        doc = doc["blobs"]
    if not isinstance(doc, dict) or "conv1_w" not in doc:
        raise BackboneError(f"pretrain.checkpoint {path}: a pickle without Detectron's blob names "
                            f"(no conv1_w)")
    return {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in doc.items()
            if isinstance(v, np.ndarray)}


_DETECTRON_BODY = re.compile(r"^(conv1_w|res_conv1_bn_[sb]|conv1_gn_[sb]|"
                             r"res(\d)_(\d+)_branch(1|2[abc])(_w|_bn_[sb]|_gn_[sb]))$")


def from_detectron(blobs: dict) -> tuple[dict, str, list[str]]:
    """Detectron's blob names to torchvision's: (state, norm kind, ignored blob names).
    Norm kind: GN, or "affine" for Detectron's frozen BN (AffineChannel: scale and bias)."""
    state, ignored = {}, []
    branch = {"1": "downsample.", "2a": "1", "2b": "2", "2c": "3"}
    norm = "GN" if "conv1_gn_s" in blobs else "affine"
    for name, value in blobs.items():
        m = _DETECTRON_BODY.match(name)
        if m is None:
            ignored.append(name)
            continue
        if m.group(2) is None:  # the stem
            key = "conv1.weight" if name == "conv1_w" else f"bn1.{'weight' if name[-1] == 's' else 'bias'}"
        else:
            stage, block, br, kind = m.group(2), m.group(3), m.group(4), m.group(5)
            prefix = f"layer{int(stage) - 1}.{block}."
            if br == "1":
                key = prefix + ("downsample.0.weight" if kind == "_w" else
                                f"downsample.1.{'weight' if kind[-1] == 's' else 'bias'}")
            else:
                n = branch[br]
                key = prefix + (f"conv{n}.weight" if kind == "_w" else
                                f"bn{n}.{'weight' if kind[-1] == 's' else 'bias'}")
        state[key] = value
    if norm == "affine":  # frozen BN as FrozenBatchNorm2d: mean 0 and var 1 - eps give scale, bias
        eps = 1e-5  # torchvision's FrozenBatchNorm2d default, the one model.norm FrozenBN builds
        for key in [k for k in state if k.endswith(".weight") and ("bn" in k or "downsample.1" in k)]:
            base = key[: -len("weight")]
            state[base + "running_mean"] = torch.zeros_like(state[key])
            state[base + "running_var"] = torch.full_like(state[key], 1 - eps)
    return state, norm, ignored


def read(path: str | Path) -> tuple[str, dict, dict]:
    """(format, tensors in torchvision's ResNet naming incl. any fc, what the file records
    about itself: ours its meta, Detectron its norm kind)."""
    path = Path(path)
    kind = sniff(path)
    if kind == "pickle":
        state, norm, ignored = from_detectron(_read_pickle(path))
        return DETECTRON, state, {"norm_kind": norm, "ignored": ignored}
    if kind == "safetensors":
        try:
            return SAFETENSORS, load_file(str(path)), {}
        except (SafetensorError, OSError, ValueError) as e:
            raise BackboneError(f"pretrain.checkpoint {path}: corrupt or truncated .safetensors: {e}") from e
    try:
        doc = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise BackboneError(f"pretrain.checkpoint {path}: holds objects other than tensors and plain "
                            f"data: not loaded (read with weights_only=True): {e}") from e
    except Exception as e:  # truncated zips fail in many ways
        raise BackboneError(f"pretrain.checkpoint {path}: corrupt or truncated: {e}") from e
    if isinstance(doc, dict) and isinstance(doc.get("model"), dict) and isinstance(doc.get("meta"), dict):
        return OURS, doc["model"], doc["meta"]
    for wrapper in ("state_dict", "model"):  # common training-script wrappers
        if isinstance(doc, dict) and isinstance(doc.get(wrapper), dict):
            doc = doc[wrapper]
    if not (isinstance(doc, dict) and doc and all(torch.is_tensor(v) for v in doc.values())):
        top = list(doc)[:6] if isinstance(doc, dict) else type(doc).__name__
        raise BackboneError(f"pretrain.checkpoint {path}: not a state dict of tensors (top level: {top})")
    return STATE_DICT, {k.removeprefix("module."): v for k, v in doc.items()}, {}


def shape_of(state: dict) -> dict:
    """Depth (None if no known one), width and norm of a ResNet state dict, in config terms."""
    blocks = [len({k.split(".")[1] for k in state if k.startswith(f"layer{i}.")}) for i in range(1, 5)]
    bottleneck = any(k.endswith(".conv3.weight") for k in state)
    depth = next((d for d, (b, layers) in DEPTHS.items()
                  if layers == blocks and (b.__name__ == "Bottleneck") == bottleneck), None)
    return {"depth": depth, "blocks": blocks, "bottleneck": bottleneck,
            "width": state["conv1.weight"].shape[0] if "conv1.weight" in state else None,
            "norm": "BN" if "bn1.running_mean" in state else "GN"}


def describe(state: dict) -> str:
    """What a ResNet state dict holds, in config terms (for messages)."""
    s = shape_of(state)
    depth = s["depth"] or f"? ({s['blocks']} {'Bottleneck' if s['bottleneck'] else 'BasicBlock'} blocks)"
    return f"depth {depth}, width {s['width'] or '?'}, norm {s['norm']}"


def convert(path: str | Path, model_cfg: dict, input_override: dict | None = None) -> tuple[dict, dict, str]:
    """(state for rethink.models.detector.ResNet(model_cfg) without fc, input conventions, format) of
    backbone `path`, or BackboneError naming the first thing that does not fit (including
    model_cfg's input conventions, where it states them)."""

    path = Path(path)
    fmt, state, recorded = read(path)
    conventions = declared_input(path, input_override)
    where = f"pretrain.checkpoint {path} ({fmt})"
    if fmt == OURS and "input" in recorded and check_input(recorded["input"], where) != conventions:
        raise BackboneError(f"{where}: conflicting conventions: the file records input "
                            f"{recorded['input']}, pretrain.input says {conventions}")
    if "input" in model_cfg and model_cfg["input"] != conventions:
        raise BackboneError(f"{where}: conflicting conventions: the file's are {conventions}, the "
                            f"model config's (model.input) {model_cfg['input']}")
    vit_file = any(k.startswith(("patch_embed.", "blocks.")) for k in state)
    if (model_cfg.get("arch") == "vit") != vit_file:
        raise BackboneError(f"{where}: a {'ViT' if vit_file else 'ResNet'} backbone, but model.arch is "
                            f"{model_cfg.get('arch', 'resnet')}: set model.arch: {'vit' if vit_file else 'resnet'}")
    if vit_file:
        return _vit_state(state, model_cfg, where), conventions, fmt
    norm = model_cfg["norm"]
    has_stats = "bn1.running_mean" in state
    file_norm = "GN" if not has_stats else ("FrozenBN" if recorded.get("norm_kind") == "affine" else "BN")
    fits = {"GN": ("GN",), "BN": ("BN", "SyncBN", "FrozenBN"), "FrozenBN": ("FrozenBN",)}[file_norm]
    if norm not in fits:
        need = {"GN": "GN", "BN": "BN, SyncBN or FrozenBN",
                "FrozenBN": "FrozenBN (Detectron's frozen BN has no batch statistics)"}[file_norm]
        raise BackboneError(f"{where}: its norms are {file_norm} ({describe(state)}) but model.norm "
                            f"is {norm}: set model.norm to {need}")
    if norm == "GN":
        groups = (recorded.get("model", {}).get("gn_groups") if fmt == OURS else None) or GN_GROUPS_IF_UNRECORDED
        if groups != model_cfg["gn_groups"]:
            origin = "records" if fmt == OURS else "was trained with (its source's convention)"
            raise BackboneError(f"{where}: the file {origin} GroupNorm with {groups} groups but "
                                f"model.gn_groups is {model_cfg['gn_groups']}: set model.gn_groups: {groups}")
    stride_1x1 = bool(model_cfg.get("stride_in_1x1", False))
    file_stride_1x1 = fmt == DETECTRON and recorded.get("norm_kind") == "affine"  # MSRA's R-50.pkl
    if stride_1x1 != file_stride_1x1:
        where_is = "the first 1x1" if file_stride_1x1 else "the 3x3 (torchvision's placement)"
        raise BackboneError(f"{where}: this backbone puts a stage's stride on {where_is}, but "
                            f"model.stride_in_1x1 is {stride_1x1}: set model.stride_in_1x1: "
                            f"{str(file_stride_1x1).lower()}")
    with torch.device("meta"):  # shapes only: nothing allocated, nothing initialised
        target = ResNet(model_cfg["depth"], model_cfg["width"], norm, model_cfg["gn_groups"],
                        stride_in_1x1=stride_1x1).state_dict()
    body = {k: v for k, v in state.items() if not k.startswith("fc.")}
    if norm == "FrozenBN":  # torchvision's FrozenBatchNorm2d keeps no batch counter
        body = {k: v for k, v in body.items() if not k.endswith("num_batches_tracked")}
    shape = shape_of(state)
    fix = [f"model.{k}: {shape[k]}" for k in ("depth", "width") if shape[k] and shape[k] != model_cfg[k]]
    need = (f"the file is {describe(state)}, the model config depth {model_cfg['depth']}, width "
            f"{model_cfg['width']}" + (f": set {', '.join(fix)}" if fix else ""))
    stem = (" (the file has a deep stem; this pipeline builds torchvision's 7x7 one)"
            if "conv1.weight" not in body and any(k.startswith("conv1.") for k in body) else "")
    state = _fit(body, target, where, missing={"conv1.weight": stem}, suffix=f"; {need}",
                 lacks="this pipeline builds torchvision's ResNet: 7x7 stem, 1x1 projection shortcuts")
    return state, conventions, fmt


def _fit(body: dict, target: dict, where: str, lacks: str, missing: dict | None = None,
         shape: dict | None = None, suffix: str = "") -> dict:
    """`body` as the model's state `target` (its dtypes), or BackboneError at the first key
    missing from the file, of another shape, or the model lacks; `missing` and `shape` map a
    key to a hint for that case, `lacks` says what the model builds."""
    for key, t in target.items():
        if key not in body:
            raise BackboneError(f"{where}: does not fit model.*: first key missing from the file: "
                                f"{key}{(missing or {}).get(key, '')}{suffix}")
        if tuple(body[key].shape) != tuple(t.shape):
            raise BackboneError(f"{where}: does not fit model.*: first key of another shape: {key} is "
                                f"{tuple(body[key].shape)} in the file, {tuple(t.shape)} in the model"
                                f"{(shape or {}).get(key, '')}{suffix}")
    extra = [k for k in body if k not in target]
    if extra:
        raise BackboneError(f"{where}: does not fit model.*: first key the model lacks: {extra[0]} "
                            f"({lacks}){suffix}")
    return {k: body[k].to(t.dtype).contiguous() for k, t in target.items()}


# timm's VisionTransformer block names -> rethink.models.vit's; cls/register tokens and the
# classifier are dropped, as ViTDet drops them (the detector has no class token)
_TIMM_VIT = (("patch_embed.proj.", "patch_embed."), (".attn.qkv.", ".qkv."), (".attn.proj.", ".proj."),
             (".mlp.fc1.", ".fc1."), (".mlp.fc2.", ".fc2."))
_TIMM_VIT_DROPPED = ("cls_token", "reg_token", "head.", "fc_norm.", "head_drop.")


def _vit_state(state: dict, model_cfg: dict, where: str) -> dict:
    """The state for rethink.models.vit.ViT(model_cfg) of a timm VisionTransformer (or this
    project's) ViT state dict, or BackboneError naming the first mismatch: depth, width, patch
    size, position-embedding grid, MLP width, or a key the plain ViT lacks (layer scale, q/k
    norms, ...). A position embedding that also covers prefix tokens (class, registers) loses
    them; a file without a final norm (timm's average-pooling models) gets the identity one."""
    vit = model_cfg["vit"]
    body = {}
    for key, value in state.items():
        if key.startswith(_TIMM_VIT_DROPPED):
            continue
        for old, new in _TIMM_VIT:
            key = key.replace(old, new)
        body[key] = value
    width = body["patch_embed.weight"].shape[0] if "patch_embed.weight" in body else None
    depth = len({k.split(".")[1] for k in body if k.startswith("blocks.")})
    patch = body["patch_embed.weight"].shape[-1] if "patch_embed.weight" in body else None
    fix = [f"model.{k}: {v}" for k, v in (("depth", depth), ("width", width)) if v and v != model_cfg[k]]
    fix += [f"model.vit.patch_size: {patch}"] if patch and patch != vit["patch_size"] else []
    if fix:
        raise BackboneError(f"{where}: does not fit model.*: the file is a ViT of depth {depth}, width {width}, "
                            f"patch {patch}, the model config depth {model_cfg['depth']}, width "
                            f"{model_cfg['width']}, patch {vit['patch_size']}: set {', '.join(fix)}")
    with torch.device("meta"):  # shapes only
        target = build_vit(model_cfg).state_dict()
    grid = vit["pos_size"] // vit["patch_size"]
    if "pos_embed" in body:
        tokens = body["pos_embed"].shape[1]
        prefix = tokens - grid * grid
        if prefix < 0 or prefix > 8:  # at most a class token and registers
            side = math.isqrt(tokens - (1 if "cls_token" in state else 0))
            raise BackboneError(f"{where}: its position embedding has {tokens} positions (a {side}x{side} "
                                f"grid: images of {side * patch} px), model.vit.pos_size "
                                f"{vit['pos_size']} gives {grid}x{grid}: set model.vit.pos_size: {side * patch}")
        body["pos_embed"] = body["pos_embed"][:, prefix:]
    if "norm.weight" not in body:  # timm's global-average models end with fc_norm, after pooling
        body["norm.weight"], body["norm.bias"] = torch.ones(width), torch.zeros(width)
    for key, t in target.items():
        if key.endswith(".qkv.bias") and key not in body:  # qkv_bias=False: a zero bias is the same
            body[key] = torch.zeros(t.shape)
    mlp = {k: f" (model.vit.mlp_ratio: the file's MLP is {body[k].shape[0]} wide)"
           for k in target if k.endswith(".fc1.weight") and k in body}
    return _fit(body, target, where, shape=mlp,
                lacks="this pipeline builds a plain ViT: no layer scale, q/k norms or pre-norm")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", required=True, help="the backbone file (pretrain.checkpoint)")
    p.add_argument("--model", required=True, help="model config as JSON (with its input conventions)")
    p.add_argument("--input", default="null", help="pretrain.input as JSON (null: the format's)")
    p.add_argument("--out", required=True, help="the backbone in this project's .pt layout")
    args = p.parse_args(argv)
    model_cfg = json_arg(args.model, "model")
    with disk_full_exits():
        try:
            state, conventions, fmt = convert(args.checkpoint, model_cfg, json.loads(args.input))
        except BackboneError as e:
            raise SystemExit(f"error: {e}")
        vit = model_cfg.get("arch") == "vit"
        print(f"{args.checkpoint}: {fmt}; {'ViT' if vit else describe(state)}; input {conventions}", flush=True)
        keys = ("arch", "depth", "width", "norm", "gn_groups", "vit") if vit else ("depth", "width", "norm", "gn_groups")
        meta = {"input": conventions, "model": {k: model_cfg[k] for k in keys},
                "source": {"path": str(args.checkpoint), "format": fmt, "sha1": sha1_file(args.checkpoint)}}
        checkpoint.save({"model": state, "meta": meta}, args.out)
        print(f"wrote {args.out}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
