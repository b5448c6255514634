"""The claims table: each claim of the paper tested on this run's metrics
(rethink.analysis.claim_tests, whose docstring states every test and gate), beside the paper's
numbers, the pre-registration and the val-sampling noise, written as CSV and Markdown.

    python -m rethink.analysis.claims --study study.json --metrics all_metrics.csv \\
        --out-csv claims.csv --out-md claims.md [--margin 1.0] [--reference paper.json] \\
        [--tolerance 1.0] [--preregistration docs/preregistration/default.yaml] \\
        [--val-noise val_noise.json]
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import math
import sys
from typing import Mapping

import pandas as pd
import yaml

from rethink.analysis.claim_tests import (
    CLAIM_METRICS,
    CLAIMS,
    HOLM_FAMILY,
    MAIN_CLAIMS,
    PER_VARIANT,
    POWER,
    applies,
    UNTESTED,
    NotTested,
    cached_finals,
    describe,
    finals,
    fmt_bound,
    fmt_ci,
    pct,
    schedule_names,
    summary,
    true_for_power,
    verdict,
)
from rethink.analysis.inputs import MetricsError, describe_pretraining, load_reference, load_study
from rethink.analysis.results import check_against_study, read_metrics_csv
from rethink.analysis.stats import (
    LEVEL,
    detectable_difference,
    holm,
    power_to_hold,
    two_sided_p,
)
from rethink.core.atomic import write_text
from rethink.core.kinds import on_subset

PER_VARIANT_HEADINGS = {
    "regime": ("Regime", "By regime (`study.regimes` entries with two or more schedules): claims 1, "
               "2 and 3 on that train subset, both inits under the entry's recipe."),
    "pretraining": ("Pre-training", "By pre-training (`study.pretrainings`): the same tests on each other "
                    "pre-training's runs, against the same scratch runs (its base's: main's, or a model "
                    "variant's); for a self-supervised one (MAE, SimSiam: a third init) also claim 9, "
                    "that it is ahead of its base's supervised pre-training at the longest schedule."),
    "model": ("Model", "By model (`study.models`): the same tests on each other backbone, "
              "both inits trained with it, the pretrained one from its own pre-training."),
    "task": ("Task", "By task (`study.tasks`): main's model plus the task's head, both inits trained on the "
             "task's annotations, the pretrained one from main's pre-training; tested on the task's own AP "
             "(keypoints: COCOeval's OKS AP)."),
    "dataset": ("Dataset", "By dataset (`study.datasets`): main's model without its mask head, both inits "
                "trained on the dataset's train sets, the pretrained one from main's pre-training; tested on "
                "VOC's mAP at IoU 0.5 on its val sets."),
    "recipe": ("Recipe", "By recipe (`study.recipes`, the enhanced baselines): main's data and model with "
               "another training recipe for both inits; claim 2 again, and with test-time augmentation "
               "(`tta`) claim 8 on those numbers."),
}

COLUMNS = ["claim", "metric", "statement", "paper", "this_run", "verdict", "reason", "interval",
           "bound", "sd", "power", "underpowered", "holm_p", "preregistered", "detectable", "method",
           "reproduced", "variant", "kind"]

MATCHED, DIFFERS, NO_REFERENCE = "matched", "differs", "no paper number for these cells"

# The paper's R50-FPN GN bbox AP (random init vs ImageNet pre-trained) and its less-data
# regimes; the same shape as the figures' --reference file (rethink.analysis.inputs.load_reference).
PAPER = {
    "metric": "bbox_AP", "task": "bbox",
    "schedules": {"scratch": {"2x": 36.8, "3x": 39.5, "4x": 40.6, "5x": 40.7, "6x": 41.3},
                  "pretrained": {"2x": 40.3, "3x": 40.8, "4x": 40.9, "5x": 40.9, "6x": 41.1}},
    "regimes": {"35k": {"scratch": 36.3, "pretrained": 36.3},  # its recipe re-tuned (Fig. 7)
                "10k": {"scratch": 25.9, "pretrained": 26.0},
                "3.5k": {"scratch": 9.3, "pretrained": 16.0},
                "1k": {"scratch": 3.5, "pretrained": 9.9}},
}

STATEMENTS = {
    1: "Pre-training speeds up convergence: the pretrained model is ahead early in training",
    2: "Training from scratch reaches the pretrained model given enough iterations",
    3: "Pre-training's lead shrinks as the schedule grows",
    4: "With very little data (the 1k and 3.5k analogues) scratch does not catch up even on long "
       "schedules; with the 10k analogue (or more) it does",
    5: "Pre-training gives no extra benefit at high IoU: its lead is no larger at AP75 than at AP50",
    6: "On keypoints, training from scratch catches up quickly: within the shortest schedule",
    7: "On VOC-like data (fewer instances and categories per image), training from scratch stays "
       "clearly behind even with the longest schedule",
    8: "With the enhanced recipe scored with test-time augmentation, training from scratch reaches "
       "the pretrained model",
    9: "Self-supervised pre-training (MAE for a ViT, SimSiam for a ResNet) is ahead of supervised "
       "pre-training at the longest schedule",
}

# ViTDet (Li, Mao, Girshick, He, ECCV 2022, Table 4): Mask R-CNN, plain ViT backbones on COCO
SSL_EVIDENCE = ("ViTDet, Mask R-CNN box AP, random / supervised IN-1k / MAE: ViT-B 48.1 / 47.6 / 51.2, "
                "ViT-L 50.0 / 49.6 / 54.6 (Li et al. 2022, Table 4)")

# the paper's Fig. 6 (Mask R-CNN keypoints, R50-FPN GN, keypoint AP on COCO val)
KEYPOINT_EVIDENCE = "keypoint AP at 2x: random 65.6 vs pre-trained 65.5 (R50-FPN GN, Fig. 6)"

# its PASCAL VOC experiment (Faster R-CNN R101-FPN GN, trainval2007+train2012, val2012) and Fig. 5
VOC_EVIDENCE = ("VOC mAP@0.5: pre-trained 82.7 at 18k iterations vs random 77.6 at 144k "
                "(R101-FPN GN; VOC: 2.3 instances and 1.4 categories per image, COCO 7.3 and 2.9)")

ENHANCED_EVIDENCE = ("enhanced baselines (scale augmentation [640, 800], longer schedules, test-time "
                     "augmentation): mask AP with test aug, R50: random 41.6 vs pre-trained 40.9 (Fig. 5)")

LOCALISATION_EVIDENCE = ("best rows, random vs pre-trained: AP50 61.8 vs 61.7 (lead -0.1), AP75 45.6 vs "
                         "44.6 (lead -1.0); mask AP50 59.0 vs 58.5, AP75 38.9 vs 38.7")


def _ref_join(values: Mapping[str, float]) -> str:
    return "/".join(f"{v:.1f}" for v in values.values())


# --------------------------------------------------------------------------
# paper's numbers and reproduction
# --------------------------------------------------------------------------
def paper_evidence(ref: Mapping) -> dict[int, str]:
    """The paper's numbers for each claim, from the reference (AP in percent)."""
    metric = ref.get("metric", "bbox_AP").replace("_", " ")
    sch = ref.get("schedules") or {}
    scr, pre = sch.get("scratch") or {}, sch.get("pretrained") or {}
    common = [s for s in scr if s in pre]
    out = dict.fromkeys(CLAIMS, "")
    out[5], out[6], out[7], out[8] = LOCALISATION_EVIDENCE, KEYPOINT_EVIDENCE, VOC_EVIDENCE, ENHANCED_EVIDENCE
    out[9] = SSL_EVIDENCE
    if common:
        span = f"{common[0]}-{common[-1]}" if len(common) > 1 else common[0]
        lead = f"R50-FPN GN {metric}, random vs pre-trained at {span}: " \
               f"{_ref_join({s: scr[s] for s in common})} vs {_ref_join({s: pre[s] for s in common})}"
        first, last = common[0], common[-1]
        out[1] = (f"{lead}; pre-trained ahead at the shortest schedule ({first}: "
                  f"{pre[first]:.1f} vs {scr[first]:.1f}) and converges faster")
        out[2] = f"at the longest schedule ({last}): random {scr[last]:.1f} vs pre-trained {pre[last]:.1f}"
        out[3] = "gap pre-trained - random: " + ", ".join(f"{s}: {pre[s] - scr[s]:+.1f}" for s in common)
    reg = ref.get("regimes") or {}
    if reg:
        out[4] = f"{metric}, random vs pre-trained: " + "; ".join(
            f"{r}: {v.get('scratch', float('nan')):.1f} vs {v.get('pretrained', float('nan')):.1f}"
            for r, v in reg.items())
    return out


