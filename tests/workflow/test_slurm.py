"""The smoke study on a real single-node SLURM (slurmctld, slurmd, munged on localhost,
started by tests/slurm/cluster.sh, which installs Debian's slurm-wlm and munge if needed),
through profiles/slurm and snakemake-executor-plugin-slurm."""
import json
import os
import subprocess
import sys
import time

import pytest
import yaml

from conftest import ROOT, SMOKE, copy_workflow

CLUSTER = ROOT / "tests" / "slurm" / "cluster.sh"
# `python -m snakemake`, but polling squeue every --seconds-between-status-checks instead of the
# plugin's growing back-off (+10 s per check in which no job finished): see tests/slurm/steady_poll.py
SNAKEMAKE = [sys.executable, str(ROOT / "tests" / "slurm" / "steady_poll.py")]
# No accounting daemon here: job status comes from squeue, and there is no account to charge.
LOCAL = ["--slurm-status-command", "squeue", "--slurm-no-account", "--slurm-keep-successful-logs",
         "--slurm-init-seconds-before-status-checks", "1", "--seconds-between-status-checks", "1",
         "--retries", "0", "--jobs", "4"]


@pytest.fixture(scope="module")
def cluster():
    was_running = subprocess.run(["bash", str(CLUSTER), "status"], capture_output=True).returncode == 0
    start = subprocess.run(["bash", str(CLUSTER), "start"], capture_output=True, text=True, timeout=900)
    assert start.returncode == 0, start.stdout + start.stderr
    env = {**os.environ, "SLURM_CONF": "/tmp/rethink-slurm/slurm.conf"}
    yield env
    if not was_running:  # stop only the daemons this test started
        subprocess.run(["bash", str(CLUSTER), "stop"], capture_output=True, timeout=120)


def slurm_snakemake(work, env, *args, check=True):
    proc = subprocess.run([*SNAKEMAKE, *args, "--profile", "profiles/slurm", *LOCAL], cwd=work,
                          env=env, capture_output=True, text=True, timeout=900)
    if check:
        assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    return proc


def test_smoke_study_runs_through_sbatch_and_matches_a_local_run(cluster, smoke, tmp_path):
    work = copy_workflow(tmp_path / "slurm")
    main_only = work / "main_only.yaml"  # the main variant, one seed: enough for sbatch's path
    main_only.write_text(yaml.safe_dump({"study": {"seeds": 1, "norms": [], "regimes": [], "pretrainings": [],
                                                   "models": [], "tasks": [], "datasets": [], "recipes": []}}))
    t0 = time.perf_counter()
    slurm_snakemake(work, cluster, "--configfile", str(SMOKE), str(main_only))
    print(f"\nsmoke study through SLURM: {time.perf_counter() - t0:.0f} s")
    logs = [p.relative_to(work / ".snakemake/slurm_logs") for p in (work / ".snakemake/slurm_logs").rglob("*.log")]
    rules = {p.parts[0] for p in logs}
    assert {"rule_pretrain", "rule_train", "rule_evaluate", "rule_fig_ap_curves"} <= rules
    # main: per init a trunk job (checkpoints 2 and 8) and one per tail (1x: 6, 2x: 12)
    assert len([p for p in logs if p.parts[0] == "rule_train"]) == 2 * 3
    assert len([p for p in logs if p.parts[0] == "rule_evaluate"]) == 2 * 4
    remotes = list((work / "results/eval").rglob("metrics.json"))
    assert len(remotes) == 8  # main: 4 checkpoints per init
    for remote in remotes:
        local = smoke / "results/eval" / remote.relative_to(work / "results/eval")
        # all but the checkpoint file's hash: torch.save names its archive after the (temp) file
        same = lambda path: {k: v for k, v in json.loads(path.read_text()).items()  # noqa: E731
                             if k != "checkpoint_identity"}
        assert same(remote) == same(local), remote


def test_scancel_of_a_training_job_resumes_from_the_last_checkpoint(cluster, tmp_path):
    work = copy_workflow(tmp_path / "scancel")
    override = work / "long.yaml"  # three 60-iteration jobs: 0->60 (trunk), 60->120, 120->180
    override.write_text(yaml.safe_dump({"detection": {"inits": ["scratch"], "one_x": 180, "schedules": [1],
                                                      "checkpoint_every": 60, "job_iters": 60}}))
    target = "results/detection/main/seed0/scratch/1x/iter_000180.pt"
    args = [target, "--configfile", str(SMOKE), str(override)]
    proc = subprocess.Popen([*SNAKEMAKE, *args, "--profile", "profiles/slurm", *LOCAL], cwd=work,
                            env=cluster, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    first = work / "results/detection/main/seed0/scratch/trunk/iter_000060.pt"
    log = work / "results/logs/detection/main/seed0/scratch/1x/iter_000120.log"
    deadline = time.monotonic() + 300
    while not (log.exists() and "iter " in log.read_text()):  # the second segment is training
        assert time.monotonic() < deadline and proc.poll() is None, proc.stdout.read()
        time.sleep(0.5)
    jobs = subprocess.run(["squeue", "-h", "-o", "%i %k"], env=cluster, capture_output=True, text=True).stdout
    ids = [line.split()[0] for line in jobs.splitlines() if "rule_train" in line and "000120" in line]
    assert ids, jobs
    subprocess.run(["scancel", *ids], env=cluster, check=True)
    proc.communicate(timeout=300)
    assert proc.returncode != 0
    assert first.exists() and not (work / target).exists()
    kept = first.stat().st_mtime_ns
    slurm_snakemake(work, cluster, *args)
    assert (work / target).exists()
    assert first.stat().st_mtime_ns == kept  # the finished segment was not redone
    assert "resumed from results/detection/main/seed0/scratch/trunk/iter_000060.pt" in log.read_text()
