"""Two training processes (torchrun, gloo on CPU) against one, with the same global batch.

They cannot be bitwise equal: each rank pads its own half-batch to a common size (so border
features and anchors differ) and normalises the RPN, box and mask losses by its own sample
counts, as Detectron does. Both change the update by a modest amount, far less than a change
of data does. So the test states: after 3 iterations, the 2-process weight update has cosine
similarity > 0.95 with the 1-process update and differs from it by < 30% in L2 norm
(measured: 0.985 and 17%), while one process on other data (another seed) is much further off.
"""
import json
import subprocess
import sys

import pytest
import torch

from conftest import ROOT
from rethink.core.order import mix_seed
from rethink.data import writers
from rethink.engine import checkpoint
from rethink.models.detector import build_mask_rcnn
from tiny import agreement, eval_settings, tiny

ENV = {"PYTHONPATH": str(ROOT / "workflow"), "PATH": "/usr/bin:/bin"}
ITERS = 3


@pytest.fixture(scope="module")
def setup_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("ddp")
    writers.generate_coco(root / "coco", tiny()[0], seed=2)
    _, model, train = tiny()
    model["rpn"]["batch_per_image"] = 100_000  # use every anchor and RoI: no sampling noise
    model["rois_per_image"] = 4096
    train.update(batch_size=4, warmup_iters=0)
    return root, model, train


