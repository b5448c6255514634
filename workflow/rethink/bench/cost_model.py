"""The cost model of a study: start-up per job, evaluation per checkpoint, training per
iteration and the overhead share, from complete runs of a reduced study in two job layouts,
side by side (interleaved, in fresh results folders of one workflow copy):

* ``per_checkpoint``: one checkpoint per training job and every evaluation in a job of its
  own (`detection.job_iters: 1`, `evaluate.in_training: false`): the layout before the
  training jobs evaluated their own checkpoints;
* ``now``: the shipped layout (a training job per branch, evaluating each checkpoint it
  writes; the evaluate jobs adopt those results).

Both train the same weights; the numbers come from each run's own benchmark and phase files
(`rethink.analysis.costs`), so they are what the job costs table of that run says.
"""
from __future__ import annotations

import statistics
from pathlib import Path

from rethink.analysis import costs
from rethink.bench.common import copy_workflow, median, rnd, run_timed, shown, snakemake_cmd
from rethink.bench.pipeline import CORES, _write, tiny_study

ARMS = {
    "per_checkpoint": {"detection": {"job_iters": 1}, "evaluate": {"in_training": False}},
    "now": {},
}
# The reduced study: the smoke study with a longer schedule and denser checkpoints, so that
# training and evaluation are a visible part of it.
REDUCED = {"detection": {"one_x": 18, "checkpoint_every": 4}}


def arm_config(arm: str, k: int) -> dict:
    over = {**REDUCED, "results": f"results_cost_{arm}_{k}"}
    base = tiny_study(over)
    for section, values in ARMS[arm].items():
        base[section] = {**base.get(section, {}), **values}
    return base


def measure(results: Path, cores: int) -> dict:
    bench = results / "benchmarks"
    jobs = costs.read_benchmarks(sorted(bench.rglob("*.tsv")))
    phases = costs.read_phases(sorted((bench / "train").rglob("*.phases.json")))
    spent = costs.breakdown(jobs, phases, cores)
    n_ckpt = int((jobs["stage"] == "evaluate").sum())
    n_train = int((jobs["stage"] == "train").sum())
    iters = int(phases["iterations"].sum())
    train_wall = jobs.loc[jobs["stage"] == "train", "seconds"].sum()
    eval_wall = jobs.loc[jobs["stage"] == "evaluate", "seconds"].sum()
    return {
        "training_jobs": n_train, "evaluate_jobs": n_ckpt, "iterations": iters,
        "startup_s_per_job": rnd(statistics.median(phases["startup_s"]), 3) if len(phases) else None,
        "train_s_per_iteration": rnd(phases["train_s"].sum() / iters, 4) if iters else None,
        # evaluation of one checkpoint: in the training job, plus its evaluate job's wall
        "evaluation_s_per_checkpoint": rnd((phases["eval_s"].sum() + phases["eval_setup_s"].sum()
                                            + eval_wall) / n_ckpt, 3) if n_ckpt else None,
        "training_jobs_wall_s": rnd(train_wall, 1), "evaluate_jobs_wall_s": rnd(eval_wall, 1),
        "overhead_share": rnd(float(spent.loc[spent["overhead"], "share"].sum()), 4),
        "core_seconds": rnd(float(spent["seconds"].sum()), 1),
        "breakdown": [{k: (rnd(v, 4) if isinstance(v, float) else v) for k, v in row.items()}
                      for row in spent.to_dict("records")],
    }


def run(work: Path, repeats: int = 1) -> dict:
    wf = copy_workflow(work / "cost_model_workflow")
    walls: dict[str, list[float]] = {arm: [] for arm in ARMS}
    measured: dict[str, dict] = {}
    commands = {}
    for k in range(repeats):
        for arm in ARMS:  # interleaved: A B A B ...
            cfg = arm_config(arm, k)
            cfgfile = _write(wf / f"cost_{arm}_{k}.yaml", cfg)
            cmd = snakemake_cmd("--cores", CORES, "--configfile", str(cfgfile))
            seconds, _ = run_timed(cmd, wf)
            walls[arm].append(seconds)
            measured[arm] = measure(wf / cfg["results"], int(CORES))
            commands[arm] = shown(cmd).replace(str(cfgfile), f"cost_{arm}.yaml")
            print(f"  [cost_model] {arm}: {seconds:.1f} s wall, overhead "
                  f"{100 * measured[arm]['overhead_share']:.1f}%", flush=True)
    ratios = [a / b for a, b in zip(walls["per_checkpoint"], walls["now"])]
    return {
        "reduced_study": {**REDUCED, "base": "tests/smoke_config.yaml, main variant, 1 seed"},
        "arms": {arm: {"overrides": ARMS[arm], "wall_s": rnd(median(walls[arm]), 2),
                       "wall_s_runs": [rnd(w, 2) for w in walls[arm]], "command": commands[arm],
                       **measured[arm]} for arm in ARMS},
        "ratio_wall_per_checkpoint_vs_now": rnd(median(ratios), 3),
    }
