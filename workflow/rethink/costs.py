"""Wall time and peak memory per stage, from Snakemake's benchmark files.

    python -m rethink.costs --out-csv costs.csv --out-md costs.md results/benchmarks/<stage>/...tsv

The stage of a file is the folder right under `benchmarks/` in its path.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from rethink.atomic import write_text


def stage_of(path: Path) -> str:
    parts = Path(path).parts
    if "benchmarks" not in parts or parts.index("benchmarks") + 1 >= len(parts) - 1:
        raise ValueError(f"{path}: expected .../benchmarks/<stage>/... in the path")
    return parts[parts.index("benchmarks") + 1]


def read_benchmarks(paths) -> pd.DataFrame:
    rows = []
    for path in paths:
        try:
            df = pd.read_csv(path, sep="\t")
        except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as e:
            raise SystemExit(f"error: cannot read benchmark file {path}: {e}")
        missing = {"s", "max_rss"} - set(df.columns)
        if missing or df.empty:
            raise SystemExit(f"error: benchmark file {path} lacks {sorted(missing) or 'rows'}")
        rows.append({"stage": stage_of(path), "file": str(path), "seconds": float(df["s"].iloc[0]),
                     "max_rss_mb": pd.to_numeric(df["max_rss"], errors="coerce").iloc[0]})
    return pd.DataFrame(rows)


def per_stage(jobs: pd.DataFrame) -> pd.DataFrame:
    g = jobs.groupby("stage", sort=False)
    table = pd.DataFrame({
        "jobs": g.size(),
        "total_s": g["seconds"].sum().round(1),
        "median_s": g["seconds"].median().round(1),
        "peak_rss_mb": g["max_rss_mb"].max().round(0),
    }).reset_index()
    return table


def markdown(table: pd.DataFrame) -> str:
    head = "| stage | jobs | total wall (s) | median wall (s) | peak RSS (MB) |\n|---|---:|---:|---:|---:|\n"
    return head + "".join(f"| {r.stage} | {r.jobs} | {r.total_s:.1f} | {r.median_s:.1f} | {r.peak_rss_mb:.0f} |\n"
                          for r in table.itertuples())


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out-csv", required=True)
    p.add_argument("--out-md", required=True)
    p.add_argument("benchmarks", nargs="+")
    args = p.parse_args(argv)
    table = per_stage(read_benchmarks(args.benchmarks))
    write_text(args.out_csv, table.to_csv(index=False, lineterminator="\n"))
    write_text(args.out_md, markdown(table))
    print(markdown(table))


if __name__ == "__main__":
    sys.exit(main())
