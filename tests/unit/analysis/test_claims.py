"""rethink.analysis.claims on constructed metric tables: each claim's three outcomes (holds, refuted,
inconclusive), the gates (nothing learnt, levelled off), Holm's adjustment of the main family,
the power column against a Monte Carlo simulation, pre-registration, the per-variant parts,
the not-tested paths and bad input."""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import ROOT
from rethink.analysis.claim_tests import NOTHING_LEARNT, UNTESTED
from rethink.analysis.claims import PAPER, evaluate, paper_evidence, to_markdown
from rethink.analysis.inputs import load_study
from rethink.analysis.results import read_metrics_csv
from rethink.analysis.stats import HOLDS, INCONCLUSIVE, REFUTED, holm, power_to_hold, three_way, two_sided_p

WORKFLOW = ROOT / "workflow"
SEEDS = (0, 1, 2, 3, 4)
NOISE = (0.003, -0.002, 0.001, -0.001, -0.001)  # scratch's per-seed offset: paired SD ~0.19 AP
MARGIN = 2.0  # AP points, in these tests


def plan(kind="main", fraction=1.0, schedules=(1, 2, 3, 4), inits=("scratch", "pretrained")):
    # 1x = 4 iterations; schedule kx ends at 4k and forks 2 before its end
    return {"kind": kind, "norm": "GN", "regime": "full" if kind != "regime" else "r",
            "fraction": fraction, "train_images": 100, "batch_size": 2, "inits": list(inits),
            "one_x": 4, "tail": 2, "checkpoint_every": 2,
            "schedules": [{"name": f"{k}x", "multiple": float(k), "iters": 4 * k,
                           "fork": 4 * k - 2, "drops": [4 * k - 2]} for k in schedules]}


def study(extra=None, seeds=SEEDS, **kw):
    return {"inits": ["scratch", "pretrained"], "seeds": list(seeds), "main": "main",
            "variants": {"main": plan(**kw), **(extra or {})}, "pretrain": None}


def frame(values, seeds=SEEDS, loc=None, trunk=None, tasks=("bbox", "segm")):
    """values: {(variant, init, schedule): AP, or a list of per-seed APs}; scratch gets NOISE
    added to a single value. AP50 = AP + 0.2 and AP75 = AP - 0.05 unless `loc` gives
    {(variant, init, schedule): (AP50, AP75)}. trunk: {init: {iteration: AP}} of main."""
    out = []

    def add(variant, seed, init, branch, it, task, metric, v):
        out.append({"variant": variant, "seed": seed, "init": init, "branch": branch, "iteration": it,
                    "task": task, "metric": metric, "value": round(v, 6)})
    for (variant, init, sched), ap in values.items():
        k = int(sched[:-1])
        for j, s in enumerate(seeds):
            v = ap[j] if isinstance(ap, (list, tuple)) else ap + (NOISE[j % 5] if init == "scratch" else 0)
            ap50, ap75 = (loc or {}).get((variant, init, sched), (v + 0.2, v - 0.05))
            for task in tasks:
                add(variant, s, init, sched, 4 * k, task, "AP", v)
                add(variant, s, init, sched, 4 * k, task, "AP50", ap50)
                add(variant, s, init, sched, 4 * k, task, "AP75", ap75)
    for init, pts in (trunk or {}).items():
        for it, ap in pts.items():
            for s in seeds:
                add("main", s, init, "trunk", it, "bbox", "AP", ap)
    return pd.DataFrame(out)


def cells(variant, scratch, pretrained):
    """{(variant, init, schedule): AP} from two {schedule: AP} dicts."""
    return {**{(variant, "scratch", s): v for s, v in scratch.items()},
            **{(variant, "pretrained", s): v for s, v in pretrained.items()}}


# both inits levelled off (scratch gains 0.25 AP per 1x over 2x-4x); scratch catches up
CATCH_UP = cells("main", {"1x": 0.25, "2x": 0.395, "3x": 0.398, "4x": 0.40},
                 {"1x": 0.35, "2x": 0.40, "3x": 0.40, "4x": 0.40})
# scratch levelled off 8 points behind
BEHIND = cells("main", {"1x": 0.20, "2x": 0.315, "3x": 0.318, "4x": 0.32},
               {"1x": 0.35, "2x": 0.40, "3x": 0.40, "4x": 0.40})
# scratch still rising by 3 points per 1x, 10 behind at 4x
RISING = cells("main", {"1x": 0.15, "2x": 0.24, "3x": 0.27, "4x": 0.30},
               {"1x": 0.35, "2x": 0.40, "3x": 0.40, "4x": 0.40})


