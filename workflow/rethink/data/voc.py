"""PASCAL VOC on disk -> one COCO-format detection file, checked as it is read.

``read_voc(devkit, ["VOC2007/trainval", "VOC2012/train"])`` reads every image the
``<devkit>/<year>/ImageSets/Main/<set>.txt`` lists: its ``Annotations/<name>.xml`` and
``JPEGImages/<name>.jpg``. Boxes follow Detectron's conversion of VOC's 1-based inclusive
pixel indices: ``x = xmin - 1, w = xmax - xmin + 1`` (and so for y). Image ids are the
names' digits (``2008_000008`` -> 2008000008), VOC2007's six-digit names prefixed by the
year (``000005`` -> 2007000005). Any problem raises VocError naming the file (and object).

CLI::

    python -m rethink.data.voc --devkit DIR --train SET [SET ...] --val SET [SET ...] \
        [--classes NAME ...] [--verify-images none|header|full] --out-dir DIR --report FILE

writes ``instances_train.json``, ``instances_val.json`` and then the report (its presence
means both are complete); on an error it prints it and exits 2, writing nothing.
"""
from __future__ import annotations

import argparse
import math
import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from rethink.core.atomic import write_json

VOC_CLASSES = (
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa",
    "train", "tvmonitor",
)
VERIFY_MODES = ("none", "header", "full")
BOX_TAGS = ("xmin", "ymin", "xmax", "ymax")
_YEAR_NAME = re.compile(r"(\d{4})_(\d{1,6})")  # VOC2008+ names: 2008_000008
_FOLDER_YEAR = re.compile(r"(\d{4})")  # the year in a folder name: VOC2007


class VocError(ValueError):
    """A VOC devkit that cannot be converted; the message names the file at fault."""


# --------------------------------------------------------------------------- reading
def read_voc(devkit, sets, classes=VOC_CLASSES, verify_images: str = "header") -> dict:
    """The images and objects of the image `sets` ("VOC2007/trainval", ...) of `devkit`
    as a COCO detection dict (images, annotations, categories; category ids 1..K in the
    order of `classes`)."""
    devkit = Path(devkit)
    classes = _check_classes(classes)
    if verify_images not in VERIFY_MODES:
        raise VocError(f"verify_images must be one of {', '.join(VERIFY_MODES)}, got {verify_images!r}")
    if not devkit.is_dir():
        raise VocError(f"{devkit}: VOC devkit folder not found")
    if not sets:
        raise VocError(f"{devkit}: no image sets given (e.g. VOC2007/trainval)")
    category_ids = {name: k + 1 for k, name in enumerate(classes)}
    images, annotations = [], []
    set_of = {}  # (year folder, image name) -> the set that listed it
    xml_of_id = {}  # image id -> its annotation file, to report a clash
    for spec in sets:
        year, list_file = _image_set_file(devkit, spec)
        for name in _read_image_list(list_file):
            if (year, name) in set_of:
                where = (f"twice in {list_file}" if set_of[year, name] == spec
                         else f"in both {set_of[year, name]} and {spec}")
                raise VocError(f"image {year}/{name} is listed {where}")
            set_of[year, name] = spec
            xml_path = devkit / year / "Annotations" / f"{name}.xml"
            image_id = voc_image_id(year, name, list_file)
            if image_id in xml_of_id:
                raise VocError(f"{xml_of_id[image_id]} and {xml_path} map to the same image id "
                               f"{image_id}")
            xml_of_id[image_id] = xml_path
            width, height, objects = _read_annotation(xml_path, category_ids, classes)
            jpeg = devkit / year / "JPEGImages" / f"{name}.jpg"
            _check_image(jpeg, xml_path, width, height, verify_images, list_file)
            images.append({"id": image_id, "file_name": f"{year}/JPEGImages/{name}.jpg",
                           "width": width, "height": height, "voc_set": spec, "voc_name": name})
            for obj in objects:
                annotations.append({"id": len(annotations) + 1, "image_id": image_id, **obj})
    categories = [{"id": k + 1, "name": name, "supercategory": "voc"} for k, name in enumerate(classes)]
    return {"images": images, "annotations": annotations, "categories": categories}


def _check_classes(classes) -> list[str]:
    classes = [str(c) for c in classes]
    if not classes:
        raise VocError("the class list is empty")
    repeated = sorted({c for c in classes if classes.count(c) > 1})
    if repeated:
        raise VocError(f"the class list names {', '.join(repeated)} more than once")
    return classes


def _image_set_file(devkit: Path, spec: str):
    """The year folder and ImageSets/Main file of a set named like "VOC2007/trainval"."""
    parts = str(spec).split("/")
    if len(parts) != 2 or not all(parts):
        raise VocError(f"image set {spec!r}: expected YEAR_FOLDER/SET, e.g. VOC2007/trainval")
    year, set_name = parts
    if not (devkit / year).is_dir():
        raise VocError(f"{devkit / year}: year folder of image set {spec} not found")
    list_file = devkit / year / "ImageSets" / "Main" / f"{set_name}.txt"
    if not list_file.is_file():
        raise VocError(f"{list_file}: image set file of {spec} not found")
    return year, list_file


