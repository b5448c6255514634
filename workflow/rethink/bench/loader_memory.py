"""Loader memory: the private (unshared) memory of each DataLoader worker once it has built the
training target of every image, with the annotation index as CocoInstances holds it now (numpy
arrays, rethink.data.coco.AnnotationIndex) and as pycocotools' COCO object it held before issue 34
(`PycocotoolsTargets`), and the arrays again with the parent's objects frozen out of the
garbage collector before the fork (`arrays_frozen`: gc.freeze(), as training does), each
measured in its own process, side by side in one run.

A forked worker shares its parent's memory until it writes to a page; reading a Python object
writes its reference count (and the garbage collector writes every container's header), so a
worker that reads COCO's per-annotation dicts and lists ends up with its own copy of them.
The annotation file is COCO-sized by default (118k images, 860k instances) and cheap: written
straight as JSON, no images; small polygons (one in ten objects in two parts, one in a hundred
a crowd region with an uncompressed RLE), on 64x48 image records, so that decoding the masks
is quick (the index's memory does not depend on the image size).

    PYTHONPATH=workflow python -m rethink.bench.loader_memory [--images 118000] \\
        [--instances 860000] [--workers 2] [--vertices 8] [--out loader_memory.json]

Each worker's memory is USS (Private_Clean + Private_Dirty of /proc/PID/smaps_rollup): just
after its first target (`start_mb`), after it has built every target (`touched_mb`: the growth
is what reading the index copied), and after a full garbage collection as a long-running worker
runs one (`end_mb`: the collector also writes every container the parent process holds, the
index's and torch's alike, so this part is there with either index).
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from rethink.bench.common import rnd, run_timed, shown
from rethink.data import world
from rethink.data.coco import CocoInstances, load_coco

KINDS = ("arrays", "arrays_frozen", "pycocotools")  # arrays_frozen: the parent gc.freeze()s before the fork, as training does
IMAGE_SIZE = (48, 64)  # height, width of every image record


def write_annotations(path: Path, images: int, instances: int, vertices: int = 8, seed: int = 0,
                      categories: int = 80, chunk: int = 10_000) -> dict:
    """A COCO instances file of `images` image records and `instances` objects (as evenly
    spread as whole numbers allow), written in chunks as JSON text (no image, nothing rendered)."""
    rng = np.random.default_rng(seed)
    h, w = IMAGE_SIZE
    per_image = np.diff(np.linspace(0, instances, images + 1).round().astype(np.int64))
    crowd_mask = np.zeros((h, w), np.uint8)
    crowd_mask[10:20, 12:30] = 1
    crowd_rle = world.uncompressed_rle(crowd_mask)
    counts = {"crowd": 0, "two_parts": 0}
    ann_id = 0
    with open(path, "w") as f:
        f.write('{"info": {"description": "rethink.bench.loader_memory"}, "images": [')
        f.write(", ".join(json.dumps({"id": i + 1, "file_name": f"{i + 1:012d}.jpg", "height": h, "width": w})
                          for i in range(images)))
        f.write('], "annotations": [')
        for lo in range(0, images, chunk):
            n = per_image[lo:lo + chunk]
            image_of = np.repeat(np.arange(lo, lo + len(n)) + 1, n)
            k = len(image_of)
            centre = rng.uniform([8, 8], [w - 8, h - 8], (k, 2))
            radius = rng.uniform(3, 8, (k, 1))
            angle = np.linspace(0, 2 * np.pi, vertices, endpoint=False) + rng.uniform(0, 1, (k, 1))
            poly = np.stack([centre[:, :1] + radius * np.cos(angle), centre[:, 1:] + radius * np.sin(angle)],
                            axis=2).reshape(k, -1).round(2)
            cats = rng.integers(1, categories + 1, k).tolist()
            parts = []
            for j, (p, image_id, cat) in enumerate(zip(poly.tolist(), image_of.tolist(), cats)):
                ann_id += 1
                if ann_id % 100 == 0:  # a crowd region
                    seg, box, crowd = crowd_rle, [12.0, 10.0, 18.0, 10.0], 1
                    counts["crowd"] += 1
                else:
                    seg = [p] if ann_id % 10 else [p, [round(v + 1.5, 2) for v in p]]  # two parts
                    counts["two_parts"] += len(seg) == 2
                    xs = [v for q in seg for v in q[0::2]]
                    ys = [v for q in seg for v in q[1::2]]
                    box, crowd = [min(xs), min(ys), round(max(xs) - min(xs), 2), round(max(ys) - min(ys), 2)], 0
                parts.append(json.dumps({"id": ann_id, "image_id": image_id, "category_id": cat,
                                         "segmentation": seg, "area": round(box[2] * box[3], 2),
                                         "bbox": box, "iscrowd": crowd}))
            f.write((", " if lo else "") + ", ".join(parts))
        f.write('], "categories": [')
        f.write(", ".join(json.dumps({"id": c, "name": f"c{c}", "supercategory": "x"})
                          for c in range(1, categories + 1)))
        f.write("]}")
    return {"images": images, "instances": ann_id, "crowd": counts["crowd"],
            "two_part_objects": counts["two_parts"], "vertices": vertices,
            "image_size": list(IMAGE_SIZE), "file_mb": rnd(path.stat().st_size / 2**20, 1)}


class PycocotoolsTargets:
    """The training targets as CocoInstances built them before issue 34, from pycocotools' COCO
    object (imgToAnns, annToMask): the reference the arrays are checked against (bit for bit,
    tests/unit/data/test_loader_memory.py) and measured beside."""

    def __init__(self, ann_file, masks: bool = True, keypoints: bool = False):
        self.coco = load_coco(Path(ann_file).parent, "train", ann_file)[0]
        self.ids = sorted(self.coco.getImgIds())
        self.label_of = {c: i + 1 for i, c in enumerate(sorted(self.coco.getCatIds()))}
        self.masks = masks
        self.keypoint_names = (list(self.coco.loadCats(sorted(self.label_of))[0]["keypoints"])
                               if keypoints else None)

    def sizes(self):
        return [self.coco.imgs[i]["height"] for i in self.ids], [self.coco.imgs[i]["width"] for i in self.ids]

    def target(self, image_id: int, height: int, width: int) -> dict:
        from torchvision import tv_tensors
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


def private_mb(pid="self") -> float:
    """USS: the process's memory no other process shares (Private_Clean + Private_Dirty), MiB."""
    fields = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        key, value, *_ = line.split()
        fields[key.rstrip(":")] = int(value)
    return (fields["Private_Clean"] + fields["Private_Dirty"]) / 1024


