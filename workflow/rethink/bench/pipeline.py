"""Snakemake overhead (DAG build, no-op rerun, one-figure rebuild) and the wall time of a
reduced study as the dataset and the schedules grow.

Everything runs in a copy of the workflow (Snakefile, config.yaml, workflow/, envs/) in a
scratch folder, so nothing touches the repository's results/. The reduced study is
tests/smoke_config.yaml (the tiny study the smoke test runs) with the study's extra variants
(study.norms, study.regimes) switched off where the config has them; `--cores 2`.
"""
from __future__ import annotations

import sys
from pathlib import Path

import yaml

from rethink.bench.common import (
    ROOT,
    copy_workflow,
    fit_line,
    job_counts,
    load_config,
    median,
    rnd,
    run_timed,
    shown,
    snakemake_cmd,
)

CORES = "2"
FIGURE_SCRIPTS = ("final_ap.py", "ap_curves.py")  # the first that exists is edited


def tiny_study(overrides: dict | None = None) -> dict:
    """The reduced study's config (merged over config.yaml by --configfile)."""
    cfg = yaml.safe_load((ROOT / "tests" / "smoke_config.yaml").read_text())
    if "study" in load_config():
        cfg["study"] = {**cfg.get("study", {}), "seeds": 1, "norms": [], "regimes": []}
    for section, values in (overrides or {}).items():
        if isinstance(values, dict):
            cfg[section] = {**cfg.get(section, {}), **values}
        else:
            cfg[section] = values
    return cfg


def _write(path: Path, cfg: dict) -> Path:
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def dag_build(wf: Path, configfile: Path | None, repeats: int) -> dict:
    """`snakemake -n` from nothing: wall time (median) and the number of jobs."""
    args = ["-n", "--cores", CORES] + (["--configfile", str(configfile)] if configfile else [])
    cmd = snakemake_cmd(*args)
    times, counts = [], {}
    for _ in range(repeats):
        seconds, proc = run_timed(cmd, wf)
        times.append(seconds)
        counts = job_counts(proc.stdout + proc.stderr)
    return {"command": shown(cmd), "seconds": rnd(median(times), 3),
            "seconds_runs": [rnd(t, 3) for t in times], "jobs": counts.get("total"),
            "jobs_by_rule": counts}


def job_startup(repeats: int) -> dict:
    """Seconds for a job's Python to import the training module (torch, torchvision,
    pycocotools): the fixed cost every training and evaluation job pays before any work."""
    cmd = [sys.executable, "-c", "import rethink.engine.train"]
    times = [run_timed(cmd, ROOT)[0] for _ in range(repeats)]
    return {"command": shown(cmd), "seconds": rnd(median(times), 3),
            "seconds_runs": [rnd(t, 3) for t in times]}


def complete_run(wf: Path, configfile: Path) -> dict:
    cmd = snakemake_cmd("--cores", CORES, "--configfile", str(configfile))
    seconds, proc = run_timed(cmd, wf)
    return {"command": shown(cmd), "seconds": rnd(seconds, 2),
            "jobs": job_counts(proc.stdout + proc.stderr).get("total")}


def noop(wf: Path, configfile: Path, repeats: int) -> dict:
    cmd = snakemake_cmd("--cores", CORES, "--configfile", str(configfile))
    times = []
    for _ in range(repeats):
        seconds, proc = run_timed(cmd, wf)
        if "Nothing to be done" not in proc.stdout + proc.stderr:
            raise RuntimeError(f"{shown(cmd)} was not a no-op:\n{proc.stderr[-2000:]}")
        times.append(seconds)
    m = median(times)
    return {"command": shown(cmd), "seconds": rnd(m, 3), "seconds_runs": [rnd(t, 3) for t in times],
            "goals": {"noop<=5s": m <= 5.0}}