def _read_image_list(list_file: Path) -> list[str]:
    names = []
    for line_no, line in enumerate(list_file.read_text().splitlines(), 1):
        fields = line.split()
        if not fields:
            continue  # blank lines
        if len(fields) != 1:  # per-class lists ("000005 -1") are not image sets
            raise VocError(f"{list_file}: line {line_no}: expected one image name, got {line.strip()!r}")
        names.append(fields[0])
    return names


def voc_image_id(year: str, name: str, where="") -> int:
    """A deterministic numeric image id: 2008_000008 -> 2008000008; a digits-only name
    of at most 6 digits gets its folder's year in front (VOC2007's 000005 -> 2007000005);
    longer digit names (or folders without a year) are their own number."""
    m = _YEAR_NAME.fullmatch(name)
    if m:
        return int(m.group(1)) * 1_000_000 + int(m.group(2))
    if name.isdigit() and name.isascii():
        folder_year = _FOLDER_YEAR.search(year)
        if folder_year and len(name) <= 6:
            return int(folder_year.group(1)) * 1_000_000 + int(name)
        return int(name)
    raise VocError(f"{where or year}: image name {name!r}: VOC names are digits (000005) or "
                   "YYYY_NNNNNN (2008_000008), from which the numeric image id is made")


def _read_annotation(xml_path: Path, category_ids: dict, classes: list[str]):
    """(width, height, COCO annotations without ids) of one annotation file."""
    if not xml_path.is_file():
        raise VocError(f"{xml_path}: annotation file not found (the image is listed in ImageSets)")
    try:
        root = ET.parse(xml_path).getroot()
    except ET.ParseError as e:
        raise VocError(f"{xml_path}: XML does not parse: {e}") from None
    if root.tag != "annotation":
        raise VocError(f"{xml_path}: root element is <{root.tag}>, expected <annotation>")
    size = root.find("size")
    if size is None:
        raise VocError(f"{xml_path}: no <size> element")
    width, height = (_size_field(size, tag, xml_path) for tag in ("width", "height"))
    objects = []
    # direct children only: a person's <part> elements (head, hand, foot) have boxes of their own
    for index, obj in enumerate(root.findall("object"), 1):
        objects.append(_read_object(obj, index, xml_path, width, height, category_ids, classes))
    return width, height, objects


def _size_field(size, tag, xml_path) -> int:
    text = size.findtext(tag)
    if text is None or not text.strip():
        raise VocError(f"{xml_path}: <size> has no <{tag}>")
    value = _number(text)
    if value is None or not value.is_integer() or value <= 0:
        raise VocError(f"{xml_path}: <size><{tag}> must be a positive integer, got {text.strip()!r}")
    return int(value)


def _read_object(obj, index, xml_path, width, height, category_ids, classes) -> dict:
    name = (obj.findtext("name") or "").strip()
    what = f"{xml_path}: object {index} ({name or 'no name'})"
    if not name:
        raise VocError(f"{what}: no <name>")
    if name not in category_ids:
        raise VocError(f"{what}: class {name!r} is not in the class list ({_abbrev(classes)})")
    box = obj.find("bndbox")
    if box is None:
        raise VocError(f"{what}: no <bndbox>")
    coords = []
    for tag in BOX_TAGS:
        text = box.findtext(tag)
        if text is None or not text.strip():
            raise VocError(f"{what}: <bndbox> has no <{tag}>")
        value = _number(text)
        if value is None:
            raise VocError(f"{what}: <{tag}> is not a number: {text.strip()!r}")
        coords.append(value)
    xmin, ymin, xmax, ymax = coords
    if xmin > xmax or ymin > ymax:
        bad = f"xmin {xmin:g} > xmax {xmax:g}" if xmin > xmax else f"ymin {ymin:g} > ymax {ymax:g}"
        raise VocError(f"{what}: empty box: {bad}")
    outside = [f"{t} {v:g} {rule}" for t, v, rule, bad in (
        ("xmin", xmin, "< 1", xmin < 1), ("ymin", ymin, "< 1", ymin < 1),
        ("xmax", xmax, f"> width {width}", xmax > width),
        ("ymax", ymax, f"> height {height}", ymax > height)) if bad]
    if outside:
        raise VocError(f"{what}: box outside the {width}x{height} image (1-based pixels): "
                       + ", ".join(outside))
    # VOC's xmin..xmax are inclusive 1-based pixel indices; COCO's boxes are 0-based extents
    w, h = xmax - xmin + 1, ymax - ymin + 1
    return {"category_id": category_ids[name], "bbox": [xmin - 1, ymin - 1, w, h], "area": w * h,
            "iscrowd": 0, "difficult": _flag(obj, "difficult", what),
            "truncated": _flag(obj, "truncated", what)}


