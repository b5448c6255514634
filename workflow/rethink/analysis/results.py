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
import json
import math
import os
import sys
from pathlib import Path
from typing import Iterable, Mapping

import pandas as pd

from rethink.core.atomic import write_text
from rethink.core.config import MAIN
from rethink.core.kinds import KINDS
from rethink.core.schedule import TRUNK

TASKS = ("bbox", "segm")  # every checkpoint's (segm: all but a box-only model's, study.datasets)
REQUIRED_TASKS = ("bbox",)
METRICS = (
    "AP", "AP50", "AP75", "APs", "APm", "APl",
    "AR1", "AR10", "AR100", "ARs", "ARm", "ARl",
)
# a keypoint model's checkpoints add COCOeval's 10 keypoint numbers (study.tasks)
KEYPOINT_METRICS = ("AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl")
# tasks in a metrics file, in column order: a VOC-converted val set adds VOC's mAP@0.5 (voc),
# test-time augmentation the same numbers again (bbox_tta, segm_tta, voc_tta). Metric names
# hold no "_", so a column <task>_<metric> splits at its last one.
TASK_METRICS = {"bbox": METRICS, "segm": METRICS, "keypoints": KEYPOINT_METRICS, "voc": ("mAP",),
                "bbox_tta": METRICS, "segm_tta": METRICS, "voc_tta": ("mAP",)}
INITS = ("scratch", "pretrained")
TIDY_COLUMNS = ["variant", "seed", "init", "branch", "iteration", "task", "metric", "value"]
KEY_COLUMNS = ["variant", "seed", "init", "branch", "iteration"]
DEFAULT_VARIANT = MAIN  # for metrics files written before variants existed
DEFAULT_SEED = 0
STR_COLUMNS = ("variant", "init", "branch", "task", "metric")


class MetricsError(ValueError):
    """Raised for malformed metrics / plan / study files or missing checkpoints."""


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


def _is_int(x) -> bool:
    return _is_number(x) and int(x) == x


def validate_study(study: Mapping, source: str = "study") -> dict:
    """Check study.json's shape; every variant must itself be a valid plan.

    Returns a dict whose ``variants`` keep the file's (display) order.
    """
    if not isinstance(study, Mapping):
        raise MetricsError(f"{source}: study must be a JSON object")
    for key in ("inits", "seeds", "main", "variants"):
        if key not in study:
            raise MetricsError(f"{source}: study is missing key {key!r}")
    inits = study["inits"]
    if not isinstance(inits, list) or not inits or not all(isinstance(i, str) and i for i in inits):
        raise MetricsError(f"{source}: study.inits must be a non-empty list of strings")
    seeds = study["seeds"]
    if (not isinstance(seeds, list) or not seeds
            or not all(_is_int(s) and s >= 0 for s in seeds)):
        raise MetricsError(f"{source}: study.seeds must be a non-empty list of "
                           f"non-negative integers, got {seeds!r}")
    if len(set(seeds)) != len(seeds):
        raise MetricsError(f"{source}: study.seeds has duplicates: {seeds!r}")
    variants = study["variants"]
    if not isinstance(variants, Mapping) or not variants:
        raise MetricsError(f"{source}: study.variants must be a non-empty object")
    out_variants = {}
    for name, plan in variants.items():
        where = f"{source}: study.variants[{name!r}]"
        if not name:
            raise MetricsError(f"{source}: study.variants has an empty variant name")
        plan = validate_plan(plan, where)
        for key in ("kind", "norm"):
            if key not in plan:
                raise MetricsError(f"{where} is missing key {key!r}")
        if plan["kind"] not in KINDS:
            raise MetricsError(f"{where}.kind must be one of {list(KINDS)}, "
                               f"got {plan['kind']!r}")
        if not isinstance(plan["norm"], str) or not plan["norm"]:
            raise MetricsError(f"{where}.norm must be a non-empty string")
        bad = [i for i in plan["inits"] if i not in inits]
        if bad:
            raise MetricsError(f"{where}.inits has {bad} not in study.inits {inits}")
        out_variants[name] = plan
    main = study["main"]
    if not isinstance(main, str) or main not in out_variants:
        raise MetricsError(f"{source}: study.main = {main!r} is not a key of study.variants "
                           f"{list(out_variants)}")
    pre = study.get("pretrain")
    if pre is not None:
        if not isinstance(pre, Mapping):
            raise MetricsError(f"{source}: study.pretrain must be an object or null")
        if not _is_number(pre.get("images_seen")) or pre["images_seen"] < 0:
            raise MetricsError(f"{source}: study.pretrain.images_seen must be a "
                               "non-negative number")
    out = dict(study)
    out["seeds"] = [int(s) for s in seeds]
    out["variants"] = out_variants
    return out