def rows_of(res, claim, variant="main", metric="box"):
    got = [r for r in res if r["claim"] == claim and r["variant"] == variant and r["metric"] == metric]
    assert len(got) == 1, got
    return got[0]


def run_claims(values, st=None, margin=MARGIN, **kw):
    st = st or study()
    return evaluate(st, frame(values, seeds=st["seeds"], **kw.pop("frame", {})), margin, **kw)


# --------------------------------------------------------------------------
# the three outcomes
# --------------------------------------------------------------------------
def test_three_way_on_intervals():
    ci = lambda lo, hi, n=5: {"mean": (lo + hi) / 2, "std": 1.0, "lo": lo, "hi": hi, "n": n}
    assert three_way(ci(0.5, 1.5), "above", 0) == HOLDS
    assert three_way(ci(-1.5, -0.5), "above", 0) == REFUTED
    assert three_way(ci(-0.5, 0.5), "above", 0) == INCONCLUSIVE
    assert three_way(ci(0.5, 1.5), "below", 2) == HOLDS and three_way(ci(2.5, 3), "below", 2) == REFUTED
    assert three_way({"mean": 3.0, "std": float("nan"), "lo": float("nan"), "hi": float("nan"), "n": 1},
                     "above", 0) == INCONCLUSIVE  # one seed: no interval


def test_an_exact_catch_up_with_low_noise_holds():
    res = run_claims(CATCH_UP)
    r = rows_of(res, 2)
    assert r["verdict"] == HOLDS and r["bound"] == "< 2.0", r
    assert r["this_run"].startswith("4x: pretrained 40.0 [40.0, 40.0] vs scratch 40.0 [")
    assert rows_of(res, 2, metric="mask")["verdict"] == HOLDS  # box and mask, each a row
    assert rows_of(res, 1)["verdict"] == HOLDS and rows_of(res, 3)["verdict"] == HOLDS


def test_a_clear_deficit_of_a_levelled_off_scratch_is_refuted():
    r = rows_of(run_claims(BEHIND), 2)
    assert r["verdict"] == REFUTED, r
    assert r["reason"].startswith("8.0 [") and r["reason"].endswith("against < 2.0")


def test_a_noisy_difference_is_inconclusive_not_refuted():
    """Both inits levelled off and equal on average, but the seeds disagree by +-3 points:
    the interval straddles the margin. Two outcomes used to call this "does not hold"."""
    noisy = dict(CATCH_UP)
    noisy[("main", "scratch", "4x")] = [0.37, 0.43, 0.36, 0.44, 0.40]
    noisy[("main", "scratch", "3x")] = [0.368, 0.428, 0.358, 0.438, 0.398]
    noisy[("main", "scratch", "2x")] = [0.365, 0.425, 0.355, 0.435, 0.395]
    r = rows_of(run_claims(noisy), 2)
    assert r["verdict"] == INCONCLUSIVE and "straddles the bound" in r["reason"], r


def test_a_scratch_still_rising_above_the_margin_is_not_refuted_and_shows_its_closing_rate():
    r = rows_of(run_claims(RISING), 2)
    assert r["verdict"] == INCONCLUSIVE, r
    assert r["reason"].startswith("would be refuted (10.0 [")
    assert "scratch of 'main' still rising (3.0 [" in r["reason"] and "AP per 1x over 2x-4x" in r["reason"]
    assert "gap at 4x 10.0 [" in r["reason"] and "closing 3.0 [" in r["reason"]
    assert "about 3.3x more to close it" in r["reason"]


def test_a_flat_gap_is_visible_as_not_closing():
    """40 points behind and gaining 1.1 per schedule used to hide as "still rising"; here the
    row says the gap is not closing fast enough to matter."""
    flat = cells("main", {"1x": 0.05, "2x": 0.06, "3x": 0.071, "4x": 0.082},
                 {"1x": 0.45, "2x": 0.46, "3x": 0.471, "4x": 0.482})
    r = rows_of(run_claims(flat, margin=2.0), 2)
    # scratch gains 1.1 per 1x, above half the margin: it has not levelled off
    assert r["verdict"] == INCONCLUSIVE and "closing 0.0 [" in r["reason"] and "(not closing)" in r["reason"]


def test_levelling_off_is_judged_per_1x_whatever_the_step_between_schedules():
    """Schedules 1x, 2x, 4x, 6x: a gain of 1.8 points from 4x to 6x is 0.9 per 1x, below half
    the 2-point margin, so scratch has levelled off (a per-step gain of 1.8 would not have)."""
    st = study(schedules=(1, 2, 4, 6))
    vals = cells("main", {"1x": 0.20, "2x": 0.30, "4x": 0.312, "6x": 0.33},
                 {"1x": 0.35, "2x": 0.40, "4x": 0.40, "6x": 0.40})
    r = rows_of(run_claims(vals, st), 2)
    assert r["verdict"] == REFUTED, r  # 7 behind, scratch levelled off at 0.9 per 1x over 4x-6x


