"""Test the paper's claims on this run's metrics and write a verdict table.

He, Girshick and Dollar (ICCV 2019) claim that ImageNet pre-training speeds up
convergence but, given a long enough schedule, does not raise the final accuracy, unless
data is very scarce. Each claim here is a stated test on per-seed (paired) differences of
final AP (a seed gives both inits the same data order and sampler draws), decided by the
two-sided 95% t-interval of that difference (:func:`rethink.analysis.stats.mean_ci`) against a bound,
with three outcomes (:func:`rethink.analysis.stats.three_way`): **holds** (the interval lies wholly
on the claim's side of the bound), **refuted** (wholly on the other side), **inconclusive**
(it straddles the bound, there is one seed, or a gate below says the data cannot decide).
The margin M (``--margin``, config ``claims.margin``) is in AP points. Claims 1-5 are tested
on box AP and on mask AP, each a row:

1. Pre-training speeds up convergence: at the end of the shortest schedule, pretrained -
   scratch lies above 0. Trunk checkpoints up to 1x are shown beside it.
2. Scratch reaches pre-training given enough iterations (non-inferiority): at the longest
   schedule, pretrained - scratch lies below M.
3. The lead shrinks: (gap at the longest schedule) - (gap at the shortest) lies below 0.
4. Less data, at each regime's longest schedule and against full data: with very little
   data (a regime's fraction below 5%: the paper's 1k and 3.5k) scratch does not catch up,
   gap(regime) - gap(main) above M; with more (the 10k and 35k analogues) it does,
   gap(regime) below M.
5. Localisation: pre-training's lead is no larger at high IoU, at the longest schedule
   (gap at AP75) - (gap at AP50) lies below M (the paper's best rows: AP75 45.6 vs 44.6,
   AP50 61.8 vs 61.7).

Per-variant parts repeat claims on other variants, with the variant in main's place: each
pre-training, model and regime variant with two or more schedules gets 1, 2 and 3; each
keypoint task variant 6 (keypoint AP at its shortest schedule below M: scratch catches up
fast, the paper's Fig. 6); each dataset variant 7 (VOC mAP@0.5 at the longest schedule above
M: scratch stays behind); each recipe variant 2 and 8 (claim 2 on the box AP with test-time
augmentation, the enhanced baselines of Fig. 5).

Gates, applied to every claim:

* **Nothing learnt**: when every number a claim rests on is below M, no difference between
  them can exceed the margin: "inconclusive: neither init has learnt the task yet".
* **Levelled off**: a verdict that rests on scratch staying behind (2 and 8 refuted, 4 with
  scarce data holding, 5 refuted, 7 holding; 4 with scarce data refuted rests on main's
  scratch) needs that scratch to have levelled off: the per-seed least-squares slope of its
  AP over the schedules in the last half of the schedule range (AP per 1x) has its interval
  below M/2. Otherwise the row is inconclusive and says how far apart the inits are and how
  fast the gap closes per 1x, so that a flat gap is visible.
* **No selection on the test images**: claims compare schedules fixed in advance (the
  shortest or the longest), never a best schedule picked on the val images they are scored on.

The main family (claims 2-5 on main and the regimes, box and mask) is Holm-adjusted: a row
is decided only when its Holm-adjusted p-value (of the t-test against its bound) is below
0.05. Each row gives its power: the probability, at the seeds' spread, that its test reads
"holds" when the truth lies one margin inside the claim's side of the bound (for the
non-inferiority claims 2, 4 with more data, 5 and 6: a true difference of 0); below 80% the
row is flagged underpowered. With ``--preregistration FILE`` the rows whose claim, seeds and
margin that file fixed before the run are marked pre-registered.

A claim whose inputs are absent (no regime variant, a missing final checkpoint, a missing
init) is "not tested", with the reason, rather than an error. Verdicts are results: the exit
status is 0 whatever they are, and 2 only for unreadable or inconsistent input. With
``--tolerance T`` (config ``claims.tolerance``) a "reproduced" column compares each number a
claim rests on with the paper's at the same cell.

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
from dataclasses import dataclass, field
from typing import Mapping

import pandas as pd
import yaml

from rethink.analysis.results import (
    TRUNK,
    MetricsError,
    check_against_study,
    load_reference,
    load_study,
    ordered_schedules,
    read_metrics_csv,
    variant_finals,
)
from rethink.analysis.stats import (
    HOLDS,
    INCONCLUSIVE,
    REFUTED,
    detectable_difference,
    holm,
    mean_ci,
    power_to_hold,
    slope_per_seed,
    three_way,
    two_sided_p,
)
from rethink.core.atomic import write_text

LEVEL = 0.95
POWER = 0.8  # a design below this power to reach "holds" is flagged underpowered
UNTESTED = "not tested"
NOTHING_LEARNT = "neither init has learnt the task yet"
# a regime below this fraction of the train set is the paper's "very little data" (its 3.5k
# is 2.96% of COCO's 118k, its 10k 8.45%): there scratch is claimed not to catch up
SCARCE_FRACTION = 0.05
# per-seed differences are rounded to this many decimals (of an AP fraction): float noise such
# as 0.38 - 0.30 - (0.48 - 0.40) = -1e-17 must not count as "below 0" when nothing differs
ROUND = 12

# the metrics a claim is tested on: a label and the task prefix of its columns (<task>_AP)
BOX, MASK = ("box", "bbox"), ("mask", "segm")
KEYPOINTS, VOC, BOX_TTA = ("keypoints", "keypoints"), ("VOC mAP@0.5", "voc"), ("box, TTA", "bbox_tta")
CLAIM_METRICS = {1: (BOX, MASK), 2: (BOX, MASK), 3: (BOX, MASK), 4: (BOX, MASK), 5: (BOX, MASK),
                 6: (KEYPOINTS,), 7: (VOC,), 8: (BOX_TTA,)}
MAIN_CLAIMS = (1, 2, 3, 4, 5)
HOLM_FAMILY = (2, 3, 4, 5)  # the main variant's (and claim 4's regimes'), both metrics
# the claims about one pair of branches, repeated for each variant of these kinds
PER_VARIANT = {"regime": (1, 2, 3), "pretraining": (1, 2, 3), "model": (1, 2, 3), "task": (6,),
               "dataset": (7,), "recipe": (2, 8)}
PER_VARIANT_HEADINGS = {
    "regime": ("Regime", "By regime (`study.regimes` entries with two or more schedules): claims 1, "
               "2 and 3 on that train subset, both inits under the entry's recipe."),
    "pretraining": ("Pre-training", "By pre-training (`study.pretrainings`): the same tests on each other "
                    "pre-training's runs, against the same scratch runs."),
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
# regimes; the same shape as the figures' --reference file (rethink.analysis.results.load_reference).
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
}
# the paper's Fig. 6 (Mask R-CNN keypoints, R50-FPN GN, keypoint AP on COCO val)
KEYPOINT_EVIDENCE = "keypoint AP at 2x: random 65.6 vs pre-trained 65.5 (R50-FPN GN, Fig. 6)"
# its PASCAL VOC experiment (Faster R-CNN R101-FPN GN, trainval2007+train2012, val2012) and Fig. 5
VOC_EVIDENCE = ("VOC mAP@0.5: pre-trained 82.7 at 18k iterations vs random 77.6 at 144k "
                "(R101-FPN GN; VOC: 2.3 instances and 1.4 categories per image, COCO 7.3 and 2.9)")
ENHANCED_EVIDENCE = ("enhanced baselines (scale augmentation [640, 800], longer schedules, test-time "
                     "augmentation): mask AP with test aug, R50: random 41.6 vs pre-trained 40.9 (Fig. 5)")
LOCALISATION_EVIDENCE = ("best rows, random vs pre-trained: AP50 61.8 vs 61.7 (lead -0.1), AP75 45.6 vs "
                         "44.6 (lead -1.0); mask AP50 59.0 vs 58.5, AP75 38.9 vs 38.7")


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


def fmt_bound(side: str, bound: float) -> str:
    return f"{'>' if side == 'above' else '<'} {100 * bound:.1f}"


def _ref_join(values: Mapping[str, float]) -> str:
    return "/".join(f"{v:.1f}" for v in values.values())


# --------------------------------------------------------------------------
# data: per-seed final AP of a variant, and paired statistics over seeds
# --------------------------------------------------------------------------
def _need_inits(plan: Mapping, name: str) -> None:
    miss = [i for i in ("scratch", "pretrained") if i not in plan["inits"]]
    if miss:
        raise NotTested(f"variant {name!r} has no {'/'.join(miss)} runs (inits {plan['inits']})")


# a variant's final metrics, by (frame, variant), while evaluate() runs: every claim and
# metric reads the same table, and building it is most of the work
_FINALS: dict = {}


def _variant_finals(df: pd.DataFrame, study: Mapping, name: str) -> pd.DataFrame:
    key = (id(df), name)
    if key not in _FINALS:
        try:
            _FINALS[key] = variant_finals(df, study, name)
        except MetricsError as e:
            _FINALS[key] = NotTested(str(e))
    got = _FINALS[key]
    if isinstance(got, NotTested):
        raise got
    return got


def finals(df: pd.DataFrame, study: Mapping, name: str, column: str) -> pd.DataFrame:
    """Final `column` (e.g. bbox_AP) of every seed, init and schedule of a variant, as the
    frame's "value" column; NotTested if absent."""
    if name not in study["variants"]:
        raise NotTested(f"no variant {name!r}")
    _need_inits(study["variants"][name], name)
    if not (df["variant"] == name).any():
        raise NotTested(f"no metrics for variant {name!r}")
    fin = _variant_finals(df, study, name)
    if column not in fin.columns:
        raise NotTested(f"variant {name!r} has no {column} (its model has no such head)")
    return fin[["seed", "init", "schedule", column]].rename(columns={column: "value"})


