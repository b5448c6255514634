"""Tests for rethink.analysis.results, rethink.analysis.stats and the rethink.figures CLIs on a tiny fake study
(three variants: main GN, a SyncBN norm variant and a 1k regime, two seeds)."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from conftest import ROOT
from rethink.analysis.inputs import KEYPOINT_METRICS, METRICS, MetricsError, load_study
from rethink.analysis.results import final_metrics, load_metrics, read_metrics_csv, schedule_curves, variant_finals
from rethink.analysis.stats import aggregate_seeds, mean_ci

WORKFLOW = ROOT / "workflow"

PLAN = {
    "kind": "main", "norm": "GN", "regime": "full", "fraction": 1.0, "train_images": 100,
    "one_x": 6, "tail": 4, "batch_size": 8, "inits": ["scratch", "pretrained"],
    "trunk_end": 8,
    "schedules": [
        {"name": "1x", "multiple": 1.0, "iters": 6, "fork": 2, "drops": [2, 4]},
        {"name": "2x", "multiple": 2.0, "iters": 12, "fork": 8, "drops": [8, 10]},
    ],
}
SYNC_PLAN = dict(PLAN, kind="norm", norm="SyncBN")
REGIME_PLAN = dict(PLAN, kind="regime", regime="1k", fraction=0.1, train_images=10,
                   one_x=4, trunk_end=6, schedules=[
                       {"name": "1x", "multiple": 1.0, "iters": 4, "fork": 2, "drops": [2, 3]},
                       {"name": "2x", "multiple": 2.0, "iters": 8, "fork": 6, "drops": [6, 7]}])
MODEL_PLAN = dict(PLAN, kind="model", backbone={"depth": 18, "width": 32}, model_overrides={"depth": 18})
TASK_PLAN = dict(PLAN, kind="task", task="keypoints")
PLANS = {"main": PLAN, "SyncBN": SYNC_PLAN, "1k": REGIME_PLAN, "R18": MODEL_PLAN, "kp": TASK_PLAN}
TRUNK_ITERS = [0, 2, 4, 6, 8]
BRANCH_ITERS = {"1x": [4, 6], "2x": [10, 12]}
POINTS = {"main": (TRUNK_ITERS, BRANCH_ITERS), "SyncBN": (TRUNK_ITERS, BRANCH_ITERS),
          "1k": ([0, 2, 4, 6], {"1x": [4], "2x": [8]}), "R18": (TRUNK_ITERS, BRANCH_ITERS),
          "kp": (TRUNK_ITERS, BRANCH_ITERS)}
VARIANT_OFFSET = {"main": 0.0, "SyncBN": -0.02, "1k": -0.05, "R18": 0.01, "kp": 0.0}
SEED_STEP = 0.01
# one seed's final point has no ground truth for small boxes: its cell has n=1
NAN_POINTS = {("main", 1, "pretrained", "2x", 12, "bbox", "APs")}
REFERENCE = {"metric": "bbox_AP",
             "schedules": {"scratch": {"2x": 36.8}, "pretrained": {"1x": 40.0, "2x": 40.3}},
             "regimes": {"1k": {"scratch": 3.5, "pretrained": 9.9}}}


def value(init, branch, it, task, k, variant="main", seed=0):
    """Distinct deterministic value in [0, 1] for each point/metric."""
    base = {"scratch": 0.10, "pretrained": 0.30}[init]
    bonus = {"trunk": 0.0, "1x": 0.05, "2x": 0.08}.get(branch, 0.1)
    return round(base + bonus + 0.02 * it + 0.001 * k + (0.1 if task == "segm" else 0.0)
                 + VARIANT_OFFSET.get(variant, 0.0) + SEED_STEP * seed, 4)


def metrics_doc(init, branch, it, variant="main", seed=0, legacy=False):
    doc = {"init": init, "branch": branch, "iteration": it, "num_images": 10,
           "num_detections": 50, "per_category": {"bbox": {"a_b": 0.5}, "segm": {"a_b": 0.4}}}
    if not legacy:
        doc.update(variant=variant, seed=seed)
    for task in ("bbox", "segm"):
        doc[task] = {m: value(init, branch, it, task, k, variant, seed)
                     for k, m in enumerate(METRICS)}
        if branch == "trunk" and it == 0:
            doc[task]["APs"] = -1  # pycocotools: no ground truth in range
        for m in METRICS:
            if (variant, seed, init, branch, it, task, m) in NAN_POINTS:
                doc[task][m] = -1
    if PLANS.get(variant, {}).get("task") == "keypoints":  # a keypoint model's 10 numbers
        doc["keypoints"] = {m: value(init, branch, it, "keypoints", k, variant, seed)
                            for k, m in enumerate(KEYPOINT_METRICS)}
    return doc


def study_doc(seeds=(0, 1), variants=("main", "SyncBN", "1k"), pretrain=None):
    return {"inits": ["scratch", "pretrained"], "seeds": list(seeds), "main": "main",
            "variants": {v: PLANS[v] for v in variants}, "pretrain": pretrain}


def write_run(d: Path, seeds=(0,), variants=("main",), skip=(), legacy=False, pretrain=None):
    """Metrics JSON files of every (variant, seed, init, point) and a study.json."""
    d.mkdir(parents=True, exist_ok=True)
    paths = []
    for variant in variants:
        trunk, branches = POINTS[variant]
        for seed in seeds:
            for init in PLAN["inits"]:
                pts = [("trunk", i) for i in trunk]
                pts += [(b, i) for b, its in branches.items() for i in its]
                for branch, it in pts:
                    if (init, branch, it) in skip or (variant, seed, init, branch, it) in skip:
                        continue
                    p = d / f"{variant}_s{seed}_{init}_{branch}_{it:06d}.json"
                    p.write_text(json.dumps(metrics_doc(init, branch, it, variant, seed, legacy)))
                    paths.append(p)
    study = d / "study.json"
    study.write_text(json.dumps(study_doc(seeds, variants, pretrain)))
    return study, paths


def run(*args):
    env = dict(os.environ, PYTHONPATH=str(WORKFLOW), MPLBACKEND="Agg")
    return subprocess.run([sys.executable, "-m", *map(str, args)], env=env,
                          capture_output=True, text=True, timeout=120)


def collect(d: Path, **kw):
    study, paths = write_run(d / "metrics", **kw)
    csv = d / "all_metrics.csv"
    r = run("rethink.analysis.results", "--study", study, "--out", csv, *paths)
    assert r.returncode == 0, r.stderr
    return study, paths, csv


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("run")
    study, paths, csv = collect(d, seeds=(0, 1), variants=("main", "SyncBN", "1k"))
    pre = d / "pretrain_metrics.json"
    pre.write_text(json.dumps({"top1": 0.99, "iterations": 900, "batch_size": 64,
                               "images_seen": 57600, "epochs": 14}))
    small = d / "pretrain_small.json"
    small.write_text(json.dumps({"top1": 0.5, "iterations": 1, "batch_size": 64,
                                 "images_seen": 64, "epochs": 1}))
    ref = d / "reference.json"
    ref.write_text(json.dumps(REFERENCE))
    return {"dir": d, "study": study, "paths": paths, "csv": csv, "pre": pre, "small": small,
            "ref": ref}


@pytest.fixture(scope="module")
def one_seed(tmp_path_factory):
    d = tmp_path_factory.mktemp("one")
    study, paths, csv = collect(d, seeds=(3,), variants=("main", "SyncBN", "1k"))
    return {"dir": d, "study": study, "paths": paths, "csv": csv}


def no_temp_files(d: Path):
    return not [p for p in d.iterdir() if ".tmp" in p.name]


def main_slice(paths, seed=0):
    df = load_metrics(paths)
    return df[(df.variant == "main") & (df.seed == seed)]


# ------------------------------------------------------------------ stats
def test_mean_ci_hand_computed():
    r = mean_ci([1.0, 2.0, 3.0])
    # std = 1; t(0.975, 2) = 4.302653; half width = 4.302653 / sqrt(3) = 2.484138
    assert r["mean"] == 2.0 and r["std"] == pytest.approx(1.0) and r["n"] == 3
    assert r["lo"] == pytest.approx(2 - 2.484138, abs=1e-6)
    assert r["hi"] == pytest.approx(2 + 2.484138, abs=1e-6)
    r = mean_ci([0.42, 0.43])  # t(0.975, 1) = 12.706205
    assert r["std"] == pytest.approx(0.01 / math.sqrt(2))
    assert r["hi"] - r["mean"] == pytest.approx(12.706205 * 0.01 / 2, rel=1e-6)
    assert mean_ci([1, 2, 3], level=0.5)["hi"] < mean_ci([1, 2, 3])["hi"]


def test_mean_ci_one_value_and_nan():
    r = mean_ci([0.3])
    assert r["mean"] == 0.3 and r["n"] == 1
    assert all(math.isnan(r[k]) for k in ("std", "lo", "hi"))
    r = mean_ci([0.2, float("nan")])
    assert r["n"] == 1 and r["mean"] == 0.2 and math.isnan(r["hi"])
    r = mean_ci([])
    assert r["n"] == 0 and math.isnan(r["mean"])
    with pytest.raises(ValueError, match="level"):
        mean_ci([1, 2], level=95)


def test_aggregate_seeds_matches_mean_ci():
    df = pd.DataFrame({"g": ["a", "a", "a", "b", "c", "c"],
                       "value": [0.1, 0.3, 0.2, 0.5, float("nan"), 0.4]})
    agg = aggregate_seeds(df, ["g"]).set_index("g")
    for g, vals in df.groupby("g")["value"]:
        want = mean_ci(vals)
        got = agg.loc[g]
        assert got["n"] == want["n"]
        for k in ("mean", "std", "lo", "hi"):
            assert (math.isnan(got[k]) and math.isnan(want[k])) or got[k] == pytest.approx(want[k])
    assert list(agg.index) == ["a", "b", "c"]


# ------------------------------------------------------------------ results
def test_tidy_csv_rows(run_dir):
    df = pd.read_csv(run_dir["csv"])
    assert list(df.columns) == ["variant", "seed", "init", "branch", "iteration", "task",
                                "metric", "value"]
    n_files = len(run_dir["paths"])
    assert n_files == 2 * 2 * (2 * (len(TRUNK_ITERS) + 4) + (4 + 2))
    assert len(df) == n_files * 2 * len(METRICS)
    assert not df.duplicated(["variant", "seed", "init", "branch", "iteration", "task",
                              "metric"]).any()
    row = df[(df.variant == "SyncBN") & (df.seed == 1) & (df.init == "pretrained")
             & (df.branch == "2x") & (df.iteration == 12) & (df.task == "segm")
             & (df.metric == "AP75")]
    assert row["value"].item() == pytest.approx(
        value("pretrained", "2x", 12, "segm", 2, "SyncBN", 1))
    # -1 ("no ground truth") becomes missing
    nan = df[(df.branch == "trunk") & (df.iteration == 0) & (df.metric == "APs")]
    assert len(nan) == 3 * 2 * 2 * 2 and nan["value"].isna().all()
    assert no_temp_files(run_dir["dir"])


def test_legacy_files_are_main_seed0(tmp_path):
    study, paths = write_run(tmp_path, legacy=True)
    assert "variant" not in json.loads(paths[0].read_text())
    df = load_metrics(paths)
    assert set(df.variant) == {"main"} and set(df.seed) == {0}
    out = tmp_path / "all.csv"
    r = run("rethink.analysis.results", "--study", study, "--out", out, *paths)
    assert r.returncode == 0, r.stderr
    assert set(pd.read_csv(out)["variant"]) == {"main"}


def test_duplicates_keyed_by_variant_and_seed(tmp_path):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps(metrics_doc("scratch", "trunk", 2, "main", 0)))
    b.write_text(json.dumps(metrics_doc("scratch", "trunk", 2, "main", 1)))
    assert len(load_metrics([a, b])) == 2 * 2 * len(METRICS)  # other seed: fine
    b.write_text(json.dumps(metrics_doc("scratch", "trunk", 2, "main", 0, legacy=True)))
    with pytest.raises(MetricsError) as e:
        load_metrics([a, b])  # a legacy file is main/seed 0: the same checkpoint
    assert "b.json" in str(e.value) and "a.json" in str(e.value) and "seed=0" in str(e.value)


def test_schedule_curves_duplicates_trunk(run_dir):
    df = main_slice(run_dir["paths"])
    cur = schedule_curves(df, PLAN)
    sel = cur[(cur.init == "scratch") & (cur.task == "bbox") & (cur.metric == "AP")]
    got = {s: sorted(g["iteration"]) for s, g in sel.groupby("schedule")}
    assert got == {"1x": [0, 2, 4, 6], "2x": [0, 2, 4, 6, 8, 10, 12]}
    one = sel[sel.schedule == "1x"]
    assert list(one.sort_values("iteration")["branch"]) == ["trunk", "trunk", "1x", "1x"]
    # trunk rows appear once per schedule whose fork >= iteration
    trunk = cur[cur.branch == "trunk"]
    per_point = trunk.groupby(["init", "iteration", "task", "metric"]).size()
    for (_, it, _, _), n in per_point.items():
        assert n == sum(s["fork"] >= it for s in PLAN["schedules"])
    assert len(cur) == 2 * 2 * len(METRICS) * (4 + 7)


def test_final_metrics_values(run_dir):
    fin = final_metrics(main_slice(run_dir["paths"], seed=1), PLAN)
    assert list(zip(fin.schedule, fin.init)) == [
        ("1x", "scratch"), ("1x", "pretrained"), ("2x", "scratch"), ("2x", "pretrained")]
    r = fin[(fin.init == "scratch") & (fin.schedule == "2x")].iloc[0]
    assert r["iteration"] == 12
    assert r["bbox_AP"] == pytest.approx(value("scratch", "2x", 12, "bbox", 0, "main", 1))


def test_final_metrics_refuses_several_seeds(run_dir):
    df = load_metrics(run_dir["paths"])
    with pytest.raises(MetricsError, match="one \\(variant, seed\\) slice"):
        final_metrics(df[df.variant == "main"], PLAN)


def test_variant_finals_names_missing_seed(tmp_path):
    study, paths = write_run(tmp_path, seeds=(0, 1), variants=("main", "1k"),
                             skip={("1k", 1, "pretrained", "2x", 8)})
    df = load_metrics(paths)
    st = load_study(study)
    assert len(variant_finals(df, st, "main")) == 2 * 4
    with pytest.raises(MetricsError) as e:
        variant_finals(df, st, "1k")
    msg = str(e.value)
    assert "'1k'" in msg and "seed=1" in msg and "init=pretrained schedule=2x" in msg
    assert "seed=0" not in msg


@pytest.mark.parametrize("mutate, needle", [
    (lambda d: d.pop("iteration"), "iteration"),
    (lambda d: d["segm"].pop("AR100"), "AR100"),
    (lambda d: d["bbox"].__setitem__("AP", "high"), "bbox.AP"),
    (lambda d: d["bbox"].__setitem__("AP50", 3.5), "bbox.AP50"),
    (lambda d: d.__setitem__("seed", "one"), "seed"),
    (lambda d: d.__setitem__("seed", -2), "seed"),
    (lambda d: d.__setitem__("variant", ""), "variant"),
])
def test_load_metrics_bad_json_names_file(tmp_path, mutate, needle):
    doc = metrics_doc("scratch", "trunk", 2)
    mutate(doc)
    p = tmp_path / "weird_ckpt.json"
    p.write_text(json.dumps(doc))
    with pytest.raises(MetricsError) as e:
        load_metrics([p])
    assert "weird_ckpt.json" in str(e.value) and needle in str(e.value)


def test_results_cli_malformed_json(tmp_path):
    study, paths = write_run(tmp_path / "m")
    bad = tmp_path / "m" / "broken_metrics.json"
    bad.write_text('{"init": "scratch", "branch": ')
    out = tmp_path / "all.csv"
    r = run("rethink.analysis.results", "--study", study, "--out", out, *paths, bad)
    assert r.returncode == 2
    assert "broken_metrics.json" in r.stderr and "Traceback" not in r.stderr
    assert not out.exists()


@pytest.mark.parametrize("doc, needles", [
    (metrics_doc("scratch", "trunk", 2, "ghost", 0), ["'ghost'", "study.variants"]),
    (metrics_doc("scratch", "trunk", 2, "main", 7), ["seed 7", "study.seeds"]),
    # 12 is inside main's 2x branch but outside the 1k regime's (6, 8]
    (metrics_doc("scratch", "2x", 12, "1k", 0), ["'1k'", "'2x'", "[12]"]),
    (metrics_doc("scratch", "3x", 12, "main", 0), ["'main'", "'3x'"]),
])
def test_results_cli_checks_rows_against_variant_plan(tmp_path, doc, needles):
    study, paths = write_run(tmp_path / "m", variants=("main", "1k"))
    bad = tmp_path / "m" / "odd_one.json"
    bad.write_text(json.dumps(doc))
    out = tmp_path / "all.csv"
    r = run("rethink.analysis.results", "--study", study, "--out", out, *paths, bad)
    assert r.returncode == 2, r.stdout
    assert "odd_one.json" in r.stderr and "Traceback" not in r.stderr
    for n in needles:
        assert n in r.stderr, r.stderr
    assert not out.exists()


STUDY_BREAKS = [
    (lambda s: s.pop("seeds"), "'seeds'"),
    (lambda s: s.__setitem__("seeds", [0, 0]), "duplicates"),
    (lambda s: s.__setitem__("seeds", []), "study.seeds"),
    (lambda s: s.__setitem__("main", "nope"), "study.main"),
    (lambda s: s["variants"]["SyncBN"].pop("schedules"), "variants['SyncBN']"),
    (lambda s: s["variants"]["1k"]["schedules"][0].__setitem__("fork", 99), "variants['1k']"),
    (lambda s: s["variants"]["1k"].__setitem__("kind", "odd"), "variants['1k'].kind"),
    (lambda s: s["variants"]["main"].__setitem__("inits", ["imagenet21k"]), "variants['main'].inits"),
    (lambda s: s.__setitem__("pretrain", {"epochs": 3}), "pretrain.images_seen"),
]


@pytest.mark.parametrize("mutate, needle", STUDY_BREAKS)
def test_load_study_names_file_and_key(tmp_path, mutate, needle):
    doc = json.loads(json.dumps(study_doc()))
    mutate(doc)
    p = tmp_path / "odd_study.json"
    p.write_text(json.dumps(doc))
    with pytest.raises(MetricsError) as e:
        load_study(p)
    assert "odd_study.json" in str(e.value) and needle in str(e.value), str(e.value)


def test_load_study_keeps_variant_order(run_dir):
    st = load_study(run_dir["study"])
    assert list(st["variants"]) == ["main", "SyncBN", "1k"] and st["seeds"] == [0, 1]


# ------------------------------------------------------------------ figures
def check_png_pdf(png: Path, pdf: Path, wide=True):
    from PIL import Image
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert pdf.read_bytes()[:5] == b"%PDF-"
    assert pdf.stat().st_size > 1000
    with Image.open(png) as im:
        im.verify()
    with Image.open(png) as im:
        w, h = im.size
    assert 300 <= w <= 6000 and 300 <= h <= 4000
    if wide:
        assert w > h


FIGURES = ["ap_curves", "final_ap", "less_data", "norms"]


def figure_cmd(name, d, study, csv, out, *extra):
    return ("rethink.figures." + name, "--study", study, "--metrics", csv, *extra,
            "--out-png", out / f"{name}.png", "--out-pdf", out / f"{name}.pdf", "--dpi", 60)


def table_cmd(study, csv, out):
    return ("rethink.figures.final_table", "--study", study, "--metrics", csv,
            "--out-csv", out / "t.csv", "--out-md", out / "t.md", "--out-tex", out / "t.tex")


@pytest.mark.slow
@pytest.mark.parametrize("pretrain", [None, "small", "pre"])
def test_ap_curves_cli(run_dir, tmp_path, pretrain):
    extra = [] if pretrain is None else ["--pretrain", run_dir[pretrain]]
    r = run(*figure_cmd("ap_curves", run_dir["dir"], run_dir["study"], run_dir["csv"],
                        tmp_path, *extra))
    assert r.returncode == 0, r.stderr
    check_png_pdf(tmp_path / "ap_curves.png", tmp_path / "ap_curves.pdf")
    assert no_temp_files(tmp_path)


@pytest.mark.slow
def test_ap_curves_uses_study_pretrain(tmp_path):
    study, _, csv = collect(tmp_path, pretrain={"images_seen": 4000, "epochs": 2})
    r = run(*figure_cmd("ap_curves", tmp_path, study, csv, tmp_path))
    assert r.returncode == 0, r.stderr
    check_png_pdf(tmp_path / "ap_curves.png", tmp_path / "ap_curves.pdf")


@pytest.mark.slow
@pytest.mark.parametrize("ref", [False, True])
def test_final_ap_cli(run_dir, tmp_path, ref):
    out = tmp_path / "sub"
    extra = ["--reference", run_dir["ref"]] if ref else []
    r = run(*figure_cmd("final_ap", run_dir["dir"], run_dir["study"], run_dir["csv"], out,
                        *extra, "--context", "paper", "--style", "ticks", "--palette", "deep"))
    assert r.returncode == 0, r.stderr
    check_png_pdf(out / "final_ap.png", out / "final_ap.pdf")


@pytest.mark.slow
@pytest.mark.parametrize("margin", [[], ["--margin", "3.0"]])
def test_lead_cli(run_dir, tmp_path, margin):
    r = run(*figure_cmd("lead", run_dir["dir"], run_dir["study"], run_dir["csv"], tmp_path, *margin))
    assert r.returncode == 0, r.stderr
    check_png_pdf(tmp_path / "lead.png", tmp_path / "lead.pdf")
    assert no_temp_files(tmp_path)


def test_lead_needs_both_inits(run_dir, tmp_path):
    study = json.loads(Path(run_dir["study"]).read_text())
    study["variants"][study["main"]]["inits"] = ["scratch"]
    one = tmp_path / "study.json"
    one.write_text(json.dumps(study))
    metrics = pd.read_csv(run_dir["csv"])
    scratch = tmp_path / "scratch.csv"
    metrics[metrics["init"] == "scratch"].to_csv(scratch, index=False)
    r = run(*figure_cmd("lead", run_dir["dir"], one, scratch, tmp_path))
    assert r.returncode == 2 and "the lead needs both inits" in r.stderr
    assert not (tmp_path / "lead.png").exists()


@pytest.mark.slow
@pytest.mark.parametrize("name", ["less_data", "norms"])
@pytest.mark.parametrize("ref", [False, True])
def test_panel_figures_cli(run_dir, tmp_path, name, ref):
    extra = ["--reference", run_dir["ref"]] if ref else []
    r = run(*figure_cmd(name, run_dir["dir"], run_dir["study"], run_dir["csv"], tmp_path,
                        *extra))
    assert r.returncode == 0, r.stderr
    assert "2 panels" in r.stdout
    check_png_pdf(tmp_path / f"{name}.png", tmp_path / f"{name}.pdf")
    assert no_temp_files(tmp_path)


@pytest.mark.slow
def test_panel_figures_main_only(tmp_path):
    """No regime / norm variants: one panel and a note, not a failure."""
    study, _, csv = collect(tmp_path, seeds=(0, 1))
    for name in ("less_data", "norms"):
        r = run(*figure_cmd(name, tmp_path, study, csv, tmp_path))
        assert r.returncode == 0, r.stderr
        check_png_pdf(tmp_path / f"{name}.png", tmp_path / f"{name}.pdf", wide=False)


def figure_of(module, argv, monkeypatch):
    """Run a figure CLI in-process and return its matplotlib figure instead of saving it."""
    import importlib
    mod = importlib.import_module(f"rethink.figures.{module}")
    got = {}
    monkeypatch.setattr(mod, "save_figure", lambda fig, *a: got.setdefault("fig", fig))
    assert mod.main([str(a) for a in argv]) == 0
    return got["fig"]


def texts(fig):
    out = [t.get_text() for t in fig.texts]
    out += [fig._suptitle.get_text()] if fig._suptitle else []
    for ax in fig.axes:
        out.append(ax.get_title())
    return "\n".join(out)


def bands(fig):
    from matplotlib.collections import PolyCollection
    return sum(isinstance(c, PolyCollection) for ax in fig.axes for c in ax.collections)


def test_norms_figure_says_syncbn_is_batchnorm_on_one_process(run_dir, monkeypatch, tmp_path):
    fig = figure_of("norms", figure_cmd("norms", None, run_dir["study"], run_dir["csv"],
                                        tmp_path)[1:], monkeypatch)
    t = texts(fig)
    assert "SyncBN*" in t and "GN" in t
    assert "single (CPU) process it is plain BatchNorm" in t
    assert bands(fig) > 0 and "mean over 2 seeds" in t


def test_less_data_panels_in_study_order(run_dir, monkeypatch, tmp_path):
    fig = figure_of("less_data", figure_cmd("less_data", None, run_dir["study"],
                                            run_dir["csv"], tmp_path, "--reference",
                                            run_dir["ref"])[1:], monkeypatch)
    titles = [ax.get_title() for ax in fig.axes if ax.get_visible()]
    assert titles[0].startswith("full data") and titles[1].startswith("1k regime")
    assert "10 train images" in titles[1]
    assert "paper" in texts(fig) or any(
        h.get_label() == "paper" for lg in fig.legends for h in lg.legend_handles)


@pytest.mark.parametrize("name", FIGURES)
def test_one_seed_draws_no_band(one_seed, monkeypatch, tmp_path, name):
    fig = figure_of(name, figure_cmd(name, None, one_seed["study"], one_seed["csv"],
                                     tmp_path)[1:], monkeypatch)
    assert bands(fig) == 0
    assert "n=1" in texts(fig)
    if name == "final_ap":
        assert not any(ax.containers and any(
            type(c).__name__ == "ErrorbarContainer" for c in ax.containers) for ax in fig.axes)


@pytest.mark.slow
@pytest.mark.parametrize("name", FIGURES)
def test_one_seed_cli(one_seed, tmp_path, name):
    r = run(*figure_cmd(name, None, one_seed["study"], one_seed["csv"], tmp_path))
    assert r.returncode == 0, r.stderr
    check_png_pdf(tmp_path / f"{name}.png", tmp_path / f"{name}.pdf")


def test_ap_curves_band_with_two_seeds(run_dir, monkeypatch, tmp_path):
    fig = figure_of("ap_curves", figure_cmd("ap_curves", None, run_dir["study"],
                                            run_dir["csv"], tmp_path)[1:], monkeypatch)
    assert bands(fig) > 0
    assert "mean over 2 seeds" in texts(fig)


# ------------------------------------------------------------------ final table
def test_final_table_cli(run_dir, tmp_path):
    r = run(*table_cmd(run_dir["study"], run_dir["csv"], tmp_path))
    assert r.returncode == 0, r.stderr
    t = pd.read_csv(tmp_path / "t.csv")
    assert len(t) == 4 and (t["n_seeds"] == 2).all()
    cols = {"bbox_AP": ("bbox", 0), "bbox_AP50": ("bbox", 1), "bbox_AP75": ("bbox", 2),
            "bbox_APs": ("bbox", 3), "bbox_APm": ("bbox", 4), "bbox_APl": ("bbox", 5),
            "mask_AP": ("segm", 0), "mask_AP50": ("segm", 1), "mask_AP75": ("segm", 2)}
    iters = {s["name"]: s["iters"] for s in PLAN["schedules"]}
    md, tex = (tmp_path / "t.md").read_text(), (tmp_path / "t.tex").read_text()
    assert "\\toprule" in tex and "\\midrule" in tex and "\\bottomrule" in tex
    assert "\\begin{tabular}" in tex and "\\end{tabular}" in tex
    assert md.startswith("| Schedule | Init | Iters | Seeds |") and md.count("\n") == 2 + 4
    for row in t.itertuples(index=False):
        for col, (task, k) in cols.items():
            seeds = [value(row.init, row.schedule, iters[row.schedule], task, k, "main", s)
                     for s in (0, 1)]
            if ("main", 1, row.init, row.schedule, iters[row.schedule], task,
                    METRICS[k]) in NAN_POINTS:
                seeds = seeds[:1]
            want = mean_ci(seeds)
            assert getattr(row, col) == pytest.approx(round(100 * want["mean"], 1), abs=1e-9)
            if len(seeds) == 2:
                assert getattr(row, col + "_std") == pytest.approx(
                    round(100 * want["std"], 2), abs=1e-9)
            else:
                assert math.isnan(getattr(row, col + "_std"))
    # hand-computed: main, scratch, 2x, bbox AP: seeds 42.0 and 43.0 -> mean 42.5,
    # std 1/sqrt(2) = 0.71, 95% half width t(0.975, 1) * 0.7071 / sqrt(2) = 6.35
    r = t[(t.schedule == "2x") & (t.init == "scratch")].iloc[0]
    assert (r["bbox_AP"], r["bbox_AP_std"], r["bbox_AP_ci95"]) == (42.5, 0.71, 6.35)
    line = next(x for x in md.splitlines() if x.startswith("| 2x | random init"))
    assert "| n=2 | 42.5 ± 0.7 |" in line
    assert "42.5 $\\pm$ 0.7" in tex
    # one seed has pycocotools' -1 for APs of pretrained 2x: that cell says n=1, no std
    line = next(x for x in md.splitlines() if x.startswith("| 2x | ImageNet"))
    aps = round(100 * value("pretrained", "2x", 12, "bbox", 3, "main", 0), 1)
    assert f"| {aps:.1f} (n=1) |" in line


def test_final_table_one_seed(one_seed, tmp_path):
    r = run(*table_cmd(one_seed["study"], one_seed["csv"], tmp_path))
    assert r.returncode == 0, r.stderr
    md = (tmp_path / "t.md").read_text()
    assert "±" not in md and md.count("| n=1 |") == 4
    t = pd.read_csv(tmp_path / "t.csv")
    assert t["bbox_AP_std"].isna().all() and t["bbox_AP_ci95"].isna().all()
    r = t[(t.schedule == "1x") & (t.init == "pretrained")].iloc[0]
    assert r["bbox_AP"] == round(100 * value("pretrained", "1x", 6, "bbox", 0, "main", 3), 1)


# ------------------------------------------------------------------ bad input
def all_cmds(study, csv, out, ref=None):
    extra = ["--reference", ref] if ref else []
    cmds = {n: figure_cmd(n, None, study, csv, out, *extra) for n in FIGURES if n != "ap_curves"}
    cmds["ap_curves"] = figure_cmd("ap_curves", None, study, csv, out)
    cmds["final_table"] = table_cmd(study, csv, out)
    return cmds


def check_refused(r, out: Path, *needles):
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    for n in needles:
        assert str(n) in r.stderr, (n, r.stderr)
    assert not out.exists() or not any(out.iterdir())


@pytest.mark.parametrize("name", FIGURES + ["final_table"])
def test_csv_missing_column(run_dir, tmp_path, name):
    bad = tmp_path / "no_seed.csv"
    pd.read_csv(run_dir["csv"]).drop(columns=["seed"]).to_csv(bad, index=False)
    out = tmp_path / "out"
    r = run(*all_cmds(run_dir["study"], bad, out)[name])
    check_refused(r, out, "no_seed.csv", "seed")


@pytest.mark.parametrize("name", FIGURES + ["final_table"])
def test_csv_unknown_variant(run_dir, tmp_path, name):
    bad = tmp_path / "ghostly.csv"
    df = pd.read_csv(run_dir["csv"])
    df.loc[df.variant == "SyncBN", "variant"] = "ghost"
    df.to_csv(bad, index=False)
    out = tmp_path / "out"
    r = run(*all_cmds(run_dir["study"], bad, out)[name])
    check_refused(r, out, "ghostly.csv", "'ghost'")


@pytest.mark.parametrize("name", FIGURES + ["final_table"])
def test_bad_study(run_dir, tmp_path, name):
    doc = study_doc()
    doc["variants"]["SyncBN"] = {k: v for k, v in SYNC_PLAN.items() if k != "batch_size"}
    bad = tmp_path / "broken_study.json"
    bad.write_text(json.dumps(doc))
    out = tmp_path / "out"
    r = run(*all_cmds(bad, run_dir["csv"], out)[name])
    check_refused(r, out, "broken_study.json", "variants['SyncBN']", "batch_size")


@pytest.mark.slow
@pytest.mark.parametrize("name", ["final_ap", "final_table"])
def test_missing_final_checkpoint(tmp_path, name):
    study, _, csv = collect(tmp_path, seeds=(0, 1),
                            skip={("main", 1, "scratch", "2x", 12)})
    out = tmp_path / "out"
    r = run(*all_cmds(study, csv, out)[name])
    check_refused(r, out, "all_metrics.csv", "variant 'main'", "seed=1",
                  "init=scratch schedule=2x", "iteration 12")


@pytest.mark.parametrize("name", ["final_ap", "less_data", "norms"])
def test_bad_reference(run_dir, tmp_path, name):
    bad = tmp_path / "ref_bad.json"
    bad.write_text(json.dumps({"metric": "bbox_AP", "regimes": {"1k": {"scratch": "high"}}}))
    out = tmp_path / "out"
    r = run(*all_cmds(run_dir["study"], run_dir["csv"], out, ref=bad)[name])
    check_refused(r, out, "ref_bad.json", "regimes['1k']['scratch']")


@pytest.mark.slow
def test_variant_without_rows(tmp_path):
    """A panel's variant with no metrics at all is an error naming it, not an empty panel."""
    study, _, csv = collect(tmp_path, seeds=(0,), variants=("main", "1k"))
    doc = json.loads(study.read_text())
    doc["variants"]["3.5k"] = dict(REGIME_PLAN, regime="3.5k")
    study.write_text(json.dumps(doc))
    out = tmp_path / "out"
    r = run(*figure_cmd("less_data", None, study, csv, out))
    check_refused(r, out, "all_metrics.csv", "'3.5k'")


