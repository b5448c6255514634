"""Figure: does training from scratch catch up on keypoints, and sooner than on boxes (the
paper's Fig. 6, Mask R-CNN keypoints)?

Each task variant (study.tasks with task: keypoints: main's model plus a keypoint head,
both inits trained on the keypoint annotations). Left: keypoint AP (COCOeval OKS AP) vs
iterations, scratch and pretrained, every schedule's branch from the shared trunk, mean
over seeds with the 95% t-interval. Right: pretrained - scratch at each schedule's end,
paired by seed, for keypoint AP and for the same runs' bbox AP, with a zero line: on
keypoints the gap should close sooner. Hollow diamonds (--reference with a "variants"
entry whose "metric" is keypoints_AP, as the COCO preset's) are the paper's numbers.
With --out-csv/--out-md it also writes the table of final keypoint metrics (and box and
mask AP) per variant, schedule and init, mean +- std over seeds, as tables/final_metrics is
for main. Drawn by rethink.figures.variant_metric.

    python -m rethink.figures.keypoints --study study.json --metrics all_metrics.csv \
        --out-png keypoints.png --out-pdf keypoints.pdf [--reference paper.json] \
        [--out-csv keypoints.csv --out-md keypoints.md]
"""
from __future__ import annotations

import sys

from rethink.figures.variant_metric import Spec, cli

# the table's columns (as rethink.figures.final_table.COLUMNS): COCOeval's keypoint numbers,
# then the same runs' box and mask AP
TABLE_COLUMNS = [(f"keypoints_{m}", f"keypoints_{m}", f"keypoint {m}", "")
                 for m in ("AP", "AP50", "AP75", "APm", "APl", "AR")]
TABLE_COLUMNS += [("bbox_AP", "bbox_AP", "box AP", ""), ("segm_AP", "mask_AP", "mask AP", "")]

SPEC = Spec(
    prog="python -m rethink.figures.keypoints",
    description="Keypoint AP vs iterations, scratch and pretrained, and the gap against bbox AP's.",
    key="task", value="keypoints", what="keypoint variant", where="study.tasks with task: keypoints",
    task="keypoints", metric="AP",
    ylabel="keypoint AP (%)", title="keypoint AP vs iterations",
    suptitle="Keypoints: scratch vs pre-trained (main's model plus a keypoint head)",
    gaps=(("keypoints_AP", "keypoint AP", "o", "-"), ("bbox_AP", "bbox AP (same runs)", "s", "--")),
    table_columns=TABLE_COLUMNS,
    table_heading="Keypoint task `{name}`, final metrics in percent (mean ± std over seeds):")

if __name__ == "__main__":
    sys.exit(cli(SPEC))
