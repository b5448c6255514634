"""Writers of the synthetic world (rethink.data.world) in the real on-disk formats.

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

Keypoints: ``generate_coco`` also writes ``annotations/person_keypoints_{train,val}2017.json``
in COCO's person-keypoints format (the same images and annotations, plus ``keypoints`` and
``num_keypoints``; categories name KEYPOINT_NAMES and KEYPOINT_SKELETON), so keypoint heads
can be trained on the same world; ``generate_coco_keypoints`` writes only those two files,
byte-identical, without encoding an image.

Determinism: every image has its own ``numpy.random.Generator`` seeded from
``(seed, dataset, split, index)``; no global RNG is touched, and no timestamps
are written, so the same seed gives byte-identical files.

Each dataset is written into a hidden temporary sibling folder and renamed into
place only when complete.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from rethink.core.errors import ConfigError
from rethink.core.names import KEYPOINT_FILE
from rethink.core.synthetic import (
    coco_categories,
    load_config,
    validate_config,
    voc_categories,
    voc_settings,
    world_options,
    world_vocabulary,
)
from rethink.data.world import (
    KEYPOINT_FIELDS,
    KEYPOINT_NAMES,
    KEYPOINT_SKELETON,
    render_classification_image,
    render_detection_scene,
)

_DATASET_CODE = {"imagenet": 1, "coco": 2, "voc": 3}
_SPLIT_CODE = {"train": 1, "val": 2}
COCO_VAL_ID_OFFSET = 1_000_000  # COCO image ids of val are disjoint from train
VOC_DIFFICULT_VISIBLE = 0.5  # objects less than half visible are VOC's "difficult" ...
VOC_DIFFICULT_SIDE = 12  # ... and so are those whose box side is under this many pixels
VOC2007_SHARE = 5011 / 10728  # of the train images: VOC2007 trainval's 5,011 of 07+12's 10,728


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
            "description": "Synthetic shape-texture world in COCO 2017 format (rethink.data.writers)",
            "version": "1.0",
            "year": 2017,
            "contributor": "rethink.data.writers",
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
             f"\t\t<annotation>PASCAL {year}</annotation>", "\t\t<image>rethink.data.writers</image>",
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
        prog="python -m rethink.data.writers",
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