def by_seed(fin: pd.DataFrame, init: str, schedule: str) -> pd.Series:
    sub = fin[(fin["init"] == init) & (fin["schedule"] == schedule)]
    return sub.set_index("seed")["value"]


def summary(fin: pd.DataFrame, init: str, schedule: str) -> dict:
    return mean_ci(by_seed(fin, init, schedule), LEVEL)


def gap_by_seed(fin: pd.DataFrame, schedule: str) -> pd.Series:
    """pretrained - scratch at one schedule, per seed."""
    return by_seed(fin, "pretrained", schedule) - by_seed(fin, "scratch", schedule)


def summarise(per_seed: pd.Series) -> dict:
    return mean_ci(per_seed.dropna().round(ROUND), LEVEL)


def schedule_names(study: Mapping, name: str) -> list[str]:
    return [s["name"] for s in ordered_schedules(study["variants"][name])]


@dataclass
class Level:
    """Whether one init of one variant has levelled off (see :func:`levelling`)."""
    variant: str
    init: str
    state: str          # "levelled off" | "still rising" | "cannot tell"
    slope: dict | None  # per-seed AP per 1x over the last half of the schedules, summarised
    over: str           # which schedules

    def describe(self) -> str:
        rate = f" ({fmt_ci(self.slope)} AP per 1x over {self.over})" if self.slope else f" ({self.over})"
        return f"{self.init} of {self.variant!r} {self.state}{rate}"


