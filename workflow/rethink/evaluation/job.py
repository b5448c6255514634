"""The evaluate rule's entry point: adopt the training job's own evaluation of a checkpoint,
or evaluate it.

A training job evaluates every checkpoint it writes, in its own process (the model and the
decoded val set are already in memory), and leaves the result in `<eval dir>/from_training/`,
stamped with the settings it was scored with and the checkpoint file it scored. The evaluate
job of that checkpoint then only checks the stamp against its own settings and moves the
files into place: no torch import, no model, no images. When the stamp differs (an
evaluation-only key such as `evaluate.batch_size`, `evaluate.backend` or
`model.score_thresh` was edited since, or the checkpoint was rewritten), it runs
`rethink.evaluation.evaluate` on the checkpoint as before. So evaluation settings stay rerun triggers
of evaluation alone, never of training.

    python -m rethink.evaluation.job ARGS OF rethink.evaluation.evaluate

Torch-free on the adopting path on purpose: it runs once per checkpoint.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from rethink.core.atomic import run_job
from rethink.core.names import skipped_image_ids
from rethink.evaluation.outputs import FROM_TRAINING, adopt, output_paths, parser, settings


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser(__doc__.split("\n\n")[0]).parse_args(argv)
    outputs = output_paths(args)
    ckpt = args.checkpoint
    if os.path.exists(ckpt):
        from_dir = Path(args.out_metrics).parent / FROM_TRAINING
        try:
            wanted = settings(json.loads(args.model), args.batch_size, args.backend, args.device,
                              skipped_image_ids(args.layout_stats, "val"), args.val_images)
        except (ValueError, RuntimeError) as e:  # rethink.evaluation.evaluate reports bad arguments
            why = str(e)
        else:
            why = adopt(from_dir, outputs, wanted, ckpt)
        if why is None:
            print(f"adopted the training job's evaluation of {ckpt} (same settings)", flush=True)
            return 0
        print(f"evaluating {ckpt} here: {why}", flush=True)
    from rethink.evaluation import evaluate  # torch: only when it must evaluate
    return evaluate.main(argv)


if __name__ == "__main__":
    run_job(main)
