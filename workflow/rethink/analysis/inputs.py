"""What the analysis reads besides the metrics files: the metric names, study.json (every
variant's plan: schedules, forks, checkpoints, inits), the paper's reference numbers and
pre-training's metrics, each checked with an error that names the file and key (MetricsError)."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Mapping

from rethink.core.kinds import KINDS, PRETRAIN_METHODS
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


class MetricsError(ValueError):
    """Raised for malformed metrics / plan / study files or missing checkpoints."""


# --------------------------------------------------------------------------
# plan
# --------------------------------------------------------------------------
def is_number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def validate_plan(plan: Mapping, source: str = "plan") -> dict:
    """Check the keys the figures/tables need; return the plan as a dict."""
    if not isinstance(plan, Mapping):
        raise MetricsError(f"{source}: plan must be a JSON object")
    for key in ("batch_size", "inits", "schedules"):
        if key not in plan:
            raise MetricsError(f"{source}: plan is missing key {key!r}")
    if not is_number(plan["batch_size"]) or plan["batch_size"] <= 0:
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
            if not is_number(s[key]) or s[key] < 0 or int(s[key]) != s[key]:
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


def is_int(x) -> bool:
    return is_number(x) and int(x) == x


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
            or not all(is_int(s) and s >= 0 for s in seeds)):
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
        if not is_number(pre.get("images_seen")) or pre["images_seen"] < 0:
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
    task, m = split_metric(metric, path, "reference.metric")
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
                if not is_number(v) or not 0 <= v <= 100:
                    raise MetricsError(f"{path}: reference.{key}[{outer!r}][{k!r}] must be "
                                       f"an AP in percent (0-100), got {v!r}")
            out[key][str(outer)] = {str(k): float(v) for k, v in inner.items()}
    variants = ref.get("variants") or {}
    if not isinstance(variants, Mapping):
        raise MetricsError(f"{path}: reference.variants must be an object")
    for name, inits in variants.items():
        if isinstance(inits, Mapping) and "metric" in inits:  # a variant's own metric (keypoints_AP)
            inits = dict(inits)
            split_metric(inits["metric"], path, f"reference.variants[{name!r}].metric")
            out.setdefault("variant_metrics", {})[str(name)] = inits.pop("metric")
        for init, scheds in (inits.items() if isinstance(inits, Mapping) else [(None, None)]):
            if init not in INITS or not isinstance(scheds, Mapping):
                raise MetricsError(f"{path}: reference.variants[{name!r}] must map each of "
                                   f"{list(INITS)} to {{schedule: AP}}")
            for k, v in scheds.items():
                if not is_number(v) or not 0 <= v <= 100:
                    raise MetricsError(f"{path}: reference.variants[{name!r}][{init!r}][{k!r}] "
                                       f"must be an AP in percent (0-100), got {v!r}")
            out["variants"].setdefault(str(name), {})[init] = {str(k): float(v) for k, v in scheds.items()}
    return out


def split_metric(metric, path, key) -> tuple[str, str]:
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
        if is_number(data.get("iterations")) and is_number(data.get("batch_size")):
            data["images_seen"] = data["iterations"] * data["batch_size"]
        else:
            raise MetricsError(
                f"{path}: pretrain metrics need 'images_seen' "
                "(or 'iterations' and 'batch_size')")
    if not is_number(data["images_seen"]) or data["images_seen"] < 0:
        raise MetricsError(f"{path}: 'images_seen' must be a non-negative number")
    return data


def pretrain_offset(pretrain: Mapping | None, plan: Mapping) -> float:
    """Pre-training cost in detection iterations (images_seen / plan batch)."""
    if pretrain is None:
        return 0.0
    return float(pretrain["images_seen"]) / float(plan["batch_size"])


def pretrain_method(variant: Mapping) -> str:
    """The kind of pre-training a study.json variant's pretrained runs start from (supervised,
    mae, simsiam): what its pre-training's metrics say, else what its config set."""
    return ((variant.get("pretrain") or {}).get("method")
            or (variant.get("pretrain_overrides") or {}).get("method") or "supervised")


def describe_pretraining(pre: Mapping) -> str:
    """'32 epochs, 82.5% top-1' (self-supervised: 'MAE, 32 epochs, 40.1% kNN top-1') from a
    study.json pretrain summary."""
    epochs = pre.get("epochs", "?")
    method = pre.get("method", "supervised")
    label = "" if method == "supervised" else f"{PRETRAIN_METHODS.get(method, method)}, "
    monitor = pre.get("monitor", "top-1").removeprefix("val ")
    return f"{label}{epochs} epoch{'' if epochs == 1 else 's'}, {100 * pre['top1']:.1f}% {monitor}"