def load_study(path: str | os.PathLike) -> dict:
    """Read and validate study.json; errors name the file and the key."""
    return validate_study(read_json(path, "study"), str(path))


def load_reference(path: str | os.PathLike | None) -> dict | None:
    """The paper's numbers for reference markers (AP in percent); None if *path* is None.

    Shape: ``{"metric": "bbox_AP", "schedules": {init: {schedule: AP}},
    "regimes": {regime: {init: AP}}, "variants": {variant: {init: {schedule: AP}}}}``; each
    block is optional ("variants": a model variant's own schedules, e.g. the paper's R101).
    """
    if path is None:
        return None
    ref = read_json(path, "reference")
    if not isinstance(ref, Mapping):
        raise MetricsError(f"{path}: reference must be a JSON object")
    metric = ref.get("metric", "bbox_AP")
    task, m = _split_metric(metric, path, "reference.metric")
    out = {"metric": metric, "task": task, "schedules": {}, "regimes": {}, "variants": {}}
    for key in ("schedules", "regimes"):
        block = ref.get(key, {})
        if block is None:
            block = {}
        if not isinstance(block, Mapping):
            raise MetricsError(f"{path}: reference.{key} must be an object")
        for outer, inner in block.items():
            if not isinstance(inner, Mapping):
                raise MetricsError(f"{path}: reference.{key}[{outer!r}] must be an object")
            for k, v in inner.items():
                if not _is_number(v) or not 0 <= v <= 100:
                    raise MetricsError(f"{path}: reference.{key}[{outer!r}][{k!r}] must be "
                                       f"an AP in percent (0-100), got {v!r}")
            out[key][str(outer)] = {str(k): float(v) for k, v in inner.items()}
    variants = ref.get("variants") or {}
    if not isinstance(variants, Mapping):
        raise MetricsError(f"{path}: reference.variants must be an object")
    for name, inits in variants.items():
        if isinstance(inits, Mapping) and "metric" in inits:  # a variant's own metric (keypoints_AP)
            inits = dict(inits)
            _split_metric(inits["metric"], path, f"reference.variants[{name!r}].metric")
            out.setdefault("variant_metrics", {})[str(name)] = inits.pop("metric")
        for init, scheds in (inits.items() if isinstance(inits, Mapping) else [(None, None)]):
            if init not in INITS or not isinstance(scheds, Mapping):
                raise MetricsError(f"{path}: reference.variants[{name!r}] must map each of "
                                   f"{list(INITS)} to {{schedule: AP}}")
            for k, v in scheds.items():
                if not _is_number(v) or not 0 <= v <= 100:
                    raise MetricsError(f"{path}: reference.variants[{name!r}][{init!r}][{k!r}] "
                                       f"must be an AP in percent (0-100), got {v!r}")
            out["variants"].setdefault(str(name), {})[init] = {str(k): float(v) for k, v in scheds.items()}
    return out


def _split_metric(metric, path, key) -> tuple[str, str]:
    task, _, m = str(metric).rpartition("_")
    if task not in TASK_METRICS or m not in TASK_METRICS[task]:
        raise MetricsError(f"{path}: {key} {metric!r} is not <task>_<metric> "
                           f"with task in {list(TASK_METRICS)}, e.g. 'bbox_AP'")
    return task, m


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

    missing = [k for k in ("init", "branch", "iteration", *REQUIRED_TASKS) if k not in data]
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
    variant = data.get("variant", DEFAULT_VARIANT)
    seed = data.get("seed", DEFAULT_SEED)
    if not isinstance(variant, str) or not variant:
        raise MetricsError(f"{path}: 'variant' must be a non-empty string, got {variant!r}")
    if not _is_int(seed) or seed < 0:
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
            if not _is_number(v) or math.isnan(v):
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
