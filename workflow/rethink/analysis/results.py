"""Collect per-checkpoint COCO metrics into tidy tables.

Inputs are the per-checkpoint metrics JSON files written by the evaluation
step (one per evaluated checkpoint) and the study's ``study.json`` (one plan
per variant, plus the seeds and inits every variant is trained for).

* :func:`load_study` reads and checks ``study.json``; each variant is a plan
  that :func:`validate_plan` accepts.
* :func:`load_metrics` turns metrics JSON files into a tidy frame with one row
  per ``(variant, seed, init, branch, iteration, task, metric)`` and a
  ``value`` column. A file without ``variant``/``seed`` is variant "main",
  seed 0 (files written before the study had variants).
  pycocotools' ``-1`` ("no ground truth in that area range") becomes NaN.
* :func:`schedule_curves` expands one variant's rows into one training curve
  per schedule: the shared "trunk" points up to the schedule's fork, then its
  own branch.
* :func:`final_metrics` picks the point at ``iteration == schedule.iters`` for
  every (init, schedule) pair of one (variant, seed) slice, one wide row each;
  :func:`variant_finals` does that for every seed of a variant.
* :func:`load_reference` reads the paper's numbers (figure reference markers).

Command line::

    python -m rethink.analysis.results --study study.json --out all_metrics.csv M1.json M2.json ...

validates every row against its variant's plan and writes the tidy CSV
atomically (temp file + os.replace).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path
from typing import Iterable, Mapping

import pandas as pd

from rethink.analysis.inputs import (
    REQUIRED_TASKS,
    TASK_METRICS,
    MetricsError,
    is_int,
    is_number,
    load_study,
    ordered_schedules,
    read_json,
)
from rethink.core.atomic import write_text
from rethink.core.config import MAIN
from rethink.core.schedule import TRUNK

TIDY_COLUMNS = ["variant", "seed", "init", "branch", "iteration", "task", "metric", "value"]
KEY_COLUMNS = ["variant", "seed", "init", "branch", "iteration"]
DEFAULT_VARIANT = MAIN  # for metrics files written before variants existed
DEFAULT_SEED = 0
STR_COLUMNS = ("variant", "init", "branch", "task", "metric")


# --------------------------------------------------------------------------
# metrics JSON -> tidy frame
# --------------------------------------------------------------------------
def _parse_one(path: Path) -> list[dict]:
    data = read_json(path, "metrics")
    if not isinstance(data, Mapping):
        raise MetricsError(f"{path}: metrics JSON must be an object, got {type(data).__name__}")

    missing = [k for k in ("init", "branch", "iteration", *REQUIRED_TASKS) if k not in data]
    if missing:
        raise MetricsError(f"{path}: metrics JSON is missing key(s) {', '.join(missing)}")
    init, branch, it = data["init"], data["branch"], data["iteration"]
    if not isinstance(init, str) or not init:
        raise MetricsError(f"{path}: 'init' must be a non-empty string, got {init!r}")
    if not isinstance(branch, str) or not branch:
        raise MetricsError(f"{path}: 'branch' must be a non-empty string, got {branch!r}")
    if not is_number(it) or it < 0 or int(it) != it:
        raise MetricsError(f"{path}: 'iteration' must be a non-negative integer, got {it!r}")
    it = int(it)
    variant = data.get("variant", DEFAULT_VARIANT)
    seed = data.get("seed", DEFAULT_SEED)
    if not isinstance(variant, str) or not variant:
        raise MetricsError(f"{path}: 'variant' must be a non-empty string, got {variant!r}")
    if not is_int(seed) or seed < 0:
        raise MetricsError(f"{path}: 'seed' must be a non-negative integer, got {seed!r}")
    seed = int(seed)

    rows = []
    for task in [t for t in TASK_METRICS if t in data]:
        block = data[task]
        if not isinstance(block, Mapping):
            raise MetricsError(f"{path}: '{task}' must be an object of metrics")
        metrics = TASK_METRICS[task]
        miss = [m for m in metrics if m not in block]
        if miss:
            raise MetricsError(f"{path}: '{task}' is missing metric(s) {', '.join(miss)}")
        for m in metrics:
            v = block[m]
            if not is_number(v) or math.isnan(v):
                raise MetricsError(f"{path}: {task}.{m} must be a number, got {v!r}")
            if v == -1:
                v = float("nan")  # pycocotools: no ground truth in this range
            elif not (-1e-9 <= v <= 1 + 1e-9):
                raise MetricsError(f"{path}: {task}.{m} = {v!r} is outside [0, 1] (and not -1)")
            rows.append({"variant": variant, "seed": seed,
                         "init": init, "branch": branch, "iteration": it,
                         "task": task, "metric": m, "value": float(v)})
    return rows


def _check_key(path: Path, key: dict, study: Mapping) -> None:
    """One file's (variant, seed, init, branch, iteration) against the study."""
    variants = study["variants"]
    v = key["variant"]
    if v not in variants:
        raise MetricsError(f"{path}: variant {v!r} is not in study.variants {list(variants)}")
    if key["seed"] not in study["seeds"]:
        raise MetricsError(f"{path}: seed {key['seed']} is not in study.seeds {study['seeds']}")
    check_against_plan(pd.DataFrame([key]), variants[v], f"{path}: variant {v!r}")


