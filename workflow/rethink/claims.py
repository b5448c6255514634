"""Test the paper's claims on this run's metrics and write a verdict table.

He, Girshick and Dollar (ICCV 2019) claim that ImageNet pre-training speeds up
convergence but, given a long enough schedule, does not raise the final accuracy,
unless data is very scarce. Each claim is a stated test on this run's final bbox AP,
always on per-seed (paired) differences (a seed gives both inits the same data order and
sampler draws), decided by the two-sided 95% t-interval of that difference
(:func:`rethink.stats.mean_ci`) against a bound; the margin M (``--margin``, config
``claims.margin``) is in AP points:

1. Pre-trained is ahead early: at the end of the main variant's shortest schedule (the
   paper's evidence: its shortest, 2x), pretrained - scratch has its interval above 0.
   Trunk checkpoints up to 1x are reported beside it.
2. Scratch reaches pre-trained (non-inferiority): best-schedule pretrained - best-schedule
   scratch has its interval's upper end below M.
3. The advantage shrinks: the difference of differences (gap at the longest schedule) -
   (gap at the shortest), gap = pretrained - scratch, has its interval below 0.
4. Scarce data hurts scratch: in the smallest regime variant, best pretrained - best
   scratch has its interval above M ("clearly").
5. Longer schedules help the pretrained model little: over the schedules of multiple >= 2
   (all when fewer than two are), pretrained's gain from the first to its best schedule
   minus half of scratch's gain has its interval below 0.

Claims 2 and 5 are about the end of training: while either init's longest schedule still
gains more than M over the one before it, they are "inconclusive: schedules too short".
Each row also gives the smallest difference its test could detect with 80% power at the
seeds' spread. With one seed there is no interval: the difference itself must clear the
bound (by M where the bound is 0), and the method column says so. A claim whose inputs are
absent (no regime variant, a missing final checkpoint, a missing init) is "not tested",
with the reason, rather than an error. Verdicts are results: the exit status is 0 whatever
they are, and 2 only for unreadable or inconsistent input.

Each pretraining variant (study.pretrainings) gets claims 1, 2, 3 and 5 again, with it in
main's place (its scratch cells are main's), under "By pre-training"; so does each model
variant (study.models: another backbone, both inits trained, the pretrained one
from its own pre-training), under "By model": its claim 2 is the paper's "a deeper model
also catches up" (its Fig. 3, R101); and so does each regime variant with two or more
schedules (study.regimes: a train subset, its own recipe and schedules), under "By regime":
the paper's re-tuned 35k, or a subset small enough that its schedules span the paper's
epochs of the target set. Each keypoint task variant (study.tasks) gets claim 6
under "By task":

6. Scratch catches up on keypoints quickly (the paper's Fig. 6): at the variant's shortest
   schedule, pretrained - scratch in final keypoint AP has its interval's upper end below M
   (non-inferiority); "inconclusive" while both inits score below M (equal at the floor
   says nothing).

Each dataset variant (study.datasets, VOC) gets claim 7 under "By dataset", and each recipe
variant (study.recipes, the enhanced baselines) claims 2 and 8 under "By recipe":

7. On VOC-like data scratch stays clearly behind (the paper's VOC run: 77.6 at 144k
   iterations vs pre-trained 82.7 at 18k): best pretrained - best scratch in final VOC mAP
   at IoU 0.5 has its interval above M; "inconclusive" while both score below M.
8. With the enhanced recipe and test-time augmentation scratch reaches pre-trained (its
   Fig. 5): claim 2's test on the final bbox AP with test-time augmentation (bbox_tta);
   "not tested" without TTA numbers.

With ``--tolerance T``
(config ``claims.tolerance``, set in the COCO preset) a "reproduced" column compares each
number a claim rests on (an init's mean final AP at a schedule, or a regime's best) with the
paper's at the same cell, and reads "matched" when every one lies within T AP points of it.

    python -m rethink.claims --study study.json --metrics all_metrics.csv \\
        --out-csv claims.csv --out-md claims.md [--margin 1.0] [--reference paper.json] \\
        [--tolerance 1.0]
"""
from __future__ import annotations

import argparse
import csv
import io
import math
import sys
from typing import Mapping

import pandas as pd

from rethink.atomic import write_text
from rethink.results import (TRUNK, MetricsError, check_against_study, load_reference,
                             load_study, ordered_schedules, read_metrics_csv, variant_finals)
from rethink.stats import detectable_difference, mean_ci

LEVEL = 0.95
TASK, METRIC = "bbox", "AP"
COLUMN = f"{TASK}_{METRIC}"
KEYPOINT_COLUMN = "keypoints_AP"  # claim 6's (task variants with keypoints)
VOC_COLUMN = "voc_mAP"  # claim 7's (dataset variants: VOC's mAP at IoU 0.5)
TTA_COLUMN = "bbox_tta_AP"  # claim 8's (recipe variants scored with test-time augmentation)
HOLDS, FAILS, UNTESTED = "holds", "does not hold", "not tested"
INCONCLUSIVE = "inconclusive: schedules too short"
NOTHING_LEARNT = "inconclusive: neither init has learnt the task yet"
COLUMNS = ["claim", "statement", "paper", "this_run", "verdict", "method", "detectable", "reproduced",
           "variant", "kind"]
