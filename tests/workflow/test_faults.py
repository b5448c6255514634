"""Kill training jobs with SIGKILL at many points, including in the middle of a checkpoint
write, and corrupt a finished checkpoint: each time, rerunning the pipeline finishes and the
final weights are bitwise equal to an uninterrupted run's. (A training job trains a whole
branch here: the trunk job writes 2, 4, 6 and 8, so a kill loses that job's work.)"""
import base64
import json
import os
import signal
import subprocess
import time

import pytest
import torch
import yaml
from snakemake.utils import update_config

from conftest import FIGURE_FILES, SMOKE, SNAKEMAKE, copy_workflow
from rethink.core import config as study_config
from rethink.engine import checkpoint
from rethink.engine.runtime import setup
from rethink.engine.train import train_segment

# Scratch only, checkpoints every 2 iterations: the trunk job writes 2,4,6,8, the 2x job 10,12
# (forked at 8), the 1x job 4,6 (forked at 2).
OVERRIDE = {"detection": {"inits": ["scratch"], "schedules": [1, 2], "checkpoint_every": 2}}
FINAL = "results/detection/main/seed0/scratch/2x/iter_000012.pt"
ONE_X = "results/detection/main/seed0/scratch/1x/iter_000006.pt"
KILL_POINTS = [f"{kind}:{it}" for it in range(1, 13) for kind in ("iter", "save")
               if (kind == "iter") == (it % 2 == 1)]  # iter:1, save:2, iter:3, save:4, ...


def run(work, fault=None, targets=(FINAL,)):
    env = {k: v for k, v in os.environ.items() if k != "RETHINK_FAULT"}
    if fault:
        env["RETHINK_FAULT"] = fault
    return subprocess.run([*SNAKEMAKE, *targets, "--cores", "1", "--configfile", str(SMOKE),
                           "override.yaml"], cwd=work, env=env, capture_output=True, text=True)


def merged_config(work):
    cfg = yaml.safe_load((work / "config.yaml").read_text())
    for extra in (SMOKE, work / "override.yaml"):
        update_config(cfg, yaml.safe_load(extra.read_text()))
    return cfg


@pytest.fixture(scope="module")
def faulted(tmp_path_factory):
    """The pipeline driven to its final checkpoint through a SIGKILL at every kill point."""
    work = copy_workflow(tmp_path_factory.mktemp("faults"))
    (work / "override.yaml").write_text(yaml.safe_dump(OVERRIDE))
    outcomes = []
    for point in KILL_POINTS:
        proc = run(work, point)
        logs = "".join(p.read_text() for p in (work / "results/logs/detection").rglob("*.log"))
        outcomes.append((point, proc.returncode, f"SIGKILL at {point}" in logs))
    final_run = run(work)
    assert final_run.returncode == 0, final_run.stdout + final_run.stderr
    print(f"\nkill points: {len(KILL_POINTS)} ({', '.join(KILL_POINTS)})")
    return work, outcomes


def reference_weights(work, tmp_path):
    """One uninterrupted 12-iteration run of the same schedule, in this process."""
    cfg = merged_config(work)
    setup(threads=cfg["threads"]["train"])
    out = tmp_path / "straight.pt"
    train_segment(work / "results/data/coco", study_config.model_settings(cfg, for_eval=False),
                  study_config.train_settings(study_config.variants(cfg)["main"], 0), "scratch", 0, 12, 12, out, log_every=100)
    return checkpoint.load(out)["model"]


def assert_same_weights(a, b):
    assert a.keys() == b.keys()
    bad = [k for k in a if not torch.equal(a[k], b[k])]
    assert not bad, f"{len(bad)} tensors differ, e.g. {bad[:3]}"


def test_at_least_ten_kill_points_including_checkpoint_writes():
    assert len(KILL_POINTS) >= 10
    assert sum(p.startswith("save:") for p in KILL_POINTS) >= 5


def test_every_injected_kill_stopped_the_run(faulted):
    _, outcomes = faulted
    for point, returncode, logged in outcomes:
        assert returncode != 0 and logged, f"{point}: exit {returncode}, logged {logged}"


def test_no_half_written_checkpoint_or_temp_file_survives(faulted):
    work, _ = faulted
    folder = work / "results/detection/main/seed0/scratch"
    assert not list(folder.rglob(".*tmp*")), "stale temp files left behind"
    for ckpt in folder.rglob("*.pt"):  # a schedule's last checkpoint keeps no optimizer state
        final = ckpt.parent.name != "trunk" and int(ckpt.stem[5:]) == 6 * int(ckpt.parent.name[:-1])
        checkpoint.load(ckpt, required=("model", "iteration") if final else ("model", "optimizer", "iteration"))


def test_final_weights_equal_an_uninterrupted_run(faulted, tmp_path):
    work, _ = faulted
    assert_same_weights(checkpoint.load(work / FINAL)["model"], reference_weights(work, tmp_path))


