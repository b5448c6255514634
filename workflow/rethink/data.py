"""COCO-format detection data for training and evaluation, with randomness keyed by
(seed, iteration) so that a resumed or forked run sees exactly the batches and flips an
uninterrupted run would.
"""
from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from torchvision import tv_tensors
from torchvision.transforms import v2

from .layout import index_images, resolve_image, skipped_image_ids  # noqa: F401 (re-exported)

SPLITS = {"train": ("instances_train2017.json", "train2017"),
          "val": ("instances_val2017.json", "val2017")}


def load_coco(coco_root: str | Path, split: str, ann_file: str | Path | None = None) -> tuple[COCO, Path]:
    """The split's annotations (or `ann_file`, e.g. a less-data subset) and image folder."""
    ann_name, img_dir = SPLITS[split]
    ann_file = ann_file or Path(coco_root) / "annotations" / ann_name
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints timing chatter
        coco = COCO(str(ann_file))
    return coco, Path(coco_root) / img_dir


def mix_seed(*parts: int) -> int:
    """A 63-bit seed from integers, stable across processes and Python versions."""
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(2, np.uint64)[0] >> 1)


def keypoint_flip_index(names) -> list[int]:
    """Where each keypoint goes under a horizontal flip: a "left..." one becomes its
    "right..." twin and back (COCO's left_eye/right_eye; the synthetic world's left/right
    extreme points); the others stay."""
    names = list(names)
    swap = {"left": "right", "right": "left"}
    out = []
    for name in names:
        twin = next((name.replace(a, b, 1) for a, b in swap.items() if a in name), name)
        out.append(names.index(twin) if twin in names else names.index(name))
    return out


class FlipWithKeypoints(v2.RandomHorizontalFlip):
    """RandomHorizontalFlip (the same random draw) that also flips the target's keypoints
    (N x K x 3, x y v) as boxes flip, x -> width - x, and swaps left and right ones."""

    def __init__(self, p: float, flip_index: list[int]):
        super().__init__(p)
        self.flip_index = list(flip_index)

    def forward(self, *inputs):
        self._flipped = False
        img, target = super().forward(*inputs)
        if self._flipped and "keypoints" in target:
            kp = target["keypoints"][:, self.flip_index].clone()
            kp[..., 0] = torch.where(kp[..., 2] > 0, img.shape[-1] - kp[..., 0], kp[..., 0])
            target = {**target, "keypoints": kp}
        return img, target

    def transform(self, inpt, params):
        self._flipped = True
        return super().transform(inpt, params)


def train_transforms(flip_prob: float, flip_index: list[int] | None = None) -> v2.Compose:
    """Flips (keypoints too, given their flip_index) and float conversion."""
    flip = v2.RandomHorizontalFlip(flip_prob) if flip_index is None else FlipWithKeypoints(flip_prob, flip_index)
    return v2.Compose([flip, v2.ToDtype(torch.float32, scale=True)])


def eval_transforms() -> v2.Compose:
    return v2.Compose([v2.ToDtype(torch.float32, scale=True)])