# the claims about one pair of branches, repeated for each variant of these kinds, and the
# heading of their part of the table
PER_VARIANT = {"regime": (1, 2, 3, 5), "pretraining": (1, 2, 3, 5), "model": (1, 2, 3, 5), "task": (6,),
               "dataset": (7,), "recipe": (2, 8)}
MAIN_CLAIMS = (1, 2, 3, 4, 5)
PER_VARIANT_HEADINGS = {
    "regime": ("Regime", "By regime (`study.regimes` entries with two or more schedules; the paper's 35k "
               "and 10k, Fig. 7, and a subset small enough for schedules in the paper's epochs): claims 1, "
               "2, 3 and 5 on that train subset, both inits under the entry's recipe (the 35k one re-tuned "
               "on the pre-trained model, as the paper's). A regime with one schedule has no schedule axis "
               "to reach anything along: claim 4 alone uses it."),
    "pretraining": ("Pre-training", "By pre-training (`study.pretrainings`): the same tests on each other "
                    "pre-training's runs, against the same scratch runs."),
    "model": ("Model", "By model (`study.models`): the same tests on each other backbone, "
              "both inits trained with it, the pretrained one from its own pre-training (main's recipe "
              "and the variant's pretrain keys, if any)."),
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
MATCHED, DIFFERS, NO_REFERENCE = "matched", "differs", "no paper number for these cells"
POWER = 0.8  # for the detectable difference reported beside each test
# per-seed differences are rounded to this many decimals (of an AP fraction): float noise such
# as 0.38 - 0.30 - (0.48 - 0.40) = -1e-17 must not count as "below 0" when nothing differs
ROUND = 12

# The paper's R50-FPN GN bbox AP (random init vs ImageNet pre-trained) and its less-data
# regimes; the same shape as the figures' --reference file (rethink.results.load_reference).
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
    2: "With a long enough schedule, training from scratch reaches the pretrained model's best AP",
    3: "Pre-training's advantage in final AP shrinks as the schedule grows",
    4: "With little data (the smallest regime), training from scratch falls clearly behind",
    5: "Longer schedules help the pretrained model little (less than half of scratch's gain)",
    6: "On keypoints, training from scratch catches up quickly: within the shortest schedule",
    7: "On VOC-like data (fewer instances and categories per image), training from scratch stays "
       "clearly behind even with the longest schedule",
    8: "With the enhanced recipe scored with test-time augmentation, training from scratch reaches "
       "the pretrained model's best AP",
}
# the paper's Fig. 6 (Mask R-CNN keypoints, R50-FPN GN, keypoint AP on COCO val)
KEYPOINT_EVIDENCE = "keypoint AP at 2x: random 65.6 vs pre-trained 65.5 (R50-FPN GN, Fig. 6)"
# its PASCAL VOC experiment (Faster R-CNN R101-FPN GN, trainval2007+train2012, val2012) and Fig. 5
VOC_EVIDENCE = ("VOC mAP@0.5: pre-trained 82.7 at 18k iterations vs random 77.6 at 144k "
                "(R101-FPN GN; VOC: 2.3 instances and 1.4 categories per image, COCO 7.3 and 2.9)")
ENHANCED_EVIDENCE = ("enhanced baselines (scale augmentation [640, 800], longer schedules, test-time "
                     "augmentation): mask AP with test aug, R50: random 41.6 vs pre-trained 40.9 (Fig. 5)")


class NotTested(Exception):
    """A claim's inputs are absent; the message says which."""


# --------------------------------------------------------------------------
# formatting
# --------------------------------------------------------------------------
def pct(v: float) -> str:
    return "n/a" if v is None or not math.isfinite(v) else f"{100 * v:.1f}"


def fmt_ci(ci: Mapping) -> str:
    """'40.3 [39.1, 41.5]' in AP percent; 'n=1' where there is no interval."""
    if ci["n"] == 0:
        return "n/a"
    if ci["n"] < 2 or not math.isfinite(ci["lo"]):
        return f"{pct(ci['mean'])} (n={ci['n']})"
    return f"{pct(ci['mean'])} [{pct(ci['lo'])}, {pct(ci['hi'])}]"


def _ref_join(values: Mapping[str, float]) -> str:
    return "/".join(f"{v:.1f}" for v in values.values())


# --------------------------------------------------------------------------
# tests on paired (same-seed) differences: two-sided 95% t-interval bounds
# --------------------------------------------------------------------------
def _has_ci(*cis) -> bool:
    return all(c["n"] >= 2 and math.isfinite(c["lo"]) for c in cis)