def test_claim_1_refuted_when_pretrained_is_behind_early_and_3_when_the_gap_grows():
    vals = cells("main", {"1x": 0.30, "2x": 0.31, "3x": 0.31, "4x": 0.31},
                 {"1x": 0.20, "2x": 0.35, "3x": 0.40, "4x": 0.40})
    res = run_claims(vals)
    assert rows_of(res, 1)["verdict"] == REFUTED
    assert rows_of(res, 3)["verdict"] == REFUTED  # gap -10 at 1x, +9 at 4x


def test_less_data_shrinking_the_gap_refutes_claim_4():
    """The default's pattern: the 1k regime's gap (7 points) is smaller than full data's (8)."""
    st = study({"1k": plan("regime", 0.008, schedules=(1, 2, 3))})
    vals = {**BEHIND, **cells("1k", {"1x": 0.04, "2x": 0.05, "3x": 0.05}, {"1x": 0.11, "2x": 0.12, "3x": 0.12})}
    r = rows_of(run_claims(vals, st), 4, variant="1k")
    assert r["verdict"] == REFUTED and r["kind"] == "regime", r
    assert "extra gap -1.0 [" in r["this_run"] and r["bound"] == "> 2.0"
    assert "(below 5%: the paper's 1k and 3.5k)" in r["method"]


def test_scarce_data_leaving_scratch_far_behind_holds_claim_4_once_it_has_levelled_off():
    st = study({"1k": plan("regime", 0.008, schedules=(1, 2, 3))})
    levelled = cells("1k", {"1x": 0.03, "2x": 0.035, "3x": 0.035}, {"1x": 0.20, "2x": 0.21, "3x": 0.21})
    res = run_claims({**CATCH_UP, **levelled}, st)
    assert rows_of(res, 4, variant="1k")["verdict"] == HOLDS
    rising = cells("1k", {"1x": 0.03, "2x": 0.06, "3x": 0.09}, {"1x": 0.20, "2x": 0.21, "3x": 0.21})
    r = rows_of(run_claims({**CATCH_UP, **rising}, st), 4, variant="1k")
    assert r["verdict"] == INCONCLUSIVE and "scratch of '1k' still rising" in r["reason"], r


def test_the_10k_analogue_is_tested_as_catching_up():
    st = study({"10k": plan("regime", 0.0845, schedules=(1, 2, 3))})
    vals = {**CATCH_UP, **cells("10k", {"1x": 0.20, "2x": 0.30, "3x": 0.30}, {"1x": 0.28, "2x": 0.305, "3x": 0.305})}
    r = rows_of(run_claims(vals, st), 4, variant="10k")
    assert r["verdict"] == HOLDS and r["this_run"].startswith("10k: 3x: pretrained 30.5"), r
    assert "(at least 5%: the paper's 10k or more)" in r["method"]


def test_localisation_claim_on_ap75_against_ap50():
    loc_same = {("main", "pretrained", "4x"): (0.60, 0.45), ("main", "scratch", "4x"): (0.60, 0.45)}
    assert rows_of(run_claims(CATCH_UP, frame={"loc": loc_same}), 5)["verdict"] == HOLDS
    # pretrained's lead 1 point at AP50 but 6 at AP75, scratch levelled off: refuted
    loc_hi = {("main", "pretrained", "4x"): (0.61, 0.50), ("main", "scratch", "4x"): (0.60, 0.44)}
    r = rows_of(run_claims(CATCH_UP, frame={"loc": loc_hi}), 5)
    assert r["verdict"] == REFUTED and "AP75 gap - AP50 gap 5.0 [" in r["this_run"], r


def test_nothing_learnt_is_inconclusive_for_every_claim():
    """The user's handwritten digits: both inits at 0.6-1.0 AP."""
    st = study({"1k": plan("regime", 0.008, schedules=(1, 2))})
    floor = {(v, i, s): 0.008 for v, scheds in (("main", ("1x", "2x", "3x", "4x")), ("1k", ("1x", "2x")))
             for i in ("scratch", "pretrained") for s in scheds}
    for r in evaluate(st, frame(floor, loc={k: (0.01, 0.005) for k in floor}), MARGIN):
        assert r["verdict"] == INCONCLUSIVE and r["reason"].startswith(NOTHING_LEARNT), r