def test_corrupt_checkpoint_is_named_removed_and_retrained(faulted, tmp_path):
    work, _ = faulted
    # the 1x fork: written on the way by the trunk job, whose output (Snakemake's view) is 8
    victim = work / "results/detection/main/seed0/scratch/trunk/iter_000002.pt"
    job_output = work / "results/detection/main/seed0/scratch/trunk/iter_000008.pt"
    victim.write_bytes(victim.read_bytes()[:1000])  # truncated, e.g. by a full disk
    first = run(work, targets=(ONE_X, FINAL))
    assert first.returncode != 0
    logs = (work / "results/logs/detection/main/seed0/scratch/1x/iter_000006.log").read_text()
    assert f"checkpoint {victim.relative_to(work)} is corrupt or truncated" in logs
    assert "run snakemake again" in logs and not victim.exists() and not job_output.exists()
    second = run(work, targets=(ONE_X, FINAL))  # retrains the trunk job, then both tails
    assert second.returncode == 0, second.stdout + second.stderr
    assert (work / ONE_X).exists()
    assert_same_weights(checkpoint.load(work / FINAL)["model"], reference_weights(work, tmp_path))


# --------------------------------------------------------------------------- whole-run kills
def incomplete_outputs(work):
    """Outputs Snakemake has marked incomplete (its markers are the base64 of the path)."""
    folder = work / ".snakemake" / "incomplete"
    names = [p.name for p in folder.iterdir()] if folder.is_dir() else []
    out = set()
    for n in names:
        try:
            out.add(base64.urlsafe_b64decode(n + "=" * (-len(n) % 4)).decode())
        except ValueError:
            pass
    return out


def finished_outputs(work):
    """mtime of every checkpoint, evaluation, figure and table that exists and is complete."""
    results = work / "results"
    files = [*results.glob("pretrain/*/*.pt"), *results.glob("detection/**/*.pt"),
             *results.glob("eval/*/*/*/*/iter_*/metrics.json"), *results.glob("figures/*"),
             *results.glob("tables/*")]
    pending = incomplete_outputs(work)
    return {str(p.relative_to(work)): p.stat().st_mtime_ns for p in files
            if not p.name.startswith(".") and str(p.relative_to(work)) not in pending}


def test_killed_process_group_resumes_with_the_plain_command(smoke, tmp_path):
    """SIGKILL the whole process group (driver and jobs, as a power cut would) during
    pre-training, training, evaluation and the figure rules; each time rerun the same plain
    command (no --unlock, no --rerun-incomplete). The run completes, nothing finished before a
    kill is redone, and the metrics equal an uninterrupted run's."""
    work = copy_workflow(tmp_path / "killed")
    (work / "main_only.yaml").write_text(yaml.safe_dump({"study": {
        "seeds": 1, "norms": [], "regimes": [], "pretrainings": [], "models": [], "tasks": [], "datasets": [],
        "recipes": []}}))
    command = [*SNAKEMAKE, "--cores", "2", "--configfile", str(SMOKE), "main_only.yaml"]
    results = work / "results"
    pretrain_log = results / "logs/pretrain/GN.log"
    kill_points = {
        "pre-training": lambda: pretrain_log.exists() and "epoch 1/" in pretrain_log.read_text(),
        "training": lambda: any(results.glob("detection/main/*/*/trunk/iter_*.pt")),
        "evaluation": lambda: len(list(results.glob("eval/*/*/*/*/iter_*/metrics.json"))) >= 3,
        "figure rules": lambda: any(p.startswith(("results/figures/", "results/tables/"))
                                    for p in incomplete_outputs(work)),
    }
    finished, outputs = {}, []
    for point, reached in kill_points.items():
        proc = subprocess.Popen(command, cwd=work, start_new_session=True, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 300
        while not reached():
            assert proc.poll() is None, f"run ended before the {point} kill point:\n{proc.stdout.read()}"
            assert time.monotonic() < deadline, f"{point} kill point not reached in 300 s"
            time.sleep(0.02)
        os.killpg(proc.pid, signal.SIGKILL)
        outputs.append(proc.communicate()[0])
        time.sleep(1.5)  # orphaned jobs notice their driver is gone within a second
        now = finished_outputs(work)
        assert all(now.get(k) == v for k, v in finished.items()), f"redone after the {point} kill"
        finished = now
    final = subprocess.run(command, cwd=work, capture_output=True, text=True)
    assert final.returncode == 0, final.stdout + final.stderr
    assert "stale Snakemake lock" in "".join(outputs[1:]) + final.stderr
    redone = [k for k, v in finished.items() if finished_outputs(work).get(k) != v]
    assert not redone, f"finished before the last kill, redone after it: {redone}"
    # every figure and table but those of the variant kinds this study leaves out
    expected = [f for f in FIGURE_FILES if not any(k in f for k in ("less_data", "norms", "pretrain_strength",
                                                                    "models", "keypoints", "datasets", "recipes"))]
    missing = [f for f in expected if not (results / f).exists()]
    assert not missing, missing
    assert "Nothing to be done" in subprocess.run(command + ["-n"], cwd=work, capture_output=True,
                                                  text=True).stdout
    ours = sorted(results.glob("eval/*/*/*/*/iter_*/metrics.json"))
    assert len(ours) == 8  # main, one seed: 4 checkpoints per init
    for path in ours:
        local = smoke / path.relative_to(work)
        same = lambda p: {k: v for k, v in json.loads(p.read_text()).items()  # noqa: E731
                          if k != "checkpoint_identity"}
        assert same(path) == same(local), path