def load_metrics(paths: Iterable[str | os.PathLike], study: Mapping | None = None) -> pd.DataFrame:
    """Load metrics JSON files into a tidy frame (columns :data:`TIDY_COLUMNS`).

    Raises :class:`MetricsError` naming the file for unreadable, malformed or
    incomplete files, and naming both files if two describe the same
    (variant, seed, init, branch, iteration). With *study*, each file's
    variant, seed, init, branch and iteration must fit that variant's plan.
    """
    rows: list[dict] = []
    seen: dict[tuple, Path] = {}
    for p in paths:
        p = Path(p)
        r = _parse_one(p)
        if study is not None:
            _check_key(p, {k: r[0][k] for k in KEY_COLUMNS}, study)
        key = tuple(r[0][k] for k in KEY_COLUMNS)
        if key in seen:
            desc = " ".join(f"{k}={v}" for k, v in zip(KEY_COLUMNS, key))
            raise MetricsError(f"{p}: duplicate checkpoint {desc} (also in {seen[key]})")
        seen[key] = p
        rows.extend(r)
    df = pd.DataFrame(rows, columns=TIDY_COLUMNS)
    df["seed"] = df["seed"].astype("int64")
    df["iteration"] = df["iteration"].astype("int64")
    df["value"] = df["value"].astype("float64")
    return df.sort_values(["variant", "seed", "init", "branch", "iteration", "task", "metric"],
                          kind="stable").reset_index(drop=True)


def read_metrics_csv(path: str | os.PathLike) -> pd.DataFrame:
    """Read a tidy CSV written by this module's CLI, checking its columns."""
    path = Path(path)
    try:
        df = pd.read_csv(path, dtype={c: str for c in STR_COLUMNS}, keep_default_na=False,
                         na_values={"value": ["", "NaN", "nan"]})
    except FileNotFoundError:
        raise MetricsError(f"{path}: metrics CSV not found") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise MetricsError(f"{path}: cannot parse metrics CSV ({e})") from None
    missing = [c for c in TIDY_COLUMNS if c not in df.columns]
    if missing:
        raise MetricsError(f"{path}: metrics CSV is missing column(s) {', '.join(missing)}")
    for c in ("seed", "iteration"):
        try:
            num = pd.to_numeric(df[c], errors="raise")
        except (ValueError, TypeError) as e:
            raise MetricsError(f"{path}: column {c!r} must hold integers ({e})") from None
        if num.isna().any() or (num < 0).any() or (num != num.round()).any():
            raise MetricsError(f"{path}: column {c!r} must hold non-negative integers")
        df[c] = num.astype("int64")
    try:
        df["value"] = pd.to_numeric(df["value"]).astype("float64")
    except (ValueError, TypeError) as e:
        raise MetricsError(f"{path}: column 'value' must be numeric ({e})") from None
    for c in STR_COLUMNS:
        df[c] = df[c].astype(str)
        if (df[c] == "").any():
            line = int((df[c] == "").to_numpy().argmax()) + 2
            raise MetricsError(f"{path}: empty {c!r} on line {line}")
    return df[TIDY_COLUMNS]