def test_one_seed_is_inconclusive_everywhere():
    st = study(seeds=(0,))
    for r in run_claims(BEHIND, st):
        assert r["verdict"] in (INCONCLUSIVE, UNTESTED), r
    r = rows_of(run_claims(BEHIND, st), 2)
    assert r["reason"].startswith("1 seed(s), no interval: 7.7 (n=1) against < 2.0")


# --------------------------------------------------------------------------
# Holm, power, pre-registration
# --------------------------------------------------------------------------
def test_holm_matches_a_hand_computation():
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, float("nan"), 0.01]) == pytest.approx([0.5, float("nan"), 0.02], nan_ok=True)


def test_holm_leaves_a_row_inconclusive_that_one_test_alone_would_decide():
    """Claim 2 on its own excludes the margin (p ~0.03), but it is one of six in the family
    (claims 2, 3 and 5, box and mask), and Holm doubles the two largest p-values."""
    from rethink.analysis.stats import mean_ci
    gaps = [0.032, 0.023, 0.030, 0.022, 0.036]  # pretrained - scratch at 4x, per seed
    vals = dict(BEHIND)
    for s, d in (("4x", 0.0), ("3x", 0.002), ("2x", 0.005)):
        vals[("main", "scratch", s)] = [0.40 - g - d for g in gaps]
    raw = two_sided_p(mean_ci(gaps), 0.02)
    assert 0.025 < raw < 0.05  # alone: decided
    r = rows_of(run_claims(vals), 2)
    assert r["verdict"] == INCONCLUSIVE and "Holm-adjusted p = " in r["reason"], r
    assert r["holm_p"] == pytest.approx(2 * raw, abs=1e-3)
    assert rows_of(run_claims(vals), 1)["holm_p"] == ""  # claim 1 is not in the family


@pytest.mark.parametrize("side,bound,true,std", [("below", 3.0, 0.0, 1.6), ("below", 1.0, 0.0, 1.6),
                                                 ("above", 0.0, 2.0, 1.5), ("above", 3.0, 6.0, 2.0)])
def test_power_agrees_with_a_monte_carlo_of_the_same_test(side, bound, true, std):
    """20,000 simulated 5-seed studies, their intervals computed at once; three_way itself
    decides the first 300 of them, and must agree with the vectorised rule there."""
    from scipy import stats as st

    from rethink.analysis.stats import mean_ci
    rng = np.random.default_rng(0)
    sims, n = 20000, 5
    draws = rng.normal(true, std, size=(sims, n))
    mean, half = draws.mean(axis=1), st.t.ppf(0.975, n - 1) * draws.std(axis=1, ddof=1) / np.sqrt(n)
    held = (mean - half > bound) if side == "above" else (mean + half < bound)
    assert [three_way(mean_ci(d), side, bound) == HOLDS for d in draws[:300]] == held[:300].tolist()
    assert power_to_hold(std, n, side, bound, true) == pytest.approx(held.mean(), abs=0.02)


def test_power_of_the_issue_s_design():
    # 5 seeds, SD 1.6, margin 1.0, true difference 0: about 0.18-0.19; margin 3.0: about 0.87
    assert power_to_hold(1.6, 5, "below", 1.0, 0.0) == pytest.approx(0.19, abs=0.01)
    assert power_to_hold(1.6, 5, "below", 3.0, 0.0) == pytest.approx(0.87, abs=0.01)


def test_underpowered_rows_are_flagged():
    noisy = dict(CATCH_UP)
    noisy[("main", "scratch", "4x")] = [0.37, 0.43, 0.36, 0.44, 0.40]
    res = run_claims(noisy)
    r = rows_of(res, 2)
    assert r["underpowered"] is True and r["power"] < 0.8
    assert rows_of(run_claims(CATCH_UP), 2)["underpowered"] is False
    md = to_markdown(res, MARGIN, list(SEEDS))
    assert "(underpowered)" in md and "flagged underpowered (2 box" in md


def test_preregistered_rows_are_marked():
    pre = {"claims": [1, 2, 3, 4, 5], "seeds": list(SEEDS), "margin": MARGIN}
    res = run_claims(CATCH_UP, prereg=pre)
    assert {r["preregistered"] for r in res if r["verdict"] != UNTESTED} == {"yes"}
    res = run_claims(CATCH_UP, prereg={**pre, "seeds": [100, 101, 102, 103, 104]})
    assert rows_of(res, 2)["preregistered"].startswith("no: run's seeds [0, 1, 2, 3, 4]")
    res = run_claims(CATCH_UP, prereg={**pre, "margin": 3.0})
    assert rows_of(res, 2)["preregistered"] == "no: margin 2.0 is not the registered 3.0"
    md = to_markdown(res, MARGIN, list(SEEDS), prereg=pre, prereg_path="pre.yaml")
    assert "Pre-registered: `pre.yaml` fixed claims [1, 2, 3, 4, 5]" in md