def bound_test(d: Mapping, side: str, bound: float, margin: float) -> bool:
    """`side` "above": the interval's lower end is above `bound`; "below": its upper end is
    below it. With one seed there is no interval: the difference itself must clear the
    bound, and clear it by the margin where the bound is 0."""
    if _has_ci(d):
        return d["lo"] > bound if side == "above" else d["hi"] < bound
    pad = margin if bound == 0 else 0.0
    return d["mean"] > bound + pad if side == "above" else d["mean"] < bound - pad


def detectable(d: Mapping) -> float:
    """Smallest true difference (AP fraction) the test could detect at 80% power."""
    return detectable_difference(d["std"], d["n"], LEVEL, POWER)


def describe(hypothesis: str, statistic: str, rule: str, margin: float, d: Mapping) -> str:
    level = (f"level {int(LEVEL * 100)}% (two-sided t-interval over {d['n']} seeds)" if _has_ci(d)
             else f"{d['n']} seed(s), no interval: the difference itself must clear the bound "
                  f"(by the margin where the bound is 0)")
    return (f"H1: {hypothesis}. Statistic: {statistic}, paired by seed (a seed gives both runs "
            f"the same data order and sampler draws). Decided: {rule}. Margin "
            f"{100 * margin:.1f} AP points; {level}")


# --------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------
def _need_inits(plan: Mapping, name: str) -> None:
    miss = [i for i in ("scratch", "pretrained") if i not in plan["inits"]]
    if miss:
        raise NotTested(f"variant {name!r} has no {'/'.join(miss)} runs (inits {plan['inits']})")


def finals(df: pd.DataFrame, study: Mapping, name: str, column: str = COLUMN) -> pd.DataFrame:
    """Final bbox AP (or `column`) of every seed, init and schedule of a variant (NotTested if
    absent); the tested metric is the frame's COLUMN, whichever it is."""
    _need_inits(study["variants"][name], name)
    if not (df["variant"] == name).any():
        raise NotTested(f"no metrics for variant {name!r}")
    try:
        fin = variant_finals(df, study, name)
    except MetricsError as e:
        raise NotTested(str(e)) from None
    if column not in fin.columns:
        raise NotTested(f"variant {name!r} has no {column} (its model has no such head)")
    return fin[["seed", "init", "schedule", column]].rename(columns={column: COLUMN})


def summary(fin: pd.DataFrame, init: str, schedule: str) -> dict:
    sub = fin[(fin["init"] == init) & (fin["schedule"] == schedule)]
    return mean_ci(sub[COLUMN], LEVEL)


def paired(fin: pd.DataFrame, a: tuple[str, str], b: tuple[str, str]) -> dict:
    """Per-seed differences AP(init a, schedule a) - AP(init b, schedule b), summarised."""
    def by_seed(init, sched):
        sub = fin[(fin["init"] == init) & (fin["schedule"] == sched)]
        return sub.set_index("seed")[COLUMN]
    d = (by_seed(*a) - by_seed(*b)).dropna().round(ROUND)
    return mean_ci(d, LEVEL)


def best(fin: pd.DataFrame, init: str, schedules: list[str]) -> tuple[str, dict]:
    """The schedule with the highest mean final AP (the earliest on ties)."""
    cis = [(s, summary(fin, init, s)) for s in schedules]
    cis = [(s, c) for s, c in cis if c["n"] > 0]
    if not cis:
        raise NotTested(f"no final {COLUMN} for {init}")
    return max(cis, key=lambda sc: sc[1]["mean"])


def best_against_best(fin, scheds: list[str]):
    """Each init's best schedule and its summary, and pretrained's best - scratch's best, paired
    by seed: (s_pre, pre, s_scr, scr, diff)."""
    s_pre, pre = best(fin, "pretrained", scheds)
    s_scr, scr = best(fin, "scratch", scheds)
    return s_pre, pre, s_scr, scr, paired(fin, ("pretrained", s_pre), ("scratch", s_scr))


# --------------------------------------------------------------------------
# the claims: each returns (this run's numbers, verdict, method, the statistic)
# --------------------------------------------------------------------------
def still_rising(fin, scheds: list[str], margin: float):
    """An init whose longest schedule still gains more than the margin over the one before
    it (paired mean): (init, before, longest, gain); None once both have levelled off."""
    if len(scheds) < 2:
        return None
    before, longest = scheds[-2], scheds[-1]
    for init in ("scratch", "pretrained"):
        g = paired(fin, (init, longest), (init, before))
        if g["n"] and g["mean"] > margin:
            return init, before, longest, g
    return None


def _unconverged(rising) -> str:
    init, before, longest, g = rising
    return (f"{INCONCLUSIVE}: {init} still gains {fmt_ci(g)} AP points from {before} to "
            f"{longest}, more than the margin; decided only once both inits level off")


