"""Collect per-checkpoint COCO metrics into tidy tables.

Inputs are the per-checkpoint metrics JSON files written by the evaluation
step (one per evaluated checkpoint) and the training ``plan.json``.

* :func:`load_metrics` turns metrics JSON files into a tidy frame with one row
  per ``(init, branch, iteration, task, metric)`` and a ``value`` column.
  pycocotools' ``-1`` ("no ground truth in that area range") becomes NaN.
* :func:`schedule_curves` expands that into one training curve per schedule:
  the shared "trunk" points up to the schedule's fork, then its own branch.
* :func:`final_metrics` picks the point at ``iteration == schedule.iters`` for
  every (init, schedule) pair, one wide row each.

Command line::

    python -m rethink.results --plan plan.json --out all_metrics.csv M1.json M2.json ...

writes the tidy CSV atomically (temp file + os.replace).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path
from typing import Iterable, Mapping

import pandas as pd

from rethink.atomic import write_text

TASKS = ("bbox", "segm")
METRICS = (
    "AP", "AP50", "AP75", "APs", "APm", "APl",
    "AR1", "AR10", "AR100", "ARs", "ARm", "ARl",
)
TRUNK = "trunk"
TIDY_COLUMNS = ["init", "branch", "iteration", "task", "metric", "value"]


class MetricsError(ValueError):
    """Raised for malformed metrics / plan files or missing checkpoints."""


# --------------------------------------------------------------------------
# plan
# --------------------------------------------------------------------------
def _is_number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def validate_plan(plan: Mapping, source: str = "plan") -> dict:
    """Check the keys the figures/tables need; return the plan as a dict."""
    if not isinstance(plan, Mapping):
        raise MetricsError(f"{source}: plan must be a JSON object")
    for key in ("batch_size", "inits", "schedules"):
        if key not in plan:
            raise MetricsError(f"{source}: plan is missing key {key!r}")
    if not _is_number(plan["batch_size"]) or plan["batch_size"] <= 0:
        raise MetricsError(f"{source}: plan.batch_size must be a positive number")
    inits = plan["inits"]
    if not isinstance(inits, list) or not inits or not all(isinstance(i, str) for i in inits):
        raise MetricsError(f"{source}: plan.inits must be a non-empty list of strings")
    scheds = plan["schedules"]
    if not isinstance(scheds, list) or not scheds:
        raise MetricsError(f"{source}: plan.schedules must be a non-empty list")
    names = set()
    for i, s in enumerate(scheds):
        where = f"{source}: plan.schedules[{i}]"
        if not isinstance(s, Mapping):
            raise MetricsError(f"{where} must be an object")
        for key in ("name", "iters", "fork"):
            if key not in s:
                raise MetricsError(f"{where} is missing key {key!r}")
        if not isinstance(s["name"], str) or not s["name"] or s["name"] == TRUNK:
            raise MetricsError(f"{where}: invalid schedule name {s['name']!r}")
        if s["name"] in names:
            raise MetricsError(f"{where}: duplicate schedule name {s['name']!r}")
        names.add(s["name"])
        for key in ("iters", "fork"):
            if not _is_number(s[key]) or s[key] < 0 or int(s[key]) != s[key]:
                raise MetricsError(f"{where}: {key} must be a non-negative integer")
        if s["fork"] > s["iters"]:
            raise MetricsError(f"{where}: fork ({s['fork']}) > iters ({s['iters']})")
    return dict(plan)


def read_json(path: str | os.PathLike, what: str):
    """Parse a JSON file; a missing, non-text or malformed one raises MetricsError naming it."""
    path = Path(path)
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except FileNotFoundError:
        raise MetricsError(f"{path}: {what} file not found") from None
    except json.JSONDecodeError as e:
        raise MetricsError(f"{path}: not valid JSON ({e})") from None
    except UnicodeDecodeError as e:
        raise MetricsError(f"{path}: not a text file ({e})") from None


def load_plan(path: str | os.PathLike) -> dict:
    return validate_plan(read_json(path, "plan"), str(path))


def ordered_schedules(plan: Mapping) -> list[dict]:
    """Schedules sorted by length (iters, then multiple, then name)."""
    return sorted(plan["schedules"],
                  key=lambda s: (s["iters"], s.get("multiple", 0), s["name"]))


def load_pretrain(path: str | os.PathLike | None) -> dict | None:
    """Read pretrain metrics JSON; None if *path* is None.

    Adds ``images_seen`` from ``iterations * batch_size`` when absent.
    """
    if path is None:
        return None
    data = read_json(path, "pretrain metrics")
    if not isinstance(data, Mapping):
        raise MetricsError(f"{path}: pretrain metrics must be a JSON object")
    data = dict(data)
    if "images_seen" not in data:
        if _is_number(data.get("iterations")) and _is_number(data.get("batch_size")):
            data["images_seen"] = data["iterations"] * data["batch_size"]
        else:
            raise MetricsError(
                f"{path}: pretrain metrics need 'images_seen' "
                "(or 'iterations' and 'batch_size')")
    if not _is_number(data["images_seen"]) or data["images_seen"] < 0:
        raise MetricsError(f"{path}: 'images_seen' must be a non-negative number")
    return data


def pretrain_offset(pretrain: Mapping | None, plan: Mapping) -> float:
    """Pre-training cost in detection iterations (images_seen / plan batch)."""
    if pretrain is None:
        return 0.0
    return float(pretrain["images_seen"]) / float(plan["batch_size"])


# --------------------------------------------------------------------------
# metrics JSON -> tidy frame
# --------------------------------------------------------------------------
def _parse_one(path: Path) -> list[dict]:
    data = read_json(path, "metrics")
    if not isinstance(data, Mapping):
        raise MetricsError(f"{path}: metrics JSON must be an object, got {type(data).__name__}")

    missing = [k for k in ("init", "branch", "iteration", *TASKS) if k not in data]
    if missing:
        raise MetricsError(f"{path}: metrics JSON is missing key(s) {', '.join(missing)}")
    init, branch, it = data["init"], data["branch"], data["iteration"]
    if not isinstance(init, str) or not init:
        raise MetricsError(f"{path}: 'init' must be a non-empty string, got {init!r}")
    if not isinstance(branch, str) or not branch:
        raise MetricsError(f"{path}: 'branch' must be a non-empty string, got {branch!r}")
    if not _is_number(it) or it < 0 or int(it) != it:
        raise MetricsError(f"{path}: 'iteration' must be a non-negative integer, got {it!r}")
    it = int(it)

    rows = []
    for task in TASKS:
        block = data[task]
        if not isinstance(block, Mapping):
            raise MetricsError(f"{path}: '{task}' must be an object of metrics")
        miss = [m for m in METRICS if m not in block]
        if miss:
            raise MetricsError(f"{path}: '{task}' is missing metric(s) {', '.join(miss)}")
        for m in METRICS:
            v = block[m]
            if not _is_number(v) or math.isnan(v):
                raise MetricsError(f"{path}: {task}.{m} must be a number, got {v!r}")
            if v == -1:
                v = float("nan")  # pycocotools: no ground truth in this range
            elif not (-1e-9 <= v <= 1 + 1e-9):
                raise MetricsError(f"{path}: {task}.{m} = {v!r} is outside [0, 1] (and not -1)")
            rows.append({"init": init, "branch": branch, "iteration": it,
                         "task": task, "metric": m, "value": float(v)})
    return rows


def load_metrics(paths: Iterable[str | os.PathLike]) -> pd.DataFrame:
    """Load metrics JSON files into a tidy frame (columns :data:`TIDY_COLUMNS`).

    Raises :class:`MetricsError` naming the file for unreadable, malformed or
    incomplete files, and naming both files if two describe the same
    (init, branch, iteration).
    """
    rows: list[dict] = []
    seen: dict[tuple, Path] = {}
    for p in paths:
        p = Path(p)
        r = _parse_one(p)
        key = (r[0]["init"], r[0]["branch"], r[0]["iteration"])
        if key in seen:
            raise MetricsError(
                f"{p}: duplicate checkpoint init={key[0]} branch={key[1]} "
                f"iteration={key[2]} (also in {seen[key]})")
        seen[key] = p
        rows.extend(r)
    df = pd.DataFrame(rows, columns=TIDY_COLUMNS)
    df["iteration"] = df["iteration"].astype("int64")
    df["value"] = df["value"].astype("float64")
    return df.sort_values(["init", "branch", "iteration", "task", "metric"],
                          kind="stable").reset_index(drop=True)


def read_metrics_csv(path: str | os.PathLike) -> pd.DataFrame:
    """Read a tidy CSV written by this module's CLI, checking its columns."""
    path = Path(path)
    try:
        df = pd.read_csv(path)
    except FileNotFoundError:
        raise MetricsError(f"{path}: metrics CSV not found") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise MetricsError(f"{path}: cannot parse metrics CSV ({e})") from None
    missing = [c for c in TIDY_COLUMNS if c not in df.columns]
    if missing:
        raise MetricsError(f"{path}: metrics CSV is missing column(s) {', '.join(missing)}")
    try:
        df["iteration"] = df["iteration"].astype("int64")
        df["value"] = pd.to_numeric(df["value"]).astype("float64")
    except (ValueError, TypeError) as e:
        raise MetricsError(f"{path}: bad iteration/value column ({e})") from None
    for c in ("init", "branch", "task", "metric"):
        df[c] = df[c].astype(str)
    return df