def test_paper_column_cites_the_paper():
    ev = paper_evidence(PAPER)
    assert "36.8/39.5/40.6/40.7/41.3 vs 40.3/40.8/40.9/40.9/41.1" in ev[1]
    assert ev[2] == "at the longest schedule (6x): random 41.3 vs pre-trained 41.1"
    assert ev[3].endswith("2x: +3.5, 3x: +1.3, 4x: +0.3, 5x: +0.2, 6x: -0.2")
    assert "10k: 25.9 vs 26.0; 3.5k: 9.3 vs 16.0; 1k: 3.5 vs 9.9" in ev[4]
    assert "AP75 45.6 vs 44.6" in ev[5]


# --------------------------------------------------------------------------
# not tested
# --------------------------------------------------------------------------
def test_not_tested_paths():
    res = run_claims(CATCH_UP)
    r = rows_of(res, 4)
    assert r["verdict"] == UNTESTED and "no regime" in r["method"]
    # a missing final checkpoint: the final-AP claims say which
    vals = {k: v for k, v in CATCH_UP.items() if k != ("main", "scratch", "2x")}
    for r in run_claims(vals):
        if r["claim"] != 4:
            assert r["verdict"] == UNTESTED and "init=scratch schedule=2x" in r["method"], r
    # one schedule: claim 3 needs two
    st = study(schedules=(1,))
    res = run_claims(cells("main", {"1x": 0.3}, {"1x": 0.35}), st)
    assert rows_of(res, 3)["verdict"] == UNTESTED and "one schedule" in rows_of(res, 3)["method"]
    assert rows_of(res, 1)["verdict"] == HOLDS


def test_scratch_only_study_is_not_tested():
    st = study(inits=("scratch",))
    st["inits"] = ["scratch"]
    res = evaluate(st, frame({("main", "scratch", s): 0.3 for s in ("1x", "2x", "3x", "4x")}), MARGIN)
    assert {r["verdict"] for r in res} == {UNTESTED}
    assert "no pretrained runs" in res[0]["method"]


# --------------------------------------------------------------------------
# per-variant parts
# --------------------------------------------------------------------------
def test_each_model_variant_gets_claims_1_to_3_on_its_own_runs():
    extra = {"R18": {**plan("model", schedules=(1, 2, 4)), "backbone": {"depth": 18, "width": 32},
                     "model_overrides": {"depth": 18}, "pretrain": {"epochs": 32, "top1": 0.85}}}
    st = study(extra)
    vals = {**CATCH_UP, **cells("R18", {"1x": 0.31, "2x": 0.41, "4x": 0.415}, {"1x": 0.40, "2x": 0.415, "4x": 0.42})}
    ref = {**PAPER, "variants": {"R18": {"scratch": {"4x": 41.0}, "pretrained": {"4x": 44.0}}}}
    res = run_claims(vals, st, reference=ref, tolerance=1.0)
    got = [(r["claim"], r["metric"]) for r in res if r["variant"] == "R18"]
    assert got == [(1, "box"), (1, "mask"), (2, "box"), (2, "mask"), (3, "box"), (3, "mask")]
    r = rows_of(res, 2, "R18")
    assert r["verdict"] == HOLDS and r["this_run"].startswith("depth 18 (pre-trained 32 epochs, 85.0% top-1): 4x")
    assert r["reproduced"].startswith("differs: pretrained R18 4x beyond 1.0")
    md = to_markdown(res, MARGIN, list(SEEDS), tolerance=1.0)
    assert "By model (`study.models`)" in md and "| R18 | 2 | box |" in md


def test_each_keypoint_variant_gets_claim_6_at_its_shortest_schedule():
    st = study({"kp": {**plan("task", schedules=(1, 2)), "task": "keypoints"}})
    kp = {("kp", "pretrained", "1x"): 0.505, ("kp", "scratch", "1x"): 0.50,
          ("kp", "pretrained", "2x"): 0.55, ("kp", "scratch", "2x"): 0.55}
    df = pd.concat([frame(CATCH_UP), frame(kp, tasks=("keypoints", "bbox"))])
    r = [r for r in evaluate(st, df, MARGIN) if r["variant"] == "kp"]
    assert [(x["claim"], x["metric"]) for x in r] == [(6, "keypoints")] and r[0]["verdict"] == HOLDS
    assert "; later gaps 2x: " in r[0]["this_run"] and "65.6" in r[0]["paper"]
    kp[("kp", "scratch", "1x")] = 0.40  # 10.5 behind at 1x
    df = pd.concat([frame(CATCH_UP), frame(kp, tasks=("keypoints", "bbox"))])
    assert [r for r in evaluate(st, df, MARGIN) if r["variant"] == "kp"][0]["verdict"] == REFUTED


