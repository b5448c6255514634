"""Images, instances and pixels seen in training (the paper's Figure 2), counted from the
run's own annotation files and schedules rather than from nominal dataset sizes.

For each variant of the study, each of its schedules (T iterations at batch B over the
variant's n train images) and each init, one row gives what (a) pre-training and (b)
detection fine-tuning saw, and their total; from-scratch rows have zero pre-training.

* Images: T * B. Training batches are ``rethink.core.order.batch_indices(it, B, n, seed)`` for
  it < T over the images sorted by id (minus those the layout check skipped as corrupt):
  epochs of seeded permutations. So every full epoch sees each image once, and only the
  last, partial epoch depends on the order; it is the first ``T*B mod n`` entries of that
  epoch's permutation. The counts use the first seed of study.json: the other seeds differ
  only in the order, so their per-epoch totals are identical and only the partial epoch's
  share can differ.
* Instances: the image's annotations training uses as targets (as
  ``CocoInstances.target``): not crowd, box width and height >= 1.
* Pixels: the image's area after the detector's resize (torchvision
  GeneralizedRCNNTransform: factor = min(scale / short side, max_size / long side), each
  side floored), averaged over the variant's ``train_scales`` (drawn uniformly per image);
  padding is not counted. Image sizes are the annotation file's height/width.
* Pre-training: study.json ``pretrain`` (images_seen, pixels_seen, instances_seen; one
  instance per classification image when instances_seen is absent, pixels unknown when
  pixels_seen is). ``pretrain: null`` (a given backbone checkpoint) leaves the pretrained
  rows' pre-training and totals empty: unknown, not zero.

Command line::

    python -m rethink.analysis.compute --study study.json \\
        --annotations main=instances_train2017.json 10k=subsets/10k/instances_train2017.json \\
        --out-csv compute_seen.csv --out-json compute_seen.json [--layout-stats coco_layout.json]

Every variant of study.json needs an annotation file. Rows follow study.json's variant
order (main first), then schedules by length, then the variant's inits.
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import math
import sys
from pathlib import Path

import numpy as np

from rethink.core.atomic import write_json, write_text
from rethink.core.names import skipped_image_ids
from rethink.core.order import aspect_groups, epoch_order

KINDS = ("images", "instances", "pixels")
PARTS = ("pretrain", "finetune", "total")
COLUMNS = (["variant", "schedule", "multiple", "iterations", "batch_size", "init",
            "train_images", "epochs"]
           + [f"{part}_{kind}" for part in PARTS for kind in KINDS])


class ComputeError(ValueError):
    """Bad or inconsistent input; the message names the file and key."""


def _is_int(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _is_number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _read_json(path, what: str):
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except FileNotFoundError:
        raise ComputeError(f"{path}: {what} file not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ComputeError(f"{path}: {what} is not valid JSON ({e})") from None
    except OSError as e:
        raise ComputeError(f"{path}: cannot read the {what} ({e})") from None


# --------------------------------------------------------------------------
# study.json (read here without pandas: this runs in the training environment)
# --------------------------------------------------------------------------
def load_study(path) -> dict:
    """study.json with the keys this module uses checked; errors name the file and key."""
    study = _read_json(path, "study")
    if not isinstance(study, dict):
        raise ComputeError(f"{path}: study must be a JSON object")
    seeds = study.get("seeds")
    if not isinstance(seeds, list) or not seeds or not all(_is_int(s) for s in seeds):
        raise ComputeError(f"{path}: 'seeds' must be a non-empty list of integers")
    variants = study.get("variants")
    if not isinstance(variants, dict) or not variants:
        raise ComputeError(f"{path}: 'variants' must be a non-empty object")
    for name, v in variants.items():
        where = f"{path}: variants.{name}"
        if not isinstance(v, dict):
            raise ComputeError(f"{where} must be an object")
        for key in ("batch_size", "inits", "schedules", "max_size"):
            if key not in v:
                raise ComputeError(f"{where} is missing key {key!r}")
        if not _is_int(v["batch_size"]) or v["batch_size"] <= 0:
            raise ComputeError(f"{where}.batch_size must be a positive integer")
        if not isinstance(v["inits"], list) or not v["inits"]:
            raise ComputeError(f"{where}.inits must be a non-empty list")
        if not _is_number(v["max_size"]) or v["max_size"] <= 0:
            raise ComputeError(f"{where}.max_size must be a positive number")
        scales = v.get("train_scales") or [v.get("min_size")]
        if (not isinstance(scales, list) or not scales
                or not all(_is_number(s) and s > 0 for s in scales)):
            raise ComputeError(f"{where}.train_scales must be a non-empty list of positive "
                               f"numbers (or give min_size)")
        if v.get("group_by_aspect") and not (_is_number(v.get("min_size")) and v["min_size"] > 0):
            raise ComputeError(f"{where}: group_by_aspect needs min_size, a positive number")
        if not isinstance(v["schedules"], list) or not v["schedules"]:
            raise ComputeError(f"{where}.schedules must be a non-empty list")
        for i, s in enumerate(v["schedules"]):
            if not isinstance(s, dict) or not isinstance(s.get("name"), str):
                raise ComputeError(f"{where}.schedules[{i}] must be an object with a 'name'")
            if not _is_int(s.get("iters")) or s["iters"] < 0:
                raise ComputeError(f"{where}.schedules[{i}].iters must be a non-negative integer")
        if "train_images" in v and (not _is_int(v["train_images"]) or v["train_images"] < 0):
            raise ComputeError(f"{where}.train_images must be a non-negative integer")
    main = study.get("main", next(iter(variants)))
    if main not in variants:
        raise ComputeError(f"{path}: 'main' names {main!r}, not a key of 'variants'")
    pre = study.get("pretrain")
    if pre is not None:
        if not isinstance(pre, dict):
            raise ComputeError(f"{path}: 'pretrain' must be an object or null")
        if not _is_number(pre.get("images_seen")) or pre["images_seen"] < 0:
            raise ComputeError(f"{path}: pretrain.images_seen must be a non-negative number")
        for key in ("instances_seen", "pixels_seen"):
            if pre.get(key) is not None and (not _is_number(pre[key]) or pre[key] < 0):
                raise ComputeError(f"{path}: pretrain.{key} must be a non-negative number")
    return study


# --------------------------------------------------------------------------
# annotation files
# --------------------------------------------------------------------------
def load_train_images(path, skip_ids=()) -> dict:
    """The images training iterates over, sorted by id, with instance counts and sizes.

    Returns ``{"ids", "heights", "widths", "instances"}`` (numpy arrays, one entry per
    image) and ``skipped`` (how many images ``skip_ids`` removed).
    """
    doc = _read_json(path, "annotation")
    if not isinstance(doc, dict) or not isinstance(doc.get("images"), list):
        raise ComputeError(f"{path}: a COCO annotation file needs an 'images' list")
    anns = doc.get("annotations", [])
    if not isinstance(anns, list):
        raise ComputeError(f"{path}: 'annotations' must be a list")
    sizes = {}
    for i, im in enumerate(doc["images"]):
        if not isinstance(im, dict) or not _is_int(im.get("id")):
            raise ComputeError(f"{path}: images[{i}] needs an integer 'id'")
        h, w = im.get("height"), im.get("width")
        if not (_is_number(h) and _is_number(w) and h > 0 and w > 0):
            raise ComputeError(f"{path}: images[{i}] (id {im['id']}) needs positive "
                               f"'height' and 'width', got {h!r} x {w!r}")
        sizes[im["id"]] = (h, w)
    skip = {int(i) for i in skip_ids}
    ids = sorted(i for i in sizes if i not in skip)
    count = dict.fromkeys(ids, 0)
    for j, a in enumerate(anns):
        if not isinstance(a, dict):
            raise ComputeError(f"{path}: annotations[{j}] must be an object")
        if a.get("image_id") not in count or a.get("iscrowd", 0) or a.get("difficult", 0):
            continue  # as CocoInstances.target: crowd regions and VOC's difficult objects are no targets
        box = a.get("bbox")
        if not (isinstance(box, list) and len(box) == 4 and all(_is_number(x) for x in box)):
            raise ComputeError(f"{path}: annotations[{j}] (id {a.get('id')}) has no valid 'bbox'")
        if box[2] < 1 or box[3] < 1:  # CocoInstances.target leaves these out
            continue
        count[a["image_id"]] += 1
    return {"ids": np.array(ids, dtype=np.int64),
            "heights": np.array([sizes[i][0] for i in ids], dtype=np.float64),
            "widths": np.array([sizes[i][1] for i in ids], dtype=np.float64),
            "instances": np.array([count[i] for i in ids], dtype=np.int64),
            "skipped": len(sizes) - len(ids)}


def resized_pixels(heights, widths, scales, max_size) -> np.ndarray:
    """Pixels of each image after GeneralizedRCNNTransform's resize, averaged over `scales`."""
    h = np.asarray(heights, dtype=np.float64)
    w = np.asarray(widths, dtype=np.float64)
    total = np.zeros_like(h)
    for s in scales:
        # same float ops as torchvision: scale, then interpolate floors size * scale
        f = np.minimum(float(s) / np.minimum(h, w), float(max_size) / np.maximum(h, w))
        total += np.floor(h * f) * np.floor(w * f)
    return total / len(scales)


