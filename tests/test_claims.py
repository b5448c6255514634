"""rethink.claims: each of the paper's five claims on constructed results where it holds
and where it does not, the not-tested paths, one-seed tolerance, and bad input."""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from rethink.claims import FAILS, HOLDS, PAPER, UNTESTED, evaluate, paper_evidence
from rethink.results import load_study, read_metrics_csv

WORKFLOW = Path(__file__).resolve().parents[1] / "workflow"
JITTER = {0: 0.002, 1: 0.0, 2: -0.002}  # per seed: intervals of +-0.5 AP points


def plan(kind="main", fraction=1.0, schedules=(1, 2, 3), inits=("scratch", "pretrained")):
    # 1x = 4 iterations; schedule kx ends at 4k and forks 2 before its end
    return {"kind": kind, "norm": "GN", "regime": "full" if kind != "regime" else "r",
            "fraction": fraction, "train_images": 100, "batch_size": 2, "inits": list(inits),
            "one_x": 4, "tail": 2, "checkpoint_every": 2,
            "schedules": [{"name": f"{k}x", "multiple": float(k), "iters": 4 * k,
                           "fork": 4 * k - 2, "drops": [4 * k - 2]} for k in schedules]}


def study(seeds=(0, 1, 2), regimes=True, **kw):
    variants = {"main": plan(**kw)}
    if regimes:
        variants["10k"] = plan("regime", 0.1)
        variants["1k"] = plan("regime", 0.01)
    return {"inits": ["scratch", "pretrained"], "seeds": list(seeds), "main": "main",
            "variants": variants, "pretrain": None}


def rows(variant, seeds, init, branch, it, ap):
    return [{"variant": variant, "seed": s, "init": init, "branch": branch, "iteration": it,
             "task": "bbox", "metric": "AP", "value": round(ap + JITTER[s] * (len(seeds) > 1), 6)}
            for s in seeds]


def metrics(seeds, trunk, final, skip=()):
    """trunk: {init: {iteration: AP}} of main; final: {(variant, init): {schedule: AP}}."""
    out = []
    for init, pts in trunk.items():
        for it, ap in pts.items():
            out += rows("main", seeds, init, "trunk", it, ap)
    for (variant, init), per in final.items():
        for sched, ap in per.items():
            if (variant, init, sched) not in skip:
                out += rows(variant, seeds, init, sched, 4 * int(sched[0]), ap)
    return pd.DataFrame(out)


HOLD_TRUNK = {"pretrained": {0: 0.0, 2: 0.20, 4: 0.25}, "scratch": {0: 0.0, 2: 0.05, 4: 0.10}}
HOLD_FINAL = {("main", "scratch"): {"1x": 0.30, "2x": 0.36, "3x": 0.40},
              ("main", "pretrained"): {"1x": 0.38, "2x": 0.39, "3x": 0.40},
              ("10k", "scratch"): {"1x": 0.20, "2x": 0.25, "3x": 0.26},
              ("10k", "pretrained"): {"1x": 0.24, "2x": 0.26, "3x": 0.26},
              ("1k", "scratch"): {"1x": 0.02, "2x": 0.03, "3x": 0.03},
              ("1k", "pretrained"): {"1x": 0.08, "2x": 0.10, "3x": 0.09}}
FAIL_TRUNK = {"pretrained": {2: 0.10, 4: 0.15}, "scratch": {2: 0.10, 4: 0.12}}
FAIL_FINAL = {("main", "scratch"): {"1x": 0.30, "2x": 0.30, "3x": 0.28},
              ("main", "pretrained"): {"1x": 0.30, "2x": 0.38, "3x": 0.40},
              ("10k", "scratch"): {"1x": 0.20, "2x": 0.25, "3x": 0.26},
              ("10k", "pretrained"): {"1x": 0.24, "2x": 0.26, "3x": 0.26},
              ("1k", "scratch"): {"1x": 0.05, "2x": 0.05, "3x": 0.05},
              ("1k", "pretrained"): {"1x": 0.05, "2x": 0.055, "3x": 0.05}}


def verdicts(result):
    return {r["claim"]: r["verdict"] for r in result}


def by_claim(result):
    return {r["claim"]: r for r in result}