def voc_frame(per):
    df = frame(per, tasks=("voc",))
    df = df[df["metric"] == "AP"].copy()
    df["metric"] = "mAP"
    boxes = frame(per, tasks=("bbox",))
    return pd.concat([df, boxes])


@pytest.mark.parametrize("scratch_6x, verdict", [(0.50, HOLDS), (0.595, REFUTED)])
def test_each_dataset_variant_gets_claim_7_on_its_voc_map(scratch_6x, verdict):
    st = study({"voc": {**plan("dataset", schedules=(1, 2, 6)), "dataset": "voc"}})
    per = cells("voc", {"1x": 0.30, "2x": scratch_6x - 0.01, "6x": scratch_6x}, {"1x": 0.60, "2x": 0.60, "6x": 0.60})
    res = evaluate(st, pd.concat([frame(CATCH_UP), voc_frame(per)]), MARGIN)
    r = [x for x in res if x["variant"] == "voc"]
    assert [(x["claim"], x["metric"]) for x in r] == [(7, "VOC mAP@0.5")]
    assert r[0]["verdict"] == verdict, r[0]
    assert "82.7" in r[0]["paper"] and "final VOC mAP@0.5 AP at 6x" in r[0]["method"]


def test_claim_7_waits_for_scratch_to_level_off():
    """docs/results.md's VOC case: scratch still gains 14 points from 2x to 6x."""
    st = study({"voc": {**plan("dataset", schedules=(1, 2, 6)), "dataset": "voc"}})
    per = cells("voc", {"1x": 0.20, "2x": 0.30, "6x": 0.44}, {"1x": 0.60, "2x": 0.60, "6x": 0.60})
    r = [x for x in evaluate(st, pd.concat([frame(CATCH_UP), voc_frame(per)]), MARGIN) if x["variant"] == "voc"][0]
    assert r["verdict"] == INCONCLUSIVE and r["reason"].startswith("would be holds"), r


def test_each_recipe_variant_gets_claim_2_and_on_its_tta_numbers_claim_8():
    st = study({"enh": plan("recipe", schedules=(6, 9))})
    plain = cells("enh", {"6x": 0.419, "9x": 0.42}, {"6x": 0.42, "9x": 0.42})
    tta = cells("enh", {"6x": 0.399, "9x": 0.40}, {"6x": 0.44, "9x": 0.44})  # 4 points behind
    res = evaluate(st, pd.concat([frame(CATCH_UP), frame(plain), frame(tta, tasks=("bbox_tta",))]), MARGIN)
    r = [(x["claim"], x["metric"], x["verdict"]) for x in res if x["variant"] == "enh"]
    assert r == [(2, "box", HOLDS), (2, "mask", HOLDS), (8, "box, TTA", REFUTED)]
    res = evaluate(st, pd.concat([frame(CATCH_UP), frame(plain)]), MARGIN)
    row = [x for x in res if x["variant"] == "enh"][-1]
    assert row["verdict"] == UNTESTED and "has no bbox_tta_AP" in row["method"]


def test_a_regime_with_a_schedule_axis_gets_claims_1_to_3_and_claim_4():
    st = study({"35k": plan("regime", 0.3, schedules=(1, 2, 6))})
    per = cells("35k", {"1x": 0.20, "2x": 0.355, "6x": 0.362}, {"1x": 0.30, "2x": 0.36, "6x": 0.365})
    res = run_claims({**CATCH_UP, **per}, st)
    got = [r["claim"] for r in res if r["variant"] == "35k" and r["metric"] == "box"]
    assert got == [4, 1, 2, 3]
    assert rows_of(res, 4, "35k")["verdict"] == HOLDS and rows_of(res, 2, "35k")["verdict"] == HOLDS
    assert rows_of(res, 4, "35k")["paper"].startswith("bbox AP, random vs pre-trained: 35k: 36.3 vs 36.3")
    md = to_markdown(res, MARGIN, list(SEEDS))
    assert "By regime" in md and "| 35k | 2 | box |" in md


# --------------------------------------------------------------------------
# command line
# --------------------------------------------------------------------------
def run(*args):
    env = dict(os.environ, PYTHONPATH=str(WORKFLOW))
    return subprocess.run([sys.executable, "-m", "rethink.analysis.claims", *map(str, args)], env=env,
                          capture_output=True, text=True, timeout=120)


def write(d: Path, st, df):
    (d / "study.json").write_text(json.dumps(st))
    df.to_csv(d / "all.csv", index=False)
    return d / "study.json", d / "all.csv"