# --------------------------------------------------------------------------
# what a schedule saw
# --------------------------------------------------------------------------
def times_seen(iterations: int, batch_size: int, n: int, seed: int, groups=None) -> np.ndarray:
    """How often each of the n images is in the batches of iterations [0, iterations).

    The same multiset as ``batch_indices(it, batch_size, n, seed, groups)`` over those
    iterations, without the per-position loop: full epochs see every image once, the
    partial last one the head of its order.
    """
    if n <= 0:
        raise ComputeError("no train images")
    full, rem = divmod(iterations * batch_size, n)
    counts = np.full(n, full, dtype=np.int64)
    if rem:
        counts[epoch_order(seed, full, n, batch_size, groups)[:rem]] += 1
    return counts


def variant_rows(name: str, v: dict, images: dict, seed: int, pretrain: dict | None) -> list[dict]:
    n = len(images["ids"])
    scales = v.get("train_scales") or [v.get("min_size")]
    pixels = resized_pixels(images["heights"], images["widths"], scales, v["max_size"])
    bs = v["batch_size"]
    groups = (aspect_groups(images["heights"], images["widths"], v["min_size"], v["max_size"])
              if v.get("group_by_aspect") else None)
    rows = []
    for s in sorted(v["schedules"], key=lambda s: (s["iters"], s.get("multiple", 0), s["name"])):
        seen = times_seen(s["iters"], bs, n, seed, groups)
        fine = {"images": int(s["iters"] * bs),
                "instances": int(seen @ images["instances"]),
                "pixels": round(float(seen @ pixels), 6)}  # no float-sum noise in the CSV
        for init in v["inits"]:
            if init != "pretrained":
                pre = dict.fromkeys(KINDS, 0)
            elif pretrain is None:
                pre = dict.fromkeys(KINDS, None)
            else:
                instances = pretrain.get("instances_seen")
                pre = {"images": pretrain["images_seen"],
                       "instances": pretrain["images_seen"] if instances is None else instances,
                       "pixels": pretrain.get("pixels_seen")}  # None: unknown
            row = {"variant": name, "schedule": s["name"], "multiple": s.get("multiple"),
                   "iterations": int(s["iters"]), "batch_size": bs, "init": init,
                   "train_images": n, "epochs": s["iters"] * bs / n}
            for k in KINDS:
                row[f"pretrain_{k}"] = pre[k]
                row[f"finetune_{k}"] = fine[k]
                row[f"total_{k}"] = None if pre[k] is None else pre[k] + fine[k]
            rows.append(row)
    return rows


