"""The COCO preset's own model (R50-FPN, GroupNorm, 4conv1fc, 800x1333) on CPU: two training
iterations at batch 1 and the scoring of two images, with peak memory recorded, so that the
real-size path runs in every `make test`, not only on a GPU."""
import json
import subprocess
import sys

import pytest
import yaml

from conftest import ROOT
from rethink.data import writers
from tiny import eval_settings, tiny

ENV = {"PYTHONPATH": str(ROOT / "workflow"), "PATH": "/usr/bin:/bin"}


@pytest.mark.slow
def test_the_presets_model_trains_and_scores_at_800x1333(tmp_path):
    preset = yaml.safe_load((ROOT / "workflow/presets/coco.yaml").read_text())
    model = {**yaml.safe_load((ROOT / "config.yaml").read_text())["model"], **preset["model"]}
    train = {**tiny()[2], **{k: preset["detection"][k] for k in ("base_lr", "reference_batch", "momentum",
                                                                 "weight_decay", "warmup_factor")},
             "batch_size": 1, "warmup_iters": 1}
    synth_cfg = {**tiny()[0], "det_train_images": 2, "det_val_images": 2, "det_min_size": 480,
                 "det_max_size": 640, "det_max_objects": 6}
    writers.generate_coco(tmp_path / "coco", synth_cfg, seed=0)  # COCO-sized images, upscaled to 800
    out = tmp_path / "iter_000002.pt"
    eval_extra = {k: model[k] for k in ("score_thresh", "detections_per_img")}
    train_model = {k: v for k, v in model.items() if k not in eval_extra}
    proc = subprocess.run([sys.executable, "-m", "rethink.engine.train", "--coco", str(tmp_path / "coco"),
                           "--model", json.dumps(train_model), "--train", json.dumps(train), "--init", "scratch",
                           "--start-iter", "0", "--end-iter", "2", "--out", str(out), "--log-every", "1",
                           "--threads", "2", *eval_settings(eval_extra, batch_size=1),
                           "--eval-dir", str(tmp_path / "eval"),
                           "--phases-out", str(tmp_path / "phases.json")],
                          env=ENV, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "iter 2/2 loss=" in proc.stdout
    metrics = json.loads((tmp_path / "eval/iter_000002/from_training/metrics.json").read_text())
    scored = metrics["evaluation"]["model"]
    assert (scored["min_size"], scored["max_size"], scored["fpn_channels"]) == (800, 1333, 256)
    assert set(metrics["bbox"]) >= {"AP", "AR100"} and metrics["num_images"] == 2
    rss = [float(x.split("rss ")[1].split(" MB")[0]) for x in proc.stdout.splitlines() if "rss " in x]
    phases = json.loads((tmp_path / "phases.json").read_text())
    print(f"\npreset model on CPU: peak rss {max(rss):.0f} MB, {phases['train_s'] / 2:.1f} s per "
          f"iteration, evaluation of 2 images {phases['eval_s']:.1f} s")
    assert max(rss) < 16_000  # fits this 24 GiB machine with room for the rest of the suite
