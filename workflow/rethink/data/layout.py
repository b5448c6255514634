"""Checks that a dataset folder has the real ImageNet / COCO-2017 layout.

The same checks run on the synthetic data and on the real datasets, so a
pipeline pointed at a real ImageNet or COCO copy fails early with a message
naming the file (and record) at fault instead of crashing inside training.

CLI::

    python -m rethink.data.layout [--imagenet DIR] [--coco DIR] \
        [--verify-images header|full|none] [--corrupt-images fail|skip] --out stats.json
    python -m rethink.data.layout --keypoints ANN_DIR --images COCO_ROOT --num-keypoints K \
        [--config-key keypoints.sigmas] --out stats.json

writes the stats JSON (atomically) only if every check passes; otherwise it
prints the error to stderr and exits 1 without writing ``--out``.

``--corrupt-images skip`` (config key ``data.corrupt_images``) turns COCO images
that do not decode into warnings: they are listed in the stats under
``coco.skipped_images.{train,val}`` (id, file, error) and the training and
evaluation datasets leave them out (``skipped_image_ids``).
Annotation errors, missing files and size mismatches always fail.

Train and val sharing an image (the same bytes, under any names) is a warning, not an
error: it names the pairs on stderr and lists them in the stats under ``shared_images``
(COCO: image ids and files; ImageNet: files), since a val score on images the model
trained on says nothing about generalisation.

``--keypoints`` checks COCO person-keypoints files (``person_keypoints_{train,val}2017.json``
in ANN_DIR, images under ``COCO_ROOT/{split}2017``): the instance checks, then the keypoint
names and skeleton of every category, every annotation's ``[x, y, v]`` triples, and that the
file names as many keypoints as the config's OKS sigmas have values (``--num-keypoints``).
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import sys
from numbers import Real
from pathlib import Path

from rethink.core.names import COCO_SPLITS, SIZE_CLASSES, size_class

IMAGE_EXTENSIONS = (".jpeg", ".jpg", ".png")
VERIFY_MODES = ("header", "full", "none")
CORRUPT_MODES = ("fail", "skip")
EXPECTED_COCO = ("  annotations/instances_train2017.json\n  annotations/instances_val2017.json\n"
            "  train2017/*.jpg\n  val2017/*.jpg")
BBOX_TOLERANCE = 1.0  # pixels a box may stick out of its image
MAX_ERRORS_LISTED = 20
MAX_SHARED_LISTED = 10  # pairs of shared train/val images named in the warning (all in the stats)


class DatasetError(Exception):
    """A dataset folder or annotation file does not have the expected layout/content."""


# --------------------------------------------------------------------------- #
# ImageNet
# --------------------------------------------------------------------------- #
def is_image(p: Path) -> bool:
    return p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS


def join_problems(problems):
    if len(problems) > MAX_ERRORS_LISTED:
        extra = len(problems) - MAX_ERRORS_LISTED
        problems = problems[:MAX_ERRORS_LISTED] + [f"... and {extra} more"]
    return "; ".join(problems)


def _digest(path: Path) -> str:
    h = hashlib.sha1()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def shared_files(train: dict, val: dict) -> list[tuple]:
    """(train key, val key) of every pair of files with the same bytes. Only files whose
    size occurs in both splits are read, so a set without duplicates costs a stat per file."""
    def sizes(files):
        out = {}
        for key, path in files.items():
            out.setdefault(path.stat().st_size, []).append(key)
        return out

    by_size = [sizes(train), sizes(val)]
    pairs = []
    for size in sorted(set(by_size[0]) & set(by_size[1])):
        digests = {}
        for key in by_size[0][size]:
            digests.setdefault(_digest(train[key]), []).append(key)
        for key in by_size[1][size]:
            pairs += [(t, key) for t in digests.get(_digest(val[key]), [])]
    return sorted(pairs, key=lambda p: (str(p[1]), str(p[0])))


def warn_shared(where: str, pairs: list[str]) -> None:
    if pairs:
        more = f" (and {len(pairs) - MAX_SHARED_LISTED} more)" if len(pairs) > MAX_SHARED_LISTED else ""
        print(f"warning: {where}: {len(pairs)} val image(s) have the same bytes as train images, so "
              f"val scores include images trained on: {'; '.join(pairs[:MAX_SHARED_LISTED])}{more}",
              file=sys.stderr, flush=True)


def short_list(names, n=10):
    s = ", ".join(names[:n])
    return s + (f", ... ({len(names)} in all)" if len(names) > n else "")


# --------------------------------------------------------------------------- #
# COCO
# --------------------------------------------------------------------------- #
def is_num(x) -> bool:
    return isinstance(x, Real) and not isinstance(x, bool) and math.isfinite(x)


def is_int(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def load_json(path: Path):
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise DatasetError(f"{path}: cannot read: {e}") from None
    try:
        return json.loads(data)
    except json.JSONDecodeError as e:
        raise DatasetError(
            f"{path}: malformed JSON at line {e.lineno} column {e.colno}: {e.msg}"
        ) from None
    except UnicodeDecodeError as e:
        raise DatasetError(f"{path}: not UTF-8 text: {e}") from None


def index_images(img_dir: Path) -> dict:
    """stem -> [paths] for every image file under img_dir (recursively)."""
    index = {}
    for dirpath, _dirs, files in os.walk(img_dir):
        for fn in files:
            stem, ext = os.path.splitext(fn)
            if ext.lower() in IMAGE_EXTENSIONS:
                index.setdefault(stem, []).append(Path(dirpath) / fn)
    return index


def resolve_image(root: Path, split_dir: Path, file_name: str, index=None):
    """Locate an image named by a COCO record; None when it is not on disk.

    ``file_name`` may be a bare name (``000000000139.jpg``), carry a subfolder
    (``train2017/000000000139.jpg``, relative to the split folder or to the
    dataset root) or have a different extension than the file on disk.
    """
    for cand in (split_dir / file_name, root / file_name):
        if cand.is_file():
            return cand
    stem = os.path.splitext(os.path.basename(file_name))[0]
    if index is not None:
        hits = index.get(stem)
        if hits:
            return sorted(hits)[0]
        return None
    folders = [split_dir / os.path.dirname(file_name), split_dir]
    for folder in dict.fromkeys(folders):  # same folder, other extension
        for ext in IMAGE_EXTENSIONS:
            for e in (ext, ext.upper()):
                cand = folder / (stem + e)
                if cand.is_file():
                    return cand
    return None


def _verify_image(path: Path, mode: str, width, height):
    """Return None, or (kind, problem): kind "decode" (the file does not decode; may be
    skipped) or "size" (it decodes but disagrees with its record; always an error)."""
    from PIL import Image, ImageFile

    if ImageFile.LOAD_TRUNCATED_IMAGES:  # a global some libraries flip; we want strict decoding
        ImageFile.LOAD_TRUNCATED_IMAGES = False
    try:
        with Image.open(path) as im:
            size = im.size
            if mode == "header":
                im.verify()
            else:
                im.load()
    except Exception as e:  # PIL raises many types (OSError, SyntaxError, ValueError...)
        return "decode", f"unreadable image ({type(e).__name__}: {e})"
    if is_num(width) and is_num(height) and size != (int(width), int(height)):
        return "size", f"image is {size[0]}x{size[1]} but the record says {width}x{height}"
    return None


def _segmentation_problems(seg, iscrowd, img) -> list[str]:
    """What is wrong with one annotation's `segmentation`, as COCO defines it: polygons
    (flat [x1, y1, x2, y2, ...] lists of at least 3 points inside the image) for objects,
    RLE ({"size": [h, w], "counts": ...} of the image's size) for crowd regions."""
    if seg is None:
        return ["iscrowd 1 needs an RLE segmentation, got none"] if iscrowd == 1 else []
    W = img.get("width") if img is not None and is_num(img.get("width")) else None
    H = img.get("height") if img is not None and is_num(img.get("height")) else None
    if isinstance(seg, list):
        if iscrowd == 1:
            return ["iscrowd 1 needs an RLE segmentation ({\"size\": [h, w], \"counts\": ...}), "
                    "got polygons"]
        if not seg:
            return ["empty polygon segmentation list"]
        problems = []
        for j, poly in enumerate(seg):
            if not (isinstance(poly, list) and all(is_num(v) for v in poly)):
                problems.append(f"polygon {j} must be a list of numbers")
            elif len(poly) < 6 or len(poly) % 2:
                problems.append(f"polygon {j} has {len(poly)} coordinates; "
                                "needs an even count of at least 6 (3 points)")
            elif W is not None and H is not None:
                xs, ys = poly[0::2], poly[1::2]
                t = BBOX_TOLERANCE
                if min(xs) < -t or min(ys) < -t or max(xs) > W + t or max(ys) > H + t:
                    problems.append(
                        f"polygon {j} spans x {min(xs):g}..{max(xs):g}, y {min(ys):g}..{max(ys):g}: "
                        f"outside image id {img['id']} ({W}x{H})")
        return problems
    if not isinstance(seg, dict):
        return ["segmentation must be a polygon list or an RLE object"]
    size, counts = seg.get("size"), seg.get("counts")
    if not (isinstance(size, list) and len(size) == 2 and all(is_int(v) for v in size)):
        return [f"RLE segmentation needs size [h, w], got {size!r}"]
    if H is not None and W is not None and size != [H, W]:
        return [f"RLE size {size} does not match image id {img['id']} [{H}, {W}]"]
    if isinstance(counts, list):  # uncompressed: run lengths that tile the h x w image exactly
        if not all(is_int(c) and c >= 0 for c in counts):
            return ["RLE counts must be non-negative integers"]
        if sum(counts) != size[0] * size[1]:
            return [f"RLE counts cover {sum(counts)} pixels, the image has "
                    f"{size[0]} x {size[1]} = {size[0] * size[1]}"]
    elif not isinstance(counts, str):
        return ["RLE segmentation needs counts (string or list)"]
    return []


def check_split(root: Path, split: str, ann_path: Path, img_dir: Path, verify_images: str,
                 corrupt_images: str = "fail", doc=None):
    """Check one annotation file and its images; return (stats, category map, skipped, files).

    ``skipped`` lists the images that do not decode ({"id", "file", "error"}); it is
    empty unless ``corrupt_images`` is "skip" (with "fail" they are errors); ``files`` maps
    image id to its file. ``doc``: the
    file's parsed JSON when the caller has it already (a real keypoints file is large)."""
    doc = load_json(ann_path) if doc is None else doc
    if not isinstance(doc, dict):
        raise DatasetError(f"{ann_path}: top level must be a JSON object, got {type(doc).__name__}")
    missing = [k for k in ("images", "annotations", "categories") if not isinstance(doc.get(k), list)]
    if missing:
        raise DatasetError(f"{ann_path}: missing or non-list field(s): {', '.join(missing)}")

    errors = []

    # categories
    cats = {}
    for i, c in enumerate(doc["categories"]):
        if not isinstance(c, dict) or not is_int(c.get("id")):
            errors.append(f"categories[{i}]: needs an integer id")
            continue
        if c["id"] in cats:
            errors.append(f"category id {c['id']}: duplicate id")
        if not isinstance(c.get("name"), str):
            errors.append(f"category id {c['id']}: needs a string name")
        cats[c["id"]] = c.get("name")

    # images
    images = {}
    for i, im in enumerate(doc["images"]):
        if not isinstance(im, dict) or not is_int(im.get("id")):
            errors.append(f"images[{i}]: needs an integer id")
            continue
        iid = im["id"]
        if iid in images:
            errors.append(f"image id {iid}: duplicate id")
        bad = [k for k in ("width", "height") if not (is_num(im.get(k)) and im.get(k) > 0)]
        if bad:
            errors.append(f"image id {iid}: {' and '.join(bad)} must be positive numbers")
        if not isinstance(im.get("file_name"), str) or not im.get("file_name"):
            errors.append(f"image id {iid}: needs a file_name")
        images[iid] = im

    # annotations
    ann_ids = set()
    annotated = set()
    n_crowd = 0
    for i, a in enumerate(doc["annotations"]):
        if not isinstance(a, dict):
            errors.append(f"annotations[{i}]: not an object")
            continue
        aid = a.get("id")
        where = f"annotation id {aid}" if aid is not None else f"annotations[{i}]"
        if not is_int(aid):
            errors.append(f"{where}: needs an integer id")
        elif aid in ann_ids:
            errors.append(f"{where}: duplicate id")
        else:
            ann_ids.add(aid)
        img = images.get(a.get("image_id"))
        if img is None:
            errors.append(f"{where}: image_id {a.get('image_id')!r} is not in images")
        else:
            annotated.add(a["image_id"])
        if a.get("category_id") not in cats:
            errors.append(f"{where}: category_id {a.get('category_id')!r} is not in categories")
        iscrowd = a.get("iscrowd", 0)
        if iscrowd not in (0, 1):
            errors.append(f"{where}: iscrowd must be 0 or 1, got {iscrowd!r}")
        elif iscrowd == 1:
            n_crowd += 1
        if "area" in a and not (is_num(a["area"]) and a["area"] >= 0):
            errors.append(f"{where}: area must be a non-negative number, got {a['area']!r}")
        # bbox
        bbox = a.get("bbox")
        if not (isinstance(bbox, list) and len(bbox) == 4 and all(is_num(v) for v in bbox)):
            errors.append(f"{where}: bbox must be 4 numbers [x, y, w, h], got {bbox!r}")
        else:
            x, y, w, h = bbox
            if w < 0 or h < 0:
                errors.append(f"{where}: bbox {bbox} has negative width or height")
            elif img is not None and is_num(img.get("width")) and is_num(img.get("height")):
                W, H = img["width"], img["height"]
                t = BBOX_TOLERANCE
                if x < -t or y < -t or x + w > W + t or y + h > H + t:
                    errors.append(
                        f"{where}: bbox {bbox} lies outside image id {img['id']} ({W}x{H})"
                    )
        # segmentation
        errors.extend(f"{where}: {p}" for p in _segmentation_problems(a.get("segmentation"), iscrowd, img))
        if len(errors) > 5 * MAX_ERRORS_LISTED:
            break

    if errors:
        raise DatasetError(f"{ann_path}: " + join_problems(errors))

    # image files
    index = index_images(img_dir)
    file_errors = []
    skipped = []
    files = {}
    for iid, im in images.items():
        path = resolve_image(root, img_dir, im["file_name"], index)
        if path is None:
            file_errors.append(f"image id {iid}: file {im['file_name']!r} not found under {img_dir}")
            continue
        files[iid] = path
        if verify_images != "none":
            problem = _verify_image(path, verify_images, im.get("width"), im.get("height"))
            if problem and problem[0] == "decode" and corrupt_images == "skip":
                skipped.append({"id": iid, "file": str(path), "error": problem[1]})
                print(f"warning: skipping image id {iid} ({path}) of {ann_path.name}: {problem[1]}",
                      file=sys.stderr, flush=True)
            elif problem:
                file_errors.append(f"image id {iid} ({path}): {problem[1]}")
        if len(file_errors) > MAX_ERRORS_LISTED:
            break
    if file_errors:
        raise DatasetError(f"{ann_path}: " + join_problems(file_errors))
    if images and len(skipped) == len(images):
        raise DatasetError(
            f"{ann_path}: all {len(images)} images were skipped as undecodable "
            f"(first: image id {skipped[0]['id']} ({skipped[0]['file']}): {skipped[0]['error']})"
        )

    stats = {
        "images": len(images),
        "annotations": len(doc["annotations"]),
        "categories": len(cats),
        "crowd_annotations": n_crowd,
        "images_without_annotations": len(set(images) - annotated),
        "images_skipped": len(skipped),
        **instance_stats(doc["annotations"], images),
    }
    return stats, cats, skipped, files


def instance_stats(annotations, images) -> dict:
    """How dense and how large a checked split's objects are (non-crowd instances): per
    image, categories per image and COCO's size-class shares relative to image area."""
    per_image, sizes = {}, {name: 0 for name, _ in SIZE_CLASSES}
    for a in annotations:
        if a.get("iscrowd", 0):
            continue
        per_image.setdefault(a["image_id"], set()).add(a["category_id"])
        im = images[a["image_id"]]
        area = a.get("area")
        if area is None:  # (VOC-converted files give it; a file without one: the box's)
            area = a["bbox"][2] * a["bbox"][3]
        sizes[size_class(area, im["width"] * im["height"])] += 1
    n, objects = max(len(images), 1), sum(sizes.values())
    return {"instances_per_image": round(objects / n, 3),
            "categories_per_image": round(sum(len(c) for c in per_image.values()) / n, 3),
            "size_shares": {k: round(v / max(objects, 1), 4) for k, v in sizes.items()}}


def check_coco(root, verify_images: str = "header", corrupt_images: str = "fail") -> dict:
    """Check a COCO-2017 folder; return per-split stats.

    ``verify_images``: "header" opens every image with PIL and runs verify(),
    "full" decodes every image (catches truncated JPEGs), "none" only checks
    the files exist.

    ``corrupt_images``: "fail" raises DatasetError for an image that does not
    decode; "skip" prints a warning naming it and lists it in
    ``stats["skipped_images"][split]`` as {"id", "file", "error"} (counted in
    ``stats[split]["images_skipped"]``). Only decoding problems are skipped:
    annotation errors, missing files and size mismatches always raise.
    """
    if verify_images not in VERIFY_MODES:
        raise ValueError(f"verify_images must be one of {VERIFY_MODES}, got {verify_images!r}")
    if corrupt_images not in CORRUPT_MODES:
        raise ValueError(f"corrupt_images must be one of {CORRUPT_MODES}, got {corrupt_images!r}")
    if corrupt_images == "skip" and verify_images == "none":
        raise ValueError(
            "corrupt_images 'skip' (data.corrupt_images) needs the images opened to find the "
            "undecodable ones: set data.verify_images to full (or header), not none"
        )
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"COCO folder {root}: does not exist or is not a directory")
    need = []
    for split in COCO_SPLITS:
        need.append((f"annotations/instances_{split}2017.json", "file"))
    for split in COCO_SPLITS:
        need.append((f"{split}2017/", "dir"))
    missing = [
        rel for rel, kind in need
        if not ((root / rel).is_file() if kind == "file" else (root / rel).is_dir())
    ]
    if missing:
        raise DatasetError(f"COCO folder {root}: missing " + ", ".join(missing))

    stats = {"root": str(root), "verify_images": verify_images, "corrupt_images": corrupt_images}
    cat_maps = {}
    skipped = {}
    files = {}
    for split in COCO_SPLITS:
        ann = root / "annotations" / f"instances_{split}2017.json"
        stats[split], cat_maps[split], skipped[split], files[split] = check_split(
            root, split, ann, root / f"{split}2017", verify_images, corrupt_images
        )
    if cat_maps["train"] != cat_maps["val"]:
        raise DatasetError(
            f"COCO folder {root}: annotations/instances_train2017.json and "
            "annotations/instances_val2017.json have different categories"
        )
    stats["category_names"] = [cat_maps["train"][k] for k in sorted(cat_maps["train"])]
    stats["skipped_images"] = skipped
    shared = shared_files(files["train"], files["val"])
    stats["shared_images"] = [{"train_id": t, "train_file": str(files["train"][t]), "val_id": v,
                               "val_file": str(files["val"][v])} for t, v in shared]
    warn_shared(f"COCO folder {root}", [f"val image id {v} ({files['val'][v].name}) = train image id "
                                        f"{t} ({files['train'][t].name})" for t, v in shared])
    return stats
