"""Equal science: does a changed training step give the same study as the one it replaces?

    PYTHONPATH=workflow python -m rethink.bench.equivalence OLD_RESULTS NEW_RESULTS \
        [--variant main] [--margin 3.0] [--out equivalence.md]

OLD_RESULTS and NEW_RESULTS are two runs' results folders of the same study (the same
seeds and schedules in detection/study.json), e.g. one trained with the step before a speed
change and one after. For every init, schedule and metric (final box and mask AP), the
difference new - old per seed, its 95% t-interval, and a three-way outcome at the claims'
margin: **equivalent** (the interval inside (-margin, +margin): two one-sided tests at 2.5%
each), **different** (the interval entirely outside), else **inconclusive**. Then the claims
table of each run (rethink.analysis.claims at the same margin) for the variant, verdict by verdict.
Exits 0 when every cell is equivalent and every verdict the same, 1 otherwise.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rethink.analysis import claims
from rethink.analysis.inputs import MetricsError, load_study
from rethink.analysis.results import load_metrics, variant_finals
from rethink.analysis.stats import mean_ci
from rethink.core.atomic import write_text

METRICS = ("bbox_AP", "segm_AP")
EQUIVALENT, DIFFERENT, INCONCLUSIVE = "equivalent", "different", "inconclusive"


def load_run(results: Path, variant: str, variants) -> tuple:
    """study.json, the metrics of `variants` (the claims of one variant may need others:
    claim 4 compares a regime with main) and the final metrics of `variant`."""
    study = load_study(results / "detection" / "study.json")
    paths = sorted(p for v in variants for p in (results / "eval" / v).rglob("metrics.json"))
    if not any((results / "eval" / variant).rglob("metrics.json")):
        raise MetricsError(f"{results / 'eval' / variant}: no metrics.json")
    df = load_metrics(paths, study)
    return study, df, variant_finals(df, study, variant)


def outcome(ci: dict, margin: float) -> str:
    if -margin < ci["lo"] and ci["hi"] < margin:
        return EQUIVALENT
    if ci["lo"] >= margin or ci["hi"] <= -margin:
        return DIFFERENT
    return INCONCLUSIVE


def compare(old: Path, new: Path, variant: str, margin: float) -> dict:
    # the variants both runs have: their claims tables are compared on the same evidence
    both_runs = [v for v in load_study(new / "detection" / "study.json")["variants"]
                 if v in load_study(old / "detection" / "study.json")["variants"]
                 and (old / "eval" / v).is_dir() and (new / "eval" / v).is_dir()]
    old_study, old_df, old_fin = load_run(old, variant, both_runs)
    new_study, new_df, new_fin = load_run(new, variant, both_runs)
    if old_study["seeds"] != new_study["seeds"]:
        raise MetricsError(f"the runs have different seeds: {old_study['seeds']} vs {new_study['seeds']}")
    key = ["seed", "init", "schedule"]
    both = old_fin.merge(new_fin, on=key, suffixes=("_old", "_new"))
    cells = []
    for (init, schedule), sub in both.groupby(["init", "schedule"], sort=False):
        for metric in METRICS:
            if f"{metric}_old" not in sub:
                continue
            diff = 100 * (sub[f"{metric}_new"] - sub[f"{metric}_old"])
            ci = mean_ci(diff)
            cells.append({"init": init, "schedule": schedule, "metric": metric,
                          "old": round(100 * sub[f"{metric}_old"].mean(), 2),
                          "new": round(100 * sub[f"{metric}_new"].mean(), 2),
                          "diff": round(ci["mean"], 2), "lo": round(ci["lo"], 2),
                          "hi": round(ci["hi"], 2), "n": ci["n"], "outcome": outcome(ci, margin)})

    def verdicts(study, df):
        rows = claims.evaluate(study, df, margin)
        return {(r["claim"], r["metric"]): r for r in rows if r["variant"] == variant}

    old_v, new_v = verdicts(old_study, old_df), verdicts(new_study, new_df)
    claim_rows = [{"claim": c, "metric": m, "old": old_v[c, m]["verdict"], "new": new_v[c, m]["verdict"],
                   "old_interval": old_v[c, m]["interval"], "new_interval": new_v[c, m]["interval"],
                   "same": old_v[c, m]["verdict"] == new_v[c, m]["verdict"]}
                  for c, m in old_v if (c, m) in new_v]
    return {"variant": variant, "margin": margin, "seeds": old_study["seeds"], "cells": cells,
            "claims": claim_rows,
            "all_equivalent": bool(cells) and all(c["outcome"] == EQUIVALENT for c in cells),
            "same_verdicts": bool(claim_rows) and all(r["same"] for r in claim_rows)}


def markdown(r: dict, old: Path, new: Path) -> str:
    md = [f"# Equivalence of two runs: {old} (old) vs {new} (new)", "",
          f"Variant {r['variant']}, seeds {r['seeds']}; final AP (points), new - old per seed, "
          f"95% t-interval; equivalent when inside (-{r['margin']}, +{r['margin']}).", "",
          "| init | schedule | metric | old | new | new - old [95% CI] | outcome |",
          "|---|---|---|---:|---:|---|---|"]
    md += [f"| {c['init']} | {c['schedule']} | {c['metric']} | {c['old']} | {c['new']} | "
           f"{c['diff']:+.2f} [{c['lo']:+.2f}, {c['hi']:+.2f}] | {c['outcome']} |" for c in r["cells"]]
    n_eq = sum(c["outcome"] == EQUIVALENT for c in r["cells"])
    md += ["", f"**{n_eq} of {len(r['cells'])} cells equivalent.**", "",
           "| claim | metric | old verdict | new verdict | old interval | new interval |",
           "|---|---|---|---|---|---|"]
    md += [f"| {c['claim']} | {c['metric']} | {c['old']} | {c['new']} | {c['old_interval']} | "
           f"{c['new_interval']} |" for c in r["claims"]]
    same = sum(c["same"] for c in r["claims"])
    md += ["", f"**{same} of {len(r['claims'])} verdicts the same.**", ""]
    return "\n".join(md)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("old", type=Path, help="the results folder of the run before the change")
    p.add_argument("new", type=Path, help="the results folder of the run after it")
    p.add_argument("--variant", default="main")
    p.add_argument("--margin", type=float, default=3.0, help="AP points (claims.margin)")
    p.add_argument("--out", type=Path, help="also write the Markdown table here")
    args = p.parse_args(argv)
    try:
        r = compare(args.old, args.new, args.variant, args.margin)
    except (MetricsError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    md = markdown(r, args.old, args.new)
    print(md)
    if args.out:
        write_text(args.out, md + "\n")
    return 0 if r["all_equivalent"] and r["same_verdicts"] else 1


if __name__ == "__main__":
    sys.exit(main())
