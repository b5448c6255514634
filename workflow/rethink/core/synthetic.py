"""The synthetic world's settings: its vocabulary of classes, its config keys and their one
validation, and the category lists the rules and the writers share (torch-free; the
Snakefile imports it). Rendering is rethink.data.world, writing rethink.data.writers."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from rethink.core.errors import ConfigError
from rethink.core.names import SIZE_CLASSES

# --------------------------------------------------------------------------- #
# vocabulary
# --------------------------------------------------------------------------- #
SHAPES = ("circle", "triangle", "square", "star", "cross", "hexagon")
TEXTURES = ("solid", "stripes", "checker", "dots", "rings", "grid")
TEXTURE_ADJ = {
    "solid": "solid",
    "stripes": "striped",
    "checker": "checkered",
    "dots": "dotted",
    "rings": "ringed",
    "grid": "gridded",
}
MAX_CLASSES = len(SHAPES) * len(TEXTURES)

REQUIRED_KEYS = (
    "classes",
    "detection_classes",
    "cls_image_size",
    "cls_train_per_class",
    "cls_val_per_class",
    "det_train_images",
    "det_val_images",
    "det_min_size",
    "det_max_size",
    "det_max_objects",
    "jpeg_quality",
)


# The VOC world (generate_voc), scaled from the COCO-like one as VOC is from COCO: its
# trainval07+train12 has 10.7k images against COCO's 118k (91 per default 1000), 2.3
# instances per image against 7.3 (1..2 objects per scene) and 1.4 categories per image
# against 2.9 (2 categories). Optional config keys, so older configs keep working.
VOC_DEFAULTS = {"voc_train_images": 91, "voc_val_images": 100, "voc_max_objects": 2,
                "voc_classes": 2}

# How the pre-training set and the scenes differ (the world's relatedness): optional keys,
# each defaulting to the first world's value so that older configs write the same bytes.
# docs/world.md gives the real value each stands for.
WORLD_DEFAULTS = {
    "detection_shared": None,      # detection categories that are pre-training classes (None: all)
    "cls_object_scale": [0.4, 0.8],  # pre-training object's diameter / image side (uniform)
    "cls_centre_jitter": 1.0,      # object centre's offset from the image centre / the room left (1: anywhere)
    "cls_clutter": None,           # background clutter of pre-training images (None: clutter's)
    "det_object_scale": None,      # scene object's sqrt(area / scene area) in [lo, hi], log-uniform
                                   # (None: radius 0.1-0.275 of the scene side, uniform)
    "det_size_shares": None,       # [small, medium, large]: objects drawn per COCO size class
                                   # (SIZE_CLASSES), log-uniform inside it (None: over [lo, hi])
    "det_categories_per_scene": None,  # a scene's objects are of this many categories drawn
                                   # for it, as COCO's scenes show a few that go together (None: any)
}



def wnid(index: int) -> str:
    """WordNet-id-like folder name of class ``index`` (0-based): n90000001, ..."""
    return f"n9{index + 1:07d}"


def class_vocabulary(n_classes: int) -> list[dict]:
    """Ordered class list: ``[{index, wnid, name, shape, texture}, ...]``.

    With ``k = ceil(sqrt(n))`` shapes and textures the (shape, texture) grid is
    enumerated by diagonals (shape s gets texture (s + d) mod k on diagonal d),
    so any prefix of length >= k -- in particular the detection categories --
    covers every shape and every texture.
    """
    if not 2 <= n_classes <= MAX_CLASSES:
        raise ConfigError(f"classes must be in [2, {MAX_CLASSES}], got {n_classes}")
    k = max(2, math.ceil(math.sqrt(n_classes)))
    out = []
    for d in range(k):
        for s in range(k):
            if len(out) == n_classes:
                break
            t = (s + d) % k
            shape, texture = SHAPES[s], TEXTURES[t]
            i = len(out)
            out.append(
                {
                    "index": i,
                    "wnid": wnid(i),
                    "name": f"{TEXTURE_ADJ[texture]}_{shape}",
                    "shape": shape,
                    "texture": texture,
                    # A characteristic colour per class, as real categories have
                    # (golden-ratio hue spacing keeps any prefix of classes apart).
                    "hue": (i * 0.6180339887) % 1.0,
                }
            )
    return out


def world_vocabulary(cfg) -> tuple[list[dict], list[dict]]:
    """(pre-training classes, detection categories) of a validated config.

    The detection categories are the first `detection_shared` pre-training classes and, for
    the rest, vocabulary entries after the pre-training classes: categories pre-training
    never shows (as COCO's 'person' is no ImageNet class)."""
    shared = _shared(cfg)
    vocab = class_vocabulary(cfg["classes"] + cfg["detection_classes"] - shared)
    pretrain = vocab[: cfg["classes"]]
    return pretrain, pretrain[:shared] + vocab[cfg["classes"]:]


def _shared(cfg) -> int:
    shared = cfg.get("detection_shared")
    return cfg["detection_classes"] if shared is None else shared


# --------------------------------------------------------------------------- #
# configuration
# --------------------------------------------------------------------------- #
def validate_config(cfg) -> dict:
    """Check the generator config; returns a plain dict with the required keys.

    A pipeline config that keeps the keys under a ``synth:`` section is accepted.
    """
    if not isinstance(cfg, dict):
        raise ConfigError(f"synth config must be a mapping, got {type(cfg).__name__}")
    if any(k not in cfg for k in REQUIRED_KEYS) and isinstance(cfg.get("synth"), dict):
        cfg = cfg["synth"]
    missing = [k for k in REQUIRED_KEYS if k not in cfg]
    if missing:
        raise ConfigError("synth config: missing required key(s): " + ", ".join(missing))
    out = {k: _config_int(k, cfg[k]) for k in REQUIRED_KEYS}
    lo = {
        "classes": 2,
        "detection_classes": 1,
        "cls_image_size": 16,
        "cls_train_per_class": 1,
        "cls_val_per_class": 1,
        "det_train_images": 1,
        "det_val_images": 1,
        "det_min_size": 32,
        "det_max_size": 32,
        "det_max_objects": 1,
        "jpeg_quality": 1,
    }
    for k, m in lo.items():
        if out[k] < m:
            raise ConfigError(f"synth config: {k} must be >= {m}, got {out[k]}")
    if out["classes"] > MAX_CLASSES:
        raise ConfigError(f"synth config: classes must be <= {MAX_CLASSES}, got {out['classes']}")
    if cfg.get("detection_shared") is None and out["detection_classes"] > out["classes"]:
        raise ConfigError(
            f"synth config: detection_classes ({out['detection_classes']}) "
            f"must be <= classes ({out['classes']}), or set detection_shared"
        )
    if out["det_min_size"] > out["det_max_size"]:
        raise ConfigError(
            f"synth config: det_min_size ({out['det_min_size']}) "
            f"must be <= det_max_size ({out['det_max_size']})"
        )
    if out["jpeg_quality"] > 100:
        raise ConfigError(f"synth config: jpeg_quality must be <= 100, got {out['jpeg_quality']}")
    clutter = cfg.get("clutter", 1.0)  # optional: older configs mean the full clutter
    if isinstance(clutter, bool) or not isinstance(clutter, (int, float)) or clutter < 0:
        raise ConfigError(f"synth config: clutter must be a number >= 0, got {clutter!r}")
    out["clutter"] = float(clutter)
    for k in VOC_DEFAULTS:  # optional: kept only when given, so the output of older configs is unchanged
        if k in cfg:
            out[k] = _config_int(k, cfg[k])
            if out[k] < 1:
                raise ConfigError(f"synth config: {k} must be >= 1, got {out[k]}")
    out.update(_world_options(cfg, out))
    if out.get("voc_classes", 1) > out["detection_classes"]:
        raise ConfigError(
            f"synth config: voc_classes ({out['voc_classes']}) "
            f"must be <= detection_classes ({out['detection_classes']})"
        )
    return out


def _world_options(cfg, out) -> dict:
    """The WORLD_DEFAULTS keys the config gives, checked (absent ones stay absent)."""
    opts = {}
    if cfg.get("detection_shared") is not None:
        shared = opts["detection_shared"] = _config_int("detection_shared", cfg["detection_shared"])
        if not 0 <= shared <= min(out["detection_classes"], out["classes"]):
            raise ConfigError(f"synth config: detection_shared must be in [0, min(detection_classes, "
                              f"classes)] = [0, {min(out['detection_classes'], out['classes'])}], got {shared}")
        n = out["classes"] + out["detection_classes"] - shared
        if n > MAX_CLASSES:
            raise ConfigError(f"synth config: classes + detection_classes - detection_shared = {n} "
                              f"shape x texture categories, more than the {MAX_CLASSES} there are")
    for key, lo, hi in (("cls_object_scale", 0.05, 1.0), ("det_object_scale", 0.01, 0.7)):
        if cfg.get(key) is not None:
            v = cfg[key]
            if not (isinstance(v, (list, tuple)) and len(v) == 2 and all(_is_number(x) for x in v)
                    and lo <= v[0] <= v[1] <= hi):
                raise ConfigError(f"synth config: {key} must be [lo, hi] with {lo} <= lo <= hi <= {hi}, "
                                  f"got {v!r}")
            opts[key] = [float(x) for x in v]
    if cfg.get("det_size_shares") is not None:
        v = cfg["det_size_shares"]
        if "det_object_scale" not in opts:
            raise ConfigError("synth config: det_size_shares needs det_object_scale")
        if not (isinstance(v, (list, tuple)) and len(v) == 3 and all(_is_number(x) and x >= 0 for x in v)
                and abs(sum(v) - 1) < 1e-6):
            raise ConfigError(f"synth config: det_size_shares must be 3 non-negative shares "
                              f"[small, medium, large] that sum to 1, got {v!r}")
        lo, hi = opts["det_object_scale"]
        empty = [name for (name, _), share, (a, b) in zip(SIZE_CLASSES, v, size_ranges(lo, hi))
                 if share > 0 and a >= b]
        if empty:
            raise ConfigError(f"synth config: det_size_shares gives {', '.join(empty)} objects a share, "
                              f"but det_object_scale {[lo, hi]} has none of that size")
        opts["det_size_shares"] = [float(x) for x in v]
    if cfg.get("det_categories_per_scene") is not None:
        k = opts["det_categories_per_scene"] = _config_int("det_categories_per_scene",
                                                           cfg["det_categories_per_scene"])
        if not 1 <= k <= out["detection_classes"]:
            raise ConfigError(f"synth config: det_categories_per_scene must be in [1, detection_classes] "
                              f"= [1, {out['detection_classes']}], got {k}")
    for key in ("cls_centre_jitter", "cls_clutter"):
        if cfg.get(key) is not None:
            v = cfg[key]
            if not _is_number(v) or not 0 <= v <= (1 if key == "cls_centre_jitter" else math.inf):
                raise ConfigError(f"synth config: {key} must be a number in "
                                  f"{'[0, 1]' if key == 'cls_centre_jitter' else '[0, inf)'}, got {v!r}")
            opts[key] = float(v)
    return opts


def size_ranges(lo, hi) -> list[tuple[float, float]]:
    """[lo, hi] of sqrt(area / image area) cut at COCO's size classes (SIZE_CLASSES)."""
    cuts = [math.sqrt(bound) for _, bound in SIZE_CLASSES[:-1]]
    edges = [lo] + [min(max(c, lo), hi) for c in cuts] + [hi]
    return list(zip(edges[:-1], edges[1:]))


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def world_options(cfg) -> dict:
    """A validated config's WORLD_DEFAULTS keys, defaults filled in."""
    return {k: cfg.get(k, d) for k, d in WORLD_DEFAULTS.items()}  # (validation keeps only keys given)


def _config_int(key, v) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) and not (
        isinstance(v, float) and v.is_integer()
    ):
        raise ConfigError(f"synth config: {key} must be an integer, got {v!r}")
    return int(v)


