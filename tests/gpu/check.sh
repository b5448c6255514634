#!/usr/bin/env bash
# The GPU checks, as one script for a machine with GPUs (at most 8 minutes: every step has a
# time limit): rethink.engine.gpu_check (R50-FPN GN Mask R-CNN at 800x1333, 2 images per GPU as the
# COCO preset, and ResNet-50-GN pre-training, fp32 / bf16 / bf16 + channels_last), asserting
# that bf16 beats the slowest published anchor (a silent CPU fallback would not); then
# pre-training, detection training, a resumed segment and an evaluation of its checkpoint,
# through torchrun with one process per GPU (NCCL; one process on a single GPU).
#   bash tests/gpu/check.sh OUT_DIR            # on the GPU machine
#   DEVICE=cpu bash tests/gpu/check.sh OUT_DIR  # the same steps on CPU at toy size (gloo, 2 processes)
set -euo pipefail
OUT=${1:?usage: check.sh OUT_DIR}
DEVICE=${DEVICE:-cuda}
mkdir -p "$OUT"
export PYTHONPATH="$(cd "$(dirname "$0")/../.." && pwd)/workflow"
PY=${PYTHON:-python}
if [ "$DEVICE" = cuda ]; then
  NPROC=$($PY -c 'import torch; print(max(1, torch.cuda.device_count()))')
  timeout 240 $PY -m rethink.engine.gpu_check --iters 20 --batch 2 --pretrain-batch 128 --out "$OUT/gpu_check.json" | tee "$OUT/gpu_check.log"
  $PY - "$OUT/gpu_check.json" <<'PYEOF'
import json, sys
r = json.load(open(sys.argv[1]))
bf16 = next(x["img_per_s"] for x in r["results"] if x["mode"] == "bf16")
floor = r["anchors"]["detectron2_scratch_gn_3x_v100_img_per_s"]
assert bf16 > floor, f"bf16 Mask R-CNN at {bf16} img/s, below detectron2's V100 rate {floor}: not on the GPU?"
print(f"bf16 Mask R-CNN {bf16} img/s > {floor} (goal {r['goal_bf16_img_per_s']}: {'met' if r['goal_met'] else 'not met'})")
PYEOF
  SIZE=(--min-size 800 --max-size 1333); IMG=224; WIDTH=64; DEPTH=50
else
  NPROC=2
  timeout 240 $PY -m rethink.engine.gpu_check --device cpu --min-size 96 --max-size 128 --iters 1 --batch 1 --modes fp32 \
    --out "$OUT/gpu_check.json" | tee "$OUT/gpu_check.log"
  IMG=32; WIDTH=16; DEPTH=10
fi
DATA="$OUT/data"
$PY - "$DATA" "$IMG" <<'PYEOF'
import sys, yaml
from pathlib import Path
from rethink.data import writers
root, img = Path(sys.argv[1]), int(sys.argv[2])
base = {"classes": 4, "detection_classes": 2, "cls_image_size": img, "cls_train_per_class": 16,
        "cls_val_per_class": 4, "det_train_images": 8, "det_val_images": 4, "det_min_size": 480,
        "det_max_size": 640, "det_max_objects": 6, "clutter": 1.0, "jpeg_quality": 90}
if not (root / "imagenet").exists():
    writers.generate_imagenet(root / "imagenet", base, seed=0)
if not (root / "coco").exists():
    writers.generate_coco(root / "coco", base, seed=0)
PYEOF
MODEL="{\"depth\": $DEPTH, \"width\": $WIDTH, \"norm\": \"GN\", \"gn_groups\": 32, \"stride_in_1x1\": false}"
PRE="{\"image_size\": $IMG, \"epochs\": 1, \"batch_size\": $((NPROC * 8)), \"lr\": 0.1, \"warmup_epochs\": 0, \"momentum\": 0.9, \"weight_decay\": 0.0001, \"label_smoothing\": 0.0, \"seed\": 0, \"bf16\": true, \"channels_last\": true}"
LAUNCH=($PY -m torch.distributed.run --standalone --nproc-per-node "$NPROC")
[ "$NPROC" -gt 1 ] || LAUNCH=($PY)
timeout 90 "${LAUNCH[@]}" -m rethink.engine.pretrain --imagenet "$DATA/imagenet" --model "$MODEL" --pretrain "$PRE" \
  --device "$DEVICE" --out "$OUT/pretrain/backbone.pt" --out-metrics "$OUT/pretrain/metrics.json" | tee "$OUT/pretrain.log"
DET=$($PY - "$DEPTH" "$WIDTH" <<'PYEOF'
import json, sys
from rethink.engine.gpu_check import PRESET_MODEL
m = {**PRESET_MODEL, "depth": int(sys.argv[1]), "width": int(sys.argv[2]), "stride_in_1x1": False}
if m["width"] < 64:  # CPU toy size
    m.update(fpn_channels=16, box_head={"convs": 1, "conv_channels": 16, "fc": 32},
             mask_head={"convs": 1, "channels": 16}, min_size=96, max_size=128)
print(json.dumps(m))
PYEOF
)
TRAIN="{\"one_x\": 2, \"batch_size\": $((NPROC * 2)), \"base_lr\": 0.02, \"reference_batch\": 16, \"momentum\": 0.9, \"weight_decay\": 0.0001, \"warmup_iters\": 1, \"warmup_factor\": 0.001, \"flip_prob\": 0.5, \"seed\": 0, \"scales\": null, \"bf16\": true, \"channels_last\": true}"
timeout 90 "${LAUNCH[@]}" -m rethink.engine.train --coco "$DATA/coco" --model "$DET" --train "$TRAIN" --init pretrained \
  --backbone "$OUT/pretrain/backbone.pt" --start-iter 0 --end-iter 2 --log-every 1 \
  --device "$DEVICE" --out "$OUT/train/iter_000002.pt" | tee "$OUT/train.log"
# a resumed segment to the schedule's end (LR drop, optimizer state from the checkpoint)
timeout 90 "${LAUNCH[@]}" -m rethink.engine.train --coco "$DATA/coco" --model "$DET" --train "$TRAIN" --init pretrained \
  --resume "$OUT/train/iter_000002.pt" --start-iter 2 --end-iter 3 --schedule-iters 3 --log-every 1 \
  --device "$DEVICE" --out "$OUT/train/iter_000003.pt" | tee "$OUT/resume.log"
grep -q "resumed from $OUT/train/iter_000002.pt at iteration 2" "$OUT/resume.log"
# its evaluation on the device (one process, as an evaluate job)
timeout 90 $PY -m rethink.evaluation.evaluate --coco "$DATA/coco" --model "$DET" --checkpoint "$OUT/train/iter_000003.pt" \
  --out-metrics "$OUT/eval/metrics.json" --out-bbox "$OUT/eval/bbox.json" --out-segm "$OUT/eval/segm.json" \
  --device "$DEVICE" | tee "$OUT/eval.log"
$PY -c "import json, sys; m = json.load(open(sys.argv[1])); assert 'bbox' in m and 'segm' in m, m" "$OUT/eval/metrics.json"
echo "gpu checks done: $OUT (processes per step: $NPROC)"