class _EveryTarget(torch.utils.data.Dataset):
    """Item k (one per worker): build the target of every image; the worker's USS after the
    first target and after all (and a full collection). Ids and sizes are arrays: reading
    them touches no Python object."""

    def __init__(self, index, workers: int):
        self.index, self.workers = index, workers
        self.ids = np.asarray(index.ids, dtype=np.int64)
        self.heights, self.widths = (np.asarray(v, dtype=np.int64) for v in index.sizes())

    def __len__(self):
        return self.workers

    def _target(self, i):
        return self.index.target(int(self.ids[i]), int(self.heights[i]), int(self.widths[i]))

    def __getitem__(self, k):
        self._target(0)  # first-call allocations: not the index's
        start = private_mb()
        objects = sum(len(self._target(i)["labels"]) for i in range(len(self.ids)))
        touched = private_mb()
        gc.collect()  # what a full collection adds: every container of the parent's it sees
        return {"pid": os.getpid(), "start_mb": start, "touched_mb": touched, "end_mb": private_mb(),
                "objects": objects}


def measure(kind: str, ann_file: Path, workers: int) -> dict:
    """Build the `kind` index of `ann_file` in this process, then fork `workers` DataLoader
    workers that each build every target; their memory, and the index's build time."""
    t0 = time.perf_counter()
    if kind.startswith("arrays"):
        index = CocoInstances(ann_file.parent, "train", ann_file=ann_file)
        nbytes = sum(v.nbytes for v in vars(index.ann_index).values() if isinstance(v, np.ndarray))
    else:
        index = PycocotoolsTargets(ann_file)
        nbytes = None
    build_s = time.perf_counter() - t0
    gc.collect()  # the build's garbage gone before the workers fork
    if kind == "arrays_frozen":
        gc.freeze()
    loader = torch.utils.data.DataLoader(_EveryTarget(index, workers), batch_size=None,
                                         num_workers=workers, multiprocessing_context="fork")
    t0 = time.perf_counter()
    per_worker = list(loader)
    out = {"kind": kind, "index_build_s": rnd(build_s, 2), "touch_s": rnd(time.perf_counter() - t0, 1),
           "parent_uss_mb": rnd(private_mb(), 1), "gc_tracked_objects_in_parent": len(gc.get_objects()),
           "workers": [{**w, **{k: rnd(w[k], 1) for k in ("start_mb", "touched_mb", "end_mb")},
                        "touch_growth_mb": rnd(w["touched_mb"] - w["start_mb"], 1),
                        "collection_growth_mb": rnd(w["end_mb"] - w["touched_mb"], 1)} for w in per_worker]}
    if nbytes is not None:
        out["array_mb"] = rnd(nbytes / 2**20, 1)
    for key in ("start_mb", "touched_mb", "end_mb", "touch_growth_mb", "collection_growth_mb"):
        out[key] = rnd(np.mean([w[key] for w in out["workers"]]), 1)
    return out


