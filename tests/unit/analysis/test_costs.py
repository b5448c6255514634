"""The job costs table: stages from benchmark files, and where the core-seconds went."""
import json
import os

import pytest

from rethink.analysis import costs

HEADER = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"


def bench(root, stage, name, seconds, end):
    path = root / "benchmarks" / stage / f"{name}.tsv"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(HEADER + f"{seconds}\t0:00:00\t100\t1\t1\t1\t0\t0\t90\t{seconds}\n")
    os.utime(path, (end, end))  # a benchmark file is written when its job ends
    return path


def test_breakdown_of_core_seconds_with_idle_cores(tmp_path):
    t = 1_000_000.0
    # two cores; training jobs 0-20 s and 0-30 s, evaluate jobs 30-31 and 31-32 s
    files = [bench(tmp_path, "train", "a", 20.0, t + 20), bench(tmp_path, "train", "b", 30.0, t + 30),
             bench(tmp_path, "evaluate", "a1", 1.0, t + 31), bench(tmp_path, "evaluate", "b1", 1.0, t + 32),
             bench(tmp_path, "pretrain", "old", 5.0, t - 1000)]  # an earlier run's: not this session
    phases = []
    for name, startup, train in (("a", 2.0, 15.0), ("b", 2.0, 25.0)):
        p = tmp_path / f"{name}.phases.json"
        p.write_text(json.dumps({"startup_s": startup, "setup_s": 0.5, "eval_setup_s": 0.5,
                                 "train_s": train, "save_s": 0.5, "eval_s": 1.0, "iterations": 10}))
        phases.append(p)
    jobs = costs.read_benchmarks(files)
    table = costs.per_stage(jobs)
    assert dict(zip(table["stage"], table["jobs"])) == {"train": 2, "evaluate": 2, "pretrain": 1}
    spent = costs.breakdown(jobs, costs.read_phases(phases), cores=2)
    by = dict(zip(spent["item"], spent["seconds"]))
    assert by[costs.PHASES[0][1]] == 4.0 and by["training iterations"] == 40.0
    rest = next(k for k in by if k.startswith("rest of"))
    assert by[rest] == pytest.approx(50.0 - (4 + 1 + 1 + 40 + 1 + 2))
    idle = next(k for k in by if k.startswith("cores idle"))
    assert by[idle] == pytest.approx(2 * 32 - (20 + 30 + 1 + 1))  # span 0-32 s of this session
    overhead = spent.loc[spent["overhead"], "seconds"].sum()
    assert overhead == pytest.approx(4 + 1 + 1 + by[rest] + 2 + by[idle])
    assert spent["share"].sum() == pytest.approx(1.0)
    assert costs.max_concurrent(jobs.iloc[:4]) == 2  # the two training jobs overlap
    md = costs.markdown(table, spent)
    assert "overhead:" in md and "cores idle" in md


def test_unreadable_phases_file_is_named(tmp_path):
    bad = tmp_path / "x.phases.json"
    bad.write_text("{not json")
    with pytest.raises(SystemExit, match="x.phases.json"):
        costs.read_phases([bad])