def voc_settings(cfg) -> dict:
    """The VOC world's sizes: the config's voc_* keys, else VOC_DEFAULTS (the default
    voc_classes capped at detection_classes, so a one-category config still works)."""
    cfg = validate_config(cfg)
    out = {k: cfg.get(k, v) for k, v in VOC_DEFAULTS.items()}
    if "voc_classes" not in cfg:
        out["voc_classes"] = min(out["voc_classes"], cfg["detection_classes"])
    return out


def load_config(spec) -> dict:
    """Config from a dict, a .json/.yaml/.yml file path, or an inline JSON string."""
    if isinstance(spec, dict):
        return validate_config(spec)
    spec = str(spec)
    p = Path(spec)
    if not spec.lstrip().startswith("{") and p.is_file():  # inline JSON may exceed a file name's length
        text = p.read_text()
        if p.suffix.lower() in (".yaml", ".yml"):
            cfg = _load_yaml(text, p)
        else:
            try:
                cfg = json.loads(text)
            except json.JSONDecodeError as e:
                if p.suffix.lower() == ".json":
                    raise ConfigError(f"{p}: malformed JSON: {e}") from None
                cfg = _load_yaml(text, p)
        return validate_config(cfg)
    try:
        cfg = json.loads(spec)
    except json.JSONDecodeError as e:
        raise ConfigError(
            f"--config {spec!r}: not an existing file and not valid inline JSON ({e})"
        ) from None
    return validate_config(cfg)


def _load_yaml(text, path):
    try:
        import yaml
    except ImportError:  # pragma: no cover
        raise ConfigError(f"{path}: PyYAML is needed to read YAML configs") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: malformed YAML: {e}") from None


def coco_categories(cfg) -> list[dict]:
    """COCO's category records: ids are vocabulary indices + 1 (not contiguous when some
    categories are no pre-training class, as COCO's 1-90 for 80 categories are not)."""
    return [{"id": c["index"] + 1, "name": c["name"], "supercategory": c["shape"]}
            for c in world_vocabulary(cfg)[1]]


def voc_categories(cfg) -> list[str]:
    """The VOC world's class names (the first voc_classes detection categories), in order:
    what ``rethink.data.voc --classes`` needs to read it."""
    n = voc_settings(cfg)["voc_classes"]
    return [c["name"] for c in coco_categories(validate_config(cfg))[:n]]