def compute(study: dict, annotations: dict, skip_ids=(), study_path="study.json") -> dict:
    """Counts for every variant; `annotations` maps every variant name to its file."""
    variants = study["variants"]
    unknown = [k for k in annotations if k not in variants]
    if unknown:
        raise ComputeError(f"--annotations: unknown variant(s) {unknown}; {study_path} has "
                           f"{list(variants)}")
    missing = [k for k in variants if k not in annotations]
    if missing:
        raise ComputeError(f"--annotations: no annotation file for variant(s) {missing} of "
                           f"{study_path}")
    seed = study["seeds"][0]
    main = study.get("main", next(iter(variants)))
    order = [main] + [k for k in variants if k != main]
    rows, per_variant = [], {}
    for name in order:
        v, path = variants[name], annotations[name]
        images = load_train_images(path, skip_ids)
        n = len(images["ids"])
        if n == 0:
            raise ComputeError(f"{path}: variant {name!r} has no train images")
        expected = v.get("train_images")
        if expected is not None and expected not in (n, n + images["skipped"]):
            raise ComputeError(f"{path}: {n} train images, but {study_path} "
                               f"variants.{name}.train_images is {expected} (wrong file?)")
        scales = v.get("train_scales") or [v.get("min_size")]
        per_variant[name] = {
            "annotations": str(path), "train_images": n, "skipped_images": images["skipped"],
            "instances_per_epoch": int(images["instances"].sum()),
            "pixels_per_epoch": float(resized_pixels(images["heights"], images["widths"],
                                                     scales, v["max_size"]).sum()),
            "train_scales": scales, "max_size": v["max_size"], "batch_size": v["batch_size"]}
        rows += variant_rows(name, v, images, seed, v.get("pretrain", study.get("pretrain")))  # a pretraining variant: its own
    return {"seed": seed,
            "note": (f"batch order of seed {seed}; other seeds differ only in order: per-epoch "
                     "totals are identical, only the last partial epoch's share can differ"),
            "main": main, "pretrain": study.get("pretrain"), "variants": per_variant,
            "rows": rows}