def claim1(df, study, margin, ref):
    """Decided at the shortest schedule's end, the paper's own evidence for the claim (its
    shortest schedule, 2x: 40.3 vs 36.8); the trunk checkpoints up to 1x are shown beside it."""
    name = study["main"]
    plan = study["variants"][name]
    fin = finals(df, study, name)
    shortest = ordered_schedules(plan)[0]["name"]
    pre, scr = summary(fin, "pretrained", shortest), summary(fin, "scratch", shortest)
    diff = paired(fin, ("pretrained", shortest), ("scratch", shortest))
    ok = bound_test(diff, "above", 0.0, margin)
    parts = [f"{shortest}: pretrained {fmt_ci(pre)} vs scratch {fmt_ci(scr)}, difference {fmt_ci(diff)}"]
    one_x = plan.get("one_x") or ordered_schedules(plan)[0]["iters"]
    sub = df[(df["variant"] == name) & (df["branch"] == TRUNK) & (df["task"] == TASK)
             & (df["metric"] == METRIC) & (df["iteration"] > 0) & (df["iteration"] <= one_x)]
    for it in sorted(set(sub["iteration"])):
        at = sub[sub["iteration"] == it]
        by_seed = {i: at[at["init"] == i].set_index("seed")["value"] for i in ("pretrained", "scratch")}
        d = mean_ci((by_seed["pretrained"] - by_seed["scratch"]).dropna(), LEVEL)
        if d["n"]:
            parts.append(f"(trunk it {it}: difference {fmt_ci(d)})")
    method = describe(f"pretrained is ahead at the end of the shortest schedule ({shortest}) "
                      f"of variant {name!r}",
                      f"final {COLUMN}, pretrained - scratch",
                      "the interval lies above 0; trunk checkpoints up to 1x = "
                      f"{one_x} iterations shown, not tested", margin, diff)
    cells = [(name, i, shortest) for i in ("pretrained", "scratch")]
    return "; ".join(parts), HOLDS if ok else FAILS, method, diff, cells


def claim2(df, study, margin, ref, column=COLUMN):
    name = study["main"]
    fin = finals(df, study, name, column)
    scheds = [s["name"] for s in ordered_schedules(study["variants"][name])]
    s_pre, pre, s_scr, scr, diff = best_against_best(fin, scheds)
    text = (f"best scratch {s_scr}: {fmt_ci(scr)} vs best pretrained {s_pre}: {fmt_ci(pre)}, "
            f"pretrained - scratch {fmt_ci(diff)}")
    rising = still_rising(fin, scheds, margin)
    verdict = (_unconverged(rising) if rising
               else HOLDS if bound_test(diff, "below", margin, margin) else FAILS)
    method = describe("scratch is non-inferior to pretrained: pretrained's best final AP exceeds "
                      "scratch's best by less than the margin",
                      f"best-schedule final {column} (each init's best mean over {scheds}), "
                      "pretrained - scratch",
                      "the interval's upper end lies below the margin; inconclusive while the "
                      "longest schedule still gains more than the margin over the one before",
                      margin, diff)
    return text, verdict, method, diff, [(name, "pretrained", s_pre), (name, "scratch", s_scr)]


def claim3(df, study, margin, ref):
    name = study["main"]
    fin = finals(df, study, name)
    scheds = [s["name"] for s in ordered_schedules(study["variants"][name])]
    if len(scheds) < 2:
        raise NotTested(f"variant {name!r} has one schedule ({scheds[0]}); a trend needs two")
    gaps = {s: paired(fin, ("pretrained", s), ("scratch", s)) for s in scheds}
    if gaps[scheds[0]]["n"] == 0 or gaps[scheds[-1]]["n"] == 0:
        raise NotTested("no seed has both inits at the shortest and the longest schedule")
    first, last = scheds[0], scheds[-1]
    shrink = _diff_of_diffs(fin, [(+1, "pretrained", last), (-1, "scratch", last),
                                  (-1, "pretrained", first), (+1, "scratch", first)])
    ok = bound_test(shrink, "below", 0.0, margin)
    text = ("gap " + ", ".join(f"{s}: {fmt_ci(g)}" for s, g in gaps.items())
            + f"; gap {last} - gap {first}: {fmt_ci(shrink)}")
    method = describe(f"the gap pretrained - scratch is smaller at the longest schedule ({last}) "
                      f"than at the shortest ({first})",
                      f"difference of differences of final {COLUMN}: (pretrained - scratch at "
                      f"{last}) - (pretrained - scratch at {first})",
                      "the interval lies below 0", margin, shrink)
    cells = [(name, i, s) for s in (first, last) for i in ("pretrained", "scratch")]
    return text, HOLDS if ok else FAILS, method, shrink, cells