def test_every_claim_holds():
    st = study()
    res = evaluate(st, metrics(st["seeds"], HOLD_TRUNK, HOLD_FINAL))
    assert verdicts(res) == dict.fromkeys(range(1, 6), HOLDS), res
    r = by_claim(res)
    # decided at the shortest schedule, paired by seed; trunk points up to 1x beside it
    # (iteration 0 left out); percent with one decimal and the 95% interval
    assert r[1]["this_run"].startswith("1x: pretrained 38.0 [37.5, 38.5] vs scratch 30.0 [29.5, 30.5], "
                                       "difference 8.0 [8.0, 8.0]")
    assert "(trunk it 2: difference 15.0" in r[1]["this_run"] and "it 0" not in r[1]["this_run"]
    assert "t-intervals" in r[1]["method"]
    assert "best scratch 3x: 40.0 [39.5, 40.5]" in r[2]["this_run"]
    assert r[3]["this_run"] == ("gap 1x: 8.0 [8.0, 8.0], 2x: 3.0 [3.0, 3.0], "
                                "3x: 0.0 [0.0, 0.0]")
    assert "1k:" in r[4]["this_run"] and "'1k'" in r[4]["method"]  # the smallest fraction
    assert "schedules with multiple >= 2 ['2x', '3x']" in r[5]["method"]
    assert "pretrained 2x -> 3x: +1.0" in r[5]["this_run"]
    assert "scratch 2x -> 3x: +4.0" in r[5]["this_run"]


def test_every_claim_fails():
    st = study()
    res = evaluate(st, metrics(st["seeds"], FAIL_TRUNK, FAIL_FINAL))
    assert verdicts(res) == dict.fromkeys(range(1, 6), FAILS), res
    assert "difference 0.0" in by_claim(res)[1]["this_run"]


def test_paper_column_cites_the_paper():
    ev = paper_evidence(PAPER)
    assert "36.8/39.5/40.6/40.7/41.3 vs 40.3/40.8/40.9/40.9/41.1" in ev[1]
    assert ev[2] == "best random 41.3 (6x) vs best pre-trained 41.1 (6x)"
    assert ev[3].endswith("2x: +3.5, 3x: +1.3, 4x: +0.3, 5x: +0.2, 6x: -0.2")
    assert "10k: 25.9 vs 26.0; 3.5k: 9.3 vs 16.0; 1k: 3.5 vs 9.9" in ev[4]
    assert "pre-trained +0.8" in ev[5] and "random +4.5" in ev[5]


def test_one_seed_uses_the_tolerance():
    st = study(seeds=(0,))
    final = dict(HOLD_FINAL)
    final[("main", "scratch")] = {"1x": 0.30, "2x": 0.36, "3x": 0.395}  # 0.5 AP behind
    df = metrics([0], HOLD_TRUNK, final)
    r = by_claim(evaluate(st, df, tolerance=1.0))
    assert r[2]["verdict"] == HOLDS and "tolerance of 1.0 AP points" in r[2]["method"]
    assert "best scratch 3x: 39.5 (n=1)" in r[2]["this_run"]
    assert by_claim(evaluate(st, df, tolerance=0.2))[2]["verdict"] == FAILS
    # claim 4 with one seed: pretrained ahead by 7 points > tolerance
    assert r[4]["verdict"] == HOLDS
    assert by_claim(evaluate(st, df, tolerance=8.0))[4]["verdict"] == FAILS


def test_not_tested_paths():
    st = study(regimes=False)
    res = by_claim(evaluate(st, metrics(st["seeds"], HOLD_TRUNK, HOLD_FINAL)))
    assert res[4]["verdict"] == UNTESTED and "no regime" in res[4]["method"]
    assert all(res[k]["verdict"] == HOLDS for k in (1, 2, 3, 5))

    # a missing final checkpoint: the final-AP claims say which
    st = study()
    df = metrics(st["seeds"], HOLD_TRUNK, HOLD_FINAL, skip={("main", "scratch", "2x")})
    res = by_claim(evaluate(st, df))
    for k in (1, 2, 3, 5):
        assert res[k]["verdict"] == UNTESTED
        assert "init=scratch schedule=2x" in res[k]["method"]

    # no trunk checkpoints, regime without metrics, one schedule
    st = study(schedules=(1,))
    df = metrics(st["seeds"], {}, {("main", "scratch"): {"1x": 0.3},
                                   ("main", "pretrained"): {"1x": 0.35}})
    res = by_claim(evaluate(st, df))
    assert res[1]["verdict"] == HOLDS and "trunk it" not in res[1]["this_run"]
    assert res[2]["verdict"] == FAILS
    assert res[3]["verdict"] == UNTESTED and "one schedule" in res[3]["method"]
    assert res[4]["verdict"] == UNTESTED and "no metrics for variant '1k'" in res[4]["method"]
    assert res[5]["verdict"] == UNTESTED


def test_scratch_only_study_is_not_tested():
    st = study(regimes=False, inits=("scratch",))
    st["inits"] = ["scratch"]
    df = metrics(st["seeds"], {"scratch": {2: 0.1}}, {("main", "scratch"): {"1x": 0.3, "2x": 0.3,
                                                                            "3x": 0.3}})
    res = evaluate(st, df)
    assert verdicts(res) == dict.fromkeys(range(1, 6), UNTESTED)
    assert "no pretrained runs" in res[0]["method"]


# --------------------------------------------------------------------------
# command line
# --------------------------------------------------------------------------
def run(*args):
    env = dict(os.environ, PYTHONPATH=str(WORKFLOW))
    return subprocess.run([sys.executable, "-m", "rethink.claims", *map(str, args)], env=env,
                          capture_output=True, text=True, timeout=120)


