"""COCO-format detection data for training and evaluation, with randomness keyed by
(seed, iteration) so that a resumed or forked run sees exactly the batches and flips an
uninterrupted run would.
"""
from __future__ import annotations

import contextlib
import io
import itertools
import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from torchvision import tv_tensors
from torchvision.transforms import v2

from rethink.core.names import split_paths
from rethink.core.order import aspect_groups, batch_indices, mix_seed
from rethink.data.layout import index_images, resolve_image


def load_coco(coco_root: str | Path, split: str, ann_file: str | Path | None = None) -> tuple[COCO, Path]:
    """The split's annotations (or `ann_file`, e.g. a less-data subset) and image folder."""
    ann_file, img_dir = split_paths(coco_root, split, ann_file)
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints timing chatter
        coco = COCO(str(ann_file))
    return coco, img_dir


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
    on disk (found as the layout check finds it, `rethink.data.layout.resolve_image`).
    With `keypoints` (a person_keypoints file) targets also hold `keypoints` (N x K x 3:
    x, y, visibility), and `keypoint_names` lists the K names of its categories. Without
    `masks` (a box-only model) targets hold no masks, and need no segmentation. Objects
    flagged `difficult` (VOC's, rethink.data.voc) are left out of the targets as crowd regions are
    (py-faster-rcnn's and Detectron's VOC training does so; VOC's evaluation ignores them).
    Without `targets` (evaluation: COCOeval scores from the annotation file) an item's target
    holds its `image_id` alone, and no box or mask is built; the image is the same.

    The annotations are held as a few numpy arrays (`AnnotationIndex`), not as pycocotools'
    COCO object: loader workers forked from this process read them without writing to their
    pages, so the index stays shared (COCO's millions of Python objects are copied into every
    worker as it touches their reference counts). `coco` loads that object for evaluation.
    """

    def __init__(self, coco_root: str | Path, split: str, transforms=None,
                 image_ids: list[int] | None = None, skip_ids=(), ann_file=None, keypoints=False,
                 masks=True, targets=True):
        self.ann_file, self.img_dir = split_paths(coco_root, split, ann_file)
        self.root = Path(coco_root)
        with open(self.ann_file) as f:
            doc = json.load(f)
        cats = {c["id"]: c for c in doc.get("categories", [])}  # the last of a repeated id, as COCO
        self.cat_ids = sorted(cats)
        self.label_of = {c: i + 1 for i, c in enumerate(self.cat_ids)}
        self.keypoint_names = None
        if keypoints:
            names = {tuple(cats[c].get("keypoints") or ()) for c in self.cat_ids}
            if len(names) != 1 or not next(iter(names)):
                raise ValueError(f"{ann_file}: every category needs the same non-empty `keypoints` list")
            self.keypoint_names = list(names.pop())
        self.ann_index = AnnotationIndex(doc, self.label_of, masks, self.keypoint_names)
        del doc  # only the arrays stay
        ids = self.ann_index.image_ids.tolist() if image_ids is None else list(image_ids)
        skip = {int(i) for i in skip_ids}
        self.ids = [i for i in ids if i not in skip]
        self._item_ids = np.asarray(self.ids, dtype=np.int64)  # what workers read: no int objects touched
        self.skipped = len(ids) - len(self.ids)
        self._index = None  # stem -> paths under img_dir, built on the first odd file_name
        self.transforms = transforms
        self.masks = masks
        self.targets = targets

    @property
    def coco(self) -> COCO:
        """pycocotools' COCO of the annotation file, for evaluation: loaded afresh at each access
        in the process that asks, so that no worker forked from it holds its Python objects."""
        return load_coco(self.root, "train", self.ann_file)[0]

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def num_classes(self) -> int:
        return len(self.cat_ids)

    def sizes(self) -> tuple[list[int], list[int]]:
        """Heights and widths of the images, in index order, as the annotations give them."""
        rows = self.ann_index.rows(self._item_ids)
        return self.ann_index.heights[rows].tolist(), self.ann_index.widths[rows].tolist()

    def aspect_groups(self, model_cfg: dict) -> np.ndarray:
        """`aspect_groups` of the images at the model's resize."""
        return aspect_groups(*self.sizes(), model_cfg["min_size"], model_cfg["max_size"])

    def load_image(self, image_id: int) -> torch.Tensor:
        path = self.image_path(image_id)
        try:
            with Image.open(path) as im:
                im = im.convert("RGB")  # grayscale and CMYK JPEGs exist in real COCO
        except (OSError, SyntaxError) as e:
            raise RuntimeError(f"cannot read image {path} (image id {image_id}): {e}") from e
        return tv_tensors.Image(torch.from_numpy(np.asarray(im).copy()).permute(2, 0, 1))

    def image_path(self, image_id: int) -> Path:
        name = self.ann_index.file_name(self.ann_index.row(image_id))
        path = resolve_image(self.root, self.img_dir, name)
        if path is None:
            if self._index is None:
                self._index = index_images(self.img_dir)
            path = resolve_image(self.root, self.img_dir, name, self._index)
        if path is None:
            raise RuntimeError(f"image id {image_id}: file {name!r} not found under {self.img_dir}")
        return path

    def target(self, image_id: int, height: int, width: int) -> dict:
        ix = self.ann_index
        row = ix.row(image_id)
        objs = range(ix.first[row], ix.first[row + 1])
        target = {
            "boxes": tv_tensors.BoundingBoxes(torch.tensor(ix.boxes[objs.start:objs.stop]), format="XYXY",
                                              canvas_size=(height, width)),
            "labels": torch.tensor(ix.labels[objs.start:objs.stop]),
            "image_id": image_id,
        }
        if self.masks:
            target["masks"] = tv_tensors.Mask(
                torch.from_numpy(np.stack([ix.mask(j, row) for j in objs])) if len(objs)
                else torch.zeros((0, height, width), dtype=torch.uint8))
        if self.keypoint_names is not None:
            target["keypoints"] = torch.tensor(ix.keypoints[objs.start:objs.stop]).reshape(
                -1, len(self.keypoint_names), 3)
        return target

    def __getitem__(self, item):
        index, aug_seed = item if isinstance(item, tuple) else (item, 0)
        image_id = int(self._item_ids[index])
        img = self.load_image(image_id)
        target = (self.target(image_id, img.shape[-2], img.shape[-1]) if self.targets
                  else {"image_id": image_id})
        if self.transforms is not None:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(aug_seed)
                img, target = self.transforms(img, target)
        return img, target


def _packed(items) -> tuple[np.ndarray, np.ndarray]:
    """Byte strings as one uint8 buffer and the offsets (n + 1) of each."""
    offsets = np.cumsum([0] + [len(b) for b in items], dtype=np.int64)
    return np.frombuffer(b"".join(items), dtype=np.uint8), offsets


class AnnotationIndex:
    """The images and training objects of a COCO annotation file as flat numpy arrays.

    Images sorted by id (`image_ids`, `heights`, `widths`, file names packed in bytes). The
    objects that become targets (not crowd, not difficult, box width and height >= 1), in
    file order within each image, image row r's at [first[r], first[r + 1]): `boxes` (XYXY,
    float32 from the float64 sums, as torch.tensor rounds them), `labels`, `keypoints`
    (N x 3K, zeros where an object has none); with `masks` each object's polygons (float64
    coordinates, bit for bit JSON's) or its RLE, compressed by pycocotools as annToRLE
    compresses it, decoded as annToMask decodes it (`mask`).
    """

    def __init__(self, doc: dict, label_of: dict, masks: bool, keypoint_names=None):
        images = {im["id"]: im for im in doc.get("images", [])}  # the last of a repeated id, as COCO
        self.image_ids = np.array(sorted(images), dtype=np.int64)
        records = [images[i] for i in self.image_ids.tolist()]
        self.heights = np.array([r["height"] for r in records], dtype=np.int64)
        self.widths = np.array([r["width"] for r in records], dtype=np.int64)
        self.names, self.name_at = _packed([r["file_name"].encode() for r in records])
        # the training objects, in file order (COCO's imgToAnns order), then stably by image
        anns = [a for a in doc.get("annotations", []) if a["image_id"] in images
                and not a.get("iscrowd", 0) and not a.get("difficult", 0)
                and not (a["bbox"][2] < 1 or a["bbox"][3] < 1)]
        rows = np.searchsorted(self.image_ids, np.array([a["image_id"] for a in anns], dtype=np.int64))
        order = np.argsort(rows, kind="stable")
        anns = [anns[i] for i in order.tolist()]
        self.first = np.searchsorted(rows[order], np.arange(len(records) + 1))
        xywh = np.array([a["bbox"] for a in anns], dtype=np.float64).reshape(len(anns), 4)
        self.boxes = np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], axis=1).astype(np.float32)
        self.labels = np.array([label_of[a["category_id"]] for a in anns], dtype=np.int64)
        if keypoint_names is not None:
            k = 3 * len(keypoint_names)
            self.keypoints = np.array([a.get("keypoints") or [0] * k for a in anns],
                                      dtype=np.float32).reshape(len(anns), k)
        if masks:
            segs = [a["segmentation"] for a in anns]
            polys = [s if isinstance(s, list) else [] for s in segs]
            self.polys = np.cumsum([0] + [len(p) for p in polys], dtype=np.int64)  # per object
            flat = [q for p in polys for q in p]
            self.coords_at = np.cumsum([0] + [len(q) for q in flat], dtype=np.int64)  # per polygon
            self.coords = np.fromiter(itertools.chain.from_iterable(flat), dtype=np.float64,
                                      count=int(self.coords_at[-1]))
            # RLEs as annToRLE makes them: uncompressed ones compressed by pycocotools
            rles = [None if isinstance(s, list) else s if not isinstance(s["counts"], list) else
                    mask_utils.frPyObjects(s, images[a["image_id"]]["height"], images[a["image_id"]]["width"])
                    for s, a in zip(segs, anns)]
            self.is_rle = np.array([r is not None for r in rles], dtype=bool)
            self.rle_size = np.array([(0, 0) if r is None else r["size"] for r in rles],
                                     dtype=np.int64).reshape(len(anns), 2)
            self.rle, self.rle_at = _packed([b"" if r is None else r["counts"] if isinstance(r["counts"], bytes)
                                             else r["counts"].encode() for r in rles])

    def rows(self, image_ids) -> np.ndarray:
        """The rows of image ids (KeyError for one the file does not have, as COCO.imgs)."""
        ids = np.asarray(image_ids, dtype=np.int64).reshape(-1)
        r = np.searchsorted(self.image_ids, ids)
        found = r < len(self.image_ids)
        found[found] = self.image_ids[r[found]] == ids[found]
        if not found.all():
            raise KeyError(int(ids[~found][0]))
        return r

    def row(self, image_id: int) -> int:
        return int(self.rows([image_id])[0])

    def file_name(self, row: int) -> str:
        return self.names[self.name_at[row]:self.name_at[row + 1]].tobytes().decode()

    def mask(self, j: int, row: int) -> np.ndarray:
        """Object j's binary mask, pycocotools' COCO.annToMask's calls on the same values:
        polygons rasterised at the image record's size and merged, or the RLE decoded."""
        if self.is_rle[j]:
            counts = self.rle[self.rle_at[j]:self.rle_at[j + 1]].tobytes()
            return mask_utils.decode({"size": self.rle_size[j].tolist(), "counts": counts})
        at = self.coords_at[self.polys[j]:self.polys[j + 1] + 1]
        polys = [self.coords[a:b].tolist() for a, b in zip(at[:-1], at[1:])]  # lists: frPyObjects's type rules
        h, w = int(self.heights[row]), int(self.widths[row])
        return mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(polys, h, w)))


class IterationBatches(torch.utils.data.Sampler):
    """Yields, for iterations [start, end), the list of (index, aug_seed) of each batch."""

    def __init__(self, start: int, end: int, batch_size: int, n: int, seed: int, shard=None,
                 groups=None):
        self.start, self.end, self.batch_size, self.n, self.seed = start, end, batch_size, n, seed
        self.groups = groups
        self.shard = shard or (lambda items: items)  # a rank's share of the global batch

    def __len__(self) -> int:
        return self.end - self.start

    def __iter__(self):
        for it in range(self.start, self.end):
            idx = batch_indices(it, self.batch_size, self.n, self.seed, self.groups)
            yield self.shard([(i, mix_seed(self.seed, it, j, 2)) for j, i in enumerate(idx)])


def collate(batch):
    return tuple(zip(*batch))
