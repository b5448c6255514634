"""Test the paper's five claims on this run's metrics and write a verdict table.

He, Girshick and Dollar (ICCV 2019) claim that ImageNet pre-training speeds up
convergence but, given a long enough schedule, does not raise the final accuracy,
unless data is very scarce. Each claim is turned into a comparison of this run's bbox AP
(mean over seeds with a 95% t-interval from :func:`rethink.stats.mean_ci`):

1. Pre-trained is ahead early: at the end of the main variant's shortest schedule (the
   paper's evidence: its shortest, 2x), the difference pretrained - scratch, paired by seed
   (a seed fixes the data order and sampler draws of both inits), has its interval above 0.
   Trunk checkpoints up to 1x are reported beside it.
2. Scratch catches up: the best final scratch AP over the main variant's schedules reaches
   the best final pretrained AP: scratch's mean is higher or the intervals overlap.
3. The advantage shrinks: the gap pretrained - scratch (paired by seed) in final AP is
   smaller at the longest schedule than at the shortest.
4. Scarce data hurts scratch: in the regime variant with the smallest fraction, the best
   pretrained interval lies entirely above the best scratch interval.
5. Longer schedules help the pretrained model little: over the schedules of multiple >= 2
   (all schedules when fewer than two are), its gain from the shortest to its best
   schedule is less than half of scratch's gain over the same schedules.

With one seed there is no interval; "above" then means ahead by more than ``--tolerance``
AP points and "reaches" means at most that far behind, and the method column says so. A
claim whose inputs are absent (no regime variant, a missing final checkpoint, a missing
init) is "not tested", with the reason, rather than an error. Verdicts are results: the
exit status is 0 whatever they are, and 2 only for unreadable or inconsistent input.

    python -m rethink.claims --study study.json --metrics all_metrics.csv \\
        --out-csv claims.csv --out-md claims.md [--tolerance 1.0] [--reference paper.json]
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
from rethink.stats import mean_ci

LEVEL = 0.95
TASK, METRIC = "bbox", "AP"
COLUMN = f"{TASK}_{METRIC}"
HOLDS, FAILS, UNTESTED = "holds", "does not hold", "not tested"
COLUMNS = ["claim", "statement", "paper", "this_run", "verdict", "method"]

# The paper's R50-FPN GN bbox AP (random init vs ImageNet pre-trained) and its less-data
# regimes; the same shape as the figures' --reference file (rethink.results.load_reference).
PAPER = {
    "metric": "bbox_AP", "task": "bbox",
    "schedules": {"scratch": {"2x": 36.8, "3x": 39.5, "4x": 40.6, "5x": 40.7, "6x": 41.3},
                  "pretrained": {"2x": 40.3, "3x": 40.8, "4x": 40.9, "5x": 40.9, "6x": 41.1}},
    "regimes": {"10k": {"scratch": 25.9, "pretrained": 26.0},
                "3.5k": {"scratch": 9.3, "pretrained": 16.0},
                "1k": {"scratch": 3.5, "pretrained": 9.9}},
}

STATEMENTS = {
    1: "Pre-training speeds up convergence: the pretrained model is ahead early in training",
    2: "With a long enough schedule, training from scratch reaches the pretrained model's best AP",
    3: "Pre-training's advantage in final AP shrinks as the schedule grows",
    4: "With little data (the smallest regime), training from scratch falls clearly behind",
    5: "Longer schedules help the pretrained model little (less than half of scratch's gain)",
}


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
# comparisons: intervals with n >= 2 on both sides, else the tolerance
# --------------------------------------------------------------------------
def _has_ci(*cis) -> bool:
    return all(c["n"] >= 2 and math.isfinite(c["lo"]) for c in cis)


def above(a: Mapping, b: Mapping, tol: float) -> bool:
    """a's interval entirely above b's (with one seed: a ahead by more than tol)."""
    if _has_ci(a, b):
        return a["lo"] > b["hi"]
    return a["mean"] - b["mean"] > tol


def reaches(a: Mapping, b: Mapping, tol: float) -> bool:
    """a at least b, or within its interval (with one seed: at most tol behind)."""
    if a["mean"] >= b["mean"]:
        return True
    if _has_ci(a, b):
        return a["hi"] >= b["lo"]
    return b["mean"] - a["mean"] <= tol


def interval_note(tol: float, *cis) -> str:
    if _has_ci(*cis):
        return f"{int(LEVEL * 100)}% t-intervals over seeds"
    ns = sorted({c["n"] for c in cis})
    return (f"n={'/'.join(map(str, ns))} seed(s), no interval: tolerance of "
            f"{100 * tol:.1f} AP points (--tolerance)")


# --------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------
def _need_inits(plan: Mapping, name: str) -> None:
    miss = [i for i in ("scratch", "pretrained") if i not in plan["inits"]]
    if miss:
        raise NotTested(f"variant {name!r} has no {'/'.join(miss)} runs (inits {plan['inits']})")


def finals(df: pd.DataFrame, study: Mapping, name: str) -> pd.DataFrame:
    """Final bbox AP of every seed, init and schedule of a variant (NotTested if absent)."""
    _need_inits(study["variants"][name], name)
    if not (df["variant"] == name).any():
        raise NotTested(f"no metrics for variant {name!r}")
    try:
        fin = variant_finals(df, study, name)
    except MetricsError as e:
        raise NotTested(str(e)) from None
    return fin[["seed", "init", "schedule", COLUMN]]


def summary(fin: pd.DataFrame, init: str, schedule: str) -> dict:
    sub = fin[(fin["init"] == init) & (fin["schedule"] == schedule)]
    return mean_ci(sub[COLUMN], LEVEL)


def paired(fin: pd.DataFrame, a: tuple[str, str], b: tuple[str, str]) -> dict:
    """Per-seed differences AP(init a, schedule a) - AP(init b, schedule b), summarised."""
    def by_seed(init, sched):
        sub = fin[(fin["init"] == init) & (fin["schedule"] == sched)]
        return sub.set_index("seed")[COLUMN]
    d = (by_seed(*a) - by_seed(*b)).dropna()
    return mean_ci(d, LEVEL)


def best(fin: pd.DataFrame, init: str, schedules: list[str]) -> tuple[str, dict]:
    """The schedule with the highest mean final AP (the earliest on ties)."""
    cis = [(s, summary(fin, init, s)) for s in schedules]
    cis = [(s, c) for s, c in cis if c["n"] > 0]
    if not cis:
        raise NotTested(f"no final {COLUMN} for {init}")
    return max(cis, key=lambda sc: sc[1]["mean"])


# --------------------------------------------------------------------------
# the claims
# --------------------------------------------------------------------------
def claim1(df, study, tol, ref):
    """Decided at the shortest schedule's end, the paper's own evidence for the claim (its
    shortest schedule, 2x: 40.3 vs 36.8); the trunk checkpoints up to 1x are shown beside it."""
    name = study["main"]
    plan = study["variants"][name]
    fin = finals(df, study, name)
    shortest = ordered_schedules(plan)[0]["name"]
    pre, scr = summary(fin, "pretrained", shortest), summary(fin, "scratch", shortest)
    # paired by seed: a seed gives both inits the same data order and sampler draws
    diff = paired(fin, ("pretrained", shortest), ("scratch", shortest))
    ok = diff["lo"] > 0 if _has_ci(diff) else diff["mean"] > tol
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
    method = (f"variant {name!r}, final {COLUMN} of the shortest schedule ({shortest}): the difference "
              f"pretrained - scratch, paired by seed, has its 95% interval above 0 (one seed: "
              f"above the tolerance); trunk checkpoints up to 1x = {one_x} shown, not tested; "
              f"{interval_note(tol, pre, scr, diff)}")
    return "; ".join(parts), ok, method


def claim2(df, study, tol, ref):
    name = study["main"]
    fin = finals(df, study, name)
    scheds = [s["name"] for s in ordered_schedules(study["variants"][name])]
    s_scr, scr = best(fin, "scratch", scheds)
    s_pre, pre = best(fin, "pretrained", scheds)
    ok = reaches(scr, pre, tol)
    text = f"best scratch {s_scr}: {fmt_ci(scr)} vs best pretrained {s_pre}: {fmt_ci(pre)}"
    method = (f"variant {name!r}, best final {COLUMN} over schedules {scheds}: scratch's mean "
              f"higher or the intervals overlap (one seed: at most the tolerance behind); "
              f"{interval_note(tol, scr, pre)}")
    return text, ok, method


def claim3(df, study, tol, ref):
    name = study["main"]
    fin = finals(df, study, name)
    scheds = [s["name"] for s in ordered_schedules(study["variants"][name])]
    if len(scheds) < 2:
        raise NotTested(f"variant {name!r} has one schedule ({scheds[0]}); a trend needs two")
    gaps = {s: paired(fin, ("pretrained", s), ("scratch", s)) for s in scheds}
    if gaps[scheds[0]]["n"] == 0 or gaps[scheds[-1]]["n"] == 0:
        raise NotTested("no seed has both inits at the shortest and the longest schedule")
    ok = gaps[scheds[-1]]["mean"] < gaps[scheds[0]]["mean"]
    text = "gap " + ", ".join(f"{s}: {fmt_ci(g)}" for s, g in gaps.items())
    method = (f"variant {name!r}, gap = pretrained - scratch final {COLUMN}, paired by seed: "
              f"holds if the gap at the longest schedule ({scheds[-1]}) is below the gap at "
              f"the shortest ({scheds[0]}); intervals shown, not tested")
    return text, ok, method


def claim4(df, study, tol, ref):
    regimes = [(n, v) for n, v in study["variants"].items() if v.get("kind") == "regime"]
    if not regimes:
        raise NotTested("study.json has no regime (less-data) variant")
    name, plan = min(regimes, key=lambda nv: nv[1].get("fraction", 1.0))
    fin = finals(df, study, name)
    scheds = [s["name"] for s in ordered_schedules(plan)]
    s_pre, pre = best(fin, "pretrained", scheds)
    s_scr, scr = best(fin, "scratch", scheds)
    ok = above(pre, scr, tol)
    images = plan.get("train_images")
    size = f", {images} train images" if images is not None else ""
    text = f"{name}: best pretrained {s_pre}: {fmt_ci(pre)} vs best scratch {s_scr}: {fmt_ci(scr)}"
    method = (f"smallest regime {name!r} (fraction {plan.get('fraction', float('nan')):.4g}"
              f"{size}): best pretrained interval entirely above best scratch's (one seed: "
              f"ahead by more than the tolerance); {interval_note(tol, pre, scr)}")
    return text, ok, method


def claim5(df, study, tol, ref):
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
    g_pre, g_scr = gains["pretrained"][1]["mean"], gains["scratch"][1]["mean"]
    ok = g_pre < 0.5 * g_scr
    text = "; ".join(f"{init} {first} -> {s}: +{fmt_ci(g)}" if g["mean"] >= 0 else
                     f"{init} {first} -> {s}: {fmt_ci(g)}" for init, (s, g) in gains.items())
    method = (f"variant {name!r}, {which} {scheds}: gain = final {COLUMN} at the init's best "
              f"schedule - at {first}, paired by seed; holds if pretrained's gain < half of "
              f"scratch's ({pct(g_pre)} vs {pct(0.5 * g_scr)} AP points)")
    return text, ok, method


CLAIMS = {1: claim1, 2: claim2, 3: claim3, 4: claim4, 5: claim5}


def paper_evidence(ref: Mapping) -> dict[int, str]:
    """The paper's numbers for each claim, from the reference (AP in percent)."""
    metric = ref.get("metric", "bbox_AP").replace("_", " ")
    sch = ref.get("schedules") or {}
    scr, pre = sch.get("scratch") or {}, sch.get("pretrained") or {}
    common = [s for s in scr if s in pre]
    out = dict.fromkeys(CLAIMS, "")
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


