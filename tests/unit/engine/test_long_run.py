"""Long runs: memory stays flat, and a data loader worker that dies is reported, not hung on."""
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import ROOT
from rethink.data import writers
from tiny import tiny

TRAIN = [sys.executable, "-m", "rethink.engine.train"]
ENV = {"PYTHONPATH": str(ROOT / "workflow"), "PATH": "/usr/bin:/bin"}
RSS_GROWTH_LIMIT_MB = 40


@pytest.fixture(scope="module")
def coco(tmp_path_factory):
    root = tmp_path_factory.mktemp("long") / "coco"
    writers.generate_coco(root, tiny()[0], seed=5)
    return root


def train_cmd(coco, out, end, workers=0, log_every=25):
    _, model, train = tiny()
    return [*TRAIN, "--coco", str(coco), "--model", json.dumps(model), "--train", json.dumps(train),
            "--init", "scratch", "--start-iter", "0", "--end-iter", str(end), "--out", str(out),
            "--workers", str(workers), "--log-every", str(log_every)]


@pytest.mark.slow
def test_memory_stays_flat_over_a_long_run(coco, tmp_path):
    proc = subprocess.run(train_cmd(coco, tmp_path / "long.pt", end=400), env=ENV,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rss = [float(m) for m in re.findall(r"rss (\d+) MB", proc.stdout)]
    assert len(rss) == 16
    growth = max(rss[2:]) - rss[2]  # after warm-up (allocator pools, first batches)
    print(f"\nRSS over 400 iterations: {rss[0]:.0f} -> {rss[-1]:.0f} MB, growth after iteration 75: "
          f"{growth:.0f} MB (limit {RSS_GROWTH_LIMIT_MB})")
    assert growth < RSS_GROWTH_LIMIT_MB


def children(pid: int) -> list[int]:
    out = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        out += [int(c) for c in (task / "children").read_text().split()]
    return out


@pytest.mark.slow
def test_dead_loader_worker_is_reported_not_hung_on(coco, tmp_path):
    proc = subprocess.Popen(train_cmd(coco, tmp_path / "w.pt", end=100_000, workers=1, log_every=5),
                            env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for line in proc.stdout:  # wait until training is under way
            if line.startswith("iter "):
                break
        workers = children(proc.pid)
        assert workers, "no data loader worker process found"
        for pid in workers:
            os.kill(pid, signal.SIGKILL)
        t0 = time.perf_counter()
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode != 0
    assert "data loader failed near iteration" in err and "worker" in err, err[-2000:]
    assert time.perf_counter() - t0 < 60
    assert not (tmp_path / "w.pt").exists()


def failing(error):
    def batches():
        raise error
        yield  # a generator: the error comes from next(), where the loader raises a worker's death
    return batches()


@pytest.mark.parametrize("error", [EOFError(), ConnectionResetError("Connection reset by peer"),
                                   RuntimeError("DataLoader worker (pid 123) is killed by signal")])
def test_a_worker_dying_mid_send_is_reported_as_a_loader_failure(error):
    """The race the dead-worker test only sometimes hits: a worker killed while sending a batch
    breaks its queue's pipe (EOFError / ConnectionError) instead of PyTorch's RuntimeError."""
    from rethink.engine.train import next_batch
    with pytest.raises(SystemExit, match=r"data loader failed near iteration 7 \(segment 0->20\)"):
        next_batch(failing(error), 7, 0, 20)


def test_an_error_that_is_not_the_loaders_is_not_relabelled():
    from rethink.engine.train import next_batch
    with pytest.raises(RuntimeError, match="shape mismatch"):
        next_batch(failing(RuntimeError("shape mismatch")), 7, 0, 20)
    assert next_batch(iter([("images", "targets")]), 0, 0, 1) == ("images", "targets")
