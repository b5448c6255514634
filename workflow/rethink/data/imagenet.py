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
