"""The paper's claims as stated tests on this run's metrics, each with three outcomes.

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
augmentation, the enhanced baselines of Fig. 5). A self-supervised pre-training variant
(pretrain.method mae or simsiam) also gets

9. Self-supervised ahead of supervised (ViTDet's finding for MAE): at the variant's longest
   schedule, (its pretrained runs) - (its base's pretrained runs, supervised), paired by
   seed, lies above 0. Neither init is scratch, so no levelling-off gate applies.

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

The table and its command line: rethink.analysis.claims.
"""
from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Mapping

import pandas as pd

from rethink.analysis.inputs import MetricsError, ordered_schedules, pretrain_method
from rethink.analysis.results import variant_finals
from rethink.analysis.stats import (
    HOLDS,
    INCONCLUSIVE,
    LEVEL,
    REFUTED,
    mean_ci,
    slope_per_seed,
    three_way,
)
from rethink.core.kinds import KINDS, PRETRAIN_METHODS
from rethink.core.schedule import TRUNK

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
                 6: (KEYPOINTS,), 7: (VOC,), 8: (BOX_TTA,), 9: (BOX, MASK)}
MAIN_CLAIMS = (1, 2, 3, 4, 5)
HOLM_FAMILY = (2, 3, 4, 5)  # the main variant's (and claim 4's regimes'), both metrics
# the claims about one pair of branches, repeated for each variant of these kinds
PER_VARIANT = {k.name: k.claims for k in KINDS.values() if k.claims}  # rethink.core.kinds




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


@contextmanager
def cached_finals():
    """Within it, each variant's final metrics are read from the metrics frame once."""
    _FINALS.clear()
    try:
        yield
    finally:
        _FINALS.clear()


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


def claim9(df, study, name, task, margin):
    """A self-supervised pre-training's pretrained runs against its base's supervised ones."""
    v = study["variants"][name]
    base = v.get("scratch_from") or study["main"]
    if pretrain_method(study["variants"][base] if base != study["main"] else {"pretrain": study.get("pretrain")}) != "supervised":
        raise NotTested(f"{base!r}, the base of {name!r}, is not pre-trained with labels")
    fin, fin_base = finals(df, study, name, f"{task}_AP"), finals(df, study, base, f"{task}_AP")
    last = schedule_names(study, name)[-1]
    ssl, sup = summary(fin, "pretrained", last), summary(fin_base, "pretrained", last)
    diff = summarise(by_seed(fin, "pretrained", last) - by_seed(fin_base, "pretrained", last))
    label = PRETRAIN_METHODS.get(pretrain_method(v), pretrain_method(v))
    text = f"{last}: {label} {fmt_ci(ssl)} vs supervised ({base}) {fmt_ci(sup)}, difference {fmt_ci(diff)}"
    cells = [(name, "pretrained", last), (base, "pretrained", last)]
    return Test(text, diff, "above", 0.0,
                f"{label} pre-training is ahead of {base}'s supervised pre-training at the longest schedule ({last})",
                f"final {task} AP at {last}, {label} pretrained - supervised pretrained", cells,
                [ssl["mean"], sup["mean"]])


CLAIMS = {1: claim1, 2: claim2, 3: claim3, 4: claim4, 5: claim5, 6: claim6, 7: claim7, 8: claim8, 9: claim9}


def applies(claim: int, variant: Mapping) -> bool:
    """Whether a per-variant claim is asked of a study.json variant: claim 9 of the
    self-supervised pre-trainings alone; the others of every variant of their kinds."""
    return claim != 9 or pretrain_method(variant) != "supervised"


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