def test_cli_writes_csv_and_markdown(tmp_path):
    s, m = write(tmp_path, study(), frame(BEHIND))
    pre = tmp_path / "pre.yaml"
    pre.write_text("claims: [1, 2, 3, 4, 5]\nseeds: [0, 1, 2, 3, 4]\nmargin: 2.0\n")
    noise = tmp_path / "noise.json"
    noise.write_text(json.dumps({"summary": {"100": {"difference_se_mean": 0.011, "pairs": 1},
                                             "500": {"difference_se_mean": 0.0049, "pairs": 1}}}))
    r = run("--study", s, "--metrics", m, "--out-csv", tmp_path / "c.csv", "--out-md", tmp_path / "c.md",
            "--margin", "2.0", "--preregistration", pre, "--val-noise", noise)
    assert r.returncode == 0, r.stderr
    got = {(g["claim"], g["metric"]): g for g in csv.DictReader(open(tmp_path / "c.csv"))}
    assert got[("2", "box")]["verdict"] == REFUTED and got[("2", "box")]["preregistered"] == "yes"
    assert got[("4", "box")]["verdict"] == UNTESTED
    md = (tmp_path / "c.md").read_text()
    assert "**refuted**: 8.0 [" in md and "Seeds: 5 (0, 1, 2, 3, 4)" in md and "Holm-adjusted" in md
    assert "1.10 at 100 images (1 pair(s)); 0.49 at 500 images (1 pair(s)) AP points, against a quarter of the margin, 0.50" in md
    assert "**refuted**" in r.stdout  # the table is printed too
    # the round trip through the CSV reader gives the same verdicts as the frame
    again = evaluate(load_study(s), read_metrics_csv(m), 2.0)
    assert [x["verdict"] for x in again] == [g["verdict"] for g in got.values()]


@pytest.mark.parametrize("case,expect", [
    ("missing_metrics", "gone.csv: metrics CSV not found"),
    ("missing_study", "nope.json: study file not found"),
    ("unknown_variant", "unknown variant(s) ['5k']"),
    ("unknown_seed", "seed(s) [7] not in study.seeds"),
    ("study_key", "study is missing key 'main'"),
    ("margin", "--margin must be a non-negative number"),
    ("tolerance", "--tolerance must be a non-negative number"),
    ("prereg_missing", "pre.yaml: pre-registration file not found"),
    ("prereg_seeds", "pre.yaml: key 'seeds' is missing or not a list of integer seeds"),
    ("val_noise", "noise.json: no 'summary' (write it with python -m rethink.evaluation.val_noise)"),
])
def test_bad_input_exits_2_naming_it(tmp_path, case, expect):
    st = study()
    df = frame(CATCH_UP)
    s, m = write(tmp_path, st, df)
    extra = []
    if case == "missing_metrics":
        m = tmp_path / "gone.csv"
    elif case == "missing_study":
        s = tmp_path / "nope.json"
    elif case == "unknown_variant":
        df.loc[0, "variant"] = "5k"
        df.to_csv(m, index=False)
    elif case == "unknown_seed":
        df.loc[0, "seed"] = 7
        df.to_csv(m, index=False)
    elif case == "study_key":
        del st["main"]
        s.write_text(json.dumps(st))
    elif case == "margin":
        extra = ["--margin", "-1"]
    elif case == "tolerance":
        extra = ["--tolerance", "nan"]
    elif case == "val_noise":
        (tmp_path / "noise.json").write_text("{}")
        extra = ["--val-noise", tmp_path / "noise.json"]
    elif case.startswith("prereg"):
        if case == "prereg_seeds":
            (tmp_path / "pre.yaml").write_text("claims: [2]\nseeds: three\nmargin: 1\n")
        extra = ["--preregistration", tmp_path / "pre.yaml"]
    r = run("--study", s, "--metrics", m, "--out-csv", tmp_path / "c.csv",
            "--out-md", tmp_path / "c.md", *extra)
    assert r.returncode == 2, r.stdout + r.stderr
    assert expect in r.stderr, r.stderr
    if case.startswith("missing"):
        assert str(tmp_path) in r.stderr
    assert "Traceback" not in r.stderr and not (tmp_path / "c.csv").exists()


# --------------------------------------------------------------------------
# claim 9: a self-supervised pre-training against its base's supervised one
# --------------------------------------------------------------------------
def ssl_study(method="simsiam"):
    ssl = {**plan("pretraining"), "scratch_from": "main", "pretrain_overrides": {"method": method}}
    return study({"ssl": ssl})


