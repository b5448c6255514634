"""Tests for rethink.results and the rethink.figures CLIs on a tiny fake run."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from rethink.results import (
    METRICS, MetricsError, final_metrics, load_metrics, schedule_curves,
)

WORKFLOW = Path(__file__).resolve().parents[1] / "workflow"

PLAN = {
    "one_x": 6, "tail": 4, "batch_size": 8, "inits": ["scratch", "pretrained"],
    "trunk_end": 8,
    "schedules": [
        {"name": "1x", "multiple": 1.0, "iters": 6, "fork": 2, "drops": [2, 4]},
        {"name": "2x", "multiple": 2.0, "iters": 12, "fork": 8, "drops": [8, 10]},
    ],
}
TRUNK_ITERS = [0, 2, 4, 6, 8]
BRANCH_ITERS = {"1x": [4, 6], "2x": [10, 12]}


def value(init, branch, it, task, k):
    """Distinct deterministic value in [0, 1] for each point/metric."""
    base = {"scratch": 0.10, "pretrained": 0.30}[init]
    bonus = {"trunk": 0.0, "1x": 0.05, "2x": 0.08}[branch]
    return round(base + bonus + 0.02 * it + 0.001 * k + (0.1 if task == "segm" else 0.0), 4)


def metrics_doc(init, branch, it):
    doc = {"init": init, "branch": branch, "iteration": it, "num_images": 10,
           "num_detections": 50, "per_category": {"bbox": {"a_b": 0.5}, "segm": {"a_b": 0.4}}}
    for task in ("bbox", "segm"):
        doc[task] = {m: value(init, branch, it, task, k) for k, m in enumerate(METRICS)}
        if branch == "trunk" and it == 0:
            doc[task]["APs"] = -1  # pycocotools: no ground truth in range
    return doc


def write_run(d: Path, skip=()):
    d.mkdir(parents=True, exist_ok=True)
    paths = []
    for init in PLAN["inits"]:
        pts = [("trunk", i) for i in TRUNK_ITERS]
        pts += [(b, i) for b, its in BRANCH_ITERS.items() for i in its]
        for branch, it in pts:
            if (init, branch, it) in skip:
                continue
            p = d / f"{init}_{branch}_{it:06d}.json"
            p.write_text(json.dumps(metrics_doc(init, branch, it)))
            paths.append(p)
    plan = d / "plan.json"
    plan.write_text(json.dumps(PLAN))
    return plan, paths


def run(*args):
    env = dict(os.environ, PYTHONPATH=str(WORKFLOW), MPLBACKEND="Agg")
    return subprocess.run([sys.executable, "-m", *map(str, args)], env=env,
                          capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("run")
    plan, paths = write_run(d / "metrics")
    csv = d / "all_metrics.csv"
    r = run("rethink.results", "--plan", plan, "--out", csv, *paths)
    assert r.returncode == 0, r.stderr
    pre = d / "pretrain_metrics.json"
    pre.write_text(json.dumps({"top1": 0.99, "iterations": 900, "batch_size": 64,
                               "images_seen": 57600, "epochs": 14}))
    small = d / "pretrain_small.json"
    small.write_text(json.dumps({"top1": 0.5, "iterations": 1, "batch_size": 64,
                                 "images_seen": 64, "epochs": 1}))
    return {"dir": d, "plan": plan, "paths": paths, "csv": csv, "pre": pre, "small": small}


def no_temp_files(d: Path):
    return not [p for p in d.iterdir() if ".tmp" in p.name]


# ------------------------------------------------------------------ results
def test_tidy_csv_rows(run_dir):
    df = pd.read_csv(run_dir["csv"])
    assert list(df.columns) == ["init", "branch", "iteration", "task", "metric", "value"]
    n_files = len(run_dir["paths"])
    assert n_files == 2 * (len(TRUNK_ITERS) + 4)
    assert len(df) == n_files * 2 * len(METRICS)
    assert not df.duplicated(["init", "branch", "iteration", "task", "metric"]).any()
    row = df[(df.init == "pretrained") & (df.branch == "2x") & (df.iteration == 12)
             & (df.task == "segm") & (df.metric == "AP75")]
    assert row["value"].item() == pytest.approx(value("pretrained", "2x", 12, "segm", 2))
    # -1 ("no ground truth") becomes missing
    nan = df[(df.branch == "trunk") & (df.iteration == 0) & (df.metric == "APs")]
    assert len(nan) == 4 and nan["value"].isna().all()
    assert no_temp_files(run_dir["dir"])


def test_schedule_curves_duplicates_trunk(run_dir):
    df = load_metrics(run_dir["paths"])
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
    fin = final_metrics(load_metrics(run_dir["paths"]), PLAN)
    assert list(zip(fin.schedule, fin.init)) == [
        ("1x", "scratch"), ("1x", "pretrained"), ("2x", "scratch"), ("2x", "pretrained")]
    r = fin[(fin.init == "scratch") & (fin.schedule == "2x")].iloc[0]
    assert r["iteration"] == 12
    assert r["bbox_AP"] == pytest.approx(value("scratch", "2x", 12, "bbox", 0))


def test_final_metrics_missing_names_run(tmp_path):
    _, paths = write_run(tmp_path, skip={("pretrained", "1x", 6)})
    with pytest.raises(MetricsError, match=r"init=pretrained schedule=1x.*iteration 6"):
        final_metrics(load_metrics(paths), PLAN)


@pytest.mark.parametrize("mutate, needle", [
    (lambda d: d.pop("iteration"), "iteration"),
    (lambda d: d["segm"].pop("AR100"), "AR100"),
    (lambda d: d["bbox"].__setitem__("AP", "high"), "bbox.AP"),
    (lambda d: d["bbox"].__setitem__("AP50", 3.5), "bbox.AP50"),
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
    plan, paths = write_run(tmp_path / "m")
    bad = tmp_path / "m" / "broken_metrics.json"
    bad.write_text('{"init": "scratch", "branch": ')
    out = tmp_path / "all.csv"
    r = run("rethink.results", "--plan", plan, "--out", out, *paths, bad)
    assert r.returncode != 0
    assert "broken_metrics.json" in r.stderr and "Traceback" not in r.stderr
    assert not out.exists()


# ------------------------------------------------------------------ figures
def check_png_pdf(png: Path, pdf: Path):
    from PIL import Image
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert pdf.read_bytes()[:5] == b"%PDF-"
    assert pdf.stat().st_size > 1000
    with Image.open(png) as im:
        im.verify()
    with Image.open(png) as im:
        w, h = im.size
    assert 600 <= w <= 6000 and 300 <= h <= 4000 and w > h


@pytest.mark.parametrize("pretrain", [None, "small", "pre"])
def test_ap_curves_cli(run_dir, tmp_path, pretrain):
    png, pdf = tmp_path / "curves.png", tmp_path / "curves.pdf"
    extra = [] if pretrain is None else ["--pretrain", run_dir[pretrain]]
    r = run("rethink.figures.ap_curves", "--plan", run_dir["plan"], "--metrics",
            run_dir["csv"], *extra, "--out-png", png, "--out-pdf", pdf, "--dpi", 80)
    assert r.returncode == 0, r.stderr
    check_png_pdf(png, pdf)
    assert no_temp_files(tmp_path)


def test_final_ap_cli(run_dir, tmp_path):
    png, pdf = tmp_path / "sub" / "final.png", tmp_path / "sub" / "final.pdf"
    r = run("rethink.figures.final_ap", "--plan", run_dir["plan"], "--metrics",
            run_dir["csv"], "--out-png", png, "--out-pdf", pdf, "--dpi", 80,
            "--context", "paper", "--style", "ticks", "--palette", "deep")
    assert r.returncode == 0, r.stderr
    check_png_pdf(png, pdf)


def test_final_table_cli(run_dir, tmp_path):
    out = {k: tmp_path / f"table.{k}" for k in ("csv", "md", "tex")}
    r = run("rethink.figures.final_table", "--plan", run_dir["plan"], "--metrics",
            run_dir["csv"], "--out-csv", out["csv"], "--out-md", out["md"],
            "--out-tex", out["tex"])
    assert r.returncode == 0, r.stderr
    t = pd.read_csv(out["csv"])
    assert len(t) == 4
    cols = {"bbox_AP": ("bbox", 0), "bbox_AP50": ("bbox", 1), "bbox_AP75": ("bbox", 2),
            "bbox_APs": ("bbox", 3), "bbox_APm": ("bbox", 4), "bbox_APl": ("bbox", 5),
            "mask_AP": ("segm", 0), "mask_AP50": ("segm", 1), "mask_AP75": ("segm", 2)}
    iters = {s["name"]: s["iters"] for s in PLAN["schedules"]}
    md, tex = out["md"].read_text(), out["tex"].read_text()
    assert "\\toprule" in tex and "\\midrule" in tex and "\\bottomrule" in tex
    assert "\\begin{tabular}" in tex and "\\end{tabular}" in tex
    assert md.startswith("| Schedule |") and md.count("\n") == 2 + 4
    for row in t.itertuples(index=False):
        expect = []
        for col, (task, k) in cols.items():
            v = round(100 * value(row.init, row.schedule, iters[row.schedule], task, k), 1)
            assert getattr(row, col) == pytest.approx(v, abs=1e-9), (row, col)
            expect.append(f"{v:.1f}")
        cells = " | ".join(expect)
        assert any(cells in line and line.startswith(f"| {row.schedule} |")
                   for line in md.splitlines()), (row, md)
        assert any(" & ".join(expect) in line and line.startswith(f"{row.schedule} &")
                   for line in tex.splitlines()), (row, tex)


def test_final_table_missing_final_checkpoint(tmp_path):
    d = tmp_path / "m"
    plan, paths = write_run(d, skip={("scratch", "2x", 12)})
    csv = tmp_path / "all.csv"
    assert run("rethink.results", "--plan", plan, "--out", csv, *paths).returncode == 0
    out_md = tmp_path / "t.md"
    r = run("rethink.figures.final_table", "--plan", plan, "--metrics", csv,
            "--out-csv", tmp_path / "t.csv", "--out-md", out_md, "--out-tex", tmp_path / "t.tex")
    assert r.returncode != 0
    assert "init=scratch schedule=2x" in r.stderr and "iteration 12" in r.stderr
    assert "Traceback" not in r.stderr
    assert not out_md.exists() and not (tmp_path / "t.csv").exists()


def test_latex_escapes_underscores():
    from rethink.figures.final_table import tex_escape
    assert tex_escape("long_sched_2x") == r"long\_sched\_2x"
