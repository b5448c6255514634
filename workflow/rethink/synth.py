"""Deterministic synthetic "world" in the real ImageNet, COCO-2017 and PASCAL VOC on-disk formats.

The world is made of flat objects whose *category* is a (shape, texture) pair,
e.g. ``striped_triangle``, with a characteristic colour (each class has its own
hue, jittered; saturation and brightness vary), as real categories tend to have.
Everything else is nuisance: pattern colour, scale,
rotation, position, texture phase/orientation/period, lighting and a cluttered
background (smooth noise, random lines, irregular non-category blobs, sensor
noise).

* ``generate_imagenet`` writes an ImageNet-layout classification set
  (``train/<wnid>/<wnid>_<k>.JPEG``, ``val/<wnid>/<wnid>_<k>.JPEG``,
  ``classes.txt``) with one object-centric object per image.
* ``generate_coco`` writes a COCO-2017-layout instance-segmentation set
  (``annotations/instances_{train,val}2017.json``, ``{train,val}2017/%012d.jpg``)
  whose categories are the first ``detection_classes`` classification classes,
  so features learned on the classification set transfer (like ImageNet->COCO).
* ``generate_voc`` writes the same kind of scenes as a VOCdevkit (``VOC2007`` trainval,
  ``VOC2012`` train/val: ``Annotations/*.xml``, ``JPEGImages/*.jpg``, ``ImageSets/Main``)
  with VOC's statistics relative to COCO: fewer images (``voc_train_images``,
  ``voc_val_images``), objects (``voc_max_objects``) and categories (``voc_classes``, the
  first detection categories), no crowd regions, boxes only, ``difficult`` flags.

Annotations follow COCO's conventions: every object (``iscrowd: 0``) has the polygons of
its visible region (later objects are drawn over earlier ones; an object split by an
occluder gets one polygon per part), ``area`` is the polygons' area and ``bbox`` the box
around them; about 1% of instances are crowd regions (``iscrowd: 1``, a cluster of small
objects) with an uncompressed RLE (``counts`` a list) of their visible pixels. Objects are
rasterised with pycocotools from the (rounded) polygons, so an unoccluded object's
``COCO.annToMask`` reproduces its rendered pixels exactly, and an occluded one's up to the
pixels its polygon boundary cuts.

Keypoints: ``generate_coco`` also writes ``annotations/person_keypoints_{train,val}2017.json``
in COCO's person-keypoints format (the same images and annotations, plus ``keypoints`` and
``num_keypoints``; categories name KEYPOINT_NAMES and KEYPOINT_SKELETON), so keypoint heads
can be trained on the same world; ``generate_coco_keypoints`` writes only those two files.
Every object has five keypoints from its full (unoccluded) polygon: its extreme points
(top, right, bottom, left) and its area centroid, visible (v=2) or hidden by a later-drawn
object (v=1); crowd regions have none (all zeros). They are pure geometry and use no
randomness, so the images and instances files are the same with or without them.

Determinism: every image has its own ``numpy.random.Generator`` seeded from
``(seed, dataset, split, index)``; no global RNG is touched, and no timestamps
are written, so the same seed gives byte-identical files.

Each dataset is written into a hidden temporary sibling folder and renamed into
place only when complete.
"""
from __future__ import annotations

import argparse
import colorsys
import json
import math
import os
import shutil
import sys
import time
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Optional

import numpy as np
from PIL import Image, ImageDraw
from pycocotools import mask as mask_utils
from shapely.geometry import Point, Polygon
from shapely.ops import unary_union

from .layout import KEYPOINT_FILE, SIZE_CLASSES

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

# object placement / annotation rules for the detection scenes
HUE_JITTER = 0.025  # class colours vary by this much hue (of 1.0) around their own
MIN_VISIBLE_FRACTION = 0.3  # an object must keep >= 30% of its area visible
MIN_VISIBLE_PIXELS = 16  # ... and at least this many pixels
PLACEMENT_TRIES = 12
MIN_PART_AREA = 2.0  # px^2: visible slivers smaller than this get no polygon of their own
CROWD_SCENE_FRACTION = 0.04  # scenes with one crowd region: ~1% of instances, as in COCO
CROWD_MEMBERS = (4, 8)  # small objects clustered in a crowd region

# COCO person-keypoints style annotations of every object (see _keypoints)
KEYPOINT_NAMES = ("top", "right", "bottom", "left", "centre")
KEYPOINT_SKELETON = [[5, 1], [5, 2], [5, 3], [5, 4]]  # 1-based pairs, as COCO writes them
KEYPOINT_FIELDS = ("keypoints", "num_keypoints")  # only in the person_keypoints files
FLAT_EDGE_TOLERANCE = 0.5  # px: vertices this close to an extreme value make a flat extreme edge

_DATASET_CODE = {"imagenet": 1, "coco": 2, "voc": 3}
_SPLIT_CODE = {"train": 1, "val": 2}
COCO_VAL_ID_OFFSET = 1_000_000  # COCO image ids of val are disjoint from train

# The VOC world (generate_voc), scaled from the COCO-like one as VOC is from COCO: its
# trainval07+train12 has 10.7k images against COCO's 118k (91 per default 1000), 2.3
# instances per image against 7.3 (1..2 objects per scene) and 1.4 categories per image
# against 2.9 (2 categories). Optional config keys, so older configs keep working.
VOC_DEFAULTS = {"voc_train_images": 91, "voc_val_images": 100, "voc_max_objects": 2,
                "voc_classes": 2}
VOC2007_SHARE = 5011 / 10728  # of the train images: VOC2007 trainval's 5,011 of 07+12's 10,728
VOC_DIFFICULT_VISIBLE = 0.5  # objects less than half visible are VOC's "difficult" ...
VOC_DIFFICULT_SIDE = 12  # ... and so are those whose box side is under this many pixels

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
                                   # (layout.SIZE_CLASSES), log-uniform inside it (None: over [lo, hi])
    "det_categories_per_scene": None,  # a scene's objects are of this many categories drawn
                                   # for it, as COCO's scenes show a few that go together (None: any)
}


