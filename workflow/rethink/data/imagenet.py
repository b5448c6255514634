"""ImageNet val as it ships: class folders (val/<wnid>/*.JPEG), or one flat folder of
ILSVRC2012_val_NNNNNNNN.JPEG files labelled by either

- the devkit: ILSVRC2012_validation_ground_truth.txt (one ILSVRC2012_ID per image, in file
  order) with its data/meta.mat, which maps those ids to WNIDs (not in sorted-WNID order), or
- Kaggle's LOC_val_solution.csv (ImageId, PredictionString starting with the WNID),

looked for in the ImageNet root and in its ILSVRC2012_devkit_t12/data/.
"""
from __future__ import annotations

import csv
from pathlib import Path

from PIL import Image

from rethink.data.layout import DatasetError, is_image, join_problems, shared_files, short_list, warn_shared

GROUND_TRUTH = "ILSVRC2012_validation_ground_truth.txt"
META = "meta.mat"
LOC_SOLUTION = "LOC_val_solution.csv"
DEVKIT_DATA = Path("ILSVRC2012_devkit_t12") / "data"
EXPECTED = (f"{LOC_SOLUTION}, or {GROUND_TRUTH} with {META} (in the root or in {DEVKIT_DATA}/)")


class LabelError(ValueError):
    pass


def is_flat(val_dir: Path) -> bool:
    """A val folder with images and no class folders."""
    entries = [p for p in val_dir.iterdir() if not p.name.startswith(".")]
    return not any(p.is_dir() for p in entries) and any(p.is_file() for p in entries)


def _devkit_wnids(meta: Path) -> dict[int, str]:
    from scipy.io import loadmat
    try:
        synsets = loadmat(str(meta), squeeze_me=True)["synsets"]
        return {int(s["ILSVRC2012_ID"]): str(s["WNID"]) for s in synsets}
    except Exception as e:  # loadmat fails in many ways on a file that is not the devkit's
        raise LabelError(f"{meta}: not the devkit's meta.mat (a 'synsets' struct with "
                         f"ILSVRC2012_ID and WNID): {e}") from e


def flat_labels(root: str | Path) -> tuple[dict[str, str], Path]:
    """{image file stem: WNID} of a flat val folder, and the file the labels came from."""
    root = Path(root)
    for folder in (root, root / DEVKIT_DATA):
        loc = folder / LOC_SOLUTION
        if loc.is_file():
            with loc.open(newline="") as f:
                rows = list(csv.DictReader(f))
            if not rows or not {"ImageId", "PredictionString"} <= set(rows[0]):
                raise LabelError(f"{loc}: needs the columns ImageId and PredictionString")
            return {r["ImageId"]: r["PredictionString"].split()[0] for r in rows}, loc
        gt = folder / GROUND_TRUTH
        if gt.is_file():
            meta = folder / META
            if not meta.is_file():
                raise LabelError(f"{gt} needs the devkit's {META} beside it (ILSVRC2012_ID -> WNID)")
            wnid = _devkit_wnids(meta)
            ids = [int(line) for line in gt.read_text().split()]
            unknown = sorted({i for i in ids if i not in wnid})
            if unknown:
                raise LabelError(f"{gt}: ILSVRC2012_IDs not in {meta}: {unknown[:5]}")
            return {f"ILSVRC2012_val_{n:08d}": wnid[i] for n, i in enumerate(ids, start=1)}, gt
    raise LabelError(f"{root}/val/ is a flat folder of images but no labels were found: expected {EXPECTED}")


class FlatVal:
    """(image, class index) of a flat val folder, with the train split's class indices (a
    map-style dataset for torch's DataLoader; no torch import, so the layout check stays light)."""

    def __init__(self, root, class_to_idx: dict, transform=None):
        labels, self.source = flat_labels(root)
        files = sorted(p for p in (Path(root) / "val").iterdir() if p.is_file())
        self.samples = [(p, class_to_idx[labels[p.stem]]) for p in files if labels.get(p.stem) in class_to_idx]
        self.transform = transform

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, i):
        path, label = self.samples[i]
        with Image.open(path) as im:
            image = im.convert("RGB")
        return (self.transform(image) if self.transform else image), label