def ssl_values(lead):
    """main (catches up) and `ssl`: main's scratch runs, its pretrained `lead` (per seed) above main's."""
    ssl_pre = {s: [v + d for d in lead] for s, v in (("1x", 0.35), ("2x", 0.40), ("3x", 0.40), ("4x", 0.40))}
    shared = {k: v for k, v in CATCH_UP.items() if k[1] == "scratch"}
    return {**CATCH_UP, **{("ssl",) + k[1:]: v for k, v in shared.items()},
            **{("ssl", "pretrained", s): v for s, v in ssl_pre.items()}}


@pytest.mark.parametrize("lead, verdict", [
    ((0.03, 0.032, 0.028, 0.031, 0.029), HOLDS),       # 3 points ahead at 4x, every seed
    ((-0.03, -0.032, -0.028, -0.031, -0.029), REFUTED),  # 3 points behind
    ((0.01, -0.01, 0.012, -0.012, 0.0), INCONCLUSIVE),   # straddles 0
])
def test_claim9_compares_the_ssl_init_with_the_supervised_one_at_the_longest_schedule(lead, verdict):
    res = run_claims(ssl_values(lead), ssl_study())
    r = rows_of(res, 9, variant="ssl")
    assert r["verdict"] == verdict, r
    assert r["this_run"].startswith("pre-trained") is False and "4x: SimSiam " in r["this_run"]
    assert "vs supervised (main)" in r["this_run"] and r["bound"] == "> 0.0"
    assert [x["claim"] for x in res if x["variant"] == "ssl" and x["metric"] == "box"] == [1, 2, 3, 9]


def test_claim9_is_asked_of_self_supervised_pre_trainings_alone():
    st = ssl_study(method="supervised")  # another supervised pre-training (pre6ep): claims 1-3
    res = run_claims(ssl_values((0.0,) * 5), st)
    assert [x["claim"] for x in res if x["variant"] == "ssl" and x["metric"] == "box"] == [1, 2, 3]


def test_a_pre_registration_by_variant_marks_the_variant_rows():
    pre = {"claims": [1, 2, 3, 4, 5], "seeds": list(SEEDS), "margin": MARGIN, "variants": {"ssl": [1, 2, 3, 9]}}
    res = run_claims(ssl_values((0.03,) * 5), ssl_study(), prereg=pre)
    assert rows_of(res, 9, variant="ssl")["preregistered"] == "yes"
    res = run_claims(ssl_values((0.03,) * 5), ssl_study(), prereg={**pre, "variants": {"ssl": [9]}})
    assert rows_of(res, 2, variant="ssl")["preregistered"] == "no: claim 2 of ssl not in the pre-registration"
    md = to_markdown(res, MARGIN, list(SEEDS), prereg=pre, prereg_path="ssl.yaml")
    assert "(by variant: ssl: [1, 2, 3, 9])" in md and "| Pre-registered |" in md.split("By pre-training")[1]
    without = run_claims(ssl_values((0.03,) * 5), ssl_study(), prereg={k: v for k, v in pre.items() if k != "variants"})
    assert rows_of(without, 9, variant="ssl")["preregistered"] == ""  # as before: variant rows unmarked


def test_the_committed_pre_registrations_load_and_a_bad_variants_key_is_named(tmp_path):
    from rethink.analysis.claims import load_preregistration
    from rethink.analysis.inputs import MetricsError
    ssl = load_preregistration(str(ROOT / "docs/preregistration/ssl.yaml"))
    assert ssl["variants"] == {"vit": [1, 2, 3], "simsiam": [1, 2, 3, 9], "vit_mae": [1, 2, 3, 9]}
    assert load_preregistration(str(ROOT / "docs/preregistration/default.yaml"))["claims"] == [1, 2, 3, 4, 5]
    bad = tmp_path / "bad.yaml"
    bad.write_text("claims: [1]\nseeds: [0]\nmargin: 3.0\nvariants: {ssl: 9}\n")
    with pytest.raises(MetricsError, match="bad.yaml: key 'variants' is not a mapping of variant names to lists"):
        load_preregistration(str(bad))


def test_the_catch_up_note_says_how_long_scratch_takes_to_reach_each_pre_training():
    """Descriptive: against main's supervised pre-training scratch comes within the margin at
    2x; against a self-supervised one 3 points further ahead, not within 4x."""
    from rethink.analysis.claims import catch_up_note
    st = ssl_study()
    note = catch_up_note(frame(ssl_values((0.03,) * 5)), st, MARGIN / 100, "pretraining")
    assert note.endswith("main: 2x; ssl: not within 4x.")
    assert catch_up_note(frame(ssl_values((0.03,) * 5)), st, MARGIN / 100, "model") == ""
