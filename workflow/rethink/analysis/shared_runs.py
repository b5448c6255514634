"""A pretraining variant's scratch cells are its base's (main's, or a model variant's):
scratch reads no backbone, and the variant changes nothing else, so its scratch runs would be
the base's bit for bit. Instead of training them again, each scratch cell's metrics are the base's, recorded under the variant's
name with where they came from; the figures and claims then pair the variant's pretrained
runs with these by seed, as with any variant.

    python -m rethink.analysis.shared_runs --metrics eval/main/seed0/scratch/trunk/iter_000020/metrics.json \
        --variant pre6ep --out eval/pre6ep/seed0/scratch/trunk/iter_000020/metrics.json
"""
from __future__ import annotations

import argparse
import json
import sys

from rethink.core.atomic import write_json


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--metrics", required=True, help="the base variant's metrics.json of the cell")
    p.add_argument("--variant", required=True, help="the variant that shares it")
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    try:
        with open(args.metrics, encoding="utf-8") as fh:
            record = json.load(fh)
    except (OSError, ValueError) as e:
        raise SystemExit(f"error: cannot read {args.metrics}: {e}")
    if not isinstance(record, dict) or record.get("init") != "scratch":
        raise SystemExit(f"error: {args.metrics}: not the metrics of a scratch checkpoint "
                         f"(init {record.get('init') if isinstance(record, dict) else None!r})")
    shared_from = record.get("variant")
    write_json(args.out, {**record, "variant": args.variant, "shared_from": shared_from})
    print(f"{args.out}: {shared_from}'s scratch run, shared")
    return 0


if __name__ == "__main__":
    sys.exit(main())