def paper_value(ref: Mapping, study: Mapping, variant: str, init: str, schedule: str):
    """The paper's AP (percent) for one cell of this study, or None: the main variant's
    schedules are the reference's "schedules"; a regime's (best) is its "regimes" entry."""
    if variant == study["main"]:
        return (ref.get("schedules") or {}).get(init, {}).get(schedule)
    if on_subset(study["variants"][variant].get("kind")):
        return (ref.get("regimes") or {}).get(variant, {}).get(init)
    return (ref.get("variants") or {}).get(variant, {}).get(init, {}).get(schedule)


def reproduction(df: pd.DataFrame, study: Mapping, ref: Mapping, cells, tolerance: float,
                 column: str) -> str:
    """Each of a claim's cells against the paper: 'matched' when every cell that has a paper
    number lies within `tolerance` AP points of it (this run's mean over seeds)."""
    parts, worst = [], []
    for variant, init, schedule in dict.fromkeys(cells):
        want = paper_value(ref, study, variant, init, schedule)
        if want is None:
            continue
        col = (ref.get("variant_metrics") or {}).get(variant, ref.get("metric", column))
        if col != column:
            continue  # the paper's number is of another metric
        ours = summary(finals(df, study, variant, col), init, schedule)
        if ours["n"] == 0:
            continue
        delta = 100 * ours["mean"] - want
        where = schedule if variant == study["main"] else f"{variant} {schedule}"
        parts.append(f"{init} {where}: {pct(ours['mean'])} vs {want:.1f} ({delta:+.1f})")
        if abs(delta) > tolerance:
            worst.append(f"{init} {where}")
    if not parts:
        return NO_REFERENCE
    head = (f"{MATCHED} (each within {tolerance:.1f})" if not worst
            else f"{DIFFERS}: {', '.join(worst)} beyond {tolerance:.1f}")
    return f"{head}: " + "; ".join(parts)