def check_against_plan(df: pd.DataFrame, plan: Mapping, where: str = "metrics") -> None:
    """Raise if the frame mentions inits/branches the plan doesn't know.

    *where* starts each message (e.g. the CSV's path and the variant).
    """
    inits = set(plan["inits"])
    bad = sorted(set(df["init"]) - inits)
    if bad:
        raise MetricsError(f"{where}: init(s) {bad} not in plan.inits {sorted(inits)}")
    names = {s["name"] for s in plan["schedules"]} | {TRUNK}
    bad = sorted(set(df["branch"]) - names)
    if bad:
        raise MetricsError(
            f"{where}: branch(es) {bad}; expected 'trunk' or a schedule "
            f"name {sorted(names - {TRUNK})}")
    for s in plan["schedules"]:
        sub = df[df["branch"] == s["name"]]
        out = sub[(sub["iteration"] <= s["fork"]) | (sub["iteration"] > s["iters"])]
        if len(out):
            its = sorted(set(out["iteration"]))
            raise MetricsError(
                f"{where}: branch {s['name']!r} has iteration(s) {its} outside its range "
                f"({s['fork']}, {s['iters']}]")


def check_against_study(df: pd.DataFrame, study: Mapping, source: str = "metrics") -> None:
    """Raise if a row's variant or seed is not in the study, or if a variant's rows
    don't fit that variant's plan (unknown init/branch, iteration out of range)."""
    variants = study["variants"]
    bad = sorted(set(df["variant"]) - set(variants))
    if bad:
        raise MetricsError(f"{source}: unknown variant(s) {bad}; study.variants has "
                           f"{list(variants)}")
    seeds = set(study["seeds"])
    bad = sorted(int(s) for s in set(df["seed"]) - seeds)
    if bad:
        raise MetricsError(f"{source}: seed(s) {bad} not in study.seeds {sorted(seeds)}")
    for name, sub in df.groupby("variant", sort=False):
        check_against_plan(sub, variants[name], f"{source}: variant {name!r}")


def variant_frame(df: pd.DataFrame, study: Mapping, variant: str, task: str | None = None,
                  metric: str | None = None, source: str = "metrics") -> pd.DataFrame:
    """The rows of one variant (optionally one task/metric); raises if there are none."""
    if variant not in study["variants"]:
        raise MetricsError(f"{source}: variant {variant!r} is not in study.variants "
                           f"{list(study['variants'])}")
    sub = df[df["variant"] == variant]
    if task is not None:
        sub = sub[sub["task"] == task]
    if metric is not None:
        sub = sub[sub["metric"] == metric]
    if sub.empty:
        what = " ".join(x for x in (task, metric) if x)
        raise MetricsError(f"{source}: no {what + ' ' if what else ''}rows for variant "
                           f"{variant!r}")
    return sub.reset_index(drop=True)


# --------------------------------------------------------------------------
# curves and finals
# --------------------------------------------------------------------------
def schedule_curves(df: pd.DataFrame, plan: Mapping) -> pd.DataFrame:
    """One training curve per schedule, stacked, with a ``schedule`` column.

    Schedule S's curve is the trunk rows with ``iteration <= S.fork`` followed
    by the rows of branch ``S.name`` with ``S.fork < iteration <= S.iters``.
    Trunk rows therefore appear once per schedule whose fork >= iteration.
    """
    parts = []
    for s in ordered_schedules(plan):
        trunk = df[(df["branch"] == TRUNK) & (df["iteration"] <= s["fork"])]
        own = df[(df["branch"] == s["name"]) & (df["iteration"] > s["fork"])
                 & (df["iteration"] <= s["iters"])]
        part = pd.concat([trunk, own], ignore_index=True)
        part["schedule"] = s["name"]
        parts.append(part)
    out = pd.concat(parts, ignore_index=True)
    if out.empty:
        out = out.reindex(columns=list(df.columns) + ["schedule"])
    return out.sort_values(["schedule", "init", "iteration", "task", "metric"],
                           kind="stable").reset_index(drop=True)