def claim4(df, study, margin, ref):
    regimes = [(n, v) for n, v in study["variants"].items() if v.get("kind") == "regime"]
    if not regimes:
        raise NotTested("study.json has no regime (less-data) variant")
    name, plan = min(regimes, key=lambda nv: nv[1].get("fraction", 1.0))
    fin = finals(df, study, name)
    scheds = [s["name"] for s in ordered_schedules(plan)]
    s_pre, pre, s_scr, scr, diff = best_against_best(fin, scheds)
    ok = bound_test(diff, "above", margin, margin)
    images = plan.get("train_images")
    size = f", {images} train images" if images is not None else ""
    text = (f"{name}: best pretrained {s_pre}: {fmt_ci(pre)} vs best scratch {s_scr}: {fmt_ci(scr)}, "
            f"pretrained - scratch {fmt_ci(diff)}")
    method = describe(f"in the smallest regime {name!r} (fraction "
                      f"{plan.get('fraction', float('nan')):.4g}{size}) pretrained's best final AP "
                      "is clearly above scratch's",
                      f"best-schedule final {COLUMN}, pretrained - scratch",
                      "the interval lies above the margin", margin, diff)
    return text, HOLDS if ok else FAILS, method, diff, [(name, "pretrained", s_pre), (name, "scratch", s_scr)]


def claim5(df, study, margin, ref):
    name = study["main"]
    fin = finals(df, study, name)
    ordered = ordered_schedules(study["variants"][name])
    long = [s["name"] for s in ordered if (s.get("multiple") or 0) >= 2]
    scheds, which = ((long, "schedules with multiple >= 2") if len(long) >= 2
                     else ([s["name"] for s in ordered], "all schedules (fewer than two with "
                                                         "multiple >= 2)"))
    if len(scheds) < 2:
        raise NotTested(f"variant {name!r} has one schedule; a gain needs two")
    first = scheds[0]
    gains = {}
    for init in ("pretrained", "scratch"):
        s_best, _ = best(fin, init, scheds)
        gains[init] = (s_best, paired(fin, (init, s_best), (init, first)))
    if any(g["n"] == 0 for _, g in gains.values()):
        raise NotTested(f"no seed has both the {first} and the best schedule's final AP")
    (s_pre, _), (s_scr, _) = gains["pretrained"], gains["scratch"]
    stat = _diff_of_diffs(fin, [(+1, "pretrained", s_pre), (-1, "pretrained", first),
                                (-0.5, "scratch", s_scr), (+0.5, "scratch", first)])
    text = "; ".join(f"{init} {first} -> {s}: {'+' if g['mean'] >= 0 else ''}{fmt_ci(g)}"
                     for init, (s, g) in gains.items())
    text += f"; pretrained's gain - half of scratch's: {fmt_ci(stat)}"
    rising = still_rising(fin, scheds, margin)
    verdict = (_unconverged(rising) if rising
               else HOLDS if bound_test(stat, "below", 0.0, margin) else FAILS)
    method = describe(f"over {which} {scheds}, pretrained gains less than half as much as "
                      "scratch from the first to its best schedule",
                      f"difference of gains in final {COLUMN}: (pretrained best - {first}) - "
                      f"0.5 x (scratch best - {first})",
                      "the interval lies below 0; inconclusive while the longest schedule still "
                      "gains more than the margin over the one before", margin, stat)
    cells = [(name, "pretrained", first), (name, "pretrained", s_pre),
             (name, "scratch", first), (name, "scratch", s_scr)]
    return text, verdict, method, stat, cells


def _diff_of_diffs(fin, terms) -> dict:
    """Per seed, sum of weight x final AP over (weight, init, schedule) terms; summarised."""
    total = None
    for w, init, sched in terms:
        sub = fin[(fin["init"] == init) & (fin["schedule"] == sched)].set_index("seed")[COLUMN]
        total = w * sub if total is None else total + w * sub
    return mean_ci(total.dropna().round(ROUND), LEVEL)


def claim6(df, study, margin, ref):
    """The paper's Fig. 6: on keypoints scratch is within noise of pretrained already at 2x,
    where boxes still needed longer; here, at the task variant's shortest schedule."""
    name = study["main"]
    fin = finals(df, study, name, KEYPOINT_COLUMN)
    shortest = ordered_schedules(study["variants"][name])[0]["name"]
    pre, scr = summary(fin, "pretrained", shortest), summary(fin, "scratch", shortest)
    diff = paired(fin, ("pretrained", shortest), ("scratch", shortest))
    text = (f"{shortest}: keypoint AP pretrained {fmt_ci(pre)} vs scratch {fmt_ci(scr)}, "
            f"pretrained - scratch {fmt_ci(diff)}")
    later = [s["name"] for s in ordered_schedules(study["variants"][name])[1:]]
    if later:  # descriptive: how the gap develops after the tested schedule
        text += "; later gaps " + ", ".join(
            f"{s}: {fmt_ci(paired(fin, ('pretrained', s), ('scratch', s)))}" for s in later)
    if max(pre["mean"], scr["mean"]) < margin:  # equal at the floor says nothing about catching up
        verdict = f"{NOTHING_LEARNT}: both below the margin"
    else:
        verdict = HOLDS if bound_test(diff, "below", margin, margin) else FAILS
    method = describe(f"scratch is non-inferior to pretrained on keypoint AP at the shortest "
                      f"schedule ({shortest}) of variant {name!r}",
                      f"final {KEYPOINT_COLUMN}, pretrained - scratch",
                      "the interval's upper end lies below the margin; inconclusive while both "
                      "inits score below the margin", margin, diff)
    return text, verdict, method, diff, [(name, i, shortest) for i in ("pretrained", "scratch")]