class CocoInstances(torch.utils.data.Dataset):
    """Images and Mask R-CNN targets (XYXY boxes, labels 1..K, binary masks).

    Crowd annotations are left out of training targets (as in Detectron); evaluation
    handles them through pycocotools. Items are fetched as (index, aug_seed): the seed
    drives the transforms, so augmentation depends on the iteration, not on the worker.
    Images whose ids are in `skip_ids` (see `skipped_image_ids`) are left out. A
    record's file_name may carry a subfolder or name another extension than the file
    on disk (found as the layout check finds it, `rethink.layout.resolve_image`).
    With `keypoints` (a person_keypoints file) targets also hold `keypoints` (N x K x 3:
    x, y, visibility), and `keypoint_names` lists the K names of its categories. Without
    `masks` (a box-only model) targets hold no masks, and need no segmentation. Objects
    flagged `difficult` (VOC's, rethink.voc) are left out of the targets as crowd regions are
    (py-faster-rcnn's and Detectron's VOC training does so; VOC's evaluation ignores them).
    """

    def __init__(self, coco_root: str | Path, split: str, transforms=None,
                 image_ids: list[int] | None = None, skip_ids=(), ann_file=None, keypoints=False,
                 masks=True):
        self.coco, self.img_dir = load_coco(coco_root, split, ann_file)
        self.root = Path(coco_root)
        ids = sorted(self.coco.getImgIds()) if image_ids is None else list(image_ids)
        skip = {int(i) for i in skip_ids}
        self.ids = [i for i in ids if i not in skip]
        self.skipped = len(ids) - len(self.ids)
        self._index = None  # stem -> paths under img_dir, built on the first odd file_name
        self.cat_ids = sorted(self.coco.getCatIds())
        self.label_of = {c: i + 1 for i, c in enumerate(self.cat_ids)}
        self.transforms = transforms
        self.masks = masks
        self.keypoint_names = None
        if keypoints:
            names = {tuple(c.get("keypoints") or ()) for c in self.coco.loadCats(self.cat_ids)}
            if len(names) != 1 or not next(iter(names)):
                raise ValueError(f"{ann_file}: every category needs the same non-empty `keypoints` list")
            self.keypoint_names = list(names.pop())

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def num_classes(self) -> int:
        return len(self.cat_ids)

    def load_image(self, image_id: int) -> torch.Tensor:
        path = self.image_path(image_id)
        try:
            with Image.open(path) as im:
                im = im.convert("RGB")  # grayscale and CMYK JPEGs exist in real COCO
        except (OSError, SyntaxError) as e:
            raise RuntimeError(f"cannot read image {path} (image id {image_id}): {e}") from e
        return tv_tensors.Image(torch.from_numpy(np.asarray(im).copy()).permute(2, 0, 1))

    def image_path(self, image_id: int) -> Path:
        name = self.coco.imgs[image_id]["file_name"]
        path = resolve_image(self.root, self.img_dir, name)
        if path is None:
            if self._index is None:
                self._index = index_images(self.img_dir)
            path = resolve_image(self.root, self.img_dir, name, self._index)
        if path is None:
            raise RuntimeError(f"image id {image_id}: file {name!r} not found under {self.img_dir}")
        return path

    def target(self, image_id: int, height: int, width: int) -> dict:
        anns = [a for a in self.coco.imgToAnns.get(image_id, [])
                if not a.get("iscrowd", 0) and not a.get("difficult", 0)]
        boxes, labels, masks, keypoints = [], [], [], []
        for a in anns:
            x, y, w, h = a["bbox"]
            if w < 1 or h < 1:
                continue
            boxes.append([x, y, x + w, y + h])
            labels.append(self.label_of[a["category_id"]])
            if self.masks:
                masks.append(self.coco.annToMask(a))
            if self.keypoint_names is not None:
                keypoints.append(a.get("keypoints") or [0] * (3 * len(self.keypoint_names)))
        box_t = torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4)
        mask_t = (torch.from_numpy(np.stack(masks)) if masks
                  else torch.zeros((0, height, width), dtype=torch.uint8))
        target = {
            "boxes": tv_tensors.BoundingBoxes(box_t, format="XYXY", canvas_size=(height, width)),
            "labels": torch.tensor(labels, dtype=torch.int64),
            "image_id": image_id,
        }
        if self.masks:
            target["masks"] = tv_tensors.Mask(mask_t)
        if self.keypoint_names is not None:
            target["keypoints"] = torch.tensor(keypoints, dtype=torch.float32).reshape(
                -1, len(self.keypoint_names), 3)
        return target

    def __getitem__(self, item):
        index, aug_seed = item if isinstance(item, tuple) else (item, 0)
        image_id = self.ids[index]
        img = self.load_image(image_id)
        target = self.target(image_id, img.shape[-2], img.shape[-1])
        if self.transforms is not None:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(aug_seed)
                img, target = self.transforms(img, target)
        return img, target


def batch_indices(iteration: int, batch_size: int, n: int, seed: int) -> list[int]:
    """Dataset indices of the batch at `iteration`: epochs of seeded permutations."""
    out = []
    for pos in range(iteration * batch_size, (iteration + 1) * batch_size):
        epoch, offset = divmod(pos, n)
        perm = _permutation(seed, epoch, n)
        out.append(int(perm[offset]))
    return out


_PERMS: dict[tuple[int, int, int], np.ndarray] = {}


def _permutation(seed: int, epoch: int, n: int) -> np.ndarray:
    key = (seed, epoch, n)
    if key not in _PERMS:
        _PERMS.clear()
        _PERMS[key] = np.random.default_rng(mix_seed(seed, epoch, 1)).permutation(n)
    return _PERMS[key]


class IterationBatches(torch.utils.data.Sampler):
    """Yields, for iterations [start, end), the list of (index, aug_seed) of each batch."""

    def __init__(self, start: int, end: int, batch_size: int, n: int, seed: int, shard=None):
        self.start, self.end, self.batch_size, self.n, self.seed = start, end, batch_size, n, seed
        self.shard = shard or (lambda items: items)  # a rank's share of the global batch

    def __len__(self) -> int:
        return self.end - self.start

    def __iter__(self):
        for it in range(self.start, self.end):
            idx = batch_indices(it, self.batch_size, self.n, self.seed)
            yield self.shard([(i, mix_seed(self.seed, it, j, 2)) for j, i in enumerate(idx)])


def collate(batch):
    return tuple(zip(*batch))


def encode_mask(binary: np.ndarray) -> dict:
    rle = mask_utils.encode(np.asfortranarray(binary.astype(np.uint8)))
    return {"size": [int(s) for s in rle["size"]], "counts": rle["counts"].decode("ascii")}