def _last_half(plan: Mapping) -> list[dict]:
    scheds = ordered_schedules(plan)
    longest = scheds[-1].get("multiple") or scheds[-1]["iters"]
    use = [s for s in scheds if (s.get("multiple") or s["iters"]) >= longest / 2]
    return use if len(use) >= 2 else scheds[-2:]


def levelling(fin: pd.DataFrame, plan: Mapping, variant: str, init: str, margin: float) -> Level:
    """Has `init` levelled off? The least-squares slope of its per-seed final AP against the
    schedule's multiple of 1x, over the schedules in the last half of the range (at least the
    last two): levelled off when its interval lies below margin / 2 per 1x, still rising when
    above, cannot tell otherwise (or with one schedule or one seed)."""
    scheds = ordered_schedules(plan)
    if len(scheds) < 2:
        return Level(variant, init, "cannot tell", None, f"one schedule, {scheds[0]['name']}")
    use = _last_half(plan)
    names = [s["name"] for s in use]
    x = [(s.get("multiple") or s["iters"] / plan["one_x"]) for s in use]
    sub = fin[fin["init"] == init].pivot_table(index="seed", columns="schedule", values="value")
    if not set(names) <= set(sub.columns):
        raise NotTested(f"{init} of {variant!r} lacks final AP at some of {names}")
    slope = mean_ci(slope_per_seed(x, sub[names].dropna()).round(ROUND), LEVEL)
    state = {HOLDS: "levelled off", REFUTED: "still rising"}.get(
        three_way(slope, "below", margin / 2), "cannot tell")
    return Level(variant, init, state, slope, f"{names[0]}-{names[-1]}")