def test_latex_escapes_underscores():
    from rethink.figures.final_table import tex_escape
    assert tex_escape("long_sched_2x") == r"long\_sched\_2x"


def test_pretrain_strength_figure_needs_a_pretraining_variant(run_dir, tmp_path):
    """The fake study has none: a clear one-line error (the smoke study draws the figure)."""
    r = run(*figure_cmd("pretrain_strength", run_dir["dir"], run_dir["study"], run_dir["csv"], tmp_path))
    assert r.returncode == 2 and "no pretraining variant (study.pretrainings)" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr and not (tmp_path / "pretrain_strength.png").exists()


@pytest.mark.slow
def test_keypoint_metrics_reach_the_tidy_csv_and_the_keypoints_figure(tmp_path):
    study, paths, csv = collect(tmp_path, seeds=(0, 1), variants=("main", "kp"))
    df = read_metrics_csv(csv)
    kp = df[df["task"] == "keypoints"]
    assert set(kp["variant"]) == {"kp"} and sorted(set(kp["metric"])) == sorted(KEYPOINT_METRICS)
    fin = variant_finals(df, load_study(study), "kp")
    assert "keypoints_AP" in fin.columns and "keypoints_ARl" in fin.columns
    assert "keypoints_AP" not in variant_finals(df, load_study(study), "main").columns
    ref = tmp_path / "ref.json"
    ref.write_text(json.dumps({**REFERENCE, "variants": {"kp": {"metric": "keypoints_AP", "scratch": {"2x": 65.6},
                                                                 "pretrained": {"2x": 65.5}}}}))
    out = tmp_path / "out"
    out.mkdir()
    r = run(*figure_cmd("keypoints", None, study, csv, out, "--reference", ref,
                        "--out-csv", out / "kp.csv", "--out-md", out / "kp.md"))
    assert r.returncode == 0, r.stderr
    assert "(1 keypoint variant(s))" in r.stdout and (out / "keypoints.png").stat().st_size > 0
    table = pd.read_csv(out / "kp.csv")
    assert set(table["variant"]) == {"kp"} and len(table) == 4 and (table["n_seeds"] == 2).all()
    row = table[(table.schedule == "2x") & (table.init == "scratch")].iloc[0]
    want = mean_ci([value("scratch", "2x", 12, "keypoints", 0, "kp", s) for s in (0, 1)])
    assert row["keypoints_AP"] == pytest.approx(round(100 * want["mean"], 1), abs=1e-9)
    assert "bbox_AP" in table.columns and "mask_AP" in table.columns
    md = (out / "kp.md").read_text()
    assert md.startswith("Keypoint task `kp`") and "| keypoint AP | keypoint AP50 |" in md
    assert (out / "keypoints.pdf").read_bytes().startswith(b"%PDF") and no_temp_files(out)
    # a study without one: a one-line error naming the key
    r = run(*figure_cmd("keypoints", None, *collect(tmp_path / "plain", seeds=(0,), variants=("main",))[::2], tmp_path))
    assert r.returncode == 2 and "no keypoint variant (study.tasks" in r.stderr and "Traceback" not in r.stderr
    # a variant's reference metric must be a known one
    ref.write_text(json.dumps({"metric": "bbox_AP", "variants": {"kp": {"metric": "keypoints_APs"}}}))
    r = run(*figure_cmd("keypoints", None, study, csv, out, "--reference", ref))
    assert r.returncode == 2 and "reference.variants['kp'].metric 'keypoints_APs' is not <task>_<metric>" in r.stderr


