"""The synthetic world's pictures: object-centric classification images and detection scenes
with their COCO-style annotations, drawn from a numpy Generator the caller seeds.

The world is made of flat objects whose *category* is a (shape, texture) pair,
e.g. ``striped_triangle``, with a characteristic colour (each class has its own
hue, jittered; saturation and brightness vary), as real categories tend to have.
Everything else is nuisance: pattern colour, scale, rotation, position, texture
phase/orientation/period, lighting and a cluttered background (smooth noise, random
lines, irregular non-category blobs, sensor noise).

Annotations follow COCO's conventions: every object (``iscrowd: 0``) has the polygons of
its visible region (later objects are drawn over earlier ones; an object split by an
occluder gets one polygon per part), ``area`` is the polygons' area and ``bbox`` the box
around them; about 1% of instances are crowd regions (``iscrowd: 1``, a cluster of small
objects) with an uncompressed RLE (``counts`` a list) of their visible pixels. Objects are
rasterised with pycocotools from the (rounded) polygons, so an unoccluded object's
``COCO.annToMask`` reproduces its rendered pixels exactly, and an occluded one's up to the
pixels its polygon boundary cuts. Every object also has five keypoints from its full
polygon (KEYPOINT_NAMES: extreme points and area centroid, visible or hidden by a
later-drawn object), pure geometry that draws no random numbers.

The vocabulary and the config are rethink.core.synthetic; the files in the ImageNet, COCO
and VOC layouts, and the seeding that makes them byte-identical, rethink.data.writers.
"""
from __future__ import annotations

import colorsys
import math
import warnings

import numpy as np
from PIL import Image, ImageDraw
from pycocotools import mask as mask_utils
from shapely.geometry import Point, Polygon
from shapely.ops import unary_union

from rethink.core.synthetic import SHAPES, WORLD_DEFAULTS, size_ranges

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
        lo, hi = size_ranges(lo, hi)[int(rng.choice(3, p=shares))]
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