def closing(fin: pd.DataFrame, plan: Mapping) -> str:
    """How far apart the inits are at the longest schedule and how fast the gap closes per 1x
    (descriptive; shown where a verdict waits for scratch to level off)."""
    scheds = ordered_schedules(plan)
    last = scheds[-1]["name"]
    gap = summarise(gap_by_seed(fin, last))
    text = f"gap at {last} {fmt_ci(gap)}"
    if len(scheds) >= 2:
        use = _last_half(plan)
        x = [(s.get("multiple") or s["iters"] / plan["one_x"]) for s in use]
        gaps = pd.DataFrame({s["name"]: gap_by_seed(fin, s["name"]) for s in use}).dropna()
        rate = mean_ci(-slope_per_seed(x, gaps).round(ROUND), LEVEL)
        text += f", closing {fmt_ci(rate)} AP per 1x"
        if rate["n"] and rate["mean"] > 0 and gap["mean"] > 0:
            text += f" (at that rate about {gap['mean'] / rate['mean']:.1f}x more to close it)"
        elif rate["n"] and gap["mean"] > 0:
            text += " (not closing)"
    return text


# --------------------------------------------------------------------------
# the claims: each builds a Test; decide() turns it into a verdict
# --------------------------------------------------------------------------
@dataclass
class Test:
    text: str                 # this run's numbers
    stat: dict                # the per-seed statistic, summarised (mean_ci)
    side: str                 # the claim: the true value lies `side` `bound`
    bound: float
    hypothesis: str
    statistic: str
    cells: list               # (variant, init, schedule) the numbers rest on
    learnt: list = field(default_factory=list)   # mean AP of those cells
    gates: dict = field(default_factory=dict)    # outcome -> [Level] that must have levelled off
    waiting: str = ""         # what an inconclusive row waiting on a gate shows (gap, closing rate)


def _cells_means(fin, variant, cells) -> list[float]:
    return [summary(fin, i, s)["mean"] for v, i, s in cells if v == variant]


def claim1(df, study, name, task, margin):
    """Ahead at the end of the shortest schedule (the paper's evidence: its shortest, 2x:
    40.3 vs 36.8); the trunk checkpoints up to 1x are shown beside it, not tested."""
    plan = study["variants"][name]
    fin = finals(df, study, name, f"{task}_AP")
    shortest = ordered_schedules(plan)[0]["name"]
    diff = summarise(gap_by_seed(fin, shortest))
    parts = [f"{shortest}: pretrained {fmt_ci(summary(fin, 'pretrained', shortest))} vs scratch "
             f"{fmt_ci(summary(fin, 'scratch', shortest))}, difference {fmt_ci(diff)}"]
    one_x = plan.get("one_x") or ordered_schedules(plan)[0]["iters"]
    sub = df[(df["variant"] == name) & (df["branch"] == TRUNK) & (df["task"] == task)
             & (df["metric"] == "AP") & (df["iteration"] > 0) & (df["iteration"] <= one_x)]
    for it in sorted(set(sub["iteration"])):
        at = sub[sub["iteration"] == it]
        ap = {i: at[at["init"] == i].set_index("seed")["value"] for i in ("pretrained", "scratch")}
        d = mean_ci((ap["pretrained"] - ap["scratch"]).dropna(), LEVEL)
        if d["n"]:
            parts.append(f"(trunk it {it}: difference {fmt_ci(d)})")
    cells = [(name, i, shortest) for i in ("pretrained", "scratch")]
    return Test("; ".join(parts), diff, "above", 0.0,
                f"pretrained is ahead at the end of the shortest schedule ({shortest})",
                f"final {task} AP at {shortest}, pretrained - scratch", cells,
                _cells_means(fin, name, cells))