def figure_rebuild(wf: Path, configfile: Path, repeats: int) -> dict:
    """Edit one figure script (a comment appended: Snakemake checks small inputs' checksums,
    so a bare touch reruns nothing), time the rerun; only that figure's rule should run."""
    fig_dir = wf / "workflow" / "rethink" / "figures"
    script = next(fig_dir / n for n in FIGURE_SCRIPTS if (fig_dir / n).exists())
    cmd = snakemake_cmd("--cores", CORES, "--configfile", str(configfile))
    times, rules = [], {}
    for k in range(repeats):
        with open(script, "a") as f:
            f.write(f"\n# benchmark edit {k}\n")
        seconds, proc = run_timed(cmd, wf)
        times.append(seconds)
        rules = job_counts(proc.stdout + proc.stderr)
    if rules.get("total", 0) < 1:
        raise RuntimeError(f"editing {script.name} reran nothing")
    return {"command": f"echo '# edit' >> workflow/rethink/figures/{script.name} && {shown(cmd)}",
            "seconds": rnd(median(times), 3), "seconds_runs": [rnd(t, 3) for t in times],
            "jobs_rerun": rules}


def run_all(work: Path, repeats: int, quick: bool) -> dict:
    """DAG builds (default config, COCO preset), then for the reduced study: a complete run,
    no-op reruns and a one-figure rebuild."""
    wf = copy_workflow(work / "workflow_copy")
    out = {"job_startup": job_startup(repeats), "dag_default": dag_build(wf, None, repeats)}
    preset = wf / "workflow" / "presets" / "coco.yaml"
    if preset.exists():
        out["dag_coco_preset"] = dag_build(wf, preset, repeats)
        out["dag_coco_preset"]["command"] = out["dag_coco_preset"]["command"].replace(str(wf) + "/", "")
    else:
        out["dag_coco_preset"] = {"skipped": "workflow/presets/coco.yaml does not exist yet"}
    if quick:
        out["reduced_study"] = {"skipped": "--quick: no complete run"}
        return out
    cfgfile = _write(wf / "bench_tiny.yaml", tiny_study({"results": "results_tiny"}))
    out["reduced_study_config"] = tiny_study()
    out["complete_run"] = complete_run(wf, cfgfile)
    out["noop"] = noop(wf, cfgfile, repeats)
    out["figure_rebuild"] = figure_rebuild(wf, cfgfile, repeats)
    for key in ("complete_run", "noop", "figure_rebuild"):
        out[key]["command"] = out[key]["command"].replace(str(cfgfile), "bench_tiny.yaml")
    return out


def scaling(work: Path, base_seconds: float | None, data_factors=(1, 4, 16),
            schedule_factors=(1, 4, 16, 32)) -> dict:
    """Complete runs of the reduced study, one per point, each in a fresh results folder:
    dataset size (every synthetic image count x f) and schedule length (one_x x s), up to
    sizes where compute, not job start-up, sets the wall time (runs of several minutes)."""
    wf = work / "workflow_copy"
    if not wf.exists():
        copy_workflow(wf)
    base = tiny_study()
    syn, det = base["data"]["synthetic"], base["detection"]
    keys = ("det_train_images", "det_val_images", "cls_train_per_class", "cls_val_per_class")
    points = {"dataset": [], "schedule": []}
    for axis, factors in (("dataset", data_factors), ("schedule", schedule_factors)):
        for f in factors:
            if f == 1 and base_seconds is not None:
                seconds = base_seconds  # the complete run of run_all: the same study
            else:
                over = ({"data": {"synthetic": {**syn, **{k: syn[k] * f for k in keys}}}}
                        if axis == "dataset" else {"detection": {**det, "one_x": det["one_x"] * f}})
                name = f"scale_{axis}_{f}"
                cfgfile = _write(wf / f"{name}.yaml", tiny_study({**over, "results": f"results_{name}"}))
                seconds = complete_run(wf, cfgfile)["seconds"]
            size = ({k: syn[k] * f for k in keys} if axis == "dataset"
                    else {"one_x": det["one_x"] * f, "schedules": det["schedules"]})
            points[axis].append({"factor": f, **size, "seconds": rnd(seconds, 2)})
            print(f"  [scaling] {axis} x{f}: {seconds:.1f} s", flush=True)
    fits = {axis: fit_line([p["factor"] for p in pts], [p["seconds"] for p in pts])
            for axis, pts in points.items()}
    return {"points": points, "fit_seconds_vs_factor": fits,
            "command": "snakemake --cores 2 --configfile scale_<axis>_<factor>.yaml (reduced study, "
                       "see reduced_study_config under pipeline)"}
