"""Issue 35's pre-training probes (tuning seed 7, not a decisive run): one short pre-training
of the default config's pretrain keys with NAME's overrides, 2 torch threads, on the default
world's synthetic ImageNet (`snakemake --cores 2 results/checks/imagenet_layout.json` makes it).

    PYTHONPATH=workflow python docs/tuning/ssl_probe.py IMAGENET OUT NAME EPOCHS PRETRAIN_JSON [MODEL_JSON]

The runs of docs/beyond.md ("Measured") and docs/tuning/README.md ("ssl probes"), 16 epochs each:
    vit_sup_1e-3  '{"optimizer":"adamw","lr":0.001,"weight_decay":0.05}' '{"arch":"vit","depth":4,"width":64}'
    mae_1.5e-4    '{"method":"mae","optimizer":"adamw","lr":0.00015,"weight_decay":0.05,"crop_scale":[0.2,1.0]}' (same ViT)
    mae_1e-3      '{"method":"mae","optimizer":"adamw","lr":0.001,"weight_decay":0.05,"crop_scale":[0.2,1.0]}' (same ViT)
    simsiam_0.05  '{"method":"simsiam","lr":0.05,"crop_scale":[0.2,1.0]}' (stopped after epoch 1 for time)
and one epoch each of the supervised ResNet ('{}'), SimSiam and MAE alone for their img/s.
"""
import json
import sys
from pathlib import Path

import torch
import yaml

from rethink.core import config as study_config
from rethink.engine.pretrain import pretrain

imagenet, out, name, epochs = sys.argv[1], Path(sys.argv[2]), sys.argv[3], int(sys.argv[4])
overrides, model_overrides = json.loads(sys.argv[5]), json.loads(sys.argv[6]) if len(sys.argv) > 6 else {}
cfg = yaml.safe_load((Path(__file__).resolve().parents[2] / "config.yaml").read_text())
torch.set_num_threads(2)
model = study_config.model_settings({**cfg, "model": {**cfg["model"], **model_overrides}}, False)
pre = {k: v for k, v in cfg["pretrain"].items() if k not in ("checkpoint", "input", "workers")}
pre.update(epochs=epochs, seed=7, checkpoint_every=0, **overrides)
pretrain(imagenet, model, pre, out / name / "backbone.pt", out / name / "metrics.json", torch.device("cpu"))