def _at_longest(fin, study, name, margin, side, bound, hypothesis, statistic, gate_outcome, task,
                label="pretrained - scratch"):
    """The gap pretrained - scratch at a variant's longest schedule against a bound; the
    verdict `gate_outcome` rests on scratch staying behind, so it needs scratch levelled off."""
    plan = study["variants"][name]
    last = ordered_schedules(plan)[-1]["name"]
    diff = summarise(gap_by_seed(fin, last))
    text = (f"{last}: pretrained {fmt_ci(summary(fin, 'pretrained', last))} vs scratch "
            f"{fmt_ci(summary(fin, 'scratch', last))}, {label} {fmt_ci(diff)}")
    cells = [(name, i, last) for i in ("pretrained", "scratch")]
    gates = {gate_outcome: [levelling(fin, plan, name, "scratch", margin)]}
    return Test(text, diff, side, bound, hypothesis, f"final {task} AP at {last}, {statistic}",
                cells, _cells_means(fin, name, cells), gates, closing(fin, plan))


def claim2(df, study, name, task, margin):
    fin = finals(df, study, name, f"{task}_AP")
    return _at_longest(fin, study, name, margin, "below", margin,
                       "scratch is non-inferior to pretrained at the longest schedule: pretrained "
                       "leads by less than the margin", "pretrained - scratch", REFUTED, task)


def claim3(df, study, name, task, margin):
    fin = finals(df, study, name, f"{task}_AP")
    scheds = schedule_names(study, name)
    if len(scheds) < 2:
        raise NotTested(f"variant {name!r} has one schedule ({scheds[0]}); a trend needs two")
    first, last = scheds[0], scheds[-1]
    shrink = summarise(gap_by_seed(fin, last) - gap_by_seed(fin, first))
    if shrink["n"] == 0:
        raise NotTested("no seed has both inits at the shortest and the longest schedule")
    text = ("gap " + ", ".join(f"{s}: {fmt_ci(summarise(gap_by_seed(fin, s)))}" for s in scheds)
            + f"; gap {last} - gap {first}: {fmt_ci(shrink)}")
    cells = [(name, i, s) for s in (first, last) for i in ("pretrained", "scratch")]
    return Test(text, shrink, "below", 0.0,
                f"the gap pretrained - scratch is smaller at the longest schedule ({last}) than at "
                f"the shortest ({first})",
                f"difference of differences of final {task} AP: gap at {last} - gap at {first}",
                cells, _cells_means(fin, name, cells))


def claim4(df, study, name, task, margin):
    """One regime at its longest schedule, against main at main's longest."""
    plan = study["variants"][name]
    fraction = plan.get("fraction", 1.0)
    fin = finals(df, study, name, f"{task}_AP")
    size = f"{fraction:.4g} of the train set" + (f", {plan['train_images']} images"
                                                if plan.get("train_images") is not None else "")
    if fraction >= SCARCE_FRACTION:  # the 10k analogue and more: scratch catches up
        t = _at_longest(fin, study, name, margin, "below", margin,
                        f"with {size} (at least {SCARCE_FRACTION:.0%}: the paper's 10k or more) "
                        "scratch reaches pretrained at the regime's longest schedule",
                        "pretrained - scratch", REFUTED, task)
        t.text = f"{name}: {t.text}"
        return t
    main = study["main"]
    fin_main = finals(df, study, main, f"{task}_AP")
    last, main_last = schedule_names(study, name)[-1], schedule_names(study, main)[-1]
    extra = summarise(gap_by_seed(fin, last) - gap_by_seed(fin_main, main_last))
    text = (f"{name} {last}: pretrained {fmt_ci(summary(fin, 'pretrained', last))} vs scratch "
            f"{fmt_ci(summary(fin, 'scratch', last))}, gap {fmt_ci(summarise(gap_by_seed(fin, last)))}; "
            f"full data ({main} {main_last}) gap {fmt_ci(summarise(gap_by_seed(fin_main, main_last)))}; "
            f"extra gap {fmt_ci(extra)}")
    cells = [(name, i, last) for i in ("pretrained", "scratch")]
    gates = {HOLDS: [levelling(fin, plan, name, "scratch", margin)],
             REFUTED: [levelling(fin_main, study["variants"][main], main, "scratch", margin)]}
    return Test(text, extra, "above", margin,
                f"with {size} (below {SCARCE_FRACTION:.0%}: the paper's 1k and 3.5k) scratch stays "
                "further behind than with full data: the regime's gap exceeds main's by more than "
                "the margin, each at its longest schedule",
                f"final {task} AP, (pretrained - scratch in {name} at {last}) - (pretrained - scratch "
                f"in {main} at {main_last})", cells, _cells_means(fin, name, cells), gates,
                closing(fin, plan))


