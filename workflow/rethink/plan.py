"""What a study will cost, before it is launched: per stage the jobs, iterations, images seen
and GPU-hours (rethink.core.cost_plan's counts), every backbone priced by its FLOPs against
R50's rates (rethink.models.flops), a line per pre-training and per variant.

    python -m rethink.plan --configfile workflow/presets/coco.yaml [--throughput gpu_check.json] \
        [--coco-train-images 118287] [--json plan.json]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from rethink.core import config as study_config
from rethink.core.cost_plan import ANCHOR_SOURCES, ANCHORS, COCO_TRAIN, estimate, measured_seconds, merged_config
from rethink.models.flops import relative_cost


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--configfile", nargs="*", default=[], help="merged over config.yaml, in order")
    p.add_argument("--throughput", help="rethink.engine.gpu_check's JSON: your GPU's measured bf16 img/s")
    p.add_argument("--coco-train-images", type=int, help=f"default: {COCO_TRAIN} for a real data.coco, "
                   f"else the synthetic count")
    p.add_argument("--imagenet-train-images", type=int)
    p.add_argument("--json", help="also write the plan here")
    args = p.parse_args(argv)
    cfg = merged_config(args.configfile)
    try:
        study_config.check(cfg)
    except study_config.ConfigError as e:
        raise SystemExit(f"config: {e}")
    plan = estimate(cfg, args.throughput, args.coco_train_images, args.imagenet_train_images, relative_cost)
    seconds = plan["seconds_per_image"]
    src = {k: ("measured" if args.throughput and k in measured_seconds(args.throughput) else ANCHOR_SOURCES[k])
           for k in ANCHORS}
    print(f"{plan['seeds']} seed(s) x {len(plan['inits'])} inits; GPU-seconds per image: "
          + ", ".join(f"{k} {v:.4g} ({src[k]})" for k, v in seconds.items()))
    print(f"{'stage':<10} {'jobs':>6} {'iterations':>12} {'images':>14} {'GPU-hours':>10}")
    for name, s in plan["stages"].items():
        its = s.get("iterations", s.get("epochs", ""))
        print(f"{name:<10} {s['jobs']:>6} {its:>12} {s.get('images_seen', s.get('images')):>14,} {s['gpu_hours']:>10,.1f}")
    print(f"total: {plan['total_gpu_hours']:,.1f} GPU-hours; forking the schedules saves "
          f"{plan['gpu_hours_saved_by_forking']:,.1f} GPU-hours of training "
          f"({plan['stages']['train']['iterations']:,} iterations instead of {plan['separate_iterations']:,})")
    for r in plan["pretrainings"]:
        print(f"  pretrain/{r['pretraining']}: {r['epochs']} epochs, {r['method']}, {r['gpu_hours']:,.1f} GPU-hours "
              f"({r['cost_vs_r50']:.2f}x ResNet-50's FLOPs an image at 224)")
    for r in plan["variants"]:
        print(f"  {r['variant']}: {r['train_images']} images, {r['forked_iterations']:,} iterations per init "
              f"and seed forked (vs {r['separate_iterations']:,}), {r['jobs']} training jobs, "
              f"{r['evaluations']} evaluations, {r['gpu_hours']:,.1f} GPU-hours "
              f"({r['cost_vs_r50']:.2f}x R50-FPN's FLOPs an image)")
    if args.json:
        Path(args.json).write_text(json.dumps(plan, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
