"""Issue 32's throughput probe: the training step's img/s on world v2 scenes for (scene size,
model width) pairs, interleaved over two rounds, one thread each, batch 8, 24 iterations.

    python docs/tuning/world_v2_throughput.py [OUT_DIR]   # with .venv active; about 6 min
"""
import json
import os
import re
import subprocess
import sys
from pathlib import Path
import yaml
ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "workflow"))
from rethink.data import writers
base = yaml.safe_load((ROOT / "config.yaml").read_text())
v2 = yaml.safe_load((ROOT / "workflow/presets/world_v2.yaml").read_text())["data"]["synthetic"]
OUT = Path(sys.argv[1] if len(sys.argv) > 1 else "results/world_v2_throughput")
worlds = {"128-192": {}, "96-128": {"det_min_size": 96, "det_max_size": 128}}
for name, over in worlds.items():
    cfg = {**base["data"]["synthetic"], **v2, **over, "det_train_images": 64, "det_val_images": 4,
           "cls_train_per_class": 1, "cls_val_per_class": 1}
    if not (OUT / name / "coco").exists():
        writers.generate_coco(OUT / name / "coco", cfg, seed=300)
model = {k: v for k, v in base["model"].items()}
narrow = {**model, "width": 16, "fpn_channels": 32, "box_head": {"convs": 0, "conv_channels": 32, "fc": 128},
          "mask_head": {"convs": 2, "channels": 32}}
arms = {"128-192 w32": ("128-192", {**model, "min_size": 128, "max_size": 192}),
        "128-192 w16": ("128-192", {**narrow, "min_size": 128, "max_size": 192}),
        "96-128 w32": ("96-128", {**model, "min_size": 96, "max_size": 128}),
        "96-128 w16": ("96-128", {**narrow, "min_size": 96, "max_size": 128})}
det = base["detection"]
train = {k: det[k] for k in ("one_x", "batch_size", "base_lr", "reference_batch", "momentum", "weight_decay",
                             "warmup_iters", "warmup_factor", "flip_prob", "seed", "scales")}
train.update(batch_size=8, one_x=24, warmup_iters=2, group_by_aspect=True)
res = {a: [] for a in arms}
for rnd in range(2):
    for arm, (world, m) in arms.items():
        out = OUT / "ckpt" / arm.replace(" ", "_") / "iter_000024.pt"
        cmd = [sys.executable, "-m", "rethink.engine.train", "--coco", str(OUT / world / "coco"), "--model", json.dumps(m),
               "--train", json.dumps(train), "--init", "scratch", "--start-iter", "0", "--end-iter", "24",
               "--out", str(out), "--log-every", "8", "--threads", "1"]
        p = subprocess.run(cmd, cwd=ROOT, env={"PYTHONPATH": str(ROOT / "workflow"), "PATH": os.environ["PATH"]},
                           capture_output=True, text=True)
        rates = re.findall(r"\(([0-9.]+) img/s", p.stdout)
        if p.returncode or not rates:
            print(arm, "failed", p.stdout[-500:], p.stderr[-1500:]); sys.exit(1)
        res[arm].append(float(rates[-1]))
        out.unlink(missing_ok=True)
        print(arm, rnd, rates[-1], flush=True)
print(json.dumps({a: sorted(v) for a, v in res.items()}, indent=1))
