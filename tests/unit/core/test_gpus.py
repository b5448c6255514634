"""Local GPU assignment: concurrent jobs get disjoint GPUs (lock files), and a job without
GPUs, or under SLURM, runs unchanged."""
import os
import subprocess
import sys

import pytest

from conftest import ROOT
from rethink.core import gpus

ENV = {**os.environ, "PYTHONPATH": str(ROOT / "workflow")}


def test_concurrent_claims_get_disjoint_gpus(tmp_path, monkeypatch):
    monkeypatch.setattr(gpus, "LOCK_DIR", str(tmp_path))
    first, locks1 = gpus.claim(2, total=4)
    second, locks2 = gpus.claim(2, total=4)
    assert sorted(first + second) == [0, 1, 2, 3]
    with pytest.raises(SystemExit, match="no 1 free GPUs"):
        gpus.claim(1, total=4, wait_s=0)
    for f in locks1:
        f.close()  # the first job ends: its GPUs are free again
    third, _ = gpus.claim(2, total=4, wait_s=0)
    assert sorted(third) == sorted(first)
    with pytest.raises(SystemExit, match="asks for 5 GPUs but this machine has 4"):
        gpus.claim(5, total=4)


def test_no_gpu_job_runs_the_command_unchanged():
    env = {k: v for k, v in ENV.items() if k != "CUDA_VISIBLE_DEVICES"}
    out = subprocess.run([sys.executable, "-m", "rethink.core.gpus", "--count", "0", "--", "sh", "-c",
                          "echo ${CUDA_VISIBLE_DEVICES:-unset} $0", "arg one"],
                         env=env, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "unset arg one"