def final_metrics(df: pd.DataFrame, plan: Mapping) -> pd.DataFrame:
    """One row per (init, schedule): metrics at ``iteration == S.iters``.

    Columns: ``init, schedule, multiple, iteration`` and one ``<task>_<metric>``
    column per metric (e.g. ``bbox_AP``, ``segm_AP50``). Rows follow the plan's
    init order within schedules sorted by length. Raises :class:`MetricsError`
    naming the init/schedule whose final checkpoint is missing.

    *df* must be one (variant, seed) slice: rows of several seeds would overwrite
    each other here (use :func:`variant_finals`).
    """
    for key in ("variant", "seed"):
        if key in df.columns and df[key].nunique() > 1:
            raise MetricsError(f"final_metrics needs one (variant, seed) slice; got "
                               f"{key}s {sorted(df[key].unique().tolist())}")
    curves = schedule_curves(df, plan)
    rows = []
    missing = []
    for s in ordered_schedules(plan):
        for init in plan["inits"]:
            sub = curves[(curves["schedule"] == s["name"]) & (curves["init"] == init)
                         & (curves["iteration"] == s["iters"])]
            if sub.empty:
                branch = TRUNK if s["fork"] == s["iters"] else s["name"]
                missing.append(f"init={init} schedule={s['name']} "
                               f"(branch {branch!r}, iteration {s['iters']})")
                continue
            row = {"init": init, "schedule": s["name"],
                   "multiple": s.get("multiple", float("nan")),
                   "iteration": int(s["iters"])}
            for t, m, v in sub[["task", "metric", "value"]].itertuples(index=False):
                row[f"{t}_{m}"] = v
            rows.append(row)
    if missing:
        raise MetricsError("missing final checkpoint metrics for: " + "; ".join(missing))
    tasks = [t for t in TASK_METRICS if (df["task"] == t).any()]
    cols = ["init", "schedule", "multiple", "iteration"] + [
        f"{t}_{m}" for t in tasks for m in TASK_METRICS[t]]
    return pd.DataFrame(rows).reindex(columns=cols)


def variant_finals(df: pd.DataFrame, study: Mapping, variant: str,
                   source: str = "metrics") -> pd.DataFrame:
    """:func:`final_metrics` of every seed of *variant*, stacked with a ``seed`` column.

    Every seed in study.seeds must have every final checkpoint; the error names
    the variant, seed, init and schedule of each missing one.
    """
    plan = study["variants"][variant]
    parts, missing = [], []
    for seed in study["seeds"]:
        sub = df[(df["variant"] == variant) & (df["seed"] == seed)]
        try:
            fin = final_metrics(sub, plan)
        except MetricsError as e:
            missing.append(f"seed={seed}: {e}")
            continue
        fin.insert(0, "seed", int(seed))
        parts.append(fin)
    if missing:
        raise MetricsError(f"{source}: variant {variant!r}: " + " | ".join(missing))
    return pd.concat(parts, ignore_index=True)


# --------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m rethink.analysis.results",
        description="Collect per-checkpoint metrics JSON files into a tidy CSV "
                    "(columns: " + ", ".join(TIDY_COLUMNS) + ").")
    ap.add_argument("--study", required=True,
                    help="study.json (validates each row's variant, seed, init, branch and "
                         "iteration against that variant's plan)")
    ap.add_argument("--out", required=True, help="output tidy CSV")
    ap.add_argument("metrics", nargs="+", help="per-checkpoint metrics JSON files")
    args = ap.parse_args(argv)
    try:
        study = load_study(args.study)
        df = load_metrics(args.metrics, study)
        write_text(args.out, df.to_csv(index=False, lineterminator="\n"))
    except MetricsError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {args.out}: {len(df)} rows from {len(args.metrics)} file(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
