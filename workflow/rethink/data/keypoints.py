"""Checks of COCO person-keypoints files (the keypoint task's annotations)."""
from __future__ import annotations

from pathlib import Path

from rethink.core.names import COCO_SPLITS, KEYPOINT_FILE
from rethink.data.layout import (
    BBOX_TOLERANCE,
    MAX_ERRORS_LISTED,
    DatasetError,
    check_split,
    is_int,
    is_num,
    join_problems,
    load_json,
)


# --------------------------------------------------------------------------- #
# COCO keypoints
# --------------------------------------------------------------------------- #
def check_keypoints(ann_dir, coco_root, num_keypoints: int, config_key: str = "keypoints.sigmas") -> dict:
    """Check ``person_keypoints_{train,val}2017.json`` in ``ann_dir`` (real COCO:
    ``<coco>/annotations``), whose images are under ``coco_root/{split}2017``; return stats.

    On top of the instance checks (images only checked to exist: the instances check
    opens them): every category names the same number K of unique keypoints and a skeleton
    of 1-based pairs; K equals ``num_keypoints`` (the length of the config's OKS sigmas,
    ``config_key``); every object has 3K keypoint values [x, y, v] with v in {0, 1, 2},
    labelled ones (v > 0) inside its image and ``num_keypoints`` their count; train and val
    name the same keypoints. Raises DatasetError naming the file and the record at fault.
    """
    ann_dir, coco_root = Path(ann_dir), Path(coco_root)
    if not ann_dir.is_dir():
        raise DatasetError(f"keypoints folder {ann_dir}: does not exist or is not a directory")
    files = {split: ann_dir / KEYPOINT_FILE.format(split=split) for split in COCO_SPLITS}
    missing = [p.name for p in files.values() if not p.is_file()]
    if missing:
        raise DatasetError(f"keypoints folder {ann_dir}: missing " + ", ".join(missing))
    stats = {"ann_dir": str(ann_dir), "keypoint_names": None, "skeleton": None}
    named = {}
    for split, path in files.items():
        doc = load_json(path)
        base, _cats, _, _ = check_split(coco_root, split, path, coco_root / f"{split}2017", "none",
                                      doc=doc)
        names, skeleton = _keypoint_categories(doc["categories"], path)
        if len(names) != num_keypoints:
            raise DatasetError(
                f"{config_key} has {num_keypoints} values but {path} names {len(names)} keypoints "
                f"per category ({', '.join(names)}): give one OKS sigma per keypoint")
        stats[split] = {"images": base["images"], "annotations": base["annotations"],
                        **_keypoint_annotations(doc, names, path)}
        named[split] = (names, skeleton)
    if named["train"] != named["val"]:
        (tn, ts), (vn, vs) = named["train"], named["val"]
        what = (f"keypoints ({', '.join(tn)}) vs ({', '.join(vn)})" if tn != vn
                else f"skeletons {ts} vs {vs}")
        raise DatasetError(f"keypoints folder {ann_dir}: {files['train'].name} and "
                           f"{files['val'].name} name different {what}")
    stats["keypoint_names"], stats["skeleton"] = named["train"]
    return stats


def _keypoint_categories(categories, path):
    """The (names, skeleton) every category shares; DatasetError listing what is wrong."""
    errors, per_cat = [], {}
    for c in categories:  # check_split made sure each is a dict with an integer id
        where = f"category id {c['id']}"
        names, skeleton = c.get("keypoints"), c.get("skeleton")
        if not (isinstance(names, list) and names and all(isinstance(n, str) for n in names)):
            errors.append(f"{where}: keypoints must be a non-empty list of names, got {names!r}")
            continue
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            errors.append(f"{where}: keypoint names repeat: {', '.join(dup)}")
        if not isinstance(skeleton, list):
            errors.append(f"{where}: needs a skeleton (a list of [i, j] pairs of 1-based "
                          f"keypoint indices), got {skeleton!r}")
            continue
        for pair in skeleton:
            if not (isinstance(pair, list) and len(pair) == 2 and all(is_int(i) for i in pair)):
                errors.append(f"{where}: skeleton entry {pair!r} is not a pair [i, j] of integers")
                continue
            for i in pair:
                if not 1 <= i <= len(names):
                    errors.append(f"{where}: skeleton {pair} names keypoint {i}, the category has "
                                  f"{len(names)} (1-based: 1..{len(names)})")
        per_cat[c["id"]] = (names, skeleton)
    if not errors and not per_cat:
        errors.append("no categories, so no keypoint names")
    counts = {cid: len(n) for cid, (n, _) in per_cat.items()}
    if not errors and len(set(counts.values())) > 1:
        errors.append("categories name different numbers of keypoints: "
                      + ", ".join(f"id {cid} has {k}" for cid, k in counts.items()))
    if errors:
        raise DatasetError(f"{path}: " + join_problems(errors))
    return per_cat[min(per_cat)]


def _keypoint_annotations(doc, names, path) -> dict:
    """Check every annotation's keypoints against the K = len(names) of its categories."""
    K = len(names)
    images = {im["id"]: im for im in doc["images"]}
    errors = []
    n_with = n_labelled = n_visible = 0
    for a in doc["annotations"]:  # check_split made sure of ids, image ids and iscrowd
        where = f"annotation id {a['id']}"
        kp = a.get("keypoints")
        if kp is None:
            if a.get("iscrowd", 0) != 1:
                errors.append(f"{where}: needs keypoints (3 x {K} = {3 * K} numbers [x1, y1, v1, ...])")
            continue
        if not isinstance(kp, list) or len(kp) != 3 * K:
            got = f"{len(kp)} values" if isinstance(kp, list) else repr(kp)
            errors.append(f"{where}: keypoints has {got}, needs 3 x {K} = {3 * K} "
                          f"([x, y, v] for each of {', '.join(names)})")
            continue
        if not all(is_num(v) for v in kp):
            errors.append(f"{where}: keypoints must all be numbers")
            continue
        img = images[a["image_id"]]
        W, H, t = img["width"], img["height"], BBOX_TOLERANCE
        labelled = 0
        for j in range(K):
            x, y, v = kp[3 * j: 3 * j + 3]
            what = f"keypoint {j + 1} ({names[j]})"
            if v not in (0, 1, 2):
                errors.append(f"{where}: {what} has visibility {v:g}, must be 0 (not labelled), "
                              "1 (labelled, hidden) or 2 (visible)")
                continue
            if v == 0:
                continue
            labelled += 1
            n_visible += v == 2
            if x < -t or y < -t or x > W + t or y > H + t:
                errors.append(f"{where}: {what} at ({x:g}, {y:g}) lies outside image id "
                              f"{img['id']} ({W}x{H})")
        nk = a.get("num_keypoints")
        if nk is not None and nk != labelled:
            errors.append(f"{where}: num_keypoints is {nk!r} but {labelled} keypoints are labelled (v > 0)")
        n_with += labelled > 0
        n_labelled += labelled
        if len(errors) > 5 * MAX_ERRORS_LISTED:
            break
    if errors:
        raise DatasetError(f"{path}: " + join_problems(errors))
    return {"annotations_with_keypoints": n_with, "keypoints_labelled": n_labelled,
            "keypoints_visible": n_visible}