# --------------------------------------------------------------------------
# the table
# --------------------------------------------------------------------------
def runs_of(study: Mapping) -> list[tuple[int, str]]:
    """(claim, variant) pairs: main's claims (4 once per regime), then each variant's."""
    main, variants = study["main"], study["variants"]
    regimes = [n for n, v in variants.items() if on_subset(v.get("kind"))]
    runs = []
    for k in MAIN_CLAIMS:
        if k == 4:
            runs += [(4, r) for r in sorted(regimes, key=lambda n: variants[n].get("fraction", 1.0))]
            if not regimes:
                runs.append((4, main))  # reported as not tested
        else:
            runs.append((k, main))
    for n, v in variants.items():
        kind = v.get("kind")
        if n == main or kind not in PER_VARIANT:
            continue
        if on_subset(kind) and len(v.get("schedules") or []) < 2:
            continue  # one schedule: no schedule axis; claim 4 alone uses it
        runs += [(k, n) for k in PER_VARIANT[kind] if applies(k, v)]
    return runs


def preregistered(prereg: Mapping | None, claim: int, seeds: list, margin: float, variant: str | None = None) -> str:
    """Whether a row's test is the one the pre-registration fixed: its claim (for a
    per-variant row, listed under `variants` for that variant), seeds and margin. "" for a
    per-variant row of a pre-registration that lists no variants."""
    if not prereg:
        return ""
    if variant is not None:
        listed = prereg.get("variants")
        if listed is None:
            return ""
        if claim not in (listed.get(variant) or []):
            return f"no: claim {claim} of {variant} not in the pre-registration"
    elif claim not in (prereg.get("claims") or []):
        return "no: claim not in the pre-registration"
    if list(prereg.get("seeds") or []) != list(seeds):
        return f"no: run's seeds {list(seeds)} are not the registered {prereg.get('seeds')}"
    if not math.isclose(float(prereg.get("margin", float("nan"))), margin):
        return f"no: margin {margin} is not the registered {prereg.get('margin')}"
    return "yes"