@pytest.mark.slow
def test_models_figure_draws_each_model_and_the_papers_points(tmp_path):
    study, _, csv = collect(tmp_path, seeds=(0, 1), variants=("main", "R18"))
    ref = tmp_path / "ref.json"
    ref.write_text(json.dumps({**REFERENCE, "variants": {"R18": {"scratch": {"2x": 38.2}, "pretrained": {"2x": 41.8}}}}))
    out = tmp_path / "out"
    out.mkdir()
    r = run(*figure_cmd("models", None, study, csv, out, "--reference", ref))
    assert r.returncode == 0, r.stderr
    assert "(2 models)" in r.stdout and (out / "models.png").stat().st_size > 0
    assert (out / "models.pdf").read_bytes().startswith(b"%PDF") and no_temp_files(out)
    # no model variant: a one-line error naming the key, no figure
    r = run(*figure_cmd("models", None, *collect(tmp_path / "plain", seeds=(0,), variants=("main",))[::2], tmp_path))
    assert r.returncode == 2 and "no model variant (study.models)" in r.stderr and "Traceback" not in r.stderr
    # a malformed "variants" block of the reference names the entry
    ref.write_text(json.dumps({"metric": "bbox_AP", "variants": {"R18": {"random": {"2x": 38.2}}}}))
    r = run(*figure_cmd("models", None, study, csv, out, "--reference", ref))
    assert r.returncode == 2 and "reference.variants['R18'] must map each of ['scratch', 'pretrained']" in r.stderr