def to_csv(rows: list[dict], columns=COLUMNS) -> str:
    """`columns` of each row as CSV, None as an empty field."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: ("" if r[k] is None else r[k]) for k in columns})
    return buf.getvalue()


def _annotation_args(items) -> dict:
    out = {}
    for item in items:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise ComputeError(f"--annotations: expected VARIANT=PATH, got {item!r}")
        if name in out:
            raise ComputeError(f"--annotations: variant {name!r} given twice")
        out[name] = Path(path)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m rethink.analysis.compute",
        description="Images, instances and pixels seen by pre-training + fine-tuning and by "
                    "training from scratch, per variant, schedule and init (paper Fig. 2).")
    ap.add_argument("--study", required=True, help="study.json written by the plan rule")
    ap.add_argument("--annotations", required=True, nargs="+", metavar="VARIANT=PATH",
                    help="each variant's train annotation file (COCO JSON)")
    ap.add_argument("--layout-stats", help="the layout check's JSON: its skipped (corrupt) train "
                                           "images are left out, as training leaves them out")
    ap.add_argument("--out-csv", required=True)
    ap.add_argument("--out-json", required=True)
    args = ap.parse_args(argv)
    try:
        study = load_study(args.study)
        annotations = _annotation_args(args.annotations)
        try:
            skip = skipped_image_ids(args.layout_stats, "train")
        except (RuntimeError, KeyError, TypeError, ValueError) as e:
            raise ComputeError(f"{args.layout_stats}: bad layout stats ({e})") from None
        result = compute(study, annotations, skip, args.study)
        write_text(args.out_csv, to_csv(result["rows"]))
        write_json(args.out_json, result)
    except ComputeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for r in result["rows"]:
        if r["variant"] == result["main"]:
            total = r["total_images"]
            print(f"{r['variant']} {r['schedule']:>5} {r['init']:<10} "
                  f"fine-tuning {r['finetune_images']:,} images, {r['finetune_instances']:,} "
                  f"instances, {r['finetune_pixels']:.3g} pixels; total images "
                  + ("unknown" if total is None else f"{total:,}"))
    print(f"wrote {args.out_csv} ({len(result['rows'])} rows) and {args.out_json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