class ConfigError(ValueError):
    """Invalid or incomplete generator configuration."""


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
        empty = [name for (name, _), share, (a, b) in zip(SIZE_CLASSES, v, _size_ranges(lo, hi))
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


def _size_ranges(lo, hi) -> list[tuple[float, float]]:
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


# --------------------------------------------------------------------------- #
# rendering
# --------------------------------------------------------------------------- #
def _unit_polygon(shape: str) -> np.ndarray:
    """Vertices (N, 2) of a shape with circumradius 1, centred at the origin."""
    if shape == "circle":
        a = np.linspace(0, 2 * np.pi, 40, endpoint=False)
        return np.stack([np.cos(a), np.sin(a)], 1)
    if shape == "triangle":
        a = -np.pi / 2 + np.arange(3) * 2 * np.pi / 3
        return np.stack([np.cos(a), np.sin(a)], 1)
    if shape == "square":
        a = np.pi / 4 + np.arange(4) * np.pi / 2
        return np.stack([np.cos(a), np.sin(a)], 1)
    if shape == "hexagon":
        a = np.arange(6) * np.pi / 3
        return np.stack([np.cos(a), np.sin(a)], 1)
    if shape == "star":
        a = -np.pi / 2 + np.arange(10) * np.pi / 5
        r = np.where(np.arange(10) % 2 == 0, 1.0, 0.45)
        return np.stack([r * np.cos(a), r * np.sin(a)], 1)
    if shape == "cross":
        h = 0.36  # half arm width; arm tips at distance sqrt(1 - h^2) ~ 0.93
        e = math.sqrt(1 - h * h)
        pts = [(h, -e), (h, -h), (e, -h), (e, h), (h, h), (h, e),
               (-h, e), (-h, h), (-e, h), (-e, -h), (-h, -h), (-h, -e)]
        return np.array(pts, dtype=np.float64)
    raise ValueError(f"unknown shape {shape!r}")


_UNIT = {s: _unit_polygon(s) for s in SHAPES}
_UNIT_AREA = {s: 0.5 * abs(float(np.dot(u[:, 0], np.roll(u[:, 1], -1)) - np.dot(u[:, 1], np.roll(u[:, 0], -1))))
              for s, u in _UNIT.items()}  # area of the shape at circumradius 1


def _polygon(shape, cx, cy, radius, angle) -> list:
    """Rotated, scaled and translated polygon as a flat COCO list, rounded to 0.01."""
    u = _UNIT[shape]
    c, s = math.cos(angle), math.sin(angle)
    x = cx + radius * (c * u[:, 0] - s * u[:, 1])
    y = cy + radius * (s * u[:, 0] + c * u[:, 1])
    flat = np.stack([x, y], 1).reshape(-1)
    return [round(float(v), 2) for v in flat]


def _poly_mask(poly, h, w):
    """Bool mask, exactly as ``COCO.annToMask`` rasterises the polygon."""
    rle = mask_utils.merge(mask_utils.frPyObjects([poly], h, w))
    with warnings.catch_warnings():
        # pycocotools 2.0.x + numpy 2: harmless "__array__ ... copy keyword" notice
        warnings.simplefilter("ignore", DeprecationWarning)
        m = mask_utils.decode(rle)
    return m.astype(bool)


def _class_colour(rng, hue):
    """The class's colour with jitter in hue, saturation and brightness."""
    h = (hue + rng.uniform(-HUE_JITTER, HUE_JITTER)) % 1.0
    return np.array(colorsys.hsv_to_rgb(h, rng.uniform(0.55, 1.0), rng.uniform(0.55, 1.0))) * 255.0


def _contrasting_colour(rng, c1):
    for _ in range(20):
        c2 = rng.uniform(0, 255, 3)
        if np.abs(c2 - c1).sum() >= 180:
            return c2
    return 255.0 - c1


def _bilinear_noise(rng, h, w, grid, amp):
    """Smooth low-frequency noise (h, w, 3) by bilinear upsampling of a small grid.

    Element-wise only (no BLAS), so the result does not depend on thread counts.
    """
    g = rng.normal(0.0, amp, (grid, grid, 3)).astype(np.float32)

    def coords(n):
        pos = np.linspace(0, grid - 1, n, dtype=np.float32)
        i0 = np.clip(np.floor(pos).astype(np.intp), 0, grid - 2)
        return i0, (pos - i0).astype(np.float32)[:, None]

    iy, fy = coords(h)
    rows = g[iy] * (1 - fy)[..., None] + g[iy + 1] * fy[..., None]  # (h, grid, 3)
    ix, fx = coords(w)
    return rows[:, ix] * (1 - fx) + rows[:, ix + 1] * fx  # (h, w, 3)


def _background(rng, h, w, clutter=1.0) -> np.ndarray:
    """Cluttered background (h, w, 3) float32: gradient, smooth noise, blobs, lines.

    `clutter` scales the number of distractor blobs and lines (0: none)."""
    c1 = rng.uniform(20, 235, 3).astype(np.float32)
    c2 = rng.uniform(20, 235, 3).astype(np.float32)
    ang = rng.uniform(0, 2 * np.pi)
    ys = np.arange(h, dtype=np.float32)[:, None]
    xs = np.arange(w, dtype=np.float32)[None, :]
    t = xs * math.cos(ang) + ys * math.sin(ang)
    t = (t - t.min()) / max(float(t.max() - t.min()), 1.0)
    img = c1 + (c2 - c1) * t[..., None]
    img += _bilinear_noise(rng, h, w, 5, 22.0)
    pil = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(pil)
    side = min(h, w)
    area = h * w
    # irregular, non-category blobs (smooth random radial profile)
    n_blobs = int(round(clutter * int(rng.integers(1, 3 + area // 8000))))
    for _ in range(n_blobs):
        r0 = rng.uniform(0.06, 0.17) * side
        bx, by = rng.uniform(0, w), rng.uniform(0, h)
        n_v = 18
        a = np.sort(rng.uniform(0, 2 * np.pi, n_v))
        prof = np.ones(n_v)
        for k in (2, 3, 5):
            prof += rng.uniform(0.05, 0.3) * np.cos(k * a + rng.uniform(0, 2 * np.pi))
        r = r0 * np.clip(prof, 0.3, None)
        pts = list(zip((bx + r * np.cos(a)).tolist(), (by + r * np.sin(a)).tolist()))
        draw.polygon(pts, fill=tuple(int(v) for v in rng.integers(0, 256, 3)))
    # random lines
    n_lines = int(round(clutter * int(rng.integers(2, 5 + area // 5000))))
    for _ in range(n_lines):
        x0, x1 = rng.uniform(-0.1 * w, 1.1 * w, 2)
        y0, y1 = rng.uniform(-0.1 * h, 1.1 * h, 2)
        draw.line(
            [(float(x0), float(y0)), (float(x1), float(y1))],
            fill=tuple(int(v) for v in rng.integers(0, 256, 3)),
            width=int(rng.integers(1, 3)),
        )
    return np.asarray(pil, dtype=np.float32).copy()


def _sample_object(rng, shape, texture, cx, cy, radius, hue):
    """Nuisance parameters of one object (everything except where it is)."""
    angle = float(rng.uniform(0, 2 * np.pi))
    c1 = _class_colour(rng, hue)
    c2 = _contrasting_colour(rng, c1)
    return {
        "shape": shape,
        "texture": texture,
        "cx": float(cx),
        "cy": float(cy),
        "radius": float(radius),
        "angle": angle,
        "tex_angle": float(rng.uniform(0, np.pi)),
        "period": float(max(3.6, 2 * radius * rng.uniform(0.16, 0.26))),
        "phase": rng.uniform(0, 1, 2),
        "c1": c1.astype(np.float32),
        "c2": c2.astype(np.float32),
        "light": rng.uniform(-0.15, 0.15, 2),
    }


def _paint(img, mask, obj):
    """Paint a textured object into ``img`` (float32 h, w, 3) where ``mask``."""
    rows = np.flatnonzero(mask.any(1))
    cols = np.flatnonzero(mask.any(0))
    if rows.size == 0:
        return
    y0, y1, x0, x1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    m = mask[y0:y1, x0:x1]
    ys = np.arange(y0, y1, dtype=np.float32)[:, None] - obj["cy"]
    xs = np.arange(x0, x1, dtype=np.float32)[None, :] - obj["cx"]
    ca, sa = math.cos(obj["tex_angle"]), math.sin(obj["tex_angle"])
    u = xs * ca + ys * sa
    v = -xs * sa + ys * ca
    p = obj["period"]
    ph0, ph1 = obj["phase"]
    tex = obj["texture"]
    if tex == "solid":
        pat = None
    elif tex == "stripes":
        pat = np.mod(u / p + ph0, 1.0) < 0.5
    elif tex == "checker":
        cell = 0.6 * p
        pat = (np.floor(u / cell + ph0) + np.floor(v / cell + ph1)) % 2 == 0
    elif tex == "dots":
        q = 1.15 * p
        fu = np.mod(u / q + ph0, 1.0) - 0.5
        fv = np.mod(v / q + ph1, 1.0) - 0.5
        pat = fu * fu + fv * fv < 0.3 ** 2
    elif tex == "rings":
        pat = np.mod(np.sqrt(u * u + v * v) / p + ph0, 1.0) < 0.5
    elif tex == "grid":
        q = 1.2 * p
        fu = np.abs(np.mod(u / q + ph0, 1.0) - 0.5)
        fv = np.abs(np.mod(v / q + ph1, 1.0) - 0.5)
        pat = (fu > 0.32) | (fv > 0.32)
    else:  # pragma: no cover
        raise ValueError(f"unknown texture {tex!r}")
    if pat is None:
        col = np.broadcast_to(obj["c1"], m.shape + (3,))
    else:
        col = np.where(pat[..., None], obj["c2"], obj["c1"])
    # smooth lighting gradient over the object (nuisance)
    la, lb = obj["light"]
    shade = 1.0 + (la * xs + lb * ys) / max(obj["radius"], 1.0)
    col = col * shade[..., None]
    region = img[y0:y1, x0:x1]
    region[m] = col[m]


def _finish(img, rng) -> Image.Image:
    img = img + rng.normal(0.0, 4.0, img.shape).astype(np.float32)
    return Image.fromarray(np.clip(img + 0.5, 0, 255).astype(np.uint8))


def render_classification_image(rng, size, shape, texture, hue, clutter=1.0, scale=(0.4, 0.8),
                                 centre_jitter=1.0) -> Image.Image:
    """One object-centric image: a single object over a cluttered background, its diameter
    `scale` of the side, its centre within `centre_jitter` of the room from the middle."""
    img = _background(rng, size, size, clutter)
    radius = 0.5 * size * rng.uniform(*scale)
    cx = rng.uniform(radius, size - radius)
    cy = rng.uniform(radius, size - radius)
    if centre_jitter < 1.0:  # (1: the first world's draw, bit for bit)
        cx, cy = (size / 2 + centre_jitter * (v - size / 2) for v in (cx, cy))
    obj = _sample_object(rng, shape, texture, cx, cy, radius, hue)
    poly = _polygon(shape, obj["cx"], obj["cy"], radius, obj["angle"])
    m = _poly_mask(poly, size, size)
    _paint(img, m, obj)
    return _finish(img, rng)


def render_detection_scene(rng, cfg, categories, max_objects=None, n_categories=None, crowd=True,
                           visibility=False, world=None):
    """A scene and its per-object annotations (without ids), annotated as COCO is.

    `categories` are the detection categories (`world_vocabulary`). The options (the VOC
    world's) change the scene only when given: at most `max_objects` objects (default
    det_max_objects), of the first `n_categories` categories (default all), no crowd region
    when `crowd` is False (no random draw for it either); `visibility` adds each object's
    visible share of its pixels as "visible_fraction"; `world` (`world_options`) sets the
    objects' sizes (det_object_scale, det_size_shares) and categories per scene.

    Objects are placed one after another, later ones drawn over earlier ones; a placement
    is rejected (and retried) if it would leave an earlier object with less than
    MIN_VISIBLE_FRACTION of its area (or fewer than MIN_VISIBLE_PIXELS pixels) visible, or
    with a hole (an occluder inside it: COCO's polygons cannot express one), so every
    drawn object is annotated. A share of scenes (CROWD_SCENE_FRACTION) also holds one
    crowd region, a cluster of small objects of one category placed first.
    Every annotation also carries its KEYPOINT_FIELDS (no randomness is used for them).
    Returns (PIL image, list of annotation dicts, skipped).
    """
    w = int(rng.integers(cfg["det_min_size"], cfg["det_max_size"] + 1))
    h = int(rng.integers(cfg["det_min_size"], cfg["det_max_size"] + 1))
    img = _background(rng, h, w, cfg.get("clutter", 1.0))
    side = min(h, w)
    n_obj = int(rng.integers(1, (max_objects or cfg["det_max_objects"]) + 1))
    # each: dict(cat, members [(obj, full mask)], geom (shapely), vis (mask), area, crowd, poly)
    with_crowd = crowd and rng.uniform() < CROWD_SCENE_FRACTION
    objs = [_crowd_group(rng, categories, h, w)] if with_crowd else []
    skipped = 0
    world = world or WORLD_DEFAULTS
    pool = list(range(n_categories or len(categories)))
    if world["det_categories_per_scene"] is not None:
        pool = sorted(rng.choice(pool, min(world["det_categories_per_scene"], len(pool)), replace=False))
    for _ in range(n_obj):
        c = categories[pool[int(rng.integers(len(pool)))]]
        placed = False
        for _try in range(PLACEMENT_TRIES):
            if world["det_object_scale"] is None:
                radius = min(max(0.5 * side * rng.uniform(0.2, 0.55), 6.0), side / 2 - 1)
            else:  # the side of a square of the object's area, as a share of the scene's
                rel = _object_scale(rng, world["det_object_scale"], world["det_size_shares"])
                radius = min(rel * math.sqrt(h * w / _UNIT_AREA[c["shape"]]), side / 2 - 1)
            cx = rng.uniform(radius, w - radius)
            cy = rng.uniform(radius, h - radius)
            obj = _sample_object(rng, c["shape"], c["texture"], cx, cy, radius, c["hue"])
            poly = _polygon(obj["shape"], obj["cx"], obj["cy"], radius, obj["angle"])
            full = _poly_mask(poly, h, w)
            area = int(full.sum())
            if area < MIN_VISIBLE_PIXELS:
                continue
            new_vis = [o["vis"] & ~full for o in objs]
            if not all(
                nv.sum() >= max(MIN_VISIBLE_FRACTION * o["area"], MIN_VISIBLE_PIXELS)
                for nv, o in zip(new_vis, objs)
            ):
                continue
            geom = _shape(poly)
            if any(not o["crowd"] and _has_hole(o["geom"], [p["geom"] for p in objs[k + 1:]] + [geom])
                   for k, o in enumerate(objs)):
                continue
            for nv, o in zip(new_vis, objs):
                o["vis"] = nv
            objs.append({"cat": c["index"], "members": [(obj, full)], "geom": geom, "poly": poly,
                         "vis": full.copy(), "area": area, "crowd": False})
            placed = True
            break
        if not placed:
            skipped += 1
    for o in objs:
        for obj, full in o["members"]:
            _paint(img, full, obj)
    anns = []
    for k, o in enumerate(objs):
        occluders = [p["geom"] for p in objs[k + 1:]]
        if o["crowd"]:
            anns.append({**_crowd_annotation(o), "keypoints": [0] * (3 * len(KEYPOINT_NAMES)),
                         "num_keypoints": 0})
        else:
            anns.append({**_object_annotation(o, occluders), **_keypoints(o, occluders)})
        if visibility:
            anns[-1]["visible_fraction"] = float(o["vis"].sum()) / o["area"]
    return _finish(img, rng), anns, skipped


def _object_scale(rng, scale, shares) -> float:
    """sqrt(area / scene area) of an object: log-uniform over `scale`, or over one size class
    drawn with `shares`."""
    lo, hi = scale
    if shares is not None:
        lo, hi = _size_ranges(lo, hi)[int(rng.choice(3, p=shares))]
    return math.exp(rng.uniform(math.log(lo), math.log(hi)))


def _shape(poly):
    return Polygon(np.asarray(poly, dtype=np.float64).reshape(-1, 2)).buffer(0)


def _visible(geom, occluders):
    """The parts of `geom` no occluder covers (polygons only: slivers of lines dropped)."""
    over = [g for g in occluders if g.intersects(geom)]
    vis = geom.difference(unary_union(over)) if over else geom
    parts = getattr(vis, "geoms", [vis])
    return [p for p in parts if p.geom_type == "Polygon" and p.area >= MIN_PART_AREA]


def _has_hole(geom, occluders) -> bool:
    return any(p.interiors for p in _visible(geom, occluders))


def _object_annotation(o, occluders) -> dict:
    """COCO's record of an object: the polygons of its visible parts (one per part, as COCO
    annotates an occluded object split in two), their area (COCO's `area` is the polygons'
    area, not a pixel count) and the box around them."""
    if any(g.intersects(o["geom"]) for g in occluders):
        seg = [[round(float(v), 2) for v in np.asarray(p.exterior.coords)[:-1].reshape(-1)]
               for p in _visible(o["geom"], occluders)]
    else:
        seg = [o["poly"]]
    xs = [v for p in seg for v in p[0::2]]
    ys = [v for p in seg for v in p[1::2]]
    x0, y0 = min(xs), min(ys)
    return {
        "category_id": o["cat"] + 1,
        "segmentation": seg,
        "area": round(float(sum(_shoelace(p) for p in seg)), 4),
        "bbox": [x0, y0, round(max(xs) - x0, 2), round(max(ys) - y0, 2)],
        "iscrowd": 0,
    }


def _keypoints(o, occluders) -> dict:
    """COCO's keypoint fields of an object, from its full polygon: the extreme points (top,
    right, bottom, left: defined for every shape) and the area centroid, each v=2 if visible,
    v=1 if a later-drawn object covers it (all are labelled: objects lie inside the image)."""
    P = np.asarray(o["poly"], np.float64).reshape(-1, 2)
    c = o["geom"].centroid
    pts = [_extreme(P, 1, -1), _extreme(P, 0, 1), _extreme(P, 1, 1), _extreme(P, 0, -1), (c.x, c.y)]
    flat = []
    for x, y in pts:
        x, y = round(float(x), 2), round(float(y), 2)
        hidden = any(g.covers(Point(x, y)) for g in occluders)
        flat += [x, y, 1 if hidden else 2]
    return {"keypoints": flat, "num_keypoints": sum(v > 0 for v in flat[2::3])}


def _extreme(P, axis, sign):
    """The polygon's extreme point along `axis` (sign -1: least, +1: greatest coordinate).

    Where a flat edge is extreme (the run of consecutive vertices within FLAT_EDGE_TOLERANCE
    of the extreme value, e.g. a square's top edge) it is the run's midpoint, so it does not
    jump between the edge's ends; only consecutive vertices count, so two separate tips (a
    cross at 45 degrees) give one tip, not a point between them off the shape."""
    v = sign * P[:, axis]
    n = len(P)
    i = int(np.argmax(v))
    near = v[i] - v <= FLAT_EDGE_TOLERANCE
    run = {i}
    for step in (-1, 1):
        j = (i + step) % n
        while near[j] and j not in run:
            run.add(j)
            j = (j + step) % n
    other = P[sorted(run), 1 - axis]
    pt = [0.0, 0.0]
    pt[axis] = P[i, axis]
    pt[1 - axis] = 0.5 * (other.min() + other.max())
    return pt


def _shoelace(flat) -> float:
    x, y = np.asarray(flat[0::2], np.float64), np.asarray(flat[1::2], np.float64)
    return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


def _crowd_group(rng, categories, h, w) -> dict:
    """A crowd: CROWD_MEMBERS small objects of one category clustered together."""
    c = categories[int(rng.integers(len(categories)))]
    side = min(h, w)
    spread = 0.15 * side
    gx = rng.uniform(spread + 4, w - spread - 4)
    gy = rng.uniform(spread + 4, h - spread - 4)
    members, union, geoms = [], np.zeros((h, w), bool), []
    for _ in range(int(rng.integers(CROWD_MEMBERS[0], CROWD_MEMBERS[1] + 1))):
        radius = max(0.5 * side * rng.uniform(0.08, 0.14), 3.0)
        cx = float(np.clip(gx + rng.uniform(-spread, spread), radius, w - radius))
        cy = float(np.clip(gy + rng.uniform(-spread, spread), radius, h - radius))
        obj = _sample_object(rng, c["shape"], c["texture"], cx, cy, radius, c["hue"])
        poly = _polygon(obj["shape"], cx, cy, radius, obj["angle"])
        full = _poly_mask(poly, h, w)
        members.append((obj, full))
        union |= full
        geoms.append(_shape(poly))
    return {"cat": c["index"], "members": members, "geom": unary_union(geoms),
            "vis": union, "area": int(union.sum()), "crowd": True}


def _crowd_annotation(o) -> dict:
    """COCO's record of a crowd region: uncompressed RLE of its visible pixels."""
    rle = mask_utils.encode(np.asfortranarray(o["vis"].astype(np.uint8)))
    return {
        "category_id": o["cat"] + 1,
        "segmentation": uncompressed_rle(o["vis"]),
        "area": float(mask_utils.area(rle)),
        "bbox": [float(v) for v in mask_utils.toBbox(rle)],
        "iscrowd": 1,
    }


def uncompressed_rle(mask: np.ndarray) -> dict:
    """COCO's uncompressed RLE: run lengths of the column-major mask, starting with zeros."""
    flat = np.asarray(mask, np.uint8).reshape(-1, order="F")
    change = np.flatnonzero(np.diff(flat)) + 1
    bounds = np.concatenate([[0], change, [flat.size]])
    counts = np.diff(bounds).tolist()
    if flat.size and flat[0]:
        counts = [0] + counts
    return {"size": [int(mask.shape[0]), int(mask.shape[1])], "counts": [int(c) for c in counts]}


# --------------------------------------------------------------------------- #
# writing
# --------------------------------------------------------------------------- #
@contextmanager
def _atomic_dir(out_dir):
    """Yield a hidden temporary sibling folder; rename it to ``out_dir`` on success."""
    out = Path(out_dir)
    parent = out.parent
    parent.mkdir(parents=True, exist_ok=True)
    tmp = parent / f".{out.name}.tmp-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if out.exists() or out.is_symlink():
        old = parent / f".{out.name}.old-{os.getpid()}"
        if old.exists():
            shutil.rmtree(old)
        os.rename(out, old)
        os.rename(tmp, out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.rename(tmp, out)


def _rng(seed, dataset, split, *idx):
    return np.random.default_rng([int(seed), _DATASET_CODE[dataset], _SPLIT_CODE[split], *idx])


def _progress(log, every, label, done, total):
    if log is not None and every and (done % every == 0 or done == total):
        log(f"[synth] {label}: {done}/{total} images")


def generate_imagenet(
    out_dir,
    cfg: dict,
    seed: int,
    log: Optional[Callable[[str], None]] = None,
    progress_every: int = 500,
) -> dict:
    """Write the ImageNet-layout classification set to ``out_dir``; return stats."""
    cfg = validate_config(cfg)
    t0 = time.time()
    vocab = world_vocabulary(cfg)[0]
    opts = world_options(cfg)
    clutter = cfg["clutter"] if opts["cls_clutter"] is None else opts["cls_clutter"]
    size, q = cfg["cls_image_size"], cfg["jpeg_quality"]
    per_split = {"train": cfg["cls_train_per_class"], "val": cfg["cls_val_per_class"]}
    total = sum(per_split.values()) * len(vocab)
    done = 0
    with _atomic_dir(out_dir) as tmp:
        with open(tmp / "classes.txt", "w") as f:
            for c in vocab:
                f.write(f"{c['wnid']}\t{c['name']}\n")
        for split, n in per_split.items():
            for c in vocab:
                d = tmp / split / c["wnid"]
                d.mkdir(parents=True)
                for k in range(n):
                    rng = _rng(seed, "imagenet", split, c["index"], k)
                    im = render_classification_image(rng, size, c["shape"], c["texture"], c["hue"],
                                                     clutter, opts["cls_object_scale"],
                                                     opts["cls_centre_jitter"])
                    im.save(d / f"{c['wnid']}_{k + 1}.JPEG", format="JPEG", quality=q)
                    done += 1
                    _progress(log, progress_every, "imagenet", done, total)
    return {
        "out_dir": str(out_dir),
        "seed": int(seed),
        "classes": len(vocab),
        "class_names": [c["name"] for c in vocab],
        "wnids": [c["wnid"] for c in vocab],
        "image_size": size,
        "train_images": per_split["train"] * len(vocab),
        "val_images": per_split["val"] * len(vocab),
        "seconds": round(time.time() - t0, 3),
    }


def coco_categories(cfg) -> list[dict]:
    """COCO's category records: ids are vocabulary indices + 1 (not contiguous when some
    categories are no pre-training class, as COCO's 1-90 for 80 categories are not)."""
    return [{"id": c["index"] + 1, "name": c["name"], "supercategory": c["shape"]}
            for c in world_vocabulary(cfg)[1]]


def _coco_splits(cfg, seed, img_root=None, log=None, progress_every=500, label="coco"):
    """Render every scene of both splits; yield (split, images, annotations, stats).

    The annotations carry the KEYPOINT_FIELDS. The JPEGs are saved under
    ``img_root/{split}2017`` (img_root None: not encoded at all, for the keypoints alone)."""
    categories = world_vocabulary(cfg)[1]
    world = world_options(cfg)
    names = [c["name"] for c in categories]
    position = {c["index"] + 1: k for k, c in enumerate(categories)}  # category id -> its place
    splits = {"train": cfg["det_train_images"], "val": cfg["det_val_images"]}
    total = sum(splits.values())
    done = 0
    for split, n in splits.items():
        img_dir = None if img_root is None else Path(img_root) / f"{split}2017"
        if img_dir is not None:
            img_dir.mkdir()
        images, annotations = [], []
        n_crowd = n_split = n_skipped = n_labelled = n_visible = 0
        per_cat = [0] * len(names)
        id_offset = COCO_VAL_ID_OFFSET if split == "val" else 0
        for k in range(n):
            image_id = id_offset + k + 1
            rng = _rng(seed, "coco", split, k)
            im, anns, skipped = render_detection_scene(rng, cfg, categories, world=world)
            fname = f"{image_id:012d}.jpg"
            if img_dir is not None:
                im.save(img_dir / fname, format="JPEG", quality=cfg["jpeg_quality"])
            images.append(
                {"id": image_id, "file_name": fname, "width": im.width,
                 "height": im.height, "license": 1}
            )
            for a in anns:
                annotations.append({"id": len(annotations) + 1, "image_id": image_id, **a})
                if a["iscrowd"]:
                    n_crowd += 1
                elif len(a["segmentation"]) > 1:
                    n_split += 1
                per_cat[position[a["category_id"]]] += 1
                flags = a["keypoints"][2::3]
                n_labelled += sum(f > 0 for f in flags)
                n_visible += sum(f == 2 for f in flags)
            n_skipped += skipped
            done += 1
            _progress(log, progress_every, label, done, total)
        yield split, images, annotations, {
            "images": len(images),
            "annotations": len(annotations),
            "crowd_annotations": n_crowd,  # iscrowd 1, uncompressed RLE
            "split_objects": n_split,  # objects an occluder cut in several polygons
            "objects_skipped": n_skipped,
            "annotations_per_category": dict(zip(names, per_cat)),
            "keypoints_labelled": n_labelled,  # v > 0
            "keypoints_visible": n_visible,  # v == 2
        }


def _write_keypoints(path, seed, cfg, images, annotations):
    """COCO's person_keypoints file: the instances file plus the keypoint fields."""
    cats = [{**c, "keypoints": list(KEYPOINT_NAMES), "skeleton": KEYPOINT_SKELETON}
            for c in coco_categories(cfg)]
    _write_coco(path, seed, images, annotations, cats)


def _write_coco(path, seed, images, annotations, categories):
    doc = {
        "info": {
            "description": "Synthetic shape-texture world in COCO 2017 format (rethink.synth)",
            "version": "1.0",
            "year": 2017,
            "contributor": "rethink.synth",
            "date_created": "2017/09/01",
            "seed": int(seed),
        },
        "licenses": [{"id": 1, "name": "synthetic data, no restrictions", "url": ""}],
        "images": images,
        "annotations": annotations,
        "categories": categories,
    }
    with open(path, "w") as f:
        json.dump(doc, f)


def generate_coco(
    out_dir,
    cfg: dict,
    seed: int,
    log: Optional[Callable[[str], None]] = None,
    progress_every: int = 500,
) -> dict:
    """Write the COCO-2017-layout instance segmentation set (and its person_keypoints
    files) to ``out_dir``; return stats."""
    cfg = validate_config(cfg)
    t0 = time.time()
    categories = coco_categories(cfg)
    stats = {"out_dir": str(out_dir), "seed": int(seed), "categories": [c["name"] for c in categories]}
    with _atomic_dir(out_dir) as tmp:
        (tmp / "annotations").mkdir()
        for split, images, annotations, st in _coco_splits(cfg, seed, tmp, log, progress_every):
            instances = [{k: v for k, v in a.items() if k not in KEYPOINT_FIELDS} for a in annotations]
            _write_coco(tmp / "annotations" / f"instances_{split}2017.json", seed, images, instances,
                        categories)
            _write_keypoints(tmp / "annotations" / KEYPOINT_FILE.format(split=split), seed, cfg,
                             images, annotations)
            stats[split] = st
    stats["seconds"] = round(time.time() - t0, 3)
    return stats


def generate_coco_keypoints(
    out_dir,
    cfg: dict,
    seed: int,
    log: Optional[Callable[[str], None]] = None,
    progress_every: int = 500,
) -> dict:
    """Write only ``person_keypoints_{train,val}2017.json`` into the flat folder ``out_dir``
    (replacing it), byte-identical to generate_coco's, without encoding any image; return
    stats (per split as generate_coco's)."""
    cfg = validate_config(cfg)
    t0 = time.time()
    stats = {"out_dir": str(out_dir), "seed": int(seed),
             "categories": [c["name"] for c in coco_categories(cfg)],
             "keypoint_names": list(KEYPOINT_NAMES)}
    with _atomic_dir(out_dir) as tmp:
        for split, images, annotations, st in _coco_splits(cfg, seed, None, log, progress_every,
                                                           "keypoints"):
            _write_keypoints(tmp / KEYPOINT_FILE.format(split=split), seed, cfg, images, annotations)
            stats[split] = st
    stats["seconds"] = round(time.time() - t0, 3)
    return stats


def voc_categories(cfg) -> list[str]:
    """The VOC world's class names (the first voc_classes detection categories), in order:
    what ``rethink.voc --classes`` needs to read it."""
    n = voc_settings(cfg)["voc_classes"]
    return [c["name"] for c in coco_categories(validate_config(cfg))[:n]]


def _voc_plan(n_train, n_val):
    """(year folder, image set, split, scene index, image name) of every VOC world image:
    VOC2007's share of train as VOC2007 trainval, the rest as VOC2012 train, val as VOC2012 val."""
    n07 = round(n_train * VOC2007_SHARE)
    if n_train >= 2:  # both years hold train images
        n07 = min(max(n07, 1), n_train - 1)
    plan = [("VOC2007", "trainval", "train", k, f"{k + 1:06d}") for k in range(n07)]
    plan += [("VOC2012", "train", "train", k, f"2008_{k - n07 + 1:06d}") for k in range(n07, n_train)]
    plan += [("VOC2012", "val", "val", k, f"2008_{n_train - n07 + k + 1:06d}") for k in range(n_val)]
    return plan


def _voc_object(ann, name_of, width, height) -> dict:
    """VOC's record of an object: 1-based inclusive integer pixel box around its visible
    region (every pixel the COCO box touches, inside the image) and the difficult flag."""
    x0, y0, bw, bh = ann["bbox"]
    xmin = min(max(math.floor(x0) + 1, 1), width)
    ymin = min(max(math.floor(y0) + 1, 1), height)
    # round first: x0 + bw may land a hair above an integer it equals
    xmax = max(min(math.ceil(round(x0 + bw, 6)), width), xmin)
    ymax = max(min(math.ceil(round(y0 + bh, 6)), height), ymin)
    small = min(xmax - xmin + 1, ymax - ymin + 1) < VOC_DIFFICULT_SIDE
    occluded = ann["visible_fraction"] < VOC_DIFFICULT_VISIBLE
    return {"name": name_of[ann["category_id"]], "difficult": int(small or occluded),
            "box": (xmin, ymin, xmax, ymax)}


def _voc_xml(year, name, width, height, objects) -> str:
    """The annotation file as the VOC devkit writes it (tab-indented)."""
    lines = ["<annotation>", f"\t<folder>{year}</folder>", f"\t<filename>{name}.jpg</filename>",
             "\t<source>", f"\t\t<database>The synthetic {year} Database</database>",
             f"\t\t<annotation>PASCAL {year}</annotation>", "\t\t<image>rethink.synth</image>",
             "\t</source>", "\t<size>", f"\t\t<width>{width}</width>",
             f"\t\t<height>{height}</height>", "\t\t<depth>3</depth>", "\t</size>",
             "\t<segmented>0</segmented>"]
    for o in objects:
        xmin, ymin, xmax, ymax = o["box"]
        lines += ["\t<object>", f"\t\t<name>{o['name']}</name>", "\t\t<pose>Unspecified</pose>",
                  "\t\t<truncated>0</truncated>", f"\t\t<difficult>{o['difficult']}</difficult>",
                  "\t\t<bndbox>", f"\t\t\t<xmin>{xmin}</xmin>", f"\t\t\t<ymin>{ymin}</ymin>",
                  f"\t\t\t<xmax>{xmax}</xmax>", f"\t\t\t<ymax>{ymax}</ymax>", "\t\t</bndbox>",
                  "\t</object>"]
    return "\n".join(lines + ["</annotation>", ""])


def generate_voc(
    out_dir,
    cfg: dict,
    seed: int,
    log: Optional[Callable[[str], None]] = None,
    progress_every: int = 500,
) -> dict:
    """Write the VOCdevkit-layout detection set (VOC2007 trainval, VOC2012 train, val and
    trainval) to ``out_dir``; return stats (per split as generate_coco's, boxes only)."""
    cfg = validate_config(cfg)
    voc = voc_settings(cfg)
    t0 = time.time()
    categories = world_vocabulary(cfg)[1]
    names = voc_categories(cfg)
    name_of = {c["index"] + 1: c["name"] for c in categories}  # category id -> name
    plan = _voc_plan(voc["voc_train_images"], voc["voc_val_images"])
    members = {("VOC2007", "trainval"): [], ("VOC2012", "train"): [], ("VOC2012", "val"): []}
    tally = {split: {"images": 0, "annotations": 0, "difficult": 0, "category_sum": 0,
                     "per_cat": [0] * len(names)} for split in ("train", "val")}
    with _atomic_dir(out_dir) as tmp:
        for year in ("VOC2007", "VOC2012"):
            for sub in ("Annotations", "JPEGImages", "ImageSets/Main"):
                (tmp / year / sub).mkdir(parents=True)
        for done, (year, image_set, split, k, name) in enumerate(plan, 1):
            rng = _rng(seed, "voc", split, k)
            im, anns, _ = render_detection_scene(
                rng, cfg, categories, max_objects=voc["voc_max_objects"],
                n_categories=voc["voc_classes"], crowd=False, visibility=True)
            objects = [_voc_object(a, name_of, im.width, im.height) for a in anns]
            im.save(tmp / year / "JPEGImages" / f"{name}.jpg", format="JPEG",
                    quality=cfg["jpeg_quality"])
            (tmp / year / "Annotations" / f"{name}.xml").write_text(
                _voc_xml(year, name, im.width, im.height, objects))
            members[year, image_set].append(name)
            t = tally[split]
            t["images"] += 1
            t["annotations"] += len(objects)
            t["difficult"] += sum(o["difficult"] for o in objects)
            t["category_sum"] += len({o["name"] for o in objects})
            for o in objects:
                t["per_cat"][names.index(o["name"])] += 1
            _progress(log, progress_every, "voc", done, len(plan))
        members["VOC2012", "trainval"] = members["VOC2012", "train"] + members["VOC2012", "val"]
        for (year, image_set), image_names in members.items():
            (tmp / year / "ImageSets" / "Main" / f"{image_set}.txt").write_text(
                "".join(f"{n}\n" for n in image_names))
    stats = {"out_dir": str(out_dir), "seed": int(seed), "categories": names,
             "sets": {f"{y}/{s}": len(v) for (y, s), v in members.items()}}
    for split, t in tally.items():
        n = max(t["images"], 1)
        stats[split] = {"images": t["images"], "annotations": t["annotations"],
                        "difficult": t["difficult"],
                        "instances_per_image": round(t["annotations"] / n, 3),
                        "categories_per_image": round(t["category_sum"] / n, 3),
                        "annotations_per_category": dict(zip(names, t["per_cat"]))}
    stats["seconds"] = round(time.time() - t0, 3)
    return stats


# --------------------------------------------------------------------------- #
# CLI
# --------------------------------------------------------------------------- #
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m rethink.synth",
        description="Generate the synthetic ImageNet-, COCO- and VOC-layout datasets.",
    )
    ap.add_argument("--imagenet", metavar="OUT", help="output folder of the classification set")
    ap.add_argument("--coco", metavar="OUT", help="output folder of the detection set")
    ap.add_argument("--voc", metavar="OUT", help="output folder of the VOCdevkit-layout detection set")
    ap.add_argument("--keypoints", metavar="OUT",
                    help="folder for the detection set's person_keypoints_{train,val}2017.json "
                         "alone (no images)")
    ap.add_argument("--config", required=True,
                    help="generator config: .json/.yaml file or inline JSON")
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--progress-every", type=int, default=500, metavar="N")
    args = ap.parse_args(argv)
    if not args.imagenet and not args.coco and not args.keypoints and not args.voc:
        ap.error("give --imagenet, --coco, --voc and/or --keypoints")
    try:
        cfg = load_config(args.config)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2

    def log(msg):
        print(msg, flush=True)

    if args.imagenet:
        s = generate_imagenet(args.imagenet, cfg, args.seed, log=log, progress_every=args.progress_every)
        log(f"[synth] imagenet done: {s['train_images']} train / {s['val_images']} val images, "
            f"{s['classes']} classes in {s['seconds']:.1f}s -> {args.imagenet}")
    if args.coco:
        s = generate_coco(args.coco, cfg, args.seed, log=log, progress_every=args.progress_every)
        log(f"[synth] coco done: {s['train']['images']} train / {s['val']['images']} val images, "
            f"{s['train']['annotations']} / {s['val']['annotations']} annotations "
            f"in {s['seconds']:.1f}s -> {args.coco}")
    if args.voc:
        s = generate_voc(args.voc, cfg, args.seed, log=log, progress_every=args.progress_every)
        log(f"[synth] voc done: {s['train']['images']} train / {s['val']['images']} val images, "
            f"{s['train']['annotations']} / {s['val']['annotations']} objects "
            f"in {s['seconds']:.1f}s -> {args.voc}")
    if args.keypoints:
        s = generate_coco_keypoints(args.keypoints, cfg, args.seed, log=log,
                                    progress_every=args.progress_every)
        log(f"[synth] keypoints done: {s['train']['keypoints_labelled']} / "
            f"{s['val']['keypoints_labelled']} train / val keypoints labelled "
            f"in {s['seconds']:.1f}s -> {args.keypoints}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
