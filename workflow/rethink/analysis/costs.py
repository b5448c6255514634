"""Where the run's core-seconds went: wall time and peak memory per stage, from Snakemake's
benchmark files, and the overhead in them, from the training jobs' time per phase.

    python -m rethink.analysis.costs --out-csv costs.csv --out-md costs.md [--cores N] \
        [--phases results/benchmarks/train/...phases.json ...] results/benchmarks/<stage>/...tsv

The stage of a file is the folder right under `benchmarks/` in its path. Overhead is what is
not the science: process start-up, rebuilding models and reloading data, the evaluate jobs
(which adopt the training job's own evaluation), and cores left idle while the run went on.
Idle time is measured from the benchmark files themselves: a file is written when its job
ends (its mtime) and holds the job's duration, so the busy intervals of the jobs of the last
session (jobs with no gap of over a minute between them) give cores x span - busy seconds,
with cores given (--cores) or the most jobs that ran at once.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import pandas as pd

from rethink.core.atomic import write_text

# Phases of a training job (rethink.engine.train --phases-out): (key, what, overhead?)
PHASES = [
    ("startup_s", "start-up: Python, torch and imports, before main()", True),
    ("setup_s", "setup: train set index, model build, resume or backbone load", True),
    ("eval_setup_s", "setup: val set decode (once per job), eval model build", True),
    ("train_s", "training iterations", False),
    ("save_s", "checkpoint writes", False),
    ("eval_s", "evaluation of each checkpoint written (inference + COCOeval)", False),
]
SESSION_GAP_S = 60.0  # no job running for this long: an earlier run's files


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
        seconds = float(df["s"].iloc[0])
        end = os.stat(path).st_mtime
        rows.append({"stage": stage_of(path), "file": str(path), "seconds": seconds,
                     "max_rss_mb": pd.to_numeric(df["max_rss"], errors="coerce").iloc[0],
                     "start": end - seconds, "end": end})
    return pd.DataFrame(rows)


def read_phases(paths) -> pd.DataFrame:
    rows = []
    for path in paths:
        try:
            doc = json.loads(Path(path).read_text())
        except (OSError, ValueError) as e:
            raise SystemExit(f"error: cannot read phases file {path}: {e}")
        rows.append({"file": str(path), "iterations": int(doc.get("iterations") or 0),
                     **{k: float(doc.get(k) or 0.0) for k, _, _ in PHASES}})
    return pd.DataFrame(rows, columns=["file", "iterations", *[k for k, _, _ in PHASES]])


def per_stage(jobs: pd.DataFrame) -> pd.DataFrame:
    g = jobs.groupby("stage", sort=False)
    table = pd.DataFrame({
        "jobs": g.size(),
        "total_s": g["seconds"].sum().round(1),
        "median_s": g["seconds"].median().round(1),
        "peak_rss_mb": g["max_rss_mb"].max().round(0),
    }).reset_index()
    return table


def last_session(jobs: pd.DataFrame) -> pd.DataFrame:
    """The jobs of the latest run: back from the last job, until nothing ran for SESSION_GAP_S."""
    jobs = jobs.sort_values("start")
    reach, first = None, 0
    for i, (start, end) in enumerate(zip(jobs["start"], jobs["end"])):
        if reach is not None and start > reach + SESSION_GAP_S:
            first = i
        reach = end if reach is None else max(reach, end)
    return jobs.iloc[first:]


def max_concurrent(jobs: pd.DataFrame) -> int:
    """The most jobs that ran at once: the cores a local run used (one thread a job)."""
    events = sorted([(t, 1) for t in jobs["start"]] + [(t, -1) for t in jobs["end"]],
                    key=lambda e: (e[0], e[1]))
    running = most = 0
    for _, step in events:
        running += step
        most = max(most, running)
    return most


def breakdown(jobs: pd.DataFrame, phases: pd.DataFrame, cores: int | None) -> pd.DataFrame:
    """Core-seconds by what they were spent on, with each row's share and overhead flag."""
    rows = []
    train = jobs[jobs["stage"] == "train"]
    for key, what, overhead in PHASES:
        rows.append({"item": what, "seconds": phases[key].sum(), "overhead": overhead})
    if len(phases):
        rows.append({"item": "rest of the training jobs' wall (exit, saving the log)",
                     "seconds": max(0.0, train["seconds"].sum() - phases[[k for k, _, _ in PHASES]].sum().sum()),
                     "overhead": True})
    else:  # no phase files: the training jobs as one block
        rows.append({"item": "training jobs", "seconds": train["seconds"].sum(), "overhead": False})
    evaluate = jobs[jobs["stage"] == "evaluate"]
    rows.append({"item": "evaluate jobs (adopting the training job's evaluation, or re-scoring)",
                 "seconds": evaluate["seconds"].sum(), "overhead": True})
    for stage in jobs["stage"].unique():
        if stage not in ("train", "evaluate"):
            rows.append({"item": f"{stage} jobs", "seconds": jobs.loc[jobs["stage"] == stage, "seconds"].sum(),
                         "overhead": False})
    session = last_session(jobs)
    cores = cores or max_concurrent(session)
    if cores:
        span = session["end"].max() - session["start"].min()
        rows.append({"item": f"cores idle while the run went on ({cores} cores x {span:.0f} s span of its jobs "
                             f"- their busy time)",
                     "seconds": max(0.0, cores * span - session["seconds"].sum()), "overhead": True})
    out = pd.DataFrame(rows)
    out["share"] = out["seconds"] / out["seconds"].sum()
    out["seconds"] = out["seconds"].round(1)
    return out


def markdown(table: pd.DataFrame, spent: pd.DataFrame) -> str:
    head = "| stage | jobs | total wall (s) | median wall (s) | peak RSS (MB) |\n|---|---:|---:|---:|---:|\n"
    text = head + "".join(f"| {r.stage} | {r.jobs} | {r.total_s:.1f} | {r.median_s:.1f} | {r.peak_rss_mb:.0f} |\n"
                          for r in table.itertuples())
    overhead = spent.loc[spent["overhead"], "share"].sum()
    text += (f"\nWhere the core-seconds went (overhead: {100 * overhead:.1f}% of "
             f"{spent['seconds'].sum():.0f} s):\n\n| item | core-seconds | share | overhead |\n|---|---:|---:|---|\n")
    text += "".join(f"| {r.item} | {r.seconds:.1f} | {100 * r.share:.1f}% | {'yes' if r.overhead else ''} |\n"
                    for r in spent.itertuples())
    return text


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out-csv", required=True)
    p.add_argument("--out-md", required=True)
    p.add_argument("--cores", type=int, help="cores the run had (for the idle share); default: the "
                   "most jobs that ran at once")
    p.add_argument("--phases", nargs="*", default=[], help="training jobs' --phases-out files")
    p.add_argument("benchmarks", nargs="+")
    args = p.parse_args(argv)
    jobs = read_benchmarks(args.benchmarks)
    table = per_stage(jobs)
    spent = breakdown(jobs, read_phases(args.phases), args.cores)
    csv = pd.concat([table.assign(section="stage"),
                     spent.rename(columns={"item": "stage", "seconds": "total_s"}).assign(section="core-seconds")],
                    ignore_index=True)
    write_text(args.out_csv, csv.to_csv(index=False, lineterminator="\n"))
    write_text(args.out_md, markdown(table, spent))
    print(markdown(table, spent))


if __name__ == "__main__":
    sys.exit(main())