def evaluate(study: Mapping, df: pd.DataFrame, tolerance: float = 1.0,
             reference: Mapping | None = None) -> list[dict]:
    """One row per claim (:data:`COLUMNS`); ``tolerance`` in AP points."""
    ref = PAPER if reference is None else reference
    evidence = paper_evidence(ref)
    tol = tolerance / 100.0
    rows = []
    for k, fn in CLAIMS.items():
        row = {"claim": k, "statement": STATEMENTS[k], "paper": evidence[k]}
        try:
            text, ok, method = fn(df, study, tol, ref)
            row.update(this_run=text, verdict=HOLDS if ok else FAILS, method=method)
        except NotTested as e:
            row.update(this_run="", verdict=UNTESTED, method=f"not tested: {e}")
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


def to_markdown(rows: list[dict], tolerance: float, seeds: list[int]) -> str:
    head = ["#", "Claim", "Paper", "This run (bbox AP %, 95% interval)", "Verdict", "How tested"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        verdict = f"**{r['verdict']}**"
        lines.append("| " + " | ".join(_md(x) for x in (
            r["claim"], r["statement"], r["paper"], r["this_run"] or "--", verdict,
            r["method"])) + " |")
    n = len(seeds)
    lines += ["", f"Seeds: {n} ({', '.join(map(str, seeds))}). Intervals: mean over seeds "
                  f"+- t(0.975, n-1) * std / sqrt(n)"
              + ("." if n >= 2 else f"; with one seed there are none, and comparisons use a "
                                    f"tolerance of {tolerance:.1f} AP points.")]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m rethink.claims",
        description="Test the paper's five claims on this run's metrics; write a table.")
    ap.add_argument("--study", required=True, help="study.json written by the plan rule")
    ap.add_argument("--metrics", required=True, help="tidy metrics CSV (all_metrics.csv)")
    ap.add_argument("--out-csv", required=True)
    ap.add_argument("--out-md", required=True)
    ap.add_argument("--tolerance", type=float, default=1.0,
                    help="AP points within which one-seed numbers count as equal (default 1.0)")
    ap.add_argument("--reference", default=None,
                    help="JSON of the paper's numbers for the 'paper' column (default: the "
                         "paper's R50-FPN GN bbox AP)")
    args = ap.parse_args(argv)
    try:
        if not math.isfinite(args.tolerance) or args.tolerance < 0:
            raise MetricsError(f"--tolerance must be a non-negative number of AP points, "
                               f"got {args.tolerance}")
        study = load_study(args.study)
        df = read_metrics_csv(args.metrics)
        check_against_study(df, study, str(args.metrics))
        reference = load_reference(args.reference)
        rows = evaluate(study, df, args.tolerance, reference)
        md = to_markdown(rows, args.tolerance, study["seeds"])
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