def claim7(df, study, margin, ref):
    """The paper's VOC run: scratch at its longest schedule (144k) stays below pretrained at a
    short one (18k); here best against best over the dataset variant's schedules."""
    name = study["main"]
    fin = finals(df, study, name, VOC_COLUMN)
    scheds = [s["name"] for s in ordered_schedules(study["variants"][name])]
    s_pre, pre, s_scr, scr, diff = best_against_best(fin, scheds)
    text = (f"VOC mAP@0.5 best pretrained {s_pre}: {fmt_ci(pre)} vs best scratch {s_scr}: {fmt_ci(scr)}, "
            f"pretrained - scratch {fmt_ci(diff)}")
    rising = still_rising(fin, scheds, margin)
    if rising:  # descriptive: a longer schedule might still close it
        text += f"; {rising[0]} still gains {fmt_ci(rising[3])} from {rising[1]} to {rising[2]}"
    if max(pre["mean"], scr["mean"]) < margin:
        verdict = f"{NOTHING_LEARNT}: both below the margin"
    else:
        verdict = HOLDS if bound_test(diff, "above", margin, margin) else FAILS
    method = describe(f"on dataset variant {name!r} pretrained's best final VOC mAP is clearly above "
                      f"scratch's best over the schedules {scheds}",
                      f"best-schedule final {VOC_COLUMN}, pretrained - scratch",
                      "the interval lies above the margin; inconclusive while both inits score "
                      "below the margin", margin, diff)
    return text, verdict, method, diff, [(name, "pretrained", s_pre), (name, "scratch", s_scr)]


def claim8(df, study, margin, ref):
    """Claim 2 on the numbers with test-time augmentation (the enhanced baselines)."""
    return claim2(df, study, margin, ref, TTA_COLUMN)


CLAIMS = {1: claim1, 2: claim2, 3: claim3, 4: claim4, 5: claim5, 6: claim6, 7: claim7, 8: claim8}


def paper_evidence(ref: Mapping) -> dict[int, str]:
    """The paper's numbers for each claim, from the reference (AP in percent)."""
    metric = ref.get("metric", "bbox_AP").replace("_", " ")
    sch = ref.get("schedules") or {}
    scr, pre = sch.get("scratch") or {}, sch.get("pretrained") or {}
    common = [s for s in scr if s in pre]
    out = dict.fromkeys(CLAIMS, "")
    out[6], out[7], out[8] = KEYPOINT_EVIDENCE, VOC_EVIDENCE, ENHANCED_EVIDENCE
    if common:
        span = f"{common[0]}-{common[-1]}" if len(common) > 1 else common[0]
        lead = f"R50-FPN GN {metric}, random vs pre-trained at {span}: " \
               f"{_ref_join({s: scr[s] for s in common})} vs {_ref_join({s: pre[s] for s in common})}"
        first = common[0]
        out[1] = (f"{lead}; pre-trained ahead at the shortest schedule ({first}: "
                  f"{pre[first]:.1f} vs {scr[first]:.1f}) and converges faster")
        b_scr = max(common, key=lambda s: scr[s])
        b_pre = max(common, key=lambda s: pre[s])
        out[2] = (f"best random {scr[b_scr]:.1f} ({b_scr}) vs best pre-trained "
                  f"{pre[b_pre]:.1f} ({b_pre})")
        out[3] = "gap pre-trained - random: " + ", ".join(
            f"{s}: {pre[s] - scr[s]:+.1f}" for s in common)
        out[5] = (f"from {first} to its best: pre-trained +{pre[b_pre] - pre[first]:.1f} "
                  f"({first} -> {b_pre}), random +{scr[b_scr] - scr[first]:.1f} "
                  f"({first} -> {b_scr})")
    reg = ref.get("regimes") or {}
    if reg:
        out[4] = f"{metric}, random vs pre-trained: " + "; ".join(
            f"{r}: {v.get('scratch', float('nan')):.1f} vs {v.get('pretrained', float('nan')):.1f}"
            for r, v in reg.items())
    return out


