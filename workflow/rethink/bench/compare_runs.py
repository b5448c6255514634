"""Compare two complete runs of a study checkpoint by checkpoint: are the trained weights
bitwise equal, and are the 12 + 12 COCO numbers and per-category AP identical?

    PYTHONPATH=workflow python -m rethink.bench.compare_runs OLD_FOLDER NEW_FOLDER

Each folder holds a run's results/ (e.g. a clone of an older commit and one of main, both
after `snakemake --cores all`). Exits 1 if anything differs or is missing.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from rethink.engine import checkpoint


def main(argv=None) -> int:
    old, new = (Path(a) / "results" for a in (argv if argv is not None else sys.argv[1:]))
    bad = 0
    ckpts = sorted((old / "detection").rglob("*.pt"))
    for p in ckpts:
        q = new / p.relative_to(old)
        a = checkpoint.load(p)["model"]
        b = checkpoint.load(q)["model"] if q.exists() else None
        if b is None or a.keys() != b.keys() or any(not a[k].equal(b[k]) for k in a):
            bad += 1
            print(f"weights differ or missing: {q}")
    metrics = sorted((old / "eval").rglob("metrics.json"))
    for p in metrics:
        q = new / p.relative_to(old)
        a = json.loads(p.read_text())
        b = json.loads(q.read_text()) if q.exists() else {}
        if any(a.get(k) != b.get(k) for k in ("bbox", "segm", "per_category", "num_detections")):
            bad += 1
            print(f"metrics differ or missing: {q}")
    print(f"{len(ckpts)} checkpoints, {len(metrics)} evaluations compared: {bad} differ")
    return 1 if bad or not ckpts else 0


if __name__ == "__main__":
    sys.exit(main())