def val_dataset(root, class_to_idx: dict, transform=None):
    """ImageNet val in whichever layout it ships, labelled with the train split's indices."""
    from torchvision import datasets
    if is_flat(Path(root) / "val"):
        return FlatVal(root, class_to_idx, transform)
    val = datasets.ImageFolder(f"{root}/val", transform)
    if val.class_to_idx != class_to_idx:
        raise SystemExit(f"{root}: train/ and val/ have different class folders")
    return val


# --------------------------------------------------------------------------- #
# the layout check of an ImageNet folder
# --------------------------------------------------------------------------- #
EXPECTED_LAYOUT = ("  train/<class>/*.JPEG\n  val/<class>/*.JPEG   (the same class folders as train/)\n"
                "  or val/*.JPEG with " + EXPECTED)


def check_imagenet(root) -> dict:
    """Check ``root/{train,val}/<class>/<images>``; return image counts.

    Raises DatasetError listing every problem found (missing splits, splits
    without class folders, empty class folders, class sets that differ).
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"ImageNet folder {root}: does not exist or is not a directory")
    problems = []
    classes = {}
    files = {}  # split -> image files, for the shared-image check
    val_labels = None  # class folders
    for split in ("train", "val"):
        d = root / split
        if not d.is_dir():
            problems.append(f"missing {split}/")
            continue
        if split == "val" and is_flat(d):  # ImageNet as it ships: labels in a file
            try:
                labels, source = flat_labels(root)
            except LabelError as e:
                problems.append(str(e).removeprefix(f"{root}/"))
                continue
            images = [p for p in d.iterdir() if is_image(p)]
            files[split] = images
            unlabelled = [p.name for p in images if p.stem not in labels]
            if unlabelled:
                problems.append(f"val/ images without a label in {source.name}: {short_list(sorted(unlabelled))}")
            counts = {}
            for p in images:
                if p.stem in labels:
                    counts[labels[p.stem]] = counts.get(labels[p.stem], 0) + 1
            classes[split], val_labels = counts, str(source)
            continue
        subdirs = sorted(p for p in d.iterdir() if p.is_dir() and not p.name.startswith("."))
        if not subdirs:
            problems.append(f"{split}/ has no class folders")
            continue
        counts = {}
        files[split] = []
        for sd in subdirs:
            found = [p for p in sd.iterdir() if is_image(p)]
            files[split] += found
            n = len(found)
            if n == 0:
                problems.append(f"{split}/{sd.name}/ has no image files")
            counts[sd.name] = n
        classes[split] = counts
    if "train" in classes and "val" in classes:
        only_train = sorted(set(classes["train"]) - set(classes["val"]))
        only_val = sorted(set(classes["val"]) - set(classes["train"]))
        if only_train:
            problems.append(f"class folders in train/ but not in val/: {short_list(only_train)}")
        if only_val:
            problems.append(f"class folders in val/ but not in train/: {short_list(only_val)}")
    if problems:
        raise DatasetError(f"ImageNet folder {root}: " + join_problems(problems))
    stats = {"root": str(root), "classes": len(classes["train"]), "wnids": sorted(classes["train"]),
             "val_labels": val_labels or "class folders"}
    names = _read_class_names(root / "classes.txt")
    if names is not None:
        stats["class_names"] = [names.get(w, w) for w in stats["wnids"]]
    for split, counts in classes.items():
        v = list(counts.values())
        stats[split] = {
            "images": sum(v),
            "min_per_class": min(v),
            "max_per_class": max(v),
        }
    shared = shared_files({str(p.relative_to(root)): p for p in files["train"]},
                          {str(p.relative_to(root)): p for p in files["val"]})
    stats["shared_images"] = [{"train": a, "val": b} for a, b in shared]
    warn_shared(f"ImageNet folder {root}", [f"{b} = {a}" for a, b in shared])
    return stats


def _read_class_names(path: Path):
    """Optional ``wnid<TAB>name`` file (classes.txt / LOC_synset_mapping style)."""
    if not path.is_file():
        return None
    out = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line:
            continue
        parts = line.split("\t", 1) if "\t" in line else line.split(None, 1)
        out[parts[0]] = parts[1].strip() if len(parts) > 1 else parts[0]
    return out
