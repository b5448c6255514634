"""Write the study's plan, study.json: every variant's forked schedule plan, its data
fraction and image count, the seeds, and what pre-training saw. Figures, tables and the
claims check read it next to the metrics.

    python -m rethink.core.study --variants JSON --inits scratch pretrained --seeds 0 1 \
        --coco-stats checks/coco_layout.json [--pretrain-metrics pretrain/GN/metrics.json] --out study.json
"""
from __future__ import annotations

import argparse
import json
import sys

from rethink.core.atomic import write_json
from rethink.core.config import json_arg
from rethink.core.schedule import make_plan

PRETRAIN_KEYS = ("images_seen", "pixels_seen", "epochs", "train_images", "image_size", "top1",
                 "last_quarter_gain", "levelled_off", "method", "monitor")


def subset_size(n_images: int, fraction: float) -> int:
    """Images in a subset: the fraction of n, rounded, at least one."""
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    return max(1, int(round(fraction * n_images)))


def read_json(path: str, what: str) -> dict:
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except (OSError, ValueError) as e:
        raise SystemExit(f"error: cannot read the {what} {path}: {e}")


def train_image_count(coco_stats: dict) -> int:
    stats = coco_stats.get("coco", coco_stats)
    train = stats["train"]
    return int(train["images"]) - int(train.get("images_skipped", 0))


def variant_entry(spec: dict, n_train: int, inits: list[str], dataset_train: dict | None = None) -> dict:
    """A variant's study.json entry; a dataset variant's train images are its own dataset's
    (`dataset_train`: dataset name -> train image count)."""
    plan = make_plan(spec["one_x"], spec["schedules"], spec["checkpoint_every"])
    entry = {k: spec[k] for k in ("kind", "norm", "regime", "fraction", "batch_size",
                                  "min_size", "max_size", "train_scales")}
    entry["group_by_aspect"] = spec.get("group_by_aspect", False)
    if spec.get("dataset"):
        if spec["dataset"] not in (dataset_train or {}):
            raise SystemExit(f"error: variant of dataset {spec['dataset']!r}: give --dataset-stats "
                             f"{spec['dataset']}=REPORT (its conversion's report)")
        n_train = dataset_train[spec["dataset"]]
    entry["train_images"] = subset_size(n_train, spec["fraction"])
    entry["inits"] = list(inits)
    for key in ("backbone", "scratch_from", "pretrain_overrides", "model_overrides",  # shape; pretraining, model
                "task", "keypoint_head", "dataset", "tta"):  # task, dataset variants; TTA
        if key in spec:
            entry[key] = spec[key]
    entry.update(plan.to_dict())
    return entry


def pretrain_summary(path: str) -> dict:
    """What a pre-training saw and reached, from its metrics.json."""
    m = read_json(path, "pre-training metrics")
    if not isinstance(m, dict):
        raise SystemExit(f"error: {path}: pre-training metrics must be a JSON object")
    out = {k: m[k] for k in PRETRAIN_KEYS if k in m}
    out["instances_seen"] = out.get("images_seen")  # one object per image
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--variants", required=True, help="JSON: name -> {kind, norm, regime, fraction, one_x, "
                   "schedules, checkpoint_every, batch_size, min_size, max_size, train_scales}")
    p.add_argument("--inits", nargs="+", required=True)
    p.add_argument("--seeds", type=int, nargs="+", required=True)
    p.add_argument("--coco-stats", required=True, help="the COCO layout check's JSON")
    p.add_argument("--pretrain-metrics", help="the main norm's pre-training metrics (absent: a given checkpoint)")
    p.add_argument("--variant-pretrain", nargs="*", default=[], metavar="NAME=METRICS",
                   help="a pretraining or model variant's own pre-training metrics")
    p.add_argument("--dataset-stats", nargs="*", default=[], metavar="DATASET=REPORT",
                   help="a dataset variant's dataset conversion report (rethink.data.voc's): its train images")
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    specs = json_arg(args.variants, "variants")
    try:
        n_train = train_image_count(read_json(args.coco_stats, "COCO layout stats"))
    except KeyError as e:
        raise SystemExit(f"error: {args.coco_stats}: missing key {e}")
    pretrain = pretrain_summary(args.pretrain_metrics) if args.pretrain_metrics else None
    dataset_train = {}
    for item in args.dataset_stats:
        name, _, path = item.partition("=")
        try:
            dataset_train[name] = int(read_json(path, f"{name} conversion report")["train"]["images"])
        except (KeyError, TypeError) as e:
            raise SystemExit(f"error: {path}: missing key {e} (train.images)")
    study = {"inits": args.inits, "seeds": args.seeds, "main": next(iter(specs)),
             "variants": {name: variant_entry(spec, n_train, args.inits, dataset_train) for name, spec in specs.items()},
             "pretrain": pretrain}
    for item in args.variant_pretrain:
        name, _, path = item.partition("=")
        if study["variants"].get(name, {}).get("kind") not in ("pretraining", "model"):
            raise SystemExit(f"error: --variant-pretrain {item}: {name!r} is no pretraining or model variant")
        study["variants"][name]["pretrain"] = pretrain_summary(path)
    write_json(args.out, study)
    for name, v in study["variants"].items():
        print(f"{name}: {v['train_images']} train images, {v['forked_iterations']} iterations forked "
              f"vs {v['separate_iterations']} separate, per init and seed")


if __name__ == "__main__":
    sys.exit(main())