def run(work: Path, images: int = 118_000, instances: int = 860_000, workers: int = 2,
        vertices: int = 8) -> dict:
    """The annotation file in `work`, then each index kind measured in its own process."""
    work.mkdir(parents=True, exist_ok=True)
    ann_file = work / "instances_train2017.json"
    t0 = time.perf_counter()
    data = write_annotations(ann_file, images, instances, vertices)
    data["write_s"] = rnd(time.perf_counter() - t0, 1)
    kinds = {}
    for kind in KINDS:
        cmd = [sys.executable, "-m", "rethink.bench.loader_memory", "--measure", kind,
               "--ann-file", str(ann_file), "--workers", str(workers)]
        _, proc = run_timed(cmd, work, timeout=1800)
        kinds[kind] = json.loads(proc.stdout.strip().splitlines()[-1])
    a, f, p = kinds["arrays"], kinds["arrays_frozen"], kinds["pycocotools"]
    ann_file.unlink()
    return {"data": data, "workers": workers, "kinds": kinds,
            "ratio_uss_pycocotools_vs_arrays": rnd(p["end_mb"] / a["end_mb"], 2),
            "ratio_uss_arrays_vs_frozen": rnd(a["end_mb"] / f["end_mb"], 2),
            "ratio_collection_growth_arrays_vs_frozen": rnd(
                a["collection_growth_mb"] / max(f["collection_growth_mb"], 0.1), 1),
            "ratio_touch_growth_pycocotools_vs_arrays": rnd(
                p["touch_growth_mb"] / max(a["touch_growth_mb"], 0.1), 1),
            "module_command": "PYTHONPATH=workflow " + shown([
                sys.executable, "-m", "rethink.bench.loader_memory", "--images", str(images),
                "--instances", str(instances), "--workers", str(workers), "--vertices", str(vertices)])}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--images", type=int, default=118_000)
    p.add_argument("--instances", type=int, default=860_000)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--vertices", type=int, default=8, help="polygon vertices per object")
    p.add_argument("--out", help="results JSON (default: printed)")
    p.add_argument("--measure", choices=KINDS, help=argparse.SUPPRESS)  # one kind, in this process
    p.add_argument("--ann-file", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.measure:
        print(json.dumps(measure(args.measure, args.ann_file, args.workers)), flush=True)
        return
    with tempfile.TemporaryDirectory(prefix="rethink-loader-memory-") as tmp:
        result = run(Path(tmp), args.images, args.instances, args.workers, args.vertices)
    text = json.dumps(result, indent=1)
    if args.out:
        Path(args.out).write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