def check_against_plan(df: pd.DataFrame, plan: Mapping) -> None:
    """Raise if the frame mentions inits/branches the plan doesn't know."""
    inits = set(plan["inits"])
    bad = sorted(set(df["init"]) - inits)
    if bad:
        raise MetricsError(f"metrics mention init(s) {bad} not in plan.inits {sorted(inits)}")
    names = {s["name"] for s in plan["schedules"]} | {TRUNK}
    bad = sorted(set(df["branch"]) - names)
    if bad:
        raise MetricsError(
            f"metrics mention branch(es) {bad}; expected 'trunk' or a schedule "
            f"name {sorted(names - {TRUNK})}")
    for s in plan["schedules"]:
        sub = df[df["branch"] == s["name"]]
        out = sub[(sub["iteration"] <= s["fork"]) | (sub["iteration"] > s["iters"])]
        if len(out):
            its = sorted(set(out["iteration"]))
            raise MetricsError(
                f"branch {s['name']!r} has iteration(s) {its} outside its range "
                f"({s['fork']}, {s['iters']}]")


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
    """
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
    cols = ["init", "schedule", "multiple", "iteration"] + [
        f"{t}_{m}" for t in TASKS for m in METRICS]
    return pd.DataFrame(rows).reindex(columns=cols)


# --------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m rethink.results",
        description="Collect per-checkpoint metrics JSON files into a tidy CSV "
                    "(columns: " + ", ".join(TIDY_COLUMNS) + ").")
    ap.add_argument("--plan", required=True, help="plan.json (used to validate init/branch names)")
    ap.add_argument("--out", required=True, help="output tidy CSV")
    ap.add_argument("metrics", nargs="+", help="per-checkpoint metrics JSON files")
    args = ap.parse_args(argv)
    try:
        plan = load_plan(args.plan)
        df = load_metrics(args.metrics)
        check_against_plan(df, plan)
        write_text(args.out, df.to_csv(index=False, lineterminator="\n"))
    except MetricsError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {args.out}: {len(df)} rows from {len(args.metrics)} file(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