def paper_value(ref: Mapping, study: Mapping, variant: str, init: str, schedule: str):
    """The paper's AP (percent) for one cell of this study, or None: the main variant's
    schedules are the reference's "schedules"; a regime's best is its "regimes" entry."""
    if variant == study["main"]:
        return (ref.get("schedules") or {}).get(init, {}).get(schedule)
    if study["variants"][variant].get("kind") == "regime":
        return (ref.get("regimes") or {}).get(variant, {}).get(init)
    return (ref.get("variants") or {}).get(variant, {}).get(init, {}).get(schedule)


def reproduction(df: pd.DataFrame, study: Mapping, ref: Mapping, cells, tolerance: float) -> str:
    """Each of a claim's cells against the paper: 'matched' when every cell that has a paper
    number lies within `tolerance` AP points of it (this run's mean over seeds)."""
    parts, worst = [], []
    for variant, init, schedule in dict.fromkeys(cells):
        want = paper_value(ref, study, variant, init, schedule)
        if want is None:
            continue
        column = (ref.get("variant_metrics") or {}).get(variant, ref.get("metric", COLUMN))
        ours = summary(finals(df, study, variant, column), init, schedule)
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


def evaluate(study: Mapping, df: pd.DataFrame, margin: float = 1.0,
             reference: Mapping | None = None, tolerance: float | None = None) -> list[dict]:
    """One row per claim (:data:`COLUMNS`); ``margin`` and ``tolerance`` in AP points
    (``tolerance`` None: no reproduction check, the column is empty)."""
    ref = PAPER if reference is None else reference
    evidence = paper_evidence(ref)
    m = margin / 100.0
    rows = []
    others = [(n, v["kind"]) for n, v in study["variants"].items() if v.get("kind") in PER_VARIANT
              and (v["kind"] != "regime" or len(v.get("schedules") or []) >= 2)]
    runs = [(k, study["main"]) for k in MAIN_CLAIMS] + [(k, n) for n, kind in others for k in PER_VARIANT[kind]]
    for k, variant in runs:
        fn = CLAIMS[k]
        kind = study["variants"][variant].get("kind", "main")
        row = {"claim": k, "statement": STATEMENTS[k], "paper": evidence[k], "reproduced": "",
               "variant": variant, "kind": kind}
        if kind == "regime":  # the paper's best-vs-best numbers for that subset (claim 2), where it has them
            paper = (ref.get("regimes") or {}).get(variant) or {}
            row["paper"] = (f"{variant}: random {paper['scratch']:.1f} vs pre-trained {paper['pretrained']:.1f}"
                            if k == 2 and {"scratch", "pretrained"} <= set(paper) else "")
        try:  # a pretraining or model variant's claims: the same tests with it in main's place
            text, verdict, method, stat, cells = fn(df, {**study, "main": variant}, m, ref)
            mde = detectable(stat)
            row.update(this_run=variant_prefix(study, variant) + text, verdict=verdict, method=method,
                       detectable="" if not math.isfinite(mde) else round(100 * mde, 2))
            if tolerance is not None:  # a regime's paper number is its best: claim 2's cells only
                row["reproduced"] = (reproduction(df, study, ref, cells, tolerance)
                                     if kind != "regime" or k == 2 else NO_REFERENCE)
        except NotTested as e:
            row.update(this_run="", verdict=UNTESTED, method=f"not tested: {e}", detectable="")
        rows.append(row)
    return rows