def _flag(obj, tag, what) -> int:
    text = obj.findtext(tag)
    if text is None or not text.strip():
        return 0  # VOC leaves the flag out in some files: not set
    value = _number(text)
    if value not in (0, 1):
        raise VocError(f"{what}: <{tag}> must be 0 or 1, got {text.strip()!r}")
    return int(value)


def _number(text) -> float | None:
    """A finite number written as text ("273", "273.0"), else None."""
    try:
        value = float(text.strip())
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _abbrev(names, n=6) -> str:
    shown = ", ".join(names[:n])
    return shown if len(names) <= n else f"{shown}, ... ({len(names)} in all)"


def _check_image(jpeg, xml_path, width, height, mode, list_file) -> None:
    if not jpeg.is_file():
        raise VocError(f"{jpeg}: image not found (listed in {list_file})")
    if mode == "none":
        return
    try:
        with Image.open(jpeg) as im:  # reads the header only
            size = im.size
            if mode == "full":
                im.load()
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as e:
        raise VocError(f"{jpeg}: image cannot be read: {e}") from None
    if size != (width, height):
        raise VocError(f"{jpeg}: image is {size[0]}x{size[1]} but {xml_path} says "
                       f"{width}x{height}")


# --------------------------------------------------------------------------- writing
def write_coco(doc: dict, path) -> None:
    """Write a COCO dict as JSON, atomically (a reader never sees half a file)."""
    write_json(path, doc)


def stats(doc: dict) -> dict:
    """Counts of a converted set, for the report (per-image means over all its images)."""
    names = {c["id"]: c["name"] for c in doc["categories"]}
    per_category = {name: 0 for name in names.values()}
    categories_of = {im["id"]: set() for im in doc["images"]}
    for a in doc["annotations"]:
        per_category[names[a["category_id"]]] += 1
        categories_of[a["image_id"]].add(a["category_id"])
    n_images = max(len(doc["images"]), 1)
    sets = {}
    for im in doc["images"]:
        sets[im.get("voc_set")] = sets.get(im.get("voc_set"), 0) + 1
    return {
        "images": len(doc["images"]),
        "annotations": len(doc["annotations"]),
        "difficult": sum(a.get("difficult", 0) for a in doc["annotations"]),
        "instances_per_image": round(len(doc["annotations"]) / n_images, 3),
        "categories_per_image": round(sum(map(len, categories_of.values())) / n_images, 3),
        "images_per_set": sets,
        "annotations_per_category": per_category,
    }


# --------------------------------------------------------------------------- CLI
def convert(devkit, train_sets, val_sets, out_dir, report, classes=VOC_CLASSES,
            verify_images="header") -> dict:
    """Read and check both splits, then write the two COCO files and (last) the report."""
    train = read_voc(devkit, train_sets, classes, verify_images)
    val = read_voc(devkit, val_sets, classes, verify_images)
    val_files = {im["file_name"]: im["voc_set"] for im in val["images"]}
    for im in train["images"]:
        if im["file_name"] in val_files:  # leakage: scored on an image it trained on
            raise VocError(f"{Path(devkit) / im['file_name']} is in both train ({im['voc_set']}) "
                           f"and val ({val_files[im['file_name']]})")
    out_dir, report = Path(out_dir), Path(report)
    report.unlink(missing_ok=True)  # an old report must not vouch for half-replaced files
    write_coco(train, out_dir / "instances_train.json")
    write_coco(val, out_dir / "instances_val.json")
    result = {"devkit": str(devkit), "train": stats(train), "val": stats(val),
              "classes": list(_check_classes(classes))}
    write_json(report, result)
    return result


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m rethink.data.voc",
                                 description="Convert PASCAL VOC image sets to COCO-format detection files.")
    ap.add_argument("--devkit", required=True, help="the VOCdevkit folder (holding VOC2007, VOC2012)")
    ap.add_argument("--train", nargs="+", required=True, metavar="SET",
                    help="training image sets, e.g. VOC2007/trainval VOC2012/train")
    ap.add_argument("--val", nargs="+", required=True, metavar="SET", help="validation image sets")
    ap.add_argument("--classes", nargs="+", metavar="NAME", default=list(VOC_CLASSES),
                    help="class names in category-id order (default: the 20 VOC classes)")
    ap.add_argument("--verify-images", choices=VERIFY_MODES, default="header")
    ap.add_argument("--out-dir", required=True, help="folder for instances_{train,val}.json")
    ap.add_argument("--report", required=True, help="report JSON, written last")
    args = ap.parse_args(argv)
    try:
        r = convert(args.devkit, args.train, args.val, args.out_dir, args.report, args.classes,
                    args.verify_images)
    except VocError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    t, v = r["train"], r["val"]
    print(f"[voc] train {t['images']} images / {t['annotations']} objects ({t['difficult']} difficult), "
          f"val {v['images']} / {v['annotations']} ({v['difficult']} difficult), "
          f"{len(r['classes'])} classes -> {args.out_dir}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