def write(d: Path, st, df):
    (d / "study.json").write_text(json.dumps(st))
    df.to_csv(d / "all.csv", index=False)
    return d / "study.json", d / "all.csv"


def test_cli_writes_csv_and_markdown(tmp_path):
    st = study()
    s, m = write(tmp_path, st, metrics(st["seeds"], HOLD_TRUNK, HOLD_FINAL))
    r = run("--study", s, "--metrics", m, "--out-csv", tmp_path / "c.csv",
            "--out-md", tmp_path / "c.md")
    assert r.returncode == 0, r.stderr
    got = list(csv.DictReader(open(tmp_path / "c.csv")))
    assert [g["verdict"] for g in got] == [HOLDS] * 5
    md = (tmp_path / "c.md").read_text()
    assert md.count("**holds**") == 5 and "Seeds: 3 (0, 1, 2)" in md
    assert "**holds**" in r.stdout  # the table is printed too
    # the reference file, when given, fills the paper column
    ref = tmp_path / "ref.json"
    ref.write_text(json.dumps({"metric": "bbox_AP", "schedules": {
        "scratch": {"2x": 30.0, "4x": 35.0}, "pretrained": {"2x": 34.0, "4x": 35.5}}}))
    r = run("--study", s, "--metrics", m, "--out-csv", tmp_path / "c.csv",
            "--out-md", tmp_path / "c.md", "--reference", ref)
    assert r.returncode == 0, r.stderr
    got = list(csv.DictReader(open(tmp_path / "c.csv")))
    assert got[2]["paper"] == "gap pre-trained - random: 2x: +4.0, 4x: +0.5"
    assert got[3]["paper"] == ""


def test_cli_failing_claims_still_exit_0(tmp_path):
    st = study()
    s, m = write(tmp_path, st, metrics(st["seeds"], FAIL_TRUNK, FAIL_FINAL))
    r = run("--study", s, "--metrics", m, "--out-csv", tmp_path / "c.csv",
            "--out-md", tmp_path / "c.md")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "c.md").read_text().count("**does not hold**") == 5


@pytest.mark.parametrize("case,expect", [
    ("missing_metrics", "gone.csv: metrics CSV not found"),
    ("missing_study", "nope.json: study file not found"),
    ("unknown_variant", "unknown variant(s) ['5k']"),
    ("unknown_seed", "seed(s) [7] not in study.seeds"),
    ("study_key", "study is missing key 'main'"),
    ("tolerance", "--tolerance must be a non-negative number"),
])
def test_bad_input_exits_2_naming_it(tmp_path, case, expect):
    st = study()
    df = metrics(st["seeds"], HOLD_TRUNK, HOLD_FINAL)
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
    elif case == "tolerance":
        extra = ["--tolerance", "-1"]
    r = run("--study", s, "--metrics", m, "--out-csv", tmp_path / "c.csv",
            "--out-md", tmp_path / "c.md", *extra)
    assert r.returncode == 2, r.stdout + r.stderr
    assert expect in r.stderr, r.stderr
    if case.startswith("missing"):
        assert str(tmp_path) in r.stderr
    assert "Traceback" not in r.stderr and not (tmp_path / "c.csv").exists()


def test_round_trip_through_the_csv_reader(tmp_path):
    """The CLI path (read_metrics_csv) gives the same verdicts as the frame."""
    st = study()
    s, m = write(tmp_path, st, metrics(st["seeds"], FAIL_TRUNK, FAIL_FINAL))
    res = evaluate(load_study(s), read_metrics_csv(m))
    assert verdicts(res) == dict.fromkeys(range(1, 6), FAILS)


def test_claim1_pairs_seeds_ahead_in_every_seed_though_the_intervals_overlap():
    st = study(regimes=False)
    df = metrics(st["seeds"], HOLD_TRUNK, HOLD_FINAL)
    pre = (df["variant"] == "main") & (df["init"] == "pretrained") & (df["branch"] == "1x")
    scr = (df["variant"] == "main") & (df["init"] == "scratch") & (df["branch"] == "1x")
    df.loc[pre & (df["metric"] == "AP"), "value"] = [0.044, 0.056, 0.055]
    df.loc[scr & (df["metric"] == "AP"), "value"] = [0.023, 0.011, 0.027]
    res = by_claim(evaluate(st, df))[1]  # unpaired intervals [3.4, 6.9] and [-0.1, 4.2] overlap
    assert res["verdict"] == HOLDS and "difference 3.1 [0.1, 6.2]" in res["this_run"]
    df.loc[scr & (df["metric"] == "AP"), "value"] = [0.043, 0.011, 0.027]  # behind in one seed
    assert by_claim(evaluate(st, df))[1]["verdict"] == FAILS
