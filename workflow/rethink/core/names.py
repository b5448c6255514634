"""Names the stages agree on: where a COCO-layout split keeps its files, COCO's size
classes, and which images the layout check skipped (torch-free; the Snakefile imports it)."""
from __future__ import annotations

import json
from pathlib import Path

KEYPOINT_FILE = "person_keypoints_{split}2017.json"  # COCO 2017's name; synth and the rules use it
COCO_SPLITS = ("train", "val")
SPLITS = {"train": ("instances_train2017.json", "train2017"),  # annotation file, image folder
          "val": ("instances_val2017.json", "val2017")}
# COCO's object size classes (pycocotools: area < 32^2, < 96^2 px) relative to COCO train2017's
# mean image area (577.7 x 484.1 px): a world of any image size is compared with COCO's shares
# (41% small, 34% medium, 24% large) as its detector sees it, resized to a fixed side
COCO_MEAN_IMAGE_AREA = 577.7 * 484.1
SIZE_CLASSES = (("small", 32 ** 2 / COCO_MEAN_IMAGE_AREA), ("medium", 96 ** 2 / COCO_MEAN_IMAGE_AREA),
                ("large", float("inf")))


def split_paths(coco_root: str | Path, split: str, ann_file: str | Path | None = None) -> tuple[Path, Path]:
    """The split's annotation file (or `ann_file`, e.g. a less-data subset) and image folder."""
    ann_name, img_dir = SPLITS[split]
    return Path(ann_file or Path(coco_root) / "annotations" / ann_name), Path(coco_root) / img_dir


def size_class(area: float, image_area: float) -> str:
    """COCO's size class (SIZE_CLASSES) of an instance of `area` in an image of `image_area`."""
    return next(name for name, bound in SIZE_CLASSES if area < bound * image_area)


def skipped_image_ids(stats_path: str | Path | None, split: str) -> set[int]:
    """Ids of the `split` images the layout check skipped as undecodable.

    Reads the layout check's stats JSON (the CLI's ``{"coco": {...}}`` file or
    ``check_coco``'s own dict): ``skipped_images[split]`` is a list of
    ``{"id", "file", "error"}``. An absent key (or ``stats_path`` None) means none.
    """
    if split not in ("train", "val"):
        raise ValueError(f"split must be train or val, got {split!r}")
    if stats_path is None:
        return set()
    try:
        doc = json.loads(Path(stats_path).read_text())
    except (OSError, ValueError) as e:
        raise RuntimeError(f"cannot read the layout stats {stats_path}: {e}") from e
    if isinstance(doc, dict) and isinstance(doc.get("coco"), dict):
        doc = doc["coco"]
    skipped = doc.get("skipped_images") if isinstance(doc, dict) else None
    entries = (skipped or {}).get(split) or []
    return {int(e["id"]) for e in entries}