def to_csv(rows: list[dict]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def _md(text) -> str:
    return str(text).replace("|", r"\|").replace("\n", " ")


def catch_up(df: pd.DataFrame, study: Mapping, variant: str, margin: float) -> str:
    """Descriptive, not a test: the shortest schedule at which scratch's mean final AP comes
    within `margin` (a fraction) of pretrained's best mean, or 'not within <longest>'."""
    try:
        fin = finals(df, study, variant)
        scheds = [s["name"] for s in ordered_schedules(study["variants"][variant])]
        _, top = best(fin, "pretrained", scheds)
    except NotTested as e:
        return f"not known ({e})"
    for s in scheds:
        ci = summary(fin, "scratch", s)
        if ci["n"] and ci["mean"] >= top["mean"] - margin:
            return s
    return f"not within {scheds[-1]}"


def catch_up_note(df: pd.DataFrame, study: Mapping, margin: float) -> str:
    """How long scratch took to come within the margin of pretrained's best, per model
    variant and for main (the paper: VGG-16 without norm 11x vs 9x; R50 GN about 3x-4x)."""
    names = [n for n, v in study["variants"].items() if v.get("kind") == "model"]
    if not names:
        return ""
    parts = [f"{n}: {catch_up(df, study, n, margin)}" for n in [study["main"], *names]]
    return ("Schedule at which scratch's mean final bbox AP first comes within the margin "
            f"({100 * margin:.1f}) of pretrained's best mean (descriptive, not a test): " + "; ".join(parts) + ".")


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


def describe_pretraining(pre: Mapping) -> str:
    """'32 epochs, 82.5% top-1' from a study.json pretrain summary."""
    epochs = pre.get("epochs", "?")
    return f"{epochs} epoch{'' if epochs == 1 else 's'}, {100 * pre['top1']:.1f}% top-1"


def pretraining_note(pretrain: Mapping | None) -> str:
    """What the pretrained branches started from: epochs, val top-1, and whether it levelled off."""
    if not pretrain or "top1" not in pretrain:
        return ""
    note = f" Pre-training: {describe_pretraining(pretrain)}"
    if "last_quarter_gain" in pretrain:
        state = "levelled off" if pretrain.get("levelled_off") else "NOT levelled off: more epochs would improve it"
        note += f" (the last quarter of its epochs added {pretrain['last_quarter_gain']:+.1f} points: {state})"
    return note + "."


def to_markdown(rows: list[dict], margin: float, seeds: list[int],
                tolerance: float | None = None, pretrain: Mapping | None = None, notes: Mapping | None = None) -> str:
    """The claims table; `notes` ({kind: text}) is added under the part of that kind."""
    head = ["#", "Claim", "Paper", "This run (bbox AP %, 95% interval)", "Verdict",
            "Detectable (AP points)", "How tested"]
    if tolerance is not None:
        head.insert(5, f"Reproduced (this run vs the paper, tolerance {tolerance:.1f})")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    main = rows[0]["variant"] if rows else None
    for r in (r for r in rows if r["variant"] == main):
        cells = [r["claim"], r["statement"], r["paper"], r["this_run"] or "--", f"**{r['verdict']}**",
                 r["detectable"] if r["detectable"] != "" else "--", r["method"]]
        if tolerance is not None:
            cells.insert(5, r["reproduced"] or "--")
        lines.append("| " + " | ".join(_md(x) for x in cells) + " |")
    n = len(seeds)
    lines += ["", f"Seeds: {n} ({', '.join(map(str, seeds))}); margin {margin:.1f} AP points "
                  "(`claims.margin`). Every test is on per-seed (paired) differences: the "
                  "interval is mean +- t(0.975, n-1) * std / sqrt(n). Detectable: the smallest "
                  "true difference the test would find with 80% power at the seeds' spread, "
                  "(t(0.975, n-1) + t(0.8, n-1)) * std / sqrt(n)"
              + ("." if n >= 2 else "; with one seed there are no intervals, and a difference "
                                    "must clear each bound by the margin.")]
    lines[-1] += pretraining_note(pretrain)
    if tolerance is not None:
        lines[-1] += (f" Reproduced: this run's mean final AP at each cell a claim rests on "
                      f"against the paper's number for that cell (`figures.reference`), "
                      f"\"matched\" when each lies within {tolerance:.1f} AP points "
                      f"(`claims.tolerance`).")
    for kind, (label, heading) in PER_VARIANT_HEADINGS.items():
        part = [r for r in rows if r["variant"] != main and r["kind"] == kind]
        if not part:
            continue
        what = {"task": "task AP", "dataset": "VOC mAP@0.5"}.get(kind, "bbox AP")
        head = [label, "#", f"This run ({what} %, 95% interval)", "Verdict"]
        head += ["Reproduced"] if tolerance is not None else []
        lines += ["", heading, "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for r in part:
            cells = [r["variant"], r["claim"], r["this_run"] or "--", f"**{r['verdict']}**"]
            cells += [r["reproduced"] or "--"] if tolerance is not None else []
            lines.append("| " + " | ".join(_md(x) for x in cells) + " |")
        if (notes or {}).get(kind):
            lines += ["", notes[kind]]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m rethink.claims",
        description="Test the paper's claims on this run's metrics; write a table.")
    ap.add_argument("--study", required=True, help="study.json written by the plan rule")
    ap.add_argument("--metrics", required=True, help="tidy metrics CSV (all_metrics.csv)")
    ap.add_argument("--out-csv", required=True)
    ap.add_argument("--out-md", required=True)
    ap.add_argument("--margin", type=float, default=1.0,
                    help="AP points: the non-inferiority margin of 'reaches', the 'clearly' of "
                         "'behind', the convergence threshold and the one-seed bound (default 1.0)")
    ap.add_argument("--tolerance", type=float, default=None,
                    help="AP points: add the 'reproduced' column, each number a claim rests on "
                         "against the paper's within this tolerance (default: no column)")
    ap.add_argument("--reference", default=None,
                    help="JSON of the paper's numbers for the 'paper' column (default: the "
                         "paper's R50-FPN GN bbox AP)")
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
        rows = evaluate(study, df, args.margin, reference, args.tolerance)
        md = to_markdown(rows, args.margin, study["seeds"], args.tolerance, study.get("pretrain"),
                         notes={"model": catch_up_note(df, study, args.margin / 100.0)})
        write_text(args.out_csv, to_csv(rows))
        write_text(args.out_md, md)
    except MetricsError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(md, end="")
    print(f"wrote {args.out_csv} and {args.out_md}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
