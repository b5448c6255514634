"""Figure: on a VOC-like dataset (fewer instances and categories per image), does training
from scratch catch up (the paper's PASCAL VOC run: it does not)?

Each dataset variant (study.datasets with dataset: voc: main's model without its mask head,
both inits trained on the VOCdevkit's train sets). Left: VOC mAP at IoU 0.5 on its val sets
vs iterations, scratch and pretrained, every schedule's branch from the shared trunk, mean over
seeds with the 95% t-interval. Right: pretrained - scratch at each schedule's end, paired by
seed, in VOC mAP and in COCO-style bbox AP of the same runs, with a zero line. Hollow diamonds
(--reference with a "variants" entry whose "metric" is voc_mAP, as presets/voc.yaml's) are the
paper's numbers. --out-csv/--out-md: the final metrics table. Drawn by
rethink.figures.variant_metric.

    python -m rethink.figures.datasets --study study.json --metrics all_metrics.csv \
        --out-png datasets.png --out-pdf datasets.pdf [--reference paper.json] \
        [--out-csv datasets.csv --out-md datasets.md]
"""
from __future__ import annotations

import sys

from rethink.figures.variant_metric import Spec, cli

TABLE_COLUMNS = [("voc_mAP", "voc_mAP", "VOC mAP@0.5", ""), ("bbox_AP", "bbox_AP", "box AP", ""),
                 ("bbox_AP50", "bbox_AP50", "box AP50", ""), ("voc_tta_mAP", "voc_tta_mAP", "VOC mAP@0.5 (TTA)", "")]

SPEC = Spec(
    prog="python -m rethink.figures.datasets",
    description="VOC mAP vs iterations, scratch and pretrained, on each dataset variant.",
    key="dataset", value=None, what="dataset variant", where="study.datasets", task="voc", metric="mAP",
    ylabel="VOC mAP@0.5 (%)", title="VOC mAP@0.5 vs iterations",
    suptitle="Another dataset: scratch vs pre-trained (main's model, boxes only)",
    gaps=(("voc_mAP", "VOC mAP@0.5", "o", "-"), ("bbox_AP", "bbox AP (same runs)", "s", "--")),
    table_columns=TABLE_COLUMNS,
    table_heading="Dataset variant `{name}`, final metrics in percent (mean ± std over seeds):")

if __name__ == "__main__":
    sys.exit(cli(SPEC))
