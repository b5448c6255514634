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


def test_sbatch_flags_of_gpu_and_cpu_rules(tmp_path):
    """What the SLURM plugin asks sbatch for, per rule, through profiles/slurm and the config's
    `threads` and `resources` (no cluster: an `sbatch` on PATH records its flags and refuses):
    a GPU training job gets its GPUs, CPUs for its ranks and their loader workers, and the GPU
    partition; a CPU rule ready beside it (pre-training at gpu 0) none of these."""
    work = copy_workflow(tmp_path / "flags")
    override = work / "gpu.yaml"
    override.write_text(yaml.safe_dump({
        "study": {"seeds": 1, "norms": [], "regimes": [], "pretrainings": [], "models": [], "tasks": [],
                  "datasets": [], "recipes": []},
        "threads": {"train": 12, "pretrain": 3},
        "resources": {"train": {"mem_mb": 64000, "runtime": 240, "gpu": 4, "partition": "gpunodes"},
                      "pretrain": {"mem_mb": 5000, "runtime": 90, "gpu": 0}}}))
    config = ["--configfile", str(SMOKE), str(override)]
    # the data and its checks locally, so that training and pre-training are the ready jobs
    subprocess.run([*SNAKEMAKE, "--cores", "2", *config, "--omit-from", "pretrain", "train"], cwd=work,
                   check=True, capture_output=True, timeout=600)
    fake = tmp_path / "bin"
    fake.mkdir()
    calls = tmp_path / "sbatch_calls.txt"
    (fake / "sbatch").write_text(f'#!/bin/sh\necho "$@" >> "{calls}"\ncat > /dev/null\n'
                                 'echo "sbatch: error: no cluster here" >&2\nexit 1\n')
    (fake / "sinfo").write_text("#!/bin/sh\nexit 0\n")
    for tool in fake.iterdir():
        tool.chmod(0o755)
    env = {**os.environ, "PATH": f"{fake}{os.pathsep}{os.environ['PATH']}"}
    proc = subprocess.run([*SNAKEMAKE, *config, "--profile", "profiles/slurm", *LOCAL, "--keep-going"],
                          cwd=work, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode != 0  # every submission refused
    lines = calls.read_text().splitlines()
    train = [line for line in lines if "rule_train_" in line]
    pretrain = [line for line in lines if "rule_pretrain" in line]
    assert train and pretrain, lines
    for line in train:
        flags = line.split()
        assert "--gpus=4" in flags and "--cpus-per-task=12" in flags, line
        assert ("-p" in flags and "gpunodes" in flags[flags.index("-p") + 1]) or "--partition=gpunodes" in flags, line
        assert flags[flags.index("--mem") + 1] == "64000" and flags[flags.index("-t") + 1] == "240", line
    for line in pretrain:
        flags = line.split()
        assert not any(f.startswith(("--gpus", "--gres")) for f in flags), line
        assert "--cpus-per-task=3" in flags and "gpunodes" not in line, line