def claim5(df, study, name, task, margin):
    plan = study["variants"][name]
    fin50 = finals(df, study, name, f"{task}_AP50")
    fin75 = finals(df, study, name, f"{task}_AP75")
    last = schedule_names(study, name)[-1]
    g50, g75 = gap_by_seed(fin50, last), gap_by_seed(fin75, last)
    stat = summarise(g75 - g50)
    text = (f"{last}: gap at AP50 {fmt_ci(summarise(g50))}, at AP75 {fmt_ci(summarise(g75))}; "
            f"AP75 gap - AP50 gap {fmt_ci(stat)}")
    cells = [(name, i, last) for i in ("pretrained", "scratch")]
    fin = finals(df, study, name, f"{task}_AP")
    gates = {REFUTED: [levelling(fin, plan, name, "scratch", margin)]}
    return Test(text, stat, "below", margin,
                "pretrained's lead at AP75 exceeds its lead at AP50 by less than the margin",
                f"final {task} AP75 and AP50 at {last}: (pretrained - scratch at AP75) - "
                "(pretrained - scratch at AP50)", cells, _cells_means(fin50, name, cells), gates,
                closing(fin, plan))


def claim6(df, study, name, task, margin):
    """The paper's Fig. 6: on keypoints scratch is within noise of pretrained already at 2x."""
    fin = finals(df, study, name, f"{task}_AP")
    scheds = schedule_names(study, name)
    shortest = scheds[0]
    diff = summarise(gap_by_seed(fin, shortest))
    text = (f"{shortest}: keypoint AP pretrained {fmt_ci(summary(fin, 'pretrained', shortest))} vs "
            f"scratch {fmt_ci(summary(fin, 'scratch', shortest))}, pretrained - scratch {fmt_ci(diff)}")
    if scheds[1:]:  # descriptive: how the gap develops after the tested schedule
        text += "; later gaps " + ", ".join(f"{s}: {fmt_ci(summarise(gap_by_seed(fin, s)))}"
                                            for s in scheds[1:])
    cells = [(name, i, shortest) for i in ("pretrained", "scratch")]
    return Test(text, diff, "below", margin,
                f"scratch is non-inferior to pretrained on keypoint AP at the shortest schedule ({shortest})",
                f"final {task} AP at {shortest}, pretrained - scratch", cells, _cells_means(fin, name, cells))


def claim7(df, study, name, task, margin):
    """The paper's VOC run: scratch at its longest schedule (144k) stays below pretrained."""
    fin = finals(df, study, name, f"{task}_mAP")
    return _at_longest(fin, study, name, margin, "above", margin,
                       "pretrained's VOC mAP@0.5 stays clearly above scratch's at the longest schedule",
                       "pretrained - scratch", HOLDS, "VOC mAP@0.5")


def claim8(df, study, name, task, margin):
    """Claim 2 on the numbers with test-time augmentation (the enhanced baselines)."""
    fin = finals(df, study, name, f"{task}_AP")
    return _at_longest(fin, study, name, margin, "below", margin,
                       "with test-time augmentation, scratch is non-inferior to pretrained at the "
                       "longest schedule", "pretrained - scratch", REFUTED, task)


CLAIMS = {1: claim1, 2: claim2, 3: claim3, 4: claim4, 5: claim5, 6: claim6, 7: claim7, 8: claim8}


# --------------------------------------------------------------------------
# verdicts: the interval's outcome (Holm-adjusted in the main family), then the gates
# --------------------------------------------------------------------------
def true_for_power(side: str, bound: float, margin: float) -> float:
    """Where the power is evaluated: one margin inside the claim's side of its bound."""
    return bound + margin if side == "above" else bound - margin


def outcome(t: Test, holm_p: float | None) -> str:
    """The interval's three-way outcome; in the Holm family, decided only when the adjusted
    p-value is below 1 - LEVEL (with one test, the same as the interval excluding the bound)."""
    raw = three_way(t.stat, t.side, t.bound)
    if holm_p is None or raw == INCONCLUSIVE:
        return raw
    return raw if holm_p < 1 - LEVEL else INCONCLUSIVE


