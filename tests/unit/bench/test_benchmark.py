"""The benchmark suite's quick mode runs its cheap parts and writes a well-formed results file."""
import json
import os
import subprocess
import sys

import pytest
import torch

from conftest import ROOT
from rethink.bench.common import fit_line, job_counts

CHEAP = "training,evaluation,loaders,pipeline,forking,gpu"


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench") / "suite.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "workflow")}
    proc = subprocess.run([sys.executable, "-m", "rethink.bench.suite", "--quick", "--only", CHEAP,
                           "--out", str(out)], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return json.loads(out.read_text()), out.with_suffix(".md").read_text()


@pytest.mark.slow
def test_every_part_ran_with_its_command(quick):
    results, _ = quick
    assert results["quick"] is True
    assert list(results["parts"]) == CHEAP.split(",")
    for name, part in results["parts"].items():
        assert part["status"] == "ok", part.get("traceback")
        assert part["command"].startswith("PYTHONPATH=workflow python -m rethink.bench.suite --quick")
        assert f"--only {name}" in part["command"]
    assert results["machine"]["cpus"] >= 1 and results["wall_seconds"] > 0


@pytest.mark.slow
def test_training_arms_ratios_options_padding_profile_and_flops(quick):
    t = quick[0]["parts"]["training"]
    thr = t["throughput"]
    arms = thr["arms"]
    # the step before issue 31, each option added in turn, and a plain torchvision loop
    assert list(arms) == ["plain_torchvision", "baseline", "+group_by_aspect", "+channels_last", "+bf16"]
    assert arms["baseline"]["settings"] == {"group_by_aspect": False, "channels_last": False, "bf16": False}
    assert arms["+bf16"]["settings"] == {"group_by_aspect": True, "channels_last": True, "bf16": True}
    for a in arms.values():
        assert a["img_per_s"] > 0 and a["s_per_iter"] > 0 and 0 <= a["data_wait_frac"] < 1
    assert thr["config_arm"] in arms and thr["ratio_config_vs_baseline"] > 0
    assert [o["option"] for o in thr["options"]] == ["group_by_aspect", "channels_last", "bf16"]
    assert all(o["ratio_vs_without"] > 0 for o in thr["options"])
    # grouping pads less than mixed batches (the quick set: 4 batches of 2)
    assert 1.0 <= thr["padding_waste_config_epoch"] <= thr["padding_waste_baseline_epoch"]
    assert 0 <= thr["data_wait_frac_config"] < 1
    prof = t["profile"]
    assert prof["top_self_cpu"] and prof["roi_align_backward_ms_per_iter"] > 0
    assert 0 < prof["matching_sampling_share"] < 1 and prof["aten_calls_per_iter"] > 0
    flops = t["flops"]
    assert flops["sgemm"]["gflop_per_s_median"] > 0
    assert set(flops["arms"]) == {"baseline", thr["config_arm"]}
    assert all(a["gflop_per_step"] > 0 and a["fraction_of_sgemm"] > 0 for a in flops["arms"].values())
    assert "compile" not in t  # --quick leaves torch.compile out (minutes of compiling)


@pytest.mark.slow
def test_loaders_part_measures_workers_per_gpu(quick):
    e = quick[0]["parts"]["loaders"]
    rates = e["img_per_s_per_worker"]
    assert all(v > 0 for v in rates.values())
    assert rates["coco_plus_cpu_resize_800x1333"] < rates["coco_decode_masks_flip"]  # resizing costs
    assert e["workers_per_gpu"]["pretrain"] >= 1 and e["workers_per_gpu"]["detection"] >= 1


@pytest.mark.slow
def test_evaluation_backends_agree(quick):
    e = quick[0]["parts"]["evaluation"]
    assert e["max_abs_diff_12_stats"] <= 1e-6 and e["max_abs_diff_per_category_ap"] <= 1e-6
    assert e["seconds"]["faster"] > 0 and e["seconds"]["pycocotools"] > 0
    assert e["detections"] > 0 and e["stats"]["faster"] == e["stats"]["pycocotools"]
    c = e["checkpoint"]  # one checkpoint's evaluation, before issue 31 and now: the same numbers
    assert c["goals"]["identical"] and c["ratio_before_vs_now"]["workers=0"] > 0


@pytest.mark.slow
def test_pipeline_dag_and_forking(quick):
    parts = quick[0]["parts"]
    dag = parts["pipeline"]["dag_default"]
    assert dag["jobs"] > 0 and dag["seconds"] > 0 and dag["command"].startswith("snakemake -n")
    paper = parts["forking"]["paper_2x_6x"]
    # 2x-6x of 90k: trunk to 6x - 60k = 480k, plus five 60k tails; separate: 20 x 90k
    assert paper["forked_iterations"] == 780_000 and paper["separate_iterations"] == 1_800_000
    assert parts["forking"]["configured_study"]["forked_iterations"] > 0


@pytest.mark.slow
def test_gpu_part_skips_cleanly_without_a_gpu(quick):
    gpu = quick[0]["parts"]["gpu"]
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    assert gpu["skipped"] is True and gpu["stdout"] == ["no GPU: skipped"]


@pytest.mark.slow
def test_markdown_summary_has_every_part(quick):
    _, md = quick
    for name in CHEAP.split(","):
        assert f"## {name}" in md
    assert "the config's step vs the baseline" in md and "padding waste" in md
    assert "faster-coco-eval vs pycocotools" in md


def test_fit_line_and_job_stats_parsing():
    fit = fit_line([1, 2, 4], [10.0, 12.0, 16.0])
    assert fit == {"intercept": 8.0, "slope": 2.0, "r2": 1.0}
    out = "Building DAG of jobs...\nJob stats:\njob       count\n------  -------\nall  1\ntrain  12\ntotal  13\n\nReasons:"
    assert job_counts(out) == {"all": 1, "train": 12, "total": 13}


@pytest.mark.slow
def test_unknown_part_is_refused():
    proc = subprocess.run([sys.executable, "-m", "rethink.bench.suite", "--only", "nope"], cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT / "workflow")},
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "unknown part" in proc.stderr


def test_equivalence_outcome_has_three_ways():
    from rethink.bench.equivalence import DIFFERENT, EQUIVALENT, INCONCLUSIVE, outcome
    assert outcome({"lo": -1.0, "hi": 2.0}, 3.0) == EQUIVALENT
    assert outcome({"lo": 3.5, "hi": 6.0}, 3.0) == DIFFERENT
    assert outcome({"lo": -7.0, "hi": -3.0}, 3.0) == DIFFERENT
    assert outcome({"lo": -1.0, "hi": 4.0}, 3.0) == INCONCLUSIVE