def evaluate(study: Mapping, df: pd.DataFrame, margin: float = 1.0, reference: Mapping | None = None,
             tolerance: float | None = None, prereg: Mapping | None = None) -> list[dict]:
    """One row per claim, variant and metric (:data:`COLUMNS`); ``margin`` and ``tolerance``
    in AP points (``tolerance`` None: no reproduction check, the column is empty)."""
    with cached_finals():
        return _evaluate(study, df, margin, reference, tolerance, prereg)


def _evaluate(study, df, margin, reference, tolerance, prereg) -> list[dict]:
    ref = PAPER if reference is None else reference
    evidence = paper_evidence(ref)
    m = margin / 100.0
    rows, tests = [], []
    main = study["main"]
    for k, variant in runs_of(study):
        kind = study["variants"][variant].get("kind", "main")
        for label, task in CLAIM_METRICS[k]:
            row = {"claim": k, "metric": label, "statement": STATEMENTS[k], "paper": evidence[k],
                   "reproduced": "", "variant": variant, "kind": kind, "holm_p": "", "preregistered": "",
                   "this_run": "", "interval": "", "bound": "", "sd": "", "power": "", "underpowered": "",
                   "detectable": ""}
            if on_subset(kind) and k != 4:
                row["paper"] = ""
            try:
                if k == 4 and variant == main:
                    raise NotTested("study.json has no regime (less-data) variant")
                t = CLAIMS[k](df, study, variant, task, m)
            except NotTested as e:
                row.update(verdict=UNTESTED, reason=str(e), method=f"not tested: {e}")
                rows.append(row)
                tests.append(None)
                continue
            power = power_to_hold(t.stat["std"], t.stat["n"], t.side, t.bound, true_for_power(t.side, t.bound, m),
                                  LEVEL)
            mde = detectable_difference(t.stat["std"], t.stat["n"], LEVEL, POWER)
            row.update(this_run=variant_prefix(study, variant) + t.text, interval=fmt_ci(t.stat),
                       bound=fmt_bound(t.side, t.bound), method=describe(t, m),
                       sd="" if not math.isfinite(t.stat["std"]) else round(100 * t.stat["std"], 2),
                       power="" if not math.isfinite(power) else round(power, 3),
                       underpowered="" if not math.isfinite(power) else bool(power < POWER),
                       detectable="" if not math.isfinite(mde) else round(100 * mde, 2),
                       preregistered=preregistered(prereg, k, study["seeds"], margin,
                                                   None if variant == main or k == 4 else variant))
            if tolerance is not None and task == "bbox":
                row["reproduced"] = reproduction(df, study, ref, t.cells, tolerance, f"{task}_AP")
            rows.append(row)
            tests.append(t)
    # Holm over the main family: main's claims 2-5 and claim 4's regimes, box and mask
    family = [i for i, (r, t) in enumerate(zip(rows, tests)) if t is not None and r["claim"] in HOLM_FAMILY
              and (r["variant"] == main or r["claim"] == 4)]
    adjusted = holm([two_sided_p(tests[i].stat, tests[i].bound) for i in family])
    holm_of = dict(zip(family, adjusted))
    for i, (row, t) in enumerate(zip(rows, tests)):
        if t is None:
            continue
        p = holm_of.get(i)
        if p is not None and math.isfinite(p):
            row["holm_p"] = round(p, 4)
        row["verdict"], row["reason"] = verdict(t, m, p if p is not None and math.isfinite(p) else None)
    return rows