def train(root, model, train_cfg, out, processes=1, extra=()):
    launcher = [sys.executable, "-m", "rethink.engine.train"] if processes == 1 else [
        sys.executable, "-m", "torch.distributed.run", "--standalone",
        "--nproc-per-node", str(processes), "-m", "rethink.engine.train"]
    proc = subprocess.run([*launcher, "--coco", str(root / "coco"), "--model", json.dumps(model),
                           "--train", json.dumps(train_cfg), "--init", "scratch", "--start-iter", "0",
                           "--end-iter", str(ITERS), "--out", str(out), "--device", "cpu", *extra],
                          env=ENV, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return proc.stdout


def update(path, model_cfg, seed):
    torch.manual_seed(mix_seed(seed, 4))  # the init train.py draws
    init = build_mask_rcnn(model_cfg, 2).state_dict()
    w = checkpoint.load(path)["model"]
    return torch.cat([(w[k] - init[k]).flatten().double() for k in w if w[k].is_floating_point()])


@pytest.mark.slow
def test_two_processes_match_one_with_the_same_global_batch(setup_run):
    root, model, train_cfg = setup_run
    train(root, model, train_cfg, root / "one.pt")
    log = train(root, model, train_cfg, root / "two.pt", processes=2)
    assert "global batch 4 = 2 x 2 images" in log
    train(root, model, {**train_cfg, "seed": train_cfg["seed"] + 1}, root / "other.pt")
    one = update(root / "one.pt", model, train_cfg["seed"])
    two = update(root / "two.pt", model, train_cfg["seed"])
    other = update(root / "other.pt", model, train_cfg["seed"] + 1)
    same, rel, far = agreement(one, two, other, "")
    assert same > 0.95 and rel < 0.30
    assert far < same - 0.1


@pytest.mark.slow
def test_several_processes_leave_scoring_to_the_evaluate_jobs(setup_run, tmp_path):
    root, model, train_cfg = setup_run
    eval_dir = tmp_path / "eval"
    log = train(root, model, train_cfg, tmp_path / "ckpt" / f"iter_{ITERS:06d}.pt", processes=2,
                extra=[*eval_settings({}), "--eval-dir", str(eval_dir)])
    assert "2 training processes: checkpoints are scored by the evaluate jobs" in log
    assert (tmp_path / "ckpt" / f"iter_{ITERS:06d}.pt").exists() and not eval_dir.exists()


@pytest.mark.slow
def test_batch_not_divisible_by_processes_is_refused(setup_run, tmp_path):
    root, model, train_cfg = setup_run
    with pytest.raises(AssertionError, match="not divisible by the 2 training processes"):
        train(root, model, {**train_cfg, "batch_size": 3}, tmp_path / "bad.pt", processes=2)


@pytest.mark.workflow  # a dry run of the DAG
def test_train_rule_starts_torchrun_with_one_process_per_gpu(tmp_path):
    from conftest import snakemake
    override = tmp_path / "gpus.yaml"
    override.write_text(f"results: {tmp_path}/r\nresources:\n  train: {{mem_mb: 4000, runtime: 60, gpu: 4}}\n")
    out = snakemake("-n", "-p", "--configfile", str(override)).stdout
    assert "torch.distributed.run --standalone --nproc-per-node 4 -m rethink.engine.train" in out


@pytest.mark.workflow  # a dry run of the DAG
def test_pretrain_rule_starts_torchrun_with_one_process_per_gpu(tmp_path):
    from conftest import snakemake
    override = tmp_path / "gpus.yaml"
    override.write_text(f"results: {tmp_path}/r\nresources:\n  pretrain: {{mem_mb: 4000, runtime: 60, gpu: 8}}\n")
    out = snakemake("-n", "-p", "--configfile", str(override)).stdout
    assert "torch.distributed.run --standalone --nproc-per-node 8 -m rethink.engine.pretrain" in out


@pytest.mark.slow
def test_gpu_check_script_runs(tmp_path):
    out = tmp_path / "gpu.json"
    proc = subprocess.run([sys.executable, "-m", "rethink.engine.gpu_check", "--device", "cpu", "--min-size", "96",
                           "--max-size", "128", "--iters", "1", "--batch", "1", "--modes", "fp32",
                           "--out", str(out)], env=ENV, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(out.read_text())
    assert result["results"][0]["mode"] == "fp32" and result["results"][0]["img_per_s"] > 0


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the machine without a working CUDA")
def test_asking_for_cuda_without_it_stops_naming_the_key_and_what_was_found():
    from rethink.engine.runtime import resolve_device
    with pytest.raises(SystemExit, match=r"config key `device` is cuda, but CUDA does not work here: "
                                         r"torch .* built for CUDA .*NVIDIA driver: .*CUDA_VISIBLE_DEVICES="):
        resolve_device("cuda")
    with pytest.raises(SystemExit, match=r"resources.train.gpu = 2 \(device: auto\), but CUDA does not work"):
        resolve_device("auto", gpus=2, resource_key="resources.train.gpu")
    with pytest.raises(SystemExit, match=r"resources.evaluate.gpu = 1 but config key `device` is cpu"):
        resolve_device("cpu", gpus=1, resource_key="resources.evaluate.gpu")
    assert resolve_device("auto").type == "cpu" and resolve_device("cpu").type == "cpu"


@pytest.mark.slow
@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the machine without a working CUDA")
def test_training_job_given_a_gpu_without_cuda_fails_before_training(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "rethink.engine.train", "--coco", str(tmp_path), "--model", "{}",
                           "--train", "{}", "--init", "pretrained", "--start-iter", "0", "--end-iter", "1",
                           "--out", str(tmp_path / "x.pt"), "--gpus", "1"],
                          env=ENV, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0 and "resources.train.gpu = 1 (device: auto), but CUDA does not work" in proc.stderr
    assert not (tmp_path / "x.pt").exists()


@pytest.mark.slow
@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the machine without a working CUDA")
def test_gpu_check_fails_without_cuda_unless_told_to_skip(tmp_path):
    cmd = [sys.executable, "-m", "rethink.engine.gpu_check", "--iters", "1", "--out", str(tmp_path / "g.json")]
    proc = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1 and "CUDA does not work here" in proc.stderr
    assert not (tmp_path / "g.json").exists()
    proc = subprocess.run(cmd + ["--skip-without-gpu"], env=ENV, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and "no GPU: skipped" in proc.stdout
    assert json.loads((tmp_path / "g.json").read_text())["skipped"] is True


def test_processes_of_one_job_share_its_threads(monkeypatch):
    from rethink.engine.runtime import setup
    before = torch.get_num_threads()
    try:
        monkeypatch.setenv("LOCAL_WORLD_SIZE", "4")
        setup(8, "cpu", deterministic=False)
        assert torch.get_num_threads() == 2  # torchrun's 4 processes: 8 CPUs between them
        monkeypatch.setenv("LOCAL_WORLD_SIZE", "8")
        setup(4, "cpu", deterministic=False)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_objects_alive_before_the_loader_workers_fork_are_frozen_out_of_the_collector():
    import gc
    from rethink.engine.runtime import freeze_before_fork
    before = gc.get_freeze_count()
    try:
        freeze_before_fork(0)  # no workers: nothing forks, nothing to freeze
        assert gc.get_freeze_count() == before
        index = [{"id": i, "bbox": [0, 0, 1, 1]} for i in range(1000)]  # containers a worker would collect
        freeze_before_fork(2)
        assert gc.get_freeze_count() >= before + len(index)
    finally:
        gc.unfreeze()


@pytest.mark.workflow  # a dry run of the DAG
def test_partition_goes_to_the_gpu_kinds_only(tmp_path):
    from conftest import snakemake
    override = tmp_path / "partition.yaml"
    override.write_text(f"results: {tmp_path}/r\nresources:\n  train: {{mem_mb: 4000, runtime: 60, gpu: 1, "
                        f"partition: gpunodes}}\n")
    out = snakemake("-n", "--configfile", str(override)).stdout
    blocks = out.split("\nrule ")
    train = [b for b in blocks if b.startswith("train:")]
    others = [b for b in blocks if b.startswith(("synthesize_coco:", "check_coco:", "evaluate:"))]
    assert train and all("slurm_partition=gpunodes" in b for b in train)
    assert others and not any("slurm_partition" in b for b in others)