def verdict(t: Test, margin: float, holm_p: float | None) -> tuple[str, str]:
    """(outcome, reason) after the gates."""
    where = f"{fmt_ci(t.stat)} against {fmt_bound(t.side, t.bound)}"
    learnt = [m for m in t.learnt if math.isfinite(m)]
    if learnt and max(learnt) < margin:
        return INCONCLUSIVE, (f"{NOTHING_LEARNT}: every number it rests on is below the margin "
                              f"(best {pct(max(learnt))})")
    if t.stat["n"] < 2:
        return INCONCLUSIVE, f"{t.stat['n']} seed(s), no interval: {where}"
    out = outcome(t, holm_p)
    if out == INCONCLUSIVE:
        adjusted = (f"; Holm-adjusted p = {holm_p:.3f}" if holm_p is not None
                    and three_way(t.stat, t.side, t.bound) != INCONCLUSIVE else "")
        return INCONCLUSIVE, (f"the interval {where} straddles the bound{adjusted}"
                              + (f"; {t.waiting}" if t.waiting else ""))
    waiting = [lv for lv in t.gates.get(out, []) if lv.state != "levelled off"]
    if waiting:
        return INCONCLUSIVE, (f"would be {out} ({where}), but it rests on scratch staying behind and "
                              + "; ".join(lv.describe() for lv in waiting)
                              + (f"; {t.waiting}" if t.waiting else ""))
    return out, where


def describe(t: Test, margin: float) -> str:
    level = (f"level {int(LEVEL * 100)}% (two-sided t-interval over {t.stat['n']} seeds)"
             if t.stat["n"] >= 2 else f"{t.stat['n']} seed(s): no interval, inconclusive")
    gate = "; ".join(f"{o} needs {', '.join(f'{lv.init} of {lv.variant!r}' for lv in lvs)} levelled off "
                     "(slope over the last half of the schedules below half the margin per 1x)"
                     for o, lvs in t.gates.items())
    return (f"H1: {t.hypothesis}. Statistic: {t.statistic}, paired by seed. Holds if the interval "
            f"lies {t.side} {100 * t.bound:.1f}, refuted if it lies on the other side, inconclusive "
            f"if it straddles it{'; ' + gate if gate else ''}. Margin {100 * margin:.1f} AP points; {level}")


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
    if study["variants"][variant].get("kind") == "regime":
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
    regimes = [n for n, v in variants.items() if v.get("kind") == "regime"]
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
        if kind == "regime" and len(v.get("schedules") or []) < 2:
            continue  # one schedule: no schedule axis; claim 4 alone uses it
        runs += [(k, n) for k in PER_VARIANT[kind]]
    return runs


def preregistered(prereg: Mapping | None, claim: int, seeds: list, margin: float) -> str:
    if not prereg:
        return ""
    if claim not in (prereg.get("claims") or []):
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
    _FINALS.clear()
    try:
        return _evaluate(study, df, margin, reference, tolerance, prereg)
    finally:
        _FINALS.clear()


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
            if kind == "regime" and k != 4:
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
                       preregistered=preregistered(prereg, k, study["seeds"], margin) if variant == main
                       or k == 4 else "")
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


def catch_up_note(df: pd.DataFrame, study: Mapping, margin: float) -> str:
    """How long scratch took to come within the margin of pretrained, per model variant and
    for main (the paper: VGG-16 without norm 11x vs 9x; R50 GN about 3x-4x)."""
    names = [n for n, v in study["variants"].items() if v.get("kind") == "model"]
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
    for r in (r for r in rows if r["variant"] == main or (r["claim"] == 4 and r["kind"] == "regime")):
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
        lines[-1] += (f" Pre-registered: `{prereg_path}` fixed claims {prereg.get('claims')}, seeds "
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
        lines += ["", heading, "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for r in part:
            cells = [r["variant"], r["claim"], r["metric"], r["this_run"] or "--", _verdict_cell(r),
                     r["power"] if r["power"] != "" else "--"]
            cells += [r["reproduced"] or "--"] if tolerance is not None else []
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
                         notes={"model": catch_up_note(df, study, args.margin / 100.0)},
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