def to_csv(rows: list[dict]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def _md(text) -> str:
    return str(text).replace("|", r"\|").replace("\n", " ")


def _verdict_cell(r: Mapping) -> str:
    flag = " (underpowered)" if r.get("underpowered") is True else ""
    return f"**{r['verdict']}**{flag}: {r['reason']}" if r.get("reason") else f"**{r['verdict']}**"


def catch_up(df: pd.DataFrame, study: Mapping, variant: str, margin: float) -> str:
    """Descriptive, not a test: the shortest schedule at which scratch's mean final box AP
    comes within `margin` (a fraction) of pretrained's at the longest schedule."""
    try:
        fin = finals(df, study, variant, "bbox_AP")
        scheds = schedule_names(study, variant)
        top = summary(fin, "pretrained", scheds[-1])
    except NotTested as e:
        return f"not known ({e})"
    for s in scheds:
        ci = summary(fin, "scratch", s)
        if ci["n"] and ci["mean"] >= top["mean"] - margin:
            return s
    return f"not within {scheds[-1]}"


def catch_up_note(df: pd.DataFrame, study: Mapping, margin: float, kind: str = "model") -> str:
    """How long scratch took to come within the margin of pretrained, for main and each
    variant of `kind`: each other backbone (the paper: VGG-16 without norm 11x vs 9x; R50 GN
    about 3x-4x), or each other pre-training, against the same scratch runs."""
    names = [n for n, v in study["variants"].items() if v.get("kind") == kind]
    if not names:
        return ""
    parts = [f"{n}: {catch_up(df, study, n, margin)}" for n in [study["main"], *names]]
    return ("Schedule at which scratch's mean final box AP first comes within the margin "
            f"({100 * margin:.1f}) of pretrained's at the longest schedule (descriptive, not a test): "
            + "; ".join(parts) + ".")


def variant_prefix(study: Mapping, variant: str) -> str:
    """What a per-variant row's numbers come from: 'depth 18 (pre-trained 32 epochs, 85.0% top-1): '."""
    if variant == study["main"]:
        return ""
    v = study["variants"][variant]
    pre = v.get("pretrain")
    pre = f"pre-trained {describe_pretraining(pre)}" if pre and "top1" in pre else ""
    shape = ", ".join(f"{k} {x}" for k, x in (v.get("model_overrides") or {}).items())
    if shape:
        return f"{shape} ({pre}): " if pre else f"{shape}: "
    return f"{pre}: " if pre else ""


def pretraining_note(pretrain: Mapping | None) -> str:
    """What the pretrained branches started from: epochs, val top-1, and whether it levelled off."""
    if not pretrain or "top1" not in pretrain:
        return ""
    note = f" Pre-training: {describe_pretraining(pretrain)}"
    if "last_quarter_gain" in pretrain:
        state = "levelled off" if pretrain.get("levelled_off") else "NOT levelled off: more epochs would improve it"
        note += f" (the last quarter of its epochs added {pretrain['last_quarter_gain']:+.1f} points: {state})"
    return note + "."


def val_noise_text(val_noise: Mapping | None, margin: float) -> str:
    """The val-sampling SE of a paired difference that `rethink.evaluation.val_noise` measured."""
    if not val_noise:
        return ("the val set's sampling noise is not in the intervals, which treat the val set as "
                "fixed: `rethink.evaluation.val_noise` measures it")
    parts = [f"{100 * v['difference_se_mean']:.2f} at {n} images ({v['pairs']} pair(s))"
             for n, v in sorted(val_noise.get("summary", {}).items(), key=lambda kv: int(kv[0]))]
    return ("the val set's sampling SE of a paired difference, which the intervals do not hold (they "
            "treat the val set as fixed), by bootstrap over val images (`rethink.evaluation.val_noise`): "
            + "; ".join(parts) + f" AP points, against a quarter of the margin, {25 * margin:.2f}")


def noise_note(rows: list[dict], margin: float, val_noise: Mapping | None = None) -> str:
    """The seed-to-seed SD of main's per-seed statistics, the val set's sampling SE, and the
    power the margin gives."""
    main = [r for r in rows if r.get("sd") != "" and r["verdict"] != UNTESTED and r["kind"] == "main"]
    if not main:
        return ""
    sds = sorted(float(r["sd"]) for r in main)
    low = [f"{r['claim']} {r['metric']}" for r in main if r.get("underpowered") is True]
    return (f" Noise: the seed-to-seed SD of main's per-seed statistics is {sds[0]:.1f}-{sds[-1]:.1f} AP "
            f"points; {val_noise_text(val_noise, margin)}. "
            f"Power: the probability that a row's test reads \"holds\" when the truth lies one margin inside "
            f"its bound (a true difference of 0 for the non-inferiority claims), at that row's SD and the "
            f"unadjusted level; below {POWER:.0%} a verdict is flagged underpowered"
            + (f" ({', '.join(low)})." if low else " (none here)."))


def to_markdown(rows: list[dict], margin: float, seeds: list[int], tolerance: float | None = None,
                pretrain: Mapping | None = None, notes: Mapping | None = None,
                prereg: Mapping | None = None, prereg_path: str | None = None,
                val_noise: Mapping | None = None) -> str:
    """The claims table; `notes` ({kind: text}) is added under the part of that kind."""
    head = ["#", "Claim", "Metric", "Paper", "This run (AP %, 95% interval)", "Verdict", "Power",
            "How tested"]
    if prereg:
        head.insert(7, "Pre-registered")
    if tolerance is not None:
        head.insert(5, f"Reproduced (this run vs the paper, tolerance {tolerance:.1f})")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    main = rows[0]["variant"] if rows else None
    for r in (r for r in rows if r["variant"] == main or (r["claim"] == 4 and on_subset(r["kind"]))):
        cells = [r["claim"], r["statement"], r["metric"], r["paper"], r["this_run"] or "--",
                 _verdict_cell(r), r["power"] if r["power"] != "" else "--", r["method"]]
        if prereg:
            cells.insert(7, r["preregistered"] or "--")
        if tolerance is not None:
            cells.insert(5, r["reproduced"] or "--")
        lines.append("| " + " | ".join(_md(x) for x in cells) + " |")
    n = len(seeds)
    lines += ["", f"Seeds: {n} ({', '.join(map(str, seeds))}); margin {margin:.1f} AP points "
                  "(`claims.margin`). Every test is on per-seed (paired) differences: the interval is "
                  "mean +- t(0.975, n-1) * std / sqrt(n); a verdict is **holds** when the interval lies "
                  "wholly on the claim's side of its bound, **refuted** when wholly on the other side, "
                  "**inconclusive** when it straddles the bound, when there is one seed, when neither init "
                  "has learnt the task (everything below the margin), or when a verdict that rests on "
                  "scratch staying behind comes before scratch has levelled off. Claims 2-5 (main and "
                  "claim 4's regimes, box and mask) are one family, Holm-adjusted: a row is decided only "
                  "when its Holm-adjusted p-value is below 0.05. Claims compare fixed schedules (the "
                  "shortest or the longest), never a best schedule chosen on the val images they are "
                  "scored on."
              + ("" if n >= 2 else " With one seed there are no intervals: every verdict is inconclusive "
                                   "(n = 1), the numbers are a first look.")]
    lines[-1] += noise_note(rows, margin / 100.0, val_noise)
    lines[-1] += pretraining_note(pretrain)
    if prereg:
        per_variant = "; ".join(f"{v}: {c}" for v, c in (prereg.get("variants") or {}).items())
        lines[-1] += (f" Pre-registered: `{prereg_path}` fixed claims {prereg.get('claims')}"
                      + (f" (by variant: {per_variant})" if per_variant else "") + f", seeds "
                      f"{prereg.get('seeds')} and margin {prereg.get('margin')} before the run; a row reads "
                      "\"yes\" where this run matches it.")
    if tolerance is not None:
        lines[-1] += (f" Reproduced: this run's mean final box AP at each cell a claim rests on against the "
                      f"paper's number for that cell (`figures.reference`), \"matched\" when each lies "
                      f"within {tolerance:.1f} AP points (`claims.tolerance`).")
    for kind, (label, heading) in PER_VARIANT_HEADINGS.items():
        part = [r for r in rows if r["variant"] != main and r["kind"] == kind and r["claim"] != 4]
        if not part:
            continue
        head = [label, "#", "Metric", "This run (AP %, 95% interval)", "Verdict", "Power"]
        head += ["Reproduced"] if tolerance is not None else []
        marked = any(r["preregistered"] for r in part)
        head += ["Pre-registered"] if marked else []
        lines += ["", heading, "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for r in part:
            cells = [r["variant"], r["claim"], r["metric"], r["this_run"] or "--", _verdict_cell(r),
                     r["power"] if r["power"] != "" else "--"]
            cells += [r["reproduced"] or "--"] if tolerance is not None else []
            cells += [r["preregistered"] or "--"] if marked else []
            lines.append("| " + " | ".join(_md(x) for x in cells) + " |")
        if (notes or {}).get(kind):
            lines += ["", notes[kind]]
    return "\n".join(lines) + "\n"


def load_preregistration(path: str | None) -> dict | None:
    """The pre-registration file (YAML: claims, seeds, margin), checked; None without one."""
    if not path:
        return None
    try:
        with open(path) as f:
            doc = yaml.safe_load(f)
    except FileNotFoundError:
        raise MetricsError(f"{path}: pre-registration file not found") from None
    except yaml.YAMLError as e:
        raise MetricsError(f"{path}: not valid YAML ({e})") from None
    if not isinstance(doc, dict):
        raise MetricsError(f"{path}: a pre-registration is a mapping with claims, seeds and margin")
    variants = doc.get("variants")
    if variants is not None and not (isinstance(variants, dict) and all(
            isinstance(c, list) and all(isinstance(k, int) for k in c) for c in variants.values())):
        raise MetricsError(f"{path}: key 'variants' is not a mapping of variant names to lists of claim numbers")
    for key, ok in (("claims", lambda v: isinstance(v, list) and all(isinstance(c, int) for c in v)),
                    ("seeds", lambda v: isinstance(v, list) and all(isinstance(s, int) for s in v)),
                    ("margin", lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0)):
        if key not in doc or not ok(doc[key]):
            raise MetricsError(f"{path}: key {key!r} is missing or not "
                               + {"claims": "a list of claim numbers", "seeds": "a list of integer seeds",
                                  "margin": "a non-negative number of AP points"}[key])
    return doc


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m rethink.analysis.claims",
        description="Test the paper's claims on this run's metrics; write a table.")
    ap.add_argument("--study", required=True, help="study.json written by the plan rule")
    ap.add_argument("--metrics", required=True, help="tidy metrics CSV (all_metrics.csv)")
    ap.add_argument("--out-csv", required=True)
    ap.add_argument("--out-md", required=True)
    ap.add_argument("--margin", type=float, default=1.0,
                    help="AP points: the non-inferiority margin of 'reaches', the 'clearly' of "
                         "'behind', the floor below which nothing counts as learnt, and twice the "
                         "slope per 1x below which a curve has levelled off (default 1.0)")
    ap.add_argument("--tolerance", type=float, default=None,
                    help="AP points: add the 'reproduced' column, each number a claim rests on "
                         "against the paper's within this tolerance (default: no column)")
    ap.add_argument("--reference", default=None,
                    help="JSON of the paper's numbers for the 'paper' column (default: the "
                         "paper's R50-FPN GN bbox AP)")
    ap.add_argument("--val-noise", default=None,
                    help="JSON written by rethink.evaluation.val_noise: the val-sampling SE the table states")
    ap.add_argument("--preregistration", default=None,
                    help="YAML fixing claims, seeds and margin before the run: matching rows are "
                         "marked pre-registered")
    args = ap.parse_args(argv)
    try:
        if not math.isfinite(args.margin) or args.margin < 0:
            raise MetricsError(f"--margin must be a non-negative number of AP points, "
                               f"got {args.margin}")
        if args.tolerance is not None and not (math.isfinite(args.tolerance) and args.tolerance >= 0):
            raise MetricsError(f"--tolerance must be a non-negative number of AP points, "
                               f"got {args.tolerance}")
        study = load_study(args.study)
        df = read_metrics_csv(args.metrics)
        check_against_study(df, study, str(args.metrics))
        reference = load_reference(args.reference)
        prereg = load_preregistration(args.preregistration)
        val_noise = None
        if args.val_noise:
            try:
                with open(args.val_noise) as f:
                    val_noise = json.load(f)
            except FileNotFoundError:
                raise MetricsError(f"{args.val_noise}: val-noise file not found") from None
            except json.JSONDecodeError as e:
                raise MetricsError(f"{args.val_noise}: not valid JSON ({e})") from None
            if not isinstance(val_noise, dict) or not isinstance(val_noise.get("summary"), dict):
                raise MetricsError(f"{args.val_noise}: no 'summary' (write it with python -m rethink.evaluation.val_noise)")
        rows = evaluate(study, df, args.margin, reference, args.tolerance, prereg)
        md = to_markdown(rows, args.margin, study["seeds"], args.tolerance, study.get("pretrain"),
                         notes={kind: catch_up_note(df, study, args.margin / 100.0, kind)
                                for kind in ("pretraining", "model")},
                         prereg=prereg, prereg_path=args.preregistration, val_noise=val_noise)
        write_text(args.out_csv, to_csv(rows))
        write_text(args.out_md, md)
    except (MetricsError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(md, end="")
    print(f"wrote {args.out_csv} and {args.out_md}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
