"""What an evaluation writes and the settings that decide its numbers: the command line of
rethink.evaluation.evaluate, its output files, and the stamp a training job's own evaluation
carries, so that the evaluate job can adopt it (torch-free)."""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from rethink.core.atomic import sha1_file

BACKENDS = ("faster", "pycocotools")  # COCOeval implementations; the first is the default
FROM_TRAINING = "from_training"  # sub-folder of an eval dir the training job writes to


def files(results) -> tuple[str, ...]:
    """The files an evaluation with these results (tasks) writes: one TASK_results.json per
    task (bbox; segm unless box-only; keypoints for a keypoint model), then metrics.json."""
    return tuple(f"{task}_results.json" for task in results) + ("metrics.json",)


def output_paths(args) -> dict:
    """{file name: path} of the command line's outputs (metrics last)."""
    paths = {"bbox_results.json": args.out_bbox}
    if args.out_segm:
        paths["segm_results.json"] = args.out_segm
    if args.out_keypoints:
        paths["keypoints_results.json"] = args.out_keypoints
    return {**paths, "metrics.json": args.out_metrics}


def settings(model: dict, batch_size: int, backend: str, device: str, skip_ids,
             val_images: int | None = None) -> dict:
    """Everything that decides an evaluation's numbers besides the weights (`val_images`: the
    first N val images only, as a curve checkpoint is scored; None: all of them)."""
    return {"model": model, "batch_size": int(batch_size), "backend": backend, "device": device,
            "skipped_val_ids": sorted(int(i) for i in skip_ids), "val_images": val_images}


def checkpoint_identity(path: str | os.PathLike) -> dict:
    """Size and SHA-1 of the file's bytes (not its mtime: Snakemake touches job outputs)."""
    return {"size": os.path.getsize(path), "sha1": sha1_file(path)}


def adopt(from_dir: Path, outputs: dict, wanted: dict, ckpt: str | os.PathLike) -> str | None:
    """Move the training job's evaluation into `outputs` ({file name: path}) if it was made
    with `wanted` settings on this very checkpoint file; return why not otherwise."""
    try:
        made = json.loads((from_dir / "metrics.json").read_text())
    except (OSError, ValueError):
        return f"no evaluation from the training job in {from_dir}"
    if made.get("evaluation") != wanted:
        return "the training job evaluated with other settings"
    if made.get("checkpoint_identity") != checkpoint_identity(ckpt):
        return f"{ckpt} was rewritten after the training job evaluated it"
    if not all((from_dir / name).is_file() for name in outputs):
        return f"{from_dir} is incomplete"
    for name in outputs:  # metrics last
        Path(outputs[name]).parent.mkdir(parents=True, exist_ok=True)
        os.replace(from_dir / name, outputs[name])
    from_dir.rmdir()
    return None


def parser(description: str) -> argparse.ArgumentParser:
    """The command line of rethink.evaluation.evaluate (and so of this entry point)."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--coco", required=True)
    p.add_argument("--model", required=True, help="model config as JSON")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--out-metrics", required=True)
    p.add_argument("--out-bbox", required=True)
    p.add_argument("--out-segm", help="mask results (every model but a box-only one)")
    p.add_argument("--out-keypoints", help="keypoint results (a model with a keypoint head)")
    p.add_argument("--val-annotations", help="score on this annotation file instead of the root's "
                   "instances_val2017.json (a keypoint model: its person_keypoints file)")
    p.add_argument("--variant", default="main", help="recorded in the metrics file")
    p.add_argument("--seed", type=int, default=0, help="recorded in the metrics file")
    p.add_argument("--init", default="", help="recorded in the metrics file")
    p.add_argument("--branch", default="", help="recorded in the metrics file")
    p.add_argument("--iteration", type=int, default=-1, help="recorded in the metrics file")
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="auto")
    p.add_argument("--gpus", type=int, default=0, help="GPUs this job was given (its gpu resource): without a working CUDA it stops at once")
    p.add_argument("--layout-stats", metavar="PATH",
                   help="the layout check's stats JSON: val images it skipped as undecodable "
                        "are left out of the dataset and of the evaluation")
    p.add_argument("--val-images", type=int, default=None, metavar="N",
                   help="score on the first N val images (sorted ids, after skipped ones): a "
                        "checkpoint that only draws a curve (evaluate.curve_images); default: all")
    p.add_argument("--backend", choices=BACKENDS, default=BACKENDS[0],
                   help="COCOeval implementation: faster-coco-eval (default) or pycocotools; "
                        "same numbers")
    p.add_argument("--workers", type=int, default=0,
                   help="data loader processes reading the val images (default 0: beside the "
                        "job's one thread a worker did not pay, `python -m rethink.bench.evaluation`); "
                        "same numbers, so not a setting the adopted evaluation must match")
    return p
