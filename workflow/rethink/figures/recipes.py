"""Figure: with the enhanced baselines' recipe (train-time scale augmentation, longer
schedules, test-time augmentation), does training from scratch still reach pre-trained (the
paper's Fig. 5: it does)?

Each recipe variant (study.recipes: main's data and model, another training recipe for both
inits). Left: bbox AP with test-time augmentation (the recipe's `tta`; without it, plain bbox
AP) vs iterations, scratch and pretrained, mean over seeds with the 95% t-interval. Right:
pretrained - scratch at each schedule's end, paired by seed, with and without test-time
augmentation, box and mask. --out-csv/--out-md: the final metrics table, with and without
it. Drawn by rethink.figures.variant_metric.

    python -m rethink.figures.recipes --study study.json --metrics all_metrics.csv \
        --out-png recipes.png --out-pdf recipes.pdf [--reference paper.json] \
        [--out-csv recipes.csv --out-md recipes.md]
"""
from __future__ import annotations

import sys

from rethink.figures.variant_metric import Spec, cli

TABLE_COLUMNS = [("bbox_AP", "bbox_AP", "box AP", ""), ("bbox_tta_AP", "bbox_tta_AP", "box AP (TTA)", ""),
                 ("segm_AP", "mask_AP", "mask AP", ""), ("segm_tta_AP", "mask_tta_AP", "mask AP (TTA)", "")]


SPEC = Spec(
    prog="python -m rethink.figures.recipes",
    description="bbox AP (with test-time augmentation) vs iterations on each recipe variant.",
    key="kind", value="recipe", what="recipe variant", where="study.recipes", task="bbox_tta", metric="AP", fallback_task="bbox",
    ylabel="{task} AP (%)", title="{task} AP vs iterations (bbox_tta: test-time augmentation)",
    suptitle="Enhanced recipe: scratch vs pre-trained",
    gaps=(("bbox_tta_AP", "bbox AP, TTA", "o", "-"), ("bbox_AP", "bbox AP", "s", "--"),
          ("segm_tta_AP", "mask AP, TTA", "^", "-"), ("segm_AP", "mask AP", "v", "--")),
    table_columns=TABLE_COLUMNS,
    table_heading="Recipe variant `{name}`, final metrics in percent (mean ± std over seeds):")

if __name__ == "__main__":
    sys.exit(cli(SPEC))
